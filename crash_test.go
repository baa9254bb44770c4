//go:build unix

package tokenvault_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/tokenvault/tokenvault"
	"github.com/tokenvault/tokenvault/internal/luhn"
)

// Environment variables of the crash test.
const (
	crashChildEnv  = "TOKENVAULT_CRASH_CHILD"  // the vault file, set only in the child
	crashSeedEnv   = "TOKENVAULT_CRASH_SEED"   // seed of the card numbers and kill delays
	crashBaseEnv   = "TOKENVAULT_CRASH_BASE"   // the child's first index, minus one
	crashRoundsEnv = "TOKENVAULT_CRASH_ROUNDS" // rounds to run, 20 by default
)

const (
	crashRounds     = 20
	crashWorkers    = 64      // goroutines of the child that tokenize
	crashBatchers   = 4       // goroutines of the child that call TokenizeCardBatch
	crashBatchSize  = 96      // indexes each batch call reserves; it tokenizes those of its format
	crashMinAcks    = 16      // lines the child writes before the kill delay starts
	crashRoundIndex = 1 << 24 // indexes reserved for each round
	crashDetBase    = 1 << 40 // index of the first deterministic card number
	crashDetValues  = 24      // card numbers that every round tokenizes deterministically
	crashDetScope   = "crash"
	crashMergeAfter = 256 // fingerprint log entries between merges in the child
)

// crashIssuers are real issuer prefixes with a card number length they use.
var crashIssuers = []struct {
	prefix string
	length int
}{
	{"4", 16}, {"4", 19}, {"51", 16}, {"55", 16}, {"2221", 16}, {"34", 15},
	{"37", 15}, {"6011", 16}, {"3530", 16}, {"62", 19}, {"36", 14},
}

var crashFormats = []tokenvault.Format{tokenvault.FormatCard, tokenvault.FormatCardFirstSix, tokenvault.FormatOpaque}

// crashCard returns the card number of index: a real issuer prefix, digits
// from a PCG seeded with seed and index, and a Luhn check digit. Parent and
// child derive it alike, so no card number crosses the pipe between them.
func crashCard(seed, index uint64) string {
	rng := rand.New(rand.NewPCG(seed, index))
	issuer := crashIssuers[rng.IntN(len(crashIssuers))]
	digits := []byte(issuer.prefix)
	for len(digits) < issuer.length-1 {
		digits = append(digits, byte('0'+rng.IntN(10)))
	}

	return string(append(digits, luhn.CheckDigit(digits)))
}

func crashDeterministic(index uint64) bool { return index >= crashDetBase }

// crashFormat returns the token format of index. FormatCardFirstSix falls
// back to FormatCard for numbers too short to keep six digits.
func crashFormat(index uint64, card string) tokenvault.Format {
	format := crashFormats[index%uint64(len(crashFormats))]
	if format == tokenvault.FormatCardFirstSix && len(card) < tokenvault.MinFirstSixDigits {
		return tokenvault.FormatCard
	}
	return format
}

// crashMask returns s with every run of 12 or more digits, which may be a card
// number, replaced, so that child output can go into a failure message.
func crashMask(s string) string {
	return regexp.MustCompile(`[0-9]{12,}`).ReplaceAllString(s, "<digits>")
}

// TestCrash kills a child process that tokenizes into a bbolt vault with
// SIGKILL at a random moment, then checks that every token the child
// reported survived, with its value, in a file that bbolt finds consistent.
// The rounds reuse one file. Set TOKENVAULT_CRASH_ROUNDS=100 for a longer
// run and TOKENVAULT_CRASH_SEED to repeat the card numbers and delays of an
// earlier run.
func TestCrash(t *testing.T) {
	if path := os.Getenv(crashChildEnv); path != "" {
		crashChild(path)
		return
	}
	if testing.Short() {
		t.Skip("starts and kills a child process in each of 20 or more rounds")
	}

	rounds := crashRounds
	if s := os.Getenv(crashRoundsEnv); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 {
			t.Fatalf("%s=%q, want a positive number of rounds", crashRoundsEnv, s)
		}
		rounds = n
	}
	seed := uint64(time.Now().UnixNano())
	if s := os.Getenv(crashSeedEnv); s != "" {
		n, err := strconv.ParseUint(s, 10, 64)
		if err != nil {
			t.Fatalf("%s=%q, want an unsigned integer", crashSeedEnv, s)
		}
		seed = n
	}
	t.Logf("seed %d (set %s to repeat it)", seed, crashSeedEnv)

	ring, err := tokenvault.GenerateKeyRing()
	if err != nil {
		t.Fatal(err)
	}
	st := &crashState{
		seed:      seed,
		path:      filepath.Join(t.TempDir(), "vault.db"),
		ring:      ring,
		env:       crashEnv(t, ring, seed),
		values:    make(map[string]uint64),
		det:       make(map[uint64]string),
		activated: make(map[string]bool),
	}
	delays := rand.New(rand.NewPCG(seed, 0))

	start := time.Now()
	for round := range rounds {
		delay := time.Duration(20+delays.IntN(281)) * time.Millisecond
		crashRound(t, st, round, delay)
		if t.Failed() {
			t.Fatalf("round %d failed with seed %d", round, seed)
		}
	}
	crashVerifyAll(t, st)
	t.Logf("%d rounds in %v: %d tokens acknowledged, %d in the store", rounds, time.Since(start).Round(time.Millisecond), len(st.values), st.stored)
}

