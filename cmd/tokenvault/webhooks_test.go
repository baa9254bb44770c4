package main

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/tokenvault/tokenvault"
	"github.com/tokenvault/tokenvault/webhook"
)

// webhookSecret is the secret of the test endpoints; its base64 form is what
// the webhooks file contains.
var (
	webhookSecret       = []byte("cli test webhook secret 32 bytes")
	webhookSecretBase64 = base64.StdEncoding.EncodeToString(webhookSecret)
)

// writeWebhooksFile writes a webhooks file with one endpoint per id and URL
// pair, with mode 0600, at path.
func writeWebhooksFile(t *testing.T, path string, idsAndURLs ...string) {
	t.Helper()
	type endpoint struct {
		ID     string `json:"id"`
		URL    string `json:"url"`
		Secret string `json:"secret"`
	}
	file := struct {
		Endpoints []endpoint `json:"endpoints"`
	}{Endpoints: []endpoint{}}
	for i := 0; i+1 < len(idsAndURLs); i += 2 {
		file.Endpoints = append(file.Endpoints, endpoint{idsAndURLs[i], idsAndURLs[i+1], webhookSecretBase64})
	}
	data, err := json.Marshal(file)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}
}

// checkNoWebhookSecret fails the test if the output of r shows the webhook
// secret, in base64 or as text.
func checkNoWebhookSecret(t *testing.T, r result) {
	t.Helper()
	for _, secret := range []string{webhookSecretBase64, string(webhookSecret)} {
		if strings.Contains(r.stdout, secret) || strings.Contains(r.stderr, secret) {
			t.Errorf("tokenvault %s: output contains the webhook secret", strings.Join(r.args, " "))
		}
	}
}

// webhookReceiver is a webhook endpoint on 127.0.0.1 that records the
// payloads it gets and responds with status.
type webhookReceiver struct {
	srv *httptest.Server

	mu       sync.Mutex
	status   int
	bodies   []string
	accepted []webhook.Payload
}

func newWebhookReceiver(t *testing.T, status int) *webhookReceiver {
	t.Helper()
	rec := &webhookReceiver{status: status}
	rec.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, err := webhook.VerifyRequest(r, webhookSecret, 0)
		if err != nil {
			http.Error(w, "invalid signature", http.StatusUnauthorized)
			return
		}
		var p webhook.Payload
		if err := json.Unmarshal(body, &p); err != nil {
			http.Error(w, "invalid JSON", http.StatusBadRequest)
			return
		}

		rec.mu.Lock()
		defer rec.mu.Unlock()
		rec.bodies = append(rec.bodies, string(body))
		if rec.status < 300 {
			rec.accepted = append(rec.accepted, p)
		}
		w.WriteHeader(rec.status)
	}))
	t.Cleanup(rec.srv.Close)
	return rec
}

func (rec *webhookReceiver) setStatus(status int) {
	rec.mu.Lock()
	defer rec.mu.Unlock()
	rec.status = status
}

func (rec *webhookReceiver) acceptedPayloads() []webhook.Payload {
	rec.mu.Lock()
	defer rec.mu.Unlock()
	return slices.Clone(rec.accepted)
}

// checkBodiesHaveNoCardNumber fails the test if a request body that rec got
// contains a test card number.
func (rec *webhookReceiver) checkBodiesHaveNoCardNumber(t *testing.T) {
	t.Helper()
	rec.mu.Lock()
	defer rec.mu.Unlock()
	for _, body := range rec.bodies {
		for _, p := range testPANs {
			if strings.Contains(body, p.pan) {
				t.Errorf("a webhook body contains the card number %s", masked(p.pan))
			}
		}
	}
}

