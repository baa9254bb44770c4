package main

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"

	"github.com/tokenvault/tokenvault"
)

// maxLineBytes is the maximum input line, without its line ending: the
// largest value Tokenize accepts.
const maxLineBytes = tokenvault.MaxDataSize

// maxLinesInFlight bounds the lines that a lineFunc processes concurrently.
const maxLinesInFlight = 16

// Batches of items: up to maxBatchItems items in one call of a batchFunc,
// and up to maxBatchesInFlight calls at once, so that one batch is encrypted
// while the store commits the other. A commit of card-shaped tokens holds
// about one page of memory per value, because their records go to random
// places: batches of 4,096 imported card numbers 1.2 times faster than
// batches of 1,024, with a live heap 2.5 times larger.
const (
	maxBatchItems      = 1024
	maxBatchesInFlight = 2
)

// utf8BOM is the byte order mark that some Windows tools write at the start
// of a text file.
var utf8BOM = []byte("\xef\xbb\xbf")

// lineFunc turns one input line into one output line. It returns a *lineError
// for a problem with that line, and any other error for a failure that stops
// the run. Neither error may contain the line.
type lineFunc func(ctx context.Context, line []byte) ([]byte, error)

// batchFunc turns many input items into their output items at once:
// outputs[i] and errs[i] are for items[i], with the rules of lineFunc. Both
// slices have len(items) elements.
type batchFunc func(ctx context.Context, items [][]byte) (outputs [][]byte, errs []error)

// lineError is a problem with one input line, which does not stop the run.
// Its message must not contain the line.
type lineError struct {
	msg string
}

func (e *lineError) Error() string { return e.msg }

// inputLine is one line of input, without its line ending, or one CSV row,
// or the error that ended the input.
type inputLine struct {
	number int
	text   []byte   // the value to process
	row    []string // the CSV row that contains text, nil for a line
	offset int64    // input bytes read up to the end of this item
	fail   string   // when not "", the message the item fails with, which never contains its text
	err    error
}

// readLines sends each line of r to out, without its LF or CRLF ending, and
// closes out at the end of the input. A read error is sent as the last item.
// With stripBOM, it removes a UTF-8 byte order mark from the first line.
func readLines(r io.Reader, out chan<- inputLine, stripBOM bool) {
	defer close(out)

	counted := &countingReader{r: r}
	br := bufio.NewReaderSize(counted, 64<<10)
	for number := 1; ; number++ {
		text, tooLong, err := readLine(br)
		if len(text) == 0 && !tooLong && err == io.EOF {
			return
		}
		if err != nil && err != io.EOF {
			out <- inputLine{number: number, err: err}
			return
		}

		text = bytes.TrimSuffix(text, []byte("\r"))
		if number == 1 && stripBOM {
			text = bytes.TrimPrefix(text, utf8BOM)
		}
		item := inputLine{number: number, text: text, offset: counted.n - int64(br.Buffered())}
		if tooLong {
			item.fail = fmt.Sprintf("line is longer than the maximum of %d bytes", maxLineBytes)
		}
		out <- item
		if err == io.EOF {
			return
		}
	}
}

// readLine returns the next line without its "\n". A line of more than
// maxLineBytes+2 bytes, line ending included, is consumed to its end and
// reported as tooLong, without its text. err is io.EOF for a last line
// without "\n".
func readLine(br *bufio.Reader) (text []byte, tooLong bool, err error) {
	var line []byte
	for {
		chunk, err := br.ReadSlice('\n')
		if !tooLong {
			line = append(line, chunk...)
			if len(line) > maxLineBytes+2 {
				tooLong, line = true, nil
			}
		}
		switch {
		case errors.Is(err, bufio.ErrBufferFull):
			continue
		case err != nil:
			return line, tooLong, err
		default:
			return bytes.TrimSuffix(line, []byte("\n")), tooLong, nil
		}
	}
}

// countingReader counts the bytes read from r.
type countingReader struct {
	r io.Reader
	n int64
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	return n, err
}

// lineJob is one line or row being processed. done is closed when output and
// err are set.
type lineJob struct {
	number int
	row    []string
	offset int64
	text   []byte // the input, kept until a batch takes it
	output []byte
	err    error
	done   chan struct{}
}

