package tokenvault

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"runtime"
	"sync"
	"sync/atomic"
)

// DetokenizeResult is the outcome for one token of DetokenizeBatch: its
// value, or the error that this token alone failed with. It prints and logs
// the value's length, never the value.
type DetokenizeResult struct {
	Value []byte
	Err   error
}

// String describes r without its value.
func (r DetokenizeResult) String() string {
	if r.Err != nil {
		return fmt.Sprintf("{error: %v}", r.Err)
	}
	return fmt.Sprintf("{value: %d bytes}", len(r.Value))
}

// GoString returns String, for %#v.
func (r DetokenizeResult) GoString() string { return "tokenvault.DetokenizeResult" + r.String() }

// Format prints String for every verb, so that no verb prints the value.
func (r DetokenizeResult) Format(f fmt.State, verb rune) {
	if verb == 'v' && f.Flag('#') {
		fmt.Fprint(f, r.GoString())
		return
	}
	fmt.Fprint(f, r.String())
}

// LogValue logs String.
func (r DetokenizeResult) LogValue() slog.Value { return slog.StringValue(r.String()) }

// MarshalText returns String, so that encoders such as encoding/json, and
// slog handlers given a slice of results, cannot write the value.
func (r DetokenizeResult) MarshalText() ([]byte, error) { return []byte(r.String()), nil }

// detokenizeBatchShare is how many tokens make it worth another goroutine:
// a detokenization takes a few microseconds.
const detokenizeBatchShare = 256

// DetokenizeBatch detokenizes each token of tokens as Detokenize does, and
// returns one result per token, in order, also when it returns an error. A
// token that fails, such as a suspended one, gets its error in its result and
// does not stop the others. Large batches run on every CPU.
//
// The error result is for a failure of the whole call: a closed vault or
// store, or a ctx that ended before every token was read. The results of
// tokens not read then hold that error.
func (v *Vault) DetokenizeBatch(ctx context.Context, tokens []string) ([]DetokenizeResult, error) {
	results := make([]DetokenizeResult, len(tokens))
	done, err := v.enter()
	if err != nil {
		for i := range results {
			results[i].Err = err
		}
		return results, err
	}
	defer done()

	var stop batchStop
	var next atomic.Int64
	var wg sync.WaitGroup
	workers := min(runtime.GOMAXPROCS(0), (len(tokens)+detokenizeBatchShare-1)/detokenizeBatchShare)
	for range workers {
		wg.Go(func() {
			defer stop.catch()
			for !stop.stopped(ctx, v) {
				i := int(next.Add(1) - 1)
				if i >= len(tokens) {
					return
				}
				r := &results[i]
				_, r.Value, r.Err = v.detokenizeEntered(ctx, tokens[i])
				if callError(r.Err) {
					stop.fail(r.Err)
				}
			}
		})
	}
	wg.Wait()
	stop.rethrow()

	err = stop.result(ctx, v, int(next.Load()) < len(tokens))
	if err != nil {
		for i := range results {
			if results[i].Value == nil && results[i].Err == nil {
				results[i].Err = err
			}
		}
	}
	return results, err
}

// callError reports whether err, returned for one token, is a failure of the
// whole batch: a done ctx or a closed store. Other errors, such as a record
// that fails its integrity check, are about that token alone.
func callError(err error) bool {
	return errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) || errors.Is(err, ErrStoreClosed)
}
