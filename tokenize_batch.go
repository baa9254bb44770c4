package tokenvault

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"sync"
	"sync/atomic"
)

// TokenizeResult is the outcome for one value of a batch tokenization: its
// token, or the error that this value alone failed with.
type TokenizeResult struct {
	Token string
	Err   error
}

// batchChunkSize is how many values a batch tokenization encrypts and
// commits together: a larger chunk shares one disk sync and each rewritten
// page among more values, and holds more records in memory (an estimated
// 2 MiB of card records for 4,096). With 4,096, filling an empty store with
// a million card numbers took about a fifth less time than with 1,024
// (docs/benchmarks.md).
const batchChunkSize = 4096

// batchWorkers bounds the goroutines of a batch tokenization that cannot use
// BatchCreator. Concurrent tokenizations share the store's commits.
const batchWorkers = 16

// TokenizeCardBatch tokenizes each card number of pans as TokenizeCard does
// with opts, and returns one result per number, in the order of pans, also
// when it returns an error. A number that fails gets its error in its result
// and does not stop the others. Such failures include a number that fails the
// Luhn check, and an option that does not fit that number, such as
// FormatCardFirstSix for a 13-digit one.
//
// Tokens are committed in groups of about 4,000, each group in one store
// transaction when the store implements BatchCreator. Every returned token
// is stored, as with TokenizeCard. With Deterministic, a value that has a
// live token gets it, and equal values in one batch get one token, unless it
// expires while the batch runs.
//
// The error result is for a failure of the whole call. An invalid option, a
// closed vault or an expiry time already past fail the call before any value
// is stored. A done ctx, a failed store write or Vault.Close stop it part
// way: the results keep the tokens of the values stored before, which are
// valid, and every other result holds the error.
func (v *Vault) TokenizeCardBatch(ctx context.Context, pans []string, opts ...TokenizeOption) ([]TokenizeResult, error) {
	cfg, err := newCardConfig(opts)
	if err != nil {
		return failedTokenizeResults(len(pans), err), err
	}
	return v.tokenizeBatch(ctx, len(pans), cfg, func(i int) ([]byte, Metadata, error) {
		return cfg.card(pans[i])
	})
}

// TokenizeBatch tokenizes each value of data as Tokenize does with opts, and
// returns one result per value, in order. It works as TokenizeCardBatch does.
func (v *Vault) TokenizeBatch(ctx context.Context, data [][]byte, opts ...TokenizeOption) ([]TokenizeResult, error) {
	cfg, err := newDataConfig(opts)
	if err != nil {
		return failedTokenizeResults(len(data), err), err
	}
	return v.tokenizeBatch(ctx, len(data), cfg, func(i int) ([]byte, Metadata, error) {
		meta, err := cfg.data(data[i])
		return data[i], meta, err
	})
}

// batchItem validates item i of a batch and returns its value and metadata.
type batchItem func(i int) (value []byte, meta Metadata, err error)

func (v *Vault) tokenizeBatch(ctx context.Context, n int, cfg *tokenizeConfig, item batchItem) ([]TokenizeResult, error) {
	done, err := v.enter()
	if err != nil {
		return failedTokenizeResults(n, err), err
	}
	defer done()

	if _, err := cfg.expiry(v.now()); err != nil {
		return failedTokenizeResults(n, err), err
	}

	results := make([]TokenizeResult, n)
	if creator, ok := v.store.(BatchCreator); ok {
		err = v.tokenizeChunks(ctx, creator, results, cfg, item)
	} else {
		err = v.tokenizeEach(ctx, results, cfg, item)
	}
	if err != nil {
		for i := range results {
			if results[i].Token == "" && results[i].Err == nil {
				results[i].Err = err
			}
		}
	}
	return results, err
}

// failedTokenizeResults returns n results that hold err.
func failedTokenizeResults(n int, err error) []TokenizeResult {
	results := make([]TokenizeResult, n)
	for i := range results {
		results[i].Err = err
	}
	return results
}

// tokenizeEach tokenizes the items one by one from several goroutines. It
// stops at the first error that is not about one value, such as a failed
// store write or a done ctx, and returns it.
func (v *Vault) tokenizeEach(ctx context.Context, results []TokenizeResult, cfg *tokenizeConfig, item batchItem) error {
	var stop batchStop
	var next atomic.Int64
	var wg sync.WaitGroup
	for range min(batchWorkers, len(results)) {
		wg.Go(func() {
			defer stop.catch()
			for !stop.stopped(ctx, v) {
				i := int(next.Add(1) - 1)
				if i >= len(results) {
					return
				}
				value, meta, err := item(i)
				if err == nil {
					results[i].Token, err = v.tokenizeEntered(ctx, value, meta, cfg)
				}
				results[i].Err = err
				if err != nil && !valueError(err) {
					stop.fail(err)
				}
			}
		})
	}
	wg.Wait()
	stop.rethrow()
	return stop.result(ctx, v, int(next.Load()) < len(results))
}

