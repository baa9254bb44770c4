// Package tokenvaulttest gives the unit tests of programs that use tokenvault a
// ready vault in one line:
//
//	v := tokenvaulttest.New(t)
//
// The vault keeps its records in memory under fresh random keys and is closed
// when the test ends. It behaves as a vault from tokenvault.Open does, except
// that nothing survives the test.
//
// CardGenerator makes as many distinct card numbers as a test or benchmark
// needs, valid for the Luhn check and the brand detection of tokenvault.
package tokenvaulttest

import (
	"errors"
	"testing"

	"github.com/tokenvault/tokenvault"
)

// New returns a vault over a new tokenvault.MemoryStore with a new random key
// ring, closed by t.Cleanup. opts are passed to tokenvault.New, for example
// tokenvault.WithClock to control expiry. New calls t.Fatal if the vault
// cannot be built.
func New(t testing.TB, opts ...tokenvault.Option) *tokenvault.Vault {
	t.Helper()

	keys, err := tokenvault.GenerateKeyRing()
	if err != nil {
		t.Fatalf("tokenvaulttest: generate keys: %v", err)
	}
	v, err := tokenvault.New(tokenvault.NewMemoryStore(), keys, opts...)
	if err != nil {
		t.Fatalf("tokenvaulttest: new vault: %v", err)
	}

	t.Cleanup(func() {
		if err := v.Close(); err != nil && !errors.Is(err, tokenvault.ErrVaultClosed) {
			t.Errorf("tokenvaulttest: close vault: %v", err)
		}
	})
	return v
}
