package tokenvault

import (
	"bytes"
	"context"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/tokenvault/tokenvault/internal/luhn"
)

func TestCardTokenShape(t *testing.T) {
	forEachStore(t, func(t *testing.T, v *Vault, s Store, clock *testClock) {
		ctx := context.Background()
		pans := []string{"4111111111111111", "378282246310005", "4222222222222", "6250941006528000007", "30569309025904"}
		for _, pan := range pans {
			for _, format := range []Format{FormatCard, FormatCardFirstSix} {
				if format == FormatCardFirstSix && len(pan) < MinFirstSixDigits {
					if _, err := v.TokenizeCard(ctx, pan, WithFormat(format)); !errors.Is(err, ErrInvalidOption) {
						t.Errorf("TokenizeCard(%d digits, %s) err = %v, want ErrInvalidOption", len(pan), format, err)
					}
					continue
				}
				for range 50 {
					token, err := v.TokenizeCard(ctx, pan, WithFormat(format))
					if err != nil {
						t.Fatalf("TokenizeCard(%s, %s) err = %v", maskDigits(pan), format, err)
					}
					checkCardToken(t, token, pan, format == FormatCardFirstSix)
				}
			}
		}
	})
}

func checkCardToken(t *testing.T, token, pan string, keepsFirstSix bool) {
	t.Helper()
	if len(token) != len(pan) {
		t.Fatalf("token %s has %d digits, want %d", token, len(token), len(pan))
	}
	if strings.Trim(token, "0123456789") != "" {
		t.Fatalf("token %s has a character that is not a digit", token)
	}
	if luhn.Valid(token) {
		t.Fatalf("token %s passes the Luhn check, want it to fail", token)
	}
	if token == pan {
		t.Fatalf("token equals the card number")
	}
	if token[len(token)-4:] != pan[len(pan)-4:] {
		t.Fatalf("token %s does not keep the last four digits %s", token, pan[len(pan)-4:])
	}
	if keepsFirstSix && token[:6] != pan[:6] {
		t.Fatalf("token %s does not keep the first six digits %s", token, pan[:6])
	}
}

// TestCardTokenDigitsVary checks that the free digits are random: over many
// tokens of one number, every free position takes several values.
func TestCardTokenDigitsVary(t *testing.T) {
	const pan = "5555555555554444"
	seen := make([]map[byte]bool, len(pan))
	for i := range seen {
		seen[i] = make(map[byte]bool)
	}
	for range 500 {
		token, err := newCardToken(pan, false)
		if err != nil {
			t.Fatalf("newCardToken err = %v", err)
		}
		for i := range len(token) {
			seen[i][token[i]] = true
		}
	}
	for i := range len(pan) - 4 {
		if len(seen[i]) < 8 {
			t.Errorf("position %d took %d distinct digits over 500 tokens, want about 10", i, len(seen[i]))
		}
	}
}

// collidingStore is a real store whose Create reports every token as taken,
// as a full token space would.
type collidingStore struct {
	Store
	creates int
}

func (s *collidingStore) Create(ctx context.Context, rec *Record) error {
	s.creates++
	return ErrTokenExists
}

// TestCardTokenSpaceExhausted checks that the vault draws a bounded number of
// tokens when each one is taken, then reports the exhausted space instead of
// looping or reusing a token.
func TestCardTokenSpaceExhausted(t *testing.T) {
	ctx := context.Background()
	s := &collidingStore{Store: NewMemoryStore()}
	keys, _ := GenerateKeyRing()
	v, err := New(s, keys)
	if err != nil {
		t.Fatalf("New err = %v", err)
	}

	_, err = v.TokenizeCard(ctx, "378282246310005", WithFormat(FormatCardFirstSix))
	if !errors.Is(err, ErrTokenSpaceExhausted) {
		t.Fatalf("TokenizeCard with every token taken err = %v, want ErrTokenSpaceExhausted", err)
	}
	if s.creates != maxTokenAttempts {
		t.Errorf("TokenizeCard drew %d tokens, want %d", s.creates, maxTokenAttempts)
	}
}

func TestOpaqueTokenShape(t *testing.T) {
	forEachStore(t, func(t *testing.T, v *Vault, s Store, clock *testClock) {
		ctx := context.Background()
		var tokens []string
		for i := range 100 {
			clock.Advance(time.Millisecond)
			var token string
			var err error
			if i%2 == 0 {
				token, err = v.Tokenize(ctx, []byte("secret"))
			} else {
				token, err = v.TokenizeCard(ctx, visaTest, WithFormat(FormatOpaque))
			}
			if err != nil {
				t.Fatalf("tokenize err = %v", err)
			}
			if !strings.HasPrefix(token, "tok_") || len(token) != opaqueTokenChars || !plausibleToken(token) {
				t.Fatalf("token %q is not tok_ plus 36 base32hex characters", token)
			}
			tokens = append(tokens, token)
		}
		if !slices.IsSorted(tokens) {
			t.Error("tokens created at increasing times do not sort in creation order")
		}
		if len(slices.Compact(slices.Clone(tokens))) != len(tokens) {
			t.Error("opaque tokens repeat")
		}
	})
}

