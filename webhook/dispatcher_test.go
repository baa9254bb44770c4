package webhook

import (
	"context"
	"encoding/csv"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tokenvault/tokenvault"
)

// waitTimeout bounds every wait for a delivery. Builds with the race detector
// run several times slower.
const waitTimeout = 30 * time.Second

var endpointSecret = []byte("dispatcher test secret, 32 bytes")

// fastOptions retries quickly, so that the tests take milliseconds.
func fastOptions() *Options {
	return &Options{
		MaxAttempts:  5,
		MinBackoff:   5 * time.Millisecond,
		MaxBackoff:   20 * time.Millisecond,
		PollInterval: 20 * time.Millisecond,
		Timeout:      5 * time.Second,
	}
}

// received is one request that a testReceiver got.
type received struct {
	path    string
	header  http.Header
	body    []byte
	payload Payload
	status  int // the status the receiver responded with
	at      time.Time
}

// hang is the status that makes a testReceiver hold the request until the
// client cancels it, as a receiver that stopped responding would.
const hang = -1

// testReceiver is a webhook endpoint on 127.0.0.1 that records every request
// and responds with the status that respond returns for it, or with none
// for hang.
type testReceiver struct {
	srv *httptest.Server

	mu       sync.Mutex
	requests []received
	respond  func(r received, n int) int // n counts requests from 1
}

func newTestReceiver(t *testing.T, respond func(r received, n int) int) *testReceiver {
	t.Helper()
	rec := &testReceiver{respond: respond}
	rec.srv = httptest.NewServer(http.HandlerFunc(rec.serve))
	t.Cleanup(rec.srv.Close)
	return rec
}

func (rec *testReceiver) serve(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(r.Body)
	if err != nil {
		w.WriteHeader(http.StatusBadRequest)
		return
	}
	req := received{path: r.URL.Path, header: r.Header.Clone(), body: body, at: time.Now()}
	if json.Unmarshal(body, &req.payload) != nil {
		req.payload = Payload{}
	}

	rec.mu.Lock()
	respond := rec.respond
	n := len(rec.requests) + 1
	rec.mu.Unlock()
	req.status = respond(req, n)

	rec.mu.Lock()
	rec.requests = append(rec.requests, req)
	rec.mu.Unlock()
	if req.status == hang {
		<-r.Context().Done()
		return
	}
	w.WriteHeader(req.status)
}

func (rec *testReceiver) setRespond(respond func(r received, n int) int) {
	rec.mu.Lock()
	defer rec.mu.Unlock()
	rec.respond = respond
}

func (rec *testReceiver) all() []received {
	rec.mu.Lock()
	defer rec.mu.Unlock()
	return slices.Clone(rec.requests)
}

// acknowledged returns the requests that got a 2xx response, in order.
func (rec *testReceiver) acknowledged() []received {
	var ok []received
	for _, r := range rec.all() {
		if r.status >= 200 && r.status < 300 {
			ok = append(ok, r)
		}
	}
	return ok
}

func (rec *testReceiver) endpoint(id string) Endpoint {
	return Endpoint{ID: id, URL: rec.srv.URL + "/hooks/tokenvault", Secret: endpointSecret}
}

func always(status int) func(received, int) int {
	return func(received, int) int { return status }
}

// testKeys is one key ring for every vault of the package's tests.
var testKeys = sync.OnceValue(func() *tokenvault.KeyRing {
	keys, err := tokenvault.GenerateKeyRing()
	if err != nil {
		panic(err)
	}
	return keys
})

// openVault opens the bbolt vault at path, closed when the test ends.
func openVault(t *testing.T, path string) *tokenvault.Vault {
	t.Helper()
	v, err := tokenvault.Open(path, testKeys())
	if err != nil {
		t.Fatalf("Open(%s) err = %v", path, err)
	}
	t.Cleanup(func() {
		if err := v.Close(); err != nil && !errors.Is(err, tokenvault.ErrVaultClosed) {
			t.Errorf("close vault: %v", err)
		}
	})
	return v
}

func newVault(t *testing.T) *tokenvault.Vault {
	return openVault(t, filepath.Join(t.TempDir(), "vault.db"))
}

// runDispatcher starts d.Run and returns the function that stops it and
// returns what Run returned. The test's cleanup stops it too.
func runDispatcher(t *testing.T, d *Dispatcher) (stop func() error) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- d.Run(ctx) }()

	var once sync.Once
	var err error
	stop = func() error {
		once.Do(func() {
			cancel()
			select {
			case err = <-done:
			case <-time.After(waitTimeout):
				t.Errorf("Run did not return within %v of the cancellation", waitTimeout)
			}
		})
		return err
	}
	t.Cleanup(func() { stop() })
	return stop
}

