package main

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"errors"
	"math/big"
	mathrand "math/rand/v2"
	"net"
	"net/http"
	"os"
	"regexp"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// adminSecretPattern matches the line of the first-run notice that carries
// the secret of the initial admin key.
var adminSecretPattern = regexp.MustCompile(`Authorization: Bearer (tvk_\S+)`)

// adminSecret returns the secret that serve printed for the initial admin
// key, and checks that it printed exactly one.
func adminSecret(t *testing.T, p *serveProcess) string {
	t.Helper()
	matches := adminSecretPattern.FindAllStringSubmatch(p.stderr.String(), -1)
	if len(matches) != 1 {
		t.Fatalf("first run printed %d admin secrets, want 1\nstderr:\n%s", len(matches), apiSecretPattern.ReplaceAllString(p.stderr.String(), "tvk_<secret>"))
	}
	return matches[0][1]
}

// createAPIKey runs 'tokenvault apikey create' for a key with one role and
// returns its id and secret.
func createAPIKey(t *testing.T, w *workspace, role string) (id, secret string) {
	t.Helper()
	r := w.run(t, "", "apikey", "create", "--name", role+" client", "--role", role)
	if r.code != 0 {
		t.Fatalf("%v", r)
	}
	secret = apiSecretPattern.FindString(r.stdout)
	if secret == "" {
		t.Fatalf("tokenvault apikey create printed no secret on standard output:\n%s", r.stdout)
	}
	return secret[len("tvk_") : len("tvk_")+8], secret
}