func TestTokenizeCardNormalizes(t *testing.T) {
	forEachStore(t, func(t *testing.T, v *Vault, s Store, clock *testClock) {
		ctx := context.Background()
		for _, input := range []string{"4111111111111111", "4111 1111 1111 1111", "4111-1111-1111-1111", " 4111 1111-1111 1111 "} {
			token, err := v.TokenizeCard(ctx, input)
			if err != nil {
				t.Fatalf("TokenizeCard(%q) err = %v", maskDigits(input), err)
			}
			got, err := v.Detokenize(ctx, token)
			if err != nil || string(got) != visaTest {
				t.Errorf("Detokenize after TokenizeCard(%q) err = %v, digits match = %t", maskDigits(input), err, string(got) == visaTest)
			}
		}
	})
}

func TestTokenizeCardRejects(t *testing.T) {
	forEachStore(t, func(t *testing.T, v *Vault, s Store, clock *testClock) {
		ctx := context.Background()
		cases := map[string]string{
			"letter":            "4111 1111 1111 111a",
			"full-width digits": "４１１１１１１１１１１１１１１１",
			"dot separator":     "4111.1111.1111.1111",
			"double space":      "4111  1111 1111 1111",
			"leading dash":      "-4111111111111111",
			"trailing dash":     "4111111111111111-",
			"space and dash":    "4111 -1111 1111 1111",
			"tab":               "4111\t1111111111111",
			"11 digits":         "41111111116",
			"20 digits":         "41111111111111111113",
			"empty":             "",
			"spaces only":       "   ",
			"luhn failure":      "4111111111111112",
			"newline":           "4111111111111111\n",
			"long input":        strings.Repeat("4", 100),
			"leading zeros":     "0004111111111111111",
		}
		for name, input := range cases {
			_, err := v.TokenizeCard(ctx, input)
			if !errors.Is(err, ErrInvalidCardNumber) {
				t.Errorf("%s: TokenizeCard err = %v, want ErrInvalidCardNumber", name, err)
				continue
			}
			if digits := strings.Trim(input, " -"); len(digits) >= 6 && strings.Contains(err.Error(), digits[:6]) {
				t.Errorf("%s: error %q echoes the input", name, err)
			}
		}
	})
}

func TestTokenizeNonLuhn(t *testing.T) {
	forEachStore(t, func(t *testing.T, v *Vault, s Store, clock *testClock) {
		ctx := context.Background()
		const pan = "4417123456789112" // published test number that fails Luhn
		if _, err := v.TokenizeCard(ctx, pan); !errors.Is(err, ErrInvalidCardNumber) {
			t.Fatalf("TokenizeCard(non-Luhn) err = %v, want ErrInvalidCardNumber", err)
		}

		for _, format := range []Format{FormatCard, FormatCardFirstSix, FormatOpaque} {
			token, err := v.TokenizeCard(ctx, pan, AllowNonLuhn(), WithFormat(format))
			if err != nil {
				t.Fatalf("TokenizeCard(non-Luhn, AllowNonLuhn, %s) err = %v", format, err)
			}
			if format != FormatOpaque {
				checkCardToken(t, token, pan, format == FormatCardFirstSix)
			}
			got, err := v.Detokenize(ctx, token)
			if err != nil || string(got) != pan {
				t.Errorf("Detokenize(%s) err = %v, digits match = %t", token, err, string(got) == pan)
			}
		}
	})
}

func TestTokenizeData(t *testing.T) {
	forEachStore(t, func(t *testing.T, v *Vault, s Store, clock *testClock) {
		ctx := context.Background()
		values := [][]byte{
			[]byte("x"),
			[]byte("DE89 3704 0044 0532 0130 00"),
			{0, 1, 2, 0xff, 0xfe},
			bytes.Repeat([]byte{0xab}, MaxDataSize),
		}
		for _, value := range values {
			token, err := v.Tokenize(ctx, value)
			if err != nil {
				t.Fatalf("Tokenize(%d bytes) err = %v", len(value), err)
			}
			got, err := v.Detokenize(ctx, token)
			if err != nil || !bytes.Equal(got, value) {
				t.Errorf("Detokenize after Tokenize(%d bytes) err = %v, equal = %t", len(value), err, bytes.Equal(got, value))
			}
		}

		if _, err := v.Tokenize(ctx, nil); !errors.Is(err, ErrInvalidData) {
			t.Errorf("Tokenize(empty) err = %v, want ErrInvalidData", err)
		}
		if _, err := v.Tokenize(ctx, make([]byte, MaxDataSize+1)); !errors.Is(err, ErrInvalidData) {
			t.Errorf("Tokenize(MaxDataSize+1 bytes) err = %v, want ErrInvalidData", err)
		}
		for _, f := range []Format{FormatCard, FormatCardFirstSix, Format(9)} {
			if _, err := v.Tokenize(ctx, []byte("data"), WithFormat(f)); !errors.Is(err, ErrInvalidOption) {
				t.Errorf("Tokenize(WithFormat(%s)) err = %v, want ErrInvalidOption", f, err)
			}
		}
		if _, err := v.TokenizeCard(ctx, visaTest, WithFormat(Format(9))); !errors.Is(err, ErrInvalidOption) {
			t.Errorf("TokenizeCard(WithFormat(9)) err = %v, want ErrInvalidOption", err)
		}
	})
}