// waitFor polls cond until it is true, and fails the test after waitTimeout.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(waitTimeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", waitTimeout, what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// failures collects the OnError calls of a Dispatcher.
type failures struct {
	mu   sync.Mutex
	list []Failure
}

func (f *failures) record(failure Failure) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.list = append(f.list, failure)
}

func (f *failures) all() []Failure {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.list)
}

// allEvents returns every event in the vault's outbox.
func allEvents(t *testing.T, v *tokenvault.Vault) []tokenvault.Event {
	t.Helper()
	var events []tokenvault.Event
	var after uint64
	for {
		batch, err := v.Events(context.Background(), after, tokenvault.MaxEventsLimit)
		if err != nil {
			t.Fatalf("Events err = %v", err)
		}
		if len(batch) == 0 {
			return events
		}
		events = append(events, batch...)
		after = batch[len(batch)-1].Seq
	}
}

// acknowledgedIDs returns the distinct event IDs among requests.
func acknowledgedIDs(requests []received) map[string]bool {
	ids := make(map[string]bool)
	for _, r := range requests {
		ids[r.payload.ID] = true
	}
	return ids
}

func TestDeliveryRetriesUntilSuccess(t *testing.T) {
	ctx := context.Background()
	v := newVault(t)
	rec := newTestReceiver(t, func(_ received, n int) int {
		if n <= 2 {
			return http.StatusInternalServerError
		}
		return http.StatusNoContent
	})
	var failed failures
	opts := fastOptions()
	opts.OnError = failed.record
	stop := runDispatcher(t, NewDispatcher(v, []Endpoint{rec.endpoint("billing")}, opts))

	token, err := v.TokenizeCard(ctx, "4111 1111 1111 1111")
	if err != nil {
		t.Fatalf("TokenizeCard err = %v", err)
	}
	waitFor(t, "the event to be acknowledged", func() bool { return len(rec.acknowledged()) == 1 })
	if err := stop(); !errors.Is(err, context.Canceled) {
		t.Errorf("Run after cancel err = %v, want context.Canceled", err)
	}

	requests := rec.all()
	if len(requests) != 3 {
		t.Fatalf("receiver got %d requests, want 3: two with a 500 response, then one with 204", len(requests))
	}
	wantID := tokenvault.EventID(token, 0)
	for i, r := range requests {
		if r.path != "/hooks/tokenvault" {
			t.Errorf("request %d path = %q, want /hooks/tokenvault", i+1, r.path)
		}
		if got := r.header.Get("Content-Type"); got != "application/json" {
			t.Errorf("request %d Content-Type = %q, want application/json", i+1, got)
		}
		if got := r.header.Get(EventIDHeader); got != wantID {
			t.Errorf("request %d %s = %q, want %q", i+1, EventIDHeader, got, wantID)
		}
		if err := Verify(endpointSecret, r.header.Get(SignatureHeader), r.body, r.at, 0); err != nil {
			t.Errorf("request %d: Verify err = %v, want nil", i+1, err)
		}
		if string(r.body) != string(requests[0].body) {
			t.Errorf("request %d body differs from the first attempt's: %s", i+1, r.body)
		}
	}

	p := requests[2].payload
	if p.ID != wantID || p.Seq != 1 || p.Token != token || p.Revision != 0 || p.Type != "created" ||
		p.From != "" || p.To != "active" || p.Reason != "" || p.Actor != "" {
		t.Errorf("payload = %+v, want the created event of %s", p, token)
	}
	if p.Time.IsZero() || p.Time.Location() != time.UTC {
		t.Errorf("payload time = %v, want a time in UTC", p.Time)
	}
	var fields map[string]any
	if err := json.Unmarshal(requests[2].body, &fields); err != nil {
		t.Fatalf("body is not a JSON object: %v", err)
	}
	for _, name := range []string{"id", "seq", "token", "revision", "type", "from", "to", "reason", "actor", "time"} {
		if _, ok := fields[name]; !ok {
			t.Errorf("body has no field %q: %s", name, requests[2].body)
		}
	}
	if len(fields) != 10 {
		t.Errorf("body has %d fields, want 10: %s", len(fields), requests[2].body)
	}
	if _, err := time.Parse(time.RFC3339, fields["time"].(string)); err != nil {
		t.Errorf("time %q is not RFC 3339: %v", fields["time"], err)
	}

	got := failed.all()
	if len(got) != 2 {
		t.Fatalf("OnError was called %d times, want 2", len(got))
	}
	for i, f := range got {
		var statusErr *StatusError
		if f.Endpoint != "billing" || f.Attempt != i+1 || f.Dead || f.Event.ID != wantID ||
			!errors.As(f.Err, &statusErr) || statusErr.StatusCode != http.StatusInternalServerError {
			t.Errorf("OnError call %d = endpoint %q, attempt %d, dead %t, event %s, err %v; want billing, attempt %d, not dead, %s, a StatusError 500",
				i+1, f.Endpoint, f.Attempt, f.Dead, f.Event.ID, f.Err, i+1, wantID)
		}
	}
}

