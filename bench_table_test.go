package tokenvault

// Benchmarks of the throughput table in docs/benchmarks.md. Each one runs on
// a store that already holds benchRecords() card tokens, beside a floor that
// runs on a bbolt file with as many entries. The floor's preloaded layout is
// a random 16-digit key per record, and a 32-byte fingerprint followed by
// that key per index entry. New card records of the vault go under locators
// in creation order, as opaque ones do, so the floors on the time-ordered
// layout (BenchmarkTableTokenizeOpaqueFloor, and the floor run of
// BenchmarkTableTokenizeOneCaller) are the floors of both formats, and
// BenchmarkTableTokenizeFloor shows what random keys cost. Both files are
// built once per test binary and removed by TestMain.

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/fernet/fernet-go"
	"github.com/tokenvault/tokenvault/internal/luhn"
	bolt "go.etcd.io/bbolt"
)

const (
	benchRecordsEnv      = "TOKENVAULT_BENCH_RECORDS"       // records preloaded, 1,000,000 by default
	benchScaleRecordsEnv = "TOKENVAULT_BENCH_SCALE_RECORDS" // records of the large store of BenchmarkTableDetokenizeScale
)

var (
	benchBucketTokens       = []byte("tokens")
	benchBucketFingerprints = []byte("fingerprints")
	benchBucketLog          = []byte("fingerprint-log")
)

func benchRecords(b *testing.B, env string, byDefault int) int {
	s := os.Getenv(env)
	if s == "" {
		return byDefault
	}
	n, err := strconv.Atoi(s)
	if err != nil || n < 1 {
		b.Fatalf("%s=%q, want a positive number of records", env, s)
	}
	return n
}

// benchCard returns the Luhn-valid 16-digit card number of index i, distinct for
// every i below 10^14.
func benchCard(i uint64) string {
	body := fmt.Sprintf("4%014d", i)
	return body + string(luhn.CheckDigit(body))
}

// benchStore is a preloaded vault and its floor.
type benchStore struct {
	dir    string
	vault  *Vault
	tokens []string
	next   atomic.Uint64 // index of the next card number not yet tokenized

	floor     *bolt.DB
	floorKeys [][]byte
	floorKey  *fernet.Key
	floorNext atomic.Uint64 // index of the last card number the time-ordered floor encrypted
}

var (
	benchStoresMu sync.Mutex
	benchStores   = make(map[int]*benchStore)
)

// preloaded returns the store of n records, building it on first use.
func preloaded(b *testing.B, n int) *benchStore {
	b.Helper()
	benchStoresMu.Lock()
	defer benchStoresMu.Unlock()
	if s := benchStores[n]; s != nil {
		return s
	}

	dir, err := os.MkdirTemp("", "tokenvault-bench-")
	if err != nil {
		b.Fatal(err)
	}
	s := &benchStore{dir: dir}
	benchStores[n] = s
	start := time.Now()
	s.loadVault(b, n)
	loaded := time.Since(start)
	s.loadFloor(b, n)
	b.Logf("preloaded %d records in %v, the floor in %v", n, loaded.Round(time.Millisecond), (time.Since(start) - loaded).Round(time.Millisecond))
	return s
}

func (s *benchStore) loadVault(b *testing.B, n int) {
	keys, err := GenerateKeyRing()
	if err != nil {
		b.Fatal(err)
	}
	s.vault, err = Open(filepath.Join(s.dir, "vault.db"), keys)
	if err != nil {
		b.Fatal(err)
	}

	const call = 100_000
	pans := make([]string, 0, call)
	for start := 0; start < n; start += call {
		pans = pans[:0]
		for range min(call, n-start) {
			pans = append(pans, benchCard(s.next.Add(1)))
		}
		for _, r := range mustTokenizeBatch(b, s.vault, pans) {
			s.tokens = append(s.tokens, r.Token)
		}
	}
}

// mustTokenizeBatch calls TokenizeCardBatch and fails the benchmark if the
// call or any number fails.
func mustTokenizeBatch(b *testing.B, v *Vault, pans []string, opts ...TokenizeOption) []TokenizeResult {
	results, err := v.TokenizeCardBatch(context.Background(), pans, opts...)
	if err != nil {
		b.Fatal(err)
	}
	for _, r := range results {
		if r.Err != nil {
			b.Fatal(r.Err)
		}
	}
	return results
}

