// Package storetest checks an implementation of tokenvault.Store against the
// rules in the Store documentation, as testing/fstest does for fs.FS and
// testing/slogtest does for slog.Handler.
//
// An implementation calls Run from its own tests, with a function that opens
// a new, empty store:
//
//	func TestStore(t *testing.T) {
//		storetest.Run(t, func(t *testing.T) tokenvault.Store {
//			s, err := mystore.Open(t.TempDir())
//			if err != nil {
//				t.Fatal(err)
//			}
//			t.Cleanup(func() { s.Close() })
//			return s
//		})
//	}
//
// Run starts one subtest per rule, grouped by method, so that
// "go test -run TestStore/Update/NilChange" runs one rule. A failed subtest
// logs the rule it checks, in the words of the Store documentation. The
// CreateBatch subtests check the optional tokenvault.BatchCreator interface,
// and the ReserveLocators subtests the optional tokenvault.LocatorReserver
// interface; each skips a store that does not implement its interface. The
// Locator subtests check records with a Locator, which every Store keeps.
//
// # Requirements on open
//
// Subtests run in parallel, so open must be safe to call from several
// goroutines, and each call must return a store that shares no records with
// the others. Some subtests call Close themselves, so a cleanup that closes
// the store again must tolerate a second Close, as the Store rules require.
//
// # Records
//
// The kit builds its records itself and never encrypts: ciphertexts,
// fingerprints and deterministic keys are random bytes, and fingerprints and
// deterministic keys are 32 bytes long like the HMAC-SHA256 values that a
// Vault stores. Tokens are opaque "tok_" strings, digit strings shaped like
// card-format tokens (they fail the Luhn check, so none is a card number) and
// a few fixed strings whose byte order differs from numeric and
// case-insensitive order. Times are whole microseconds, the precision of
// PostgreSQL's timestamptz. Records are compared with go-cmp, byte fields with
// bytes.Equal, which treats nil and empty as equal, and times with
// time.Time.Equal.
//
// # Concurrency
//
// The Concurrent subtests start many goroutines. Run them with -race to
// check the implementation's locking as well as its results.
package storetest

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"maps"
	"math"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/tokenvault/tokenvault"
)

// Run checks the store that open returns against every rule of the
// tokenvault.Store documentation. It calls open once per subtest, from
// parallel subtests.
func Run(t *testing.T, open func(t *testing.T) tokenvault.Store) {
	t.Helper()

	groups := make(map[string][]rule)
	var order []string
	all := slices.Concat(rules, locatorRules, batchRules)
	for _, r := range all {
		if _, ok := groups[r.group]; !ok {
			order = append(order, r.group)
		}
		groups[r.group] = append(groups[r.group], r)
	}

	for _, group := range order {
		t.Run(group, func(t *testing.T) {
			t.Parallel()
			for _, r := range groups[group] {
				t.Run(r.name, func(t *testing.T) {
					t.Parallel()
					t.Cleanup(func() {
						if t.Failed() {
							t.Logf("broken rule: %s", r.text)
						}
					})
					r.check(t, open(t))
				})
			}
		})
	}
}

// rule is one statement of the Store documentation and the check for it.
type rule struct {
	group string // usually the method the rule is about
	name  string
	text  string // the rule, as the Store documentation states it
	check func(t *testing.T, s tokenvault.Store)
}

var rules = []rule{
	{"Create", "Get", "Create inserts a new record and Get returns the record of token.", checkCreateGet},
	{"Create", "TokenExists", "Create returns ErrTokenExists if rec.Token is stored, and writes nothing.", checkCreateTokenExists},
	{"Create", "ClosedTokenExists", "Create returns ErrTokenExists if rec.Token is stored, live or closed.", checkCreateClosedTokenExists},
	{"Create", "DeterministicKeyExists", "Create returns ErrDeterministicKeyExists if another record has rec.DeterministicKey, and writes nothing.", checkCreateDeterministicKeyExists},
	{"Create", "Indexes", "Create lists the record under its Fingerprint and its DeterministicKey, and a record without them in neither index.", checkCreateIndexes},
	{"Get", "Unknown", "Get returns the record of token, or ErrNotFound.", checkGetUnknown},

	{"Copies", "Create", "A Store keeps no reference to a *Record it was given.", checkCopiesCreate},
	{"Copies", "Get", "The caller may modify a *Record it received from Get.", checkCopiesGet},
	{"Copies", "Update", "The caller may modify the *Record that Update returns, and the one fn received, after Update returns.", checkCopiesUpdate},
	{"Copies", "Scan", "The caller may modify the records that Scan returns.", checkCopiesScan},
	{"Copies", "FindByDeterministicKey", "The caller may modify the *Record that FindByDeterministicKey returns.", checkCopiesFindByDeterministicKey},
	{"Copies", "History", "The caller may modify the slice that History returns.", checkCopiesHistory},

	{"Update", "FnError", "If fn returns an error, Update returns it and writes nothing.", checkUpdateFnError},
	{"Update", "NilChange", "If fn returns a nil *Change, Update writes nothing and returns the record unchanged.", checkUpdateNilChange},
	{"Update", "Revision", "Update sets the record's Revision, and the change's, to one more than the stored revision, stores the record as fn left it and appends the change to the token's history.", checkUpdateRevision},
	{"Update", "Token", "Update ignores changes to rec.Token.", checkUpdateToken},
	{"Update", "ClearIndexes", "Update removes the index entries of a cleared Fingerprint or DeterministicKey, and the key is free for another record.", checkUpdateClearIndexes},
	{"Update", "MoveIndexes", "Update moves the index entries of a record whose Fingerprint or DeterministicKey changed.", checkUpdateMoveIndexes},
	{"Update", "KeepDeterministicKey", "An Update that keeps the record's own DeterministicKey is no conflict.", checkUpdateKeepDeterministicKey},
	{"Update", "DeterministicKeyExists", "Update enforces the unique deterministic key as Create does, and writes nothing when it fails.", checkUpdateDeterministicKeyExists},
	{"Update", "Unknown", "Update returns ErrNotFound if token is not stored.", checkUpdateUnknown},

	{"History", "Unknown", "History returns ErrNotFound if token is not stored.", checkHistoryUnknown},
	{"History", "Empty", "A token with no changes has an empty history.", checkHistoryEmpty},

	{"FindByFingerprint", "Order", "FindByFingerprint returns the tokens of the records whose Fingerprint is fingerprint, in token order.", checkFindByFingerprintOrder},
	{"FindByFingerprint", "None", "FindByFingerprint returns an empty slice, not an error, when there are none.", checkFindByFingerprintNone},
	{"FindByDeterministicKey", "Unknown", "FindByDeterministicKey returns the record with key as its DeterministicKey, or ErrNotFound.", checkFindByDeterministicKeyUnknown},

	{"Scan", "Order", "Scan returns records in byte order of the keys.", checkScanOrder},
	{"Scan", "Paging", "Scan returns up to limit records whose keys sort after after. A short or empty result means the scan reached the end.", checkScanPaging},
	{"Scan", "Empty", "Scan of an empty store returns no records.", checkScanEmpty},

	{"ReplaceCiphertexts", "Swaps", "ReplaceCiphertexts applies each swap whose record still has swap.OldCiphertext and returns how many it applied. It skips changed, closed and missing records without an error.", checkReplaceCiphertexts},
	{"ReplaceCiphertexts", "SameToken", "ReplaceCiphertexts applies a swap only while the record still has swap.OldCiphertext, so a second swap of the same old ciphertext is skipped.", checkReplaceCiphertextsSameToken},

	{"Outbox", "Create", "Create appends CreatedEvent(rec) to the outbox, and a Create that fails appends nothing.", checkOutboxCreate},
	{"Outbox", "Update", "Update with a non-nil change appends ChangeEvent(token, change) in the transaction of the change.", checkOutboxUpdate},
	{"Outbox", "NoChange", "An Update whose fn fails or returns a nil change, or that fails itself, appends no event.", checkOutboxNoChange},
	{"Outbox", "Expired", "An Update with an EventExpired change that keeps the state appends an EventExpired event and stores ExpiryRecorded.", checkOutboxExpired},
	{"Outbox", "Seq", "The store numbers events with Seq, from 1, increasing in commit order.", checkOutboxSeq},
	{"Outbox", "Paging", "Events returns up to limit outbox events whose Seq is greater than after, in Seq order; an empty result means there are none yet.", checkOutboxPaging},

	{"Metadata", "Prefix", "Metadata returns the entries whose names start with prefix, and an empty map when there are none.", checkMetadataPrefix},
	{"Metadata", "Delete", "SetMetadata stores value under name, or deletes name if value is nil.", checkMetadataDelete},
	{"Metadata", "Copies", "Metadata values are copies, in both directions.", checkMetadataCopies},

	{"Context", "Canceled", "Every method checks ctx before it starts and returns ctx.Err() if it is done.", checkContextCanceled},

	{"Close", "Twice", "Close is safe to call more than once.", checkCloseTwice},
	{"Close", "Methods", "After Close, every method returns ErrStoreClosed.", checkCloseMethods},

	{"Concurrent", "CreateRead", "Implementations must be safe for concurrent use by multiple goroutines.", checkConcurrentCreateRead},
	{"Concurrent", "Update", "Update reads the record inside its write transaction, which makes it a compare-and-set.", checkConcurrentUpdate},
	{"Concurrent", "Outbox", "A change is never committed without its event, nor an event without its change, and Seq increases in commit order.", checkConcurrentOutbox},
}

