package webhook

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// Header names of a webhook request.
const (
	// SignatureHeader carries "t=<unix seconds>,v1=<hex HMAC-SHA256>".
	SignatureHeader = "Tokenvault-Signature"
	// EventIDHeader carries the event's ID, for routing and logging only.
	// The signature does not cover it, so receivers drop duplicates by the
	// body's "id" field, never by this header.
	EventIDHeader = "Tokenvault-Event-Id"
)

// DefaultTolerance is the maximum difference between a signature's timestamp
// and the receiver's clock that Verify accepts when given a tolerance of 0.
// It bounds how long a captured request can be replayed, and it has to cover
// the clock skew between sender and receiver.
const DefaultTolerance = 5 * time.Minute

// DefaultMaxBodyBytes is the body limit of VerifyRequest when given 0. The
// largest payload the Dispatcher sends is under 10 KiB. In it, a token of up
// to 255 bytes appears twice, and JSON escaping makes a reason of up to 1024
// bytes and an actor of up to 256 bytes at most six times longer.
const DefaultMaxBodyBytes = 64 << 10

// macHexLen is the length of a v1 value: a SHA-256 output in hexadecimal.
const macHexLen = 2 * sha256.Size

// Sign returns the Tokenvault-Signature header value for body sent at t:
// "t=<unix seconds>,v1=<lowercase hex HMAC-SHA256(secret, "<t>." + body)>".
// The timestamp is signed with the body, so that a receiver can reject a
// replay of an old request (see Verify).
//
// Verify accepts a header when any of its v1 values matches, so a sender
// that rotates its secret can send "t=T,v1=OLD,v1=NEW", one value per
// secret under the same timestamp.
func Sign(secret, body []byte, t time.Time) string {
	ts := strconv.FormatInt(t.Unix(), 10)
	return "t=" + ts + ",v1=" + hex.EncodeToString(computeMAC(secret, ts, body))
}

// computeMAC returns HMAC-SHA256(secret, ts + "." + body).
func computeMAC(secret []byte, ts string, body []byte) []byte {
	mac := hmac.New(sha256.New, secret)
	mac.Write([]byte(ts))
	mac.Write([]byte{'.'})
	mac.Write(body)
	return mac.Sum(nil)
}

// Verify checks that header, a Tokenvault-Signature value, signs body under
// secret and that its timestamp is within tolerance of now, in either
// direction. A tolerance of 0 or less means DefaultTolerance. The header
// may carry several v1 values, and one match suffices. Items with other
// names, such as a future v2, are ignored.
//
// Verify returns an error wrapping ErrMissingSignature for an empty header,
// ErrInvalidSignature for a malformed header or a signature that does not
// match, and ErrTimestampOutOfRange for a valid signature made too long ago
// or too far in the future. The timestamp is checked last, so that
// ErrTimestampOutOfRange means the sender really signed the body. An empty
// secret is rejected with an error that wraps none of these, because
// anyone can compute an HMAC with an empty key.
//
// Security guarantees: the signatures are compared with hmac.Equal, in
// constant time. Within the tolerance a captured request can be replayed, so
// receivers drop repeats by the body's "id" field, which the signature
// covers. Verify does not see the EventIDHeader, and a replay with a changed
// header still verifies.
func Verify(secret []byte, header string, body []byte, now time.Time, tolerance time.Duration) error {
	if len(secret) == 0 {
		return errors.New("webhook: Verify called with an empty secret: pass the endpoint's secret")
	}
	if tolerance <= 0 {
		tolerance = DefaultTolerance
	}

	parsed, err := parseHeader(header)
	if err != nil {
		return err
	}

	expected := computeMAC(secret, parsed.timestamp, body)
	matched := false
	for _, sig := range parsed.signatures {
		// Every value is compared, so the time taken does not depend on
		// which one matches.
		if hmac.Equal(sig, expected) {
			matched = true
		}
	}
	if !matched {
		return fmt.Errorf("%w: no v1 value matches the HMAC-SHA256 of the body under the secret", ErrInvalidSignature)
	}

	signedAt := time.Unix(parsed.unix, 0)
	skew := now.Sub(signedAt)
	if skew < -tolerance || skew > tolerance {
		return fmt.Errorf("%w: signed at %s, %s from the current time %s, more than the tolerance of %s",
			ErrTimestampOutOfRange, signedAt.UTC().Format(time.RFC3339), skew.Abs().Round(time.Second),
			now.UTC().Format(time.RFC3339), tolerance)
	}
	return nil
}