// waitUntil polls cond until it is true, and fails the test after
// childTimeout.
func waitUntil(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(childTimeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", childTimeout, what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// makeDeadLetters runs a webhook dispatcher in this process over the
// workspace's vault until endpoint id has a dead letter for every event,
// with a receiver that fails every request. It returns the events.
func makeDeadLetters(t *testing.T, w *workspace, id, url string) []tokenvault.Event {
	t.Helper()
	keys, err := tokenvault.LoadKeyFile(w.path("tokenvault.key"))
	if err != nil {
		t.Fatal(err)
	}
	vault, err := tokenvault.Open(w.path("tokenvault.db"), keys)
	if err != nil {
		t.Fatal(err)
	}
	defer vault.Close()
	events, err := vault.Events(context.Background(), 0, tokenvault.MaxEventsLimit)
	if err != nil {
		t.Fatal(err)
	}

	ctx, cancel := context.WithCancel(context.Background())
	opts := &webhook.Options{MaxAttempts: 2, MinBackoff: time.Millisecond, MaxBackoff: time.Millisecond}
	d := webhook.NewDispatcher(vault, []webhook.Endpoint{{ID: id, URL: url, Secret: webhookSecret}}, opts)
	done := make(chan error, 1)
	go func() { done <- d.Run(ctx) }()
	defer func() {
		cancel()
		<-done
	}()

	waitUntil(t, "a dead letter for every event", func() bool {
		letters, err := vault.DeadLetters(context.Background(), webhook.SubscriberName(id))
		return err == nil && len(letters) == len(events)
	})
	return events
}

func TestWebhooksList(t *testing.T) {
	w := newWorkspace(t)
	writeWebhooksFile(t, w.path("tokenvault.webhooks"),
		"billing", "https://billing.example/hooks",
		"fraud", "https://user:url-password@fraud.example/tokenvault")

	r := w.run(t, "", "webhooks", "list")
	checkExit(t, r, exitOK)
	checkOutputLines(t, r, []string{
		"ID       URL",
		"billing  https://billing.example/hooks",
		"fraud    https://user:xxxxx@fraud.example/tokenvault",
	})
	checkNoWebhookSecret(t, r)
	if strings.Contains(r.stdout, "url-password") {
		t.Errorf("webhooks list shows the password of a URL")
	}
	if exists(w.path("tokenvault.db")) {
		t.Errorf("webhooks list created the database")
	}
}

func TestWebhooksFileLocation(t *testing.T) {
	w := newWorkspace(t)
	writeWebhooksFile(t, w.path("beside.webhooks"), "beside", "https://a.example/")
	writeWebhooksFile(t, w.path("env.json"), "env", "https://a.example/")
	writeWebhooksFile(t, w.path("flag.json"), "flag", "https://a.example/")

	tests := []struct {
		name string
		w    *workspace
		args []string
		want string
	}{
		{"beside the database", w, []string{"--db", "beside.db"}, "beside"},
		{"environment", w.with(envWebhooks + "=env.json"), []string{"--db", "beside.db"}, "env"},
		{"flag over environment", w.with(envWebhooks + "=env.json"), []string{"--webhooks", "flag.json"}, "flag"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := tt.w.run(t, "", append([]string{"webhooks", "list"}, tt.args...)...)
			checkExit(t, r, exitOK)
			if got := lines(r.stdout); len(got) != 2 || !strings.HasPrefix(got[1], tt.want+" ") {
				t.Errorf("webhooks list %s printed %q, want the endpoint %s", strings.Join(tt.args, " "), got, tt.want)
			}
		})
	}
}

func TestWebhooksFileErrors(t *testing.T) {
	w := newWorkspace(t)
	r := w.run(t, "", "webhooks", "list")
	checkExit(t, r, exitFailure)
	checkStderr(t, r, "webhooks file ./tokenvault.webhooks does not exist")

	path := w.path("tokenvault.webhooks")
	writeWebhooksFile(t, path, "billing", "https://billing.example/hooks")
	if err := os.Chmod(path, 0o644); err != nil {
		t.Fatal(err)
	}
	r = w.run(t, "", "webhooks", "list")
	checkExit(t, r, exitFailure)
	checkStderr(t, r, "chmod 600")

	if err := os.Chmod(path, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(`{"endpoints": [{"id": "a", "url": "https://a.example/", "secret": "`+webhookSecretBase64+`", "Secret": "x"}]}`), 0o600); err != nil {
		t.Fatal(err)
	}
	r = w.run(t, "", "webhooks", "list")
	checkExit(t, r, exitFailure)
	checkStderr(t, r, "duplicate field")
	checkNoWebhookSecret(t, r)
}

func TestWebhooksUsageErrors(t *testing.T) {
	w := newWorkspace(t)
	writeWebhooksFile(t, w.path("tokenvault.webhooks"), "billing", "https://billing.example/hooks")
	tests := []struct {
		name string
		args []string
		want string
	}{
		{"no subcommand", nil, "missing subcommand"},
		{"unknown subcommand", []string{"send"}, "unknown subcommand"},
		{"list with an argument", []string{"list", "billing"}, "takes no arguments"},
		{"dead-letters with two endpoints", []string{"dead-letters", "a", "b"}, "at most one ENDPOINT"},
		{"redeliver without arguments", []string{"redeliver"}, "missing ENDPOINT and SEQ"},
		{"redeliver without seq", []string{"redeliver", "billing"}, "missing SEQ"},
		{"seq not a number", []string{"redeliver", "billing", "last"}, "invalid SEQ"},
		{"seq zero", []string{"redeliver", "billing", "0"}, "invalid SEQ"},
		{"seq negative", []string{"redeliver", "billing", "--", "-1"}, "invalid SEQ"},
		{"card number as endpoint", []string{"redeliver", testPANs[0].pan}, "missing SEQ"},
		{"card number as seq", []string{"redeliver", "billing", testPANs[0].pan + "x"}, "invalid SEQ"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := w.run(t, "", append([]string{"webhooks"}, tt.args...)...)
			checkExit(t, r, exitUsage)
			checkStderr(t, r, tt.want)
		})
	}
}