// TestDeliveryBackoff checks that failed attempts are spread out by the
// backoff. Each wait is a random time from 0 to the backoff cap, so one
// wait can be near 0. But 9 waits of up to 20 ms add up to less than 20 ms
// with a probability of 1/9!, about 3 in a million.
func TestDeliveryBackoff(t *testing.T) {
	const backoff = 20 * time.Millisecond
	v := newVault(t)
	rec := newTestReceiver(t, always(http.StatusServiceUnavailable))
	opts := fastOptions()
	opts.MaxAttempts, opts.MinBackoff, opts.MaxBackoff = 10, backoff, backoff
	runDispatcher(t, NewDispatcher(v, []Endpoint{rec.endpoint("billing")}, opts))

	if _, err := v.Tokenize(context.Background(), []byte("backoff test value")); err != nil {
		t.Fatalf("Tokenize err = %v", err)
	}
	waitFor(t, "10 attempts", func() bool { return len(rec.all()) >= 10 })

	requests := rec.all()
	total := requests[9].at.Sub(requests[0].at)
	if total < backoff {
		t.Errorf("10 attempts took %v, want at least %v of backoff", total, backoff)
	}
	for i := 1; i < 10; i++ {
		if gap := requests[i].at.Sub(requests[i-1].at); gap > backoff+5*time.Second {
			t.Errorf("attempt %d came %v after the previous one, want at most about %v", i+1, gap, backoff)
		}
	}
}

// TestDeliveryOrderPerToken changes several tokens while the receiver fails
// every third request, and checks that each token's events are acknowledged
// in revision order and every event in outbox order.
func TestDeliveryOrderPerToken(t *testing.T) {
	ctx := context.Background()
	v := newVault(t)
	rec := newTestReceiver(t, func(_ received, n int) int {
		if n%3 == 0 {
			return http.StatusBadGateway
		}
		return http.StatusOK
	})
	opts := fastOptions()
	opts.MaxAttempts = 10
	runDispatcher(t, NewDispatcher(v, []Endpoint{rec.endpoint("ledger")}, opts))

	var tokens []string
	for i := range 5 {
		token, err := v.Tokenize(ctx, []byte{'v', byte('0' + i)})
		if err != nil {
			t.Fatalf("Tokenize err = %v", err)
		}
		tokens = append(tokens, token)
	}
	for round := range 3 {
		for i, token := range tokens {
			var err error
			switch {
			case round == 2 && i%2 == 0:
				err = v.CloseToken(ctx, token, tokenvault.WithReason("round 3"))
			case round%2 == 0:
				err = v.SuspendToken(ctx, token, tokenvault.WithReason("review"), tokenvault.WithActor("ops"))
			default:
				err = v.ActivateToken(ctx, token)
			}
			if err != nil {
				t.Fatalf("round %d, token %d: err = %v", round, i, err)
			}
		}
	}

	events := allEvents(t, v)
	waitFor(t, "every event to be acknowledged", func() bool {
		return len(acknowledgedIDs(rec.acknowledged())) == len(events)
	})

	acked := rec.acknowledged()
	nextRevision := make(map[string]uint64)
	var lastSeq uint64
	for _, r := range acked {
		p := r.payload
		if p.Seq <= lastSeq {
			t.Errorf("event seq %d was acknowledged after seq %d", p.Seq, lastSeq)
		}
		lastSeq = p.Seq
		if p.Revision != nextRevision[p.Token] {
			t.Errorf("token %s: revision %d was acknowledged, want revision %d next", p.Token, p.Revision, nextRevision[p.Token])
		}
		nextRevision[p.Token] = p.Revision + 1
	}
	if len(acked) != len(events) {
		t.Errorf("receiver acknowledged %d requests for %d events, want one each", len(acked), len(events))
	}
	for _, e := range events {
		if e.Type == tokenvault.EventSuspended && (e.Reason != "review" || e.Actor != "ops") {
			t.Errorf("event %s has reason %q and actor %q, want review and ops", e.ID, e.Reason, e.Actor)
		}
	}
	for _, r := range acked {
		if r.payload.Type == "suspended" && (r.payload.Reason != "review" || r.payload.Actor != "ops") {
			t.Errorf("payload of %s has reason %q and actor %q, want review and ops", r.payload.ID, r.payload.Reason, r.payload.Actor)
		}
	}
}

