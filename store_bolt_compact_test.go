package tokenvault

import (
	"bytes"
	"context"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"testing"
)

// TestCompactRemovesClosedCiphertext checks that a closed token's ciphertext,
// which bbolt keeps in a free page after the close, is gone from the file
// after Compact, and that the other records survive it.
func TestCompactRemovesClosedCiphertext(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "vault.db")
	keys, _ := GenerateKeyRing()
	v, err := Open(path, keys)
	if err != nil {
		t.Fatalf("Open err = %v", err)
	}
	defer v.Close()

	kept, _ := v.TokenizeCard(ctx, "5555555555554444")
	closed, _ := v.TokenizeCard(ctx, visaTest)
	rec, err := v.get(ctx, closed)
	if err != nil {
		t.Fatalf("store Get err = %v", err)
	}
	if err := v.CloseToken(ctx, closed); err != nil {
		t.Fatalf("CloseToken err = %v", err)
	}
	if !fileContains(t, path, rec.Ciphertext) {
		t.Fatal("before Compact the file no longer holds the closed ciphertext, so this test cannot show that Compact removes it")
	}

	if err := v.Compact(ctx); err != nil {
		t.Fatalf("Compact err = %v", err)
	}
	if fileContains(t, path, rec.Ciphertext) {
		t.Error("after Compact the file still holds the closed token's ciphertext")
	}
	if got, err := v.Detokenize(ctx, kept); err != nil || string(got) != "5555555555554444" {
		t.Errorf("Detokenize(kept) after Compact err = %v, value matches = %t", err, string(got) == "5555555555554444")
	}
	if _, err := v.Detokenize(ctx, closed); !errors.Is(err, ErrClosed) {
		t.Errorf("Detokenize(closed) after Compact err = %v, want ErrClosed", err)
	}
	if _, err := v.TokenizeCard(ctx, "4242424242424242"); err != nil {
		t.Errorf("TokenizeCard after Compact err = %v", err)
	}
}

// TestCompactAfterRewrap checks that the ciphertexts under a retired key are
// gone from the file after Rewrap and Compact.
func TestCompactAfterRewrap(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "vault.db")
	old, _ := GenerateKeyRing()
	v, _ := Open(path, old)
	var oldCiphertexts [][]byte
	for range 50 {
		token, _ := v.Tokenize(ctx, []byte("account 0123456789"))
		rec, _ := v.store.Get(ctx, token)
		oldCiphertexts = append(oldCiphertexts, rec.Ciphertext)
	}
	v.Close()

	v, err := Open(path, rotateKeys(t, old))
	if err != nil {
		t.Fatalf("Open err = %v", err)
	}
	defer v.Close()
	if _, err := v.Rewrap(ctx, &RewrapOptions{RetireKeys: true}); err != nil {
		t.Fatalf("Rewrap err = %v", err)
	}
	if err := v.Compact(ctx); err != nil {
		t.Fatalf("Compact err = %v", err)
	}
	for i, ct := range oldCiphertexts {
		if fileContains(t, path, ct) {
			t.Fatalf("after Rewrap and Compact the file still holds old ciphertext %d", i)
		}
	}
}

func TestCompactMemoryStoreAndClosed(t *testing.T) {
	ctx := context.Background()
	keys, _ := GenerateKeyRing()
	v, _ := New(NewMemoryStore(), keys)
	if err := v.Compact(ctx); err != nil {
		t.Errorf("Compact on MemoryStore err = %v, want nil", err)
	}
	v.Close()
	if err := v.Compact(ctx); !errors.Is(err, ErrVaultClosed) {
		t.Errorf("Compact after Close err = %v, want ErrVaultClosed", err)
	}
}

func fileContains(t *testing.T, path string, b []byte) bool {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("read %s: %v", path, err)
	}
	return bytes.Contains(data, b)
}

// TestCompactLeftoversRemoved checks that opening a store removes the new
// file of a Compact whose process ended, and nothing else.
func TestCompactLeftoversRemoved(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "vault.db")
	leftover := filepath.Join(dir, "vault.db.compact-123456")
	other := filepath.Join(dir, "other.db.compact-123456")
	archive := filepath.Join(dir, "vault.db.compact-archive")
	for _, name := range []string{leftover, other, archive} {
		if err := os.WriteFile(name, []byte("copy"), 0o600); err != nil {
			t.Fatal(err)
		}
	}

	s := openStoreForTest(t, path)
	defer s.Close()

	if _, err := os.Stat(leftover); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("Stat of the leftover compact file err = %v, want fs.ErrNotExist", err)
	}
	for _, name := range []string{other, archive} {
		if _, err := os.Stat(name); err != nil {
			t.Errorf("Stat of %s err = %v, want it kept", filepath.Base(name), err)
		}
	}
}

// TestCompactThroughSymlink checks that a store opened through a symbolic
// link compacts the file that the link names, and keeps the link.
func TestCompactThroughSymlink(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	target := filepath.Join(dir, "data", "vault.db")
	if err := os.Mkdir(filepath.Dir(target), 0o700); err != nil {
		t.Fatal(err)
	}
	link := filepath.Join(dir, "vault.db")
	if err := os.Symlink(target, link); err != nil {
		t.Skipf("symbolic links: %v", err)
	}

	s := openStoreForTest(t, link)
	if err := s.Create(ctx, mergeTestRecord(1)); err != nil {
		t.Fatal(err)
	}
	if err := s.Compact(ctx); err != nil {
		t.Fatalf("Compact err = %v", err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}

	info, err := os.Lstat(link)
	if err != nil {
		t.Fatal(err)
	}
	if info.Mode()&os.ModeSymlink == 0 {
		t.Errorf("after Compact, %s is a %v, want the symbolic link", link, info.Mode().Type())
	}
	if _, err := os.Stat(target + lockSuffix); err != nil {
		t.Errorf("lock file beside the target: %v", err)
	}
	reopened := openStoreForTest(t, target)
	defer reopened.Close()
	if _, err := reopened.Get(ctx, mergeTestRecord(1).Token); err != nil {
		t.Errorf("Get after Compact through the link: %v", err)
	}
}

// openStoreForTest opens the BoltStore at path with the default options, or
// ends the test.
func openStoreForTest(t *testing.T, path string) *BoltStore {
	t.Helper()
	s, err := OpenBoltStore(path, nil)
	if err != nil {
		t.Fatal(err)
	}
	return s
}
