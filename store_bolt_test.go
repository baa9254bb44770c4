package tokenvault_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	bolt "go.etcd.io/bbolt"
	bolterrors "go.etcd.io/bbolt/errors"

	"github.com/tokenvault/tokenvault"
	"github.com/tokenvault/tokenvault/storetest"
)

func TestBoltStore(t *testing.T) {
	storetest.Run(t, func(t *testing.T) tokenvault.Store {
		return openTestBolt(t, filepath.Join(t.TempDir(), "vault.db"))
	})
}

// TestBoltStoreMerging runs the conformance kit on a store that merges its
// fingerprint log after every new entry, so that merges run beside every
// rule's calls.
func TestBoltStoreMerging(t *testing.T) {
	storetest.Run(t, func(t *testing.T) tokenvault.Store {
		return openTestBoltWith(t, filepath.Join(t.TempDir(), "vault.db"), &tokenvault.BoltOptions{FingerprintMergeAfter: 1})
	})
}

// A second open of a file that is in use must fail with ErrLocked after the
// lock timeout. bbolt's flock conflicts between two opens in one process as
// well as between processes.
func TestBoltLockInProcess(t *testing.T) {
	path := filepath.Join(t.TempDir(), "vault.db")
	first := openTestBolt(t, path)

	start := time.Now()
	_, err := openBoltWithin(t, path, 200*time.Millisecond, 5*time.Second)
	if !errors.Is(err, tokenvault.ErrLocked) {
		t.Fatalf("second OpenBoltStore(%q) err = %v, want ErrLocked", path, err)
	}
	if elapsed := time.Since(start); elapsed < 200*time.Millisecond {
		t.Errorf("second OpenBoltStore(%q) failed after %s, want it to wait for the 200ms lock timeout", path, elapsed)
	}
	wantErrorMentions(t, "second OpenBoltStore", err, path, "locked", "200ms")

	closeTestBolt(t, first)
	if _, err := openBoltWithin(t, path, 200*time.Millisecond, 5*time.Second); err != nil {
		t.Errorf("OpenBoltStore(%q) after Close err = %v, want nil", path, err)
	}
}

// lockHolderEnv names the file that TestBoltLockHolder opens when the test
// binary runs as the child process of TestBoltLockProcess.
const lockHolderEnv = "TOKENVAULT_TEST_LOCK_HOLDER"

const lockHolderToken = "tok_lockholder"

// TestBoltLockHolder is a helper, not a test. TestBoltLockProcess runs the
// test binary again with only this function, which opens the file, creates a
// record and keeps the file locked until the parent kills it.
func TestBoltLockHolder(t *testing.T) {
	path := os.Getenv(lockHolderEnv)
	if path == "" {
		t.Skip("runs only as the child process of TestBoltLockProcess")
	}

	s, err := tokenvault.OpenBoltStore(path, nil)
	if err != nil {
		fmt.Printf("open failed: %v\n", err)
		os.Exit(2)
	}
	if err := s.Create(context.Background(), newBoltRecord(lockHolderToken, 64)); err != nil {
		fmt.Printf("create failed: %v\n", err)
		os.Exit(2)
	}
	fmt.Println("locked")

	// Block until the parent kills this process, or exits and so closes
	// the pipe.
	io.Copy(io.Discard, os.Stdin)
	s.Close()
	os.Exit(0)
}

