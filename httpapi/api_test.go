package httpapi_test

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/tokenvault/tokenvault"
	"github.com/tokenvault/tokenvault/apikey"
	"github.com/tokenvault/tokenvault/httpapi"
	"github.com/tokenvault/tokenvault/tokenvaulttest"
)

func TestTokenizeOptions(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()

	tests := []struct {
		name   string
		value  string
		extra  map[string]any
		shape  *regexp.Regexp
		kind   tokenvault.Kind
		format tokenvault.Format
	}{
		{"data by default", "account 12-34", nil, regexp.MustCompile(`^tok_[0-9a-v]{36}$`), tokenvault.KindData, tokenvault.FormatOpaque},
		{"type data", "account 12-35", map[string]any{"type": "data"}, regexp.MustCompile(`^tok_`), tokenvault.KindData, tokenvault.FormatOpaque},
		{"type card", visaPAN, map[string]any{"type": "card"}, regexp.MustCompile(`^\d{12}1111$`), tokenvault.KindCard, tokenvault.FormatCard},
		{"card with separators", "5555 5555 5555 4444", map[string]any{"type": "card"}, regexp.MustCompile(`^\d{12}4444$`), tokenvault.KindCard, tokenvault.FormatCard},
		{"card opaque", visaPAN, map[string]any{"type": "card", "format": "opaque"}, regexp.MustCompile(`^tok_`), tokenvault.KindCard, tokenvault.FormatOpaque},
		{"card first six", visaPAN, map[string]any{"type": "card", "format": "card-first-six"}, regexp.MustCompile(`^411111\d{6}1111$`), tokenvault.KindCard, tokenvault.FormatCardFirstSix},
		{"non-Luhn card", "4111111111111112", map[string]any{"type": "card", "allow_non_luhn": true}, regexp.MustCompile(`^\d{12}1112$`), tokenvault.KindCard, tokenvault.FormatCard},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			token := f.tokenize(tt.value, tt.extra)
			if !tt.shape.MatchString(token) {
				t.Errorf("token %q does not match %s", token, tt.shape)
			}
			info, err := f.vault.Inspect(ctx, token)
			if err != nil {
				t.Fatalf("Inspect(%q) err = %v", token, err)
			}
			if info.Kind != tt.kind || info.Format != tt.format {
				t.Errorf("token %q is %s/%s, want %s/%s", token, info.Kind, info.Format, tt.kind, tt.format)
			}
		})
	}
}

func TestTokenizeDataIsUTF8Bytes(t *testing.T) {
	f := newFixture(t)

	token := f.tokenize("naïve ☃", nil)
	value, err := f.vault.Detokenize(context.Background(), token)
	if err != nil || string(value) != "naïve ☃" {
		t.Errorf("Detokenize(%q) = %q, %v, want the UTF-8 bytes of the request's data", token, value, err)
	}
}

func TestTokenizeDeterministic(t *testing.T) {
	f := newFixture(t)

	a := f.tokenize(visaPAN, map[string]any{"type": "card", "deterministic": true, "scope": "acquirer"})
	b := f.tokenize(visaPAN, map[string]any{"type": "card", "deterministic": true, "scope": "acquirer"})
	c := f.tokenize(visaPAN, map[string]any{"type": "card", "deterministic": true, "scope": "other"})
	if a != b {
		t.Errorf("deterministic tokens for one card and scope differ: %q, %q", a, b)
	}
	if a == c {
		t.Errorf("deterministic tokens in two scopes are equal")
	}
}

