package tokenvault

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"strings"
)

// KeyRingFromEnv builds a key ring from TOKENVAULT_KEYS (comma-separated
// Fernet keys, primary first) and TOKENVAULT_INDEX_KEY.
func KeyRingFromEnv() (*KeyRing, error) {
	keys, ok := os.LookupEnv(EnvKeys)
	if !ok {
		return nil, invalid(ErrInvalidKey, "%s is not set: create keys with 'tokenvault keygen' and export its two lines", EnvKeys)
	}
	index, ok := os.LookupEnv(EnvIndexKey)
	if !ok {
		return nil, invalid(ErrInvalidKey, "%s is set but %s is not", EnvKeys, EnvIndexKey)
	}
	return ParseKeyRing(keys, index)
}

// LoadKeyFile reads a key ring from a key file: lines of NAME=VALUE with the
// names TOKENVAULT_KEYS and TOKENVAULT_INDEX_KEY, so the same file also
// works as a systemd EnvironmentFile. Blank lines and lines starting with #
// are ignored.
//
// On Unix, LoadKeyFile rejects a file that its group or other users can
// read or write, as OpenSSH does for private keys.
func LoadKeyFile(path string) (*KeyRing, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("tokenvault: open key file: %w", err)
	}
	defer f.Close()

	info, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("tokenvault: key file %s: %w", path, err)
	}
	if perm := info.Mode().Perm(); runtime.GOOS != "windows" && perm&0o077 != 0 {
		return nil, invalid(ErrInvalidKey, "key file %s has mode %#o, which lets other users read it; run chmod 600 %s", path, perm, path)
	}

	values := make(map[string]string, 2)
	scanner := bufio.NewScanner(f)
	for line := 1; scanner.Scan(); line++ {
		text := strings.TrimSpace(scanner.Text())
		if text == "" || strings.HasPrefix(text, "#") {
			continue
		}
		name, value, found := strings.Cut(text, "=")
		name = strings.TrimSpace(name)
		if !found || (name != EnvKeys && name != EnvIndexKey) {
			return nil, invalid(ErrInvalidKey, "key file %s line %d: want %s=... or %s=...", path, line, EnvKeys, EnvIndexKey)
		}
		if _, dup := values[name]; dup {
			return nil, invalid(ErrInvalidKey, "key file %s line %d: %s is set twice", path, line, name)
		}
		values[name] = value
	}
	if err := scanner.Err(); err != nil {
		return nil, fmt.Errorf("tokenvault: read key file %s: %w", path, err)
	}

	for _, name := range []string{EnvKeys, EnvIndexKey} {
		if _, ok := values[name]; !ok {
			return nil, invalid(ErrInvalidKey, "key file %s has no %s line", path, name)
		}
	}
	kr, err := ParseKeyRing(values[EnvKeys], values[EnvIndexKey])
	if err != nil {
		return nil, fmt.Errorf("key file %s: %w", path, err)
	}
	return kr, nil
}

// KeyFile returns the key ring in the format LoadKeyFile reads. It is the one
// method that reveals the keys: write its result only to a file with mode
// 0600 or to a secret manager.
func (k *KeyRing) KeyFile() []byte {
	var b bytes.Buffer
	b.WriteString("# tokenvault keys. Anyone with this file can read every value in the vault.\n")
	b.WriteString("# Keep it secret (mode 0600), away from the database, and backed up.\n")

	encoded := make([]string, len(k.r.keys))
	for i, key := range k.r.keys {
		encoded[i] = key.Encode()
	}
	fmt.Fprintf(&b, "%s=%s\n", EnvKeys, strings.Join(encoded, ","))
	fmt.Fprintf(&b, "%s=%s\n", EnvIndexKey, fernetEncode(k.r.index))
	return b.Bytes()
}

// WriteKeyFile writes the key ring to a new file at path with mode 0600. It
// fails with an error wrapping fs.ErrExist if the file exists, so that it
// never overwrites keys. The file appears complete or not at all: it is
// written and synced under a temporary name in the same directory, then
// linked to path.
func (k *KeyRing) WriteKeyFile(path string) error {
	dir := filepath.Dir(path)
	f, err := os.CreateTemp(dir, ".tokenvault-key-*")
	if err != nil {
		// Drop the temporary file name, which the caller does not know.
		var pathErr *fs.PathError
		if errors.As(err, &pathErr) {
			err = pathErr.Err
		}
		if errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("tokenvault: create key file %s: the folder %s does not exist: create it first: %w", path, dir, err)
		}
		return fmt.Errorf("tokenvault: create key file %s: %w", path, err)
	}
	tmp := f.Name()
	defer os.Remove(tmp)

	// CreateTemp makes the file with mode 0600 on Unix.
	_, err = f.Write(k.KeyFile())
	if err == nil {
		err = f.Sync()
	}
	if closeErr := f.Close(); err == nil {
		err = closeErr
	}
	if err != nil {
		return fmt.Errorf("tokenvault: write key file %s: %w", path, err)
	}

	// Link fails if path exists, which rename would silently replace.
	if err := os.Link(tmp, path); err != nil {
		var linkErr *os.LinkError
		if errors.As(err, &linkErr) {
			err = linkErr.Err
		}
		return fmt.Errorf("tokenvault: create key file %s: %w", path, err)
	}
	return nil
}
