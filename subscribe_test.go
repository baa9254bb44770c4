package tokenvault

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// receiveTimeout bounds every wait for a delivery, so that a lost event fails
// the test instead of hanging it.
const receiveTimeout = 5 * time.Second

// fastRetries are options with backoffs short enough for tests.
func fastRetries() *SubscribeOptions {
	return &SubscribeOptions{MinBackoff: time.Millisecond, MaxBackoff: 2 * time.Millisecond, PollInterval: 50 * time.Millisecond}
}

// startSubscribe runs Subscribe on its own goroutine. stop cancels its
// context and returns what Subscribe returned; the test's cleanup calls it
// too, before the vault closes.
func startSubscribe(t *testing.T, v *Vault, name string, handler func(context.Context, Event) error, opts *SubscribeOptions) (stop func() error) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	result := make(chan error, 1)
	go func() { result <- v.Subscribe(ctx, name, handler, opts) }()

	var once sync.Once
	var err error
	stop = func() error {
		once.Do(func() {
			cancel()
			select {
			case err = <-result:
			case <-time.After(receiveTimeout):
				err = fmt.Errorf("Subscribe(%q) did not return within %s after its context was canceled", name, receiveTimeout)
			}
		})
		return err
	}
	t.Cleanup(func() { stop() })
	return stop
}

// channelHandler returns a handler that acknowledges every event after
// sending it to the returned channel.
func channelHandler() (func(context.Context, Event) error, chan Event) {
	got := make(chan Event, 10000)
	return func(_ context.Context, ev Event) error {
		got <- ev
		return nil
	}, got
}

// receive returns the next n events from got, and fails the test if they do
// not arrive within receiveTimeout.
func receive(t *testing.T, got <-chan Event, n int) []Event {
	t.Helper()
	events := make([]Event, 0, n)
	deadline := time.After(receiveTimeout)
	for len(events) < n {
		select {
		case ev := <-got:
			events = append(events, ev)
		case <-deadline:
			t.Fatalf("received %d events within %s, want %d; Seq received: %v", len(events), receiveTimeout, n, seqs(events))
		}
	}
	return events
}

// wantNoMore fails the test if got delivers an event within wait.
func wantNoMore(t *testing.T, got <-chan Event, wait time.Duration) {
	t.Helper()
	select {
	case ev := <-got:
		t.Errorf("received event %d (%s), want no more events", ev.Seq, ev.ID)
	case <-time.After(wait):
	}
}

func seqs(events []Event) []uint64 {
	s := make([]uint64, len(events))
	for i, ev := range events {
		s[i] = ev.Seq
	}
	return s
}

// allVaultEvents pages through the outbox with Vault.Events.
func allVaultEvents(t *testing.T, v *Vault) []Event {
	t.Helper()
	var all []Event
	for {
		after := uint64(0)
		if len(all) > 0 {
			after = all[len(all)-1].Seq
		}
		events, err := v.Events(context.Background(), after, 100)
		if err != nil {
			t.Fatalf("Events(%d, 100) err = %v, want nil", after, err)
		}
		if len(events) == 0 {
			return all
		}
		all = append(all, events...)
	}
}

// writeChanges tokenizes n values and suspends, activates and closes some of
// them, and returns the number of events written.
func writeChanges(t *testing.T, v *Vault, n int) int {
	t.Helper()
	ctx := context.Background()
	events := 0
	for i := range n {
		token, err := v.Tokenize(ctx, fmt.Appendf(nil, "value %d", i))
		if err != nil {
			t.Fatalf("Tokenize err = %v", err)
		}
		events++
		switch i % 3 {
		case 1:
			if err := v.SuspendToken(ctx, token); err != nil {
				t.Fatalf("SuspendToken(%q) err = %v", token, err)
			}
			if err := v.ActivateToken(ctx, token); err != nil {
				t.Fatalf("ActivateToken(%q) err = %v", token, err)
			}
			events += 2
		case 2:
			if err := v.CloseToken(ctx, token); err != nil {
				t.Fatalf("CloseToken(%q) err = %v", token, err)
			}
			events++
		}
	}
	return events
}

// wantSameEvents fails the test unless got are the outbox events of want,
// in the same order.
func wantSameEvents(t *testing.T, want, got []Event) {
	t.Helper()
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("delivered events mismatch the outbox (-want +got):\n%s", diff)
	}
}