func TestTokenizeExpiry(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()

	expiring := f.tokenize("expiring value", map[string]any{"expires_in": "1h"})
	never := f.tokenize("lasting value", map[string]any{"expires_in": "never"})
	info, err := f.vault.Inspect(ctx, expiring)
	if err != nil {
		t.Fatal(err)
	}
	if got := info.Expires.Sub(info.Created); got != time.Hour {
		t.Errorf("expires_in 1h: expires - created = %s, want 1h", got)
	}
	info, err = f.vault.Inspect(ctx, never)
	if err != nil {
		t.Fatal(err)
	}
	if !info.Expires.IsZero() {
		t.Errorf("expires_in never: expires = %s, want none", info.Expires)
	}

	f.advance(2 * time.Hour)
	r := f.post("/detokenize", apikey.RoleDetokenize, jsonBody(t, map[string]string{"token": expiring}))
	if e := r.errorBody(t); r.status != http.StatusGone || e.Code != "token_expired" {
		t.Errorf("detokenize of an expired token = %d %s, want 410 token_expired", r.status, e.Code)
	}
	r = f.post("/detokenize", apikey.RoleDetokenize, jsonBody(t, map[string]string{"token": never}))
	if r.status != http.StatusOK {
		t.Errorf("detokenize of a token without expiry after 2h = %d %s, want 200", r.status, r.body)
	}
}

func TestTokenizeInvalidValues(t *testing.T) {
	f := newFixture(t)

	tests := []struct {
		name string
		body map[string]any
		code string
	}{
		{"empty data", map[string]any{"data": ""}, "invalid_data"},
		{"data over 64 KiB", map[string]any{"data": strings.Repeat("x", tokenvault.MaxDataSize+1)}, "invalid_data"},
		{"card fails Luhn", map[string]any{"data": "4111111111111112", "type": "card"}, "invalid_card_number"},
		{"card too short", map[string]any{"data": "41111111111", "type": "card"}, "invalid_card_number"},
		{"card with letters", map[string]any{"data": "4111x11111111111", "type": "card"}, "invalid_card_number"},
		{"card full-width digits", map[string]any{"data": "４１１１１１１１１１１１１１１１", "type": "card"}, "invalid_card_number"},
		{"unknown type", map[string]any{"data": visaPAN, "type": "pan"}, "invalid_option"},
		{"unknown format", map[string]any{"data": visaPAN, "type": "card", "format": "4111111111111111"}, "invalid_option"},
		{"card format for data", map[string]any{"data": "x", "format": "card"}, "invalid_option"},
		{"first six of 13 digits", map[string]any{"data": "4222222222222", "type": "card", "format": "card-first-six"}, "invalid_option"},
		{"scope without deterministic", map[string]any{"data": "x", "scope": "s"}, "invalid_option"},
		{"scope too long", map[string]any{"data": "x", "deterministic": true, "scope": strings.Repeat("s", 256)}, "invalid_option"},
		{"allow_non_luhn for data", map[string]any{"data": "x", "allow_non_luhn": true}, "invalid_option"},
		{"expires_in zero", map[string]any{"data": "x", "expires_in": "0s"}, "invalid_option"},
		{"expires_in negative", map[string]any{"data": "x", "expires_in": "-1h"}, "invalid_option"},
		{"expires_in not a duration", map[string]any{"data": "x", "expires_in": "4111111111111111"}, "invalid_option"},
		{"expires_in after 2262", map[string]any{"data": "x", "expires_in": "2500000h"}, "invalid_option"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := f.post("/tokenize", apikey.RoleTokenize, jsonBody(t, tt.body))
			e := r.errorBody(t)
			if r.status != http.StatusBadRequest || e.Code != tt.code {
				t.Errorf("POST /tokenize = %d %q, want 400 %s", r.status, r.body, tt.code)
			}
			if e.Error == "" {
				t.Errorf("error message is empty")
			}
		})
	}
}

func TestInvalidCardMessageNamesHTTPField(t *testing.T) {
	f := newFixture(t)

	r := f.post("/tokenize", apikey.RoleTokenize, `{"data":"4111111111111112","type":"card"}`)
	if e := r.errorBody(t); !strings.Contains(e.Error, `"allow_non_luhn": true`) {
		t.Errorf("message %q does not name the allow_non_luhn field", e.Error)
	}
}

