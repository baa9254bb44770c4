package webhook

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tokenvault/tokenvault"
)

// errInjectedWrite is the error of a write that a cursorFailStore fails.
var errInjectedWrite = errors.New("injected cursor write failure")

// cursorFailStore is a real MemoryStore whose SetMetadata fails for the
// cursor of one subscriber, as a full disk or a lost database connection
// would: after skip writes of that cursor succeed, the next failures writes
// fail.
type cursorFailStore struct {
	*tokenvault.MemoryStore
	cursor string // the metadata name of the cursor

	mu       sync.Mutex
	skip     int
	failures int
	failed   int // writes failed so far
}

// newCursorFailStore returns a cursorFailStore for the cursor of endpoint id.
// The vault stores a subscriber's cursor under "outbox/cursor/" and the
// subscriber name.
func newCursorFailStore(id string) *cursorFailStore {
	return &cursorFailStore{MemoryStore: tokenvault.NewMemoryStore(), cursor: "outbox/cursor/" + SubscriberName(id)}
}

// failCursorWrites makes the cursor writes after the next skip fail, failures
// times in a row.
func (s *cursorFailStore) failCursorWrites(skip, failures int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.skip, s.failures = skip, failures
}

func (s *cursorFailStore) failedWrites() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.failed
}

func (s *cursorFailStore) SetMetadata(ctx context.Context, name string, value []byte) error {
	if name == s.cursor && s.injectFailure() {
		return errInjectedWrite
	}
	return s.MemoryStore.SetMetadata(ctx, name, value)
}

func (s *cursorFailStore) injectFailure() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.skip > 0 {
		s.skip--
		return false
	}
	if s.failures > 0 {
		s.failures--
		s.failed++
		return true
	}
	return false
}

// newStoreVault returns a vault over store, closed when the test ends.
func newStoreVault(t *testing.T, store tokenvault.Store) *tokenvault.Vault {
	t.Helper()
	v, err := tokenvault.New(store, testKeys())
	if err != nil {
		t.Fatalf("New err = %v", err)
	}
	t.Cleanup(func() {
		if err := v.Close(); err != nil && !errors.Is(err, tokenvault.ErrVaultClosed) {
			t.Errorf("close vault: %v", err)
		}
	})
	return v
}

// runningDispatcher is a Run call of a test.
type runningDispatcher struct {
	cancel context.CancelFunc
	done   chan struct{} // closed when Run has returned
	err    error         // what Run returned, set before done is closed
}

// startRun starts d.Run, which the test's cleanup stops.
func startRun(t *testing.T, d *Dispatcher) *runningDispatcher {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	r := &runningDispatcher{cancel: cancel, done: make(chan struct{})}
	go func() {
		r.err = d.Run(ctx)
		close(r.done)
	}()
	t.Cleanup(func() { r.stop(t) })
	return r
}

// returned reports whether Run has returned.
func (r *runningDispatcher) returned() bool {
	select {
	case <-r.done:
		return true
	default:
		return false
	}
}

// wait returns what Run returned, and fails the test if it does not return
// within waitTimeout.
func (r *runningDispatcher) wait(t *testing.T) error {
	t.Helper()
	select {
	case <-r.done:
		return r.err
	case <-time.After(waitTimeout):
		t.Fatalf("Run did not return within %v", waitTimeout)
		return nil
	}
}

// stop cancels the context of Run and returns what Run returned.
func (r *runningDispatcher) stop(t *testing.T) error {
	t.Helper()
	r.cancel()
	return r.wait(t)
}

// tokenizeValues tokenizes n values and returns the vault's events.
func tokenizeValues(t *testing.T, v *tokenvault.Vault, n int) []tokenvault.Event {
	t.Helper()
	for i := range n {
		if _, err := v.Tokenize(context.Background(), []byte{'r', byte('0' + i)}); err != nil {
			t.Fatalf("Tokenize err = %v", err)
		}
	}
	return allEvents(t, v)
}

