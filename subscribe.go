package tokenvault

import (
	"context"
	"math/rand/v2"
	"time"
)

// Defaults of SubscribeOptions.
const (
	defaultMinBackoff   = 100 * time.Millisecond
	defaultMaxBackoff   = time.Minute
	defaultMaxAttempts  = 10
	defaultPollInterval = time.Second
)

// subscribeBatch is the number of events a subscriber reads at a time.
const subscribeBatch = 256

// SubscribeOptions configures Subscribe. A nil *SubscribeOptions means
// defaults.
type SubscribeOptions struct {
	// MinBackoff and MaxBackoff bound the wait between two attempts at one
	// event. After failed attempt n the subscriber waits a random time from
	// 0 to MinBackoff·2^(n-1), at most MaxBackoff (exponential backoff with
	// full jitter). Zero means 100 ms and 1 minute.
	MinBackoff, MaxBackoff time.Duration

	// MaxAttempts is the number of attempts at one event before it moves to
	// the dead-letter list; zero means 10. Attempts are counted in memory,
	// so the event in flight gets MaxAttempts again after a restart.
	MaxAttempts int

	// PollInterval is how often a waiting subscriber reads the outbox for
	// events written by other processes, or by other vaults over the same
	// store. Writes through this vault wake it at once. Zero means 1 second.
	PollInterval time.Duration

	// OnError, if set, is called after each failed attempt with the event,
	// the attempt number from 1 and the handler's error, for logging. It
	// runs on the goroutine of Subscribe, between the attempts.
	OnError func(ev Event, attempt int, err error)

	// jitter returns a random duration from 0 to max. Nil means a uniform
	// choice; tests set it to make the waits predictable.
	jitter func(max time.Duration) time.Duration
}

// Subscribe delivers every outbox event after the subscriber's stored cursor
// to handler, in Seq order, which is commit order and so also the order of
// each token's changes, with one exception: a dead letter that Redeliver
// puts back arrives after the events delivered since it was set aside, so
// handlers that need order keep the highest Revision per token and ignore
// older ones. It calls handler on the calling goroutine, one event at a
// time. An event is acknowledged when handler returns nil.
//
// A failing event is retried with backoff, as SubscribeOptions describes.
// After MaxAttempts failures it moves to the dead-letter list (DeadLetters,
// Redeliver) and delivery continues with the next event. An attempt that
// fails after ctx is done does not count: the event stays unacknowledged.
//
// The cursor is the Seq of the last event acknowledged or set aside. It is
// stored in the store's metadata as "outbox/cursor/NAME" after each event.
// A new Subscribe call with the same name, in this process or after a
// restart, resumes after it. Delivery is at least once: the event in flight
// when a process stops is delivered again. Receivers drop duplicates by
// Event.ID. Each event costs one store write for the cursor, which the bbolt
// store syncs to disk.
//
// Subscribe blocks until ctx is done and then returns ctx.Err(). It returns
// ErrVaultClosed when Close stops it. Close cancels the context that handler
// received and waits for Subscribe to return, so handler must not call
// Close. Subscribe returns an error wrapping ErrSubscriberRunning while
// another Subscribe call with the same name runs in this vault. It returns
// an error wrapping ErrInvalidOption for invalid options or a name that is
// not 1 to MaxSubscriberNameSize bytes of [A-Za-z0-9._:-]. It returns the
// store's error if the store fails.
//
// NOTE: only Subscribe calls in one vault exclude each other. Two processes
// that share a store and subscribe under the same name both deliver every
// event.
func (v *Vault) Subscribe(ctx context.Context, name string, handler func(context.Context, Event) error, opts *SubscribeOptions) error {
	if err := checkSubscriberName(name); err != nil {
		return err
	}
	if handler == nil {
		return invalid(ErrInvalidOption, "Subscribe handler is nil")
	}
	o, err := subscribeDefaults(opts)
	if err != nil {
		return err
	}

	sub, stopping, err := v.outbox.register(name)
	if err != nil {
		return err
	}
	defer v.outbox.unregister(name)

	runCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	go func() {
		select {
		case <-stopping:
			cancel()
		case <-runCtx.Done():
		}
	}()

	s := &subscriber{v: v, name: name, handler: handler, opts: o, sub: sub}
	err = s.run(runCtx)
	if ctx.Err() != nil {
		return ctx.Err()
	}
	select {
	case <-stopping:
		return ErrVaultClosed
	default:
		return err
	}
}