func TestLifecycle(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	token := f.tokenize(visaPAN, map[string]any{"type": "card"})
	body := jsonBody(t, map[string]string{"token": token, "reason": "card reported lost"})

	steps := []struct {
		path   string
		status int
		code   string // of the response, "" for 200
		detok  int    // status of a detokenization afterwards
		dcode  string
	}{
		{"/suspend", 200, "", 409, "token_suspended"},
		{"/suspend", 200, "", 409, "token_suspended"}, // repeating succeeds
		{"/activate", 200, "", 200, ""},
		{"/close", 200, "", 409, "token_closed"},
		{"/close", 200, "", 409, "token_closed"},
		{"/suspend", 409, "token_closed", 409, "token_closed"},
		{"/activate", 409, "token_closed", 409, "token_closed"},
	}
	for i, step := range steps {
		r := f.post(step.path, apikey.RoleLifecycle, body)
		if r.status != step.status || (step.code != "" && r.errorBody(t).Code != step.code) {
			t.Errorf("step %d: POST %s = %d %q, want %d %s", i, step.path, r.status, r.body, step.status, step.code)
		}
		r = f.post("/detokenize", apikey.RoleDetokenize, jsonBody(t, map[string]string{"token": token}))
		if r.status != step.detok || (step.dcode != "" && r.errorBody(t).Code != step.dcode) {
			t.Errorf("step %d: detokenize after %s = %d %q, want %d %s", i, step.path, r.status, r.body, step.detok, step.dcode)
		}
	}

	info, err := f.vault.Inspect(ctx, token)
	if err != nil {
		t.Fatal(err)
	}
	if len(info.History) != 3 {
		t.Fatalf("history has %d entries, want 3 (suspend, activate, close)", len(info.History))
	}
	for _, change := range info.History {
		if change.Actor != f.keyIDs[apikey.RoleLifecycle] || change.Reason != "card reported lost" {
			t.Errorf("change %s->%s: actor %q reason %q, want the key id %q and the request's reason", change.From, change.To, change.Actor, change.Reason, f.keyIDs[apikey.RoleLifecycle])
		}
	}
}

func TestLifecycleReasonTooLong(t *testing.T) {
	f := newFixture(t)
	token := f.tokenize("some value", nil)

	r := f.post("/suspend", apikey.RoleLifecycle, jsonBody(t, map[string]string{"token": token, "reason": strings.Repeat("r", tokenvault.MaxReasonSize+1)}))
	if e := r.errorBody(t); r.status != http.StatusBadRequest || e.Code != "invalid_option" {
		t.Errorf("suspend with a reason over %d bytes = %d %s, want 400 invalid_option", tokenvault.MaxReasonSize, r.status, e.Code)
	}
}

