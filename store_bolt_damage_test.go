package tokenvault

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"
)

// TestBoltDamagedFile flips bytes in the data pages of a vault file and uses
// it: bbolt panics or faults on some damaged pages, and the store must turn
// that into an error instead of crashing the process.
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

		func() {
			defer func() {
				if v := recover(); v != nil {
					t.Errorf("round %d: a vault call on a damaged file panicked: %.200v", round, v)
				}
			}()
			v, err := Open(path, keys)
			if err != nil {
				return
			}
			defer v.Close()
			for _, token := range tokens {
				v.Detokenize(ctx, token)
				v.SuspendToken(ctx, token)
				if token[len(token)-1]%4 == 0 {
					v.Inspect(ctx, token)
				}
			}
			v.TokensForData(ctx, []byte("value-1"))
			v.KeyUsage(ctx)
		}()
	}
}
