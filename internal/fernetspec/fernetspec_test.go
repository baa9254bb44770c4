package fernetspec_test

import (
	"bytes"
	"crypto/aes"
	"crypto/cipher"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/fernet/fernet-go"

	"github.com/tokenvault/tokenvault"
	"github.com/tokenvault/tokenvault/internal/fernetspec"
)

// vector is one case of the Fernet spec's generate.json, verify.json or
// invalid.json. testdata/fernet/README.md names the source of the files.
type vector struct {
	Desc   string              `json:"desc"`
	Token  string              `json:"token"`
	Now    time.Time           `json:"now"`
	IV     [aes.BlockSize]byte `json:"iv"`
	TTLSec int                 `json:"ttl_sec"`
	Src    string              `json:"src"`
	Secret string              `json:"secret"`
}

// name returns the subtest name: the vector's desc, or, for the cases of
// verify.json and generate.json, which have none, their position and TTL.
func (v *vector) name(i int) string {
	switch {
	case v.Desc != "":
		return v.Desc
	case v.TTLSec != 0:
		return fmt.Sprintf("case %d ttl %d", i, v.TTLSec)
	default:
		return fmt.Sprintf("case %d", i)
	}
}

func (v *vector) ttl() time.Duration { return time.Duration(v.TTLSec) * time.Second }

func (v *vector) key(t *testing.T) *fernet.Key {
	t.Helper()
	k, err := fernet.DecodeKey(v.Secret)
	if err != nil {
		t.Fatalf("DecodeKey(secret of %q) err = %v", v.Desc, err)
	}
	return k
}

// loadVectors reads testdata/fernet/file. It fails the test if the file has
// no case or a field that vector lacks, so that a changed file cannot pass by
// being read as empty.
func loadVectors(t *testing.T, file string) []vector {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("..", "..", "testdata", "fernet", file))
	if err != nil {
		t.Fatal(err)
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	var vs []vector
	if err := dec.Decode(&vs); err != nil {
		t.Fatalf("decode %s: %v", file, err)
	}
	if len(vs) == 0 {
		t.Fatalf("%s has no cases", file)
	}
	return vs
}

func TestInvalidVectors(t *testing.T) {
	t.Parallel()
	vs := loadVectors(t, "invalid.json")
	if len(vs) != 10 {
		t.Fatalf("invalid.json has %d cases, want 10", len(vs))
	}
	for i, v := range vs {
		t.Run(v.name(i), func(t *testing.T) {
			t.Parallel()
			msg, ok := fernetspec.Verify([]byte(v.Token), v.key(t), v.ttl(), v.Now)
			if ok {
				t.Errorf("Verify(%q) ok = true, want false", v.Token)
			}
			if msg != nil {
				t.Errorf("Verify(%q) msg = %q, want nil", v.Token, msg)
			}
		})
	}
}

func TestVerifyVectors(t *testing.T) {
	t.Parallel()
	vs := loadVectors(t, "verify.json")
	if len(vs) != 2 {
		t.Fatalf("verify.json has %d cases, want 2", len(vs))
	}
	for i, v := range vs {
		t.Run(v.name(i), func(t *testing.T) {
			t.Parallel()
			msg, ok := fernetspec.Verify([]byte(v.Token), v.key(t), v.ttl(), v.Now)
			if !ok {
				t.Fatalf("Verify(%q) ok = false, want true", v.Token)
			}
			if string(msg) != v.Src {
				t.Errorf("Verify(%q) msg = %q, want %q", v.Token, msg, v.Src)
			}
		})
	}
}

// TestGenerateVectors checks fernet-go and Key.Encrypt against the spec's
// tokens. It swaps crypto/rand.Reader for a reader of the vector's IV,
// because both read the IV from it and have no other way to set one.
// The swap is global, so this test must not run in parallel with others.
func TestGenerateVectors(t *testing.T) {
	vs := loadVectors(t, "generate.json")
	saved := rand.Reader
	t.Cleanup(func() { rand.Reader = saved })

	encrypters := []struct {
		name    string
		encrypt func(msg []byte, key *fernet.Key, now time.Time) ([]byte, error)
	}{
		{"EncryptAndSignAtTime", fernet.EncryptAndSignAtTime},
		{"Key.Encrypt", func(msg []byte, key *fernet.Key, now time.Time) ([]byte, error) {
			return fernetspec.NewKey(key).Encrypt(msg, now)
		}},
	}
	for i, v := range vs {
		for _, e := range encrypters {
			t.Run(v.name(i)+"/"+e.name, func(t *testing.T) {
				iv := bytes.NewReader(v.IV[:])
				rand.Reader = iv
				tok, err := e.encrypt([]byte(v.Src), v.key(t), v.Now)
				rand.Reader = saved
				if err != nil {
					t.Fatalf("%s err = %v", e.name, err)
				}

				if iv.Len() != 0 {
					t.Errorf("%s left %d of %d IV bytes unread, want 0", e.name, iv.Len(), aes.BlockSize)
				}
				if string(tok) != v.Token {
					t.Errorf("%s = %q, want %q", e.name, tok, v.Token)
				}
				msg, ok := fernetspec.Verify(tok, v.key(t), 0, time.Time{})
				if !ok || string(msg) != v.Src {
					t.Errorf("Verify(%q) = %q, %t, want %q, true", tok, msg, ok, v.Src)
				}
			})
		}
	}
}

