//go:build unix

package tokenvault_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	mathrand "math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/tokenvault/tokenvault"
)

// Environment variables of the outbox crash test.
const (
	outboxCrashChildEnv  = "TOKENVAULT_OUTBOX_CRASH_CHILD"  // the vault file, set only in the child
	outboxCrashModeEnv   = "TOKENVAULT_OUTBOX_CRASH_MODE"   // "write" or "subscribe"
	outboxCrashRoundsEnv = "TOKENVAULT_OUTBOX_CRASH_ROUNDS" // rounds to run, 12 by default
)

const (
	outboxCrashRounds     = 12
	outboxCrashWriters    = 4       // goroutines of the child that write
	outboxCrashSubscriber = "crash" // subscriber name of child and parent
	// outboxCrashMinDelivered is the number of deliveries a subscribing
	// child reports before the kill delay starts.
	outboxCrashMinDelivered = 3
)

// TestOutboxCrash kills a child process that writes token changes into a
// bbolt vault with SIGKILL. In even rounds the child only writes. In odd
// rounds it also runs a subscriber that reports each event it acknowledges.
// The parent then reopens the vault and subscribes under the same name.
//
// Each round checks that the stored cursor never passed an event the child
// had not acknowledged, and that the parent resumes right after the cursor,
// so that only the event in flight at the kill is delivered twice. After the
// last round, the test checks that every created event and history entry in
// the store was delivered, and nothing else. The rounds reuse one file. Set
// TOKENVAULT_OUTBOX_CRASH_ROUNDS for a longer run and TOKENVAULT_CRASH_SEED
// to repeat the kill delays of an earlier run.
func TestOutboxCrash(t *testing.T) {
	if path := os.Getenv(outboxCrashChildEnv); path != "" {
		outboxCrashChild(path, os.Getenv(outboxCrashModeEnv))
		return
	}
	if testing.Short() {
		t.Skip("starts and kills a child process in each of 12 or more rounds")
	}

	rounds := outboxCrashRounds
	if s := os.Getenv(outboxCrashRoundsEnv); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 {
			t.Fatalf("%s=%q, want a positive number of rounds", outboxCrashRoundsEnv, s)
		}
		rounds = n
	}
	seed := uint64(time.Now().UnixNano())
	if s := os.Getenv(crashSeedEnv); s != "" {
		n, err := strconv.ParseUint(s, 10, 64)
		if err != nil {
			t.Fatalf("%s=%q, want an unsigned integer", crashSeedEnv, s)
		}
		seed = n
	}
	t.Logf("seed %d (set %s to repeat it)", seed, crashSeedEnv)

	ring, err := tokenvault.GenerateKeyRing()
	if err != nil {
		t.Fatal(err)
	}
	st := &outboxCrashState{
		path:      filepath.Join(t.TempDir(), "vault.db"),
		ring:      ring,
		env:       crashEnv(t, ring, seed),
		delivered: make(map[string]int),
	}
	delays := mathrand.New(mathrand.NewPCG(seed, 1))

	start := time.Now()
	for round := range rounds {
		mode := "write"
		if round%2 == 1 {
			mode = "subscribe"
		}
		delay := time.Duration(10+delays.IntN(51)) * time.Millisecond
		outboxCrashRound(t, st, round, mode, delay)
		if t.Failed() {
			t.Fatalf("round %d failed with seed %d", round, seed)
		}
	}
	outboxCrashVerifyHistories(t, st)
	t.Logf("%d rounds in %v: %d events, %d delivered twice", rounds, time.Since(start).Round(time.Millisecond), st.cursor, st.duplicates)
}

// outboxCrashState is the parent's record of the cursor and the deliveries,
// kept across rounds.
type outboxCrashState struct {
	path string
	ring *tokenvault.KeyRing
	env  []string

	cursor     uint64         // the stored cursor after the parent's last catch-up
	delivered  map[string]int // event ID -> deliveries, by child and parent
	duplicates int
}

