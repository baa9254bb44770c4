// Package strictjson decodes JSON request bodies more strictly than
// encoding/json, which matches keys case-insensitively, keeps the last of
// duplicate keys, treats null as "no value", and replaces invalid UTF-8 and
// lone surrogates with U+FFFD. A request that any of those would change is
// rejected with an *Error that names the problem and the field, never the
// value.
package strictjson

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
)

// Error is a rejected request body.
type Error struct {
	Code  string // one of the Code constants
	Field string // JSON path of the field, such as "items[2].data"; "" for the body
	Msg   string // human-readable reason, never containing a value
}

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
func Decode(data []byte, v any) error {
	panic("strictjson: not implemented yet")
}
