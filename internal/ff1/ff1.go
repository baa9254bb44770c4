// Package ff1 implements the FF1 format-preserving encryption mode of NIST
// SP 800-38G with AES, restricted to radix 10: it encrypts a string of 6 to
// 20 ASCII decimal digits into another string of the same length.
//
// Each Feistel half of such a string has at most 10 digits, so the halves
// and their sums fit in a uint64, and the package needs no math/big. The
// PRF output that FF1 reduces modulo 10^m has at most 12 bytes here, and
// the reduction uses 128-bit division.
package ff1

import (
	"crypto/aes"
	"crypto/cipher"
	"encoding/binary"
	"errors"
	"fmt"
	"math/bits"
	"sync"
)

const (
	// MinDigits is the shortest input. It gives a domain of 10^6 strings,
	// the minimum (radix^minlen >= 1,000,000) that SP 800-38G recommends
	// for FF1 and that the draft of its Revision 1 requires.
	MinDigits = 6

	// MaxDigits is the longest input. It keeps each half to at most 10
	// digits, so that the round number and NUM(B) fit in the low 8 bytes of
	// the last block of Q, and the d bytes of y in one AES block.
	MaxDigits = 20

	// MaxTweakLen is the longest tweak in bytes. FF1 itself allows up to
	// 2^32-1 bytes. The bound keeps the CBC-MAC over the tweak, one AES
	// block per 16 bytes, short.
	MaxTweakLen = 255
)

// Errors returned by Encrypt and Decrypt, wrapped with the length or the
// index at fault. Their messages never contain the digits.
var (
	// ErrInvalidLength is returned when src has fewer than MinDigits or more
	// than MaxDigits bytes, or when dst and src differ in length.
	ErrInvalidLength = errors.New("ff1: invalid length")

	// ErrInvalidDigit is returned when a byte of src is not an ASCII digit
	// '0' to '9'.
	ErrInvalidDigit = errors.New("ff1: invalid digit")

	// ErrTweakTooLong is returned when the tweak has more than MaxTweakLen
	// bytes.
	ErrTweakTooLong = errors.New("ff1: tweak too long")
)

// rounds is the number of Feistel rounds of FF1.
const rounds = 10

// pow10[k] is 10^k, the number of k-digit strings.
var pow10 = [...]uint64{
	1, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10,
}

// shape contains the values that FF1 derives from the input length n alone.
type shape struct {
	u, v int // lengths of the left and right halves: u = floor(n/2), v = n-u
	b    int // bytes of NUM(B) in the PRF input Q
	d    int // bytes of the PRF output used as the number y
}

// shapes[n] is the shape of an n-digit input, for MinDigits <= n <= MaxDigits.
var shapes = func() (table [MaxDigits + 1]shape) {
	for n := MinDigits; n <= MaxDigits; n++ {
		u := n / 2
		v := n - u
		b := numBytes(v)
		table[n] = shape{u: u, v: v, b: b, d: prfBytes(b)}
	}
	return table
}()

// numBytes returns b = ceil(ceil(v*log2(10))/8) from step 3 of FF1, computed
// with integers. ceil(v*log2(10)) = ceil(log2(10^v)) is the bit length of
// 10^v - 1, because ceil(log2(x)) is the bit length of x-1 for every x >= 1.
func numBytes(v int) int {
	return (bits.Len64(pow10[v]-1) + 7) / 8
}

// prfBytes returns d = 4*ceil(b/4) + 4 from step 4 of FF1.
func prfBytes(b int) int {
	return 4*((b+3)/4) + 4
}

// Cipher encrypts decimal digit strings with FF1 under one AES key. It is
// safe for concurrent use, because the AES block from crypto/aes only reads
// its round keys after NewCipher (Go 1.26 source).
type Cipher struct {
	block cipher.Block

	// buffers is a pool of *[aes.BlockSize]byte scratch blocks. A block on
	// the stack would escape to the heap on every call, because
	// block.Encrypt is an interface call.
	buffers sync.Pool
}

// New returns a Cipher for an AES key of 16, 24 or 32 bytes, which selects
// AES-128, AES-192 or AES-256.
func New(key []byte) (*Cipher, error) {
	switch len(key) {
	case 16, 24, 32:
	default:
		return nil, fmt.Errorf("ff1: invalid key length %d bytes, want 16, 24 or 32", len(key))
	}

	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, fmt.Errorf("ff1: %w", err)
	}

	c := &Cipher{block: block}
	c.buffers.New = func() any { return new([aes.BlockSize]byte) }
	return c, nil
}