// pipeline describes one run of processItems.
type pipeline struct {
	noun      string                     // "line" or "row", in messages
	emptied   string                     // the part a failed item leaves empty, such as "output line"
	read      func(out chan<- inputLine) // sends the items in order, then closes out
	inFlight  int                        // items read and not yet written
	fn        lineFunc                   // processes one item; not used when batch is set
	batch     batchFunc                  // processes up to maxBatchItems items
	out       itemWriter
	written   func(job *lineJob) // called after each item's output; may be nil
	skipped   int                // items before the first that read sends, such as a header row
	firstHint string             // added to the message of item 1 when it fails alone, or ""
}

// itemWriter writes the output of each item in input order: the output of a
// job, or an empty item for a job that failed (job.output is nil).
type itemWriter interface {
	writeItem(job *lineJob) error
	flush() error
}

// lineWriter writes one output line per item.
type lineWriter struct{ w *bufio.Writer }

func (l lineWriter) writeItem(job *lineJob) error {
	l.w.Write(job.output)
	return l.w.WriteByte('\n')
}

func (l lineWriter) flush() error { return l.w.Flush() }

// processLines runs fn on every line of standard input, up to
// maxLinesInFlight lines at a time, and writes the results to standard output
// in input order. A line that fails gets an empty output line and a message
// "line N: reason" on standard error, and the other lines go on.
func processLines(ctx context.Context, s streams, stripBOM bool, fn lineFunc) error {
	p := linePipeline(s, stripBOM)
	p.inFlight, p.fn = maxLinesInFlight, fn
	return processItems(ctx, s, p)
}

// processLineBatches is processLines with a function that processes many
// lines at once.
func processLineBatches(ctx context.Context, s streams, stripBOM bool, fn batchFunc) error {
	p := linePipeline(s, stripBOM)
	p.inFlight, p.batch = batchesInFlightItems, fn
	return processItems(ctx, s, p)
}

// batchesInFlightItems is the inFlight of a pipeline with a batchFunc: room
// for the batches being processed, and for the next one to fill meanwhile.
const batchesInFlightItems = (maxBatchesInFlight + 1) * maxBatchItems

// linePipeline returns a pipeline that reads lines from standard input and
// writes one line per item to standard output.
func linePipeline(s streams, stripBOM bool) *pipeline {
	return &pipeline{
		noun:    "line",
		emptied: "output line",
		read:    func(out chan<- inputLine) { readLines(s.stdin, out, stripBOM) },
		out:     lineWriter{bufio.NewWriter(s.stdout)},
	}
}

// processItems runs p.fn, or p.batch, on every item that p.read sends, with
// up to p.inFlight items read and not yet written, and writes the results
// with p.out in input order. An item that fails gets an empty output item and
// a message "line N: reason" (or "row N") on standard error, and the other
// items go on.
//
// A batch starts when no other batch runs, so that a lone item, such as a
// line typed at a terminal, is processed at once. While batches run, the
// items read meanwhile wait for the next one, up to maxBatchItems.
//
// When ctx is canceled, processItems stops reading, finishes the items
// already read and returns an error. fn runs without ctx's cancellation, so
// that an item that was read is never left half processed.
func processItems(ctx context.Context, s streams, p *pipeline) error {
	items := make(chan inputLine)
	go p.read(items)
	jobCtx := context.WithoutCancel(ctx)
	batchDone := make(chan struct{}, maxBatchesInFlight)

	var (
		pending      []*lineJob   // in input order
		queued       []*lineJob   // the end of pending that waits for a batch
		running      int          // batches started and not yet done
		input        = items      // nil once the input is no longer read
		interrupted  = ctx.Done() // nil once ctx is canceled
		stopped      bool         // true once ctx was canceled
		lastItem     int          // number of the last item read
		itemsWritten int          // items whose output was written
		failed       int
		readErr      error
		fatalErr     error
	)
	for input != nil || len(pending) > 0 {
		if len(pending) > 0 && isDone(pending[0]) {
			job := pending[0]
			pending = pending[1:]
			if err := writeResult(s.stderr, p, job, &failed, &fatalErr); err != nil {
				return err
			}
			if fatalErr != nil {
				input, pending, queued = nil, nil, nil
			} else {
				itemsWritten++
			}
			continue
		}

		if len(queued) > 0 && running < maxBatchesInFlight &&
			(running == 0 || input == nil || len(queued) >= maxBatchItems) {
			n := min(len(queued), maxBatchItems)
			startBatch(jobCtx, queued[:n], p.batch, batchDone)
			queued = queued[n:]
			running++
			continue
		}

		// Flush before blocking, so that an interactive user gets each result at once.
		if len(pending) == 0 {
			if err := p.out.flush(); err != nil {
				return fmt.Errorf("write standard output: %w", err)
			}
		}

		var receive <-chan inputLine
		if len(pending) < p.inFlight {
			receive = input
		}
		var headDone chan struct{}
		if len(pending) > 0 {
			headDone = pending[0].done
		}

		select {
		case item, ok := <-receive:
			switch {
			case !ok:
				input = nil
			case item.err != nil:
				readErr, input = item.err, nil
			default:
				lastItem = item.number
				job := newJob(item)
				pending = append(pending, job)
				switch {
				case job.err != nil:
					close(job.done)
				case p.batch != nil:
					queued = append(queued, job)
				default:
					startLine(jobCtx, job, p.fn)
				}
			}
		case <-headDone:
		case <-batchDone:
			running--
		case <-interrupted:
			interrupted, input, stopped = nil, nil, true
		}
	}

	if err := p.out.flush(); err != nil {
		return fmt.Errorf("write standard output: %w", err)
	}
	if failed > 0 {
		fmt.Fprintf(s.stderr, "tokenvault: %d of %d %s failed; %s\n", failed, itemsWritten, plural(itemsWritten, p.noun), p.emptiedBy(failed))
	}
	switch {
	case fatalErr != nil:
		return fatalErr
	case readErr != nil && lastItem == 0:
		return fmt.Errorf("read input: %w", readErr)
	case readErr != nil:
		return fmt.Errorf("read input after %s %d: %w", p.noun, lastItem, readErr)
	case stopped && lastItem == 0:
		return fmt.Errorf("interrupted before the first %s of input", p.noun)
	case stopped:
		return fmt.Errorf("interrupted: stopped reading input after %s %d, and every %s read has its output %s", p.noun, lastItem, p.noun, p.noun)
	case failed > 0:
		return errReported
	}
	return nil
}

