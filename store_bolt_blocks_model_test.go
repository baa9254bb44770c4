package tokenvault

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	bolt "go.etcd.io/bbolt"
)

// Layouts of a run that putModelRun writes.
const (
	layoutBlocks  = iota // blocks of up to runBlockBytes
	layoutEntries        // one entry per key, as schema version 4 wrote runs
	layoutMixed          // stretches of blocks between entries of version 4
)

// modelFingerprints returns fingerprints that sit next to each other in byte
// order: a base, the base with its last byte 0x00, 0x01, 0x02 and 0xff, and
// the fingerprint after the one ending in 0xff, then four unrelated ones.
func modelFingerprints() [][]byte {
	base := mergeTestFingerprint("adjacent")
	var fps [][]byte
	for _, last := range []byte{0x00, 0x01, 0x02, 0xff} {
		fp := bytes.Clone(base)
		fp[fingerprintSize-1] = last
		fps = append(fps, fp)
	}
	carry := bytes.Clone(base)
	carry[fingerprintSize-2]++
	carry[fingerprintSize-1] = 0x00
	fps = append(fps, carry)
	for i := range 4 {
		fps = append(fps, mergeTestFingerprint(fmt.Sprint("model ", i)))
	}
	return fps
}

// modelKeys returns, for each fingerprint of fps, n keys of that
// fingerprint and a token of card shape, with a few tokens that are
// prefixes of others and a few of MaxTokenSize bytes.
func modelKeys(rng *rand.Rand, fps [][]byte, n int) [][]byte {
	var keys [][]byte
	for _, fp := range fps {
		seen := make(map[string]bool)
		for len(seen) < n {
			var token string
			switch rng.IntN(10) {
			case 0:
				token = fmt.Sprintf("tok_%d", rng.IntN(100)) // prefixes of other tokens
			case 1:
				token = string(bytes.Repeat([]byte{byte('a' + rng.IntN(26))}, MaxTokenSize))
			default:
				token = fmt.Sprintf("tok_%016d", rng.Int64N(1e16))
			}
			if seen[token] {
				continue
			}
			seen[token] = true
			keys = append(keys, append(bytes.Clone(fp), token...))
		}
	}
	slices.SortFunc(keys, bytes.Compare)
	return keys
}

// modelRunOps returns the entries of a run: each key of keys with
// probability p, sorted, and a removal for about one in four.
func modelRunOps(rng *rand.Rand, keys [][]byte, p float64) []logOp {
	var ops []logOp
	for _, key := range keys {
		if rng.Float64() >= p {
			continue
		}
		op := logAdd
		if rng.IntN(4) == 0 {
			op = logRemove
		}
		ops = append(ops, logOp{op: op, key: bytes.Clone(key)})
	}
	return ops
}

// putModelRun writes ops, sorted by key, into the new run name of runs in
// the given layout.
func putModelRun(runs *bolt.Bucket, name []byte, ops []logOp, layout int, rng *rand.Rand) error {
	run, err := runs.CreateBucket(name)
	if err != nil {
		return err
	}
	for len(ops) > 0 {
		n := len(ops)
		entries := layout == layoutEntries
		if layout == layoutMixed {
			n = min(len(ops), 1+rng.IntN(40))
			entries = rng.IntN(2) == 0
		}
		if !entries {
			if err := putRunBlocks(run, ops[:n]); err != nil {
				return err
			}
			ops = ops[n:]
			continue
		}
		for _, op := range ops[:n] {
			v := []byte{}
			if op.op == logRemove {
				v = []byte{logRemove}
			}
			if err := run.Put(op.key, v); err != nil {
				return err
			}
		}
		ops = ops[n:]
	}
	return nil
}

// modelLookups returns the tokens that each fingerprint of fps must list
// after the runs, oldest first.
func modelLookups(fps [][]byte, runs [][]logOp) map[string][]string {
	live := make(map[string]map[string]bool)
	for _, fp := range fps {
		live[string(fp)] = make(map[string]bool)
	}
	for _, run := range runs {
		for _, op := range run {
			fp := string(op.key[:fingerprintSize])
			live[fp][string(op.key[fingerprintSize:])] = op.op == logAdd
		}
	}
	want := make(map[string][]string)
	for fp, tokens := range live {
		want[fp] = []string{}
		for token, ok := range tokens {
			if ok {
				want[fp] = append(want[fp], token)
			}
		}
	}
	return want
}