// TestWebhooksDeadLettersAndRedeliver makes dead letters with a receiver
// that fails, lists them, queues some again, and checks that serve then
// sends exactly those.
func TestWebhooksDeadLettersAndRedeliver(t *testing.T) {
	w := newWorkspace(t)
	pans := []string{testPANs[0].pan, testPANs[1].pan, testPANs[2].pan}
	tokens := tokenize(t, w, pans)
	rec := newWebhookReceiver(t, http.StatusInternalServerError)
	writeWebhooksFile(t, w.path("tokenvault.webhooks"), "billing", rec.srv.URL+"/hooks", "audit", rec.srv.URL+"/audit")
	events := makeDeadLetters(t, w, "billing", rec.srv.URL+"/hooks")
	for _, e := range events {
		if !slices.Contains(tokens, e.Token) {
			t.Fatalf("event %s is not of a token that tokenize printed", e.ID)
		}
	}

	r := w.run(t, "", "webhooks", "dead-letters")
	checkExit(t, r, exitOK)
	got := lines(r.stdout)
	if len(got) != 1+len(events) || !strings.HasPrefix(got[0], "ENDPOINT") {
		t.Fatalf("webhooks dead-letters printed %d lines, want a header and %d dead letters:\n%s", len(got), len(events), r.stdout)
	}
	for i, line := range got[1:] {
		fields := strings.Fields(line)
		want := []string{"billing", strconv.FormatUint(events[i].Seq, 10), "created", events[i].Token, "0", "2"}
		if len(fields) < 8 || !slices.Equal(fields[:6], want) {
			t.Errorf("dead letter line %d = %q, want it to start with %q", i+1, line, want)
		}
		if !strings.Contains(line, "returned HTTP status 500") {
			t.Errorf("dead letter line %d = %q, want the last error", i+1, line)
		}
	}
	checkNoWebhookSecret(t, r)

	r = w.run(t, "", "webhooks", "dead-letters", "audit")
	checkExit(t, r, exitOK)
	if got := lines(r.stdout); len(got) != 1 {
		t.Errorf("webhooks dead-letters audit printed %q, want only the header", got)
	}
	checkStderr(t, r, "no dead letters")

	r = w.run(t, "", "webhooks", "dead-letters", "unknown")
	checkExit(t, r, exitFailure)
	checkStderr(t, r, `no endpoint with id "unknown"`)
	// w.run checks that the card number does not come back.
	r = w.run(t, "", "webhooks", "dead-letters", testPANs[0].pan)
	checkExit(t, r, exitFailure)
	checkStderr(t, r, "no endpoint with id")

	first, last := strconv.FormatUint(events[0].Seq, 10), strconv.FormatUint(events[2].Seq, 10)
	r = w.run(t, "", "webhooks", "redeliver", "billing", first, last)
	checkExit(t, r, exitOK)
	checkStderr(t, r, "queued dead letter seq "+first+" of endpoint billing")
	r = w.run(t, "", "webhooks", "redeliver", "billing", first)
	checkExit(t, r, exitFailure)
	checkStderr(t, r, "endpoint billing has no dead letter with seq "+first)

	r = w.run(t, "", "webhooks", "dead-letters", "billing")
	checkExit(t, r, exitOK)
	if got := lines(r.stdout); len(got) != 2 || strings.Fields(got[1])[1] != strconv.FormatUint(events[1].Seq, 10) {
		t.Errorf("webhooks dead-letters after redeliver printed %q, want only seq %d", got, events[1].Seq)
	}

	// serve sends the two queued events to billing, and every event to
	// audit, which has no cursor yet.
	rec.setStatus(http.StatusNoContent)
	p := startServe(t, w, "--no-auth")
	waitUntil(t, "the redelivered events", func() bool { return len(rec.acceptedPayloads()) == 2+len(events) })
	if code := p.stop(t, syscall.SIGTERM); code != 0 {
		t.Errorf("serve exited with status %d, want 0", code)
	}

	var billing []string
	for _, payload := range rec.acceptedPayloads() {
		if payload.Token == events[0].Token || payload.Token == events[2].Token {
			billing = append(billing, payload.ID)
		}
	}
	if len(billing) != 4 {
		t.Errorf("receiver accepted %d events of the redelivered tokens, want 4: 2 to billing, 2 to audit", len(billing))
	}
	rec.checkBodiesHaveNoCardNumber(t)
	checkServeLogs(t, w, p, "", nil)
	checkNoWebhookSecret(t, p.result())
}

