package tokenvault

import (
	"context"
	"slices"

	bolt "go.etcd.io/bbolt"
)

var _ BatchCreator = (*BoltStore)(nil)

// CreateBatch commits the records through the store's commit loop as one
// write, so that it shares its commit with concurrent calls.
func (s *BoltStore) CreateBatch(ctx context.Context, recs []*Record) ([]error, error) {
	unlock, err := s.enter(ctx)
	if err != nil {
		return nil, err
	}
	unlock()

	// Encoding outside the commit loop keeps that single goroutine's work
	// to the B+tree.
	errs := make([]error, len(recs))
	values := make([][]byte, len(recs))
	for i, rec := range recs {
		if errs[i] = checkRecordSizes(rec); errs[i] == nil {
			values[i] = encodeRecord(rec)
		}
	}
	valid := slices.Clone(errs)

	err = s.write(ctx, func(tx *bolt.Tx) error {
		// The commit loop may run this function again, so every run starts
		// from the size checks alone.
		copy(errs, valid)
		wrote := false
		for i, rec := range recs {
			if errs[i] != nil {
				continue
			}
			if errs[i] = createConflict(tx, rec); errs[i] != nil {
				continue
			}
			if err := s.putRecord(tx, rec, values[i]); err != nil {
				return err
			}
			wrote = true
		}
		if !wrote {
			return noWrite(nil)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return errs, nil
}