// cmpOptions compare byte slices with bytes.Equal, which treats nil and
// empty as equal, because a store may return either for an empty field. It
// is also much faster than go-cmp's element-wise comparison.
var cmpOptions = []cmp.Option{cmp.Comparer(bytes.Equal)}

// Record builders.

// now returns the current time in whole microseconds, in UTC.
func now() time.Time {
	return time.Now().UTC().Truncate(time.Microsecond)
}

func randomBytes(n int) []byte {
	b := make([]byte, n)
	rand.Read(b)
	return b
}

// opaqueToken returns a new "tok_" token with 128 random bits.
func opaqueToken() string {
	return fmt.Sprintf("tok_%x", randomBytes(16))
}

// cardToken returns a random digit string of n digits that fails the Luhn
// check, like the card-format tokens of a Vault.
func cardToken(n int) string {
	digits := make([]byte, n)
	for i, b := range randomBytes(n) {
		digits[i] = '0' + b%10
	}
	if luhnValid(digits) {
		digits[n-1] = '0' + (digits[n-1]-'0'+1)%10
	}
	return string(digits)
}

func luhnValid(digits []byte) bool {
	sum := 0
	for i := range digits {
		d := int(digits[len(digits)-1-i] - '0')
		if i%2 == 1 {
			d *= 2
			if d > 9 {
				d -= 9
			}
		}
		sum += d
	}
	return sum%10 == 0
}

// newRecord returns an active, random record with every field set and no
// deterministic key.
func newRecord(token string) *tokenvault.Record {
	created := now()
	return &tokenvault.Record{
		Token: token,
		State: tokenvault.StateActive,
		Metadata: tokenvault.Metadata{
			Kind:    tokenvault.KindCard,
			Format:  tokenvault.FormatCardFirstSix,
			Brand:   tokenvault.BrandVisa,
			First6:  "411111",
			Last4:   "1111",
			Created: created,
			Updated: created,
			Expires: created.Add(24 * time.Hour),
		},
		KeyID:       "key-1",
		Ciphertext:  randomBytes(80),
		Fingerprint: randomBytes(32),
	}
}

// newDeterministicRecord returns a record like newRecord with a
// deterministic key and scope.
func newDeterministicRecord(token string) *tokenvault.Record {
	rec := newRecord(token)
	rec.Deterministic = true
	rec.Scope = "orders"
	rec.DeterministicKey = randomBytes(32)
	return rec
}

// Store helpers. Each one fails the test with the call and its error.

func mustCreate(t *testing.T, s tokenvault.Store, rec *tokenvault.Record) {
	t.Helper()
	if err := s.Create(t.Context(), rec); err != nil {
		t.Fatalf("Create(%q) err = %v, want nil", rec.Token, err)
	}
}

func mustGet(t *testing.T, s tokenvault.Store, token string) *tokenvault.Record {
	t.Helper()
	rec, err := s.Get(t.Context(), token)
	if err != nil {
		t.Fatalf("Get(%q) err = %v, want nil", token, err)
	}
	return rec
}

func mustHistory(t *testing.T, s tokenvault.Store, token string) []tokenvault.Change {
	t.Helper()
	rec, history, err := s.History(t.Context(), token)
	if err != nil {
		t.Fatalf("History(%q) err = %v, want nil", token, err)
	}
	if uint64(len(history)) != rec.Revision {
		t.Errorf("History(%q) = revision %d with %d entries, want one entry per revision\nbroken rule: History reads the record and its changes in one transaction", token, rec.Revision, len(history))
	}
	return history
}

func mustUpdate(t *testing.T, s tokenvault.Store, token string, fn func(rec *tokenvault.Record) (*tokenvault.Change, error)) *tokenvault.Record {
	t.Helper()
	rec, err := s.Update(t.Context(), token, fn)
	if err != nil {
		t.Fatalf("Update(%q) err = %v, want nil", token, err)
	}
	return rec
}

// closeRecord is an Update function that closes a token as a Vault does,
// clearing the key id, the ciphertext and both index fields.
func closeRecord(rec *tokenvault.Record) (*tokenvault.Change, error) {
	change := &tokenvault.Change{From: rec.State, To: tokenvault.StateClosed, Reason: "test close", Time: now()}
	rec.State = tokenvault.StateClosed
	rec.Updated = change.Time
	rec.KeyID = ""
	rec.Ciphertext = nil
	rec.Fingerprint = nil
	rec.DeterministicKey = nil
	return change, nil
}

// suspendRecord is an Update function that suspends a token and changes no
// index field.
func suspendRecord(rec *tokenvault.Record) (*tokenvault.Change, error) {
	change := &tokenvault.Change{From: rec.State, To: tokenvault.StateSuspended, Reason: "test suspend", Time: now()}
	rec.State = tokenvault.StateSuspended
	rec.Updated = change.Time
	return change, nil
}

// wantRecord fails the test unless Get(want.Key()) returns a record equal
// to want.
func wantRecord(t *testing.T, s tokenvault.Store, want *tokenvault.Record) {
	t.Helper()
	got := mustGet(t, s, want.Key())
	if diff := cmp.Diff(want, got, cmpOptions...); diff != "" {
		t.Errorf("Get(%q) mismatch (-want +got):\n%s", want.Key(), diff)
	}
}

// wantNotFound fails the test unless Get(token) returns ErrNotFound.
func wantNotFound(t *testing.T, s tokenvault.Store, token string) {
	t.Helper()
	if rec, err := s.Get(t.Context(), token); !errors.Is(err, tokenvault.ErrNotFound) {
		t.Errorf("Get(%q) = %v, %v, want ErrNotFound", token, rec, err)
	}
}

// wantFingerprint fails the test unless FindByFingerprint(fingerprint)
// returns exactly want, in that order, as a non-nil slice.
func wantFingerprint(t *testing.T, s tokenvault.Store, fingerprint []byte, want []string) {
	t.Helper()
	got, err := s.FindByFingerprint(t.Context(), fingerprint)
	if err != nil {
		t.Errorf("FindByFingerprint(%x) err = %v, want nil", fingerprint, err)
		return
	}
	if got == nil {
		t.Errorf("FindByFingerprint(%x) = nil, want a non-nil slice", fingerprint)
	}
	if diff := cmp.Diff(want, got, cmpOptions...); diff != "" {
		t.Errorf("FindByFingerprint(%x) mismatch (-want +got):\n%s", fingerprint, diff)
	}
}

// wantDeterministic fails the test unless FindByDeterministicKey(key)
// returns a record equal to want.
func wantDeterministic(t *testing.T, s tokenvault.Store, key []byte, want *tokenvault.Record) {
	t.Helper()
	got, err := s.FindByDeterministicKey(t.Context(), key)
	if err != nil {
		t.Errorf("FindByDeterministicKey(%x) err = %v, want record %q", key, err, want.Token)
		return
	}
	if diff := cmp.Diff(want, got, cmpOptions...); diff != "" {
		t.Errorf("FindByDeterministicKey(%x) mismatch (-want +got):\n%s", key, diff)
	}
}

// wantNoDeterministic fails the test unless FindByDeterministicKey(key)
// returns ErrNotFound.
func wantNoDeterministic(t *testing.T, s tokenvault.Store, key []byte) {
	t.Helper()
	if rec, err := s.FindByDeterministicKey(t.Context(), key); !errors.Is(err, tokenvault.ErrNotFound) {
		t.Errorf("FindByDeterministicKey(%x) = %v, %v, want ErrNotFound", key, rec, err)
	}
}

// wantHistory fails the test unless History(token) returns want.
func wantHistory(t *testing.T, s tokenvault.Store, token string, want []tokenvault.Change) {
	t.Helper()
	got := mustHistory(t, s, token)
	if diff := cmp.Diff(want, got, cmpOptions...); diff != "" {
		t.Errorf("History(%q) mismatch (-want +got):\n%s", token, diff)
	}
}

// scanAll pages through the whole store with pages of limit records, as
// the Scan documentation describes, and fails the test if a page is too long
// or starts at or before its after key.
func scanAll(t *testing.T, s tokenvault.Store, limit int) []*tokenvault.Record {
	t.Helper()
	var all []*tokenvault.Record
	after := ""
	for {
		recs, err := s.Scan(t.Context(), after, limit)
		if err != nil {
			t.Fatalf("Scan(%q, %d) err = %v, want nil", after, limit, err)
		}
		if len(recs) > limit {
			t.Fatalf("Scan(%q, %d) returned %d records, want at most %d", after, limit, len(recs), limit)
		}
		if len(recs) > 0 && recs[0].Key() <= after {
			t.Fatalf("Scan(%q, %d) returned %q first, want a key after %q", after, limit, recs[0].Key(), after)
		}
		all = append(all, recs...)
		if len(recs) < limit {
			return all
		}
		after = recs[len(recs)-1].Key()
	}
}

func tokensOf(recs []*tokenvault.Record) []string {
	tokens := make([]string, len(recs))
	for i, rec := range recs {
		tokens[i] = rec.Token
	}
	return tokens
}

// flip changes every byte of b in place.
func flip(b []byte) {
	for i := range b {
		b[i] ^= 0xff
	}
}