// TestDeadLetterThenRedeliver checks that an event becomes a dead letter
// after MaxAttempts failures, that the endpoint goes on with the next
// event, and that Redeliver sends the dead letter again.
func TestDeadLetterThenRedeliver(t *testing.T) {
	ctx := context.Background()
	v := newVault(t)
	rec := newTestReceiver(t, always(http.StatusInternalServerError))
	var failed failures
	opts := fastOptions()
	opts.MaxAttempts = 3
	opts.OnError = failed.record
	runDispatcher(t, NewDispatcher(v, []Endpoint{rec.endpoint("billing")}, opts))
	name := SubscriberName("billing")

	first, err := v.Tokenize(ctx, []byte("first value"))
	if err != nil {
		t.Fatalf("Tokenize err = %v", err)
	}
	var letters []tokenvault.DeadLetter
	waitFor(t, "a dead letter", func() bool {
		letters, err = v.DeadLetters(ctx, name)
		return err != nil || len(letters) > 0
	})
	if err != nil {
		t.Fatalf("DeadLetters err = %v", err)
	}
	firstID := tokenvault.EventID(first, 0)
	if len(letters) != 1 || letters[0].Event.ID != firstID || letters[0].Attempts != 3 {
		t.Fatalf("DeadLetters = %+v, want the created event of the first token after 3 attempts", letters)
	}
	if !strings.Contains(letters[0].LastError, "500") {
		t.Errorf("dead letter LastError = %q, want it to name status 500", letters[0].LastError)
	}
	if n := len(rec.all()); n != 3 {
		t.Errorf("receiver got %d requests, want 3 attempts", n)
	}
	if got := failed.all(); len(got) != 3 || !got[2].Dead || got[1].Dead {
		t.Errorf("OnError calls = %+v, want 3 with only the last one marked dead", got)
	}

	rec.setRespond(always(http.StatusOK))
	second, err := v.Tokenize(ctx, []byte("second value"))
	if err != nil {
		t.Fatalf("Tokenize err = %v", err)
	}
	secondID := tokenvault.EventID(second, 0)
	waitFor(t, "the second event", func() bool { return acknowledgedIDs(rec.acknowledged())[secondID] })

	if err := v.Redeliver(ctx, name, letters[0].Event.Seq); err != nil {
		t.Fatalf("Redeliver err = %v", err)
	}
	waitFor(t, "the redelivered event", func() bool { return acknowledgedIDs(rec.acknowledged())[firstID] })
	letters, err = v.DeadLetters(ctx, name)
	if err != nil || len(letters) != 0 {
		t.Errorf("DeadLetters after redelivery = %d letters, %v, want none", len(letters), err)
	}
	var redelivered received
	for _, r := range rec.acknowledged() {
		if r.payload.ID == firstID {
			redelivered = r
		}
	}
	if err := Verify(endpointSecret, redelivered.header.Get(SignatureHeader), redelivered.body, redelivered.at, 0); err != nil {
		t.Errorf("redelivered request: Verify err = %v", err)
	}
}

// TestRedeliveredDeadLetterFollowsLaterRevision checks the exception to
// outbox order that the package documentation states: a dead letter sent
// again by Redeliver arrives after a later revision of its token, so a
// receiver that needs order compares revisions.
func TestRedeliveredDeadLetterFollowsLaterRevision(t *testing.T) {
	ctx := context.Background()
	v := newVault(t)
	rec := newTestReceiver(t, always(http.StatusInternalServerError))
	opts := fastOptions()
	opts.MaxAttempts = 2
	runDispatcher(t, NewDispatcher(v, []Endpoint{rec.endpoint("billing")}, opts))

	token, err := v.Tokenize(ctx, []byte("order test value"))
	if err != nil {
		t.Fatalf("Tokenize err = %v", err)
	}
	letters := waitForDeadLetters(t, v, "billing")
	rec.setRespond(always(http.StatusOK))
	if err := v.SuspendToken(ctx, token, tokenvault.WithReason("order test")); err != nil {
		t.Fatalf("SuspendToken err = %v", err)
	}
	waitFor(t, "the suspended event", func() bool { return len(rec.acknowledged()) == 1 })
	if err := v.Redeliver(ctx, SubscriberName("billing"), letters[0].Event.Seq); err != nil {
		t.Fatalf("Redeliver err = %v", err)
	}
	waitFor(t, "the redelivered event", func() bool { return len(rec.acknowledged()) == 2 })

	acked := rec.acknowledged()
	if acked[0].payload.Revision != 1 || acked[1].payload.Revision != 0 {
		t.Fatalf("revisions acknowledged = %d then %d, want 1 then the redelivered 0", acked[0].payload.Revision, acked[1].payload.Revision)
	}
	// A receiver that keeps the highest revision per token ignores the
	// redelivered event and keeps the suspended state.
	latest := make(map[string]Payload)
	for _, r := range acked {
		if last, ok := latest[r.payload.Token]; !ok || r.payload.Revision > last.Revision {
			latest[r.payload.Token] = r.payload
		}
	}
	if got := latest[token]; got.To != "suspended" {
		t.Errorf("latest state of %s by revision = %q, want suspended", token, got.To)
	}
}

