package webhook

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"sync"
	"time"

	"github.com/tokenvault/tokenvault"
)

// Defaults of Options. They are longer than those of Vault.Subscribe,
// because a receiver that is down holds up every later event of its
// endpoint: with these values, an event becomes a dead letter after 12
// attempts over a random time of up to about 27 minutes, about 14 minutes
// on average, instead of a minute or less.
const (
	DefaultMaxAttempts = 12
	DefaultMinBackoff  = time.Second
	DefaultMaxBackoff  = 10 * time.Minute
	DefaultTimeout     = 10 * time.Second
)

// maxResponseDrain is how much of a response body the Dispatcher reads, and
// discards, so that the connection can serve the next request. A receiver
// has nothing to say beyond its status code.
const maxResponseDrain = 64 << 10

// userAgent lets receivers and proxies tell webhook requests apart.
const userAgent = "tokenvault-webhook/1"

// subscriberPrefix starts the vault subscriber name of every endpoint.
const subscriberPrefix = "webhook:"

// SubscriberName returns the name under which a Dispatcher subscribes to the
// vault's events for the endpoint with id, and so the name that
// Vault.DeadLetters and Vault.Redeliver take for it.
func SubscriberName(id string) string { return subscriberPrefix + id }

// Options configure a Dispatcher. A nil *Options, and every zero field, means
// the default.
type Options struct {
	// MaxAttempts is the number of attempts at one event. After the last
	// one fails, the event becomes a dead letter of the endpoint, and the
	// endpoint gets the next event. The default is DefaultMaxAttempts.
	MaxAttempts int

	// MinBackoff and MaxBackoff bound the wait between attempts, as in
	// tokenvault.SubscribeOptions: after failed attempt n, a random time up
	// to MinBackoff·2^(n-1), at most MaxBackoff. The defaults are
	// DefaultMinBackoff and DefaultMaxBackoff.
	MinBackoff time.Duration
	MaxBackoff time.Duration

	// PollInterval is passed to Vault.Subscribe: how often an endpoint
	// with nothing to send reads the outbox for events written by other
	// processes. Zero means the default of Subscribe.
	PollInterval time.Duration

	// Timeout bounds one attempt: connecting, sending the request, and
	// reading the status and up to 64 KiB of the response. The default is
	// DefaultTimeout.
	Timeout time.Duration

	// Client sends the requests. The Dispatcher uses a copy whose
	// CheckRedirect returns the redirect response itself, so redirects are
	// never followed and count as failed attempts. The default is a client
	// with a transport of its own, configured as http.DefaultTransport.
	Client *http.Client

	// OnError, if set, is called after each failed attempt, for the caller
	// to log: the package never logs. It is called from the endpoint's
	// delivery goroutine, between attempts, so it must return quickly and
	// be safe for concurrent use by the goroutines of several endpoints.
	OnError func(Failure)

	// OnSubscriptionError, if set, is called when an endpoint's
	// subscription fails and Run is about to subscribe it again, as Run
	// describes. It is called from the endpoint's goroutine, with the same
	// requirements as OnError.
	OnSubscriptionError func(SubscriptionError)
}

// Failure is a failed delivery attempt. It contains no value and no secret:
// the event never contains the token's value, and Err contains neither the
// endpoint's secret nor its URL.
type Failure struct {
	Endpoint string // the endpoint's ID
	Event    tokenvault.Event
	Attempt  int  // from 1
	Dead     bool // the attempt was the last one: the event is now a dead letter
	Err      error
}

// Dispatcher delivers a vault's events to webhook endpoints: each event as
// one signed POST request per endpoint, at least once, in outbox order except
// for redelivered dead letters, as the package documentation describes. Each
// endpoint has its own subscription, cursor and dead letters, so a slow or
// failing endpoint does not hold up the others.
type Dispatcher struct {
	vault     *tokenvault.Vault
	endpoints []Endpoint
	opts      Options
	client    *http.Client

	// restartMinBackoff and restartMaxBackoff bound the wait before an
	// endpoint's subscription starts again after a failure. Tests
	// shorten them.
	restartMinBackoff time.Duration
	restartMaxBackoff time.Duration
}

