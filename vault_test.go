package tokenvault

import (
	"context"
	"errors"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

func TestCloseTwice(t *testing.T) {
	forEachStore(t, func(t *testing.T, v *Vault, s Store, clock *testClock) {
		if err := v.Close(); err != nil {
			t.Fatalf("first Close err = %v", err)
		}
		if err := v.Close(); !errors.Is(err, ErrVaultClosed) {
			t.Fatalf("second Close err = %v, want ErrVaultClosed", err)
		}
	})
}

func TestMethodsAfterClose(t *testing.T) {
	forEachStore(t, func(t *testing.T, v *Vault, s Store, clock *testClock) {
		ctx := context.Background()
		token, _ := v.TokenizeCard(ctx, visaTest)
		v.Close()

		calls := map[string]func() error{
			"TokenizeCard":   func() error { _, err := v.TokenizeCard(ctx, visaTest); return err },
			"Tokenize":       func() error { _, err := v.Tokenize(ctx, []byte("x")); return err },
			"Detokenize":     func() error { _, err := v.Detokenize(ctx, token); return err },
			"DetokenizeCard": func() error { _, err := v.DetokenizeCard(ctx, token); return err },
			"SuspendToken":   func() error { return v.SuspendToken(ctx, token) },
			"ActivateToken":  func() error { return v.ActivateToken(ctx, token) },
			"CloseToken":     func() error { return v.CloseToken(ctx, token) },
			"Inspect":        func() error { _, err := v.Inspect(ctx, token); return err },
			"TokensForCard":  func() error { _, err := v.TokensForCard(ctx, visaTest); return err },
			"TokensForData":  func() error { _, err := v.TokensForData(ctx, []byte("x")); return err },
			"Rewrap":         func() error { _, err := v.Rewrap(ctx, nil); return err },
			"KeyUsage":       func() error { _, err := v.KeyUsage(ctx); return err },
		}
		for name, call := range calls {
			if err := call(); !errors.Is(err, ErrVaultClosed) {
				t.Errorf("%s after Close err = %v, want ErrVaultClosed", name, err)
			}
		}
	})
}

// TestCloseDuringLoad closes the vault while goroutines tokenize and
// detokenize: every call must either succeed or return ErrVaultClosed.
func TestCloseDuringLoad(t *testing.T) {
	forEachStore(t, func(t *testing.T, v *Vault, s Store, clock *testClock) {
		ctx := context.Background()
		token, _ := v.TokenizeCard(ctx, visaTest)

		var wg sync.WaitGroup
		for i := range 16 {
			wg.Go(func() {
				for {
					var err error
					if i%2 == 0 {
						_, err = v.TokenizeCard(ctx, "5555555555554444")
					} else {
						_, err = v.Detokenize(ctx, token)
					}
					if errors.Is(err, ErrVaultClosed) {
						return
					}
					if err != nil {
						t.Errorf("call during Close err = %v, want nil or ErrVaultClosed", err)
						return
					}
				}
			})
		}
		time.Sleep(20 * time.Millisecond)
		if err := v.Close(); err != nil {
			t.Errorf("Close under load err = %v", err)
		}
		wg.Wait()
	})
}

func TestOpenReopen(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "vault.db")
	keys, _ := GenerateKeyRing()

	v, err := Open(path, keys)
	if err != nil {
		t.Fatalf("Open err = %v", err)
	}
	token, _ := v.TokenizeCard(ctx, visaTest)
	if _, err := Open(path, keys, WithLockTimeout(100*time.Millisecond)); !errors.Is(err, ErrLocked) {
		t.Errorf("second Open err = %v, want ErrLocked", err)
	}
	v.Close()

	v, err = Open(path, keys)
	if err != nil {
		t.Fatalf("reopen err = %v", err)
	}
	defer v.Close()
	if got, err := v.Detokenize(ctx, token); err != nil || string(got) != visaTest {
		t.Errorf("Detokenize after reopen err = %v, value matches = %t", err, string(got) == visaTest)
	}
}

// TestOpenWrongKeys checks the key check: a vault refuses to open with keys
// that cannot read what it holds, before any token is touched.
func TestOpenWrongKeys(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "vault.db")
	keys, _ := GenerateKeyRing()
	v, err := Open(path, keys)
	if err != nil {
		t.Fatalf("Open err = %v", err)
	}
	v.TokenizeCard(ctx, visaTest)
	v.Close()

	other, _ := GenerateKeyRing()
	sameIndex, _ := NewKeyRing([]string{other.r.keys[0].Encode()}, fernetEncode(keys.r.index))
	otherIndex, _ := NewKeyRing([]string{keys.r.keys[0].Encode()}, fernetEncode(other.r.index))
	cases := map[string]struct {
		keys *KeyRing
		text string // part of the error message
	}{
		"other keys":          {other, "index key"},
		"other Fernet key":    {sameIndex, string(keys.Primary())},
		"other index key":     {otherIndex, "index key"},
		"rotated without old": {rotateKeysWithout(t, keys), string(keys.Primary())},
	}
	for name, c := range cases {
		_, err := Open(path, c.keys)
		if !errors.Is(err, ErrKeyMismatch) || !strings.Contains(err.Error(), c.text) {
			t.Errorf("%s: Open err = %v, want ErrKeyMismatch naming %q", name, err, c.text)
		}
	}

	v, err = Open(path, rotateKeys(t, keys))
	if err != nil {
		t.Fatalf("Open with the old key after a new primary err = %v", err)
	}
	v.Close()
}

// rotateKeysWithout returns a ring with a new Fernet key only and the index
// key of old.
func rotateKeysWithout(t *testing.T, old *KeyRing) *KeyRing {
	t.Helper()
	fresh, _ := GenerateKeyRing()
	ring, err := NewKeyRing([]string{fresh.r.keys[0].Encode()}, fernetEncode(old.r.index))
	if err != nil {
		t.Fatalf("NewKeyRing err = %v", err)
	}
	return ring
}

func TestNewRejectsNil(t *testing.T) {
	keys, _ := GenerateKeyRing()
	if _, err := New(nil, keys); err == nil {
		t.Error("New(nil store) err = nil")
	}
	if _, err := New(NewMemoryStore(), nil); !errors.Is(err, ErrInvalidKey) {
		t.Errorf("New(nil keys) err = %v, want ErrInvalidKey", err)
	}
}

func TestZeroVaultDetokenizeNoPanic(t *testing.T) {
	var v Vault
	_, err := v.Detokenize(context.Background(), "not a token")
	if !errors.Is(err, ErrNotFound) {
		t.Errorf("Detokenize on a zero Vault err = %v, want ErrNotFound", err)
	}
}