// TestRestartResumes stops a dispatcher while a delivery is in flight,
// writes more events while none runs, reopens the vault and starts a new
// dispatcher, which must deliver every event that the first did not
// acknowledge, and none that it did.
func TestRestartResumes(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "vault.db")
	v := openVault(t, path)

	hangs := make(chan string, 10) // event IDs of the requests held
	rec := newTestReceiver(t, func(r received, _ int) int {
		if r.payload.Seq == 4 {
			hangs <- r.payload.ID
			return hang
		}
		return http.StatusOK
	})
	endpoints := []Endpoint{rec.endpoint("billing")}
	stop := runDispatcher(t, NewDispatcher(v, endpoints, fastOptions()))

	var before []string
	for i := range 4 {
		token, err := v.Tokenize(ctx, []byte{'a', byte('0' + i)})
		if err != nil {
			t.Fatalf("Tokenize err = %v", err)
		}
		before = append(before, token)
	}
	var inFlight string
	select {
	case inFlight = <-hangs:
	case <-time.After(waitTimeout):
		t.Fatal("the delivery of the fourth event did not start")
	}
	// respond runs before the receiver records the request.
	waitFor(t, "the held request to be recorded", func() bool { return len(rec.all()) == 4 })
	if n := len(rec.acknowledged()); n != 3 {
		t.Fatalf("receiver acknowledged %d events before the fourth, want 3", n)
	}
	if err := stop(); !errors.Is(err, context.Canceled) {
		t.Errorf("Run after cancel err = %v, want context.Canceled", err)
	}
	firstRun := len(rec.all())

	// Events written while no dispatcher runs.
	for i := range 3 {
		if _, err := v.Tokenize(ctx, []byte{'b', byte('0' + i)}); err != nil {
			t.Fatalf("Tokenize err = %v", err)
		}
	}
	if err := v.Close(); err != nil {
		t.Fatalf("Close err = %v", err)
	}

	rec.setRespond(always(http.StatusOK))
	v = openVault(t, path)
	events := allEvents(t, v)
	if len(events) != 7 {
		t.Fatalf("outbox has %d events, want 7", len(events))
	}
	runDispatcher(t, NewDispatcher(v, endpoints, fastOptions()))
	waitFor(t, "every event", func() bool { return len(acknowledgedIDs(rec.acknowledged())) == len(events) })

	secondRun := rec.all()[firstRun:]
	if len(secondRun) != 4 {
		t.Errorf("the second dispatcher sent %d requests, want 4: the one in flight at the stop and 3 new", len(secondRun))
	}
	if len(secondRun) > 0 && secondRun[0].payload.ID != inFlight {
		t.Errorf("the second dispatcher started with %s, want %s, which was in flight at the stop", secondRun[0].payload.ID, inFlight)
	}
	for _, r := range secondRun {
		if slices.Contains(before[:3], r.payload.Token) {
			t.Errorf("the second dispatcher sent event %s again, which the first had acknowledged", r.payload.ID)
		}
	}
	var lastSeq uint64
	for _, r := range secondRun {
		if r.payload.Seq <= lastSeq {
			t.Errorf("seq %d sent after seq %d", r.payload.Seq, lastSeq)
		}
		lastSeq = r.payload.Seq
	}
}

// readTestPANs returns the card numbers of testdata/test-pans.csv, which card
// networks and processors publish as test numbers, and whether each passes
// the Luhn check.
func readTestPANs(t *testing.T) (pans []string, luhnValid []bool) {
	t.Helper()
	f, err := os.Open(filepath.Join("..", "testdata", "test-pans.csv"))
	if err != nil {
		t.Fatalf("open test numbers: %v", err)
	}
	defer f.Close()
	rows, err := csv.NewReader(f).ReadAll()
	if err != nil {
		t.Fatalf("read test numbers: %v", err)
	}
	for _, row := range rows[1:] {
		pans = append(pans, row[1])
		luhnValid = append(luhnValid, row[3] == "true")
	}
	if len(pans) != 47 {
		t.Fatalf("read %d test numbers, want 47", len(pans))
	}
	return pans, luhnValid
}

