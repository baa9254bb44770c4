package main

import (
	"encoding/csv"
	"os"
	"strconv"
	"strings"
	"testing"
)

// luhnPANs returns the test card numbers that pass the Luhn check.
func luhnPANs(t *testing.T) []string {
	t.Helper()
	var pans []string
	for _, p := range testPANs {
		if p.luhnValid {
			pans = append(pans, p.pan)
		}
	}
	if len(pans) < 10 {
		t.Fatalf("only %d test card numbers pass the Luhn check", len(pans))
	}
	return pans
}

// parseCSV returns the rows of CSV output.
func parseCSV(t *testing.T, r result) [][]string {
	t.Helper()
	cr := csv.NewReader(strings.NewReader(r.stdout))
	cr.FieldsPerRecord = -1
	rows, err := cr.ReadAll()
	if err != nil {
		t.Fatalf("tokenvault %s: output is not CSV: %v", strings.Join(r.args, " "), err)
	}
	return rows
}

func TestImportCSVColumnByName(t *testing.T) {
	w := newWorkspace(t)
	pans := luhnPANs(t)[:5]

	var in strings.Builder
	in.WriteString("\xef\xbb\xbfid,\"holder, name\",pan,note\n")
	for i, pan := range pans {
		in.WriteString(strconv.Itoa(i+1) + ",\"Holder " + strconv.Itoa(i) + ", Jr\"," + pan + ",kept\n")
	}
	in.WriteString("6,Bad,4111111111111112,kept\n")        // fails the Luhn check
	in.WriteString("7,Smith, John," + pans[0] + ",kept\n") // an unquoted comma shifts the number
	in.WriteString(pans[1] + "\n")                         // one field
	if err := os.WriteFile(w.path("cards.csv"), []byte(in.String()), 0o600); err != nil {
		t.Fatal(err)
	}

	r := w.run(t, "", "import", "--csv", "--column", "pan", "cards.csv")
	checkExit(t, r, exitFailure)
	checkStderr(t, r, "row 7: invalid card number: fails the Luhn check")
	checkStderr(t, r, "row 8: row has 5 fields where the first row has 4; all of its fields are left empty")
	checkStderr(t, r, "row 9: row has 1 field where the first row has 4; all of its fields are left empty")
	checkStderr(t, r, "3 of 8 rows failed; their tokens are empty")
	checkStderr(t, r, "tokenvault import: 8 rows in ")

	rows := parseCSV(t, r)
	if len(rows) != 9 {
		t.Fatalf("import wrote %d rows, want 9 (header, 5 tokens, 3 failures)", len(rows))
	}
	if strings.Join(rows[0], "|") != "id|holder, name|pan|note" {
		t.Errorf("header row = %q, want the input's without the byte order mark", rows[0])
	}
	var tokens []string
	for i := range pans {
		row := rows[i+1]
		if len(row) != 4 || row[0] != strconv.Itoa(i+1) || row[1] != "Holder "+strconv.Itoa(i)+", Jr" || row[3] != "kept" {
			t.Errorf("row %d: the columns other than pan changed: %q", i+2, maskCardNumbers(strings.Join(row, "|")))
			continue
		}
		tokens = append(tokens, row[2])
	}
	if got := strings.Join(rows[6], "|"); got != "6|Bad||kept" {
		t.Errorf("failed row = %q, want its value replaced by an empty field", maskCardNumbers(got))
	}
	for _, i := range []int{7, 8} {
		if got := strings.Join(rows[i], "|"); got != "|||" {
			t.Errorf("row %d of another width = %q, want 4 empty fields", i+1, maskCardNumbers(got))
		}
	}

	values := detokenize(t, w, tokens)
	for i, value := range values {
		if value != pans[i] {
			t.Errorf("token of row %d detokenizes to another value than %s", i+2, masked(pans[i]))
		}
	}
}

