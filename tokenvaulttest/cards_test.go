package tokenvaulttest

import (
	"context"
	"fmt"
	"runtime"
	"strings"
	"testing"

	"github.com/tokenvault/tokenvault"
)

// wantPrefixes is the list of issuer prefixes that CardGenerator promises,
// written out again here so that a change to cardPrefixes fails the tests.
var wantPrefixes = []struct {
	prefix string
	length int
	brand  tokenvault.Brand
}{
	{"4", 16, tokenvault.BrandVisa},
	{"51", 16, tokenvault.BrandMastercard},
	{"53", 16, tokenvault.BrandMastercard},
	{"55", 16, tokenvault.BrandMastercard},
	{"2221", 16, tokenvault.BrandMastercard},
	{"34", 15, tokenvault.BrandAmex},
	{"37", 15, tokenvault.BrandAmex},
	{"6011", 16, tokenvault.BrandDiscover},
	{"3530", 16, tokenvault.BrandJCB},
	{"6212", 16, tokenvault.BrandUnionPay},
}

// passesLuhn reports whether s passes the Luhn check. It is written apart
// from the generator's check digit code, so that a bug in one is not
// repeated in the other.
func passesLuhn(s string) bool {
	sum := 0
	for i := range len(s) {
		d := int(s[len(s)-1-i] - '0')
		if i%2 == 1 {
			d = 2 * d
			if d > 9 {
				d = d - 9
			}
		}
		sum += d
	}
	return sum%10 == 0
}

// maskCard returns n with at most its first six and last four characters
// shown, for failure messages.
func maskCard(n string) string {
	if len(n) < 10 {
		return fmt.Sprintf("<%d characters>", len(n))
	}
	return n[:6] + strings.Repeat("*", len(n)-10) + n[len(n)-4:]
}

