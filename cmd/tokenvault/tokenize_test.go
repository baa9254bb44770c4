package main

import (
	"bufio"
	"bytes"
	"context"
	"os/exec"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/tokenvault/tokenvault"
)

func TestTestPANsRoundTrip(t *testing.T) {
	w := newWorkspace(t)
	var luhn, nonLuhn []string
	for _, p := range testPANs {
		if p.luhnValid {
			luhn = append(luhn, p.pan)
		} else {
			nonLuhn = append(nonLuhn, p.pan)
		}
	}
	if len(nonLuhn) == 0 {
		t.Fatalf("test numbers have no row that fails the Luhn check")
	}

	tokens := tokenize(t, w, luhn)
	tokens = append(tokens, tokenize(t, w, nonLuhn, "--allow-non-luhn")...)
	pans := append(append([]string(nil), luhn...), nonLuhn...)

	for i, token := range tokens {
		pan := pans[i]
		if len(token) != len(pan) {
			t.Errorf("token of %s has %d digits, want %d", masked(pan), len(token), len(pan))
		}
		if strings.Trim(token, "0123456789") != "" {
			t.Errorf("token of %s has characters other than digits", masked(pan))
		}
		if token[len(token)-4:] != pan[len(pan)-4:] {
			t.Errorf("token of %s does not keep the last four digits", masked(pan))
		}
	}

	values := detokenize(t, w, tokens)
	matched := 0
	for i, value := range values {
		if value == pans[i] {
			matched++
		} else {
			t.Errorf("detokenize line %d returned another value than %s", i+1, masked(pans[i]))
		}
	}
	if matched != len(testPANs) {
		t.Errorf("%d of %d card numbers came back equal", matched, len(testPANs))
	}

	r := w.run(t, strings.Join(nonLuhn, "\n")+"\n", "tokenize")
	if r.code != 1 {
		t.Errorf("tokenize of non-Luhn numbers without --allow-non-luhn: exit %d, want 1", r.code)
	}
	if !strings.Contains(r.stderr, "--allow-non-luhn") {
		t.Errorf("Luhn failure message does not name --allow-non-luhn; stderr:\n%s", r.stderr)
	}
}

func TestTokenizeBadLines(t *testing.T) {
	w := newWorkspace(t)
	input := []string{
		"4111111111111111", // 1: valid
		"4111abcd11111111", // 2: letters
		"４１１１１１１１１１１１１１１１", // 3: full-width digits
		"4111111",              // 4: too short
		"4111111111111112",     // 5: fails the Luhn check
		"",                     // 6: empty
		"5555555555554444",     // 7: valid
		"4111--1111-1111-1111", // 8: two separators in a row
		"42424242424242424242", // 9: 20 digits
	}
	bad := map[int]bool{2: true, 3: true, 4: true, 5: true, 6: true, 8: true, 9: true}

	r := w.run(t, strings.Join(input, "\n")+"\n", "tokenize")
	if r.code != 1 {
		t.Errorf("tokenize with bad lines: exit %d, want 1", r.code)
	}
	output := strings.Split(strings.TrimSuffix(r.stdout, "\n"), "\n")
	if len(output) != len(input) {
		t.Fatalf("tokenize printed %d lines for %d input lines", len(output), len(input))
	}

	for i, line := range input {
		n := i + 1
		prefix := "line " + strconv.Itoa(n) + ": "
		if bad[n] {
			if output[i] != "" {
				t.Errorf("output line %d = %q, want an empty line for a bad input line", n, output[i])
			}
			if !strings.Contains(r.stderr, prefix) {
				t.Errorf("stderr has no %q message", prefix)
			}
			if line != "" && strings.Contains(r.stderr, line) {
				t.Errorf("stderr contains the content of bad line %d", n)
			}
			continue
		}
		if output[i] == "" {
			t.Errorf("output line %d is empty, want a token", n)
		}
		if strings.Contains(r.stderr, prefix) {
			t.Errorf("stderr reports valid line %d", n)
		}
	}
	for _, part := range []string{"abcd", "４", "4111111\n"} {
		if strings.Contains(r.stderr, part) {
			t.Errorf("stderr contains %q from a bad line", part)
		}
	}
	if !strings.Contains(r.stderr, "Luhn") {
		t.Errorf("stderr does not name the Luhn check for line 5:\n%s", r.stderr)
	}

	values := detokenize(t, w, []string{output[0], output[6]})
	if values[0] != input[0] {
		t.Errorf("token of line 1 did not detokenize back equal")
	}
	if values[1] != input[6] {
		t.Errorf("token of line 7 did not detokenize back equal")
	}
}

