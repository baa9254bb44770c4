package main

import (
	"bufio"
	"context"
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"

	"github.com/tokenvault/tokenvault/internal/digitgroups"
)

// Bounds of one CSV row, so that a file without row ends cannot make import
// hold it all in memory, and the rows in flight stay within about 150 MiB
// together: each field costs a string header beside its bytes.
const (
	maxCSVRowBytes = 128 << 10
	maxCSVFields   = 1024
)

// csvLayout locates the value column of CSV input.
type csvLayout struct {
	column int    // index of the value column, from 0; -1 until name is found
	arg    string // the --column flag as given
	name   string // the value column's name in the header row, or ""
	header bool   // the first row is a header, copied to the output
}

// parseCSVLayout reads --column and --header: a number counts columns from
// 1, and anything else is a name in the header row.
func parseCSVLayout(column string, header bool) (*csvLayout, error) {
	n, err := strconv.Atoi(column)
	switch {
	case err == nil && n >= 1:
		return &csvLayout{column: n - 1, arg: column, header: header}, nil
	case err == nil:
		return nil, usagef("invalid --column %s: columns are counted from 1", quoteArg(column))
	case strings.TrimSpace(column) == "":
		return nil, usagef("invalid --column: expected a number from 1 or a column name")
	}
	return &csvLayout{column: -1, arg: column, name: column, header: true}, nil
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
			return usagef("--column %s: columns %d and %d of the header row both have that name", quoteArg(l.arg), l.column+1, i+1)
		}
		l.column = i
	}
	if l.column < 0 {
		return usagef("--column %s: the header row has no column of that name (names are case-sensitive); its columns are %s", quoteArg(l.arg), columnNames(header))
	}
	return nil
}

// maxListedColumns bounds the header names that an error message lists.
const maxListedColumns = 10

// columnNames lists the names of header, quoted, for an error message. The
// card number screen misses numbers split by other characters, such as colons,
// so every digit of a name with six or more of them is masked.
func columnNames(header []string) string {
	names := make([]string, 0, min(len(header), maxListedColumns))
	for _, name := range header[:min(len(header), maxListedColumns)] {
		names = append(names, strconv.Quote(maskAllDigits(strings.TrimSpace(name))))
	}
	if len(header) > maxListedColumns {
		names = append(names, fmt.Sprintf("and %d more", len(header)-maxListedColumns))
	}
	return strings.Join(names, ", ")
}

// maskAllDigits replaces every digit of text with '*' when it has six or
// more digits.
func maskAllDigits(text string) string {
	digits := 0
	for i := range len(text) {
		if isDigit(text[i]) {
			digits++
		}
	}
	if digits < 6 {
		return text
	}
	out := []byte(text)
	for i, c := range out {
		if isDigit(c) {
			out[i] = '*'
		}
	}
	return string(out)
}

// csvSource reads the rows of CSV input. Import copies every field but the
// value, so a row that may hold a card number elsewhere is written with all
// of its fields empty. Such a row has another number of fields than the
// first row (the header, when there is one), a carriage return inside a
// field, or a field that could be a card number.
type csvSource struct {
	cr     *csv.Reader
	limit  *rowLimitReader
	layout *csvLayout
	screen func(field string) bool // reports a field that could be a card number
	width  int                     // fields of the first row
	header []string                // the header row, nil without one
	first  []string                // the first data row, read to learn the width; nil with a header
	before []inputLine             // rows before first that are not valid CSV, failed
	rows   int                     // rows read, header included
	end    int64                   // input offset of the end of the last row read
}

// startCSV reads the first row of r: the header, when layout has one, in
// which it finds the value column. It checks that the value column is within
// the first row. screen reports a field that could be a card number. It
// returns early when ctx is canceled, for input that never comes.
func startCSV(ctx context.Context, r io.Reader, layout *csvLayout, screen func(string) bool) (*csvSource, error) {
	type started struct {
		src *csvSource
		err error
	}
	done := make(chan started, 1)
	go func() {
		src, err := readFirstCSVRow(r, layout, screen)
		done <- started{src, err}
	}()

	select {
	case s := <-done:
		return s.src, s.err
	case <-ctx.Done():
		return nil, errors.New("interrupted before the first row of input arrived")
	}
}

