package tokenvault

import (
	"bytes"
	"math"
	"path/filepath"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"
)

// TestPutTokenFillStaysLowered checks that a record put in the middle of the
// token bucket leaves bbolt's default fill for the rest of its transaction,
// whatever is put after it.
func TestPutTokenFillStaysLowered(t *testing.T) {
	s, err := OpenBoltStore(filepath.Join(t.TempDir(), "vault.db"), nil)
	if err != nil {
		t.Fatalf("OpenBoltStore err = %v", err)
	}
	defer s.Close()

	err = s.db.Update(func(tx *bolt.Tx) error {
		tokens := tx.Bucket(bucketTokens)
		expectAppends(tx)
		steps := []struct {
			token   string
			appends bool
			want    float64
		}{
			{newOpaqueToken(time.Now()), true, appendFill},
			{"4000000000000002", false, bolt.DefaultFillPercent},
			{newOpaqueToken(time.Now()), true, bolt.DefaultFillPercent},
		}
		for _, step := range steps {
			if err := putToken(tx, []byte(step.token), []byte("record"), step.appends); err != nil {
				return err
			}
			if tokens.FillPercent != step.want {
				t.Errorf("after putToken(appends=%t), FillPercent = %v, want %v", step.appends, tokens.FillPercent, step.want)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatalf("Update err = %v", err)
	}
}

// TestBoltFillsAppendedPages checks that the buckets whose keys a vault
// appends (opaque tokens, the outbox and the fingerprint log) fill their
// pages. With bbolt's default fill they are about half full.
func TestBoltFillsAppendedPages(t *testing.T) {
	const values = 20_000
	path := filepath.Join(t.TempDir(), "vault.db")
	s, err := OpenBoltStore(path, nil)
	if err != nil {
		t.Fatalf("OpenBoltStore err = %v", err)
	}
	keys, err := GenerateKeyRing()
	if err != nil {
		t.Fatalf("GenerateKeyRing err = %v", err)
	}
	v, err := New(s, keys)
	if err != nil {
		t.Fatalf("New err = %v", err)
	}

	data := make([][]byte, values)
	for i, pan := range batchCards(values) {
		data[i] = []byte(pan)
	}
	results, err := v.TokenizeBatch(t.Context(), data)
	if err != nil {
		t.Fatalf("TokenizeBatch err = %v, want nil", err)
	}
	for i, r := range results {
		if r.Err != nil {
			t.Fatalf("TokenizeBatch result %d err = %v, want nil", i, r.Err)
		}
	}
	if err := v.Close(); err != nil {
		t.Fatalf("Vault.Close err = %v", err)
	}
	if err := s.Close(); err != nil {
		t.Fatalf("BoltStore.Close err = %v", err)
	}

	db, err := bolt.Open(path, 0o600, &bolt.Options{ReadOnly: true})
	if err != nil {
		t.Fatalf("bolt.Open err = %v", err)
	}
	defer db.Close()
	err = db.View(func(tx *bolt.Tx) error {
		for _, name := range [][]byte{bucketTokens, bucketEvents, bucketFingerprintLog} {
			stats := tx.Bucket(name).Stats()
			entries := stats.KeyN
			if !bytes.Equal(name, bucketTokens) {
				entries = 0
				err := walkSeq(tx.Bucket(name), 0, math.MaxUint64, func(uint64, []byte) error {
					entries++
					return nil
				})
				if err != nil {
					return err
				}
			}
			if entries != values {
				t.Errorf("bucket %s contains %d entries, want %d", name, entries, values)
			}
			// The bound leaves room for page headers and a last page that
			// is nearly empty.
			if fill := float64(stats.LeafInuse) / float64(stats.LeafAlloc); fill < 0.9 {
				t.Errorf("bucket %s uses %.2f of its %d leaf pages, want at least 0.9", name, fill, stats.LeafPageN)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatalf("View err = %v", err)
	}
}
