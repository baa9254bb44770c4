package tokenvault

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"
)

// Vault tokenizes values and keeps them, encrypted, in a Store. Its methods
// are safe for concurrent use. Create one with Open (a bbolt file) or New
// (any Store), and release it with Close.
type Vault struct {
	store    Store
	keys     *keyRing
	ring     *KeyRing
	locators *locators
	clock    func() time.Time

	// mu is held shared by every operation and exclusively by Close, so
	// Close waits for operations in flight and later calls see closed.
	mu     sync.RWMutex
	closed bool
	// runlock is mu.RUnlock, bound once in New, because binding it in each
	// call of enter would allocate.
	runlock func()
	// closing is set when Close starts, so that batch calls, which hold mu
	// for their whole run, stop at their next item or chunk instead of
	// keeping Close and every later call waiting.
	closing atomic.Bool

	outbox outboxHub // wakes and stops the running Subscribe calls
}

// Option configures Open and New.
type Option func(*config)

type config struct {
	clock       func() time.Time
	lockTimeout time.Duration
	logger      *slog.Logger
}

// WithClock sets the source of the current time for creation, expiry and
// history times. Tests use it to move time forward; the default is time.Now.
func WithClock(now func() time.Time) Option {
	return func(c *config) { c.clock = now }
}

// WithLockTimeout sets how long Open waits for another process to release the
// database file before it returns ErrLocked. The default is
// DefaultLockTimeout. New ignores it.
func WithLockTimeout(d time.Duration) Option {
	return func(c *config) { c.lockTimeout = d }
}

// WithLogger sets the logger that Open gives its store (BoltOptions.Logger)
// for errors of work that runs in the background, such as a failed merge of
// the fingerprint index, and for a schema upgrade. By default they are
// discarded. New ignores it.
func WithLogger(l *slog.Logger) Option {
	return func(c *config) { c.logger = l }
}

func buildConfig(opts []Option) config {
	c := config{clock: time.Now, lockTimeout: DefaultLockTimeout}
	for _, opt := range opts {
		opt(&c)
	}
	return c
}

// Open opens the bbolt-backed vault at path, creating the file with mode 0600
// if it does not exist, and checks that keys can decrypt what it holds. Only one Vault, in
// one process, can have the file open at a time; another Open fails with
// ErrLocked after the lock timeout.
func Open(path string, keys *KeyRing, opts ...Option) (*Vault, error) {
	cfg := buildConfig(opts)
	store, err := OpenBoltStore(path, &BoltOptions{LockTimeout: cfg.lockTimeout, Logger: cfg.logger})
	if err != nil {
		return nil, err
	}
	v, err := New(store, keys, opts...)
	if err != nil {
		store.Close()
		return nil, err
	}
	return v, nil
}

// New returns a vault over store, which it owns from then on: Vault.Close
// closes it. New fails with ErrKeyMismatch if keys cannot decrypt what the
// store holds, and records the primary key as one that encrypts from now on.
// The options that configure a store, WithLockTimeout and WithLogger, have no
// effect here: give them to the store, as BoltOptions does.
func New(store Store, keys *KeyRing, opts ...Option) (*Vault, error) {
	if store == nil {
		return nil, errors.New("tokenvault: New: store is nil")
	}
	if keys == nil || keys.r == nil {
		return nil, invalid(ErrInvalidKey, "no key ring given")
	}
	cfg := buildConfig(opts)

	locators, err := newLocators(store, keys.r)
	if err != nil {
		return nil, err
	}

	v := &Vault{store: store, keys: keys.r, ring: keys, locators: locators, clock: cfg.clock}
	v.runlock = v.mu.RUnlock
	if err := v.checkKeys(context.Background()); err != nil {
		return nil, err
	}
	return v, nil
}

// Close releases the vault and its store after operations in flight finish.
// It first stops the running Subscribe calls and waits for them to return.
// Running batch calls stop at their next group of values and return
// ErrVaultClosed, keeping the tokens they stored. Every later call, Close
// included, returns ErrVaultClosed.
func (v *Vault) Close() error {
	// Subscribers take mu for each store call, so they stop before Close
	// holds it.
	v.outbox.stop()

	v.closing.Store(true)
	v.mu.Lock()
	defer v.mu.Unlock()
	if v.closed {
		return ErrVaultClosed
	}
	v.closed = true
	if err := v.store.Close(); err != nil {
		return fmt.Errorf("tokenvault: close store: %w", err)
	}
	return nil
}

// String describes the vault without its keys.
func (v *Vault) String() string {
	if v == nil {
		return "Vault(<nil>)"
	}
	return fmt.Sprintf("Vault(%T, %s)", v.store, v.ring)
}

// GoString returns String, for %#v.
func (v *Vault) GoString() string { return v.String() }

// Format prints String for every verb, so that no verb prints the fields.
func (v *Vault) Format(f fmt.State, verb rune) { fmt.Fprint(f, v.String()) }

// LogValue logs String.
func (v *Vault) LogValue() slog.Value { return slog.StringValue(v.String()) }

// Keys returns the vault's key ring.
func (v *Vault) Keys() *KeyRing { return v.ring }

// enter starts an operation; the caller must call done when it ends.
func (v *Vault) enter() (done func(), err error) {
	v.mu.RLock()
	if v.closed {
		v.mu.RUnlock()
		return nil, ErrVaultClosed
	}
	if v.runlock == nil {
		// A zero Vault, not made by New, fails its calls without a panic.
		return v.mu.RUnlock, nil
	}
	return v.runlock, nil
}

// now returns the current time in UTC without a monotonic reading, so that
// times compare equal after a round trip through any store.
func (v *Vault) now() time.Time {
	return v.clock().Round(0).UTC()
}
