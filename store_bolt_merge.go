package tokenvault

import (
	"bytes"
	"context"
	"encoding/binary"
	"slices"
	"sync"
	"sync/atomic"

	bolt "go.etcd.io/bbolt"
)

// mergeChunk is how many log entries one merge transaction puts into the
// sorted index. The entries of a chunk are adjacent in key order, so the
// transaction rewrites only the pages of one range of the index, and other
// writes commit between chunks. bbolt takes a buffer from a sync.Pool for
// each page a transaction writes, which keeps it until garbage collection,
// so the chunk size also bounds that memory: about 1,024 leaves, 4 MiB.
const mergeChunk = 1024

// mergeState runs at most one merge of the fingerprint log at a time, in its
// own goroutine.
type mergeState struct {
	running atomic.Bool
	base    atomic.Int64 // entries of the recent index after the last merge
	wg      sync.WaitGroup
	merges  atomic.Int64 // merges completed, for tests

	passSize int // log entries a merge reads per pass, mergePass but in tests
}

// wait returns when no merge runs. The caller has closed the store, so no
// new merge can start.
func (m *mergeState) wait() { m.wg.Wait() }

// maybeMerge starts a merge of the fingerprint log if it has grown by
// mergeAfter entries since the last one and none is running.
func (s *BoltStore) maybeMerge() {
	if int64(s.recent.len()) < s.merge.base.Load()+int64(s.mergeAfter) {
		return
	}
	if !s.merge.running.CompareAndSwap(false, true) {
		return
	}

	// The goroutine is counted while mu is held shared, so Close, which
	// waits for it after taking mu, never misses one.
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.closed {
		s.merge.running.Store(false)
		return
	}
	s.merge.wg.Add(1)
	go func() {
		defer s.merge.wg.Done()
		defer s.merge.running.Store(false)
		if s.mergeFingerprints(context.Background()) == nil {
			s.merge.merges.Add(1)
		}
	}()
}

// logEntry is an entry of the fingerprint log read by a merge.
type logEntry struct {
	seq uint64
	key []byte // fingerprint || token
}

// mergeFingerprints moves the entries of the fingerprint log into the sorted
// index. It stops at the first error, which leaves every entry in the log or
// in both parts, so the merge that the next write starts repeats the work.
//
// NOTE: the error itself is dropped, because a store has no logger. A merge
// that keeps failing shows as a log that keeps growing, and the writes beside
// it usually fail with the same cause.
//
// To bound its memory, it reads the log once per range of fingerprints,
// keeping the entries of that range only, about passSize of them.
func (s *BoltStore) mergeFingerprints(ctx context.Context) error {
	last, size, err := s.logSize(ctx)
	if err != nil {
		return err
	}
	passes := max(1, (size+s.merge.passSize-1)/s.merge.passSize)

	for pass := range passes {
		entries, err := s.readLog(ctx, last, pass, passes)
		if err != nil {
			return err
		}
		slices.SortFunc(entries, func(a, b logEntry) int { return bytes.Compare(a.key, b.key) })
		for chunk := range slices.Chunk(entries, mergeChunk) {
			if err := s.update(ctx, func(tx *bolt.Tx) error { return mergeChunkTx(tx, chunk) }); err != nil {
				return err
			}
		}
	}
	if err := s.update(ctx, func(tx *bolt.Tx) error { return truncateLog(tx, last) }); err != nil {
		return err
	}

	s.recent.dropThrough(last)
	s.merge.base.Store(int64(s.recent.len()))
	return nil
}

// mergePass is about how many log entries a merge holds in memory at once.
const mergePass = 1 << 15

// logPass returns the range, of passes equal ranges, of the fingerprint in
// log entry v.
func logPass(v []byte, passes int) int {
	if len(v) < 2 {
		return 0
	}
	return int(binary.BigEndian.Uint16(v)) * passes >> 16
}

// logSize returns the last sequence number given to a log entry and the
// number of entries in the log.
func (s *BoltStore) logSize(ctx context.Context) (last uint64, size int, err error) {
	err = s.view(ctx, func(tx *bolt.Tx) error {
		log := tx.Bucket(bucketFingerprintLog)
		last, size = log.Sequence(), log.Stats().KeyN
		return nil
	})
	return last, size, err
}

// readLog returns the log entries numbered up to last whose fingerprints are
// in range pass of passes equal ranges.
func (s *BoltStore) readLog(ctx context.Context, last uint64, pass, passes int) ([]logEntry, error) {
	var entries []logEntry
	err := s.view(ctx, func(tx *bolt.Tx) error {
		c := tx.Bucket(bucketFingerprintLog).Cursor()
		for k, v := c.First(); k != nil && binary.BigEndian.Uint64(k) <= last; k, v = c.Next() {
			if logPass(v, passes) != pass {
				continue
			}
			entries = append(entries, logEntry{seq: binary.BigEndian.Uint64(k), key: bytes.Clone(v)})
		}
		return nil
	})
	return entries, err
}

// mergeChunkTx puts the entries of chunk that are still in the log into the
// sorted index. An entry deleted from the log since it was read belongs to a
// record whose fingerprint changed, so it is skipped.
func mergeChunkTx(tx *bolt.Tx, chunk []logEntry) error {
	log := tx.Bucket(bucketFingerprintLog)
	index := tx.Bucket(bucketFingerprints)
	for _, e := range chunk {
		if !bytes.Equal(log.Get(binary.BigEndian.AppendUint64(nil, e.seq)), e.key) {
			continue
		}
		if err := index.Put(e.key, nil); err != nil {
			return err
		}
	}
	return nil
}

// truncateLog deletes the log entries numbered up to last.
func truncateLog(tx *bolt.Tx, last uint64) error {
	log := tx.Bucket(bucketFingerprintLog)
	var keys [][]byte
	c := log.Cursor()
	for k, _ := c.First(); k != nil && binary.BigEndian.Uint64(k) <= last; k, _ = c.Next() {
		keys = append(keys, bytes.Clone(k))
	}
	for _, k := range keys {
		if err := log.Delete(k); err != nil {
			return err
		}
	}
	return nil
}
