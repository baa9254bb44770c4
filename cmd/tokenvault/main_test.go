package main

import (
	"bytes"
	"context"
	"encoding/csv"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/tokenvault/tokenvault"
)

// binary is the command, built once by TestMain.
var binary string

// testPANs are the rows of testdata/test-pans.csv: numbers that card networks
// and payment processors publish as test card numbers. Every run checks that
// none of them appears in its output, except on the standard output of
// detokenize.
var testPANs []testPAN

type testPAN struct {
	brand     string
	pan       string
	luhnValid bool
}

// childTimeout bounds one run of the command. Builds with the race detector
// run several times slower.
const childTimeout = 2 * time.Minute

func TestMain(m *testing.M) {
	code, err := buildAndRun(m)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	os.Exit(code)
}

func buildAndRun(m *testing.M) (int, error) {
	pans, err := readTestPANs(filepath.Join("..", "..", "testdata", "test-pans.csv"))
	if err != nil {
		return 0, err
	}
	testPANs = pans

	dir, err := os.MkdirTemp("", "tokenvault-cmd-test-")
	if err != nil {
		return 0, err
	}
	defer os.RemoveAll(dir)

	binary = filepath.Join(dir, "tokenvault")
	if runtime.GOOS == "windows" {
		binary += ".exe"
	}
	args := []string{"build", "-o", binary}
	if raceEnabled {
		args = append(args, "-race")
	}
	build := exec.Command("go", append(args, ".")...)
	if out, err := build.CombinedOutput(); err != nil {
		return 0, fmt.Errorf("go build: %v\n%s", err, out)
	}
	return m.Run(), nil
}

func readTestPANs(path string) ([]testPAN, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	rows, err := csv.NewReader(f).ReadAll()
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", path, err)
	}

	if len(rows) == 0 || strings.Join(rows[0], ",") != "brand,pan,length,luhn_valid" {
		return nil, fmt.Errorf("%s: header is not brand,pan,length,luhn_valid", path)
	}
	var pans []testPAN
	for i, row := range rows[1:] {
		length, err := strconv.Atoi(row[2])
		if err != nil || length != len(row[1]) {
			return nil, fmt.Errorf("%s line %d: length column does not match the number", path, i+2)
		}
		pans = append(pans, testPAN{brand: row[0], pan: row[1], luhnValid: row[3] == "true"})
	}
	if len(pans) != 47 {
		return nil, fmt.Errorf("%s has %d rows, want 47", path, len(pans))
	}
	return pans, nil
}

// workspace is a working directory and environment for runs of the command.
type workspace struct {
	dir string
	env []string
}

// newWorkspace returns a workspace in a new temporary directory, with the
// test process's environment minus every TOKENVAULT_ variable.
func newWorkspace(t *testing.T) *workspace {
	t.Helper()
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "TOKENVAULT_") {
			env = append(env, kv)
		}
	}
	if raceEnabled {
		// A binary built with -race sleeps 1s before it exits by default.
		env = append(env, "GORACE=atexit_sleep_ms=0 "+os.Getenv("GORACE"))
	}
	return &workspace{dir: t.TempDir(), env: env}
}

// with returns a copy of w with extra environment variables, "NAME=value".
func (w *workspace) with(env ...string) *workspace {
	return &workspace{dir: w.dir, env: append(append([]string(nil), w.env...), env...)}
}

func (w *workspace) path(name string) string { return filepath.Join(w.dir, name) }

// result is the outcome of one run of the command.
type result struct {
	args   []string
	stdout string
	stderr string
	code   int
}

func (r result) String() string {
	return fmt.Sprintf("tokenvault %s: exit %d\nstderr:\n%s", strings.Join(r.args, " "), r.code, r.stderr)
}