// crashState is the parent's record of the acknowledged tokens, kept across
// rounds.
type crashState struct {
	seed uint64
	path string
	ring *tokenvault.KeyRing
	env  []string // environment of the child, without the round's base

	values    map[string]uint64 // acknowledged token -> index of its card number
	det       map[uint64]string // deterministic index -> its token
	activated map[string]bool   // tokens whose ActivateToken was acknowledged
	stored    int               // tokens in the store after the last round
}

// crashEnv returns the environment of the child: the parent's, without
// tokenvault variables, plus the key file lines, which are NAME=VALUE pairs.
func crashEnv(t *testing.T, ring *tokenvault.KeyRing, seed uint64) []string {
	t.Helper()
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "TOKENVAULT_") {
			env = append(env, kv)
		}
	}

	found := 0
	for line := range strings.Lines(string(ring.KeyFile())) {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		name, _, _ := strings.Cut(line, "=")
		if name != tokenvault.EnvKeys && name != tokenvault.EnvIndexKey {
			t.Fatalf("KeyFile has a line for %q, want only %s and %s", name, tokenvault.EnvKeys, tokenvault.EnvIndexKey)
		}
		env = append(env, line)
		found++
	}
	if found != 2 {
		t.Fatalf("KeyFile has %d key lines, want 2", found)
	}
	return append(env, crashSeedEnv+"="+strconv.FormatUint(seed, 10))
}

// crashChild tokenizes into the vault at path from crashWorkers goroutines
// and writes a line to stdout after each call that succeeds, until it is
// killed:
//
//	INDEX TOKEN            after TokenizeCard of card number INDEX
//	suspended INDEX TOKEN  after SuspendToken
//	active INDEX TOKEN     after ActivateToken
//
// It never returns.
func crashChild(path string) {
	fail := func(format string, args ...any) {
		fmt.Fprintf(os.Stderr, "crash child: "+format+"\n", args...)
		os.Exit(2)
	}
	// The parent keeps stdin open, so EOF means that it died or gave up. The
	// timer ends a child that is never killed.
	go func() {
		io.Copy(io.Discard, os.Stdin)
		os.Exit(3)
	}()
	time.AfterFunc(time.Minute, func() { fail("not killed within a minute") })

	seed, err := strconv.ParseUint(os.Getenv(crashSeedEnv), 10, 64)
	if err != nil {
		fail("%s: %v", crashSeedEnv, err)
	}
	base, err := strconv.ParseUint(os.Getenv(crashBaseEnv), 10, 64)
	if err != nil {
		fail("%s: %v", crashBaseEnv, err)
	}
	ring, err := tokenvault.KeyRingFromEnv()
	if err != nil {
		fail("KeyRingFromEnv: %v", err)
	}
	// A low merge threshold makes the kills land in merges of the
	// fingerprint log as well.
	store, err := tokenvault.OpenBoltStore(path, &tokenvault.BoltOptions{FingerprintMergeAfter: crashMergeAfter})
	if err != nil {
		fail("OpenBoltStore: %v", err)
	}
	vault, err := tokenvault.New(store, ring)
	if err != nil {
		fail("New: %v", err)
	}

	ctx := context.Background()
	var next atomic.Uint64
	next.Store(base)
	for range crashWorkers {
		go func() {
			for {
				// Every 8th call tokenizes one of the shared deterministic
				// card numbers, which other goroutines and earlier rounds
				// also tokenize.
				n := next.Add(1)
				index := n
				if n%8 == 0 {
					index = crashDetBase + (n/8)%crashDetValues
				}
				card := crashCard(seed, index)
				opts := []tokenvault.TokenizeOption{tokenvault.WithFormat(crashFormat(index, card))}
				if crashDeterministic(index) {
					opts = append(opts, tokenvault.Deterministic(crashDetScope))
				}

				token, err := vault.TokenizeCard(ctx, card, opts...)
				if err != nil {
					fail("TokenizeCard(index %d): %v", index, err)
				}
				fmt.Printf("%d %s\n", index, token)

				// Deterministic tokens are shared, so only random ones go
				// through a lifecycle change.
				if crashDeterministic(index) || n%4 != 1 {
					continue
				}
				if err := vault.SuspendToken(ctx, token, tokenvault.WithReason("crash test")); err != nil {
					fail("SuspendToken(%q): %v", token, err)
				}
				fmt.Printf("suspended %d %s\n", index, token)
				if err := vault.ActivateToken(ctx, token, tokenvault.WithReason("crash test")); err != nil {
					fail("ActivateToken(%q): %v", token, err)
				}
				fmt.Printf("active %d %s\n", index, token)
			}
		}()
	}
	for batcher := range crashBatchers {
		go crashBatches(vault, seed, &next, crashFormats[batcher%len(crashFormats)], fail)
	}
	select {}
}

