package tokenvault

import (
	"context"
	"path/filepath"
	"sync"
	"testing"

	bolt "go.etcd.io/bbolt"
)

// TestBoltReopen makes the store reopen its file every few dozen pages while
// callers tokenize, detokenize and read the outbox, then checks that nothing
// was lost and that bbolt finds the file consistent.
func TestBoltReopen(t *testing.T) {
	path := filepath.Join(t.TempDir(), "vault.db")
	s, err := OpenBoltStore(path, nil)
	if err != nil {
		t.Fatal(err)
	}
	s.reopenAfter = 64
	v := newTestVault(t, s, newTestClock())
	ctx := context.Background()

	const writers, perWriter = 8, 150
	pans := batchCards(writers*perWriter + 2000)
	tokens := make([]string, len(pans))
	var wg sync.WaitGroup
	for w := range writers {
		wg.Go(func() {
			for i := w * perWriter; i < (w+1)*perWriter; i++ {
				token, err := v.TokenizeCard(ctx, pans[i])
				if err != nil {
					t.Errorf("TokenizeCard(number %d) err = %v", i, err)
					return
				}
				tokens[i] = token
				if _, err := v.Detokenize(ctx, token); err != nil {
					t.Errorf("Detokenize(number %d) err = %v", i, err)
					return
				}
			}
		})
	}
	wg.Go(func() {
		first := writers * perWriter
		results, err := v.TokenizeCardBatch(ctx, pans[first:])
		if err != nil {
			t.Errorf("TokenizeCardBatch err = %v", err)
			return
		}
		for i, r := range results {
			tokens[first+i] = r.Token
		}
	})
	wg.Go(func() {
		for range 200 {
			if _, err := v.store.Events(ctx, 0, 10); err != nil {
				t.Errorf("Events err = %v", err)
				return
			}
		}
	})
	wg.Wait()
	if t.Failed() {
		return
	}

	s.mu.RLock()
	reopens := s.reopens
	s.mu.RUnlock()
	if reopens == 0 {
		t.Fatalf("the store never reopened its file after every %d pages", s.reopenAfter)
	}
	for i, token := range tokens {
		if value, err := v.Detokenize(ctx, token); err != nil || string(value) != pans[i] {
			t.Fatalf("Detokenize(number %d) = %d bytes, %v, want the number", i, len(value), err)
		}
	}
	events, err := v.store.Events(ctx, 0, 2*len(tokens))
	if err != nil {
		t.Fatal(err)
	}
	if len(events) != len(tokens) {
		t.Errorf("outbox has %d events for %d tokens", len(events), len(tokens))
	}
	for i, ev := range events {
		if ev.Seq != uint64(i+1) {
			t.Fatalf("event %d has Seq %d, want %d", i, ev.Seq, i+1)
		}
	}
	t.Logf("%d tokens, %d reopens", len(tokens), reopens)

	if err := v.Close(); err != nil {
		t.Fatalf("Close err = %v", err)
	}
	db, err := bolt.Open(path, 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	err = db.View(func(tx *bolt.Tx) error {
		for err := range tx.Check() {
			t.Errorf("bbolt check: %v", err)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}
