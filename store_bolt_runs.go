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
// compaction merges them into one run of the next level. Each entry is thus
// rewritten about once per level. A lookup usually reads at most runFanout-1
// runs per level, and runFanout more while a compaction runs.
//
// NOTE: writes that find the log at its backlog bound wait for the whole
// merge goroutine, compactions included. The largest compaction moves the
// whole index. BenchmarkCompactRuns, a merge of four runs of 250,000, moved
// about 1.4 million entries a second on the 2-CPU benchmark machine, so on
// a store of 100 million tokens such writes could wait over a minute.
// Merging the log between chunks of a compaction would avoid it. It is not
// built.
//
// A run lists keys fingerprint || token, in blocks (store_bolt_blocks.go),
// each with logAdd when the key is in the index or logRemove when an older
// entry is removed. Lookups read the bucketFingerprints index first, then
// the runs from the oldest, then the log, and for a key the newest entry
// wins. Files written before runs existed still have entries in
// bucketFingerprints, which nothing writes any more.
//
// The run that a merge of the log writes is named under keyPendingRun, and
// readers skip it until the commit that completes it, because the log still
// has its entries. A compaction moves entries from its inputs to its new run
// instead, one range of keys per commit, as mergeRuns explains.

var (
	bucketFingerprintRuns = []byte("fingerprint-runs") // run name -> run; keyPendingRun, keyMergingRuns -> names
	keyPendingRun         = []byte("pending")          // the run a merge of the log is writing
	keyMergingRuns        = []byte("merging")          // the inputs of the merge of runs in progress
)

// runNameSize is the size of a run's name: a big-endian uint64, then the level.
const runNameSize = 9

// runFanout is how many runs of one level a compaction merges.
const runFanout = 4

