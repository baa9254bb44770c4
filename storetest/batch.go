package storetest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"

	"github.com/tokenvault/tokenvault"
)

// Rules of tokenvault.BatchCreator. Their checks skip a store that does not
// implement it.
var batchRules = []rule{
	{"CreateBatch", "Insert", "CreateBatch inserts the records of recs as Create would, in one transaction, and appends their events in the order of recs.", checkCreateBatchInsert},
	{"CreateBatch", "Conflicts", "CreateBatch returns the error Create would have returned for a record, checked against the stored records and the records before it in recs that it inserted, and inserts the others.", checkCreateBatchConflicts},
	{"CreateBatch", "NothingInserted", "A CreateBatch whose records all fail inserts nothing and appends no event.", checkCreateBatchNothingInserted},
	{"CreateBatch", "Atomic", "CreateBatch inserts the records in one transaction: a concurrent reader that finds one record of a batch finds all of them.", checkCreateBatchAtomic},
	{"CreateBatch", "Concurrent", "CreateBatch is safe for concurrent use with itself and Create, and events keep one Seq per record, increasing in commit order.", checkCreateBatchConcurrent},
	{"CreateBatch", "Copies", "A Store keeps no reference to the records given to CreateBatch.", checkCreateBatchCopies},
	{"CreateBatch", "Canceled", "CreateBatch returns ctx.Err() for a done ctx and inserts nothing.", checkCreateBatchCanceled},
	{"CreateBatch", "Closed", "After Close, CreateBatch returns ErrStoreClosed.", checkCreateBatchClosed},
}

func batchCreator(t *testing.T, s tokenvault.Store) tokenvault.BatchCreator {
	t.Helper()
	b, ok := s.(tokenvault.BatchCreator)
	if !ok {
		t.Skipf("%T does not implement tokenvault.BatchCreator", s)
	}
	return b
}

// wantBatchErrors fails the test unless errs has one entry per want and each
// entry is nil when want is nil, or wraps want.
func wantBatchErrors(t *testing.T, recs []*tokenvault.Record, errs []error, want []error) {
	t.Helper()
	if len(errs) != len(want) {
		t.Fatalf("CreateBatch of %d records returned %d errors, want %d", len(recs), len(errs), len(want))
	}
	for i := range want {
		switch {
		case want[i] == nil && errs[i] != nil:
			t.Errorf("CreateBatch record %d (%q) err = %v, want nil", i, recs[i].Token, errs[i])
		case want[i] != nil && !errors.Is(errs[i], want[i]):
			t.Errorf("CreateBatch record %d (%q) err = %v, want %v", i, recs[i].Token, errs[i], want[i])
		}
	}
}

func cloneAll(recs []*tokenvault.Record) []*tokenvault.Record {
	out := make([]*tokenvault.Record, len(recs))
	for i, rec := range recs {
		out[i] = rec.Clone()
	}
	return out
}

func checkCreateBatchInsert(t *testing.T, s tokenvault.Store) {
	b := batchCreator(t, s)
	first := newRecord(opaqueToken())
	mustCreate(t, s, first.Clone())

	recs := []*tokenvault.Record{newDeterministicRecord(opaqueToken()), newRecord(cardToken(16)), newRecord(cardToken(19))}
	recs[2].Fingerprint = bytes.Clone(recs[1].Fingerprint)
	errs, err := b.CreateBatch(t.Context(), cloneAll(recs))
	if err != nil {
		t.Fatalf("CreateBatch err = %v, want nil", err)
	}
	wantBatchErrors(t, recs, errs, []error{nil, nil, nil})

	for _, rec := range recs {
		wantRecord(t, s, rec)
		wantHistory(t, s, rec.Token, []tokenvault.Change{})
	}
	wantDeterministic(t, s, recs[0].DeterministicKey, recs[0])
	wantFingerprint(t, s, recs[0].Fingerprint, []string{recs[0].Token})
	shared := []string{recs[1].Token, recs[2].Token}
	if shared[0] > shared[1] {
		shared[0], shared[1] = shared[1], shared[0]
	}
	wantFingerprint(t, s, recs[1].Fingerprint, shared)
	wantEvents(t, s, 0, []tokenvault.Event{createdEvent(first, 1), createdEvent(recs[0], 2), createdEvent(recs[1], 3), createdEvent(recs[2], 4)})
}

