package httpapi_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io/fs"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/tokenvault/tokenvault"
	"github.com/tokenvault/tokenvault/apikey"
	"github.com/tokenvault/tokenvault/httpapi"
	"github.com/tokenvault/tokenvault/webhook"
)

// reissuedPAN is a published test card number, never a real card.
const reissuedPAN = "4012888888881881"

var (
	visaSecret   = []byte("visa-vts secret, 32 bytes long..")
	issuerSecret = []byte("issuer-1 secret, 32 bytes long..")
)

func withSenders(senders map[string][]byte) fixtureOption {
	return func(c *httpapi.Config) { c.Senders = senders }
}

func newNotificationFixture(t *testing.T) *fixture {
	t.Helper()
	return newFixture(t, withSenders(map[string][]byte{"visa-vts": visaSecret, "issuer-1": issuerSecret}))
}

// signedHeaders returns the headers of a notification from sender, signed
// with secret at signedAt.
func signedHeaders(sender string, secret []byte, body string, signedAt time.Time) map[string]string {
	return map[string]string{
		"Tokenvault-Sender":    sender,
		"Tokenvault-Signature": webhook.Sign(secret, []byte(body), signedAt),
	}
}

// notify posts body from visa-vts, signed now.
func (f *fixture) notify(body string) response {
	f.t.Helper()
	return f.do(request{path: "/notifications", body: body, header: signedHeaders("visa-vts", visaSecret, body, time.Now())})
}

func notificationBody(t *testing.T, token, id, action string, sequence int, extra map[string]any) string {
	t.Helper()
	body := map[string]any{"id": id, "token": token, "action": action, "sequence": sequence}
	for k, v := range extra {
		body[k] = v
	}
	return jsonBody(t, body)
}

// wantStatus fails the test unless r is 200 with {"status":status}.
func wantStatus(t *testing.T, what string, r response, status string) {
	t.Helper()
	if want := `{"status":"` + status + `"}` + "\n"; r.status != http.StatusOK || r.body != want {
		t.Fatalf("%s: status %d, body %q, want 200 %q", what, r.status, r.body, want)
	}
}

// wantError fails the test unless r is an error response with status and
// code.
func wantError(t *testing.T, what string, r response, status int, code string) {
	t.Helper()
	if r.status != status {
		t.Errorf("%s: status %d, body %s, want %d %s", what, r.status, r.body, status, code)
		return
	}
	if got := r.errorBody(t).Code; got != code {
		t.Errorf("%s: code %q, want %q", what, got, code)
	}
}

// wantUnchanged fails the test unless token is active and has no history.
func wantUnchanged(t *testing.T, f *fixture, what, token string) {
	t.Helper()
	info, err := f.vault.Inspect(context.Background(), token)
	if err != nil {
		t.Fatalf("%s: Inspect err = %v", what, err)
	}
	if info.State != tokenvault.StateActive || len(info.History) != 0 {
		t.Errorf("%s: token is %s with %d history entries, want active and unchanged", what, info.State, len(info.History))
	}
}

func TestNotificationsSignatureRejected(t *testing.T) {
	f := newNotificationFixture(t)
	token := f.tokenize(visaPAN, map[string]any{"type": "card"})
	body := notificationBody(t, token, "n-1", "suspend", 1, nil)
	now := time.Now()

	tests := []struct {
		name        string
		body        string
		contentType string
		header      map[string]string
	}{
		{"no headers", body, "", nil},
		{"no signature", body, "", map[string]string{"Tokenvault-Sender": "visa-vts"}},
		{"no sender", body, "", map[string]string{"Tokenvault-Signature": webhook.Sign(visaSecret, []byte(body), now)}},
		{"unknown sender", body, "", signedHeaders("mc-mdes", visaSecret, body, now)},
		{"another sender's secret", body, "", signedHeaders("visa-vts", issuerSecret, body, now)},
		{"body changed after signing", strings.Replace(body, "suspend", "delete", 1), "", signedHeaders("visa-vts", visaSecret, body, now)},
		{"timestamp too old", body, "", signedHeaders("visa-vts", visaSecret, body, now.Add(-webhook.DefaultTolerance-time.Minute))},
		{"timestamp in the future", body, "", signedHeaders("visa-vts", visaSecret, body, now.Add(webhook.DefaultTolerance+time.Minute))},
		{"malformed signature", body, "", map[string]string{"Tokenvault-Sender": "visa-vts", "Tokenvault-Signature": "v1=abc"}},
		{"invalid JSON unsigned", "{", "", map[string]string{"Tokenvault-Sender": "visa-vts"}},
		{"wrong content type unsigned", body, "text/plain", map[string]string{"Tokenvault-Sender": "visa-vts"}},
		{"API key instead", body, "", map[string]string{"Authorization": "Bearer " + f.secrets[apikey.RoleAdmin]}},
	}
	var first string
	for _, tt := range tests {
		r := f.do(request{path: "/notifications", body: tt.body, contentType: tt.contentType, header: tt.header})
		wantError(t, tt.name, r, http.StatusUnauthorized, "invalid_signature")
		if first == "" {
			first = r.body
		} else if r.body != first {
			t.Errorf("%s: body %q differs from the first rejection's %q", tt.name, r.body, first)
		}
		wantUnchanged(t, f, tt.name, token)
	}

	records := f.auditRecords()
	if len(records) != len(tests) {
		t.Fatalf("%d audit records, want %d", len(records), len(tests))
	}
	for i, rec := range records {
		if rec["msg"] != "notification" || rec["outcome"] != "invalid_signature" || rec["route"] != "/notifications" {
			t.Errorf("audit record %d (%s) = %v, want a notification record with outcome invalid_signature", i, tests[i].name, rec)
		}
	}
	if got := records[3]["signature_failure"]; got != "unknown_sender" {
		t.Errorf("signature_failure of an unknown sender = %v, want unknown_sender", got)
	}
	if got := records[6]["signature_failure"]; got != "timestamp_out_of_range" {
		t.Errorf("signature_failure of an old timestamp = %v, want timestamp_out_of_range", got)
	}
}