func TestBoltLockProcess(t *testing.T) {
	path := filepath.Join(t.TempDir(), "vault.db")

	cmd := exec.Command(os.Args[0], "-test.run=^TestBoltLockHolder$", "-test.count=1")
	cmd.Env = append(os.Environ(), lockHolderEnv+"="+path)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatalf("starting the lock holder process: %v", err)
	}
	var waitOnce sync.Once
	var waitErr error
	wait := func() error {
		waitOnce.Do(func() { waitErr = cmd.Wait() })
		return waitErr
	}
	t.Cleanup(func() {
		cmd.Process.Kill()
		stdin.Close()
		wait()
	})
	// holderStderr stops the child first, because exec writes to stderr
	// until Wait returns.
	holderStderr := func() string {
		cmd.Process.Kill()
		wait()
		return stderr.String()
	}

	ready := make(chan string, 1)
	go func() {
		lines := bufio.NewScanner(stdout)
		if !lines.Scan() {
			ready <- "no output"
			return
		}
		ready <- lines.Text()
	}()
	select {
	case line := <-ready:
		if line != "locked" {
			t.Fatalf("lock holder process output %q, want \"locked\"; stderr:\n%s", line, holderStderr())
		}
	case <-time.After(30 * time.Second):
		t.Fatalf("lock holder process did not lock %s within 30s; stderr:\n%s", path, holderStderr())
	}

	_, err = openBoltWithin(t, path, 200*time.Millisecond, 5*time.Second)
	if !errors.Is(err, tokenvault.ErrLocked) {
		t.Fatalf("OpenBoltStore(%q) while another process holds it err = %v, want ErrLocked", path, err)
	}
	wantErrorMentions(t, "OpenBoltStore", err, path, "locked")

	if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatalf("killing the lock holder process: %v", err)
	}
	var exitErr *exec.ExitError
	if err := wait(); !errors.As(err, &exitErr) {
		t.Fatalf("lock holder process Wait() err = %v, want an exit by SIGKILL", err)
	}
	if status, ok := exitErr.Sys().(syscall.WaitStatus); !ok || !status.Signaled() || status.Signal() != syscall.SIGKILL {
		t.Fatalf("lock holder process ended with %v, want an exit by SIGKILL", exitErr)
	}

	// The kernel releases the lock of a killed process, and the record it
	// committed survives.
	s, err := openBoltWithin(t, path, 200*time.Millisecond, 5*time.Second)
	if err != nil {
		t.Fatalf("OpenBoltStore(%q) after the holder was killed err = %v, want nil", path, err)
	}
	if _, err := s.Get(t.Context(), lockHolderToken); err != nil {
		t.Errorf("Get(%q) of the killed process's record err = %v, want nil", lockHolderToken, err)
	}
	closeTestBolt(t, s)
	checkBoltFile(t, path)
}

// growBolt creates count records with ciphertexts of size bytes from 16
// goroutines and returns their tokens. bbolt remaps the file each time it
// outgrows the mapping.
func growBolt(t *testing.T, s *tokenvault.BoltStore, count, size int) []string {
	t.Helper()
	const writers = 16
	tokens := make([]string, count)
	for i := range tokens {
		tokens[i] = newTestToken()
	}

	var wg sync.WaitGroup
	for w := range writers {
		wg.Go(func() {
			for i := w; i < count; i += writers {
				if err := s.Create(t.Context(), newBoltRecord(tokens[i], size)); err != nil {
					t.Errorf("Create(%q) err = %v, want nil", tokens[i], err)
					return
				}
			}
		})
	}
	wg.Wait()
	return tokens
}

func fileSize(t *testing.T, path string) int64 {
	t.Helper()
	info, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	return info.Size()
}

// changeAll updates every record of recs with a new ciphertext and a change
// whose reason is reason, and sets metadata entry "keycheck/<i>" for each.
func changeAll(t *testing.T, s *tokenvault.BoltStore, recs []*tokenvault.Record, reason string) {
	t.Helper()
	for i, rec := range recs {
		_, err := s.Update(t.Context(), rec.Token, func(r *tokenvault.Record) (*tokenvault.Change, error) {
			r.KeyID = tokenvault.KeyID(reason)
			r.Ciphertext = randomTestBytes(512)
			return &tokenvault.Change{From: r.State, To: r.State, Reason: reason, Actor: "tester", Time: r.Created}, nil
		})
		if err != nil {
			t.Fatalf("Update(%q) err = %v, want nil", rec.Token, err)
		}
		if err := s.SetMetadata(t.Context(), fmt.Sprintf("keycheck/%d", i), randomTestBytes(100)); err != nil {
			t.Fatalf("SetMetadata err = %v, want nil", err)
		}
	}
}

// deepCopyRecord returns a copy of rec that shares no bytes with it, strings
// included.
func deepCopyRecord(rec *tokenvault.Record) *tokenvault.Record {
	c := rec.Clone()
	c.Token = strings.Clone(c.Token)
	c.Brand = tokenvault.Brand(strings.Clone(string(c.Brand)))
	c.First6 = strings.Clone(c.First6)
	c.Last4 = strings.Clone(c.Last4)
	c.Scope = strings.Clone(c.Scope)
	c.KeyID = tokenvault.KeyID(strings.Clone(string(c.KeyID)))
	return c
}

