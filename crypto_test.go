package tokenvault_test

import (
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/tokenvault/tokenvault"
)

// pythonFernet is testdata/python-fernet.json, which the script in its
// produced_by field made with Debian 12's /usr/bin/python3 (3.11.2) and
// python3-cryptography 38.0.4. The script draws k1 and k2 with
// Fernet.generate_key() and sets up MultiFernet([k1, k2]), with k2 as the
// older key. token_k2 is Fernet(k2).encrypt(value), and token_k1 is
// MultiFernet.encrypt(value), which uses k1.
type pythonFernet struct {
	ProducedBy map[string]any `json:"produced_by"`
	K1         string         `json:"k1"`
	K2         string         `json:"k2"`
	Value      string         `json:"value"`
	TokenK1    string         `json:"token_k1"`
	TokenK2    string         `json:"token_k2"`
}

func loadPythonFernet(t *testing.T) *pythonFernet {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", "python-fernet.json"))
	if err != nil {
		t.Fatal(err)
	}
	var v pythonFernet
	if err := json.Unmarshal(b, &v); err != nil {
		t.Fatalf("decode python-fernet.json: %v", err)
	}
	if v.K1 == "" || v.K2 == "" || v.TokenK1 == "" || v.TokenK2 == "" || v.Value == "" {
		t.Fatal("python-fernet.json is missing a key, token or value")
	}
	return &v
}

// randomKey returns 32 random bytes whose standard base64 and base64url
// spellings differ, so that a test of the two spellings tests both decoders.
func randomKey(t *testing.T) []byte {
	t.Helper()
	for {
		k := make([]byte, 32)
		rand.Read(k)
		if base64.StdEncoding.EncodeToString(k) != base64.URLEncoding.EncodeToString(k) {
			return k
		}
	}
}

// newIndexKey returns a random index key in base64url.
func newIndexKey(t *testing.T) string {
	t.Helper()
	return base64.URLEncoding.EncodeToString(randomKey(t))
}

// checkNoKeyText fails the test if err's text contains any of keys. It names
// the key by position only, so that a failure does not print a key.
func checkNoKeyText(t *testing.T, call string, err error, keys ...string) {
	t.Helper()
	for i, k := range keys {
		if k != "" && strings.Contains(err.Error(), k) {
			t.Errorf("%s error text contains key %d, want no key text", call, i+1)
		}
	}
}

func TestKeyRingPythonFernet(t *testing.T) {
	t.Parallel()
	v := loadPythonFernet(t)
	index := newIndexKey(t)

	ring, err := tokenvault.ParseKeyRing(v.K1+","+v.K2, index)
	if err != nil {
		t.Fatalf("ParseKeyRing(k1,k2) err = %v", err)
	}
	for _, tc := range []struct{ name, token string }{
		{"token_k1", v.TokenK1},
		{"token_k2", v.TokenK2},
	} {
		msg, err := ring.Decrypt([]byte(tc.token))
		if err != nil {
			t.Errorf("Decrypt(%s) err = %v, want nil", tc.name, err)
			continue
		}
		if string(msg) != v.Value {
			t.Errorf("Decrypt(%s) returned %d bytes that differ from the %d-byte value", tc.name, len(msg), len(v.Value))
		}
	}

	onlyK1, err := tokenvault.ParseKeyRing(v.K1, index)
	if err != nil {
		t.Fatalf("ParseKeyRing(k1) err = %v", err)
	}
	if msg, err := onlyK1.Decrypt([]byte(v.TokenK2)); err == nil || msg != nil {
		t.Errorf("ring of k1 only: Decrypt(token_k2) err = %v, want an error and no message", err)
	}
	if _, err := onlyK1.Decrypt([]byte(v.TokenK1)); err != nil {
		t.Errorf("ring of k1 only: Decrypt(token_k1) err = %v, want nil", err)
	}
}