func readFirstCSVRow(r io.Reader, layout *csvLayout, screen func(string) bool) (*csvSource, error) {
	br := bufio.NewReader(r)
	if bom, err := br.Peek(len(utf8BOM)); err == nil && string(bom) == string(utf8BOM) {
		br.Discard(len(utf8BOM))
	}
	limit := &rowLimitReader{r: br}
	cr := csv.NewReader(limit)
	cr.FieldsPerRecord = -1 // a row of another width fails alone
	src := &csvSource{cr: cr, limit: limit, layout: layout, screen: screen}

	first, err := src.read()
	var parseErr *csv.ParseError
	for !layout.header && errors.As(err, &parseErr) {
		// The width comes from the first row that is valid CSV, and the
		// rows before it fail alone.
		if len(src.before) == maxInvalidFirstRows {
			return nil, fmt.Errorf("rows 1 to %d are not valid CSV: %w", maxInvalidFirstRows, err)
		}
		src.before = append(src.before, invalidCSVRow(src.rows, src.end, parseErr))
		first, err = src.read()
	}
	switch {
	case errors.Is(err, io.EOF) && layout.header:
		return nil, errors.New("the input is empty: expected a header row")
	case errors.Is(err, io.EOF):
		src.setWidth(1)
		return src, nil
	case err != nil:
		return nil, fmt.Errorf("read row %d: %w", len(src.before)+1, err)
	}
	src.setWidth(len(first))

	if !layout.header {
		src.first = first
		if layout.column >= src.width {
			return nil, usagef("--column %s is past the %d %s of the first row", quoteArg(layout.arg), src.width, plural(src.width, "column"))
		}
		return src, nil
	}

	if hasLoneCR(first) {
		return nil, errors.New("the header row has a carriage return inside a field, as in a file with CR line endings: convert the file to LF or CRLF line endings")
	}
	for i, field := range first {
		if screen(field) {
			return nil, fmt.Errorf("column %d of the header row contains what could be a card number; if the first row is data, leave out --header and give --column as a number", i+1)
		}
	}
	if err := layout.findColumn(first); err != nil {
		return nil, err
	}
	if layout.column >= src.width {
		return nil, usagef("--column %s is past the %d %s of the header row", quoteArg(layout.arg), src.width, plural(src.width, "column"))
	}
	src.header = first
	return src, nil
}

// read returns the next row. It fails a row longer than maxCSVRowBytes, and
// ends the input there. A row that is not valid CSV, such as one with a bare
// quote, returns a *csv.ParseError, after which read goes on with the next
// row.
func (c *csvSource) read() ([]string, error) {
	row, err := c.cr.Read()
	var parseErr *csv.ParseError
	if err != nil && !errors.As(err, &parseErr) {
		return nil, err
	}
	c.rows++
	if err == nil && len(row) > maxCSVFields {
		return nil, errTooManyFields
	}

	start := c.end
	c.end = c.cr.InputOffset()
	c.limit.rowStart = c.end
	if c.end-start > maxCSVRowBytes {
		return nil, errRowTooLong
	}
	if err != nil {
		return nil, err
	}
	return row, nil
}

// Errors that end CSV input at a row that exceeds a bound.
var (
	errRowTooLong    = fmt.Errorf("a row is longer than the maximum of %d bytes", maxCSVRowBytes)
	errTooManyFields = fmt.Errorf("a row has more than the maximum of %d fields", maxCSVFields)
)

// rowLimitReader fails once the CSV reader has read more than
// maxCSVRowBytes past the end of its last row, plus its read-ahead, so that
// a row without an end is never held whole in memory.
type rowLimitReader struct {
	r        io.Reader
	read     int64
	rowStart int64
}

func (l *rowLimitReader) Read(p []byte) (int, error) {
	const readAhead = 64 << 10
	if l.read-l.rowStart > maxCSVRowBytes+readAhead {
		return 0, errRowTooLong
	}
	n, err := l.r.Read(p)
	l.read += int64(n)
	return n, err
}

// maxInvalidFirstRows bounds the rows that are not valid CSV before the first
// one that is, which import holds until it has the width of the rows.
const maxInvalidFirstRows = 1000

