// Package fernetspec verifies Fernet tokens (https://github.com/fernet/spec)
// with the checks of the spec that github.com/fernet/fernet-go leaves out of
// its API: strict base64, strict PKCS #7 padding and a clock that tests can
// set.
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

// Sizes in a decoded token: version, timestamp and IV before the ciphertext,
// and the HMAC after it.
const (
	blockSize     = 16 // AES
	overheadBytes = 1 + 8 + blockSize + 32
	minTokenBytes = overheadBytes + blockSize // with one ciphertext block
)

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

	// fernet-go checks only that the last c bytes all equal c, the value of
	// the last byte. So it accepts c = 0, and c > 16 when enough bytes match,
	// which PKCS #7 does not allow.
	if pad := ciphertextLen(tok) - len(msg); pad < 1 || pad > blockSize {
		return nil, false
	}
	return msg, true
}

// ciphertextLen returns the length of the ciphertext field of tok, which
// Timestamp has checked to be strict, padded base64url.
func ciphertextLen(tok []byte) int {
	decoded := len(tok)/4*3 - (len(tok) - len(bytes.TrimRight(tok, "=")))
	return decoded - overheadBytes
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
