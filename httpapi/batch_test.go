package httpapi_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"runtime"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tokenvault/tokenvault"
	"github.com/tokenvault/tokenvault/apikey"
	"github.com/tokenvault/tokenvault/httpapi"
)

type batchResult struct {
	Token      string `json:"token"`
	Data       string `json:"data"`
	DataBase64 string `json:"data_base64"`
	Error      string `json:"error"`
	Code       string `json:"code"`
}

func decodeBatch(t *testing.T, r response) []batchResult {
	t.Helper()
	if r.status != http.StatusOK {
		t.Fatalf("batch = %d %q, want 200", r.status, r.body)
	}
	var out struct {
		Results []batchResult `json:"results"`
	}
	if err := json.Unmarshal([]byte(r.body), &out); err != nil {
		t.Fatalf("batch body %q: %v", r.body, err)
	}
	return out.Results
}

func TestTokenizeBatchMixed(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	f.sent(visaPAN)
	f.sent(amexPAN)

	body := `{"items":[
		{"data":"4111111111111111","type":"card"},
		{"data":"4111111111111112","type":"card"},
		{"data":"plain value"},
		{"data":""},
		{"data":"x","expires_in":"0s"},
		{"data":"378282246310005","type":"card","format":"card-first-six"},
		{"data":"y","format":"weird"}
	]}`
	results := decodeBatch(t, f.post("/tokenize/batch", apikey.RoleTokenize, body))

	wantCodes := []string{"", "invalid_card_number", "", "invalid_data", "invalid_option", "", "invalid_option"}
	if len(results) != len(wantCodes) {
		t.Fatalf("batch has %d results, want %d", len(results), len(wantCodes))
	}
	wantValues := map[int]string{0: visaPAN, 2: "plain value", 5: amexPAN}
	for i, want := range wantCodes {
		res := results[i]
		if res.Code != want {
			t.Errorf("item %d: code %q (%q), want %q", i, res.Code, res.Error, want)
		}
		if want != "" {
			if res.Token != "" || res.Error == "" {
				t.Errorf("item %d: failed item has token %q, error %q", i, res.Token, res.Error)
			}
			continue
		}
		value, err := f.vault.Detokenize(ctx, res.Token)
		if err != nil || string(value) != wantValues[i] {
			t.Errorf("item %d: token %q does not detokenize to the item's value: %v", i, res.Token, err)
		}
	}
}

func TestTokenizeBatchKeepsOrder(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()

	var items []map[string]string
	for i := range 100 {
		items = append(items, map[string]string{"data": fmt.Sprintf("value %03d", i)})
	}
	results := decodeBatch(t, f.post("/tokenize/batch", apikey.RoleTokenize, jsonBody(t, map[string]any{"items": items})))
	if len(results) != len(items) {
		t.Fatalf("batch has %d results, want %d", len(results), len(items))
	}
	for i, res := range results {
		value, err := f.vault.Detokenize(ctx, res.Token)
		if err != nil || string(value) != items[i]["data"] {
			t.Errorf("result %d: token detokenizes to %q, %v, want %q", i, value, err, items[i]["data"])
		}
	}
}

// TestTokenizeBatchOptionGroups interleaves items with three sets of
// options, and checks that each item gets the token its own options ask for:
// equal tokens for a deterministic value and scope, whether in one batch or
// by /tokenize, and other tokens elsewhere.
func TestTokenizeBatchOptionGroups(t *testing.T) {
	f := newFixture(t)
	f.sent(visaPAN)
	det := map[string]any{"data": visaPAN, "type": "card", "deterministic": true, "scope": "acquirer"}
	other := map[string]any{"data": visaPAN, "type": "card", "deterministic": true, "scope": "other"}
	random := map[string]any{"data": visaPAN, "type": "card"}
	items := []map[string]any{det, random, other, det, random, other, det}

	results := decodeBatch(t, f.post("/tokenize/batch", apikey.RoleTokenize, jsonBody(t, map[string]any{"items": items})))
	if len(results) != len(items) {
		t.Fatalf("batch has %d results, want %d", len(results), len(items))
	}
	for i, res := range results {
		if res.Token == "" {
			t.Fatalf("item %d failed: %s %s", i, res.Code, res.Error)
		}
	}

	single := f.tokenize(visaPAN, map[string]any{"type": "card", "deterministic": true, "scope": "acquirer"})
	for _, i := range []int{0, 3, 6} {
		if results[i].Token != single {
			t.Errorf("item %d: deterministic token differs from the one /tokenize returns for the same scope", i)
		}
	}
	if results[2].Token != results[5].Token {
		t.Errorf("items 2 and 5 (scope other) got different tokens")
	}
	if results[2].Token == single {
		t.Errorf("item 2 (scope other) got the token of scope acquirer")
	}
	if results[1].Token == results[4].Token {
		t.Errorf("items 1 and 4 (random tokens) got the same token")
	}
	if results[1].Token == single || results[1].Token == results[2].Token {
		t.Errorf("item 1 (random token) got a deterministic token")
	}
}

