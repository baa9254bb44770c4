package httpapi_test

import (
	"net/http"
	"strings"
	"testing"

	"github.com/tokenvault/tokenvault/apikey"
	"github.com/tokenvault/tokenvault/httpapi"
)

// strictCases are request bodies that must be rejected with a 4xx status and
// a code, for each route that takes a body. A body is a template: FIELD is
// replaced by the route's required string field.
var strictCases = []struct {
	name        string
	body        string
	contentType string
	status      int
	code        string
}{
	{"wrong content type", `{"FIELD":"x"}`, "text/plain", 415, "unsupported_media_type"},
	{"form content type", `FIELD=x`, "application/x-www-form-urlencoded", 415, "unsupported_media_type"},
	{"no content type", `{"FIELD":"x"}`, "-", 415, "unsupported_media_type"},
	{"latin-1 charset", `{"FIELD":"x"}`, "application/json; charset=iso-8859-1", 415, "unsupported_media_type"},
	{"malformed content type", `{"FIELD":"x"}`, "application/json; charset", 415, "unsupported_media_type"},
	{"empty body", ``, "", 400, "invalid_json"},
	{"invalid JSON", `{"FIELD":"4111111111111111"`, "", 400, "invalid_json"},
	{"not an object", `["4111111111111111"]`, "", 400, "invalid_json"},
	{"a string", `"4111111111111111"`, "", 400, "invalid_json"},
	{"single quotes", `{'FIELD':'x'}`, "", 400, "invalid_json"},
	{"trailing data", `{"FIELD":"x"} {"FIELD":"4111111111111111"}`, "", 400, "trailing_data"},
	{"trailing garbage", `{"FIELD":"x"}4111111111111111`, "", 400, "trailing_data"},
	{"unknown field", `{"FIELD":"x","4111111111111111":"y"}`, "", 400, "unknown_field"},
	{"unknown field only", `{"pan":"4111111111111111"}`, "", 400, "unknown_field"},
	{"duplicate key", `{"FIELD":"x","FIELD":"4111111111111111"}`, "", 400, "duplicate_field"},
	{"keys differing in case", `{"FIELD":"x","UPPERFIELD":"4111111111111111"}`, "", 400, "duplicate_field"},
	{"card number as a number", `{"FIELD":4111111111111111}`, "", 400, "invalid_type"},
	{"object for a string", `{"FIELD":{"pan":"4111111111111111"}}`, "", 400, "invalid_type"},
	{"boolean for a string", `{"FIELD":true}`, "", 400, "invalid_type"},
	{"null", `{"FIELD":null}`, "", 400, "null_value"},
	{"missing field", `{}`, "", 400, "missing_field"},
	{"invalid UTF-8", "{\"FIELD\":\"4111\xff111111111111\"}", "", 400, "invalid_utf8"},
	{"lone surrogate", `{"FIELD":"4111111111111111\ud800"}`, "", 400, "invalid_utf8"},
	{"lone low surrogate", `{"FIELD":"\udc00"}`, "", 400, "invalid_utf8"},
}

// bodyRoutes are the routes that take a body, with their required string
// field; batch routes nest it in an item.
var bodyRoutes = []struct {
	path  string
	role  apikey.Role
	field string
	wrap  func(string) string // turns a one-object body into the route's body
}{
	{"/tokenize", apikey.RoleTokenize, "data", nil},
	{"/detokenize", apikey.RoleDetokenize, "token", nil},
	{"/suspend", apikey.RoleLifecycle, "token", nil},
	{"/activate", apikey.RoleLifecycle, "token", nil},
	{"/close", apikey.RoleLifecycle, "token", nil},
	{"/tokenize/batch", apikey.RoleTokenize, "data", func(item string) string { return `{"items":[{"data":"ok"},` + item + `]}` }},
	{"/detokenize/batch", apikey.RoleDetokenize, "tokens", nil},
}

// arrayFields are the required fields that take an array of strings, with a
// valid value that replaces the cases' "x", so that a case's second key, not
// the first, decides its error.
var arrayFields = map[string]string{"tokens": `["x"]`}

