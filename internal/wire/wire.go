// Package wire encodes the fields of stored records: bytes, integers, strings
// and times, each value length-prefixed so that a decoder never reads past
// its field.
package wire

import (
	"encoding/binary"
	"errors"
	"time"
	"unsafe"
)

// ErrCorrupt is returned by Decoder.Err when the input is shorter than its
// fields declare, has a field longer than the limit, or has bytes left over.
var ErrCorrupt = errors.New("corrupt encoding")

// MaxField bounds one length-prefixed field, so that a corrupt length cannot
// make a decoder allocate without bound.
const MaxField = 1 << 20

// Encoder appends fields to a byte slice.
type Encoder struct {
	buf []byte
}

// NewEncoder returns an Encoder whose buffer starts with capacity size.
func NewEncoder(size int) *Encoder { return &Encoder{buf: make([]byte, 0, size)} }

// Bytes returns the encoded fields.
func (e *Encoder) Bytes() []byte { return e.buf }

func (e *Encoder) Byte(b byte)        { e.buf = append(e.buf, b) }
func (e *Encoder) Uvarint(u uint64)   { e.buf = binary.AppendUvarint(e.buf, u) }
func (e *Encoder) Varint(i int64)     { e.buf = binary.AppendVarint(e.buf, i) }
func (e *Encoder) String(s string)    { e.Uvarint(uint64(len(s))); e.buf = append(e.buf, s...) }
func (e *Encoder) ByteSlice(b []byte) { e.Uvarint(uint64(len(b))); e.buf = append(e.buf, b...) }

// Time encodes t as Unix nanoseconds, and the zero time as 0.
func (e *Encoder) Time(t time.Time) {
	if t.IsZero() {
		e.Varint(0)
		return
	}
	e.Varint(t.UnixNano())
}

// Decoder reads fields in the order they were encoded. After the first
// failure every read returns a zero value, and Err reports the failure, so
// callers check once at the end.
type Decoder struct {
	buf   []byte
	err   error
	owned bool // buf is the decoder's own copy, which nothing writes
}

// NewDecoder returns a Decoder over b. Values it returns never share memory
// with b, so b may be a buffer that is reused or unmapped afterwards, such as
// a value read inside a bbolt transaction.
func NewDecoder(b []byte) *Decoder { return &Decoder{buf: b} }

// NewCopyDecoder returns a Decoder over a copy of b, made with one
// allocation. Its strings and byte slices point into that copy instead of
// each being allocated, so values that are kept keep the whole copy alive.
// Like NewDecoder's, they never share memory with b.
func NewCopyDecoder(b []byte) *Decoder {
	return &Decoder{buf: append([]byte(nil), b...), owned: true}
}

// Err returns ErrCorrupt if a read failed or bytes are left over.
func (d *Decoder) Err() error {
	if d.err == nil && len(d.buf) != 0 {
		d.err = ErrCorrupt
	}
	return d.err
}

func (d *Decoder) fail() { d.err = ErrCorrupt; d.buf = nil }

// Fail marks the input corrupt, for a caller that finds a decoded value out of
// range, such as a list count over its limit.
func (d *Decoder) Fail() { d.fail() }

func (d *Decoder) Byte() byte {
	if d.err != nil || len(d.buf) < 1 {
		d.fail()
		return 0
	}
	b := d.buf[0]
	d.buf = d.buf[1:]
	return b
}

func (d *Decoder) Uvarint() uint64 {
	if d.err != nil {
		return 0
	}
	u, n := binary.Uvarint(d.buf)
	if n <= 0 {
		d.fail()
		return 0
	}
	d.buf = d.buf[n:]
	return u
}

func (d *Decoder) Varint() int64 {
	if d.err != nil {
		return 0
	}
	i, n := binary.Varint(d.buf)
	if n <= 0 {
		d.fail()
		return 0
	}
	d.buf = d.buf[n:]
	return i
}

// field returns the next length-prefixed field without copying it.
func (d *Decoder) field() []byte {
	n := d.Uvarint()
	if d.err != nil || n > MaxField || n > uint64(len(d.buf)) {
		d.fail()
		return nil
	}
	f := d.buf[:n]
	d.buf = d.buf[n:]
	return f
}

// String returns the next string field: a copy, or from a NewCopyDecoder a
// string over its copy.
func (d *Decoder) String() string {
	f := d.field()
	if d.owned && len(f) > 0 {
		// Nothing writes the copy, and no byte slice that ByteSlice returns
		// covers this field, so the string's bytes never change.
		return unsafe.String(&f[0], len(f))
	}
	return string(f)
}

// ByteSlice returns the next byte field, and nil for an empty one: a copy,
// or from a NewCopyDecoder a slice of its copy. That slice's capacity ends
// with the field, so an append to it cannot write over the next field.
func (d *Decoder) ByteSlice() []byte {
	f := d.field()
	switch {
	case len(f) == 0:
		return nil
	case d.owned:
		return f[:len(f):len(f)]
	default:
		return append([]byte(nil), f...)
	}
}

// Time decodes a time written by Encoder.Time, in UTC.
func (d *Decoder) Time() time.Time {
	n := d.Varint()
	if n == 0 {
		return time.Time{}
	}
	return time.Unix(0, n).UTC()
}