// mutate changes every field of rec, and the bytes of its slices in place.
func mutate(rec *tokenvault.Record) {
	rec.Token += "-changed"
	rec.State = tokenvault.StateSuspended
	rec.Revision += 7
	rec.Kind = tokenvault.KindData
	rec.Format = tokenvault.FormatOpaque
	rec.Brand = tokenvault.BrandAmex
	rec.First6 = "000000"
	rec.Last4 = "0000"
	rec.Scope += "-changed"
	rec.Created = rec.Created.Add(-time.Hour)
	rec.Updated = rec.Updated.Add(time.Hour)
	rec.Expires = rec.Expires.Add(time.Hour)
	rec.KeyID += "-changed"
	flip(rec.Ciphertext)
	flip(rec.Fingerprint)
	flip(rec.DeterministicKey)
}

// Create and Get.

func checkCreateGet(t *testing.T, s tokenvault.Store) {
	recs := []*tokenvault.Record{newRecord(opaqueToken()), newDeterministicRecord(opaqueToken()), newRecord(cardToken(16))}
	data := newRecord(opaqueToken())
	data.Kind, data.Format, data.Brand, data.First6, data.Last4 = tokenvault.KindData, tokenvault.FormatOpaque, "", "", ""
	data.Expires = time.Time{}
	recs = append(recs, data)

	for _, rec := range recs {
		want := rec.Clone()
		mustCreate(t, s, rec)
		wantRecord(t, s, want)
	}
}

func checkCreateTokenExists(t *testing.T, s tokenvault.Store) {
	first := newRecord(opaqueToken())
	mustCreate(t, s, first.Clone())

	second := newDeterministicRecord(first.Token)
	if err := s.Create(t.Context(), second); !errors.Is(err, tokenvault.ErrTokenExists) {
		t.Fatalf("Create(%q) again err = %v, want ErrTokenExists", first.Token, err)
	}

	wantRecord(t, s, first)
	wantFingerprint(t, s, second.Fingerprint, []string{})
	wantNoDeterministic(t, s, second.DeterministicKey)
}

func checkCreateClosedTokenExists(t *testing.T, s tokenvault.Store) {
	rec := newRecord(opaqueToken())
	mustCreate(t, s, rec)
	closed := mustUpdate(t, s, rec.Token, closeRecord)

	again := newRecord(rec.Token)
	if err := s.Create(t.Context(), again); !errors.Is(err, tokenvault.ErrTokenExists) {
		t.Fatalf("Create(%q) of a closed token err = %v, want ErrTokenExists", rec.Token, err)
	}
	wantRecord(t, s, closed)
	wantFingerprint(t, s, again.Fingerprint, []string{})

	// A record created closed is a tombstone too.
	tombstone := newRecord(opaqueToken())
	tombstone.State = tokenvault.StateClosed
	tombstone.KeyID, tombstone.Ciphertext, tombstone.Fingerprint = "", nil, nil
	mustCreate(t, s, tombstone)
	if err := s.Create(t.Context(), newRecord(tombstone.Token)); !errors.Is(err, tokenvault.ErrTokenExists) {
		t.Errorf("Create(%q) of a tombstone err = %v, want ErrTokenExists", tombstone.Token, err)
	}
}

func checkCreateDeterministicKeyExists(t *testing.T, s tokenvault.Store) {
	first := newDeterministicRecord(opaqueToken())
	mustCreate(t, s, first.Clone())

	second := newDeterministicRecord(opaqueToken())
	second.DeterministicKey = bytes.Clone(first.DeterministicKey)
	if err := s.Create(t.Context(), second); !errors.Is(err, tokenvault.ErrDeterministicKeyExists) {
		t.Fatalf("Create(%q) with the key of %q err = %v, want ErrDeterministicKeyExists", second.Token, first.Token, err)
	}

	wantNotFound(t, s, second.Token)
	wantFingerprint(t, s, second.Fingerprint, []string{})
	wantDeterministic(t, s, first.DeterministicKey, first)
	wantRecord(t, s, first)
}

func checkCreateIndexes(t *testing.T, s tokenvault.Store) {
	rec := newDeterministicRecord(opaqueToken())
	mustCreate(t, s, rec)

	wantFingerprint(t, s, rec.Fingerprint, []string{rec.Token})
	wantDeterministic(t, s, rec.DeterministicKey, rec)

	// A record without index fields is in no index.
	plain := newRecord(opaqueToken())
	plain.Fingerprint = nil
	mustCreate(t, s, plain)
	wantFingerprint(t, s, nil, []string{})
	wantNoDeterministic(t, s, nil)
}

func checkGetUnknown(t *testing.T, s tokenvault.Store) {
	wantNotFound(t, s, opaqueToken())

	mustCreate(t, s, newRecord(opaqueToken()))
	wantNotFound(t, s, opaqueToken())
	wantNotFound(t, s, cardToken(16))
}

// Copies.

func checkCopiesCreate(t *testing.T, s tokenvault.Store) {
	rec := newDeterministicRecord(opaqueToken())
	want := rec.Clone()
	mustCreate(t, s, rec)
	mutate(rec)

	wantRecord(t, s, want)
	wantFingerprint(t, s, want.Fingerprint, []string{want.Token})
	wantDeterministic(t, s, want.DeterministicKey, want)
}

func checkCopiesGet(t *testing.T, s tokenvault.Store) {
	want := newDeterministicRecord(opaqueToken())
	mustCreate(t, s, want.Clone())

	got := mustGet(t, s, want.Token)
	mutate(got)
	wantRecord(t, s, want)
}

func checkCopiesUpdate(t *testing.T, s tokenvault.Store) {
	rec := newDeterministicRecord(opaqueToken())
	mustCreate(t, s, rec)

	var fnRecord *tokenvault.Record
	var change *tokenvault.Change
	returned := mustUpdate(t, s, rec.Token, func(r *tokenvault.Record) (*tokenvault.Change, error) {
		fnRecord = r
		var err error
		change, err = suspendRecord(r)
		return change, err
	})
	want := returned.Clone()
	wantChanges := mustHistory(t, s, rec.Token)

	mutate(returned)
	wantRecord(t, s, want)
	mutate(fnRecord)
	wantRecord(t, s, want)
	wantDeterministic(t, s, want.DeterministicKey, want)
	wantFingerprint(t, s, want.Fingerprint, []string{want.Token})

	change.Reason = "changed after Update"
	change.Revision = 99
	wantHistory(t, s, rec.Token, wantChanges)
}

func checkCopiesScan(t *testing.T, s tokenvault.Store) {
	var want []*tokenvault.Record
	for range 3 {
		rec := newDeterministicRecord(opaqueToken())
		mustCreate(t, s, rec.Clone())
		want = append(want, rec)
	}
	slices.SortFunc(want, func(a, b *tokenvault.Record) int { return strings.Compare(a.Token, b.Token) })

	got, err := s.Scan(t.Context(), "", 10)
	if err != nil {
		t.Fatalf("Scan(\"\", 10) err = %v, want nil", err)
	}
	for _, rec := range got {
		mutate(rec)
	}

	again, err := s.Scan(t.Context(), "", 10)
	if err != nil {
		t.Fatalf("Scan(\"\", 10) err = %v, want nil", err)
	}
	if diff := cmp.Diff(want, again, cmpOptions...); diff != "" {
		t.Errorf("Scan(\"\", 10) after changing the previous result mismatch (-want +got):\n%s", diff)
	}
}

func checkCopiesFindByDeterministicKey(t *testing.T, s tokenvault.Store) {
	want := newDeterministicRecord(opaqueToken())
	mustCreate(t, s, want.Clone())

	got, err := s.FindByDeterministicKey(t.Context(), want.DeterministicKey)
	if err != nil {
		t.Fatalf("FindByDeterministicKey(%x) err = %v, want nil", want.DeterministicKey, err)
	}
	mutate(got)
	wantDeterministic(t, s, want.DeterministicKey, want)
	wantRecord(t, s, want)
}

func checkCopiesHistory(t *testing.T, s tokenvault.Store) {
	rec := newRecord(opaqueToken())
	mustCreate(t, s, rec)
	mustUpdate(t, s, rec.Token, suspendRecord)
	want := mustHistory(t, s, rec.Token)

	got := mustHistory(t, s, rec.Token)
	got[0].Reason = "changed by the caller"
	got[0].Revision = 99
	wantHistory(t, s, rec.Token, want)
}

// Update.

var errTestFn = errors.New("storetest: error from the Update function")

func checkUpdateFnError(t *testing.T, s tokenvault.Store) {
	want := newDeterministicRecord(opaqueToken())
	mustCreate(t, s, want.Clone())

	got, err := s.Update(t.Context(), want.Token, func(rec *tokenvault.Record) (*tokenvault.Change, error) {
		closeRecord(rec)
		return &tokenvault.Change{From: tokenvault.StateActive, To: tokenvault.StateClosed}, errTestFn
	})
	if !errors.Is(err, errTestFn) {
		t.Errorf("Update(%q) with a failing fn = %v, %v, want the error of fn", want.Token, got, err)
	}

	wantRecord(t, s, want)
	wantHistory(t, s, want.Token, []tokenvault.Change{})
	wantFingerprint(t, s, want.Fingerprint, []string{want.Token})
	wantDeterministic(t, s, want.DeterministicKey, want)
}

func checkUpdateNilChange(t *testing.T, s tokenvault.Store) {
	want := newDeterministicRecord(opaqueToken())
	mustCreate(t, s, want.Clone())

	got := mustUpdate(t, s, want.Token, func(rec *tokenvault.Record) (*tokenvault.Change, error) {
		closeRecord(rec)
		return nil, nil
	})
	if diff := cmp.Diff(want, got, cmpOptions...); diff != "" {
		t.Errorf("Update(%q) with a nil change returned a changed record (-want +got):\n%s", want.Token, diff)
	}

	wantRecord(t, s, want)
	wantHistory(t, s, want.Token, []tokenvault.Change{})
	wantFingerprint(t, s, want.Fingerprint, []string{want.Token})
	wantDeterministic(t, s, want.DeterministicKey, want)
}

