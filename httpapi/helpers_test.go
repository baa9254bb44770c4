package httpapi_test

import (
	"bytes"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/tokenvault/tokenvault"
	"github.com/tokenvault/tokenvault/apikey"
	"github.com/tokenvault/tokenvault/httpapi"
)

// Published test card numbers, never real cards.
const (
	visaPAN       = "4111111111111111"
	mastercardPAN = "5555555555554444"
	amexPAN       = "378282246310005"
)

// fixture is a handler over a real bbolt vault and a real API key file, with
// its audit and error logs captured.
type fixture struct {
	t        *testing.T
	vault    *tokenvault.Vault
	handler  *httpapi.Handler
	registry *prometheus.Registry
	keyFile  *apikey.File
	audit    *syncBuffer
	log      *syncBuffer

	// secrets of one key per role, and their key ids
	secrets map[apikey.Role]string
	keyIDs  map[apikey.Role]string

	clockOffset atomic.Int64 // added to time.Now for the vault's clock

	// secretsSent and valuesSent must not appear in any response body but a
	// successful detokenization's.
	mu          sync.Mutex
	valuesSent  []string
	responses   []recorded
	noLeakCheck bool
}

type recorded struct {
	path string
	resp response
}

type fixtureOption func(*httpapi.Config)

func newFixture(t *testing.T, opts ...fixtureOption) *fixture {
	t.Helper()
	f := &fixture{
		t:        t,
		registry: prometheus.NewRegistry(),
		audit:    &syncBuffer{},
		log:      &syncBuffer{},
		secrets:  map[apikey.Role]string{},
		keyIDs:   map[apikey.Role]string{},
	}

	dir := t.TempDir()
	keys, err := tokenvault.GenerateKeyRing()
	if err != nil {
		t.Fatal(err)
	}
	f.vault, err = tokenvault.Open(filepath.Join(dir, "vault.db"), keys, tokenvault.WithClock(f.now))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.vault.Close() })

	f.keyFile, err = apikey.Open(filepath.Join(dir, "api.keys"))
	if err != nil {
		t.Fatal(err)
	}
	for _, role := range apikey.Roles() {
		secret, key, err := f.keyFile.Create(string(role)+" client", []apikey.Role{role})
		if err != nil {
			t.Fatalf("create %s key: %v", role, err)
		}
		f.secrets[role], f.keyIDs[role] = secret, key.ID
	}

	cfg := httpapi.Config{
		Vault:    f.vault,
		Keys:     f.keyFile,
		Audit:    slog.New(slog.NewJSONHandler(f.audit, nil)),
		Log:      slog.New(slog.NewJSONHandler(f.log, nil)),
		Registry: f.registry,
	}
	for _, opt := range opts {
		opt(&cfg)
	}
	f.handler, err = httpapi.New(cfg)
	if err != nil {
		t.Fatalf("New: %v", err)
	}

	t.Cleanup(f.checkNoLeaks)
	return f
}

func (f *fixture) now() time.Time {
	return time.Now().Add(time.Duration(f.clockOffset.Load()))
}

// advance moves the vault's clock forward.
func (f *fixture) advance(d time.Duration) { f.clockOffset.Add(int64(d)) }

// response is a finished HTTP response.
type response struct {
	status int
	header http.Header
	body   string
}

// errorBody is the JSON of an error response.
type errorBody struct {
	Error string `json:"error"`
	Code  string `json:"code"`
}

func (r response) errorBody(t *testing.T) errorBody {
	t.Helper()
	var e errorBody
	if err := json.Unmarshal([]byte(r.body), &e); err != nil {
		t.Fatalf("error body %q is not JSON: %v", r.body, err)
	}
	return e
}

// request describes a request to send; zero fields get defaults.
type request struct {
	method      string // default POST
	path        string
	body        string
	role        apikey.Role       // the key to send; "" for none
	secret      string            // sent instead of role's key when set
	contentType string            // default application/json; "-" for none
	header      map[string]string // more headers
}

func (f *fixture) do(req request) response {
	f.t.Helper()
	method := req.method
	if method == "" {
		method = http.MethodPost
	}
	r := httptest.NewRequest(method, req.path, strings.NewReader(req.body))
	r.Host = "127.0.0.1:5001" // as a client of a loopback server sends
	switch req.contentType {
	case "":
		r.Header.Set("Content-Type", "application/json")
	case "-":
	default:
		r.Header.Set("Content-Type", req.contentType)
	}
	secret := req.secret
	if secret == "" && req.role != "" {
		secret = f.secrets[req.role]
	}
	if secret != "" {
		r.Header.Set("Authorization", "Bearer "+secret)
	}
	for k, v := range req.header {
		r.Header.Set(k, v)
	}

	return f.serve(req.path, r)
}

