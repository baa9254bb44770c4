package tokenvault

import (
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"slices"

	bolt "go.etcd.io/bbolt"
)

// Sorted runs of the fingerprint index.
//
// A merge of the fingerprint log writes its entries, sorted, into a bucket of
// its own, a run, rather than into one large sorted index. Keys put into a
// large index land on nearly each of its pages, so every merge would rewrite
// the whole index and cost in proportion to the store. A new run costs in
// proportion to the log. Runs are the nested buckets of bucketFingerprintRuns,
// named by a number that grows with their age and a level byte. A merge writes
// a run of level 0. When the runFanout newest runs have the same level, a
// compaction merges them into one run of the next level, so each entry is
// rewritten about once per level and a lookup reads at most runFanout-1 runs
// per level.
//
// A run maps fingerprint || token to an empty value when the key is in the
// index and to logRemove when an older entry is removed. Lookups read the
// bucketFingerprints index first, which files written before runs existed
// still have and which nothing writes any more, then the runs from the
// oldest, then the log; for a key, the newest entry wins.
//
// The run being written is named under keyPendingRun, and readers skip it.
// The commit that completes it clears that key and deletes the runs it
// replaces, so readers see either the inputs of a compaction or its result.

var (
	bucketFingerprintRuns = []byte("fingerprint-runs") // run name -> run; keyPendingRun -> name of the run being written
	keyPendingRun         = []byte("pending")
)

// runNameSize is the size of a run's name: a big-endian uint64, then the level.
const runNameSize = 9

// runFanout is how many runs of one level a compaction merges.
const runFanout = 4

// runRemoved is the value of a run entry that removes its key.
var runRemoved = []byte{logRemove}

// liveRuns returns the names of the complete runs in tx, oldest first.
func liveRuns(tx *bolt.Tx) ([][]byte, error) {
	runs := tx.Bucket(bucketFingerprintRuns)
	pending := runs.Get(keyPendingRun)
	var names [][]byte
	c := runs.Cursor()
	for k, v := c.First(); k != nil; k, v = c.Next() {
		switch {
		case v != nil && bytes.Equal(k, keyPendingRun):
			continue
		case v != nil || len(k) != runNameSize:
			return nil, fmt.Errorf("fingerprint runs have an entry with a key of length %d: %w", len(k), ErrIntegrity)
		case bytes.Equal(k, pending):
			continue
		}
		names = append(names, bytes.Clone(k))
	}
	return names, nil
}

// runsLookup sets live[token] for each entry of fingerprint in the complete
// runs of tx, oldest first: true if the entry adds the token, false if it
// removes it.
func runsLookup(tx *bolt.Tx, fingerprint []byte, live map[string]bool) error {
	names, err := liveRuns(tx)
	if err != nil {
		return err
	}

	runs := tx.Bucket(bucketFingerprintRuns)
	for _, name := range names {
		c := runs.Bucket(name).Cursor()
		for k, v := c.Seek(fingerprint); k != nil && bytes.HasPrefix(k, fingerprint); k, v = c.Next() {
			removed, err := runEntryRemoves(v)
			if err != nil {
				return err
			}
			live[string(k[len(fingerprint):])] = !removed
		}
	}
	return nil
}

// runEntryRemoves decodes the value of a run entry.
func runEntryRemoves(v []byte) (bool, error) {
	switch {
	case len(v) == 0:
		return false, nil
	case bytes.Equal(v, runRemoved):
		return true, nil
	}
	return false, fmt.Errorf("fingerprint run entry has a value of length %d: %w", len(v), ErrIntegrity)
}

// startRun deletes the pending run, if a merge or compaction left one, and
// creates an empty pending run of level. Its number is id, or the next of
// the runs bucket when id is nil.
func startRun(tx *bolt.Tx, id []byte, level byte) (name []byte, err error) {
	runs := tx.Bucket(bucketFingerprintRuns)
	if err := dropPendingRun(runs); err != nil {
		return nil, err
	}

	if id == nil {
		seq, err := runs.NextSequence()
		if err != nil {
			return nil, err
		}
		id = binary.BigEndian.AppendUint64(nil, seq)
	}
	name = append(bytes.Clone(id[:8]), level)
	if _, err := runs.CreateBucket(name); err != nil {
		return nil, err
	}
	return name, runs.Put(keyPendingRun, name)
}

// dropPendingRun deletes the pending run of runs, if any.
func dropPendingRun(runs *bolt.Bucket) error {
	pending := runs.Get(keyPendingRun)
	if pending == nil {
		return nil
	}
	if runs.Bucket(pending) != nil {
		if err := runs.DeleteBucket(pending); err != nil {
			return err
		}
	}
	return runs.Delete(keyPendingRun)
}

// appendToRun puts ops, sorted by key and each key after those the run
// holds, into the pending run name.
func appendToRun(tx *bolt.Tx, name []byte, ops []logOp) error {
	run, err := pendingRun(tx, name)
	if err != nil {
		return err
	}

	run.FillPercent = appendFill
	for _, op := range ops {
		var v []byte
		if op.op == logRemove {
			v = runRemoved
		}
		if err := run.Put(op.key, v); err != nil {
			return err
		}
	}
	return nil
}

