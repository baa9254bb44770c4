package tokenvaulttest

import (
	"fmt"
	"math/bits"

	"github.com/tokenvault/tokenvault/internal/luhn"
)

// cardPrefix is an issuer prefix and the length of the card numbers
// generated under it.
type cardPrefix struct {
	prefix string
	length int
}

// cardPrefixes lists the prefixes that CardGenerator cycles through, in
// order. No prefix is a string prefix of another one with the same length,
// so numbers generated under different prefixes never collide. Each prefix
// is one that tokenvault's brand detection assigns to the brand named beside
// it.
var cardPrefixes = [...]cardPrefix{
	{"4", 16},    // Visa
	{"51", 16},   // Mastercard
	{"53", 16},   // Mastercard
	{"55", 16},   // Mastercard
	{"2221", 16}, // Mastercard, 2-series
	{"34", 15},   // American Express
	{"37", 15},   // American Express
	{"6011", 16}, // Discover
	{"3530", 16}, // JCB
	{"6212", 16}, // UnionPay
}

// maxGeneratedDigits is the length of the longest generated number.
const maxGeneratedDigits = 16

// cardCapacity is how many distinct numbers a CardGenerator returns. The
// prefixes take turns, so the first to run out are the 4-digit prefixes of
// 16-digit numbers: 11 account digits give each of them 10^11 numbers.
const cardCapacity = uint64(len(cardPrefixes)) * 1e11

// CardGenerator generates distinct card numbers that pass the Luhn check,
// for tests and benchmarks. Each number starts with a real issuer prefix and
// has the length of that brand. The brands take turns in a fixed order:
// Visa (4), Mastercard (51, 53, 55, 2221), American Express (34, 37),
// Discover (6011), JCB (3530) and UnionPay (6212).
//
// The numbers look random, but they are computed from the seed and are not
// taken from any list of issued cards. A generated number can still match a
// real account by chance, so use them only in tests and benchmarks and never
// send them to a payment network.
//
// The first 10^12 numbers of a generator are pairwise distinct, and Next
// panics when asked for more. Distinctness holds by construction, so the
// generator's memory does not grow with the count. Numbers from two
// generators may repeat each other, even with different seeds.
//
// A CardGenerator is not safe for concurrent use.
type CardGenerator struct {
	count    uint64 // numbers returned so far
	shuffles [len(cardPrefixes)]digitShuffle
}

// NewCardGenerator returns a generator whose sequence depends only on seed:
// the same seed gives the same numbers in the same order.
func NewCardGenerator(seed uint64) *CardGenerator {
	g := &CardGenerator{}
	state := seed
	for slot, p := range cardPrefixes {
		g.shuffles[slot] = newDigitShuffle(p.length-len(p.prefix)-1, &state)
	}
	return g
}

// Next returns the next card number as ASCII digits. It allocates only the
// returned string. Next panics once it has returned 10^12 numbers, because
// the 4-digit prefixes have no unused account numbers left by then.
func (g *CardGenerator) Next() string {
	if g.count >= cardCapacity {
		panic(fmt.Sprintf("tokenvaulttest: CardGenerator.Next called more than %d times, the number of distinct card numbers it can return", cardCapacity))
	}

	// The prefixes take turns, so the counter of each prefix is
	// count / len(cardPrefixes).
	slot := g.count % uint64(len(cardPrefixes))
	index := g.count / uint64(len(cardPrefixes))
	g.count++

	p := cardPrefixes[slot]
	account := g.shuffles[slot].apply(index)
	var buf [maxGeneratedDigits]byte
	n := copy(buf[:], p.prefix)
	end := p.length - 1
	for i := end - 1; i >= n; i-- {
		buf[i] = '0' + byte(account%10)
		account /= 10
	}

	buf[end] = luhn.CheckDigit(buf[:end])
	return string(buf[:p.length])
}

// digitShuffle is a permutation of [0, 10^digits): an affine map, a reversal
// of the digits and a second affine map. Each step is a bijection, and an
// affine map x -> a*x + b mod 10^digits is one because a is coprime to 10.
// Without the reversal, the last digit of consecutive outputs would repeat
// every 10 numbers.
type digitShuffle struct {
	digits     int
	modulus    uint64 // 10^digits
	mul1, add1 uint64
	mul2, add2 uint64
}

// newDigitShuffle returns a permutation of [0, 10^digits) whose multipliers
// and offsets come from the SplitMix64 generator at *state.
func newDigitShuffle(digits int, state *uint64) digitShuffle {
	modulus := uint64(1)
	for range digits {
		modulus *= 10
	}

	return digitShuffle{
		digits:  digits,
		modulus: modulus,
		mul1:    coprimeTo10(splitmix64(state) % modulus),
		add1:    splitmix64(state) % modulus,
		mul2:    coprimeTo10(splitmix64(state) % modulus),
		add2:    splitmix64(state) % modulus,
	}
}

// apply returns the image of x, which must be less than s.modulus.
func (s *digitShuffle) apply(x uint64) uint64 {
	x = s.affine(x, s.mul1, s.add1)
	x = s.reverse(x)
	return s.affine(x, s.mul2, s.add2)
}

// affine returns (mul*x + add) mod s.modulus. The product is taken in 128
// bits, because mul and x may each be close to 10^14.
func (s *digitShuffle) affine(x, mul, add uint64) uint64 {
	hi, lo := bits.Mul64(mul, x)
	_, rem := bits.Div64(hi, lo, s.modulus) // hi < modulus because mul, x < modulus
	return (rem + add) % s.modulus
}

// reverse returns x with its s.digits digits, counting leading zeros,
// in reverse order.
func (s *digitShuffle) reverse(x uint64) uint64 {
	var reversed uint64
	for range s.digits {
		reversed = reversed*10 + x%10
		x /= 10
	}
	return reversed
}

// coprimeTo10 returns x made odd and, if it then ends in 5, moved to the
// next odd number. For x below a power of ten, the result stays below it.
func coprimeTo10(x uint64) uint64 {
	x |= 1
	if x%5 == 0 {
		x += 2
	}
	return x
}

// splitmix64 advances *state and returns the next output of the SplitMix64
// pseudorandom generator.
func splitmix64(state *uint64) uint64 {
	*state += 0x9e3779b97f4a7c15
	z := *state
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9
	z = (z ^ (z >> 27)) * 0x94d049bb133111eb
	return z ^ (z >> 31)
}