// doWithAuthorization sends a JSON request with exactly the Authorization
// headers given.
func (f *fixture) doWithAuthorization(method, path, body string, authorization []string) response {
	f.t.Helper()
	r := httptest.NewRequest(method, path, strings.NewReader(body))
	r.Header.Set("Content-Type", "application/json")
	if authorization != nil {
		r.Header["Authorization"] = authorization
	}
	return f.serve(path, r)
}

func (f *fixture) serve(path string, r *http.Request) response {
	w := httptest.NewRecorder()
	f.handler.ServeHTTP(w, r)
	resp := response{status: w.Code, header: w.Header(), body: w.Body.String()}

	f.mu.Lock()
	f.responses = append(f.responses, recorded{path: path, resp: resp})
	f.mu.Unlock()
	return resp
}

// post sends body to path with the key of role.
func (f *fixture) post(path string, role apikey.Role, body string) response {
	f.t.Helper()
	return f.do(request{path: path, role: role, body: body})
}

// jsonBody encodes v, which tests build from maps.
func jsonBody(t *testing.T, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// tokenize returns a token for value over HTTP; extra adds request fields.
func (f *fixture) tokenize(value string, extra map[string]any) string {
	f.t.Helper()
	body := map[string]any{"data": value}
	for k, v := range extra {
		body[k] = v
	}
	f.sent(value)
	r := f.post("/tokenize", apikey.RoleTokenize, jsonBody(f.t, body))
	if r.status != http.StatusOK {
		f.t.Fatalf("POST /tokenize: status %d, body %s", r.status, r.body)
	}
	var out struct{ Token string }
	if err := json.Unmarshal([]byte(r.body), &out); err != nil || out.Token == "" {
		f.t.Fatalf("POST /tokenize body %q has no token: %v", r.body, err)
	}
	return out.Token
}

// sent records a value that must not come back but from /detokenize.
func (f *fixture) sent(value string) {
	f.mu.Lock()
	f.valuesSent = append(f.valuesSent, value)
	f.mu.Unlock()
}

// checkNoLeaks fails the test if a response body other than a successful
// detokenization's contains a value sent, a test card number or an API key
// secret, or if the audit log contains a value or card number.
func (f *fixture) checkNoLeaks() {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.noLeakCheck {
		return
	}

	secrets := []string{visaPAN, mastercardPAN, amexPAN}
	for _, v := range f.valuesSent {
		if len(v) >= 8 {
			secrets = append(secrets, v)
		}
	}
	apiSecrets := make([]string, 0, len(f.secrets))
	for _, s := range f.secrets {
		apiSecrets = append(apiSecrets, s)
	}

	for _, rec := range f.responses {
		detokenized := rec.resp.status == http.StatusOK && strings.HasPrefix(rec.path, "/detokenize")
		for _, s := range apiSecrets {
			if strings.Contains(rec.resp.body, s) {
				f.t.Errorf("response of %s contains an API key secret", rec.path)
			}
		}
		if detokenized {
			continue
		}
		for _, s := range secrets {
			if strings.Contains(rec.resp.body, s) {
				f.t.Errorf("response of %s (status %d) contains a value or card number that was sent", rec.path, rec.resp.status)
			}
		}
	}

	for _, logged := range []struct {
		name string
		text string
	}{{"audit log", f.audit.String()}, {"error log", f.log.String()}} {
		for _, s := range append(secrets, apiSecrets...) {
			if strings.Contains(logged.text, s) {
				f.t.Errorf("%s contains a value, card number or API key secret", logged.name)
			}
		}
	}
}

// auditRecords returns the audit records written so far.
func (f *fixture) auditRecords() []map[string]any {
	f.t.Helper()
	return parseJSONLines(f.t, f.audit.String())
}

func parseJSONLines(t *testing.T, text string) []map[string]any {
	t.Helper()
	var records []map[string]any
	dec := json.NewDecoder(strings.NewReader(text))
	for {
		var rec map[string]any
		err := dec.Decode(&rec)
		if err == io.EOF {
			return records
		}
		if err != nil {
			t.Fatalf("log line is not JSON: %v", err)
		}
		records = append(records, rec)
	}
}

// syncBuffer is a bytes.Buffer safe for concurrent use.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

func (b *syncBuffer) Reset() {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.buf.Reset()
}

// httptestRequestWithoutLength returns a POST /tokenize request whose body
// has no Content-Length, as a chunked request has.
func httptestRequestWithoutLength(t *testing.T, body string) *http.Request {
	t.Helper()
	r := httptest.NewRequest(http.MethodPost, "/tokenize", struct{ io.Reader }{strings.NewReader(body)})
	r.Header.Set("Content-Type", "application/json")
	if r.ContentLength != -1 {
		t.Fatalf("request ContentLength = %d, want -1 (unknown)", r.ContentLength)
	}
	return r
}

func newRecorder() *httptest.ResponseRecorder { return httptest.NewRecorder() }