// run runs the command with stdin as its standard input and checks that its
// output contains no card number and no key, except where the command's
// purpose is to print them.
func (w *workspace) run(t *testing.T, stdin string, args ...string) result {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), childTimeout)
	defer cancel()

	cmd := exec.CommandContext(ctx, binary, args...)
	cmd.Dir = w.dir
	cmd.Env = w.env
	cmd.Stdin = strings.NewReader(stdin)
	var stdout, stderr bytes.Buffer
	cmd.Stdout = &stdout
	cmd.Stderr = &stderr
	err := cmd.Run()

	r := result{args: args, stdout: stdout.String(), stderr: stderr.String()}
	if exitErr, ok := err.(*exec.ExitError); ok {
		r.code = exitErr.ExitCode()
	} else if err != nil {
		t.Fatalf("run tokenvault %s: %v", strings.Join(args, " "), err)
	}
	if strings.Contains(r.stderr, "WARNING: DATA RACE") {
		t.Errorf("tokenvault %s: the race detector reported a data race:\n%s", strings.Join(args, " "), r.stderr)
	}
	w.checkNoSecrets(t, r)
	return r
}

// checkNoSecrets fails the test if the output of r contains a test card
// number or a key of the workspace. detokenize may print card numbers on
// standard output, and keygen keys.
func (w *workspace) checkNoSecrets(t *testing.T, r result) {
	t.Helper()
	command := ""
	if len(r.args) > 0 {
		command = r.args[0]
	}

	for _, p := range testPANs {
		if strings.Contains(r.stderr, p.pan) {
			t.Errorf("tokenvault %s: standard error contains the card number %s", strings.Join(r.args, " "), masked(p.pan))
		}
		if command != "detokenize" && strings.Contains(r.stdout, p.pan) {
			t.Errorf("tokenvault %s: standard output contains the card number %s", strings.Join(r.args, " "), masked(p.pan))
		}
	}

	for _, key := range w.keys(t) {
		if strings.Contains(r.stderr, key) {
			t.Errorf("tokenvault %s: standard error contains a key", strings.Join(r.args, " "))
		}
		if command != "keygen" && strings.Contains(r.stdout, key) {
			t.Errorf("tokenvault %s: standard output contains a key", strings.Join(r.args, " "))
		}
	}
}

// keys returns the keys in the workspace's environment and in the key files
// of its directory and their subdirectories.
func (w *workspace) keys(t *testing.T) []string {
	t.Helper()
	var text strings.Builder
	for _, kv := range w.env {
		if strings.HasPrefix(kv, tokenvault.EnvKeys+"=") || strings.HasPrefix(kv, tokenvault.EnvIndexKey+"=") {
			text.WriteString(kv + "\n")
		}
	}
	files, _ := filepath.Glob(filepath.Join(w.dir, "*.key"))
	more, _ := filepath.Glob(filepath.Join(w.dir, "*", "*.key"))
	for _, f := range append(files, more...) {
		b, err := os.ReadFile(f)
		if err == nil {
			text.Write(b)
			text.WriteByte('\n')
		}
	}
	return parseKeyLines(text.String())
}

// parseKeyLines returns every key in lines of the key file format.
func parseKeyLines(text string) []string {
	var keys []string
	for _, line := range strings.Split(text, "\n") {
		_, value, ok := strings.Cut(line, "=")
		if !ok || strings.HasPrefix(line, "#") {
			continue
		}
		for _, key := range strings.Split(value, ",") {
			if key = strings.TrimSpace(key); key != "" {
				keys = append(keys, key)
			}
		}
	}
	return keys
}

// keyFileValues returns the TOKENVAULT_KEYS and TOKENVAULT_INDEX_KEY values
// of a key file.
func keyFileValues(t *testing.T, keyFile string) (keys, indexKey string) {
	t.Helper()
	for _, line := range strings.Split(keyFile, "\n") {
		name, value, ok := strings.Cut(line, "=")
		switch {
		case !ok:
		case name == tokenvault.EnvKeys:
			keys = value
		case name == tokenvault.EnvIndexKey:
			indexKey = value
		}
	}
	if keys == "" || indexKey == "" {
		t.Fatalf("key file has no %s or %s line", tokenvault.EnvKeys, tokenvault.EnvIndexKey)
	}
	return keys, indexKey
}

// generateKeys runs keygen and returns the TOKENVAULT_KEYS and
// TOKENVAULT_INDEX_KEY values it printed.
func generateKeys(t *testing.T, w *workspace) (keys, indexKey string) {
	t.Helper()
	r := w.run(t, "", "keygen")
	if r.code != 0 {
		t.Fatalf("%v", r)
	}
	return keyFileValues(t, r.stdout)
}

func masked(pan string) string {
	return strings.Repeat("*", len(pan)-4) + pan[len(pan)-4:]
}

