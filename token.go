package tokenvault

import (
	"crypto/rand"
	"encoding/base32"
	"encoding/binary"
	"fmt"
	"time"

	"github.com/tokenvault/tokenvault/internal/luhn"
)

// Format is the shape of a token. The zero value means "the default for the
// kind of value": FormatCard for card numbers, FormatOpaque for other data.
type Format uint8

const (
	// FormatOpaque tokens are "tok_" followed by 36 characters of lowercase
	// base32hex (RFC 4648): 48 bits of creation time in milliseconds, then
	// 128 random bits. They are URL-safe, and the time prefix makes new
	// tokens sort after old ones, so storage inserts append instead of
	// rewriting pages all over the index.
	FormatOpaque Format = iota + 1

	// FormatCard tokens look like the card number: same length, digits
	// only, same last four digits, other digits random to anyone without
	// the vault's index key. They always fail the Luhn check, so no system
	// can take one for a real card number.
	FormatCard

	// FormatCardFirstSix is FormatCard that also keeps the first six digits
	// (the issuer identification number), for systems that route on them.
	// It needs a number of at least MinFirstSixDigits digits, so that five
	// or more digits stay random.
	FormatCardFirstSix
)

func (f Format) String() string {
	switch f {
	case FormatOpaque:
		return "opaque"
	case FormatCard:
		return "card"
	case FormatCardFirstSix:
		return "card-first-six"
	default:
		return fmt.Sprintf("Format(%d)", uint8(f))
	}
}

// ParseFormat returns the format named by s, as printed by Format.String.
func ParseFormat(s string) (Format, error) {
	for f := FormatOpaque; f <= FormatCardFirstSix; f++ {
		if f.String() == s {
			return f, nil
		}
	}
	return 0, fmt.Errorf("tokenvault: unknown token format %q: want opaque, card or card-first-six", s)
}

// MinFirstSixDigits is the shortest card number FormatCardFirstSix accepts.
// Its five random digits leave 10,000 Luhn-valid numbers that the token could
// stand for; a 13-digit number would leave 10, which nearly reveals it.
const MinFirstSixDigits = 15

const (
	opaquePrefix     = "tok_"
	opaqueTimeBytes  = 6
	opaqueRandBytes  = 16
	opaqueBytes      = opaqueTimeBytes + opaqueRandBytes
	opaqueTokenChars = len(opaquePrefix) + (opaqueBytes*8+4)/5
)

// opaqueEncoding is lowercase base32hex, whose alphabet is in ASCII order, so
// the encoded tokens sort like the bytes they encode.
var opaqueEncoding = base32.NewEncoding("0123456789abcdefghijklmnopqrstuv").WithPadding(base32.NoPadding)

// newOpaqueToken returns a FormatOpaque token created at now.
func newOpaqueToken(now time.Time) string {
	var b [8 + opaqueRandBytes]byte
	binary.BigEndian.PutUint64(b[:8], uint64(now.UnixMilli()))
	raw := b[8-opaqueTimeBytes:]
	rand.Read(raw[opaqueTimeBytes:])
	return opaquePrefix + opaqueEncoding.EncodeToString(raw)
}

// maxLuhnRedraws bounds the draws of random digits for one card-shaped token.
// A draw has one of the two Luhn sums it must avoid with probability 1/5, so
// reaching the bound has probability 5^-64.
const maxLuhnRedraws = 64

// newCardToken returns a card-shaped token for the card number digits: random
// digits except the last four (and the first six with keepFirstSix), failing
// the Luhn check and different from the number itself, which AllowNonLuhn
// lets fail the check too. Its Luhn sum is not locatedSum either, so that
// lookups never take it for a located token.
func newCardToken(digits string, keepFirstSix bool) (string, error) {
	start := 0
	if keepFirstSix {
		start = 6
	}
	end := len(digits) - 4

	tok := []byte(digits)
	for range maxLuhnRedraws {
		randomDigits(tok[start:end])
		if sum := luhn.Sum(tok); sum != 0 && sum != locatedSum && string(tok) != digits {
			return string(tok), nil
		}
	}
	return "", fmt.Errorf("tokenvault: no token with a usable Luhn sum found in %d draws", maxLuhnRedraws)
}

// randomDigits fills dst with uniformly random ASCII digits.
func randomDigits(dst []byte) {
	var buf [32]byte
	i := 0
	for i < len(dst) {
		rand.Read(buf[:])
		for _, b := range buf {
			// Rejecting 250 to 255 keeps b%10 uniform.
			if b >= 250 || i == len(dst) {
				continue
			}
			dst[i] = '0' + b%10
			i++
		}
	}
}

// plausibleToken reports whether s has the shape of a token this package
// issues. A token that fails this check cannot be stored, so lookups skip the
// store for it; the caller still gets ErrNotFound, as for an unknown token.
func plausibleToken(s string) bool {
	if len(s) == opaqueTokenChars && s[:len(opaquePrefix)] == opaquePrefix {
		return canonicalBase32hex(s[len(opaquePrefix):])
	}
	return plausibleCardToken(s)
}

// canonicalBase32hex reports whether s is the strict encoding of opaqueBytes
// bytes: lowercase alphabet only, and zero in the 4 unused bits of the last
// character, so that each byte string has exactly one spelling, which
// encoding/base32 does not check.
func canonicalBase32hex(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !isDigit(c) && (c < 'a' || c > 'v') {
			return false
		}
	}
	last := s[len(s)-1]
	return last == '0' || last == 'g'
}

func plausibleCardToken(s string) bool {
	if len(s) < MinCardDigits || len(s) > MaxCardDigits {
		return false
	}
	for i := 0; i < len(s); i++ {
		if !isDigit(s[i]) {
			return false
		}
	}
	return !luhn.Valid(s)
}