// NewDispatcher returns a Dispatcher that delivers the events of v to
// endpoints. It copies endpoints and opts, so later changes to them have no
// effect. Run checks the endpoints.
func NewDispatcher(v *tokenvault.Vault, endpoints []Endpoint, opts *Options) *Dispatcher {
	d := &Dispatcher{vault: v, restartMinBackoff: defaultRestartMinBackoff, restartMaxBackoff: defaultRestartMaxBackoff}
	for _, e := range endpoints {
		e.Secret = slices.Clone(e.Secret)
		d.endpoints = append(d.endpoints, e)
	}
	if opts != nil {
		d.opts = *opts
	}
	if d.opts.MaxAttempts <= 0 {
		d.opts.MaxAttempts = DefaultMaxAttempts
	}
	// A default never conflicts with the bound the caller set.
	if d.opts.MinBackoff <= 0 {
		d.opts.MinBackoff = DefaultMinBackoff
		if d.opts.MaxBackoff > 0 {
			d.opts.MinBackoff = min(DefaultMinBackoff, d.opts.MaxBackoff)
		}
	}
	if d.opts.MaxBackoff <= 0 {
		d.opts.MaxBackoff = max(DefaultMaxBackoff, d.opts.MinBackoff)
	}
	if d.opts.Timeout <= 0 {
		d.opts.Timeout = DefaultTimeout
	}
	d.client = noRedirectClient(d.opts.Client)
	return d
}

// noRedirectClient returns a copy of c, or a new client if c is nil, that
// never follows redirects.
func noRedirectClient(c *http.Client) *http.Client {
	var client http.Client
	if c != nil {
		client = *c
	} else {
		client.Transport = http.DefaultTransport.(*http.Transport).Clone()
	}
	client.CheckRedirect = func(*http.Request, []*http.Request) error {
		return http.ErrUseLastResponse
	}
	return &client
}

// Run delivers events until ctx is done or the vault is closed, then waits
// for the deliveries in flight to stop. It runs one Vault.Subscribe per
// endpoint, named SubscriberName(endpoint.ID), which keeps the endpoint's
// cursor in the vault, so a later Run resumes after the last acknowledged
// event. A delivery that ctx interrupts counts as not acknowledged, and the
// next Run sends it again.
//
// When the subscription of an endpoint fails, for example because the store
// could not write its cursor, Run calls Options.OnSubscriptionError and
// subscribes that endpoint again after a backoff. After n failures in a row
// the wait is a random time from half to all of 1s·2^(n-1), at most 1
// minute. A subscription that ran for at least a minute before it failed
// counts as the first failure again. The other endpoints go on meanwhile.
// The restarted subscription resumes after the last event whose
// acknowledgement the vault recorded, so the event in flight at the failure
// is sent again.
//
// Run returns ctx.Err() when ctx is done, and an error wrapping
// tokenvault.ErrVaultClosed when the vault is closed. An endpoint that is
// waiting to subscribe again detects the closed vault only when its wait
// ends.
// Run returns at once an error, which names the endpoint by its position,
// for an invalid endpoint. It stops the other endpoints and returns an error
// that wraps tokenvault.ErrSubscriberRunning when another Run, of d or of
// another Dispatcher on the same vault, delivers to an endpoint with the
// same ID, and one that wraps tokenvault.ErrInvalidOption when
// Vault.Subscribe rejects the options. The errors of subscriptions name the
// endpoint's ID. With no endpoints, Run waits for ctx.
func (d *Dispatcher) Run(ctx context.Context) error {
	defer d.client.CloseIdleConnections()

	if d.vault == nil {
		return errors.New("webhook: NewDispatcher was given a nil vault")
	}
	if err := validateEndpoints(d.endpoints); err != nil {
		return fmt.Errorf("webhook: %w", err)
	}

	runCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	errs := make([]error, len(d.endpoints))
	var wg sync.WaitGroup
	for i, e := range d.endpoints {
		wg.Go(func() {
			if err := d.runEndpoint(runCtx, e); err != nil {
				errs[i] = err
				cancel()
			}
		})
	}
	wg.Wait()

	if err := errors.Join(errs...); err != nil {
		return err
	}
	<-ctx.Done()
	return ctx.Err()
}

