package httpapi_test

import (
	"maps"
	"net/http"
	"strings"
	"testing"

	"github.com/tokenvault/tokenvault/apikey"
)

// auditFields are the attributes every audit record has.
var auditFields = []string{"time", "level", "msg", "request_id", "key_id", "route", "token", "outcome", "purpose"}

func checkAuditRecord(t *testing.T, rec map[string]any, want map[string]any) {
	t.Helper()
	for _, field := range auditFields {
		if _, ok := rec[field]; !ok {
			t.Errorf("audit record %v lacks %q", rec, field)
		}
	}
	for k, v := range want {
		if rec[k] != v {
			t.Errorf("audit record %s = %v, want %v (record %v)", k, rec[k], v, rec)
		}
	}
}

func TestAuditDetokenize(t *testing.T) {
	f := newFixture(t)
	token := f.tokenize(visaPAN, map[string]any{"type": "card"})
	f.audit.Reset()

	f.do(request{path: "/detokenize", role: apikey.RoleDetokenize, body: jsonBody(t, map[string]string{"token": token, "purpose": "refund 7"}),
		header: map[string]string{"X-Request-Id": "req-1"}})
	f.do(request{path: "/detokenize", role: apikey.RoleDetokenize, body: jsonBody(t, map[string]string{"token": token}),
		header: map[string]string{"X-Request-Id": "req-2", "X-Purpose": "chargeback"}})
	f.post("/suspend", apikey.RoleLifecycle, jsonBody(t, map[string]string{"token": token, "reason": "lost"}))
	f.do(request{path: "/detokenize", role: apikey.RoleDetokenize, body: jsonBody(t, map[string]string{"token": token}),
		header: map[string]string{"X-Request-Id": "req-3"}})

	records := f.auditRecords()
	if len(records) != 5 {
		t.Fatalf("audit log has %d records, want 5:\n%s", len(records), f.audit.String())
	}
	detokenizer := f.keyIDs[apikey.RoleDetokenize]
	checkAuditRecord(t, records[0], map[string]any{"msg": "detokenize", "request_id": "req-1", "key_id": detokenizer, "route": "/detokenize", "token": token, "outcome": "ok", "purpose": "refund 7"})
	checkAuditRecord(t, records[1], map[string]any{"request_id": "req-2", "outcome": "ok", "purpose": "chargeback"})
	suspend := map[string]any{"msg": "suspend", "key_id": f.keyIDs[apikey.RoleLifecycle], "route": "/suspend", "token": token, "purpose": ""}
	checkAuditRecord(t, records[2], withOutcome(suspend, "requested"))
	checkAuditRecord(t, records[3], withOutcome(suspend, "ok"))
	if records[2]["request_id"] != records[3]["request_id"] {
		t.Errorf("the suspend's two records have request ids %v and %v, want one", records[2]["request_id"], records[3]["request_id"])
	}
	checkAuditRecord(t, records[4], map[string]any{"request_id": "req-3", "token": token, "outcome": "token_suspended"})
}

// withOutcome returns a copy of want with the outcome set.
func withOutcome(want map[string]any, outcome string) map[string]any {
	out := maps.Clone(want)
	out["outcome"] = outcome
	return out
}

func TestAuditPurposeBodyBeforeHeader(t *testing.T) {
	f := newFixture(t)
	token := f.tokenize("some value", nil)
	f.audit.Reset()

	f.do(request{path: "/detokenize", role: apikey.RoleDetokenize, body: jsonBody(t, map[string]string{"token": token, "purpose": "from body"}),
		header: map[string]string{"X-Purpose": "from header"}})
	if rec := f.auditRecords()[0]; rec["purpose"] != "from body" {
		t.Errorf("purpose = %v, want the body's", rec["purpose"])
	}
}

func TestAuditPurposeTooLong(t *testing.T) {
	f := newFixture(t)
	token := f.tokenize("some value", nil)

	r := f.post("/detokenize", apikey.RoleDetokenize, jsonBody(t, map[string]string{"token": token, "purpose": strings.Repeat("p", 257)}))
	if e := r.errorBody(t); r.status != http.StatusBadRequest || e.Code != "invalid_option" {
		t.Errorf("purpose of 257 bytes = %d %q, want 400 invalid_option", r.status, r.body)
	}
	r = f.do(request{path: "/detokenize", role: apikey.RoleDetokenize, body: jsonBody(t, map[string]string{"token": token}),
		header: map[string]string{"X-Purpose": strings.Repeat("p", 257)}})
	if r.status != http.StatusBadRequest {
		t.Errorf("X-Purpose of 257 bytes = %d, want 400", r.status)
	}
}