func TestTokenNotFoundBodiesIdentical(t *testing.T) {
	f := newFixture(t)
	real := f.tokenize(visaPAN, map[string]any{"type": "card"})
	opaque := f.tokenize("some value", nil)

	altered := []byte(opaque)
	altered[10] ^= 1
	cardAltered := []byte(real)
	cardAltered[3] = '0' + (cardAltered[3]-'0'+5)%10
	unknown := []string{
		"tok_" + strings.Repeat("1", 36), // well formed, never issued
		"tok_nope",                       // malformed
		"",                               // empty
		visaPAN,                          // a card number sent as a token
		mastercardPAN,                    // another
		"4111 1111 1111 1111",            // with spaces
		"gAAAAABrEzUVTnPJ5fDS_mW1MsWfcK-EhdOwKqWwgfQ2nXEHqoI0", // a Fernet token of the old service
		string(altered),
		string(cardAltered),
		strings.Repeat("9", 300),
	}

	for _, path := range []string{"/detokenize", "/suspend", "/activate", "/close"} {
		var first string
		for _, token := range unknown {
			role := apikey.RoleLifecycle
			if path == "/detokenize" {
				role = apikey.RoleDetokenize
			}
			r := f.post(path, role, jsonBody(t, map[string]string{"token": token}))
			if r.status != http.StatusNotFound {
				t.Errorf("POST %s with an unknown token = %d %q, want 404", path, r.status, r.body)
			}
			if first == "" {
				first = r.body
			} else if r.body != first {
				t.Errorf("POST %s: bodies differ between unknown tokens: %q and %q", path, first, r.body)
			}
		}
		if want := `{"error":"Token not found","code":"token_not_found"}` + "\n"; first != want {
			t.Errorf("POST %s: body %q, want %q", path, first, want)
		}
	}

	var first string
	paths := []string{"/tokens/a/b", "/tokens/a%2Fb", "/tokens/" + opaque + "/x"}
	for _, token := range unknown {
		paths = append(paths, "/tokens/"+url.PathEscape(token))
	}
	for _, path := range paths {
		r := f.do(request{method: http.MethodGet, path: path, role: apikey.RoleAdmin})
		if r.status != http.StatusNotFound {
			t.Errorf("GET %s = %d %q, want 404", path, r.status, r.body)
		}
		if first == "" {
			first = r.body
		} else if r.body != first {
			t.Errorf("GET /tokens/{unknown}: bodies differ: %q and %q", first, r.body)
		}
	}
	if want := `{"error":"Token not found","code":"token_not_found"}` + "\n"; first != want {
		t.Errorf("GET /tokens/{unknown}: body %q, want %q", first, want)
	}
}

func TestTokenInfo(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	token := f.tokenize(visaPAN, map[string]any{"type": "card", "format": "card-first-six", "deterministic": true, "expires_in": "24h"})
	f.post("/suspend", apikey.RoleLifecycle, jsonBody(t, map[string]string{"token": token, "reason": "fraud check"}))

	r := f.do(request{method: http.MethodGet, path: "/tokens/" + token, role: apikey.RoleLifecycle})
	if r.status != http.StatusOK {
		t.Fatalf("GET /tokens/{token} = %d %q, want 200", r.status, r.body)
	}
	checkJSONHeader(t, r)

	info, err := f.vault.Inspect(ctx, token)
	if err != nil {
		t.Fatal(err)
	}
	want, err := json.Marshal(info)
	if err != nil {
		t.Fatal(err)
	}
	if r.body != string(want)+"\n" {
		t.Errorf("GET /tokens/{token} body:\n%s\nwant TokenInfo's JSON:\n%s", r.body, want)
	}

	var got map[string]any
	if err := json.Unmarshal([]byte(r.body), &got); err != nil {
		t.Fatal(err)
	}
	for key, want := range map[string]any{"token": token, "state": "suspended", "kind": "card", "format": "card-first-six", "first6": "411111", "last4": "1111", "deterministic": true, "scope": ""} {
		if got[key] != want {
			t.Errorf("GET /tokens/{token} %s = %v, want %v", key, got[key], want)
		}
	}
	if _, ok := got["expires"]; !ok {
		t.Errorf("GET /tokens/{token} has no expires for a token with expires_in")
	}
	history, _ := got["history"].([]any)
	if len(history) != 1 {
		t.Fatalf("history = %v, want one entry", got["history"])
	}
	entry, _ := history[0].(map[string]any)
	if entry["reason"] != "fraud check" || entry["actor"] != f.keyIDs[apikey.RoleLifecycle] || entry["to"] != "suspended" {
		t.Errorf("history[0] = %v, want reason, actor and to of the suspension", entry)
	}

	closedToken := f.tokenize("closing value", nil)
	f.post("/close", apikey.RoleLifecycle, jsonBody(t, map[string]string{"token": closedToken}))
	r = f.do(request{method: http.MethodGet, path: "/tokens/" + closedToken, role: apikey.RoleDetokenize})
	if r.status != http.StatusOK || !strings.Contains(r.body, `"state":"closed"`) {
		t.Errorf("GET /tokens/{closed token} = %d %q, want 200 with state closed", r.status, r.body)
	}
}

