package wire

import (
	"bytes"
	"errors"
	"math"
	"runtime"
	"strings"
	"testing"
	"time"
)

// fields is one value of each kind the Encoder writes, in encoding order.
type fields struct {
	b   byte
	u   uint64
	i   int64
	s   string
	bs  []byte
	t   time.Time
	end byte // a byte after the time, so that the time is not the last field
}

func (f *fields) encode() []byte {
	e := NewEncoder(0)
	e.Byte(f.b)
	e.Uvarint(f.u)
	e.Varint(f.i)
	e.String(f.s)
	e.ByteSlice(f.bs)
	e.Time(f.t)
	e.Byte(f.end)
	return e.Bytes()
}

func decodeFields(b []byte) (fields, error) {
	return decodeFieldsWith(NewDecoder, b)
}

// decodeFieldsWith decodes b with a decoder that newDecoder returns.
func decodeFieldsWith(newDecoder func([]byte) *Decoder, b []byte) (fields, error) {
	d := newDecoder(b)
	f := fields{
		b:  d.Byte(),
		u:  d.Uvarint(),
		i:  d.Varint(),
		s:  d.String(),
		bs: d.ByteSlice(),
		t:  d.Time(),
	}
	f.end = d.Byte()
	return f, d.Err()
}

func (f *fields) equal(g *fields) bool {
	return f.b == g.b && f.u == g.u && f.i == g.i && f.s == g.s &&
		bytes.Equal(f.bs, g.bs) && f.t.Equal(g.t) && f.end == g.end
}

var roundTripCases = []struct {
	name string
	in   fields
}{
	{"zero", fields{}},
	{"small", fields{b: 1, u: 1, i: -1, s: "a", bs: []byte{0}, t: time.Unix(1, 0).UTC(), end: 2}},
	{"max", fields{
		b: 0xff, u: math.MaxUint64, i: math.MaxInt64,
		s: strings.Repeat("s", 300), bs: bytes.Repeat([]byte{0xff}, 300),
		t: time.Unix(0, math.MaxInt64).UTC(), end: 0xff,
	}},
	{"min", fields{i: math.MinInt64, t: time.Unix(0, math.MinInt64).UTC()}},
	{"nanoseconds", fields{t: time.Date(2024, 2, 29, 23, 59, 59, 999999999, time.UTC)}},
	{"non-ASCII", fields{s: "h\u00e9llo \u4e16\u754c\x00\xff", bs: []byte("\x00\x01")}},
}

// decoders are the constructors of Decoder, which the decoding tests run.
var decoders = []struct {
	name string
	new  func([]byte) *Decoder
}{
	{"NewDecoder", NewDecoder},
	{"NewCopyDecoder", NewCopyDecoder},
}

func TestRoundTrip(t *testing.T) {
	for _, dec := range decoders {
		for _, tc := range roundTripCases {
			t.Run(dec.name+"/"+tc.name, func(t *testing.T) {
				got, err := decodeFieldsWith(dec.new, tc.in.encode())
				if err != nil {
					t.Fatalf("decode(encode(%+v)) err = %v, want nil", tc.in, err)
				}
				if !got.equal(&tc.in) {
					t.Errorf("decode(encode(%+v)) = %+v", tc.in, got)
				}
			})
		}
	}
}

func TestTimeUTC(t *testing.T) {
	loc := time.FixedZone("UTC-7", -7*60*60)
	in := time.Date(1985, 10, 26, 1, 21, 0, 42, loc)
	e := NewEncoder(0)
	e.Time(in)

	d := NewDecoder(e.Bytes())
	got := d.Time()
	if err := d.Err(); err != nil {
		t.Fatalf("Time() err = %v", err)
	}
	if !got.Equal(in) {
		t.Errorf("Time() = %v, want %v", got, in)
	}
	if got.Location() != time.UTC {
		t.Errorf("Time().Location() = %v, want UTC", got.Location())
	}
}

func TestZeroTime(t *testing.T) {
	e := NewEncoder(0)
	e.Time(time.Time{})
	if got := e.Bytes(); !bytes.Equal(got, []byte{0}) {
		t.Errorf("Encoder.Time(zero) = %x, want 00", got)
	}

	d := NewDecoder([]byte{0})
	if got := d.Time(); !got.IsZero() {
		t.Errorf("Decoder.Time(00) = %v, want the zero time", got)
	}
}

func TestEmptyByteSliceIsNil(t *testing.T) {
	e := NewEncoder(0)
	e.ByteSlice([]byte{})
	d := NewDecoder(e.Bytes())
	if got := d.ByteSlice(); got != nil {
		t.Errorf("ByteSlice() of an empty field = %#v, want nil", got)
	}
	if err := d.Err(); err != nil {
		t.Errorf("Err() = %v, want nil", err)
	}
}

