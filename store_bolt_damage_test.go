package tokenvault

import (
	"bytes"
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// Environment of a child process of TestBoltDamagedFile: the damaged file,
// the key file and a file of one token per line.
const (
	damagedFileEnv   = "TOKENVAULT_DAMAGED_FILE"
	damagedKeysEnv   = "TOKENVAULT_DAMAGED_KEYS"
	damagedTokensEnv = "TOKENVAULT_DAMAGED_TOKENS"
)

// damagedRoundTimeout bounds one child process of TestBoltDamagedFile, which
// takes well under a second.
const damagedRoundTimeout = time.Minute

// TestBoltDamagedFile flips bytes in the data pages of a vault file and uses
// it in a child process: bbolt panics or faults on some damaged pages, and
// the store must turn that into an error instead of crashing the process.
//
// NOTE: a damaged page that leads back to itself or to a page above it makes
// bbolt recurse until the stack overflows, a fatal error that no recover
// catches. The store cannot survive that, so such a round is logged, not
// failed.
func TestBoltDamagedFile(t *testing.T) {
	t.Parallel()
	if testing.Short() {
		t.Skip("damaged-file rounds skipped in -short mode")
	}
	if raceEnabled {
		// bbolt reads a bucket header through an unsafe cast of the bytes
		// stored for it. On a damaged page those bytes can be too short, and
		// checkptr, which -race turns on, then ends the process with a fatal
		// error that recover cannot catch. Without -race the store recovers.
		t.Skip("damaged-file rounds need a build without -race: run go test -run TestBoltDamagedFile .")
	}
	ctx := context.Background()
	dir := t.TempDir()
	clean := filepath.Join(dir, "clean.db")
	keys, _ := GenerateKeyRing()
	keyPath, tokensPath := filepath.Join(dir, "vault.key"), filepath.Join(dir, "tokens.txt")
	if err := keys.WriteKeyFile(keyPath); err != nil {
		t.Fatal(err)
	}
	v, err := Open(clean, keys)
	if err != nil {
		t.Fatalf("Open err = %v", err)
	}
	var tokens []string
	for i := range 300 {
		token, _ := v.Tokenize(ctx, []byte(fmt.Sprintf("value-%d", i)))
		tokens = append(tokens, token)
	}
	v.Close()
	if err := os.WriteFile(tokensPath, []byte(strings.Join(tokens, "\n")), 0o600); err != nil {
		t.Fatal(err)
	}
	original, _ := os.ReadFile(clean)

	rng := rand.New(rand.NewPCG(7, 7))
	for round := range 100 {
		data := append([]byte(nil), original...)
		for range 1 + rng.IntN(8) {
			// Skip the two meta pages, whose damage Open reports itself.
			i := 2*4096 + rng.IntN(len(data)-2*4096)
			data[i] ^= byte(1 + rng.IntN(255))
		}
		path := filepath.Join(dir, fmt.Sprintf("damaged-%d.db", round))
		if err := os.WriteFile(path, data, 0o600); err != nil {
			t.Fatal(err)
		}

		roundCtx, cancel := context.WithTimeout(ctx, damagedRoundTimeout)
		child := exec.CommandContext(roundCtx, os.Args[0], "-test.run", "^TestBoltDamagedFileChild$", "-test.count", "1")
		child.Env = append(os.Environ(), damagedFileEnv+"="+path, damagedKeysEnv+"="+keyPath, damagedTokensEnv+"="+tokensPath)
		out, err := child.CombinedOutput()
		if roundCtx.Err() != nil {
			err = fmt.Errorf("killed after %s: %w", damagedRoundTimeout, err)
		}
		cancel()
		switch {
		case err == nil:
		case bytes.Contains(out, []byte("fatal error: stack overflow")) && bytes.Contains(out, []byte("go.etcd.io/bbolt.(*Cursor).search")):
			t.Logf("round %d: bbolt's search recursed until the stack overflowed", round)
		default:
			t.Errorf("round %d: a process using the damaged file failed: %v\n%.2000s", round, err, out)
		}
	}
}

// TestBoltDamagedFileChild is the child process of TestBoltDamagedFile: it
// uses the damaged file for each token, and fails if a call panics.
func TestBoltDamagedFileChild(t *testing.T) {
	path := os.Getenv(damagedFileEnv)
	if path == "" {
		t.Skip("run by TestBoltDamagedFile")
	}
	ctx := context.Background()
	keys, err := LoadKeyFile(os.Getenv(damagedKeysEnv))
	if err != nil {
		t.Fatal(err)
	}
	list, err := os.ReadFile(os.Getenv(damagedTokensEnv))
	if err != nil {
		t.Fatal(err)
	}

	defer func() {
		if v := recover(); v != nil {
			t.Errorf("a vault call on a damaged file panicked: %.200v", v)
		}
	}()
	v, err := Open(path, keys)
	if err != nil {
		return
	}
	defer v.Close()
	for _, token := range strings.Split(string(list), "\n") {
		v.Detokenize(ctx, token)
		v.SuspendToken(ctx, token)
		if token[len(token)-1]%4 == 0 {
			v.Inspect(ctx, token)
		}
	}
	v.TokensForData(ctx, []byte("value-1"))
	v.KeyUsage(ctx)
}