func (s *benchStore) loadFloor(b *testing.B, n int) {
	var err error
	s.floor, err = bolt.Open(filepath.Join(s.dir, "floor.db"), 0o600, &bolt.Options{FreelistType: bolt.FreelistMapType})
	if err != nil {
		b.Fatal(err)
	}
	s.floorKey = new(fernet.Key)
	s.floorKey.Generate()

	// Transactions of the size of the vault's batch commits give the floor's
	// file the same shape of pages and free pages as the vault's.
	const call = batchChunkSize
	s.floorKeys = make([][]byte, 0, n)
	for start := 0; start < n; start += call {
		err := s.floor.Update(func(tx *bolt.Tx) error {
			for i := start; i < min(start+call, n); i++ {
				key, value, err := s.floorRecord(uint64(i))
				if err != nil {
					return err
				}
				if err := floorPut(tx, key, value, false); err != nil {
					return err
				}
				s.floorKeys = append(s.floorKeys, key)
			}
			return nil
		})
		if err != nil {
			b.Fatal(err)
		}
	}
}

// floorRecord returns a random card-shaped key and a Fernet token of a card
// number, the size of what the vault encrypts.
func (s *benchStore) floorRecord(i uint64) ([]byte, []byte, error) {
	pan := benchCard(1e13 + i)
	key, err := newCardToken(pan, false)
	if err != nil {
		return nil, nil, err
	}
	value, err := fernet.EncryptAndSign(seal(key, []byte(pan)), s.floorKey)
	return []byte(key), value, err
}

// floorPut writes a record and a fingerprint entry, as a tokenization does.
// The entry goes into the sorted fingerprint bucket, or with appendLog to
// the end of a log bucket under the next sequence number.
func floorPut(tx *bolt.Tx, key, value []byte, appendLog bool) error {
	tokens, err := tx.CreateBucketIfNotExists(benchBucketTokens)
	if err != nil {
		return err
	}
	if err := tokens.Put(key, value); err != nil {
		return err
	}

	entry := make([]byte, 32, 32+len(key))
	rand.Read(entry)
	entry = append(entry, key...)
	if !appendLog {
		fingerprints, err := tx.CreateBucketIfNotExists(benchBucketFingerprints)
		if err != nil {
			return err
		}
		return fingerprints.Put(entry, nil)
	}
	log, err := tx.CreateBucketIfNotExists(benchBucketLog)
	if err != nil {
		return err
	}
	seq, err := log.NextSequence()
	if err != nil {
		return err
	}
	return log.Put(binary.BigEndian.AppendUint64(nil, seq), entry)
}

// floorWriter returns the floor's bbolt Batch for callers goroutines, tuned
// to commit as soon as every caller has a write waiting.
func (s *benchStore) floorWriter(callers int) func(func(*bolt.Tx) error) error {
	s.floor.MaxBatchSize = callers
	s.floor.MaxBatchDelay = 200 * time.Microsecond
	return s.floor.Batch
}

func closeBenchStores() {
	benchStoresMu.Lock()
	defer benchStoresMu.Unlock()
	for _, s := range benchStores {
		if s.vault != nil {
			s.vault.Close()
		}
		if s.floor != nil {
			s.floor.Close()
		}
		os.RemoveAll(s.dir)
	}
}

