package main

import (
	"bufio"
	"context"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/tokenvault/tokenvault"
	"github.com/tokenvault/tokenvault/tokenvaulttest"
)

// lineCounter counts the lines written to it.
type lineCounter struct{ lines int }

func (c *lineCounter) Write(p []byte) (int, error) {
	for _, b := range p {
		if b == '\n' {
			c.lines++
		}
	}
	return len(p), nil
}

// liveHeapSampler records the live heap, measured after a collection, every
// interval until stop is called.
func liveHeapSampler(interval time.Duration) (stop func() []uint64) {
	var (
		mu      sync.Mutex
		samples []uint64
		done    = make(chan struct{})
		exited  = make(chan struct{})
	)
	go func() {
		defer close(exited)
		ticker := time.NewTicker(interval)
		defer ticker.Stop()
		for {
			select {
			case <-done:
				return
			case <-ticker.C:
			}
			runtime.GC()
			var m runtime.MemStats
			runtime.ReadMemStats(&m)
			mu.Lock()
			samples = append(samples, m.HeapAlloc)
			mu.Unlock()
		}
	}()
	return func() []uint64 {
		close(done)
		<-exited
		mu.Lock()
		defer mu.Unlock()
		return samples
	}
}

// importValuesEnv sets the number of values TestImportMemoryStaysFlat
// imports, for a longer run than the default 100,000.
const importValuesEnv = "TOKENVAULT_IMPORT_VALUES"

// TestImportMemoryStaysFlat imports generated card numbers into a bbolt vault
// and checks that the live heap does not grow with the number imported. A
// leak of 200 bytes per value would add about 10 MiB between the second
// quarter of the run and the last.
func TestImportMemoryStaysFlat(t *testing.T) {
	n := 100_000
	if raceEnabled || testing.Short() {
		n = 20_000
	}
	// The store keeps up to FingerprintMergeAfter new fingerprints listed
	// in memory, 2^18 by default, which a short run would take for growth.
	// The short run merges every 4,096 entries instead, many times over. Its
	// import takes well under a second, so it samples every 10 ms.
	interval, mergeAfter := 10*time.Millisecond, 4096
	if s := os.Getenv(importValuesEnv); s != "" {
		var err error
		if n, err = strconv.Atoi(s); err != nil || n < 1 {
			t.Fatalf("%s=%q, want a positive number of values", importValuesEnv, s)
		}
		interval, mergeAfter = time.Second, 0
	}
	keys, err := tokenvault.GenerateKeyRing()
	if err != nil {
		t.Fatal(err)
	}
	store, err := tokenvault.OpenBoltStore(filepath.Join(t.TempDir(), "import.db"), &tokenvault.BoltOptions{FingerprintMergeAfter: mergeAfter})
	if err != nil {
		t.Fatal(err)
	}
	vault, err := tokenvault.New(store, keys)
	if err != nil {
		store.Close()
		t.Fatal(err)
	}
	defer vault.Close()

	pr, pw := io.Pipe()
	go func() {
		gen := tokenvaulttest.NewCardGenerator(1)
		bw := bufio.NewWriter(pw)
		for range n {
			bw.WriteString(gen.Next())
			bw.WriteByte('\n')
		}
		pw.CloseWithError(bw.Flush())
	}()

	stop := liveHeapSampler(interval)
	var out lineCounter
	s := streams{stdout: &out, stderr: io.Discard}
	err = runImport(context.Background(), s, pr, -1, nil, true, func(ctx context.Context, values [][]byte) ([][]byte, []error) {
		return tokenizeLines(ctx, vault, true, values, nil)
	})
	samples := stop()
	if err != nil {
		t.Fatalf("import: %v", err)
	}
	if out.lines != n {
		t.Fatalf("import wrote %d tokens for %d values", out.lines, n)
	}

	if len(samples) < 8 {
		t.Fatalf("only %d heap samples during the import; it ran too briefly to judge", len(samples))
	}
	// Compare the second quarter with the last: the median ignores the
	// commits that happen to be in progress at a sample.
	early := median(samples[len(samples)/4 : len(samples)/2])
	late := median(samples[len(samples)*3/4:])
	const maxGrowth, maxLive = 4 << 20, 64 << 20
	if late > early+maxGrowth {
		t.Errorf("live heap grew from a median of %d KiB to %d KiB while importing %d values, more than %d KiB", early>>10, late>>10, n, maxGrowth>>10)
	}
	if high := slices.Max(samples); high > maxLive {
		t.Errorf("live heap reached %d KiB while importing, more than %d KiB", high>>10, maxLive>>10)
	}
	t.Logf("%d values, %d samples; median live heap %d KiB in the second quarter, %d KiB in the last, at most %d KiB", n, len(samples), early>>10, late>>10, slices.Max(samples)>>10)
}

// median returns the middle value of samples, which it sorts.
func median(samples []uint64) uint64 {
	slices.Sort(samples)
	return samples[len(samples)/2]
}