func TestAuditRedactsImpossibleTokens(t *testing.T) {
	f := newFixture(t)
	unknownOpaque := "tok_" + strings.Repeat("1", 35) + "0" // canonical base32hex
	unknownCard := "4111111111111112"                       // fails the Luhn check, as card-shaped tokens do

	for _, token := range []string{visaPAN, "4111 1111 1111 1111", "secret value", unknownOpaque, unknownCard} {
		f.post("/detokenize", apikey.RoleDetokenize, jsonBody(t, map[string]string{"token": token}))
		f.post("/close", apikey.RoleLifecycle, jsonBody(t, map[string]string{"token": token}))
	}

	// Each token gets a detokenize record, and two close records: requested,
	// then the outcome.
	want := []string{"[redacted]", "[redacted]", "[redacted]", unknownOpaque, unknownCard}
	outcomes := []string{"token_not_found", "requested", "token_not_found"}
	records := f.auditRecords()
	if len(records) != len(outcomes)*len(want) {
		t.Fatalf("audit log has %d records, want %d", len(records), len(outcomes)*len(want))
	}
	for i, rec := range records {
		token, outcome := want[i/len(outcomes)], outcomes[i%len(outcomes)]
		if rec["token"] != token || rec["outcome"] != outcome {
			t.Errorf("audit record %d: token %v outcome %v, want %q %s", i, rec["token"], rec["outcome"], token, outcome)
		}
	}
	if strings.Contains(f.audit.String(), "secret value") {
		t.Errorf("audit log contains a value sent as a token")
	}
}

func TestAuditRejections(t *testing.T) {
	f := newFixture(t)

	f.do(request{path: "/detokenize", body: `{"token":"x"}`, header: map[string]string{"X-Request-Id": "no-key", "X-Purpose": "audit me"}})
	f.do(request{path: "/close", role: apikey.RoleTokenize, body: `{"token":"x"}`, header: map[string]string{"X-Request-Id": "wrong-role"}})
	f.do(request{path: "/detokenize/batch", secret: "tvk_wrong", body: `{"tokens":[]}`})
	// Routes that audit only their rejections.
	f.do(request{path: "/tokenize", body: `{"data":"x"}`, header: map[string]string{"X-Request-Id": "tokenize-no-key"}})
	f.do(request{path: "/tokenize/batch", role: apikey.RoleDetokenize, body: `{"items":[]}`})
	f.do(request{method: http.MethodGet, path: "/tokens/tok_x", role: apikey.RoleTokenize})
	f.tokenize("some value", nil)
	f.do(request{method: http.MethodGet, path: "/healthz"})

	records := f.auditRecords()
	if len(records) != 6 {
		t.Fatalf("audit log has %d records, want 6:\n%s", len(records), f.audit.String())
	}
	checkAuditRecord(t, records[0], map[string]any{"msg": "detokenize", "request_id": "no-key", "key_id": "", "route": "/detokenize", "token": "", "outcome": "unauthorized", "purpose": "audit me"})
	checkAuditRecord(t, records[1], map[string]any{"msg": "close", "request_id": "wrong-role", "key_id": f.keyIDs[apikey.RoleTokenize], "outcome": "forbidden"})
	checkAuditRecord(t, records[2], map[string]any{"route": "/detokenize/batch", "outcome": "unauthorized"})
	checkAuditRecord(t, records[3], map[string]any{"msg": "tokenize", "request_id": "tokenize-no-key", "key_id": "", "route": "/tokenize", "outcome": "unauthorized"})
	checkAuditRecord(t, records[4], map[string]any{"msg": "tokenize", "key_id": f.keyIDs[apikey.RoleDetokenize], "route": "/tokenize/batch", "outcome": "forbidden"})
	checkAuditRecord(t, records[5], map[string]any{"msg": "inspect", "key_id": f.keyIDs[apikey.RoleTokenize], "route": "/tokens/{token}", "token": "", "outcome": "forbidden"})
}

func TestAuditNeverHasValue(t *testing.T) {
	f := newFixture(t)
	values := []string{visaPAN, mastercardPAN, "very secret account 0042"}
	var tokens []string
	for i, v := range values {
		extra := map[string]any{"type": "card"}
		if i == 2 {
			extra = nil
		}
		tokens = append(tokens, f.tokenize(v, extra))
	}

	f.post("/detokenize/batch", apikey.RoleDetokenize, jsonBody(t, map[string][]string{"tokens": tokens}))
	for _, token := range tokens {
		f.post("/detokenize", apikey.RoleDetokenize, jsonBody(t, map[string]string{"token": token}))
	}
	text := f.audit.String()
	for _, v := range values {
		if strings.Contains(text, v) {
			t.Errorf("audit log contains a detokenized value")
		}
	}
	if n := len(f.auditRecords()); n != 6 {
		t.Errorf("audit log has %d records, want 6 (3 batch items, 3 single)", n)
	}
}
