package tokenvault

import (
	"context"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/fernet/fernet-go"
	bolt "go.etcd.io/bbolt"
)

// benchVault returns a bbolt vault holding n card tokens, and the tokens.
func benchVault(b *testing.B, n int) (*Vault, []string) {
	b.Helper()
	keys, _ := GenerateKeyRing()
	v, err := Open(filepath.Join(b.TempDir(), "bench.db"), keys)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { v.Close() })

	ctx := context.Background()
	tokens := make([]string, 0, n)
	for i := range n {
		token, err := v.Tokenize(ctx, []byte("value-"+strconv.Itoa(i)))
		if err != nil {
			b.Fatal(err)
		}
		tokens = append(tokens, token)
	}
	return v, tokens
}

// BenchmarkDetokenize measures the read path: one bbolt read transaction and
// one Fernet decryption per call, from all cores.
func BenchmarkDetokenize(b *testing.B) {
	v, tokens := benchVault(b, 10_000)
	ctx := context.Background()
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		i := 0
		for pb.Next() {
			if _, err := v.Detokenize(ctx, tokens[i%len(tokens)]); err != nil {
				b.Error(err)
				return
			}
			i++
		}
	})
}

// BenchmarkDetokenizeFloor is the floor BenchmarkDetokenize compares with in
// the same run: a bbolt View of one key and one Fernet decryption, nothing
// else.
func BenchmarkDetokenizeFloor(b *testing.B) {
	db, err := bolt.Open(filepath.Join(b.TempDir(), "floor.db"), 0o600, nil)
	if err != nil {
		b.Fatal(err)
	}
	defer db.Close()
	var key fernet.Key
	key.Generate()
	keys := make([][]byte, 10_000)
	db.Update(func(tx *bolt.Tx) error {
		bucket, _ := tx.CreateBucket([]byte("b"))
		for i := range keys {
			keys[i] = []byte("key-" + strconv.Itoa(i))
			tok, _ := fernet.EncryptAndSign([]byte("value-"+strconv.Itoa(i)), &key)
			bucket.Put(keys[i], tok)
		}
		return nil
	})

	ring := []*fernet.Key{&key}
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		i := 0
		for pb.Next() {
			db.View(func(tx *bolt.Tx) error {
				tok := tx.Bucket([]byte("b")).Get(keys[i%len(keys)])
				if fernet.VerifyAndDecrypt(tok, 0, ring) == nil {
					b.Error("decrypt failed")
				}
				return nil
			})
			i++
		}
	})
}

// BenchmarkTokenizeCard measures durable tokenization (fsync per commit) from
// one goroutine; BenchmarkTokenizeCardParallel from 64, sharing commits.
func BenchmarkTokenizeCard(b *testing.B) {
	v, _ := benchVault(b, 0)
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := v.TokenizeCard(ctx, "4111111111111111"); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkTokenizeFloor is the floor BenchmarkTokenizeCard compares with in
// the same run: one bbolt Update with fsync per write of a record-sized value
// under a random 16-digit key.
func BenchmarkTokenizeFloor(b *testing.B) {
	db, err := bolt.Open(filepath.Join(b.TempDir(), "floor.db"), 0o600, nil)
	if err != nil {
		b.Fatal(err)
	}
	defer db.Close()
	db.Update(func(tx *bolt.Tx) error { _, err := tx.CreateBucket([]byte("b")); return err })

	value := make([]byte, 250)
	for b.Loop() {
		key, _ := newCardToken("4111111111111111", false)
		db.Update(func(tx *bolt.Tx) error { return tx.Bucket([]byte("b")).Put([]byte(key), value) })
	}
}

func BenchmarkTokenizeCardParallel(b *testing.B) {
	v, _ := benchVault(b, 0)
	ctx := context.Background()
	b.SetParallelism(32) // 64 goroutines on 2 cores
	b.ReportAllocs()
	start := time.Now()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, err := v.TokenizeCard(ctx, "4111111111111111"); err != nil {
				b.Error(err)
				return
			}
		}
	})
	b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "tokens/s")
}

// BenchmarkCompactRuns measures the largest kind of merge of the
// fingerprint index: four runs of 250,000 entries into one, in entries per
// second. Building the runs takes about five seconds per iteration, so run it
// with -benchtime 1x.
func BenchmarkCompactRuns(b *testing.B) {
	const runs, perRun = runFanout, 250_000
	ctx := context.Background()
	var elapsed time.Duration
	for range b.N {
		b.StopTimer()
		s, err := OpenBoltStore(filepath.Join(b.TempDir(), "runs.db"), &BoltOptions{FingerprintMergeAfter: 1 << 20})
		if err != nil {
			b.Fatal(err)
		}
		s.merge.fanout = runs + 1 // no merge of runs while they are built
		for run := range runs {
			for start := run * perRun; start < (run+1)*perRun; start += batchChunkSize {
				recs := make([]*Record, 0, batchChunkSize)
				for i := start; i < min(start+batchChunkSize, (run+1)*perRun); i++ {
					recs = append(recs, mergeTestRecord(i))
				}
				if _, err := s.CreateBatch(ctx, recs); err != nil {
					b.Fatal(err)
				}
			}
			if err := s.mergeFingerprints(ctx); err != nil {
				b.Fatal(err)
			}
		}
		s.merge.fanout = runs
		b.StartTimer()

		start := time.Now()
		if err := s.compactRuns(ctx); err != nil {
			b.Fatal(err)
		}
		elapsed += time.Since(start)

		b.StopTimer()
		if names, _ := runsOf(b, s); len(names) != 1 {
			b.Fatalf("%d runs after the merge of runs, want 1", len(names))
		}
		if err := s.Close(); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N*runs*perRun)/elapsed.Seconds(), "entries/s")
}
