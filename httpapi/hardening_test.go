package httpapi_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"sync/atomic"
	"testing"
	"testing/iotest"
	"time"

	"github.com/tokenvault/tokenvault"
	"github.com/tokenvault/tokenvault/apikey"
	"github.com/tokenvault/tokenvault/httpapi"
)

// failingWriter fails every write, as a full disk does, once broken is set,
// except the next grace writes after that.
type failingWriter struct {
	broken atomic.Bool
	grace  atomic.Int64
}

func (w *failingWriter) Write(p []byte) (int, error) {
	if w.broken.Load() && w.grace.Add(-1) < 0 {
		return 0, errors.New("no space left on device")
	}
	return len(p), nil
}

// TestAuditFailureWithholdsValue breaks the audit log and checks that no value
// leaves the vault and no change is made without its record.
func TestAuditFailureWithholdsValue(t *testing.T) {
	w := &failingWriter{}
	f := newFixture(t, func(c *httpapi.Config) { c.Audit = slog.New(slog.NewJSONHandler(w, nil)) })
	token := f.tokenize("value behind an audit record", nil)
	w.broken.Store(true)

	messages := map[string]string{
		"/detokenize": "no value was returned",
		"/suspend":    "the token was not changed",
		"/close":      "the token was not changed",
	}
	for path, message := range messages {
		r := f.post(path, apikey.RoleAdmin, jsonBody(t, map[string]string{"token": token}))
		e := r.errorBody(t)
		if r.status != http.StatusServiceUnavailable || e.Code != "audit_unavailable" {
			t.Errorf("%s with a broken audit log = %d %s, want 503 audit_unavailable", path, r.status, e.Code)
		}
		if !strings.Contains(e.Error, message) {
			t.Errorf("%s with a broken audit log: message %q does not say %q", path, e.Error, message)
		}
	}
	info, err := f.vault.Inspect(context.Background(), token)
	if err != nil {
		t.Fatal(err)
	}
	if info.State != tokenvault.StateActive || info.Revision != 0 {
		t.Errorf("after /suspend and /close with a broken audit log, the token is %s at revision %d, want active and unchanged", info.State, info.Revision)
	}
	r := f.post("/detokenize/batch", apikey.RoleAdmin, jsonBody(t, map[string]any{"tokens": []string{token}}))
	if r.status != http.StatusOK || !strings.Contains(r.body, "audit_unavailable") || strings.Contains(r.body, "value behind") {
		t.Errorf("batch with a broken audit log = %d %s, want the item to fail with audit_unavailable", r.status, r.body)
	}
	if !strings.Contains(f.log.String(), "audit record not written") {
		t.Error("the error log does not report the failed audit write")
	}
}

// A lifecycle request whose "requested" record is written but whose outcome
// record is not gets 503, with a message stating the change may have been
// applied, and the change is kept.
func TestAuditOutcomeFailureAfterChange(t *testing.T) {
	w := &failingWriter{}
	f := newFixture(t, func(c *httpapi.Config) { c.Audit = slog.New(slog.NewJSONHandler(w, nil)) })
	token := f.tokenize("value behind an audit record", nil)

	w.grace.Store(1)
	w.broken.Store(true)
	r := f.post("/suspend", apikey.RoleAdmin, jsonBody(t, map[string]string{"token": token}))
	e := r.errorBody(t)
	if r.status != http.StatusServiceUnavailable || e.Code != "audit_unavailable" {
		t.Errorf("/suspend with a failing outcome record = %d %s, want 503 audit_unavailable", r.status, e.Code)
	}
	if !strings.Contains(e.Error, "may have been applied") {
		t.Errorf("/suspend with a failing outcome record: message %q does not say the change may have been applied", e.Error)
	}

	info, err := f.vault.Inspect(context.Background(), token)
	if err != nil {
		t.Fatal(err)
	}
	if info.State != tokenvault.StateSuspended {
		t.Errorf("after /suspend with a failing outcome record the token is %s, want suspended", info.State)
	}

	// A change the vault rejects changes nothing, so its rejection is the
	// response even when the outcome record fails.
	if err := f.vault.CloseToken(context.Background(), token); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		token, code string
		status      int
	}{
		{token, "token_closed", http.StatusConflict},
		{"tok_unknown", "token_not_found", http.StatusNotFound},
	} {
		w.grace.Store(1)
		r := f.post("/suspend", apikey.RoleAdmin, jsonBody(t, map[string]string{"token": tc.token}))
		if e := r.errorBody(t); r.status != tc.status || e.Code != tc.code {
			t.Errorf("rejected /suspend with a failing outcome record = %d %s, want %d %s", r.status, e.Code, tc.status, tc.code)
		}
	}
}

