package tokenvault

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"errors"
	"fmt"
	"sync"

	"github.com/tokenvault/tokenvault/internal/ff1"
	"github.com/tokenvault/tokenvault/internal/luhn"
)

// LocatorReserver is implemented by a Store that hands out numbers for
// locators. A Vault over such a store gives each new FormatCard token a
// locator, Record.Locator, so that the store keeps new card records in the
// order they were created, as it does opaque tokens, instead of at random
// places. Without it, new card records are kept under their tokens, but the
// vault still finds located tokens that were made while the store had it, for
// example before the store was wrapped in a type that hides this interface.
type LocatorReserver interface {
	// ReserveLocators reserves n numbers and returns the first; the others
	// follow it. No number is returned twice, across restarts and across
	// processes that share the store, so the reservation is durable when
	// the call returns.
	ReserveLocators(ctx context.Context, n uint64) (first uint64, err error)
}

var errLocatorsExhausted = errors.New("tokenvault: every locator number is taken")

const (
	// locatorPrefix starts every locator. It sorts after the digits of card
	// tokens and the letters of opaque ones, so a store that keeps both
	// under one ordered index appends new located records at its end.
	locatorPrefix = "~"

	// locatorBlock is how many numbers a vault reserves at a time. A vault
	// that stops leaves the rest of its block unused.
	locatorBlock = 4096

	// locatedSum is the Luhn sum, modulo 10, of every located token, and
	// of no random card-shaped token that this version draws. It marks the
	// tokens that may have a locator. A random token of an older version
	// can have it too, so a lookup that finds another token under the
	// locator tries the token itself.
	locatedSum = 5

	// locatedKeep is how many digits at the end of a located token are the
	// card number's own (the last four), plus the one digit that sets the
	// Luhn sum. The other digits encrypt the locator's number.
	locatedKeep = 5

	locatorKeyLabel = "tokenvault locator key v1"
)

// locators turns the numbers that a LocatorReserver hands out into FormatCard
// tokens and back. The digits of a located token before its last five are the
// number, encrypted with FF1 (NIST SP 800-38G) under a key derived from the
// index key, with the card number's length and last four digits as the tweak.
// Without the index key, the token reveals nothing about the number, so tokens
// stay as hard to guess as random ones.
//
// NOTE: every store counts from 0, so two stores whose vaults share an index
// key give the same first tokens for numbers of one length and last four.
// Records of such stores must not be merged into one.
type locators struct {
	// reserver is nil when the store hands out no numbers. The vault then
	// makes no located tokens but still looks them up.
	reserver LocatorReserver
	cipher   *ff1.Cipher

	mu        sync.Mutex
	next, end uint64 // the reserved numbers not yet used
}

// newLocators returns the locators of a vault over store. Whether store
// hands out numbers decides only whether new tokens get locators. A store
// that hides LocatorReserver may still hold located records, and they must
// stay reachable by token.
func newLocators(store Store, keys *keyRing) (*locators, error) {
	reserver, _ := store.(LocatorReserver)
	mac := hmac.New(sha256.New, keys.index[:])
	mac.Write([]byte(locatorKeyLabel))
	cipher, err := ff1.New(mac.Sum(nil))
	if err != nil {
		return nil, err
	}
	return &locators{reserver: reserver, cipher: cipher}, nil
}

// locatorOf returns the locator of number n: the prefix and n in 16
// lowercase hex digits, so that locators sort like their numbers.
func locatorOf(n uint64) string {
	const hexDigits = "0123456789abcdef"
	var b [len(locatorPrefix) + 16]byte
	copy(b[:], locatorPrefix)
	for i := len(b) - 1; i >= len(locatorPrefix); i-- {
		b[i] = hexDigits[n&0xf]
		n >>= 4
	}
	return string(b[:])
}

// reserve returns the next unused number, reserving a block when the vault's
// block is used up.
func (l *locators) reserve(ctx context.Context) (uint64, error) {
	l.mu.Lock()
	defer l.mu.Unlock()

	if l.next == l.end {
		first, err := l.reserver.ReserveLocators(ctx, locatorBlock)
		if err != nil {
			return 0, fmt.Errorf("tokenvault: failed to reserve locator numbers: %w", err)
		}
		l.next, l.end = first, first+locatorBlock
	}
	n := l.next
	l.next++
	return n, nil
}

// newToken returns a located FormatCard token for the card number digits and
// its locator. It returns ok false when the number it reserved does not fit
// in the digits that a number of this length leaves, or when the store hands
// out no numbers, and the caller then draws a random token.
func (l *locators) newToken(ctx context.Context, digits string) (token, locator string, ok bool, err error) {
	if l.reserver == nil {
		return "", "", false, nil
	}
	n, err := l.reserve(ctx)
	if err != nil {
		return "", "", false, err
	}
	width := len(digits) - locatedKeep
	if n >= pow10(width) {
		return "", "", false, nil
	}
	locator = locatorOf(n)

	tok := []byte(digits)
	var buf [MaxCardDigits]byte
	plain := buf[:width]
	for i := width - 1; i >= 0; i-- {
		plain[i] = '0' + byte(n%10)
		n /= 10
	}
	tweak := locatorTweak(digits)
	if err := l.cipher.Encrypt(tok[:width], plain, tweak[:]); err != nil {
		return "", "", false, err
	}

	setLocatedSum(tok)
	if string(tok) == digits {
		// Only a number that fails the Luhn check, allowed by
		// AllowNonLuhn, can have the sum of a located token.
		return "", "", false, nil
	}
	return string(tok), locator, true, nil
}

// setLocatedSum sets the fifth digit from the right of tok so that its Luhn
// sum is locatedSum. The Luhn sum does not double that digit, so the digit
// adds its own value to the sum.
func setLocatedSum(tok []byte) {
	i := len(tok) - locatedKeep
	tok[i] = '0'
	tok[i] = '0' + byte((locatedSum-luhn.Sum(tok)+10)%10)
}

// locatorOfToken returns the locator that token has if it is a located token.
// ok is false when it cannot be one.
func (l *locators) locatorOfToken(token string) (locator string, ok bool) {
	// A token with a byte other than a digit can still pass this check, but
	// FF1 then rejects it. Not checking the digits first saves a pass over
	// the token on the path of every lookup.
	if l == nil || len(token) < MinCardDigits || len(token) > MaxCardDigits || luhn.Sum(token) != locatedSum {
		return "", false
	}
	width := len(token) - locatedKeep
	var buf, src [MaxCardDigits]byte
	plain := buf[:width]
	copy(src[:], token[:width])
	tweak := locatorTweak(token)
	if err := l.cipher.Decrypt(plain, src[:width], tweak[:]); err != nil {
		return "", false
	}
	var n uint64
	for _, c := range plain {
		n = n*10 + uint64(c-'0')
	}
	return locatorOf(n), true
}

// locatorTweak returns the FF1 tweak of a located token for a card number of
// digits, or for the token itself: its length and its last four digits.
func locatorTweak(digits string) [5]byte {
	var tweak [5]byte
	tweak[0] = byte(len(digits))
	copy(tweak[1:], digits[len(digits)-4:])
	return tweak
}

// pow10 returns 10^n for n up to 19.
func pow10(n int) uint64 {
	p := uint64(1)
	for range n {
		p *= 10
	}
	return p
}