func TestKeyRingSpellings(t *testing.T) {
	t.Parallel()
	key := randomKey(t)
	index := newIndexKey(t)
	spellings := map[string]string{
		"base64url": base64.URLEncoding.EncodeToString(key),
		"base64":    base64.StdEncoding.EncodeToString(key),
		"hex":       hex.EncodeToString(key),
	}

	var want tokenvault.KeyID
	for name, s := range spellings {
		ring, err := tokenvault.NewKeyRing([]string{s}, index)
		if err != nil {
			t.Fatalf("NewKeyRing(%s spelling) err = %v", name, err)
		}
		if want == "" {
			want = ring.Primary()
		}
		if got := ring.Primary(); got != want {
			t.Errorf("NewKeyRing(%s spelling).Primary() = %s, want %s", name, got, want)
		}
	}

	for a, sa := range spellings {
		for b, sb := range spellings {
			if a == b {
				continue
			}
			_, err := tokenvault.NewKeyRing([]string{sa, sb}, index)
			if !errors.Is(err, tokenvault.ErrInvalidKey) {
				t.Errorf("NewKeyRing(%s, %s of one key) err = %v, want ErrInvalidKey", a, b, err)
				continue
			}
			checkNoKeyText(t, "NewKeyRing", err, sa, sb, index)
		}
	}
}

func TestKeyRingIndexKeyReuse(t *testing.T) {
	t.Parallel()
	key := randomKey(t)
	other := randomKey(t)
	fernetKey := base64.URLEncoding.EncodeToString(key)
	otherKey := base64.URLEncoding.EncodeToString(other)

	for name, index := range map[string]string{
		"same spelling": fernetKey,
		"hex spelling":  hex.EncodeToString(key),
	} {
		_, err := tokenvault.NewKeyRing([]string{otherKey, fernetKey}, index)
		if !errors.Is(err, tokenvault.ErrInvalidKey) {
			t.Errorf("NewKeyRing with index key = second Fernet key (%s) err = %v, want ErrInvalidKey", name, err)
			continue
		}
		checkNoKeyText(t, "NewKeyRing", err, fernetKey, otherKey, index)
	}
}

func TestKeyRingBadKeys(t *testing.T) {
	t.Parallel()
	good := base64.URLEncoding.EncodeToString(randomKey(t))
	index := newIndexKey(t)
	short := base64.URLEncoding.EncodeToString(randomKey(t)[:31])
	long := hex.EncodeToString(append(randomKey(t), 0))
	garbage := "not a key: " + strings.Repeat("zQ", 30)
	badHex := strings.Repeat("g", 64)

	tests := []struct {
		name       string
		keys       string
		index      string
		secretText []string
	}{
		{"empty keys", "", index, []string{index}},
		{"blank keys", " , ", index, []string{index}},
		{"empty index", good, "", []string{good}},
		{"garbage key", garbage, index, []string{garbage, index}},
		{"garbage after good", good + "," + garbage, index, []string{good, garbage, index}},
		{"31-byte key", short, index, []string{short, index}},
		{"33-byte key", long, index, []string{long, index}},
		{"invalid hex key", badHex, index, []string{badHex, index}},
		{"garbage index", good, garbage, []string{good, garbage}},
		{"31-byte index", good, short, []string{good, short}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			ring, err := tokenvault.ParseKeyRing(tc.keys, tc.index)
			if !errors.Is(err, tokenvault.ErrInvalidKey) {
				t.Fatalf("ParseKeyRing err = %v, want ErrInvalidKey", err)
			}
			if ring != nil {
				t.Errorf("ParseKeyRing ring = %v, want nil", ring)
			}
			checkNoKeyText(t, "ParseKeyRing", err, tc.secretText...)
		})
	}
}