func TestSubscribeDeliversInOrder(t *testing.T) {
	forEachStore(t, func(t *testing.T, v *Vault, s Store, clock *testClock) {
		before := writeChanges(t, v, 6)
		handler, got := channelHandler()
		stop := startSubscribe(t, v, "orders", handler, fastRetries())
		delivered := receive(t, got, before)

		after := writeChanges(t, v, 6)
		delivered = append(delivered, receive(t, got, after)...)
		wantNoMore(t, got, 100*time.Millisecond)

		want := allVaultEvents(t, v)
		if len(want) != before+after {
			t.Fatalf("outbox has %d events, want %d", len(want), before+after)
		}
		wantSameEvents(t, want, delivered)
		for i, ev := range delivered {
			if ev.Seq != uint64(i+1) {
				t.Fatalf("delivery %d has Seq %d, want %d", i, ev.Seq, i+1)
			}
		}
		if err := stop(); !errors.Is(err, context.Canceled) {
			t.Errorf("Subscribe after cancel err = %v, want context.Canceled", err)
		}
	})
}

func TestSubscribeRetriesWithBackoff(t *testing.T) {
	forEachStore(t, func(t *testing.T, v *Vault, s Store, clock *testClock) {
		const failures = 4
		writeChanges(t, v, 3) // events 1 to 3 and more

		var mu sync.Mutex
		var attemptTimes []time.Time
		var onError []int
		errFailing := errors.New("receiver unavailable")
		handler, got := channelHandler()
		opts := &SubscribeOptions{
			MinBackoff:  10 * time.Millisecond,
			MaxBackoff:  25 * time.Millisecond,
			MaxAttempts: failures + 1,
			OnError: func(ev Event, attempt int, err error) {
				mu.Lock()
				defer mu.Unlock()
				if ev.Seq != 2 || !errors.Is(err, errFailing) {
					t.Errorf("OnError(event %d, %d, %v), want event 2 and the handler's error", ev.Seq, attempt, err)
				}
				onError = append(onError, attempt)
			},
			// The longest wait, so that each wait is predictable.
			jitter: func(max time.Duration) time.Duration { return max },
		}
		startSubscribe(t, v, "retry", func(ctx context.Context, ev Event) error {
			if ev.Seq == 2 {
				mu.Lock()
				attemptTimes = append(attemptTimes, time.Now())
				n := len(attemptTimes)
				mu.Unlock()
				if n <= failures {
					return errFailing
				}
			}
			return handler(ctx, ev)
		}, opts)

		delivered := receive(t, got, 3)
		if !slices.Equal(seqs(delivered), []uint64{1, 2, 3}) {
			t.Errorf("delivered Seq %v, want [1 2 3]: a retried event keeps its place", seqs(delivered))
		}

		mu.Lock()
		defer mu.Unlock()
		if !slices.Equal(onError, []int{1, 2, 3, 4}) {
			t.Errorf("OnError attempts = %v, want [1 2 3 4]", onError)
		}
		if len(attemptTimes) != failures+1 {
			t.Fatalf("handler saw event 2 %d times, want %d", len(attemptTimes), failures+1)
		}
		// MinBackoff doubles after each failure up to MaxBackoff.
		wantWaits := []time.Duration{10 * time.Millisecond, 20 * time.Millisecond, 25 * time.Millisecond, 25 * time.Millisecond}
		for i, want := range wantWaits {
			gap := attemptTimes[i+1].Sub(attemptTimes[i])
			if gap < want || gap > want+time.Second {
				t.Errorf("wait after attempt %d = %v, want %v (and less than a second more)", i+1, gap, want)
			}
		}
		letters, err := v.DeadLetters(context.Background(), "retry")
		if err != nil || len(letters) != 0 {
			t.Errorf("DeadLetters = %d letters, err %v, want none: the event succeeded within MaxAttempts", len(letters), err)
		}
	})
}

func TestBackoffCap(t *testing.T) {
	const maxDuration = time.Duration(1<<63 - 1)
	tests := []struct {
		min, max time.Duration
		attempt  int
		want     time.Duration
	}{
		{100 * time.Millisecond, time.Minute, 1, 100 * time.Millisecond},
		{100 * time.Millisecond, time.Minute, 2, 200 * time.Millisecond},
		{100 * time.Millisecond, time.Minute, 4, 800 * time.Millisecond},
		{100 * time.Millisecond, time.Minute, 10, 51200 * time.Millisecond},
		{100 * time.Millisecond, time.Minute, 11, time.Minute},
		{100 * time.Millisecond, time.Minute, 1 << 30, time.Minute},
		{time.Second, time.Second, 5, time.Second},
		{1, maxDuration, 62, 1 << 61},
		{1, maxDuration, 64, maxDuration},
		{1, maxDuration, 1000, maxDuration},
	}
	for _, tt := range tests {
		if got := backoffCap(tt.min, tt.max, tt.attempt); got != tt.want {
			t.Errorf("backoffCap(%v, %v, %d) = %v, want %v", tt.min, tt.max, tt.attempt, got, tt.want)
		}
	}
}

