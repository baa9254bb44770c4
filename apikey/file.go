package apikey

import (
	"crypto/subtle"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"slices"
	"sync/atomic"
	"time"
)

// reloadInterval is the minimum time between two checks by Authenticate of
// whether the file changed.
const reloadInterval = time.Second

// File is a file of API keys. Its methods are safe for concurrent use, and
// several processes may use one file: the command line adds and revokes keys
// while the server authenticates, and the server sees the change within a
// second.
type File struct {
	path     string
	lockPath string

	// stat is os.Stat, replaced by tests that count calls.
	stat func(path string) (fs.FileInfo, error)

	// epoch is the start of the monotonic clock that nextCheck counts on.
	epoch time.Time
	// nextCheck is the time since epoch, in nanoseconds, from which on the
	// next Authenticate checks whether the file changed.
	nextCheck atomic.Int64

	state atomic.Pointer[fileState]
}

// fileState is the outcome of the last read of a File's file.
type fileState struct {
	keys *keySet // nil when err is set
	err  error   // read or validation error, while which no secret is accepted
}

// Open returns the key file at path; the file is created by the first Create.
// Open reads the file if it exists, and fails if it cannot be read, is not
// valid, or has a mode that lets group or other users read or write it.
//
// Writers lock the file PATH.lock beside it, which is created with mode 0600
// and never removed.
func Open(path string) (*File, error) {
	if path == "" {
		return nil, errors.New("apikey: the API key file path is empty")
	}
	keys, err := readKeyFile(path)
	if err != nil {
		return nil, err
	}

	f := &File{path: path, lockPath: path + ".lock", stat: os.Stat, epoch: time.Now()}
	f.state.Store(&fileState{keys: keys})
	f.nextCheck.Store(int64(reloadInterval))
	return f, nil
}

// Path returns the path of the key file.
func (f *File) Path() string { return f.path }

// Create adds a key with the roles and returns its secret, which is shown
// only now: the file keeps its SHA-256 hash.
//
// Create fails with an error wrapping ErrInvalid if the name or a role is
// invalid; see ErrInvalid. Roles are stored in the order of Roles() without
// repeats.
func (f *File) Create(name string, roles []Role) (secret string, key Key, err error) {
	if err := validateName(name); err != nil {
		return "", Key{}, err
	}
	roles, err = normalizeRoles(roles)
	if err != nil {
		return "", Key{}, err
	}

	err = f.update(func(contents *fileContents) error {
		id, err := unusedID(contents)
		if err != nil {
			return err
		}
		secret, err = newSecret(id)
		if err != nil {
			return err
		}

		hash := hashSecret(secret)
		record := keyRecord{ID: id, Name: name, Roles: roles, SHA256: hex.EncodeToString(hash[:]), Created: now()}
		contents.Keys = append(contents.Keys, record)
		key = record.key()
		return nil
	})
	if err != nil {
		return "", Key{}, err
	}
	return secret, key, nil
}

// unusedID returns a random key id that no key in contents has. With 2^32
// ids, a collision is rare, and ten in a row mean a broken random source.
func unusedID(contents *fileContents) (string, error) {
	for range 10 {
		id, err := newID()
		if err != nil {
			return "", err
		}
		if !slices.ContainsFunc(contents.Keys, func(r keyRecord) bool { return r.ID == id }) {
			return id, nil
		}
	}
	return "", errors.New("apikey: every random key id drawn is already in use")
}

// List returns every key, revoked ones included, oldest first. It reads the
// file, so it returns changes by other processes at once.
func (f *File) List() ([]Key, error) {
	keys, err := readKeyFile(f.path)
	if err != nil {
		return nil, err
	}

	list := make([]Key, len(keys.records))
	for i, r := range keys.records {
		list[i] = r.key()
	}
	slices.SortStableFunc(list, func(a, b Key) int { return a.Created.Compare(b.Created) })
	return list, nil
}

