package tokenvault

import (
	"encoding/binary"
	"errors"
	"fmt"

	bolt "go.etcd.io/bbolt"
)

// The fingerprint log and the outbox number their entries in sequence. The
// commit loop writes the entries that one transaction adds to such a bucket
// together, as a block under one key, instead of one key per entry. A put
// into a B+tree and, for the log, the delete at its merge cost about a
// microsecond each on the commit loop's goroutine, which every write waits
// for, so blocks save several hundred of them per commit.
//
// A block's key is the sequence number of its first entry, big-endian, then
// seqBlockFormat. Its value is the number of entries as a uvarint, then each
// entry's length as a uvarint and its bytes. The entries' numbers follow the
// first one without a gap. A key of eight bytes holds one entry, its value
// the entry's bytes, as schema version 5 wrote every entry. The extra byte
// sorts a block after a single entry of the same number, which never exists,
// and before the key of the next number, so keys stay in sequence order.

// seqBlockFormat ends the key of every block.
const seqBlockFormat = 1

// maxSeqBlockEntries bounds the entries of one block. A lookup of one entry
// decodes the entries of its block before it, so the bound keeps lookups
// short. A transaction that adds more entries writes several blocks.
const maxSeqBlockEntries = 256

// seqBlockKey returns the key of a block whose first entry is numbered first.
func seqBlockKey(first uint64) []byte {
	return append(binary.BigEndian.AppendUint64(make([]byte, 0, 9), first), seqBlockFormat)
}

// seqSpan returns the numbers of the first and last entries under key k
// with value v, reading only the key and the count.
func seqSpan(k, v []byte) (first, last uint64, err error) {
	first, count, _, err := seqHeader(k, v)
	return first, first + uint64(count) - 1, err
}

// seqHeader returns the number of the first entry under k, how many entries
// v holds, and the bytes of v after the count.
func seqHeader(k, v []byte) (first uint64, count int, rest []byte, err error) {
	switch {
	case len(k) == 8:
		return binary.BigEndian.Uint64(k), 1, v, nil
	case len(k) != 9 || k[8] != seqBlockFormat:
		return 0, 0, nil, fmt.Errorf("key has length %d, want 8 or 9: %w", len(k), ErrIntegrity)
	}
	first = binary.BigEndian.Uint64(k)
	n, size := binary.Uvarint(v)
	// Each entry takes at least its length byte, which bounds the count.
	if size <= 0 || n == 0 || n > uint64(len(v)-size) || first+n-1 < first {
		return 0, 0, nil, fmt.Errorf("block %d has no valid count of entries: %w", first, ErrIntegrity)
	}
	return first, int(n), v[size:], nil
}

// errStopEntries, returned by the function given to forEachSeqEntry or
// walkSeq, ends the walk without an error.
var errStopEntries = errors.New("stop")

func stopped(err error) error {
	if err == errStopEntries {
		return nil
	}
	return err
}

// forEachSeqEntry calls fn with the number and bytes of each entry under key
// k with value v, in order, until fn returns an error, which it returns. It
// returns an error wrapping ErrIntegrity if k and v are not a valid entry or
// block, after calling fn for the entries before the damage.
func forEachSeqEntry(k, v []byte, fn func(seq uint64, entry []byte) error) error {
	first, count, rest, err := seqHeader(k, v)
	if err != nil {
		return err
	}
	if len(k) == 8 {
		return fn(first, v)
	}

	for i := range count {
		n, size := binary.Uvarint(rest)
		if size <= 0 || n > uint64(len(rest)-size) {
			return fmt.Errorf("block %d: entry %d has a length that does not fit the block: %w", first, i, ErrIntegrity)
		}
		entry := rest[size : size+int(n)]
		rest = rest[size+int(n):]
		if err := fn(first+uint64(i), entry); err != nil {
			return err
		}
	}
	if len(rest) != 0 {
		return fmt.Errorf("block %d has %d bytes after its %d entries: %w", first, len(rest), count, ErrIntegrity)
	}
	return nil
}

// forEachSeqBlock calls fn with each key and value of b, in order, until fn
// returns an error. It returns an error
// wrapping ErrIntegrity when the entries of a key do not all come after
// those of the key before it.
func forEachSeqBlock(b *bolt.Bucket, fn func(k, v []byte) error) error {
	c := b.Cursor()
	var after uint64
	for k, v := c.First(); k != nil; k, v = c.Next() {
		first, last, err := seqSpan(k, v)
		if err != nil {
			return err
		}
		if first < after {
			return fmt.Errorf("block %d starts before the end of the block before it: %w", first, ErrIntegrity)
		}
		after = last + 1
		if err := fn(k, v); err != nil {
			return stopped(err)
		}
	}
	return nil
}