// liveRuns returns the names of the complete runs in tx, oldest first.
func liveRuns(tx *bolt.Tx) ([][]byte, error) {
	runs := tx.Bucket(bucketFingerprintRuns)
	pending := runs.Get(keyPendingRun)
	var names [][]byte
	c := runs.Cursor()
	for k, v := c.First(); k != nil; k, v = c.Next() {
		switch {
		case v != nil && (bytes.Equal(k, keyPendingRun) || bytes.Equal(k, keyMergingRuns)):
			continue
		case v != nil || len(k) != runNameSize:
			return nil, fmt.Errorf("fingerprint runs have an entry with a key of length %d: %w", len(k), ErrIntegrity)
		case bytes.Equal(k, pending):
			continue
		}
		names = append(names, bytes.Clone(k))
	}

	// A pending run is the newest run of level 0, because a merge of the
	// log creates it under a new number.
	if pending != nil {
		newest := len(names) == 0 || bytes.Compare(names[len(names)-1][:8], pending[:8]) < 0
		if len(pending) != runNameSize || pending[8] != 0 || runs.Bucket(pending) == nil || !newest {
			return nil, fmt.Errorf("fingerprint runs: the pending run %x is not the newest run of level 0: %w", pending, ErrIntegrity)
		}
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
	var entries []runEntry
	for _, name := range names {
		// The block before the first key at or after fingerprint may hold
		// its first entries, since a block's key is its first entry's key.
		c := runs.Bucket(name).Cursor()
		k, v := c.Seek(fingerprint)
		if k == nil {
			k, v = c.Last()
		} else if pk, pv := c.Prev(); pk != nil {
			k, v = pk, pv
		} else {
			k, v = c.First()
		}

		var prev []byte
		for ; k != nil; k, v = c.Next() {
			if err := checkBlockOrder(prev, k); err != nil {
				return err
			}
			if bytes.Compare(k, fingerprint) > 0 && !bytes.HasPrefix(k, fingerprint) {
				break
			}
			if entries, err = decodeRunBlock(entries[:0], k, v); err != nil {
				return err
			}
			prev = entries[len(entries)-1].key
			for _, e := range entries {
				if bytes.HasPrefix(e.key, fingerprint) {
					live[string(e.key[len(fingerprint):])] = e.op == logAdd
				}
			}
		}
	}
	return nil
}

// startRun deletes the pending run, if a merge left one, and creates an
// empty pending run of level 0 under the next number of the runs bucket.
func startRun(tx *bolt.Tx) (name []byte, err error) {
	runs := tx.Bucket(bucketFingerprintRuns)
	if err := dropPendingRun(runs); err != nil {
		return nil, err
	}

	seq, err := runs.NextSequence()
	if err != nil {
		return nil, err
	}
	name = append(binary.BigEndian.AppendUint64(nil, seq), 0)
	if _, err := runs.CreateBucket(name); err != nil {
		return nil, err
	}
	return name, runs.Put(keyPendingRun, name)
}

// dropPendingRun deletes the pending run of runs, if any. A pending run is
// the newest run of level 0, so any other name under keyPendingRun means
// damage, and deleting that run would lose entries.
func dropPendingRun(runs *bolt.Bucket) error {
	pending := runs.Get(keyPendingRun)
	if pending == nil {
		return nil
	}
	if len(pending) != runNameSize || pending[8] != 0 || runs.Bucket(pending) == nil {
		return fmt.Errorf("fingerprint runs: the pending run %x is not a run of level 0: %w", pending, ErrIntegrity)
	}
	c := runs.Cursor()
	for k, v := c.First(); k != nil; k, v = c.Next() {
		if v == nil && len(k) == runNameSize && !bytes.Equal(k, pending) && bytes.Compare(k[:8], pending[:8]) >= 0 {
			return fmt.Errorf("fingerprint runs: the pending run %x is not newer than run %x: %w", pending, k, ErrIntegrity)
		}
	}

	pending = bytes.Clone(pending)
	if err := runs.DeleteBucket(pending); err != nil {
		return err
	}
	return runs.Delete(keyPendingRun)
}

// dropLeftoverRun deletes, in its own transaction, the pending run of db if
// it has one.
func dropLeftoverRun(db *bolt.DB) error {
	var found bool
	err := db.View(func(tx *bolt.Tx) error {
		found = tx.Bucket(bucketFingerprintRuns).Get(keyPendingRun) != nil
		return nil
	})
	if err != nil || !found {
		return err
	}
	return db.Update(func(tx *bolt.Tx) error { return dropPendingRun(tx.Bucket(bucketFingerprintRuns)) })
}

// appendToRun puts ops, sorted by key and each key after those the run
// holds, into the pending run name.
func appendToRun(tx *bolt.Tx, name []byte, ops []logOp) error {
	run, err := pendingRun(tx, name)
	if err != nil {
		return err
	}
	return putRunEntries(run, ops)
}

// putRunEntries puts ops into run, at full pages because each key sorts
// after those the run holds.
func putRunEntries(run *bolt.Bucket, ops []logOp) error {
	run.FillPercent = appendFill
	return putRunBlocks(run, ops)
}

// pendingRun returns the run name if it is still the pending one.
func pendingRun(tx *bolt.Tx, name []byte) (*bolt.Bucket, error) {
	runs := tx.Bucket(bucketFingerprintRuns)
	if !bytes.Equal(runs.Get(keyPendingRun), name) {
		return nil, fmt.Errorf("fingerprint run %x is no longer pending: %w", name, ErrIntegrity)
	}
	return runs.Bucket(name), nil
}

// finishRun makes the pending run name complete.
func finishRun(tx *bolt.Tx, name []byte) error {
	if _, err := pendingRun(tx, name); err != nil {
		return err
	}
	return tx.Bucket(bucketFingerprintRuns).Delete(keyPendingRun)
}

// compactionInputs returns the newest fanout runs of names, oldest first,
// that follow each other in age and have the same level, or nil if no such
// runs exist. They are usually the newest runs. Older ones qualify after a
// merge of runs was cut short, when merges of the log wrote runs before it
// ended.
func compactionInputs(names [][]byte, fanout int) [][]byte {
	for end := len(names); end >= fanout; end-- {
		block := names[end-fanout : end]
		same := true
		for _, name := range block {
			same = same && name[8] == block[0][8]
		}
		if same {
			return block
		}
	}
	return nil
}

// compactRuns finishes the merge of runs that a crash or an error cut short,
// if any, and then merges the newest runs while runFanout of them have the
// same level.
func (s *BoltStore) compactRuns(ctx context.Context) error {
	for {
		var names, inputs [][]byte
		err := s.view(ctx, func(tx *bolt.Tx) (err error) {
			if names, err = liveRuns(tx); err != nil {
				return err
			}
			inputs, err = mergingRuns(tx)
			return err
		})
		if err != nil {
			return err
		}

		if inputs == nil {
			inputs = compactionInputs(names, s.merge.fanout)
		}
		if inputs == nil {
			return nil
		}
		if err := s.mergeRuns(ctx, inputs, bytes.Equal(inputs[0], names[0])); err != nil {
			return err
		}
		s.merge.compactions.Add(1)
	}
}

// mergingRuns returns the inputs of the merge of runs in progress in tx, or
// nil. The inputs must be runs of one level, in age order, so the merge's
// run, of the next level, is not one of them.
func mergingRuns(tx *bolt.Tx) ([][]byte, error) {
	runs := tx.Bucket(bucketFingerprintRuns)
	v := runs.Get(keyMergingRuns)
	if v == nil {
		return nil, nil
	}
	if len(v) < 2*runNameSize || len(v)%runNameSize != 0 {
		return nil, fmt.Errorf("fingerprint runs list merge inputs of %d bytes: %w", len(v), ErrIntegrity)
	}

	var inputs [][]byte
	for name := range slices.Chunk(v, runNameSize) {
		ordered := len(inputs) == 0 || bytes.Compare(inputs[len(inputs)-1], name) < 0
		if !ordered || name[8] != v[8] || runs.Bucket(name) == nil {
			return nil, fmt.Errorf("fingerprint runs list merge input %x, which is missing, out of order or of another level: %w", name, ErrIntegrity)
		}
		inputs = append(inputs, bytes.Clone(name))
	}
	return inputs, nil
}

// mergeRuns merges the runs inputs, oldest first, into one run of the next
// level, named with the number of the newest input, so that it sorts between
// the runs older and newer than the inputs. oldest reports whether no run is
// older than the inputs. Removals are then dropped, since no older entry is
// left for them to remove, unless bucketFingerprints has the key.
//
// Each write moves the entries of one range of keys from the inputs to the
// new run, which readers read like any other. No key is in both at any
// commit, so readers need not know how far the merge got, and the pages
// that the deletes free are reused by the next writes. Deleting the inputs
// at the end instead left bbolt with thousands of free pages, whose list it
// writes at every commit, and 64 callers tokenized a fifth fewer values per
// second (docs/benchmarks.md). After a crash or an error, the next call
// finds the inputs under keyMergingRuns and goes on.
func (s *BoltStore) mergeRuns(ctx context.Context, inputs [][]byte, oldest bool) error {
	newest := inputs[len(inputs)-1]
	output := append(bytes.Clone(newest[:8]), newest[8]+1)
	if err := s.commit(1, func(tx *bolt.Tx) error { return beginMergeRuns(tx, inputs, output) }); err != nil {
		return err
	}

	for {
		ops, last, read, err := s.readRuns(ctx, inputs, mergeChunk, oldest)
		if err != nil {
			return err
		}
		err = s.commit(len(ops)+read, func(tx *bolt.Tx) error { return moveToRun(tx, inputs, output, ops, last) })
		if err != nil {
			return err
		}
		if last == nil {
			break
		}
	}

	return s.commit(1, func(tx *bolt.Tx) error { return endMergeRuns(tx, inputs) })
}

// beginMergeRuns creates the run output and lists inputs under
// keyMergingRuns, unless that merge is already in progress.
func beginMergeRuns(tx *bolt.Tx, inputs [][]byte, output []byte) error {
	runs := tx.Bucket(bucketFingerprintRuns)
	list := slices.Concat(inputs...)
	switch v := runs.Get(keyMergingRuns); {
	case v != nil && bytes.Equal(v, list) && runs.Bucket(output) != nil:
		return nil
	case v != nil:
		return fmt.Errorf("fingerprint runs: another merge of runs is in progress: %w", ErrIntegrity)
	}

	if _, err := runs.CreateBucket(output); err != nil {
		return err
	}
	return runs.Put(keyMergingRuns, list)
}

// moveToRun appends ops to the run output and deletes from the runs inputs
// every key up to last, or every key when last is nil.
func moveToRun(tx *bolt.Tx, inputs [][]byte, output []byte, ops []logOp, last []byte) error {
	runs := tx.Bucket(bucketFingerprintRuns)
	run := runs.Bucket(output)
	if run == nil {
		return fmt.Errorf("fingerprint run %x is missing: %w", output, ErrIntegrity)
	}
	if err := putRunEntries(run, ops); err != nil {
		return err
	}

	for _, name := range inputs {
		if err := dropRunPrefix(runs.Bucket(name), last); err != nil {
			return err
		}
	}
	return nil
}

// dropRunPrefix deletes from run every key up to last, or every key when last
// is nil. A block that also holds keys after last is put back with those
// keys alone.
func dropRunPrefix(run *bolt.Bucket, last []byte) error {
	var drop [][]byte
	var rest []logOp
	var entries []runEntry
	var prev []byte
	c := run.Cursor()
	for k, v := c.First(); k != nil; k, v = c.Next() {
		// The order of the block after the last one dropped is checked
		// too, because the rest of a block that straddles last goes back
		// in front of it.
		if err := checkBlockOrder(prev, k); err != nil {
			return err
		}
		if rest != nil || last != nil && bytes.Compare(k, last) > 0 {
			break
		}

		drop = append(drop, bytes.Clone(k))
		var err error
		if entries, err = decodeRunBlock(entries[:0], k, v); err != nil {
			return err
		}
		prev = entries[len(entries)-1].key
		if last == nil {
			continue
		}
		if end := runBlockEnd(entries, last); end < len(entries) {
			for _, e := range entries[end:] {
				rest = append(rest, logOp{op: e.op, key: bytes.Clone(e.key)})
			}
		}
	}

	for _, k := range drop {
		if err := run.Delete(k); err != nil {
			return err
		}
	}
	return putRunBlocks(run, rest)
}

// endMergeRuns deletes the runs inputs, which moveToRun has emptied, and the
// list of the merge in progress.
func endMergeRuns(tx *bolt.Tx, inputs [][]byte) error {
	runs := tx.Bucket(bucketFingerprintRuns)
	if !bytes.Equal(runs.Get(keyMergingRuns), slices.Concat(inputs...)) {
		return fmt.Errorf("fingerprint runs: the merge of runs in progress is not the one ending: %w", ErrIntegrity)
	}
	for _, name := range inputs {
		if err := runs.DeleteBucket(name); err != nil {
			return err
		}
	}
	return runs.Delete(keyMergingRuns)
}

// readRuns returns the first entries of the runs inputs, oldest first,
// sorted by key, with the newest input's entry for each key. It reads whole
// blocks of each input until it has limit entries of it or the input ends.
// last is the least last key read among the
// inputs with more entries, and only entries up to last are returned. last
// is nil when every input was read to its end. read counts the entries of
// the inputs up to last. dropRemovals leaves out entries that remove a key
// that bucketFingerprints does not have.
func (s *BoltStore) readRuns(ctx context.Context, inputs [][]byte, limit int, dropRemovals bool) (ops []logOp, last []byte, read int, err error) {
	err = s.view(ctx, func(tx *bolt.Tx) error {
		ops, last = nil, nil
		var entries []runEntry
		runs := tx.Bucket(bucketFingerprintRuns)
		for i, name := range inputs {
			run := runs.Bucket(name)
			if run == nil {
				return fmt.Errorf("fingerprint run %x is missing: %w", name, ErrIntegrity)
			}
			// The order of the block after the last one read is checked
			// too: if it started before that block's last entry, the
			// range up to last would cover entries that were not read.
			c := run.Cursor()
			k, v := c.First()
			var prev []byte
			for n := 0; k != nil; k, v = c.Next() {
				if err := checkBlockOrder(prev, k); err != nil {
					return err
				}
				if n >= limit {
					break
				}
				var err error
				if entries, err = decodeRunBlock(entries[:0], k, v); err != nil {
					return err
				}
				prev = entries[len(entries)-1].key
				for _, e := range entries {
					ops = append(ops, logOp{seq: uint64(i), op: e.op, key: bytes.Clone(e.key)})
				}
				n += len(entries)
			}
			if k != nil && (last == nil || bytes.Compare(ops[len(ops)-1].key, last) < 0) {
				last = ops[len(ops)-1].key
			}
		}

		// seq holds the input's position, so latestOps keeps the newest.
		read = len(ops)
		if last != nil {
			read = countUpTo(ops, last)
		}
		ops = latestOps(ops)
		if last != nil {
			ops = ops[:sortedEnd(ops, last)]
		}
		if dropRemovals {
			index := tx.Bucket(bucketFingerprints)
			ops = slices.DeleteFunc(ops, func(op logOp) bool { return op.op == logRemove && index.Get(op.key) == nil })
		}
		return nil
	})
	return ops, last, read, err
}

// countUpTo returns the number of ops whose key is at most last.
func countUpTo(ops []logOp, last []byte) int {
	n := 0
	for _, op := range ops {
		if bytes.Compare(op.key, last) <= 0 {
			n++
		}
	}
	return n
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
