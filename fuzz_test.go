package tokenvault

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"maps"
	mathrand "math/rand/v2"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/tokenvault/tokenvault/internal/luhn"
	"github.com/tokenvault/tokenvault/internal/wire"
)

// maxQuoted bounds the bytes of an input that a failure message shows.
const maxQuoted = 80

// maskedQuote quotes s for a failure message with every run of six or more
// ASCII digits replaced by its length, so that a message never prints a card
// number that a fuzzer produced. It shows at most maxQuoted bytes of s.
func maskedQuote(s string) string {
	var b strings.Builder
	run := 0
	flush := func(end int) {
		if run >= 6 {
			fmt.Fprintf(&b, "<%d digits>", run)
		} else {
			b.WriteString(s[end-run : end])
		}
		run = 0
	}
	for i := 0; i < len(s); i++ {
		if isDigit(s[i]) {
			run++
			continue
		}
		flush(i)
		b.WriteByte(s[i])
	}
	flush(len(s))

	masked := b.String()
	if len(masked) > maxQuoted {
		return fmt.Sprintf("%q... (%d bytes)", masked[:maxQuoted], len(s))
	}
	return fmt.Sprintf("%q", masked)
}

// maskedError is maskedQuote of err's text, or "<nil>".
func maskedError(err error) string {
	if err == nil {
		return "<nil>"
	}
	return maskedQuote(err.Error())
}

// fuzzVaultValues are the values FuzzDetokenize tokenizes: three public test
// card numbers and an example IBAN, in the three token formats.
var fuzzVaultValues = []struct {
	card   bool
	value  string
	format Format
}{
	{true, "4111111111111111", FormatCard},
	{true, "5555555555554444", FormatCardFirstSix},
	{true, "378282246310005", FormatOpaque},
	{false, "DE89370400440532013000", FormatOpaque},
}

// newFuzzVault returns a vault over a MemoryStore and the values of its
// tokens. It draws keys, tokens and IVs from a seeded generator in place of
// crypto/rand.Reader, and takes the time from a fixed clock. So every process
// of a fuzzing run has the same tokens, and the real tokens among the seeds
// are real in each worker.
func newFuzzVault(tb testing.TB) (*Vault, map[string]string) {
	tb.Helper()
	saved := rand.Reader
	rand.Reader = mathrand.NewChaCha8([32]byte{'t', 'o', 'k', 'e', 'n', 'v', 'a', 'u', 'l', 't'})
	defer func() { rand.Reader = saved }()

	keys, err := GenerateKeyRing()
	if err != nil {
		tb.Fatalf("GenerateKeyRing err = %v", err)
	}
	clock := func() time.Time { return time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC) }
	v, err := New(NewMemoryStore(), keys, WithClock(clock))
	if err != nil {
		tb.Fatalf("New err = %v", err)
	}
	tb.Cleanup(func() { v.Close() })

	ctx := context.Background()
	values := make(map[string]string, len(fuzzVaultValues))
	for i, fv := range fuzzVaultValues {
		var token string
		if fv.card {
			token, err = v.TokenizeCard(ctx, fv.value, WithFormat(fv.format))
		} else {
			token, err = v.Tokenize(ctx, []byte(fv.value), WithFormat(fv.format))
		}
		if err != nil {
			tb.Fatalf("tokenize value %d: err = %s", i, maskedError(err))
		}
		values[token] = fv.value
	}
	return v, values
}

// changeOneChar returns token with the character at i replaced by another
// character of the token's alphabet.
func changeOneChar(token string, i int) string {
	b := []byte(token)
	switch c := b[i]; {
	case c == '9':
		b[i] = '0'
	case c == 'v':
		b[i] = 'a'
	default:
		b[i]++
	}
	return string(b)
}