// TestRunRestartsAfterCursorWriteFails fails one cursor write of one of two
// endpoints, and checks that Run keeps running, that the endpoint delivers
// every event after the failure, and that the other endpoint never stopped.
func TestRunRestartsAfterCursorWriteFails(t *testing.T) {
	store := newCursorFailStore("billing")
	store.failCursorWrites(1, 1) // the cursor write after the second event
	v := newStoreVault(t, store)
	billing := newTestReceiver(t, always(http.StatusOK))
	ledger := newTestReceiver(t, always(http.StatusOK))
	var restarts subscriptionErrors
	opts := fastOptions()
	opts.OnSubscriptionError = restarts.record
	d := NewDispatcher(v, []Endpoint{billing.endpoint("billing"), ledger.endpoint("ledger")}, opts)
	d.restartMinBackoff, d.restartMaxBackoff = 5*time.Millisecond, 20*time.Millisecond
	run := startRun(t, d)

	events := tokenizeValues(t, v, 5)
	waitFor(t, "every event at billing", func() bool { return len(acknowledgedIDs(billing.acknowledged())) == len(events) })
	waitFor(t, "every event at ledger", func() bool { return len(acknowledgedIDs(ledger.acknowledged())) == len(events) })

	if run.returned() {
		t.Fatalf("Run returned %v after one failed cursor write, want it to keep running", run.err)
	}
	if n := store.failedWrites(); n != 1 {
		t.Errorf("the store failed %d cursor writes, want 1", n)
	}
	// The event whose cursor write failed was acknowledged but not recorded
	// as such, so the restarted subscription sends it again.
	if n := len(billing.acknowledged()); n != len(events)+1 {
		t.Errorf("billing acknowledged %d requests for %d events, want one repeat of the event whose cursor write failed", n, len(events))
	}
	if n := len(ledger.acknowledged()); n != len(events) {
		t.Errorf("ledger acknowledged %d requests for %d events, want one each: its subscription must not restart", n, len(events))
	}

	got := restarts.all()
	if len(got) != 1 {
		t.Fatalf("OnSubscriptionError was called %d times, want 1", len(got))
	}
	if got[0].Endpoint != "billing" || got[0].Failures != 1 || !errors.Is(got[0].Err, errInjectedWrite) {
		t.Errorf("OnSubscriptionError(%+v), want endpoint billing, failure 1 and the store's error", got[0])
	}
	if w := got[0].Wait; w < 2500*time.Microsecond || w > 5*time.Millisecond {
		t.Errorf("wait before the first restart = %v, want 2.5ms to 5ms: half to all of the minimum backoff", w)
	}
	if strings.Contains(got[0].Err.Error(), string(endpointSecret)) {
		t.Errorf("OnSubscriptionError error %q contains the endpoint's secret", got[0].Err)
	}

	if err := run.stop(t); !errors.Is(err, context.Canceled) {
		t.Errorf("Run after cancel err = %v, want context.Canceled", err)
	}
}

// TestRunRestartBackoffGrows fails the first cursor write three times in a
// row and checks that each wait before a restart is longer than the last
// allows, and that the event is delivered in the end.
func TestRunRestartBackoffGrows(t *testing.T) {
	const minBackoff, maxBackoff = 4 * time.Millisecond, 12 * time.Millisecond
	store := newCursorFailStore("billing")
	store.failCursorWrites(0, 3)
	v := newStoreVault(t, store)
	billing := newTestReceiver(t, always(http.StatusOK))
	var restarts subscriptionErrors
	opts := fastOptions()
	opts.OnSubscriptionError = restarts.record
	d := NewDispatcher(v, []Endpoint{billing.endpoint("billing")}, opts)
	d.restartMinBackoff, d.restartMaxBackoff = minBackoff, maxBackoff
	startRun(t, d)

	events := tokenizeValues(t, v, 1)
	waitFor(t, "the event to be acknowledged and recorded", func() bool {
		return store.failedWrites() == 3 && len(billing.acknowledged()) == 4
	})

	got := restarts.all()
	if len(got) != 3 {
		t.Fatalf("OnSubscriptionError was called %d times, want 3", len(got))
	}
	caps := []time.Duration{minBackoff, 2 * minBackoff, maxBackoff}
	for i, r := range got {
		if r.Failures != i+1 {
			t.Errorf("restart %d: Failures = %d, want %d", i+1, r.Failures, i+1)
		}
		if r.Wait < caps[i]/2 || r.Wait > caps[i] {
			t.Errorf("restart %d: Wait = %v, want %v to %v", i+1, r.Wait, caps[i]/2, caps[i])
		}
	}
	for _, r := range billing.acknowledged() {
		if r.payload.ID != events[0].ID {
			t.Errorf("billing got event %s, want only %s", r.payload.ID, events[0].ID)
		}
	}
}