// newJob returns the job of item. An item that the reader failed gets its
// error at once; the caller closes its done channel.
func newJob(item inputLine) *lineJob {
	job := &lineJob{number: item.number, row: item.row, offset: item.offset, text: item.text, done: make(chan struct{})}
	if item.fail != "" {
		job.err = &lineError{msg: item.fail}
	}
	return job
}

// startLine runs fn on job in a new goroutine.
func startLine(ctx context.Context, job *lineJob, fn lineFunc) {
	go func() {
		defer close(job.done)
		job.output, job.err = fn(ctx, job.text)
		job.text = nil
	}()
}

// startBatch runs fn on jobs in a new goroutine, which sends on done when
// every job is done.
func startBatch(ctx context.Context, jobs []*lineJob, fn batchFunc, done chan<- struct{}) {
	go func() {
		defer func() { done <- struct{}{} }()

		texts := make([][]byte, len(jobs))
		for i, job := range jobs {
			texts[i] = job.text
		}
		outputs, errs := fn(ctx, texts)

		for i, job := range jobs {
			job.output, job.err, job.text = outputs[i], errs[i], nil
			close(job.done)
		}
	}()
}

// writeResult writes the output of a finished job, or an empty item and its
// error. A failure other than a *lineError is stored in fatalErr, and then
// nothing is written on standard output for that item.
func writeResult(stderr io.Writer, p *pipeline, job *lineJob, failed *int, fatalErr *error) error {
	var lineErr *lineError
	switch {
	case job.err == nil:
	case errors.As(job.err, &lineErr):
		*failed++
		job.output = nil
		hint := ""
		if job.number == 1 {
			hint = p.firstHint
		}
		fmt.Fprintf(stderr, "%s %d: %s%s\n", p.noun, job.number, lineErr.msg, hint)
	default:
		*fatalErr = fmt.Errorf("%s %d: %s; stopped there, so the output ends before that %s", p.noun, job.number, errorText(job.err), p.noun)
		return nil
	}

	if err := p.out.writeItem(job); err != nil {
		return fmt.Errorf("write standard output: %w", err)
	}
	if p.written != nil {
		p.written(job)
	}
	return nil
}

func isDone(job *lineJob) bool {
	select {
	case <-job.done:
		return true
	default:
		return false
	}
}

// emptiedBy returns what failed items left empty, for the summary of failures.
func (p *pipeline) emptiedBy(failed int) string {
	if failed == 1 {
		return "its " + p.emptied + " is empty"
	}
	return "their " + p.emptied + "s are empty"
}
