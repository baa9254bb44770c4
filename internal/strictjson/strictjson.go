// Package strictjson decodes JSON request bodies more strictly than
// encoding/json, which matches keys case-insensitively, keeps the last of
// duplicate keys, treats null as "no value", and replaces invalid UTF-8 and
// lone surrogates with U+FFFD. A request that any of those would change is
// rejected with an *Error that names the problem and the field, never the
// value.
//
// # Rules
//
// The body must be exactly one JSON object (RFC 8259), optionally surrounded
// by JSON whitespace. Keys match json tags exactly, and each key may appear
// once per object. Case folding here is bytes.EqualFold, the folding that
// encoding/json uses to match keys. A key that matches no field but folds
// equal to an earlier key of the same object that matched a field is a
// duplicate_field, because encoding/json would decode it into that field.
// Every other key that matches no field is an unknown_field. So a body with
// two keys that differ only in case is always rejected: with duplicate_field
// when the first of them matched a field, else with unknown_field.
//
// Null is rejected as the value of any field and as any array element.
// Objects and arrays may nest at most 16 levels deep, counting the top-level
// object.
//
// An error shows an unknown key in Field only if the key looks like a field
// name: at most 64 ASCII letters, digits, '_' and '-', starting with a letter
// or '_', with at most 4 digits. Other keys could carry a card number or forge
// a path, so Field then names the object that contains the key.
//
// # Error precedence
//
// Decode reports one error. Invalid UTF-8 bytes anywhere in the body are
// reported as invalid_utf8, whatever else is wrong. Otherwise the first
// problem with the body as a whole (invalid_json, trailing_data, or
// invalid_utf8 for an escaped lone surrogate) is reported, in document order.
// Only a body that is valid JSON can get a field error (unknown_field,
// duplicate_field, missing_field, null_value, invalid_type). Decode reports
// the first field error in document order, and a missing field counts as
// found at the end of its object.
//
// # Caveats
//
// Memory use is linear in the input size, but an empty object "{}" in a
// slice of structs allocates a whole element, so a body can allocate more
// bytes than it contains in proportion to the size of the element type.
package strictjson

import (
	"reflect"
)

// Error codes, stable for API clients.
const (
	CodeInvalidJSON    = "invalid_json"    // not JSON, or not an object at the top
	CodeTrailingData   = "trailing_data"   // bytes after the top-level object
	CodeUnknownField   = "unknown_field"   // a key the target does not have
	CodeDuplicateField = "duplicate_field" // a key twice, or two keys equal but for case
	CodeMissingField   = "missing_field"   // a field tagged strict:"required" is absent
	CodeNullValue      = "null_value"      // null for any field
	CodeInvalidType    = "invalid_type"    // a value of the wrong JSON type, such as a number for a string
	CodeInvalidUTF8    = "invalid_utf8"    // invalid UTF-8, or an escaped lone surrogate, in a string
	CodeTooManyItems   = "too_many_items"  // an array longer than DecodeLimited's limit
)

// Error is a rejected request body.
type Error struct {
	Code  string // one of the Code constants
	Field string // JSON path of the field, such as "items[2].data"; "" for the body
	Msg   string // human-readable reason, never containing a value

	// For CodeUnknownField only: Object is the JSON path of the object that
	// has the key ("" for the body), Accepted lists the field names of that
	// object, and CaseOf is the one the key equals but for case, or "".
	Object   string
	Accepted []string
	CaseOf   string
}

// Error returns the field path and the reason, such as
// "items[2].data: expected a string, got a number".
func (e *Error) Error() string {
	if e.Field == "" {
		return e.Msg
	}
	return e.Field + ": " + e.Msg
}

// Decode decodes data, which must be exactly one JSON object, into v, a
// pointer to a struct. Struct fields are matched by their json tag, case
// sensitively; fields tagged strict:"required" must be present. Supported
// field types: string, bool, int, float64, []string, and slices of structs
// (decoded by the same rules). Any other type makes Decode panic, as a
// programming error.
//
// Decode first sets *v to its zero value, so fields absent from data are
// zero, and on error it leaves *v zero, so no part of a rejected body stays
// reachable through v. A field without a json tag is matched by its Go name,
// as in encoding/json. Unexported fields and fields tagged json:"-" are
// ignored.
//
// Decode also panics if v is not a non-nil pointer to a struct. The same
// holds if that struct, or the element struct of one of its slices, embeds a
// struct, has a json tag name that encoding/json would ignore, uses the
// ",string" tag option, or has a strict tag other than "required". Two json
// names that differ only in case make it panic too, because the duplicate
// rule could not tell their keys apart.
//
// The returned error is nil or an *Error.
func Decode(data []byte, v any) error {
	return DecodeLimited(data, v, 0)
}

// DecodeLimited is Decode that stops with CodeTooManyItems at the first array
// longer than maxItems, before decoding the rest, so that a body of many
// small items cannot make it allocate them all. maxItems <= 0 means no
// limit.
func DecodeLimited(data []byte, v any, maxItems int) error {
	rv := reflect.ValueOf(v)
	if rv.Kind() != reflect.Pointer || rv.IsNil() || rv.Elem().Kind() != reflect.Struct {
		panic("strictjson: Decode target must be a non-nil pointer to a struct, not " + typeName(v))
	}
	target := rv.Elem()
	info := structInfoFor(target.Type())
	target.SetZero()

	d := decoder{data: data, maxItems: maxItems}
	if err := d.decodeBody(target, info); err != nil {
		target.SetZero()
		return err
	}
	return nil
}

func typeName(v any) string {
	if v == nil {
		return "nil"
	}
	return reflect.TypeOf(v).String()
}
