package httpapi

import (
	"fmt"
	"log/slog"
	"net/http"
	"sync"
	"sync/atomic"
)

// itemResult is the outcome of one batch item.
type itemResult struct {
	token   string // POST /tokenize/batch
	data    []byte // POST /detokenize/batch
	problem problem
}

// tooManyItems is the problem of a batch over Config.MaxBatchItems. The
// decoder stops at the first item over the limit, so the message cannot
// give the batch's length.
func (h *Handler) tooManyItems() problem {
	if h.maxBatchItems == 1 {
		return failf(codeTooManyItems, "Batch has more than 1 item: send one item per batch")
	}
	return failf(codeTooManyItems, fmt.Sprintf("Batch has more than %d items: split it into batches of at most %d", h.maxBatchItems, h.maxBatchItems))
}

// writeBatch logs the first item that failed with an error behind it, such
// as a 500, with the number of such items, and sends 200 with
// {"results": [...]}: one object per item in request order, written by
// appendOK for a success and an error object otherwise. One line per batch
// keeps a failing store from writing a thousand lines per request.
func (x *exchange) writeBatch(results []itemResult, appendOK func([]byte, *itemResult) []byte) {
	first, failed := -1, 0
	for i := range results {
		if results[i].problem.err != nil {
			if first < 0 {
				first = i
			}
			failed++
		}
	}
	if first >= 0 {
		x.logProblem(results[first].problem, first, slog.Int("items_failed", failed))
	}

	x.outcome = codeOK
	x.writeJSON(http.StatusOK, func(dst []byte) []byte {
		dst = append(dst, `{"results":[`...)
		for i := range results {
			if i > 0 {
				dst = append(dst, ',')
			}
			if results[i].problem.failed() {
				dst = appendError(dst, results[i].problem)
			} else {
				dst = appendOK(dst, &results[i])
			}
		}
		return append(dst, "]}"...)
	})
}

// forEach calls fn(i) for every i from 0 to n-1 on up to workers goroutines
// and returns when all calls have returned. fn must recover its own panics,
// which would otherwise end the process.
func forEach(n, workers int, fn func(i int)) {
	if n <= 1 || workers <= 1 {
		for i := range n {
			fn(i)
		}
		return
	}

	var next atomic.Int64
	var wg sync.WaitGroup
	for range min(n, workers) {
		wg.Go(func() {
			for {
				i := int(next.Add(1) - 1)
				if i >= n {
					return
				}
				fn(i)
			}
		})
	}
	wg.Wait()
}
