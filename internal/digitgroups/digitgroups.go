// Package digitgroups finds the separators that people write between the
// digit groups of a card number, such as "4111 1111" or "4111-1111", for the
// screens that keep card numbers out of free text and messages.
package digitgroups

import "strings"

// maxSpaces bounds the whitespace characters between two groups, so that
// numbers in separate columns of a table are not joined.
const maxSpaces = 4

// Separator returns the length in bytes of the group separator at the start
// of s, or 0 if s does not start with one followed by a digit. A separator
// is one space, dash, dot, slash or underscore, a dash between two spaces,
// or up to maxSpaces whitespace characters: spaces, tabs, and the no-break
// spaces U+00A0, U+2007 and U+202F that text copied from documents and web
// pages contains.
//
// wide reports a separator other than one space, dash, dot, slash or
// underscore. People also write one between a card number and the next
// field, such as an expiry date, so a screen judges the digits on each side
// of it on their own as well as together.
func Separator(s string) (n int, wide bool) {
	switch {
	case strings.HasPrefix(s, " - "):
		n = 3
	case s != "" && strings.IndexByte("-./_", s[0]) >= 0:
		n = 1
	default:
		for range maxSpaces {
			width := spaceWidth(s[n:])
			if width == 0 {
				break
			}
			n += width
		}
	}

	if n == 0 || n >= len(s) || s[n] < '0' || s[n] > '9' {
		return 0, false
	}
	return n, n > 1 || s[0] == '\t'
}

// CharWidth returns the length in bytes of the separator character at the
// start of s, a character that Separator accepts in some position, or 0.
func CharWidth(s string) int {
	if s != "" && strings.IndexByte("-./_", s[0]) >= 0 {
		return 1
	}
	return spaceWidth(s)
}

// spaceWidth returns the length in bytes of the whitespace character at the
// start of s, or 0.
func spaceWidth(s string) int {
	switch {
	case strings.HasPrefix(s, " "), strings.HasPrefix(s, "\t"):
		return 1
	case strings.HasPrefix(s, "\u00a0"):
		return 2
	case strings.HasPrefix(s, "\u2007"), strings.HasPrefix(s, "\u202f"):
		return 3
	default:
		return 0
	}
}