// cardNumberPattern matches what may be a card number in output that a
// failure message shows.
var cardNumberPattern = regexp.MustCompile(`[0-9]{12,19}`)

// maskCardNumbers returns s with every digit run that may be a card number
// masked, so that failure messages never show one.
func maskCardNumbers(s string) string {
	return cardNumberPattern.ReplaceAllStringFunc(s, masked)
}

// checkExit reports an error unless r exited with code.
func checkExit(t *testing.T, r result, code int) {
	t.Helper()
	if r.code != code {
		t.Errorf("tokenvault %s: exit %d, want %d\nstderr:\n%s", strings.Join(r.args, " "), r.code, code, r.stderr)
	}
}

// checkStderr reports an error unless the standard error of r contains text.
func checkStderr(t *testing.T, r result, text string) {
	t.Helper()
	if !strings.Contains(r.stderr, text) {
		t.Errorf("tokenvault %s: stderr does not contain %q:\n%s", strings.Join(r.args, " "), text, r.stderr)
	}
}

// checkOutputLines reports an error unless the standard output of r has the
// lines want. Failure messages mask card numbers.
func checkOutputLines(t *testing.T, r result, want []string) {
	t.Helper()
	got := strings.Split(strings.TrimSuffix(r.stdout, "\n"), "\n")
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("tokenvault %s: output lines = %q, want %q", strings.Join(r.args, " "),
			maskCardNumbers(strings.Join(got, "|")), maskCardNumbers(strings.Join(want, "|")))
	}
}

// lines returns the lines of output, without the last line ending.
func lines(output string) []string {
	output = strings.TrimSuffix(output, "\n")
	if output == "" {
		return nil
	}
	return strings.Split(output, "\n")
}

// tokenize runs tokenize on the values, one per line, and returns the tokens.
// It fails the test unless every line succeeds.
func tokenize(t *testing.T, w *workspace, values []string, flags ...string) []string {
	t.Helper()
	r := w.run(t, strings.Join(values, "\n")+"\n", append([]string{"tokenize"}, flags...)...)
	if r.code != 0 {
		t.Fatalf("%v", r)
	}
	tokens := lines(r.stdout)
	if len(tokens) != len(values) {
		t.Fatalf("tokenize printed %d tokens for %d values", len(tokens), len(values))
	}
	return tokens
}

// detokenize runs detokenize on the tokens and returns the values. It fails
// the test unless every line succeeds.
func detokenize(t *testing.T, w *workspace, tokens []string, flags ...string) []string {
	t.Helper()
	r := w.run(t, strings.Join(tokens, "\n")+"\n", append([]string{"detokenize"}, flags...)...)
	if r.code != 0 {
		t.Fatalf("%v", r)
	}
	values := lines(r.stdout)
	if len(values) != len(tokens) {
		t.Fatalf("detokenize printed %d values for %d tokens", len(values), len(tokens))
	}
	return values
}

func fileMode(t *testing.T, path string) os.FileMode {
	t.Helper()
	info, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	return info.Mode().Perm()
}

func exists(path string) bool {
	_, err := os.Stat(path)
	return err == nil
}

func TestKeygenStdout(t *testing.T) {
	w := newWorkspace(t)
	r := w.run(t, "", "keygen")
	if r.code != 0 {
		t.Fatalf("%v", r)
	}

	keys, indexKey := keyFileValues(t, r.stdout)
	if _, err := tokenvault.ParseKeyRing(keys, indexKey); err != nil {
		t.Errorf("keygen output does not parse as a key ring: %v", err)
	}
	if other, _ := generateKeys(t, w); other == keys {
		t.Errorf("two runs of keygen printed the same key")
	}
	if entries, _ := os.ReadDir(w.dir); len(entries) != 0 {
		t.Errorf("keygen without --out created %d files", len(entries))
	}
}

