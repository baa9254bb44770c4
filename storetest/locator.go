package storetest

import (
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/tokenvault/tokenvault"
)

var locatorRules = []rule{
	{"Locator", "CreateGet", "A Store keeps each record under its key, its Locator if it has one: Get of the locator returns the record, Get of its token finds nothing.", checkLocatorCreateGet},
	{"Locator", "TokenExists", "Create returns ErrTokenExists if a record is stored under rec.Key() or, for a record with a Locator, under rec.Token.", checkLocatorTokenExists},
	{"Locator", "Update", "Update and History take the key; changes to rec.Token and rec.Locator are ignored, and the event names the token.", checkLocatorUpdate},
	{"Locator", "Indexes", "The indexes name tokens: FindByFingerprint returns the token of a located record, and FindByDeterministicKey returns the record.", checkLocatorIndexes},
	{"Locator", "Scan", "Scan returns records in byte order of the keys, and after is a key.", checkLocatorScan},
	{"Locator", "ReplaceCiphertexts", "ReplaceCiphertexts finds each record by swap.Key.", checkLocatorReplaceCiphertexts},
	{"Locator", "CreateBatch", "CreateBatch checks keys and tokens as Create does, against stored records and earlier records of the batch.", checkLocatorCreateBatch},

	{"ReserveLocators", "Distinct", "ReserveLocators never returns a number twice, whatever n and from however many goroutines.", checkReserveLocatorsDistinct},
}

// locator returns a locator in the vault's format for number n.
func locator(n uint64) string {
	return fmt.Sprintf("~%016x", n)
}

// newLocatedRecord returns a record like newRecord, in FormatCard, with a
// card-shaped token and the locator of number n.
func newLocatedRecord(n uint64) *tokenvault.Record {
	rec := newRecord(cardToken(16))
	rec.Locator = locator(n)
	rec.Format, rec.First6 = tokenvault.FormatCard, ""
	return rec
}

func checkLocatorCreateGet(t *testing.T, s tokenvault.Store) {
	rec := newLocatedRecord(7)
	want := rec.Clone()
	mustCreate(t, s, rec)

	wantRecord(t, s, want)
	wantNotFound(t, s, want.Token)
	if got := mustGet(t, s, want.Locator); got.Token != want.Token || got.Locator != want.Locator {
		t.Errorf("Get(%q) = token %q, locator %q, want %q, %q", want.Locator, got.Token, got.Locator, want.Token, want.Locator)
	}
}

func checkLocatorTokenExists(t *testing.T, s tokenvault.Store) {
	first := newLocatedRecord(1)
	mustCreate(t, s, first.Clone())
	plain := newRecord(cardToken(16))
	mustCreate(t, s, plain.Clone())

	sameLocator := newLocatedRecord(1)
	if err := s.Create(t.Context(), sameLocator); !errors.Is(err, tokenvault.ErrTokenExists) {
		t.Errorf("Create of another token under stored locator %q err = %v, want ErrTokenExists", sameLocator.Locator, err)
	}
	wantNotFound(t, s, sameLocator.Token)

	sameToken := newLocatedRecord(2)
	sameToken.Token = plain.Token
	if err := s.Create(t.Context(), sameToken); !errors.Is(err, tokenvault.ErrTokenExists) {
		t.Errorf("Create of stored token %q under new locator %q err = %v, want ErrTokenExists", plain.Token, sameToken.Locator, err)
	}
	wantNotFound(t, s, sameToken.Locator)
	wantRecord(t, s, first)
	wantRecord(t, s, plain)
}

func checkLocatorUpdate(t *testing.T, s tokenvault.Store) {
	rec := newLocatedRecord(3)
	mustCreate(t, s, rec.Clone())
	_, after := allEventsAfterCreate(t, s)

	var change *tokenvault.Change
	got := mustUpdate(t, s, rec.Locator, func(r *tokenvault.Record) (*tokenvault.Change, error) {
		r.Token, r.Locator = "changed", "~changed"
		change, _ = suspendRecord(r)
		return change, nil
	})
	if got.Token != rec.Token || got.Locator != rec.Locator || got.State != tokenvault.StateSuspended {
		t.Errorf("Update(%q) = token %q, locator %q, state %s, want %q, %q, suspended", rec.Locator, got.Token, got.Locator, got.State, rec.Token, rec.Locator)
	}
	wantNotFound(t, s, "changed")
	wantNotFound(t, s, "~changed")

	want := *change
	want.Revision = 1
	wantHistory(t, s, rec.Locator, []tokenvault.Change{want})
	wantEvents(t, s, after, []tokenvault.Event{changeEvent(rec.Token, change, 1, after+1)})

	if _, err := s.Update(t.Context(), rec.Token, suspendRecord); !errors.Is(err, tokenvault.ErrNotFound) {
		t.Errorf("Update of the token %q of a located record err = %v, want ErrNotFound", rec.Token, err)
	}
}

// allEventsAfterCreate returns the store's events and the Seq of the last.
func allEventsAfterCreate(t *testing.T, s tokenvault.Store) ([]tokenvault.Event, uint64) {
	t.Helper()
	events := allEvents(t, s, 10)
	if len(events) == 0 {
		t.Fatal("Events after a Create returned none")
	}
	return events, events[len(events)-1].Seq
}

