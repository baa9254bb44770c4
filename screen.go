package tokenvault

import (
	"github.com/tokenvault/tokenvault/internal/digitgroups"
	"github.com/tokenvault/tokenvault/internal/luhn"
)

// IsTokenShaped reports whether s has the shape of a token that this package
// issues: "tok_" and 36 lowercase base32hex characters, or 12 to 19 digits
// that fail the Luhn check. It does not say whether a vault holds s. Logs use
// it to keep a card number, sent where a token belongs, out of their records.
func IsTokenShaped(s string) bool { return plausibleToken(s) }

// ContainsCardNumber reports whether text contains what could be a card
// number: 12 to 19 digits, not starting with 0, that pass the Luhn check,
// written together or in groups. Groups may be separated by one dash, dot,
// slash or underscore, a dash between two spaces, or up to four spaces, tabs
// or no-break spaces, and the separators may be mixed. Each span of groups
// between separators wider than one space, or the start or end of the
// digits, is also judged on its own. The vault rejects free text that
// contains one, such as a change's reason, because history and logs keep
// such text in the clear. It screens for mistakes: a number disguised on
// purpose, such as spelled out in words, gets through.
func ContainsCardNumber(text string) bool {
	var digitBuf [64]byte
	var boundBuf [16]int
	for i := 0; i < len(text); {
		if !isDigit(text[i]) {
			i++
			continue
		}

		// Collect a run of digits with group separators between them, and
		// the number of digits before each wide separator.
		digits, bounds := digitBuf[:0], append(boundBuf[:0], 0)
		j := i
		for j < len(text) {
			c := text[j]
			if isDigit(c) {
				digits = append(digits, c)
				j++
				continue
			}
			sep, wide := digitgroups.Separator(text[j:])
			if sep == 0 {
				break
			}
			if wide {
				bounds = append(bounds, len(digits))
			}
			j += sep
		}
		bounds = append(bounds, len(digits))

		// The run, and each span of it between two wide separators, is
		// judged whole: digits inside a longer number are not a card number
		// as written, and testing every window would flag about one in ten
		// ordinary numbers.
		for a := range bounds {
			for b := a + 1; b < len(bounds) && bounds[b]-bounds[a] <= MaxCardDigits; b++ {
				if isCardRun(digits[bounds[a]:bounds[b]]) {
					return true
				}
			}
		}
		i = j
	}
	return false
}

// isCardRun reports whether digits could be a card number: 12 to 19 digits,
// not starting with 0, that pass the Luhn check.
func isCardRun(digits []byte) bool {
	n := len(digits)
	return n >= MinCardDigits && n <= MaxCardDigits && digits[0] != '0' && luhn.Valid(digits)
}