func checkUpdateRevision(t *testing.T, s tokenvault.Store) {
	want := newRecord(opaqueToken())
	mustCreate(t, s, want.Clone())

	var history []tokenvault.Change
	states := []tokenvault.State{tokenvault.StateSuspended, tokenvault.StateActive, tokenvault.StateSuspended}
	for i, to := range states {
		var change *tokenvault.Change
		ciphertext := randomBytes(90)
		got := mustUpdate(t, s, want.Token, func(rec *tokenvault.Record) (*tokenvault.Change, error) {
			if rec.Revision != uint64(i) {
				return nil, fmt.Errorf("fn received revision %d, want %d", rec.Revision, i)
			}
			change = &tokenvault.Change{From: rec.State, To: to, Reason: "step " + strconv.Itoa(i), Actor: "storetest", Time: now()}
			rec.State = to
			rec.Updated = change.Time
			rec.KeyID = tokenvault.KeyID("key-" + strconv.Itoa(i+2))
			rec.Ciphertext = bytes.Clone(ciphertext)
			rec.Expires = rec.Expires.Add(time.Hour)
			rec.Revision = 1000 // the store sets the revision
			return change, nil
		})

		revision := uint64(i + 1)
		if change.Revision != revision {
			t.Errorf("Update(%q) number %d set the change's Revision to %d, want %d", want.Token, i+1, change.Revision, revision)
		}
		want.State = to
		want.Revision = revision
		want.Updated = change.Time
		want.KeyID = tokenvault.KeyID("key-" + strconv.Itoa(i+2))
		want.Ciphertext = ciphertext
		want.Expires = want.Expires.Add(time.Hour)
		if diff := cmp.Diff(want, got, cmpOptions...); diff != "" {
			t.Errorf("Update(%q) number %d returned (-want +got):\n%s", want.Token, i+1, diff)
		}
		wantRecord(t, s, want)

		entry := *change
		entry.Revision = revision
		history = append(history, entry)
		wantHistory(t, s, want.Token, history)
	}
}

func checkUpdateToken(t *testing.T, s tokenvault.Store) {
	rec := newRecord(opaqueToken())
	mustCreate(t, s, rec)
	other := opaqueToken()

	got := mustUpdate(t, s, rec.Token, func(r *tokenvault.Record) (*tokenvault.Change, error) {
		r.Token = other
		return suspendRecord(r)
	})
	if got.Token != rec.Token {
		t.Errorf("Update(%q) with fn setting Token to %q returned token %q, want %q", rec.Token, other, got.Token, rec.Token)
	}
	if stored := mustGet(t, s, rec.Token); stored.State != tokenvault.StateSuspended || stored.Token != rec.Token {
		t.Errorf("Get(%q) after Update = %v, want the suspended record under its own token", rec.Token, stored)
	}
	wantNotFound(t, s, other)
	wantFingerprint(t, s, rec.Fingerprint, []string{rec.Token})
	if _, _, err := s.History(t.Context(), other); !errors.Is(err, tokenvault.ErrNotFound) {
		t.Errorf("History(%q) err = %v, want ErrNotFound", other, err)
	}
}

func checkUpdateClearIndexes(t *testing.T, s tokenvault.Store) {
	rec := newDeterministicRecord(opaqueToken())
	sibling := newRecord(opaqueToken())
	sibling.Fingerprint = bytes.Clone(rec.Fingerprint)
	mustCreate(t, s, rec)
	mustCreate(t, s, sibling)

	closed := mustUpdate(t, s, rec.Token, closeRecord)
	wantRecord(t, s, closed)
	wantFingerprint(t, s, rec.Fingerprint, []string{sibling.Token})
	wantFingerprint(t, s, nil, []string{})
	wantNoDeterministic(t, s, rec.DeterministicKey)
	wantNoDeterministic(t, s, nil)

	reuse := newDeterministicRecord(opaqueToken())
	reuse.DeterministicKey = bytes.Clone(rec.DeterministicKey)
	if err := s.Create(t.Context(), reuse); err != nil {
		t.Fatalf("Create(%q) with the key of closed %q err = %v, want nil", reuse.Token, rec.Token, err)
	}
	wantDeterministic(t, s, reuse.DeterministicKey, reuse)
}

func checkUpdateMoveIndexes(t *testing.T, s tokenvault.Store) {
	rec := newDeterministicRecord(opaqueToken())
	mustCreate(t, s, rec.Clone())
	newFingerprint, newKey := randomBytes(32), randomBytes(32)

	got := mustUpdate(t, s, rec.Token, func(r *tokenvault.Record) (*tokenvault.Change, error) {
		r.Fingerprint = bytes.Clone(newFingerprint)
		r.DeterministicKey = bytes.Clone(newKey)
		return suspendRecord(r)
	})

	wantFingerprint(t, s, rec.Fingerprint, []string{})
	wantFingerprint(t, s, newFingerprint, []string{rec.Token})
	wantNoDeterministic(t, s, rec.DeterministicKey)
	wantDeterministic(t, s, newKey, got)

	// The old key is free again.
	reuse := newDeterministicRecord(opaqueToken())
	reuse.DeterministicKey = bytes.Clone(rec.DeterministicKey)
	if err := s.Create(t.Context(), reuse); err != nil {
		t.Errorf("Create(%q) with the former key of %q err = %v, want nil", reuse.Token, rec.Token, err)
	}
}

func checkUpdateKeepDeterministicKey(t *testing.T, s tokenvault.Store) {
	rec := newDeterministicRecord(opaqueToken())
	mustCreate(t, s, rec)

	for range 2 {
		got, err := s.Update(t.Context(), rec.Token, func(r *tokenvault.Record) (*tokenvault.Change, error) {
			r.Ciphertext = randomBytes(80)
			return &tokenvault.Change{From: r.State, To: r.State, Reason: "new ciphertext", Time: now()}, nil
		})
		if err != nil {
			t.Fatalf("Update(%q) keeping its deterministic key err = %v, want nil", rec.Token, err)
		}
		wantDeterministic(t, s, rec.DeterministicKey, got)
		wantFingerprint(t, s, rec.Fingerprint, []string{rec.Token})
	}
}

func checkUpdateDeterministicKeyExists(t *testing.T, s tokenvault.Store) {
	holder := newDeterministicRecord(opaqueToken())
	want := newDeterministicRecord(opaqueToken())
	mustCreate(t, s, holder.Clone())
	mustCreate(t, s, want.Clone())
	newFingerprint := randomBytes(32)

	got, err := s.Update(t.Context(), want.Token, func(r *tokenvault.Record) (*tokenvault.Change, error) {
		r.DeterministicKey = bytes.Clone(holder.DeterministicKey)
		r.Fingerprint = bytes.Clone(newFingerprint)
		return suspendRecord(r)
	})
	if !errors.Is(err, tokenvault.ErrDeterministicKeyExists) {
		t.Fatalf("Update(%q) to the key of %q = %v, %v, want ErrDeterministicKeyExists", want.Token, holder.Token, got, err)
	}

	wantRecord(t, s, want)
	wantRecord(t, s, holder)
	wantHistory(t, s, want.Token, []tokenvault.Change{})
	wantDeterministic(t, s, holder.DeterministicKey, holder)
	wantDeterministic(t, s, want.DeterministicKey, want)
	wantFingerprint(t, s, want.Fingerprint, []string{want.Token})
	wantFingerprint(t, s, newFingerprint, []string{})
}

func checkUpdateUnknown(t *testing.T, s tokenvault.Store) {
	mustCreate(t, s, newRecord(opaqueToken()))
	token := opaqueToken()

	got, err := s.Update(t.Context(), token, suspendRecord)
	if !errors.Is(err, tokenvault.ErrNotFound) {
		t.Errorf("Update(%q) = %v, %v, want ErrNotFound", token, got, err)
	}
	wantNotFound(t, s, token)
}

// History.

func checkHistoryUnknown(t *testing.T, s tokenvault.Store) {
	mustCreate(t, s, newRecord(opaqueToken()))
	token := opaqueToken()

	if _, history, err := s.History(t.Context(), token); !errors.Is(err, tokenvault.ErrNotFound) {
		t.Errorf("History(%q) = %v, %v, want ErrNotFound", token, history, err)
	}
}

func checkHistoryEmpty(t *testing.T, s tokenvault.Store) {
	rec := newRecord(opaqueToken())
	mustCreate(t, s, rec)

	history := mustHistory(t, s, rec.Token)
	if history == nil || len(history) != 0 {
		t.Errorf("History(%q) = %#v, want an empty non-nil slice", rec.Token, history)
	}
}

// FindByFingerprint and FindByDeterministicKey.

func checkFindByFingerprintOrder(t *testing.T, s tokenvault.Store) {
	fingerprint := randomBytes(32)
	tokens := []string{opaqueToken(), opaqueToken(), cardToken(16), cardToken(19), cardToken(13), "tok_B", "tok_a"}
	for _, token := range tokens {
		rec := newRecord(token)
		rec.Fingerprint = bytes.Clone(fingerprint)
		mustCreate(t, s, rec)
	}
	for range 3 {
		mustCreate(t, s, newRecord(opaqueToken()))
	}

	slices.Sort(tokens)
	wantFingerprint(t, s, fingerprint, tokens)
}