// TestRequestsHoldNoCardNumber tokenizes every published test card number,
// changes some of the tokens, and checks that no request body or header
// contains a card number.
func TestRequestsHoldNoCardNumber(t *testing.T) {
	ctx := context.Background()
	v := newVault(t)
	rec := newTestReceiver(t, func(_ received, n int) int {
		if n%4 == 0 {
			return http.StatusInternalServerError
		}
		return http.StatusAccepted
	})
	runDispatcher(t, NewDispatcher(v, []Endpoint{rec.endpoint("billing")}, fastOptions()))

	pans, luhnValid := readTestPANs(t)
	for i, pan := range pans {
		var opts []tokenvault.TokenizeOption
		if !luhnValid[i] {
			opts = append(opts, tokenvault.AllowNonLuhn())
		}
		if i%3 == 0 && len(pan) >= 15 {
			opts = append(opts, tokenvault.WithFormat(tokenvault.FormatCardFirstSix))
		}
		token, err := v.TokenizeCard(ctx, pan, opts...)
		if err != nil {
			t.Fatalf("TokenizeCard(test number %d) err = %v", i+1, err)
		}
		if i%5 == 0 {
			if err := v.SuspendToken(ctx, token, tokenvault.WithReason("fraud review")); err != nil {
				t.Fatalf("SuspendToken err = %v", err)
			}
			if err := v.CloseToken(ctx, token, tokenvault.WithReason("card replaced")); err != nil {
				t.Fatalf("CloseToken err = %v", err)
			}
		}
	}
	if _, err := v.Tokenize(ctx, []byte("generic data: "+pans[0])); err != nil {
		t.Fatalf("Tokenize err = %v", err)
	}

	events := allEvents(t, v)
	waitFor(t, "every event", func() bool { return len(acknowledgedIDs(rec.acknowledged())) == len(events) })

	for _, r := range rec.all() {
		var headers strings.Builder
		for name, values := range r.header {
			headers.WriteString(name + ": " + strings.Join(values, ",") + "\n")
		}
		for i, pan := range pans {
			if strings.Contains(string(r.body), pan) {
				t.Errorf("the body of the request for %s contains test card number %d", r.payload.ID, i+1)
			}
			if strings.Contains(headers.String(), pan) {
				t.Errorf("the headers of the request for %s contain test card number %d", r.payload.ID, i+1)
			}
		}
	}
}

// TestRedirectIsFailure checks that a redirect is a failed attempt and that
// the Dispatcher does not follow it.
func TestRedirectIsFailure(t *testing.T) {
	v := newVault(t)
	var followed sync.Map
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/elsewhere" {
			followed.Store(r.Header.Get(EventIDHeader), true)
			w.WriteHeader(http.StatusOK)
			return
		}
		http.Redirect(w, r, "/elsewhere", http.StatusTemporaryRedirect)
	}))
	t.Cleanup(srv.Close)
	opts := fastOptions()
	opts.MaxAttempts = 2
	runDispatcher(t, NewDispatcher(v, []Endpoint{{ID: "moved", URL: srv.URL + "/hooks", Secret: endpointSecret}}, opts))

	if _, err := v.Tokenize(context.Background(), []byte("redirect test")); err != nil {
		t.Fatalf("Tokenize err = %v", err)
	}
	letters := waitForDeadLetters(t, v, "moved")
	if !strings.Contains(letters[0].LastError, "307") {
		t.Errorf("dead letter LastError = %q, want it to name status 307", letters[0].LastError)
	}
	followed.Range(func(id, _ any) bool {
		t.Errorf("the Dispatcher followed the redirect for event %s", id)
		return true
	})
}

// waitForDeadLetters waits until the endpoint id has a dead letter and
// returns its dead letters.
func waitForDeadLetters(t *testing.T, v *tokenvault.Vault, id string) []tokenvault.DeadLetter {
	t.Helper()
	var letters []tokenvault.DeadLetter
	var err error
	waitFor(t, "a dead letter of "+id, func() bool {
		letters, err = v.DeadLetters(context.Background(), SubscriberName(id))
		return err != nil || len(letters) > 0
	})
	if err != nil {
		t.Fatalf("DeadLetters err = %v", err)
	}
	return letters
}

func TestDeliveryTimeout(t *testing.T) {
	v := newVault(t)
	rec := newTestReceiver(t, always(hang))
	var failed failures
	opts := fastOptions()
	opts.MaxAttempts, opts.Timeout, opts.OnError = 1, 50*time.Millisecond, failed.record
	runDispatcher(t, NewDispatcher(v, []Endpoint{rec.endpoint("slow")}, opts))

	if _, err := v.Tokenize(context.Background(), []byte("timeout test")); err != nil {
		t.Fatalf("Tokenize err = %v", err)
	}
	letters := waitForDeadLetters(t, v, "slow")
	if !strings.Contains(letters[0].LastError, "timed out after 50ms") {
		t.Errorf("dead letter LastError = %q, want it to say the attempt timed out after 50ms", letters[0].LastError)
	}
	if got := failed.all(); len(got) != 1 || !errors.Is(got[0].Err, context.DeadlineExceeded) || !got[0].Dead {
		t.Errorf("OnError calls = %+v, want one, marked dead, whose error wraps context.DeadlineExceeded", got)
	}
}