func TestStrictInput(t *testing.T) {
	f := newFixture(t)

	for _, route := range bodyRoutes {
		for _, tc := range strictCases {
			t.Run(route.path+"/"+tc.name, func(t *testing.T) {
				body := tc.body
				if valid, ok := arrayFields[route.field]; ok {
					body = strings.ReplaceAll(body, `"FIELD":"x"`, `"FIELD":`+valid)
				}
				body = strings.ReplaceAll(body, "UPPERFIELD", strings.ToUpper(route.field[:1])+route.field[1:])
				body = strings.ReplaceAll(body, "FIELD", route.field)
				if route.wrap != nil && tc.status == 400 && strings.HasPrefix(body, "{") && !strings.Contains(tc.name, "trailing") {
					// Nest the case in the second batch item.
					body = route.wrap(body)
				}

				r := f.do(request{path: route.path, role: route.role, body: body, contentType: tc.contentType})
				if r.status != tc.status {
					t.Errorf("status = %d %q, want %d %s", r.status, r.body, tc.status, tc.code)
				}
				if e := r.errorBody(t); e.Code != tc.code {
					t.Errorf("code = %q (%q), want %s", e.Code, e.Error, tc.code)
				}
				checkJSONHeader(t, r)
			})
		}
	}
}

func TestStrictInputNamesOnlyKnownFields(t *testing.T) {
	f := newFixture(t)

	r := f.post("/tokenize/batch", apikey.RoleTokenize, `{"items":[{"data":"a"},{"data":null}]}`)
	want := "Request body has null for a field: omit the field instead (field items[1].data)"
	if e := r.errorBody(t); e.Error != want {
		t.Errorf("null in an item: message %q, want %q", e.Error, want)
	}

	r = f.post("/tokenize", apikey.RoleTokenize, `{"data":"x","4111111111111111":1}`)
	if e := r.errorBody(t); strings.Contains(e.Error, "4111") {
		t.Errorf("unknown key: message %q repeats the key", e.Error)
	}
}

func TestContentTypeParameters(t *testing.T) {
	f := newFixture(t)

	for _, ct := range []string{"application/json", "application/json; charset=utf-8", "application/json;charset=UTF-8", "Application/JSON"} {
		r := f.do(request{path: "/tokenize", role: apikey.RoleTokenize, body: `{"data":"x"}`, contentType: ct})
		if r.status != http.StatusOK {
			t.Errorf("Content-Type %q: status %d %q, want 200", ct, r.status, r.body)
		}
	}
}

func TestBodyTooLarge(t *testing.T) {
	f := newFixture(t, func(c *httpapi.Config) { c.MaxBodyBytes = 100 })

	big := `{"data":"` + strings.Repeat("4", 200) + `"}`
	r := f.post("/tokenize", apikey.RoleTokenize, big)
	if e := r.errorBody(t); r.status != http.StatusRequestEntityTooLarge || e.Code != "body_too_large" {
		t.Errorf("body of %d bytes with a limit of 100 = %d %q, want 413 body_too_large", len(big), r.status, r.body)
	}

	// Without Content-Length, the handler stops reading at the limit.
	req := httptestRequestWithoutLength(t, big)
	req.Header.Set("Authorization", "Bearer "+f.secrets[apikey.RoleTokenize])
	w := newRecorder()
	f.handler.ServeHTTP(w, req)
	if w.Code != http.StatusRequestEntityTooLarge || !strings.Contains(w.Body.String(), "body_too_large") {
		t.Errorf("chunked body over the limit = %d %q, want 413 body_too_large", w.Code, w.Body.String())
	}

	exact := `{"data":"` + strings.Repeat("x", 100-len(`{"data":""}`)) + `"}`
	if r := f.post("/tokenize", apikey.RoleTokenize, exact); r.status != http.StatusOK {
		t.Errorf("body of exactly the limit = %d %q, want 200", r.status, r.body)
	}
}