// walkSeq calls fn with each entry of b numbered from `from` to `to`, in
// order, until fn returns an error.
func walkSeq(b *bolt.Bucket, from, to uint64, fn func(seq uint64, entry []byte) error) error {
	c := b.Cursor()
	k, v := seekSeqBlock(c, from)
	if k == nil {
		k, v = c.First()
	}
	after, err := seqEndBefore(c, k)
	if err != nil {
		return err
	}
	for ; k != nil; k, v = c.Next() {
		first, last, err := seqSpan(k, v)
		if err != nil {
			return err
		}
		if first < after {
			return fmt.Errorf("block %d starts before the end of the block before it: %w", first, ErrIntegrity)
		}
		if first > to {
			return nil
		}
		after = last + 1
		if last < from {
			continue
		}

		err = forEachSeqEntry(k, v, func(seq uint64, entry []byte) error {
			switch {
			case seq > to:
				return errStopEntries
			case seq < from:
				return nil
			}
			return fn(seq, entry)
		})
		if err != nil {
			return stopped(err)
		}
	}
	return nil
}

// seekSeqBlock moves c to the key whose entries may include seq: the last
// key at or before seq's, which sorts before the key of seq+1. It returns
// nil when every key comes after seq's.
func seekSeqBlock(c *bolt.Cursor, seq uint64) (k, v []byte) {
	if seq == ^uint64(0) {
		return c.Last()
	}
	if k, _ = c.Seek(binary.BigEndian.AppendUint64(nil, seq+1)); k == nil {
		return c.Last()
	}
	return c.Prev()
}

// seqEndBefore returns the number after the last entry under the key before
// k, or 0 when k is nil or the first key, and leaves c at k. A reader that
// seeks into the middle of a bucket compares it with the first number under
// k, so that it finds overlapping blocks as a walk from the start does.
func seqEndBefore(c *bolt.Cursor, k []byte) (uint64, error) {
	if k == nil {
		return 0, nil
	}
	prevKey, prevValue := c.Prev()
	c.Seek(k)
	if prevKey == nil {
		return 0, nil
	}
	_, last, err := seqSpan(prevKey, prevValue)
	if err != nil {
		return 0, err
	}
	return last + 1, nil
}

// seqEntryAt returns the entry of b's cursor c numbered seq, or nil when
// there is none.
func seqEntryAt(c *bolt.Cursor, seq uint64) ([]byte, error) {
	k, v := seekSeqBlock(c, seq)
	if k == nil {
		return nil, nil
	}
	first, last, err := seqSpan(k, v)
	if err != nil {
		return nil, err
	}
	after, err := seqEndBefore(c, k)
	if err != nil {
		return nil, err
	}
	if first < after {
		return nil, fmt.Errorf("block %d starts before the end of the block before it: %w", first, ErrIntegrity)
	}
	if seq < first || seq > last {
		return nil, nil
	}

	var found []byte
	err = forEachSeqEntry(k, v, func(n uint64, entry []byte) error {
		if n == seq {
			found = entry
			return errStopEntries
		}
		return nil
	})
	return found, stopped(err)
}

// seqBuffer collects the entries that the transaction the commit loop runs
// adds to one sequenced bucket, and writes them as blocks before it commits.
type seqBuffer struct {
	name    []byte   // the bucket
	tx      *bolt.Tx // the transaction the entries belong to, nil outside one
	first   uint64   // number of the first entry buffered
	count   int
	entries []byte
}

// begin starts the buffer of tx, dropping the entries of a rolled-back one.
func (b *seqBuffer) begin(tx *bolt.Tx) {
	b.tx, b.count, b.entries = tx, 0, b.entries[:0]
}

// add buffers entry and returns its sequence number.
func (b *seqBuffer) add(tx *bolt.Tx, entry []byte) (uint64, error) {
	if tx != b.tx {
		return 0, fmt.Errorf("tokenvault: entry of bucket %q written outside the commit loop", b.name)
	}
	if b.count == 0 {
		b.first = tx.Bucket(b.name).Sequence() + 1
	}

	seq := b.first + uint64(b.count)
	b.entries = binary.AppendUvarint(b.entries, uint64(len(entry)))
	b.entries = append(b.entries, entry...)
	b.count++
	if b.count == maxSeqBlockEntries {
		return seq, b.flush()
	}
	return seq, nil
}

// flush writes the buffered entries as one block and advances the bucket's
// sequence past them.
func (b *seqBuffer) flush() error {
	if b.count == 0 {
		return nil
	}
	bucket := b.tx.Bucket(b.name)
	last := b.first + uint64(b.count) - 1
	if err := bucket.SetSequence(last); err != nil {
		return err
	}

	// bbolt keeps the value until the commit, so each block has its own.
	value := binary.AppendUvarint(make([]byte, 0, binary.MaxVarintLen32+len(b.entries)), uint64(b.count))
	value = append(value, b.entries...)
	bucket.FillPercent = appendFill
	if err := bucket.Put(seqBlockKey(b.first), value); err != nil {
		return err
	}

	b.first, b.count, b.entries = last+1, 0, b.entries[:0]
	return nil
}