// TestManyLinesKeepOrder tokenizes more lines than are processed at once,
// with bad lines among them, and checks that every output line belongs to
// its input line.
func TestManyLinesKeepOrder(t *testing.T) {
	w := newWorkspace(t)
	var input, want []string
	for i := 0; len(input) < 20*maxLinesInFlight; i++ {
		p := testPANs[i%len(testPANs)]
		if !p.luhnValid {
			input = append(input, "bad")
			want = append(want, "")
			continue
		}
		input = append(input, p.pan)
		want = append(want, p.pan)
	}

	r := w.run(t, strings.Join(input, "\n")+"\n", "tokenize")
	checkExit(t, r, 1)
	tokens := strings.Split(strings.TrimSuffix(r.stdout, "\n"), "\n")
	if len(tokens) != len(input) {
		t.Fatalf("tokenize printed %d lines for %d input lines", len(tokens), len(input))
	}

	r = w.run(t, strings.Join(tokens, "\n")+"\n", "detokenize")
	checkExit(t, r, 1)
	checkOutputLines(t, r, want)
}

func TestTokenizeCRLF(t *testing.T) {
	w := newWorkspace(t)
	pans := []string{testPANs[0].pan, testPANs[14].pan}
	r := w.run(t, "\xef\xbb\xbf"+strings.Join(pans, "\r\n")+"\r\n", "tokenize")
	if r.code != 0 {
		t.Fatalf("%v", r)
	}
	if strings.Contains(r.stdout, "\r") {
		t.Errorf("tokenize output contains CR")
	}

	tokens := lines(r.stdout)
	r = w.run(t, strings.Join(tokens, "\r\n")+"\r\n", "detokenize")
	checkExit(t, r, 0)
	checkOutputLines(t, r, pans)
}

func TestTokenizeLastLineWithoutNewline(t *testing.T) {
	w := newWorkspace(t)
	r := w.run(t, testPANs[0].pan+"\n"+testPANs[1].pan, "tokenize")
	if r.code != 0 {
		t.Fatalf("%v", r)
	}
	if n := len(lines(r.stdout)); n != 2 {
		t.Errorf("tokenize printed %d tokens, want 2", n)
	}
}

func TestTokenizeEmptyInput(t *testing.T) {
	w := newWorkspace(t)
	r := w.run(t, "", "tokenize")
	checkExit(t, r, 0)
	if r.stdout != "" {
		t.Errorf("tokenize of no input printed %q, want nothing", r.stdout)
	}
}

func TestDeterministicTokens(t *testing.T) {
	w := newWorkspace(t)
	pan := testPANs[1].pan

	first := tokenize(t, w, []string{pan, pan}, "--deterministic")
	if first[0] != first[1] {
		t.Errorf("tokenize --deterministic returned two tokens for one number in one run")
	}
	again := tokenize(t, w, []string{pan}, "--deterministic")
	if again[0] != first[0] {
		t.Errorf("tokenize --deterministic returned another token in a second run")
	}

	scoped := tokenize(t, w, []string{pan, pan}, "--deterministic", "--scope", "payouts")
	if scoped[0] != scoped[1] {
		t.Errorf("tokenize --deterministic --scope returned two tokens for one number")
	}
	if scoped[0] == first[0] {
		t.Errorf("tokenize --deterministic returned the same token in another scope")
	}
	if random := tokenize(t, w, []string{pan}); random[0] == first[0] {
		t.Errorf("tokenize without --deterministic returned the deterministic token")
	}

	got := detokenize(t, w, []string{first[0], scoped[0]})
	if got[0] != pan {
		t.Errorf("deterministic token without scope did not detokenize to the card number")
	}
	if got[1] != pan {
		t.Errorf("deterministic token in a scope did not detokenize to the card number")
	}
}