func FuzzDetokenize(f *testing.F) {
	v, values := newFuzzVault(f)

	junk := make([]byte, 1000)
	for i := range junk {
		junk[i] = byte(i*131 + 7)
	}
	seeds := []string{
		"", " ", "\t\n", "tok_", "tok_" + strings.Repeat("0", 36), "tok_" + strings.Repeat("v", 36),
		string(junk), strings.Repeat("a", 1000), "4111111111111111", "4111111111111112",
	}
	for _, token := range slices.Sorted(maps.Keys(values)) {
		seeds = append(seeds,
			token, token+"x", token+" ", token+"\n", token+"\x00", " "+token, "\n"+token,
			strings.ToUpper(token), token[:len(token)-1], token+token[len(token)-1:],
			changeOneChar(token, len(token)/2), changeOneChar(token, len(token)-1),
		)
	}
	for _, s := range seeds {
		f.Add(s)
	}

	ctx := context.Background()
	f.Fuzz(func(t *testing.T, token string) {
		got, err := v.Detokenize(ctx, token)
		if want, ok := values[token]; ok {
			if err != nil {
				t.Fatalf("Detokenize(%s) err = %s, want nil for a stored token", maskedQuote(token), maskedError(err))
			}
			if string(got) != want {
				t.Errorf("Detokenize(%s) returned %d bytes that differ from the %d-byte value", maskedQuote(token), len(got), len(want))
			}
			return
		}

		if !errors.Is(err, ErrNotFound) {
			t.Fatalf("Detokenize(%s) err = %s, want ErrNotFound", maskedQuote(token), maskedError(err))
		}
		if err.Error() != ErrNotFound.Error() {
			t.Errorf("Detokenize(%s) error text = %s, want %q as for every unknown token", maskedQuote(token), maskedError(err), ErrNotFound)
		}
		if got != nil {
			t.Errorf("Detokenize(%s) returned %d bytes with ErrNotFound, want nil", maskedQuote(token), len(got))
		}
	})
}

// asciiDigits returns the ASCII digits of s, in order.
func asciiDigits(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if isDigit(s[i]) {
			b.WriteByte(s[i])
		}
	}
	return b.String()
}

// leaksDigits reports whether text contains six consecutive digits of the
// digits in input, separators removed.
func leaksDigits(text, input string) bool {
	digits := asciiDigits(input)
	for i := 0; i+6 <= len(digits); i++ {
		if strings.Contains(text, digits[i:i+6]) {
			return true
		}
	}
	return false
}

// regroup returns spellings of digits that ParseCardNumber must accept:
// groups of four split by spaces or dashes, a separator between every two
// digits, and spaces around the number.
func regroup(digits string) []string {
	var spaced, dashed, every strings.Builder
	for i := 0; i < len(digits); i++ {
		if i > 0 && i%4 == 0 {
			spaced.WriteByte(' ')
			dashed.WriteByte('-')
		}
		if i > 0 {
			every.WriteByte(" -"[i%2])
		}
		spaced.WriteByte(digits[i])
		dashed.WriteByte(digits[i])
		every.WriteByte(digits[i])
	}
	return []string{spaced.String(), dashed.String(), every.String(), "  " + digits + " "}
}