func subscribeDefaults(opts *SubscribeOptions) (SubscribeOptions, error) {
	var o SubscribeOptions
	if opts != nil {
		o = *opts
	}
	switch {
	case o.MinBackoff < 0:
		return o, invalid(ErrInvalidOption, "MinBackoff %s is negative", o.MinBackoff)
	case o.MaxBackoff < 0:
		return o, invalid(ErrInvalidOption, "MaxBackoff %s is negative", o.MaxBackoff)
	case o.MaxAttempts < 0:
		return o, invalid(ErrInvalidOption, "MaxAttempts %d is negative", o.MaxAttempts)
	case o.PollInterval < 0:
		return o, invalid(ErrInvalidOption, "PollInterval %s is negative", o.PollInterval)
	}

	if o.MinBackoff == 0 {
		o.MinBackoff = defaultMinBackoff
	}
	if o.MaxBackoff == 0 {
		o.MaxBackoff = defaultMaxBackoff
	}
	if o.MaxAttempts == 0 {
		o.MaxAttempts = defaultMaxAttempts
	}
	if o.PollInterval == 0 {
		o.PollInterval = defaultPollInterval
	}
	if o.MinBackoff > o.MaxBackoff {
		return o, invalid(ErrInvalidOption, "MinBackoff %s is more than MaxBackoff %s", o.MinBackoff, o.MaxBackoff)
	}
	if o.jitter == nil {
		o.jitter = uniformJitter
	}
	return o, nil
}

func uniformJitter(max time.Duration) time.Duration {
	if max <= 0 {
		return 0
	}
	return time.Duration(rand.Uint64N(uint64(max) + 1))
}

// backoffCap returns the longest wait after failed attempt n: minBackoff
// doubled n-1 times, at most maxBackoff.
func backoffCap(minBackoff, maxBackoff time.Duration, attempt int) time.Duration {
	d := minBackoff
	for i := 1; i < attempt; i++ {
		if d > maxBackoff/2 {
			return maxBackoff
		}
		d *= 2
	}
	return min(d, maxBackoff)
}

// subscriber is the state of one Subscribe call.
type subscriber struct {
	v       *Vault
	name    string
	handler func(context.Context, Event) error
	opts    SubscribeOptions
	sub     *subscription
	cursor  uint64 // Seq of the last event acknowledged or set aside
}

// run delivers events until ctx is done or the store fails.
func (s *subscriber) run(ctx context.Context) error {
	cursor, err := s.v.loadCursor(ctx, s.name)
	if err != nil {
		return err
	}
	s.cursor = cursor

	for {
		wake := s.v.outbox.wakeChannel()
		s.sub.redeliver.Store(false)
		if err := s.redeliverQueued(ctx); err != nil {
			return err
		}

		events, err := s.v.Events(ctx, s.cursor, subscribeBatch)
		if err != nil {
			return err
		}
		more, err := s.deliverBatch(ctx, events)
		if err != nil {
			return err
		}
		if more {
			continue
		}

		if err := s.wait(ctx, wake); err != nil {
			return err
		}
	}
}

