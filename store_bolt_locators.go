package tokenvault

import (
	"context"
	"encoding/binary"
	"fmt"
	"math"

	bolt "go.etcd.io/bbolt"
)

var _ LocatorReserver = (*BoltStore)(nil)

// ReserveLocators commits the reservation with fsync before it returns, in a
// transaction of its own, because a number handed out twice would give two
// tokens one key.
func (s *BoltStore) ReserveLocators(ctx context.Context, n uint64) (uint64, error) {
	var first uint64
	err := s.update(ctx, func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketSchema)
		switch v := b.Get(keyLocators); len(v) {
		case 0:
			first = 0
		case 8:
			first = binary.BigEndian.Uint64(v)
		default:
			return fmt.Errorf("locator counter has length %d: %w", len(v), ErrIntegrity)
		}
		if n > math.MaxUint64-first {
			return errLocatorsExhausted
		}
		return b.Put(keyLocators, binary.BigEndian.AppendUint64(nil, first+n))
	})
	if err != nil {
		return 0, err
	}
	return first, nil
}