func checkCreateBatchConflicts(t *testing.T, s tokenvault.Store) {
	b := batchCreator(t, s)
	stored := newDeterministicRecord(opaqueToken())
	mustCreate(t, s, stored.Clone())

	takenToken := newRecord(stored.Token)
	takenTokenNewKey := newDeterministicRecord(stored.Token) // its own key must stay free
	takenKey := newDeterministicRecord(opaqueToken())
	takenKey.DeterministicKey = bytes.Clone(stored.DeterministicKey)
	inserted := newDeterministicRecord(cardToken(16))
	sameToken := newRecord(inserted.Token)
	sameKey := newDeterministicRecord(opaqueToken())
	sameKey.DeterministicKey = bytes.Clone(inserted.DeterministicKey)
	tooLong := newRecord(strings.Repeat("9", tokenvault.MaxTokenSize+1))
	reused := newRecord(takenKey.Token) // the token of a record that failed is free
	last := newRecord(opaqueToken())
	sameTokenAgain := newRecord(inserted.Token) // after sameToken, which failed

	recs := []*tokenvault.Record{takenToken, takenTokenNewKey, takenKey, inserted, sameToken, sameKey, tooLong, reused, last, sameTokenAgain}
	errs, err := b.CreateBatch(t.Context(), cloneAll(recs))
	if err != nil {
		t.Fatalf("CreateBatch err = %v, want nil", err)
	}
	if len(errs) != len(recs) {
		t.Fatalf("CreateBatch of %d records returned %d errors", len(recs), len(errs))
	}
	wantBatchErrors(t, recs, errs[:6], []error{tokenvault.ErrTokenExists, tokenvault.ErrTokenExists, tokenvault.ErrDeterministicKeyExists, nil, tokenvault.ErrTokenExists, tokenvault.ErrDeterministicKeyExists})
	if errs[6] == nil {
		t.Errorf("CreateBatch record 6 with a %d-byte token err = nil, want an error", len(tooLong.Token))
	}
	wantBatchErrors(t, recs[7:], errs[7:], []error{nil, nil, tokenvault.ErrTokenExists})

	for _, rec := range []*tokenvault.Record{stored, inserted, reused, last} {
		wantRecord(t, s, rec)
	}
	wantNotFound(t, s, sameKey.Token)
	wantNotFound(t, s, tooLong.Token)
	for _, rec := range []*tokenvault.Record{takenToken, takenTokenNewKey, takenKey, sameToken, sameKey, tooLong, sameTokenAgain} {
		wantFingerprint(t, s, rec.Fingerprint, []string{})
	}
	wantNoDeterministic(t, s, takenTokenNewKey.DeterministicKey)
	wantDeterministic(t, s, stored.DeterministicKey, stored)
	wantDeterministic(t, s, inserted.DeterministicKey, inserted)
	wantEvents(t, s, 0, []tokenvault.Event{createdEvent(stored, 1), createdEvent(inserted, 2), createdEvent(reused, 3), createdEvent(last, 4)})
}

func checkCreateBatchNothingInserted(t *testing.T, s tokenvault.Store) {
	b := batchCreator(t, s)
	stored := newRecord(opaqueToken())
	mustCreate(t, s, stored.Clone())

	recs := []*tokenvault.Record{newRecord(stored.Token), newRecord(stored.Token)}
	errs, err := b.CreateBatch(t.Context(), cloneAll(recs))
	if err != nil {
		t.Fatalf("CreateBatch err = %v, want nil", err)
	}
	wantBatchErrors(t, recs, errs, []error{tokenvault.ErrTokenExists, tokenvault.ErrTokenExists})

	wantRecord(t, s, stored)
	wantEvents(t, s, 0, []tokenvault.Event{createdEvent(stored, 1)})

	// An empty batch is no error either.
	errs, err = b.CreateBatch(t.Context(), nil)
	if err != nil || len(errs) != 0 {
		t.Fatalf("CreateBatch(nil) = %v, %v, want no errors", errs, err)
	}
}