func TestUniformJitter(t *testing.T) {
	const max = 100 * time.Millisecond
	low, high := 0, 0
	for range 1000 {
		d := uniformJitter(max)
		if d < 0 || d > max {
			t.Fatalf("uniformJitter(%v) = %v, want 0 to %v", max, d, max)
		}
		if d < max/4 {
			low++
		}
		if d > 3*max/4 {
			high++
		}
	}
	// Each quarter gets about 250 of 1000 draws; 100 is far in the tail.
	if low < 100 || high < 100 {
		t.Errorf("uniformJitter(%v): %d draws in the lowest quarter, %d in the highest, want about 250 each", max, low, high)
	}
	if got := uniformJitter(0); got != 0 {
		t.Errorf("uniformJitter(0) = %v, want 0", got)
	}
	if got := uniformJitter(time.Duration(1<<63 - 1)); got < 0 {
		t.Errorf("uniformJitter(max int64) = %v, want a non-negative duration", got)
	}
}

func TestSubscribeDeadLetter(t *testing.T) {
	forEachStore(t, func(t *testing.T, v *Vault, s Store, clock *testClock) {
		ctx := context.Background()
		writeChanges(t, v, 3) // events 1 to 6
		outbox := allVaultEvents(t, v)

		var mu sync.Mutex
		failing := true
		var onError []int
		handler, got := channelHandler()
		opts := fastRetries()
		opts.MaxAttempts = 2
		opts.OnError = func(ev Event, attempt int, err error) {
			mu.Lock()
			defer mu.Unlock()
			onError = append(onError, attempt)
		}
		startSubscribe(t, v, "dead", func(ctx context.Context, ev Event) error {
			mu.Lock()
			fail := failing && ev.Seq == 2
			mu.Unlock()
			if fail {
				return fmt.Errorf("receiver returned 500 for %s", ev.ID)
			}
			return handler(ctx, ev)
		}, opts)

		// Delivery continues after the dead letter.
		delivered := receive(t, got, len(outbox)-1)
		if want := []uint64{1, 3, 4, 5, 6}; !slices.Equal(seqs(delivered), want) {
			t.Fatalf("delivered Seq %v, want %v: event 2 goes to the dead-letter list", seqs(delivered), want)
		}
		mu.Lock()
		if !slices.Equal(onError, []int{1, 2}) {
			t.Errorf("OnError attempts = %v, want [1 2]", onError)
		}
		mu.Unlock()

		letters, err := v.DeadLetters(ctx, "dead")
		if err != nil {
			t.Fatalf("DeadLetters err = %v, want nil", err)
		}
		want := []DeadLetter{{
			Event:     outbox[1],
			Attempts:  2,
			LastError: "receiver returned 500 for " + outbox[1].ID,
			Time:      clock.Now(),
		}}
		if diff := cmp.Diff(want, letters); diff != "" {
			t.Errorf("DeadLetters mismatch (-want +got):\n%s", diff)
		}
		if other, err := v.DeadLetters(ctx, "other"); err != nil || len(other) != 0 {
			t.Errorf("DeadLetters(\"other\") = %v, %v, want none", other, err)
		}

		// Redeliver hands the event to the running subscriber, which
		// delivers it once and then goes on after its cursor.
		mu.Lock()
		failing = false
		mu.Unlock()
		if err := v.Redeliver(ctx, "dead", 2); err != nil {
			t.Fatalf("Redeliver(2) err = %v, want nil", err)
		}
		if again := receive(t, got, 1); again[0].Seq != 2 {
			t.Fatalf("after Redeliver(2) received event %d, want 2", again[0].Seq)
		}
		writeChanges(t, v, 1)
		if next := receive(t, got, 1); next[0].Seq != uint64(len(outbox)+1) {
			t.Errorf("after the redelivery received event %d, want the new event %d", next[0].Seq, len(outbox)+1)
		}
		wantNoMore(t, got, 100*time.Millisecond)

		if letters, err := v.DeadLetters(ctx, "dead"); err != nil || len(letters) != 0 {
			t.Errorf("DeadLetters after the redelivery = %d letters, err %v, want none", len(letters), err)
		}
		if err := v.Redeliver(ctx, "dead", 2); !errors.Is(err, ErrNotFound) {
			t.Errorf("second Redeliver(2) err = %v, want ErrNotFound", err)
		}
		if err := v.Redeliver(ctx, "dead", 99); !errors.Is(err, ErrNotFound) {
			t.Errorf("Redeliver(99) err = %v, want ErrNotFound", err)
		}
		if entries, _ := s.Metadata(ctx, metaOutboxRedeliver); len(entries) != 0 {
			t.Errorf("redelivery queue has %d entries after the redelivery, want none", len(entries))
		}
	})
}

