package tokenvault

import (
	"bytes"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"hash"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/fernet/fernet-go"

	"github.com/tokenvault/tokenvault/internal/fernetspec"
)

// KeyID names a key without revealing it: the first 8 bytes of a SHA-256 of
// the decoded key, in hex. Two spellings of one key (hex, base64, base64url)
// have the same id.
type KeyID string

// KeyRing holds the keys of a vault: Fernet keys that encrypt values, and a
// separate index key for fingerprints.
//
// The primary Fernet key, the first one given, encrypts new values; every
// Fernet key decrypts. To rotate, put a new key first, keep the old ones
// after it, and run Vault.Rewrap; then drop the old keys. The index key never
// rotates with them, so fingerprints and deterministic tokens stay stable.
//
// Security guarantees: a KeyRing prints only key ids, whatever the verb,
// logger or encoder; only KeyFile and WriteKeyFile reveal the keys.
type KeyRing struct {
	// r sits behind a pointer so that printing a struct that holds a
	// KeyRing value in an unexported field shows an address, not keys.
	r *keyRing
}

// keyRing is the key material of a KeyRing. Each key sits behind a pointer,
// because fmt prints the fields of a *keyRing that it reaches with a verb
// that is invalid for pointers, such as %s on a KeyRing value. A pointer
// field prints as an address, but a byte slice field would print the key.
type keyRing struct {
	keys    []*fernet.Key             // primary first
	ids     []KeyID                   // ids[i] names keys[i]
	byID    map[KeyID]*fernetspec.Key // each key's HMAC and AES state, to encrypt and verify
	index   *fernet.Key
	indexID KeyID
	macs    *sync.Pool // HMAC-SHA256 states under index, reset before each use
}

// Environment variables that KeyRingFromEnv reads and key files contain.
const (
	EnvKeys     = "TOKENVAULT_KEYS"      // comma-separated Fernet keys, primary first
	EnvIndexKey = "TOKENVAULT_INDEX_KEY" // the index key for fingerprints
)

// NewKeyRing builds a key ring from Fernet keys, primary first, and an index
// key. Each key is 32 bytes in base64url (the Fernet key format, as Python's
// cryptography package writes it), standard base64, or hex. Errors wrap
// ErrInvalidKey and name keys by position, never by value.
func NewKeyRing(fernetKeys []string, indexKey string) (*KeyRing, error) {
	if len(fernetKeys) == 0 {
		return nil, invalid(ErrInvalidKey, "no Fernet key given")
	}

	r := &keyRing{byID: make(map[KeyID]*fernetspec.Key, len(fernetKeys))}
	for i, s := range fernetKeys {
		k, err := fernet.DecodeKey(strings.TrimSpace(s))
		if err != nil {
			return nil, invalid(ErrInvalidKey, "Fernet key %d of %d cannot be decoded: want 32 bytes in base64url, base64 or hex", i+1, len(fernetKeys))
		}
		id := fernetKeyID(k)
		if _, dup := r.byID[id]; dup {
			return nil, invalid(ErrInvalidKey, "Fernet key %d is the same key as an earlier one (key id %s)", i+1, id)
		}
		r.keys = append(r.keys, k)
		r.ids = append(r.ids, id)
		r.byID[id] = fernetspec.NewKey(k)
	}

	index, err := fernet.DecodeKey(strings.TrimSpace(indexKey))
	if err != nil {
		return nil, invalid(ErrInvalidKey, "index key cannot be decoded: want 32 bytes in base64url, base64 or hex")
	}
	for _, k := range r.keys {
		if *k == *index {
			return nil, invalid(ErrInvalidKey, "index key is also a Fernet key: use a separate key")
		}
	}
	r.index = index
	r.indexID = keyID("index", index[:])
	r.macs = &sync.Pool{New: func() any { return hmac.New(sha256.New, index[:]) }}
	return &KeyRing{r: r}, nil
}

// ParseKeyRing is NewKeyRing with the Fernet keys in one comma-separated
// string, the format of TOKENVAULT_KEYS and of Python's MultiFernet setups.
func ParseKeyRing(fernetKeys, indexKey string) (*KeyRing, error) {
	if strings.TrimSpace(fernetKeys) == "" {
		return nil, invalid(ErrInvalidKey, "no Fernet key given")
	}
	return NewKeyRing(strings.Split(fernetKeys, ","), indexKey)
}

// GenerateKeyRing returns a key ring with a new random Fernet key and index
// key, from crypto/rand.
func GenerateKeyRing() (*KeyRing, error) {
	var k fernet.Key
	if err := k.Generate(); err != nil {
		return nil, fmt.Errorf("tokenvault: generate key: %w", err)
	}
	var index fernet.Key
	rand.Read(index[:])
	return NewKeyRing([]string{k.Encode()}, index.Encode())
}

// Rotate returns a copy of the ring with a new random primary Fernet key in
// front of the existing keys, and the same index key. Open the vault with it,
// run Vault.Rewrap, then drop the old keys with Without.
func (k *KeyRing) Rotate() (*KeyRing, error) {
	var fresh fernet.Key
	if err := fresh.Generate(); err != nil {
		return nil, fmt.Errorf("tokenvault: generate key: %w", err)
	}
	keys := []string{fresh.Encode()}
	for _, key := range k.r.keys {
		keys = append(keys, key.Encode())
	}
	return NewKeyRing(keys, fernetEncode(k.r.index))
}