func TestNotificationsTwoSenderHeaders(t *testing.T) {
	f := newNotificationFixture(t)
	token := f.tokenize(visaPAN, map[string]any{"type": "card"})
	body := notificationBody(t, token, "n-1", "suspend", 1, nil)

	r, err := http.NewRequest(http.MethodPost, "/notifications", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	r.Header.Set("Content-Type", "application/json")
	r.Header["Tokenvault-Sender"] = []string{"mc-mdes", "visa-vts"}
	r.Header.Set("Tokenvault-Signature", webhook.Sign(visaSecret, []byte(body), time.Now()))
	wantError(t, "two sender headers", f.serve("/notifications", r), http.StatusUnauthorized, "invalid_signature")
	wantUnchanged(t, f, "two sender headers", token)
}

func TestNotificationsReplay(t *testing.T) {
	f := newNotificationFixture(t)
	token := f.tokenize(visaPAN, map[string]any{"type": "card"})
	body := notificationBody(t, token, "n-1", "suspend", 1, nil)
	header := signedHeaders("visa-vts", visaSecret, body, time.Now())

	first := f.do(request{path: "/notifications", body: body, header: header})
	wantStatus(t, "first delivery", first, "applied")
	again := f.do(request{path: "/notifications", body: body, header: header})
	wantStatus(t, "replayed delivery", again, "duplicate")

	info, err := f.vault.Inspect(context.Background(), token)
	if err != nil {
		t.Fatal(err)
	}
	if info.State != tokenvault.StateSuspended || len(info.History) != 1 {
		t.Errorf("token is %s with %d history entries, want suspended with 1", info.State, len(info.History))
	}
}

func TestNotificationsActions(t *testing.T) {
	f := newNotificationFixture(t)
	token := f.tokenize(visaPAN, map[string]any{"type": "card"})
	f.sent(reissuedPAN)
	detokenize := func() response {
		return f.post("/detokenize", apikey.RoleDetokenize, jsonBody(t, map[string]any{"token": token}))
	}

	wantStatus(t, "suspend", f.notify(notificationBody(t, token, "1", "suspend", 1, map[string]any{"reason": "card lost"})), "applied")
	wantError(t, "detokenize after suspend", detokenize(), http.StatusConflict, "token_suspended")

	// A suspension of the vault's own API stays after the sender resumes.
	if r := f.post("/suspend", apikey.RoleLifecycle, jsonBody(t, map[string]any{"token": token})); r.status != http.StatusOK {
		t.Fatalf("POST /suspend: status %d, body %s", r.status, r.body)
	}
	wantStatus(t, "resume", f.notify(notificationBody(t, token, "2", "resume", 2, nil)), "applied")
	wantError(t, "detokenize while the vault's suspension holds", detokenize(), http.StatusConflict, "token_suspended")
	if r := f.post("/activate", apikey.RoleLifecycle, jsonBody(t, map[string]any{"token": token})); r.status != http.StatusOK {
		t.Fatalf("POST /activate: status %d, body %s", r.status, r.body)
	}

	expiry := time.Now().Add(365 * 24 * time.Hour).UTC().Truncate(time.Second)
	reissue := notificationBody(t, token, "3", "reissue", 3, map[string]any{
		"card_number": "4012 8888 8888 1881",
		"card_expiry": expiry.Format(time.RFC3339),
	})
	wantStatus(t, "reissue", f.notify(reissue), "applied")
	r := detokenize()
	if want := `{"data":"` + reissuedPAN + `"}` + "\n"; r.status != http.StatusOK || r.body != want {
		t.Errorf("detokenize after reissue: status %d, want 200 and the new number", r.status)
	}
	info, err := f.vault.Inspect(context.Background(), token)
	if err != nil {
		t.Fatal(err)
	}
	if info.Last4 != "1881" || !info.Expires.Equal(expiry) {
		t.Errorf("after reissue Last4, Expires = %s, %s, want 1881, %s", info.Last4, info.Expires, expiry)
	}

	wantStatus(t, "stale", f.notify(notificationBody(t, token, "old", "delete", 1, nil)), "stale")
	wantStatus(t, "delete", f.notify(notificationBody(t, token, "4", "delete", 4, nil)), "applied")
	wantError(t, "detokenize after delete", detokenize(), http.StatusConflict, "token_closed")
	wantError(t, "suspend after delete", f.notify(notificationBody(t, token, "5", "suspend", 5, nil)), http.StatusConflict, "token_closed")
	reissueClosed := notificationBody(t, token, "6", "reissue", 6, map[string]any{"card_number": reissuedPAN})
	wantError(t, "reissue after delete", f.notify(reissueClosed), http.StatusConflict, "token_closed")
	wantStatus(t, "delete again", f.notify(notificationBody(t, token, "7", "delete", 7, nil)), "applied")

	info, err = f.vault.Inspect(context.Background(), token)
	if err != nil {
		t.Fatal(err)
	}
	var actors []string
	for _, c := range info.History {
		actors = append(actors, c.Actor)
	}
	want := []string{"visa-vts", f.keyIDs[apikey.RoleLifecycle], "visa-vts", f.keyIDs[apikey.RoleLifecycle], "visa-vts", "visa-vts"}
	if strings.Join(actors, " ") != strings.Join(want, " ") {
		t.Errorf("history actors = %q, want %q", actors, want)
	}
	if info.History[0].Reason != "card lost" {
		t.Errorf("history[0].Reason = %q, want %q", info.History[0].Reason, "card lost")
	}

	var applied []map[string]any
	for _, rec := range f.auditRecords() {
		if rec["msg"] == "notification" && rec["result"] == "applied" {
			applied = append(applied, rec)
		}
	}
	if len(applied) != 5 {
		t.Fatalf("%d audit records of applied notifications, want 5", len(applied))
	}
	rec := applied[2]
	if rec["sender"] != "visa-vts" || rec["token"] != token || rec["notification_id"] != "3" || rec["action"] != "reissue" || rec["sequence"] != 3.0 || rec["outcome"] != "ok" {
		t.Errorf("audit record of the reissue = %v", rec)
	}
	if _, ok := rec["key_id"]; ok {
		t.Errorf("audit record of a notification has key_id, want sender only")
	}
}

func TestNotificationsSecondSender(t *testing.T) {
	f := newNotificationFixture(t)
	token := f.tokenize(visaPAN, map[string]any{"type": "card"})

	body := notificationBody(t, token, "1", "suspend", 1, nil)
	r := f.do(request{path: "/notifications", body: body, header: signedHeaders("issuer-1", issuerSecret, body, time.Now())})
	wantStatus(t, "suspend from issuer-1", r, "applied")
	wantStatus(t, "resume from visa-vts, which holds no suspension", f.notify(notificationBody(t, token, "1", "resume", 1, nil)), "applied")

	r = f.post("/detokenize", apikey.RoleDetokenize, jsonBody(t, map[string]any{"token": token}))
	wantError(t, "detokenize while issuer-1 holds its suspension", r, http.StatusConflict, "token_suspended")
}

func TestNotificationsInvalidInput(t *testing.T) {
	f := newNotificationFixture(t)
	token := f.tokenize(visaPAN, map[string]any{"type": "card"})
	f.sent(reissuedPAN)
	f.sent("4012888888881882")

	tests := []struct {
		name   string
		body   string
		status int
		code   string
	}{
		{"not JSON", `{"id":`, 400, "invalid_json"},
		{"array", `[]`, 400, "invalid_json"},
		{"trailing data", notificationBody(t, token, "1", "suspend", 1, nil) + "{}", 400, "trailing_data"},
		{"unknown field", `{"id":"1","token":"` + token + `","action":"suspend","sequence":1,"sender":"issuer-1"}`, 400, "unknown_field"},
		{"field in another case", `{"id":"1","token":"` + token + `","action":"suspend","sequence":1,"Sequence":2}`, 400, "duplicate_field"},
		{"duplicate field", `{"id":"1","token":"` + token + `","action":"suspend","action":"delete","sequence":1}`, 400, "duplicate_field"},
		{"missing id", `{"token":"` + token + `","action":"suspend","sequence":1}`, 400, "missing_field"},
		{"missing sequence", `{"id":"1","token":"` + token + `","action":"suspend"}`, 400, "missing_field"},
		{"null reason", `{"id":"1","token":"` + token + `","action":"suspend","sequence":1,"reason":null}`, 400, "null_value"},
		{"sequence as string", `{"id":"1","token":"` + token + `","action":"suspend","sequence":"1"}`, 400, "invalid_type"},
		{"sequence with fraction", `{"id":"1","token":"` + token + `","action":"suspend","sequence":1.5}`, 400, "invalid_type"},
		{"sequence with exponent", `{"id":"1","token":"` + token + `","action":"suspend","sequence":1e3}`, 400, "invalid_type"},
		{"sequence too large", `{"id":"1","token":"` + token + `","action":"suspend","sequence":18446744073709551616}`, 400, "invalid_type"},
		{"sequence zero", notificationBody(t, token, "1", "suspend", 0, nil), 400, "invalid_option"},
		{"sequence negative", notificationBody(t, token, "1", "suspend", -1, nil), 400, "invalid_option"},
		{"unknown action", notificationBody(t, token, "1", "close", 1, nil), 400, "invalid_option"},
		{"action in capitals", notificationBody(t, token, "1", "SUSPEND", 1, nil), 400, "invalid_option"},
		{"empty id", notificationBody(t, token, "", "suspend", 1, nil), 400, "invalid_option"},
		{"long id", notificationBody(t, token, strings.Repeat("i", 129), "suspend", 1, nil), 400, "invalid_option"},
		{"id with newline", notificationBody(t, token, "a\nb", "suspend", 1, nil), 400, "invalid_option"},
		{"long reason", notificationBody(t, token, "1", "suspend", 1, map[string]any{"reason": strings.Repeat("r", tokenvault.MaxReasonSize+1)}), 400, "invalid_option"},
		{"card number on suspend", notificationBody(t, token, "1", "suspend", 1, map[string]any{"card_number": reissuedPAN}), 400, "invalid_option"},
		{"allow_non_luhn on delete", notificationBody(t, token, "1", "delete", 1, map[string]any{"allow_non_luhn": true}), 400, "invalid_option"},
		{"reissue without number", notificationBody(t, token, "1", "reissue", 1, nil), 400, "invalid_card_number"},
		{"reissue failing Luhn", notificationBody(t, token, "1", "reissue", 1, map[string]any{"card_number": "4012888888881882"}), 400, "invalid_card_number"},
		{"reissue with a shorter number", notificationBody(t, token, "1", "reissue", 1, map[string]any{"card_number": amexPAN}), 400, "invalid_option"},
		{"card expiry not RFC 3339", notificationBody(t, token, "1", "reissue", 1, map[string]any{"card_number": reissuedPAN, "card_expiry": "12/30"}), 400, "invalid_option"},
		{"card expiry passed", notificationBody(t, token, "1", "reissue", 1, map[string]any{"card_number": reissuedPAN, "card_expiry": "2020-01-31T23:59:59Z"}), 400, "invalid_option"},
		{"unknown token", notificationBody(t, "tok_000000000000000000000000000000000000", "1", "suspend", 1, nil), 404, "token_not_found"},
		{"card number as token", notificationBody(t, visaPAN, "1", "suspend", 1, nil), 404, "token_not_found"},
	}
	for _, tt := range tests {
		r := f.notify(tt.body)
		wantError(t, tt.name, r, tt.status, tt.code)
		wantUnchanged(t, f, tt.name, token)
	}

	body := notificationBody(t, token, "1", "suspend", 1, nil)
	r := f.do(request{path: "/notifications", body: body, contentType: "text/plain", header: signedHeaders("visa-vts", visaSecret, body, time.Now())})
	wantError(t, "signed request of another media type", r, http.StatusUnsupportedMediaType, "unsupported_media_type")
	wantUnchanged(t, f, "signed request of another media type", token)

	for _, rec := range f.auditRecords() {
		if rec["msg"] != "notification" {
			continue
		}
		if rec["token"] == visaPAN {
			t.Errorf("audit record has the card number sent as a token: %v", rec)
		}
		if id, _ := rec["notification_id"].(string); strings.Contains(id, "\n") {
			t.Errorf("audit record has an invalid id unredacted: %v", rec)
		}
	}
}

func TestNotificationsBodyTooLarge(t *testing.T) {
	f := newFixture(t, withSenders(map[string][]byte{"visa-vts": visaSecret}), func(c *httpapi.Config) { c.MaxBodyBytes = 64 })
	body := `{"id":"1","token":"tok_000000000000000000000000000000000000","action":"suspend","sequence":1}`

	r := f.do(request{path: "/notifications", body: body, header: signedHeaders("visa-vts", visaSecret, body, time.Now())})
	wantError(t, "signed body over the limit", r, http.StatusRequestEntityTooLarge, "body_too_large")
}

func TestNotificationsDisabledWithoutSenders(t *testing.T) {
	f := newFixture(t)
	token := f.tokenize(visaPAN, map[string]any{"type": "card"})
	body := notificationBody(t, token, "1", "suspend", 1, nil)

	for _, method := range []string{http.MethodPost, http.MethodGet} {
		r := f.do(request{method: method, path: "/notifications", body: body, header: signedHeaders("visa-vts", visaSecret, body, time.Now())})
		wantError(t, method+" /notifications without senders", r, http.StatusNotFound, "not_found")
	}
	wantUnchanged(t, f, "without senders", token)
	if got := f.series("tokenvault_http_requests_total")["code=not_found,route=unmatched"]; got != 2 {
		t.Errorf("requests counted as unmatched not_found = %v, want 2", got)
	}
}

func TestNotificationsMethodNotAllowed(t *testing.T) {
	f := newNotificationFixture(t)
	r := f.do(request{method: http.MethodGet, path: "/notifications"})
	wantError(t, "GET /notifications", r, http.StatusMethodNotAllowed, "method_not_allowed")
	if got := r.header.Get("Allow"); got != "POST" {
		t.Errorf("Allow = %q, want POST", got)
	}
}

func TestNotificationsMetrics(t *testing.T) {
	f := newNotificationFixture(t)
	token := f.tokenize(visaPAN, map[string]any{"type": "card"})
	f.notify(notificationBody(t, token, "1", "suspend", 1, nil))
	f.do(request{path: "/notifications", body: "{}"})

	got := f.series("tokenvault_http_requests_total")
	for _, series := range []string{"code=ok,route=/notifications", "code=invalid_signature,route=/notifications"} {
		if got[series] != 1 {
			t.Errorf("%s = %v, want 1", series, got[series])
		}
	}
}

func TestNewRejectsInvalidSenders(t *testing.T) {
	keys, err := tokenvault.GenerateKeyRing()
	if err != nil {
		t.Fatal(err)
	}
	v, err := tokenvault.New(tokenvault.NewMemoryStore(), keys)
	if err != nil {
		t.Fatal(err)
	}
	defer v.Close()

	tests := map[string]map[string][]byte{
		"reserved name":   {"vault": visaSecret},
		"uppercase name":  {"Visa": visaSecret},
		"short secret":    {"visa-vts": []byte("short")},
		"empty secret":    {"visa-vts": nil},
		"name with space": {"visa vts": visaSecret},
	}
	for name, senders := range tests {
		cfg := httpapi.Config{Vault: v, NoAuth: true, Audit: slog.New(slog.DiscardHandler), Registry: prometheus.NewRegistry(), Senders: senders}
		if _, err := httpapi.New(cfg); err == nil {
			t.Errorf("New with %s: err = nil, want an error", name)
		} else if bytes.Contains([]byte(err.Error()), visaSecret) {
			t.Errorf("New with %s: error %q contains the secret", name, err)
		}
	}
}

func TestNewCopiesSenders(t *testing.T) {
	senders := map[string][]byte{"visa-vts": bytes.Clone(visaSecret)}
	f := newFixture(t, withSenders(senders))
	token := f.tokenize(visaPAN, map[string]any{"type": "card"})
	senders["visa-vts"][0] ^= 0xff
	delete(senders, "visa-vts")

	wantStatus(t, "notification after the caller changed its map", f.notify(notificationBody(t, token, "1", "suspend", 1, nil)), "applied")
}

func writeSendersFile(t *testing.T, content string, mode os.FileMode) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "vault.senders")
	if err := os.WriteFile(path, []byte(content), mode); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(path, mode); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestLoadSenders(t *testing.T) {
	content := jsonBody(t, map[string]string{
		"visa-vts": "dmlzYS12dHMgc2VjcmV0LCAzMiBieXRlcyBsb25nLi4=",
		"issuer-1": "aXNzdWVyLTEgc2VjcmV0LCAzMiBieXRlcyBsb25nLi4=",
	})
	senders, err := httpapi.LoadSenders(writeSendersFile(t, content, 0o600))
	if err != nil {
		t.Fatalf("LoadSenders err = %v", err)
	}
	if len(senders) != 2 || !bytes.Equal(senders["visa-vts"], visaSecret) || !bytes.Equal(senders["issuer-1"], issuerSecret) {
		t.Errorf("LoadSenders = %d senders, or a secret differs from the file's", len(senders))
	}

	empty, err := httpapi.LoadSenders(writeSendersFile(t, " {} \n", 0o400))
	if err != nil || len(empty) != 0 {
		t.Errorf("LoadSenders of {} = %d senders, %v, want none and nil", len(empty), err)
	}
}

