package httpapi_test

import (
	"net/http"
	"regexp"
	"testing"

	"github.com/tokenvault/tokenvault/apikey"
)

// The Python service that this API replaces responded with Flask's jsonify:
// compact JSON, non-ASCII characters escaped as \uxxxx in lowercase hex, and
// a final newline. The expected bodies below were recorded from that service
// (Flask 2.2.2 on Python 3.11) for the same requests.

var tokenBody = regexp.MustCompile(`^\{"token":"([0-9a-z_]+)"\}\n$`)

func TestPythonContractSuccessBodies(t *testing.T) {
	f := newFixture(t)

	tests := []struct {
		name     string
		value    string
		wantData string // the /detokenize body the Python service sent
	}{
		{"card number", visaPAN, `{"data":"4111111111111111"}` + "\n"},
		{"escapes", "caf\u00e9 \U0001F600 </script> & \"q\" \\ \n\t\x01\x7f /",
			`{"data":"caf\u00e9 \ud83d\ude00 </script> & \"q\" \\ \n\t\u0001\u007f /"}` + "\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f.sent(tt.value)
			r := f.post("/tokenize", apikey.RoleTokenize, jsonBody(t, map[string]string{"data": tt.value}))
			m := tokenBody.FindStringSubmatch(r.body)
			if r.status != http.StatusOK || m == nil {
				t.Fatalf("POST /tokenize = %d %q, want 200 {\"token\":...} and a newline", r.status, r.body)
			}
			checkJSONHeader(t, r)
			token := m[1]

			r = f.post("/detokenize", apikey.RoleDetokenize, jsonBody(t, map[string]string{"token": token}))
			if r.status != http.StatusOK || r.body != tt.wantData {
				t.Errorf("POST /detokenize = %d, body matches the Python service's = %t", r.status, r.body == tt.wantData)
			}
			checkJSONHeader(t, r)

			for _, step := range []struct{ path, want string }{
				{"/suspend", `{"message":"Token suspended successfully"}` + "\n"},
				{"/activate", `{"message":"Token activated successfully"}` + "\n"},
				{"/close", `{"message":"Token closed successfully"}` + "\n"},
			} {
				r := f.post(step.path, apikey.RoleLifecycle, jsonBody(t, map[string]string{"token": token}))
				if r.status != http.StatusOK || r.body != step.want {
					t.Errorf("POST %s = %d %q, want 200 %q", step.path, r.status, r.body, step.want)
				}
				checkJSONHeader(t, r)
			}
		})
	}
}

// The Python service responded to an unknown token with 404
// {"error":"Token not found"}, and the "error" member is unchanged.
func TestPythonContractTokenNotFound(t *testing.T) {
	f := newFixture(t)

	r := f.post("/detokenize", apikey.RoleDetokenize, `{"token":"nope"}`)
	want := `{"error":"Token not found","code":"token_not_found"}` + "\n"
	if r.status != http.StatusNotFound || r.body != want {
		t.Errorf("POST /detokenize of an unknown token = %d %q, want 404 %q", r.status, r.body, want)
	}
}

func checkJSONHeader(t *testing.T, r response) {
	t.Helper()
	if got := r.header.Get("Content-Type"); got != "application/json" {
		t.Errorf("Content-Type = %q, want application/json", got)
	}
}