func FuzzParseCardNumber(f *testing.F) {
	for _, s := range []string{
		"4111111111111111", "4111 1111 1111 1111", "4111-1111-1111-1111", "  378282246310005  ",
		"6011111111111117", "4222222222222", "4111111111111112", "41111111111111111111",
		"411111111111", "4111--1111-1111-1111", "4111 1111 1111 111-", "-4111111111111111",
		"4111\t1111 1111 1111", "4111111111111111\x00", "\u0664\u0661\u0661\u0661", "\uff14111111111111111",
		"", " ", strings.Repeat("4", 65), strings.Repeat("4 ", 32),
	} {
		f.Add(s)
	}

	f.Fuzz(func(t *testing.T, s string) {
		card, err := ParseCardNumber(s)
		if err != nil {
			if !errors.Is(err, ErrInvalidCardNumber) {
				t.Errorf("ParseCardNumber(%s) err = %s, want ErrInvalidCardNumber", maskedQuote(s), maskedError(err))
			}
			if leaksDigits(err.Error(), s) {
				t.Errorf("ParseCardNumber(%s) error text contains six or more digits of the input", maskedQuote(s))
			}
			if card.Digits() != "" {
				t.Errorf("ParseCardNumber(%s) returned %d digits with an error, want none", maskedQuote(s), len(card.Digits()))
			}
			return
		}

		digits := card.Digits()
		if len(digits) < MinCardDigits || len(digits) > MaxCardDigits {
			t.Fatalf("ParseCardNumber(%s).Digits() has %d digits, want %d to %d", maskedQuote(s), len(digits), MinCardDigits, MaxCardDigits)
		}
		if asciiDigits(digits) != digits {
			t.Fatalf("ParseCardNumber(%s).Digits() has bytes other than ASCII digits", maskedQuote(s))
		}
		if digits != asciiDigits(s) {
			t.Errorf("ParseCardNumber(%s).Digits() differ from the digits of the input", maskedQuote(s))
		}
		if !luhn.Valid(digits) {
			t.Errorf("ParseCardNumber(%s) accepted a number that fails the Luhn check", maskedQuote(s))
		}

		for _, spelling := range append([]string{digits}, regroup(digits)...) {
			again, err := ParseCardNumber(spelling)
			if err != nil {
				t.Errorf("ParseCardNumber(%s) err = %s, want nil", maskedQuote(spelling), maskedError(err))
				continue
			}
			if again.Digits() != digits {
				t.Errorf("ParseCardNumber(%s).Digits() differ from those of %s", maskedQuote(spelling), maskedQuote(s))
			}
		}
	})
}

// cardDigits returns 12 to 19 ASCII digits made from the bytes of s, so that
// every fuzz input gives a card number to build a token for.
func cardDigits(s string) string {
	b := make([]byte, 0, MaxCardDigits)
	for i := 0; i < len(s) && len(b) < MaxCardDigits; i++ {
		b = append(b, '0'+s[i]%10)
	}
	for len(b) < MinCardDigits {
		b = append(b, '0'+byte(len(b)%10))
	}
	return string(b)
}

func FuzzPlausibleToken(f *testing.F) {
	f.Add("tok_"+strings.Repeat("0", 36), int64(0), "4111111111111111", false)
	f.Add("tok_"+strings.Repeat("v", 35)+"g", int64(-1), "5555555555554444", true)
	f.Add("tok_"+strings.Repeat("v", 36), int64(1<<47), "411111111111", true)
	f.Add("TOK_"+strings.Repeat("0", 36), int64(1735787045000), "378282246310005", false)
	f.Add("4111111111111112", int64(-1<<62), "", true)
	f.Add("4111111111111111", int64(1<<62), "12345678901234567890", false)
	f.Add("", int64(0), "0", false)

	f.Fuzz(func(t *testing.T, s string, millis int64, seed string, keepFirstSix bool) {
		if plausibleToken(s) && strings.HasPrefix(s, opaquePrefix) {
			raw, err := opaqueEncoding.DecodeString(s[len(opaquePrefix):])
			if err != nil {
				t.Fatalf("plausible token %s does not decode: %v", maskedQuote(s), err)
			}
			if again := opaquePrefix + opaqueEncoding.EncodeToString(raw); again != s {
				t.Errorf("plausible token %s re-encodes to %q", maskedQuote(s), again)
			}
		}

		opaque := newOpaqueToken(time.UnixMilli(millis))
		if !plausibleToken(opaque) {
			t.Errorf("plausibleToken(newOpaqueToken(%d ms)) = false, want true for %q", millis, opaque)
		}

		digits := cardDigits(seed)
		token, err := newCardToken(digits, keepFirstSix)
		if err != nil {
			t.Fatalf("newCardToken(%d digits, %t) err = %v", len(digits), keepFirstSix, err)
		}
		if !plausibleToken(token) {
			t.Errorf("plausibleToken(newCardToken(%d digits, %t)) = false, want true", len(digits), keepFirstSix)
		}
		if len(token) != len(digits) || token[len(token)-4:] != digits[len(digits)-4:] {
			t.Errorf("newCardToken(%d digits, %t) has %d digits or other last four, want the same", len(digits), keepFirstSix, len(token))
		}
		if keepFirstSix && token[:6] != digits[:6] {
			t.Errorf("newCardToken(%d digits, true) changed the first six digits", len(digits))
		}
	})
}