func TestLoadSendersRejects(t *testing.T) {
	const secret = "dmlzYS12dHMgc2VjcmV0LCAzMiBieXRlcyBsb25nLi4="
	tests := []struct {
		name    string
		content string
		mode    os.FileMode
	}{
		{"readable by others", `{"visa-vts":"` + secret + `"}`, 0o644},
		{"writable by the group", `{"visa-vts":"` + secret + `"}`, 0o620},
		{"not JSON", `visa-vts=` + secret, 0o600},
		{"array", `["visa-vts"]`, 0o600},
		{"repeated name", `{"visa-vts":"` + secret + `","visa-vts":"` + secret + `"}`, 0o600},
		{"reserved name", `{"vault":"` + secret + `"}`, 0o600},
		{"invalid name", `{"Visa VTS":"` + secret + `"}`, 0o600},
		{"secret not a string", `{"visa-vts":["` + secret + `"]}`, 0o600},
		{"secret in base64url", `{"visa-vts":"-_-_-_-_-_-_-_-_-_-_-_-_"}`, 0o600},
		{"secret without padding", `{"visa-vts":"` + strings.TrimRight(secret, "=") + `"}`, 0o600},
		{"short secret", `{"visa-vts":"c2hvcnQ="}`, 0o600},
		{"trailing data", `{"visa-vts":"` + secret + `"} {}`, 0o600},
		{"truncated", `{"visa-vts":"` + secret + `"`, 0o600},
	}
	for _, tt := range tests {
		_, err := httpapi.LoadSenders(writeSendersFile(t, tt.content, tt.mode))
		if err == nil {
			t.Errorf("LoadSenders(%s) err = nil, want an error", tt.name)
			continue
		}
		if strings.Contains(err.Error(), secret) || strings.Contains(err.Error(), strings.TrimRight(secret, "=")) {
			t.Errorf("LoadSenders(%s) error %q contains the secret", tt.name, err)
		}
	}

	_, err := httpapi.LoadSenders(filepath.Join(t.TempDir(), "missing.senders"))
	if !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("LoadSenders of a missing file: err = %v, want fs.ErrNotExist", err)
	}
}

