package strictjson

import (
	"bytes"
	"strconv"
	"unicode/utf16"
	"unicode/utf8"
)

// peek returns the byte at d.pos, or 0 at the end of the input. A 0 byte in
// the input is invalid wherever peek is used, so callers need no end check.
func (d *decoder) peek() byte {
	if d.pos < len(d.data) {
		return d.data[d.pos]
	}
	return 0
}

// skipSpace skips the four whitespace bytes of RFC 8259.
func (d *decoder) skipSpace() {
	for d.pos < len(d.data) {
		switch d.data[d.pos] {
		case ' ', '\t', '\n', '\r':
			d.pos++
		default:
			return
		}
	}
}

// enter opens an object or array at d.pos.
func (d *decoder) enter() error {
	d.depth++
	if d.depth > maxDepth {
		return d.syntaxError("objects and arrays nested deeper than " + strconv.Itoa(maxDepth) + " levels")
	}
	d.pos++
	return nil
}

// stringSpecial marks the bytes that the fast path of readString stops at:
// the quote, the backslash, control characters and non-ASCII bytes.
var stringSpecial = func() (t [256]bool) {
	for c := range t {
		t[c] = c == '"' || c == '\\' || c < 0x20 || c >= utf8.RuneSelf
	}
	return t
}()

// readString reads the string at d.pos, which starts with '"', and returns
// its unescaped bytes. They alias d.data, or d.scratch if the string has
// escapes, so they are valid only until the next readString.
func (d *decoder) readString() ([]byte, error) {
	start := d.pos + 1
	i := start
	for i < len(d.data) {
		c := d.data[i]
		if !stringSpecial[c] {
			i++
			continue
		}

		switch {
		case c == '"':
			d.pos = i + 1
			return d.data[start:i], nil
		case c == '\\':
			d.scratch = append(d.scratch[:0], d.data[start:i]...)
			return d.readEscapedString(i)
		case c < 0x20:
			d.pos = i
			return nil, d.syntaxError("control character in string")
		default:
			n := validRuneLen(d.data[i:])
			if n == 0 {
				return nil, d.invalidUTF8InString(i)
			}
			i += n
		}
	}
	d.pos = i
	return nil, d.syntaxError(`expected '"' to end the string`)
}

// readEscapedString continues readString from the backslash at i, appending
// the unescaped string to d.scratch.
func (d *decoder) readEscapedString(i int) ([]byte, error) {
	for i < len(d.data) {
		c := d.data[i]
		if !stringSpecial[c] {
			run := i
			for i < len(d.data) && !stringSpecial[d.data[i]] {
				i++
			}
			d.scratch = append(d.scratch, d.data[run:i]...)
			continue
		}

		switch {
		case c == '"':
			d.pos = i + 1
			return d.scratch, nil
		case c == '\\':
			next, err := d.readEscape(i)
			if err != nil {
				return nil, err
			}
			i = next
		case c < 0x20:
			d.pos = i
			return nil, d.syntaxError("control character in string")
		default:
			n := validRuneLen(d.data[i:])
			if n == 0 {
				return nil, d.invalidUTF8InString(i)
			}
			d.scratch = append(d.scratch, d.data[i:i+n]...)
			i += n
		}
	}
	d.pos = i
	return nil, d.syntaxError(`expected '"' to end the string`)
}

// readEscape appends the character escaped at i, which holds a backslash, to
// d.scratch and returns the offset after the escape.
func (d *decoder) readEscape(i int) (int, error) {
	if i+1 >= len(d.data) {
		d.pos = len(d.data)
		return 0, d.syntaxError("expected an escape character after '\\'")
	}

	var unescaped byte
	switch d.data[i+1] {
	case '"', '\\', '/':
		unescaped = d.data[i+1]
	case 'b':
		unescaped = '\b'
	case 'f':
		unescaped = '\f'
	case 'n':
		unescaped = '\n'
	case 'r':
		unescaped = '\r'
	case 't':
		unescaped = '\t'
	case 'u':
		return d.readUnicodeEscape(i)
	default:
		d.pos = i + 1
		return 0, d.syntaxError("invalid escape character after '\\'")
	}
	d.scratch = append(d.scratch, unescaped)
	return i + 2, nil
}