func checkFindByFingerprintNone(t *testing.T, s tokenvault.Store) {
	wantFingerprint(t, s, randomBytes(32), []string{})

	rec := newRecord(opaqueToken())
	mustCreate(t, s, rec)
	mustUpdate(t, s, rec.Token, closeRecord)
	mustCreate(t, s, newRecord(opaqueToken()))

	wantFingerprint(t, s, randomBytes(32), []string{})
	wantFingerprint(t, s, rec.Fingerprint, []string{})
	wantFingerprint(t, s, nil, []string{})
	wantFingerprint(t, s, []byte{}, []string{})
}

func checkFindByDeterministicKeyUnknown(t *testing.T, s tokenvault.Store) {
	wantNoDeterministic(t, s, randomBytes(32))

	mustCreate(t, s, newDeterministicRecord(opaqueToken()))
	mustCreate(t, s, newRecord(opaqueToken()))
	wantNoDeterministic(t, s, randomBytes(32))
	wantNoDeterministic(t, s, nil)
}

// Scan.

// orderTokens returns tokens whose byte order differs from numeric order
// ("100" before "99") and from case-insensitive order ("tok_B" before
// "tok_a"), one with a non-ASCII letter, and random tokens of both shapes.
func orderTokens() []string {
	tokens := []string{"99", "100", "tok_B", "tok_a", "tok_A", "tok_b", "tok_\u00e9", "tok_z", "tok_0"}
	for range 4 {
		tokens = append(tokens, opaqueToken(), cardToken(16))
	}
	return append(tokens, cardToken(13), cardToken(19))
}

func checkScanOrder(t *testing.T, s tokenvault.Store) {
	tokens := orderTokens()
	byToken := make(map[string]*tokenvault.Record)
	for _, token := range tokens {
		rec := newRecord(token)
		byToken[token] = rec.Clone()
		mustCreate(t, s, rec)
	}

	got, err := s.Scan(t.Context(), "", len(tokens)+5)
	if err != nil {
		t.Fatalf("Scan(\"\", %d) err = %v, want nil", len(tokens)+5, err)
	}
	want := slices.Sorted(slices.Values(tokens))
	if diff := cmp.Diff(want, tokensOf(got)); diff != "" {
		t.Errorf("Scan(\"\", %d) tokens not in byte order (-want +got):\n%s", len(tokens)+5, diff)
	}
	for _, rec := range got {
		if diff := cmp.Diff(byToken[rec.Token], rec, cmpOptions...); diff != "" {
			t.Errorf("Scan returned record %q (-want +got):\n%s", rec.Token, diff)
		}
	}
}

func checkScanPaging(t *testing.T, s tokenvault.Store) {
	tokens := orderTokens()
	for range 23 - len(tokens) {
		tokens = append(tokens, opaqueToken())
	}
	for _, token := range tokens {
		mustCreate(t, s, newRecord(token))
	}
	want := slices.Sorted(slices.Values(tokens))

	for _, limit := range []int{1, 5, 23, 100} {
		got := tokensOf(scanAll(t, s, limit))
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("Scan pages of %d did not visit every record once in order (-want +got):\n%s", limit, diff)
		}
	}

	// The last page of 23 records in pages of 5 is short.
	recs, err := s.Scan(t.Context(), want[19], 5)
	if err != nil || len(recs) != 3 {
		t.Errorf("Scan(%q, 5) = %d records, %v, want the 3 last records", want[19], len(recs), err)
	}

	// after need not be a stored token.
	after := want[10] + "\x01"
	recs, err = s.Scan(t.Context(), after, 2)
	if err != nil {
		t.Fatalf("Scan(%q, 2) err = %v, want nil", after, err)
	}
	if diff := cmp.Diff(want[11:13], tokensOf(recs)); diff != "" {
		t.Errorf("Scan(%q, 2) mismatch (-want +got):\n%s", after, diff)
	}

	recs, err = s.Scan(t.Context(), want[len(want)-1], 5)
	if err != nil || len(recs) != 0 {
		t.Errorf("Scan(%q, 5) after the last token = %d records, %v, want none", want[len(want)-1], len(recs), err)
	}
}

func checkScanEmpty(t *testing.T, s tokenvault.Store) {
	recs, err := s.Scan(t.Context(), "", 10)
	if err != nil || len(recs) != 0 {
		t.Errorf("Scan(\"\", 10) of an empty store = %d records, %v, want none", len(recs), err)
	}
}

// ReplaceCiphertexts.

func checkReplaceCiphertexts(t *testing.T, s tokenvault.Store) {
	applied := newRecord(opaqueToken())
	changed := newRecord(opaqueToken())
	closed := newRecord(opaqueToken())
	for _, rec := range []*tokenvault.Record{applied, changed, closed} {
		mustCreate(t, s, rec.Clone())
	}

	// The closed record keeps its ciphertext, so that only its state can
	// make ReplaceCiphertexts skip it.
	closedRec := mustUpdate(t, s, closed.Token, func(rec *tokenvault.Record) (*tokenvault.Change, error) {
		change := &tokenvault.Change{From: rec.State, To: tokenvault.StateClosed, Time: now()}
		rec.State = tokenvault.StateClosed
		return change, nil
	})
	changedRec := mustUpdate(t, s, changed.Token, func(rec *tokenvault.Record) (*tokenvault.Change, error) {
		rec.Ciphertext = randomBytes(80)
		return &tokenvault.Change{From: rec.State, To: rec.State, Reason: "re-encrypted", Time: now()}, nil
	})
	appliedRec := mustGet(t, s, applied.Token)

	swap := func(rec *tokenvault.Record) tokenvault.CiphertextSwap {
		return tokenvault.CiphertextSwap{Key: rec.Key(), OldCiphertext: bytes.Clone(rec.Ciphertext), NewKeyID: "key-2", NewCiphertext: randomBytes(96)}
	}
	missing := newRecord(opaqueToken())
	swaps := []tokenvault.CiphertextSwap{swap(applied), swap(changed), swap(closed), swap(missing)}

	n, err := s.ReplaceCiphertexts(t.Context(), swaps)
	if err != nil || n != 1 {
		t.Fatalf("ReplaceCiphertexts(applied, changed, closed, missing) = %d, %v, want 1, nil", n, err)
	}

	appliedRec.KeyID = swaps[0].NewKeyID
	appliedRec.Ciphertext = swaps[0].NewCiphertext
	wantRecord(t, s, appliedRec)
	wantRecord(t, s, changedRec)
	wantRecord(t, s, closedRec)
	wantNotFound(t, s, missing.Token)

	n, err = s.ReplaceCiphertexts(t.Context(), nil)
	if err != nil || n != 0 {
		t.Errorf("ReplaceCiphertexts(nil) = %d, %v, want 0, nil", n, err)
	}
}

func checkReplaceCiphertextsSameToken(t *testing.T, s tokenvault.Store) {
	rec := newRecord(opaqueToken())
	mustCreate(t, s, rec.Clone())

	first := tokenvault.CiphertextSwap{Key: rec.Key(), OldCiphertext: bytes.Clone(rec.Ciphertext), NewKeyID: "key-2", NewCiphertext: randomBytes(96)}
	second := first
	second.NewKeyID, second.NewCiphertext = "key-3", randomBytes(96)

	n, err := s.ReplaceCiphertexts(t.Context(), []tokenvault.CiphertextSwap{first, second})
	if err != nil || n != 1 {
		t.Fatalf("ReplaceCiphertexts(two swaps of one ciphertext) = %d, %v, want 1, nil", n, err)
	}
	rec.KeyID, rec.Ciphertext = first.NewKeyID, first.NewCiphertext
	wantRecord(t, s, rec)
}

// Outbox.

// mustEvents returns Events(after, limit) and fails the test if the call
// fails, returns more than limit events, or returns them out of order.
func mustEvents(t *testing.T, s tokenvault.Store, after uint64, limit int) []tokenvault.Event {
	t.Helper()
	events, err := s.Events(t.Context(), after, limit)
	if err != nil {
		t.Fatalf("Events(%d, %d) err = %v, want nil", after, limit, err)
	}
	if len(events) > limit {
		t.Fatalf("Events(%d, %d) returned %d events, want at most %d", after, limit, len(events), limit)
	}
	for i, ev := range events {
		if ev.Seq <= after || i > 0 && ev.Seq <= events[i-1].Seq {
			t.Fatalf("Events(%d, %d) returned Seq %v, want increasing numbers after %d", after, limit, seqsOf(events), after)
		}
	}
	return events
}

// allEvents pages through the whole outbox with pages of limit events, until
// Events returns an empty page.
func allEvents(t *testing.T, s tokenvault.Store, limit int) []tokenvault.Event {
	t.Helper()
	var all []tokenvault.Event
	after := uint64(0)
	for {
		events := mustEvents(t, s, after, limit)
		if len(events) == 0 {
			return all
		}
		all = append(all, events...)
		after = events[len(events)-1].Seq
	}
}

// wantEvents fails the test unless the events after the Seq after are
// exactly want.
func wantEvents(t *testing.T, s tokenvault.Store, after uint64, want []tokenvault.Event) {
	t.Helper()
	got := mustEvents(t, s, after, len(want)+10)
	if diff := cmp.Diff(want, got, append(cmpOptions, cmpopts.EquateEmpty())...); diff != "" {
		t.Errorf("Events(%d) mismatch (-want +got):\n%s", after, diff)
	}
}

func seqsOf(events []tokenvault.Event) []uint64 {
	seqs := make([]uint64, len(events))
	for i, ev := range events {
		seqs[i] = ev.Seq
	}
	return seqs
}

