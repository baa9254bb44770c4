package tokenvault

import (
	"encoding/binary"
	"errors"
	"math"
	"sync"
	"sync/atomic"
)

// The fingerprint index of a bbolt file has two parts. Changes are appended
// to a log bucket, under increasing sequence numbers, because a fingerprint
// is a random key: putting it straight into a sorted bucket would rewrite a
// scattered page per record at every commit. Each log entry adds or removes
// one fingerprint-and-token key, and for a key the entry with the highest
// number wins over older entries and over the sorted part. When the log
// contains enough entries, a merge writes them, sorted, into a new run of the
// sorted part (store_bolt_runs.go) in a few transactions, and then deletes
// them from the log. FindByFingerprint reads both parts. It finds the log
// entries of a fingerprint through recentIndex, kept in memory, which lists
// the sequence numbers that may contain it.

// DefaultFingerprintMergeAfter is how many log entries start a merge of the
// fingerprint log into a sorted run when BoltOptions leaves it zero.
const DefaultFingerprintMergeAfter = 1 << 18

// recentIndex maps the first eight bytes of a fingerprint to the sequence
// numbers of the log entries that may contain it. It may list numbers of
// entries that were rolled back, truncated or reused for another fingerprint,
// so a reader checks each entry it finds in its own transaction. It never
// misses an entry of the log: writers add a number before their commit, and
// the merge removes numbers only after it has written their entries to a
// complete run and deleted them from the log.
//
// It is a chained hash table of 16-byte entries and 4-byte bucket heads, so
// that the default 2^18 entries take about 5 MiB.
type recentIndex struct {
	// dropMu is held shared by readers for their whole read transaction
	// and exclusively by dropThrough, so that a reader whose snapshot is
	// older than a merge still finds that merge's entries in the log.
	dropMu sync.RWMutex

	// mu guards the fields below, for a few instructions at a time.
	mu      sync.Mutex
	buckets []int32 // newest entry of each bucket or -1, a power of two of them
	entries []recentEntry
	base    uint64       // sequence number of delta 0, at most the lowest one listed
	size    atomic.Int64 // len(entries), read without mu
}

type recentEntry struct {
	prefix uint64
	delta  uint32 // sequence number minus base
	next   int32  // older entry of the same bucket, or -1
}

// newRecentIndex returns an empty index sized for about capacity entries,
// whose sequence numbers will be base or higher.
func newRecentIndex(capacity int, base uint64) *recentIndex {
	n := 1024
	for n < capacity {
		n *= 2
	}
	r := &recentIndex{buckets: make([]int32, n), base: base}
	for i := range r.buckets {
		r.buckets[i] = -1
	}
	return r
}

func fingerprintPrefix(fingerprint []byte) uint64 {
	var b [8]byte
	copy(b[:], fingerprint)
	return binary.BigEndian.Uint64(b[:])
}

// errLogTooLong is returned when a log entry's sequence number is 2^32 or
// more above the oldest one the index lists, which only a merge that failed
// for a very long time leaves behind.
var errLogTooLong = errors.New("tokenvault: the fingerprint log has 2^32 entries without a merge")

// add records that log entry seq may contain fingerprint.
func (r *recentIndex) add(fingerprint []byte, seq uint64) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.addLocked(fingerprintPrefix(fingerprint), seq)
}

func (r *recentIndex) addLocked(prefix, seq uint64) error {
	if seq < r.base || seq-r.base > math.MaxUint32 {
		return errLogTooLong
	}
	b := prefix & uint64(len(r.buckets)-1)
	r.entries = append(r.entries, recentEntry{prefix: prefix, delta: uint32(seq - r.base), next: r.buckets[b]})
	r.buckets[b] = int32(len(r.entries) - 1)
	r.size.Store(int64(len(r.entries)))
	return nil
}

// seqs returns the log entries that may contain fingerprint, newest first.
func (r *recentIndex) seqs(fingerprint []byte) []uint64 {
	r.mu.Lock()
	defer r.mu.Unlock()

	prefix := fingerprintPrefix(fingerprint)
	var seqs []uint64
	for i := r.buckets[prefix&uint64(len(r.buckets)-1)]; i >= 0; i = r.entries[i].next {
		if e := &r.entries[i]; e.prefix == prefix {
			seqs = append(seqs, r.base+uint64(e.delta))
		}
	}
	return seqs
}

// len returns the number of sequence numbers listed, including stale ones.
func (r *recentIndex) len() int { return int(r.size.Load()) }

// dropThrough removes every sequence number up to last, after a merge has
// written those entries to a complete run and deleted them from the log.
// It reuses the memory of the entries, so that a merge does not need a
// second copy of the index.
func (r *recentIndex) dropThrough(last uint64) {
	r.dropMu.Lock()
	defer r.dropMu.Unlock()
	r.mu.Lock()
	defer r.mu.Unlock()

	if last < r.base {
		return
	}
	n := 0
	for _, e := range r.entries {
		if seq := r.base + uint64(e.delta); seq > last {
			e.delta = uint32(seq - (last + 1))
			r.entries[n] = e
			n++
		}
	}
	r.entries = r.entries[:n]
	r.base = last + 1

	for i := range r.buckets {
		r.buckets[i] = -1
	}
	for i := range r.entries {
		e := &r.entries[i]
		b := e.prefix & uint64(len(r.buckets)-1)
		e.next = r.buckets[b]
		r.buckets[b] = int32(i)
	}
	r.size.Store(int64(n))
}
