package strictjson

import (
	"math"
	"reflect"
	"strconv"
)

// maxDepth bounds the nesting of objects and arrays, counting the top-level
// object. Request bodies need a few levels, and the bound keeps the
// recursion of the decoder and of the path below a fixed size.
const maxDepth = 16

// decoder is a recursive-descent parser over one request body. Errors about
// the body as a whole (invalid_json, trailing_data, invalid_utf8) are
// returned up the call chain at once. Field errors are recorded in err and
// decoding goes on, so that a later error about the body still wins.
type decoder struct {
	data    []byte
	pos     int    // offset of the next unread byte
	depth   int    // objects and arrays open at pos
	scratch []byte // unescaped string, reused across strings
	err     *Error // first field error

	maxItems int // longest array accepted; 0 for no limit

	// path names the value being decoded. Each open object or array adds at
	// most one element, so maxDepth elements are enough.
	path    [maxDepth]pathElem
	pathLen int
}

// pathElem is one step of a field path: a field name, or an array index
// when name is "".
type pathElem struct {
	name  string
	index int
}

func (d *decoder) decodeBody(target reflect.Value, info *structInfo) error {
	d.skipSpace()
	if d.peek() != '{' {
		return d.syntaxError("expected a JSON object")
	}
	if err := d.decodeObject(target, info); err != nil {
		return err
	}

	d.skipSpace()
	if d.pos < len(d.data) {
		if err := d.invalidUTF8After(d.pos); err != nil {
			return err
		}
		return &Error{Code: CodeTrailingData, Msg: "unexpected data after the JSON object at byte offset " + strconv.Itoa(d.pos)}
	}
	if d.err != nil {
		return d.err
	}
	return nil
}

// decodeObject decodes the object at d.pos into sv, a struct described by
// info.
func (d *decoder) decodeObject(sv reflect.Value, info *structInfo) error {
	if err := d.enter(); err != nil {
		return err
	}
	var seenSmall [1]uint64 // fields seen in this object, one bit each
	seen := seenSmall[:]
	if len(info.fields) > 64 {
		seen = make([]uint64, (len(info.fields)+63)/64)
	}

	d.skipSpace()
	if d.peek() == '}' {
		d.pos++
	} else {
		if err := d.decodeMembers(sv, info, seen); err != nil {
			return err
		}
	}
	d.depth--

	if info.hasRequired && d.err == nil {
		for i := range info.fields {
			f := &info.fields[i]
			if f.required && seen[i/64]&(1<<(i%64)) == 0 {
				d.pushName(f.name)
				d.reject(CodeMissingField, "missing required field")
				d.pop()
				break
			}
		}
	}
	return nil
}

// decodeMembers decodes the members of a non-empty object up to and
// including its closing brace.
func (d *decoder) decodeMembers(sv reflect.Value, info *structInfo, seen []uint64) error {
	for {
		d.skipSpace()
		if d.peek() != '"' {
			return d.syntaxError("expected a string object key")
		}
		key, err := d.readString()
		if err != nil {
			return err
		}
		d.skipSpace()
		if d.peek() != ':' {
			return d.syntaxError("expected ':' after object key")
		}
		d.pos++
		d.skipSpace()

		// key may point into d.scratch, so it is used up before the value
		// is read.
		i := info.lookup(key)
		switch {
		case i < 0:
			d.rejectKey(key, info, seen)
			err = d.skipValue()
		case seen[i/64]&(1<<(i%64)) != 0:
			d.pushName(info.fields[i].name)
			d.reject(CodeDuplicateField, "duplicate field")
			d.pop()
			err = d.skipValue()
		default:
			seen[i/64] |= 1 << (i % 64)
			f := &info.fields[i]
			d.pushName(f.name)
			err = d.decodeField(sv.Field(f.index), f)
			d.pop()
		}
		if err != nil {
			return err
		}

		d.skipSpace()
		switch d.peek() {
		case ',':
			d.pos++
		case '}':
			d.pos++
			return nil
		default:
			return d.syntaxError("expected ',' or '}' after object member")
		}
	}
}