// outboxCrashChild writes into the vault at path from outboxCrashWriters
// goroutines until it is killed. In mode "subscribe" it also subscribes and
// writes a line to stdout for each event its handler acknowledges:
//
//	ready              once the vault is open
//	delivered SEQ ID   just before the handler returns nil for event SEQ
//
// It never returns.
func outboxCrashChild(path, mode string) {
	fail := func(format string, args ...any) {
		fmt.Fprintf(os.Stderr, "outbox crash child: "+format+"\n", args...)
		os.Exit(2)
	}
	// The parent keeps stdin open, so EOF means that it died or gave up. The
	// timer ends a child that is never killed.
	go func() {
		io.Copy(io.Discard, os.Stdin)
		os.Exit(3)
	}()
	time.AfterFunc(time.Minute, func() { fail("not killed within a minute") })

	ring, err := tokenvault.KeyRingFromEnv()
	if err != nil {
		fail("KeyRingFromEnv: %v", err)
	}
	vault, err := tokenvault.Open(path, ring)
	if err != nil {
		fail("Open: %v", err)
	}
	ctx := context.Background()

	if mode == "subscribe" {
		go func() {
			// The first attempt at every fifth event fails, so that some
			// kills land between two attempts.
			failed := make(map[uint64]bool)
			err := vault.Subscribe(ctx, outboxCrashSubscriber, func(_ context.Context, ev tokenvault.Event) error {
				if ev.Seq%5 == 0 && !failed[ev.Seq] {
					failed[ev.Seq] = true
					return errors.New("first attempt fails")
				}
				fmt.Printf("delivered %d %s\n", ev.Seq, ev.ID)
				return nil
			}, &tokenvault.SubscribeOptions{MinBackoff: time.Millisecond, MaxBackoff: 5 * time.Millisecond})
			fail("Subscribe: %v", err)
		}()
	}
	fmt.Println("ready")

	for range outboxCrashWriters {
		go func() {
			value := make([]byte, 16)
			for i := 0; ; i++ {
				rand.Read(value)
				token, err := vault.Tokenize(ctx, value)
				if err != nil {
					fail("Tokenize: %v", err)
				}
				if i%2 == 1 {
					if err := vault.SuspendToken(ctx, token, tokenvault.WithReason("outbox crash test")); err != nil {
						fail("SuspendToken(%q): %v", token, err)
					}
				}
				if i%4 == 1 {
					if err := vault.ActivateToken(ctx, token); err != nil {
						fail("ActivateToken(%q): %v", token, err)
					}
				}
				if i%3 == 0 {
					if err := vault.CloseToken(ctx, token); err != nil {
						fail("CloseToken(%q): %v", token, err)
					}
				}
			}
		}()
	}
	select {}
}

// outboxCrashDelivery is one "delivered" line of the child.
type outboxCrashDelivery struct {
	seq uint64
	id  string
}

// outboxCrashParse returns the deliveries in the complete lines of out. The
// kill can cut the last line short, and a line without its newline was never
// written whole, so it does not count.
func outboxCrashParse(out []byte) ([]outboxCrashDelivery, error) {
	complete := out[:bytes.LastIndexByte(out, '\n')+1]
	var deliveries []outboxCrashDelivery
	for i, line := range strings.Split(strings.TrimSuffix(string(complete), "\n"), "\n") {
		fields := strings.Fields(line)
		switch {
		case len(fields) == 1 && fields[0] == "ready":
			continue
		case len(fields) != 3 || fields[0] != "delivered":
			return nil, fmt.Errorf("line %d is %q, want \"ready\" or \"delivered SEQ ID\"", i+1, line)
		}
		seq, err := strconv.ParseUint(fields[1], 10, 64)
		if err != nil {
			return nil, fmt.Errorf("line %d: seq: %v", i+1, err)
		}
		deliveries = append(deliveries, outboxCrashDelivery{seq: seq, id: fields[2]})
	}
	return deliveries, nil
}

// outboxCrashOutput collects the child's stdout and closes enough once it
// has a "ready" line and want "delivered" lines.
type outboxCrashOutput struct {
	mu        sync.Mutex
	buf       bytes.Buffer
	ready     bool
	delivered int
	want      int
	enough    chan struct{}
	closed    bool
}

func (o *outboxCrashOutput) Write(p []byte) (int, error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.buf.Write(p)
	o.ready = o.ready || bytes.Contains(o.buf.Bytes(), []byte("ready\n"))
	o.delivered += bytes.Count(p, []byte("delivered"))
	if !o.closed && o.ready && o.delivered >= o.want {
		o.closed = true
		close(o.enough)
	}
	return len(p), nil
}