// valueError reports whether err is about one value of a batch tokenization
// rather than the vault or its store, so that the batch goes on.
func valueError(err error) bool {
	return errors.Is(err, ErrInvalidCardNumber) || errors.Is(err, ErrInvalidData) ||
		errors.Is(err, ErrInvalidOption) || errors.Is(err, ErrTokenSpaceExhausted)
}

// batchStop ends the work of a batch call at the first failure of the whole
// call, at a panic in one of its goroutines, when ctx ends or when the vault
// starts to close.
type batchStop struct {
	once      sync.Once
	err       error
	set       atomic.Bool
	panicOnce sync.Once
	panicked  any // the value of the first panic, read after the goroutines end
}

// errBatchPanicked is the error of a batch call that a panic stopped.
var errBatchPanicked = errors.New("tokenvault: a goroutine of the batch panicked")

// fail records err as the call's error, unless an earlier one was recorded.
func (s *batchStop) fail(err error) {
	s.once.Do(func() { s.err = err; s.set.Store(true) })
}

// catch, deferred in each goroutine of a batch call, stops the call at a
// panic and keeps its value for rethrow. A panic in a goroutine that does
// not recover it ends the process, whatever the caller recovers.
func (s *batchStop) catch() {
	if v := recover(); v != nil {
		s.panicOnce.Do(func() { s.panicked = v })
		s.fail(errBatchPanicked)
	}
}

// rethrow raises again, in the caller's goroutine, the panic that catch
// kept, after the call's goroutines have ended. A panic is raised even when
// another failure stopped the call first.
func (s *batchStop) rethrow() {
	if s.panicked != nil {
		panic(s.panicked)
	}
}

func (s *batchStop) stopped(ctx context.Context, v *Vault) bool {
	return s.set.Load() || ctx.Err() != nil || v.closing.Load()
}

// result returns the call's error: the recorded failure, or, if some items
// were not done, why the work stopped.
func (s *batchStop) result(ctx context.Context, v *Vault, unfinished bool) error {
	switch {
	case s.set.Load():
		return s.err
	case !unfinished:
		return nil
	case ctx.Err() != nil:
		return ctx.Err()
	default:
		return ErrVaultClosed
	}
}

// batchChunk is up to batchChunkSize consecutive items of a batch, ready to
// store. recs[j] is nil for an item that failed validation or that already
// has its deterministic token.
type batchChunk struct {
	start  int
	recs   []*Record
	values [][]byte // kept to draw another token when one is taken

	// single[j] marks a deterministic item that goes through
	// tokenizeDeterministic, one value at a time: its token expired, the
	// lookup failed, or another record took its deterministic key first.
	// It is nil for a batch that is not deterministic.
	single []bool
}

// tokenizeChunks encrypts the next chunk while the store commits the
// previous one.
func (v *Vault) tokenizeChunks(ctx context.Context, creator BatchCreator, results []TokenizeResult, cfg *tokenizeConfig, item batchItem) error {
	chunks := make(chan *batchChunk, 1)
	stop := make(chan struct{})
	var prepared batchStop // stops at a panic while preparing
	go func() {
		defer close(chunks)
		for start := 0; start < len(results) && ctx.Err() == nil && !v.closing.Load(); start += batchChunkSize {
			select {
			case <-stop:
				return // a commit failed, so no later chunk is stored
			default:
			}
			c := v.prepareChunk(ctx, start, min(start+batchChunkSize, len(results)), results, cfg, item, &prepared)
			if prepared.set.Load() {
				return
			}
			select {
			case chunks <- c:
			case <-stop:
				return
			}
		}
	}()

	halt := sync.OnceFunc(func() { close(stop) })
	defer func() {
		// A panic in the store during a commit must not leave the goroutine
		// above waiting to send its next chunk.
		if v := recover(); v != nil {
			halt()
			for range chunks {
			}
			panic(v)
		}
	}()

	var err error
	committed := 0
	for c := range chunks {
		if err != nil {
			continue // drain, so that the goroutine above ends
		}
		err = v.commitChunk(ctx, creator, c, results, cfg)
		if err != nil {
			halt()
		}
		committed += len(c.recs)
	}
	prepared.rethrow()
	if err == nil && committed < len(results) {
		err = ctx.Err()
		if err == nil {
			err = ErrVaultClosed
		}
	}
	return err
}

