package strictjson_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"reflect"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"unicode/utf8"

	"github.com/google/go-cmp/cmp"

	"github.com/tokenvault/tokenvault/internal/strictjson"
)

type note struct {
	Text     string `json:"text" strict:"required"`
	Children []note `json:"children"`
}

type item struct {
	Data  string   `json:"data" strict:"required"`
	Brand string   `json:"brand"`
	Count int      `json:"count"`
	Tags  []string `json:"tags"`
	Notes []note   `json:"notes"`
}

type request struct {
	Data    string   `json:"data" strict:"required"`
	Flag    bool     `json:"flag"`
	N       int      `json:"n"`
	Amount  float64  `json:"amount"`
	Tags    []string `json:"tags"`
	Items   []item   `json:"items"`
	Opt     string   `json:"opt,omitempty"`
	Plain   string   // matched by its Go name
	Skipped string   `json:"-"`
	hidden  string
}

// cmpRequest compares requests, including the unexported field that Decode
// must leave alone.
var cmpRequest = cmp.AllowUnexported(request{})

// deepObject returns a JSON object for the type note whose objects and
// arrays nest depth levels deep, counting the top-level object. Odd levels
// are objects and even levels are arrays.
func deepObject(depth int) string {
	var open, closing strings.Builder
	for level := 1; level <= depth; level++ {
		switch {
		case level%2 == 0:
			open.WriteString("[")
			closing.WriteString("]")
		case level == depth:
			open.WriteString(`{"text":"t"}`)
		default:
			open.WriteString(`{"text":"t","children":`)
			closing.WriteString("}")
		}
	}
	closers := []byte(closing.String())
	for i, j := 0, len(closers)-1; i < j; i, j = i+1, j-1 {
		closers[i], closers[j] = closers[j], closers[i]
	}
	return open.String() + string(closers)
}

func TestDeepObjectShape(t *testing.T) {
	tests := map[int]string{
		1: `{"text":"t"}`,
		2: `{"text":"t","children":[]}`,
		3: `{"text":"t","children":[{"text":"t"}]}`,
	}
	for depth, want := range tests {
		if got := deepObject(depth); got != want {
			t.Errorf("deepObject(%d) = %s, want %s", depth, got, want)
		}
		if got := maxNesting([]byte(want)); got != depth {
			t.Errorf("maxNesting(%s) = %d, want %d", want, got, depth)
		}
	}
}

var validCases = []struct {
	name string
	in   string
	want request
}{
	{"minimal", `{"data":"4111111111111111"}`, request{Data: "4111111111111111"}},
	{"whitespace around", " \t\r\n{ \"data\" : \"x\" }\r\n\t ", request{Data: "x"}},
	{"short escapes", `{"data":"a\nb\t\"\\\/\b\f\r"}`, request{Data: "a\nb\t\"\\/\b\f\r"}},
	{"unicode escape", `{"data":"Jos\u00e9"}`, request{Data: "José"}},
	{"uppercase hex escape", `{"data":"\u00C9"}`, request{Data: "É"}},
	{"surrogate pair", `{"data":"\ud83d\ude00"}`, request{Data: "😀"}},
	{"escape after raw UTF-8", `{"data":"é\u00e9😀"}`, request{Data: "éé😀"}},
	{"raw UTF-8", `{"data":"é😀"}`, request{Data: "é😀"}},
	{"encoded U+FFFD", "{\"data\":\"\xef\xbf\xbd\"}", request{Data: "\uFFFD"}},
	{"escaped NUL", `{"data":"a\u0000b"}`, request{Data: "a\x00b"}},
	{"empty string", `{"data":""}`, request{Data: ""}},
	{"escaped key", `{"d\u0061ta":"x"}`, request{Data: "x"}},
	{"empty arrays", `{"data":"x","tags":[],"items":[]}`, request{Data: "x", Tags: []string{}, Items: []item{}}},
	{"arrays with whitespace", `{"data":"x","tags":[ "a" , "b" ],"items":[ ]}`, request{Data: "x", Tags: []string{"a", "b"}, Items: []item{}}},
	{"all fields", `{"data":"x","flag":true,"n":-42,"amount":12.5,"tags":["a"],"opt":"o","Plain":"p"}`,
		request{Data: "x", Flag: true, N: -42, Amount: 12.5, Tags: []string{"a"}, Opt: "o", Plain: "p"}},
	{"false", `{"data":"x","flag":false}`, request{Data: "x"}},
	{"nested items", `{"data":"x","items":[{"data":"a","brand":"visa","count":2,"tags":["t"]},{"data":"b","notes":[{"text":"n","children":[{"text":"m"}]}]}]}`,
		request{Data: "x", Items: []item{
			{Data: "a", Brand: "visa", Count: 2, Tags: []string{"t"}},
			{Data: "b", Notes: []note{{Text: "n", Children: []note{{Text: "m"}}}}},
		}}},
	{"max int", `{"data":"x","n":9223372036854775807}`, request{Data: "x", N: math.MaxInt64}},
	{"min int", `{"data":"x","n":-9223372036854775808}`, request{Data: "x", N: math.MinInt64}},
	{"negative zero int", `{"data":"x","n":-0}`, request{Data: "x"}},
	{"float exponent", `{"data":"x","amount":1.5E+3}`, request{Data: "x", Amount: 1500}},
	{"float from integer", `{"data":"x","amount":7}`, request{Data: "x", Amount: 7}},
	{"float underflow", `{"data":"x","amount":1e-400}`, request{Data: "x"}},
	{"max float", `{"data":"x","amount":1.7976931348623157e308}`, request{Data: "x", Amount: math.MaxFloat64}},
	{"members in any order", `{"n":1,"data":"x"}`, request{Data: "x", N: 1}},
}