func TestKeyRingFromEnv(t *testing.T) {
	key := base64.URLEncoding.EncodeToString(randomKey(t))
	older := base64.StdEncoding.EncodeToString(randomKey(t))
	index := newIndexKey(t)

	// t.Setenv restores both variables when the test ends, including
	// those it unsets here.
	t.Setenv(tokenvault.EnvKeys, "")
	t.Setenv(tokenvault.EnvIndexKey, "")
	os.Unsetenv(tokenvault.EnvKeys)
	os.Unsetenv(tokenvault.EnvIndexKey)
	if _, err := tokenvault.KeyRingFromEnv(); !errors.Is(err, tokenvault.ErrInvalidKey) {
		t.Errorf("KeyRingFromEnv() with neither variable set err = %v, want ErrInvalidKey", err)
	}

	os.Setenv(tokenvault.EnvKeys, key+", "+older)
	if _, err := tokenvault.KeyRingFromEnv(); !errors.Is(err, tokenvault.ErrInvalidKey) {
		t.Errorf("KeyRingFromEnv() without %s err = %v, want ErrInvalidKey", tokenvault.EnvIndexKey, err)
	}

	os.Setenv(tokenvault.EnvIndexKey, index)
	got, err := tokenvault.KeyRingFromEnv()
	if err != nil {
		t.Fatalf("KeyRingFromEnv() err = %v", err)
	}
	want, err := tokenvault.NewKeyRing([]string{key, older}, index)
	if err != nil {
		t.Fatalf("NewKeyRing err = %v", err)
	}
	if !slices.Equal(got.KeyIDs(), want.KeyIDs()) {
		t.Errorf("KeyRingFromEnv().KeyIDs() = %v, want %v", got.KeyIDs(), want.KeyIDs())
	}
	if got.IndexKeyID() != want.IndexKeyID() {
		t.Errorf("KeyRingFromEnv().IndexKeyID() = %s, want %s", got.IndexKeyID(), want.IndexKeyID())
	}

	os.Setenv(tokenvault.EnvKeys, "")
	if _, err := tokenvault.KeyRingFromEnv(); !errors.Is(err, tokenvault.ErrInvalidKey) {
		t.Errorf("KeyRingFromEnv() with empty %s err = %v, want ErrInvalidKey", tokenvault.EnvKeys, err)
	}
}

// writeKeyFile writes content to a new file in a temporary directory and sets
// its mode explicitly, so that the umask cannot change it.
func writeKeyFile(t *testing.T, content string, mode os.FileMode) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "keys.env")
	if err := os.WriteFile(path, []byte(content), mode); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(path, mode); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestLoadKeyFile(t *testing.T) {
	t.Parallel()
	key := base64.URLEncoding.EncodeToString(randomKey(t))
	index := newIndexKey(t)
	valid := "# comment\n\n" +
		tokenvault.EnvKeys + "=" + key + "\n" +
		tokenvault.EnvIndexKey + "=" + index + "\n"
	secrets := []string{key, index}

	t.Run("mode 0600", func(t *testing.T) {
		t.Parallel()
		ring, err := tokenvault.LoadKeyFile(writeKeyFile(t, valid, 0o600))
		if err != nil {
			t.Fatalf("LoadKeyFile err = %v", err)
		}
		want, err := tokenvault.ParseKeyRing(key, index)
		if err != nil {
			t.Fatalf("ParseKeyRing err = %v", err)
		}
		if ring.Primary() != want.Primary() || ring.IndexKeyID() != want.IndexKeyID() {
			t.Errorf("LoadKeyFile = %v, want %v", ring, want)
		}
	})

	rejects := []struct {
		name    string
		content string
		mode    os.FileMode
	}{
		{"mode 0644", valid, 0o644},
		{"mode 0640", valid, 0o640},
		{"mode 0602", valid, 0o602},
		{"unknown name", valid + "TOKENVAULT_KEY=" + key + "\n", 0o600},
		{"line without =", valid + key + "\n", 0o600},
		{"duplicate keys", valid + tokenvault.EnvKeys + "=" + key + "\n", 0o600},
		{"duplicate index", valid + tokenvault.EnvIndexKey + "=" + index + "\n", 0o600},
		{"missing index", tokenvault.EnvKeys + "=" + key + "\n", 0o600},
		{"missing keys", tokenvault.EnvIndexKey + "=" + index + "\n", 0o600},
	}
	for _, tc := range rejects {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			ring, err := tokenvault.LoadKeyFile(writeKeyFile(t, tc.content, tc.mode))
			if !errors.Is(err, tokenvault.ErrInvalidKey) {
				t.Fatalf("LoadKeyFile err = %v, want ErrInvalidKey", err)
			}
			if ring != nil {
				t.Errorf("LoadKeyFile ring = %v, want nil", ring)
			}
			checkNoKeyText(t, "LoadKeyFile", err, secrets...)
		})
	}

	t.Run("missing file", func(t *testing.T) {
		t.Parallel()
		_, err := tokenvault.LoadKeyFile(filepath.Join(t.TempDir(), "absent.env"))
		if !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("LoadKeyFile(absent file) err = %v, want fs.ErrNotExist", err)
		}
	})
}