// waitForKey waits until the server accepts a key created while it runs,
// which takes up to about a second.
func waitForKey(t *testing.T, c *apiClient, secret string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		// 401 until the key is known, then 403 or 404 depending on its role.
		r := c.do(t, "POST", "/detokenize", secret, map[string]any{"token": "tok_unknown"})
		if r.status != http.StatusUnauthorized {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("the server still rejects a new API key 10 s after 'tokenvault apikey create': %v", r)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// checkServeLogs checks the output of p, and the audit log at auditPath
// unless it is "". They must not contain a test card number, a vault key or
// one of values. The only API key secret allowed is the first-run notice's.
func checkServeLogs(t *testing.T, w *workspace, p *serveProcess, auditPath string, values map[string]bool) {
	t.Helper()
	r := p.result()
	if r.stdout != "" {
		t.Errorf("serve printed %q on standard output, want nothing", r.stdout)
	}
	if strings.Contains(r.stderr, "WARNING: DATA RACE") {
		t.Errorf("the race detector reported a data race in serve:\n%s", r.stderr)
	}
	withoutNotice := adminSecretPattern.ReplaceAllString(r.stderr, "")
	if n := len(apiSecretPattern.FindAllString(withoutNotice, -1)); n > 0 {
		t.Errorf("serve's standard error contains %d API key secrets outside the first-run notice", n)
	}
	w.checkNoSecrets(t, r)
	checkLogsHaveNoValues(t, "serve's standard error", r.stderr, values)

	if auditPath == "" {
		return
	}
	audit, err := os.ReadFile(auditPath)
	if err != nil {
		t.Fatal(err)
	}
	w.checkNoSecrets(t, result{args: p.args, stderr: string(audit)})
	checkLogsHaveNoValues(t, "the audit log", string(audit), values)
	if n := len(apiSecretPattern.FindAllString(string(audit), -1)); n > 0 {
		t.Errorf("the audit log contains %d API key secrets", n)
	}
}

func TestServeLifecycleAndRoles(t *testing.T) {
	w := newWorkspace(t)
	p := startServe(t, w)
	admin := adminSecret(t, p)
	if records := p.logRecords("listening"); len(records) != 1 || records[0]["auth"] != true || records[0]["tls"] != false {
		t.Errorf("listening log records = %v, want one with auth true and tls false", records)
	}

	_, tokenizer := createAPIKey(t, w, "tokenize")
	_, detokenizer := createAPIKey(t, w, "detokenize")
	_, lifecycle := createAPIKey(t, w, "lifecycle")
	c := newAPIClient(p)
	for _, secret := range []string{tokenizer, detokenizer, lifecycle} {
		waitForKey(t, c, secret)
	}
	pan := testPANs[0].pan
	values := map[string]bool{pan: true}

	// Tokenize, detokenize, suspend, activate and close, each with the key
	// that has the role.
	r := c.do(t, "POST", "/tokenize", tokenizer, map[string]any{"data": pan, "type": "card"})
	if r.status != http.StatusOK || r.str("token") == "" {
		t.Fatalf("POST /tokenize: %v, want 200 with a token", r)
	}
	token := r.str("token")
	if token == pan {
		t.Fatalf("POST /tokenize returned the card number as the token")
	}
	r = c.do(t, "POST", "/detokenize", detokenizer, map[string]any{"token": token})
	if r.status != http.StatusOK || r.str("data") != pan {
		t.Errorf("POST /detokenize: %v, want 200 with the card number", r)
	}

	lifecycleSteps := []struct {
		path, message  string
		detokenizeCode int
	}{
		{"/suspend", "Token suspended successfully", http.StatusConflict},
		{"/activate", "Token activated successfully", http.StatusOK},
		{"/close", "Token closed successfully", 0},
	}
	for _, step := range lifecycleSteps {
		r = c.do(t, "POST", step.path, lifecycle, map[string]any{"token": token, "reason": "serve test"})
		if r.status != http.StatusOK || r.str("message") != step.message {
			t.Errorf("POST %s: %v, want 200 with message %q", step.path, r, step.message)
		}
		r = c.do(t, "POST", "/detokenize", detokenizer, map[string]any{"token": token})
		switch {
		case step.detokenizeCode != 0 && r.status != step.detokenizeCode:
			t.Errorf("POST /detokenize after %s: %v, want status %d", step.path, r, step.detokenizeCode)
		case step.detokenizeCode == 0 && r.status < 400:
			t.Errorf("POST /detokenize after %s: %v, want an error status", step.path, r)
		}
		if r.status != http.StatusOK && (r.str("error") == "" || r.str("code") == "") {
			t.Errorf("POST /detokenize after %s: %v, want a JSON body with error and code", step.path, r)
		}
	}

	r = c.do(t, "GET", "/tokens/"+token, admin, nil)
	if r.status != http.StatusOK {
		t.Errorf("GET /tokens/{token}: %v, want 200", r)
	}
	if strings.Contains(r.raw, pan) || strings.Contains(r.raw, pan[:12]) {
		t.Errorf("GET /tokens/{token} shows the card number")
	}

	// Each role's key is forbidden the routes of the other roles, and a
	// missing or unknown key is unauthorized everywhere.
	secondToken := c.do(t, "POST", "/tokenize", admin, map[string]any{"data": pan, "type": "card"}).str("token")
	routes := []struct {
		path string
		body map[string]any
		role string
	}{
		{"/tokenize", map[string]any{"data": pan, "type": "card"}, "tokenize"},
		{"/detokenize", map[string]any{"token": secondToken}, "detokenize"},
		{"/suspend", map[string]any{"token": secondToken}, "lifecycle"},
		{"/activate", map[string]any{"token": secondToken}, "lifecycle"},
	}
	keys := map[string]string{"tokenize": tokenizer, "detokenize": detokenizer, "lifecycle": lifecycle}
	for _, route := range routes {
		for role, secret := range keys {
			r := c.do(t, "POST", route.path, secret, route.body)
			want := http.StatusForbidden
			if role == route.role {
				want = http.StatusOK
			}
			if r.status != want {
				t.Errorf("POST %s with a %s key: %v, want %d", route.path, role, r, want)
			}
		}
		r := c.do(t, "POST", route.path, "", route.body)
		if r.status != http.StatusUnauthorized || r.str("code") == "" {
			t.Errorf("POST %s without a key: %v, want 401 with a code", route.path, r)
		}
		r = c.do(t, "POST", route.path, "tvk_00000000_"+strings.Repeat("A", 43), route.body)
		if r.status != http.StatusUnauthorized {
			t.Errorf("POST %s with an unknown key: %v, want 401", route.path, r)
		}
	}

	for _, path := range []string{"/healthz", "/readyz"} {
		if r := c.do(t, "GET", path, "", nil); r.status != http.StatusOK {
			t.Errorf("GET %s: %v, want 200", path, r)
		}
	}
	r = c.do(t, "GET", "/metrics", admin, nil)
	if r.status != http.StatusOK || !strings.Contains(r.raw, "go_goroutines") || !strings.Contains(r.raw, "process_") {
		t.Errorf("GET /metrics: status %d, want 200 with the Go and process collectors' metrics", r.status)
	}

	// A key revoked while the server runs stops working within a few
	// seconds.
	tokenizerID := tokenizer[len("tvk_") : len("tvk_")+8]
	if rr := w.run(t, "", "apikey", "revoke", tokenizerID); rr.code != 0 {
		t.Fatalf("%v", rr)
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		r := c.do(t, "POST", "/tokenize", tokenizer, map[string]any{"data": pan, "type": "card"})
		if r.status == http.StatusUnauthorized {
			break
		}
		if time.Now().After(deadline) {
			t.Errorf("POST /tokenize with a revoked key: %v 5 s after revoking, want 401", r)
			break
		}
		time.Sleep(100 * time.Millisecond)
	}

	if code := p.stop(t, syscall.SIGTERM); code != 0 {
		t.Errorf("serve exited with status %d after SIGTERM, want 0\nstderr:\n%s", code, p.stderr)
	}
	for _, msg := range []string{"shutting down", "closed vault", "stopped"} {
		if len(p.logRecords(msg)) != 1 {
			t.Errorf("serve did not log %q once at shutdown\nstderr:\n%s", msg, p.stderr)
		}
	}
	checkServeLogs(t, w, p, "", values)

	// The secret of the initial admin key is printed on the first run only.
	p = startServe(t, w)
	if strings.Contains(p.stderr.String(), "Authorization: Bearer") {
		t.Errorf("second run printed an admin secret again")
	}
	if r := newAPIClient(p).do(t, "POST", "/detokenize", admin, map[string]any{"token": secondToken}); r.status != http.StatusOK {
		t.Errorf("POST /detokenize with the admin key after a restart: %v, want 200", r)
	}
	if code := p.stop(t, os.Interrupt); code != 0 {
		t.Errorf("serve exited with status %d after SIGINT, want 0", code)
	}
	checkServeLogs(t, w, p, "", values)
}

// TestServeShutdownUnderLoad sends SIGTERM while 32 clients tokenize, and
// checks that every token the server acknowledged survives a restart.
func TestServeShutdownUnderLoad(t *testing.T) {
	if runtime.GOOS == "windows" {
		t.Skip("SIGTERM cannot be sent on Windows")
	}
	const clients = 32
	w := newWorkspace(t)
	auditPath := w.path("audit.log")
	p := startServe(t, w, "--audit-log", auditPath)
	admin := adminSecret(t, p)
	c := newAPIClient(p)

	var (
		mu           sync.Mutex
		acknowledged = map[string]string{} // token to card number
		sent         = map[string]bool{}   // every card number sent
		failures     []string
		accepted     atomic.Int64
		signaled     = make(chan struct{}) // closed just before SIGTERM
		wg           sync.WaitGroup
	)
	for i := range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rng := mathrand.New(mathrand.NewPCG(uint64(i), uint64(time.Now().UnixNano())))
			for {
				pan := luhnCard(rng.IntN)
				mu.Lock()
				sent[pan] = true
				mu.Unlock()

				r, err := c.send("POST", "/tokenize", admin, map[string]any{"data": pan, "type": "card"})
				mu.Lock()
				switch {
				case err != nil:
					// Once the server stops accepting, requests fail to connect.
					select {
					case <-signaled:
					default:
						failures = append(failures, "error before SIGTERM: "+maskCardNumbers(err.Error()))
					}
					if !isConnectionError(err) {
						failures = append(failures, "not a connection error: "+maskCardNumbers(err.Error()))
					}
					mu.Unlock()
					return
				case r.status != http.StatusOK || r.str("token") == "":
					failures = append(failures, r.String())
				default:
					acknowledged[r.str("token")] = pan
					accepted.Add(1)
				}
				mu.Unlock()
			}
		}()
	}

	// Signal in the middle of the load, once a thousand tokens are in.
	deadline := time.Now().Add(childTimeout)
	for accepted.Load() < 1000 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	close(signaled)
	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	code := p.wait(t)
	wg.Wait()

	if code != 0 {
		t.Errorf("serve exited with status %d after SIGTERM under load, want 0\nstderr:\n%s", code, p.stderr)
	}
	if len(failures) > 0 {
		t.Errorf("%d requests failed in a way other than a connection error after SIGTERM, first: %s", len(failures), failures[0])
	}
	// A new client, so that no pooled connection is tried.
	after := newAPIClient(p)
	if _, err := after.send("POST", "/tokenize", admin, map[string]any{"data": testPANs[0].pan, "type": "card"}); !errors.Is(err, syscall.ECONNREFUSED) {
		t.Errorf("POST /tokenize after shutdown: err = %v, want connection refused", err)
	}
	if len(acknowledged) < 1000 {
		t.Fatalf("only %d tokens were acknowledged before shutdown, want at least 1000", len(acknowledged))
	}
	t.Logf("%d tokens acknowledged by the server before it stopped", len(acknowledged))
	if runtime.GOOS != "windows" {
		if mode := fileMode(t, auditPath); mode != 0o600 {
			t.Errorf("audit log mode = %#o, want 0600", mode)
		}
	}
	checkServeLogs(t, w, p, auditPath, sent)

	// Every acknowledged token detokenizes to its value after a restart on
	// the same files.
	p = startServe(t, w, "--audit-log", auditPath)
	c = newAPIClient(p)
	tokens := make(chan string)
	var lost atomic.Int64
	var firstLoss atomic.Value
	var checkers sync.WaitGroup
	for range 8 {
		checkers.Add(1)
		go func() {
			defer checkers.Done()
			for token := range tokens {
				r, err := c.send("POST", "/detokenize", admin, map[string]any{"token": token})
				if err != nil || r.status != http.StatusOK || r.str("data") != acknowledged[token] {
					lost.Add(1)
					firstLoss.CompareAndSwap(nil, fmtLoss(token, r, err))
				}
			}
		}()
	}
	for token := range acknowledged {
		tokens <- token
	}
	close(tokens)
	checkers.Wait()
	if n := lost.Load(); n > 0 {
		t.Errorf("%d of %d acknowledged tokens did not detokenize to their value after a restart, first: %v", n, len(acknowledged), firstLoss.Load())
	}
	if code := p.stop(t, syscall.SIGTERM); code != 0 {
		t.Errorf("restarted serve exited with status %d, want 0", code)
	}
	checkServeLogs(t, w, p, auditPath, sent)
}

