package tokenvault

import (
	"encoding/binary"
	"sync"
	"sync/atomic"
)

// The fingerprint index of a bbolt file has two parts. Changes are appended
// to a log bucket, under increasing sequence numbers, because a fingerprint
// is a random key: putting it straight into the sorted index would rewrite a
// scattered page per record at every commit. Each log entry adds or removes
// one fingerprint-and-token key, and for a key the entry with the highest
// number wins over older entries and over the sorted index. When the log
// contains enough entries, a merge applies them to the sorted bucket in a few
// large transactions, each over one range of fingerprints, and then deletes
// them from the log. FindByFingerprint reads both parts. It finds the log
// entries of a fingerprint through recentIndex, kept in memory, which lists
// the sequence numbers that may contain it.

// DefaultFingerprintMergeAfter is how many log entries start a merge of the
// fingerprint log into the sorted index when BoltOptions leaves it zero.
const DefaultFingerprintMergeAfter = 1 << 18

// recentIndex maps the first eight bytes of a fingerprint to the sequence
// numbers of the log entries that may contain it. It may list numbers of
// entries that were rolled back, truncated or reused for another fingerprint,
// so a reader checks each entry it finds in its own transaction. It never
// misses an entry of the log: writers add a number before their commit, and
// the merge removes numbers only after it has applied their entries to the
// sorted index and deleted them from the log.
type recentIndex struct {
	// dropMu is held shared by readers for their whole read transaction
	// and exclusively by dropThrough, so that a reader whose snapshot is
	// older than a merge still finds that merge's entries in the log.
	dropMu sync.RWMutex

	// mu guards heads and entries, for a few instructions at a time.
	mu      sync.Mutex
	heads   map[uint64]int32 // fingerprint prefix -> newest entry in entries
	entries []recentEntry
	size    atomic.Int64 // len(entries), read without mu
}

type recentEntry struct {
	prefix uint64
	seq    uint64
	next   int32 // older entry of the same prefix, or -1
}

func newRecentIndex() *recentIndex {
	return &recentIndex{heads: make(map[uint64]int32)}
}

func fingerprintPrefix(fingerprint []byte) uint64 {
	var b [8]byte
	copy(b[:], fingerprint)
	return binary.BigEndian.Uint64(b[:])
}

// add records that log entry seq may contain fingerprint.
func (r *recentIndex) add(fingerprint []byte, seq uint64) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.addLocked(fingerprintPrefix(fingerprint), seq)
}

func (r *recentIndex) addLocked(prefix, seq uint64) {
	next, ok := r.heads[prefix]
	if !ok {
		next = -1
	}
	r.heads[prefix] = int32(len(r.entries))
	r.entries = append(r.entries, recentEntry{prefix: prefix, seq: seq, next: next})
	r.size.Store(int64(len(r.entries)))
}

// seqs returns the log entries that may contain fingerprint, newest first.
func (r *recentIndex) seqs(fingerprint []byte) []uint64 {
	r.mu.Lock()
	defer r.mu.Unlock()

	var seqs []uint64
	i, ok := r.heads[fingerprintPrefix(fingerprint)]
	for ok && i >= 0 {
		seqs = append(seqs, r.entries[i].seq)
		i = r.entries[i].next
	}
	return seqs
}

// len returns the number of sequence numbers listed, including stale ones.
func (r *recentIndex) len() int { return int(r.size.Load()) }

// dropThrough removes every sequence number up to last, after a merge has
// applied those entries to the sorted index and deleted them from the log.
// It reuses the memory of the entries and the map, so that a merge does not
// need a second copy of the index.
func (r *recentIndex) dropThrough(last uint64) {
	r.dropMu.Lock()
	defer r.dropMu.Unlock()
	r.mu.Lock()
	defer r.mu.Unlock()

	n := 0
	for _, e := range r.entries {
		if e.seq > last {
			r.entries[n] = e
			n++
		}
	}
	r.entries = r.entries[:n]

	clear(r.heads)
	for i := range r.entries {
		e := &r.entries[i]
		next, ok := r.heads[e.prefix]
		if !ok {
			next = -1
		}
		e.next = next
		r.heads[e.prefix] = int32(i)
	}
	r.size.Store(int64(n))
}