// createdEvent returns the event that Create(rec) must append as number seq.
func createdEvent(rec *tokenvault.Record, seq uint64) tokenvault.Event {
	ev := tokenvault.CreatedEvent(rec)
	ev.Seq = seq
	return ev
}

// changeEvent returns the event that an Update must append as number seq for
// change, which fn returned, at revision.
func changeEvent(token string, change *tokenvault.Change, revision, seq uint64) tokenvault.Event {
	entry := *change
	entry.Revision = revision
	ev := tokenvault.ChangeEvent(token, &entry)
	ev.Seq = seq
	return ev
}

func checkOutboxCreate(t *testing.T, s tokenvault.Store) {
	wantEvents(t, s, 0, nil)

	rec := newDeterministicRecord(opaqueToken())
	mustCreate(t, s, rec.Clone())
	want := []tokenvault.Event{createdEvent(rec, 1)}
	wantEvents(t, s, 0, want)
	if ev := want[0]; ev.ID != tokenvault.EventID(rec.Token, 0) || ev.Type != tokenvault.EventCreated || ev.To != tokenvault.StateActive {
		t.Fatalf("CreatedEvent(%q) = %+v, want ID %q, type created and state active", rec.Token, ev, tokenvault.EventID(rec.Token, 0))
	}

	if err := s.Create(t.Context(), rec.Clone()); !errors.Is(err, tokenvault.ErrTokenExists) {
		t.Fatalf("second Create(%q) err = %v, want ErrTokenExists", rec.Token, err)
	}
	sameKey := newDeterministicRecord(opaqueToken())
	sameKey.DeterministicKey = bytes.Clone(rec.DeterministicKey)
	if err := s.Create(t.Context(), sameKey); !errors.Is(err, tokenvault.ErrDeterministicKeyExists) {
		t.Fatalf("Create(%q) with a taken deterministic key err = %v, want ErrDeterministicKeyExists", sameKey.Token, err)
	}
	wantEvents(t, s, 0, want)

	card := newRecord(cardToken(16))
	mustCreate(t, s, card.Clone())
	wantEvents(t, s, 0, append(want, createdEvent(card, 2)))
}

func checkOutboxUpdate(t *testing.T, s tokenvault.Store) {
	rec := newDeterministicRecord(opaqueToken())
	mustCreate(t, s, rec.Clone())

	// The first two changes leave Type unset, so ChangeEvent derives it from
	// the target state; the others set it.
	fns := []func(rec *tokenvault.Record) (*tokenvault.Change, error){
		suspendRecord,
		func(rec *tokenvault.Record) (*tokenvault.Change, error) {
			rec.State = tokenvault.StateActive
			return &tokenvault.Change{From: tokenvault.StateSuspended, To: tokenvault.StateActive, Actor: "storetest", Time: now()}, nil
		},
		func(rec *tokenvault.Record) (*tokenvault.Change, error) {
			rec.Updated = now()
			return &tokenvault.Change{Type: tokenvault.EventValueUpdated, From: rec.State, To: rec.State, Reason: "reissued", Time: rec.Updated}, nil
		},
		func(rec *tokenvault.Record) (*tokenvault.Change, error) {
			change, err := closeRecord(rec)
			change.Type = tokenvault.EventClosed
			return change, err
		},
	}
	wantTypes := []tokenvault.EventType{tokenvault.EventSuspended, tokenvault.EventActivated, tokenvault.EventValueUpdated, tokenvault.EventClosed}

	for i, fn := range fns {
		var change *tokenvault.Change
		mustUpdate(t, s, rec.Token, func(r *tokenvault.Record) (*tokenvault.Change, error) {
			var err error
			change, err = fn(r)
			return change, err
		})

		revision := uint64(i + 1)
		want := changeEvent(rec.Token, change, revision, revision+1)
		wantEvents(t, s, revision, []tokenvault.Event{want})
		if want.Type != wantTypes[i] || want.ID != tokenvault.EventID(rec.Token, revision) {
			t.Errorf("Update(%q) number %d appended %+v, want type %s and ID %q", rec.Token, i+1, want, wantTypes[i], tokenvault.EventID(rec.Token, revision))
		}
	}
}

func checkOutboxNoChange(t *testing.T, s tokenvault.Store) {
	rec := newDeterministicRecord(opaqueToken())
	other := newDeterministicRecord(opaqueToken())
	mustCreate(t, s, rec.Clone())
	mustCreate(t, s, other.Clone())
	want := []tokenvault.Event{createdEvent(rec, 1), createdEvent(other, 2)}

	if _, err := s.Update(t.Context(), rec.Token, func(r *tokenvault.Record) (*tokenvault.Change, error) {
		change, _ := closeRecord(r)
		return change, errTestFn
	}); !errors.Is(err, errTestFn) {
		t.Errorf("Update(%q) with a failing fn err = %v, want the error of fn", rec.Token, err)
	}
	wantEvents(t, s, 0, want)

	mustUpdate(t, s, rec.Token, func(r *tokenvault.Record) (*tokenvault.Change, error) {
		closeRecord(r)
		return nil, nil
	})
	wantEvents(t, s, 0, want)

	if _, err := s.Update(t.Context(), rec.Token, func(r *tokenvault.Record) (*tokenvault.Change, error) {
		r.DeterministicKey = bytes.Clone(other.DeterministicKey)
		return suspendRecord(r)
	}); !errors.Is(err, tokenvault.ErrDeterministicKeyExists) {
		t.Errorf("Update(%q) taking another record's deterministic key err = %v, want ErrDeterministicKeyExists", rec.Token, err)
	}
	wantEvents(t, s, 0, want)

	unknown := opaqueToken()
	if _, err := s.Update(t.Context(), unknown, suspendRecord); !errors.Is(err, tokenvault.ErrNotFound) {
		t.Errorf("Update(%q) of an unknown token err = %v, want ErrNotFound", unknown, err)
	}
	wantEvents(t, s, 0, want)
}

func checkOutboxExpired(t *testing.T, s tokenvault.Store) {
	rec := newRecord(opaqueToken())
	mustCreate(t, s, rec.Clone())

	var change *tokenvault.Change
	got := mustUpdate(t, s, rec.Token, func(r *tokenvault.Record) (*tokenvault.Change, error) {
		r.ExpiryRecorded = true
		r.Updated = now()
		change = &tokenvault.Change{Type: tokenvault.EventExpired, From: r.State, To: r.State, Actor: "storetest", Time: r.Updated}
		return change, nil
	})
	if !got.ExpiryRecorded || !mustGet(t, s, rec.Token).ExpiryRecorded {
		t.Errorf("Update(%q) setting ExpiryRecorded returned %t, Get returned %t, want true", rec.Token, got.ExpiryRecorded, mustGet(t, s, rec.Token).ExpiryRecorded)
	}

	want := changeEvent(rec.Token, change, 1, 2)
	if want.Type != tokenvault.EventExpired || want.From != tokenvault.StateActive || want.To != tokenvault.StateActive {
		t.Fatalf("ChangeEvent of the expiry = %+v, want type expired from active to active", want)
	}
	wantEvents(t, s, 1, []tokenvault.Event{want})

	entry := *change
	entry.Revision = 1
	wantHistory(t, s, rec.Token, []tokenvault.Change{entry})
}

func checkOutboxSeq(t *testing.T, s tokenvault.Store) {
	var want []tokenvault.Event
	recs := []*tokenvault.Record{newRecord(opaqueToken()), newDeterministicRecord(opaqueToken()), newRecord(cardToken(15))}
	revisions := make([]uint64, len(recs))
	for i, rec := range recs {
		mustCreate(t, s, rec.Clone())
		want = append(want, createdEvent(rec, uint64(len(want)+1)))

		// Change the records created so far, newest first, so that Seq order
		// differs from token order and creation order.
		for j := i; j >= 0; j-- {
			var change *tokenvault.Change
			mustUpdate(t, s, recs[j].Token, func(r *tokenvault.Record) (*tokenvault.Change, error) {
				change = &tokenvault.Change{From: r.State, To: r.State, Reason: fmt.Sprintf("change %d", len(want)), Time: now()}
				return change, nil
			})
			revisions[j]++
			want = append(want, changeEvent(recs[j].Token, change, revisions[j], uint64(len(want)+1)))
		}
	}

	got := allEvents(t, s, 100)
	if diff := cmp.Diff(want, got, cmpOptions...); diff != "" {
		t.Errorf("Events after %d writes in a row mismatch (-want +got):\n%s", len(want), diff)
	}
}

func checkOutboxPaging(t *testing.T, s tokenvault.Store) {
	var want []tokenvault.Event
	for range 4 {
		rec := newRecord(opaqueToken())
		mustCreate(t, s, rec.Clone())
		want = append(want, createdEvent(rec, uint64(len(want)+1)))
		for revision := uint64(1); revision <= 2; revision++ {
			var change *tokenvault.Change
			mustUpdate(t, s, rec.Token, func(r *tokenvault.Record) (*tokenvault.Change, error) {
				change = &tokenvault.Change{From: r.State, To: r.State, Time: now()}
				return change, nil
			})
			want = append(want, changeEvent(rec.Token, change, revision, uint64(len(want)+1)))
		}
	}
	last := uint64(len(want))

	for _, limit := range []int{1, 3, 5, len(want), len(want) + 1, 1000} {
		got := allEvents(t, s, limit)
		if diff := cmp.Diff(want, got, cmpOptions...); diff != "" {
			t.Errorf("Events paged by %d mismatch (-want +got):\n%s", limit, diff)
		}
	}
	if got := mustEvents(t, s, 5, 2); !slices.Equal(seqsOf(got), []uint64{6, 7}) {
		t.Errorf("Events(5, 2) returned Seq %v, want [6 7]", seqsOf(got))
	}
	if got := mustEvents(t, s, last-1, 10); !slices.Equal(seqsOf(got), []uint64{last}) {
		t.Errorf("Events(%d, 10) returned Seq %v, want [%d]", last-1, seqsOf(got), last)
	}
	for _, after := range []uint64{last, last + 1, 1 << 32, math.MaxUint64 - 1, math.MaxUint64} {
		if got := mustEvents(t, s, after, 10); len(got) != 0 {
			t.Errorf("Events(%d, 10) with %d events stored returned Seq %v, want none", after, last, seqsOf(got))
		}
	}
}