// rejectKey records an unknown_field or duplicate_field error for key, which
// matches no field of info exactly.
func (d *decoder) rejectKey(key []byte, info *structInfo, seen []uint64) {
	if d.err != nil {
		return
	}

	i := info.lookupFold(key)
	if i >= 0 && seen[i/64]&(1<<(i%64)) != 0 {
		d.pushName(info.fields[i].name)
		d.reject(CodeDuplicateField, "duplicate field: an earlier key differs from this one only in case")
		d.pop()
		return
	}

	object := d.pathString()
	msg, caseOf := "unknown field", ""
	if i >= 0 {
		caseOf = info.fields[i].name
		msg = "unknown field: keys are case-sensitive, and this one differs only in case from " + quote(caseOf)
	}
	if !isDisplayableKey(key) {
		d.reject(CodeUnknownField, msg+" (key not shown because it does not look like a field name)")
	} else {
		d.pushName(string(key))
		d.reject(CodeUnknownField, msg)
		d.pop()
	}

	d.err.Object, d.err.CaseOf = object, caseOf
	d.err.Accepted = make([]string, len(info.fields))
	for j := range info.fields {
		d.err.Accepted[j] = info.fields[j].name
	}
}

// maxKeyDigits bounds the digits of a key that an error may show: a card
// number has at least 12, and a key is not a value but may carry one.
const maxKeyDigits = 4

// isDisplayableKey reports whether an unknown key may appear in an error's
// Field: at most 64 ASCII letters, digits, '_' and '-', starting with a letter
// or '_', with at most maxKeyDigits digits. The path syntax characters '.'
// and '[' are excluded so that a key cannot forge a path.
func isDisplayableKey(key []byte) bool {
	if len(key) == 0 || len(key) > 64 {
		return false
	}
	digits := 0
	for i, c := range key {
		switch {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', c == '_':
		case '0' <= c && c <= '9' && i > 0:
			digits++
		case c == '-' && i > 0:
		default:
			return false
		}
	}
	return digits <= maxKeyDigits
}

// decodeField decodes the value at d.pos into fv according to f.kind.
func (d *decoder) decodeField(fv reflect.Value, f *field) error {
	c := d.peek()
	if c == 'n' {
		return d.readNull()
	}

	switch f.kind {
	case kindString:
		if c != '"' {
			return d.rejectType("a string", c)
		}
		s, err := d.readString()
		if err != nil {
			return err
		}
		fv.SetString(string(s))

	case kindBool:
		switch c {
		case 't':
			if err := d.readLiteral("true"); err != nil {
				return err
			}
			fv.SetBool(true)
			return nil
		case 'f':
			return d.readLiteral("false")
		}
		return d.rejectType("a boolean", c)

	case kindInt:
		if c != '-' && !isDigit(c) {
			return d.rejectType("an integer", c)
		}
		return d.decodeInt(fv)

	case kindFloat:
		if c != '-' && !isDigit(c) {
			return d.rejectType("a number", c)
		}
		return d.decodeFloat(fv)

	case kindStringSlice:
		if c != '[' {
			return d.rejectType("an array of strings", c)
		}
		return d.decodeArray(fv, nil)

	case kindStructSlice:
		if c != '[' {
			return d.rejectType("an array of objects", c)
		}
		return d.decodeArray(fv, f.elem)

	default:
		panic("strictjson: unreachable field kind")
	}
	return nil
}

