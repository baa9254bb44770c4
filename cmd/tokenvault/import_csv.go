package main

import (
	"bufio"
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
)

// maxCSVRowBytes bounds one CSV row, so that a file without row ends cannot
// make import hold it all in memory.
const maxCSVRowBytes = 1 << 20

// csvLayout locates the value column of CSV input.
type csvLayout struct {
	column int    // index of the value column, from 0; -1 until name is found
	name   string // the value column's name in the header row, or ""
	header bool   // the first row is a header, copied to the output
}

// parseCSVLayout reads --column and --header: a number counts columns from
// 1, and anything else is a name in the header row.
func parseCSVLayout(column string, header bool) (*csvLayout, error) {
	n, err := strconv.Atoi(column)
	switch {
	case err == nil && n >= 1:
		return &csvLayout{column: n - 1, header: header}, nil
	case err == nil:
		return nil, usagef("invalid --column %d: columns are counted from 1", n)
	case strings.TrimSpace(column) == "":
		return nil, usagef("invalid --column: expected a number from 1 or a column name")
	}
	return &csvLayout{column: -1, name: column, header: true}, nil
}

// findColumn sets l.column to the index of l.name in header.
func (l *csvLayout) findColumn(header []string) error {
	if l.name == "" {
		return nil
	}
	for i, name := range header {
		if strings.TrimSpace(name) != l.name {
			continue
		}
		if l.column >= 0 {
			return fmt.Errorf("--column %s: columns %d and %d of the header row both have that name", quoteArg(l.name), l.column+1, i+1)
		}
		l.column = i
	}
	if l.column < 0 {
		return fmt.Errorf("--column %s: the header row has no column of that name", quoteArg(l.name))
	}
	return nil
}

// csvWriter writes the output rows: each input row with its value replaced
// by the token, or by an empty field when the row failed.
type csvWriter struct {
	w      *csv.Writer
	column int
}

func newCSVWriter(w io.Writer, layout *csvLayout) *csvWriter {
	return &csvWriter{w: csv.NewWriter(w), column: layout.column}
}

func (c *csvWriter) writeItem(job *lineJob) error {
	row := job.row
	if c.column >= 0 && c.column < len(row) {
		row[c.column] = string(job.output)
	}
	return c.w.Write(row)
}

func (c *csvWriter) flush() error {
	c.w.Flush()
	return c.w.Error()
}

// openCSV returns a CSV reader of r, without a UTF-8 byte order mark at its
// start, that fails a row longer than maxCSVRowBytes.
func openCSV(r io.Reader) *csv.Reader {
	br := bufio.NewReader(r)
	if bom, err := br.Peek(len(utf8BOM)); err == nil && string(bom) == string(utf8BOM) {
		br.Discard(len(utf8BOM))
	}

	limited := &rowLimitReader{r: br}
	cr := csv.NewReader(limited)
	cr.FieldsPerRecord = -1 // rows may differ in length; a short row fails alone
	limited.rowStart = cr.InputOffset
	return cr
}

// errRowTooLong ends CSV input with a row longer than maxCSVRowBytes.
var errRowTooLong = fmt.Errorf("a row is longer than the maximum of %d bytes", maxCSVRowBytes)

// rowLimitReader fails once the CSV reader has read maxCSVRowBytes past the
// end of its last row, plus its read-ahead.
type rowLimitReader struct {
	r        io.Reader
	read     int64
	rowStart func() int64
}

func (l *rowLimitReader) Read(p []byte) (int, error) {
	const readAhead = 64 << 10
	if l.read-l.rowStart() > maxCSVRowBytes+readAhead {
		return 0, errRowTooLong
	}
	n, err := l.r.Read(p)
	l.read += int64(n)
	return n, err
}

// readCSVHeader reads the header row of cr when layout has one, finds the
// value column in it and writes it to w.
func readCSVHeader(cr *csv.Reader, layout *csvLayout, w *csvWriter) (rows int, err error) {
	if !layout.header {
		return 0, nil
	}
	header, err := cr.Read()
	if errors.Is(err, io.EOF) {
		return 0, errors.New("the input is empty: expected a header row")
	}
	if err != nil {
		return 0, fmt.Errorf("read the header row: %w", err)
	}
	if err := layout.findColumn(header); err != nil {
		return 0, err
	}
	w.column = layout.column
	if err := w.w.Write(header); err != nil {
		return 0, fmt.Errorf("write standard output: %w", err)
	}
	return 1, nil
}

// readCSV sends each row of cr after the first skip rows to out, with the
// value of layout's column as its text, and closes out at the end of the
// input. A row without that column is sent to fail alone. A read error is
// sent as the last item.
func readCSV(cr *csv.Reader, layout *csvLayout, skip int, out chan<- inputLine) {
	defer close(out)

	for number := skip + 1; ; number++ {
		row, err := cr.Read()
		if errors.Is(err, io.EOF) {
			return
		}
		if err != nil {
			out <- inputLine{number: number, err: err}
			return
		}

		item := inputLine{number: number, row: row, offset: cr.InputOffset()}
		if layout.column < len(row) {
			item.text = []byte(row[layout.column])
		} else {
			item.fail = fmt.Sprintf("row has %d %s, so it has no column %d", len(row), plural(len(row), "column"), layout.column+1)
		}
		out <- item
	}
}

// plural returns noun, with an s unless n is 1.
func plural(n int, noun string) string {
	if n == 1 {
		return noun
	}
	return noun + "s"
}