// clockCases are the invalid.json cases that fail only on their timestamp.
// KeyRing.Decrypt does not check timestamps, so it accepts them.
var clockCases = map[string]bool{
	"far-future TS (unacceptable clock skew)": true,
	"expired TTL": true,
}

func TestKeyRingVectors(t *testing.T) {
	t.Parallel()
	verify := loadVectors(t, "verify.json")
	invalid := loadVectors(t, "invalid.json")

	var index [32]byte
	rand.Read(index[:])
	var indexKey fernet.Key
	copy(indexKey[:], index[:])

	ring := func(t *testing.T, secret string) *tokenvault.KeyRing {
		t.Helper()
		kr, err := tokenvault.ParseKeyRing(secret, indexKey.Encode())
		if err != nil {
			t.Fatalf("ParseKeyRing err = %v", err)
		}
		return kr
	}

	for i, v := range verify {
		t.Run("verify/"+v.name(i), func(t *testing.T) {
			t.Parallel()
			msg, err := ring(t, v.Secret).Decrypt([]byte(v.Token))
			if err != nil {
				t.Fatalf("Decrypt(%q) err = %v, want nil", v.Token, err)
			}
			if string(msg) != v.Src {
				t.Errorf("Decrypt(%q) = %q, want %q", v.Token, msg, v.Src)
			}
		})
	}

	found := 0
	for i, v := range invalid {
		t.Run("invalid/"+v.name(i), func(t *testing.T) {
			t.Parallel()
			msg, err := ring(t, v.Secret).Decrypt([]byte(v.Token))
			if clockCases[v.Desc] {
				if err != nil {
					t.Errorf("Decrypt(%q) err = %v, want nil because Decrypt ignores the timestamp", v.Token, err)
				}
				return
			}
			if err == nil {
				t.Errorf("Decrypt(%q) err = nil, want an error", v.Token)
			}
			if msg != nil {
				t.Errorf("Decrypt(%q) msg = %q, want nil", v.Token, msg)
			}
		})
		if clockCases[v.Desc] {
			found++
		}
	}
	if found != len(clockCases) {
		t.Errorf("invalid.json has %d of the %d timestamp-only cases, want all", found, len(clockCases))
	}
}

// signedToken returns a Fernet token of the already padded plaintext under
// key, with a valid HMAC, so that only the padding can make it invalid.
func signedToken(t *testing.T, key *fernet.Key, padded []byte) []byte {
	t.Helper()
	block, err := aes.NewCipher(key[16:])
	if err != nil {
		t.Fatal(err)
	}
	raw := make([]byte, 0, 1+8+aes.BlockSize+len(padded)+sha256.Size)
	raw = append(raw, 0x80)
	raw = binary.BigEndian.AppendUint64(raw, uint64(time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC).Unix()))
	raw = append(raw, make([]byte, aes.BlockSize)...) // a zero IV
	ciphertext := make([]byte, len(padded))
	cipher.NewCBCEncrypter(block, raw[9:25]).CryptBlocks(ciphertext, padded)
	raw = append(raw, ciphertext...)
	mac := hmac.New(sha256.New, key[:16])
	mac.Write(raw)
	raw = mac.Sum(raw)
	return []byte(base64.URLEncoding.EncodeToString(raw))
}

// TestPadding checks the PKCS #7 padding (RFC 5652, section 6.3) that the
// Fernet spec requires: 1 to 16 bytes, each equal to the padding length.
func TestPadding(t *testing.T) {
	t.Parallel()
	var key fernet.Key
	if err := key.Generate(); err != nil {
		t.Fatal(err)
	}

	valid := map[string][]byte{
		"pad 1":             append(bytes.Repeat([]byte("a"), 15), 1),
		"pad 16":            bytes.Repeat([]byte{16}, 16),
		"pad 4 of 2 blocks": append(bytes.Repeat([]byte("a"), 28), 4, 4, 4, 4),
	}
	for name, padded := range valid {
		msg, ok := fernetspec.Verify(signedToken(t, &key, padded), &key, 0, time.Time{})
		if !ok {
			t.Errorf("Verify(%s) ok = false, want true", name)
			continue
		}
		if n := len(padded) - len(msg); n != int(padded[len(padded)-1]) {
			t.Errorf("Verify(%s) removed %d bytes, want %d", name, n, padded[len(padded)-1])
		}
	}

	invalid := map[string][]byte{
		"pad 0":          append(bytes.Repeat([]byte("a"), 15), 0),
		"pad 17":         bytes.Repeat([]byte{17}, 32),
		"pad 32":         bytes.Repeat([]byte{32}, 32),
		"pad 2 with a 3": append(bytes.Repeat([]byte("a"), 14), 3, 2),
		"pad 255":        bytes.Repeat([]byte{255}, 16),
	}
	for name, padded := range invalid {
		if msg, ok := fernetspec.Verify(signedToken(t, &key, padded), &key, 0, time.Time{}); ok {
			t.Errorf("Verify(%s) ok = true with a %d-byte message, want false", name, len(msg))
		}
	}
}