// Revoke revokes the key id, or returns ErrNotFound. Revoking a revoked key
// succeeds and keeps the first revocation time. Other File values, in this
// process or another, reject the key within about a second; this one at once.
func (f *File) Revoke(id string) error {
	// The argument is not echoed unless it is a well-formed id, because a
	// user may pass a whole secret by mistake.
	if !validID(id) {
		return fmt.Errorf("%w: a key id is %d lowercase hexadecimal digits, the part after %q in a secret", ErrNotFound, idLen, secretPrefix)
	}

	return f.update(func(contents *fileContents) error {
		i := slices.IndexFunc(contents.Keys, func(r keyRecord) bool { return r.ID == id })
		switch {
		case i < 0:
			return fmt.Errorf("%w: %s", ErrNotFound, id)
		case !contents.Keys[i].Revoked.IsZero():
			return errUnchanged
		}
		contents.Keys[i].Revoked = now()
		return nil
	})
}

// errUnchanged is returned by the modify function of update when it changed
// nothing, so there is nothing to write.
var errUnchanged = errors.New("apikey: no change")

// update applies modify to the file's contents and writes the result, while
// holding the lock file, so that concurrent writers in any process apply
// their changes one after the other and none is lost.
func (f *File) update(modify func(*fileContents) error) error {
	unlock, err := lockFile(f.lockPath)
	if err != nil {
		return err
	}
	defer unlock()

	keys, err := readKeyFile(f.path)
	if err != nil {
		return err
	}
	contents := fileContents{Version: fileVersion, Keys: slices.Clone(keys.records)}
	err = modify(&contents)
	if errors.Is(err, errUnchanged) {
		return nil
	}
	if err != nil {
		return err
	}
	if err := writeKeyFile(f.path, contents); err != nil {
		return err
	}

	// Reading the file back validates what was written, and records the
	// status of the new file, so that Authenticate does not read it again.
	keys, err = readKeyFile(f.path)
	f.state.Store(&fileState{keys: keys, err: err})
	return err
}

// Authenticate returns the valid key whose secret is secret, comparing hashes
// in constant time, or ErrUnauthorized.
//
// Authenticate does the same work for a wrong secret, an unknown id and a
// revoked key: it hashes the secret and compares the hash with the key's, or
// with a dummy hash when no key has the id. Input that does not have the
// layout of a secret is rejected before any hashing.
//
// Authenticate reads a copy of the file kept in memory. At most once per
// reloadInterval (a second), a call checks the file's inode, size, mode and
// modification time, and reads the file again if any changed. A missing file
// holds no keys. If the file cannot be read or is invalid, Authenticate
// returns that error, which is not ErrUnauthorized, for every well-formed
// secret until a later check reads a valid file.
func (f *File) Authenticate(secret string) (Key, error) {
	id, ok := secretID(secret)
	if !ok {
		return Key{}, ErrUnauthorized
	}
	state := f.current()
	if state.err != nil {
		return Key{}, state.err
	}

	hash := hashSecret(secret)
	entry, found := state.keys.byID[id]
	want := &dummyHash
	if found {
		want = &entry.hash
	}
	match := subtle.ConstantTimeCompare(hash[:], want[:]) == 1
	if !match || !found || !entry.key.Revoked.IsZero() {
		return Key{}, ErrUnauthorized
	}

	key := entry.key
	key.Roles = slices.Clone(key.Roles)
	return key, nil
}

// current returns the state to authenticate with, after checking whether the
// file changed if the last check is reloadInterval old. Only the caller that
// wins the compare-and-swap of nextCheck checks. Others use the state they
// find, so that a slow disk delays one request, not all.
func (f *File) current() *fileState {
	// time.Since reads the monotonic clock, which Linux serves without a
	// system call (vDSO).
	now := int64(time.Since(f.epoch))
	next := f.nextCheck.Load()
	if now >= next && f.nextCheck.CompareAndSwap(next, now+int64(reloadInterval)) {
		f.refresh()
	}
	return f.state.Load()
}

// refresh reads the file again if it changed since the current state was
// read, or if reading it failed then.
func (f *File) refresh() {
	old := f.state.Load()
	info, err := f.stat(f.path)
	if errors.Is(err, fs.ErrNotExist) {
		info, err = nil, nil
	}
	if err == nil && old.err == nil && old.keys.sameFile(info) {
		return
	}

	keys, err := readKeyFile(f.path)
	// A Create or Revoke of this File may have stored a newer state while
	// the file was read; keep that one.
	f.state.CompareAndSwap(old, &fileState{keys: keys, err: err})
}

// now returns the time stored for a creation or revocation.
func now() time.Time { return time.Now().UTC().Truncate(time.Second) }