// Encrypt writes the FF1 encryption of the digits in src under tweak to dst.
// dst and src must have the same length, from MinDigits to MaxDigits, and
// may overlap. The error wraps ErrInvalidLength, ErrInvalidDigit or
// ErrTweakTooLong, and dst is unchanged after an error.
func (c *Cipher) Encrypt(dst, src, tweak []byte) error {
	return c.crypt(dst, src, tweak, true)
}

// Decrypt writes the FF1 decryption of the digits in src under tweak to dst.
// It has the same requirements and errors as Encrypt.
func (c *Cipher) Decrypt(dst, src, tweak []byte) error {
	return c.crypt(dst, src, tweak, false)
}

// crypt runs the ten Feistel rounds of FF1 on src, forward as in
// FF1.Encrypt of SP 800-38G or backward as in FF1.Decrypt.
func (c *Cipher) crypt(dst, src, tweak []byte, encrypt bool) error {
	n := len(src)
	if n < MinDigits || n > MaxDigits {
		return fmt.Errorf("%w: input has %d digits, want %d to %d", ErrInvalidLength, n, MinDigits, MaxDigits)
	}
	if len(dst) != n {
		return fmt.Errorf("%w: dst has %d bytes, src has %d", ErrInvalidLength, len(dst), n)
	}
	if len(tweak) > MaxTweakLen {
		return fmt.Errorf("%w: %d bytes, max %d", ErrTweakTooLong, len(tweak), MaxTweakLen)
	}

	// Read both halves before writing to dst, so that dst may overlap src.
	s := shapes[n]
	a, err := parseDigits(src, 0, s.u)
	if err != nil {
		return err
	}
	b, err := parseDigits(src, s.u, n)
	if err != nil {
		return err
	}

	buf := c.buffers.Get().(*[aes.BlockSize]byte)
	defer c.putBuffer(buf)
	prf := c.newRoundPRF(buf, s, n, tweak)

	// Each round replaces one half by its sum with (or, backward, its
	// difference from) the PRF of the other half, modulo 10^m.
	if encrypt {
		for i := range rounds {
			m := roundLen(s, i)
			y := prf.reduce(i, b, pow10[m])
			a, b = b, (a+y)%pow10[m]
		}
	} else {
		for i := rounds - 1; i >= 0; i-- {
			m := roundLen(s, i)
			y := prf.reduce(i, a, pow10[m])
			a, b = (b+pow10[m]-y)%pow10[m], a
		}
	}

	formatDigits(dst[:s.u], a)
	formatDigits(dst[s.u:], b)
	return nil
}

// putBuffer clears buf, which contains the last PRF output, and returns it to
// the pool.
func (c *Cipher) putBuffer(buf *[aes.BlockSize]byte) {
	*buf = [aes.BlockSize]byte{}
	c.buffers.Put(buf)
}

// roundLen returns m, the number of digits of the half that round i
// replaces: u in even rounds and v in odd ones.
func roundLen(s shape, i int) int {
	if i%2 == 0 {
		return s.u
	}
	return s.v
}

// roundPRF computes the PRF of FF1's rounds for one input length and tweak.
//
// FF1 feeds PRF, a CBC-MAC with a zero IV, the block P followed by
// Q = T || [0]^((-t-b-1) mod 16) || [i]^1 || [NUM(B)]^b. Only the last
// 1+b <= 6 bytes of Q change between rounds, and they all fall in its last
// block, so newRoundPRF runs the MAC over every block before that once.
type roundPRF struct {
	block cipher.Block
	buf   *[aes.BlockSize]byte

	// prefixHi and prefixLo are the MAC state after the constant blocks,
	// XORed with the constant bytes of the last block of Q, as two
	// big-endian halves.
	prefixHi, prefixLo uint64

	b int // bytes of NUM(B) in Q
	d int // bytes of the PRF output that make y
}