func TestDefaultBodyLimit(t *testing.T) {
	f := newFixture(t)
	f.noLeakCheck = true

	big := `{"data":"` + strings.Repeat("x", httpapi.DefaultMaxBodyBytes) + `"}`
	r := f.post("/tokenize", apikey.RoleTokenize, big)
	if e := r.errorBody(t); r.status != http.StatusRequestEntityTooLarge || e.Code != "body_too_large" {
		t.Errorf("body over 1 MiB = %d %s, want 413 body_too_large", r.status, e.Code)
	}
}

func TestDeepNestingRejected(t *testing.T) {
	f := newFixture(t)

	body := `{"data":"x","type":` + strings.Repeat("[", 10000) + strings.Repeat("]", 10000) + `}`
	r := f.post("/tokenize", apikey.RoleTokenize, body)
	if r.status != http.StatusBadRequest {
		t.Errorf("deeply nested body = %d %q, want 400", r.status, r.body)
	}
}

func TestRejectedBodiesAuditedWithoutValue(t *testing.T) {
	f := newFixture(t)

	f.post("/detokenize", apikey.RoleDetokenize, `{"token":4111111111111111}`)
	f.post("/detokenize", apikey.RoleDetokenize, `{"token":"x","4111111111111111":1}`)
	records := f.auditRecords()
	if len(records) != 2 {
		t.Fatalf("audit log has %d records for 2 rejected requests, want 2", len(records))
	}
	for i, want := range []string{"invalid_type", "unknown_field"} {
		if records[i]["outcome"] != want || records[i]["token"] != "" {
			t.Errorf("audit record %d = %v, want outcome %s and no token", i, records[i], want)
		}
	}
	// checkNoLeaks, at cleanup, checks that the card number is not in the
	// audit log.
}

// TestUnknownFieldMessage checks that an unknown key's message names the
// fields the object accepts, or the one it equals but for case, and never a
// key that is not a field name of the API.
func TestUnknownFieldMessage(t *testing.T) {
	f := newFixture(t)
	const prefix = "Request body has a field that this endpoint does not accept"
	const accepted = "it accepts data, type, format, deterministic, scope, expires_in, allow_non_luhn"

	tests := []struct {
		name, path string
		role       apikey.Role
		body, want string
	}{
		{"case", "/tokenize", apikey.RoleTokenize, `{"Data":"x"}`,
			prefix + ": field names are case-sensitive, and this one differs only in case from data"},
		{"other key", "/tokenize", apikey.RoleTokenize, `{"data":"x","colour":"red"}`,
			prefix + ": " + accepted},
		{"card number as key", "/tokenize", apikey.RoleTokenize, `{"data":"x","4111111111111111":1}`,
			prefix + ": " + accepted},
		{"field of another route", "/tokenize", apikey.RoleTokenize, `{"data":"x","token":"t"}`,
			prefix + " (field token): " + accepted},
		{"batch item", "/tokenize/batch", apikey.RoleTokenize, `{"items":[{"data":"a"},{"data":"b","colour":"red"}]}`,
			prefix + " (in items[1]): " + accepted},
		{"batch item, key not shown", "/tokenize/batch", apikey.RoleTokenize, `{"items":[{"data":"a"},{"data":"b","da ta":1}]}`,
			prefix + " (in items[1]): " + accepted},
		{"batch item, case", "/tokenize/batch", apikey.RoleTokenize, `{"items":[{"data":"a"},{"Data":"b"}]}`,
			prefix + " (in items[1]): field names are case-sensitive, and this one differs only in case from data"},
		{"top of a batch", "/tokenize/batch", apikey.RoleTokenize, `{"items":[],"data":"x"}`,
			prefix + " (field data): it accepts items"},
		{"detokenize", "/detokenize", apikey.RoleDetokenize, `{"Token":"t"}`,
			prefix + ": field names are case-sensitive, and this one differs only in case from token"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := f.post(tt.path, tt.role, tt.body)
			e := r.errorBody(t)
			if e.Code != "unknown_field" {
				t.Fatalf("code = %q (%q), want unknown_field", e.Code, e.Error)
			}
			if e.Error != tt.want {
				t.Errorf("message = %q, want %q", e.Error, tt.want)
			}
		})
	}
}