func TestNoSharedMemory(t *testing.T) {
	for _, dec := range decoders {
		in := fields{s: "string", bs: []byte("bytes")}
		b := in.encode()
		got, err := decodeFieldsWith(dec.new, b)
		if err != nil {
			t.Fatalf("%s: decode err = %v", dec.name, err)
		}

		for i := range b {
			b[i] = 'X'
		}
		if got.s != "string" || string(got.bs) != "bytes" {
			t.Errorf("%s: after overwriting the input, decoded = %q, %q, want \"string\", \"bytes\"", dec.name, got.s, got.bs)
		}
	}
}

func TestTruncated(t *testing.T) {
	for _, dec := range decoders {
		for _, tc := range roundTripCases {
			b := tc.in.encode()
			for n := range len(b) {
				if _, err := decodeFieldsWith(dec.new, b[:n]); !errors.Is(err, ErrCorrupt) {
					t.Errorf("%s, %s: decode of the first %d of %d bytes err = %v, want ErrCorrupt", dec.name, tc.name, n, len(b), err)
				}
			}
		}
	}
}

func TestTrailingBytes(t *testing.T) {
	b := append(roundTripCases[1].in.encode(), 0)
	if _, err := decodeFields(b); !errors.Is(err, ErrCorrupt) {
		t.Errorf("decode with one byte left over err = %v, want ErrCorrupt", err)
	}
}

func TestFieldLimit(t *testing.T) {
	for _, n := range []int{MaxField - 1, MaxField} {
		e := NewEncoder(n + 8)
		e.ByteSlice(make([]byte, n))
		d := NewDecoder(e.Bytes())
		if got := d.ByteSlice(); len(got) != n {
			t.Errorf("ByteSlice() of %d bytes returned %d bytes", n, len(got))
		}
		if err := d.Err(); err != nil {
			t.Errorf("ByteSlice() of %d bytes err = %v, want nil", n, err)
		}
	}

	e := NewEncoder(MaxField + 8)
	e.String(strings.Repeat("x", MaxField+1))
	d := NewDecoder(e.Bytes())
	if got := d.String(); got != "" {
		t.Errorf("String() of MaxField+1 bytes returned %d bytes, want 0", len(got))
	}
	if err := d.Err(); !errors.Is(err, ErrCorrupt) {
		t.Errorf("String() of MaxField+1 bytes err = %v, want ErrCorrupt", err)
	}
}

func TestBadVarint(t *testing.T) {
	cases := map[string][]byte{
		"empty":            {},
		"unterminated":     {0x80, 0x80},
		"overflow 11 byte": bytes.Repeat([]byte{0xff}, 11),
		"overflow 10 byte": append(bytes.Repeat([]byte{0xff}, 9), 0x7f),
	}
	for name, b := range cases {
		d := NewDecoder(b)
		if got := d.Uvarint(); got != 0 {
			t.Errorf("Uvarint(%s) = %d, want 0", name, got)
		}
		if err := d.Err(); !errors.Is(err, ErrCorrupt) {
			t.Errorf("Uvarint(%s) err = %v, want ErrCorrupt", name, err)
		}

		d = NewDecoder(b)
		if got := d.Varint(); got != 0 {
			t.Errorf("Varint(%s) = %d, want 0", name, got)
		}
		if err := d.Err(); !errors.Is(err, ErrCorrupt) {
			t.Errorf("Varint(%s) err = %v, want ErrCorrupt", name, err)
		}
	}
}

func TestZeroAfterFailure(t *testing.T) {
	// A length prefix of 5 with only 3 bytes after it fails the first read.
	// Every later read must return a zero value, although bytes remain.
	d := NewDecoder([]byte{5, 1, 2, 3})
	if got := d.String(); got != "" {
		t.Errorf("String() = %q, want \"\"", got)
	}
	if got := d.Byte(); got != 0 {
		t.Errorf("Byte() after a failure = %d, want 0", got)
	}
	if got := d.Uvarint(); got != 0 {
		t.Errorf("Uvarint() after a failure = %d, want 0", got)
	}
	if got := d.Varint(); got != 0 {
		t.Errorf("Varint() after a failure = %d, want 0", got)
	}
	if got := d.ByteSlice(); got != nil {
		t.Errorf("ByteSlice() after a failure = %x, want nil", got)
	}
	if got := d.Time(); !got.IsZero() {
		t.Errorf("Time() after a failure = %v, want the zero time", got)
	}
	if err := d.Err(); !errors.Is(err, ErrCorrupt) {
		t.Errorf("Err() = %v, want ErrCorrupt", err)
	}
}