func fmtLoss(token string, r apiResponse, err error) string {
	if err != nil {
		return "token " + token + ": " + err.Error()
	}
	return "token " + token + ": " + r.String()
}

func TestServeNoAuthOnlyOnLoopback(t *testing.T) {
	tests := []struct {
		name string
		args []string
		env  []string
	}{
		{"all IPv4 interfaces", []string{"--addr", "0.0.0.0:0"}, nil},
		{"empty host", []string{"--addr", ":0"}, nil},
		{"all IPv6 interfaces", []string{"--addr", "[::]:0"}, nil},
		{"host name", []string{"--addr", "example.com:0"}, nil},
		{"short IPv4 form", []string{"--addr", "127.1:0"}, nil},
		{"address from environment", nil, []string{envAddr + "=0.0.0.0:0"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			w := newWorkspace(t).with(tt.env...)
			r := w.run(t, "", append([]string{"serve", "--no-auth"}, tt.args...)...)
			checkExit(t, r, exitUsage)
			checkStderr(t, r, "loopback")
			for _, name := range []string{"tokenvault.db", "tokenvault.key", "tokenvault.apikeys"} {
				if exists(w.path(name)) {
					t.Errorf("serve --no-auth on a public address created %s", name)
				}
			}
		})
	}
}

func TestServeUsageErrors(t *testing.T) {
	tests := []struct {
		name string
		args []string
	}{
		{"certificate without key", []string{"--tls-cert", "cert.pem"}},
		{"key without certificate", []string{"--tls-key", "key.pem"}},
		{"address without port", []string{"--addr", "127.0.0.1"}},
		{"zero shutdown timeout", []string{"--shutdown-timeout", "0s"}},
		{"zero body limit", []string{"--max-body-bytes", "0"}},
		{"negative batch limit", []string{"--max-batch-items", "-1"}},
		{"zero batch data limit", []string{"--max-batch-data-bytes", "0"}},
		{"body limit past 1 GiB", []string{"--max-body-bytes", "1073741825"}},
		{"largest body limit", []string{"--max-body-bytes", "9223372036854775807"}},
		{"batch limit past 100,000", []string{"--max-batch-items", "100001"}},
		{"positional argument", []string{"now"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			w := newWorkspace(t)
			r := w.run(t, "", append([]string{"serve"}, tt.args...)...)
			checkExit(t, r, exitUsage)
			if exists(w.path("tokenvault.db")) {
				t.Errorf("serve %s created the database", strings.Join(tt.args, " "))
			}
		})
	}
}

