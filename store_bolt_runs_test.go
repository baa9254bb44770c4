package tokenvault

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"slices"
	"sync"
	"sync/atomic"
	"testing"

	bolt "go.etcd.io/bbolt"
)

// runsOf returns the names of the complete runs of s, oldest first, and
// whether a pending run exists.
func runsOf(t testing.TB, s *BoltStore) (names [][]byte, pending bool) {
	t.Helper()
	err := s.view(t.Context(), func(tx *bolt.Tx) (err error) {
		pending = tx.Bucket(bucketFingerprintRuns).Get(keyPendingRun) != nil
		names, err = liveRuns(tx)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return names, pending
}

// runRemovals returns how many entries of run name remove their key.
func runRemovals(t *testing.T, s *BoltStore, name []byte) int {
	t.Helper()
	n := 0
	err := s.view(t.Context(), func(tx *bolt.Tx) error {
		entries, err := runEntries(tx.Bucket(bucketFingerprintRuns).Bucket(name))
		for _, e := range entries {
			if e.op == logRemove {
				n++
			}
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// runOps returns the entries of the blocks of run as operations with keys of
// their own.
func runOps(run *bolt.Bucket) ([]logOp, error) {
	entries, err := runEntries(run)
	ops := make([]logOp, len(entries))
	for i, e := range entries {
		ops[i] = logOp{op: e.op, key: bytes.Clone(e.key)}
	}
	return ops, err
}

// runEntries returns the entries of the blocks of run, whose keys are valid
// until the transaction ends.
func runEntries(run *bolt.Bucket) ([]runEntry, error) {
	var entries []runEntry
	err := run.ForEach(func(k, v []byte) (err error) {
		entries, err = decodeRunBlock(entries, k, v)
		return err
	})
	return entries, err
}

// runModel creates records first to n in s, one at a time, closing every
// seventh and moving every eleventh to another fingerprint. It adds to want
// the tokens that each fingerprint must then list.
func runModel(t *testing.T, s *BoltStore, first, n int, want map[string][]string) {
	t.Helper()
	for i := first; i <= n; i++ {
		rec := mergeTestRecord(i)
		if err := s.Create(t.Context(), rec); err != nil {
			t.Fatal(err)
		}
		fp := string(rec.Fingerprint)
		if _, ok := want[fp]; !ok {
			want[fp] = []string{}
		}
		switch {
		case i%7 == 0:
			mergeTestChange(t, s, rec, nil, &sync.Map{})
		case i%11 == 0:
			moved := mergeTestFingerprint(fmt.Sprint("moved ", i))
			mergeTestChange(t, s, rec, moved, &sync.Map{})
			want[string(moved)] = append(want[string(moved)], rec.Token)
		default:
			want[fp] = append(want[fp], rec.Token)
		}
	}
}

// TestFingerprintRuns merges the log every 20 entries, so that runs are
// merged into levels 1 and 2. It checks the lookups and the number of runs
// per level. Once a merge of runs has written the oldest run, that run must
// keep no removal.
func TestFingerprintRuns(t *testing.T) {
	s, err := OpenBoltStore(filepath.Join(t.TempDir(), "vault.db"), &BoltOptions{FingerprintMergeAfter: 20})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()

	want := make(map[string][]string)
	for round := range 30 {
		runModel(t, s, round*40+1, (round+1)*40, want)
		waitMerge(t, s)
		names, pending := runsOf(t, s)
		if pending {
			t.Fatalf("a pending run is left after merge %d ended", s.merge.merges.Load())
		}
		for level, n := range runLevelCounts(names) {
			if n >= runFanout {
				t.Fatalf("%d runs of level %d after merge %d, want fewer than %d", n, level, s.merge.merges.Load(), runFanout)
			}
		}
		if len(names) > 0 && names[0][8] > 0 {
			if n := runRemovals(t, s, names[0]); n != 0 {
				t.Fatalf("oldest run, of level %d, has %d removals, want 0", names[0][8], n)
			}
		}
	}
	wantLookups(t, s, want)

	if n := s.merge.compactions.Load(); n < 4 {
		t.Errorf("%d merges of runs ran, want at least 4", n)
	}
	// A merge takes every entry of the log, so under load merges are fewer
	// and larger, and the runs may have reached a level above 2.
	names, _ := runsOf(t, s)
	counts := runLevelCounts(names)
	top := -1
	for level := range counts {
		top = max(top, int(level))
	}
	if top < 2 {
		t.Errorf("runs per level = %v, want one of level 2 or above", counts)
	}

	// Compact copies the runs and the number of the next run, so a run
	// written afterwards is still the newest.
	if err := s.Compact(t.Context()); err != nil {
		t.Fatal(err)
	}
	wantLookups(t, s, want)
	runModel(t, s, 1201, 1240, want)
	waitMerge(t, s)
	after, _ := runsOf(t, s)
	if newest := after[len(after)-1]; bytes.Compare(newest, names[len(names)-1]) <= 0 {
		t.Errorf("newest run after Compact is %x, want one after %x", newest, names[len(names)-1])
	}
	wantLookups(t, s, want)
}

// runLevelCounts returns how many of the runs names each level has.
func runLevelCounts(names [][]byte) map[int]int {
	counts := make(map[int]int)
	for _, name := range names {
		counts[int(name[8])]++
	}
	return counts
}

// TestFingerprintRunsKeepRemovalsOfOldIndex upgrades a file of schema
// version 1, whose entries are in the sorted index only, and closes tokens
// listed there. Merges of runs that include the oldest run must keep those
// removals, or the closed tokens would come back.
func TestFingerprintRunsKeepRemovalsOfOldIndex(t *testing.T) {
	path := filepath.Join(t.TempDir(), "vault.db")
	s, err := OpenBoltStore(path, nil)
	if err != nil {
		t.Fatal(err)
	}
	want := make(map[string][]string)
	runModel(t, s, 1, 60, want)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	rawBoltUpdate(t, path, func(tx *bolt.Tx) error { return downgradeSchema(tx, 1) })

	s, err = OpenBoltStore(path, &BoltOptions{FingerprintMergeAfter: 10})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	for i := 1; i <= 60; i += 2 {
		rec := mergeTestRecord(i)
		_, err := s.Update(t.Context(), rec.Token, func(r *Record) (*Change, error) {
			if r.State == StateClosed {
				return nil, nil
			}
			r.State, r.Ciphertext, r.Fingerprint = StateClosed, nil, nil
			return &Change{Type: EventClosed, From: StateActive, To: StateClosed}, nil
		})
		if err != nil {
			t.Fatal(err)
		}
		for fp, tokens := range want {
			want[fp] = deleteString(tokens, rec.Token)
		}
	}
	runModel(t, s, 61, 300, want)
	waitMerge(t, s)

	if n := s.merge.compactions.Load(); n == 0 {
		t.Fatal("no merge of runs ran")
	}
	wantLookups(t, s, want)
}

func deleteString(list []string, s string) []string {
	out := list[:0]
	for _, v := range list {
		if v != s {
			out = append(out, v)
		}
	}
	return out
}

// TestPendingRunIgnored checks that lookups skip a run still being written,
// that the next merge deletes it, and that opening the file deletes one that
// a merge cut short left behind.
func TestPendingRunIgnored(t *testing.T) {
	path := filepath.Join(t.TempDir(), "vault.db")
	s, err := OpenBoltStore(path, &BoltOptions{FingerprintMergeAfter: 10})
	if err != nil {
		t.Fatal(err)
	}
	want := make(map[string][]string)
	runModel(t, s, 1, 9, want)

	// A pending run that lists a token under a fingerprint it does not have.
	ghost := logOp{op: logAdd, key: append(mergeTestFingerprint("0"), "tok_ghost"...)}
	addPending := func(tx *bolt.Tx) error {
		name, err := startRun(tx)
		if err != nil {
			return err
		}
		return appendToRun(tx, name, []logOp{ghost})
	}
	if err := s.commit(1, addPending); err != nil {
		t.Fatal(err)
	}
	wantLookups(t, s, want)

	runModel(t, s, 10, 20, want)
	waitMerge(t, s)
	wantLookups(t, s, want)
	wantNoGhost(t, s, ghost.key, "after a merge")

	if err := s.commit(1, addPending); err != nil {
		t.Fatal(err)
	}
	s = reopenBoltStore(t, s, path)
	wantNoGhost(t, s, ghost.key, "after reopening")
	wantLookups(t, s, want)
}

// wantNoGhost fails the test if s has a pending run or a run with key.
func wantNoGhost(t *testing.T, s *BoltStore, key []byte, when string) {
	t.Helper()
	names, pending := runsOf(t, s)
	if pending {
		t.Errorf("%s: a pending run is left", when)
	}
	err := s.view(t.Context(), func(tx *bolt.Tx) error {
		for _, name := range names {
			entries, err := runEntries(tx.Bucket(bucketFingerprintRuns).Bucket(name))
			if err != nil {
				return err
			}
			if slices.ContainsFunc(entries, func(e runEntry) bool { return bytes.Equal(e.key, key) }) {
				t.Errorf("%s: run %x has the pending run's entry", when, name)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// TestFingerprintRunsDamaged checks that a lookup reports ErrIntegrity for
// four kinds of damaged runs. They are a value that is neither empty nor a
// removal, a key of the runs bucket that is no run, a nested bucket, and a
// pending run that is not the newest, which the open leaves in place.
func TestFingerprintRunsDamaged(t *testing.T) {
	fp := mergeTestFingerprint("damaged")
	tests := []struct {
		name   string
		damage func(runs *bolt.Bucket) error
	}{
		{"bad value", func(runs *bolt.Bucket) error {
			run, err := runs.CreateBucket(append(make([]byte, 8), 0))
			if err != nil {
				return err
			}
			return run.Put(append(bytes.Clone(fp), "tok_x"...), []byte("zz"))
		}},
		{"stray key", func(runs *bolt.Bucket) error { return runs.Put([]byte("stray"), []byte("x")) }},
		{"nested bucket", func(runs *bolt.Bucket) error {
			run, err := runs.CreateBucket(append(make([]byte, 8), 0))
			if err != nil {
				return err
			}
			_, err = run.CreateBucket(append(bytes.Clone(fp), "tok_x"...))
			return err
		}},
		{"pending names an older run", func(runs *bolt.Bucket) error {
			for _, id := range []byte{1, 2} {
				if _, err := runs.CreateBucket([]byte{0, 0, 0, 0, 0, 0, 0, id, 0}); err != nil {
					return err
				}
			}
			return runs.Put(keyPendingRun, []byte{0, 0, 0, 0, 0, 0, 0, 1, 0})
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "vault.db")
			s, err := OpenBoltStore(path, nil)
			if err != nil {
				t.Fatal(err)
			}
			if err := s.Close(); err != nil {
				t.Fatal(err)
			}
			rawBoltUpdate(t, path, func(tx *bolt.Tx) error { return tt.damage(tx.Bucket(bucketFingerprintRuns)) })

			s, err = OpenBoltStore(path, nil)
			if err != nil {
				t.Fatal(err)
			}
			defer s.Close()
			if _, err := s.FindByFingerprint(context.Background(), fp); !errors.Is(err, ErrIntegrity) {
				t.Errorf("FindByFingerprint err = %v, want ErrIntegrity", err)
			}
		})
	}
}

// failAfter is a context whose Err reports context.Canceled after a number
// of calls, so that a merge stops between two of its transactions.
type failAfter struct {
	context.Context
	left atomic.Int64
}

func (c *failAfter) Err() error {
	if c.left.Add(-1) < 0 {
		return context.Canceled
	}
	return nil
}

// TestMergeRunsResumes stops a merge of four runs after two of its writes,
// checks the lookups in that state, and then checks that the next merge of
// the log, after a reopen, finishes it first.
func TestMergeRunsResumes(t *testing.T) {
	path := filepath.Join(t.TempDir(), "vault.db")
	s, err := OpenBoltStore(path, &BoltOptions{FingerprintMergeAfter: 1 << 16})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	want := make(map[string][]string)
	writeRuns(t, s, 4, want)

	stop := &failAfter{Context: ctx}
	stop.left.Store(3) // the list of runs, then two chunks
	if err := s.compactRuns(stop); !errors.Is(err, context.Canceled) {
		t.Fatalf("compactRuns with a context that ends err = %v, want context.Canceled", err)
	}
	names, _ := runsOf(t, s)
	if len(names) != 5 {
		t.Errorf("%d runs in the middle of a merge of runs, want the 4 inputs and the new run", len(names))
	}
	wantDisjointRuns(t, s, names)
	wantLookups(t, s, want)

	s = reopenBoltStore(t, s, path)
	wantLookups(t, s, want)

	// The next merge of the log ends the merge of runs before it writes its
	// own run, which is then the newest.
	wantMergedRunsFirst(t, s, want)
	err = s.view(ctx, func(tx *bolt.Tx) error {
		if v := tx.Bucket(bucketFingerprintRuns).Get(keyMergingRuns); v != nil {
			t.Errorf("inputs of a merge of runs are still listed after it ended: %x", v)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// wantDisjointRuns fails the test unless the runs names have keys, and no
// key is in two of them.
func wantDisjointRuns(t *testing.T, s *BoltStore, names [][]byte) {
	t.Helper()
	seen := make(map[string][]byte)
	err := s.view(t.Context(), func(tx *bolt.Tx) error {
		for _, name := range names {
			run := tx.Bucket(bucketFingerprintRuns).Bucket(name)
			if run.Stats().KeyN == 0 {
				t.Errorf("run %x is empty", name)
			}
			entries, err := runEntries(run)
			if err != nil {
				return err
			}
			for _, e := range entries {
				if other, ok := seen[string(e.key)]; ok {
					t.Errorf("runs %x and %x both have key %x", other, name, e.key[:8])
				}
				seen[string(e.key)] = name
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// TestPendingRunKeptByReopen checks that reopening the file and Compact,
// which a merge of the log may run between two of its writes, keep the run
// that the merge is writing.
func TestPendingRunKeptByReopen(t *testing.T) {
	s, err := OpenBoltStore(filepath.Join(t.TempDir(), "vault.db"), &BoltOptions{FingerprintMergeAfter: 1 << 16})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	want := make(map[string][]string)
	runModel(t, s, 1, 10, want)

	var name []byte
	err = s.commit(1, func(tx *bolt.Tx) (err error) {
		name, err = startRun(tx)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	s.reopenAfter = 0
	s.reopen()
	if s.reopens != 1 {
		t.Fatalf("the store reopened its file %d times, want 1", s.reopens)
	}
	if err := s.Compact(t.Context()); err != nil {
		t.Fatal(err)
	}
	if err := s.commit(1, func(tx *bolt.Tx) error { return finishRun(tx, name) }); err != nil {
		t.Errorf("finishRun after a reopen and Compact err = %v, want nil", err)
	}
	wantLookups(t, s, want)
}

func TestCompactionInputs(t *testing.T) {
	run := func(id, level byte) []byte { return []byte{0, 0, 0, 0, 0, 0, 0, id, level} }
	tests := []struct {
		name  string
		names [][]byte
		want  [][]byte
	}{
		{"too few", [][]byte{run(1, 0), run(2, 0), run(3, 0)}, nil},
		{"newest four", [][]byte{run(1, 1), run(2, 0), run(3, 0), run(4, 0), run(5, 0)}, [][]byte{run(2, 0), run(3, 0), run(4, 0), run(5, 0)}},
		{"levels differ", [][]byte{run(1, 1), run(2, 1), run(3, 0), run(4, 0)}, nil},
		{"older four", [][]byte{run(1, 0), run(2, 0), run(3, 0), run(4, 0), run(4, 1), run(5, 0)}, [][]byte{run(1, 0), run(2, 0), run(3, 0), run(4, 0)}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := compactionInputs(tt.names, runFanout)
			if !slices.EqualFunc(got, tt.want, bytes.Equal) {
				t.Errorf("compactionInputs = %x, want %x", got, tt.want)
			}
		})
	}
}

// writeRuns writes n runs of level 0, of 1,200 records each, more than two
// chunks of a merge of runs, with no merge of runs. It adds to want the
// tokens each fingerprint must then list.
func writeRuns(t *testing.T, s *BoltStore, n int, want map[string][]string) {
	t.Helper()
	ctx := context.Background()
	s.merge.fanout = 100
	defer func() { s.merge.fanout = runFanout }()

	for run := range n {
		var recs []*Record
		for i := run*1200 + 1; i <= (run+1)*1200; i++ {
			rec := mergeTestRecord(i)
			recs = append(recs, rec)
			want[string(rec.Fingerprint)] = append(want[string(rec.Fingerprint)], rec.Token)
		}
		if _, err := s.CreateBatch(ctx, recs); err != nil {
			t.Fatal(err)
		}
		closed := mergeTestRecord(run*1200 + 5)
		mergeTestChange(t, s, closed, nil, &sync.Map{})
		want[string(closed.Fingerprint)] = deleteString(want[string(closed.Fingerprint)], closed.Token)
		if err := s.mergeFingerprints(ctx); err != nil {
			t.Fatal(err)
		}
	}
	if names, _ := runsOf(t, s); len(names) != n {
		t.Fatalf("%d runs after %d merges of the log, want %d", len(names), n, n)
	}
}

// TestMergeRunsBeforeNewRun leaves four runs of level 0 unmerged, as a close
// between a merge of the log and its merge of runs does. The next merge of
// the log must merge them before it writes its own run, or the oldest of the
// five would never be merged again.
func TestMergeRunsBeforeNewRun(t *testing.T) {
	s, err := OpenBoltStore(filepath.Join(t.TempDir(), "vault.db"), &BoltOptions{FingerprintMergeAfter: 1 << 16})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	want := make(map[string][]string)
	writeRuns(t, s, 4, want)

	wantMergedRunsFirst(t, s, want)
}

// wantMergedRunsFirst creates one more record and merges the log. The merge
// must first end or start the merge of the four runs of level 0 that s has,
// so that the runs are then one of level 1 and one of level 0.
func wantMergedRunsFirst(t *testing.T, s *BoltStore, want map[string][]string) {
	t.Helper()
	extra := mergeTestRecord(5000)
	if err := s.Create(t.Context(), extra); err != nil {
		t.Fatal(err)
	}
	want[string(extra.Fingerprint)] = append(want[string(extra.Fingerprint)], extra.Token)

	if err := s.mergeFingerprints(t.Context()); err != nil {
		t.Fatal(err)
	}
	names, _ := runsOf(t, s)
	if len(names) != 2 || names[0][8] != 1 || names[1][8] != 0 {
		t.Errorf("runs after the next merge of the log = %x, want one of level 1, then one of level 0", names)
	}
	wantLookups(t, s, want)
}

// reopenBoltStore closes s and opens the file at path again with default
// options. The test's cleanup closes the new store.
func reopenBoltStore(t *testing.T, s *BoltStore, path string) *BoltStore {
	t.Helper()
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s, err := OpenBoltStore(path, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}