// signatureHeader is a parsed Tokenvault-Signature value.
type signatureHeader struct {
	timestamp  string // the t= value as sent, which is what the MAC covers
	unix       int64
	signatures [][]byte // the decoded v1= values
}

// parseHeader parses "t=<seconds>,v1=<hex>[,v1=<hex>...]". Items are
// separated by commas, with optional spaces around them. The error messages
// never quote the header, because it comes from the network.
func parseHeader(header string) (*signatureHeader, error) {
	header = strings.TrimSpace(header)
	if header == "" {
		return nil, ErrMissingSignature
	}

	var h signatureHeader
	seenTimestamp := false
	for item := range strings.SplitSeq(header, ",") {
		name, value, ok := strings.Cut(strings.TrimSpace(item), "=")
		if !ok {
			return nil, fmt.Errorf("%w: malformed header: every item must be NAME=VALUE", ErrInvalidSignature)
		}

		switch name {
		case "t":
			if seenTimestamp {
				return nil, fmt.Errorf("%w: malformed header: t= appears more than once", ErrInvalidSignature)
			}
			seenTimestamp = true
			unix, err := strconv.ParseInt(value, 10, 64)
			if err != nil || unix < 0 {
				return nil, fmt.Errorf("%w: malformed header: t= is not a Unix time in seconds", ErrInvalidSignature)
			}
			h.timestamp, h.unix = value, unix
		case "v1":
			sig, err := hex.DecodeString(value)
			if err != nil || len(value) != macHexLen {
				return nil, fmt.Errorf("%w: malformed header: a v1= value is not %d hexadecimal digits", ErrInvalidSignature, macHexLen)
			}
			h.signatures = append(h.signatures, sig)
		}
	}

	if !seenTimestamp {
		return nil, fmt.Errorf("%w: malformed header: no t= timestamp", ErrInvalidSignature)
	}
	if len(h.signatures) == 0 {
		return nil, fmt.Errorf("%w: malformed header: no v1= signature", ErrInvalidSignature)
	}
	return &h, nil
}

// VerifyRequest reads the body of r, at most maxBody bytes (0 or less means
// DefaultMaxBodyBytes), and verifies it with Verify against the
// Tokenvault-Signature header, the current time and DefaultTolerance. It
// returns the body only when the signature is valid, and consumes r.Body
// either way.
//
// Besides the errors of Verify, it returns an error wrapping
// *http.MaxBytesError when the body is larger than maxBody, to which a
// handler responds with 413, and the read error when the body cannot be read.
// Without a signature header it returns ErrMissingSignature before reading
// the body.
func VerifyRequest(r *http.Request, secret []byte, maxBody int64) ([]byte, error) {
	header := r.Header.Get(SignatureHeader)
	if strings.TrimSpace(header) == "" {
		return nil, ErrMissingSignature
	}
	if maxBody <= 0 {
		maxBody = DefaultMaxBodyBytes
	}

	var body []byte
	if r.Body != nil {
		var err error
		body, err = io.ReadAll(http.MaxBytesReader(nil, r.Body, maxBody))
		if err != nil {
			return nil, fmt.Errorf("webhook: read request body: %w", err)
		}
	}

	if err := Verify(secret, header, body, time.Now(), DefaultTolerance); err != nil {
		return nil, err
	}
	return body, nil
}
