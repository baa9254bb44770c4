package main

import (
	"bufio"
	"context"
	"encoding/csv"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"os"

	"github.com/tokenvault/tokenvault"
)

var importCommand = &command{
	name:     "import",
	synopsis: "[flags] [FILE] > output",
	summary:  "Tokenize a file of values, one per line or one column of a CSV file, with progress.",
	details: `
import reads FILE, or standard input when FILE is "-" or missing, and writes
the same input with each value replaced by its token on standard output.
Without --csv, each line is one value, as for 'tokenvault tokenize', and each
output line is a token. With --csv, the input is CSV (RFC 4180), --column
names the column that contains the values, and the output is the same rows
with that column replaced by tokens; the other columns are copied.

A line or row that fails, such as one with an invalid card number, gets an
empty token and the message "line N: reason" or "row N: reason" on standard
error, which never contains the value; the others are still tokenized, and
the exit status is 1. Rows are counted from 1, header row included.

import copies every CSV field but the value, so it writes a row with all of
its fields empty, as failed, when a card number could be in one of them: a
row with another number of fields than the first row (the header, if any),
one with a carriage return inside a field, and one with another field that
could be a card number (that passes the Luhn check, or with
--allow-non-luhn has 12 digits or more). A row that is not valid CSV, such
as one with a quote inside an unquoted field, fails in the same way. A quote
that is never closed takes the rest of the input into its row, so the
message gives the lines the row spans. A row may have at most 128 KiB and
1,024 fields; a longer one ends the import there.

import shows its progress on standard error: a bar with the rate and the time
left when standard error is a terminal, and otherwise a line every 10 seconds.
The time left is known when FILE is a regular file.

Values are tokenized in batches of up to 1,024, each committed in one
transaction of the database; every token written to the output is on disk.`,
	setup: func(fs *flag.FlagSet) runFunc {
		vf := addVaultFlags(fs)
		csvInput := fs.Bool("csv", false, "read CSV and replace the values of one column with tokens")
		column := fs.String("column", "1", "with --csv, the `COLUMN` of the values: a number counted from 1, or a name in the header row")
		header := fs.Bool("header", false, "with --csv, copy the first row as a header (implied when --column is a name)")
		tf := addTokenizeFlags(fs)

		return func(ctx context.Context, s streams, args []string) error {
			var layout *csvLayout
			var err error
			if *csvInput {
				layout, err = parseCSVLayout(*column, *header)
				if err != nil {
					return err
				}
			} else if flagWasSet(fs, "column") || *header {
				return usagef("--column and --header apply to --csv input only")
			}
			opts, isCard, err := tf.options(fs)
			if err != nil {
				return err
			}

			in, size, closeInput, err := openImportInput(s, args)
			if err != nil {
				return err
			}
			defer closeInput()
			var src *csvSource
			if layout != nil {
				if src, err = startCSV(ctx, in, layout, cardScreen(*tf.allowNonLuhn)); err != nil {
					return err
				}
			}

			vault, err := vf.open(s.stderr, true)
			if err != nil {
				return err
			}
			err = runImport(ctx, s, in, size, src, isCard, func(ctx context.Context, values [][]byte) ([][]byte, []error) {
				return tokenizeLines(ctx, vault, isCard, values, opts)
			})
			return closeVault(vault, err)
		}
	},
}

// cardScreen returns the check for a CSV field that could be a card number,
// which import must not copy: a Luhn-valid number, or with allowNonLuhn any
// run of as many digits as the shortest card number.
func cardScreen(allowNonLuhn bool) func(string) bool {
	if allowNonLuhn {
		return func(field string) bool { return hasDigitRun(field, tokenvault.MinCardDigits) }
	}
	return tokenvault.ContainsCardNumber
}

// openImportInput opens the input named by args: a file, or standard input
// for "-" or no argument. size is the input's length in bytes when it is a
// regular file, and -1 otherwise.
func openImportInput(s streams, args []string) (in io.Reader, size int64, closeInput func(), err error) {
	if len(args) > 1 {
		return nil, 0, nil, usagef("unexpected argument %s: import reads one FILE", quoteArg(args[1]))
	}

	in, closeInput = s.stdin, func() {}
	if len(args) == 1 && args[0] != "-" {
		f, err := os.Open(args[0])
		var pathErr *fs.PathError
		if errors.As(err, &pathErr) {
			// The name may be a card number given by mistake.
			return nil, 0, nil, fmt.Errorf("open %s: %w", quoteArg(args[0]), pathErr.Err)
		}
		if err != nil {
			return nil, 0, nil, err
		}
		in, closeInput = f, func() { f.Close() }
	}
	return in, regularFileSize(in), closeInput, nil
}

// regularFileSize returns the bytes left to read in r when r is a regular
// file, and -1 otherwise.
func regularFileSize(r io.Reader) int64 {
	f, ok := r.(*os.File)
	if !ok {
		return -1
	}
	info, err := f.Stat()
	if err != nil || !info.Mode().IsRegular() {
		return -1
	}
	offset, err := f.Seek(0, io.SeekCurrent)
	if err != nil {
		return -1
	}
	return info.Size() - offset
}

// runImport tokenizes the values of in, of size bytes (-1 when unknown), one
// per line or, with src, one per CSV row, and reports progress. stripBOM
// removes a UTF-8 byte order mark from the first line.
func runImport(ctx context.Context, s streams, in io.Reader, size int64, src *csvSource, stripBOM bool, fn batchFunc) error {
	p := &pipeline{noun: "line", emptied: "output line", inFlight: batchesInFlightItems, batch: fn}
	if src == nil {
		p.read = func(out chan<- inputLine) { readLines(in, out, stripBOM) }
		p.out = lineWriter{bufio.NewWriter(s.stdout)}
	} else {
		w := &csvWriter{w: csv.NewWriter(s.stdout), column: src.layout.column}
		if src.header != nil {
			if err := w.w.Write(src.header); err != nil {
				return fmt.Errorf("write standard output: %w", err)
			}
			p.skipped = 1
		} else {
			p.firstHint = "; if row 1 is a header row, add --header"
		}
		p.noun, p.emptied = "row", "token"
		p.read = src.send
		p.out = w
	}

	prog := newProgress(s.stderr, "import", p.noun+"s")
	// Messages about single values go to the same terminal line as the bar,
	// which must be cleared first.
	s.stderr = prog.lineWriter()

	count := int64(0)
	p.written = func(job *lineJob) {
		count++
		ratio := -1.0
		if size > 0 {
			ratio = float64(job.offset) / float64(size)
		}
		prog.update(count, ratio)
	}

	err := processItems(ctx, s, p)
	prog.finish()
	return err
}
