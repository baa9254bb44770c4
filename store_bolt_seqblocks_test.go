package tokenvault

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"path/filepath"
	"runtime"
	"slices"
	"testing"

	"github.com/google/go-cmp/cmp"
	bolt "go.etcd.io/bbolt"
)

// seqTestEntry returns the bytes of test entry i, 1 to 300 bytes long, so
// that some lengths take a two-byte uvarint.
func seqTestEntry(i int) []byte {
	b := make([]byte, 1+(i*37)%300)
	for j := range b {
		b[j] = byte(i + j)
	}
	return b
}

// seqTestDB opens a bbolt file in a temporary folder with an empty outbox
// bucket.
func seqTestDB(t *testing.T) *bolt.DB {
	t.Helper()
	db, err := bolt.Open(filepath.Join(t.TempDir(), "seq.db"), 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	err = db.Update(func(tx *bolt.Tx) error {
		_, err := tx.CreateBucket(bucketEvents)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return db
}

// putSingleEntries writes entries to the outbox of db under its next
// sequence numbers, one entry per eight-byte key, as schema version 5 did.
func putSingleEntries(t *testing.T, db *bolt.DB, entries [][]byte) {
	t.Helper()
	err := db.Update(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketEvents)
		for _, e := range entries {
			seq, err := b.NextSequence()
			if err != nil {
				return err
			}
			if err := b.Put(binary.BigEndian.AppendUint64(nil, seq), e); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// putBlockEntries writes entries to the outbox of db in one transaction
// through a seqBuffer, as the commit loop does, and returns their numbers.
func putBlockEntries(t *testing.T, db *bolt.DB, entries [][]byte) []uint64 {
	t.Helper()
	var seqs []uint64
	err := db.Update(func(tx *bolt.Tx) error {
		buf := seqBuffer{name: bucketEvents}
		buf.begin(tx)
		for _, e := range entries {
			seq, err := buf.add(tx, e)
			if err != nil {
				return err
			}
			seqs = append(seqs, seq)
		}
		return buf.flush()
	})
	if err != nil {
		t.Fatal(err)
	}
	return seqs
}

// seqTestEntries returns entries first to last of seqTestEntry.
func seqTestEntries(first, last int) [][]byte {
	var entries [][]byte
	for i := first; i <= last; i++ {
		entries = append(entries, seqTestEntry(i))
	}
	return entries
}

// walkedEntries returns the numbers and copies of the entries that walkSeq
// reads from the outbox of db, numbered from `from` to `to`.
func walkedEntries(t *testing.T, db *bolt.DB, from, to uint64) (seqs []uint64, entries [][]byte) {
	t.Helper()
	err := db.View(func(tx *bolt.Tx) error {
		return walkSeq(tx.Bucket(bucketEvents), from, to, func(seq uint64, entry []byte) error {
			seqs = append(seqs, seq)
			entries = append(entries, bytes.Clone(entry))
			return nil
		})
	})
	if err != nil {
		t.Fatalf("walkSeq(%d, %d) err = %v", from, to, err)
	}
	return seqs, entries
}

// Entries written one per key, as schema version 5 did, and then in blocks
// by transactions of 3, 600 and 1 entries, read back with their numbers. The
// test reads them whole, in ranges that start and end inside blocks, and one
// by one.
func TestSeqBlocksRoundTrip(t *testing.T) {
	db := seqTestDB(t)
	putSingleEntries(t, db, seqTestEntries(1, 5))
	var seqs []uint64
	for _, span := range [][2]int{{6, 8}, {9, 608}, {609, 609}} {
		seqs = append(seqs, putBlockEntries(t, db, seqTestEntries(span[0], span[1]))...)
	}
	const last = 609
	if want := slices.Collect(func(yield func(uint64) bool) {
		for s := uint64(6); s <= last && yield(s); s++ {
		}
	}); !slices.Equal(seqs, want) {
		t.Errorf("seqBuffer.add returned numbers %v, want 6 to %d", seqs, last)
	}

	// The 600 entries of one transaction fill two blocks and start a third.
	var keys []string
	err := db.View(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketEvents)
		if got := b.Sequence(); got != last {
			t.Errorf("outbox sequence = %d, want %d", got, last)
		}
		return b.ForEach(func(k, _ []byte) error {
			keys = append(keys, fmt.Sprintf("%x", k))
			return nil
		})
	})
	if err != nil {
		t.Fatal(err)
	}
	var wantKeys []string
	for s := uint64(1); s <= 5; s++ {
		wantKeys = append(wantKeys, fmt.Sprintf("%x", binary.BigEndian.AppendUint64(nil, s)))
	}
	for _, first := range []uint64{6, 9, 265, 521, 609} {
		wantKeys = append(wantKeys, fmt.Sprintf("%x", seqBlockKey(first)))
	}
	if diff := cmp.Diff(wantKeys, keys); diff != "" {
		t.Errorf("outbox keys mismatch (-want +got):\n%s", diff)
	}

	bounds := []uint64{0, 1, 4, 5, 6, 7, 8, 9, 10, 264, 265, 266, 520, 521, 608, 609, 610, math.MaxUint64}
	for _, from := range bounds {
		for _, to := range bounds {
			gotSeqs, gotEntries := walkedEntries(t, db, from, to)
			var wantSeqs []uint64
			var wantEntries [][]byte
			for s := max(from, 1); s <= min(to, last); s++ {
				wantSeqs = append(wantSeqs, s)
				wantEntries = append(wantEntries, seqTestEntry(int(s)))
			}
			if !slices.Equal(gotSeqs, wantSeqs) {
				t.Errorf("walkSeq(%d, %d) read numbers %v, want %v", from, to, gotSeqs, wantSeqs)
				continue
			}
			if !slices.EqualFunc(gotEntries, wantEntries, bytes.Equal) {
				t.Errorf("walkSeq(%d, %d) read other bytes than were written", from, to)
			}
		}
	}

	err = db.View(func(tx *bolt.Tx) error {
		c := tx.Bucket(bucketEvents).Cursor()
		for s := uint64(0); s <= last+2; s++ {
			got, err := seqEntryAt(c, s)
			if err != nil {
				return fmt.Errorf("seqEntryAt(%d): %w", s, err)
			}
			var want []byte
			if s >= 1 && s <= last {
				want = seqTestEntry(int(s))
			}
			if !bytes.Equal(got, want) || (got == nil) != (want == nil) {
				t.Errorf("seqEntryAt(%d) = %d bytes, want %d", s, len(got), len(want))
			}
		}
		got, err := seqEntryAt(c, math.MaxUint64)
		if err != nil || got != nil {
			t.Errorf("seqEntryAt(MaxUint64) = %d bytes, %v; want none", len(got), err)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// seqTestStore creates a store at path whose fingerprint log and outbox
// start with five entries one per key, as schema version 5 wrote them, and
// then hold the blocks of a CreateBatch of 1,000 records and of two more
// Creates. It returns the store, open, and the records.
func seqTestStore(t *testing.T, path string, opts *BoltOptions) (*BoltStore, []*Record) {
	t.Helper()
	ctx := context.Background()
	s, err := OpenBoltStore(path, nil)
	if err != nil {
		t.Fatal(err)
	}
	var recs []*Record
	for i := range 5 {
		rec := mergeTestRecord(i)
		if err := s.Create(ctx, rec); err != nil {
			t.Fatal(err)
		}
		recs = append(recs, rec)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	rawBoltUpdate(t, path, func(tx *bolt.Tx) error { return downgradeSchema(tx, 5) })

	s, err = OpenBoltStore(path, opts)
	if err != nil {
		t.Fatalf("OpenBoltStore of schema version 5 err = %v", err)
	}
	t.Cleanup(func() { s.Close() })
	var batch []*Record
	for i := 5; i < 1005; i++ {
		batch = append(batch, mergeTestRecord(i))
	}
	errs, err := s.CreateBatch(ctx, batch)
	if err != nil {
		t.Fatalf("CreateBatch err = %v", err)
	}
	for i, err := range errs {
		if err != nil {
			t.Fatalf("CreateBatch: record %d err = %v", i, err)
		}
	}
	recs = append(recs, batch...)
	for i := 1005; i < 1007; i++ {
		rec := mergeTestRecord(i)
		if err := s.Create(ctx, rec); err != nil {
			t.Fatal(err)
		}
		recs = append(recs, rec)
	}
	return s, recs
}

// seqTestLookups returns the tokens of recs by fingerprint.
func seqTestLookups(recs []*Record) map[string][]string {
	want := make(map[string][]string)
	for _, rec := range recs {
		want[string(rec.Fingerprint)] = append(want[string(rec.Fingerprint)], rec.Token)
	}
	return want
}

// The fingerprint log and the outbox of a store upgraded from schema
// version 5 keep its single entries before the blocks of later commits and
// number them all without a gap. Every fingerprint is found before and after
// a reopen, and after a merge.
func TestBoltSeqBlocksLookups(t *testing.T) {
	path := filepath.Join(t.TempDir(), "vault.db")
	s, recs := seqTestStore(t, path, nil)
	want := seqTestLookups(recs)
	wantLookups(t, s, want)

	err := s.view(t.Context(), func(tx *bolt.Tx) error {
		for _, name := range [][]byte{bucketFingerprintLog, bucketEvents} {
			b := tx.Bucket(name)
			if got := b.Sequence(); got != uint64(len(recs)) {
				t.Errorf("bucket %s: sequence = %d, want %d", name, got, len(recs))
			}
			var firsts []uint64
			err := forEachSeqBlock(b, func(k, v []byte) error {
				first, _, err := seqSpan(k, v)
				if len(k) == 9 {
					firsts = append(firsts, first)
				}
				return err
			})
			if err != nil {
				return err
			}
			if want := []uint64{6, 262, 518, 774, 1006, 1007}; !slices.Equal(firsts, want) {
				t.Errorf("bucket %s: blocks start at %v, want %v", name, firsts, want)
			}
			seqs := seqNumbers(t, tx, name)
			for i, seq := range seqs {
				if seq != uint64(i+1) {
					t.Fatalf("bucket %s: entry %d has number %d, want %d", name, i, seq, i+1)
				}
			}
			if len(seqs) != len(recs) {
				t.Errorf("bucket %s holds %d entries, want %d", name, len(seqs), len(recs))
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}

	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s, err = OpenBoltStore(path, &BoltOptions{FingerprintMergeAfter: 4})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	wantLookups(t, s, want)

	// One more Create starts a merge of the whole log.
	rec := mergeTestRecord(2000)
	if err := s.Create(t.Context(), rec); err != nil {
		t.Fatal(err)
	}
	recs = append(recs, rec)
	waitMerge(t, s)
	if n := s.merge.merges.Load(); n != 1 {
		t.Fatalf("%d merges succeeded, want 1", n)
	}
	if n := logEntries(t, s); n != 0 {
		t.Errorf("the fingerprint log has %d entries after the merge, want 0", n)
	}
	wantLookups(t, s, seqTestLookups(recs))
}

// seqNumbers returns the numbers of the entries of bucket name in tx.
func seqNumbers(t *testing.T, tx *bolt.Tx, name []byte) []uint64 {
	t.Helper()
	var seqs []uint64
	err := walkSeq(tx.Bucket(name), 0, math.MaxUint64, func(seq uint64, _ []byte) error {
		seqs = append(seqs, seq)
		return nil
	})
	if err != nil {
		t.Fatalf("walkSeq of bucket %s err = %v", name, err)
	}
	return seqs
}

// Events pages through single entries and blocks with any limit, from any
// position, and returns nothing after the last event.
func TestBoltEventsPagingAcrossBlocks(t *testing.T) {
	s, recs := seqTestStore(t, filepath.Join(t.TempDir(), "vault.db"), nil)
	ctx := t.Context()
	n := uint64(len(recs))

	all, err := s.Events(ctx, 0, len(recs)+10)
	if err != nil {
		t.Fatalf("Events(0) err = %v", err)
	}
	if len(all) != len(recs) {
		t.Fatalf("Events(0) returned %d events, want %d", len(all), len(recs))
	}
	for i, ev := range all {
		if ev.Seq != uint64(i+1) || ev.Token != recs[i].Token || ev.Type != EventCreated {
			t.Fatalf("event %d: Seq %d, token %s, type %v; want Seq %d, token %s, created", i, ev.Seq, ev.Token, ev.Type, i+1, recs[i].Token)
		}
	}

	for _, limit := range []int{1, 2, 255, 256, 257, 1000} {
		var got []Event
		for after := uint64(0); ; {
			page, err := s.Events(ctx, after, limit)
			if err != nil {
				t.Fatalf("Events(%d, %d) err = %v", after, limit, err)
			}
			if len(page) > limit {
				t.Fatalf("Events(%d, %d) returned %d events", after, limit, len(page))
			}
			if len(page) == 0 {
				break
			}
			got = append(got, page...)
			after = page[len(page)-1].Seq
		}
		if !cmp.Equal(got, all) {
			t.Errorf("pages of %d events differ from one read of all events", limit)
		}
	}

	for _, after := range []uint64{0, 4, 5, 6, 100, 261, 262, 773, 1004, 1005, 1006} {
		page, err := s.Events(ctx, after, 1)
		if err != nil || len(page) != 1 || page[0].Seq != after+1 {
			t.Errorf("Events(%d, 1) = %d events, %v; want event %d", after, len(page), err, after+1)
		}
	}
	for _, after := range []uint64{n, n + 1, n + 300, math.MaxUint64 - 1, math.MaxUint64} {
		if page, err := s.Events(ctx, after, 10); err != nil || len(page) != 0 {
			t.Errorf("Events(%d, 10) = %d events, %v; want none", after, len(page), err)
		}
	}
	for _, limit := range []int{0, -1} {
		if page, err := s.Events(ctx, 0, limit); err != nil || len(page) != 0 {
			t.Errorf("Events(0, %d) = %d events, %v; want none", limit, len(page), err)
		}
	}
}

// openSeqCommitter returns a committer on a new bbolt file with the token
// bucket, the fingerprint log and the outbox.
func openSeqCommitter(t *testing.T) *committer {
	t.Helper()
	c := openCommitter(t)
	err := c.db.Update(func(tx *bolt.Tx) error {
		for _, name := range [][]byte{bucketFingerprintLog, bucketEvents} {
			if _, err := tx.CreateBucket(name); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// addEvents returns a write that adds entries first to last of
// seqTestEntry to the outbox through c, then returns fail.
func addEvents(c *committer, first, last int, fail error) func(tx *bolt.Tx) error {
	return func(tx *bolt.Tx) error {
		for i := first; i <= last; i++ {
			if _, err := c.events.add(tx, seqTestEntry(i)); err != nil {
				return err
			}
		}
		return fail
	}
}

// wantOutbox fails the test unless the outbox of c holds exactly entries
// first to last of seqTestEntry, numbered from 1, under a sequence that ends
// with the last of them.
func wantOutbox(t *testing.T, c *committer, first, last int) {
	t.Helper()
	err := c.db.View(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketEvents)
		if got, want := b.Sequence(), uint64(last-first+1); got != want {
			t.Errorf("outbox sequence = %d, want %d", got, want)
		}
		var got, want [][]byte
		var seqs []uint64
		err := walkSeq(b, 0, math.MaxUint64, func(seq uint64, entry []byte) error {
			seqs = append(seqs, seq)
			got = append(got, bytes.Clone(entry))
			return nil
		})
		if err != nil {
			return err
		}
		for i := first; i <= last; i++ {
			want = append(want, seqTestEntry(i))
		}
		for i, seq := range seqs {
			if seq != uint64(i+1) {
				t.Errorf("outbox entry %d has number %d, want %d", i, seq, i+1)
			}
		}
		if !slices.EqualFunc(got, want, bytes.Equal) {
			t.Errorf("outbox holds %d entries, want the %d of the writes that committed", len(got), len(want))
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// A write that fails after adding entries, more than one block of them,
// rolls back its transaction. The writes of its batch commit again without
// it, and their entries take the numbers from 1 with no gap and no entry of
// the failed write.
func TestCommitRollbackLeavesNoGap(t *testing.T) {
	c := openSeqCommitter(t)
	var firstTx int
	release, first := holdCommit(t, c, &firstTx)

	failure := errors.New("test write failed")
	before := submitAsync(c, addEvents(c, 1, 3, nil))
	waitForQueue(t, c, 1)
	failing := submitAsync(c, addEvents(c, 1000, 1299, failure))
	waitForQueue(t, c, 2)
	after := submitAsync(c, addEvents(c, 4, 5, nil))
	waitForQueue(t, c, 3)
	close(release)

	waitEnded(t, first, before, failing, after)
	if first.err != nil || before.err != nil || after.err != nil {
		t.Errorf("writes beside the failed one: err = %v, %v, %v; want nil", first.err, before.err, after.err)
	}
	if !errors.Is(failing.err, failure) {
		t.Errorf("failed write err = %v, want %v", failing.err, failure)
	}
	wantOutbox(t, c, 1, 5)

	if err := c.submit(addEvents(c, 6, 6, nil), 1); err != nil {
		t.Fatal(err)
	}
	wantOutbox(t, c, 1, 6)
}

// A write that adds entries and then calls runtime.Goexit leaves none of
// them behind: the next commit numbers its entries from 1.
func TestCommitGoexitLeavesNoEntries(t *testing.T) {
	c := openSeqCommitter(t)
	var firstTx int
	release, first := holdCommit(t, c, &firstTx)

	leader := submitAsync(c, addEvents(c, 1000, 1001, nil))
	waitForQueue(t, c, 1)
	exiting := submitAsync(c, func(tx *bolt.Tx) error {
		if err := addEvents(c, 1100, 1399, nil)(tx); err != nil {
			return err
		}
		runtime.Goexit()
		return nil
	})
	waitForQueue(t, c, 2)
	other := submitAsync(c, addEvents(c, 1, 2, nil))
	waitForQueue(t, c, 3)
	close(release)

	waitEnded(t, first, leader, exiting, other)
	if !errors.Is(exiting.err, errWriteExited) || other.err != nil {
		t.Errorf("exiting write err = %v, other write err = %v; want %v, nil", exiting.err, other.err, errWriteExited)
	}
	if err := c.submit(addEvents(c, 3, 3, nil), 1); err != nil {
		t.Fatal(err)
	}
	wantOutbox(t, c, 1, 3)
}

// seqDamage lists keys and values of the fingerprint log or the outbox that
// forEachSeqEntry rejects.
var seqDamage = []struct {
	name string
	k, v []byte
}{
	{"key of 7 bytes", make([]byte, 7), []byte{1, 1, 'a'}},
	{"key of 10 bytes", append(seqBlockKey(1), 0), []byte{1, 1, 'a'}},
	{"key of another format", append(binary.BigEndian.AppendUint64(nil, 1), 2), []byte{1, 1, 'a'}},
	{"nested bucket", seqBlockKey(1), nil},
	{"no count", seqBlockKey(1), []byte{}},
	{"count of zero", seqBlockKey(1), []byte{0}},
	{"count cut short", seqBlockKey(1), []byte{0x80}},
	{"count past the bytes", seqBlockKey(1), []byte{3, 1, 'a'}},
	{"length past the end", seqBlockKey(1), []byte{1, 5, 'a'}},
	{"length cut short", seqBlockKey(1), []byte{1, 0x80}},
	{"bytes after the entries", seqBlockKey(1), []byte{1, 1, 'a', 'b'}},
	{"numbers past 2^64", seqBlockKey(math.MaxUint64), []byte{2, 1, 'a', 1, 'b'}},
}

func TestForEachSeqEntryDamage(t *testing.T) {
	for _, tt := range seqDamage {
		err := forEachSeqEntry(tt.k, tt.v, func(uint64, []byte) error { return nil })
		if !errors.Is(err, ErrIntegrity) {
			t.Errorf("%s: forEachSeqEntry err = %v, want ErrIntegrity", tt.name, err)
		}
	}

	// Blocks that overlap are damage too, though each decodes.
	db := seqTestDB(t)
	err := db.Update(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketEvents)
		if err := b.Put(seqBlockKey(1), []byte{3, 1, 'a', 1, 'b', 1, 'c'}); err != nil {
			return err
		}
		return b.Put(binary.BigEndian.AppendUint64(nil, 2), []byte("d"))
	})
	if err != nil {
		t.Fatal(err)
	}
	err = db.View(func(tx *bolt.Tx) error {
		return walkSeq(tx.Bucket(bucketEvents), 0, math.MaxUint64, func(uint64, []byte) error { return nil })
	})
	if !errors.Is(err, ErrIntegrity) {
		t.Errorf("walkSeq of overlapping blocks err = %v, want ErrIntegrity", err)
	}

	// A walk or a lookup that starts at the second key finds the overlap too.
	err = db.View(func(tx *bolt.Tx) error {
		return walkSeq(tx.Bucket(bucketEvents), 2, math.MaxUint64, func(uint64, []byte) error { return nil })
	})
	if !errors.Is(err, ErrIntegrity) {
		t.Errorf("walkSeq from the second key of overlapping blocks err = %v, want ErrIntegrity", err)
	}
	for _, seq := range []uint64{2, 3} {
		err = db.View(func(tx *bolt.Tx) error {
			_, err := seqEntryAt(tx.Bucket(bucketEvents).Cursor(), seq)
			return err
		})
		if !errors.Is(err, ErrIntegrity) {
			t.Errorf("seqEntryAt(%d) of overlapping blocks err = %v, want ErrIntegrity", seq, err)
		}
	}
}

// Damage in the outbox fails Events, and damage in the fingerprint log fails
// FindByFingerprint and the next open, each with an error wrapping
// ErrIntegrity.
func TestBoltSeqBlocksDamage(t *testing.T) {
	for _, tt := range seqDamage {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "vault.db")
			s, err := OpenBoltStore(path, nil)
			if err != nil {
				t.Fatal(err)
			}
			rec := mergeTestRecord(0)
			if err := s.Create(t.Context(), rec); err != nil {
				t.Fatal(err)
			}
			// The damage replaces the block of entry 1 in both buckets.
			err = s.db.Update(func(tx *bolt.Tx) error {
				for _, name := range [][]byte{bucketFingerprintLog, bucketEvents} {
					b := tx.Bucket(name)
					if err := b.Delete(seqBlockKey(1)); err != nil {
						return err
					}
					if tt.v == nil {
						if _, err := b.CreateBucket(tt.k); err != nil {
							return err
						}
					} else if err := b.Put(tt.k, tt.v); err != nil {
						return err
					}
				}
				return nil
			})
			if err != nil {
				t.Fatal(err)
			}

			if _, err := s.Events(t.Context(), 0, 10); !errors.Is(err, ErrIntegrity) {
				t.Errorf("Events err = %v, want ErrIntegrity", err)
			}
			// A lookup finds the damage unless the damaged key no longer sorts
			// where the entry's number leads it.
			tokens, err := s.FindByFingerprint(t.Context(), rec.Fingerprint)
			if err != nil && !errors.Is(err, ErrIntegrity) || err == nil && len(tokens) != 0 {
				t.Errorf("FindByFingerprint = %q, %v; want ErrIntegrity or no token", tokens, err)
			}
			if err := s.Close(); err != nil {
				t.Fatal(err)
			}
			if s, err := OpenBoltStore(path, nil); !errors.Is(err, ErrIntegrity) {
				if err == nil {
					s.Close()
				}
				t.Errorf("OpenBoltStore err = %v, want ErrIntegrity", err)
			}
		})
	}
}

// FuzzForEachSeqEntry checks that forEachSeqEntry never panics, that its
// errors wrap ErrIntegrity, and that the entries of a key it accepts take
// the numbers from the key's on, as many as seqHeader counts.
func FuzzForEachSeqEntry(f *testing.F) {
	f.Add(binary.BigEndian.AppendUint64(nil, 7), []byte("entry"))
	f.Add(seqBlockKey(1), []byte{2, 1, 'a', 3, 'b', 'c', 'd'})
	f.Add(seqBlockKey(math.MaxUint64), []byte{1, 0})
	for _, tt := range seqDamage {
		f.Add(tt.k, tt.v)
	}
	f.Fuzz(func(t *testing.T, k, v []byte) {
		var seqs []uint64
		size := 0
		err := forEachSeqEntry(k, v, func(seq uint64, entry []byte) error {
			seqs = append(seqs, seq)
			size += len(entry)
			return nil
		})
		if err != nil {
			if !errors.Is(err, ErrIntegrity) {
				t.Fatalf("forEachSeqEntry err = %v, want ErrIntegrity", err)
			}
			return
		}
		first, count, _, err := seqHeader(k, v)
		if err != nil {
			t.Fatalf("seqHeader err = %v for a key that forEachSeqEntry accepts", err)
		}
		if len(seqs) != count {
			t.Fatalf("forEachSeqEntry read %d entries, seqHeader counts %d", len(seqs), count)
		}
		for i, seq := range seqs {
			if seq != first+uint64(i) {
				t.Fatalf("entry %d has number %d, want %d", i, seq, first+uint64(i))
			}
		}
		if size > len(v) {
			t.Fatalf("entries have %d bytes, the value only %d", size, len(v))
		}
	})
}

// smallSeqEntry returns an entry of 1 to 10 random bytes.
func smallSeqEntry(rng *rand.Rand) []byte {
	b := make([]byte, 1+rng.IntN(10))
	for i := range b {
		b[i] = byte(rng.Uint32())
	}
	return b
}

// Lookups and walks agree with the entries written when the outbox spans
// many pages, so that seeks land on the edges of pages. The outbox has 2,000
// single entries from number 1,001, as a merge leaves the log, then 3,000
// blocks of 1 to 8 entries.
func TestSeqBlocksManyPages(t *testing.T) {
	db := seqTestDB(t)
	rng := rand.New(rand.NewPCG(31, 32))
	const base = 1001
	want := make(map[uint64][]byte)
	err := db.Update(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketEvents)
		if err := b.SetSequence(base - 1); err != nil {
			return err
		}
		for range 2000 {
			seq, err := b.NextSequence()
			if err != nil {
				return err
			}
			want[seq] = smallSeqEntry(rng)
			if err := b.Put(binary.BigEndian.AppendUint64(nil, seq), want[seq]); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	for range 30 {
		err := db.Update(func(tx *bolt.Tx) error {
			buf := seqBuffer{name: bucketEvents}
			buf.begin(tx)
			for range 100 {
				for range 1 + rng.IntN(8) {
					entry := smallSeqEntry(rng)
					seq, err := buf.add(tx, entry)
					if err != nil {
						return err
					}
					want[seq] = entry
				}
				if err := buf.flush(); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	last := uint64(base + len(want) - 1)

	err = db.View(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketEvents)
		if got := b.Sequence(); got != last {
			t.Errorf("outbox sequence = %d, want %d", got, last)
		}
		c := b.Cursor()
		for seq := uint64(base - 2); seq <= last+2; seq++ {
			got, err := seqEntryAt(c, seq)
			if err != nil {
				return fmt.Errorf("seqEntryAt(%d): %w", seq, err)
			}
			if !bytes.Equal(got, want[seq]) || (got == nil) != (want[seq] == nil) {
				t.Fatalf("seqEntryAt(%d) = %x, want %x", seq, got, want[seq])
			}

			next := seq
			err = walkSeq(b, seq, seq+9, func(n uint64, entry []byte) error {
				if n != max(next, base) || !bytes.Equal(entry, want[n]) {
					return fmt.Errorf("walkSeq(%d, %d) read entry %d with %x, want entry %d", seq, seq+9, n, entry, max(next, base))
				}
				next = n + 1
				return nil
			})
			if err != nil {
				return err
			}
			if wantNext := min(seq+10, last+1); seq <= last && next != wantNext {
				t.Fatalf("walkSeq(%d, %d) stopped before entry %d, want before %d", seq, seq+9, next, wantNext)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}