func TestRedeliverFailsAgain(t *testing.T) {
	forEachStore(t, func(t *testing.T, v *Vault, s Store, clock *testClock) {
		ctx := context.Background()
		writeChanges(t, v, 1)

		attempts := make(chan Event, 100)
		opts := fastRetries()
		opts.MaxAttempts = 3
		startSubscribe(t, v, "always-fails", func(_ context.Context, ev Event) error {
			attempts <- ev
			return errors.New("refused")
		}, opts)
		receive(t, attempts, 3)
		waitDeadLetters(t, v, "always-fails", 1)

		clock.Advance(time.Hour)
		if err := v.Redeliver(ctx, "always-fails", 1); err != nil {
			t.Fatalf("Redeliver(1) err = %v, want nil", err)
		}
		for _, ev := range receive(t, attempts, 3) {
			if ev.Seq != 1 {
				t.Errorf("after Redeliver(1) the handler got event %d, want 1", ev.Seq)
			}
		}
		letters := waitDeadLetters(t, v, "always-fails", 1)
		if letters[0].Attempts != 3 || letters[0].LastError != "refused" || !letters[0].Time.Equal(clock.Now()) {
			t.Errorf("dead letter after the failed redelivery = %d attempts, %q at %v, want 3, \"refused\" at %v",
				letters[0].Attempts, letters[0].LastError, letters[0].Time, clock.Now())
		}
	})
}