func TestDetokenizeInvalidUTF8Value(t *testing.T) {
	f := newFixture(t)
	value := []byte{0xff, 0xfe, 'a', 0x00}
	token, err := f.vault.Tokenize(context.Background(), value)
	if err != nil {
		t.Fatal(err)
	}

	r := f.post("/detokenize", apikey.RoleDetokenize, jsonBody(t, map[string]string{"token": token}))
	want := `{"data_base64":"//5hAA=="}` + "\n"
	if r.status != http.StatusOK || r.body != want {
		t.Errorf("detokenize of a non-UTF-8 value = %d %q, want 200 %q", r.status, r.body, want)
	}
}

func TestHealthAndReadiness(t *testing.T) {
	f := newFixture(t)

	for _, path := range []string{"/healthz", "/readyz"} {
		r := f.do(request{method: http.MethodGet, path: path})
		if r.status != http.StatusOK || r.body != `{"status":"ok"}`+"\n" {
			t.Errorf("GET %s without a key = %d %q, want 200 {\"status\":\"ok\"}", path, r.status, r.body)
		}
		r = f.do(request{method: http.MethodHead, path: path})
		if r.status != http.StatusOK {
			t.Errorf("HEAD %s = %d, want 200", path, r.status)
		}
	}

	f.handler.SetDraining()
	r := f.do(request{method: http.MethodGet, path: "/readyz"})
	if e := r.errorBody(t); r.status != http.StatusServiceUnavailable || e.Code != "draining" {
		t.Errorf("GET /readyz after SetDraining = %d %q, want 503 draining", r.status, r.body)
	}
	r = f.do(request{method: http.MethodGet, path: "/healthz"})
	if r.status != http.StatusOK {
		t.Errorf("GET /healthz after SetDraining = %d, want 200", r.status)
	}
	if token := f.tokenize("still served", nil); token == "" {
		t.Errorf("tokenize after SetDraining failed")
	}
}

func TestVaultClosed(t *testing.T) {
	f := newFixture(t)
	token := f.tokenize("some value", nil)
	f.vault.Close()

	r := f.do(request{method: http.MethodGet, path: "/readyz"})
	if e := r.errorBody(t); r.status != http.StatusServiceUnavailable || e.Code != "unavailable" {
		t.Errorf("GET /readyz with the vault closed = %d %q, want 503 unavailable", r.status, r.body)
	}
	for _, req := range []request{
		{path: "/tokenize", role: apikey.RoleTokenize, body: `{"data":"x"}`},
		{path: "/detokenize", role: apikey.RoleDetokenize, body: jsonBody(t, map[string]string{"token": token})},
		{path: "/close", role: apikey.RoleLifecycle, body: jsonBody(t, map[string]string{"token": token})},
		{method: http.MethodGet, path: "/tokens/" + token, role: apikey.RoleAdmin},
	} {
		r := f.do(req)
		if e := r.errorBody(t); r.status != http.StatusServiceUnavailable || e.Code != "unavailable" {
			t.Errorf("%s with the vault closed = %d %q, want 503 unavailable", req.path, r.status, r.body)
		}
	}
}

func TestMetricsNeedsNoKey(t *testing.T) {
	f := newFixture(t)

	r := f.do(request{method: http.MethodGet, path: "/metrics"})
	if r.status != http.StatusOK || !strings.HasPrefix(r.header.Get("Content-Type"), "text/plain") {
		t.Errorf("GET /metrics = %d %s, want 200 text/plain", r.status, r.header.Get("Content-Type"))
	}
}