func TestDecodeValid(t *testing.T) {
	for _, tc := range validCases {
		t.Run(tc.name, func(t *testing.T) {
			var got request
			if err := strictjson.Decode([]byte(tc.in), &got); err != nil {
				t.Fatalf("Decode(%s) err = %v, want nil", tc.name, err)
			}
			if diff := cmp.Diff(tc.want, got, cmpRequest); diff != "" {
				t.Errorf("Decode(%s) mismatch (-want +got):\n%s", tc.name, diff)
			}
		})
	}
}

func TestDecodeMaxDepth(t *testing.T) {
	for _, depth := range []int{15, 16} {
		var got note
		if err := strictjson.Decode([]byte(deepObject(depth)), &got); err != nil {
			t.Errorf("Decode(depth %d) err = %v, want nil", depth, err)
		}
	}

	var got note
	err := strictjson.Decode([]byte(deepObject(17)), &got)
	var serr *strictjson.Error
	wantField := strings.TrimSuffix(strings.Repeat("children[0].", 8), ".")
	if !errors.As(err, &serr) || serr.Code != strictjson.CodeInvalidJSON || serr.Field != wantField {
		t.Errorf("Decode(depth 17) err = %v, want invalid_json at %s", err, wantField)
	}
}

var errorCases = []struct {
	name      string
	in        string
	wantCode  string
	wantField string
}{
	// invalid_json
	{"empty input", ``, strictjson.CodeInvalidJSON, ""},
	{"only whitespace", " \n", strictjson.CodeInvalidJSON, ""},
	{"top-level null", `null`, strictjson.CodeInvalidJSON, ""},
	{"top-level array", `[{"data":"x"}]`, strictjson.CodeInvalidJSON, ""},
	{"top-level string", `"x"`, strictjson.CodeInvalidJSON, ""},
	{"top-level number", `4111111111111111`, strictjson.CodeInvalidJSON, ""},
	{"byte order mark", "\xef\xbb\xbf{\"data\":\"x\"}", strictjson.CodeInvalidJSON, ""},
	{"non-breaking space before object", "\u00a0{\"data\":\"x\"}", strictjson.CodeInvalidJSON, ""},
	{"open brace only", `{`, strictjson.CodeInvalidJSON, ""},
	{"key without colon", `{"data"`, strictjson.CodeInvalidJSON, ""},
	{"missing value", `{"data":}`, strictjson.CodeInvalidJSON, "data"},
	{"trailing comma", `{"data":"x",}`, strictjson.CodeInvalidJSON, ""},
	{"missing comma", `{"data":"x" "n":1}`, strictjson.CodeInvalidJSON, ""},
	{"single quotes", `{'data':'x'}`, strictjson.CodeInvalidJSON, ""},
	{"unquoted key", `{data:"x"}`, strictjson.CodeInvalidJSON, ""},
	{"comment", `{"data":"x"/* c */}`, strictjson.CodeInvalidJSON, ""},
	{"unterminated string", `{"data":"x`, strictjson.CodeInvalidJSON, "data"},
	{"unterminated object", `{"data":"x"`, strictjson.CodeInvalidJSON, ""},
	{"control character in string", "{\"data\":\"a\x01b\"}", strictjson.CodeInvalidJSON, "data"},
	{"raw newline in string", "{\"data\":\"a\nb\"}", strictjson.CodeInvalidJSON, "data"},
	{"invalid escape", `{"data":"\x41"}`, strictjson.CodeInvalidJSON, "data"},
	{"short unicode escape", `{"data":"\u12"}`, strictjson.CodeInvalidJSON, "data"},
	{"backslash at end", `{"data":"\`, strictjson.CodeInvalidJSON, "data"},
	{"leading zero", `{"data":"x","n":01}`, strictjson.CodeInvalidJSON, ""},
	{"bare decimal point", `{"data":"x","n":1.}`, strictjson.CodeInvalidJSON, "n"},
	{"no integer part", `{"data":"x","amount":.5}`, strictjson.CodeInvalidJSON, "amount"},
	{"plus sign", `{"data":"x","n":+1}`, strictjson.CodeInvalidJSON, "n"},
	{"empty exponent", `{"data":"x","amount":1e}`, strictjson.CodeInvalidJSON, "amount"},
	{"lone minus", `{"data":"x","n":-}`, strictjson.CodeInvalidJSON, "n"},
	{"NaN", `{"data":"x","amount":NaN}`, strictjson.CodeInvalidJSON, "amount"},
	{"hex number", `{"data":"x","n":0x10}`, strictjson.CodeInvalidJSON, ""},
	{"truncated literal", `{"data":"x","flag":tru}`, strictjson.CodeInvalidJSON, "flag"},
	{"capitalized literal", `{"data":"x","flag":True}`, strictjson.CodeInvalidJSON, "flag"},
	{"literal with suffix", `{"data":"x","flag":truex}`, strictjson.CodeInvalidJSON, ""},
	{"nesting too deep", deepObject(17), strictjson.CodeInvalidJSON, ""},
	{"deep unknown value", `{"x":` + strings.Repeat("[", 100000) + strings.Repeat("]", 100000) + `}`, strictjson.CodeInvalidJSON, ""},
	{"deep value of wrong type", `{"data":` + strings.Repeat(`{"a":`, 100000), strictjson.CodeInvalidJSON, "data"},
	{"syntax error in unknown value", `{"x":[1,],"data":"y"}`, strictjson.CodeInvalidJSON, ""},
	{"syntax error after field error", `{"n":"x","data":}`, strictjson.CodeInvalidJSON, "data"},

	// trailing_data
	{"second object", `{"data":"x"}{"data":"y"}`, strictjson.CodeTrailingData, ""},
	{"text after object", `{"data":"x"} x`, strictjson.CodeTrailingData, ""},
	{"comma after object", `{"data":"x"},`, strictjson.CodeTrailingData, ""},
	{"NUL after object", "{\"data\":\"x\"}\x00", strictjson.CodeTrailingData, ""},
	{"trailing data after field error", `{"x":1} x`, strictjson.CodeTrailingData, ""},

	// unknown_field
	{"unknown key", `{"data":"x","pan":"4111111111111111"}`, strictjson.CodeUnknownField, "pan"},
	{"case variant of a field", `{"Data":"x"}`, strictjson.CodeUnknownField, "Data"},
	{"case variant before the field", `{"DATA":"x","data":"y"}`, strictjson.CodeUnknownField, "DATA"},
	{"two unknown case variants", `{"data":"x","foo":1,"FOO":2}`, strictjson.CodeUnknownField, "foo"},
	{"nested unknown key", `{"data":"x","items":[{"data":"y"},{"data":"z","cvv":"123"}]}`, strictjson.CodeUnknownField, "items[1].cvv"},
	{"key of an ignored field", `{"data":"x","Skipped":"y"}`, strictjson.CodeUnknownField, "Skipped"},
	{"key of an unexported field", `{"data":"x","hidden":"y"}`, strictjson.CodeUnknownField, "hidden"},
	{"Go name of a tagged field", `{"data":"x","Opt":"y"}`, strictjson.CodeUnknownField, "Opt"},
	{"lowercase Go name", `{"data":"x","plain":"y"}`, strictjson.CodeUnknownField, "plain"},
	{"card number as key", `{"data":"x","4111111111111111":"y"}`, strictjson.CodeUnknownField, ""},
	{"path-like key", `{"data":"x","items[0].data":"y"}`, strictjson.CodeUnknownField, ""},
	{"empty key", `{"data":"x","":"y"}`, strictjson.CodeUnknownField, ""},
	{"unknown key with null", `{"data":"x","z":null}`, strictjson.CodeUnknownField, "z"},

	// duplicate_field
	{"same key twice", `{"data":"x","data":"y"}`, strictjson.CodeDuplicateField, "data"},
	{"same key with escape", `{"data":"x","d\u0061ta":"y"}`, strictjson.CodeDuplicateField, "data"},
	{"case variant after the field", `{"data":"x","Data":"y"}`, strictjson.CodeDuplicateField, "data"},
	{"upper case after the field", `{"data":"x","DATA":"y"}`, strictjson.CodeDuplicateField, "data"},
	{"Unicode case variant", `{"data":"x","tags":[],"tag\u017f":[]}`, strictjson.CodeDuplicateField, "tags"},
	{"nested duplicate", `{"data":"x","items":[{"data":"y"},{"data":"z","brand":"a","brand":"b"}]}`, strictjson.CodeDuplicateField, "items[1].brand"},
	{"duplicate of an invalid value", `{"n":"x","n":1,"data":"y"}`, strictjson.CodeInvalidType, "n"},

	// missing_field
	{"empty object", `{}`, strictjson.CodeMissingField, "data"},
	{"required field absent", `{"flag":true}`, strictjson.CodeMissingField, "data"},
	{"nested required field absent", `{"data":"x","items":[{"data":"y"},{"brand":"v"}]}`, strictjson.CodeMissingField, "items[1].data"},
	{"deeply nested required field absent", `{"data":"x","items":[{"data":"y","notes":[{"children":[{}]}]}]}`, strictjson.CodeMissingField, "items[0].notes[0].children[0].text"},

	// null_value
	{"null for a string", `{"data":null}`, strictjson.CodeNullValue, "data"},
	{"null for an int", `{"data":"x","n":null}`, strictjson.CodeNullValue, "n"},
	{"null for a bool", `{"data":"x","flag":null}`, strictjson.CodeNullValue, "flag"},
	{"null for a slice", `{"data":"x","tags":null}`, strictjson.CodeNullValue, "tags"},
	{"null in a string slice", `{"data":"x","tags":["a",null]}`, strictjson.CodeNullValue, "tags[1]"},
	{"null in a struct slice", `{"data":"x","items":[null]}`, strictjson.CodeNullValue, "items[0]"},
	{"null in a nested field", `{"data":"x","items":[{"data":"y","count":null}]}`, strictjson.CodeNullValue, "items[0].count"},

	// invalid_type
	{"card number as a number", `{"data":4111111111111111}`, strictjson.CodeInvalidType, "data"},
	{"bool for a string", `{"data":true}`, strictjson.CodeInvalidType, "data"},
	{"object for a string", `{"data":{"a":"b"}}`, strictjson.CodeInvalidType, "data"},
	{"array for a string", `{"data":["x"]}`, strictjson.CodeInvalidType, "data"},
	{"string for a bool", `{"data":"x","flag":"true"}`, strictjson.CodeInvalidType, "flag"},
	{"number for a bool", `{"data":"x","flag":1}`, strictjson.CodeInvalidType, "flag"},
	{"float for an int", `{"data":"x","n":1.5}`, strictjson.CodeInvalidType, "n"},
	{"integral float for an int", `{"data":"x","n":1.0}`, strictjson.CodeInvalidType, "n"},
	{"exponent for an int", `{"data":"x","n":1e2}`, strictjson.CodeInvalidType, "n"},
	{"int above range", `{"data":"x","n":9223372036854775808}`, strictjson.CodeInvalidType, "n"},
	{"int below range", `{"data":"x","n":-9223372036854775809}`, strictjson.CodeInvalidType, "n"},
	{"huge int", `{"data":"x","n":` + strings.Repeat("9", 400) + `}`, strictjson.CodeInvalidType, "n"},
	{"string for an int", `{"data":"x","n":"1"}`, strictjson.CodeInvalidType, "n"},
	{"string for a float", `{"data":"x","amount":"1.5"}`, strictjson.CodeInvalidType, "amount"},
	{"float above range", `{"data":"x","amount":1e400}`, strictjson.CodeInvalidType, "amount"},
	{"string for a string slice", `{"data":"x","tags":"a"}`, strictjson.CodeInvalidType, "tags"},
	{"number in a string slice", `{"data":"x","tags":["a",1]}`, strictjson.CodeInvalidType, "tags[1]"},
	{"object for a struct slice", `{"data":"x","items":{"data":"y"}}`, strictjson.CodeInvalidType, "items"},
	{"string in a struct slice", `{"data":"x","items":["y"]}`, strictjson.CodeInvalidType, "items[0]"},
	{"array in a struct slice", `{"data":"x","items":[[]]}`, strictjson.CodeInvalidType, "items[0]"},
	{"first field error wins", `{"data":1,"zzz":2}`, strictjson.CodeInvalidType, "data"},

	// invalid_utf8
	{"invalid byte in value", "{\"data\":\"\xff\"}", strictjson.CodeInvalidUTF8, "data"},
	{"truncated sequence", "{\"data\":\"\xc3\"}", strictjson.CodeInvalidUTF8, "data"},
	{"overlong encoding", "{\"data\":\"\xc0\xaf\"}", strictjson.CodeInvalidUTF8, "data"},
	{"encoded surrogate", "{\"data\":\"\xed\xa0\x80\"}", strictjson.CodeInvalidUTF8, "data"},
	{"invalid byte after escape", "{\"data\":\"\\n\xff\"}", strictjson.CodeInvalidUTF8, "data"},
	{"invalid byte in nested value", "{\"data\":\"x\",\"items\":[{\"data\":\"\xfe\"}]}", strictjson.CodeInvalidUTF8, "items[0].data"},
	{"invalid byte in key", "{\"\xff\":\"x\"}", strictjson.CodeInvalidUTF8, ""},
	{"lone high surrogate", `{"data":"\ud800"}`, strictjson.CodeInvalidUTF8, "data"},
	{"lone low surrogate", `{"data":"\udc00"}`, strictjson.CodeInvalidUTF8, "data"},
	{"high surrogate then letter", `{"data":"\ud800x"}`, strictjson.CodeInvalidUTF8, "data"},
	{"high surrogate then BMP escape", `{"data":"\ud800\u0041"}`, strictjson.CodeInvalidUTF8, "data"},
	{"two high surrogates", `{"data":"\ud800\ud800"}`, strictjson.CodeInvalidUTF8, "data"},
	{"reversed surrogate pair", `{"data":"\ude00\ud83d"}`, strictjson.CodeInvalidUTF8, "data"},
	{"lone surrogate in key", `{"\ud800":"x"}`, strictjson.CodeInvalidUTF8, ""},
	{"lone surrogate in unknown value", `{"data":"x","z":"\udfff"}`, strictjson.CodeInvalidUTF8, ""},
	{"invalid byte in unknown value", "{\"data\":\"x\",\"z\":\"\xff\"}", strictjson.CodeInvalidUTF8, ""},
	{"invalid byte outside strings", "{\xff}", strictjson.CodeInvalidUTF8, ""},
	{"invalid byte after object", "{\"data\":\"x\"}\xff", strictjson.CodeInvalidUTF8, ""},
	{"invalid byte after syntax error", "{\"data\" x \"\xff\"}", strictjson.CodeInvalidUTF8, ""},
	{"invalid byte after field error", "{\"n\":\"x\",\"data\":\"\xff\"}", strictjson.CodeInvalidUTF8, "data"},
}

func TestDecodeErrors(t *testing.T) {
	for _, tc := range errorCases {
		t.Run(tc.name, func(t *testing.T) {
			var got request
			err := strictjson.Decode([]byte(tc.in), &got)
			var serr *strictjson.Error
			if !errors.As(err, &serr) {
				t.Fatalf("Decode(%s) err = %v, want *Error with code %s", tc.name, err, tc.wantCode)
			}
			if serr.Code != tc.wantCode {
				t.Errorf("Decode(%s) code = %s (%v), want %s", tc.name, serr.Code, err, tc.wantCode)
			}
			if serr.Field != tc.wantField {
				t.Errorf("Decode(%s) field = %q (%v), want %q", tc.name, serr.Field, err, tc.wantField)
			}
			if serr.Msg == "" {
				t.Errorf("Decode(%s) message is empty", tc.name)
			}
			if diff := cmp.Diff(request{}, got, cmpRequest); diff != "" {
				t.Errorf("Decode(%s) left the target non-zero (-want +got):\n%s", tc.name, diff)
			}
		})
	}
}

// TestDecodeErrorOmitsValue checks that no part of a rejected card number
// appears in the error text, wherever the number sits.
func TestDecodeErrorOmitsValue(t *testing.T) {
	const pan = "4111111111111111"
	inputs := []string{
		`{"data":` + pan + `}`,
		`{"data":"` + pan + `","x":"` + pan + `"}`,
		`{"data":"` + pan + `","` + pan + `":1}`,
		`{"data":"` + pan + `","n":` + pan + `1111}`,
		`{"data":"` + pan + `","n":` + pan + `.5}`,
		`{"data":"` + pan + `","flag":"` + pan + `"}`,
		`{"data":"` + pan + `","tags":["` + pan + `",` + pan + `]}`,
		`{"data":"` + pan + `"` + pan + `}`,
		`{"data":"` + pan + `"}` + pan,
		`{"data":"` + pan + "\xff" + `"}`,
		`{"data":"` + pan + `\ud800"}`,
		`{"data":"` + pan + `","data":"` + pan + `"}`,
		`{"items":[{"brand":"` + pan + `"}],"data":"x"}`,
		`{"data":"` + pan,
		pan,
	}
	for i, in := range inputs {
		var got request
		err := strictjson.Decode([]byte(in), &got)
		if err == nil {
			t.Errorf("Decode(input %d) err = nil, want an error", i)
			continue
		}
		if strings.Contains(err.Error(), "1111") {
			t.Errorf("Decode(input %d) err = %q, which contains part of the card number", i, err)
		}
	}
}

func TestDecodeErrorText(t *testing.T) {
	var got request
	err := strictjson.Decode([]byte(`{"data":"x","items":[{"data":"y"},{"data":5}]}`), &got)
	want := "items[1].data: expected a string, got a number"
	if err == nil || err.Error() != want {
		t.Errorf("Decode err = %v, want %q", err, want)
	}

	err = strictjson.Decode([]byte(`{"data":"x",}`), &got)
	want = "invalid JSON at byte offset 12: expected a string object key"
	if err == nil || err.Error() != want {
		t.Errorf("Decode err = %v, want %q", err, want)
	}
}

func TestDecodeOverwritesTarget(t *testing.T) {
	got := request{Data: "old", N: 7, Tags: []string{"old"}, Skipped: "kept?", hidden: "kept?"}
	if err := strictjson.Decode([]byte(`{"data":"new"}`), &got); err != nil {
		t.Fatalf("Decode err = %v, want nil", err)
	}
	if diff := cmp.Diff(request{Data: "new"}, got, cmpRequest); diff != "" {
		t.Errorf("Decode did not start from the zero value (-want +got):\n%s", diff)
	}

	got = request{Data: "old"}
	if err := strictjson.Decode([]byte(`{"data":"new","n":"x"}`), &got); err == nil {
		t.Fatal("Decode err = nil, want invalid_type")
	}
	if diff := cmp.Diff(request{}, got, cmpRequest); diff != "" {
		t.Errorf("Decode left a rejected body in the target (-want +got):\n%s", diff)
	}
}

// TestDecodeMatchesEncodingJSON checks that Decode and json.Unmarshal give
// the same struct for every valid input.
func TestDecodeMatchesEncodingJSON(t *testing.T) {
	for _, tc := range validCases {
		var got, want request
		assertSameDecode(t, tc.in, &got, &want)
	}
	for _, depth := range []int{1, 2, 16} {
		var got, want note
		assertSameDecode(t, deepObject(depth), &got, &want)
	}
}

func assertSameDecode[T any](t *testing.T, in string, got, want *T) {
	t.Helper()
	if err := strictjson.Decode([]byte(in), got); err != nil {
		t.Errorf("Decode(%.60q) err = %v, want nil", in, err)
		return
	}
	if err := json.Unmarshal([]byte(in), want); err != nil {
		t.Errorf("json.Unmarshal(%.60q) err = %v, want nil", in, err)
		return
	}
	if diff := cmp.Diff(want, got, cmpRequest); diff != "" {
		t.Errorf("Decode(%.60q) differs from json.Unmarshal (-json +strictjson):\n%s", in, diff)
	}
}

// wideStruct returns a pointer to a new struct with n string fields named
// f0 to f(n-1), the last one required, to cover more fields than fit in one
// 64-bit set.
func wideStruct(n int) reflect.Value {
	fields := make([]reflect.StructField, n)
	for i := range fields {
		tag := fmt.Sprintf(`json:"f%d"`, i)
		if i == n-1 {
			tag += ` strict:"required"`
		}
		fields[i] = reflect.StructField{Name: fmt.Sprintf("F%d", i), Type: reflect.TypeFor[string](), Tag: reflect.StructTag(tag)}
	}
	return reflect.New(reflect.StructOf(fields))
}

func TestDecodeWideStruct(t *testing.T) {
	const n = 70
	v := wideStruct(n)
	if err := strictjson.Decode([]byte(`{"f69":"a","f0":"b","f65":"c"}`), v.Interface()); err != nil {
		t.Fatalf("Decode err = %v, want nil", err)
	}
	if got := v.Elem().Field(65).String(); got != "c" {
		t.Errorf("field f65 = %q, want %q", got, "c")
	}

	tests := []struct {
		in        string
		wantCode  string
		wantField string
	}{
		{`{"f69":"a","f66":"b","f66":"c"}`, strictjson.CodeDuplicateField, "f66"},
		{`{"f69":"a","f66":"b","F66":"c"}`, strictjson.CodeDuplicateField, "f66"},
		{`{"f68":"a"}`, strictjson.CodeMissingField, "f69"},
	}
	for _, tc := range tests {
		err := strictjson.Decode([]byte(tc.in), wideStruct(n).Interface())
		var serr *strictjson.Error
		if !errors.As(err, &serr) || serr.Code != tc.wantCode || serr.Field != tc.wantField {
			t.Errorf("Decode(%s) err = %v, want %s at %s", tc.in, err, tc.wantCode, tc.wantField)
		}
	}
}

type namedString string

type namedTypes struct {
	S     namedString   `json:"s"`
	Slice []namedString `json:"slice"`
}

func TestDecodeNamedTypes(t *testing.T) {
	var got namedTypes
	if err := strictjson.Decode([]byte(`{"s":"a","slice":["b"]}`), &got); err != nil {
		t.Fatalf("Decode err = %v, want nil", err)
	}
	want := namedTypes{S: "a", Slice: []namedString{"b"}}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("Decode mismatch (-want +got):\n%s", diff)
	}
}

type embedded struct{ A string }

func TestDecodePanicsOnUnsupportedTarget(t *testing.T) {
	var nilRequest *request
	targets := map[string]any{
		"nil":                     nil,
		"struct value":            request{},
		"nil pointer":             nilRequest,
		"pointer to string":       new(string),
		"map field":               &struct{ M map[string]string }{},
		"pointer field":           &struct{ P *string }{},
		"int64 field":             &struct{ N int64 }{},
		"float32 field":           &struct{ F float32 }{},
		"int slice field":         &struct{ S []int }{},
		"byte slice field":        &struct{ B []byte }{},
		"struct field":            &struct{ E embedded }{},
		"pointer slice field":     &struct{ S []*embedded }{},
		"embedded struct":         &struct{ embedded }{},
		"embedded struct pointer": &struct{ *embedded }{},
		"string option": &struct {
			N int `json:"n,string"`
		}{},
		"unknown strict tag": &struct {
			S string `strict:"optional"`
		}{},
		"names equal but for case": &struct {
			A string `json:"name"`
			B string `json:"Name"`
		}{},
		"invalid tag name": &struct {
			S string `json:"a\"b"`
		}{},
		"unsupported type in slice": &struct{ S []struct{ M map[string]int } }{},
	}
	for name, target := range targets {
		t.Run(name, func(t *testing.T) {
			defer func() {
				if recover() == nil {
					t.Errorf("Decode into %T did not panic", target)
				}
			}()
			_ = strictjson.Decode([]byte(`{}`), target)
		})
	}
}

// TestDecodeAllocations checks that Decode allocates only the decoded
// strings once the metadata of the type is cached.
func TestDecodeAllocations(t *testing.T) {
	var r request
	body := []byte(`{"data":"4111111111111111","flag":true,"n":3,"amount":1.5}`)
	allocs := testing.AllocsPerRun(100, func() {
		if err := strictjson.Decode(body, &r); err != nil {
			t.Fatalf("Decode err = %v, want nil", err)
		}
	})
	if allocs != 1 {
		t.Errorf("Decode allocations = %v, want 1 for the one string", allocs)
	}
}

// TestDecodeConcurrent decodes into several types from many goroutines, so
// that the race detector checks the metadata cache.
func TestDecodeConcurrent(t *testing.T) {
	var wg sync.WaitGroup
	for g := range 16 {
		wg.Go(func() {
			for range 50 {
				var r request
				if err := strictjson.Decode([]byte(validCases[g%len(validCases)].in), &r); err != nil {
					t.Errorf("Decode(%s) err = %v, want nil", validCases[g%len(validCases)].name, err)
					return
				}
				var n note
				if err := strictjson.Decode([]byte(deepObject(5)), &n); err != nil {
					t.Errorf("Decode(note) err = %v, want nil", err)
					return
				}
			}
		})
	}
	wg.Wait()
}

var (
	// fixedDigits matches the offsets and the fixed words with digits
	// that error messages contain.
	fixedDigits  = regexp.MustCompile(`byte offset [0-9]+|UTF-(8|16)|float64|16 levels|4 hexadecimal`)
	indexPattern = regexp.MustCompile(`\[[0-9]+\]`)
	validCodes   = map[string]bool{
		strictjson.CodeInvalidJSON: true, strictjson.CodeTrailingData: true,
		strictjson.CodeUnknownField: true, strictjson.CodeDuplicateField: true,
		strictjson.CodeMissingField: true, strictjson.CodeNullValue: true,
		strictjson.CodeInvalidType: true, strictjson.CodeInvalidUTF8: true,
	}
)

// maxNesting returns the deepest nesting of objects and arrays in data,
// which must be valid JSON.
func maxNesting(data []byte) int {
	depth, deepest := 0, 0
	inString := false
	for i := 0; i < len(data); i++ {
		c := data[i]
		switch {
		case inString && c == '\\':
			i++
		case c == '"':
			inString = !inString
		case inString:
		case c == '{' || c == '[':
			depth++
			deepest = max(deepest, depth)
		case c == '}' || c == ']':
			depth--
		}
	}
	return deepest
}

// FuzzDecode checks that Decode never panics, that it accepts only bodies
// that json.Unmarshal decodes to the same struct, and that its errors have a
// known code and no digits beyond offsets, fixed words and short keys. The failing input is stored
// under testdata/fuzz, so messages leave it out.
func FuzzDecode(f *testing.F) {
	for _, tc := range validCases {
		f.Add([]byte(tc.in))
	}
	for _, tc := range errorCases {
		if len(tc.in) < 1000 {
			f.Add([]byte(tc.in))
		}
	}
	f.Add([]byte(deepObject(16)))

	f.Fuzz(func(t *testing.T, data []byte) {
		var got request
		err := strictjson.Decode(data, &got)

		if err == nil {
			var want request
			if jerr := json.Unmarshal(data, &want); jerr != nil {
				t.Fatalf("Decode accepted a body that json.Unmarshal rejects: %v", jerr)
			}
			if diff := cmp.Diff(want, got, cmpRequest); diff != "" {
				t.Fatalf("Decode differs from json.Unmarshal (-json +strictjson):\n%s", diff)
			}
			return
		}

		var serr *strictjson.Error
		if !errors.As(err, &serr) {
			t.Fatalf("Decode err = %T, want *strictjson.Error", err)
		}
		if !validCodes[serr.Code] {
			t.Fatalf("Decode code = %q, want one of the Code constants", serr.Code)
		}
		if diff := cmp.Diff(request{}, got, cmpRequest); diff != "" {
			t.Fatalf("Decode left the target non-zero after %v", err)
		}
		if msg := fixedDigits.ReplaceAllString(serr.Msg, ""); strings.ContainsAny(msg, "0123456789") {
			t.Fatalf("Decode message %q contains digits other than an offset", serr.Msg)
		}
		if field := indexPattern.ReplaceAllString(serr.Field, ""); countDigits(field) > 4 {
			t.Fatalf("Decode field %q contains more digits than a field name may", serr.Field)
		}

		// A body that is valid JSON and UTF-8 gets a syntax code only for
		// the two extra rules: an object at the top and bounded nesting.
		if json.Valid(data) && utf8.Valid(data) {
			switch serr.Code {
			case strictjson.CodeTrailingData, strictjson.CodeInvalidUTF8:
				if serr.Code == strictjson.CodeInvalidUTF8 && bytes.Contains(data, []byte(`\u`)) {
					break // a lone surrogate escape is valid JSON
				}
				t.Fatalf("Decode code = %s for valid JSON and UTF-8", serr.Code)
			case strictjson.CodeInvalidJSON:
				top := bytes.TrimLeft(data, " \t\r\n")
				if len(top) > 0 && top[0] == '{' && maxNesting(data) <= 16 {
					t.Fatalf("Decode code = invalid_json for a valid object nested %d levels: %v", maxNesting(data), err)
				}
			}
		}
	})
}

func countDigits(s string) int {
	n := 0
	for _, c := range []byte(s) {
		if '0' <= c && c <= '9' {
			n++
		}
	}
	return n
}

// benchBatch is a body of about 1.4 KB with ten nested items, each with
// \u escapes, a string slice and a slice of structs.
var benchBatch = func() []byte {
	var b strings.Builder
	b.WriteString(`{"data":"batch-2024-0001","flag":true,"n":10,"amount":1234.56,"tags":["api","v1"],"items":[`)
	for i := range 10 {
		if i > 0 {
			b.WriteString(",")
		}
		b.WriteString(`{"data":"411111111111111` + strconv.Itoa(i) + `","brand":"visa","count":` + strconv.Itoa(i) +
			`,"tags":["card","J\u00e9r\u00f4me Dupont"],"notes":[{"text":"cardholder present"}]}`)
	}
	b.WriteString(`]}`)
	return []byte(b.String())
}()

var benchSmall = []byte(`{"data":"4111111111111111","flag":true,"n":3}`)

func BenchmarkDecode(b *testing.B) {
	bodies := []struct {
		name string
		data []byte
	}{
		{"small", benchSmall},
		{"batch", benchBatch},
	}
	for _, body := range bodies {
		b.Run("strictjson/"+body.name, func(b *testing.B) {
			b.SetBytes(int64(len(body.data)))
			b.ReportAllocs()
			for b.Loop() {
				var r request
				if err := strictjson.Decode(body.data, &r); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run("encoding_json/"+body.name, func(b *testing.B) {
			b.SetBytes(int64(len(body.data)))
			b.ReportAllocs()
			for b.Loop() {
				var r request
				if err := json.Unmarshal(body.data, &r); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// TestDecodeUnknownFieldDetails checks the object, accepted names and case
// match that an unknown_field error carries.
func TestDecodeUnknownFieldDetails(t *testing.T) {
	topNames := []string{"data", "flag", "n", "amount", "tags", "items", "opt", "Plain"}
	itemNames := []string{"data", "brand", "count", "tags", "notes"}
	tests := []struct {
		name, in string
		want     strictjson.Error
	}{
		{"top", `{"data":"x","colour":1}`, strictjson.Error{Field: "colour", Object: "", Accepted: topNames}},
		{"case", `{"Data":"x"}`, strictjson.Error{Field: "Data", Object: "", Accepted: topNames, CaseOf: "data"}},
		{"nested", `{"data":"x","items":[{"data":"y"},{"data":"z","BRAND":"v"}]}`,
			strictjson.Error{Field: "items[1].BRAND", Object: "items[1]", Accepted: itemNames, CaseOf: "brand"}},
		{"key not shown", `{"data":"x","items":[{"da ta":"y"}]}`,
			strictjson.Error{Field: "items[0]", Object: "items[0]", Accepted: itemNames}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var got request
			err := strictjson.Decode([]byte(tt.in), &got)
			var serr *strictjson.Error
			if !errors.As(err, &serr) || serr.Code != strictjson.CodeUnknownField {
				t.Fatalf("Decode(%s) err = %v, want an unknown_field *Error", tt.in, err)
			}
			details := *serr
			details.Code, details.Msg = "", ""
			if diff := cmp.Diff(tt.want, details); diff != "" {
				t.Errorf("Decode(%s) error details (-want +got):\n%s", tt.in, diff)
			}
		})
	}
}
