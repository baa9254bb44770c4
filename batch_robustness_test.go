package tokenvault

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// panickyBatchStore is a memory store whose CreateBatch panics, as a store
// with a bug would.
type panickyBatchStore struct{ *MemoryStore }

func (panickyBatchStore) CreateBatch(context.Context, []*Record) ([]error, error) {
	panic("store bug in CreateBatch")
}

// TestBatchCommitPanicStopsPreparer checks that a panic in CreateBatch, which
// runs on the caller's goroutine, does not leave the goroutine that prepares
// the next chunks blocked forever on its channel.
func TestBatchCommitPanicStopsPreparer(t *testing.T) {
	v := newTestVault(t, panickyBatchStore{NewMemoryStore()}, newTestClock())
	data := make([][]byte, 3*batchChunkSize)
	for i := range data {
		data[i] = fmt.Appendf(nil, "value %d", i)
	}

	got := recovered(func() { v.TokenizeBatch(t.Context(), data, Deterministic("")) })
	if got != "store bug in CreateBatch" {
		t.Fatalf("recovered %v, want the store's panic", got)
	}

	deadline := time.Now().Add(2 * time.Second)
	for {
		buf := make([]byte, 1<<20)
		stacks := string(buf[:runtime.Stack(buf, true)])
		if !strings.Contains(stacks, "tokenizeChunks.func") {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("the chunk-preparing goroutine still runs 2s after the panic reached the caller:\n%s", stacks)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// failThenPanicStore is a memory store, without CreateBatch, whose first
// Create fails with a store error and whose other Creates panic once that
// error has been returned.
type failThenPanicStore struct {
	Store
	calls    atomic.Int64
	returned atomic.Bool
}

func (s *failThenPanicStore) Create(ctx context.Context, rec *Record) error {
	if s.calls.Add(1) == 1 {
		for s.calls.Load() < 2 {
			time.Sleep(time.Millisecond)
		}
		s.returned.Store(true)
		return errors.New("disk failed")
	}
	for !s.returned.Load() {
		time.Sleep(time.Millisecond)
	}
	time.Sleep(50 * time.Millisecond) // let the worker record the store error first
	panic("store bug in Create")
}

// TestBatchPanicAfterStoreError checks that a panic on a batch goroutine
// reaches the caller also when another goroutine has already stopped the
// call with a store error.
func TestBatchPanicAfterStoreError(t *testing.T) {
	v := newTestVault(t, &failThenPanicStore{Store: NewMemoryStore()}, newTestClock())
	data := [][]byte{[]byte("value one"), []byte("value two"), []byte("value three")}

	var err error
	got := recovered(func() { _, err = v.TokenizeBatch(t.Context(), data) })
	if got != "store bug in Create" {
		t.Fatalf("recovered %v and the call returned err = %v, want the store's panic raised in the caller", got, err)
	}
}

// TestBoltBacklogWaitEndsWithContext checks that a Create whose ctx ends while
// it waits for the fingerprint merge returns soon after, instead of waiting
// for the merge however long it takes. The test holds the merge at its last
// step by holding the recent index's drop lock, as a slow merge would.
func TestBoltBacklogWaitEndsWithContext(t *testing.T) {
	s, err := OpenBoltStore(filepath.Join(t.TempDir(), "vault.db"), &BoltOptions{FingerprintMergeAfter: 4})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })

	s.recent.dropMu.RLock()
	released := false
	release := func() {
		if !released {
			released = true
			s.recent.dropMu.RUnlock()
		}
	}
	t.Cleanup(release)

	for i := range 2*4 - 1 {
		if err := s.Create(t.Context(), mergeTestRecord(i)); err != nil {
			t.Fatalf("Create(record %d) err = %v", i, err)
		}
	}

	ctx, cancel := context.WithTimeout(t.Context(), 50*time.Millisecond)
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- s.Create(ctx, mergeTestRecord(100)) }()

	select {
	case err := <-done:
		t.Logf("Create returned %v", err)
	case <-time.After(time.Second):
		release()
		err := <-done
		t.Errorf("Create with a 50ms deadline was still waiting for the merge after 1s. After the merge ended, it returned %v", err)
	}
}

