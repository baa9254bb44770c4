package tokenvault

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"log/slog"
	"maps"
	"math/rand/v2"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	bolt "go.etcd.io/bbolt"
)

// mergeTestFingerprint returns the fingerprint of group g.
func mergeTestFingerprint(g string) []byte {
	sum := sha256.Sum256([]byte(g))
	return sum[:]
}

// mergeTestRecord returns record i. Records share fingerprints in groups of
// three, so that a lost or duplicated entry changes a lookup's count.
func mergeTestRecord(i int) *Record {
	return &Record{
		Token:       fmt.Sprintf("tok_%08d", i),
		State:       StateActive,
		Metadata:    Metadata{Kind: KindData, Format: FormatOpaque},
		KeyID:       "0123456789abcdef",
		Ciphertext:  []byte("gAAAAA"),
		Fingerprint: mergeTestFingerprint(fmt.Sprint(i / 3)),
	}
}

// waitMerge waits until no merge of s runs.
func waitMerge(t *testing.T, s *BoltStore) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for s.merge.running.Load() {
		if time.Now().After(deadline) {
			t.Fatal("a merge of the fingerprint log still runs after 30s")
		}
		time.Sleep(time.Millisecond)
	}
}

// wantLookups fails the test unless FindByFingerprint returns exactly want,
// a map from fingerprint to tokens.
func wantLookups(t *testing.T, s *BoltStore, want map[string][]string) {
	t.Helper()
	for _, fp := range slices.Sorted(maps.Keys(want)) {
		got, err := s.FindByFingerprint(t.Context(), []byte(fp))
		if err != nil {
			t.Fatalf("FindByFingerprint err = %v", err)
		}
		w := append([]string{}, slices.Sorted(slices.Values(want[fp]))...)
		if diff := cmp.Diff(w, got); diff != "" {
			t.Errorf("FindByFingerprint(%x) mismatch (-want +got):\n%s", fp[:4], diff)
		}
	}
}

