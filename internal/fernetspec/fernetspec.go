// Package fernetspec verifies Fernet tokens (https://github.com/fernet/spec)
// with the checks of the spec that github.com/fernet/fernet-go leaves out of
// its API: strict base64 and a clock that tests can set.
package fernetspec

import (
	"bytes"
	"encoding/base64"
	"encoding/binary"
	"time"

	"github.com/fernet/fernet-go"
)

// MaxClockSkew is how far in the future a token's timestamp may be when a TTL
// is checked, as the Fernet spec and fernet-go use.
const MaxClockSkew = 60 * time.Second

// minTokenBytes is version, timestamp, IV, one ciphertext block and HMAC.
const minTokenBytes = 1 + 8 + 16 + 16 + 32

var strict = base64.URLEncoding.Strict()

// Verify returns the message of tok, a base64url Fernet token, if its HMAC
// under key is valid. With ttl > 0 it also rejects a token issued more than ttl
// before now or more than MaxClockSkew after now; with ttl <= 0 the timestamp
// is not checked. ok is false for every kind of invalid token.
func Verify(tok []byte, key *fernet.Key, ttl time.Duration, now time.Time) (msg []byte, ok bool) {
	issued, ok := Timestamp(tok)
	if !ok {
		return nil, false
	}
	if ttl > 0 && (now.After(issued.Add(ttl)) || issued.After(now.Add(MaxClockSkew))) {
		return nil, false
	}

	msg = fernet.VerifyAndDecrypt(tok, 0, []*fernet.Key{key})
	if msg == nil {
		return nil, false
	}
	return msg, true
}

// Timestamp returns the issue time recorded in tok. ok is false if tok is not
// strict, padded base64url, is shorter than the smallest Fernet token, or has
// a version other than 0x80. The time is not authenticated until Verify
// passes.
func Timestamp(tok []byte) (issued time.Time, ok bool) {
	// fernet-go ignores a base64 error after a decoded prefix, and Go's
	// decoder skips line breaks, so either would let a valid token followed
	// by junk verify. Decoding the whole input strictly here prevents it.
	if bytes.ContainsAny(tok, "\r\n") {
		return time.Time{}, false
	}
	raw := make([]byte, strict.DecodedLen(len(tok)))
	n, err := strict.Decode(raw, tok)
	if err != nil || n < minTokenBytes || raw[0] != 0x80 {
		return time.Time{}, false
	}
	return time.Unix(int64(binary.BigEndian.Uint64(raw[1:9])), 0), true
}
