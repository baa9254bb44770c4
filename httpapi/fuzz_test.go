package httpapi_test

import (
	"encoding/json"
	"net/http"
	"regexp"
	"strings"
	"testing"

	"github.com/tokenvault/tokenvault/apikey"
	"github.com/tokenvault/tokenvault/internal/luhn"
)

// fuzzRoutes are the routes that take a body, in the order of FuzzHandler's
// route byte.
var fuzzRoutes = []string{"/tokenize", "/tokenize/batch", "/detokenize", "/detokenize/batch", "/suspend", "/activate", "/close"}

// fuzzStatuses are the statuses a request with an admin key may get. Any
// other, 500 above all, is a fault of the handler.
var fuzzStatuses = map[int]bool{200: true, 400: true, 404: true, 409: true, 410: true, 413: true}

// digitRun finds the runs of digits that could be card numbers.
var digitRun = regexp.MustCompile(`[0-9]{13,19}`)

// FuzzHandler sends arbitrary bodies to every route that takes one, with a
// key of every role, on a vault that holds one token. TOKEN in a body becomes
// that token. Each response must have a JSON body and a status of the API,
// and no response but a successful detokenization's, and no log, may contain
// a card number of the body. Failures name the body's length, not the body:
// the failing input is in testdata/fuzz.
func FuzzHandler(f *testing.F) {
	seeds := []struct {
		route uint8
		body  string
	}{
		{0, `{"data":"4111111111111111"}`},
		{0, `{"data":"4111111111111111","type":"card","format":"card-first-six","deterministic":true,"expires_in":"1h"}`},
		{0, `{"data":"x","scope":"m","allow_non_luhn":true,"purpose":"p"}`},
		{1, `{"items":[{"data":"a"},{"data":"4111111111111111","type":"card"},{"data":null}]}`},
		{2, `{"token":"TOKEN","purpose":"4111111111111111"}`},
		{3, `{"tokens":["TOKEN","tok_0","4111111111111111"]}`},
		{4, `{"token":"TOKEN","reason":"fraud check"}`},
		{5, `{"token":"TOKEN"}`},
		{6, `{"token":"TOKEN","Token":"TOKEN"}`},
		{0, "{\"data\":\"\xff\"}"},
		{2, `{"token":"\ud800"}`},
	}
	for _, s := range seeds {
		f.Add(s.route, []byte(s.body))
	}

	f.Fuzz(func(t *testing.T, route uint8, body []byte) {
		fx := newFixture(t)
		token := fx.tokenize("value behind the fuzzed token", nil)
		path := fuzzRoutes[int(route)%len(fuzzRoutes)]
		text := strings.ReplaceAll(string(body), "TOKEN", token)
		for _, run := range digitRun.FindAllString(text, -1) {
			if luhn.Valid(run) {
				fx.sent(run)
			}
		}

		r := fx.post(path, apikey.RoleAdmin, text)
		if !fuzzStatuses[r.status] {
			t.Fatalf("POST %s with a body of %d bytes = %d %s, want a status of the API", path, len(text), r.status, r.body)
		}
		if !json.Valid([]byte(r.body)) {
			t.Fatalf("POST %s with a body of %d bytes: the response body is not JSON", path, len(text))
		}
		checkJSONHeader(t, r)
		if r.status != http.StatusOK && r.errorBody(t).Code == "" {
			t.Errorf("POST %s with a body of %d bytes = %d %s, want an error code", path, len(text), r.status, r.body)
		}
	})
}
