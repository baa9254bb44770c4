package apikey

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"fmt"
)

// Secret layout: secretPrefix, idLen hexadecimal digits, '_', and
// secretPartLen base64url characters without padding, which encode
// secretBytes random bytes.
const (
	secretPrefix  = "tvk_"
	idBytes       = 4
	idLen         = 2 * idBytes
	secretBytes   = 32
	secretPartLen = 43
	secretLen     = len(secretPrefix) + idLen + 1 + secretPartLen
)

// dummyHash is the hash that Authenticate compares with when no key has the
// secret's id, so that an unknown id costs the same work as a wrong
// secret.
var dummyHash = sha256.Sum256([]byte("apikey: no secret hashes to this value"))

// newID returns a random key id.
func newID() (string, error) {
	var b [idBytes]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", fmt.Errorf("apikey: generate key id: %w", err)
	}
	return hex.EncodeToString(b[:]), nil
}

// newSecret returns a new secret for the key id.
func newSecret(id string) (string, error) {
	var b [secretBytes]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", fmt.Errorf("apikey: generate secret: %w", err)
	}
	return secretPrefix + id + "_" + base64.RawURLEncoding.EncodeToString(b[:]), nil
}

// secretID returns the key id of secret, or false if secret does not have the
// layout of a secret. It looks at each byte at most once and never
// allocates.
func secretID(secret string) (string, bool) {
	if len(secret) != secretLen || secret[:len(secretPrefix)] != secretPrefix {
		return "", false
	}
	id := secret[len(secretPrefix) : len(secretPrefix)+idLen]
	if !validID(id) || secret[len(secretPrefix)+idLen] != '_' {
		return "", false
	}
	for i := secretLen - secretPartLen; i < secretLen; i++ {
		if !isBase64URL(secret[i]) {
			return "", false
		}
	}
	return id, true
}

// validID reports whether id has the layout of a key id: idLen lowercase
// hexadecimal digits.
func validID(id string) bool {
	if len(id) != idLen {
		return false
	}
	for i := 0; i < len(id); i++ {
		c := id[i]
		if (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return false
		}
	}
	return true
}

func isBase64URL(c byte) bool {
	return c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-' || c == '_'
}

// hashSecret returns the SHA-256 hash of a secret that secretID accepted.
//
// An unsalted, fast hash is enough here, unlike for passwords, because the
// secret carries 256 random bits: no dictionary applies, and a brute-force
// search through the hash is out of reach however fast the hash is.
func hashSecret(secret string) [sha256.Size]byte {
	// Copying into an array on the stack avoids the allocation of []byte(secret).
	var buf [secretLen]byte
	n := copy(buf[:], secret)
	return sha256.Sum256(buf[:n])
}
