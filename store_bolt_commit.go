package tokenvault

import (
	"errors"
	"fmt"
	"runtime"
	"runtime/debug"
	"sync"
	"sync/atomic"

	bolt "go.etcd.io/bbolt"
)

// maxCommitBatch bounds the writes that share one bbolt commit.
const maxCommitBatch = 4096

// maxCommitRecords bounds the records, or index entries, that the writes of
// one commit put, because a commit's memory grows with them. A card-shaped
// record dirties a page of the token index, and at a peak of a large import
// the nodes and page buffers of a commit of about 2,500 records took about
// 26 MiB (docs/benchmarks.md). The bound lets a chunk of a batch tokenization
// share its commit with a chunk of a fingerprint merge, as before there was a
// bound. A single write over the bound commits alone.
const maxCommitRecords = batchChunkSize + mergeChunk

// committer runs the writes of concurrent Create and Update calls in shared
// bbolt transactions. Writes wait in a queue. One caller at a time, the
// leader, takes the writes waiting, within maxCommitBatch and
// maxCommitRecords, and commits them together on its own goroutine. It then
// makes the oldest waiting caller the next leader, so the next commit starts
// as soon as the disk has synced the last one and gather has let the callers
// just returned to queue their next writes. Each caller returns after the
// commit that holds its write, so a returned token is on disk.
//
// A caller with no write ahead of it commits after one yield, without waking
// another goroutine or waiting for a timer. bbolt's own Batch waits for a timer before each commit, and on
// the benchmark machine a 200 µs timer fired after about 1.1 ms
// (docs/benchmarks.md), which caps the commit rate.
type committer struct {
	db    *bolt.DB
	guard *damageGuard

	mu      sync.Mutex
	queue   []*commitOp // waiting for a commit, oldest first
	spare   []*commitOp // the previous batch's slice, reused for the queue
	leading bool        // a caller commits, or has been made the leader

	// pending and running belong to the leader. pending is the batch of the
	// transaction in progress, and running is the index in pending of the
	// write whose function runs, or -1.
	pending []*commitOp
	running int

	// log and events hold the entries that the transaction in progress
	// adds to the fingerprint log and to the outbox.
	log, events seqBuffer

	// pages is bbolt's count of page allocations since the file was
	// opened, read after each commit so that writes need not ask bbolt.
	pages atomic.Int64

	// commits and written count the commits and the writes they held,
	// for tests.
	commits, written atomic.Int64
}

// commitOp is one write. fn runs inside the shared transaction and may run
// more than once, when another write of the batch fails, so it must have no
// effect outside tx other than setting its own results.
type commitOp struct {
	fn      func(tx *bolt.Tx) error
	records int        // records or index entries fn puts, at least 1
	result  chan error // buffered; receives errLead at most once, then exactly one result
}

// errLead, sent on a waiting caller's result channel, makes that caller the
// leader. Its own write is among those it then commits.
var errLead = errors.New("lead the next commit")

// noWriteError is returned by a commitOp's fn that decided, before writing
// anything, to fail with err, or to succeed without a change when err is nil.
// The batch keeps its transaction for the other writes.
type noWriteError struct{ err error }

func (e *noWriteError) Error() string { return fmt.Sprintf("no write: %v", e.err) }

func noWrite(err error) error { return &noWriteError{err: err} }

// panicError carries a panic of a caller's function, such as the fn given to
// Update, out of the shared transaction to the caller's goroutine, where it is
// raised again. It aborts the batch like any other failure after a write.
type panicError struct{ value any }

func (e *panicError) Error() string { return "tokenvault: store write function panicked" }

// errWriteExited is the result of a write whose function called
// runtime.Goexit, and of the write of the goroutine that ran it.
var errWriteExited = errors.New("tokenvault: a store write function called runtime.Goexit, so its transaction was rolled back")

// errNothingWritten rolls back a transaction in which every write returned
// noWrite, because a commit with nothing to write still syncs the file.
var errNothingWritten = errors.New("nothing written")

func newCommitter(db *bolt.DB, guard *damageGuard) *committer {
	return &committer{
		db: db, guard: guard,
		log:    seqBuffer{name: bucketFingerprintLog},
		events: seqBuffer{name: bucketEvents},
	}
}

// submit runs fn in a shared transaction and returns its error after the
// commit. records is the number of records or index entries fn puts. The
// store's lock keeps writes out while it closes or reopens the file, so the
// queue is empty then.
func (c *committer) submit(fn func(tx *bolt.Tx) error, records int) error {
	op := &commitOp{fn: fn, records: max(records, 1), result: make(chan error, 1)}

	c.mu.Lock()
	c.queue = append(c.queue, op)
	lead := !c.leading
	c.leading = true
	c.mu.Unlock()

	err := errLead
	if !lead {
		err = <-op.result
	}
	if err == errLead {
		c.lead(op)
		err = <-op.result
	}

	var p *panicError
	if errors.As(err, &p) {
		panic(p.value)
	}
	return err
}

// lead commits the writes waiting, own among them, then hands the lead to
// the oldest caller still waiting, or gives it up when none is.
func (c *committer) lead(own *commitOp) {
	c.gather()
	c.mu.Lock()
	dequeued := c.queue
	batch := dequeued[:batchLength(dequeued)]
	c.queue = append(c.spare[:0], dequeued[len(batch):]...)
	c.mu.Unlock()

	// A write function that calls runtime.Goexit, such as t.FailNow in a
	// test, ends this goroutine inside the transaction, which bbolt then
	// rolls back. The deferred call still passes the lead on.
	committed := false
	defer func() {
		if !committed {
			c.requeueAfterExit(own)
		}
		c.handOff(dequeued)
	}()

	c.commit(batch)
	c.commits.Add(1)
	c.written.Add(int64(len(batch)))
	stats := c.db.Stats()
	c.pages.Store(int64(stats.TxStats.GetPageCount()))
	committed = true
}