func TestFormatCardFirstSix(t *testing.T) {
	w := newWorkspace(t)
	var pans []string
	for _, p := range testPANs[:10] {
		if len(p.pan) >= tokenvault.MinFirstSixDigits {
			pans = append(pans, p.pan)
		}
	}
	tokens := tokenize(t, w, pans, "--format", "card-first-six")

	for i, token := range tokens {
		pan := pans[i]
		if token[:6] != pan[:6] {
			t.Errorf("card-first-six token of %s does not keep the first six digits", masked(pan))
		}
		if token[len(token)-4:] != pan[len(pan)-4:] {
			t.Errorf("card-first-six token of %s does not keep the last four digits", masked(pan))
		}
		if token == pan {
			t.Errorf("card-first-six token of %s is the card number", masked(pan))
		}
	}
	if got := detokenize(t, w, tokens); strings.Join(got, ",") != strings.Join(pans, ",") {
		t.Errorf("card-first-six tokens did not detokenize back equal")
	}
}

// TestFormatCardFirstSixTooShort checks that a number too short for
// card-first-six fails its own line only, with a hint that names the flag.
func TestFormatCardFirstSixTooShort(t *testing.T) {
	w := newWorkspace(t)
	var short, long string
	for _, p := range testPANs {
		switch {
		case !p.luhnValid:
		case len(p.pan) < tokenvault.MinFirstSixDigits && short == "":
			short = p.pan
		case len(p.pan) >= tokenvault.MinFirstSixDigits && long == "":
			long = p.pan
		}
	}

	for _, command := range []string{"tokenize", "import"} {
		r := w.run(t, long+"\n"+short+"\n"+long+"\n", command, "--format", "card-first-six")
		checkExit(t, r, 1)
		checkStderr(t, r, "line 2: invalid option: format card-first-six needs a card number of at least 15 digits")
		checkStderr(t, r, "use --format card")
		got := lines(r.stdout)
		if len(got) != 3 {
			t.Fatalf("%s printed %d lines, want 3", command, len(got))
		}
		if got[0] == "" || got[2] == "" {
			t.Errorf("%s printed no token on line 1 or 3, whose numbers are long enough", command)
		}
		if got[1] != "" {
			t.Errorf("%s printed a token on line 2, whose number is too short", command)
		}
		w.checkNoSecrets(t, r)
	}
}

func TestFormatOpaque(t *testing.T) {
	w := newWorkspace(t)
	pan := testPANs[3].pan
	tokens := tokenize(t, w, []string{pan}, "--format", "opaque")
	if !strings.HasPrefix(tokens[0], "tok_") {
		t.Errorf("opaque token = %q, want the prefix tok_", tokens[0])
	}
	if got := detokenize(t, w, tokens); got[0] != pan {
		t.Errorf("opaque token did not detokenize to the card number")
	}
}

func TestTokenizeData(t *testing.T) {
	w := newWorkspace(t)
	values := []string{"IBAN DE89 3704 0044 0532 0130 00", "  spaces around  ", "ünïcödé", "a\rb"}
	tokens := tokenize(t, w, values, "--type", "data")
	for _, token := range tokens {
		if !strings.HasPrefix(token, "tok_") {
			t.Errorf("data token = %q, want the prefix tok_", token)
		}
	}
	if got := detokenize(t, w, tokens); strings.Join(got, "|") != strings.Join(values, "|") {
		t.Errorf("data tokens did not detokenize to the exact bytes: got %q", got)
	}

	r := w.run(t, "value\n\n", "tokenize", "--type", "data")
	checkExit(t, r, 1)
	checkStderr(t, r, "line 2: ")
}

func TestTokenizeLongLine(t *testing.T) {
	w := newWorkspace(t)
	long := strings.Repeat("x", maxLineBytes+10)
	r := w.run(t, "first\n"+long+"\nlast\n", "tokenize", "--type", "data")
	checkExit(t, r, 1)
	checkStderr(t, r, "line 2: line is longer than the maximum")
	if strings.Contains(r.stderr, "xxxx") {
		t.Errorf("tokenize with a long line: stderr contains the line")
	}

	output := strings.Split(strings.TrimSuffix(r.stdout, "\n"), "\n")
	if len(output) != 3 {
		t.Fatalf("tokenize printed %d lines for 3 input lines", len(output))
	}
	if output[0] == "" || output[2] == "" {
		t.Errorf("tokenize with a long line 2: lines 1 and 3 are %q and %q, want tokens", output[0], output[2])
	}
	if output[1] != "" {
		t.Errorf("tokenize with a long line 2: output line 2 = %q, want an empty line", output[1])
	}
}