// TestErrorsHideURL sends to a closed port on 127.0.0.1 through a URL with a
// password and a query parameter, and checks that neither appears in the
// error or the dead letter.
func TestErrorsHideURL(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()

	v := newVault(t)
	var failed failures
	opts := fastOptions()
	opts.MaxAttempts, opts.OnError = 1, failed.record
	url := "http://user:url-password@" + addr + "/hooks?token=query-credential"
	runDispatcher(t, NewDispatcher(v, []Endpoint{{ID: "closed", URL: url, Secret: endpointSecret}}, opts))

	if _, err := v.Tokenize(context.Background(), []byte("closed port test")); err != nil {
		t.Fatalf("Tokenize err = %v", err)
	}
	letters := waitForDeadLetters(t, v, "closed")
	got := failed.all()
	if len(got) != 1 {
		t.Fatalf("OnError was called %d times, want 1", len(got))
	}
	for _, text := range []string{got[0].Err.Error(), letters[0].LastError} {
		if !strings.Contains(text, "endpoint closed") {
			t.Errorf("error %q does not name the endpoint", text)
		}
		for _, secret := range []string{"url-password", "query-credential", string(endpointSecret)} {
			if strings.Contains(text, secret) {
				t.Errorf("error %q contains %q", text, secret)
			}
		}
	}
}

// TestEndpointsAreIndependent checks that an endpoint that keeps failing
// does not hold up another.
func TestEndpointsAreIndependent(t *testing.T) {
	ctx := context.Background()
	v := newVault(t)
	down := newTestReceiver(t, always(http.StatusServiceUnavailable))
	up := newTestReceiver(t, always(http.StatusOK))
	opts := fastOptions()
	opts.MaxAttempts = 1000
	runDispatcher(t, NewDispatcher(v, []Endpoint{down.endpoint("down"), up.endpoint("up")}, opts))

	for i := range 3 {
		if _, err := v.Tokenize(ctx, []byte{'x', byte('0' + i)}); err != nil {
			t.Fatalf("Tokenize err = %v", err)
		}
	}
	waitFor(t, "3 events at the working endpoint", func() bool { return len(up.acknowledged()) == 3 })
	for _, r := range down.all() {
		if r.payload.Seq != 1 {
			t.Errorf("the failing endpoint got event seq %d, want only seq 1 until it succeeds", r.payload.Seq)
		}
	}
	for _, r := range up.all() {
		if err := Verify(endpointSecret, r.header.Get(SignatureHeader), r.body, r.at, 0); err != nil {
			t.Errorf("request %s: Verify err = %v", r.payload.ID, err)
		}
	}
}

func TestRunRejectsInvalidEndpoint(t *testing.T) {
	v := newVault(t)
	tests := []struct {
		name     string
		endpoint Endpoint
	}{
		{"short secret", Endpoint{ID: "a", URL: "http://127.0.0.1:1/", Secret: []byte("short")}},
		{"bad id", Endpoint{ID: "a/b", URL: "http://127.0.0.1:1/", Secret: endpointSecret}},
		{"bad url", Endpoint{ID: "a", URL: "127.0.0.1:1", Secret: endpointSecret}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := NewDispatcher(v, []Endpoint{tt.endpoint}, nil).Run(context.Background())
			if err == nil {
				t.Fatal("Run err = nil, want an error")
			}
			if strings.Contains(err.Error(), string(tt.endpoint.Secret)) {
				t.Errorf("Run error %q contains the secret", err)
			}
		})
	}

	dup := Endpoint{ID: "a", URL: "http://127.0.0.1:1/", Secret: endpointSecret}
	if err := NewDispatcher(v, []Endpoint{dup, dup}, nil).Run(context.Background()); err == nil {
		t.Error("Run with two endpoints with one ID err = nil, want an error")
	}
}