func TestDetokenizeBatchMixed(t *testing.T) {
	f := newFixture(t)
	active := f.tokenize(visaPAN, map[string]any{"type": "card"})
	suspended := f.tokenize("suspended value", nil)
	closed := f.tokenize("closed value", nil)
	data := f.tokenize("caf\u00e9", nil)
	f.post("/suspend", apikey.RoleLifecycle, jsonBody(t, map[string]string{"token": suspended}))
	f.post("/close", apikey.RoleLifecycle, jsonBody(t, map[string]string{"token": closed}))
	f.audit.Reset()

	tokens := []string{active, "tok_nope", suspended, closed, mastercardPAN, data, active}
	r := f.post("/detokenize/batch", apikey.RoleDetokenize, jsonBody(t, map[string]any{"tokens": tokens, "purpose": "reconciliation"}))
	results := decodeBatch(t, r)

	want := []batchResult{
		{Data: visaPAN},
		{Code: "token_not_found", Error: "Token not found"},
		{Code: "token_suspended"},
		{Code: "token_closed"},
		{Code: "token_not_found", Error: "Token not found"},
		{Data: "caf\u00e9"},
		{Data: visaPAN},
	}
	if len(results) != len(want) {
		t.Fatalf("batch has %d results, want %d", len(results), len(want))
	}
	for i, w := range want {
		got := results[i]
		if got.Data != w.Data || got.Code != w.Code || (w.Error != "" && got.Error != w.Error) {
			t.Errorf("item %d = %+v, want %+v", i, got, w)
		}
	}
	if !strings.Contains(r.body, `{"data":"caf\u00e9"}`) {
		t.Errorf("batch body %q does not escape non-ASCII data as the single route does", r.body)
	}

	records := f.auditRecords()
	if len(records) != len(tokens) {
		t.Fatalf("audit log has %d records for %d batch items, want one each", len(records), len(tokens))
	}
	outcomes := []string{"ok", "token_not_found", "token_suspended", "token_closed", "token_not_found", "ok", "ok"}
	for i, rec := range records {
		checkAuditRecord(t, rec, map[string]any{"route": "/detokenize/batch", "outcome": outcomes[i], "purpose": "reconciliation", "item": float64(i)})
	}
}

func TestBatchTooManyItems(t *testing.T) {
	f := newFixture(t, func(c *httpapi.Config) { c.MaxBatchItems = 3 })

	const message = "Batch has more than 3 items: split it into batches of at most 3"
	items := `{"items":[{"data":"a"},{"data":"b"},{"data":"c"},{"data":"d"}]}`
	r := f.post("/tokenize/batch", apikey.RoleTokenize, items)
	if e := r.errorBody(t); r.status != http.StatusRequestEntityTooLarge || e.Code != "too_many_items" || e.Error != message {
		t.Errorf("tokenize batch of 4 with a limit of 3 = %d %q, want 413 too_many_items %q", r.status, r.body, message)
	}
	r = f.post("/detokenize/batch", apikey.RoleDetokenize, `{"tokens":["a","b","c","d"]}`)
	if e := r.errorBody(t); r.status != http.StatusRequestEntityTooLarge || e.Code != "too_many_items" || e.Error != message {
		t.Errorf("detokenize batch of 4 with a limit of 3 = %d %q, want 413 too_many_items %q", r.status, r.body, message)
	}

	r = f.post("/tokenize/batch", apikey.RoleTokenize, `{"items":[{"data":"a"},{"data":"b"},{"data":"c"}]}`)
	if len(decodeBatch(t, r)) != 3 {
		t.Errorf("tokenize batch of exactly the limit did not return 3 results")
	}
}

func TestBatchDefaultLimit(t *testing.T) {
	f := newFixture(t)

	tokens := make([]string, httpapi.DefaultMaxBatchItems+1)
	for i := range tokens {
		tokens[i] = "tok_nope"
	}
	r := f.post("/detokenize/batch", apikey.RoleDetokenize, jsonBody(t, map[string]any{"tokens": tokens}))
	if r.status != http.StatusRequestEntityTooLarge {
		t.Errorf("detokenize batch of %d = %d, want 413", len(tokens), r.status)
	}
}