// outboxCrashRound runs one child in mode, kills it with SIGKILL delay after
// it is ready (and, subscribing, has delivered a few events), then checks
// the cursor and catches up as the parent.
func outboxCrashRound(t *testing.T, st *outboxCrashState, round int, mode string, delay time.Duration) {
	roundStart := time.Now()

	cmd := exec.Command(os.Args[0], "-test.run=^TestOutboxCrash$")
	cmd.Env = append(slices.Clip(st.env), outboxCrashChildEnv+"="+st.path, outboxCrashModeEnv+"="+mode)
	out := &outboxCrashOutput{enough: make(chan struct{})}
	if mode == "subscribe" {
		out.want = outboxCrashMinDelivered
	}
	var stderr bytes.Buffer
	cmd.Stdout = out
	cmd.Stderr = &stderr
	if _, err := cmd.StdinPipe(); err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatalf("start child: %v", err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	waited := false
	defer func() {
		if !waited {
			cmd.Process.Signal(syscall.SIGKILL)
			<-exited
		}
	}()

	select {
	case <-out.enough:
	case err := <-exited:
		waited = true
		t.Fatalf("round %d: child exited before it was ready: %v, stderr: %s", round, err, stderr.String())
	case <-time.After(30 * time.Second):
		t.Fatalf("round %d: child was not ready within 30 s", round)
	}
	time.Sleep(delay)
	if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatalf("round %d: kill child: %v", round, err)
	}
	waitErr := <-exited
	waited = true
	status, ok := cmd.ProcessState.Sys().(syscall.WaitStatus)
	if !ok || !status.Signaled() || status.Signal() != syscall.SIGKILL {
		t.Fatalf("round %d: child ended with %v, want killed by SIGKILL, stderr: %s", round, waitErr, stderr.String())
	}
	if s := stderr.String(); s != "" {
		t.Errorf("round %d: child stderr: %s", round, s)
	}
	deliveries, err := outboxCrashParse(out.buf.Bytes())
	if err != nil {
		t.Fatalf("round %d: child stdout: %v", round, err)
	}

	cursor := outboxCrashCheckChild(t, st, round, deliveries)
	caughtUp := outboxCrashCatchUp(t, st, round, cursor, deliveries)
	t.Logf("round %d (%s): killed %v after ready; child delivered %d, cursor %d, parent delivered %d; %v",
		round, mode, delay, len(deliveries), cursor, caughtUp, time.Since(roundStart).Round(time.Millisecond))
}

// outboxCrashCheckChild checks the child's deliveries against the cursor it
// left, and returns the cursor.
func outboxCrashCheckChild(t *testing.T, st *outboxCrashState, round int, deliveries []outboxCrashDelivery) uint64 {
	t.Helper()
	store, err := tokenvault.OpenBoltStore(st.path, nil)
	if err != nil {
		t.Fatalf("round %d: OpenBoltStore after the kill: %v", round, err)
	}
	defer store.Close()

	const cursorName = "outbox/cursor/" + outboxCrashSubscriber
	entries, err := store.Metadata(context.Background(), cursorName)
	if err != nil {
		t.Fatalf("round %d: Metadata(%q): %v", round, cursorName, err)
	}
	cursor := uint64(0)
	if value, ok := entries[cursorName]; ok {
		if cursor, err = strconv.ParseUint(string(value), 10, 64); err != nil {
			t.Fatalf("round %d: cursor %q is not a number", round, value)
		}
	}

	// The child starts after the parent's cursor and delivers in Seq order,
	// one event at a time.
	for i, d := range deliveries {
		if want := st.cursor + uint64(i) + 1; d.seq != want {
			t.Fatalf("round %d: child delivery %d has Seq %d, want %d: deliveries must follow the cursor without gaps", round, i, d.seq, want)
		}
		events, err := store.Events(context.Background(), d.seq-1, 1)
		if err != nil || len(events) != 1 || events[0].ID != d.id {
			t.Errorf("round %d: child delivered %s as event %d, outbox has %v (err %v)", round, d.id, d.seq, events, err)
		}
	}

	// The cursor must not pass what the child acknowledged, which would lose
	// events, and may lag by the one event in flight.
	last := st.cursor + uint64(len(deliveries))
	if cursor > last {
		t.Fatalf("round %d: stored cursor %d is past the last event the child acknowledged, %d: events after it would be lost", round, cursor, last)
	}
	if len(deliveries) > 0 && cursor+1 < last {
		t.Errorf("round %d: stored cursor %d lags the last acknowledged event %d by more than the event in flight", round, cursor, last)
	}
	if len(deliveries) == 0 && cursor != st.cursor {
		t.Errorf("round %d: stored cursor moved from %d to %d without a delivery", round, st.cursor, cursor)
	}
	for _, d := range deliveries {
		st.delivered[d.id]++
	}
	return cursor
}