// decodeArray decodes the array at d.pos into the slice sv: of strings if
// elem is nil, else of structs described by elem. An empty array gives an
// empty, non-nil slice, as encoding/json does.
func (d *decoder) decodeArray(sv reflect.Value, elem *structInfo) error {
	if err := d.enter(); err != nil {
		return err
	}
	d.skipSpace()
	if d.peek() == ']' {
		d.pos++
		d.depth--
		sv.Set(reflect.MakeSlice(sv.Type(), 0, 0))
		return nil
	}

	for i := 0; ; i++ {
		if d.maxItems > 0 && i == d.maxItems {
			return &Error{Code: CodeTooManyItems, Field: d.pathString(),
				Msg: "array has more than " + strconv.Itoa(d.maxItems) + " items"}
		}
		d.skipSpace()
		d.pushIndex(i)
		err := d.decodeElement(sv, elem)
		d.pop()
		if err != nil {
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

// decodeElement decodes the array element at d.pos and appends it to sv.
func (d *decoder) decodeElement(sv reflect.Value, elem *structInfo) error {
	c := d.peek()
	if c == 'n' {
		return d.readNull()
	}

	if elem == nil {
		if c != '"' {
			return d.rejectType("a string", c)
		}
		s, err := d.readString()
		if err != nil {
			return err
		}
		appendZero(sv).SetString(string(s))
		return nil
	}

	if c != '{' {
		return d.rejectType("an object", c)
	}
	return d.decodeObject(appendZero(sv), elem)
}

// appendZero grows the slice sv by one zero element and returns it.
func appendZero(sv reflect.Value) reflect.Value {
	n := sv.Len()
	if n == sv.Cap() {
		sv.Grow(1) // amortized, like append
	}
	sv.SetLen(n + 1)
	e := sv.Index(n)
	e.SetZero()
	return e
}

// decodeInt decodes the number at d.pos into fv, which has kind reflect.Int.
func (d *decoder) decodeInt(fv reflect.Value) error {
	lit, isInt, err := d.readNumber()
	if err != nil {
		return err
	}
	if !isInt {
		d.reject(CodeInvalidType, "expected an integer, got a number with a fraction or exponent")
		return nil
	}

	neg := lit[0] == '-'
	if neg {
		lit = lit[1:]
	}
	limit := uint64(math.MaxInt)
	if neg {
		limit++ // -math.MinInt
	}
	var n uint64
	for _, c := range lit {
		digit := uint64(c - '0')
		if n > (limit-digit)/10 {
			d.reject(CodeInvalidType, "integer out of range")
			return nil
		}
		n = n*10 + digit
	}
	if neg {
		n = -n // two's complement, so that 1<<63 becomes math.MinInt64
	}
	fv.SetInt(int64(n))
	return nil
}

// decodeFloat decodes the number at d.pos into fv, which has kind
// reflect.Float64.
func (d *decoder) decodeFloat(fv reflect.Value) error {
	lit, _, err := d.readNumber()
	if err != nil {
		return err
	}
	// lit is a valid JSON number, which ParseFloat accepts, so the only
	// possible error is ErrRange for a magnitude above math.MaxFloat64.
	f, err := strconv.ParseFloat(string(lit), 64)
	if err != nil {
		d.reject(CodeInvalidType, "number out of range for float64")
		return nil
	}
	fv.SetFloat(f)
	return nil
}

// readNull reads the literal null and records a null_value error.
func (d *decoder) readNull() error {
	if err := d.readLiteral("null"); err != nil {
		return err
	}
	d.reject(CodeNullValue, "null is not allowed")
	return nil
}

// rejectType records an invalid_type error for the value at d.pos, which
// starts with c, and skips the value.
func (d *decoder) rejectType(expected string, c byte) error {
	d.reject(CodeInvalidType, "expected "+expected+", got "+jsonTypeName(c))
	return d.skipValue()
}

// jsonTypeName returns the JSON type of a value that starts with c.
func jsonTypeName(c byte) string {
	switch {
	case c == '"':
		return "a string"
	case c == '{':
		return "an object"
	case c == '[':
		return "an array"
	case c == 't' || c == 'f':
		return "a boolean"
	case c == '-' || isDigit(c):
		return "a number"
	}
	// skipValue returns a syntax error, which replaces this one.
	return "an invalid value"
}

// reject records a field error at the current path unless one is recorded.
func (d *decoder) reject(code, msg string) {
	if d.err == nil {
		d.err = &Error{Code: code, Field: d.pathString(), Msg: msg}
	}
}

func (d *decoder) pushName(name string) {
	d.path[d.pathLen] = pathElem{name: name}
	d.pathLen++
}

func (d *decoder) pushIndex(i int) {
	d.path[d.pathLen] = pathElem{index: i}
	d.pathLen++
}

func (d *decoder) pop() { d.pathLen-- }

// pathString formats the path, such as "items[2].data".
func (d *decoder) pathString() string {
	var b []byte
	for _, e := range d.path[:d.pathLen] {
		if e.name == "" {
			b = append(b, '[')
			b = strconv.AppendInt(b, int64(e.index), 10)
			b = append(b, ']')
			continue
		}
		if len(b) > 0 {
			b = append(b, '.')
		}
		b = append(b, e.name...)
	}
	return string(b)
}
