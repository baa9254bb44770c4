package tokenvault

import (
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"slices"

	bolt "go.etcd.io/bbolt"
)

// fingerprintSize is the size of Record.Fingerprint that the bbolt store
// relies on to split an index entry into fingerprint and token.
const fingerprintSize = 32

// Operations of a fingerprint log entry, whose value is the fingerprint, one
// of these bytes, and the token.
const (
	logAdd    byte = 1
	logRemove byte = 2
)

// logOp is a decoded fingerprint log entry.
type logOp struct {
	seq   uint64
	op    byte
	key   []byte // fingerprint || token, the key in the sorted index and runs
	token string
}

// loadRecentIndex lists the entries of the fingerprint log of db in an index
// sized for about capacity entries.
func loadRecentIndex(db *bolt.DB, capacity int) (*recentIndex, error) {
	var r *recentIndex
	err := db.View(func(tx *bolt.Tx) error {
		log := tx.Bucket(bucketFingerprintLog)
		base := log.Sequence() + 1
		if k, _ := log.Cursor().First(); len(k) >= 8 {
			base = binary.BigEndian.Uint64(k)
		}
		r = newRecentIndex(capacity, base)
		return walkLog(log, ^uint64(0), func(seq uint64, e *logEntry) error {
			return r.addLocked(fingerprintPrefix(e.fingerprint), seq)
		})
	})
	if err != nil {
		return nil, err
	}
	return r, nil
}

// checkFingerprintSize returns an error unless fingerprint is empty or
// fingerprintSize bytes.
func checkFingerprintSize(fingerprint []byte) error {
	if len(fingerprint) != 0 && len(fingerprint) != fingerprintSize {
		return fmt.Errorf("tokenvault: fingerprint is %d bytes, want %d or none", len(fingerprint), fingerprintSize)
	}
	return nil
}

// checkRecordSizes returns an error if the token, locator or fingerprint of
// a new record has a size the bbolt store cannot keep.
func checkRecordSizes(rec *Record) error {
	if err := checkKeySizes(rec); err != nil {
		return err
	}
	return checkFingerprintSize(rec.Fingerprint)
}

// logFingerprint adds an entry that adds or removes token under fingerprint
// to the log block that the commit loop writes before tx commits, and lists
// it in the recent index.
func (s *BoltStore) logFingerprint(tx *bolt.Tx, fingerprint []byte, op byte, token string) error {
	entry := appendLogEntry(make([]byte, 0, len(fingerprint)+1+len(token)), fingerprint, op, token)
	seq, err := s.commits.log.add(tx, entry)
	if err != nil {
		return err
	}
	return s.recent.add(fingerprint, seq)
}

// FindByFingerprint reads the sorted index, the runs and the log in one
// transaction.
func (s *BoltStore) FindByFingerprint(ctx context.Context, fingerprint []byte) ([]string, error) {
	unlock, err := s.enter(ctx)
	if err != nil {
		return nil, err
	}
	defer unlock()

	// An empty prefix would match every entry of the index.
	if len(fingerprint) == 0 {
		return []string{}, nil
	}
	if err := checkFingerprintSize(fingerprint); err != nil {
		return nil, err
	}

	// dropMu is held from before the transaction starts, so that no merge
	// can forget an entry that this snapshot has only in the log.
	s.recent.dropMu.RLock()
	defer s.recent.dropMu.RUnlock()
	live := make(map[string]bool)
	err = storeError(s.guard.run(func() error {
		return s.db.View(func(tx *bolt.Tx) error {
			c := tx.Bucket(bucketFingerprints).Cursor()
			for k, _ := c.Seek(fingerprint); k != nil && bytes.HasPrefix(k, fingerprint); k, _ = c.Next() {
				live[string(k[len(fingerprint):])] = true
			}
			if err := runsLookup(tx, fingerprint, live); err != nil {
				return err
			}
			ops, err := s.logOps(tx, fingerprint)
			for _, op := range ops {
				live[op.token] = op.op == logAdd
			}
			return err
		})
	}))
	if err != nil {
		return nil, err
	}

	tokens := []string{}
	for token, ok := range live {
		if ok {
			tokens = append(tokens, token)
		}
	}
	slices.Sort(tokens)
	return tokens, nil
}

// logOps returns the log entries of fingerprint in tx, oldest first.
func (s *BoltStore) logOps(tx *bolt.Tx, fingerprint []byte) ([]logOp, error) {
	seqs := s.recent.seqs(fingerprint)
	slices.Sort(seqs)
	seqs = slices.Compact(seqs)

	c := tx.Bucket(bucketFingerprintLog).Cursor()
	var ops []logOp
	for _, seq := range seqs {
		e, err := logEntryAt(c, seq)
		if err != nil {
			return nil, err
		}
		// A listed number may have been rolled back or merged, or hold
		// another fingerprint's entry.
		if e != nil && bytes.Equal(e.fingerprint, fingerprint) {
			ops = append(ops, e.logOp(seq))
		}
	}
	return ops, nil
}
