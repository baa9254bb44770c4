package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
)

// batchRecorder is a batchFunc that upper-cases each item, fails the items
// "bad" alone and the item "fatal" with an error that stops the run, and
// records the size of each call and the most calls that ran at once.
type batchRecorder struct {
	// hold, when not nil, blocks every call until it is closed.
	hold <-chan struct{}

	mu         sync.Mutex
	sizes      []int
	running    int
	maxRunning int
}

func (b *batchRecorder) run(ctx context.Context, items [][]byte) ([][]byte, []error) {
	b.mu.Lock()
	b.sizes = append(b.sizes, len(items))
	b.running++
	b.maxRunning = max(b.maxRunning, b.running)
	b.mu.Unlock()
	defer func() {
		b.mu.Lock()
		b.running--
		b.mu.Unlock()
	}()

	if b.hold != nil {
		<-b.hold
	}
	outputs := make([][]byte, len(items))
	errs := make([]error, len(items))
	for i, item := range items {
		switch string(item) {
		case "bad":
			errs[i] = &lineError{msg: "bad item"}
		case "fatal":
			errs[i] = errors.New("the store failed")
		default:
			outputs[i] = bytes.ToUpper(item)
		}
	}
	return outputs, errs
}

// TestBatchesFillWhileOthersRun holds the batches until the whole input is
// read, and checks that the items read meanwhile go out in full batches, at
// most two at a time, and that the output keeps input order.
func TestBatchesFillWhileOthersRun(t *testing.T) {
	const n = 3000 // fits in batchesInFlightItems, so that all of it is read while the batches wait
	var input, want strings.Builder
	for i := range n {
		if i%1000 == 500 {
			input.WriteString("bad\n")
			want.WriteString("\n")
			continue
		}
		fmt.Fprintf(&input, "item %d\n", i)
		fmt.Fprintf(&want, "ITEM %d\n", i)
	}

	allRead := make(chan struct{})
	rec := &batchRecorder{hold: allRead}
	var stdout, stderr bytes.Buffer
	s := streams{stdin: strings.NewReader(input.String()), stdout: &stdout, stderr: &stderr}
	p := linePipeline(s, false)
	p.inFlight, p.batch = batchesInFlightItems, rec.run
	read := p.read
	p.read = func(out chan<- inputLine) {
		read(out) // returns when processItems has received the last item
		close(allRead)
	}
	err := processItems(context.Background(), s, p)

	if !errors.Is(err, errReported) {
		t.Errorf("processItems returned %v, want errReported for the failed lines", err)
	}
	if stdout.String() != want.String() {
		t.Errorf("output differs from the input's items upper-cased, in order")
	}
	for _, line := range []string{"line 501: bad item\n", "line 1501: bad item\n", "line 2501: bad item\n", "3 of 3000 lines failed"} {
		if !strings.Contains(stderr.String(), line) {
			t.Errorf("stderr lacks %q:\n%s", line, stderr.String())
		}
	}

	// The first item starts a batch at once, and the next maxBatchItems
	// start the second; the rest wait for one of them to end. The last two
	// batches may start in either order.
	wantSizes := []int{1, n - 1 - 2*maxBatchItems, maxBatchItems, maxBatchItems}
	slices.Sort(rec.sizes)
	if !slices.Equal(rec.sizes, wantSizes) {
		t.Errorf("batch sizes, sorted: %v, want %v", rec.sizes, wantSizes)
	}
	if rec.maxRunning > maxBatchesInFlight {
		t.Errorf("%d batches ran at once, more than %d", rec.maxRunning, maxBatchesInFlight)
	}
}

// TestBatchFatalErrorStopsOutput checks that an item whose error is not a
// *lineError ends the output before that item, that the items before it are
// written, and that the summary counts only those.
func TestBatchFatalErrorStopsOutput(t *testing.T) {
	input := "a\nbad\nfatal\nc\nd\n"
	var stdout, stderr bytes.Buffer
	rec := &batchRecorder{}
	err := processLineBatches(context.Background(), streams{stdin: strings.NewReader(input), stdout: &stdout, stderr: &stderr}, false, rec.run)

	if err == nil || !strings.Contains(err.Error(), "line 3: the store failed; stopped there") {
		t.Errorf("processLineBatches returned %v, want the failure of line 3", err)
	}
	if got := stdout.String(); got != "A\n\n" {
		t.Errorf("output %q, want the two lines before the failure", got)
	}
	if !strings.Contains(stderr.String(), "1 of 2 lines failed; its output line is empty") {
		t.Errorf("stderr lacks the summary of the two lines written:\n%s", stderr.String())
	}
}