func TestNotificationsStatusIsJSON(t *testing.T) {
	f := newNotificationFixture(t)
	token := f.tokenize(visaPAN, map[string]any{"type": "card"})
	r := f.notify(notificationBody(t, token, "1", "suspend", 1, nil))

	var out struct{ Status string }
	if err := json.Unmarshal([]byte(r.body), &out); err != nil || out.Status != "applied" {
		t.Errorf("body %q = %+v, %v, want status applied", r.body, out, err)
	}
	if ct := r.header.Get("Content-Type"); ct != "application/json" {
		t.Errorf("Content-Type = %q, want application/json", ct)
	}
}

func TestNotificationsAuditRedactsCardNumbers(t *testing.T) {
	f := newNotificationFixture(t)
	token := f.tokenize(visaPAN, map[string]any{"type": "card"})
	// Opaque tokens are lowercase base32hex, so a client can write one
	// whose digits are a card number.
	tokenWithPAN := "tok_" + visaPAN + strings.Repeat("a", 19) + "g"

	tests := []struct {
		name   string
		body   string
		header map[string]string
		status int
		code   string
	}{
		{"id with a card number", notificationBody(t, token, "ref-"+visaPAN, "suspend", 1, nil), nil, http.StatusBadRequest, "invalid_option"},
		{"id with a grouped card number", notificationBody(t, token, "ref 4111 1111 1111 1111", "suspend", 1, nil), nil, http.StatusBadRequest, "invalid_option"},
		{"token with a card number", notificationBody(t, tokenWithPAN, "1", "suspend", 1, nil), nil, http.StatusNotFound, "token_not_found"},
		{"unsigned, sender is a card number", notificationBody(t, token, "1", "suspend", 1, nil), map[string]string{"Tokenvault-Sender": visaPAN}, http.StatusUnauthorized, "invalid_signature"},
	}
	for _, tt := range tests {
		var r response
		if tt.header == nil {
			r = f.notify(tt.body)
		} else {
			r = f.do(request{path: "/notifications", body: tt.body, header: tt.header})
		}
		wantError(t, tt.name, r, tt.status, tt.code)
		wantUnchanged(t, f, tt.name, token)
	}

	records := f.auditRecords()
	if len(records) != len(tests) {
		t.Fatalf("%d audit records, want %d", len(records), len(tests))
	}
	for i, field := range []string{"notification_id", "notification_id", "token"} {
		if got := records[i][field]; got != "[redacted]" {
			t.Errorf("audit record of %s: %s = %v, want [redacted]", tests[i].name, field, got)
		}
	}
	if got := records[3]["sender"]; got != "" {
		t.Errorf("audit record of %s: sender = %v, want empty", tests[3].name, got)
	}
	if strings.Contains(f.audit.String(), visaPAN) || strings.Contains(f.audit.String(), "4111 1111 1111 1111") {
		t.Errorf("audit log contains the card number:\n%s", f.audit.String())
	}
}

