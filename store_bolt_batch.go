package tokenvault

import (
	"bytes"
	"context"
	"slices"

	bolt "go.etcd.io/bbolt"
)

var _ BatchCreator = (*BoltStore)(nil)

// CreateBatch commits the records through the store's commit queue as one
// write, so that it shares its commit with concurrent calls.
//
// It writes the records to the token bucket in key order. bbolt keeps the
// keys of a changed page in a sorted slice until the commit, so inserting
// opaque tokens in the order they were drawn would shift, for each one, the
// keys of its millisecond that sort after it.
func (s *BoltStore) CreateBatch(ctx context.Context, recs []*Record) ([]error, error) {
	unlock, err := s.enter(ctx)
	if err != nil {
		return nil, err
	}
	unlock()

	// Everything that does not need the transaction happens here, outside
	// the shared commit. One goroutine at a time runs that commit, so it is
	// the store's bottleneck.
	errs := make([]error, len(recs))
	values := make([][]byte, len(recs))
	keys := make([][]byte, len(recs))
	for i, rec := range recs {
		if errs[i] = checkRecordSizes(rec); errs[i] == nil {
			values[i] = encodeRecord(rec)
			keys[i] = []byte(rec.Key())
		}
	}
	valid := slices.Clone(errs)
	order, earlier := tokenOrder(keys, valid)

	err = s.write(ctx, len(recs), func(tx *bolt.Tx) error {
		// The shared commit may run this function again, so every run starts
		// from the size checks alone.
		copy(errs, valid)
		tokens := tx.Bucket(bucketTokens).Cursor()
		wrote := false
		for i, rec := range recs {
			if errs[i] != nil {
				continue
			}
			if errs[i] = batchConflict(tx, tokens, rec, keys[i], earlier[i], earlier, errs); errs[i] != nil {
				continue
			}
			if err := s.putIndexes(tx, rec); err != nil {
				return err
			}
			event := CreatedEvent(rec)
			if err := s.appendEvent(tx, &event); err != nil {
				return err
			}
			wrote = true
		}
		if !wrote {
			return noWrite(nil)
		}

		for _, i := range order {
			if errs[i] == nil {
				if err := putToken(tx, keys[i], values[i], newRecordAppends(recs[i])); err != nil {
					return err
				}
			}
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return errs, nil
}

// tokenOrder returns the indexes of the valid keys in key order and, for each
// key, the index of the nearest earlier record in recs with the same key, or
// -1.
func tokenOrder(keys [][]byte, valid []error) (order, earlier []int) {
	order = make([]int, 0, len(keys))
	for i := range keys {
		if valid[i] == nil {
			order = append(order, i)
		}
	}
	slices.SortStableFunc(order, func(a, b int) int { return bytes.Compare(keys[a], keys[b]) })

	earlier = make([]int, len(keys))
	for i := range earlier {
		earlier[i] = -1
	}
	for k := 1; k < len(order); k++ {
		if bytes.Equal(keys[order[k-1]], keys[order[k]]) {
			earlier[order[k]] = order[k-1]
		}
	}
	return order, earlier
}

// batchConflict is createConflict for a record of CreateBatch. The batch's
// records reach the bucket only after every check, so it also returns
// ErrTokenExists when an earlier record with the same key was inserted:
// first, earlier[first] and so on.
func batchConflict(tx *bolt.Tx, tokens *bolt.Cursor, rec *Record, key []byte, first int, earlier []int, errs []error) error {
	if k, _ := tokens.Seek(key); bytes.Equal(k, key) {
		return ErrTokenExists
	}
	if rec.Locator != "" {
		if k, _ := tokens.Seek([]byte(rec.Token)); k != nil && string(k) == rec.Token {
			return ErrTokenExists
		}
	}
	for j := first; j >= 0; j = earlier[j] {
		if errs[j] == nil {
			return ErrTokenExists
		}
	}
	if len(rec.DeterministicKey) > 0 && tx.Bucket(bucketDeterministic).Get(rec.DeterministicKey) != nil {
		return ErrDeterministicKeyExists
	}
	return nil
}