// prepareChunk validates and encrypts the items from start to end on every
// CPU, and stores validation errors in results. With Deterministic, it also
// looks up each value's token and stores it in results when it is live. A
// panic of one of its goroutines goes to stop.
func (v *Vault) prepareChunk(ctx context.Context, start, end int, results []TokenizeResult, cfg *tokenizeConfig, item batchItem, stop *batchStop) *batchChunk {
	c := &batchChunk{start: start, recs: make([]*Record, end-start), values: make([][]byte, end-start)}
	if cfg.deterministic {
		c.single = make([]bool, end-start)
	}
	now := v.now()
	expires, expiryErr := cfg.expiry(now)

	workers := runtime.GOMAXPROCS(0)
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			defer stop.catch()
			for j := w; j < len(c.recs); j += workers {
				value, meta, err := item(start + j)
				if err == nil {
					// An ExpiresAt time can pass while a long batch runs.
					err = expiryErr
				}
				if err != nil {
					results[start+j].Err = err
					continue
				}

				meta.Created, meta.Updated, meta.Expires = now, now, expires
				meta.Deterministic, meta.Scope = cfg.deterministic, cfg.scope
				fingerprint := v.keys.fingerprint(meta.Kind, value)
				var detKey []byte
				single := false
				if cfg.deterministic {
					detKey = v.keys.deterministicKey(fingerprint, cfg.scope, cfg.format)
					found, err := v.store.FindByDeterministicKey(ctx, detKey)
					if err == nil && !found.Expired(now) {
						results[start+j].Token = found.Token
						continue
					}
					single = !errors.Is(err, ErrNotFound)
				}

				rec, err := v.newRecord(ctx, value, meta, fingerprint, detKey)
				if err != nil {
					results[start+j].Err = err
					continue
				}
				c.recs[j], c.values[j] = rec, value
				if single {
					c.single[j] = true
				}
			}
		})
	}
	wg.Wait()
	return c
}

// commitChunk stores the records of c, drawing new tokens for those whose
// token is taken, and then tokenizes the items marked single one by one. It
// returns an error only for a failure of the whole call.
func (v *Vault) commitChunk(ctx context.Context, creator BatchCreator, c *batchChunk, results []TokenizeResult, cfg *tokenizeConfig) error {
	var pending []int
	for j, rec := range c.recs {
		if rec != nil && (c.single == nil || !c.single[j]) {
			pending = append(pending, j)
		}
	}

	for attempt := 1; len(pending) > 0; attempt++ {
		recs := make([]*Record, len(pending))
		for k, j := range pending {
			recs[k] = c.recs[j]
		}
		errs, err := creator.CreateBatch(ctx, recs)
		if err != nil {
			return err
		}
		if len(errs) != len(recs) {
			return fmt.Errorf("tokenvault: the store's CreateBatch returned %d results for %d records: %w", len(errs), len(recs), ErrIntegrity)
		}

		var retry []int
		wrote := false
		for k, j := range pending {
			r := &results[c.start+j]
			switch {
			case errs[k] == nil:
				r.Token, wrote = recs[k].Token, true
			case errors.Is(errs[k], ErrDeterministicKeyExists) && c.single != nil:
				// An equal value earlier in the batch, or another caller,
				// stored the token first.
				c.single[j] = true
			case !errors.Is(errs[k], ErrTokenExists):
				r.Err = errs[k]
			case attempt == maxTokenAttempts:
				r.Err = ErrTokenSpaceExhausted
			default:
				rec, err := v.newRecord(ctx, c.values[j], recs[k].Metadata, recs[k].Fingerprint, recs[k].DeterministicKey)
				if err != nil {
					r.Err = err
					continue
				}
				c.recs[j] = rec
				retry = append(retry, j)
			}
		}
		if wrote {
			v.notifyWritten()
		}
		pending = retry
	}

	return v.tokenizeSingles(ctx, c, results, cfg)
}

// tokenizeSingles tokenizes the items of c marked single, once per
// deterministic key: an equal value later in the chunk gets the same result.
// Each starts from the current time, as a Tokenize call would, rather than
// from the time the chunk was prepared. Otherwise, with an expiry shorter
// than a commit, two batches that run at once could each take the other's
// tokens for expired, close them and never settle.
func (v *Vault) tokenizeSingles(ctx context.Context, c *batchChunk, results []TokenizeResult, cfg *tokenizeConfig) error {
	done := make(map[string]TokenizeResult)
	for j, single := range c.single {
		if !single {
			continue
		}
		rec, r := c.recs[j], &results[c.start+j]
		if prev, ok := done[string(rec.DeterministicKey)]; ok {
			*r = prev
			continue
		}

		meta := rec.Metadata
		now := v.now()
		meta.Created, meta.Updated = now, now
		meta.Expires, r.Err = cfg.expiry(now)
		if r.Err == nil {
			r.Token, r.Err = v.tokenizeDeterministic(ctx, c.values[j], meta, rec.Fingerprint, rec.DeterministicKey)
		}
		if r.Err != nil && !valueError(r.Err) {
			return r.Err
		}
		done[string(rec.DeterministicKey)] = *r
	}
	return nil
}