// Values read in a bbolt transaction point into the memory map, which bbolt
// replaces when the file grows. Every value a read returns must be copied
// before its transaction ends, or it changes or faults after a remap.
func TestBoltRemapCopies(t *testing.T) {
	path := filepath.Join(t.TempDir(), "vault.db")
	s := openTestBolt(t, path)
	ctx := t.Context()

	// bbolt keeps a bucket of less than a quarter page inline in its parent
	// and copies an unaligned one to the heap, which would hide a missing
	// copy. Twenty records with two changes each, and twenty metadata
	// entries, keep every bucket read below in pages of its own.
	var recs []*tokenvault.Record
	for range 20 {
		rec := newBoltRecord(newTestToken(), 512)
		if err := s.Create(ctx, rec.Clone()); err != nil {
			t.Fatalf("Create(%q) err = %v, want nil", rec.Token, err)
		}
		recs = append(recs, rec)
	}
	for _, reason := range []string{"first", "second"} {
		changeAll(t, s, recs, strings.Repeat(reason, 20))
	}
	// The first token's entries lead the first page of each bucket.
	rec := slices.MinFunc(recs, func(a, b *tokenvault.Record) int { return strings.Compare(a.Token, b.Token) })

	got, err := s.Get(ctx, rec.Token)
	if err != nil {
		t.Fatalf("Get(%q) err = %v, want nil", rec.Token, err)
	}
	_, history, err := s.History(ctx, rec.Token)
	if err != nil {
		t.Fatalf("History(%q) err = %v, want nil", rec.Token, err)
	}
	scanned, err := s.Scan(ctx, "", 100)
	if err != nil {
		t.Fatalf("Scan err = %v, want nil", err)
	}
	byKey, err := s.FindByDeterministicKey(ctx, rec.DeterministicKey)
	if err != nil {
		t.Fatalf("FindByDeterministicKey err = %v, want nil", err)
	}
	tokens, err := s.FindByFingerprint(ctx, rec.Fingerprint)
	if err != nil {
		t.Fatalf("FindByFingerprint err = %v, want nil", err)
	}
	meta, err := s.Metadata(ctx, "")
	if err != nil {
		t.Fatalf("Metadata err = %v, want nil", err)
	}

	// The copies must not share string bytes either, so that a string that
	// points into the map shows a difference.
	wantRec := deepCopyRecord(got)
	var wantHistory []tokenvault.Change
	for _, c := range history {
		c.Reason, c.Actor = strings.Clone(c.Reason), strings.Clone(c.Actor)
		wantHistory = append(wantHistory, c)
	}
	var wantScanned []*tokenvault.Record
	for _, r := range scanned {
		wantScanned = append(wantScanned, deepCopyRecord(r))
	}
	var wantTokens []string
	for _, token := range tokens {
		wantTokens = append(wantTokens, strings.Clone(token))
	}
	wantMeta := make(map[string][]byte)
	for name, value := range meta {
		wantMeta[name] = bytes.Clone(value)
	}

	// The kernel may map the grown file at the old address, where bytes that
	// were not copied would still read the same. Changing every record and
	// metadata entry frees the pages read above, and the writes below reuse
	// them. A record whose token sorts first, with its history, moves the
	// entries read above within their pages. So such bytes change even then.
	early := newBoltRecord("tok_"+strings.Repeat("0", 32), 512)
	if err := s.Create(ctx, early); err != nil {
		t.Fatalf("Create(%q) err = %v, want nil", early.Token, err)
	}
	changeAll(t, s, append([]*tokenvault.Record{early}, recs...), "third")

	// 2,000 records of 4,000 bytes grow the file from 128 KiB to over 8 MiB,
	// so bbolt remaps it at least six times, doubling the map each time.
	before := fileSize(t, path)
	growBolt(t, s, 2000, 4000)
	if after := fileSize(t, path); after < 8<<20 {
		t.Fatalf("file grew from %d to %d bytes, want at least 8 MiB to force remaps", before, after)
	}

	if diff := cmp.Diff(wantRec, got); diff != "" {
		t.Errorf("record from Get changed after remaps (-before +after):\n%s", diff)
	}
	if diff := cmp.Diff(wantScanned, scanned); diff != "" {
		t.Errorf("records from Scan changed after remaps (-before +after):\n%s", diff)
	}
	if diff := cmp.Diff(wantRec, byKey); diff != "" {
		t.Errorf("record from FindByDeterministicKey changed after remaps (-before +after):\n%s", diff)
	}
	if diff := cmp.Diff(wantHistory, history); diff != "" {
		t.Errorf("History changed after remaps (-before +after):\n%s", diff)
	}
	if diff := cmp.Diff(wantTokens, tokens); diff != "" {
		t.Errorf("tokens from FindByFingerprint changed after remaps (-before +after):\n%s", diff)
	}
	if diff := cmp.Diff(wantMeta, meta); diff != "" {
		t.Errorf("Metadata values changed after remaps (-before +after):\n%s", diff)
	}
}