func TestKeygenOutFile(t *testing.T) {
	w := newWorkspace(t)
	r := w.run(t, "", "keygen", "--out", "vault.key")
	if r.code != 0 {
		t.Fatalf("%v", r)
	}
	if r.stdout != "" {
		t.Errorf("keygen --out printed %q on standard output, want nothing", r.stdout)
	}
	if runtime.GOOS != "windows" {
		if mode := fileMode(t, w.path("vault.key")); mode != 0o600 {
			t.Errorf("key file mode = %#o, want 0600", mode)
		}
	}
	if _, err := tokenvault.LoadKeyFile(w.path("vault.key")); err != nil {
		t.Errorf("LoadKeyFile(keygen output) err = %v", err)
	}
	before, _ := os.ReadFile(w.path("vault.key"))

	r = w.run(t, "", "keygen", "--out", "vault.key")
	if r.code != 1 {
		t.Errorf("keygen --out over an existing file: exit %d, want 1", r.code)
	}
	if !strings.Contains(r.stderr, "already exists") {
		t.Errorf("keygen --out over an existing file: stderr = %q, want it to say the file already exists", r.stderr)
	}
	if after, _ := os.ReadFile(w.path("vault.key")); !bytes.Equal(before, after) {
		t.Errorf("keygen --out changed an existing key file")
	}
}

func TestFirstRunCreatesKeyFile(t *testing.T) {
	w := newWorkspace(t)
	pan := testPANs[0].pan
	r := w.run(t, pan+"\n", "tokenize")
	if r.code != 0 {
		t.Fatalf("%v", r)
	}

	keyPath := w.path("tokenvault.key")
	if !exists(keyPath) {
		t.Fatalf("first run did not create ./tokenvault.key")
	}
	if runtime.GOOS != "windows" {
		if mode := fileMode(t, keyPath); mode != 0o600 {
			t.Errorf("./tokenvault.key mode = %#o, want 0600", mode)
		}
	}
	if n := strings.Count(r.stderr, "created the key file"); n != 1 {
		t.Errorf("first run printed the key file notice %d times, want once; stderr:\n%s", n, r.stderr)
	}
	for _, want := range []string{"beside", "anyone who can read both files", "--key-file", tokenvault.EnvKeys, tokenvault.EnvIndexKey} {
		if !strings.Contains(r.stderr, want) {
			t.Errorf("first run notice does not contain %q; stderr:\n%s", want, r.stderr)
		}
	}

	token := strings.TrimSpace(r.stdout)
	r = w.run(t, token+"\n", "detokenize")
	checkExit(t, r, 0)
	checkOutputLines(t, r, []string{pan})
	if strings.Contains(r.stderr, "created the key file") {
		t.Errorf("second run printed the key file notice again")
	}
}

func TestDatabaseWithoutKeyFails(t *testing.T) {
	w := newWorkspace(t)
	token := tokenize(t, w, []string{testPANs[0].pan})[0]
	if err := os.Remove(w.path("tokenvault.key")); err != nil {
		t.Fatal(err)
	}

	for _, args := range [][]string{{"tokenize"}, {"detokenize"}, {"inspect", token}, {"rewrap"}} {
		r := w.run(t, testPANs[1].pan+"\n", args...)
		if r.code != 1 {
			t.Errorf("%s without a key: exit %d, want 1", args[0], r.code)
		}
		if !strings.Contains(r.stderr, "exists but no key was found") {
			t.Errorf("%s without a key: stderr = %q, want it to say that no key was found", args[0], r.stderr)
		}
		if r.stdout != "" {
			t.Errorf("%s without a key printed %q on standard output", args[0], r.stdout)
		}
		if exists(w.path("tokenvault.key")) {
			t.Fatalf("%s created a new key for an existing database", args[0])
		}
	}
}

func TestMissingDatabaseFails(t *testing.T) {
	w := newWorkspace(t)
	for _, args := range [][]string{{"detokenize"}, {"suspend", "tok_x"}, {"inspect", "tok_x"}, {"rewrap"}} {
		r := w.run(t, "tok_x\n", args...)
		if r.code != 1 {
			t.Errorf("%s without a database: exit %d, want 1", args[0], r.code)
		}
		if !strings.Contains(r.stderr, "does not exist") {
			t.Errorf("%s without a database: stderr = %q, want it to say the database does not exist", args[0], r.stderr)
		}
	}
	for _, name := range []string{"tokenvault.db", "tokenvault.key"} {
		if exists(w.path(name)) {
			t.Errorf("a command other than tokenize created %s", name)
		}
	}
}