// runCallers runs b.N calls of op from callers goroutines and reports the
// rate per second.
func runCallers(b *testing.B, callers int, op func() error) {
	var left atomic.Int64
	left.Store(int64(b.N))
	var wg sync.WaitGroup
	b.ResetTimer()
	start := time.Now()
	for range callers {
		wg.Go(func() {
			for left.Add(-1) >= 0 {
				if err := op(); err != nil {
					b.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
	b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "ops/s")
}

// benchCallers are the caller counts of the rows with a target in tokens
// per second. BenchmarkTableTokenizeOneCaller has the 1-caller rows.
var benchCallers = []int{64, 256}

// BenchmarkTableTokenizeOneCaller measures durable TokenizeCard of new
// numbers from one goroutine, card-shaped and opaque, and their floor: one
// bbolt Update with fsync per write, on the time-ordered layout of
// BenchmarkTableTokenizeOpaqueFloor. The rows and their floor run within a
// few minutes of each other, because the disk's sync latency drifts over
// longer spans.
//
// Each run starts when no merge of the fingerprint log is running, so that a
// merge started by the rows of 64 and 256 callers is not counted in a
// 1-caller run. Merges that a run's own writes start are counted.
func BenchmarkTableTokenizeOneCaller(b *testing.B) {
	s := preloaded(b, benchRecords(b, benchRecordsEnv, 1_000_000))
	for _, format := range []Format{FormatCard, FormatOpaque} {
		b.Run("format="+format.String(), func(b *testing.B) {
			s.waitForMerge(b)
			b.ReportAllocs()
			runCallers(b, 1, func() error {
				_, err := s.vault.TokenizeCard(context.Background(), benchCard(s.next.Add(1)), WithFormat(format))
				return err
			})
		})
	}
	b.Run("floor", func(b *testing.B) {
		s.waitForMerge(b)
		runCallers(b, 1, s.opaqueFloorWrite(s.floor.Update))
	})
}

// waitForMerge returns when the vault's store runs no merge of the
// fingerprint log. Floors call it too, so that a merge the vault's rows
// started does not slow a floor on the same disk.
func (s *benchStore) waitForMerge(b *testing.B) {
	store, ok := s.vault.store.(*BoltStore)
	if !ok {
		b.Fatalf("the vault's store is a %T, want *BoltStore", s.vault.store)
	}
	store.merge.waitRunning(context.Background())
}

// BenchmarkTableTokenize measures durable TokenizeCard of new numbers from
// 64 and 256 goroutines.
func BenchmarkTableTokenize(b *testing.B) {
	benchTokenizeCallers(b)
}

// benchTokenizeCallers runs BenchmarkTableTokenize with opts.
func benchTokenizeCallers(b *testing.B, opts ...TokenizeOption) {
	s := preloaded(b, benchRecords(b, benchRecordsEnv, 1_000_000))
	for _, callers := range benchCallers {
		b.Run(fmt.Sprintf("callers=%d", callers), func(b *testing.B) {
			b.ReportAllocs()
			runCallers(b, callers, func() error {
				_, err := s.vault.TokenizeCard(context.Background(), benchCard(s.next.Add(1)), opts...)
				return err
			})
		})
	}
}

// BenchmarkTableTokenizeFloor is bbolt Batch, tuned to commit as soon as
// every caller has a write waiting, from 64 and 256 goroutines. Each write
// puts a record under a random card-shaped key and its fingerprint entry:
// the layout of card tokens before locators.
func BenchmarkTableTokenizeFloor(b *testing.B) {
	s := preloaded(b, benchRecords(b, benchRecordsEnv, 1_000_000))
	var i atomic.Uint64
	i.Store(uint64(len(s.floorKeys)))
	for _, callers := range benchCallers {
		b.Run(fmt.Sprintf("callers=%d", callers), func(b *testing.B) {
			s.waitForMerge(b)
			write := s.floorWriter(callers)
			runCallers(b, callers, func() error {
				key, value, err := s.floorRecord(i.Add(1))
				if err != nil {
					return err
				}
				return write(func(tx *bolt.Tx) error { return floorPut(tx, key, value, false) })
			})
		})
	}
}

// BenchmarkTableTokenizeOpaque is BenchmarkTableTokenize with FormatOpaque
// tokens, whose time prefix makes the record's key and history key grow at
// the right edge of their B+trees.
func BenchmarkTableTokenizeOpaque(b *testing.B) {
	benchTokenizeCallers(b, WithFormat(FormatOpaque))
}

// BenchmarkTableTokenizeOpaqueFloor is the floor of the rows of 64 and 256
// callers, tuned as BenchmarkTableTokenizeFloor is, on the key layout of new
// tokens. Each write puts a record under a FormatOpaque token and appends
// its fingerprint entry to a log under the next sequence number.
func BenchmarkTableTokenizeOpaqueFloor(b *testing.B) {
	s := preloaded(b, benchRecords(b, benchRecordsEnv, 1_000_000))
	for _, callers := range benchCallers {
		b.Run(fmt.Sprintf("callers=%d", callers), func(b *testing.B) {
			s.waitForMerge(b)
			runCallers(b, callers, s.opaqueFloorWrite(s.floorWriter(callers)))
		})
	}
}

// opaqueFloorWrite returns one write of the time-ordered floor, made with
// write: a record under a new FormatOpaque token, and its fingerprint entry
// appended to a log.
func (s *benchStore) opaqueFloorWrite(write func(func(*bolt.Tx) error) error) func() error {
	return func() error {
		pan := benchCard(2e13 + s.floorNext.Add(1))
		key := newOpaqueToken(time.Now())
		value, err := fernet.EncryptAndSign(seal(key, []byte(pan)), s.floorKey)
		if err != nil {
			return err
		}
		return write(func(tx *bolt.Tx) error { return floorPut(tx, []byte(key), value, true) })
	}
}

// BenchmarkTableTokenizeBatch measures TokenizeCardBatch: b.N new numbers,
// up to a million per call, with card-shaped and with opaque tokens. Run it
// with -benchtime 1000000x for the table.
func BenchmarkTableTokenizeBatch(b *testing.B) {
	s := preloaded(b, benchRecords(b, benchRecordsEnv, 1_000_000))
	for _, format := range []Format{FormatCard, FormatOpaque} {
		b.Run("format="+format.String(), func(b *testing.B) {
			const call = 1 << 20
			pans := make([]string, min(b.N, call))
			b.ReportAllocs()
			b.ResetTimer()
			start := time.Now()
			for done := 0; done < b.N; done += len(pans) {
				b.StopTimer()
				pans = pans[:min(b.N-done, call)]
				for j := range pans {
					pans[j] = benchCard(s.next.Add(1))
				}
				b.StartTimer()
				mustTokenizeBatch(b, s.vault, pans, WithFormat(format))
			}
			b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "ops/s")
		})
	}
}

// BenchmarkTableEncryptFloor is the floor of BenchmarkTableTokenizeBatch:
// Fernet encryption of a sealed card number alone, on every CPU.
func BenchmarkTableEncryptFloor(b *testing.B) {
	var key fernet.Key
	key.Generate()
	msg := seal("4000000000001234", []byte(benchCard(1)))
	b.SetParallelism(1)
	b.ReportAllocs()
	start := time.Now()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, err := fernet.EncryptAndSign(msg, &key); err != nil {
				b.Error(err)
				return
			}
		}
	})
	b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "ops/s")
}