// A read transaction holds bbolt's mmap lock, and a commit that grows the
// file waits for that lock to remap. A method that opened a write
// transaction inside a read transaction would deadlock at the first remap,
// so every read must finish while writers grow the file.
func TestBoltReadDuringGrowth(t *testing.T) {
	path := filepath.Join(t.TempDir(), "vault.db")
	s := openTestBolt(t, path)
	ctx := t.Context()

	var seeded []*tokenvault.Record
	for range 20 {
		rec := newBoltRecord(newTestToken(), 256)
		if err := s.Create(ctx, rec.Clone()); err != nil {
			t.Fatalf("Create(%q) err = %v, want nil", rec.Token, err)
		}
		seeded = append(seeded, rec)
	}
	if err := s.SetMetadata(ctx, "keycheck/key-1", []byte("check")); err != nil {
		t.Fatalf("SetMetadata err = %v, want nil", err)
	}

	writersDone := make(chan struct{})
	var readers sync.WaitGroup
	for r := range 3 {
		readers.Go(func() {
			for i := 0; ; i++ {
				select {
				case <-writersDone:
					return
				default:
				}
				if err := readAll(ctx, s, seeded[(r+i)%len(seeded)]); err != nil {
					t.Error(err)
					return
				}
			}
		})
	}

	allDone := make(chan struct{})
	go func() {
		growBolt(t, s, 1000, 4000)
		close(writersDone)
		readers.Wait()
		close(allDone)
	}()
	select {
	case <-allDone:
	case <-time.After(30 * time.Second):
		t.Fatalf("reads and writes did not finish within 30s, a likely deadlock; goroutines:\n%s", goroutineStacks())
	}
	if size := fileSize(t, path); size < 4<<20 {
		t.Errorf("file has %d bytes after the writes, want at least 4 MiB to force remaps", size)
	}
}

// readAll calls every read method of s for rec and returns an error unless
// each one succeeds and finds rec.
func readAll(ctx context.Context, s *tokenvault.BoltStore, rec *tokenvault.Record) error {
	if _, err := s.Get(ctx, rec.Token); err != nil {
		return fmt.Errorf("Get(%q) during growth err = %v, want nil", rec.Token, err)
	}
	if _, _, err := s.History(ctx, rec.Token); err != nil {
		return fmt.Errorf("History(%q) during growth err = %v, want nil", rec.Token, err)
	}
	if recs, err := s.Scan(ctx, rec.Token, 20); err != nil {
		return fmt.Errorf("Scan(%q, 20) during growth err = %v, want nil", rec.Token, err)
	} else if len(recs) > 0 && recs[0].Token <= rec.Token {
		return fmt.Errorf("Scan(%q, 20) during growth returned %q first, want a later token", rec.Token, recs[0].Token)
	}
	if tokens, err := s.FindByFingerprint(ctx, rec.Fingerprint); err != nil || !slices.Equal(tokens, []string{rec.Token}) {
		return fmt.Errorf("FindByFingerprint during growth = %q, %v, want [%q]", tokens, err, rec.Token)
	}
	if found, err := s.FindByDeterministicKey(ctx, rec.DeterministicKey); err != nil || found.Token != rec.Token {
		return fmt.Errorf("FindByDeterministicKey during growth = %v, %v, want %q", found, err, rec.Token)
	}
	if meta, err := s.Metadata(ctx, "keycheck/"); err != nil || len(meta) != 1 {
		return fmt.Errorf("Metadata(\"keycheck/\") during growth = %d entries, %v, want 1 entry", len(meta), err)
	}
	return nil
}