func TestExpiresIn(t *testing.T) {
	w := newWorkspace(t)
	for _, value := range []string{"never", "720h", "90m"} {
		r := w.run(t, testPANs[0].pan+"\n", "tokenize", "--expires-in", value)
		if r.code != 0 {
			t.Errorf("tokenize --expires-in %s: exit %d, want 0\n%v", value, r.code, r)
		}
	}
}

// TestExpiryPastStoreLimit checks that an option that fails every line stops
// tokenize at the first line instead of reporting each line.
func TestExpiryPastStoreLimit(t *testing.T) {
	w := newWorkspace(t)
	r := w.run(t, testPANs[0].pan+"\n"+testPANs[1].pan+"\n", "tokenize", "--expires-in", "2500000h")
	checkExit(t, r, 1)
	checkStderr(t, r, "line 1: ")
	checkStderr(t, r, "--expires-in never")
	checkStderr(t, r, "stopped there")
	if strings.Contains(r.stderr, "line 2: ") {
		t.Errorf("tokenize went on to line 2 after an invalid option:\n%s", r.stderr)
	}
	if r.stdout != "" {
		t.Errorf("tokenize printed %q, want nothing", r.stdout)
	}
}

func TestDetokenizeUnknownTokens(t *testing.T) {
	w := newWorkspace(t)
	token := tokenize(t, w, []string{testPANs[0].pan})[0]

	r := w.run(t, "tok_00000000000000000000000000000000000\nnot a token\n"+token+"\n\n", "detokenize")
	checkExit(t, r, 1)
	checkOutputLines(t, r, []string{"", "", testPANs[0].pan, ""})
	for _, want := range []string{"line 1: token not found", "line 2: token not found", "line 4: line is empty"} {
		checkStderr(t, r, want)
	}
	for _, content := range []string{"not a token", "tok_000"} {
		if strings.Contains(r.stderr, content) {
			t.Errorf("detokenize stderr contains %q from an input line", content)
		}
	}
}

// TestInterruptStopsTokenize sends SIGINT while tokenize waits for more
// input, and checks that it exits and releases the database.
func TestInterruptStopsTokenize(t *testing.T) {
	if runtime.GOOS == "windows" {
		t.Skip("sending SIGINT to a child process is not supported on Windows")
	}
	w := newWorkspace(t)
	tokenize(t, w, []string{testPANs[0].pan})

	ctx, cancel := context.WithTimeout(context.Background(), childTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, binary, "tokenize")
	cmd.Dir = w.dir
	cmd.Env = w.env
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer stdin.Close()

	if _, err := stdin.Write([]byte(testPANs[1].pan + "\n")); err != nil {
		t.Fatal(err)
	}
	token, err := bufio.NewReader(stdout).ReadString('\n')
	if err != nil {
		t.Fatalf("read the first token: %v", err)
	}
	if err := cmd.Process.Signal(syscall.SIGINT); err != nil {
		t.Fatal(err)
	}

	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err = <-done:
	case <-time.After(30 * time.Second):
		cmd.Process.Kill()
		t.Fatalf("tokenize did not exit within 30s of SIGINT")
	}
	exitErr, ok := err.(*exec.ExitError)
	if !ok || exitErr.ExitCode() != 1 {
		t.Errorf("tokenize after SIGINT: %v, want exit status 1", err)
	}
	if !strings.Contains(stderr.String(), "interrupted") {
		t.Errorf("tokenize after SIGINT: stderr = %q, want it to say it was interrupted", stderr.String())
	}
	w.checkNoSecrets(t, result{args: []string{"tokenize"}, stdout: token, stderr: stderr.String()})

	// The database lock is released, so the next command opens it at once.
	if got := detokenize(t, w, []string{strings.TrimSpace(token)}); got[0] != testPANs[1].pan {
		t.Errorf("token printed before SIGINT did not detokenize to the card number")
	}
}

// TestDetokenizeWhileServeRuns checks that a command that needs the database
// explains that serve holds it.
func TestDetokenizeWhileServeRuns(t *testing.T) {
	w := newWorkspace(t)
	p := startServe(t, w, "--no-auth")

	r := w.run(t, "tok_06h465hovpcbe2rh6loskp28djvb01gq7qlg\n", "detokenize")
	checkExit(t, r, exitFailure)
	checkStderr(t, r, "is locked by another process")
	checkStderr(t, r, "stop serve or send the request to its HTTP API")

	if code := p.stop(t, syscall.SIGTERM); code != 0 {
		t.Errorf("serve exited with status %d, want 0", code)
	}
}
