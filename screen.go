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
// or no-break spaces, and the separators may be mixed. The digits on each side of a separator wider
// than one space are also judged on their own. The vault rejects free text that contains
// one, such as a change's reason, because history and logs keep such text
// in the clear. It screens for mistakes: a number disguised on purpose, such
// as spelled out in words, gets through.
func ContainsCardNumber(text string) bool {
	var digits [64]byte
	for i := 0; i < len(text); {
		if !isDigit(text[i]) {
			i++
			continue
		}

		// Collect a run of digits with group separators between them. The
		// digits since the last wide separator form the current segment.
		n, segment, j := 0, 0, i
		for j < len(text) {
			c := text[j]
			if isDigit(c) {
				if n < len(digits) {
					digits[n] = c
				}
				n++
				j++
				continue
			}
			sep, wide := digitgroups.Separator(text[j:])
			if sep == 0 {
				break
			}
			if wide {
				if isCardRun(digits[:], segment, n) {
					return true
				}
				segment = n
			}
			j += sep
		}
		// A run and its segments are judged whole: digits inside a longer
		// number are not a card number as written, and testing every window
		// would flag about one in ten ordinary numbers.
		if isCardRun(digits[:], 0, n) || (segment > 0 && isCardRun(digits[:], segment, n)) {
			return true
		}
		i = j
	}
	return false
}

// isCardRun reports whether digits[from:to], collected from text, could be
// a card number: 12 to 19 digits, not starting with 0, that pass the Luhn
// check.
func isCardRun(digits []byte, from, to int) bool {
	n := to - from
	if n < MinCardDigits || n > MaxCardDigits || to > len(digits) {
		return false
	}
	return digits[from] != '0' && luhn.Valid(digits[from:to])
}