// isDigits reports whether s is not empty and has only ASCII digits.
func isDigits(s string) bool {
	if s == "" {
		return false
	}
	for i := range len(s) {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

// matchPrefix returns the index in wantPrefixes of the only entry whose
// prefix and length match n, or -1 and the count of matches when not
// exactly one does.
func matchPrefix(n string) (index, matches int) {
	index = -1
	for i, p := range wantPrefixes {
		if len(n) == p.length && strings.HasPrefix(n, p.prefix) {
			index = i
			matches++
		}
	}
	if matches != 1 {
		return -1, matches
	}
	return index, matches
}

func TestCardGeneratorDistinctAndValid(t *testing.T) {
	const count = 200_000
	g := NewCardGenerator(42)
	seen := make(map[string]int, count)
	brands := make(map[tokenvault.Brand]int)

	for i := range count {
		n := g.Next()
		if !isDigits(n) {
			t.Fatalf("number %d (%s) has a character that is not an ASCII digit", i, maskCard(n))
		}
		if !passesLuhn(n) {
			t.Fatalf("number %d (%s) fails the Luhn check", i, maskCard(n))
		}
		if first, ok := seen[n]; ok {
			t.Fatalf("number %d (%s) repeats number %d", i, maskCard(n), first)
		}
		seen[n] = i

		p, matches := matchPrefix(n)
		if p < 0 {
			t.Fatalf("number %d (%s, %d digits) matches %d listed prefixes with their length, want 1", i, maskCard(n), len(n), matches)
		}
		card, err := tokenvault.ParseCardNumber(n)
		if err != nil {
			t.Fatalf("number %d (%s): ParseCardNumber err = %v", i, maskCard(n), err)
		}
		if got, want := card.Brand(), wantPrefixes[p].brand; got != want {
			t.Fatalf("number %d (%s): Brand() = %q, want %q", i, maskCard(n), got, want)
		}
		brands[card.Brand()]++
	}

	for _, p := range wantPrefixes {
		if brands[p.brand] == 0 {
			t.Errorf("brand %q never occurred in %d numbers", p.brand, count)
		}
	}
}

func TestCardGeneratorSameSeedSameNumbers(t *testing.T) {
	a := NewCardGenerator(7)
	b := NewCardGenerator(7)

	for i := range 1000 {
		if a.Next() != b.Next() {
			t.Fatalf("number %d differs between two generators with seed 7", i)
		}
	}
}

func TestCardGeneratorSeedsDiffer(t *testing.T) {
	a := NewCardGenerator(1)
	b := NewCardGenerator(2)

	same := 0
	for range 1000 {
		if a.Next() == b.Next() {
			same++
		}
	}
	if same == 1000 {
		t.Fatalf("seeds 1 and 2 gave the same first 1000 numbers")
	}
}

func TestCardGeneratorNumbersTokenize(t *testing.T) {
	ctx := context.Background()
	v := New(t)
	g := NewCardGenerator(3)

	for i := range 1000 {
		n := g.Next()
		p, _ := matchPrefix(n)
		if p < 0 {
			t.Fatalf("number %d (%s) has no listed prefix", i, maskCard(n))
		}

		token, err := v.TokenizeCard(ctx, n)
		if err != nil {
			t.Fatalf("number %d (%s): TokenizeCard err = %v", i, maskCard(n), err)
		}
		info, err := v.Inspect(ctx, token)
		if err != nil {
			t.Fatalf("number %d: Inspect(%q) err = %v", i, token, err)
		}
		if info.Kind != tokenvault.KindCard {
			t.Errorf("number %d: Inspect(%q).Kind = %v, want KindCard", i, token, info.Kind)
		}
		if want := wantPrefixes[p].brand; info.Brand != want {
			t.Errorf("number %d (%s): Inspect(%q).Brand = %q, want %q", i, maskCard(n), token, info.Brand, want)
		}
		if want := n[len(n)-4:]; info.Last4 != want {
			t.Errorf("number %d (%s): Inspect(%q).Last4 = %q, want %q", i, maskCard(n), token, info.Last4, want)
		}

		card, err := v.DetokenizeCard(ctx, token)
		if err != nil {
			t.Fatalf("number %d: DetokenizeCard(%q) err = %v", i, token, err)
		}
		if card.Digits() != n {
			t.Errorf("number %d (%s): DetokenizeCard(%q) = %s, want the tokenized number", i, maskCard(n), token, card)
		}
	}
}

func TestCardGeneratorHeapConstant(t *testing.T) {
	const count = 1_000_000
	g := NewCardGenerator(5)
	var before, after runtime.MemStats

	runtime.GC()
	runtime.ReadMemStats(&before)
	for range count {
		_ = g.Next()
	}
	runtime.GC()
	runtime.ReadMemStats(&after)
	runtime.KeepAlive(g)

	growth := int64(after.HeapAlloc) - int64(before.HeapAlloc)
	if growth >= 1<<20 || growth <= -1<<20 {
		t.Fatalf("HeapAlloc changed by %d bytes over %d numbers, want less than 1 MiB", growth, count)
	}
}

func TestCardGeneratorNextAllocatesOnce(t *testing.T) {
	g := NewCardGenerator(9)

	allocs := testing.AllocsPerRun(1000, func() { _ = g.Next() })
	if allocs != 1 {
		t.Fatalf("Next allocates %v times per call, want 1 (the string)", allocs)
	}
}

func TestCardGeneratorPanicsAtCapacity(t *testing.T) {
	g := NewCardGenerator(11)
	g.count = cardCapacity - 2

	for i := range 2 {
		n := g.Next()
		if !passesLuhn(n) {
			t.Fatalf("number %d before capacity (%s) fails the Luhn check", i, maskCard(n))
		}
		if p, _ := matchPrefix(n); p < 0 {
			t.Fatalf("number %d before capacity (%s) has no listed prefix", i, maskCard(n))
		}
	}

	defer func() {
		msg, ok := recover().(string)
		if !ok {
			t.Fatalf("Next at capacity did not panic with a string")
		}
		if !strings.Contains(msg, "CardGenerator.Next") || !strings.Contains(msg, "1000000000000") {
			t.Fatalf("panic message = %q, want it to name CardGenerator.Next and the capacity", msg)
		}
	}()
	n := g.Next()
	t.Fatalf("Next at capacity returned a number (%s), want a panic", maskCard(n))
}

func TestCardCapacityMatchesPrefixes(t *testing.T) {
	smallest := uint64(0)
	for _, p := range cardPrefixes {
		space := uint64(1)
		for range p.length - len(p.prefix) - 1 {
			space *= 10
		}
		if smallest == 0 || space < smallest {
			smallest = space
		}
	}

	if want := uint64(len(cardPrefixes)) * smallest; cardCapacity != want {
		t.Fatalf("cardCapacity = %d, want %d (prefix count times the smallest account space)", uint64(cardCapacity), want)
	}
}

func TestDigitShuffleIsPermutation(t *testing.T) {
	for digits := 1; digits <= 5; digits++ {
		for seed := range uint64(20) {
			state := seed
			s := newDigitShuffle(digits, &state)
			hit := make([]bool, s.modulus)

			for x := range s.modulus {
				y := s.apply(x)
				if y >= s.modulus {
					t.Fatalf("digits %d, seed %d: apply(%d) = %d, want below %d", digits, seed, x, y, s.modulus)
				}
				if hit[y] {
					t.Fatalf("digits %d, seed %d: apply(%d) = %d, which an earlier input also gave", digits, seed, x, y)
				}
				hit[y] = true
			}
		}
	}
}

func TestCardGeneratorLastDigitNotPeriodic(t *testing.T) {
	g := NewCardGenerator(13)
	var digits []byte

	// Keep the last account digit, just before the check digit, of the
	// first 100 numbers under the first prefix.
	for i := range 100 * len(cardPrefixes) {
		n := g.Next()
		if i%len(cardPrefixes) == 0 {
			digits = append(digits, n[len(n)-2])
		}
	}

	for j := range len(digits) - 10 {
		if digits[j] != digits[j+10] {
			return
		}
	}
	t.Fatalf("the last account digit under prefix %q repeats every 10 numbers", cardPrefixes[0].prefix)
}

func BenchmarkCardGeneratorNext(b *testing.B) {
	g := NewCardGenerator(1)
	b.ReportAllocs()

	for b.Loop() {
		_ = g.Next()
	}
}

func ExampleCardGenerator() {
	g := NewCardGenerator(1)

	// Print facts about each number, never the number itself.
	for range 10 {
		card, err := tokenvault.ParseCardNumber(g.Next())
		if err != nil {
			fmt.Println(err)
			continue
		}
		fmt.Printf("%s, %d digits, Luhn valid: %t\n", card.Brand(), len(card.Digits()), card.LuhnValid())
	}
	// Output:
	// visa, 16 digits, Luhn valid: true
	// mastercard, 16 digits, Luhn valid: true
	// mastercard, 16 digits, Luhn valid: true
	// mastercard, 16 digits, Luhn valid: true
	// mastercard, 16 digits, Luhn valid: true
	// amex, 15 digits, Luhn valid: true
	// amex, 15 digits, Luhn valid: true
	// discover, 16 digits, Luhn valid: true
	// jcb, 16 digits, Luhn valid: true
	// unionpay, 16 digits, Luhn valid: true
}