// Concurrent writes share commits, and a write that fails after it may have
// written (here an Update whose function panics) aborts its batch, so the
// other writes of that batch run again. Creates that collide with stored
// tokens fail in the middle of batches without aborting them. Each fresh
// record must still be stored once, with its index entries once, and the
// colliding and panicking writes must leave nothing.
func TestBoltBatchRetry(t *testing.T) {
	path := filepath.Join(t.TempDir(), "vault.db")
	s := openTestBolt(t, path)
	ctx := t.Context()

	const stored, fresh, group = 60, 180, 3
	var existing []*tokenvault.Record
	for range stored {
		rec := newBoltRecord(newTestToken(), 128)
		if err := s.Create(ctx, rec.Clone()); err != nil {
			t.Fatalf("Create(%q) err = %v, want nil", rec.Token, err)
		}
		existing = append(existing, rec)
	}

	// Fresh records share fingerprints in groups of three, so that a
	// duplicate or lost index entry shows in FindByFingerprint's count.
	var creates []*tokenvault.Record
	fingerprints := make(map[string][]string)
	for i := range fresh {
		rec := newBoltRecord(newTestToken(), 128)
		if i%group != 0 {
			rec.Fingerprint = bytes.Clone(creates[i-1].Fingerprint)
		}
		fingerprints[string(rec.Fingerprint)] = append(fingerprints[string(rec.Fingerprint)], rec.Token)
		creates = append(creates, rec)
	}
	var colliders []*tokenvault.Record
	for _, rec := range existing {
		colliders = append(colliders, newBoltRecord(rec.Token, 128))
	}

	// Interleave colliders with fresh records and start all Creates at
	// once, so that most batches hold both.
	calls := slices.Clone(creates)
	for i, rec := range colliders {
		calls = slices.Insert(calls, min(i*4, len(calls)), rec)
	}
	errs := make([]error, len(calls))
	start := make(chan struct{})
	var wg sync.WaitGroup
	for i, rec := range calls {
		wg.Go(func() {
			<-start
			errs[i] = s.Create(ctx, rec.Clone())
		})
	}
	panicked := make([]bool, len(existing)/4)
	for i := range panicked {
		wg.Go(func() {
			defer func() { panicked[i] = recover() != nil }()
			<-start
			s.Update(ctx, existing[i].Token, func(rec *tokenvault.Record) (*tokenvault.Change, error) {
				rec.Scope = "written by a panicking update"
				panic("update function panics")
			})
		})
	}
	close(start)
	wg.Wait()

	for i, ok := range panicked {
		if !ok {
			t.Errorf("Update(%q) with a panicking function did not panic in the caller", existing[i].Token)
		}
	}

	colliding := make(map[*tokenvault.Record]bool)
	for _, rec := range colliders {
		colliding[rec] = true
	}
	for i, rec := range calls {
		switch {
		case colliding[rec] && !errors.Is(errs[i], tokenvault.ErrTokenExists):
			t.Errorf("Create(%q) of a stored token err = %v, want ErrTokenExists", rec.Token, errs[i])
		case !colliding[rec] && errs[i] != nil:
			t.Errorf("Create(%q) err = %v, want nil", rec.Token, errs[i])
		}
	}

	for _, rec := range creates {
		got, err := s.Get(ctx, rec.Token)
		if err != nil {
			t.Errorf("Get(%q) err = %v, want nil", rec.Token, err)
			continue
		}
		if diff := cmp.Diff(rec, got); diff != "" {
			t.Errorf("Get(%q) mismatch (-want +got):\n%s", rec.Token, diff)
		}
		if found, err := s.FindByDeterministicKey(ctx, rec.DeterministicKey); err != nil || found.Token != rec.Token {
			t.Errorf("FindByDeterministicKey(%x) = %v, %v, want %q", rec.DeterministicKey, found, err, rec.Token)
		}
	}
	for _, fingerprint := range slices.Sorted(maps.Keys(fingerprints)) {
		want := slices.Sorted(slices.Values(fingerprints[fingerprint]))
		got, err := s.FindByFingerprint(ctx, []byte(fingerprint))
		if err != nil || !slices.Equal(got, want) {
			t.Errorf("FindByFingerprint(%x) = %q, %v, want %q once each", fingerprint, got, err, want)
		}
	}
	for i, rec := range colliders {
		got, err := s.Get(ctx, rec.Token)
		if err != nil {
			t.Errorf("Get(%q) err = %v, want nil", rec.Token, err)
		} else if diff := cmp.Diff(existing[i], got); diff != "" {
			t.Errorf("Get(%q) after a colliding Create mismatch (-want +got):\n%s", rec.Token, diff)
		}
		if tokens, err := s.FindByFingerprint(ctx, rec.Fingerprint); err != nil || len(tokens) != 0 {
			t.Errorf("FindByFingerprint of a rejected record = %q, %v, want no tokens", tokens, err)
		}
		if found, err := s.FindByDeterministicKey(ctx, rec.DeterministicKey); !errors.Is(err, tokenvault.ErrNotFound) {
			t.Errorf("FindByDeterministicKey of a rejected record = %v, %v, want ErrNotFound", found, err)
		}
	}

	all, err := s.Scan(ctx, "", stored+fresh+1)
	if err != nil || len(all) != stored+fresh {
		t.Errorf("Scan found %d records, %v, want %d", len(all), err, stored+fresh)
	}
}

