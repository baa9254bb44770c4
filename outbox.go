package tokenvault

import (
	"context"
	"fmt"
	"strconv"
	"sync"
	"sync/atomic"
)

// Delivery state of the outbox lives in the store's metadata, under these
// names. NAME is a subscriber name, which never contains "/", so the prefix
// of one subscriber never matches another's. SEQ is an event's Seq as 20
// decimal digits, so that the names of one subscriber sort in Seq order.
//
//	outbox/cursor/NAME         Seq of the last event NAME acknowledged, in decimal
//	outbox/dead/NAME/SEQ       DeadLetter of event SEQ for NAME, as JSON
//	outbox/redeliver/NAME/SEQ  dead letter that Redeliver queued for NAME, as JSON
const (
	metaOutboxCursor    = "outbox/cursor/"
	metaOutboxDead      = "outbox/dead/"
	metaOutboxRedeliver = "outbox/redeliver/"
)

func cursorName(subscriber string) string { return metaOutboxCursor + subscriber }

func deadPrefix(subscriber string) string { return metaOutboxDead + subscriber + "/" }

func redeliverPrefix(subscriber string) string { return metaOutboxRedeliver + subscriber + "/" }

// seqName returns the last element of a dead letter or redelivery name.
func seqName(seq uint64) string { return fmt.Sprintf("%020d", seq) }

// MaxEventsLimit is the most events that one Vault.Events call returns,
// whatever limit the caller gives.
const MaxEventsLimit = 1000

// MaxSubscriberNameSize is the longest subscriber name, in bytes.
const MaxSubscriberNameSize = 64

// Events returns up to limit outbox events after the cursor, for consumers
// who poll: the events whose Seq is greater than after, in Seq order. Start
// with after 0 and pass the Seq of the last event handled. An empty result
// means there are no newer events yet. A limit above MaxEventsLimit is
// reduced to it; a limit below 1 returns an error that wraps
// ErrInvalidOption.
func (v *Vault) Events(ctx context.Context, after uint64, limit int) ([]Event, error) {
	if limit < 1 {
		return nil, invalid(ErrInvalidOption, "events limit %d is not positive", limit)
	}
	limit = min(limit, MaxEventsLimit)

	done, err := v.enter()
	if err != nil {
		return nil, err
	}
	defer done()
	return v.store.Events(ctx, after, limit)
}

// checkSubscriberName returns an error that wraps ErrInvalidOption unless
// name is 1 to MaxSubscriberNameSize bytes of [A-Za-z0-9._:-]. The set
// leaves out "/", which separates the parts of the metadata names.
func checkSubscriberName(name string) error {
	if len(name) == 0 || len(name) > MaxSubscriberNameSize {
		return invalid(ErrInvalidOption, "subscriber name is %d bytes, want 1 to %d", len(name), MaxSubscriberNameSize)
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		ok := 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' ||
			c == '.' || c == '_' || c == ':' || c == '-'
		if !ok {
			return invalid(ErrInvalidOption, "subscriber name %q has an invalid character at byte %d: use only A-Z, a-z, 0-9 and . _ : -", name, i)
		}
	}
	return nil
}

// outboxHub wakes the vault's subscribers after the vault's own writes and
// keeps track of the running Subscribe calls, so that Close can stop them.
// Its zero value is ready to use.
type outboxHub struct {
	// wake is closed by broadcast and reset to nil. It stays nil while no
	// subscriber waits, so that a write then costs one atomic load.
	wake atomic.Pointer[chan struct{}]

	mu       sync.Mutex
	stopping chan struct{} // closed by stop; made on first use
	stopped  bool
	subs     map[string]*subscription // running Subscribe calls by name
	running  sync.WaitGroup           // one count per entry of subs

	// letters is held while Redeliver, or a subscriber that finishes a
	// redelivery, moves an entry between the dead-letter list and the
	// redelivery queue, so that neither reads the other's half-done move.
	letters sync.Mutex
}