func TestKeysAndDatabaseFromEnvironment(t *testing.T) {
	base := newWorkspace(t)
	keys, indexKey := generateKeys(t, base)
	if err := os.Mkdir(base.path("data"), 0o700); err != nil {
		t.Fatal(err)
	}
	w := base.with(tokenvault.EnvKeys+"="+keys, tokenvault.EnvIndexKey+"="+indexKey, "TOKENVAULT_DB=data/vault.db")

	pans := []string{testPANs[0].pan, testPANs[1].pan}
	r := w.run(t, strings.Join(pans, "\n")+"\n", "tokenize")
	if r.code != 0 {
		t.Fatalf("%v", r)
	}
	if strings.Contains(r.stderr, "created the key file") {
		t.Errorf("tokenize with keys in the environment created a key file")
	}
	if !exists(w.path("data/vault.db")) {
		t.Errorf("tokenize did not create the database at $TOKENVAULT_DB")
	}
	for _, name := range []string{"tokenvault.db", "tokenvault.key", "data/vault.key"} {
		if exists(w.path(name)) {
			t.Errorf("tokenize with keys in the environment created %s", name)
		}
	}

	tokens := lines(r.stdout)
	if got := detokenize(t, w, tokens); strings.Join(got, ",") != strings.Join(pans, ",") {
		t.Errorf("detokenize with keys from the environment returned other values")
	}

	otherKeys, otherIndex := generateKeys(t, base)
	wrong := base.with(tokenvault.EnvKeys+"="+otherKeys, tokenvault.EnvIndexKey+"="+otherIndex, "TOKENVAULT_DB=data/vault.db")
	r = wrong.run(t, tokens[0]+"\n", "detokenize")
	checkExit(t, r, 1)
	checkStderr(t, r, "keys do not match")

	partial := base.with(tokenvault.EnvKeys+"="+keys, "TOKENVAULT_DB=data/vault.db")
	r = partial.run(t, tokens[0]+"\n", "detokenize")
	checkExit(t, r, 1)
	checkStderr(t, r, tokenvault.EnvIndexKey)
}

func TestDatabaseFlagOverridesEnvironment(t *testing.T) {
	w := newWorkspace(t).with("TOKENVAULT_DB=from-env.db")
	tokenize(t, w, []string{testPANs[0].pan}, "--db", "from-flag.db")
	for _, name := range []string{"from-flag.db", "from-flag.key"} {
		if !exists(w.path(name)) {
			t.Errorf("tokenize --db from-flag.db did not create %s", name)
		}
	}
	if exists(w.path("from-env.db")) {
		t.Errorf("tokenize --db also used $TOKENVAULT_DB")
	}
}

func TestKeyFileFlag(t *testing.T) {
	w := newWorkspace(t)
	if err := os.Mkdir(w.path("secrets"), 0o700); err != nil {
		t.Fatal(err)
	}
	if r := w.run(t, "", "keygen", "--out", "secrets/vault.key"); r.code != 0 {
		t.Fatalf("%v", r)
	}

	pan := testPANs[2].pan
	r := w.run(t, pan+"\n", "tokenize", "--key-file", "secrets/vault.key")
	if r.code != 0 {
		t.Fatalf("%v", r)
	}
	if exists(w.path("tokenvault.key")) {
		t.Errorf("tokenize --key-file created ./tokenvault.key")
	}
	token := strings.TrimSpace(r.stdout)
	if got := detokenize(t, w, []string{token}, "--key-file", "secrets/vault.key"); got[0] != pan {
		t.Errorf("detokenize --key-file returned another value")
	}

	r = w.run(t, token+"\n", "detokenize")
	checkExit(t, r, 1)
	checkStderr(t, r, "no key was found")
}

