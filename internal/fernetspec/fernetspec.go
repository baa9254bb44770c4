// Package fernetspec makes and verifies Fernet tokens
// (https://github.com/fernet/spec) with the checks of the spec that
// github.com/fernet/fernet-go leaves out of its API: strict base64, strict
// PKCS #7 padding and a clock that tests can set. A Key keeps its HMAC and
// AES state between tokens, which fernet-go recomputes for every token,
// because encryption and verification are on the vault's write and read
// paths. Its tokens are those of fernet-go, byte for byte, for the same IV.
package fernetspec

import (
	"bytes"
	"crypto/aes"
	"crypto/cipher"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"hash"
	"io"
	"sync"
	"time"

	"github.com/fernet/fernet-go"
)

// MaxClockSkew is how far in the future a token's timestamp may be when a TTL
// is checked, as the Fernet spec and fernet-go use.
const MaxClockSkew = 60 * time.Second

// Sizes in a decoded token: version, timestamp and IV before the ciphertext,
// and the HMAC after it.
const (
	version       = 0x80
	blockSize     = aes.BlockSize
	ivOffset      = 1 + 8
	payloadOffset = ivOffset + blockSize
	macSize       = sha256.Size
	overheadBytes = payloadOffset + macSize
	minTokenBytes = overheadBytes + blockSize // with one ciphertext block
)

var strict = base64.URLEncoding.Strict()

// Key makes, verifies and decrypts the Fernet tokens of one key. It is safe
// for concurrent use.
type Key struct {
	block cipher.Block
	macs  sync.Pool // of hash.Hash: HMAC-SHA256 keyed with the signing key
}

// NewKey returns the verifier of key.
func NewKey(key *fernet.Key) *Key {
	// A Fernet key is the signing key then the encryption key, 16 bytes each.
	signing := append([]byte(nil), key[:16]...)
	block, err := aes.NewCipher(key[16:])
	if err != nil {
		panic("fernetspec: AES key of 16 bytes rejected: " + err.Error())
	}
	k := &Key{block: block}
	k.macs.New = func() any { return hmac.New(sha256.New, signing) }
	return k
}

// Encrypt returns the Fernet token of msg stamped with issued: in base64url,
// the version, the time in seconds, a random IV read from crypto/rand.Reader,
// msg with PKCS #7 padding encrypted with AES-128-CBC, and the HMAC-SHA256 of
// all that. It fails only if the IV cannot be read.
func (k *Key) Encrypt(msg []byte, issued time.Time) ([]byte, error) {
	padded := (len(msg)/blockSize + 1) * blockSize
	raw := make([]byte, payloadOffset+padded, payloadOffset+padded+macSize)
	raw[0] = version
	binary.BigEndian.PutUint64(raw[1:ivOffset], uint64(issued.Unix()))
	if _, err := io.ReadFull(rand.Reader, raw[ivOffset:payloadOffset]); err != nil {
		return nil, err
	}

	payload := raw[payloadOffset:]
	n := copy(payload, msg)
	for i := n; i < padded; i++ {
		payload[i] = byte(padded - n)
	}
	cipher.NewCBCEncrypter(k.block, raw[ivOffset:payloadOffset]).CryptBlocks(payload, payload)

	mac := k.macs.Get().(hash.Hash)
	mac.Reset()
	mac.Write(raw)
	raw = mac.Sum(raw)
	k.macs.Put(mac)

	tok := make([]byte, base64.URLEncoding.EncodedLen(len(raw)))
	base64.URLEncoding.Encode(tok, raw)
	return tok, nil
}

// Verify returns the message of tok, a base64url Fernet token, if its HMAC
// under key is valid. With ttl > 0 it also rejects a token issued more than ttl
// before now or more than MaxClockSkew after now; with ttl <= 0 the timestamp
// is not checked. ok is false for every kind of invalid token.
func Verify(tok []byte, key *fernet.Key, ttl time.Duration, now time.Time) (msg []byte, ok bool) {
	return NewKey(key).Verify(tok, ttl, now)
}

// Verify is the package's Verify with k's key. The message it returns is a
// new slice that the caller owns.
func (k *Key) Verify(tok []byte, ttl time.Duration, now time.Time) (msg []byte, ok bool) {
	raw, ok := decode(tok)
	if !ok {
		return nil, false
	}
	if ttl > 0 {
		issued := timestampOf(raw)
		if now.After(issued.Add(ttl)) || issued.After(now.Add(MaxClockSkew)) {
			return nil, false
		}
	}

	// The HMAC covers everything before it and is checked before any
	// decryption, so that a forged token learns nothing from padding.
	macStart := len(raw) - macSize
	mac := k.macs.Get().(hash.Hash)
	mac.Reset()
	mac.Write(raw[:macStart])
	var sum [macSize]byte
	mac.Sum(sum[:0])
	k.macs.Put(mac)
	if !hmac.Equal(sum[:], raw[macStart:]) {
		return nil, false
	}

	ciphertext := raw[payloadOffset:macStart]
	if len(ciphertext)%blockSize != 0 {
		return nil, false
	}
	cipher.NewCBCDecrypter(k.block, raw[ivOffset:payloadOffset]).CryptBlocks(ciphertext, ciphertext)

	// PKCS #7: the last byte n, from 1 to the block size, repeated n times.
	n := int(ciphertext[len(ciphertext)-1])
	if n < 1 || n > blockSize {
		return nil, false
	}
	for _, b := range ciphertext[len(ciphertext)-n:] {
		if int(b) != n {
			return nil, false
		}
	}
	return ciphertext[:len(ciphertext)-n], true
}

// Timestamp returns the issue time recorded in tok. ok is false if tok is not
// strict, padded base64url, is shorter than the smallest Fernet token, or has
// a version other than 0x80. The time is not authenticated until Verify
// passes.
func Timestamp(tok []byte) (issued time.Time, ok bool) {
	raw, ok := decode(tok)
	if !ok {
		return time.Time{}, false
	}
	return timestampOf(raw), true
}

// decode returns the bytes of tok if it is strict, padded base64url of at
// least the smallest token with version 0x80. Go's decoder skips line
// breaks, which would let a valid token followed by junk decode, so they are
// rejected first.
func decode(tok []byte) ([]byte, bool) {
	if bytes.ContainsAny(tok, "\r\n") {
		return nil, false
	}
	raw := make([]byte, strict.DecodedLen(len(tok)))
	n, err := strict.Decode(raw, tok)
	if err != nil || n < minTokenBytes || raw[0] != version {
		return nil, false
	}
	return raw[:n], true
}

func timestampOf(raw []byte) time.Time {
	return time.Unix(int64(binary.BigEndian.Uint64(raw[1:ivOffset])), 0)
}
