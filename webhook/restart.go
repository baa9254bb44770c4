package webhook

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"time"

	"github.com/tokenvault/tokenvault"
)

// Bounds of the wait before Run subscribes an endpoint again after its
// subscription failed. The cap is short enough that delivery resumes within
// about a minute of the store recovering.
const (
	defaultRestartMinBackoff = time.Second
	defaultRestartMaxBackoff = time.Minute
)

// SubscriptionError is a failure of an endpoint's subscription, such as a
// store that could not write the endpoint's cursor, after which Run
// subscribes the endpoint again. It contains neither the endpoint's secret
// nor its URL.
type SubscriptionError struct {
	Endpoint string        // the endpoint's ID
	Failures int           // the failures in a row, from 1
	Wait     time.Duration // the time before Run subscribes again
	Err      error         // the error of Vault.Subscribe
}

// runEndpoint delivers to e until ctx is done, and subscribes again after
// each failure that a later attempt can fix. It returns nil when ctx is
// done, and otherwise the error that ends delivery to e.
func (d *Dispatcher) runEndpoint(ctx context.Context, e Endpoint) error {
	failures := 0
	for {
		started := time.Now()
		err := d.vault.Subscribe(ctx, SubscriberName(e.ID), d.handler(e), d.subscribeOptions(e))
		if ctx.Err() != nil {
			return nil
		}
		if err == nil {
			err = errors.New("subscription returned before the context was done")
		}
		if !restartable(err) {
			return fmt.Errorf("webhook: endpoint %s: %w", e.ID, err)
		}

		// A subscription that ran for longer than the longest wait got
		// past the failure before, so this one starts a new series.
		if time.Since(started) >= d.restartMaxBackoff {
			failures = 0
		}
		failures++
		wait := restartBackoff(d.restartMinBackoff, d.restartMaxBackoff, failures)
		if onError := d.opts.OnSubscriptionError; onError != nil {
			onError(SubscriptionError{Endpoint: e.ID, Failures: failures, Wait: wait, Err: err})
		}

		timer := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			timer.Stop()
			return nil
		case <-timer.C:
		}
	}
}

// restartable reports whether subscribing again can get past err. A closed
// vault stays closed, and a second Run for one endpoint or options that
// Subscribe rejects are mistakes of the caller, which a retry would hide.
func restartable(err error) bool {
	return !errors.Is(err, tokenvault.ErrVaultClosed) &&
		!errors.Is(err, tokenvault.ErrSubscriberRunning) &&
		!errors.Is(err, tokenvault.ErrInvalidOption)
}

// restartBackoff returns the wait after failure n of a subscription: a
// random time from half to all of minBackoff·2^(n-1), at most maxBackoff.
// The wait is at least half of that limit, so that a store that keeps
// failing is not called in a tight loop.
func restartBackoff(minBackoff, maxBackoff time.Duration, failures int) time.Duration {
	limit := minBackoff
	for i := 1; i < failures && limit < maxBackoff; i++ {
		limit *= 2
	}
	limit = min(limit, maxBackoff)

	half := limit / 2
	return half + rand.N(limit-half+1)
}
