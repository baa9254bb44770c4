package tokenvault

import (
	"context"
	"errors"
	"strings"
	"testing"
)

// TestDetokenizeNoOracle checks that every kind of token that is not in the
// vault gets the same error, so a caller learns nothing about how close a
// guess came.
func TestDetokenizeNoOracle(t *testing.T) {
	forEachStore(t, func(t *testing.T, v *Vault, s Store, clock *testClock) {
		ctx := context.Background()
		card, _ := v.TokenizeCard(ctx, visaTest)
		opaque, _ := v.Tokenize(ctx, []byte("secret"))

		changed := []byte(opaque)
		changed[10] ^= 1
		changedCard := []byte(card)
		changedCard[3] = '0' + (changedCard[3]-'0'+1)%10

		inputs := map[string]string{
			"empty":                "",
			"whitespace":           "   ",
			"opaque plus space":    opaque + " ",
			"opaque plus char":     opaque + "0",
			"card plus newline":    card + "\n",
			"leading space":        " " + card,
			"one char changed":     string(changed),
			"card digit changed":   string(changedCard),
			"uppercase":            strings.ToUpper(opaque),
			"prefix only":          "tok_",
			"junk":                 strings.Repeat("\xff\x00junk", 125),
			"card number":          visaTest,
			"luhn-failing digits":  "4111111111111112",
			"non-canonical base32": opaque[:len(opaque)-1] + "1",
			"NUL":                  "\x00",
		}
		want := ErrNotFound.Error()
		for name, input := range inputs {
			_, err := v.Detokenize(ctx, input)
			if !errors.Is(err, ErrNotFound) || err.Error() != want {
				t.Errorf("%s: Detokenize err = %v, want exactly %q", name, err, want)
			}
			if _, err := v.Inspect(ctx, input); !errors.Is(err, ErrNotFound) {
				t.Errorf("%s: Inspect err = %v, want ErrNotFound", name, err)
			}
		}
	})
}

// TestDetokenizeMovedCiphertext copies one record's ciphertext onto another
// record in the store, as someone with write access to the store could. The
// token is sealed into the ciphertext, so the vault must refuse instead of
// returning the other record's value.
func TestDetokenizeMovedCiphertext(t *testing.T) {
	forEachStore(t, func(t *testing.T, v *Vault, s Store, clock *testClock) {
		ctx := context.Background()
		victim, _ := v.TokenizeCard(ctx, visaTest)
		other, _ := v.TokenizeCard(ctx, "5555555555554444")

		src, err := v.get(ctx, other)
		if err != nil {
			t.Fatalf("store Get err = %v", err)
		}
		old, _ := v.get(ctx, victim)
		n, err := s.ReplaceCiphertexts(ctx, []CiphertextSwap{{Key: old.Key(), OldCiphertext: old.Ciphertext, NewKeyID: src.KeyID, NewCiphertext: src.Ciphertext}})
		if err != nil || n != 1 {
			t.Fatalf("ReplaceCiphertexts = %d, %v; want 1 swap", n, err)
		}

		got, err := v.Detokenize(ctx, victim)
		if !errors.Is(err, ErrIntegrity) {
			t.Fatalf("Detokenize(moved ciphertext) err = %v, got other value = %t; want ErrIntegrity", err, string(got) == "5555555555554444")
		}
	})
}

func TestDetokenizeCard(t *testing.T) {
	forEachStore(t, func(t *testing.T, v *Vault, s Store, clock *testClock) {
		ctx := context.Background()
		token, _ := v.TokenizeCard(ctx, "4242 4242 4242 4242")
		card, err := v.DetokenizeCard(ctx, token)
		if err != nil {
			t.Fatalf("DetokenizeCard err = %v", err)
		}
		if card.Digits() != "4242424242424242" || card.String() != "************4242" || card.Brand() != BrandVisa {
			t.Errorf("DetokenizeCard = %s (brand %s), digits match = %t", card, card.Brand(), card.Digits() == "4242424242424242")
		}

		data, _ := v.Tokenize(ctx, []byte("not a card"))
		if _, err := v.DetokenizeCard(ctx, data); err == nil || errors.Is(err, ErrNotFound) {
			t.Errorf("DetokenizeCard(data token) err = %v, want an error saying it is not a card", err)
		}
	})
}

func TestDetokenizeCanceledContext(t *testing.T) {
	forEachStore(t, func(t *testing.T, v *Vault, s Store, clock *testClock) {
		token, _ := v.TokenizeCard(context.Background(), visaTest)
		ctx, cancel := context.WithCancel(context.Background())
		cancel()

		if _, err := v.Detokenize(ctx, token); !errors.Is(err, context.Canceled) {
			t.Errorf("Detokenize(canceled) err = %v, want context.Canceled", err)
		}
		if _, err := v.TokenizeCard(ctx, visaTest); !errors.Is(err, context.Canceled) {
			t.Errorf("TokenizeCard(canceled) err = %v, want context.Canceled", err)
		}
		if err := v.SuspendToken(ctx, token); !errors.Is(err, context.Canceled) {
			t.Errorf("SuspendToken(canceled) err = %v, want context.Canceled", err)
		}
	})
}