// logEntries returns the number of entries in the fingerprint log of s.
func logEntries(t *testing.T, s *BoltStore) int {
	t.Helper()
	n := 0
	err := s.view(t.Context(), func(tx *bolt.Tx) error {
		return walkLog(tx.Bucket(bucketFingerprintLog), ^uint64(0), func(uint64, *logEntry) error {
			n++
			return nil
		})
	})
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// TestFingerprintMerge creates, closes and moves records from several
// goroutines while the store merges its fingerprint log every 50 entries, in
// passes of 16.
// Readers check throughout that a lookup lists every record created before it
// and no record whose fingerprint was removed before it. The final lookups
// must match the records exactly, before and after reopening the file.
func TestFingerprintMerge(t *testing.T) {
	path := filepath.Join(t.TempDir(), "vault.db")
	s, err := OpenBoltStore(path, &BoltOptions{FingerprintMergeAfter: 50})
	if err != nil {
		t.Fatal(err)
	}
	s.merge.passSize = 16 // about four passes over the log per merge
	ctx := context.Background()

	const writers, records = 8, 3000
	var (
		next    atomic.Int64
		created sync.Map // token -> fingerprint, for stable records once created
		removed sync.Map // token -> fingerprint it no longer has
		stop    = make(chan struct{})
		readers sync.WaitGroup
		checks  atomic.Int64
	)
	for range 2 {
		readers.Go(func() {
			for {
				select {
				case <-stop:
					return
				default:
				}
				checkLookups(t, s, &created, &removed, &checks)
			}
		})
	}

	var writes sync.WaitGroup
	for range writers {
		writes.Go(func() {
			for i := int(next.Add(1)); i <= records; i = int(next.Add(1)) {
				rec := mergeTestRecord(i)
				if err := s.Create(ctx, rec); err != nil {
					t.Errorf("Create(%d) err = %v", i, err)
					return
				}
				switch {
				case i%7 == 0:
					mergeTestChange(t, s, rec, nil, &removed)
				case i%11 == 0:
					mergeTestChange(t, s, rec, mergeTestFingerprint(fmt.Sprint("moved ", i)), &removed)
				default:
					created.Store(rec.Token, string(rec.Fingerprint))
				}
			}
		})
	}
	writes.Wait()
	close(stop)
	readers.Wait()
	waitMerge(t, s)

	if n := s.merge.merges.Load(); n < 10 {
		t.Errorf("%d merges of the fingerprint log ran, want at least 10", n)
	}
	if checks.Load() == 0 {
		t.Error("no lookup ran beside the writes")
	}
	want := make(map[string][]string)
	for i := 1; i <= records; i++ {
		rec := mergeTestRecord(i)
		switch {
		case i%7 == 0:
			want[string(rec.Fingerprint)] = append(want[string(rec.Fingerprint)], []string{}...)
		case i%11 == 0:
			moved := string(mergeTestFingerprint(fmt.Sprint("moved ", i)))
			want[moved] = append(want[moved], rec.Token)
		default:
			want[string(rec.Fingerprint)] = append(want[string(rec.Fingerprint)], rec.Token)
		}
	}
	wantLookups(t, s, want)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}

	// The log still holds the entries of the last, unmerged stretch: a
	// reopened store must find them.
	s, err = OpenBoltStore(path, nil)
	if err != nil {
		t.Fatal(err)
	}
	wantLookups(t, s, want)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}

	s, err = OpenBoltStore(path, &BoltOptions{FingerprintMergeAfter: 1})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if err := s.SetMetadata(ctx, "x", []byte("y")); err != nil {
		t.Fatal(err)
	}
	last := mergeTestRecord(records + 1)
	if err := s.Create(ctx, last); err != nil {
		t.Fatal(err)
	}
	want[string(last.Fingerprint)] = append(want[string(last.Fingerprint)], last.Token)
	waitMerge(t, s)
	if n := logEntries(t, s); n != 0 {
		t.Errorf("fingerprint log contains %d entries after a merge with no writes beside it, want 0", n)
	}
	wantLookups(t, s, want)
}

// mergeTestChange sets the fingerprint of rec to fp, or clears it with the
// token's close, and then lists the old one as removed.
func mergeTestChange(t *testing.T, s *BoltStore, rec *Record, fp []byte, removed *sync.Map) {
	_, err := s.Update(context.Background(), rec.Token, func(r *Record) (*Change, error) {
		r.Fingerprint = fp
		if fp == nil {
			r.State, r.Ciphertext = StateClosed, nil
		}
		return &Change{Type: EventClosed, From: StateActive, To: r.State, Time: time.Unix(1, 0)}, nil
	})
	if err != nil {
		t.Errorf("Update(%s) err = %v", rec.Token, err)
		return
	}
	removed.Store(rec.Token, string(rec.Fingerprint))
}

// checkLookups looks up one record created and one record changed before the
// call, chosen at random.
func checkLookups(t *testing.T, s *BoltStore, created, removed *sync.Map, checks *atomic.Int64) {
	var tokens []string
	var fps []string
	created.Range(func(k, v any) bool {
		tokens, fps = append(tokens, k.(string)), append(fps, v.(string))
		return len(tokens) < 1+rand.IntN(64)
	})
	var removedToken, removedFP string
	removed.Range(func(k, v any) bool {
		removedToken, removedFP = k.(string), v.(string)
		return rand.IntN(8) != 0
	})

	if len(tokens) > 0 {
		i := len(tokens) - 1
		got, err := s.FindByFingerprint(context.Background(), []byte(fps[i]))
		if err != nil || !slices.Contains(got, tokens[i]) {
			t.Errorf("FindByFingerprint = %q, %v, want it to list %s, created before the lookup", got, err, tokens[i])
		}
		checks.Add(1)
	}
	if removedToken != "" {
		got, err := s.FindByFingerprint(context.Background(), []byte(removedFP))
		if err != nil || slices.Contains(got, removedToken) {
			t.Errorf("FindByFingerprint = %q, %v, want it not to list %s, whose fingerprint changed before the lookup", got, err, removedToken)
		}
		checks.Add(1)
	}
}