func TestNotificationsAuditFailure(t *testing.T) {
	w := &failingWriter{}
	f := newFixture(t, withSenders(map[string][]byte{"visa-vts": visaSecret}),
		func(c *httpapi.Config) { c.Audit = slog.New(slog.NewJSONHandler(w, nil)) })
	token := f.tokenize(visaPAN, map[string]any{"type": "card"})
	body := notificationBody(t, token, "n-1", "suspend", 1, nil)
	w.broken.Store(true)

	r := f.notify(body)
	wantError(t, "applied notification with a broken audit log", r, http.StatusServiceUnavailable, "audit_unavailable")
	if msg := r.errorBody(t).Error; !strings.Contains(msg, "duplicate") {
		t.Errorf("audit_unavailable message %q does not tell the sender that a retry is a duplicate", msg)
	}
	info, err := f.vault.Inspect(context.Background(), token)
	if err != nil {
		t.Fatal(err)
	}
	if info.State != tokenvault.StateSuspended {
		t.Errorf("token is %s, want suspended: the vault applied the notification before the audit write", info.State)
	}
	if got := f.series("tokenvault_audit_write_failures_total")[""]; got != 1 {
		t.Errorf("tokenvault_audit_write_failures_total = %v, want 1", got)
	}
	if !strings.Contains(f.log.String(), "audit record not written") {
		t.Error("the error log does not report the failed audit write")
	}

	wantError(t, "duplicate with a broken audit log", f.notify(body), http.StatusServiceUnavailable, "audit_unavailable")
	// A rejection keeps its status: nothing changed, so no retry is needed.
	r = f.do(request{path: "/notifications", body: body})
	wantError(t, "unsigned request with a broken audit log", r, http.StatusUnauthorized, "invalid_signature")
	if got := f.series("tokenvault_audit_write_failures_total")[""]; got != 3 {
		t.Errorf("tokenvault_audit_write_failures_total = %v, want 3", got)
	}

	w.broken.Store(false)
	wantStatus(t, "retry once the audit log works", f.notify(body), "duplicate")
}