// crashBatches tokenizes in batches, through the store's CreateBatch, the
// card numbers of reserved indexes whose format is format, and writes their
// lines once each call has returned.
func crashBatches(vault *tokenvault.Vault, seed uint64, next *atomic.Uint64, format tokenvault.Format, fail func(string, ...any)) {
	for {
		end := next.Add(crashBatchSize)
		var indexes []uint64
		var cards []string
		for index := end - crashBatchSize + 1; index <= end; index++ {
			if card := crashCard(seed, index); crashFormat(index, card) == format {
				indexes = append(indexes, index)
				cards = append(cards, card)
			}
		}

		results, err := vault.TokenizeCardBatch(context.Background(), cards, tokenvault.WithFormat(format))
		if err != nil {
			fail("TokenizeCardBatch(%d numbers): %v", len(cards), err)
		}
		for i, r := range results {
			if r.Err != nil {
				fail("TokenizeCardBatch(index %d): %v", indexes[i], r.Err)
			}
			fmt.Printf("%d %s\n", indexes[i], r.Token)
		}
	}
}

// crashOutput collects the child's stdout and closes enough once it has
// want complete lines.
type crashOutput struct {
	mu     sync.Mutex
	buf    bytes.Buffer
	lines  int
	want   int
	enough chan struct{}
}

func (o *crashOutput) Write(p []byte) (int, error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.buf.Write(p)
	before := o.lines
	o.lines += bytes.Count(p, []byte{'\n'})
	if before < o.want && o.lines >= o.want {
		close(o.enough)
	}
	return len(p), nil
}

// crashLine is one complete line of the child's stdout.
type crashLine struct {
	event string // "tokenized", "suspended" or "active"
	index uint64
	token string
}

// crashParse returns the complete lines of out. The kill can cut the last
// line short, and a line without its newline was never acknowledged.
func crashParse(out []byte) ([]crashLine, error) {
	complete := out[:bytes.LastIndexByte(out, '\n')+1]
	var lines []crashLine
	for i, text := range strings.Split(strings.TrimSuffix(string(complete), "\n"), "\n") {
		if text == "" {
			continue
		}
		fields := strings.Fields(text)
		line := crashLine{event: "tokenized"}
		if len(fields) == 3 && (fields[0] == "suspended" || fields[0] == "active") {
			line.event = fields[0]
			fields = fields[1:]
		}
		if len(fields) != 2 {
			return nil, fmt.Errorf("line %d has %d fields, want INDEX TOKEN with an optional event: %q", i+1, len(fields), crashMask(text))
		}
		index, err := strconv.ParseUint(fields[0], 10, 64)
		if err != nil {
			return nil, fmt.Errorf("line %d: index: %v", i+1, err)
		}
		line.index, line.token = index, fields[1]
		lines = append(lines, line)
	}
	return lines, nil
}

