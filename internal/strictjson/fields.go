package strictjson

import (
	"bytes"
	"reflect"
	"strings"
	"sync"
	"unicode"
)

// fieldKind is the decoding rule of a struct field, set from its Go type.
type fieldKind uint8

const (
	kindInvalid fieldKind = iota
	kindString
	kindBool
	kindInt
	kindFloat
	kindStringSlice
	kindStructSlice
)

// field is the decoding metadata of one struct field.
type field struct {
	name     string // JSON key, matched exactly
	index    int    // index for reflect.Value.Field
	kind     fieldKind
	required bool
	elem     *structInfo // element metadata for kindStructSlice, nil otherwise
}

// structInfo is the decoding metadata of a struct type. It is immutable once
// built and shared by all goroutines.
type structInfo struct {
	fields      []field
	hasRequired bool
}

// lookup returns the index in s.fields of the field named key, or -1.
// Request structs have a handful of fields, so a linear scan is enough.
func (s *structInfo) lookup(key []byte) int {
	for i := range s.fields {
		if string(key) == s.fields[i].name {
			return i
		}
	}
	return -1
}

// lookupFold returns the index of the field whose name equals key under
// case folding, or -1.
func (s *structInfo) lookupFold(key []byte) int {
	for i := range s.fields {
		if bytes.EqualFold(key, []byte(s.fields[i].name)) {
			return i
		}
	}
	return -1
}

// structInfoCache maps a reflect.Type to its *structInfo.
var structInfoCache sync.Map

// structInfoFor returns the metadata of struct type t, building and caching
// it on first use. It panics if t or a struct it contains is unsupported.
func structInfoFor(t reflect.Type) *structInfo {
	if info, ok := structInfoCache.Load(t); ok {
		return info.(*structInfo)
	}

	// building holds the types under construction, so that a recursive type
	// such as struct{ Children []Node } refers to itself instead of looping.
	building := make(map[reflect.Type]*structInfo)
	info := buildStructInfo(t, building)

	// Concurrent first calls may each build the metadata. Both results are
	// equivalent, and every goroutine ends up using the stored one.
	for bt, bi := range building {
		if bt != t {
			structInfoCache.LoadOrStore(bt, bi)
		}
	}
	stored, _ := structInfoCache.LoadOrStore(t, info)
	return stored.(*structInfo)
}

func buildStructInfo(t reflect.Type, building map[reflect.Type]*structInfo) *structInfo {
	if info, ok := building[t]; ok {
		return info
	}
	if info, ok := structInfoCache.Load(t); ok {
		return info.(*structInfo)
	}
	info := &structInfo{}
	building[t] = info

	for i := 0; i < t.NumField(); i++ {
		sf := t.Field(i)
		f, ok := buildField(t, sf, building)
		if !ok {
			continue
		}

		if j := info.lookupFold([]byte(f.name)); j >= 0 {
			panic("strictjson: " + t.String() + " has json names " + quote(info.fields[j].name) +
				" and " + quote(f.name) + ", which differ only in case")
		}
		info.fields = append(info.fields, f)
		info.hasRequired = info.hasRequired || f.required
	}
	return info
}

// buildField returns the metadata of struct field sf of t, and false if
// Decode ignores the field.
func buildField(t reflect.Type, sf reflect.StructField, building map[reflect.Type]*structInfo) (field, bool) {
	tag := sf.Tag.Get("json")
	if tag == "-" {
		return field{}, false
	}
	where := "strictjson: field " + t.String() + "." + sf.Name

	// encoding/json promotes the fields of an embedded struct, even an
	// unexported one, so ignoring it would change which keys are accepted.
	ft := sf.Type
	if sf.Anonymous && (ft.Kind() == reflect.Struct || ft.Kind() == reflect.Pointer && ft.Elem().Kind() == reflect.Struct) {
		panic(where + ": embedded structs are not supported")
	}
	if !sf.IsExported() {
		return field{}, false
	}

	name, options, _ := strings.Cut(tag, ",")
	for options != "" {
		var option string
		option, options, _ = strings.Cut(options, ",")
		if option == "string" {
			panic(where + `: the ",string" tag option is not supported`)
		}
	}
	if name == "" {
		name = sf.Name
	} else if !isValidTagName(name) {
		// encoding/json would silently fall back to the Go name.
		panic(where + ": invalid json tag name " + quote(name))
	}

	f := field{name: name, index: sf.Index[0]}
	switch strict := sf.Tag.Get("strict"); strict {
	case "":
	case "required":
		f.required = true
	default:
		panic(where + ": unknown strict tag " + quote(strict) + `, want "required"`)
	}

	switch ft.Kind() {
	case reflect.String:
		f.kind = kindString
	case reflect.Bool:
		f.kind = kindBool
	case reflect.Int:
		f.kind = kindInt
	case reflect.Float64:
		f.kind = kindFloat
	case reflect.Slice:
		switch ft.Elem().Kind() {
		case reflect.String:
			f.kind = kindStringSlice
		case reflect.Struct:
			f.kind = kindStructSlice
			f.elem = buildStructInfo(ft.Elem(), building)
		}
	}
	if f.kind == kindInvalid {
		panic(where + ": unsupported type " + ft.String() +
			"; supported are string, bool, int, float64, []string and slices of structs")
	}
	return f, true
}

// isValidTagName reports whether encoding/json accepts name as a json tag
// name (the rule of isValidTag in encoding/json, Go 1.26).
func isValidTagName(name string) bool {
	if name == "" {
		return false
	}
	for _, c := range name {
		switch {
		case strings.ContainsRune("!#$%&()*+-./:;<=>?@[]^_{|}~ ", c):
		case !unicode.IsLetter(c) && !unicode.IsDigit(c):
			return false
		}
	}
	return true
}

func quote(s string) string { return `"` + s + `"` }