func TestBatchResponseBounded(t *testing.T) {
	f := newFixture(t, func(c *httpapi.Config) { c.MaxBatchDataBytes = 100 })
	token := f.tokenize(strings.Repeat("v", 60), nil)

	r := f.post("/detokenize/batch", apikey.RoleDetokenize, jsonBody(t, map[string]any{"tokens": []string{token, token, token}}))
	var out struct {
		Results []struct {
			Data string `json:"data"`
			Code string `json:"code"`
		} `json:"results"`
	}
	if err := json.Unmarshal([]byte(r.body), &out); err != nil || r.status != http.StatusOK || len(out.Results) != 3 {
		t.Fatalf("batch = %d, %d results, err %v", r.status, len(out.Results), err)
	}
	if out.Results[0].Data == "" || out.Results[1].Code != "response_too_large" || out.Results[2].Code != "response_too_large" {
		t.Errorf("results = %+v, want the first value and then response_too_large", out.Results)
	}
}

func TestCardNumberInPurposeRejected(t *testing.T) {
	f := newFixture(t)
	token := f.tokenize("some value", nil)

	r := f.post("/detokenize", apikey.RoleDetokenize, jsonBody(t, map[string]string{"token": token, "purpose": "refund 4111 1111 1111 1111"}))
	if e := r.errorBody(t); r.status != http.StatusBadRequest || e.Code != "invalid_option" {
		t.Errorf("purpose with a card number = %d %s, want 400 invalid_option", r.status, e.Code)
	}
	r = f.post("/suspend", apikey.RoleLifecycle, jsonBody(t, map[string]string{"token": token, "reason": "4111111111111111"}))
	if e := r.errorBody(t); r.status != http.StatusBadRequest || e.Code != "invalid_option" {
		t.Errorf("reason with a card number = %d %s, want 400 invalid_option", r.status, e.Code)
	}

	r = f.do(request{path: "/detokenize", role: apikey.RoleDetokenize, body: jsonBody(t, map[string]string{"token": token}),
		header: map[string]string{"X-Request-Id": "4111111111111111", "X-Purpose": "4111-1111-1111-1111"}})
	if id := r.header.Get("X-Request-Id"); id == "4111111111111111" {
		t.Error("a request id that is a card number was kept")
	}
	// Match the number in any of the spellings sent, but not a run of four
	// digits, which a timestamp or a random token may contain.
	if regexp.MustCompile(`4111[ -]?1111[ -]?1111`).MatchString(f.audit.String()) {
		t.Error("the audit log contains digits of a card number sent as request id or purpose")
	}
}

func TestBatchItemLimitBeforeDecoding(t *testing.T) {
	f := newFixture(t, func(c *httpapi.Config) { c.MaxBatchItems = 10 })
	body := `{"items":[` + strings.Repeat(`{"data":"a"},`, 10000) + `{"data":"a"}]}`
	r := f.post("/tokenize/batch", apikey.RoleTokenize, body)
	if e := r.errorBody(t); r.status != http.StatusRequestEntityTooLarge || e.Code != "too_many_items" {
		t.Errorf("batch of 10001 items = %d %s, want 413 too_many_items", r.status, e.Code)
	}
}

func TestRejectionAuditRateLimited(t *testing.T) {
	f := newFixture(t)
	for range 1000 {
		f.post("/detokenize", "", `{"token":"x"}`)
	}
	n := strings.Count(f.audit.String(), "\n")
	if n < 50 || n > 300 {
		t.Errorf("1000 requests without a key wrote %d audit records, want about the burst of 100", n)
	}
}