// crashRound runs one child, kills it with SIGKILL delay after it reported
// crashMinAcks lines, and checks the vault it leaves behind.
func crashRound(t *testing.T, st *crashState, round int, delay time.Duration) {
	roundStart := time.Now()

	cmd := exec.Command(os.Args[0], "-test.run=^TestCrash$")
	cmd.Env = append(slices.Clip(st.env), crashChildEnv+"="+st.path, crashBaseEnv+"="+strconv.Itoa(round*crashRoundIndex))
	out := &crashOutput{want: crashMinAcks, enough: make(chan struct{})}
	var stderr bytes.Buffer
	cmd.Stdout = out
	cmd.Stderr = &stderr
	if _, err := cmd.StdinPipe(); err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatalf("start child: %v", err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	waited := false
	defer func() {
		if !waited {
			cmd.Process.Signal(syscall.SIGKILL)
			<-exited
		}
	}()

	select {
	case <-out.enough:
	case err := <-exited:
		waited = true
		t.Fatalf("round %d: child exited before it reported %d tokens: %v, stderr: %s", round, crashMinAcks, err, crashMask(stderr.String()))
	case <-time.After(30 * time.Second):
		t.Fatalf("round %d: child reported fewer than %d tokens in 30 s", round, crashMinAcks)
	}
	time.Sleep(delay)
	if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatalf("round %d: kill child: %v", round, err)
	}
	waitErr := <-exited
	waited = true

	status, ok := cmd.ProcessState.Sys().(syscall.WaitStatus)
	if !ok || !status.Signaled() || status.Signal() != syscall.SIGKILL {
		t.Fatalf("round %d: child ended with %v, want killed by SIGKILL, stderr: %s", round, waitErr, crashMask(stderr.String()))
	}
	if s := stderr.String(); strings.Contains(s, "DATA RACE") || strings.Contains(s, "panic") || strings.Contains(s, "crash child") {
		t.Errorf("round %d: child stderr: %s", round, crashMask(s))
	}
	lines, err := crashParse(out.buf.Bytes())
	if err != nil {
		t.Fatalf("round %d: child stdout: %v", round, err)
	}

	tokenized, suspended, activated := crashVerifyRound(t, st, lines)
	stored := crashCount(t, st.path)
	if stored < len(st.values) {
		t.Errorf("round %d: store has %d tokens, want at least the %d acknowledged", round, stored, len(st.values))
	}
	if stored < st.stored {
		t.Errorf("round %d: store has %d tokens, fewer than the %d after the previous round", round, stored, st.stored)
	}
	st.stored = stored
	crashCheckBolt(t, st.path)

	t.Logf("round %d: killed %v after %d lines; %d tokenized, %d suspended, %d activated acknowledged; %d in the store; %v",
		round, delay, crashMinAcks, tokenized, suspended, activated, stored, time.Since(roundStart).Round(time.Millisecond))
}

// crashVerifyRound records the round's acknowledged lines and checks each
// token in the reopened vault. It returns the counts of each event.
func crashVerifyRound(t *testing.T, st *crashState, lines []crashLine) (tokenized, suspended, activated int) {
	ctx := context.Background()

	round := make(map[string]uint64)
	for _, line := range lines {
		switch line.event {
		case "tokenized":
			tokenized++
		case "suspended":
			suspended++
		case "active":
			activated++
			st.activated[line.token] = true
		}
		if index, ok := st.values[line.token]; ok && index != line.index {
			t.Errorf("token %q was acknowledged for index %d and for index %d", line.token, index, line.index)
			continue
		}
		st.values[line.token] = line.index
		round[line.token] = line.index

		if crashDeterministic(line.index) {
			if prev, ok := st.det[line.index]; ok && prev != line.token {
				t.Errorf("deterministic index %d got token %q, earlier %q", line.index, line.token, prev)
			}
			st.det[line.index] = line.token
		}
	}

	v, err := tokenvault.Open(st.path, st.ring)
	if err != nil {
		t.Fatalf("Open after the kill: %v", err)
	}
	defer func() {
		if err := v.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	}()

	for token, index := range round {
		card := crashCard(st.seed, index)
		info, err := v.Inspect(ctx, token)
		if err != nil {
			t.Errorf("Inspect(%q) of index %d err = %v, want nil", token, index, err)
			continue
		}
		if info.Format != crashFormat(index, card) || info.Deterministic != crashDeterministic(index) || info.Last4 != card[len(card)-4:] {
			t.Errorf("Inspect(%q) = format %s, deterministic %t, last 4 %s, want %s, %t, %s for index %d",
				token, info.Format, info.Deterministic, info.Last4, crashFormat(index, card), crashDeterministic(index), card[len(card)-4:], index)
		}

		switch {
		case info.State == tokenvault.StateActive:
		case info.State == tokenvault.StateSuspended && st.activated[token]:
			t.Errorf("Inspect(%q) of index %d state = suspended, want active: ActivateToken was acknowledged", token, index)
		case info.State == tokenvault.StateSuspended && crashDeterministic(index):
			t.Errorf("Inspect(%q) of index %d state = suspended, want active: deterministic tokens are never suspended", token, index)
		case info.State == tokenvault.StateSuspended:
			if err := v.ActivateToken(ctx, token); err != nil {
				t.Errorf("ActivateToken(%q) of index %d err = %v, want nil", token, index, err)
			}
		default:
			t.Errorf("Inspect(%q) of index %d state = %s, want active or suspended", token, index, info.State)
		}
		if st.activated[token] {
			n := len(info.History)
			if n < 2 || info.History[n-2].To != tokenvault.StateSuspended || info.History[n-1].To != tokenvault.StateActive {
				t.Errorf("Inspect(%q) of index %d history has %d changes, want suspended then active at the end", token, index, n)
			}
		}

		got, err := v.Detokenize(ctx, token)
		switch {
		case err != nil:
			t.Errorf("Detokenize(%q) err = %v, want value %d", token, err, index)
		case string(got) != card:
			t.Errorf("Detokenize(%q) = %s, want value %d", token, crashMask(string(got)), index)
		}
		tokens, err := v.TokensForCard(ctx, card)
		if err != nil || !slices.Contains(tokens, token) {
			t.Errorf("TokensForCard(value %d) = %d tokens, err %v, want one of them %q", index, len(tokens), err, token)
		}
	}
	return tokenized, suspended, activated
}

