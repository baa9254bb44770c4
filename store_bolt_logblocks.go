package tokenvault

import (
	"fmt"

	bolt "go.etcd.io/bbolt"
)

// The fingerprint log is a sequenced bucket (store_bolt_seqblocks.go). Each
// entry is the fingerprint, the operation, and the token.

// logEntry is one entry of the fingerprint log, with slices of the bytes it
// was decoded from.
type logEntry struct {
	fingerprint []byte
	op          byte
	token       []byte
}

// decodeLogEntry decodes entry seq of the log.
func decodeLogEntry(seq uint64, entry []byte) (logEntry, error) {
	if len(entry) <= fingerprintSize+1 || (entry[fingerprintSize] != logAdd && entry[fingerprintSize] != logRemove) {
		return logEntry{}, fmt.Errorf("entry %d has length %d, or no valid operation: %w", seq, len(entry), ErrIntegrity)
	}
	return logEntry{fingerprint: entry[:fingerprintSize], op: entry[fingerprintSize], token: entry[fingerprintSize+1:]}, nil
}

// appendLogEntry appends the encoding of an entry to b.
func appendLogEntry(b, fingerprint []byte, op byte, token string) []byte {
	return append(append(append(b, fingerprint...), op), token...)
}

// logOp returns the entry as a logOp with its own memory.
func (e *logEntry) logOp(seq uint64) logOp {
	key := make([]byte, 0, len(e.fingerprint)+len(e.token))
	key = append(append(key, e.fingerprint...), e.token...)
	return logOp{seq: seq, op: e.op, key: key, token: string(e.token)}
}

// walkLog calls fn with each entry of log numbered up to last, in order,
// until fn returns an error.
func walkLog(log *bolt.Bucket, last uint64, fn func(seq uint64, e *logEntry) error) error {
	err := walkSeq(log, 0, last, func(seq uint64, entry []byte) error {
		e, err := decodeLogEntry(seq, entry)
		if err != nil {
			return err
		}
		return fn(seq, &e)
	})
	if err != nil {
		return fmt.Errorf("fingerprint log: %w", err)
	}
	return nil
}

// logEntryAt returns the log entry numbered seq, or nil when the log has
// none, with c a cursor of the log bucket.
func logEntryAt(c *bolt.Cursor, seq uint64) (*logEntry, error) {
	entry, err := seqEntryAt(c, seq)
	if err == nil && entry != nil {
		var e logEntry
		if e, err = decodeLogEntry(seq, entry); err == nil {
			return &e, nil
		}
	}
	if err != nil {
		return nil, fmt.Errorf("fingerprint log: %w", err)
	}
	return nil, nil
}