func TestNotificationsSignatureAuditRateLimited(t *testing.T) {
	f := newNotificationFixture(t)
	const sent = 300
	for range sent {
		f.do(request{path: "/notifications", body: "{}", header: map[string]string{"Tokenvault-Sender": "visa-vts"}})
	}

	records := f.auditRecords()
	// The limiter allows a burst of 100 and refills 20 a second, so a
	// slow machine may write a few more than 100.
	if len(records) < 100 || len(records) > 150 {
		t.Fatalf("%d audit records of %d rejected requests, want about 100", len(records), sent)
	}
	if got := records[0]["suppressed_before"]; got != 0.0 {
		t.Errorf("first record: suppressed_before = %v, want 0", got)
	}

	time.Sleep(100 * time.Millisecond) // refills 2 records
	f.audit.Reset()
	f.do(request{path: "/notifications", body: "{}", header: map[string]string{"Tokenvault-Sender": "visa-vts"}})
	records = f.auditRecords()
	if len(records) != 1 {
		t.Fatalf("%d audit records after a pause, want 1", len(records))
	}
	if got, _ := records[0]["suppressed_before"].(float64); got < sent-150 {
		t.Errorf("suppressed_before = %v, want the %d or so records dropped", records[0]["suppressed_before"], sent-100)
	}
	if records[0]["outcome"] != "invalid_signature" || records[0]["signature_failure"] != "missing_header" {
		t.Errorf("record after a pause = %v, want invalid_signature, missing_header", records[0])
	}
}

