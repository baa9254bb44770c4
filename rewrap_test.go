package tokenvault

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"github.com/tokenvault/tokenvault/internal/fernetspec"
)

// fillVault tokenizes n generic values, closes every tenth token, and returns
// the live tokens with their values.
func fillVault(t *testing.T, v *Vault, n int) map[string]string {
	t.Helper()
	ctx := context.Background()
	live := make(map[string]string)
	for i := range n {
		value := fmt.Sprintf("account-%04d", i)
		token, err := v.Tokenize(ctx, []byte(value), ExpiresAfter(time.Duration(i+1)*time.Hour))
		if err != nil {
			t.Fatalf("Tokenize err = %v", err)
		}
		if i%10 == 9 {
			if err := v.CloseToken(ctx, token); err != nil {
				t.Fatalf("CloseToken err = %v", err)
			}
			continue
		}
		live[token] = value
	}
	return live
}

func TestRewrap(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "vault.db")
	old, _ := GenerateKeyRing()
	v, err := Open(path, old)
	if err != nil {
		t.Fatalf("Open err = %v", err)
	}
	live := fillVault(t, v, 120)
	before := make(map[string]*Record)
	for token := range live {
		before[token], _ = v.store.Get(ctx, token)
	}
	v.Close()

	rotated := rotateKeys(t, old)
	v, err = Open(path, rotated)
	if err != nil {
		t.Fatalf("Open with rotated keys err = %v", err)
	}
	report, err := v.Rewrap(ctx, &RewrapOptions{BatchSize: 25, RetireKeys: true})
	if err != nil {
		t.Fatalf("Rewrap err = %v", err)
	}
	if report.Rewrapped != len(live) || len(report.Failed) != 0 {
		t.Errorf("Rewrap rewrapped %d, failed %d; want %d, 0", report.Rewrapped, len(report.Failed), len(live))
	}
	if len(report.Remaining) != 1 || report.Remaining[rotated.Primary()] != len(live) {
		t.Errorf("Remaining = %v, want only the new primary with %d records", report.Remaining, len(live))
	}

	for token, value := range live {
		rec, _ := v.store.Get(ctx, token)
		was := before[token]
		if rec.KeyID != rotated.Primary() {
			t.Fatalf("token %s still under key %s", token, rec.KeyID)
		}
		oldTime, _ := fernetspec.Timestamp(was.Ciphertext)
		newTime, _ := fernetspec.Timestamp(rec.Ciphertext)
		if !oldTime.Equal(newTime) || !rec.Expires.Equal(was.Expires) || !rec.Updated.Equal(was.Updated) {
			t.Fatalf("token %s: Fernet time %v -> %v, expiry %v -> %v, updated %v -> %v; want all kept",
				token, oldTime, newTime, was.Expires, rec.Expires, was.Updated, rec.Updated)
		}
		if got, err := v.Detokenize(ctx, token); err != nil || string(got) != value {
			t.Fatalf("Detokenize(%s) after rewrap = %q, %v; want %q", token, got, err, value)
		}
	}
	v.Close()

	onlyNew, _ := NewKeyRing([]string{rotated.r.keys[0].Encode()}, fernetEncode(rotated.r.index))
	v, err = Open(path, onlyNew)
	if err != nil {
		t.Fatalf("Open without the old key after Rewrap err = %v, want the key retired", err)
	}
	v.Close()
}

// TestRewrapResume interrupts a rewrap after its first batch and checks that
// the next run resumes after that batch instead of starting over.
func TestRewrapResume(t *testing.T) {
	ctx := context.Background()
	s := NewMemoryStore()
	old, _ := GenerateKeyRing()
	v, _ := New(s, old)
	for i := range 50 {
		v.Tokenize(ctx, []byte(fmt.Sprintf("value %d", i)))
	}

	v, _ = New(s, rotateKeys(t, old))
	runCtx, cancel := context.WithCancel(ctx)
	report, err := v.Rewrap(runCtx, &RewrapOptions{BatchSize: 10, AfterBatch: func(*RewrapReport) { cancel() }})
	if !errors.Is(err, context.Canceled) || report.Rewrapped != 10 || report.Remaining != nil {
		t.Fatalf("interrupted Rewrap = %d rewrapped, remaining %v, err %v; want 10, nil, context.Canceled", report.Rewrapped, report.Remaining, err)
	}

	batches := 0
	report, err = v.Rewrap(ctx, &RewrapOptions{BatchSize: 10, AfterBatch: func(*RewrapReport) { batches++ }})
	if err != nil || report.Rewrapped != 40 {
		t.Fatalf("resumed Rewrap = %d rewrapped, err %v; want 40", report.Rewrapped, err)
	}
	// Four full batches and the empty read that ends the scan; starting
	// over would take five full batches.
	if batches != 5 {
		t.Errorf("resumed Rewrap ran %d batches, want 5", batches)
	}

	report, err = v.Rewrap(ctx, &RewrapOptions{BatchSize: 10})
	if err != nil || report.Rewrapped != 0 || report.Remaining[v.Keys().Primary()] != 50 {
		t.Errorf("third Rewrap = %d rewrapped, remaining %v, err %v; want 0 and all 50 under the primary", report.Rewrapped, report.Remaining, err)
	}
}

