package httpapi_test

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/tokenvault/tokenvault/apikey"
	"github.com/tokenvault/tokenvault/httpapi"
)

func TestRoles(t *testing.T) {
	f := newFixture(t)

	// allowed lists the roles that may call each route; admin may call all.
	routes := []struct {
		method  string
		path    string
		body    func() string
		allowed []apikey.Role
	}{
		{"POST", "/tokenize", func() string { return `{"data":"role check"}` }, []apikey.Role{apikey.RoleTokenize}},
		{"POST", "/tokenize/batch", func() string { return `{"items":[{"data":"role check"}]}` }, []apikey.Role{apikey.RoleTokenize}},
		{"POST", "/detokenize", func() string { return jsonBody(t, map[string]string{"token": f.tokenize("role check", nil)}) }, []apikey.Role{apikey.RoleDetokenize}},
		{"POST", "/detokenize/batch", func() string {
			return jsonBody(t, map[string][]string{"tokens": {f.tokenize("role check", nil)}})
		}, []apikey.Role{apikey.RoleDetokenize}},
		{"POST", "/suspend", func() string { return jsonBody(t, map[string]string{"token": f.tokenize("role check", nil)}) }, []apikey.Role{apikey.RoleLifecycle}},
		{"POST", "/activate", func() string { return jsonBody(t, map[string]string{"token": f.tokenize("role check", nil)}) }, []apikey.Role{apikey.RoleLifecycle}},
		{"POST", "/close", func() string { return jsonBody(t, map[string]string{"token": f.tokenize("role check", nil)}) }, []apikey.Role{apikey.RoleLifecycle}},
		{"GET", "/tokens/{token}", nil, []apikey.Role{apikey.RoleLifecycle, apikey.RoleDetokenize}},
	}

	for _, route := range routes {
		for _, role := range apikey.Roles() {
			t.Run(route.path+"/"+string(role), func(t *testing.T) {
				req := request{method: route.method, path: route.path, role: role}
				if route.body != nil {
					req.body = route.body()
				} else {
					req.path = "/tokens/" + f.tokenize("role check", nil)
				}

				allowed := role == apikey.RoleAdmin
				for _, r := range route.allowed {
					allowed = allowed || r == role
				}
				r := f.do(req)
				switch {
				case allowed && r.status != http.StatusOK:
					t.Errorf("%s %s with a %s key = %d %q, want 200", route.method, route.path, role, r.status, r.body)
				case !allowed && r.status != http.StatusForbidden:
					t.Errorf("%s %s with a %s key = %d %q, want 403", route.method, route.path, role, r.status, r.body)
				case !allowed && r.errorBody(t).Code != "forbidden":
					t.Errorf("%s %s with a %s key: code %q, want forbidden", route.method, route.path, role, r.errorBody(t).Code)
				}
			})
		}
	}
}

func TestUnauthorized(t *testing.T) {
	f := newFixture(t)
	revokedSecret, revoked, err := f.keyFile.Create("revoked client", []apikey.Role{apikey.RoleAdmin})
	if err != nil {
		t.Fatal(err)
	}
	if err := f.keyFile.Revoke(revoked.ID); err != nil {
		t.Fatal(err)
	}
	admin := f.secrets[apikey.RoleAdmin]

	tests := []struct {
		name   string
		header []string // Authorization headers
	}{
		{"no header", nil},
		{"empty", []string{""}},
		{"scheme only", []string{"Bearer"}},
		{"scheme and space", []string{"Bearer "}},
		{"basic scheme", []string{"Basic " + admin}},
		{"no scheme", []string{admin}},
		{"unknown secret", []string{"Bearer tvk_unknown_secret_0123456789"}},
		{"altered secret", []string{"Bearer " + admin[:len(admin)-1] + string(admin[len(admin)-1]^1)}},
		{"revoked key", []string{"Bearer " + revokedSecret}},
		{"two headers", []string{"Bearer " + admin, "Bearer " + admin}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for _, path := range []string{"/tokenize", "/detokenize", "/suspend", "/tokens/tok_x"} {
				method := http.MethodPost
				if strings.HasPrefix(path, "/tokens/") {
					method = http.MethodGet
				}
				r := f.doWithAuthorization(method, path, `{"data":"x"}`, tt.header)
				if e := r.errorBody(t); r.status != http.StatusUnauthorized || e.Code != "unauthorized" {
					t.Errorf("%s %s = %d %q, want 401 unauthorized", method, path, r.status, r.body)
				}
				if got := r.header.Get("WWW-Authenticate"); got != "Bearer" {
					t.Errorf("%s %s: WWW-Authenticate = %q, want Bearer", method, path, got)
				}
				if strings.Contains(r.body, admin) || strings.Contains(r.body, revokedSecret) {
					t.Errorf("%s %s: the 401 body contains the secret", method, path)
				}
			}
		})
	}
}

