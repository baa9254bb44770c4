package tokenvault

import (
	"context"
	"errors"
	"strings"
	"testing"
)

func TestContainsCardNumber(t *testing.T) {
	cases := map[string]bool{
		"4111111111111111":                             true,
		"card 4111 1111 1111 1111 lost":                true,
		"ref 4111-1111-1111-1111":                      true,
		"xx41111111111111110000":                       false, // digits inside a longer number
		"4111111111111112":                             false,
		"0004111111111111111":                          false, // starts with 0
		"order 12345 shipped":                          false,
		"2026-12-04 12:00":                             false,
		"":                                             false,
		"4111  1111 1111 1111":                         true, // aligned groups
		"4111\u00a01111\u00a01111\u00a01111":           true, // no-break spaces, as copied from a web page
		"4111\u202f1111 1111\u20071111":                true,
		"4111     1111 1111 1111":                      false, // five spaces: another column
		"4111,1111,1111,1111":                          false, // commas list numbers
		"4111111111111111  123":                        true,  // a code after two spaces
		"4111111111111111\t\t12/28":                    true,  // an expiry after tabs
		"4111111111111111\u00a012/28":                  true,  // an expiry after a no-break space
		"4111 1111 1111 1111  123":                     true,
		"123  4111 1111 1111 1111":                     true,
		"4111 - 1111 - 1111 - 1111":                    true,
		"4111  1111  1111  1111  12/29":                true, // groups and an expiry, all after two spaces
		strings.Repeat("7", 70) + "  4111111111111111": true, // after a run of 70 digits
		"card 4111.1111.1111.1111":                     true,
		"4111/1111_1111\t1111":                         true,
		"4111.-1111.1111.1111":                         false, // two separators end the run
		"v10.20.30.40.50.60":                           false, // 12 digits that fail the Luhn check
		"2026/12/04 12:00:00.123456":                   false,
		"tok_06h45c1n6gbaopedgies0c821cmoi":            false,
	}
	for text, want := range cases {
		if got := ContainsCardNumber(text); got != want {
			t.Errorf("ContainsCardNumber(%q) = %t, want %t", maskDigits(text), got, want)
		}
	}
}

func TestReasonWithCardNumberRejected(t *testing.T) {
	forEachStore(t, func(t *testing.T, v *Vault, s Store, clock *testClock) {
		ctx := context.Background()
		token, _ := v.Tokenize(ctx, []byte("value"))
		if err := v.SuspendToken(ctx, token, WithReason("customer gave 4111 1111 1111 1111")); !errors.Is(err, ErrInvalidOption) {
			t.Errorf("SuspendToken with a card number in the reason err = %v, want ErrInvalidOption", err)
		}
		if err := v.SuspendToken(ctx, token, WithActor("5555555555554444")); !errors.Is(err, ErrInvalidOption) {
			t.Errorf("SuspendToken with a card number as actor err = %v, want ErrInvalidOption", err)
		}
	})
}
