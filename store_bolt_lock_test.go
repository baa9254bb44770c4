//go:build unix

package tokenvault

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"
)

// TestBoltLockOpenWaitsForCompact checks that a store opened while another
// one compacts the file waits for the other's Close, and then writes to the
// new file. bbolt's own lock is released while Compact replaces the file, so
// a second opener that got it then wrote to the replaced file, and its
// acknowledged record was lost.
func TestBoltLockOpenWaitsForCompact(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "vault.db")
	first := openStoreForTest(t, path)
	for i := range 100 {
		if err := first.Create(ctx, mergeTestRecord(i)); err != nil {
			t.Fatal(err)
		}
	}

	type opened struct {
		at  time.Time
		err error
	}
	second := make(chan opened, 1)
	go func() {
		s, err := OpenBoltStore(path, &BoltOptions{LockTimeout: 30 * time.Second})
		if err == nil {
			err = s.Create(ctx, mergeTestRecord(1000))
			if closeErr := s.Close(); err == nil {
				err = closeErr
			}
		}
		second <- opened{at: time.Now(), err: err}
	}()
	time.Sleep(200 * time.Millisecond) // the second open is waiting by now

	if err := first.Compact(ctx); err != nil {
		t.Fatalf("Compact err = %v", err)
	}
	time.Sleep(200 * time.Millisecond)
	closed := time.Now()
	if err := first.Close(); err != nil {
		t.Fatalf("Close err = %v", err)
	}

	got := <-second
	if got.err != nil {
		t.Fatalf("second store: %v", got.err)
	}
	if got.at.Before(closed) {
		t.Errorf("the second store was opened and closed before the first one closed")
	}
	reopened := openStoreForTest(t, path)
	defer reopened.Close()
	if _, err := reopened.Get(ctx, mergeTestRecord(1000).Token); err != nil {
		t.Errorf("Get of the second store's record: %v, want it in the file", err)
	}
	if _, err := reopened.Get(ctx, mergeTestRecord(99).Token); err != nil {
		t.Errorf("Get of the first store's record: %v", err)
	}
}

// TestBoltLockHeldAcrossReopen checks that the lock file stays locked while
// the store reopens its file, and is released by Close.
func TestBoltLockHeldAcrossReopen(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "vault.db")
	s := openStoreForTest(t, path)
	s.reopenAfter = 1
	for i := range 10 {
		if err := s.Create(ctx, mergeTestRecord(i)); err != nil {
			t.Fatal(err)
		}
	}
	if s.reopens == 0 {
		t.Fatal("the store never reopened its file")
	}

	if lockFree(t, path) {
		t.Errorf("the lock file is free after %d reopens of an open store", s.reopens)
	}
	if _, err := OpenBoltStore(path, &BoltOptions{LockTimeout: 100 * time.Millisecond}); !errors.Is(err, ErrLocked) {
		t.Errorf("second OpenBoltStore err = %v, want ErrLocked", err)
	}

	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if !lockFree(t, path) {
		t.Errorf("the lock file is still locked after Close")
	}
}

// lockFree reports whether the lock file of the database at path can be
// locked from a new open file.
func lockFree(t *testing.T, path string) bool {
	t.Helper()
	f, err := os.Open(path + lockSuffix)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	free, err := tryLock(f)
	if err != nil {
		t.Fatal(err)
	}
	if free {
		unlock(f)
	}
	return free
}

// TestBoltLockFileReadableByAll checks that the lock file is readable by
// every user under a umask of 077, so that a store of another user can take
// the lock.
func TestBoltLockFileReadableByAll(t *testing.T) {
	old := syscall.Umask(0o077)
	defer syscall.Umask(old)

	path := filepath.Join(t.TempDir(), "vault.db")
	s := openStoreForTest(t, path)
	defer s.Close()

	info, err := os.Stat(path + lockSuffix)
	if err != nil {
		t.Fatal(err)
	}
	if perm := info.Mode().Perm(); perm != 0o644 {
		t.Errorf("lock file mode = %#o, want 0644", perm)
	}
}