// BenchmarkTableTokenizeBatchCeiling measures bbolt alone doing the writes
// of BenchmarkTableTokenizeBatch with opaque tokens, on the floor's file. It
// puts each record under a new FormatOpaque token and appends its
// fingerprint entry to the log and an event to an outbox bucket, in blocks
// as the vault's commit loop writes them. Pages are full as in the vault,
// with one transaction per batchChunkSize records.
// The values are encrypted while the timer is stopped, and there is no
// conflict check, record encoding or index merge, so no batch of the vault
// can be faster on the same machine.
func BenchmarkTableTokenizeBatchCeiling(b *testing.B) {
	s := preloaded(b, benchRecords(b, benchRecordsEnv, 1_000_000))
	type write struct{ key, value, entry, event []byte }
	chunk := make([]write, 0, batchChunkSize)
	var i uint64
	var elapsed time.Duration
	b.ReportAllocs()
	b.ResetTimer()
	for done := 0; done < b.N; done += len(chunk) {
		b.StopTimer()
		chunk = chunk[:0]
		for range min(batchChunkSize, b.N-done) {
			i++
			key := newOpaqueToken(time.Now())
			value, err := fernet.EncryptAndSign(seal(key, []byte(benchCard(3e13+i))), s.floorKey)
			if err != nil {
				b.Fatal(err)
			}
			fingerprint := make([]byte, fingerprintSize)
			rand.Read(fingerprint)
			entry := appendLogEntry(nil, fingerprint, logAdd, key)
			event := encodeEvent(&Event{Token: key, Type: EventCreated, To: StateActive, Time: time.Now()})
			chunk = append(chunk, write{key: []byte(key), value: value, entry: entry, event: event})
		}
		b.StartTimer()

		start := time.Now()
		err := s.floor.Update(func(tx *bolt.Tx) error {
			for _, name := range [][]byte{benchBucketTokens, benchBucketLog, bucketEvents} {
				if _, err := tx.CreateBucketIfNotExists(name); err != nil {
					return err
				}
			}
			tokens := tx.Bucket(benchBucketTokens)
			tokens.FillPercent = appendFill
			log, events := seqBuffer{name: benchBucketLog}, seqBuffer{name: bucketEvents}
			log.begin(tx)
			events.begin(tx)
			for _, w := range chunk {
				if err := tokens.Put(w.key, w.value); err != nil {
					return err
				}
				if _, err := log.add(tx, w.entry); err != nil {
					return err
				}
				if _, err := events.add(tx, w.event); err != nil {
					return err
				}
			}
			if err := log.flush(); err != nil {
				return err
			}
			return events.flush()
		})
		elapsed += time.Since(start)
		if err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N)/elapsed.Seconds(), "ops/s")
}