// TestBoltSchemaUpgrade opens files of schema versions 1 to 3 and checks
// that their lookups still work, that they are now of the current version and
// that new records use the log. Version 1 had only the sorted fingerprint
// index, version 2 added the log but had no runs, version 3 had no records
// under locators, and version 4 kept one run entry per key.
func TestBoltSchemaUpgrade(t *testing.T) {
	for _, from := range []uint32{1, 2, 3, 4, 5} {
		t.Run(fmt.Sprint("version=", from), func(t *testing.T) { testBoltSchemaUpgrade(t, from) })
	}
}

func testBoltSchemaUpgrade(t *testing.T, from uint32) {
	path := filepath.Join(t.TempDir(), "vault.db")
	s, err := OpenBoltStore(path, nil)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	want := make(map[string][]string)
	for i := range 30 {
		rec := mergeTestRecord(i)
		if err := s.Create(ctx, rec); err != nil {
			t.Fatal(err)
		}
		want[string(rec.Fingerprint)] = append(want[string(rec.Fingerprint)], rec.Token)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	rawBoltUpdate(t, path, func(tx *bolt.Tx) error { return downgradeSchema(tx, from) })

	var logs bytes.Buffer
	s, err = OpenBoltStore(path, &BoltOptions{Logger: slog.New(slog.NewJSONHandler(&logs, nil))})
	if err != nil {
		t.Fatalf("OpenBoltStore of schema version %d err = %v, want nil", from, err)
	}
	defer s.Close()
	upgrade := onlyLogRecord(t, &logs)
	if upgrade.Level != "INFO" {
		t.Errorf("level of the upgrade's log record = %q, want INFO", upgrade.Level)
	}
	if versions := fmt.Sprintf("schema version %d to %d", from, boltSchemaVersion); !strings.Contains(upgrade.Msg, versions) {
		t.Errorf("message of the upgrade's log record = %q, want one that says %q", upgrade.Msg, versions)
	}
	if upgrade.Path != path {
		t.Errorf("path of the upgrade's log record = %q, want %q", upgrade.Path, path)
	}
	wantLookups(t, s, want)
	rec := mergeTestRecord(30)
	if err := s.Create(ctx, rec); err != nil {
		t.Fatal(err)
	}
	want[string(rec.Fingerprint)] = append(want[string(rec.Fingerprint)], rec.Token)
	wantLookups(t, s, want)
	events, err := s.Events(ctx, 0, 100)
	if err != nil {
		t.Fatalf("Events err = %v", err)
	}
	if len(events) != 31 || events[0].Seq != 1 || events[30].Seq != 31 {
		t.Errorf("Events after the upgrade returned %d events, want 31 numbered 1 to 31", len(events))
	}
	// Versions 2 and 3 kept the first 30 entries in the log.
	wantLog := 1
	if from >= 2 {
		wantLog = 31
	}
	if n := logEntries(t, s); n != wantLog {
		t.Errorf("fingerprint log contains %d entries, want %d", n, wantLog)
	}
	err = s.view(ctx, func(tx *bolt.Tx) error {
		if v := binary.BigEndian.Uint32(tx.Bucket(bucketSchema).Get(keySchemaVersion)); v != boltSchemaVersion {
			t.Errorf("schema version after the upgrade = %d, want %d", v, boltSchemaVersion)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}

	logs.Reset()
	s, err = OpenBoltStore(path, &BoltOptions{Logger: slog.New(slog.NewJSONHandler(&logs, nil)), FingerprintMergeAfter: 1})
	if err != nil {
		t.Fatalf("OpenBoltStore after the upgrade err = %v, want nil", err)
	}
	if logs.Len() != 0 {
		t.Errorf("log of an open after the upgrade = %q, want nothing", logs.String())
	}
	rec = mergeTestRecord(31)
	if err := s.Create(ctx, rec); err != nil {
		t.Fatal(err)
	}
	want[string(rec.Fingerprint)] = append(want[string(rec.Fingerprint)], rec.Token)
	waitMerge(t, s)
	if n := logEntries(t, s); n != 0 {
		t.Errorf("fingerprint log contains %d entries after a merge, want 0", n)
	}
	wantLookups(t, s, want)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
}

// downgradeSchema turns a file of the current schema into one of an older
// version. It writes the entries of the log and the outbox one per key, and
// for version 4 the entries of each run too. For versions 1 to 3 the file must have no runs and
// no located records, and for version 1 it moves the log's entries into the
// sorted index.
func downgradeSchema(tx *bolt.Tx, version uint32) error {
	for _, name := range [][]byte{bucketFingerprintLog, bucketEvents} {
		if err := unpackSequenced(tx.Bucket(name)); err != nil {
			return err
		}
	}
	if version == 4 {
		if err := unpackRuns(tx.Bucket(bucketFingerprintRuns)); err != nil {
			return err
		}
	} else if version < 4 {
		if err := tx.Bucket(bucketSchema).Delete(keyLocators); err != nil {
			return err
		}
	}
	if version < 3 {
		if err := tx.DeleteBucket(bucketFingerprintRuns); err != nil {
			return err
		}
	}
	if version == 1 {
		err := walkLog(tx.Bucket(bucketFingerprintLog), ^uint64(0), func(seq uint64, e *logEntry) error {
			op := e.logOp(seq)
			if op.op == logRemove {
				return tx.Bucket(bucketFingerprints).Delete(op.key)
			}
			return tx.Bucket(bucketFingerprints).Put(op.key, nil)
		})
		if err != nil {
			return err
		}
		if err := tx.DeleteBucket(bucketFingerprintLog); err != nil {
			return err
		}
	}
	return tx.Bucket(bucketSchema).Put(keySchemaVersion, binary.BigEndian.AppendUint32(nil, version))
}

// unpackSequenced rewrites the blocks of b, the fingerprint log or the
// outbox, with one entry per key under its number, as schema version 5 kept
// them.
func unpackSequenced(b *bolt.Bucket) error {
	type single struct{ k, v []byte }
	var blocks [][]byte
	var entries []single
	err := forEachSeqBlock(b, func(k, v []byte) error {
		blocks = append(blocks, bytes.Clone(k))
		return forEachSeqEntry(k, v, func(seq uint64, entry []byte) error {
			entries = append(entries, single{binary.BigEndian.AppendUint64(nil, seq), bytes.Clone(entry)})
			return nil
		})
	})
	if err != nil {
		return err
	}

	for _, k := range blocks {
		if err := b.Delete(k); err != nil {
			return err
		}
	}
	for _, e := range entries {
		if err := b.Put(e.k, e.v); err != nil {
			return err
		}
	}
	return nil
}

// unpackRuns rewrites each run of runs with one entry per key, as schema
// version 4 kept them: an empty value adds the key and logRemove removes it.
func unpackRuns(runs *bolt.Bucket) error {
	var names [][]byte
	err := runs.ForEachBucket(func(name []byte) error {
		names = append(names, bytes.Clone(name))
		return nil
	})
	if err != nil {
		return err
	}

	for _, name := range names {
		run := runs.Bucket(name)
		ops, err := runOps(run)
		if err != nil {
			return err
		}
		if err := runs.DeleteBucket(name); err != nil {
			return err
		}
		if run, err = runs.CreateBucket(name); err != nil {
			return err
		}
		for _, op := range ops {
			var v []byte
			if op.op == logRemove {
				v = []byte{logRemove}
			}
			if err := run.Put(op.key, v); err != nil {
				return err
			}
		}
	}
	return nil
}

// rawBoltUpdate runs fn in a write transaction of the bbolt file at path,
// opened without the store.
func rawBoltUpdate(t *testing.T, path string, fn func(tx *bolt.Tx) error) {
	t.Helper()
	db, err := bolt.Open(path, 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	err = db.Update(fn)
	if cerr := db.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		t.Fatal(err)
	}
}

func TestBoltMergeAfterOption(t *testing.T) {
	for _, n := range []int{-1, maxFingerprintMergeAfter + 1} {
		_, err := OpenBoltStore(filepath.Join(t.TempDir(), "vault.db"), &BoltOptions{FingerprintMergeAfter: n})
		if err == nil || !containsAll(err.Error(), "FingerprintMergeAfter", fmt.Sprint(n)) {
			t.Errorf("OpenBoltStore with FingerprintMergeAfter %d err = %v, want an error naming the option and the value", n, err)
		}
	}
}

// A BoltStore keeps and looks up fingerprints of 32 bytes only, the size the
// vault makes, because a shorter one would match the prefix of other keys.
func TestBoltFingerprintSize(t *testing.T) {
	s, err := OpenBoltStore(filepath.Join(t.TempDir(), "vault.db"), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	rec := mergeTestRecord(1)
	rec.Fingerprint = rec.Fingerprint[:31]
	if err := s.Create(t.Context(), rec); err == nil || !containsAll(err.Error(), "fingerprint", "31") {
		t.Errorf("Create with a 31-byte fingerprint err = %v, want an error naming its size", err)
	}
	if tokens, err := s.FindByFingerprint(t.Context(), rec.Fingerprint); err == nil || !containsAll(err.Error(), "fingerprint", "31") {
		t.Errorf("FindByFingerprint of a 31-byte fingerprint = %q, %v, want an error naming its size", tokens, err)
	}
}

func containsAll(s string, words ...string) bool {
	for _, w := range words {
		if !strings.Contains(s, w) {
			return false
		}
	}
	return true
}

// Each change of a record's fingerprint appends one log entry per key it
// adds or removes, and an Update that keeps the fingerprint appends none, so
// that a change costs the same however many tokens share the fingerprint.
func TestFingerprintLogEntries(t *testing.T) {
	s, err := OpenBoltStore(filepath.Join(t.TempDir(), "vault.db"), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	ctx := t.Context()
	rec := mergeTestRecord(1)
	if err := s.Create(ctx, rec); err != nil {
		t.Fatal(err)
	}
	set := func(fp []byte) {
		t.Helper()
		_, err := s.Update(ctx, rec.Token, func(r *Record) (*Change, error) {
			r.Fingerprint = fp
			return &Change{Type: EventSuspended, From: StateActive, To: StateActive, Time: time.Unix(1, 0)}, nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}

	steps := []struct {
		name string
		fp   []byte
		want int
	}{
		{"same fingerprint", rec.Fingerprint, 1},
		{"new fingerprint", mergeTestFingerprint("other"), 3},
		{"fingerprint cleared", nil, 4},
	}
	for _, step := range steps {
		set(step.fp)
		if n := logEntries(t, s); n != step.want {
			t.Errorf("after an Update with the %s, the log contains %d entries, want %d", step.name, n, step.want)
		}
	}
	wantLookups(t, s, map[string][]string{
		string(rec.Fingerprint):               {},
		string(mergeTestFingerprint("other")): {},
	})
}

// TestFingerprintMergeFailureLogged plants a fingerprint log entry too short
// to decode, and checks that the merge that reads it fails, logs one error
// record with the file's path, and leaves the log as it was.
func TestFingerprintMergeFailureLogged(t *testing.T) {
	path := filepath.Join(t.TempDir(), "vault.db")
	var logs bytes.Buffer
	logger := slog.New(slog.NewJSONHandler(&logs, nil))
	s, err := OpenBoltStore(path, &BoltOptions{FingerprintMergeAfter: 4, Logger: logger})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	ctx := context.Background()

	err = s.db.Update(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketFingerprintLog).Put(binary.BigEndian.AppendUint64(nil, 1<<62), []byte("short"))
	})
	if err != nil {
		t.Fatal(err)
	}
	for i := range 4 {
		if err := s.Create(ctx, mergeTestRecord(i)); err != nil {
			t.Fatalf("Create(record %d) err = %v", i, err)
		}
	}
	waitMerge(t, s)

	if n := s.merge.merges.Load(); n != 0 {
		t.Errorf("%d merges succeeded, want 0", n)
	}
	// Each Create commits alone, so the log holds the damaged entry and
	// four blocks.
	err = s.view(ctx, func(tx *bolt.Tx) error {
		if got := tx.Bucket(bucketFingerprintLog).Stats().KeyN; got != 5 {
			t.Errorf("the fingerprint log has %d keys after the failed merge, want 5", got)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}

	record := onlyLogRecord(t, &logs)
	if record.Level != "ERROR" {
		t.Errorf("level of the merge's log record = %q, want ERROR", record.Level)
	}
	if !strings.Contains(record.Msg, "merge failed") {
		t.Errorf("message of the merge's log record = %q, want one that says the merge failed", record.Msg)
	}
	if record.Path != path {
		t.Errorf("path of the merge's log record = %q, want %q", record.Path, path)
	}
	if !strings.Contains(record.Error, "fingerprint log: entry") {
		t.Errorf("logged error = %q, want the decoding error of the short entry", record.Error)
	}
}

// logRecord is the part of a JSON log record of the store that tests read.
type logRecord struct {
	Level, Msg, Path, Error string
}

// onlyLogRecord decodes the JSON log in logs and fails the test unless it
// contains exactly one record.
func onlyLogRecord(t *testing.T, logs *bytes.Buffer) logRecord {
	t.Helper()
	lines := strings.Split(strings.TrimSpace(logs.String()), "\n")
	if len(lines) != 1 {
		t.Fatalf("the logger got %d records, want 1: %q", len(lines), logs.String())
	}
	var record logRecord
	if err := json.Unmarshal([]byte(lines[0]), &record); err != nil {
		t.Fatalf("log record %q is not JSON: %v", lines[0], err)
	}
	return record
}

// TestFingerprintLogBacklog writes in batches from several goroutines,
// faster than the merge can keep up. It checks that the fingerprint log
// stays near mergeBacklog times the merge threshold, because writers wait
// for the merge instead of growing the log without bound.
func TestFingerprintLogBacklog(t *testing.T) {
	const mergeAfter, writers, batch, batches = 64, 8, 64, 40
	s, err := OpenBoltStore(filepath.Join(t.TempDir(), "vault.db"), &BoltOptions{FingerprintMergeAfter: mergeAfter})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })

	var next, longest atomic.Int64
	var wg sync.WaitGroup
	for range writers {
		wg.Go(func() {
			for range batches {
				recs := make([]*Record, batch)
				for i := range recs {
					recs[i] = mergeTestRecord(int(next.Add(1)))
				}
				if _, err := s.CreateBatch(t.Context(), recs); err != nil {
					t.Errorf("CreateBatch err = %v", err)
					return
				}
				n := int64(s.recent.len())
				for old := longest.Load(); n > old && !longest.CompareAndSwap(old, n); old = longest.Load() {
				}
			}
		})
	}
	wg.Wait()

	// Every writer may add one batch beyond the bound before it waits, and
	// the batches of a merge's own run count until it drops them.
	limit := int64(mergeBacklog*mergeAfter + 2*writers*batch)
	if got := longest.Load(); got > limit {
		t.Errorf("the fingerprint log reached %d entries, want at most %d", got, limit)
	}
	t.Logf("longest log %d entries, limit %d, %d merges", longest.Load(), limit, s.merge.merges.Load())
}
