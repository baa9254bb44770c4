package tokenvault

import (
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"slices"

	bolt "go.etcd.io/bbolt"
)

// loadRecentIndex lists the entries of the fingerprint log of db.
func loadRecentIndex(db *bolt.DB) (*recentIndex, error) {
	r := newRecentIndex()
	err := db.View(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketFingerprintLog).ForEach(func(k, v []byte) error {
			if len(k) != 8 || len(v) <= fingerprintSize {
				return fmt.Errorf("fingerprint log entry has a key of length %d and a value of length %d: %w", len(k), len(v), ErrIntegrity)
			}
			r.addLocked(fingerprintPrefix(v), binary.BigEndian.Uint64(k))
			return nil
		})
	})
	if err != nil {
		return nil, err
	}
	return r, nil
}

// fingerprintSize is the size of Record.Fingerprint that the bbolt store
// relies on to split an index entry into fingerprint and token.
const fingerprintSize = 32

// checkFingerprintSize returns an error unless fingerprint is empty or
// fingerprintSize bytes.
func checkFingerprintSize(fingerprint []byte) error {
	if len(fingerprint) != 0 && len(fingerprint) != fingerprintSize {
		return fmt.Errorf("tokenvault: fingerprint is %d bytes, want %d or none", len(fingerprint), fingerprintSize)
	}
	return nil
}

// logFingerprint appends the index entry of token under fingerprint to the
// log, and lists it before tx commits.
func (s *BoltStore) logFingerprint(tx *bolt.Tx, fingerprint []byte, token string) error {
	log := tx.Bucket(bucketFingerprintLog)
	seq, err := log.NextSequence()
	if err != nil {
		return err
	}
	if err := log.Put(binary.BigEndian.AppendUint64(nil, seq), fingerprintKey(fingerprint, token)); err != nil {
		return err
	}
	s.recent.add(fingerprint, seq)
	return nil
}

// deleteFingerprint deletes the index entry of token under fingerprint from
// the sorted index and from the log, wherever it is.
func (s *BoltStore) deleteFingerprint(tx *bolt.Tx, fingerprint []byte, token string) error {
	key := fingerprintKey(fingerprint, token)
	if err := tx.Bucket(bucketFingerprints).Delete(key); err != nil {
		return err
	}

	s.recent.mu.RLock()
	seqs := s.recent.seqs(nil, fingerprint)
	s.recent.mu.RUnlock()

	log := tx.Bucket(bucketFingerprintLog)
	for _, seq := range seqs {
		k := binary.BigEndian.AppendUint64(nil, seq)
		if bytes.Equal(log.Get(k), key) {
			if err := log.Delete(k); err != nil {
				return err
			}
		}
	}
	return nil
}

// FindByFingerprint reads the sorted index and the log in one transaction.
func (s *BoltStore) FindByFingerprint(ctx context.Context, fingerprint []byte) ([]string, error) {
	unlock, err := s.enter(ctx)
	if err != nil {
		return nil, err
	}
	defer unlock()

	tokens := []string{}
	// An empty prefix would match every entry of the index.
	if len(fingerprint) == 0 {
		return tokens, nil
	}

	// The recent index is held from before the transaction starts, so
	// that no merge can drop an entry that this snapshot has only in the
	// log.
	s.recent.mu.RLock()
	defer s.recent.mu.RUnlock()
	err = storeError(s.guard.run(func() error {
		return s.db.View(func(tx *bolt.Tx) error {
			c := tx.Bucket(bucketFingerprints).Cursor()
			for k, _ := c.Seek(fingerprint); k != nil && bytes.HasPrefix(k, fingerprint); k, _ = c.Next() {
				tokens = append(tokens, string(k[len(fingerprint):]))
			}

			log := tx.Bucket(bucketFingerprintLog)
			for _, seq := range s.recent.seqs(nil, fingerprint) {
				v := log.Get(binary.BigEndian.AppendUint64(nil, seq))
				if len(v) > len(fingerprint) && bytes.HasPrefix(v, fingerprint) {
					tokens = append(tokens, string(v[len(fingerprint):]))
				}
			}
			return nil
		})
	}))
	if err != nil {
		return nil, err
	}

	// An entry is in both parts while a merge runs.
	slices.Sort(tokens)
	return slices.Compact(tokens), nil
}

// checkRecordSizes returns an error if the token or fingerprint of a new
// record has a size the bbolt store cannot keep.
func checkRecordSizes(rec *Record) error {
	if err := checkTokenSize(rec.Token); err != nil {
		return err
	}
	return checkFingerprintSize(rec.Fingerprint)
}
