package tokenvault

import (
	"bytes"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"

	bolt "go.etcd.io/bbolt"
)

// damageStore creates a store at path, closed, with four runs of level 0 in
// blocks. The second has 3,000 entries, more than a merge of runs reads at
// once, and the others have 40 each, so that a merge reads them to their
// end. It returns the fingerprints, the entries of the runs, oldest first,
// and the name of the second run.
func damageStore(t *testing.T, path string) (fps [][]byte, runs [][]logOp, big []byte) {
	t.Helper()
	rng := rand.New(rand.NewPCG(21, 22))
	fps = modelFingerprints()
	keys := modelKeys(rng, fps, 400)
	for i := range 4 {
		p := 40.0 / float64(len(keys))
		if i == 1 {
			p = 3000.0 / float64(len(keys))
		}
		runs = append(runs, modelRunOps(rng, keys, p))
	}
	s := modelStore(t, path, runs, []int{0, 0, 0, 0}, []int{layoutBlocks, layoutBlocks, layoutBlocks, layoutBlocks}, rng)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	return fps, runs, modelRunName(2, 0)
}

// blockKeys returns the keys of the blocks of run, in order.
func blockKeys(t *testing.T, path string, run []byte) [][]byte {
	t.Helper()
	var keys [][]byte
	rawBoltUpdate(t, path, func(tx *bolt.Tx) error {
		return tx.Bucket(bucketFingerprintRuns).Bucket(run).ForEach(func(k, _ []byte) error {
			keys = append(keys, bytes.Clone(k))
			return nil
		})
	})
	return keys
}

// lastBlockRead returns the index of the block of run that ends the first
// read of a merge of runs, which reads whole blocks until it has
// mergeChunk entries.
func lastBlockRead(t *testing.T, path string, run []byte) int {
	t.Helper()
	i, n := 0, 0
	rawBoltUpdate(t, path, func(tx *bolt.Tx) error {
		c := tx.Bucket(bucketFingerprintRuns).Bucket(run).Cursor()
		for k, v := c.First(); k != nil; k, v = c.Next() {
			entries, err := decodeRunBlock(nil, k, v)
			if err != nil {
				return err
			}
			if n += len(entries); n >= mergeChunk {
				return nil
			}
			i++
		}
		return errors.New("the run has fewer entries than a merge reads at once")
	})
	return i
}

// raiseLastKey sets the first byte of the last entry's key in the block
// under key to 0xff, so that the entry sorts after the next blocks but the
// block stays in order.
func raiseLastKey(run *bolt.Bucket, key []byte) error {
	v := bytes.Clone(run.Get(key))
	entries, err := decodeRunBlock(nil, key, v)
	if err != nil {
		return err
	}
	if len(entries) < 2 {
		return fmt.Errorf("block %x has %d entries, want at least 2", key[:8], len(entries))
	}
	last := entries[len(entries)-1].key
	last[0] = 0xff // last points into v
	return run.Put(key, v)
}

// TestMergeRunsBlockPastNextBlock damages one block of a run so that its
// last entry sorts after the keys of the blocks that follow, while its own
// entries stay in order. A merge of runs must report ErrIntegrity and lose
// no entry. A merge that reads the damaged block last would otherwise take
// the raised key as the end of its range and delete the blocks it has not
// read. One that reads it earlier would keep blocks it has already moved.
func TestMergeRunsBlockPastNextBlock(t *testing.T) {
	for _, where := range []string{"first block", "block a read ends with"} {
		t.Run(where, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "vault.db")
			fps, runs, big := damageStore(t, path)
			keys := blockKeys(t, path, big)
			i := 0
			if where != "first block" {
				i = lastBlockRead(t, path, big)
			}
			rawBoltUpdate(t, path, func(tx *bolt.Tx) error {
				return raiseLastKey(tx.Bucket(bucketFingerprintRuns).Bucket(big), keys[i])
			})

			s, err := OpenBoltStore(path, nil)
			if err != nil {
				t.Fatal(err)
			}
			defer s.Close()
			if err := s.compactRuns(t.Context()); !errors.Is(err, ErrIntegrity) {
				t.Errorf("compactRuns of a run whose block %d passes the next block err = %v, want ErrIntegrity", i, err)
			}
			if s.guard.damaged.Load() {
				t.Error("compactRuns panicked")
			}

			// The next block's fingerprint is read through the damaged
			// block, which sorts before it.
			if _, err := s.FindByFingerprint(t.Context(), keys[i+1][:fingerprintSize]); !errors.Is(err, ErrIntegrity) {
				t.Errorf("FindByFingerprint of the next block's fingerprint err = %v, want ErrIntegrity", err)
			}

			// The failed merge lost no entry: the raised key still counts
			// as one.
			want := 0
			for _, run := range runs {
				want += len(run)
			}
			if got := countRunEntries(t, s, fps); got != want {
				t.Errorf("runs list %d entries after the failed merge, want %d", got, want)
			}
		})
	}
}