func TestServeNoAuthOnLoopback(t *testing.T) {
	w := newWorkspace(t)
	p := startServe(t, w, "--no-auth")
	if strings.Contains(p.stderr.String(), "Authorization: Bearer") {
		t.Errorf("serve --no-auth created an admin key")
	}
	if records := p.logRecords("listening"); len(records) != 1 || records[0]["auth"] != false {
		t.Errorf("listening log records = %v, want one with auth false", records)
	}

	c := newAPIClient(p)
	pan := testPANs[1].pan
	r := c.do(t, "POST", "/tokenize", "", map[string]any{"data": pan, "type": "card"})
	if r.status != http.StatusOK {
		t.Fatalf("POST /tokenize without a key on a --no-auth server: %v, want 200", r)
	}
	r = c.do(t, "POST", "/detokenize", "", map[string]any{"token": r.str("token")})
	if r.status != http.StatusOK || r.str("data") != pan {
		t.Errorf("POST /detokenize without a key on a --no-auth server: %v, want 200 with the card number", r)
	}
	if code := p.stop(t, syscall.SIGTERM); code != 0 {
		t.Errorf("serve exited with status %d, want 0", code)
	}
	checkServeLogs(t, w, p, "", map[string]bool{pan: true})
}

// An audit log on a pipe, which cannot be synced, closes without an error at
// shutdown, and "stopped" is the last line of serve's log.
func TestServeAuditLogOnPipe(t *testing.T) {
	if runtime.GOOS == "windows" {
		t.Skip("SIGTERM cannot be sent on Windows, and there is no /dev/stdout")
	}
	w := newWorkspace(t)
	// startServe gives the child a pipe as its standard output.
	p := startServe(t, w, "--no-auth", "--audit-log", "/dev/stdout")

	c := newAPIClient(p)
	r := c.do(t, "POST", "/tokenize", "", map[string]any{"data": "a value for the audit log"})
	if r.status != http.StatusOK {
		t.Fatalf("POST /tokenize: %v, want 200", r)
	}
	r = c.do(t, "POST", "/detokenize", "", map[string]any{"token": r.str("token")})
	if r.status != http.StatusOK {
		t.Fatalf("POST /detokenize: %v, want 200", r)
	}
	if code := p.stop(t, syscall.SIGTERM); code != 0 {
		t.Errorf("serve exited with status %d, want 0\nstderr:\n%s", code, p.stderr)
	}

	if !strings.Contains(p.stdout.String(), `"route":"/detokenize"`) {
		t.Errorf("standard output has no audit record of /detokenize:\n%s", p.stdout)
	}
	lines := strings.Split(strings.TrimSpace(p.stderr.String()), "\n")
	var last map[string]any
	if err := json.Unmarshal([]byte(lines[len(lines)-1]), &last); err != nil || last["msg"] != "stopped" {
		t.Errorf("last log line = %q, want the \"stopped\" record", lines[len(lines)-1])
	}
}

