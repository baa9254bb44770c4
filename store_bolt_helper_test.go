package tokenvault_test

import (
	"bytes"
	"crypto/rand"
	"crypto/sha256"
	"fmt"
	"os"
	"runtime/pprof"
	"strings"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/tokenvault/tokenvault"
)

// openTestBolt opens a BoltStore at path. Its cleanup closes the store and
// runs bbolt's consistency check on the file.
func openTestBolt(t *testing.T, path string) *tokenvault.BoltStore {
	t.Helper()
	return openTestBoltWith(t, path, nil)
}

// openTestBoltWith is openTestBolt with options.
func openTestBoltWith(t *testing.T, path string, opts *tokenvault.BoltOptions) *tokenvault.BoltStore {
	t.Helper()
	s, err := tokenvault.OpenBoltStore(path, opts)
	if err != nil {
		t.Fatalf("OpenBoltStore(%q) err = %v, want nil", path, err)
	}
	t.Cleanup(func() {
		closeTestBolt(t, s)
		checkBoltFile(t, path)
	})
	return s
}

// closeTestBolt closes s and fails the test if Close fails or blocks for 10
// seconds, which happens when a read transaction never ends.
func closeTestBolt(t *testing.T, s *tokenvault.BoltStore) {
	t.Helper()
	done := make(chan error, 1)
	go func() { done <- s.Close() }()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("Close(%q) err = %v, want nil", s.Path(), err)
		}
	case <-time.After(10 * time.Second):
		t.Errorf("Close(%q) did not return within 10s: a transaction is still open", s.Path())
	}
}

// checkBoltFile runs bbolt's consistency check (tx.Check) on the closed file
// at path. The check reports pages that are unreachable, reachable twice,
// both free and in use, or keys out of order.
func checkBoltFile(t *testing.T, path string) {
	t.Helper()
	db, err := bolt.Open(path, 0o600, &bolt.Options{ReadOnly: true, Timeout: time.Second})
	if err != nil {
		t.Errorf("bolt.Open(%q) for the consistency check err = %v, want nil", path, err)
		return
	}
	defer db.Close()

	err = db.View(func(tx *bolt.Tx) error {
		for err := range tx.Check() {
			t.Errorf("bbolt consistency check of %s: %v", path, err)
		}
		return nil
	})
	if err != nil {
		t.Errorf("consistency check of %s err = %v, want nil", path, err)
	}
}

// openBoltWithin calls OpenBoltStore with the lock timeout and fails the test
// if the call panics or has not returned after limit. A store that opens is
// closed in the test's cleanup.
func openBoltWithin(t *testing.T, path string, lockTimeout, limit time.Duration) (*tokenvault.BoltStore, error) {
	t.Helper()
	type result struct {
		s     *tokenvault.BoltStore
		err   error
		panic any
	}
	done := make(chan result, 1)
	go func() {
		defer func() {
			if p := recover(); p != nil {
				done <- result{panic: p}
			}
		}()
		s, err := tokenvault.OpenBoltStore(path, &tokenvault.BoltOptions{LockTimeout: lockTimeout})
		done <- result{s: s, err: err}
	}()

	select {
	case r := <-done:
		if r.panic != nil {
			t.Fatalf("OpenBoltStore(%q) panicked: %v", path, r.panic)
		}
		if r.s != nil {
			t.Cleanup(func() { closeTestBolt(t, r.s) })
		}
		return r.s, r.err
	case <-time.After(limit):
		t.Fatalf("OpenBoltStore(%q) with lock timeout %s has not returned after %s", path, lockTimeout, limit)
		return nil, nil
	}
}

// fileHash returns the SHA-256 of the file at path.
func fileHash(t *testing.T, path string) [sha256.Size]byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return sha256.Sum256(b)
}

// goroutineStacks returns the stacks of all goroutines, for a test that
// gives up waiting on a suspected deadlock.
func goroutineStacks() string {
	var buf bytes.Buffer
	pprof.Lookup("goroutine").WriteTo(&buf, 1)
	return buf.String()
}

func randomTestBytes(n int) []byte {
	b := make([]byte, n)
	rand.Read(b)
	return b
}

// newTestToken returns a new opaque token with 128 random bits.
func newTestToken() string {
	return fmt.Sprintf("tok_%x", randomTestBytes(16))
}

// newBoltRecord returns an active record under token with random 32-byte
// index fields and a random ciphertext of size bytes. The bbolt tests need
// no real encryption.
func newBoltRecord(token string, size int) *tokenvault.Record {
	created := time.Now().UTC().Truncate(time.Microsecond)
	return &tokenvault.Record{
		Token: token,
		State: tokenvault.StateActive,
		Metadata: tokenvault.Metadata{
			Kind:          tokenvault.KindData,
			Format:        tokenvault.FormatOpaque,
			Deterministic: true,
			Scope:         "bolt-test",
			Created:       created,
			Updated:       created,
		},
		KeyID:            "key-1",
		Ciphertext:       randomTestBytes(size),
		Fingerprint:      randomTestBytes(32),
		DeterministicKey: randomTestBytes(32),
	}
}

// wantErrorMentions fails the test unless the message of err contains every
// one of words.
func wantErrorMentions(t *testing.T, call string, err error, words ...string) {
	t.Helper()
	for _, w := range words {
		if !strings.Contains(err.Error(), w) {
			t.Errorf("%s err = %q, want a message that mentions %q", call, err, w)
		}
	}
}
