package tokenvault

import "context"

// BatchCreator is implemented by a Store that can insert many records in one
// transaction. A Vault uses it for TokenizeBatch and TokenizeCardBatch when
// its store implements it, and otherwise calls Create once per record from
// several goroutines.
type BatchCreator interface {
	// CreateBatch inserts the records of recs as Create would, in one
	// transaction, and returns one error per record. The error is nil for a
	// record it inserted. Otherwise it is the error Create would have
	// returned, such as ErrTokenExists or ErrDeterministicKeyExists, checked
	// against the stored records and the records before it in recs that it
	// inserted. Records with an error are not written and do not stop the
	// others. Events are appended in the order of recs.
	//
	// The error result is for a failure of the whole call, such as a done
	// ctx, a closed store or a failed commit. The call then inserted nothing
	// and may return nil errors. An empty recs inserts nothing and returns
	// no errors. Callers keep batches to a few thousand records, because the
	// store may hold the whole transaction in memory.
	CreateBatch(ctx context.Context, recs []*Record) ([]error, error)
}