// TestHugeLengthNoAllocation checks that a length prefix larger than the
// input makes the decoder fail before it allocates for the field.
func TestHugeLengthNoAllocation(t *testing.T) {
	e := NewEncoder(16)
	e.Uvarint(1 << 40)
	e.Byte('x')
	b := e.Bytes()

	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	const runs = 100
	for range runs {
		d := NewDecoder(b)
		if s := d.String(); s != "" {
			t.Fatalf("String() returned %d bytes, want 0", len(s))
		}
		if d.Err() == nil {
			t.Fatal("Err() = nil, want ErrCorrupt")
		}
	}
	runtime.ReadMemStats(&after)

	// The decoder itself may be allocated, so allow a few hundred bytes
	// per run, far below the 1 TiB that the length prefix claims.
	if perRun := (after.TotalAlloc - before.TotalAlloc) / runs; perRun > 256 {
		t.Errorf("a field with length prefix 2^40 allocated %d bytes per decode, want at most 256", perRun)
	}
}

// maxOps bounds the reads of one FuzzDecoder input.
const maxOps = 64

// FuzzDecoder decodes data with a sequence of reads chosen by ops. It checks
// that no read panics or returns more bytes than MaxField or than data has.
// Every field is a copy of input bytes, so this bounds what a read allocates.
// When the whole input decodes, encoding the values and decoding them again
// must give the same values.
func FuzzDecoder(f *testing.F) {
	for _, tc := range roundTripCases {
		f.Add([]byte{0, 1, 2, 3, 4, 5, 0}, tc.in.encode())
	}
	f.Add([]byte{3}, []byte{0xff, 0xff, 0xff, 0xff, 0x7f})
	f.Add([]byte{4, 4}, []byte{0x80, 0x80, 0x40, 'x'})
	f.Add([]byte{1, 2}, bytes.Repeat([]byte{0xff}, 11))

	f.Fuzz(func(t *testing.T, ops, data []byte) {
		if len(ops) > maxOps {
			ops = ops[:maxOps]
		}
		limit := min(MaxField, len(data))

		d := NewDecoder(data)
		values := make([]any, len(ops))
		for i, op := range ops {
			values[i] = read(d, op)
			if n := valueSize(values[i]); n > limit {
				t.Fatalf("read %d (op %d) returned %d bytes from %d bytes of input, limit %d", i, op%6, n, len(data), limit)
			}
		}
		if d.Err() != nil {
			return
		}

		e := NewEncoder(len(data))
		for i, op := range ops {
			write(e, op, values[i])
		}
		d = NewDecoder(e.Bytes())
		for i, op := range ops {
			got := read(d, op)
			if !sameValue(got, values[i]) {
				t.Errorf("read %d (op %d) after re-encoding = %v, want %v", i, op%6, got, values[i])
			}
		}
		if err := d.Err(); err != nil {
			t.Errorf("Err() after re-encoding = %v, want nil", err)
		}
	})
}

func read(d *Decoder, op byte) any {
	switch op % 6 {
	case 0:
		return d.Byte()
	case 1:
		return d.Uvarint()
	case 2:
		return d.Varint()
	case 3:
		return d.String()
	case 4:
		return d.ByteSlice()
	default:
		return d.Time()
	}
}

func write(e *Encoder, op byte, v any) {
	switch op % 6 {
	case 0:
		e.Byte(v.(byte))
	case 1:
		e.Uvarint(v.(uint64))
	case 2:
		e.Varint(v.(int64))
	case 3:
		e.String(v.(string))
	case 4:
		e.ByteSlice(v.([]byte))
	default:
		e.Time(v.(time.Time))
	}
}

func valueSize(v any) int {
	switch v := v.(type) {
	case string:
		return len(v)
	case []byte:
		return len(v)
	default:
		return 0
	}
}

func sameValue(a, b any) bool {
	switch a := a.(type) {
	case []byte:
		return bytes.Equal(a, b.([]byte))
	case time.Time:
		return a.Equal(b.(time.Time))
	default:
		return a == b
	}
}

func TestCopyDecoderByteSliceAppend(t *testing.T) {
	e := NewEncoder(0)
	e.ByteSlice([]byte("first"))
	e.String("second")
	e.ByteSlice([]byte("third"))
	d := NewCopyDecoder(e.Bytes())
	first := d.ByteSlice()
	second := d.String()
	third := d.ByteSlice()
	if err := d.Err(); err != nil {
		t.Fatalf("Err() = %v, want nil", err)
	}

	// Writes to a returned slice, in place or by append, stay in it.
	_ = append(first, "XXXXXXXXXXXX"...)
	clear(third)
	if second != "second" {
		t.Errorf("after an append to the field before it, the string field = %q, want \"second\"", second)
	}
	if cap(first) != len(first) {
		t.Errorf("ByteSlice() capacity = %d, want its length %d", cap(first), len(first))
	}
}

func TestCopyDecoderAllocations(t *testing.T) {
	in := fields{s: "string", bs: []byte("bytes"), t: time.Unix(1, 0)}
	b := in.encode()
	allocs := testing.AllocsPerRun(100, func() {
		if _, err := decodeFieldsWith(NewCopyDecoder, b); err != nil {
			t.Fatal(err)
		}
	})

	// The copy, and the Decoder if it escapes.
	if allocs > 2 {
		t.Errorf("a decode of a string and a byte field allocated %v times, want at most 2", allocs)
	}
}