func checkCreateBatchCopies(t *testing.T, s tokenvault.Store) {
	b := batchCreator(t, s)
	rec := newDeterministicRecord(opaqueToken())
	passed := rec.Clone()
	if _, err := b.CreateBatch(t.Context(), []*tokenvault.Record{passed}); err != nil {
		t.Fatalf("CreateBatch err = %v, want nil", err)
	}

	mutate(passed)
	wantRecord(t, s, rec)
}

func checkCreateBatchCanceled(t *testing.T, s tokenvault.Store) {
	b := batchCreator(t, s)
	ctx, cancel := context.WithCancel(t.Context())
	cancel()

	rec := newRecord(opaqueToken())
	if _, err := b.CreateBatch(ctx, []*tokenvault.Record{rec.Clone()}); !errors.Is(err, context.Canceled) {
		t.Fatalf("CreateBatch with a canceled context err = %v, want context.Canceled", err)
	}
	wantNotFound(t, s, rec.Token)
	wantEvents(t, s, 0, nil)
}

func checkCreateBatchClosed(t *testing.T, s tokenvault.Store) {
	b := batchCreator(t, s)
	if err := s.Close(); err != nil {
		t.Fatalf("Close() err = %v, want nil", err)
	}

	if _, err := b.CreateBatch(t.Context(), []*tokenvault.Record{newRecord(opaqueToken())}); !errors.Is(err, tokenvault.ErrStoreClosed) {
		t.Fatalf("CreateBatch after Close err = %v, want ErrStoreClosed", err)
	}
}

func checkCreateBatchAtomic(t *testing.T, s tokenvault.Store) {
	b := batchCreator(t, s)
	const batches, size = 20, 200

	// A reader polls the first and last record of each batch while it is
	// inserted. In one transaction both appear at once. A store that
	// inserts them one by one shows the first without the last, and the
	// reader catches that unless the window is too short for it to run.
	for range batches {
		recs := make([]*tokenvault.Record, size)
		for i := range recs {
			recs[i] = newRecord(opaqueToken())
		}
		first, last := recs[0].Token, recs[size-1].Token

		done := make(chan struct{})
		torn := make(chan string, 1)
		go func() {
			defer close(torn)
			for {
				select {
				case <-done:
					return
				default:
				}
				if _, err := s.Get(t.Context(), first); err != nil {
					continue
				}
				if _, err := s.Get(t.Context(), last); err != nil {
					torn <- fmt.Sprintf("Get(first record) found it while Get(last record) err = %v", err)
					return
				}
				return
			}
		}()

		_, err := b.CreateBatch(t.Context(), cloneAll(recs))
		close(done)
		if msg, ok := <-torn; ok {
			t.Fatalf("during CreateBatch of %d records: %s, want both or neither", size, msg)
		}
		if err != nil {
			t.Fatalf("CreateBatch err = %v, want nil", err)
		}
	}
}

func checkCreateBatchConcurrent(t *testing.T, s tokenvault.Store) {
	b := batchCreator(t, s)
	const writers, batches, size = 4, 10, 25

	var mu sync.Mutex
	var all []*tokenvault.Record
	var wg sync.WaitGroup
	for w := range writers {
		wg.Go(func() {
			for range batches {
				recs := make([]*tokenvault.Record, size)
				for i := range recs {
					recs[i] = newRecord(opaqueToken())
				}
				var err error
				if w%2 == 0 {
					var errs []error
					errs, err = b.CreateBatch(t.Context(), cloneAll(recs))
					err = errors.Join(append(errs, err)...)
				} else {
					for _, rec := range recs {
						err = errors.Join(err, s.Create(t.Context(), rec.Clone()))
					}
				}
				if err != nil {
					t.Errorf("writer %d: %v", w, err)
					return
				}
				mu.Lock()
				all = append(all, recs...)
				mu.Unlock()
			}
		})
	}
	wg.Wait()

	for _, rec := range all {
		wantRecord(t, s, rec)
	}
	events := allEvents(t, s, 100)
	if len(events) != len(all) {
		t.Fatalf("outbox has %d events for %d records", len(events), len(all))
	}
	for i, ev := range events {
		if ev.Seq != uint64(i+1) {
			t.Fatalf("event %d has Seq %d, want %d", i, ev.Seq, i+1)
		}
	}
}
