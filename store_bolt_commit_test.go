package tokenvault

import (
	"encoding/binary"
	"errors"
	"path/filepath"
	"runtime"
	"slices"
	"sync"
	"testing"
	"time"
	"weak"

	bolt "go.etcd.io/bbolt"
)

// openCommitter opens a new bbolt file with the token bucket alone, which
// every commit expects, and returns a committer on it.
func openCommitter(t *testing.T) *committer {
	t.Helper()
	db, err := bolt.Open(filepath.Join(t.TempDir(), "commit.db"), 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	if err := db.Update(func(tx *bolt.Tx) error {
		_, err := tx.CreateBucket(bucketTokens)
		return err
	}); err != nil {
		t.Fatal(err)
	}
	return newCommitter(db, &damageGuard{})
}

// putWrite returns a write that puts key n in the token bucket and records
// the transaction it ran in.
func putWrite(n int, txid *int) func(tx *bolt.Tx) error {
	return func(tx *bolt.Tx) error {
		*txid = tx.ID()
		return tx.Bucket(bucketTokens).Put(binary.BigEndian.AppendUint64(nil, uint64(n)), []byte("v"))
	}
}

// waitForQueue waits until a caller leads and n writes wait in c's queue.
func waitForQueue(t *testing.T, c *committer, n int) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		c.mu.Lock()
		leading, queued := c.leading, len(c.queue)
		c.mu.Unlock()
		if leading && queued == n {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d writes wait in the queue after 30 s, want %d", queued, n)
		}
		time.Sleep(time.Millisecond)
	}
}

// waitForWrites waits for the writes of wg, and fails the test if they have
// not all returned after 30 s.
func waitForWrites(t *testing.T, wg *sync.WaitGroup) {
	t.Helper()
	done := make(chan struct{})
	go func() {
		wg.Wait()
		close(done)
	}()
	select {
	case <-done:
	case <-time.After(30 * time.Second):
		t.Fatal("queued writes have not returned after 30 s")
	}
}

// Writes that queue behind a commit share the next commits, at most
// maxCommitBatch to a commit, and the lead passes from caller to caller
// until the queue is empty.
func TestCommitQueueBatches(t *testing.T) {
	c := openCommitter(t)

	// The first write holds its commit open until every other write waits.
	var firstTx int
	release, first := holdCommit(t, c, &firstTx)

	const queued = maxCommitBatch + 5
	txids := make([]int, queued)
	errs := make([]error, queued)
	var wg sync.WaitGroup
	for i := range queued {
		wg.Go(func() { errs[i] = c.submit(putWrite(i+1, &txids[i]), 1) })
	}
	waitForQueue(t, c, queued)
	close(release)
	waitForWrites(t, &wg)

	<-first.ended
	if !first.returned || first.err != nil {
		t.Fatalf("first write: returned %v, err %v, want nil", first.returned, first.err)
	}
	perTx := make(map[int]int)
	for i, err := range errs {
		if err != nil {
			t.Fatalf("write %d: %v", i+1, err)
		}
		perTx[txids[i]]++
	}
	want := map[int]int{firstTx + 1: maxCommitBatch, firstTx + 2: queued - maxCommitBatch}
	if len(perTx) != len(want) || perTx[firstTx+1] != want[firstTx+1] || perTx[firstTx+2] != want[firstTx+2] {
		t.Errorf("writes per transaction after the first (%d) = %v, want %v", firstTx, perTx, want)
	}

	c.mu.Lock()
	defer c.mu.Unlock()
	if c.leading || len(c.queue) > 0 {
		t.Errorf("after every write returned: leading = %v with %d queued, want no leader and none", c.leading, len(c.queue))
	}
}