// Metadata.

func mustSetMetadata(t *testing.T, s tokenvault.Store, name string, value []byte) {
	t.Helper()
	if err := s.SetMetadata(t.Context(), name, value); err != nil {
		t.Fatalf("SetMetadata(%q) err = %v, want nil", name, err)
	}
}

func wantMetadata(t *testing.T, s tokenvault.Store, prefix string, want map[string][]byte) {
	t.Helper()
	got, err := s.Metadata(t.Context(), prefix)
	if err != nil {
		t.Errorf("Metadata(%q) err = %v, want nil", prefix, err)
		return
	}
	if got == nil {
		t.Errorf("Metadata(%q) = nil, want a non-nil map", prefix)
	}
	if diff := cmp.Diff(want, got, cmpOptions...); diff != "" {
		t.Errorf("Metadata(%q) mismatch (-want +got):\n%s", prefix, diff)
	}
}

func checkMetadataPrefix(t *testing.T, s tokenvault.Store) {
	wantMetadata(t, s, "", map[string][]byte{})

	entries := map[string][]byte{
		"keycheck/key-1": []byte("check one"),
		"keycheck/key-2": []byte("check two"),
		"keycheck":       []byte("no slash"),
		"keychecks":      []byte("longer name"),
		"other":          []byte("other"),
	}
	for name, value := range entries {
		mustSetMetadata(t, s, name, value)
	}

	wantMetadata(t, s, "", entries)
	wantMetadata(t, s, "keycheck/", map[string][]byte{
		"keycheck/key-1": entries["keycheck/key-1"],
		"keycheck/key-2": entries["keycheck/key-2"],
	})
	wantMetadata(t, s, "keycheck/key-1", map[string][]byte{"keycheck/key-1": entries["keycheck/key-1"]})
	wantMetadata(t, s, "nothing", map[string][]byte{})
}

func checkMetadataDelete(t *testing.T, s tokenvault.Store) {
	mustSetMetadata(t, s, "a", []byte("first"))
	mustSetMetadata(t, s, "b", []byte("kept"))
	mustSetMetadata(t, s, "a", []byte("second"))
	wantMetadata(t, s, "", map[string][]byte{"a": []byte("second"), "b": []byte("kept")})

	mustSetMetadata(t, s, "a", nil)
	wantMetadata(t, s, "", map[string][]byte{"b": []byte("kept")})

	// Deleting a missing name is no error.
	mustSetMetadata(t, s, "missing", nil)

	// An empty value is a value, not a deletion.
	mustSetMetadata(t, s, "empty", []byte{})
	got, err := s.Metadata(t.Context(), "empty")
	if _, ok := got["empty"]; err != nil || !ok {
		t.Errorf("Metadata(\"empty\") = %q, %v, want the entry with an empty value", got, err)
	}
}

func checkMetadataCopies(t *testing.T, s tokenvault.Store) {
	value := []byte("stored value")
	mustSetMetadata(t, s, "name", value)
	flip(value)
	wantMetadata(t, s, "name", map[string][]byte{"name": []byte("stored value")})

	got, err := s.Metadata(t.Context(), "name")
	if err != nil {
		t.Fatalf("Metadata(\"name\") err = %v, want nil", err)
	}
	flip(got["name"])
	got["added"] = []byte("added by the caller")
	wantMetadata(t, s, "", map[string][]byte{"name": []byte("stored value")})
}

// Context.

func checkContextCanceled(t *testing.T, s tokenvault.Store) {
	rec := newDeterministicRecord(opaqueToken())
	mustCreate(t, s, rec.Clone())
	mustSetMetadata(t, s, "name", []byte("value"))

	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	fresh := newDeterministicRecord(opaqueToken())
	for _, c := range methodCalls(rec, fresh) {
		if err := c.call(ctx, s); !errors.Is(err, context.Canceled) {
			t.Errorf("%s with a canceled context err = %v, want context.Canceled", c.name, err)
		}
	}

	wantRecord(t, s, rec)
	wantHistory(t, s, rec.Token, []tokenvault.Change{})
	wantNotFound(t, s, fresh.Token)
	wantFingerprint(t, s, fresh.Fingerprint, []string{})
	wantMetadata(t, s, "", map[string][]byte{"name": []byte("value")})
}

// methodCall is one call of a Store method that returns only its error.
type methodCall struct {
	name string
	call func(ctx context.Context, s tokenvault.Store) error
}

// methodCalls returns a call of every Store method except Close. If they
// succeeded, the calls would suspend rec, create fresh, add the metadata
// entry "added" and delete the entry "name".
func methodCalls(rec, fresh *tokenvault.Record) []methodCall {
	return []methodCall{
		{"Create", func(ctx context.Context, s tokenvault.Store) error {
			return s.Create(ctx, fresh.Clone())
		}},
		{"Get", func(ctx context.Context, s tokenvault.Store) error {
			_, err := s.Get(ctx, rec.Token)
			return err
		}},
		{"Update", func(ctx context.Context, s tokenvault.Store) error {
			_, err := s.Update(ctx, rec.Token, suspendRecord)
			return err
		}},
		{"History", func(ctx context.Context, s tokenvault.Store) error {
			_, _, err := s.History(ctx, rec.Token)
			return err
		}},
		{"FindByDeterministicKey", func(ctx context.Context, s tokenvault.Store) error {
			_, err := s.FindByDeterministicKey(ctx, rec.DeterministicKey)
			return err
		}},
		{"FindByFingerprint", func(ctx context.Context, s tokenvault.Store) error {
			_, err := s.FindByFingerprint(ctx, rec.Fingerprint)
			return err
		}},
		{"FindByFingerprint(nil)", func(ctx context.Context, s tokenvault.Store) error {
			_, err := s.FindByFingerprint(ctx, nil)
			return err
		}},
		{"Scan", func(ctx context.Context, s tokenvault.Store) error {
			_, err := s.Scan(ctx, "", 10)
			return err
		}},
		{"ReplaceCiphertexts", func(ctx context.Context, s tokenvault.Store) error {
			_, err := s.ReplaceCiphertexts(ctx, []tokenvault.CiphertextSwap{{
				Key: rec.Key(), OldCiphertext: rec.Ciphertext, NewKeyID: "key-2", NewCiphertext: []byte("new"),
			}})
			return err
		}},
		{"Events", func(ctx context.Context, s tokenvault.Store) error {
			_, err := s.Events(ctx, 0, 10)
			return err
		}},
		{"Metadata", func(ctx context.Context, s tokenvault.Store) error {
			_, err := s.Metadata(ctx, "")
			return err
		}},
		{"SetMetadata", func(ctx context.Context, s tokenvault.Store) error {
			return s.SetMetadata(ctx, "added", []byte("value"))
		}},
		{"SetMetadata(nil)", func(ctx context.Context, s tokenvault.Store) error {
			return s.SetMetadata(ctx, "name", nil)
		}},
	}
}

// Close.

func checkCloseTwice(t *testing.T, s tokenvault.Store) {
	mustCreate(t, s, newRecord(opaqueToken()))

	if err := s.Close(); err != nil {
		t.Fatalf("Close() err = %v, want nil", err)
	}
	if err := s.Close(); err != nil && !errors.Is(err, tokenvault.ErrStoreClosed) {
		t.Errorf("second Close() err = %v, want nil or ErrStoreClosed", err)
	}
}

func checkCloseMethods(t *testing.T, s tokenvault.Store) {
	rec := newDeterministicRecord(opaqueToken())
	mustCreate(t, s, rec.Clone())
	mustSetMetadata(t, s, "name", []byte("value"))
	if err := s.Close(); err != nil {
		t.Fatalf("Close() err = %v, want nil", err)
	}

	for _, c := range methodCalls(rec, newDeterministicRecord(opaqueToken())) {
		if err := c.call(t.Context(), s); !errors.Is(err, tokenvault.ErrStoreClosed) {
			t.Errorf("%s after Close err = %v, want ErrStoreClosed", c.name, err)
		}
	}
}

// Concurrency.