// pendingRun returns the run name if it is still the pending one.
func pendingRun(tx *bolt.Tx, name []byte) (*bolt.Bucket, error) {
	runs := tx.Bucket(bucketFingerprintRuns)
	if !bytes.Equal(runs.Get(keyPendingRun), name) {
		return nil, fmt.Errorf("fingerprint run %x is no longer pending: %w", name, ErrIntegrity)
	}
	return runs.Bucket(name), nil
}

// finishRun makes the pending run name complete and deletes the runs it
// replaces.
func finishRun(tx *bolt.Tx, name []byte, replaced [][]byte) error {
	if _, err := pendingRun(tx, name); err != nil {
		return err
	}

	runs := tx.Bucket(bucketFingerprintRuns)
	for _, old := range replaced {
		if err := runs.DeleteBucket(old); err != nil {
			return err
		}
	}
	return runs.Delete(keyPendingRun)
}

// compactionInputs returns the runFanout newest of names, oldest first, if
// they all have the same level, and nil otherwise.
func compactionInputs(names [][]byte) [][]byte {
	if len(names) < runFanout {
		return nil
	}
	newest := names[len(names)-runFanout:]
	for _, name := range newest {
		if name[8] != newest[0][8] {
			return nil
		}
	}
	return newest
}

// compactRuns merges the newest runs while runFanout of them have the same
// level.
func (s *BoltStore) compactRuns(ctx context.Context) error {
	for {
		var names [][]byte
		err := s.view(ctx, func(tx *bolt.Tx) (err error) {
			names, err = liveRuns(tx)
			return err
		})
		if err != nil {
			return err
		}

		inputs := compactionInputs(names)
		if inputs == nil {
			return nil
		}
		if err := s.mergeRuns(ctx, inputs, len(inputs) == len(names)); err != nil {
			return err
		}
		s.merge.compactions.Add(1)
	}
}

// mergeRuns merges the runs inputs, oldest first, into one run of the next
// level, named with the number of the newest input, so that it sorts between
// the runs older and newer than the inputs. oldest reports whether no run is
// older than the inputs. Removals are then dropped, since no older entry is
// left for them to remove, unless bucketFingerprints has the key.
func (s *BoltStore) mergeRuns(ctx context.Context, inputs [][]byte, oldest bool) error {
	newest := inputs[len(inputs)-1]
	var name []byte
	err := s.commit(1, func(tx *bolt.Tx) (err error) {
		name, err = startRun(tx, newest, newest[8]+1)
		return err
	})
	if err != nil {
		return err
	}

	var after []byte
	for {
		ops, next, err := s.readRuns(ctx, inputs, after, mergeChunk, oldest)
		if err != nil {
			return err
		}
		if len(ops) > 0 {
			err := s.commit(len(ops), func(tx *bolt.Tx) error { return appendToRun(tx, name, ops) })
			if err != nil {
				return err
			}
		}
		if next == nil {
			break
		}
		after = next
	}

	return s.commit(1, func(tx *bolt.Tx) error { return finishRun(tx, name, inputs) })
}

// readRuns returns the next entries of the runs inputs, oldest first, after
// the key after (from the first key when after is nil), sorted by key, with
// the newest input's entry for each key. It reads up to limit entries of each
// input. next is the least last key read among the inputs with more entries,
// and only entries up to next are returned. next is nil when every input is
// read to its end. dropRemovals leaves out entries that remove a key that
// bucketFingerprints does not have.
func (s *BoltStore) readRuns(ctx context.Context, inputs [][]byte, after []byte, limit int, dropRemovals bool) (ops []logOp, next []byte, err error) {
	err = s.view(ctx, func(tx *bolt.Tx) error {
		ops, next = nil, nil
		runs := tx.Bucket(bucketFingerprintRuns)
		for i, name := range inputs {
			run := runs.Bucket(name)
			if run == nil {
				return fmt.Errorf("fingerprint run %x is missing: %w", name, ErrIntegrity)
			}
			c := run.Cursor()
			k, v := c.First()
			if after != nil {
				if k, v = c.Seek(after); bytes.Equal(k, after) {
					k, v = c.Next()
				}
			}
			for n := 0; k != nil && n < limit; k, v = c.Next() {
				removed, err := runEntryRemoves(v)
				if err != nil {
					return err
				}
				op := logOp{seq: uint64(i), op: logAdd, key: bytes.Clone(k)}
				if removed {
					op.op = logRemove
				}
				ops = append(ops, op)
				n++
			}
			if k != nil && (next == nil || bytes.Compare(ops[len(ops)-1].key, next) < 0) {
				next = ops[len(ops)-1].key
			}
		}

		// seq holds the input's position, so latestOps keeps the newest.
		ops = latestOps(ops)
		if next != nil {
			ops = ops[:sortedEnd(ops, next)]
		}
		if dropRemovals {
			index := tx.Bucket(bucketFingerprints)
			ops = slices.DeleteFunc(ops, func(op logOp) bool { return op.op == logRemove && index.Get(op.key) == nil })
		}
		return nil
	})
	return ops, next, err
}

// sortedEnd returns the number of ops, sorted by key, whose key is at most
// last.
func sortedEnd(ops []logOp, last []byte) int {
	i, found := slices.BinarySearchFunc(ops, last, func(op logOp, k []byte) int { return bytes.Compare(op.key, k) })
	if found {
		i++
	}
	return i
}