// A caller whose write function panics while it leads still hands the lead
// on before the panic reaches it, so the writes waiting behind it commit.
func TestCommitQueueLeaderPanics(t *testing.T) {
	c := openCommitter(t)

	release := make(chan struct{})
	panicked := make(chan any, 1)
	go func() {
		defer func() { panicked <- recover() }()
		c.submit(func(tx *bolt.Tx) error {
			<-release
			return &panicError{value: "write function panics"}
		}, 1)
	}()
	waitForQueue(t, c, 0)

	const queued = 10
	txids := make([]int, queued)
	errs := make([]error, queued)
	var wg sync.WaitGroup
	for i := range queued {
		wg.Go(func() { errs[i] = c.submit(putWrite(i, &txids[i]), 1) })
	}
	waitForQueue(t, c, queued)
	close(release)
	waitForWrites(t, &wg)

	if v := <-panicked; v != "write function panics" {
		t.Errorf("leading caller recovered %v, want its function's panic", v)
	}
	for i, err := range errs {
		if err != nil {
			t.Errorf("write %d behind the panicking leader: %v", i, err)
		}
	}
	err := c.db.View(func(tx *bolt.Tx) error {
		if n := tx.Bucket(bucketTokens).Stats().KeyN; n != queued {
			t.Errorf("bucket holds %d keys, want %d", n, queued)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// exitingWrite is the outcome of a submit whose goroutine may end in
// runtime.Goexit: the error, if submit returned, and whether it returned.
type exitingWrite struct {
	err      error
	returned bool
	ended    chan struct{} // closed when the goroutine ends
}

// submitAsync submits fn from a new goroutine.
func submitAsync(c *committer, fn func(tx *bolt.Tx) error) *exitingWrite {
	w := &exitingWrite{ended: make(chan struct{})}
	go func() {
		defer close(w.ended)
		w.err = c.submit(fn, 1)
		w.returned = true
	}()
	return w
}

// waitEnded returns when the goroutines of writes have ended, and fails the
// test if one has not after 30 s.
func waitEnded(t *testing.T, writes ...*exitingWrite) {
	t.Helper()
	for _, w := range writes {
		select {
		case <-w.ended:
		case <-time.After(30 * time.Second):
			t.Fatal("a write has not ended after 30 s")
		}
	}
}

// holdCommit submits a write of key 0 that holds its commit open until
// release is closed, and returns once that write leads. txid receives the
// write's transaction.
func holdCommit(t *testing.T, c *committer, txid *int) (release chan struct{}, first *exitingWrite) {
	t.Helper()
	release = make(chan struct{})
	first = submitAsync(c, func(tx *bolt.Tx) error {
		<-release
		return putWrite(0, txid)(tx)
	})
	waitForQueue(t, c, 0)
	return release, first
}

// A write function that calls runtime.Goexit ends the goroutine that leads
// the commit. Its write and the leader's fail, the other writes of the
// transaction commit again, and the store keeps taking writes.
func TestCommitQueueWriteGoexit(t *testing.T) {
	c := openCommitter(t)

	var firstTx int
	release, first := holdCommit(t, c, &firstTx)

	// leader leads the second commit, in which exiting's function ends
	// leader's goroutine.
	var leaderTx, otherTx int
	leader := submitAsync(c, putWrite(1, &leaderTx))
	waitForQueue(t, c, 1)
	exiting := submitAsync(c, func(tx *bolt.Tx) error {
		runtime.Goexit()
		return nil
	})
	waitForQueue(t, c, 2)
	other := submitAsync(c, putWrite(2, &otherTx))
	waitForQueue(t, c, 3)
	close(release)

	waitEnded(t, first, leader, exiting, other)
	if !first.returned || first.err != nil {
		t.Errorf("first write: returned %v, err %v, want nil", first.returned, first.err)
	}
	if leader.returned {
		t.Errorf("leading write returned %v, want its goroutine ended", leader.err)
	}
	if !exiting.returned || !errors.Is(exiting.err, errWriteExited) {
		t.Errorf("exiting write: returned %v, err %v, want %v", exiting.returned, exiting.err, errWriteExited)
	}
	if !other.returned || other.err != nil {
		t.Errorf("other write: returned %v, err %v, want nil", other.returned, other.err)
	}

	var lastTx int
	if err := c.submit(putWrite(3, &lastTx), 1); err != nil {
		t.Fatalf("write after the exit: %v", err)
	}
	err := c.db.View(func(tx *bolt.Tx) error {
		for n, want := range []bool{true, false, true, true} {
			got := tx.Bucket(bucketTokens).Get(binary.BigEndian.AppendUint64(nil, uint64(n))) != nil
			if got != want {
				t.Errorf("key %d stored = %v, want %v", n, got, want)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// The queue keeps no finished write reachable, even after a queue longer than
// one commit takes, so a write's record can be collected once it returns.
func TestCommitQueueReleasesWrites(t *testing.T) {
	c := openCommitter(t)

	var firstTx int
	release, first := holdCommit(t, c, &firstTx)

	const queued = maxCommitBatch + 5
	payloads := make([]weak.Pointer[[64]byte], queued)
	var wg sync.WaitGroup
	for i := range queued {
		payload := new([64]byte)
		payloads[i] = weak.Make(payload)
		wg.Go(func() {
			c.submit(func(tx *bolt.Tx) error {
				payload[0]++
				return nil
			}, 1)
		})
	}
	waitForQueue(t, c, queued)
	close(release)
	waitForWrites(t, &wg)
	<-first.ended

	// The leader clears its batch after the results, so collection may lag
	// the last return a little.
	alive := queued
	for try := 0; try < 100 && alive > 0; try++ {
		time.Sleep(time.Duration(try) * time.Millisecond)
		runtime.GC()
		alive = 0
		for _, p := range payloads {
			if p.Value() != nil {
				alive++
			}
		}
	}
	if alive > 0 {
		t.Errorf("%d of %d finished writes are still reachable", alive, queued)
	}
	runtime.KeepAlive(c)
}

// A commit takes the writes at the front of the queue while their records
// stay within maxCommitRecords, and a write with more commits alone.
func TestCommitQueueRecordsBound(t *testing.T) {
	c := openCommitter(t)

	var firstTx int
	release, first := holdCommit(t, c, &firstTx)

	records := []int{1000, 1000, 1000, 1000, 1000, 1000, 1000, 1000, 1000, 1000, maxCommitRecords + 1, 1, 1, 1}
	txids := make([]int, len(records))
	errs := make([]error, len(records))
	var wg sync.WaitGroup
	for i, n := range records {
		wg.Go(func() { errs[i] = c.submit(putWrite(i+1, &txids[i]), n) })
		waitForQueue(t, c, i+1)
	}
	close(release)
	waitForWrites(t, &wg)
	<-first.ended

	var sizes []int
	for i, err := range errs {
		if err != nil {
			t.Fatalf("write %d: %v", i, err)
		}
		if i == 0 || txids[i] != txids[i-1] {
			sizes = append(sizes, 0)
		}
		sizes[len(sizes)-1]++
	}
	if want := []int{4, 4, 2, 1, 3}; !slices.Equal(sizes, want) {
		t.Errorf("writes per commit = %v, want %v", sizes, want)
	}
}

// TestCommitGathersReleasedCallers runs callers that each write again as
// soon as their last write returns, on one processor. A commit must also
// take the next writes of the callers that the commit before it returned
// to, so commits hold about every caller's write rather than half of them.
func TestCommitGathersReleasedCallers(t *testing.T) {
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(1))
	c := openCommitter(t)
	const callers, writes = 16, 40

	// The first write waits in its commit until every other caller's first
	// write is queued, so that the second commit returns to 15 callers.
	gate := make(chan struct{})
	var wg sync.WaitGroup
	for g := range callers {
		wg.Go(func() {
			var txid int
			for i := range writes {
				write := putWrite(g*writes+i, &txid)
				if g == 0 && i == 0 {
					write = func(tx *bolt.Tx) error {
						<-gate
						return putWrite(0, &txid)(tx)
					}
				}
				if err := c.submit(write, 1); err != nil {
					t.Error(err)
					return
				}
			}
		})
		if g == 0 {
			waitForQueue(t, c, 0)
		}
	}
	waitForQueue(t, c, callers-1)
	close(gate)
	wg.Wait()

	commits, written := c.commits.Load(), c.written.Load()
	if written != callers*writes {
		t.Fatalf("commits held %d writes, want %d", written, callers*writes)
	}
	if perCommit := float64(written) / float64(commits); perCommit < 0.75*callers {
		t.Errorf("commits held %.1f writes each on average (%d commits), want at least %.0f of the %d callers'", perCommit, commits, 0.75*callers, callers)
	}
}
