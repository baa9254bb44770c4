package httpapi_test

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/tokenvault/tokenvault/apikey"
	"github.com/tokenvault/tokenvault/httpapi"
)

// These tests go through net/http's server on a loopback port, for what
// ServeHTTP alone does not show: chunked bodies, HEAD and concurrent
// connections.

func postJSON(t *testing.T, client *http.Client, url, secret string, body io.Reader) (int, string) {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, url, body)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+secret)
	resp, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, string(data)
}

func TestServerRoundTrip(t *testing.T) {
	f := newFixture(t)
	srv := httptest.NewServer(f.handler)
	defer srv.Close()
	client := srv.Client()

	var wg sync.WaitGroup
	for i := range 8 {
		wg.Go(func() {
			value := strings.Repeat("v", i+1) + " secret"
			status, body := postJSON(t, client, srv.URL+"/tokenize", f.secrets[apikey.RoleTokenize], strings.NewReader(jsonBody(t, map[string]string{"data": value})))
			var out struct{ Token string }
			if status != http.StatusOK || json.Unmarshal([]byte(body), &out) != nil {
				t.Errorf("POST /tokenize = %d %q, want 200", status, body)
				return
			}
			status, body = postJSON(t, client, srv.URL+"/detokenize", f.secrets[apikey.RoleDetokenize], strings.NewReader(jsonBody(t, map[string]string{"token": out.Token})))
			if want := jsonBody(t, map[string]string{"data": value}) + "\n"; status != http.StatusOK || body != want {
				t.Errorf("POST /detokenize = %d %q, want 200 %q", status, body, want)
			}
		})
	}
	wg.Wait()
}

func TestServerChunkedBodyOverLimit(t *testing.T) {
	f := newFixture(t, func(c *httpapi.Config) { c.MaxBodyBytes = 1000 })
	srv := httptest.NewServer(f.handler)
	defer srv.Close()

	// A reader without a known length makes the client send a chunked body.
	body := struct{ io.Reader }{strings.NewReader(`{"data":"` + strings.Repeat("x", 5000) + `"}`)}
	status, text := postJSON(t, srv.Client(), srv.URL+"/tokenize", f.secrets[apikey.RoleTokenize], body)
	if status != http.StatusRequestEntityTooLarge || !strings.Contains(text, `"code":"body_too_large"`) {
		t.Errorf("chunked body over the limit = %d %q, want 413 body_too_large", status, text)
	}

	body = struct{ io.Reader }{strings.NewReader(`{"data":"small"}`)}
	if status, text := postJSON(t, srv.Client(), srv.URL+"/tokenize", f.secrets[apikey.RoleTokenize], body); status != http.StatusOK {
		t.Errorf("chunked body within the limit = %d %q, want 200", status, text)
	}
}

func TestServerHead(t *testing.T) {
	f := newFixture(t)
	srv := httptest.NewServer(f.handler)
	defer srv.Close()

	resp, err := srv.Client().Head(srv.URL + "/healthz")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || resp.Header.Get("X-Request-Id") == "" {
		t.Errorf("HEAD /healthz = %d, X-Request-Id %q, want 200 and an id", resp.StatusCode, resp.Header.Get("X-Request-Id"))
	}
}
