package httpapi

import (
	"log/slog"
	"strings"
	"unicode/utf8"
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
	return strings.ToValidUTF8(purpose, "\uFFFD")
}

// audit writes the audit record of one detokenized token or lifecycle call,
// item being the index in a batch or -1. It never logs the value.
func (x *exchange) audit(token string, item int, outcome code, purpose string) {
	x.writeAudit(auditedToken(token), item, outcome, purpose)
}

// auditRejection audits a request rejected with 401 or 403.
func (x *exchange) auditRejection(outcome code) {
	x.writeAudit("", -1, outcome, x.auditedHeaderPurpose())
}

// auditRequestProblem audits a request whose body or purpose was rejected
// before any token was looked at.
func (x *exchange) auditRequestProblem(p problem) {
	x.writeAudit("", -1, p.code, x.auditedHeaderPurpose())
}

func (x *exchange) writeAudit(token string, item int, outcome code, purpose string) {
	attrs := [6]slog.Attr{
		slog.String("request_id", x.requestID),
		slog.String("key_id", x.key.ID),
		slog.String("token", token),
		slog.String("outcome", outcome.String()),
		slog.String("purpose", purpose),
	}
	n := 5
	if item >= 0 {
		attrs[n] = slog.Int("item", item)
		n++
	}
	x.h.audit[x.route].LogAttrs(x.r.Context(), slog.LevelInfo, routes[x.route].action, attrs[:n]...)
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
	if plausibleToken(token) {
		return token
	}
	return redactedToken
}

// Shapes of the tokens that package tokenvault issues; see its Format
// constants. The root package keeps its own check unexported, so these are
// a copy.
const (
	opaqueTokenPrefix = "tok_"
	opaqueTokenSize   = 40 // the prefix and 36 base32hex characters
	minCardTokenSize  = 12
	maxCardTokenSize  = 19
)

func plausibleToken(s string) bool {
	if len(s) == opaqueTokenSize && strings.HasPrefix(s, opaqueTokenPrefix) {
		for i := len(opaqueTokenPrefix); i < len(s); i++ {
			c := s[i]
			if !('0' <= c && c <= '9' || 'a' <= c && c <= 'v') {
				return false
			}
		}
		return true
	}

	if len(s) < minCardTokenSize || len(s) > maxCardTokenSize {
		return false
	}
	sum, double := 0, false
	for i := len(s) - 1; i >= 0; i-- {
		c := s[i]
		if c < '0' || c > '9' {
			return false
		}
		d := int(c - '0')
		if double {
			d *= 2
			if d > 9 {
				d -= 9
			}
		}
		sum += d
		double = !double
	}
	return sum%10 != 0
}
