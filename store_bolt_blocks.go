package tokenvault

import (
	"bytes"
	"encoding/binary"
	"fmt"

	bolt "go.etcd.io/bbolt"
)

// Blocks of a fingerprint run.
//
// A run keeps its entries in blocks of about runBlockBytes: each bbolt key is
// the first entry's key, and its value lists the entries. In a profile of a
// batch of a million values, bbolt spent about a microsecond on each key that
// a merge put or deleted, inside the commits that callers share. A block
// holds about 16 entries of card-shaped tokens, so a merge makes about a
// sixteenth of those calls.
//
// A block's value starts with the operation of its first entry, logAdd or
// logRemove, whose key is the block's key. Each further entry follows as its
// operation, the uvarint length of its key and the key, in increasing key
// order. Files of schema version 4 kept one entry per bbolt key, with an
// empty value for an addition and logRemove for a removal. Such a value reads
// as a block of one entry, so runs written before blocks need no rewrite.

// runBlockBytes bounds the size of a block's value. bbolt keeps a value whole
// on one page or on pages of its own, so four blocks with keys of card-shaped
// tokens fill about 90% of a 4 KiB page.
const runBlockBytes = 900

// runEntry is an entry of a run block, whose key may point into a bbolt page.
type runEntry struct {
	op  byte
	key []byte
}

// putRunBlocks puts ops, sorted by key with no key twice, into run as blocks.
// Each key must sort after those of the blocks before the first one it puts
// and before that of the next block in run.
func putRunBlocks(run *bolt.Bucket, ops []logOp) error {
	for len(ops) > 0 {
		n, size := 1, 1
		for ; n < len(ops); n++ {
			entry := 1 + uvarintLen(len(ops[n].key)) + len(ops[n].key)
			if size+entry > runBlockBytes {
				break
			}
			size += entry
		}

		block := make([]byte, 0, size)
		block = append(block, ops[0].op)
		for _, op := range ops[1:n] {
			block = append(block, op.op)
			block = binary.AppendUvarint(block, uint64(len(op.key)))
			block = append(block, op.key...)
		}
		// bbolt keeps the key and the value until the commit, so neither is
		// reused.
		if err := run.Put(ops[0].key, block); err != nil {
			return err
		}
		ops = ops[n:]
	}
	return nil
}

// uvarintLen returns the size of n encoded as a uvarint.
func uvarintLen(n int) int {
	size := 1
	for ; n >= 0x80; n >>= 7 {
		size++
	}
	return size
}

// decodeRunBlock appends the entries of the block v under key k to dst. The
// keys point into k and v.
func decodeRunBlock(dst []runEntry, k, v []byte) ([]runEntry, error) {
	switch {
	case v == nil:
		return dst, fmt.Errorf("fingerprint run has a nested bucket: %w", ErrIntegrity)
	case len(k) <= fingerprintSize:
		return dst, fmt.Errorf("fingerprint run block has a key of %d bytes, want more than the %d of a fingerprint: %w", len(k), fingerprintSize, ErrIntegrity)
	case len(v) == 0:
		return append(dst, runEntry{op: logAdd, key: k}), nil // schema version 4
	case v[0] != logAdd && v[0] != logRemove:
		return dst, fmt.Errorf("fingerprint run block starts with operation %d: %w", v[0], ErrIntegrity)
	}

	dst = append(dst, runEntry{op: v[0], key: k})
	prev := k
	for rest := v[1:]; len(rest) > 0; {
		op := rest[0]
		size, n := binary.Uvarint(rest[1:])
		if op != logAdd && op != logRemove || n <= 0 || size <= fingerprintSize || size > uint64(len(rest)-1-n) {
			return dst, fmt.Errorf("fingerprint run block has an entry with operation %d or a key of invalid length: %w", op, ErrIntegrity)
		}
		key := rest[1+n : 1+n+int(size)]
		if bytes.Compare(key, prev) <= 0 {
			return dst, fmt.Errorf("fingerprint run block has keys out of order: %w", ErrIntegrity)
		}
		dst = append(dst, runEntry{op: op, key: key})
		prev = key
		rest = rest[1+n+int(size):]
	}
	return dst, nil
}

// checkBlockOrder returns an error unless the block key k sorts after prev,
// the last entry's key of the block before it in the run, or prev is nil.
// decodeRunBlock checks the order within a block only. A block whose
// entries pass the next block's key would otherwise make a merge of runs
// delete blocks it has not read, or keep blocks it has already moved.
func checkBlockOrder(prev, k []byte) error {
	if prev != nil && bytes.Compare(k, prev) <= 0 {
		return fmt.Errorf("fingerprint run block starts at or before the last key of the block before it: %w", ErrIntegrity)
	}
	return nil
}

// runBlockEnd returns the number of entries, sorted by key, whose key is at
// most last.
func runBlockEnd(entries []runEntry, last []byte) int {
	n := 0
	for n < len(entries) && bytes.Compare(entries[n].key, last) <= 0 {
		n++
	}
	return n
}