func TestMethodNotAllowed(t *testing.T) {
	f := newFixture(t)

	tests := []struct {
		method, path, allow string
	}{
		{http.MethodGet, "/tokenize", "POST"},
		{http.MethodPut, "/detokenize", "POST"},
		{http.MethodGet, "/tokenize/batch", "POST"},
		{http.MethodDelete, "/close", "POST"},
		{http.MethodPost, "/healthz", "GET, HEAD"},
		{http.MethodPost, "/readyz", "GET, HEAD"},
		{http.MethodPost, "/metrics", "GET, HEAD"},
		{http.MethodDelete, "/tokens/tok_x", "GET, HEAD"},
		{http.MethodOptions, "/suspend", "POST"},
	}
	for _, tt := range tests {
		r := f.do(request{method: tt.method, path: tt.path, role: apikey.RoleAdmin})
		if e := r.errorBody(t); r.status != http.StatusMethodNotAllowed || e.Code != "method_not_allowed" {
			t.Errorf("%s %s = %d %q, want 405 method_not_allowed", tt.method, tt.path, r.status, r.body)
		}
		if got := r.header.Get("Allow"); got != tt.allow {
			t.Errorf("%s %s: Allow = %q, want %q", tt.method, tt.path, got, tt.allow)
		}
	}
}

func TestUnknownPath(t *testing.T) {
	f := newFixture(t)

	for _, path := range []string{"/", "/tokenize/", "/Tokenize", "/tokens", "/token/x", "/detokenize/batch/x", "/admin"} {
		r := f.do(request{method: http.MethodPost, path: path, role: apikey.RoleAdmin, body: "{}"})
		e := r.errorBody(t)
		if r.status != http.StatusNotFound || e.Code != "not_found" {
			t.Errorf("POST %s = %d %q, want 404 not_found", path, r.status, r.body)
		}
		checkJSONHeader(t, r)
	}
}

func TestRequestID(t *testing.T) {
	f := newFixture(t)
	generated := regexp.MustCompile(`^[0-9a-f]{32}$`)

	tests := []struct {
		name string
		sent string
		keep bool
	}{
		{"sane", "req-42_a.B", true},
		{"64 characters", strings.Repeat("a", 64), true},
		{"65 characters", strings.Repeat("a", 65), false},
		{"space", "req 42", false},
		{"slash", "a/b", false},
		{"card number", "4111 1111 1111 1111", false},
		{"non-ASCII", "réq", false},
		{"none", "", false},
	}
	seen := map[string]bool{}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req := request{method: http.MethodGet, path: "/healthz"}
			if tt.sent != "" {
				req.header = map[string]string{"X-Request-Id": tt.sent}
			}
			got := f.do(req).header.Get("X-Request-Id")
			switch {
			case tt.keep && got != tt.sent:
				t.Errorf("X-Request-Id = %q, want the request's %q", got, tt.sent)
			case !tt.keep && !generated.MatchString(got):
				t.Errorf("X-Request-Id = %q, want 32 random hex digits", got)
			case !tt.keep && seen[got]:
				t.Errorf("X-Request-Id %q was generated twice", got)
			}
			seen[got] = true
		})
	}

	r := f.do(request{path: "/nowhere", header: map[string]string{"X-Request-Id": "err-1"}})
	if got := r.header.Get("X-Request-Id"); got != "err-1" {
		t.Errorf("error response X-Request-Id = %q, want err-1", got)
	}
}

// failingKeys is an Authenticator whose key file cannot be read.
type failingKeys struct{}

func (failingKeys) Authenticate(string) (apikey.Key, error) {
	return apikey.Key{}, errors.New("read api.keys: input/output error")
}

func TestInternalErrorIsGenericAndLogged(t *testing.T) {
	f := newFixture(t, func(c *httpapi.Config) { c.Keys = failingKeys{} })

	r := f.do(request{path: "/tokenize", secret: "any", body: `{"data":"x"}`, header: map[string]string{"X-Request-Id": "req-500"}})
	want := `{"error":"Internal server error","code":"internal_error"}` + "\n"
	if r.status != http.StatusInternalServerError || r.body != want {
		t.Errorf("POST /tokenize with a failing key file = %d %q, want 500 %q", r.status, r.body, want)
	}

	records := parseJSONLines(t, f.log.String())
	if len(records) != 1 {
		t.Fatalf("error log has %d records, want 1:\n%s", len(records), f.log.String())
	}
	rec := records[0]
	if rec["request_id"] != "req-500" || rec["code"] != "internal_error" || !strings.Contains(rec["error"].(string), "input/output error") {
		t.Errorf("error log record = %v, want request_id req-500, code internal_error and the error", rec)
	}
}

