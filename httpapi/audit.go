package httpapi

import (
	"log/slog"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/tokenvault/tokenvault"
)

// maxPurposeSize is the longest purpose accepted, in bytes.
const maxPurposeSize = 256

// purpose returns the purpose of the request: the body's "purpose" field if
// it is set, else the X-Purpose header. A purpose longer than
// maxPurposeSize bytes, or a header that is not UTF-8, is invalid_option.
func (x *exchange) purpose(fromBody string) (string, problem) {
	purpose := fromBody
	if purpose == "" {
		purpose = x.headerPurpose()
		if !utf8.ValidString(purpose) {
			return "", failf(codeInvalidOption, "Invalid option: the X-Purpose header must be UTF-8")
		}
	}
	if len(purpose) > maxPurposeSize {
		return "", failf(codeInvalidOption, "Invalid option: the purpose is longer than 256 bytes")
	}
	if tokenvault.ContainsCardNumber(purpose) {
		return "", failf(codeInvalidOption, "Invalid option: the purpose contains what looks like a card number, which the audit log would keep")
	}
	return purpose, problem{}
}

func (x *exchange) headerPurpose() string {
	if v := x.r.Header["X-Purpose"]; len(v) > 0 {
		return v[0]
	}
	return ""
}

// auditedHeaderPurpose returns the X-Purpose header for the audit record of
// a request whose body was not read or was rejected: cut to maxPurposeSize
// bytes and made valid UTF-8, because the request was not checked.
func (x *exchange) auditedHeaderPurpose() string {
	purpose := x.headerPurpose()
	if len(purpose) > maxPurposeSize {
		purpose = purpose[:maxPurposeSize]
	}
	if tokenvault.ContainsCardNumber(purpose) {
		return redactedToken
	}
	return strings.ToValidUTF8(purpose, "\uFFFD")
}

// audit writes the audit record of one detokenized token or lifecycle call,
// item being the index in a batch or -1. It never logs the value. Its error
// means the record was not written: the caller must then not return the
// value or report the change as done.
func (x *exchange) audit(token string, item int, outcome code, purpose string) error {
	return x.writeAudit(auditedToken(token), item, outcome.String(), purpose)
}

// outcomeRequested is the outcome of the audit record that a lifecycle
// request gets before the vault changes the token.
const outcomeRequested = "requested"

// auditRequested writes the record of a lifecycle request before the change,
// so that the vault makes no change without a record. Its error means the
// record was not written: the caller must then not make the change.
func (x *exchange) auditRequested(token, purpose string) error {
	return x.writeAudit(auditedToken(token), -1, outcomeRequested, purpose)
}

// auditRejection audits a request rejected with 401 or 403. Anyone can send
// such requests, so these records are rate-limited.
func (x *exchange) auditRejection(outcome code) {
	if suppressed, ok := x.h.rejections.allow(time.Now()); ok {
		x.writeAudit("", -1, outcome.String(), x.auditedHeaderPurpose(), slog.Int("suppressed_before", suppressed))
	}
}

// auditRequestProblem audits a request whose body or purpose was rejected
// before any token was looked at.
func (x *exchange) auditRequestProblem(p problem) {
	x.writeAudit("", -1, p.code.String(), x.auditedHeaderPurpose())
}

// writeAudit writes one audit record through the audit handler directly,
// because slog.Logger drops a handler's write error and a lost audit record
// must fail the request.
func (x *exchange) writeAudit(token string, item int, outcome string, purpose string, extra ...slog.Attr) error {
	attrs := [6]slog.Attr{
		slog.String("request_id", x.requestID),
		slog.String("key_id", x.key.ID),
		slog.String("token", token),
		slog.String("outcome", outcome),
		slog.String("purpose", purpose),
	}
	n := 5
	if item >= 0 {
		attrs[n] = slog.Int("item", item)
		n++
	}
	record := slog.NewRecord(time.Now(), slog.LevelInfo, routes[x.route].action, 0)
	record.AddAttrs(attrs[:n]...)
	record.AddAttrs(extra...)
	handler := x.h.audit[x.route].Handler()
	if !handler.Enabled(x.r.Context(), slog.LevelInfo) {
		return nil
	}
	if err := handler.Handle(x.r.Context(), record); err != nil {
		x.h.metrics.auditFailures.Inc()
		x.h.log.LogAttrs(x.r.Context(), slog.LevelError, "audit record not written",
			slog.String("request_id", x.requestID), slog.String("route", x.route.String()), slog.String("error", err.Error()))
		return err
	}
	return nil
}

// auditFailed is the problem of a request whose audit record was not written.
func auditFailed(err error) problem {
	return problem{code: codeAuditUnavailable}
}

// redactedToken replaces, in audit records, a token string that no vault
// could have issued.
const redactedToken = "[redacted]"

// auditedToken returns token if it has the shape of a token the vault
// issues, and redactedToken otherwise. A client that sends a card number, a
// value or an old service's Fernet token where a token belongs must not get
// it into the audit log. Card-shaped tokens fail the Luhn check, so a card
// number that passes it is redacted.
//
// NOTE: a card number that fails the Luhn check has the shape of a
// card-shaped token and is logged as sent. The vault cannot tell them apart
// either.
func auditedToken(token string) string {
	if tokenvault.IsTokenShaped(token) && !(strings.HasPrefix(token, "tok_") && tokenvault.ContainsCardNumber(token)) {
		return token
	}
	return redactedToken
}