// subscription is one running Subscribe call.
type subscription struct {
	// redeliver is set by Redeliver, so that the subscriber looks at its
	// redelivery queue after the event it is delivering.
	redeliver atomic.Bool
}

// notifyWritten wakes the vault's waiting subscribers. Every method that
// commits a change to the store calls it afterwards, so that subscribers of
// this vault see the change without waiting for their next poll.
func (v *Vault) notifyWritten() {
	v.outbox.broadcast()
}

func (h *outboxHub) broadcast() {
	if h.wake.Load() == nil {
		return
	}
	if c := h.wake.Swap(nil); c != nil {
		close(*c)
	}
}

// wakeChannel returns a channel that the next broadcast closes. A subscriber
// takes it before it reads the outbox, so that a write that commits after
// the read still wakes it.
func (h *outboxHub) wakeChannel() <-chan struct{} {
	for {
		if c := h.wake.Load(); c != nil {
			return *c
		}
		c := make(chan struct{})
		if h.wake.CompareAndSwap(nil, &c) {
			return c
		}
	}
}

// register records a Subscribe call under name. It returns the channel that
// stop closes, ErrVaultClosed once stop has started, and an error wrapping
// ErrSubscriberRunning if a call with the same name is running.
func (h *outboxHub) register(name string) (*subscription, <-chan struct{}, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.stopped {
		return nil, nil, ErrVaultClosed
	}
	if h.subs[name] != nil {
		return nil, nil, fmt.Errorf("%w: subscriber %q", ErrSubscriberRunning, name)
	}

	if h.subs == nil {
		h.subs = make(map[string]*subscription)
	}
	if h.stopping == nil {
		h.stopping = make(chan struct{})
	}
	sub := &subscription{}
	h.subs[name] = sub
	h.running.Add(1)
	return sub, h.stopping, nil
}

func (h *outboxHub) unregister(name string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	delete(h.subs, name)
	h.running.Done()
}

// requestRedelivery flags the running subscriber name, if any, so that it
// reads its redelivery queue after its current event, and wakes it.
func (h *outboxHub) requestRedelivery(name string) {
	h.mu.Lock()
	sub := h.subs[name]
	h.mu.Unlock()
	if sub != nil {
		sub.redeliver.Store(true)
	}
	h.broadcast()
}

// stop cancels every running Subscribe call, rejects new ones, and waits
// until they have returned.
func (h *outboxHub) stop() {
	h.mu.Lock()
	if !h.stopped {
		h.stopped = true
		if h.stopping == nil {
			h.stopping = make(chan struct{})
		}
		close(h.stopping)
	}
	h.mu.Unlock()

	h.running.Wait()
}

// loadCursor returns the Seq of the last event that subscriber name
// acknowledged, 0 if it never acknowledged one.
func (v *Vault) loadCursor(ctx context.Context, name string) (uint64, error) {
	key := cursorName(name)
	entries, err := v.storeMetadata(ctx, key)
	if err != nil {
		return 0, err
	}
	value, ok := entries[key]
	if !ok {
		return 0, nil
	}
	seq, err := strconv.ParseUint(string(value), 10, 64)
	if err != nil {
		return 0, fmt.Errorf("tokenvault: metadata entry %s is not a decimal number: %w", key, ErrIntegrity)
	}
	return seq, nil
}

func (v *Vault) saveCursor(ctx context.Context, name string, seq uint64) error {
	return v.storeSetMetadata(ctx, cursorName(name), strconv.AppendUint(nil, seq, 10))
}

// storeMetadata and storeSetMetadata call the store as one vault operation
// each, so that a subscriber holds the vault only for the call and never
// while it waits.
func (v *Vault) storeMetadata(ctx context.Context, prefix string) (map[string][]byte, error) {
	done, err := v.enter()
	if err != nil {
		return nil, err
	}
	defer done()
	return v.store.Metadata(ctx, prefix)
}

func (v *Vault) storeSetMetadata(ctx context.Context, name string, value []byte) error {
	done, err := v.enter()
	if err != nil {
		return err
	}
	defer done()
	return v.store.SetMetadata(ctx, name, value)
}
