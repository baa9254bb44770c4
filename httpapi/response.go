package httpapi

import (
	"encoding/base64"
	"sync"
	"unicode/utf8"
)

// Responses are written by hand, not by encoding/json, for two reasons: the
// hot path then needs no reflection, and the bytes match those of the Python
// service that this API replaces. Flask's jsonify (2.2.2, checked against the
// running service) writes compact JSON (separators "," and ":"), escapes
// every character outside printable ASCII as Python's json.dumps does with
// ensure_ascii=True, and ends with a newline. Clients that compare bodies
// byte for byte keep working.

// buffers are the per-request byte slices, pooled so that a request does not
// allocate them.
type buffers struct {
	body []byte // the request body
	out  []byte // the response body
}

// maxPooledBuffer is the largest capacity returned to the pool. A batch
// request grows its buffers up to MaxBodyBytes; keeping those would pin
// memory for the small requests that make up most traffic.
const maxPooledBuffer = 64 << 10

var bufferPool = sync.Pool{
	New: func() any {
		return &buffers{body: make([]byte, 0, 1024), out: make([]byte, 0, 1024)}
	},
}

func getBuffers() *buffers { return bufferPool.Get().(*buffers) }

// putBuffers zeroes what b held, values and card numbers among it, and
// returns b to the pool.
func putBuffers(b *buffers) {
	clear(b.body)
	clear(b.out)
	b.body, b.out = b.body[:0], b.out[:0]
	if cap(b.body) > maxPooledBuffer || cap(b.out) > maxPooledBuffer {
		return
	}
	bufferPool.Put(b)
}

// appendMessage appends {"message":message}.
func appendMessage(dst []byte, message string) []byte {
	dst = append(dst, `{"message":`...)
	dst = appendJSONString(dst, message)
	return append(dst, '}')
}

// appendToken appends {"token":token}.
func appendToken(dst []byte, token string) []byte {
	dst = append(dst, `{"token":`...)
	dst = appendJSONString(dst, token)
	return append(dst, '}')
}

// appendData appends {"data":value}, or {"data_base64":...} in standard
// base64 with padding when value is not valid UTF-8, which JSON strings
// cannot carry. Only the Go API can store such a value.
func appendData(dst []byte, value []byte) []byte {
	if utf8.Valid(value) {
		dst = append(dst, `{"data":`...)
		dst = appendJSONString(dst, value)
		return append(dst, '}')
	}
	dst = append(dst, `{"data_base64":"`...)
	dst = base64.StdEncoding.AppendEncode(dst, value)
	return append(dst, `"}`...)
}

// appendError appends {"error":message,"code":name}.
func appendError(dst []byte, p problem) []byte {
	dst = append(dst, `{"error":`...)
	dst = appendJSONString(dst, p.text())
	dst = append(dst, `,"code":"`...)
	dst = append(dst, codes[p.code].name...)
	return append(dst, `"}`...)
}

const hexDigits = "0123456789abcdef"

// appendJSONString appends s as a JSON string, escaped as Python's json.dumps
// does with ensure_ascii=True: '"' and '\\' with a backslash, \b \f \n \r \t
// by name, every other byte outside 0x20 to 0x7e as \u00xx, and each
// non-ASCII character as \uxxxx in lowercase hex, or a UTF-16 surrogate pair
// above U+FFFF. Invalid UTF-8 in s is written as \ufffd, so the output is
// always valid JSON.
func appendJSONString[T ~string | ~[]byte](dst []byte, s T) []byte {
	dst = append(dst, '"')
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c >= 0x20 && c < 0x7f && c != '"' && c != '\\' {
			i++
			continue
		}
		dst = append(dst, s[start:i]...)

		if c < utf8.RuneSelf {
			switch c {
			case '"', '\\':
				dst = append(dst, '\\', c)
			case '\b':
				dst = append(dst, '\\', 'b')
			case '\f':
				dst = append(dst, '\\', 'f')
			case '\n':
				dst = append(dst, '\\', 'n')
			case '\r':
				dst = append(dst, '\\', 'r')
			case '\t':
				dst = append(dst, '\\', 't')
			default:
				dst = appendUnicodeEscape(dst, rune(c))
			}
			i++
			start = i
			continue
		}

		r, size := decodeRune(s[i:])
		if r >= 0x10000 {
			hi, lo := utf16Pair(r)
			dst = appendUnicodeEscape(dst, hi)
			dst = appendUnicodeEscape(dst, lo)
		} else {
			dst = appendUnicodeEscape(dst, r)
		}
		i += size
		start = i
	}
	dst = append(dst, s[start:]...)
	return append(dst, '"')
}

// appendUnicodeEscape appends \uxxxx for r, which must be below 0x10000.
func appendUnicodeEscape(dst []byte, r rune) []byte {
	return append(dst, '\\', 'u',
		hexDigits[r>>12&0xf], hexDigits[r>>8&0xf], hexDigits[r>>4&0xf], hexDigits[r&0xf])
}

// utf16Pair returns the UTF-16 surrogate pair of r, which must be above
// U+FFFF.
func utf16Pair(r rune) (hi, lo rune) {
	r -= 0x10000
	return 0xd800 + r>>10&0x3ff, 0xdc00 + r&0x3ff
}

// decodeRune decodes the first UTF-8 character of s, which starts with a
// byte of 0x80 or more. It returns utf8.RuneError and 1 for an invalid
// sequence, as utf8.DecodeRune does, without converting s, so that it works
// for strings and byte slices without allocating.
func decodeRune[T ~string | ~[]byte](s T) (rune, int) {
	var buf [utf8.UTFMax]byte
	n := copy(buf[:], s[:min(len(s), utf8.UTFMax)])
	return utf8.DecodeRune(buf[:n])
}