// waitDeadLetters waits until subscriber name has n dead letters, and
// returns them.
func waitDeadLetters(t *testing.T, v *Vault, name string, n int) []DeadLetter {
	t.Helper()
	deadline := time.Now().Add(receiveTimeout)
	for {
		letters, err := v.DeadLetters(context.Background(), name)
		if err != nil {
			t.Fatalf("DeadLetters(%q) err = %v, want nil", name, err)
		}
		if len(letters) == n {
			return letters
		}
		if time.Now().After(deadline) {
			t.Fatalf("DeadLetters(%q) has %d letters after %s, want %d", name, len(letters), receiveTimeout, n)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func TestRedeliverBeforeNextSubscribe(t *testing.T) {
	forEachStore(t, func(t *testing.T, v *Vault, s Store, clock *testClock) {
		ctx := context.Background()
		writeChanges(t, v, 3) // events 1 to 6

		opts := fastRetries()
		opts.MaxAttempts = 1
		handler, got := channelHandler()
		stop := startSubscribe(t, v, "batch", func(ctx context.Context, ev Event) error {
			if ev.Seq == 3 {
				return errors.New("refused")
			}
			return handler(ctx, ev)
		}, opts)
		receive(t, got, 5)
		if err := stop(); !errors.Is(err, context.Canceled) {
			t.Fatalf("Subscribe after cancel err = %v, want context.Canceled", err)
		}

		if err := v.Redeliver(ctx, "batch", 3); err != nil {
			t.Fatalf("Redeliver(3) err = %v, want nil", err)
		}
		writeChanges(t, v, 1) // event 7
		startSubscribe(t, v, "batch", handler, opts)
		if delivered := receive(t, got, 2); !slices.Equal(seqs(delivered), []uint64{3, 7}) {
			t.Errorf("next Subscribe delivered Seq %v, want [3 7]: the redelivery first, then the events after the cursor", seqs(delivered))
		}
		wantNoMore(t, got, 100*time.Millisecond)
	})
}

// TestRedeliverInterrupted covers a Redeliver that a crash stopped after it
// queued the event and before it deleted the dead letter.
func TestRedeliverInterrupted(t *testing.T) {
	forEachStore(t, func(t *testing.T, v *Vault, s Store, clock *testClock) {
		ctx := context.Background()
		writeChanges(t, v, 1)
		ev := allVaultEvents(t, v)[0]

		value, err := encodeDeadLetter(&DeadLetter{Event: ev, Attempts: 10, LastError: "refused", Time: clock.Now()})
		if err != nil {
			t.Fatal(err)
		}
		for _, name := range []string{deadPrefix("half") + seqName(1), redeliverPrefix("half") + seqName(1), cursorName("half")} {
			if name == cursorName("half") {
				value = []byte("1")
			}
			if err := s.SetMetadata(ctx, name, value); err != nil {
				t.Fatal(err)
			}
		}

		handler, got := channelHandler()
		startSubscribe(t, v, "half", handler, fastRetries())
		if delivered := receive(t, got, 1); delivered[0].ID != ev.ID {
			t.Errorf("Subscribe delivered %s, want the queued %s", delivered[0].ID, ev.ID)
		}
		waitDeadLetters(t, v, "half", 0)
		wantNoMore(t, got, 100*time.Millisecond)
	})
}

func TestSubscribeResumesAfterRestart(t *testing.T) {
	tests := []struct {
		name    string
		ackStop bool // whether the handler acknowledges the event during which it stops the subscriber
		first   uint64
	}{
		{"in flight", false, 4},
		{"acknowledged", true, 5},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			keys, err := GenerateKeyRing()
			if err != nil {
				t.Fatal(err)
			}
			path := filepath.Join(t.TempDir(), "vault.db")
			v, err := Open(path, keys)
			if err != nil {
				t.Fatalf("Open err = %v", err)
			}
			total := writeChanges(t, v, 4) // 7 events

			var calledOnError bool
			ctx, cancel := context.WithCancel(context.Background())
			var firstRun []uint64
			err = v.Subscribe(ctx, "resume", func(ctx context.Context, ev Event) error {
				firstRun = append(firstRun, ev.Seq)
				if ev.Seq == 4 {
					cancel()
					if !tt.ackStop {
						return ctx.Err()
					}
				}
				return nil
			}, &SubscribeOptions{OnError: func(Event, int, error) { calledOnError = true }})
			if !errors.Is(err, context.Canceled) {
				t.Errorf("Subscribe after cancel err = %v, want context.Canceled", err)
			}
			if calledOnError {
				t.Errorf("OnError was called for an attempt that failed because the subscriber stopped")
			}
			if !slices.Equal(firstRun, []uint64{1, 2, 3, 4}) {
				t.Errorf("first run delivered Seq %v, want [1 2 3 4]", firstRun)
			}
			if err := v.Close(); err != nil {
				t.Fatalf("Close err = %v", err)
			}

			v, err = Open(path, keys)
			if err != nil {
				t.Fatalf("Open after Close err = %v", err)
			}
			t.Cleanup(func() { v.Close() })
			handler, got := channelHandler()
			startSubscribe(t, v, "resume", handler, fastRetries())
			delivered := receive(t, got, total-int(tt.first)+1)
			var want []uint64
			for seq := tt.first; seq <= uint64(total); seq++ {
				want = append(want, seq)
			}
			if !slices.Equal(seqs(delivered), want) {
				t.Errorf("after reopening delivered Seq %v, want %v", seqs(delivered), want)
			}
			wantNoMore(t, got, 100*time.Millisecond)
		})
	}
}

func TestSubscribeTwoNames(t *testing.T) {
	forEachStore(t, func(t *testing.T, v *Vault, s Store, clock *testClock) {
		n := writeChanges(t, v, 4)
		handlerA, gotA := channelHandler()
		handlerB, gotB := channelHandler()
		startSubscribe(t, v, "a", handlerA, fastRetries())
		startSubscribe(t, v, "webhook:b", handlerB, fastRetries())
		n += writeChanges(t, v, 4)

		want := allVaultEvents(t, v)
		wantSameEvents(t, want, receive(t, gotA, n))
		wantSameEvents(t, want, receive(t, gotB, n))
	})
}

func TestSubscribeSameNameTwice(t *testing.T) {
	forEachStore(t, func(t *testing.T, v *Vault, s Store, clock *testClock) {
		writeChanges(t, v, 1)
		handler, got := channelHandler()
		stop := startSubscribe(t, v, "once", handler, fastRetries())
		receive(t, got, 1)

		ctx, cancel := context.WithTimeout(context.Background(), receiveTimeout)
		defer cancel()
		if err := v.Subscribe(ctx, "once", handler, nil); !errors.Is(err, ErrSubscriberRunning) {
			t.Errorf("second Subscribe(\"once\") err = %v, want ErrSubscriberRunning", err)
		}

		if err := stop(); !errors.Is(err, context.Canceled) {
			t.Fatalf("Subscribe after cancel err = %v, want context.Canceled", err)
		}
		startSubscribe(t, v, "once", handler, fastRetries())
		writeChanges(t, v, 1)
		if delivered := receive(t, got, 1); delivered[0].Seq != 2 {
			t.Errorf("Subscribe(\"once\") after the first returned delivered event %d, want 2", delivered[0].Seq)
		}
	})
}

func TestSubscribeStopsOnClose(t *testing.T) {
	forEachStore(t, func(t *testing.T, v *Vault, s Store, clock *testClock) {
		writeChanges(t, v, 2)

		// One subscriber waits for events, one is inside its handler, and one
		// waits between two attempts.
		idle, idleGot := channelHandler()
		stopIdle := startSubscribe(t, v, "idle", idle, fastRetries())
		receive(t, idleGot, 2)

		inHandler := make(chan struct{})
		handlerCanceled := make(chan struct{})
		stopBusy := startSubscribe(t, v, "busy", func(ctx context.Context, ev Event) error {
			close(inHandler)
			<-ctx.Done()
			close(handlerCanceled)
			return ctx.Err()
		}, nil)
		<-inHandler

		retrying := make(chan struct{}, 1)
		stopRetry := startSubscribe(t, v, "retry", func(ctx context.Context, ev Event) error {
			select {
			case retrying <- struct{}{}:
			default:
			}
			return errors.New("refused")
		}, &SubscribeOptions{MinBackoff: time.Hour, MaxBackoff: time.Hour, jitter: func(max time.Duration) time.Duration { return max }})
		<-retrying

		closed := make(chan error, 1)
		go func() { closed <- v.Close() }()
		select {
		case err := <-closed:
			if err != nil {
				t.Errorf("Close err = %v, want nil", err)
			}
		case <-time.After(receiveTimeout):
			t.Fatalf("Close did not return within %s with three subscribers running", receiveTimeout)
		}
		select {
		case <-handlerCanceled:
		default:
			t.Errorf("Close returned before the running handler's context was canceled")
		}
		for name, stop := range map[string]func() error{"idle": stopIdle, "busy": stopBusy, "retry": stopRetry} {
			if err := stop(); !errors.Is(err, ErrVaultClosed) {
				t.Errorf("Subscribe(%q) after Close err = %v, want ErrVaultClosed", name, err)
			}
		}

		if err := v.Subscribe(context.Background(), "late", idle, nil); !errors.Is(err, ErrVaultClosed) {
			t.Errorf("Subscribe after Close err = %v, want ErrVaultClosed", err)
		}
		if _, err := v.Events(context.Background(), 0, 10); !errors.Is(err, ErrVaultClosed) {
			t.Errorf("Events after Close err = %v, want ErrVaultClosed", err)
		}
		if _, err := v.DeadLetters(context.Background(), "idle"); !errors.Is(err, ErrVaultClosed) {
			t.Errorf("DeadLetters after Close err = %v, want ErrVaultClosed", err)
		}
		if err := v.Redeliver(context.Background(), "idle", 1); !errors.Is(err, ErrVaultClosed) {
			t.Errorf("Redeliver after Close err = %v, want ErrVaultClosed", err)
		}
		if _, err := v.RecordExpirations(context.Background()); !errors.Is(err, ErrVaultClosed) {
			t.Errorf("RecordExpirations after Close err = %v, want ErrVaultClosed", err)
		}
	})
}

// TestSubscribeHandlerCallsVault checks that a handler may call the vault,
// including while Close waits for it.
func TestSubscribeHandlerCallsVault(t *testing.T) {
	forEachStore(t, func(t *testing.T, v *Vault, s Store, clock *testClock) {
		writeChanges(t, v, 1)
		inspected := make(chan error, 10)
		closing := make(chan struct{})
		stop := startSubscribe(t, v, "inspect", func(ctx context.Context, ev Event) error {
			_, err := v.Inspect(ctx, ev.Token)
			inspected <- err
			<-closing
			_, err = v.Inspect(context.Background(), ev.Token)
			inspected <- err
			return nil
		}, nil)
		if err := <-inspected; err != nil {
			t.Errorf("Inspect from the handler err = %v, want nil", err)
		}

		closed := make(chan error, 1)
		go func() { closed <- v.Close() }()
		time.Sleep(20 * time.Millisecond) // let Close start waiting
		close(closing)
		select {
		case err := <-inspected:
			if err != nil {
				t.Errorf("Inspect from the handler while Close waits err = %v, want nil", err)
			}
		case <-time.After(receiveTimeout):
			t.Fatalf("Inspect from the handler did not return within %s while Close waited", receiveTimeout)
		}
		if err := <-closed; err != nil {
			t.Errorf("Close err = %v, want nil", err)
		}
		if err := stop(); !errors.Is(err, ErrVaultClosed) {
			t.Errorf("Subscribe after Close err = %v, want ErrVaultClosed", err)
		}
	})
}

func TestSubscribeWakeLatency(t *testing.T) {
	forEachStore(t, func(t *testing.T, v *Vault, s Store, clock *testClock) {
		const pollInterval = 10 * time.Second
		ctx := context.Background()
		token, err := v.Tokenize(ctx, []byte("value"), ExpiresAfter(time.Minute))
		if err != nil {
			t.Fatal(err)
		}
		handler, got := channelHandler()
		startSubscribe(t, v, "latency", handler, &SubscribeOptions{PollInterval: pollInterval})
		receive(t, got, 1)

		writes := []struct {
			name  string
			write func() error
		}{
			{"Tokenize", func() error { _, err := v.Tokenize(ctx, []byte("other")); return err }},
			{"SuspendToken", func() error { return v.SuspendToken(ctx, token) }},
			{"ActivateToken", func() error { return v.ActivateToken(ctx, token) }},
			{"RecordExpirations", func() error {
				clock.Advance(2 * time.Minute)
				n, err := v.RecordExpirations(ctx)
				if n != 1 {
					return fmt.Errorf("recorded %d expirations, want 1", n)
				}
				return err
			}},
			{"CloseToken", func() error { return v.CloseToken(ctx, token) }},
		}
		var slowest time.Duration
		for _, w := range writes {
			// The subscriber is waiting again once it has had time to read
			// the empty outbox.
			time.Sleep(20 * time.Millisecond)
			if err := w.write(); err != nil {
				t.Fatalf("%s err = %v", w.name, err)
			}
			written := time.Now()
			select {
			case <-got:
			case <-time.After(pollInterval / 2):
				t.Fatalf("event of %s not delivered within %s, half the poll interval", w.name, pollInterval/2)
			}
			latency := time.Since(written)
			slowest = max(slowest, latency)
			if latency > 500*time.Millisecond {
				t.Errorf("event of %s delivered %v after the write returned, want well under the poll interval of %v", w.name, latency, pollInterval)
			}
		}
		t.Logf("slowest wake-up after a write: %v (poll interval %v)", slowest, pollInterval)
	})
}

// TestSubscribePollsOtherVault checks that a subscriber finds events that
// another vault over the same store wrote, which no wake-up announces.
func TestSubscribePollsOtherVault(t *testing.T) {
	keys, err := GenerateKeyRing()
	if err != nil {
		t.Fatal(err)
	}
	store := NewMemoryStore()
	reader, err := New(store, keys)
	if err != nil {
		t.Fatal(err)
	}
	writer, err := New(store, keys)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { reader.Close(); writer.Close() })

	handler, got := channelHandler()
	startSubscribe(t, reader, "poller", handler, &SubscribeOptions{PollInterval: 20 * time.Millisecond})
	time.Sleep(20 * time.Millisecond)
	n := writeChanges(t, writer, 3)
	wantSameEvents(t, allVaultEvents(t, reader), receive(t, got, n))
}