// crashVerifyAll checks that every token acknowledged in any round still
// returns its value, so that later rounds did not lose earlier ones.
func crashVerifyAll(t *testing.T, st *crashState) {
	v, err := tokenvault.Open(st.path, st.ring)
	if err != nil {
		t.Fatalf("Open after the last round: %v", err)
	}
	defer v.Close()

	ctx := context.Background()
	for token, index := range st.values {
		got, err := v.Detokenize(ctx, token)
		switch {
		case err != nil:
			t.Errorf("Detokenize(%q) after the last round err = %v, want value %d", token, err, index)
		case string(got) != crashCard(st.seed, index):
			t.Errorf("Detokenize(%q) after the last round = %s, want value %d", token, crashMask(string(got)), index)
		}
	}

	// The fingerprint index, whose merges the kills cut short too, must
	// list every acknowledged token under its value.
	byValue := make(map[uint64][]string)
	for token, index := range st.values {
		byValue[index] = append(byValue[index], token)
	}
	for index, want := range byValue {
		got, err := v.TokensForCard(ctx, crashCard(st.seed, index))
		if err != nil {
			t.Fatalf("TokensForCard(value %d) after the last round err = %v", index, err)
		}
		for _, token := range want {
			if !slices.Contains(got, token) {
				t.Errorf("TokensForCard(value %d) after the last round = %q, want it to contain %q", index, got, token)
			}
		}
	}
}

// crashCount returns the number of records, tokens of any state, in the
// bbolt store at path.
func crashCount(t *testing.T, path string) int {
	t.Helper()
	store, err := tokenvault.OpenBoltStore(path, nil)
	if err != nil {
		t.Fatalf("OpenBoltStore: %v", err)
	}
	defer store.Close()

	count, after := 0, ""
	for {
		recs, err := store.Scan(context.Background(), after, 1000)
		if err != nil {
			t.Fatalf("Scan after %q: %v", after, err)
		}
		count += len(recs)
		if len(recs) < 1000 {
			return count
		}
		after = recs[len(recs)-1].Key()
	}
}

// crashCheckBolt runs bbolt's consistency check on the closed file at path.
func crashCheckBolt(t *testing.T, path string) {
	t.Helper()
	db, err := bolt.Open(path, 0o600, &bolt.Options{ReadOnly: true, Timeout: time.Second})
	if err != nil {
		t.Fatalf("bolt.Open(%q) read-only: %v", path, err)
	}
	defer db.Close()

	err = db.View(func(tx *bolt.Tx) error {
		for err := range tx.Check() {
			t.Errorf("bbolt consistency check: %v", err)
		}
		return nil
	})
	if err != nil {
		t.Errorf("bbolt consistency check: %v", err)
	}
}