// panickingKeys is an Authenticator with a bug.
type panickingKeys struct{}

func (panickingKeys) Authenticate(string) (apikey.Key, error) { panic("index out of range") }

func TestPanicIsInternalError(t *testing.T) {
	f := newFixture(t, func(c *httpapi.Config) { c.Keys = panickingKeys{} })

	r := f.do(request{path: "/tokenize", secret: "any", body: `{"data":"x"}`})
	if e := r.errorBody(t); r.status != http.StatusInternalServerError || e.Code != "internal_error" {
		t.Errorf("POST /tokenize with a panicking authenticator = %d %q, want 500 internal_error", r.status, r.body)
	}
	if !strings.Contains(f.log.String(), "handler panicked") {
		t.Errorf("the panic was not logged")
	}
}

func TestNoAuth(t *testing.T) {
	f := newFixture(t, func(c *httpapi.Config) { c.Keys = nil; c.NoAuth = true })
	ctx := context.Background()

	f.sent(amexPAN)
	r := f.do(request{path: "/tokenize", body: `{"data":"378282246310005","type":"card"}`})
	m := tokenBody.FindStringSubmatch(r.body)
	if r.status != http.StatusOK || m == nil {
		t.Fatalf("POST /tokenize without a key under NoAuth = %d %q, want 200", r.status, r.body)
	}
	r = f.do(request{path: "/suspend", body: jsonBody(t, map[string]string{"token": m[1]})})
	if r.status != http.StatusOK {
		t.Errorf("POST /suspend under NoAuth = %d %q, want 200", r.status, r.body)
	}
	info, err := f.vault.Inspect(ctx, m[1])
	if err != nil {
		t.Fatal(err)
	}
	if len(info.History) != 1 || info.History[0].Actor != "" {
		t.Errorf("history under NoAuth = %+v, want one change without an actor", info.History)
	}
}

func TestNewRejectsIncompleteConfig(t *testing.T) {
	v := tokenvaulttest.New(t)
	audit := slog.New(slog.DiscardHandler)

	tests := []struct {
		name string
		cfg  httpapi.Config
	}{
		{"no vault", httpapi.Config{Audit: audit, NoAuth: true}},
		{"no keys", httpapi.Config{Vault: v, Audit: audit}},
		{"no audit", httpapi.Config{Vault: v, NoAuth: true}},
		{"negative body limit", httpapi.Config{Vault: v, Audit: audit, NoAuth: true, MaxBodyBytes: -1}},
		{"negative batch limit", httpapi.Config{Vault: v, Audit: audit, NoAuth: true, MaxBatchItems: -1}},
	}
	for _, tt := range tests {
		if _, err := httpapi.New(tt.cfg); err == nil {
			t.Errorf("New with %s: err = nil, want an error", tt.name)
		}
	}

	h, err := httpapi.New(httpapi.Config{Vault: v, Audit: audit, NoAuth: true})
	if err != nil {
		t.Fatalf("New with a nil Log and Registry: %v", err)
	}
	w := httptest.NewRecorder()
	h.ServeHTTP(w, httptest.NewRequest(http.MethodGet, "/metrics", nil))
	if !strings.Contains(w.Body.String(), "go_goroutines") || !strings.Contains(w.Body.String(), "process_") {
		t.Errorf("GET /metrics of a new registry lacks the Go and process collectors")
	}
}

func TestTwoHandlersShareRegistry(t *testing.T) {
	f := newFixture(t)

	_, err := httpapi.New(httpapi.Config{Vault: f.vault, NoAuth: true, Audit: slog.New(slog.DiscardHandler), Registry: f.registry})
	if err != nil {
		t.Errorf("second New on the same registry: %v", err)
	}
}