func TestUsageErrors(t *testing.T) {
	tests := []struct {
		name string
		args []string
	}{
		{"no command", nil},
		{"unknown command", []string{"frobnicate"}},
		{"unknown flag", []string{"tokenize", "--no-such-flag"}},
		{"unknown format", []string{"tokenize", "--format", "fancy"}},
		{"unknown type", []string{"tokenize", "--type", "blob"}},
		{"zero expiry", []string{"tokenize", "--expires-in", "0"}},
		{"negative expiry", []string{"tokenize", "--expires-in", "-5m"}},
		{"invalid expiry", []string{"tokenize", "--expires-in", "soon"}},
		{"scope without deterministic", []string{"tokenize", "--scope", "payments"}},
		{"card format for data", []string{"tokenize", "--type", "data", "--format", "card"}},
		{"luhn flag for data", []string{"tokenize", "--type", "data", "--allow-non-luhn"}},
		{"tokenize argument", []string{"tokenize", "cards.txt"}},
		{"detokenize argument", []string{"detokenize", "tok_x"}},
		{"suspend without token", []string{"suspend", "--reason", "lost"}},
		{"activate without token", []string{"activate"}},
		{"close without token", []string{"close"}},
		{"inspect without token", []string{"inspect"}},
		{"two tokens", []string{"suspend", "tok_a", "tok_b"}},
		{"zero batch", []string{"rewrap", "--batch", "0"}},
		{"keygen argument", []string{"keygen", "vault.key"}},
		{"help for unknown command", []string{"help", "frobnicate"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			w := newWorkspace(t)
			r := w.run(t, testPANs[0].pan+"\n", tt.args...)
			if r.code != 2 {
				t.Errorf("tokenvault %s: exit %d, want 2\n%v", strings.Join(tt.args, " "), r.code, r)
			}
			if r.stderr == "" {
				t.Errorf("tokenvault %s: standard error is empty, want the reason", strings.Join(tt.args, " "))
			}
			if r.stdout != "" {
				t.Errorf("tokenvault %s: standard output = %q, want nothing", strings.Join(tt.args, " "), r.stdout)
			}
			for _, name := range []string{"tokenvault.db", "tokenvault.key"} {
				if exists(w.path(name)) {
					t.Errorf("tokenvault %s created %s", strings.Join(tt.args, " "), name)
				}
			}
		})
	}
}

func TestHelp(t *testing.T) {
	w := newWorkspace(t)
	for _, args := range [][]string{{"help"}, {"-h"}, {"--help"}} {
		r := w.run(t, "", args...)
		if r.code != 0 {
			t.Errorf("tokenvault %s: exit %d, want 0", args[0], r.code)
		}
		for _, cmd := range commands {
			if !strings.Contains(r.stdout, "Usage: tokenvault "+cmd.name) {
				t.Errorf("tokenvault %s: output has no usage line for %s", args[0], cmd.name)
			}
		}
		for _, flag := range []string{"--db", "--key-file", "--allow-non-luhn", "--expires-in", "--batch", "--reason", "--out"} {
			if !strings.Contains(r.stdout, flag) {
				t.Errorf("tokenvault %s: output does not describe %s", args[0], flag)
			}
		}
	}

	r := w.run(t, "", "tokenize", "-h")
	checkExit(t, r, 0)
	if !strings.Contains(r.stdout, "Usage: tokenvault tokenize") {
		t.Errorf("tokenvault tokenize -h does not print the usage of tokenize:\n%s", r.stdout)
	}
	if strings.Contains(r.stdout, "Usage: tokenvault detokenize") {
		t.Errorf("tokenvault tokenize -h also prints the usage of detokenize")
	}
}

// TestArgumentsNotEchoed passes a card number where a flag value, a command
// or a token belongs, as a hurried user might, and checks that no message
// repeats it.
func TestArgumentsNotEchoed(t *testing.T) {
	w := newWorkspace(t)
	tokenize(t, w, []string{"4242424242424242"})
	const pan = "5555555555554444"

	cases := [][]string{
		{pan},
		{"tokenize", pan},
		{"detokenize", pan},
		{"keygen", pan},
		{"rewrap", pan},
		{"tokenize", "--format", pan},
		{"tokenize", "--type", pan},
		{"tokenize", "--expires-in", pan},
		{"rewrap", "--batch", "5555-5555-5555-4444"},
		{"tokenize", "--format", "5555 5555 5555 4444"},
		{"inspect", pan},
		{"suspend", pan},
		{"close", "--reason", "x", pan},
		{"help", pan},
	}
	for _, args := range cases {
		r := w.run(t, "", args...)
		if r.code == 0 {
			t.Errorf("tokenvault %s: exit 0, want a failure", strings.Join(args, " "))
		}
		output := r.stdout + r.stderr
		if strings.Contains(output, pan) || strings.Contains(output, "5555-5555") || strings.Contains(output, "5555 5555") {
			t.Errorf("tokenvault %s output repeats the card number", maskCardNumbers(strings.Join(args, " ")))
		}
	}
}