// TestServeLimits checks that the limit flags reach the handler.
func TestServeLimits(t *testing.T) {
	w := newWorkspace(t)
	p := startServe(t, w, "--no-auth", "--max-body-bytes", "300", "--max-batch-items", "2", "--max-batch-data-bytes", "20")
	c := newAPIClient(p)

	r := c.do(t, "POST", "/tokenize", "", map[string]any{"data": strings.Repeat("x", 400)})
	if r.status != http.StatusRequestEntityTooLarge || r.str("code") != "body_too_large" {
		t.Errorf("POST /tokenize of a 400-byte value with --max-body-bytes 300: %v, want 413 body_too_large", r)
	}

	items := []map[string]any{{"data": testPANs[0].pan, "type": "card"}, {"data": testPANs[1].pan, "type": "card"}}
	r = c.do(t, "POST", "/tokenize/batch", "", map[string]any{"items": append(items, items[0])})
	if r.status != http.StatusRequestEntityTooLarge || r.str("code") != "too_many_items" {
		t.Errorf("POST /tokenize/batch of 3 items with --max-batch-items 2: %v, want 413 too_many_items", r)
	}

	r = c.do(t, "POST", "/tokenize/batch", "", map[string]any{"items": items})
	results, _ := r.body["results"].([]any)
	if r.status != http.StatusOK || len(results) != 2 {
		t.Fatalf("POST /tokenize/batch of 2 items: %v, want 200 with 2 results", r)
	}
	var tokens []string
	for _, item := range results {
		token, _ := item.(map[string]any)["token"].(string)
		tokens = append(tokens, token)
	}
	r = c.do(t, "POST", "/detokenize/batch", "", map[string]any{"tokens": tokens})
	results, _ = r.body["results"].([]any)
	if r.status != http.StatusOK || len(results) != 2 {
		t.Fatalf("POST /detokenize/batch of 2 tokens: %v, want 200 with 2 results", r)
	}
	if data, _ := results[0].(map[string]any)["data"].(string); data != testPANs[0].pan {
		t.Errorf("POST /detokenize/batch item 0 did not return its card number under --max-batch-data-bytes 20")
	}
	if code, _ := results[1].(map[string]any)["code"].(string); code != "response_too_large" {
		t.Errorf("POST /detokenize/batch item 1 code = %q, want response_too_large past --max-batch-data-bytes 20", code)
	}

	if code := p.stop(t, syscall.SIGTERM); code != 0 {
		t.Errorf("serve exited with status %d, want 0", code)
	}
}