func TestImportCSVColumnByNumber(t *testing.T) {
	w := newWorkspace(t)
	pans := luhnPANs(t)[:3]

	var in strings.Builder
	for _, pan := range pans {
		in.WriteString("x," + pan + "\n")
	}

	r := w.run(t, in.String(), "import", "--csv", "--column", "2", "--type", "card", "--format", "card-first-six")
	checkExit(t, r, exitOK)

	rows := parseCSV(t, r)
	if len(rows) != len(pans) {
		t.Fatalf("import wrote %d rows for %d input rows", len(rows), len(pans))
	}
	var tokens []string
	for i, row := range rows {
		token := row[1]
		if row[0] != "x" || len(token) != len(pans[i]) || token[:6] != pans[i][:6] || token[len(token)-4:] != pans[i][len(pans[i])-4:] {
			t.Errorf("row %d = %q, want x and a card-first-six token of %s", i+1, maskCardNumbers(strings.Join(row, "|")), masked(pans[i]))
		}
		tokens = append(tokens, token)
	}
	for i, value := range detokenize(t, w, tokens) {
		if value != pans[i] {
			t.Errorf("row %d: token detokenizes to another value than %s", i+1, masked(pans[i]))
		}
	}
}

func TestImportLinesFromFileAndStdin(t *testing.T) {
	w := newWorkspace(t)
	pans := luhnPANs(t)
	input := strings.Join(pans, "\r\n") + "\r\n"
	if err := os.WriteFile(w.path("pans.txt"), []byte(input), 0o600); err != nil {
		t.Fatal(err)
	}

	fromFile := w.run(t, "", "import", "pans.txt")
	checkExit(t, fromFile, exitOK)
	fromStdin := w.run(t, input, "import", "-")
	checkExit(t, fromStdin, exitOK)

	for _, r := range []result{fromFile, fromStdin} {
		checkStderr(t, r, "tokenvault import: "+strconv.Itoa(len(pans))+" lines in ")
		tokens := lines(r.stdout)
		if len(tokens) != len(pans) {
			t.Fatalf("tokenvault %s printed %d tokens for %d values", strings.Join(r.args, " "), len(tokens), len(pans))
		}
		for i, value := range detokenize(t, w, tokens) {
			if value != pans[i] {
				t.Errorf("tokenvault %s: line %d detokenizes to another value than %s", strings.Join(r.args, " "), i+1, masked(pans[i]))
			}
		}
	}
}

func TestImportCSVRowTooLong(t *testing.T) {
	w := newWorkspace(t)
	pan := luhnPANs(t)[0]
	input := "a," + pan + "\n" + "b,\"" + strings.Repeat("x", maxCSVRowBytes+100<<10) + "\"\nc," + pan + "\n"
	if err := os.WriteFile(w.path("long.csv"), []byte(input), 0o600); err != nil {
		t.Fatal(err)
	}

	r := w.run(t, "", "import", "--csv", "--column", "2", "long.csv")
	checkExit(t, r, exitFailure)
	checkStderr(t, r, "read input after row 1: a row is longer than the maximum of "+strconv.Itoa(maxCSVRowBytes)+" bytes")
	rows := parseCSV(t, r)
	if len(rows) != 1 || rows[0][0] != "a" {
		t.Errorf("import wrote %d rows, want the 1 row before the long one", len(rows))
	}
}