// deliverBatch delivers events and moves the cursor past each. It stops
// early when Redeliver queues an event. It reports whether the outbox may
// hold more events, or Redeliver queued one.
func (s *subscriber) deliverBatch(ctx context.Context, events []Event) (more bool, err error) {
	// Bookkeeping after a finished delivery is written even if ctx ends
	// meanwhile, so that an acknowledged event is not delivered again.
	bookkeeping := context.WithoutCancel(ctx)

	for _, ev := range events {
		if err := ctx.Err(); err != nil {
			return false, err
		}
		if s.sub.redeliver.Load() {
			return true, nil
		}
		letter, err := s.deliver(ctx, ev)
		if err != nil {
			return false, err
		}

		// The dead letter is stored before the cursor passes the event, so
		// that a crash in between delivers the event again rather than
		// losing it.
		if letter != nil {
			if err := s.v.addDeadLetter(bookkeeping, s.name, letter); err != nil {
				return false, err
			}
		}
		if err := s.v.saveCursor(bookkeeping, s.name, ev.Seq); err != nil {
			return false, err
		}
		s.cursor = ev.Seq
	}
	return len(events) == subscribeBatch, nil
}

// deliver calls the handler until it acknowledges ev, returning nil, or fails
// MaxAttempts times, returning the dead letter. It returns an error only
// when ctx is done.
func (s *subscriber) deliver(ctx context.Context, ev Event) (*DeadLetter, error) {
	for attempt := 1; ; attempt++ {
		err := s.handler(ctx, ev)
		if err == nil {
			return nil, nil
		}
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}

		if s.opts.OnError != nil {
			s.opts.OnError(ev, attempt, err)
		}
		if attempt >= s.opts.MaxAttempts {
			return &DeadLetter{Event: ev, Attempts: attempt, LastError: lastErrorText(err), Time: s.v.now()}, nil
		}

		wait := s.opts.jitter(backoffCap(s.opts.MinBackoff, s.opts.MaxBackoff, attempt))
		if err := sleepContext(ctx, wait); err != nil {
			return nil, err
		}
	}
}

// redeliverQueued delivers the events that Redeliver queued, oldest Seq
// first, and removes them from the queue. An event that fails MaxAttempts
// times again goes back to the dead-letter list.
func (s *subscriber) redeliverQueued(ctx context.Context) error {
	queued, err := s.v.readLetters(ctx, redeliverPrefix(s.name))
	if err != nil {
		return err
	}

	bookkeeping := context.WithoutCancel(ctx)
	for _, q := range queued {
		if err := ctx.Err(); err != nil {
			return err
		}
		letter, err := s.deliver(ctx, q.Event)
		if err != nil {
			return err
		}
		if err := s.finishRedelivery(bookkeeping, q.Event.Seq, letter); err != nil {
			return err
		}
	}
	return nil
}

// finishRedelivery removes event seq from the redelivery queue. Before that,
// it stores letter when the event failed again, or, when it was delivered,
// deletes the dead letter that a Redeliver interrupted by a crash may have
// left.
func (s *subscriber) finishRedelivery(ctx context.Context, seq uint64, letter *DeadLetter) error {
	s.v.outbox.letters.Lock()
	defer s.v.outbox.letters.Unlock()

	var err error
	if letter != nil {
		err = s.v.addDeadLetter(ctx, s.name, letter)
	} else {
		err = s.v.storeSetMetadata(ctx, deadPrefix(s.name)+seqName(seq), nil)
	}
	if err != nil {
		return err
	}
	return s.v.storeSetMetadata(ctx, redeliverPrefix(s.name)+seqName(seq), nil)
}

// wait returns when the vault writes, Redeliver queues an event, the poll
// interval passes, or ctx is done.
func (s *subscriber) wait(ctx context.Context, wake <-chan struct{}) error {
	timer := time.NewTimer(s.opts.PollInterval)
	defer timer.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-wake:
	case <-timer.C:
	}
	return nil
}

func sleepContext(ctx context.Context, d time.Duration) error {
	timer := time.NewTimer(d)
	defer timer.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-timer.C:
		return nil
	}
}