// readUnicodeEscape reads the \uXXXX escape at i, or two of them for a
// UTF-16 surrogate pair, and appends the character in UTF-8 to d.scratch.
func (d *decoder) readUnicodeEscape(i int) (int, error) {
	r, ok := parseHex4(d.data[i+2:])
	if !ok {
		d.pos = i + 2
		return 0, d.syntaxError(`expected 4 hexadecimal digits after "\u"`)
	}
	next := i + 6

	// encoding/json would replace a lone surrogate with U+FFFD, so the value
	// it decodes would differ from the value the client sent.
	if utf16.IsSurrogate(r) {
		if r >= 0xDC00 {
			return 0, d.loneSurrogate(i)
		}
		if next+1 >= len(d.data) || d.data[next] != '\\' || d.data[next+1] != 'u' {
			return 0, d.loneSurrogate(i)
		}
		low, ok := parseHex4(d.data[next+2:])
		if !ok || low < 0xDC00 || low > 0xDFFF {
			return 0, d.loneSurrogate(i)
		}
		r = utf16.DecodeRune(r, low)
		next += 6
	}

	d.scratch = utf8.AppendRune(d.scratch, r)
	return next, nil
}

// parseHex4 parses the four hexadecimal digits at the start of b.
func parseHex4(b []byte) (rune, bool) {
	if len(b) < 4 {
		return 0, false
	}
	var r rune
	for _, c := range b[:4] {
		switch {
		case '0' <= c && c <= '9':
			c -= '0'
		case 'a' <= c && c <= 'f':
			c -= 'a' - 10
		case 'A' <= c && c <= 'F':
			c -= 'A' - 10
		default:
			return 0, false
		}
		r = r<<4 | rune(c)
	}
	return r, true
}

// validRuneLen returns the length of the UTF-8 encoded rune at the start of
// b, or 0 if b does not start with one. An encoded U+FFFD is valid.
func validRuneLen(b []byte) int {
	r, n := utf8.DecodeRune(b)
	if r == utf8.RuneError && n <= 1 {
		return 0
	}
	return n
}

func isDigit(c byte) bool { return '0' <= c && c <= '9' }

// readNumber reads the JSON number at d.pos and returns its text, and whether
// it has neither a fraction nor an exponent.
func (d *decoder) readNumber() (lit []byte, isInt bool, err error) {
	start := d.pos
	isInt = true
	if d.peek() == '-' {
		d.pos++
	}

	switch c := d.peek(); {
	case c == '0':
		d.pos++
	case '1' <= c && c <= '9':
		d.skipDigits()
	default:
		return nil, false, d.syntaxError("expected a digit")
	}

	if d.peek() == '.' {
		isInt = false
		d.pos++
		if !isDigit(d.peek()) {
			return nil, false, d.syntaxError("expected a digit after the decimal point")
		}
		d.skipDigits()
	}

	if c := d.peek(); c == 'e' || c == 'E' {
		isInt = false
		d.pos++
		if c := d.peek(); c == '+' || c == '-' {
			d.pos++
		}
		if !isDigit(d.peek()) {
			return nil, false, d.syntaxError("expected a digit in the exponent")
		}
		d.skipDigits()
	}
	return d.data[start:d.pos], isInt, nil
}

func (d *decoder) skipDigits() {
	for d.pos < len(d.data) && isDigit(d.data[d.pos]) {
		d.pos++
	}
}

// readLiteral reads word, one of true, false and null, at d.pos.
func (d *decoder) readLiteral(word string) error {
	if bytes.HasPrefix(d.data[d.pos:], []byte(word)) {
		d.pos += len(word)
		return nil
	}

	for i := 0; d.pos < len(d.data) && d.data[d.pos] == word[i]; i++ {
		d.pos++
	}
	return d.syntaxError("expected the literal " + word)
}