// TestServeWebhooks checks that serve sends the events of its requests,
// logs each failed attempt with ids and never a value, and stops the
// dispatcher before it closes the vault.
func TestServeWebhooks(t *testing.T) {
	w := newWorkspace(t)
	rec := newWebhookReceiver(t, http.StatusServiceUnavailable)
	writeWebhooksFile(t, w.path("tokenvault.webhooks"), "billing", rec.srv.URL+"/hooks")
	p := startServe(t, w, "--no-auth")
	if records := p.logRecords("started webhook dispatcher"); len(records) != 1 {
		t.Errorf("serve logged %d 'started webhook dispatcher' records, want 1", len(records))
	}

	c := newAPIClient(p)
	pan := testPANs[3].pan
	resp := c.do(t, "POST", "/tokenize", "", map[string]any{"data": pan, "type": "card"})
	if resp.status != http.StatusOK {
		t.Fatalf("POST /tokenize: %v, want 200", resp)
	}
	token := resp.str("token")
	const failedMsg = "webhook delivery failed, retrying after a backoff"
	waitUntil(t, "a logged failure", func() bool { return len(p.logRecords(failedMsg)) > 0 })
	record := p.logRecords(failedMsg)[0]
	wantID := tokenvault.EventID(token, 0)
	if record["endpoint"] != "billing" || record["event_id"] != wantID || record["attempt"] != float64(1) ||
		!strings.Contains(fmt.Sprint(record["error"]), "503") || record["level"] != "WARN" {
		t.Errorf("failure log record = %v, want endpoint billing, event_id %s, attempt 1 and the 503 error at level WARN", record, wantID)
	}

	rec.setStatus(http.StatusOK)
	waitUntil(t, "the event", func() bool { return len(rec.acceptedPayloads()) == 1 })
	if got := rec.acceptedPayloads()[0]; got.ID != wantID || got.Type != "created" {
		t.Errorf("receiver accepted %+v, want the created event of %s", got, token)
	}
	if code := p.stop(t, syscall.SIGTERM); code != 0 {
		t.Errorf("serve exited with status %d, want 0", code)
	}

	stderr := p.stderr.String()
	stopped, closed := strings.Index(stderr, `"stopped webhook dispatcher"`), strings.Index(stderr, `"closed vault"`)
	if stopped < 0 || closed < 0 || stopped > closed {
		t.Errorf("serve did not log that it stopped the webhook dispatcher before it closed the vault:\n%s", stderr)
	}
	rec.checkBodiesHaveNoCardNumber(t)
	checkServeLogs(t, w, p, "", map[string]bool{pan: true})
	checkNoWebhookSecret(t, p.result())
}