func TestSubscribeInvalidArguments(t *testing.T) {
	v := newTestVault(t, NewMemoryStore(), newTestClock())
	ctx := context.Background()
	handler, _ := channelHandler()

	for _, name := range []string{"", strings.Repeat("a", 65), "a/b", "a b", "caf\u00e9", "a\x00", "a*"} {
		if err := v.Subscribe(ctx, name, handler, nil); !errors.Is(err, ErrInvalidOption) {
			t.Errorf("Subscribe(%q) err = %v, want ErrInvalidOption", name, err)
		}
		if _, err := v.DeadLetters(ctx, name); !errors.Is(err, ErrInvalidOption) {
			t.Errorf("DeadLetters(%q) err = %v, want ErrInvalidOption", name, err)
		}
		if err := v.Redeliver(ctx, name, 1); !errors.Is(err, ErrInvalidOption) {
			t.Errorf("Redeliver(%q) err = %v, want ErrInvalidOption", name, err)
		}
	}
	for _, name := range []string{"a", strings.Repeat("Z", 64), "webhook:ep-1.v2_x"} {
		if err := checkSubscriberName(name); err != nil {
			t.Errorf("checkSubscriberName(%q) err = %v, want nil", name, err)
		}
	}

	if err := v.Subscribe(ctx, "name", nil, nil); !errors.Is(err, ErrInvalidOption) {
		t.Errorf("Subscribe with a nil handler err = %v, want ErrInvalidOption", err)
	}
	badOptions := []SubscribeOptions{
		{MinBackoff: -1},
		{MaxBackoff: -1},
		{MaxAttempts: -1},
		{PollInterval: -1},
		{MinBackoff: 2 * time.Minute}, // more than the default MaxBackoff
		{MinBackoff: time.Second, MaxBackoff: time.Millisecond},
	}
	for _, opts := range badOptions {
		if err := v.Subscribe(ctx, "name", handler, &opts); !errors.Is(err, ErrInvalidOption) {
			t.Errorf("Subscribe with %+v err = %v, want ErrInvalidOption", opts, err)
		}
	}
}