func TestBearerSchemeCaseInsensitive(t *testing.T) {
	f := newFixture(t)

	r := f.doWithAuthorization(http.MethodPost, "/tokenize", `{"data":"x"}`, []string{"bearer " + f.secrets[apikey.RoleTokenize]})
	if r.status != http.StatusOK {
		t.Errorf(`Authorization "bearer SECRET" = %d %q, want 200`, r.status, r.body)
	}
}

func TestPublicRoutesIgnoreKeys(t *testing.T) {
	f := newFixture(t)

	for _, path := range []string{"/healthz", "/readyz", "/metrics"} {
		r := f.doWithAuthorization(http.MethodGet, path, "", []string{"Bearer wrong"})
		if r.status != http.StatusOK {
			t.Errorf("GET %s with a wrong key = %d, want 200", path, r.status)
		}
	}
}

func TestAuthorizationBeforeBody(t *testing.T) {
	f := newFixture(t)

	// A client without a key learns nothing about the body rules.
	r := f.doWithAuthorization(http.MethodPost, "/tokenize", `not json`, nil)
	if r.status != http.StatusUnauthorized {
		t.Errorf("invalid body without a key = %d, want 401", r.status)
	}
	r = f.do(request{path: "/tokenize", role: apikey.RoleDetokenize, body: "not json", contentType: "text/plain"})
	if r.status != http.StatusForbidden {
		t.Errorf("invalid body with the wrong role = %d, want 403", r.status)
	}
}

// TestNoAuthRejectsForeignHost sends, with authentication off, a request whose
// Host is a name of an attacker's, as a browser does after DNS rebinding.
func TestNoAuthRejectsForeignHost(t *testing.T) {
	f := newFixture(t, func(c *httpapi.Config) { c.NoAuth = true })
	token := f.tokenize("some value", nil)

	for host, want := range map[string]int{
		"rebind.attacker.example":      http.StatusForbidden,
		"rebind.attacker.example:5001": http.StatusForbidden,
		"localhost:5001":               http.StatusOK,
		"127.0.0.1:5001":               http.StatusOK,
		"[::1]:5001":                   http.StatusOK,
	} {
		req := httptest.NewRequest(http.MethodPost, "/detokenize", strings.NewReader(`{"token":"`+token+`"}`))
		req.Host = host
		req.Header.Set("Content-Type", "application/json")
		rec := httptest.NewRecorder()
		f.handler.ServeHTTP(rec, req)
		if rec.Code != want {
			t.Errorf("Host %q: status %d, want %d", host, rec.Code, want)
		}
		if want != http.StatusOK && strings.Contains(rec.Body.String(), "some value") {
			t.Errorf("Host %q: response contains the value", host)
		}
		if want != http.StatusOK && !strings.Contains(rec.Body.String(), `"code":"host_not_allowed"`) {
			t.Errorf("Host %q: body %s, want the code host_not_allowed", host, rec.Body)
		}
	}
}
