package webhook

import (
	"errors"
	"fmt"
	"net/http"
)

// Errors returned by Verify and VerifyRequest. Test for them with errors.Is,
// because they are wrapped with the reason. No message contains the secret
// or the request body.
var (
	// ErrMissingSignature is returned when the request has no
	// Tokenvault-Signature header, or the header is empty.
	ErrMissingSignature = errors.New("webhook: missing " + SignatureHeader + " header")

	// ErrInvalidSignature is returned when the header is malformed (no
	// t= timestamp, t= twice, a non-numeric timestamp, a v1= value that is not
	// 64 hexadecimal digits, no v1= value at all) or when no v1 value is the
	// HMAC of the body under the secret.
	ErrInvalidSignature = errors.New("webhook: invalid signature")

	// ErrTimestampOutOfRange is returned when the signature is valid but its
	// timestamp is further from the current time than the tolerance, which
	// is what a replayed request looks like.
	ErrTimestampOutOfRange = errors.New("webhook: signature timestamp is outside the tolerance")
)

// StatusError is a delivery attempt to which the endpoint responded with a
// status outside 2xx. Redirects count, because the Dispatcher never follows
// them.
type StatusError struct {
	Endpoint   string // the endpoint's ID
	StatusCode int
}

func (e *StatusError) Error() string {
	return fmt.Sprintf("webhook: endpoint %s returned HTTP status %d %s, want 2xx",
		e.Endpoint, e.StatusCode, http.StatusText(e.StatusCode))
}