func checkLocatorIndexes(t *testing.T, s tokenvault.Store) {
	rec := newDeterministicRecord(cardToken(16))
	rec.Locator, rec.Format, rec.First6 = locator(4), tokenvault.FormatCard, ""
	mustCreate(t, s, rec.Clone())

	wantFingerprint(t, s, rec.Fingerprint, []string{rec.Token})
	wantDeterministic(t, s, rec.DeterministicKey, rec)

	mustUpdate(t, s, rec.Locator, closeRecord)
	wantFingerprint(t, s, rec.Fingerprint, []string{})
	wantNoDeterministic(t, s, rec.DeterministicKey)
}

func checkLocatorScan(t *testing.T, s tokenvault.Store) {
	var recs []*tokenvault.Record
	for _, n := range []uint64{0x100, 2, 0xff, 1 << 40} {
		recs = append(recs, newLocatedRecord(n))
	}
	recs = append(recs, newRecord(cardToken(16)), newRecord(opaqueToken()))
	for _, rec := range recs {
		mustCreate(t, s, rec.Clone())
	}

	var want []string
	for _, rec := range recs {
		want = append(want, rec.Key())
	}
	slices.Sort(want)
	for _, limit := range []int{1, 4, 10} {
		got := scanAll(t, s, limit)
		keys := make([]string, len(got))
		for i, rec := range got {
			keys[i] = rec.Key()
		}
		if diff := cmp.Diff(want, keys); diff != "" {
			t.Errorf("Scan pages of %d did not visit every key once in order (-want +got):\n%s", limit, diff)
		}
	}
}

func checkLocatorReplaceCiphertexts(t *testing.T, s tokenvault.Store) {
	rec := newLocatedRecord(5)
	mustCreate(t, s, rec.Clone())

	swap := tokenvault.CiphertextSwap{Key: rec.Token, OldCiphertext: rec.Ciphertext, NewKeyID: "key-2", NewCiphertext: randomBytes(96)}
	if n, err := s.ReplaceCiphertexts(t.Context(), []tokenvault.CiphertextSwap{swap}); err != nil || n != 0 {
		t.Errorf("ReplaceCiphertexts by the token of a located record = %d, %v, want 0, nil", n, err)
	}
	swap.Key = rec.Locator
	if n, err := s.ReplaceCiphertexts(t.Context(), []tokenvault.CiphertextSwap{swap}); err != nil || n != 1 {
		t.Errorf("ReplaceCiphertexts by the locator = %d, %v, want 1, nil", n, err)
	}

	rec.KeyID, rec.Ciphertext = swap.NewKeyID, swap.NewCiphertext
	wantRecord(t, s, rec)
}

func checkLocatorCreateBatch(t *testing.T, s tokenvault.Store) {
	b := batchCreator(t, s)
	stored := newLocatedRecord(10)
	plain := newRecord(cardToken(16))
	mustCreate(t, s, stored.Clone())
	mustCreate(t, s, plain.Clone())

	fresh := newLocatedRecord(11)
	sameLocator := newLocatedRecord(10)
	sameToken := newLocatedRecord(12)
	sameToken.Token = plain.Token
	twice := newLocatedRecord(11)
	recs := []*tokenvault.Record{fresh.Clone(), sameLocator, sameToken, twice}
	errs, err := b.CreateBatch(t.Context(), recs)
	if err != nil {
		t.Fatalf("CreateBatch err = %v, want nil", err)
	}
	wantBatchErrors(t, recs, errs, []error{nil, tokenvault.ErrTokenExists, tokenvault.ErrTokenExists, tokenvault.ErrTokenExists})

	wantRecord(t, s, fresh)
	wantRecord(t, s, stored)
	wantNotFound(t, s, sameToken.Locator)
}

func checkReserveLocatorsDistinct(t *testing.T, s tokenvault.Store) {
	r, ok := s.(tokenvault.LocatorReserver)
	if !ok {
		t.Skipf("%T does not implement tokenvault.LocatorReserver", s)
	}

	const goroutines, calls = 8, 20
	type span struct{ first, n uint64 }
	var (
		mu    sync.Mutex
		spans []span
		wg    sync.WaitGroup
	)
	for g := range goroutines {
		wg.Go(func() {
			for i := range calls {
				n := uint64(1 + (g*calls+i)%5)
				first, err := r.ReserveLocators(t.Context(), n)
				if err != nil {
					t.Errorf("ReserveLocators(%d) err = %v, want nil", n, err)
					return
				}
				mu.Lock()
				spans = append(spans, span{first, n})
				mu.Unlock()
			}
		})
	}
	wg.Wait()

	slices.SortFunc(spans, func(a, b span) int {
		switch {
		case a.first < b.first:
			return -1
		case a.first > b.first:
			return 1
		default:
			return 0
		}
	})
	for i := 1; i < len(spans); i++ {
		if prev := spans[i-1]; prev.first+prev.n > spans[i].first {
			t.Errorf("ReserveLocators returned %d numbers from %d and %d from %d, which overlap", prev.n, prev.first, spans[i].n, spans[i].first)
		}
	}
}
