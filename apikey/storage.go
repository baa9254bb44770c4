package apikey

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"time"
)

// fileVersion is the version of the file format that this package writes and
// reads. A file of another version is rejected.
const fileVersion = 1

// fileContents is the JSON document of a key file.
type fileContents struct {
	Version int         `json:"version"`
	Keys    []keyRecord `json:"keys"`
}

// keyRecord is one key in the file.
type keyRecord struct {
	ID      string    `json:"id"`
	Name    string    `json:"name"`
	Roles   []Role    `json:"roles"`
	SHA256  string    `json:"sha256"` // hex SHA-256 of the whole secret, prefix and id included
	Created time.Time `json:"created"`
	Revoked time.Time `json:"revoked,omitzero"`
}

func (r keyRecord) key() Key {
	return Key{ID: r.ID, Name: r.Name, Roles: slices.Clone(r.Roles), Created: r.Created, Revoked: r.Revoked}
}

// keySet is the parsed content of the key file at one moment.
type keySet struct {
	records []keyRecord
	byID    map[string]*keyEntry

	// info is the file's status from the open file that the records were
	// read from, or nil if the file did not exist.
	info fs.FileInfo
}

// keyEntry is a key as Authenticate needs it.
type keyEntry struct {
	hash [sha256.Size]byte
	key  Key // Authenticate returns copies of Roles, never this slice
}

// sameFile reports whether the file now at the path, described by info (nil
// if it does not exist), is the one the set was read from, with the same
// mode. Writers replace the file by rename, so a write changes the inode, and
// it changes the size too because every write adds a key or a revocation
// time. The modification time catches edits in place.
func (s *keySet) sameFile(info fs.FileInfo) bool {
	if s.info == nil || info == nil {
		return s.info == nil && info == nil
	}
	return os.SameFile(s.info, info) &&
		s.info.Size() == info.Size() &&
		s.info.ModTime().Equal(info.ModTime()) &&
		s.info.Mode() == info.Mode()
}

// readKeyFile reads and validates the key file at path. A missing file is an
// empty set of keys.
func readKeyFile(path string) (*keySet, error) {
	f, err := os.Open(path)
	if errors.Is(err, fs.ErrNotExist) {
		return &keySet{byID: map[string]*keyEntry{}}, nil
	}
	if err != nil {
		return nil, fmt.Errorf("apikey: open API key file: %w", err)
	}
	defer f.Close()

	info, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("apikey: API key file %s: %w", path, err)
	}
	if !info.Mode().IsRegular() {
		return nil, fmt.Errorf("apikey: API key file %s is not a regular file", path)
	}
	if perm := info.Mode().Perm(); runtime.GOOS != "windows" && perm&0o077 != 0 {
		return nil, fmt.Errorf("apikey: API key file %s has mode %#o, which lets other users read or change it; run chmod 600 %s", path, perm, path)
	}

	data, err := io.ReadAll(f)
	if err != nil {
		return nil, fmt.Errorf("apikey: read API key file %s: %w", path, err)
	}
	set, err := parseKeyFile(data)
	if err != nil {
		return nil, fmt.Errorf("apikey: API key file %s: %w", path, err)
	}
	set.info = info
	return set, nil
}

// parseKeyFile decodes and validates the JSON of a key file. A hand edit that
// breaks a rule that Create enforces is an error, not a skipped key, so that
// a typo cannot quietly change who may do what.
func parseKeyFile(data []byte) (*keySet, error) {
	var contents fileContents
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&contents); err != nil {
		return nil, fmt.Errorf("invalid JSON: %w", err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, errors.New("invalid JSON: data after the top-level object")
	}
	if contents.Version != fileVersion {
		return nil, fmt.Errorf("format version is %d, want %d", contents.Version, fileVersion)
	}

	set := &keySet{records: contents.Keys, byID: make(map[string]*keyEntry, len(contents.Keys))}
	for i, r := range contents.Keys {
		entry, err := parseRecord(r)
		if err != nil {
			return nil, fmt.Errorf("key %d: %w", i+1, err)
		}
		if _, dup := set.byID[r.ID]; dup {
			return nil, fmt.Errorf("key %d: id %s is used twice", i+1, r.ID)
		}
		set.byID[r.ID] = entry
	}
	return set, nil
}

func parseRecord(r keyRecord) (*keyEntry, error) {
	if !validID(r.ID) {
		return nil, fmt.Errorf("id %q is not %d lowercase hexadecimal digits", r.ID, idLen)
	}
	if err := validateName(r.Name); err != nil {
		return nil, fmt.Errorf("id %s: %w", r.ID, err)
	}
	roles, err := normalizeRoles(r.Roles)
	if err != nil {
		return nil, fmt.Errorf("id %s: %w", r.ID, err)
	}
	if len(roles) != len(r.Roles) {
		return nil, fmt.Errorf("id %s: a role is listed twice", r.ID)
	}
	if r.Created.IsZero() {
		return nil, fmt.Errorf("id %s: created time is missing", r.ID)
	}

	// hex.Decode panics when the output does not fit, so check the length first.
	entry := &keyEntry{key: r.key()}
	badHash := len(r.SHA256) != hex.EncodedLen(sha256.Size)
	if !badHash {
		_, err := hex.Decode(entry.hash[:], []byte(r.SHA256))
		badHash = err != nil
	}
	if badHash {
		return nil, fmt.Errorf("id %s: sha256 is not %d hexadecimal digits", r.ID, hex.EncodedLen(sha256.Size))
	}
	return entry, nil
}

// writeKeyFile replaces the key file at path with contents, atomically: a
// reader sees the old file or the new one, never a part. The new file is
// written and synced under a temporary name in the same directory, renamed
// over path, and the directory is synced so that the rename survives a
// crash.
func writeKeyFile(path string, contents fileContents) error {
	data, err := json.MarshalIndent(contents, "", "  ")
	if err != nil {
		return fmt.Errorf("apikey: encode API key file: %w", err)
	}
	data = append(data, '\n')

	dir := filepath.Dir(path)
	f, err := os.CreateTemp(dir, "."+filepath.Base(path)+".tmp-*")
	if err != nil {
		return fmt.Errorf("apikey: write API key file %s: %w", path, err)
	}
	tmp := f.Name()
	renamed := false
	defer func() {
		if !renamed {
			os.Remove(tmp)
		}
	}()

	// CreateTemp uses mode 0600, but the umask might have removed the owner's
	// write bit, so set the mode explicitly.
	err = f.Chmod(0o600)
	if err == nil {
		_, err = f.Write(data)
	}
	if err == nil {
		err = f.Sync()
	}
	if closeErr := f.Close(); err == nil {
		err = closeErr
	}
	if err != nil {
		return fmt.Errorf("apikey: write API key file %s: %w", path, err)
	}

	if err := os.Rename(tmp, path); err != nil {
		return fmt.Errorf("apikey: replace API key file %s: %w", path, err)
	}
	renamed = true
	if err := syncDir(dir); err != nil {
		return fmt.Errorf("apikey: sync directory of API key file %s: %w", path, err)
	}
	return nil
}