func TestTokenizeExpiry(t *testing.T) {
	forEachStore(t, func(t *testing.T, v *Vault, s Store, clock *testClock) {
		ctx := context.Background()

		token, err := v.TokenizeCard(ctx, visaTest, ExpiresAfter(time.Hour))
		if err != nil {
			t.Fatalf("TokenizeCard(ExpiresAfter(1h)) err = %v", err)
		}
		info, err := v.Inspect(ctx, token)
		if err != nil || !info.Expires.Equal(clock.Now().Add(time.Hour)) {
			t.Fatalf("Inspect Expires = %v, err %v; want creation time + 1h", info.Expires, err)
		}
		clock.Advance(time.Hour - time.Second)
		if _, err := v.Detokenize(ctx, token); err != nil {
			t.Fatalf("Detokenize before expiry err = %v", err)
		}
		clock.Advance(time.Second)
		if _, err := v.Detokenize(ctx, token); !errors.Is(err, ErrExpired) {
			t.Fatalf("Detokenize at expiry err = %v, want ErrExpired", err)
		}
		if info, _ := v.Inspect(ctx, token); !info.Expired {
			t.Error("Inspect Expired = false after expiry")
		}

		at := clock.Now().Add(24 * time.Hour)
		token, err = v.Tokenize(ctx, []byte("data"), ExpiresAt(at))
		if err != nil {
			t.Fatalf("Tokenize(ExpiresAt) err = %v", err)
		}
		if info, _ := v.Inspect(ctx, token); !info.Expires.Equal(at) {
			t.Errorf("Expires = %v, want %v", info.Expires, at)
		}

		token, err = v.Tokenize(ctx, []byte("data"), NoExpiry())
		if err != nil {
			t.Fatalf("Tokenize(NoExpiry) err = %v", err)
		}
		if info, _ := v.Inspect(ctx, token); !info.Expires.IsZero() {
			t.Errorf("NoExpiry: Expires = %v, want zero", info.Expires)
		}

		bad := map[string][]TokenizeOption{
			"zero duration":     {ExpiresAfter(0)},
			"negative duration": {ExpiresAfter(-time.Minute)},
			"past time":         {ExpiresAt(clock.Now().Add(-time.Second))},
			"now":               {ExpiresAt(clock.Now())},
			"two options":       {ExpiresAfter(time.Hour), NoExpiry()},
		}
		for name, opts := range bad {
			if _, err := v.TokenizeCard(ctx, visaTest, opts...); !errors.Is(err, ErrInvalidOption) {
				t.Errorf("%s: TokenizeCard err = %v, want ErrInvalidOption", name, err)
			}
		}
	})
}

func TestTokenizeMetadata(t *testing.T) {
	forEachStore(t, func(t *testing.T, v *Vault, s Store, clock *testClock) {
		ctx := context.Background()
		token, err := v.TokenizeCard(ctx, "378282246310005", WithFormat(FormatCardFirstSix))
		if err != nil {
			t.Fatalf("TokenizeCard err = %v", err)
		}
		info, err := v.Inspect(ctx, token)
		if err != nil {
			t.Fatalf("Inspect err = %v", err)
		}
		want := Metadata{
			Kind: KindCard, Format: FormatCardFirstSix, Brand: BrandAmex, First6: "378282", Last4: "0005",
			Created: clock.Now(), Updated: clock.Now(),
		}
		if info.Metadata != want || info.State != StateActive || info.Revision != 0 {
			t.Errorf("Inspect = %+v, want metadata %+v, active, revision 0", info, want)
		}

		token, err = v.TokenizeCard(ctx, "5555555555554444")
		if err != nil {
			t.Fatalf("TokenizeCard err = %v", err)
		}
		info, _ = v.Inspect(ctx, token)
		if info.First6 != "" || info.Format != FormatCard {
			t.Errorf("FormatCard kept First6 %q, format %s; want none, card", info.First6, info.Format)
		}
	})
}

// maskDigits hides a card number in test messages.
func maskDigits(s string) string {
	if len(s) <= 4 {
		return s
	}
	return strings.Repeat("*", len(s)-4) + s[len(s)-4:]
}