// TestActivateNamesOtherSuspenders suspends a token by the vault and by a
// sender: POST /activate lifts only the vault's and says who still holds one.
func TestActivateNamesOtherSuspenders(t *testing.T) {
	f := newFixture(t)
	token := f.tokenize("some value", nil)
	_, err := f.vault.ApplyNotification(t.Context(), tokenvault.Notification{
		ID: "n-1", Sender: "visa-vts", Token: token, Action: tokenvault.NotifySuspend, Sequence: 1,
	})
	if err != nil {
		t.Fatalf("ApplyNotification err = %v", err)
	}
	f.post("/suspend", apikey.RoleLifecycle, jsonBody(t, map[string]string{"token": token}))

	r := f.post("/activate", apikey.RoleLifecycle, jsonBody(t, map[string]string{"token": token}))
	if e := r.errorBody(t); r.status != http.StatusConflict || e.Code != "token_suspended" || !strings.Contains(e.Error, "visa-vts") {
		t.Errorf("POST /activate = %d %s %q, want 409 token_suspended naming visa-vts", r.status, e.Code, e.Error)
	}
}

// A body that breaks off gets 400 incomplete_body, and a request whose
// context has ended before the vault runs gets 503 canceled.
func TestIncompleteAndCanceledRequests(t *testing.T) {
	f := newFixture(t)
	request := func(body io.Reader) *http.Request {
		r := httptest.NewRequest(http.MethodPost, "/tokenize", body)
		r.Host = "127.0.0.1:5001"
		r.Header.Set("Content-Type", "application/json")
		r.Header.Set("Authorization", "Bearer "+f.secrets[apikey.RoleTokenize])
		return r
	}

	broken := io.MultiReader(strings.NewReader(`{"data":"4111111111`), iotest.ErrReader(io.ErrUnexpectedEOF))
	r := f.serve("/tokenize", request(broken))
	if e := r.errorBody(t); r.status != http.StatusBadRequest || e.Code != "incomplete_body" {
		t.Errorf("body that breaks off = %d %s, want 400 incomplete_body", r.status, e.Code)
	}
	if strings.Contains(r.body, "4111111111") {
		t.Errorf("response to a body that breaks off repeats its digits: %s", r.body)
	}

	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	r = f.serve("/tokenize", request(strings.NewReader(`{"data":"value of a canceled request"}`)).WithContext(ctx))
	if e := r.errorBody(t); r.status != http.StatusServiceUnavailable || e.Code != "canceled" {
		t.Errorf("request with a canceled context = %d %s, want 503 canceled", r.status, e.Code)
	}
}

// A request rejected with a 4xx status gets an info record in the error log,
// without its body, and a flood of them is limited like the audit records of
// rejected requests.
func TestRejectedRequestsLogged(t *testing.T) {
	f := newFixture(t)

	r := f.post("/tokenize", apikey.RoleTokenize, `{"data":4111111111111111}`)
	if r.status != http.StatusBadRequest {
		t.Fatalf("card number as a JSON number = %d, want 400", r.status)
	}
	records := rejectedRecords(t, f)
	if len(records) != 1 {
		t.Fatalf("%d \"request rejected\" records after one rejected request, want 1:\n%s", len(records), f.log)
	}
	want := map[string]any{"route": "/tokenize", "status": float64(400), "code": "invalid_type", "key_id": f.keyIDs[apikey.RoleTokenize]}
	for name, value := range want {
		if records[0][name] != value {
			t.Errorf("record field %s = %v, want %v", name, records[0][name], value)
		}
	}
	if records[0]["request_id"] == "" || records[0]["request_id"] == nil {
		t.Error("record has no request_id")
	}

	const flood = 300
	start := time.Now()
	for range flood {
		f.post("/tokenize", apikey.RoleTokenize, `{"data":null}`)
	}
	// The limit allows bursts of 100 and 20 a second after them.
	maxRecords := 100 + 1 + int(20*time.Since(start).Seconds())
	if n := len(rejectedRecords(t, f)); n < 100 || n > maxRecords {
		t.Errorf("%d records after %d rejected requests, want 100 to %d", n, flood+1, maxRecords)
	}
	time.Sleep(100 * time.Millisecond)
	f.post("/tokenize", apikey.RoleTokenize, `{"data":null}`)
	records = rejectedRecords(t, f)
	if dropped, _ := records[len(records)-1]["suppressed_before"].(float64); dropped < 1 {
		t.Errorf("record after the burst has suppressed_before %v, want the count of records dropped", records[len(records)-1]["suppressed_before"])
	}
}

// rejectedRecords returns the "request rejected" records of f's error log.
func rejectedRecords(t *testing.T, f *fixture) []map[string]any {
	t.Helper()
	var records []map[string]any
	for _, record := range parseJSONLines(t, f.log.String()) {
		if record["msg"] == "request rejected" {
			records = append(records, record)
		}
	}
	return records
}
