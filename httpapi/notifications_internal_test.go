package httpapi

import (
	"context"
	"math/rand/v2"
	"strconv"
	"testing"

	"github.com/tokenvault/tokenvault"
)

func TestWithLuhnCheckDigit(t *testing.T) {
	tests := []struct{ in, want string }{
		{"4012888888881882", "4012888888881881"},
		{"4012888888881881", "4012888888881881"},
		{"4012 8888 8888 1882", "4012 8888 8888 1881"},
		{" 5105-1051-0510-5101 ", " 5105-1051-0510-5100 "},
		{"", ""},
		{"no digits", "no digits"},
	}
	for _, tt := range tests {
		if got := withLuhnCheckDigit(tt.in); got != tt.want {
			t.Errorf("withLuhnCheckDigit(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

func TestWithLuhnCheckDigitPassesLuhn(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for range 1000 {
		length := tokenvault.MinCardDigits + rng.IntN(tokenvault.MaxCardDigits-tokenvault.MinCardDigits+1)
		number := strconv.Itoa(1 + rng.IntN(9))
		for len(number) < length {
			number += strconv.Itoa(rng.IntN(10))
		}

		fixed := withLuhnCheckDigit(number)
		if fixed[:length-1] != number[:length-1] {
			t.Fatalf("withLuhnCheckDigit(%s) = %s changed more than the last digit", number, fixed)
		}
		if _, err := tokenvault.ParseCardNumber(fixed); err != nil {
			t.Fatalf("ParseCardNumber(withLuhnCheckDigit(%s) = %s) err = %v, want nil", number, fixed, err)
		}
	}
}

// TestCardBrandMatchesVault checks cardBrand against the brand and the
// errors of TokenizeCard, which parses card numbers as ApplyNotification does.
func TestCardBrandMatchesVault(t *testing.T) {
	keys, err := tokenvault.GenerateKeyRing()
	if err != nil {
		t.Fatal(err)
	}
	v, err := tokenvault.New(tokenvault.NewMemoryStore(), keys)
	if err != nil {
		t.Fatal(err)
	}
	defer v.Close()
	ctx := context.Background()

	numbers := []string{
		"4111111111111111", "4111111111111112", "5105 1051 0510 5101", "6703444444444449",
		"6703444444444448", "0111111111111111", "41111111111", "4111x111111111112", "4111--1111111111112", "",
	}
	for _, number := range numbers {
		for _, allowNonLuhn := range []bool{false, true} {
			var opts []tokenvault.TokenizeOption
			if allowNonLuhn {
				opts = append(opts, tokenvault.AllowNonLuhn())
			}
			var want tokenvault.Brand
			token, wantErr := v.TokenizeCard(ctx, number, opts...)
			if wantErr == nil {
				info, err := v.Inspect(ctx, token)
				if err != nil {
					t.Fatal(err)
				}
				want = info.Brand
			}

			got, err := cardBrand(number, allowNonLuhn)
			if got != want || (err == nil) != (wantErr == nil) {
				t.Errorf("cardBrand(%q, %t) = %q, %v, want %q, %v", number, allowNonLuhn, got, err, want, wantErr)
			}
			if err != nil && err.Error() != wantErr.Error() {
				t.Errorf("cardBrand(%q, %t) err = %v, want the vault's %v", number, allowNonLuhn, err, wantErr)
			}
		}
	}
}