// nanoTime returns the time n nanoseconds after the Unix epoch in UTC, and
// the zero time for 0, which is how package wire decodes times.
func nanoTime(n int64) time.Time {
	if n == 0 {
		return time.Time{}
	}
	return time.Unix(0, n).UTC()
}

func emptyToNil(b []byte) []byte {
	if len(b) == 0 {
		return nil
	}
	return b
}

// FuzzDecodeRecord checks that decodeRecord never panics on arbitrary bytes,
// and that a record built from fuzzed fields survives encodeRecord and
// decodeRecord. The record's expiry goes through the validation of the
// ExpiresAt and ExpiresAfter options, so every expiry a vault accepts must
// round-trip through the bbolt encoding.
func FuzzDecodeRecord(f *testing.F) {
	sample := &Record{
		Token: "tok_0000000000000000000000000000000000", State: StateActive, Revision: 3,
		Metadata: Metadata{
			Kind: KindCard, Format: FormatCardFirstSix, Brand: BrandVisa, First6: "411111", Last4: "1111",
			Deterministic: true, Scope: "checkout",
			Created: time.Unix(1735787045, 0).UTC(), Updated: time.Unix(1735787046, 5).UTC(),
		},
		KeyID: "0123456789abcdef", Ciphertext: []byte("gAAAAA"), Fingerprint: bytes.Repeat([]byte{1}, 32),
	}
	encoded := encodeRecord(sample)
	farFuture := time.Date(3000, 1, 1, 0, 0, 0, 0, time.UTC).Unix()
	f.Add(encoded, "tok_x", byte(0), uint64(0), byte(0), byte(0), "", "", "", false, "", int64(0), int64(0), byte(0), int64(0), "", []byte{}, []byte{}, []byte{})
	f.Add(encoded[:len(encoded)-1], "4111111111111112", byte(1), uint64(1<<63), byte(1), byte(2), "visa", "411111", "1111", true, "scope",
		int64(1735787045000000000), int64(-1), byte(1), int64(1<<62), "id", []byte("ct"), []byte("fp"), []byte("dk"))
	f.Add(append(encoded, 0), "", byte(2), uint64(7), byte(1), byte(1), "", "", "", true, "\xff",
		int64(1735787045000000000), int64(1), byte(2), farFuture, "", []byte{0}, []byte{}, []byte{0})
	f.Add([]byte("0"), "", byte(0), uint64(53), byte(0), byte(0), "", "", "", false, "",
		int64(0), int64(0), byte(2), int64(0), "", []byte{}, []byte("0"), []byte{})
	f.Add([]byte{recordEncodingV1, 9}, "t", byte(2), uint64(7), byte(1), byte(1), "", "", "", true, "",
		int64(1), int64(1), byte(2), int64(-farFuture), "", []byte{0}, []byte{}, []byte{0})

	f.Fuzz(func(t *testing.T, raw []byte, token string, state byte, revision uint64, kind, format byte,
		brand, first6, last4 string, deterministic bool, scope string, created, updated int64,
		expiryKind byte, expiry int64, keyID string, ciphertext, fingerprint, detKey []byte) {

		if rec, err := decodeRecord(token, raw); err == nil {
			if rec.Token != token {
				t.Errorf("decodeRecord(%s, ...).Token = %s", maskedQuote(token), maskedQuote(rec.Token))
			}
			again, err := decodeRecord(token, encodeRecord(rec))
			if err != nil {
				t.Fatalf("decodeRecord(encodeRecord(decodeRecord(raw))) err = %s", maskedError(err))
			}
			if diff := cmp.Diff(rec, again); diff != "" {
				t.Errorf("decodeRecord(encodeRecord(decodeRecord(raw))) differs (-first +second):\n%s", diff)
			}
		} else if !errors.Is(err, ErrIntegrity) {
			t.Errorf("decodeRecord(arbitrary bytes) err = %s, want ErrIntegrity", maskedError(err))
		}

		rec := &Record{
			Token:    token,
			State:    State(1 + state%3),
			Revision: revision,
			Metadata: Metadata{
				Kind:          Kind(1 + kind%2),
				Format:        Format(1 + format%3),
				Brand:         Brand(brand),
				First6:        first6,
				Last4:         last4,
				Deterministic: deterministic,
				Scope:         scope,
				Created:       nanoTime(created),
				Updated:       nanoTime(updated),
			},
			KeyID:            KeyID(keyID),
			Ciphertext:       emptyToNil(ciphertext),
			Fingerprint:      emptyToNil(fingerprint),
			DeterministicKey: emptyToNil(detKey),
		}
		cfg := &tokenizeConfig{expiries: 1}
		switch expiryKind % 3 {
		case 1:
			cfg.expiryKind, cfg.expiresAfter = expiryAfter, time.Duration(expiry)
		case 2:
			cfg.expiryKind, cfg.expiresAt = expiryAt, time.Unix(expiry, 0)
		}

		// A vault's clock reads after 1970 in practice. Package wire stores the
		// instant of the Unix epoch as the zero time, so the expiry is
		// computed from a time after the epoch even when Created is not.
		if expires, err := cfg.expiry(time.Unix(0, max(created, 1))); err == nil {
			rec.Expires = expires
		}

		b := encodeRecord(rec)
		got, err := decodeRecord(token, b)
		if max(len(token), len(brand), len(first6), len(last4), len(scope), len(keyID),
			len(ciphertext), len(fingerprint), len(detKey)) > wire.MaxField {
			if !errors.Is(err, ErrIntegrity) {
				t.Errorf("decodeRecord of a field over wire.MaxField err = %s, want ErrIntegrity", maskedError(err))
			}
			return
		}
		if err != nil {
			t.Fatalf("decodeRecord(encodeRecord(rec)) err = %s", maskedError(err))
		}
		if diff := cmp.Diff(rec, got); diff != "" {
			t.Errorf("decodeRecord(encodeRecord(rec)) differs (-want +got):\n%s", diff)
		}
	})
}