func (d *Dispatcher) subscribeOptions(e Endpoint) *tokenvault.SubscribeOptions {
	opts := &tokenvault.SubscribeOptions{
		MinBackoff:   d.opts.MinBackoff,
		MaxBackoff:   d.opts.MaxBackoff,
		MaxAttempts:  d.opts.MaxAttempts,
		PollInterval: d.opts.PollInterval,
	}
	if onError := d.opts.OnError; onError != nil {
		opts.OnError = func(event tokenvault.Event, attempt int, err error) {
			onError(Failure{Endpoint: e.ID, Event: event, Attempt: attempt, Dead: attempt >= d.opts.MaxAttempts, Err: err})
		}
	}
	return opts
}

// handler returns the Subscribe handler that POSTs each event to e.
func (d *Dispatcher) handler(e Endpoint) func(context.Context, tokenvault.Event) error {
	return func(ctx context.Context, event tokenvault.Event) error {
		return d.deliver(ctx, e, event)
	}
}

// deliver makes one attempt to POST event to e. It returns nil only for a
// 2xx response.
func (d *Dispatcher) deliver(ctx context.Context, e Endpoint, event tokenvault.Event) error {
	body, err := json.Marshal(NewPayload(event))
	if err != nil {
		return fmt.Errorf("webhook: encode event %s: %w", event.ID, err)
	}

	attemptCtx, cancel := context.WithTimeout(ctx, d.opts.Timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(attemptCtx, http.MethodPost, e.URL, bytes.NewReader(body))
	if err != nil {
		// The error of url.Parse quotes the URL, which may contain a password.
		return fmt.Errorf("webhook: endpoint %s: invalid URL", e.ID)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", userAgent)
	req.Header.Set(EventIDHeader, event.ID)
	// Each attempt is signed when it is sent, so that a retry after a long
	// backoff is still within the receiver's tolerance.
	req.Header.Set(SignatureHeader, Sign(e.Secret, body, time.Now()))

	resp, err := d.client.Do(req)
	if err != nil {
		return d.requestError(ctx, e, err)
	}
	defer resp.Body.Close()
	// A read error here does not change the outcome, which the status
	// code already gave.
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, maxResponseDrain))

	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return &StatusError{Endpoint: e.ID, StatusCode: resp.StatusCode}
	}
	return nil
}

// requestError describes a request that got no response. It drops the
// *url.Error around err, because that quotes the URL, whose path or query
// may contain a credential of the receiver.
func (d *Dispatcher) requestError(ctx context.Context, e Endpoint, err error) error {
	var urlErr *url.Error
	if errors.As(err, &urlErr) {
		err = urlErr.Err
	}

	switch {
	case ctx.Err() != nil:
		return fmt.Errorf("webhook: POST to endpoint %s stopped: %w", e.ID, context.Cause(ctx))
	case errors.Is(err, context.DeadlineExceeded):
		return fmt.Errorf("webhook: POST to endpoint %s timed out after %s: %w", e.ID, d.opts.Timeout, err)
	default:
		return fmt.Errorf("webhook: POST to endpoint %s failed: %w", e.ID, err)
	}
}

// Payload is the JSON body of a webhook request: one tokenvault.Event. It
// never contains a token's value. Receivers decode it with encoding/json.
type Payload struct {
	ID       string    `json:"id"`       // the event's ID, the same in every redelivery: receivers drop repeats by it
	Seq      uint64    `json:"seq"`      // the event's position in the vault's outbox
	Token    string    `json:"token"`    // the token that changed
	Revision uint64    `json:"revision"` // the token's revision after the change
	Type     string    `json:"type"`     // tokenvault.EventType.String, such as "suspended"
	From     string    `json:"from"`     // the state before the change, "" for "created"
	To       string    `json:"to"`       // the state after the change
	Reason   string    `json:"reason"`   // "" if none was given
	Actor    string    `json:"actor"`    // "" if none was given
	Time     time.Time `json:"time"`     // RFC 3339 in UTC
}

// NewPayload returns the payload of event.
func NewPayload(event tokenvault.Event) Payload {
	return Payload{
		ID:       event.ID,
		Seq:      event.Seq,
		Token:    event.Token,
		Revision: event.Revision,
		Type:     event.Type.String(),
		From:     stateName(event.From),
		To:       stateName(event.To),
		Reason:   event.Reason,
		Actor:    event.Actor,
		Time:     event.Time.UTC(),
	}
}

// stateName returns the name of s, or "" for the zero State of a created
// event's From.
func stateName(s tokenvault.State) string {
	if !s.Valid() {
		return ""
	}
	return s.String()
}