// newScopedFixture returns a fixture whose sender visa-vts may change Visa
// tokens only, and issuer-1 every token.
func newScopedFixture(t *testing.T) *fixture {
	t.Helper()
	return newFixture(t, func(c *httpapi.Config) {
		c.Senders = map[string][]byte{"visa-vts": visaSecret, "issuer-1": issuerSecret}
		c.SenderBrands = map[string][]tokenvault.Brand{"visa-vts": {tokenvault.BrandVisa}}
	})
}

func TestNotificationsSenderBrands(t *testing.T) {
	const (
		mastercardReissue = "5105105105105100" // published test number
		mastercardNonLuhn = "5105105105105101"
		visaNonLuhn       = "4012888888881882"
	)
	f := newScopedFixture(t)
	visaToken := f.tokenize(visaPAN, map[string]any{"type": "card"})
	mastercardToken := f.tokenize(mastercardPAN, map[string]any{"type": "card", "format": "opaque"})
	dataToken := f.tokenize("account 0042", nil)
	f.sent(mastercardReissue)
	f.sent(mastercardNonLuhn)
	f.sent(visaNonLuhn)

	rejected := []struct {
		name string
		body string
	}{
		{"suspend a Mastercard token", notificationBody(t, mastercardToken, "1", "suspend", 1, nil)},
		{"delete a Mastercard token", notificationBody(t, mastercardToken, "2", "delete", 2, nil)},
		{"suspend a data token", notificationBody(t, dataToken, "3", "suspend", 3, nil)},
		{"reissue a Visa token to a Mastercard number", notificationBody(t, visaToken, "4", "reissue", 4, map[string]any{"card_number": mastercardReissue})},
		{"reissue a Visa token to a non-Luhn Mastercard number", notificationBody(t, visaToken, "5", "reissue", 5, map[string]any{"card_number": mastercardNonLuhn, "allow_non_luhn": true})},
		{"reissue a Mastercard token to a Visa number", notificationBody(t, mastercardToken, "6", "reissue", 6, map[string]any{"card_number": reissuedPAN})},
	}
	var first string
	for _, tt := range rejected {
		r := f.notify(tt.body)
		wantError(t, tt.name, r, http.StatusForbidden, "sender_not_allowed")
		if first == "" {
			first = r.body
		} else if r.body != first {
			t.Errorf("%s: body %q differs from the first rejection's %q", tt.name, r.body, first)
		}
		for _, token := range []string{visaToken, mastercardToken, dataToken} {
			wantUnchanged(t, f, tt.name, token)
		}
	}
	if msg := strings.ToLower(first); strings.Contains(msg, "mastercard") || strings.Contains(msg, "visa") {
		t.Errorf("sender_not_allowed body %q names a brand", first)
	}
	var audited int
	for _, rec := range f.auditRecords() {
		if rec["outcome"] == "sender_not_allowed" && rec["sender"] == "visa-vts" {
			audited++
		}
	}
	if audited != len(rejected) {
		t.Errorf("%d audit records with outcome sender_not_allowed, want %d", audited, len(rejected))
	}

	wantStatus(t, "suspend a Visa token", f.notify(notificationBody(t, visaToken, "7", "suspend", 7, nil)), "applied")
	wantStatus(t, "reissue a Visa token to a Visa number", f.notify(notificationBody(t, visaToken, "8", "reissue", 8, map[string]any{"card_number": reissuedPAN})), "applied")
	wantError(t, "reissue to a non-Luhn Visa number without allow_non_luhn",
		f.notify(notificationBody(t, visaToken, "9", "reissue", 9, map[string]any{"card_number": visaNonLuhn})), http.StatusBadRequest, "invalid_card_number")
	wantStatus(t, "reissue to a non-Luhn Visa number", f.notify(notificationBody(t, visaToken, "10", "reissue", 10, map[string]any{"card_number": visaNonLuhn, "allow_non_luhn": true})), "applied")
	wantError(t, "suspend an unknown token", f.notify(notificationBody(t, "tok_000000000000000000000000000000000000", "11", "suspend", 11, nil)), http.StatusNotFound, "token_not_found")

	body := notificationBody(t, mastercardToken, "1", "delete", 1, nil)
	r := f.do(request{path: "/notifications", body: body, header: signedHeaders("issuer-1", issuerSecret, body, time.Now())})
	wantStatus(t, "delete a Mastercard token from a sender without brands", r, "applied")
}