// modelRunName returns the name of the run numbered id of level.
func modelRunName(id uint64, level byte) []byte {
	name := make([]byte, runNameSize)
	for i := range 8 {
		name[7-i] = byte(id >> (8 * i))
	}
	name[8] = level
	return name
}

// modelStore creates a store at path whose runs are runs, oldest first,
// named 1, 2, ... with the given levels and layouts, written without the
// store. It returns the store, opened with default options.
func modelStore(t *testing.T, path string, runs [][]logOp, levels, layouts []int, rng *rand.Rand) *BoltStore {
	t.Helper()
	s, err := OpenBoltStore(path, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	rawBoltUpdate(t, path, func(tx *bolt.Tx) error {
		bucket := tx.Bucket(bucketFingerprintRuns)
		for i, ops := range runs {
			if err := putModelRun(bucket, modelRunName(uint64(i+1), byte(levels[i])), ops, layouts[i], rng); err != nil {
				return err
			}
		}
		return bucket.SetSequence(uint64(len(runs)))
	})
	s, err = OpenBoltStore(path, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// TestRunsLookupModel looks up adjacent fingerprints, some with hundreds
// of entries, in runs of blocks, of entries of schema version 4 and of both,
// and compares the tokens with a model of the runs.
func TestRunsLookupModel(t *testing.T) {
	for seed := range uint64(4) {
		t.Run(fmt.Sprint("seed=", seed), func(t *testing.T) {
			rng := rand.New(rand.NewPCG(seed, 7))
			fps := modelFingerprints()
			keys := modelKeys(rng, fps, 60)
			// One fingerprint gets hundreds of entries, which span blocks.
			keys = append(keys, modelKeys(rng, fps[1:2], 400)...)
			slices.SortFunc(keys, bytes.Compare)
			keys = slices.CompactFunc(keys, bytes.Equal)

			var runs [][]logOp
			var levels, layouts []int
			for i := range 5 {
				runs = append(runs, modelRunOps(rng, keys, 0.5))
				levels = append(levels, 0)
				layouts = append(layouts, i%3)
			}
			s := modelStore(t, filepath.Join(t.TempDir(), "vault.db"), runs, levels, layouts, rng)

			want := modelLookups(fps, runs)
			want[string(mergeTestFingerprint("absent"))] = []string{}
			wantLookups(t, s, want)
		})
	}
}

// TestMergeRunsModel merges runs of blocks, of entries of schema version 4
// and of both, with and without an older run, stopping the merge after each
// chunk and reopening the file between. Lookups must match the model at
// every stop, and the merged run must hold the newest entry of each key.
func TestMergeRunsModel(t *testing.T) {
	for _, oldest := range []bool{true, false} {
		for seed := range uint64(3) {
			t.Run(fmt.Sprint("oldest=", oldest, "/seed=", seed), func(t *testing.T) {
				testMergeRunsModel(t, seed, oldest)
			})
		}
	}
}

func testMergeRunsModel(t *testing.T, seed uint64, oldest bool) {
	rng := rand.New(rand.NewPCG(seed, 11))
	fps := modelFingerprints()
	keys := modelKeys(rng, fps, 400)

	var runs [][]logOp
	var levels, layouts []int
	if !oldest {
		runs = append(runs, modelRunOps(rng, keys, 0.3))
		levels = append(levels, 1)
		layouts = append(layouts, layoutBlocks)
	}
	for i := range 4 {
		runs = append(runs, modelRunOps(rng, keys, 0.5))
		levels = append(levels, 0)
		layouts = append(layouts, []int{layoutBlocks, layoutEntries, layoutMixed, layoutBlocks}[i])
	}
	path := filepath.Join(t.TempDir(), "vault.db")
	s := modelStore(t, path, runs, levels, layouts, rng)
	want := modelLookups(fps, runs)
	wantLookups(t, s, want)

	stops := 0
	for {
		stop := &failAfter{Context: context.Background()}
		stop.left.Store(2) // the list of runs, then one chunk
		err := s.compactRuns(stop)
		if err == nil {
			break
		}
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("compactRuns err = %v, want context.Canceled or nil", err)
		}
		stops++
		wantLookups(t, s, want)
		s = reopenBoltStore(t, s, path)
		wantLookups(t, s, want)
	}
	if stops < 3 {
		t.Errorf("the merge stopped %d times, want at least 3", stops)
	}

	names, _ := runsOf(t, s)
	wantNames := [][]byte{modelRunName(uint64(len(runs)), 1)}
	if !oldest {
		wantNames = [][]byte{modelRunName(1, 1), modelRunName(uint64(len(runs)), 1)}
	}
	if !slices.EqualFunc(names, wantNames, bytes.Equal) {
		t.Fatalf("runs after the merge = %x, want %x", names, wantNames)
	}

	inputs := runs[len(runs)-4:]
	var all []logOp
	for i, run := range inputs {
		for _, op := range run {
			all = append(all, logOp{seq: uint64(i), op: op.op, key: op.key})
		}
	}
	merged := latestOps(all)
	if oldest {
		merged = slices.DeleteFunc(merged, func(op logOp) bool { return op.op == logRemove })
	}
	for i := range merged {
		merged[i].seq = 0
	}
	err := s.view(t.Context(), func(tx *bolt.Tx) error {
		got, err := runOps(tx.Bucket(bucketFingerprintRuns).Bucket(wantNames[len(wantNames)-1]))
		if err != nil {
			return err
		}
		if !slices.EqualFunc(got, merged, func(a, b logOp) bool { return a.op == b.op && bytes.Equal(a.key, b.key) }) {
			t.Errorf("merged run has %d entries, want the newest entry of each of %d keys", len(got), len(merged))
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	wantLookups(t, s, want)
}

// TestMergeRunsResumesVersion4 stops a merge of four runs and turns the
// file into one of schema version 4, with one entry per key in the inputs
// and in the merge's run. The open must upgrade it and lookups must match.
// The next merge of the log must then end the merge of runs first.
func TestMergeRunsResumesVersion4(t *testing.T) {
	path := filepath.Join(t.TempDir(), "vault.db")
	s, err := OpenBoltStore(path, &BoltOptions{FingerprintMergeAfter: 1 << 16})
	if err != nil {
		t.Fatal(err)
	}
	want := make(map[string][]string)
	writeRuns(t, s, 4, want)

	stop := &failAfter{Context: context.Background()}
	stop.left.Store(3) // the list of runs, then two chunks
	if err := s.compactRuns(stop); !errors.Is(err, context.Canceled) {
		t.Fatalf("compactRuns with a context that ends err = %v, want context.Canceled", err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	rawBoltUpdate(t, path, func(tx *bolt.Tx) error {
		if tx.Bucket(bucketFingerprintRuns).Get(keyMergingRuns) == nil {
			return errors.New("no merge of runs is in progress")
		}
		return downgradeSchema(tx, 4)
	})

	var logs bytes.Buffer
	s, err = OpenBoltStore(path, &BoltOptions{Logger: slog.New(slog.NewJSONHandler(&logs, nil))})
	if err != nil {
		t.Fatalf("OpenBoltStore of schema version 4 err = %v, want nil", err)
	}
	t.Cleanup(func() { s.Close() })
	if msg := onlyLogRecord(t, &logs).Msg; !strings.Contains(msg, fmt.Sprintf("schema version 4 to %d", boltSchemaVersion)) {
		t.Errorf("upgrade log message = %q, want one that names versions 4 and %d", msg, boltSchemaVersion)
	}
	names, _ := runsOf(t, s)
	if len(names) != 5 {
		t.Fatalf("%d runs in the middle of a merge of runs, want the 4 inputs and the new run", len(names))
	}
	wantDisjointRuns(t, s, names)
	wantLookups(t, s, want)

	wantMergedRunsFirst(t, s, want)
	s = reopenBoltStore(t, s, path)
	wantLookups(t, s, want)
}

// TestBoltSchemaVersionNext checks that a file of the schema version after
// this build's is rejected unchanged, with both versions in the error.
func TestBoltSchemaVersionNext(t *testing.T) {
	path := filepath.Join(t.TempDir(), "vault.db")
	s, err := OpenBoltStore(path, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	next := uint32(boltSchemaVersion + 1)
	rawBoltUpdate(t, path, func(tx *bolt.Tx) error {
		return tx.Bucket(bucketSchema).Put(keySchemaVersion, binary.BigEndian.AppendUint32(nil, next))
	})
	before, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}

	_, err = OpenBoltStore(path, nil)
	if !errors.Is(err, ErrSchemaVersion) {
		t.Fatalf("OpenBoltStore of schema version %d err = %v, want ErrSchemaVersion", next, err)
	}
	if want := fmt.Sprintf("schema version %d, this build reads version %d", next, boltSchemaVersion); !strings.Contains(err.Error(), want) {
		t.Errorf("OpenBoltStore err = %q, want one that contains %q", err, want)
	}
	after, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(before, after) {
		t.Error("OpenBoltStore changed the file it rejected")
	}
}
