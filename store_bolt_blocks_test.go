package tokenvault

import (
	"bytes"
	"errors"
	"fmt"
	"math/rand/v2"
	"path/filepath"
	"slices"
	"testing"

	"github.com/google/go-cmp/cmp"
	bolt "go.etcd.io/bbolt"
)

// blockTestOps returns n operations in key order with keys of nfp
// fingerprints and tokens of 1 to MaxTokenSize bytes, so that some lengths
// take a two-byte uvarint.
func blockTestOps(rng *rand.Rand, n, nfp int) []logOp {
	seen := make(map[string]bool)
	var ops []logOp
	for len(ops) < n {
		fp := mergeTestFingerprint(fmt.Sprint(rng.IntN(nfp)))
		token := make([]byte, 1+rng.IntN(MaxTokenSize))
		for i := range token {
			token[i] = byte('a' + rng.IntN(26))
		}
		key := append(fp, token...)
		if seen[string(key)] {
			continue
		}
		seen[string(key)] = true
		op := logAdd
		if rng.IntN(4) == 0 {
			op = logRemove
		}
		ops = append(ops, logOp{op: op, key: key})
	}
	slices.SortFunc(ops, func(a, b logOp) int { return bytes.Compare(a.key, b.key) })
	return ops
}

// blockTestRun opens a bbolt file in a temporary folder with an empty
// complete run, and returns the file and the run's name.
func blockTestRun(t *testing.T) (*bolt.DB, []byte) {
	t.Helper()
	db, err := bolt.Open(filepath.Join(t.TempDir(), "blocks.db"), 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	name := append(make([]byte, 8), 0)
	err = db.Update(func(tx *bolt.Tx) error {
		runs, err := tx.CreateBucket(bucketFingerprintRuns)
		if err != nil {
			return err
		}
		_, err = runs.CreateBucket(name)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return db, name
}

// wantRunEntries fails the test unless the run name of db holds exactly the
// entries of want, and each value is within runBlockBytes.
func wantRunEntries(t *testing.T, db *bolt.DB, name []byte, want []logOp) {
	t.Helper()
	err := db.View(func(tx *bolt.Tx) error {
		run := tx.Bucket(bucketFingerprintRuns).Bucket(name)
		err := run.ForEach(func(k, v []byte) error {
			if len(v) > runBlockBytes {
				t.Errorf("block under %x has %d bytes, want at most %d", k[:8], len(v), runBlockBytes)
			}
			return nil
		})
		if err != nil {
			return err
		}
		got, err := runOps(run)
		if err != nil {
			return err
		}
		if diff := cmp.Diff(want, got, cmp.AllowUnexported(logOp{})); diff != "" {
			t.Errorf("run entries (-want +got):\n%s", diff)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

func TestRunBlocksRoundTrip(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for _, n := range []int{1, 2, 17, 600} {
		t.Run(fmt.Sprint("entries=", n), func(t *testing.T) {
			db, name := blockTestRun(t)
			ops := blockTestOps(rng, n, 50)
			err := db.Update(func(tx *bolt.Tx) error {
				return putRunEntries(tx.Bucket(bucketFingerprintRuns).Bucket(name), ops)
			})
			if err != nil {
				t.Fatal(err)
			}
			wantRunEntries(t, db, name, ops)

			var keys int
			db.View(func(tx *bolt.Tx) error {
				keys = tx.Bucket(bucketFingerprintRuns).Bucket(name).Stats().KeyN
				return nil
			})
			if n == 600 && keys*4 > n {
				t.Errorf("%d entries of about 160 bytes took %d blocks, want fewer than a quarter as many", n, keys)
			}
		})
	}
}

// TestRunsLookupBlocks checks lookups in a run whose entries of one
// fingerprint span several blocks, start inside a block whose key belongs
// to another fingerprint, or sit in entries of schema version 4.
func TestRunsLookupBlocks(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	db, name := blockTestRun(t)
	ops := blockTestOps(rng, 400, 6)

	// Every fifth entry is written one per key, with an empty value or
	// logRemove, as schema version 4 did, between blocks of the others.
	var blocks []logOp
	err := db.Update(func(tx *bolt.Tx) error {
		run := tx.Bucket(bucketFingerprintRuns).Bucket(name)
		for i, op := range ops {
			if i%5 != 0 {
				blocks = append(blocks, op)
				continue
			}
			if err := putRunBlocks(run, blocks); err != nil {
				return err
			}
			blocks = nil
			var v []byte
			if op.op == logRemove {
				v = []byte{logRemove}
			}
			if err := run.Put(op.key, v); err != nil {
				return err
			}
		}
		return putRunBlocks(run, blocks)
	})
	if err != nil {
		t.Fatal(err)
	}

	for i := range 8 { // fingerprints 6 and 7 have no entry
		fp := mergeTestFingerprint(fmt.Sprint(i))
		want := make(map[string]bool)
		for _, op := range ops {
			if bytes.HasPrefix(op.key, fp) {
				want[string(op.key[len(fp):])] = op.op == logAdd
			}
		}
		got := make(map[string]bool)
		if err := db.View(func(tx *bolt.Tx) error { return runsLookup(tx, fp, got) }); err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("runsLookup of fingerprint %d (-want +got):\n%s", i, diff)
		}
	}
}

// TestDropRunPrefix deletes the keys up to a bound that falls before, inside
// and between blocks, and after the last key, and checks what is left.
func TestDropRunPrefix(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 6))
	ops := blockTestOps(rng, 300, 40)
	bounds := map[string][]byte{
		"nil":          nil,
		"before first": []byte{0},
		"first key":    ops[0].key,
		"inside":       ops[150].key,
		"between keys": append(bytes.Clone(ops[201].key), 0),
		"last key":     ops[len(ops)-1].key,
		"after last":   bytes.Repeat([]byte{0xff}, fingerprintSize+2),
	}
	for label, last := range bounds {
		t.Run(label, func(t *testing.T) {
			db, name := blockTestRun(t)
			err := db.Update(func(tx *bolt.Tx) error {
				return putRunEntries(tx.Bucket(bucketFingerprintRuns).Bucket(name), ops)
			})
			if err != nil {
				t.Fatal(err)
			}
			err = db.Update(func(tx *bolt.Tx) error {
				return dropRunPrefix(tx.Bucket(bucketFingerprintRuns).Bucket(name), last)
			})
			if err != nil {
				t.Fatal(err)
			}
			want := []logOp{}
			for _, op := range ops {
				if last != nil && bytes.Compare(op.key, last) > 0 {
					want = append(want, op)
				}
			}
			wantRunEntries(t, db, name, want)
		})
	}
}

func TestDecodeRunBlock(t *testing.T) {
	k := append(mergeTestFingerprint("k"), "tok_a"...)
	next := append(mergeTestFingerprint("k"), "tok_b"...)
	entry := func(op byte, key []byte) []byte {
		return append([]byte{op, byte(len(key))}, key...)
	}
	good := map[string]struct {
		v    []byte
		want []runEntry
	}{
		"version 4 addition": {[]byte{}, []runEntry{{logAdd, k}}},
		"version 4 removal":  {[]byte{logRemove}, []runEntry{{logRemove, k}}},
		"two entries":        {append([]byte{logAdd}, entry(logRemove, next)...), []runEntry{{logAdd, k}, {logRemove, next}}},
	}
	for name, tt := range good {
		got, err := decodeRunBlock(nil, k, tt.v)
		if err != nil || !cmp.Equal(got, tt.want, cmp.AllowUnexported(runEntry{})) {
			t.Errorf("%s: decodeRunBlock = %v, %v; want %v, nil", name, got, err, tt.want)
		}
	}

	bad := map[string][]byte{
		"nested bucket":       nil,
		"first operation":     {9},
		"entry operation":     append([]byte{logAdd}, entry(9, next)...),
		"key out of order":    append([]byte{logAdd}, entry(logAdd, k[:len(k)-1])...),
		"same key twice":      append([]byte{logAdd}, entry(logAdd, k)...),
		"key is fingerprint":  append([]byte{logAdd}, entry(logAdd, next[:fingerprintSize])...),
		"length past the end": append([]byte{logAdd}, entry(logAdd, next)[:len(next)]...),
		"length cut short":    {logAdd, logAdd, 0x80},
	}
	for name, v := range bad {
		if _, err := decodeRunBlock(nil, k, v); !errors.Is(err, ErrIntegrity) {
			t.Errorf("%s: decodeRunBlock err = %v, want ErrIntegrity", name, err)
		}
	}
	for _, short := range [][]byte{k[:fingerprintSize], k[:1]} {
		if _, err := decodeRunBlock(nil, short, []byte{}); !errors.Is(err, ErrIntegrity) {
			t.Errorf("decodeRunBlock of a block key of %d bytes err = %v, want ErrIntegrity", len(short), err)
		}
	}
}

// FuzzDecodeRunBlock checks that decodeRunBlock never panics, and that the
// entries of a block it accepts start with the block's key and ascend.
func FuzzDecodeRunBlock(f *testing.F) {
	k := append(mergeTestFingerprint("k"), "tok_a"...)
	f.Add(k, []byte{})
	f.Add(k, []byte{logRemove})
	f.Add(k, append([]byte{logAdd, logAdd, byte(len(k) + 1)}, append(bytes.Clone(k), 'z')...))
	f.Fuzz(func(t *testing.T, k, v []byte) {
		entries, err := decodeRunBlock(nil, k, v)
		if err != nil {
			if !errors.Is(err, ErrIntegrity) {
				t.Fatalf("decodeRunBlock err = %v, want ErrIntegrity", err)
			}
			return
		}
		if !bytes.Equal(entries[0].key, k) {
			t.Fatalf("first entry %x, want the block's key %x", entries[0].key, k)
		}
		for i := 1; i < len(entries); i++ {
			if bytes.Compare(entries[i-1].key, entries[i].key) >= 0 {
				t.Fatalf("entries %d and %d are out of order", i-1, i)
			}
		}
	})
}