func TestNotificationsEmptyBrandsAllowEvery(t *testing.T) {
	f := newFixture(t, func(c *httpapi.Config) {
		c.Senders = map[string][]byte{"visa-vts": visaSecret}
		c.SenderBrands = map[string][]tokenvault.Brand{"visa-vts": {}}
	})
	token := f.tokenize(mastercardPAN, map[string]any{"type": "card"})
	wantStatus(t, "suspend with an empty brand list", f.notify(notificationBody(t, token, "1", "suspend", 1, nil)), "applied")
}

func TestNewRejectsInvalidSenderBrands(t *testing.T) {
	keys, err := tokenvault.GenerateKeyRing()
	if err != nil {
		t.Fatal(err)
	}
	v, err := tokenvault.New(tokenvault.NewMemoryStore(), keys)
	if err != nil {
		t.Fatal(err)
	}
	defer v.Close()

	tests := map[string]map[string][]tokenvault.Brand{
		"sender not in Senders": {"mc-mdes": {tokenvault.BrandMastercard}},
		"brand in capitals":     {"visa-vts": {"Visa"}},
		"unknown brand":         {"visa-vts": {tokenvault.BrandVisa, "visa-electron"}},
	}
	for name, brands := range tests {
		cfg := httpapi.Config{Vault: v, NoAuth: true, Audit: slog.New(slog.DiscardHandler), Registry: prometheus.NewRegistry(),
			Senders: map[string][]byte{"visa-vts": visaSecret}, SenderBrands: brands}
		if _, err := httpapi.New(cfg); err == nil {
			t.Errorf("New with %s: err = nil, want an error", name)
		}
	}
}