func TestImportUsageErrors(t *testing.T) {
	w := newWorkspace(t)
	if err := os.WriteFile(w.path("dup.csv"), []byte("pan,pan\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(w.path("empty.csv"), nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(w.path("wide.csv"), []byte("c1,c2,c3,c4,c5,c6,c7,c8,c9,c10,c11,c12\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(w.path("header.csv"), []byte("name,pan\nalice,"+luhnPANs(t)[0]+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}

	tests := []struct {
		args []string
		code int
		want string
	}{
		{[]string{"import", "--column", "2"}, exitUsage, "--column and --header apply to --csv input only"},
		{[]string{"import", "--header"}, exitUsage, "--column and --header apply to --csv input only"},
		{[]string{"import", "--csv", "--column", "0"}, exitUsage, `invalid --column "0": columns are counted from 1`},
		{[]string{"import", "--csv", "--column", " "}, exitUsage, "invalid --column: expected a number from 1 or a column name"},
		{[]string{"import", "a.txt", "b.txt"}, exitUsage, `unexpected argument "b.txt": import reads one FILE`},
		{[]string{"import", "missing.txt"}, exitFailure, `open "missing.txt": no such file or directory`},
		{[]string{"import", "--csv", "--column", "pan", "dup.csv"}, exitUsage, `--column "pan": columns 1 and 2 of the header row both have that name`},
		{[]string{"import", "--csv", "--column", "card", "dup.csv"}, exitUsage, `--column "card": the header row has no column of that name (names are case-sensitive); its columns are "pan", "pan"`},
		{[]string{"import", "--csv", "--header", "empty.csv"}, exitFailure, "the input is empty: expected a header row"},
		{[]string{"import", "--csv", "--column", "C1", "wide.csv"}, exitUsage, `its columns are "c1", "c2", "c3", "c4", "c5", "c6", "c7", "c8", "c9", "c10", and 2 more`},
		{[]string{"import", "--csv", "--column", "2", "header.csv"}, exitFailure, "row 1: invalid card number: byte 1 is not an ASCII digit, space or dash; if row 1 is a header row, add --header\n"},
	}
	for _, tt := range tests {
		r := w.run(t, "", tt.args...)
		checkExit(t, r, tt.code)
		checkStderr(t, r, tt.want)
	}
}

// TestImportCSVNeverCopiesAValue checks the inputs where a card number could
// reach the output in a column that import copies.
func TestImportCSVNeverCopiesAValue(t *testing.T) {
	w := newWorkspace(t)
	pans := luhnPANs(t)
	p, q := pans[0], pans[1]

	tests := []struct {
		name  string
		input string
		args  []string
		code  int
		want  string
	}{
		{"column past the first row", "alice," + p + "\n", []string{"--column", "5"}, exitUsage,
			`--column "5" is past the 2 columns of the first row`},
		{"column past the header", "name,pan\nalice," + p + "\n", []string{"--column", "3", "--header"}, exitUsage,
			`--column "3" is past the 2 columns of the header row`},
		{"card number as the column", "alice," + p + "\n", []string{"--column", p}, exitUsage,
			"is past the 2 columns of the first row"},
		{"data row taken as the header", "alice," + p + "\n", []string{"--column", "2", "--header"}, exitFailure,
			"column 2 of the header row contains what could be a card number; if the first row is data, leave out --header"},
		{"CR line endings", "alice," + p + "\rbob," + q + "\r", []string{"--column", "2"}, exitFailure,
			"row 1: row has a carriage return inside a field, as in a file with CR line endings; all of its fields are left empty"},
		{"CR line endings after a header", "name,card\rDoe," + p + "\rRoe," + q + "\r", []string{"--column", "2", "--header"}, exitFailure,
			"the header row has a carriage return inside a field"},
		{"a shift in the first row", "Smith, John," + p + "\nDoe," + q + "\n", []string{"--column", "2"}, exitFailure,
			"row 1: column 3, which import copies, contains what could be a card number; all of its fields are left empty"},
		{"quotes that join rows", "card,note\n" + p + ",\"oops\n" + q + ",ok\nx,TV 55\"\n", []string{"--column", "card"}, exitFailure,
			"row 2: column 2, which import copies, contains what could be a card number; all of its fields are left empty"},
		{"a second card column", "pan,backup\n" + p + "," + q + "\n", []string{"--column", "pan"}, exitFailure,
			"row 2: column 2, which import copies, contains what could be a card number"},
		{"a number grouped by dots", "pan,note\n" + p + ",card " + q[:4] + "." + q[4:8] + "." + q[8:] + "\n", []string{"--column", "pan"}, exitFailure,
			"row 2: column 2, which import copies, contains what could be a card number"},
		{"a number grouped by slashes, not Luhn-checked", "pan,note\n" + p + "," + q[:4] + "/" + q[4:8] + "/" + q[8:len(q)-1] + "\n", []string{"--column", "pan", "--allow-non-luhn"}, exitFailure,
			"row 2: column 2, which import copies, contains what could be a card number"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := os.WriteFile(w.path("in.csv"), []byte(tt.input), 0o600); err != nil {
				t.Fatal(err)
			}
			r := w.run(t, "", append(append([]string{"import", "--csv"}, tt.args...), "in.csv")...)
			checkExit(t, r, tt.code)
			checkStderr(t, r, tt.want)
			for _, pan := range []string{p, q} {
				if strings.Contains(r.stdout, pan) || strings.Contains(r.stderr, pan) {
					t.Errorf("the output contains the card number %s", masked(pan))
				}
			}
		})
	}
}

// TestImportCSVMultilineRowTooLong checks the row limit on a quoted field
// of many short lines, which the CSV reader reads line by line.
func TestImportCSVMultilineRowTooLong(t *testing.T) {
	w := newWorkspace(t)
	pan := luhnPANs(t)[0]
	field := strings.Repeat(strings.Repeat("x", 99)+"\n", maxCSVRowBytes/100+100)
	input := "a," + pan + "\nb,\"" + field + "\"\nc," + pan + "\n"
	if err := os.WriteFile(w.path("long.csv"), []byte(input), 0o600); err != nil {
		t.Fatal(err)
	}

	r := w.run(t, "", "import", "--csv", "--column", "2", "long.csv")
	checkExit(t, r, exitFailure)
	checkStderr(t, r, "read input after row 1: a row is longer than the maximum of "+strconv.Itoa(maxCSVRowBytes)+" bytes")
	if rows := parseCSV(t, r); len(rows) != 1 {
		t.Errorf("import wrote %d rows, want the 1 row before the long one", len(rows))
	}
}

// TestImportMasksAFileNameOfDigits checks that a card number given as the
// file name by mistake is masked in the error.
// TestImportScreensNonLuhnNumbers checks that with --allow-non-luhn, a
// header or a copied field with 12 digits or more counts as a card number,
// whether or not it passes the Luhn check.
func TestImportScreensNonLuhnNumbers(t *testing.T) {
	w := newWorkspace(t)
	var nonLuhn []string
	for _, p := range testPANs {
		if !p.luhnValid {
			nonLuhn = append(nonLuhn, p.pan)
		}
	}
	if len(nonLuhn) < 2 {
		t.Fatalf("test numbers have %d rows that fail the Luhn check, want 2", len(nonLuhn))
	}

	header := w.run(t, "Doe,"+nonLuhn[0]+"\n", "import", "--csv", "--header", "--column", "2", "--allow-non-luhn")
	checkExit(t, header, exitFailure)
	checkStderr(t, header, "column 2 of the header row contains what could be a card number")

	copied := w.run(t, "pan,note\n"+nonLuhn[0]+",call 0123-456-789-012\n", "import", "--csv", "--column", "pan", "--allow-non-luhn")
	checkExit(t, copied, exitFailure)
	checkStderr(t, copied, "row 2: column 2, which import copies, contains what could be a card number")
	if rows := parseCSV(t, copied); len(rows) != 2 || strings.Join(rows[1], "|") != "|" {
		t.Errorf("import wrote %q, want the header and an empty row", maskCardNumbers(copied.stdout))
	}
}

// TestImportCSVTooManyFields checks the bound on fields per row.
func TestImportCSVTooManyFields(t *testing.T) {
	w := newWorkspace(t)
	pan := luhnPANs(t)[0]
	input := "a," + pan + "\n" + strings.Repeat(",", maxCSVFields) + "\n"

	r := w.run(t, input, "import", "--csv", "--column", "2")
	checkExit(t, r, exitFailure)
	checkStderr(t, r, "read input after row 1: a row has more than the maximum of "+strconv.Itoa(maxCSVFields)+" fields")
}

func TestImportMasksAFileNameOfDigits(t *testing.T) {
	w := newWorkspace(t)
	pan := luhnPANs(t)[0]

	r := w.run(t, "", "import", pan)
	checkExit(t, r, exitFailure)
	checkStderr(t, r, "no such file or directory")
}

// TestImportCSVInvalidRow checks that a row that is not valid CSV fails
// alone, with every field empty, and that import goes on with the next row.
func TestImportCSVInvalidRow(t *testing.T) {
	w := newWorkspace(t)
	pans := luhnPANs(t)
	input := "card,note\n" +
		pans[0] + ",ok\n" +
		pans[1] + ",TV 55\" wide\n" + // a quote inside an unquoted field
		pans[2] + ",ok\n" +
		pans[3] + ",\"never closed\n" +
		pans[4] + ",swallowed\n"

	r := w.run(t, input, "import", "--csv", "--column", "card")
	checkExit(t, r, exitFailure)
	checkStderr(t, r, "row 3: row is not valid CSV (parse error on line 3, column ")
	checkStderr(t, r, "bare \" in non-quoted-field); all of its fields are left empty")
	checkStderr(t, r, "row 5: row is not valid CSV (record on line 5; parse error on line 6, column ")
	checkStderr(t, r, "extraneous or missing \" in quoted-field); line 6 was read as part of it, so it is not imported; all of its fields are left empty")
	checkStderr(t, r, "2 of 4 rows failed; their tokens are empty")

	rows := parseCSV(t, r)
	if len(rows) != 5 {
		t.Fatalf("import wrote %d rows, want 5 (header, 2 tokens, 2 failures)", len(rows))
	}
	checkEmptyRows(t, rows, 2, 2, 4)

	tokens := []string{rows[1][0], rows[3][0]}
	if tokens[0] == "" || tokens[1] == "" {
		t.Fatalf("rows 2 and 4 have no token")
	}
	values := w.run(t, strings.Join(tokens, "\n")+"\n", "detokenize")
	checkExit(t, values, exitOK)
	if values.stdout != pans[0]+"\n"+pans[2]+"\n" {
		t.Errorf("the tokens of rows 2 and 4 do not detokenize to their card numbers")
	}
	checkNoCardNumbers(t, r, pans)

	unclosed := w.run(t, "card,note\n"+pans[0]+",\"open\n"+pans[1]+",a\n"+pans[2]+",b\n", "import", "--csv", "--column", "card")
	checkExit(t, unclosed, exitFailure)
	checkStderr(t, unclosed, "lines 3 to 4 were read as part of it, so they are not imported")
	checkNoCardNumbers(t, unclosed, pans)
}

// TestImportCSVInvalidFirstRows checks that rows that are not valid CSV
// before the first that is fail alone, with the width of that row.
func TestImportCSVInvalidFirstRows(t *testing.T) {
	w := newWorkspace(t)
	pans := luhnPANs(t)
	input := pans[0] + ",TV 55\" wide\n" + pans[1] + ",a\"b\n" + pans[2] + ",ok\n"

	r := w.run(t, input, "import", "--csv", "--column", "1")
	checkExit(t, r, exitFailure)
	checkStderr(t, r, "row 1: row is not valid CSV (parse error on line 1, column ")
	checkStderr(t, r, "row 2: row is not valid CSV (parse error on line 2, column ")
	checkStderr(t, r, "2 of 3 rows failed; their tokens are empty")

	rows := parseCSV(t, r)
	if len(rows) != 3 {
		t.Fatalf("import wrote %d rows, want 3", len(rows))
	}
	checkEmptyRows(t, rows, 2, 0, 1)
	if rows[2][0] == "" || rows[2][1] != "ok" {
		t.Errorf("row 3 = %q, want a token and ok", maskCardNumbers(strings.Join(rows[2], "|")))
	}

	only := w.run(t, pans[0]+",x\"y\n", "import", "--csv", "--column", "1")
	checkExit(t, only, exitFailure)
	checkStderr(t, only, "row 1: row is not valid CSV")
	checkStderr(t, only, "tokenvault: 1 of 1 row failed")
	if only.stdout != "\n" {
		t.Errorf("import of one invalid row wrote %q, want one empty line", maskCardNumbers(only.stdout))
	}

	checkNoCardNumbers(t, r, pans)
	checkNoCardNumbers(t, only, pans)
}

// checkEmptyRows checks that the rows of rows at indexes have width fields,
// all empty.
func checkEmptyRows(t *testing.T, rows [][]string, width int, indexes ...int) {
	t.Helper()
	for _, i := range indexes {
		if len(rows[i]) != width || strings.Join(rows[i], "") != "" {
			t.Errorf("row %d = %q, want %d empty fields", i+1, maskCardNumbers(strings.Join(rows[i], "|")), width)
		}
	}
}

// checkNoCardNumbers checks that neither output of r contains one of pans.
func checkNoCardNumbers(t *testing.T, r result, pans []string) {
	t.Helper()
	for _, pan := range pans {
		if strings.Contains(r.stdout, pan) || strings.Contains(r.stderr, pan) {
			t.Errorf("the output contains the card number %s", masked(pan))
		}
	}
}

// TestImportColumnNamesMasked checks that the list of header names in an
// error masks a card number split by characters the screen does not join.
func TestImportColumnNamesMasked(t *testing.T) {
	w := newWorkspace(t)
	pan := luhnPANs(t)[0]
	var dotted []string
	for i := 0; i < len(pan); i += 4 {
		dotted = append(dotted, pan[i:min(i+4, len(pan))])
	}
	header := "card," + strings.Join(dotted, ":") + ",note 12345\n"
	if err := os.WriteFile(w.path("in.csv"), []byte(header+"1,2,3\n"), 0o600); err != nil {
		t.Fatal(err)
	}

	r := w.run(t, "", "import", "--csv", "--column", "pan", "in.csv")
	checkExit(t, r, exitUsage)
	checkStderr(t, r, `its columns are "card", "`+strings.Repeat("*", 4)+":")
	checkStderr(t, r, `"note 12345"`)
	for _, group := range dotted {
		if strings.Contains(r.stderr, group) {
			t.Errorf("the message contains the digits %s of a card number in the header", group)
		}
	}
}