// outboxCrashCatchUp opens the vault, subscribes until every event is
// delivered, checks that delivery started right after cursor, and returns
// the number of events it delivered.
func outboxCrashCatchUp(t *testing.T, st *outboxCrashState, round int, cursor uint64, child []outboxCrashDelivery) int {
	t.Helper()
	v, err := tokenvault.Open(st.path, st.ring)
	if err != nil {
		t.Fatalf("round %d: Open after the kill: %v", round, err)
	}
	defer func() {
		if err := v.Close(); err != nil {
			t.Errorf("round %d: Close: %v", round, err)
		}
	}()
	ctx := context.Background()

	last := cursor
	for {
		events, err := v.Events(ctx, last, tokenvault.MaxEventsLimit)
		if err != nil {
			t.Fatalf("round %d: Events(%d): %v", round, last, err)
		}
		if len(events) == 0 {
			break
		}
		last = events[len(events)-1].Seq
	}
	if last == cursor {
		st.cursor = cursor
		return 0
	}

	var got []tokenvault.Event
	subCtx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	err = v.Subscribe(subCtx, outboxCrashSubscriber, func(_ context.Context, ev tokenvault.Event) error {
		got = append(got, ev)
		if ev.Seq == last {
			cancel()
		}
		return nil
	}, nil)
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("round %d: parent Subscribe err = %v after %d events, want context.Canceled once event %d is delivered", round, err, len(got), last)
	}

	for i, ev := range got {
		if want := cursor + uint64(i) + 1; ev.Seq != want {
			t.Fatalf("round %d: parent delivery %d has Seq %d, want %d: delivery resumes right after the stored cursor %d", round, i, ev.Seq, want, cursor)
		}
		if st.delivered[ev.ID] > 0 {
			st.duplicates++
			if len(child) == 0 || ev.ID != child[len(child)-1].id {
				t.Errorf("round %d: parent delivered %s again, but it was not the child's event in flight", round, ev.ID)
			}
		}
		st.delivered[ev.ID]++
	}
	st.cursor = last
	return len(got)
}

// outboxCrashVerifyHistories checks that every created event and history
// entry in the store was delivered at least once, and that no delivered
// event is missing from the histories.
func outboxCrashVerifyHistories(t *testing.T, st *outboxCrashState) {
	store, err := tokenvault.OpenBoltStore(st.path, nil)
	if err != nil {
		t.Fatalf("OpenBoltStore after the last round: %v", err)
	}
	defer store.Close()
	ctx := context.Background()

	changes := make(map[string]bool)
	after := ""
	for {
		recs, err := store.Scan(ctx, after, 500)
		if err != nil {
			t.Fatalf("Scan(%q): %v", after, err)
		}
		for _, rec := range recs {
			changes[tokenvault.EventID(rec.Token, 0)] = true
			_, history, err := store.History(ctx, rec.Key())
			if err != nil {
				t.Fatalf("History(%q): %v", rec.Token, err)
			}
			for _, change := range history {
				changes[tokenvault.EventID(rec.Token, change.Revision)] = true
			}
		}
		if len(recs) < 500 {
			break
		}
		after = recs[len(recs)-1].Key()
	}

	missing := 0
	for id := range changes {
		if st.delivered[id] == 0 {
			missing++
			if missing <= 10 {
				t.Errorf("change %s is in the store but was never delivered", id)
			}
		}
	}
	if missing > 0 {
		t.Errorf("%d of %d changes were never delivered", missing, len(changes))
	}
	for id := range st.delivered {
		if !changes[id] {
			t.Errorf("event %s was delivered but its change is not in the store", id)
		}
	}
	if uint64(len(changes)) != st.cursor {
		t.Errorf("store has %d changes and the outbox %d events, want one event per change", len(changes), st.cursor)
	}
}