func TestServeWithoutWebhooksFile(t *testing.T) {
	w := newWorkspace(t)
	p := startServe(t, w, "--no-auth")
	if records := p.logRecords("no webhooks file, so serve sends no webhooks"); len(records) != 1 {
		t.Errorf("serve logged %d 'no webhooks file' records, want 1", len(records))
	}
	if records := p.logRecords("started webhook dispatcher"); len(records) != 0 {
		t.Errorf("serve started a webhook dispatcher without a webhooks file")
	}
	if code := p.stop(t, syscall.SIGTERM); code != 0 {
		t.Errorf("serve exited with status %d, want 0", code)
	}

	r := w.run(t, "", "serve", "--addr", "127.0.0.1:0", "--no-auth", "--webhooks", "missing.json")
	checkExit(t, r, exitFailure)
	checkStderr(t, r, "load webhooks file failed")
}

// TestWebhooksWhileServeRuns checks that list works while serve holds the
// database, and that the commands that need the database explain why they
// cannot run.
func TestWebhooksWhileServeRuns(t *testing.T) {
	w := newWorkspace(t)
	rec := newWebhookReceiver(t, http.StatusOK)
	writeWebhooksFile(t, w.path("tokenvault.webhooks"), "billing", rec.srv.URL+"/hooks")
	p := startServe(t, w, "--no-auth")

	checkExit(t, w.run(t, "", "webhooks", "list"), exitOK)
	for _, args := range [][]string{{"dead-letters"}, {"redeliver", "billing", "1"}} {
		r := w.run(t, "", append([]string{"webhooks"}, args...)...)
		checkExit(t, r, exitFailure)
		checkStderr(t, r, "in use by another process, such as tokenvault serve")
		checkStderr(t, r, "stop serve")
	}
	if code := p.stop(t, syscall.SIGTERM); code != 0 {
		t.Errorf("serve exited with status %d, want 0", code)
	}
}

func TestWebhooksHelp(t *testing.T) {
	w := newWorkspace(t)
	r := w.run(t, "", "help", "webhooks")
	checkExit(t, r, exitOK)
	for _, text := range []string{"Usage: tokenvault webhooks", "cannot run while\ntokenvault serve holds it", "--webhooks PATH", "mode 0600"} {
		if !strings.Contains(r.stdout, text) {
			t.Errorf("help webhooks does not contain %q:\n%s", text, r.stdout)
		}
	}
	r = w.run(t, "", "help")
	if !strings.Contains(r.stdout, "  webhooks ") {
		t.Errorf("help does not list the webhooks command:\n%s", r.stdout)
	}
}

// TestWebhookReceiverRejectsForgery checks the test receiver itself, so
// that the tests above cannot pass with requests it should have rejected.
func TestWebhookReceiverRejectsForgery(t *testing.T) {
	rec := newWebhookReceiver(t, http.StatusOK)
	body := `{"id":"evt_x_0","type":"created"}`
	req, err := http.NewRequest(http.MethodPost, rec.srv.URL, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set(webhook.SignatureHeader, webhook.Sign([]byte("not the endpoint secret!"), []byte(body), time.Now()))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusUnauthorized || len(rec.acceptedPayloads()) != 0 {
		t.Errorf("receiver responded to a forged request with %d and accepted %d payloads, want 401 and none", resp.StatusCode, len(rec.acceptedPayloads()))
	}
}