// countRunEntries returns the number of entries in the complete runs of s,
// decoding each block alone.
func countRunEntries(t *testing.T, s *BoltStore, fps [][]byte) int {
	t.Helper()
	n := 0
	err := s.view(t.Context(), func(tx *bolt.Tx) error {
		names, err := liveRuns(tx)
		if err != nil {
			return err
		}
		for _, name := range names {
			entries, err := runEntries(tx.Bucket(bucketFingerprintRuns).Bucket(name))
			if err != nil {
				return err
			}
			n += len(entries)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// TestRunBlockKeyTooShort puts a block whose key is a bare fingerprint, or
// shorter, into a run. decodeRunBlock rejects such keys inside a block, so
// it must reject them as a block's key too. Otherwise FindByFingerprint
// listed an empty token for a bare fingerprint, and merges of runs moved
// the damaged key on.
func TestRunBlockKeyTooShort(t *testing.T) {
	fp := mergeTestFingerprint("short key")
	for _, key := range [][]byte{fp, fp[:5]} {
		for _, value := range [][]byte{{}, {logAdd}, {logRemove}} {
			t.Run(fmt.Sprintf("key=%d bytes/value=%x", len(key), value), func(t *testing.T) {
				path := filepath.Join(t.TempDir(), "vault.db")
				damageStore(t, path)
				// A run of its own, so that the key breaks no order.
				rawBoltUpdate(t, path, func(tx *bolt.Tx) error {
					runs := tx.Bucket(bucketFingerprintRuns)
					run, err := runs.CreateBucket(modelRunName(5, 0))
					if err != nil {
						return err
					}
					if err := run.Put(key, value); err != nil {
						return err
					}
					return runs.SetSequence(5)
				})

				s, err := OpenBoltStore(path, nil)
				if err != nil {
					t.Fatal(err)
				}
				defer s.Close()
				if tokens, err := s.FindByFingerprint(t.Context(), fp); !errors.Is(err, ErrIntegrity) {
					t.Errorf("FindByFingerprint = %q, %v; want ErrIntegrity", tokens, err)
				}
				if err := s.compactRuns(t.Context()); !errors.Is(err, ErrIntegrity) {
					t.Errorf("compactRuns err = %v, want ErrIntegrity", err)
				}
				if s.guard.damaged.Load() {
					t.Error("a read of the run panicked")
				}
			})
		}
	}
}

// TestRunBlockRandomDamage truncates a block of a run, overwrites some of
// its bytes or moves it under another key, and then looks up every
// fingerprint and merges the runs. Each must return nil or an error
// wrapping ErrIntegrity, without a panic. Damage that leaves a valid block,
// such as a cut at the end of an entry, reads without an error, because a
// block has no checksum.
func TestRunBlockRandomDamage(t *testing.T) {
	dir := t.TempDir()
	clean := filepath.Join(dir, "clean.db")
	fps, _, big := damageStore(t, clean)
	keys := blockKeys(t, clean, big)
	data, err := os.ReadFile(clean)
	if err != nil {
		t.Fatal(err)
	}

	rng := rand.New(rand.NewPCG(31, 32))
	reported := 0
	for i := range 40 {
		path := filepath.Join(dir, fmt.Sprintf("damaged%d.db", i))
		if err := os.WriteFile(path, data, 0o600); err != nil {
			t.Fatal(err)
		}
		key := keys[rng.IntN(len(keys))]
		kind := []string{"truncate", "overwrite", "move"}[i%3]
		rawBoltUpdate(t, path, func(tx *bolt.Tx) error {
			run := tx.Bucket(bucketFingerprintRuns).Bucket(big)
			v := bytes.Clone(run.Get(key))
			switch kind {
			case "truncate":
				return run.Put(key, v[:rng.IntN(len(v))])
			case "overwrite":
				for range 1 + rng.IntN(4) {
					v[rng.IntN(len(v))] = byte(rng.IntN(256))
				}
				return run.Put(key, v)
			}
			moved := bytes.Clone(key)
			moved[rng.IntN(len(moved))] ^= byte(1 + rng.IntN(255))
			if err := run.Delete(key); err != nil {
				return err
			}
			return run.Put(moved, v)
		})

		s, err := OpenBoltStore(path, nil)
		if err != nil {
			t.Fatal(err)
		}
		for _, fp := range fps {
			if _, err := s.FindByFingerprint(t.Context(), fp); err != nil {
				if !errors.Is(err, ErrIntegrity) {
					t.Errorf("%s of block %x: FindByFingerprint err = %v, want nil or ErrIntegrity", kind, key[:8], err)
				}
				reported++
			}
		}
		if err := s.compactRuns(t.Context()); err != nil {
			if !errors.Is(err, ErrIntegrity) {
				t.Errorf("%s of block %x: compactRuns err = %v, want nil or ErrIntegrity", kind, key[:8], err)
			}
			reported++
		}
		if s.guard.damaged.Load() {
			t.Errorf("%s of block %x: a read of the runs panicked", kind, key[:8])
		}
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}
	}
	if reported == 0 {
		t.Error("no damage was reported, want at least one ErrIntegrity")
	}
}