// gather yields the processor, and yields again while the queue grows, so
// that callers which the last commit returned to, and which are runnable,
// can queue their next writes before the batch is taken. Without it, a
// commit takes only the writes that queued during the one before, so
// callers that write again at once split into two groups that commit in
// turn, each with about half the writes. A yield with no other goroutine
// to run returns at once.
func (c *committer) gather() {
	for range maxGatherYields {
		c.mu.Lock()
		queued := len(c.queue)
		c.mu.Unlock()
		if queued >= maxCommitBatch {
			return
		}

		runtime.Gosched()
		c.mu.Lock()
		grew := len(c.queue) > queued
		c.mu.Unlock()
		if !grew {
			return
		}
	}
}

// maxGatherYields bounds the yields of gather, so that callers arriving
// one after another cannot hold a commit back for long.
const maxGatherYields = 16

// batchLength returns how many writes at the front of queue the next commit
// takes: at least one, at most maxCommitBatch, and no more than
// maxCommitRecords records between them unless the first alone has more.
func batchLength(queue []*commitOp) int {
	n, records := 0, 0
	for n < len(queue) && n < maxCommitBatch {
		records += queue[n].records
		if n > 0 && records > maxCommitRecords {
			break
		}
		n++
	}
	return n
}

// requeueAfterExit fails the write whose function called runtime.Goexit, and
// the leader's own write, whose goroutine is ending, with errWriteExited. The
// other writes of the rolled-back transaction go back to the front of the
// queue.
func (c *committer) requeueAfterExit(own *commitOp) {
	var retry []*commitOp
	for i, op := range c.pending {
		if i == c.running || op == own {
			op.result <- errWriteExited
			continue
		}
		retry = append(retry, op)
	}

	c.mu.Lock()
	c.queue = append(retry, c.queue...)
	c.mu.Unlock()
}

// handOff makes the oldest waiting caller the leader, or ends the lead when
// none waits. dequeued, the slice the batch came from, becomes the spare.
func (c *committer) handOff(dequeued []*commitOp) {
	// Clearing all of dequeued, the writes moved back to the queue too, lets
	// their records be collected.
	c.mu.Lock()
	clear(dequeued)
	c.spare = dequeued[:0]
	if len(c.queue) == 0 {
		c.leading = false
	} else {
		c.queue[0].result <- errLead
	}
	c.mu.Unlock()
}

// commit runs the batch in one transaction. A write that fails after it may
// have written aborts the transaction; it gets its error and the others run
// again without it.
func (c *committer) commit(batch []*commitOp) {
	results := make([]error, len(batch))
	for len(batch) > 0 {
		c.pending, c.running = batch, -1
		failed := -1
		err := c.guard.run(func() error {
			return c.db.Update(func(tx *bolt.Tx) error {
				expectAppends(tx)
				c.log.begin(tx)
				c.events.begin(tx)
				if err := c.apply(tx, batch, results, &failed); err != nil {
					return err
				}
				if err := c.log.flush(); err != nil {
					return err
				}
				return c.events.flush()
			})
		})
		c.log.begin(nil)
		c.events.begin(nil)

		if failed >= 0 && !errors.Is(err, errDamaged) {
			batch[failed].result <- err
			batch = append(batch[:failed], batch[failed+1:]...)
			results = results[:len(batch)]
			continue
		}
		for i, op := range batch {
			if err != nil && !errors.Is(err, errNothingWritten) {
				op.result <- err
			} else {
				op.result <- results[i]
			}
		}
		c.pending = nil
		return
	}
}

// apply runs the writes of a batch in tx, stores each write's result, and
// sets failed to the index of a write that failed after it may have written.
func (c *committer) apply(tx *bolt.Tx, batch []*commitOp, results []error, failed *int) error {
	wrote := false
	for i, op := range batch {
		c.running = i
		err := op.fn(tx)
		c.running = -1
		var nw *noWriteError
		switch {
		case errors.As(err, &nw):
			results[i] = nw.err
		case err != nil:
			*failed = i
			return err
		default:
			results[i] = nil
			wrote = true
		}
	}
	if !wrote {
		return errNothingWritten
	}
	return nil
}

// damageGuard stops every use of a bbolt file after bbolt panicked or hit a
// memory fault on it, which a damaged data page causes. bbolt is not written
// to recover from its own panics and may then hold its locks forever, so the
// guard turns the first panic into errDamaged and returns it for every later
// call without entering bbolt.
type damageGuard struct {
	damaged atomic.Bool
}

func (g *damageGuard) run(fn func() error) (err error) {
	if g.damaged.Load() {
		return errDamaged
	}
	defer debug.SetPanicOnFault(debug.SetPanicOnFault(true))
	defer func() {
		if v := recover(); v != nil {
			g.damaged.Store(true)
			err = errDamaged
		}
	}()
	return fn()
}

// callerFunc runs a function the caller gave and catches its panic, to be
// raised again in the caller's goroutine, so that damageGuard catches only
// bbolt's own panics.

func callerFunc[T any](fn func(*Record) (T, error), rec *Record) (result T, err error) {
	defer func() {
		if v := recover(); v != nil {
			err = &panicError{value: v}
		}
	}()
	return fn(rec)
}

var errDamaged = fmt.Errorf("%w: the database file is damaged (bbolt failed reading or writing it); restore it from a backup", ErrIntegrity)