func TestRunSameEndpointTwice(t *testing.T) {
	v := newVault(t)
	rec := newTestReceiver(t, always(http.StatusOK))
	endpoints := []Endpoint{rec.endpoint("billing")}
	d := NewDispatcher(v, endpoints, fastOptions())
	runDispatcher(t, d)
	// A delivered event shows that the first Run has subscribed.
	if _, err := v.Tokenize(context.Background(), []byte("subscribed")); err != nil {
		t.Fatalf("Tokenize err = %v", err)
	}
	waitFor(t, "the first Run to deliver", func() bool { return len(rec.acknowledged()) == 1 })

	for name, second := range map[string]*Dispatcher{"same Dispatcher": d, "other Dispatcher": NewDispatcher(v, endpoints, nil)} {
		ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
		err := second.Run(ctx)
		cancel()
		if !errors.Is(err, tokenvault.ErrSubscriberRunning) || !strings.Contains(err.Error(), "billing") {
			t.Errorf("Run of the %s during the first Run err = %v, want ErrSubscriberRunning naming the endpoint", name, err)
		}
	}
}

func TestRunStopsWhenVaultCloses(t *testing.T) {
	v := newVault(t)
	rec := newTestReceiver(t, always(http.StatusOK))
	d := NewDispatcher(v, []Endpoint{rec.endpoint("a"), rec.endpoint("b")}, fastOptions())
	done := make(chan error, 1)
	go func() { done <- d.Run(context.Background()) }()

	if _, err := v.Tokenize(context.Background(), []byte("before close")); err != nil {
		t.Fatalf("Tokenize err = %v", err)
	}
	waitFor(t, "both endpoints", func() bool { return len(rec.acknowledged()) == 2 })
	if err := v.Close(); err != nil {
		t.Fatalf("Close err = %v", err)
	}
	select {
	case err := <-done:
		if !errors.Is(err, tokenvault.ErrVaultClosed) {
			t.Errorf("Run after Close err = %v, want ErrVaultClosed", err)
		}
	case <-time.After(waitTimeout):
		t.Fatal("Run did not return after the vault closed")
	}
}

func TestRunWithoutEndpoints(t *testing.T) {
	v := newVault(t)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	if err := NewDispatcher(v, nil, nil).Run(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Run without endpoints err = %v, want context.DeadlineExceeded when ctx ends", err)
	}
}

// TestNewDispatcherCopiesEndpoints changes the caller's endpoint after
// NewDispatcher, which must not change what the Dispatcher signs with.
func TestNewDispatcherCopiesEndpoints(t *testing.T) {
	v := newVault(t)
	rec := newTestReceiver(t, always(http.StatusOK))
	endpoints := []Endpoint{rec.endpoint("billing")}
	endpoints[0].Secret = slices.Clone(endpointSecret)
	d := NewDispatcher(v, endpoints, fastOptions())
	endpoints[0].Secret[0] ^= 0xff
	endpoints[0].URL = "http://127.0.0.1:1/"
	runDispatcher(t, d)

	if _, err := v.Tokenize(context.Background(), []byte("copy test")); err != nil {
		t.Fatalf("Tokenize err = %v", err)
	}
	waitFor(t, "the event", func() bool { return len(rec.acknowledged()) == 1 })
	r := rec.acknowledged()[0]
	if err := Verify(endpointSecret, r.header.Get(SignatureHeader), r.body, r.at, 0); err != nil {
		t.Errorf("Verify with the secret given to NewDispatcher err = %v", err)
	}
}

func TestNewDispatcherDefaults(t *testing.T) {
	tests := []struct {
		name     string
		opts     *Options
		min, max time.Duration
	}{
		{"nil", nil, DefaultMinBackoff, DefaultMaxBackoff},
		{"only MaxBackoff, below the default MinBackoff", &Options{MaxBackoff: 100 * time.Millisecond}, 100 * time.Millisecond, 100 * time.Millisecond},
		{"only MinBackoff, above the default MaxBackoff", &Options{MinBackoff: time.Hour}, time.Hour, time.Hour},
		{"negative values", &Options{MinBackoff: -1, MaxBackoff: -1, MaxAttempts: -1, Timeout: -1}, DefaultMinBackoff, DefaultMaxBackoff},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := NewDispatcher(nil, nil, tt.opts)
			if d.opts.MinBackoff != tt.min || d.opts.MaxBackoff != tt.max {
				t.Errorf("backoff = %v to %v, want %v to %v", d.opts.MinBackoff, d.opts.MaxBackoff, tt.min, tt.max)
			}
			if d.opts.MaxAttempts != DefaultMaxAttempts {
				t.Errorf("MaxAttempts = %d, want %d", d.opts.MaxAttempts, DefaultMaxAttempts)
			}
			if d.opts.Timeout != DefaultTimeout {
				t.Errorf("Timeout = %v, want %v", d.opts.Timeout, DefaultTimeout)
			}
		})
	}
}

func TestRunNilVault(t *testing.T) {
	if err := NewDispatcher(nil, nil, nil).Run(context.Background()); err == nil {
		t.Error("Run with a nil vault err = nil, want an error")
	}
}
