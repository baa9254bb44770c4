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

// maxLinesInFlight bounds the lines processed concurrently. Concurrent
// tokenizations share the bbolt store's commits, and so its fsyncs.
const maxLinesInFlight = 16

// utf8BOM is the byte order mark that some Windows tools write at the start
// of a text file.
var utf8BOM = []byte("\xef\xbb\xbf")

// lineFunc turns one input line into one output line. It returns a *lineError
// for a problem with that line, and any other error for a failure that stops
// the run. Neither error may contain the line.
type lineFunc func(ctx context.Context, line []byte) ([]byte, error)

// lineError is a problem with one input line, which does not stop the run.
// Its message must not contain the line.
type lineError struct {
	msg string
}

func (e *lineError) Error() string { return e.msg }

// inputLine is one line of input, without its line ending, or the error that
// ended the input.
type inputLine struct {
	number  int
	text    []byte
	tooLong bool
	err     error
}

// readLines sends each line of r to out, without its LF or CRLF ending, and
// closes out at the end of the input. A read error is sent as the last item.
// With stripBOM, it removes a UTF-8 byte order mark from the first line.
func readLines(r io.Reader, out chan<- inputLine, stripBOM bool) {
	defer close(out)

	br := bufio.NewReaderSize(r, 64<<10)
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
		out <- inputLine{number: number, text: text, tooLong: tooLong}
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

// lineJob is one line being processed. done is closed when output and err
// are set.
type lineJob struct {
	number int
	output []byte
	err    error
	done   chan struct{}
}

// processLines runs fn on every line of standard input, up to
// maxLinesInFlight lines at a time, and writes the results to standard output
// in input order. A line that fails gets an empty output line and a message
// "line N: reason" on standard error, and the other lines go on.
//
// When ctx is canceled, processLines stops reading, finishes the lines already
// read and returns an error. fn runs without ctx's cancellation, so that a
// line that was read is never left half processed.
func processLines(ctx context.Context, s streams, stripBOM bool, fn lineFunc) error {
	lines := make(chan inputLine)
	go readLines(s.stdin, lines, stripBOM)
	stdout := bufio.NewWriter(s.stdout)
	jobCtx := context.WithoutCancel(ctx)

	var (
		pending     []*lineJob   // in input order
		input       = lines      // nil once the input is no longer read
		interrupted = ctx.Done() // nil once ctx is canceled
		stopped     bool         // true once ctx was canceled
		lastLine    int
		failed      int
		readErr     error
		fatalErr    error
	)
	for input != nil || len(pending) > 0 {
		if len(pending) > 0 && isDone(pending[0]) {
			job := pending[0]
			pending = pending[1:]
			if err := writeResult(s.stderr, stdout, job, &failed, &fatalErr); err != nil {
				return err
			}
			if fatalErr != nil {
				input, pending = nil, nil
			}
			continue
		}

		// Flush before blocking, so that an interactive user gets each result at once.
		if len(pending) == 0 {
			if err := stdout.Flush(); err != nil {
				return fmt.Errorf("write standard output: %w", err)
			}
		}

		var receive <-chan inputLine
		if len(pending) < maxLinesInFlight {
			receive = input
		}
		var headDone chan struct{}
		if len(pending) > 0 {
			headDone = pending[0].done
		}

		select {
		case line, ok := <-receive:
			switch {
			case !ok:
				input = nil
			case line.err != nil:
				readErr, input = line.err, nil
			default:
				lastLine = line.number
				pending = append(pending, startLine(jobCtx, line, fn))
			}
		case <-headDone:
		case <-interrupted:
			interrupted, input, stopped = nil, nil, true
		}
	}

	if err := stdout.Flush(); err != nil {
		return fmt.Errorf("write standard output: %w", err)
	}
	if failed > 0 {
		fmt.Fprintf(s.stderr, "tokenvault: %d of %d lines failed; their output lines are empty\n", failed, lastLine)
	}
	switch {
	case fatalErr != nil:
		return fatalErr
	case readErr != nil:
		return fmt.Errorf("read standard input after line %d: %w", lastLine, readErr)
	case stopped:
		return fmt.Errorf("interrupted: stopped reading input after line %d, and every line read has its output line", lastLine)
	case failed > 0:
		return errReported
	}
	return nil
}

// startLine runs fn on line in a new goroutine, or fails a line that is too
// long at once.
func startLine(ctx context.Context, line inputLine, fn lineFunc) *lineJob {
	job := &lineJob{number: line.number, done: make(chan struct{})}
	if line.tooLong {
		job.err = &lineError{msg: fmt.Sprintf("line is longer than the maximum of %d bytes", maxLineBytes)}
		close(job.done)
		return job
	}

	go func() {
		defer close(job.done)
		job.output, job.err = fn(ctx, line.text)
	}()
	return job
}

// writeResult writes the output line of a finished job, or an empty line and
// its error. A failure other than a *lineError is stored in fatalErr, and
// then nothing is written on standard output for that line.
func writeResult(stderr io.Writer, stdout *bufio.Writer, job *lineJob, failed *int, fatalErr *error) error {
	var lineErr *lineError
	switch {
	case job.err == nil:
		stdout.Write(job.output)
	case errors.As(job.err, &lineErr):
		*failed++
		fmt.Fprintf(stderr, "line %d: %s\n", job.number, lineErr.msg)
	default:
		*fatalErr = fmt.Errorf("line %d: %s; stopped there, so the output has %d lines", job.number, errorText(job.err), job.number-1)
		return nil
	}

	if err := stdout.WriteByte('\n'); err != nil {
		return fmt.Errorf("write standard output: %w", err)
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
