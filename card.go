package tokenvault

import (
	"fmt"
	"log/slog"
	"strings"

	"github.com/tokenvault/tokenvault/internal/luhn"
)

// Card number lengths that ISO/IEC 7812 allows and tokenvault accepts.
const (
	MinCardDigits = 12
	MaxCardDigits = 19
)

// maxCardInput bounds the text ParseCardNumber reads: 19 digits with a
// separator between each pair of digits fit well within it.
const maxCardInput = 64

// CardNumber is a normalized payment card number (PAN): its ASCII digits
// only. It prints as a mask that shows the last four digits, whatever the
// verb or logger, so that a CardNumber in a log line or error does not leak.
// Only Digits returns the number.
//
// The zero value is an empty card number.
type CardNumber struct {
	// digits sits behind a pointer so that printing a struct that embeds a
	// CardNumber in an unexported field shows an address, not the number.
	digits *string
}

// ParseCardNumber normalizes s to a card number. s may separate groups of
// digits with single spaces or dashes, and may have spaces around it. Any
// other character, including non-ASCII digits, is rejected, as is a number
// with fewer than 12 or more than 19 digits, one that starts with 0, or one
// that fails the Luhn check.
// Errors wrap ErrInvalidCardNumber and never contain the number.
func ParseCardNumber(s string) (CardNumber, error) {
	return parseCardNumber(s, true)
}

func parseCardNumber(s string, checkLuhn bool) (CardNumber, error) {
	if len(s) > maxCardInput {
		return CardNumber{}, invalid(ErrInvalidCardNumber, "input is %d bytes, the maximum is %d", len(s), maxCardInput)
	}

	start := len(s) - len(strings.TrimLeft(s, " "))
	body := strings.Trim(s, " ")
	if body == "" {
		return CardNumber{}, invalid(ErrInvalidCardNumber, "input is empty")
	}

	var buf [maxCardInput]byte
	digits := buf[:0]
	for i := 0; i < len(body); i++ {
		c := body[i]
		pos := start + i + 1
		switch {
		case c >= '0' && c <= '9':
			digits = append(digits, c)
		case c == ' ' || c == '-':
			if i == 0 || !isDigit(body[i-1]) || i+1 == len(body) || !isDigit(body[i+1]) {
				return CardNumber{}, invalid(ErrInvalidCardNumber, "separator at byte %d is not between two digits", pos)
			}
		default:
			return CardNumber{}, invalid(ErrInvalidCardNumber, "byte %d is not an ASCII digit, space or dash", pos)
		}
	}

	if len(digits) < MinCardDigits || len(digits) > MaxCardDigits {
		return CardNumber{}, invalid(ErrInvalidCardNumber, "has %d digits, want %d to %d", len(digits), MinCardDigits, MaxCardDigits)
	}
	// ISO/IEC 7812 reserves major industry identifier 0, so no card number
	// starts with 0. Accepting it would let "000" + a 16-digit number pass as
	// another card, because leading zeros do not change the Luhn sum.
	if digits[0] == '0' {
		return CardNumber{}, invalid(ErrInvalidCardNumber, "starts with 0, which no card issuer uses")
	}
	if checkLuhn && !luhn.Valid(digits) {
		return CardNumber{}, invalid(ErrInvalidCardNumber, "fails the Luhn check (use AllowNonLuhn to accept it)")
	}
	d := string(digits)
	return CardNumber{digits: &d}, nil
}

// Digits returns the card number as ASCII digits. It is the only method that
// reveals the number.
func (c CardNumber) Digits() string {
	if c.digits == nil {
		return ""
	}
	return *c.digits
}

// Last4 returns the last four digits, which PCI DSS allows to display.
func (c CardNumber) Last4() string {
	d := c.Digits()
	if len(d) < 4 {
		return ""
	}
	return d[len(d)-4:]
}

// Brand returns the card brand guessed from the issuer prefix.
func (c CardNumber) Brand() Brand {
	return brandOf(c.Digits())
}

// LuhnValid reports whether the number passes the Luhn check.
func (c CardNumber) LuhnValid() bool {
	return luhn.Valid(c.Digits())
}

// Masked returns the number with every digit but the last four replaced by
// '*', such as "************1111".
func (c CardNumber) Masked() string {
	d := c.Digits()
	if d == "" {
		return "<empty card number>"
	}
	return strings.Repeat("*", len(d)-4) + d[len(d)-4:]
}

// String returns Masked, so that printing a CardNumber never shows it.
func (c CardNumber) String() string { return c.Masked() }

// GoString returns Masked, for %#v.
func (c CardNumber) GoString() string { return "tokenvault.CardNumber(" + c.Masked() + ")" }

// Format prints Masked for every verb, including %d and %x, which would
// otherwise bypass String.
func (c CardNumber) Format(f fmt.State, verb rune) {
	if verb == 'v' && f.Flag('#') {
		fmt.Fprint(f, c.GoString())
		return
	}
	fmt.Fprint(f, c.Masked())
}

// LogValue logs Masked. Its receiver is a pointer so that slog can log a nil
// *CardNumber: Go calls a value method through a nil pointer with a panic. A
// CardNumber value still logs masked, through MarshalText.
func (c *CardNumber) LogValue() slog.Value {
	if c == nil {
		return slog.StringValue("<nil>")
	}
	return slog.StringValue(c.Masked())
}

// MarshalText returns Masked, so that encoders such as encoding/json and
// slog's JSON handler cannot write the number.
func (c CardNumber) MarshalText() ([]byte, error) { return []byte(c.Masked()), nil }

func isDigit(c byte) bool { return c >= '0' && c <= '9' }