// rawBolt opens path with bbolt itself, runs fn in a write transaction and
// closes the file.
func rawBolt(t *testing.T, path string, fn func(tx *bolt.Tx) error) {
	t.Helper()
	db, err := bolt.Open(path, 0o600, &bolt.Options{Timeout: time.Second})
	if err != nil {
		t.Fatalf("bolt.Open(%q) err = %v, want nil", path, err)
	}
	if err := db.Update(fn); err != nil {
		t.Fatalf("bolt update of %s err = %v, want nil", path, err)
	}
	if err := db.Close(); err != nil {
		t.Fatalf("bolt close of %s err = %v, want nil", path, err)
	}
}

// newVaultFile creates a closed vault file with one record and returns its path
// and the record's token.
func newVaultFile(t *testing.T) (path, token string) {
	t.Helper()
	path = filepath.Join(t.TempDir(), "vault.db")
	s, err := tokenvault.OpenBoltStore(path, nil)
	if err != nil {
		t.Fatalf("OpenBoltStore(%q) err = %v, want nil", path, err)
	}
	rec := newBoltRecord(newTestToken(), 64)
	if err := s.Create(t.Context(), rec); err != nil {
		t.Fatalf("Create(%q) err = %v, want nil", rec.Token, err)
	}
	if err := s.Close(); err != nil {
		t.Fatalf("Close err = %v, want nil", err)
	}
	return path, rec.Token
}

func putSchemaVersion(version uint32) func(tx *bolt.Tx) error {
	return func(tx *bolt.Tx) error {
		return tx.Bucket([]byte("tokenvault")).Put([]byte("version"), binary.BigEndian.AppendUint32(nil, version))
	}
}

// OpenBoltStore must reject a file of another schema version without
// changing it, and open it again once the version is back.
func TestBoltSchemaVersion(t *testing.T) {
	path, token := newVaultFile(t)
	rawBolt(t, path, putSchemaVersion(99))
	hash := fileHash(t, path)

	_, err := openBoltWithin(t, path, 200*time.Millisecond, 5*time.Second)
	if !errors.Is(err, tokenvault.ErrSchemaVersion) {
		t.Fatalf("OpenBoltStore(%q) of schema version 99 err = %v, want ErrSchemaVersion", path, err)
	}
	wantErrorMentions(t, "OpenBoltStore", err, "99")
	if fileHash(t, path) != hash {
		t.Errorf("OpenBoltStore(%q) changed a file that it rejected", path)
	}

	rawBolt(t, path, putSchemaVersion(3))
	s := openTestBolt(t, path)
	if _, err := s.Get(t.Context(), token); err != nil {
		t.Errorf("Get(%q) after restoring schema version 3 err = %v, want nil", token, err)
	}
}