// skipValue reads and discards the value at d.pos, checking its syntax.
func (d *decoder) skipValue() error {
	switch c := d.peek(); {
	case c == '"':
		_, err := d.readString()
		return err
	case c == '{':
		return d.skipObject()
	case c == '[':
		return d.skipArray()
	case c == 't':
		return d.readLiteral("true")
	case c == 'f':
		return d.readLiteral("false")
	case c == 'n':
		return d.readLiteral("null")
	case c == '-' || isDigit(c):
		_, _, err := d.readNumber()
		return err
	}
	return d.syntaxError("expected a JSON value")
}

func (d *decoder) skipObject() error {
	if err := d.enter(); err != nil {
		return err
	}
	d.skipSpace()
	if d.peek() == '}' {
		d.pos++
		d.depth--
		return nil
	}

	for {
		d.skipSpace()
		if d.peek() != '"' {
			return d.syntaxError("expected a string object key")
		}
		if _, err := d.readString(); err != nil {
			return err
		}
		d.skipSpace()
		if d.peek() != ':' {
			return d.syntaxError("expected ':' after object key")
		}
		d.pos++
		d.skipSpace()
		if err := d.skipValue(); err != nil {
			return err
		}

		d.skipSpace()
		switch d.peek() {
		case ',':
			d.pos++
		case '}':
			d.pos++
			d.depth--
			return nil
		default:
			return d.syntaxError("expected ',' or '}' after object member")
		}
	}
}

func (d *decoder) skipArray() error {
	if err := d.enter(); err != nil {
		return err
	}
	d.skipSpace()
	if d.peek() == ']' {
		d.pos++
		d.depth--
		return nil
	}

	for {
		d.skipSpace()
		if err := d.skipValue(); err != nil {
			return err
		}

		d.skipSpace()
		switch d.peek() {
		case ',':
			d.pos++
		case ']':
			d.pos++
			d.depth--
			return nil
		default:
			return d.syntaxError("expected ',' or ']' after array element")
		}
	}
}

// syntaxError returns an invalid_json error at d.pos, or an invalid_utf8
// error if the rest of the input has invalid UTF-8, which outranks it. The
// input before d.pos has been checked already. The problem is a phrase such
// as "expected ':' after object key".
func (d *decoder) syntaxError(problem string) error {
	if err := d.invalidUTF8After(d.pos); err != nil {
		return err
	}
	msg := "invalid JSON at byte offset " + strconv.Itoa(d.pos) + ": " + problem
	if d.pos >= len(d.data) {
		msg = "invalid JSON: unexpected end of input, " + problem
	}
	return &Error{Code: CodeInvalidJSON, Field: d.pathString(), Msg: msg}
}

// invalidUTF8After returns an invalid_utf8 error for the first invalid UTF-8
// byte at or after offset from, or nil if there is none.
func (d *decoder) invalidUTF8After(from int) error {
	rest := d.data[from:]
	if utf8.Valid(rest) {
		return nil
	}
	for i := 0; i < len(rest); {
		n := validRuneLen(rest[i:])
		if n == 0 {
			return &Error{Code: CodeInvalidUTF8, Msg: "invalid UTF-8 at byte offset " + strconv.Itoa(from+i)}
		}
		i += n
	}
	return nil
}

// invalidUTF8InString returns an invalid_utf8 error for the byte at i, inside
// the string being read.
func (d *decoder) invalidUTF8InString(i int) error {
	d.pos = i
	return &Error{Code: CodeInvalidUTF8, Field: d.pathString(), Msg: "invalid UTF-8 in string at byte offset " + strconv.Itoa(i)}
}

// loneSurrogate returns an invalid_utf8 error for the \u escape at i.
func (d *decoder) loneSurrogate(i int) error {
	d.pos = i
	return &Error{Code: CodeInvalidUTF8, Field: d.pathString(), Msg: "lone UTF-16 surrogate in \\u escape at byte offset " + strconv.Itoa(i)}
}