func TestEventsLimit(t *testing.T) {
	v := newTestVault(t, NewMemoryStore(), newTestClock())
	ctx := context.Background()
	for i := range MaxEventsLimit + 5 {
		if _, err := v.Tokenize(ctx, fmt.Appendf(nil, "value %d", i)); err != nil {
			t.Fatal(err)
		}
	}

	for _, limit := range []int{0, -1} {
		if _, err := v.Events(ctx, 0, limit); !errors.Is(err, ErrInvalidOption) {
			t.Errorf("Events(0, %d) err = %v, want ErrInvalidOption", limit, err)
		}
	}
	events, err := v.Events(ctx, 0, MaxEventsLimit+5)
	if err != nil || len(events) != MaxEventsLimit {
		t.Errorf("Events(0, %d) = %d events, err %v, want %d", MaxEventsLimit+5, len(events), err, MaxEventsLimit)
	}
	events, err = v.Events(ctx, MaxEventsLimit, 10)
	if err != nil || !slices.Equal(seqs(events), []uint64{1001, 1002, 1003, 1004, 1005}) {
		t.Errorf("Events(%d, 10) = Seq %v, err %v, want 1001 to 1005", MaxEventsLimit, seqs(events), err)
	}
}

func TestDeadLetterEncoding(t *testing.T) {
	when := time.Date(2026, 12, 4, 12, 0, 0, 123456789, time.UTC)
	letters := []DeadLetter{
		{
			Event:     Event{Seq: 1, ID: EventID("tok_a", 0), Token: "tok_a", Type: EventCreated, To: StateActive, Time: when},
			Attempts:  10,
			LastError: "connection refused",
			Time:      when.Add(time.Minute),
		},
		{
			Event: Event{Seq: 1 << 40, ID: EventID("4111110000001111", 3), Token: "4111110000001111", Revision: 3,
				Type: EventSuspensionLifted, From: StateSuspended, To: StateSuspended, Reason: "card found", Actor: "issuer", Time: when},
			Attempts: 1,
			Time:     when,
		},
	}
	for _, want := range letters {
		value, err := encodeDeadLetter(&want)
		if err != nil {
			t.Fatalf("encodeDeadLetter(%s) err = %v", want.Event.ID, err)
		}
		got, err := decodeDeadLetter(value)
		if err != nil {
			t.Fatalf("decodeDeadLetter(%s) err = %v", value, err)
		}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("dead letter round trip mismatch (-want +got):\n%s", diff)
		}
	}

	for _, bad := range []string{"", "{", `{"type":"eaten","to":"active"}`, `{"type":"created","to":"gone"}`, `{"type":"created","to":"active","from":"x"}`} {
		if _, err := decodeDeadLetter([]byte(bad)); !errors.Is(err, ErrIntegrity) {
			t.Errorf("decodeDeadLetter(%q) err = %v, want ErrIntegrity", bad, err)
		}
	}
}

func TestLastErrorText(t *testing.T) {
	long := strings.Repeat("é", maxLastErrorSize) // two bytes each
	tests := []struct {
		err     error
		want    string
		wantLen int
	}{
		{errors.New("refused"), "refused", 7},
		{errors.New("bad \xff byte"), "bad \uFFFD byte", len("bad \uFFFD byte")},
		{errors.New(strings.Repeat("x", maxLastErrorSize)), strings.Repeat("x", maxLastErrorSize), maxLastErrorSize},
		{errors.New(long), strings.Repeat("é", (maxLastErrorSize-3)/2) + "...", (maxLastErrorSize-3)/2*2 + 3},
	}
	for _, tt := range tests {
		got := lastErrorText(tt.err)
		if got != tt.want || len(got) != tt.wantLen {
			t.Errorf("lastErrorText(%.20q...) = %.20q... (%d bytes), want %.20q... (%d bytes)", tt.err.Error(), got, len(got), tt.want, tt.wantLen)
		}
	}
}