// A bbolt file that tokenvault did not write, or whose tokenvault layout is
// incomplete, must be rejected with ErrNotVault and left unchanged.
func TestBoltNotVault(t *testing.T) {
	tests := []struct {
		name  string
		vault bool // start from a tokenvault file instead of an empty bbolt file
		edit  func(tx *bolt.Tx) error
	}{
		{"OtherBucket", false, func(tx *bolt.Tx) error {
			b, err := tx.CreateBucket([]byte("accounts"))
			if err != nil {
				return err
			}
			return b.Put([]byte("alice"), []byte("100"))
		}},
		{"NoVersion", true, func(tx *bolt.Tx) error {
			return tx.Bucket([]byte("tokenvault")).Delete([]byte("version"))
		}},
		{"ShortVersion", true, func(tx *bolt.Tx) error {
			return tx.Bucket([]byte("tokenvault")).Put([]byte("version"), []byte{1})
		}},
		{"NoBucket", true, func(tx *bolt.Tx) error {
			return tx.DeleteBucket([]byte("history"))
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "other.db")
			if tt.vault {
				path, _ = newVaultFile(t)
			}
			rawBolt(t, path, tt.edit)
			hash := fileHash(t, path)

			_, err := openBoltWithin(t, path, 200*time.Millisecond, 5*time.Second)
			if !errors.Is(err, tokenvault.ErrNotVault) {
				t.Fatalf("OpenBoltStore(%q) err = %v, want ErrNotVault", path, err)
			}
			if fileHash(t, path) != hash {
				t.Errorf("OpenBoltStore(%q) changed a file that it rejected", path)
			}
		})
	}
}

// Offsets in a bbolt meta page (bbolt 1.5, internal/common): a 16-byte page
// header, then magic, version and page size as uint32 in the machine's byte
// order, and the checksum at byte 72.
const (
	metaVersionOffset  = 16 + 4
	metaPageSizeOffset = 16 + 8
	metaChecksumOffset = 72
)

// editMetaPages applies edit to both bbolt meta pages of the file at path.
func editMetaPages(t *testing.T, path string, edit func(meta []byte)) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	pageSize := int(binary.NativeEndian.Uint32(b[metaPageSizeOffset:]))
	edit(b[:pageSize])
	edit(b[pageSize : 2*pageSize])
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}
}

// Files that bbolt cannot read must fail to open with a clear error, without
// a panic or a hang, and stay unchanged. Where bbolt rejects the meta pages,
// the error wraps both ErrNotVault and bbolt's reason.
func TestBoltBadFile(t *testing.T) {
	junk := func(size int) func(t *testing.T, path string) {
		return func(t *testing.T, path string) {
			if err := os.WriteFile(path, randomTestBytes(size), 0o600); err != nil {
				t.Fatal(err)
			}
		}
	}
	vaultWith := func(edit func(meta []byte)) func(t *testing.T, path string) {
		return func(t *testing.T, path string) {
			vault, _ := newVaultFile(t)
			if err := os.Rename(vault, path); err != nil {
				t.Fatal(err)
			}
			editMetaPages(t, path, edit)
		}
	}

	tests := []struct {
		name  string
		write func(t *testing.T, path string)
		bolt  error // bbolt's error, nil when bbolt returns no sentinel
	}{
		{"Junk64KiB", junk(64 << 10), bolterrors.ErrInvalid},
		{"Junk100B", junk(100), bolterrors.ErrInvalid},
		{"Junk3000B", junk(3000), nil},
		{"MetaVersion", vaultWith(func(meta []byte) {
			binary.NativeEndian.PutUint32(meta[metaVersionOffset:], 3)
		}), bolterrors.ErrVersionMismatch},
		{"MetaChecksum", vaultWith(func(meta []byte) {
			meta[metaChecksumOffset] ^= 0xff
		}), bolterrors.ErrChecksum},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "bad.db")
			tt.write(t, path)
			hash := fileHash(t, path)

			_, err := openBoltWithin(t, path, 200*time.Millisecond, 5*time.Second)
			if err == nil {
				t.Fatalf("OpenBoltStore(%q) err = nil, want an error", path)
			}
			if errors.Is(err, tokenvault.ErrLocked) {
				t.Errorf("OpenBoltStore(%q) err = %v, want an error other than ErrLocked", path, err)
			}
			wantErrorMentions(t, "OpenBoltStore", err, path)
			if tt.bolt != nil {
				if !errors.Is(err, tokenvault.ErrNotVault) || !errors.Is(err, tt.bolt) {
					t.Errorf("OpenBoltStore(%q) err = %v, want ErrNotVault wrapping %v", path, err, tt.bolt)
				}
				wantErrorMentions(t, "OpenBoltStore", err, tt.bolt.Error())
			}
			if fileHash(t, path) != hash {
				t.Errorf("OpenBoltStore(%q) changed a file that it rejected", path)
			}
		})
	}
}