// Without returns a copy of the ring without the Fernet key id. Removing the
// primary makes the next key primary; removing the last key is an error.
func (k *KeyRing) Without(id KeyID) (*KeyRing, error) {
	var keys []string
	for i, key := range k.r.keys {
		if k.r.ids[i] != id {
			keys = append(keys, key.Encode())
		}
	}
	if len(keys) == len(k.r.keys) {
		return nil, invalid(ErrInvalidKey, "key id %s is not in the ring", id)
	}
	if len(keys) == 0 {
		return nil, invalid(ErrInvalidKey, "cannot remove key id %s, the only Fernet key", id)
	}
	return NewKeyRing(keys, fernetEncode(k.r.index))
}

// Primary returns the id of the key that encrypts new values.
func (k *KeyRing) Primary() KeyID { return k.r.ids[0] }

// KeyIDs returns the ids of the Fernet keys, primary first.
func (k *KeyRing) KeyIDs() []KeyID { return append([]KeyID(nil), k.r.ids...) }

// IndexKeyID returns the id of the index key.
func (k *KeyRing) IndexKeyID() KeyID { return k.r.indexID }

// Decrypt returns the message of a Fernet token made by any key of the ring,
// trying the primary first, as Python's MultiFernet does; the timestamp is
// not checked. It exists to read Fernet data from outside the vault, such as
// the tokens of a Fernet-based service that tokenvault replaces. It returns
// one error for every invalid token.
func (k *KeyRing) Decrypt(fernetToken []byte) ([]byte, error) {
	for _, id := range k.r.ids {
		if msg, ok := k.r.byID[id].Verify(fernetToken, 0, time.Time{}); ok {
			return msg, nil
		}
	}
	return nil, errDecrypt
}

var errDecrypt = fmt.Errorf("tokenvault: Fernet token is invalid or was made with another key")

// encrypt returns the Fernet token of msg under the primary key, stamped with
// issued, and the id of that key.
func (r *keyRing) encrypt(msg []byte, issued time.Time) (KeyID, []byte, error) {
	tok, err := r.byID[r.ids[0]].Encrypt(msg, issued)
	if err != nil {
		return "", nil, fmt.Errorf("tokenvault: encrypt: %w", err)
	}
	return r.ids[0], tok, nil
}

// decrypt returns the message of a Fernet token made by the key id.
func (r *keyRing) decrypt(id KeyID, tok []byte) ([]byte, error) {
	key, ok := r.byID[id]
	if !ok {
		return nil, fmt.Errorf("%w: key id %s", ErrUnknownKey, id)
	}
	msg, ok := key.Verify(tok, 0, time.Time{})
	if !ok {
		return nil, ErrIntegrity
	}
	return msg, nil
}

// Domain-separation labels, so that an HMAC made for one purpose can never
// be presented as one made for another.
const (
	fingerprintLabel   = "tokenvault fingerprint v1"
	deterministicLabel = "tokenvault deterministic key v1"
)

// fingerprint returns the keyed blind index of a value of the given kind:
// HMAC-SHA256 under the index key. Without the index key, nobody holding a
// copy of the store can test guesses against it.
func (r *keyRing) fingerprint(kind Kind, value []byte) []byte {
	mac := r.indexMAC()
	defer r.macs.Put(mac)
	mac.Write([]byte(fingerprintLabel))
	mac.Write([]byte{0, byte(kind)})
	mac.Write(value)
	return mac.Sum(nil)
}

// indexMAC returns an HMAC-SHA256 under the index key, from the pool when it
// has one, which saves hashing the key again for each value. The caller puts
// it back into r.macs when done.
func (r *keyRing) indexMAC() hash.Hash {
	mac := r.macs.Get().(hash.Hash)
	mac.Reset()
	return mac
}

// deterministicKey returns the index entry that makes tokenization of the
// value with fingerprint fp deterministic within scope and format.
func (r *keyRing) deterministicKey(fp []byte, scope string, format Format) []byte {
	mac := r.indexMAC()
	defer r.macs.Put(mac)
	mac.Write([]byte(deterministicLabel))
	var hdr [1 + 1 + 4]byte
	hdr[1] = byte(format)
	binary.BigEndian.PutUint32(hdr[2:], uint32(len(scope)))
	mac.Write(hdr[:])
	mac.Write([]byte(scope))
	mac.Write(fp)
	return mac.Sum(nil)
}

func fernetKeyID(k *fernet.Key) KeyID { return keyID("fernet", k[:]) }

func keyID(kind string, key []byte) KeyID {
	h := sha256.New()
	h.Write([]byte("tokenvault key id v1 " + kind + "\x00"))
	h.Write(key)
	return KeyID(hex.EncodeToString(h.Sum(nil)[:8]))
}

func fernetEncode(key *fernet.Key) string { return key.Encode() }

// String describes the ring by key ids.
func (k *KeyRing) String() string {
	if k == nil || k.r == nil {
		return "KeyRing(<nil>)"
	}
	var b bytes.Buffer
	fmt.Fprintf(&b, "KeyRing(primary %s", k.r.ids[0])
	if len(k.r.ids) > 1 {
		fmt.Fprintf(&b, ", also %s", strings.Join(keyIDStrings(k.r.ids[1:]), " "))
	}
	fmt.Fprintf(&b, ", index %s)", k.r.indexID)
	return b.String()
}

// GoString returns String, for %#v.
func (k *KeyRing) GoString() string { return k.String() }

// Format prints String for every verb, including %d and %x, which would
// otherwise print the fields.
func (k *KeyRing) Format(f fmt.State, verb rune) { fmt.Fprint(f, k.String()) }

// LogValue logs String.
func (k *KeyRing) LogValue() slog.Value { return slog.StringValue(k.String()) }

// MarshalText returns String, so that encoders cannot write the keys.
func (k *KeyRing) MarshalText() ([]byte, error) { return []byte(k.String()), nil }

func keyIDStrings(ids []KeyID) []string {
	s := make([]string, len(ids))
	for i, id := range ids {
		s[i] = string(id)
	}
	return s
}