// setWidth sets the width of the rows, and gives the failed rows before the
// first one that width.
func (c *csvSource) setWidth(width int) {
	c.width = width
	for i := range c.before {
		c.before[i].row = make([]string, width)
	}
}

// invalidCSVRow returns the item of the row numbered number, which ends at
// offset and is not valid CSV, to fail alone with its fields left empty.
func invalidCSVRow(number int, offset int64, err *csv.ParseError) inputLine {
	msg := "row is not valid CSV (" + err.Error() + ")"
	switch {
	case err.StartLine == 0 || err.Line <= err.StartLine:
	case err.Line == err.StartLine+1:
		msg += fmt.Sprintf("; line %d was read as part of it, so it is not imported", err.Line)
	default:
		msg += fmt.Sprintf("; lines %d to %d were read as part of it, so they are not imported", err.StartLine+1, err.Line)
	}
	return inputLine{number: number, offset: offset, fail: msg + "; all of its fields are left empty"}
}

// send sends each data row to out, with the value of the layout's column as
// its text, and closes out at the end of the input. A row that may hold a
// card number in a field other than the value is sent to fail alone, with
// all of its fields empty. A read error is sent as the last item.
func (c *csvSource) send(out chan<- inputLine) {
	defer close(out)

	for _, item := range c.before {
		out <- item
	}
	if c.first != nil {
		out <- c.item(c.first, c.rows)
	}
	for {
		row, err := c.read()
		var parseErr *csv.ParseError
		switch {
		case errors.Is(err, io.EOF):
			return
		case errors.As(err, &parseErr):
			// The reader returns part of such a row, which must not be
			// copied, and goes on at the next row.
			item := invalidCSVRow(c.rows, c.end, parseErr)
			item.row = make([]string, c.width)
			out <- item
		case err != nil:
			out <- inputLine{number: c.rows + 1, err: err}
			return
		default:
			out <- c.item(row, c.rows)
		}
	}
}

// item returns the item of row, the row numbered number.
func (c *csvSource) item(row []string, number int) inputLine {
	item := inputLine{number: number, row: row, offset: c.end}
	if reason := c.unsafeRow(row); reason != "" {
		item.row = make([]string, c.width)
		item.fail = reason + "; all of its fields are left empty"
		return item
	}
	item.text = []byte(row[c.layout.column])
	return item
}

// unsafeRow returns why import must not copy the fields of row, or "".
func (c *csvSource) unsafeRow(row []string) string {
	if len(row) != c.width {
		return fmt.Sprintf("row has %d %s where the first row has %d", len(row), plural(len(row), "field"), c.width)
	}
	if hasLoneCR(row) {
		return "row has a carriage return inside a field, as in a file with CR line endings"
	}
	for i, field := range row {
		if i != c.layout.column && c.screen(field) {
			return fmt.Sprintf("column %d, which import copies, contains what could be a card number", i+1)
		}
	}
	return ""
}

// hasLoneCR reports whether a field of row contains a carriage return. The CSV
// reader removes those that end a line before a line feed.
func hasLoneCR(row []string) bool {
	for _, field := range row {
		if strings.IndexByte(field, '\r') >= 0 {
			return true
		}
	}
	return false
}

// csvWriter writes the output rows: each input row with its value replaced
// by the token, or by an empty field when the row failed.
type csvWriter struct {
	w      *csv.Writer
	column int
}

func (c *csvWriter) writeItem(job *lineJob) error {
	job.row[c.column] = string(job.output)
	return c.w.Write(job.row)
}

func (c *csvWriter) flush() error {
	c.w.Flush()
	return c.w.Error()
}

// hasDigitRun reports whether text has a run of at least n digits, which
// may be grouped as for tokenvault.ContainsCardNumber: the screen for card
// numbers that may fail the Luhn check.
func hasDigitRun(text string, n int) bool {
	digits := 0
	for i := 0; i < len(text); {
		if isDigit(text[i]) {
			digits++
			if digits >= n {
				return true
			}
			i++
			continue
		}

		if sep, _ := digitgroups.Separator(text[i:]); sep > 0 && digits > 0 {
			i += sep
			continue
		}
		digits = 0
		i++
	}
	return false
}

// plural returns noun, with an s unless n is 1.
func plural(n int, noun string) string {
	if n == 1 {
		return noun
	}
	return noun + "s"
}