func TestKeyFileRoundTrip(t *testing.T) {
	t.Parallel()
	index := newIndexKey(t)
	keys := []string{
		base64.URLEncoding.EncodeToString(randomKey(t)),
		base64.StdEncoding.EncodeToString(randomKey(t)),
		hex.EncodeToString(randomKey(t)),
	}
	ring, err := tokenvault.NewKeyRing(keys, index)
	if err != nil {
		t.Fatalf("NewKeyRing err = %v", err)
	}

	path := filepath.Join(t.TempDir(), "keys.env")
	if err := ring.WriteKeyFile(path); err != nil {
		t.Fatalf("WriteKeyFile err = %v", err)
	}
	info, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if perm := info.Mode().Perm(); perm != 0o600 {
		t.Errorf("WriteKeyFile mode = %#o, want 0600", perm)
	}

	loaded, err := tokenvault.LoadKeyFile(path)
	if err != nil {
		t.Fatalf("LoadKeyFile err = %v", err)
	}
	if !slices.Equal(loaded.KeyIDs(), ring.KeyIDs()) {
		t.Errorf("LoadKeyFile(WriteKeyFile).KeyIDs() = %v, want %v", loaded.KeyIDs(), ring.KeyIDs())
	}
	if loaded.IndexKeyID() != ring.IndexKeyID() {
		t.Errorf("LoadKeyFile(WriteKeyFile).IndexKeyID() = %s, want %s", loaded.IndexKeyID(), ring.IndexKeyID())
	}
}

func TestWriteKeyFileMissingFolder(t *testing.T) {
	t.Parallel()
	ring, err := tokenvault.GenerateKeyRing()
	if err != nil {
		t.Fatalf("GenerateKeyRing err = %v", err)
	}

	dir := filepath.Join(t.TempDir(), "missing")
	err = ring.WriteKeyFile(filepath.Join(dir, "keys.env"))
	if !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("WriteKeyFile err = %v, want fs.ErrNotExist", err)
	}
	if want := "the folder " + dir + " does not exist"; !strings.Contains(err.Error(), want) {
		t.Errorf("WriteKeyFile err = %q, want it to contain %q", err, want)
	}
	if strings.Contains(err.Error(), ".tokenvault-key-") {
		t.Errorf("WriteKeyFile err = %q names the temporary file", err)
	}
}

func TestWriteKeyFileNoOverwrite(t *testing.T) {
	t.Parallel()
	first, err := tokenvault.GenerateKeyRing()
	if err != nil {
		t.Fatalf("GenerateKeyRing err = %v", err)
	}
	second, err := tokenvault.GenerateKeyRing()
	if err != nil {
		t.Fatalf("GenerateKeyRing err = %v", err)
	}

	path := filepath.Join(t.TempDir(), "keys.env")
	if err := first.WriteKeyFile(path); err != nil {
		t.Fatalf("WriteKeyFile err = %v", err)
	}
	if err := second.WriteKeyFile(path); !errors.Is(err, fs.ErrExist) {
		t.Errorf("second WriteKeyFile err = %v, want fs.ErrExist", err)
	}

	loaded, err := tokenvault.LoadKeyFile(path)
	if err != nil {
		t.Fatalf("LoadKeyFile err = %v", err)
	}
	if loaded.Primary() != first.Primary() {
		t.Errorf("LoadKeyFile().Primary() = %s after a rejected overwrite, want %s", loaded.Primary(), first.Primary())
	}
}