// TestRewrapReportsFailures corrupts one record's ciphertext and checks that
// Rewrap reports it, keeps it under its key, and keeps that key required.
func TestRewrapReportsFailures(t *testing.T) {
	ctx := context.Background()
	s := NewMemoryStore()
	old, _ := GenerateKeyRing()
	v, _ := New(s, old)
	good, _ := v.Tokenize(ctx, []byte("good"))
	bad, _ := v.Tokenize(ctx, []byte("bad"))

	rec, _ := s.Get(ctx, bad)
	corrupt := append([]byte(nil), rec.Ciphertext...)
	corrupt[20] ^= 'A' ^ 'B'
	if n, _ := s.ReplaceCiphertexts(ctx, []CiphertextSwap{{Key: bad, OldCiphertext: rec.Ciphertext, NewKeyID: rec.KeyID, NewCiphertext: corrupt}}); n != 1 {
		t.Fatal("could not corrupt the record")
	}

	rotated := rotateKeys(t, old)
	v, _ = New(s, rotated)
	report, err := v.Rewrap(ctx, &RewrapOptions{RetireKeys: true})
	if err != nil {
		t.Fatalf("Rewrap err = %v", err)
	}
	if report.Rewrapped != 1 || len(report.Failed) != 1 || report.Failed[0].Token != bad || report.Failed[0].KeyID != old.Primary() {
		t.Fatalf("Rewrap = %d rewrapped, failures %+v; want 1 and the corrupt token %s under %s", report.Rewrapped, report.Failed, bad, old.Primary())
	}
	if report.Remaining[old.Primary()] != 1 || report.Remaining[rotated.Primary()] != 1 {
		t.Errorf("Remaining = %v, want 1 under each key", report.Remaining)
	}
	if got, err := v.Detokenize(ctx, good); err != nil || string(got) != "good" {
		t.Errorf("Detokenize(good) = %q, %v", got, err)
	}

	onlyNew, _ := NewKeyRing([]string{rotated.r.keys[0].Encode()}, fernetEncode(rotated.r.index))
	if _, err := New(s, onlyNew); !errors.Is(err, ErrKeyMismatch) {
		t.Errorf("New without the old key while a record needs it err = %v, want ErrKeyMismatch", err)
	}
}

func TestKeyRingRotateWithout(t *testing.T) {
	old, _ := GenerateKeyRing()
	rotated, err := old.Rotate()
	if err != nil {
		t.Fatalf("Rotate err = %v", err)
	}
	ids := rotated.KeyIDs()
	if len(ids) != 2 || ids[1] != old.Primary() || ids[0] == old.Primary() || rotated.IndexKeyID() != old.IndexKeyID() {
		t.Fatalf("Rotate gave ids %v index %s; want a new primary, then %s, and index %s", ids, rotated.IndexKeyID(), old.Primary(), old.IndexKeyID())
	}

	trimmed, err := rotated.Without(old.Primary())
	if err != nil || len(trimmed.KeyIDs()) != 1 || trimmed.Primary() != rotated.Primary() {
		t.Errorf("Without(old) = %v, %v; want only the new primary", trimmed, err)
	}
	if _, err := trimmed.Without(trimmed.Primary()); !errors.Is(err, ErrInvalidKey) {
		t.Errorf("Without(only key) err = %v, want ErrInvalidKey", err)
	}
	if _, err := trimmed.Without("0000000000000000"); !errors.Is(err, ErrInvalidKey) {
		t.Errorf("Without(unknown id) err = %v, want ErrInvalidKey", err)
	}
}

// TestRewrapKeepsKeyChecks checks that without RetireKeys an emptied key
// stays required, so that a process still encrypting under it on a shared
// store cannot be cut off by a key ring without it.
func TestRewrapKeepsKeyChecks(t *testing.T) {
	ctx := context.Background()
	s := NewMemoryStore()
	old, _ := GenerateKeyRing()
	v, _ := New(s, old)
	v.Tokenize(ctx, []byte("value"))

	rotated := rotateKeys(t, old)
	v, _ = New(s, rotated)
	report, err := v.Rewrap(ctx, nil)
	if err != nil || report.Remaining[old.Primary()] != 0 {
		t.Fatalf("Rewrap = %+v, %v; want nothing left under the old key", report, err)
	}

	onlyNew, _ := rotated.Without(old.Primary())
	if _, err := New(s, onlyNew); !errors.Is(err, ErrKeyMismatch) {
		t.Errorf("New without the old key after Rewrap without RetireKeys err = %v, want ErrKeyMismatch", err)
	}
	if _, err := v.Rewrap(ctx, &RewrapOptions{RetireKeys: true}); err != nil {
		t.Fatalf("Rewrap(RetireKeys) err = %v", err)
	}
	if _, err := New(s, onlyNew); err != nil {
		t.Errorf("New without the old key after Rewrap(RetireKeys) err = %v", err)
	}
}
