package tokenvault

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"sync"
	"testing"
)

// TestWriteKeyFileRace has goroutines create one key file at once while
// others read it: exactly one write wins, and no reader ever sees a partly
// written file.
func TestWriteKeyFileRace(t *testing.T) {
	for round := range 20 {
		path := filepath.Join(t.TempDir(), "vault.key")
		var wg sync.WaitGroup
		var mu sync.Mutex
		wins := 0
		for range 4 {
			wg.Go(func() {
				keys, _ := GenerateKeyRing()
				err := keys.WriteKeyFile(path)
				switch {
				case err == nil:
					mu.Lock()
					wins++
					mu.Unlock()
				case !errors.Is(err, fs.ErrExist):
					t.Errorf("round %d: WriteKeyFile err = %v, want nil or fs.ErrExist", round, err)
				}
			})
			wg.Go(func() {
				for range 50 {
					if _, err := LoadKeyFile(path); err != nil && !errors.Is(err, fs.ErrNotExist) {
						t.Errorf("round %d: LoadKeyFile during the write err = %v, want the whole file or none", round, err)
						return
					}
				}
			})
		}
		wg.Wait()

		if wins != 1 {
			t.Fatalf("round %d: %d writes succeeded, want 1", round, wins)
		}
		entries, _ := os.ReadDir(filepath.Dir(path))
		if len(entries) != 1 {
			t.Fatalf("round %d: directory has %d files, want only the key file", round, len(entries))
		}
	}
}