func TestBatchEmpty(t *testing.T) {
	f := newFixture(t)

	for _, req := range []struct{ path, body string }{
		{"/tokenize/batch", `{"items":[]}`},
		{"/detokenize/batch", `{"tokens":[]}`},
	} {
		r := f.post(req.path, apikey.RoleAdmin, req.body)
		if r.status != http.StatusOK || r.body != `{"results":[]}`+"\n" {
			t.Errorf("POST %s with no items = %d %q, want 200 {\"results\":[]}", req.path, r.status, r.body)
		}
	}
}

func TestBatchStructuralErrorFailsWhole(t *testing.T) {
	f := newFixture(t)

	tests := []struct {
		path, body, code string
	}{
		{"/tokenize/batch", `{"items":[{"data":"a"},{"data":"b","pan":"c"}]}`, "unknown_field"},
		{"/tokenize/batch", `{"items":[{"data":"a"},{}]}`, "missing_field"},
		{"/tokenize/batch", `{"items":[{"data":"a"},null]}`, "null_value"},
		{"/tokenize/batch", `{"items":{"data":"a"}}`, "invalid_type"},
		{"/tokenize/batch", `{}`, "missing_field"},
		{"/detokenize/batch", `{"tokens":["a",4111111111111111]}`, "invalid_type"},
		{"/detokenize/batch", `{"tokens":["a",null]}`, "null_value"},
		{"/detokenize/batch", `{"tokens":"a"}`, "invalid_type"},
		{"/detokenize/batch", `{"token":["a"]}`, "unknown_field"},
	}
	for _, tt := range tests {
		r := f.post(tt.path, apikey.RoleAdmin, tt.body)
		if e := r.errorBody(t); r.status != http.StatusBadRequest || e.Code != tt.code {
			t.Errorf("POST %s %s = %d %q, want 400 %s", tt.path, tt.body, r.status, r.body, tt.code)
		}
	}
}

// panickyStore is a memory store whose Create panics, as a store with a bug
// would. It does not implement tokenvault.BatchCreator.
type panickyStore struct{ tokenvault.Store }

func (panickyStore) Create(context.Context, *tokenvault.Record) error { panic("store bug") }

// TestTokenizeBatchPanicFailsItems checks that a panic in the store, on a
// goroutine of the vault's batch call, fails the items of its group with
// internal_error and leaves the server running.
func TestTokenizeBatchPanicFailsItems(t *testing.T) {
	keys, err := tokenvault.GenerateKeyRing()
	if err != nil {
		t.Fatal(err)
	}
	v, err := tokenvault.New(panickyStore{tokenvault.NewMemoryStore()}, keys)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { v.Close() })
	f := newFixture(t, func(c *httpapi.Config) { c.Vault = v })

	body := `{"items":[{"data":"value one","deterministic":true},{"data":"value two"},{"data":"value three","deterministic":true}]}`
	results := decodeBatch(t, f.post("/tokenize/batch", apikey.RoleTokenize, body))
	if len(results) != 3 {
		t.Fatalf("batch has %d results, want 3", len(results))
	}
	for i, res := range results {
		if res.Code != "internal_error" {
			t.Errorf("item %d: code %q, want internal_error", i, res.Code)
		}
	}
	if !strings.Contains(f.log.String(), "tokenize panicked: store bug") {
		t.Errorf("the panic was not logged:\n%s", f.log.String())
	}
}

// TestTokenizeBatchBoundsGoroutines sends a batch whose 1,000 items each ask
// for their own deterministic scope, so 1,000 option groups, and checks that
// the goroutines running at once stay within the handler's bound.
func TestTokenizeBatchBoundsGoroutines(t *testing.T) {
	f := newFixture(t)
	f.sent(visaPAN)
	items := make([]map[string]any, 1000)
	for i := range items {
		items[i] = map[string]any{"data": visaPAN, "type": "card", "deterministic": true, "scope": fmt.Sprint("scope ", i)}
	}
	body := jsonBody(t, map[string]any{"items": items})

	var peak atomic.Int64
	stop, stopped := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(stopped)
		for {
			peak.Store(max(peak.Load(), int64(runtime.NumGoroutine())))
			select {
			case <-stop:
				return
			case <-time.After(100 * time.Microsecond):
			}
		}
	}()
	before := runtime.NumGoroutine()
	results := decodeBatch(t, f.post("/tokenize/batch", apikey.RoleTokenize, body))
	close(stop)
	<-stopped

	for i, res := range results {
		if res.Token == "" {
			t.Fatalf("item %d failed: %s %s", i, res.Code, res.Error)
		}
	}
	// Each of up to 16 groups at once runs the vault's batch call: one
	// goroutine that prepares chunks, and one worker per CPU.
	limit := int64(before + 16*(2+runtime.GOMAXPROCS(0)) + 8)
	if got := peak.Load(); got > limit {
		t.Errorf("%d goroutines ran at once during the batch, want at most %d", got, limit)
	}
}