// TestRunRestartBackoffResets checks that a subscription that ran for at
// least the maximum backoff before it failed starts the count again.
func TestRunRestartBackoffResets(t *testing.T) {
	const minBackoff, maxBackoff = 2 * time.Millisecond, 20 * time.Millisecond
	store := newCursorFailStore("billing")
	store.failCursorWrites(0, 2)
	v := newStoreVault(t, store)
	billing := newTestReceiver(t, always(http.StatusOK))
	var restarts subscriptionErrors
	opts := fastOptions()
	opts.OnSubscriptionError = restarts.record
	d := NewDispatcher(v, []Endpoint{billing.endpoint("billing")}, opts)
	d.restartMinBackoff, d.restartMaxBackoff = minBackoff, maxBackoff
	startRun(t, d)

	tokenizeValues(t, v, 1)
	waitFor(t, "the first event", func() bool { return store.failedWrites() == 2 && len(billing.acknowledged()) == 3 })
	// The subscription now runs for longer than maxBackoff before the next
	// failure.
	time.Sleep(5 * maxBackoff)
	store.failCursorWrites(0, 1)
	events := tokenizeValues(t, v, 1)
	waitFor(t, "the second event", func() bool { return len(acknowledgedIDs(billing.acknowledged())) == len(events) })

	got := restarts.all()
	if len(got) != 3 {
		t.Fatalf("OnSubscriptionError was called %d times, want 3", len(got))
	}
	if got[0].Failures != 1 || got[1].Failures != 2 || got[2].Failures != 1 {
		t.Errorf("Failures of the restarts = %d, %d, %d, want 1, 2, then 1 after a long run", got[0].Failures, got[1].Failures, got[2].Failures)
	}
}

// TestRunStopsWhenVaultClosesDuringBackoff closes the vault while an
// endpoint waits to restart, and checks that Run returns ErrVaultClosed.
func TestRunStopsWhenVaultClosesDuringBackoff(t *testing.T) {
	store := newCursorFailStore("billing")
	store.failCursorWrites(0, 1000)
	v := newStoreVault(t, store)
	billing := newTestReceiver(t, always(http.StatusOK))
	var restarts subscriptionErrors
	opts := fastOptions()
	opts.OnSubscriptionError = restarts.record
	d := NewDispatcher(v, []Endpoint{billing.endpoint("billing")}, opts)
	d.restartMinBackoff, d.restartMaxBackoff = 20*time.Millisecond, 20*time.Millisecond
	run := startRun(t, d)

	tokenizeValues(t, v, 1)
	waitFor(t, "a restart", func() bool { return len(restarts.all()) > 0 })
	if err := v.Close(); err != nil {
		t.Fatalf("Close err = %v", err)
	}
	if err := run.wait(t); !errors.Is(err, tokenvault.ErrVaultClosed) || !strings.Contains(err.Error(), "billing") {
		t.Errorf("Run after Close err = %v, want ErrVaultClosed naming the endpoint", err)
	}
}

func TestRestartBackoffBounds(t *testing.T) {
	for failures := 1; failures <= 70; failures++ {
		limit := min(defaultRestartMinBackoff<<min(failures-1, 20), defaultRestartMaxBackoff)
		for range 20 {
			wait := restartBackoff(defaultRestartMinBackoff, defaultRestartMaxBackoff, failures)
			if wait < limit/2 || wait > limit {
				t.Fatalf("restartBackoff(%v, %v, %d) = %v, want %v to %v",
					defaultRestartMinBackoff, defaultRestartMaxBackoff, failures, wait, limit/2, limit)
			}
		}
	}
}

// subscriptionErrors collects the OnSubscriptionError calls of a Dispatcher.
type subscriptionErrors struct {
	mu   sync.Mutex
	list []SubscriptionError
}

func (s *subscriptionErrors) record(e SubscriptionError) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.list = append(s.list, e)
}

func (s *subscriptionErrors) all() []SubscriptionError {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]SubscriptionError(nil), s.list...)
}