func TestServeTLS(t *testing.T) {
	w := newWorkspace(t)
	certPEM := writeSelfSignedCert(t, w.path("cert.pem"), w.path("key.pem"))
	p := startServe(t, w, "--tls-cert", "cert.pem", "--tls-key", "key.pem")
	admin := adminSecret(t, p)
	if records := p.logRecords("listening"); len(records) != 1 || records[0]["tls"] != true {
		t.Errorf("listening log records = %v, want one with tls true", records)
	}

	roots := x509.NewCertPool()
	roots.AppendCertsFromPEM(certPEM)
	c := newTLSClient(p, &tls.Config{RootCAs: roots})
	if r := c.do(t, "GET", "/healthz", "", nil); r.status != http.StatusOK {
		t.Errorf("GET https://.../healthz: %v, want 200", r)
	}
	pan := testPANs[2].pan
	r := c.do(t, "POST", "/tokenize", admin, map[string]any{"data": pan, "type": "card"})
	if r.status != http.StatusOK || r.str("token") == "" {
		t.Errorf("POST https://.../tokenize: %v, want 200 with a token", r)
	}

	plain := newAPIClient(p)
	if r, err := plain.send("GET", "/healthz", "", nil); err == nil && r.status == http.StatusOK {
		t.Errorf("GET http://.../healthz on the HTTPS port: status 200, want a failure")
	}
	if code := p.stop(t, syscall.SIGTERM); code != 0 {
		t.Errorf("serve exited with status %d, want 0", code)
	}
	checkServeLogs(t, w, p, "", map[string]bool{pan: true})
}

// writeSelfSignedCert writes a self-signed certificate for 127.0.0.1 and its
// key as PEM files, and returns the certificate's PEM.
func writeSelfSignedCert(t *testing.T, certPath, keyPath string) []byte {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	template := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "tokenvault serve test"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(time.Hour),
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
		IsCA:                  true,
		IPAddresses:           []net.IP{net.IPv4(127, 0, 0, 1)},
	}
	der, err := x509.CreateCertificate(rand.Reader, template, template, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}

	certPEM := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
	if err := os.WriteFile(certPath, certPEM, 0o600); err != nil {
		t.Fatal(err)
	}
	keyPEM := pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER})
	if err := os.WriteFile(keyPath, keyPEM, 0o600); err != nil {
		t.Fatal(err)
	}
	return certPEM
}

func TestServeSecondInstanceFails(t *testing.T) {
	w := newWorkspace(t)
	p := startServe(t, w)

	r := w.run(t, "", "serve", "--addr", "127.0.0.1:0")
	checkExit(t, r, exitFailure)
	if !strings.Contains(r.stderr, `"level":"ERROR"`) || !strings.Contains(r.stderr, "open vault failed") {
		t.Errorf("second serve on the same database: stderr = %q, want a JSON error record about opening the vault", r.stderr)
	}
	if code := p.stop(t, syscall.SIGTERM); code != 0 {
		t.Errorf("first serve exited with status %d, want 0", code)
	}
}