// BenchmarkTableDetokenize measures Detokenize of random stored tokens on
// every CPU.
func BenchmarkTableDetokenize(b *testing.B) {
	s := preloaded(b, benchRecords(b, benchRecordsEnv, 1_000_000))
	benchDetokenize(b, s)
}

// benchDetokenize runs Detokenize on s once no merge of the fingerprint log
// runs, because a merge that the tokenize rows started is not the cost of
// a read.
func benchDetokenize(b *testing.B, s *benchStore) {
	s.waitForMerge(b)
	runRandomParallel(b, len(s.tokens), func(i int) error {
		_, err := s.vault.Detokenize(context.Background(), s.tokens[i])
		return err
	})
}

// BenchmarkTableDetokenizeFloor is the floor of BenchmarkTableDetokenize: a
// bbolt View of one random key and one Fernet decryption, on every CPU.
func BenchmarkTableDetokenizeFloor(b *testing.B) {
	s := preloaded(b, benchRecords(b, benchRecordsEnv, 1_000_000))
	s.waitForMerge(b)
	keys := []*fernet.Key{s.floorKey}
	runRandomParallel(b, len(s.floorKeys), func(i int) error {
		key := s.floorKeys[i]
		return s.floor.View(func(tx *bolt.Tx) error {
			if fernet.VerifyAndDecrypt(tx.Bucket(benchBucketTokens).Get(key), 0, keys) == nil {
				return fmt.Errorf("floor record %x did not decrypt", key)
			}
			return nil
		})
	})
}

// runRandomParallel runs op on pseudo-random indexes below n, b.N times in
// all, on every CPU, and reports the rate per second. Each goroutine steps
// its own linear congruential generator, so that they share no state.
func runRandomParallel(b *testing.B, n int, op func(i int) error) {
	var seed atomic.Uint64
	b.ReportAllocs()
	b.ResetTimer()
	start := time.Now()
	b.RunParallel(func(pb *testing.PB) {
		x := seed.Add(7919) * 104729
		for pb.Next() {
			x = x*6364136223846793005 + 1442695040888963407
			if err := op(int((x >> 33) % uint64(n))); err != nil {
				b.Error(err)
				return
			}
		}
	})
	b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "ops/s")
}

// BenchmarkTableDetokenizeScale measures Detokenize on a store of 100,000
// records and on one of TOKENVAULT_BENCH_SCALE_RECORDS records. It is
// skipped without that variable, because ten million records take minutes
// to build and about 4 GB of disk. Each store's file is read once before
// its runs, so that they measure the B+tree from the page cache, as on a
// vault that has served for a while, and not the first reads from disk.
func BenchmarkTableDetokenizeScale(b *testing.B) {
	if os.Getenv(benchScaleRecordsEnv) == "" {
		b.Skipf("set %s, such as 10000000, to build the large store", benchScaleRecordsEnv)
	}
	for _, n := range []int{100_000, benchRecords(b, benchScaleRecordsEnv, 0)} {
		b.Run(fmt.Sprintf("records=%d", n), func(b *testing.B) {
			s := preloaded(b, n)
			readFile(b, filepath.Join(s.dir, "vault.db"))
			benchDetokenize(b, s)
		})
	}
}

// readFile reads the file at path to its end, which loads it into the page
// cache when memory allows.
func readFile(b *testing.B, path string) {
	f, err := os.Open(path)
	if err != nil {
		b.Fatal(err)
	}
	defer f.Close()
	if _, err := io.Copy(io.Discard, f); err != nil {
		b.Fatal(err)
	}
}
