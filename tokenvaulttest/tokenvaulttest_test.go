package tokenvaulttest_test

import (
	"context"
	"errors"
	"testing"

	"github.com/tokenvault/tokenvault"
	"github.com/tokenvault/tokenvault/tokenvaulttest"
)

func TestNewRoundTrip(t *testing.T) {
	v := tokenvaulttest.New(t)
	ctx := context.Background()

	token, err := v.TokenizeCard(ctx, "4242424242424242")
	if err != nil {
		t.Fatalf("TokenizeCard err = %v", err)
	}
	got, err := v.Detokenize(ctx, token)
	if err != nil || string(got) != "4242424242424242" {
		t.Fatalf("Detokenize(%q) err = %v, value matches = %t", token, err, string(got) == "4242424242424242")
	}
}

func TestNewClosedAtCleanup(t *testing.T) {
	var v *tokenvault.Vault
	t.Run("inner", func(t *testing.T) {
		v = tokenvaulttest.New(t)
	})

	_, err := v.Tokenize(context.Background(), []byte("x"))
	if !errors.Is(err, tokenvault.ErrVaultClosed) {
		t.Fatalf("Tokenize after cleanup err = %v, want ErrVaultClosed", err)
	}
}

func TestNewVaultsAreIndependent(t *testing.T) {
	ctx := context.Background()
	a := tokenvaulttest.New(t)
	b := tokenvaulttest.New(t)

	token, err := a.Tokenize(ctx, []byte("account 12345678"))
	if err != nil {
		t.Fatalf("Tokenize err = %v", err)
	}
	if _, err := b.Detokenize(ctx, token); !errors.Is(err, tokenvault.ErrNotFound) {
		t.Fatalf("other vault Detokenize(%q) err = %v, want ErrNotFound", token, err)
	}
}