func checkConcurrentCreateRead(t *testing.T, s tokenvault.Store) {
	const writers, perWriter = 8, 25
	const readers, reads = 4, 50

	// All records exist before the goroutines start, so readers can compare
	// what they find without locking.
	byToken := make(map[string]*tokenvault.Record)
	batches := make([][]*tokenvault.Record, writers)
	for w := range batches {
		for range perWriter {
			rec := newDeterministicRecord(opaqueToken())
			byToken[rec.Token] = rec.Clone()
			batches[w] = append(batches[w], rec)
		}
	}
	tokens := slices.Collect(maps.Keys(byToken))

	// Readers make a fixed number of calls instead of spinning until the
	// writers finish, so that they leave the writers CPU time under -race.
	var wg sync.WaitGroup
	for _, batch := range batches {
		wg.Go(func() {
			for _, rec := range batch {
				if err := s.Create(t.Context(), rec); err != nil {
					t.Errorf("Create(%q) err = %v, want nil", rec.Token, err)
				}
			}
		})
	}
	for r := range readers {
		wg.Go(func() {
			for i := range reads {
				token := tokens[(r*reads+i)%len(tokens)]
				if err := checkConcurrentRead(t.Context(), s, token, byToken); err != nil {
					t.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()

	got := tokensOf(scanAll(t, s, 50))
	slices.Sort(tokens)
	if diff := cmp.Diff(tokens, got); diff != "" {
		t.Errorf("Scan after concurrent Creates mismatch (-want +got):\n%s", diff)
	}
	for _, token := range tokens {
		rec := byToken[token]
		wantFingerprint(t, s, rec.Fingerprint, []string{token})
		wantDeterministic(t, s, rec.DeterministicKey, rec)
	}
}

func checkConcurrentOutbox(t *testing.T, s tokenvault.Store) {
	const writers, perWriter, sharedUpdates = 8, 10, 40
	shared := newRecord(opaqueToken())
	mustCreate(t, s, shared.Clone())

	// Each writer creates its records and changes each twice. Every third
	// record also gets an Update whose fn fails and one that returns nil,
	// which must leave no event. All writers also change one shared record,
	// so that the store alone decides the order of its changes.
	var wg sync.WaitGroup
	for w := range writers {
		wg.Go(func() {
			for i := range perWriter {
				rec := newDeterministicRecord(opaqueToken())
				if err := s.Create(t.Context(), rec); err != nil {
					t.Errorf("Create(%q) err = %v, want nil", rec.Token, err)
					return
				}
				for _, fn := range []func(*tokenvault.Record) (*tokenvault.Change, error){suspendRecord, closeRecord} {
					if _, err := s.Update(t.Context(), rec.Token, fn); err != nil {
						t.Errorf("Update(%q) err = %v, want nil", rec.Token, err)
					}
				}
				if i%3 == 0 {
					s.Update(t.Context(), rec.Token, func(*tokenvault.Record) (*tokenvault.Change, error) { return nil, errTestFn })
					s.Update(t.Context(), rec.Token, func(*tokenvault.Record) (*tokenvault.Change, error) { return nil, nil })
				}
				if i < sharedUpdates/writers {
					_, err := s.Update(t.Context(), shared.Token, func(r *tokenvault.Record) (*tokenvault.Change, error) {
						return &tokenvault.Change{From: r.State, To: r.State, Actor: strconv.Itoa(w), Time: now()}, nil
					})
					if err != nil {
						t.Errorf("Update(%q) of the shared record err = %v, want nil", shared.Token, err)
					}
				}
			}
		})
	}

	// Readers check that the outbox never shows a gap, which a subscriber
	// would skip for good once its cursor passed it.
	stop := make(chan struct{})
	var readers sync.WaitGroup
	for range 2 {
		readers.Go(func() {
			for {
				select {
				case <-stop:
					return
				default:
				}
				events, err := s.Events(t.Context(), 0, 1<<20)
				if err != nil {
					t.Errorf("Events(0) during writes err = %v, want nil", err)
					return
				}
				for i, ev := range events {
					if ev.Seq != uint64(i+1) {
						t.Errorf("Events(0) during writes returned Seq %d at index %d, want %d: the outbox showed a gap", ev.Seq, i, i+1)
						return
					}
				}
			}
		})
	}
	wg.Wait()
	close(stop)
	readers.Wait()

	// Every event must be the event of exactly one committed change, found
	// in the records' histories.
	wantByID := make(map[string]tokenvault.Event)
	recs := scanAll(t, s, 100)
	for _, rec := range recs {
		// A created event has the state at creation, and every record here
		// was created active.
		ev := tokenvault.CreatedEvent(rec)
		ev.To = tokenvault.StateActive
		wantByID[ev.ID] = ev
		for _, change := range mustHistory(t, s, rec.Token) {
			wantByID[tokenvault.EventID(rec.Token, change.Revision)] = tokenvault.ChangeEvent(rec.Token, &change)
		}
	}

	events := allEvents(t, s, 64)
	if len(events) != len(wantByID) {
		t.Errorf("outbox has %d events after concurrent writes, want %d: one per Create and per committed change", len(events), len(wantByID))
	}
	lastSeq := make(map[string]uint64) // token -> Seq of its newest event so far
	lastRevision := make(map[string]uint64)
	seen := make(map[string]bool)
	for i, ev := range events {
		if ev.Seq != uint64(i+1) {
			t.Fatalf("event %d has Seq %d, want %d: Seq must increase by one without gaps", i, ev.Seq, i+1)
		}
		want, ok := wantByID[ev.ID]
		switch {
		case !ok:
			t.Errorf("event %d (%s) matches no committed change", ev.Seq, ev.ID)
			continue
		case seen[ev.ID]:
			t.Errorf("event %s appears twice; the second has Seq %d", ev.ID, ev.Seq)
			continue
		}
		seen[ev.ID] = true
		want.Seq = ev.Seq
		if diff := cmp.Diff(want, ev, cmpOptions...); diff != "" {
			t.Errorf("event %d mismatch with its change (-want +got):\n%s", ev.Seq, diff)
		}
		if _, ok := lastSeq[ev.Token]; ok && ev.Revision <= lastRevision[ev.Token] {
			t.Errorf("event %d of token %q has revision %d after revision %d: Seq must follow commit order", ev.Seq, ev.Token, ev.Revision, lastRevision[ev.Token])
		}
		lastSeq[ev.Token], lastRevision[ev.Token] = ev.Seq, ev.Revision
	}
	for id := range wantByID {
		if !seen[id] {
			t.Errorf("committed change %s has no event", id)
		}
	}
}

// checkConcurrentRead calls Get(token) and Scan(token, 10) while other
// goroutines create the records of byToken. It returns an error unless every
// record it finds equals the one in byToken and Scan's tokens are in order.
func checkConcurrentRead(ctx context.Context, s tokenvault.Store, token string, byToken map[string]*tokenvault.Record) error {
	rec, err := s.Get(ctx, token)
	switch {
	case errors.Is(err, tokenvault.ErrNotFound):
	case err != nil:
		return fmt.Errorf("Get(%q) during Creates err = %v, want nil or ErrNotFound", token, err)
	default:
		if diff := cmp.Diff(byToken[token], rec, cmpOptions...); diff != "" {
			return fmt.Errorf("Get(%q) during Creates mismatch (-want +got):\n%s", token, diff)
		}
	}

	recs, err := s.Scan(ctx, token, 10)
	if err != nil {
		return fmt.Errorf("Scan(%q, 10) during Creates err = %v, want nil", token, err)
	}
	sorted := slices.IsSortedFunc(recs, func(a, b *tokenvault.Record) int { return strings.Compare(a.Token, b.Token) })
	if !sorted || len(recs) > 0 && recs[0].Token <= token {
		return fmt.Errorf("Scan(%q, 10) during Creates returned tokens out of order: %q", token, tokensOf(recs))
	}
	for _, rec := range recs {
		if diff := cmp.Diff(byToken[rec.Token], rec, cmpOptions...); diff != "" {
			return fmt.Errorf("Scan(%q, 10) during Creates returned record %q (-want +got):\n%s", token, rec.Token, diff)
		}
	}
	return nil
}

func checkConcurrentUpdate(t *testing.T, s tokenvault.Store) {
	const updates = 1000
	rec := newRecord(opaqueToken())
	mustCreate(t, s, rec)

	// Each fn records the revision it read in Reason and its goroutine in
	// Actor, so the history shows whether an update read a stale record or
	// was lost.
	var wg sync.WaitGroup
	for g := range updates {
		wg.Go(func() {
			_, err := s.Update(t.Context(), rec.Token, func(r *tokenvault.Record) (*tokenvault.Change, error) {
				r.Updated = now()
				return &tokenvault.Change{From: r.State, To: r.State, Reason: strconv.FormatUint(r.Revision, 10), Actor: strconv.Itoa(g), Time: r.Updated}, nil
			})
			if err != nil {
				t.Errorf("Update(%q) from goroutine %d err = %v, want nil", rec.Token, g, err)
			}
		})
	}
	wg.Wait()

	if got := mustGet(t, s, rec.Token); got.Revision != updates {
		t.Errorf("Get(%q).Revision = %d after %d concurrent Updates, want %d", rec.Token, got.Revision, updates, updates)
	}
	history := mustHistory(t, s, rec.Token)
	if len(history) != updates {
		t.Fatalf("History(%q) has %d changes after %d concurrent Updates, want %d", rec.Token, len(history), updates, updates)
	}
	// Each loop reports only the first bad entry, because one lost update
	// shifts all later ones.
	for i, change := range history {
		if change.Revision != uint64(i+1) {
			t.Errorf("History(%q)[%d].Revision = %d, want %d", rec.Token, i, change.Revision, i+1)
			break
		}
	}
	for i, change := range history {
		if want := strconv.Itoa(i); change.Reason != want {
			t.Errorf("History(%q)[%d] was made from revision %s, want %s: fn read a stale record", rec.Token, i, change.Reason, want)
			break
		}
	}
	actors := make(map[string]bool)
	for _, change := range history {
		if actors[change.Actor] {
			t.Errorf("History(%q) has two changes from goroutine %s", rec.Token, change.Actor)
			break
		}
		actors[change.Actor] = true
	}
}