func FuzzUnseal(f *testing.F) {
	token := "tok_0000000000000000000000000000000000"
	sealed := seal(token, []byte("value"))
	f.Add(token, []byte("value"), sealed)
	f.Add(token, []byte{}, sealed[:len(sealed)-5])
	f.Add("", []byte("v"), []byte{sealVersion, 0})
	f.Add("4111111111111112", []byte("4111111111111111"), []byte{sealVersion, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80})
	f.Add("t", []byte("v"), []byte{sealVersion})
	f.Add("t", []byte("v"), []byte{})
	f.Add(strings.Repeat("t", 200), bytes.Repeat([]byte{0xff}, 300), []byte{0, 1, 't'})

	f.Fuzz(func(t *testing.T, token string, value, payload []byte) {
		if got, err := unseal(token, payload); err == nil {
			if !bytes.HasSuffix(payload, got) {
				t.Errorf("unseal(%s, payload) returned bytes that do not end the payload", maskedQuote(token))
			}
		} else if !errors.Is(err, ErrIntegrity) {
			t.Errorf("unseal(%s, payload) err = %s, want ErrIntegrity", maskedQuote(token), maskedError(err))
		}

		sealed := seal(token, value)
		got, err := unseal(token, sealed)
		if err != nil {
			t.Fatalf("unseal(%s, seal(%s, value)) err = %s", maskedQuote(token), maskedQuote(token), maskedError(err))
		}
		if !bytes.Equal(got, value) {
			t.Errorf("unseal(seal(%s, %d bytes)) returned %d other bytes", maskedQuote(token), len(value), len(got))
		}

		// Without its length check, unseal would accept a prefix of token,
		// or token followed by the first bytes of the value.
		others := []string{token + "x", "x" + token[min(1, len(token)):], token[:max(len(token)-1, 0)]}
		if len(value) > 0 {
			others = append(others, token+string(value[:1]))
		}
		for _, other := range others {
			if other == token {
				continue
			}
			if _, err := unseal(other, sealed); !errors.Is(err, ErrIntegrity) {
				t.Errorf("unseal(%s, seal(%s, value)) err = %s, want ErrIntegrity", maskedQuote(other), maskedQuote(token), maskedError(err))
			}
		}
	})
}