// newRoundPRF runs the CBC-MAC over P and the blocks of Q that every round
// shares. buf is scratch space for the block cipher.
func (c *Cipher) newRoundPRF(buf *[aes.BlockSize]byte, s shape, n int, tweak []byte) roundPRF {
	t := len(tweak)

	// P = [1]^1 || [2]^1 || [1]^1 || [radix]^3 || [10]^1 || [u mod 256]^1 || [n]^4 || [t]^4.
	buf[0], buf[1], buf[2] = 1, 2, 1
	buf[3], buf[4], buf[5] = 0, 0, 10
	buf[6] = rounds
	buf[7] = byte(s.u)
	binary.BigEndian.PutUint32(buf[8:12], uint32(n))
	binary.BigEndian.PutUint32(buf[12:16], uint32(t))
	c.block.Encrypt(buf[:], buf[:])

	// Q has t + pad + 1 + b bytes, a multiple of 16. The tweak ends at least
	// 1+b bytes before the end of Q, so the zero padding and the round's
	// bytes are the only other content of the last block.
	pad := mod16(-t - s.b - 1)
	lastBlock := t + pad + 1 + s.b - aes.BlockSize
	for start := 0; start < lastBlock; start += aes.BlockSize {
		xorTweak(buf, tweak, start)
		c.block.Encrypt(buf[:], buf[:])
	}
	xorTweak(buf, tweak, lastBlock)

	return roundPRF{
		block:    c.block,
		buf:      buf,
		prefixHi: binary.BigEndian.Uint64(buf[0:8]),
		prefixLo: binary.BigEndian.Uint64(buf[8:16]),
		b:        s.b,
		d:        s.d,
	}
}

// mod16 returns x mod 16 in the range 0 to 15, also for negative x.
func mod16(x int) int {
	return x & (aes.BlockSize - 1)
}

// xorTweak XORs the bytes of tweak from index start into buf. Bytes past
// the end of the tweak are the zero padding of Q and leave buf unchanged.
func xorTweak(buf *[aes.BlockSize]byte, tweak []byte, start int) {
	if start >= len(tweak) {
		return
	}
	chunk := tweak[start:min(start+aes.BlockSize, len(tweak))]
	for k, x := range chunk {
		buf[k] ^= x
	}
}

// reduce returns y mod modulus for round i, where y is the number made of
// the first d bytes of the PRF of P || Q and half is the number NUM(B) of
// the half that goes into Q.
func (p *roundPRF) reduce(i int, half, modulus uint64) uint64 {
	// half < 10^v <= 2^(8b) and b <= 5, so both [i]^1 and [half]^b sit in
	// the low 8 bytes of the last block.
	binary.BigEndian.PutUint64(p.buf[0:8], p.prefixHi)
	binary.BigEndian.PutUint64(p.buf[8:16], p.prefixLo^uint64(i)<<(8*p.b)^half)
	p.block.Encrypt(p.buf[:], p.buf[:])

	// For 8 <= d <= 16, y = hi*2^64 + lo, with hi made of the first d-8
	// bytes. FF1 would append further encrypted blocks only for d > 16.
	var hi uint64
	for _, x := range p.buf[:p.d-8] {
		hi = hi<<8 | uint64(x)
	}
	lo := binary.BigEndian.Uint64(p.buf[p.d-8 : p.d])

	// Rem64 reduces the 128-bit value exactly and, unlike Div64, does not
	// panic when the quotient overflows 64 bits.
	// NOTE: Rem64 and the % in crypt compile to hardware division, whose
	// time depends on the operands on some CPUs, so FF1 here is not
	// constant-time.
	return bits.Rem64(hi, lo, modulus)
}

// parseDigits returns the number that the ASCII digits src[from:to] make.
// The error names the index of the first byte that is not a digit.
func parseDigits(src []byte, from, to int) (uint64, error) {
	var x uint64
	for k := from; k < to; k++ {
		digit := src[k] - '0'
		if digit > 9 {
			return 0, fmt.Errorf("%w: byte at index %d is not an ASCII digit", ErrInvalidDigit, k)
		}
		x = x*10 + uint64(digit)
	}
	return x, nil
}

// formatDigits writes x to dst as len(dst) decimal digits with leading
// zeros. The caller ensures x < 10^len(dst).
func formatDigits(dst []byte, x uint64) {
	for k := len(dst) - 1; k >= 0; k-- {
		dst[k] = '0' + byte(x%10)
		x /= 10
	}
}