// TestTokenizeBatchDeterministicOneLiveToken runs deterministic batches and
// single calls of a few repeated values at once, with an expiry shorter than
// a commit, and checks that no value holds two tokens that are not closed,
// and that every returned token is stored.
func TestTokenizeBatchDeterministicOneLiveToken(t *testing.T) {
	keys, err := GenerateKeyRing()
	if err != nil {
		t.Fatal(err)
	}
	s, err := OpenBoltStore(filepath.Join(t.TempDir(), "vault.db"), &BoltOptions{FingerprintMergeAfter: 64})
	if err != nil {
		t.Fatal(err)
	}
	v, err := New(s, keys)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { v.Close() })

	values := batchCards(5)
	pans := make([]string, 2*batchChunkSize+100)
	for i := range pans {
		pans[i] = values[i%len(values)]
	}
	returned := make(chan string, 1<<20)
	var wg sync.WaitGroup
	for g := range 3 {
		wg.Go(func() {
			for range 3 {
				results, err := v.TokenizeCardBatch(t.Context(), pans, Deterministic(""), ExpiresAfter(2*time.Millisecond))
				if err != nil {
					t.Errorf("batch %d err = %v", g, err)
					return
				}
				for _, r := range results {
					returned <- r.Token
				}
			}
		})
	}
	wg.Go(func() {
		for i := range 300 {
			token, err := v.TokenizeCard(t.Context(), values[i%len(values)], Deterministic(""), ExpiresAfter(2*time.Millisecond))
			if err != nil {
				t.Errorf("TokenizeCard err = %v", err)
				return
			}
			returned <- token
		}
	})
	wg.Wait()
	close(returned)

	for token := range returned {
		if _, err := v.get(t.Context(), token); err != nil {
			t.Fatalf("returned token %s: Get err = %v", token, err)
		}
	}
	open := make(map[string]int)
	for after := ""; ; {
		recs, err := s.Scan(t.Context(), after, 1000)
		if err != nil {
			t.Fatal(err)
		}
		if len(recs) == 0 {
			break
		}
		for _, rec := range recs {
			if rec.State != StateClosed {
				open[string(rec.Fingerprint)]++
			}
			after = rec.Key()
		}
	}
	for fp, n := range open {
		if n > 1 {
			t.Errorf("fingerprint %x has %d tokens that are not closed, want at most 1", fp[:4], n)
		}
	}
}

// TestBoltBacklogReopenClose writes batches from several goroutines into a
// store that reopens its file every 64 page allocations and merges every 16
// log entries, closes the store while they write, and checks that Close
// and every writer return.
func TestBoltBacklogReopenClose(t *testing.T) {
	s, err := OpenBoltStore(filepath.Join(t.TempDir(), "vault.db"), &BoltOptions{FingerprintMergeAfter: 16})
	if err != nil {
		t.Fatal(err)
	}
	s.reopenAfter = 64

	var next atomic.Int64
	var wg sync.WaitGroup
	for range 6 {
		wg.Go(func() {
			for {
				recs := make([]*Record, 32)
				for i := range recs {
					recs[i] = mergeTestRecord(int(next.Add(1)))
				}
				if _, err := s.CreateBatch(context.Background(), recs); err != nil {
					if !errors.Is(err, ErrStoreClosed) {
						t.Errorf("CreateBatch err = %v", err)
					}
					return
				}
			}
		})
	}
	time.Sleep(1500 * time.Millisecond)
	closed := make(chan error, 1)
	go func() { closed <- s.Close() }()
	select {
	case err := <-closed:
		if err != nil {
			t.Errorf("Close err = %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Close did not return within 10s")
	}
	writers := make(chan struct{})
	go func() { wg.Wait(); close(writers) }()
	select {
	case <-writers:
	case <-time.After(10 * time.Second):
		t.Fatal("writers did not return within 10s of Close")
	}
	t.Logf("%d records, %d reopens, %d merges", next.Load(), s.reopens, s.merge.merges.Load())
}
