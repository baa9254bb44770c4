package tokenvault_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/tokenvault/tokenvault"
)

// redactPAN is a published Visa test number.
const redactPAN = "4916629305287782"

// redactPANNonLuhn is a published Visa test number that fails the Luhn check,
// so it has the shape of a card token and reaches the store when passed as a
// token.
const redactPANNonLuhn = "4417123456789112"

// redactNow is the vault's fixed clock, so that the times printed by %d are
// the same on every run.
var redactNow = time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)

// redactVerbs are the fmt verbs every value is printed with.
var redactVerbs = []string{"%v", "%+v", "%#v", "%s", "%q", "%x", "%X", "%d"}

type redactExported[T any] struct{ Value T }

type redactUnexported[T any] struct{ value T }

// redactValue is one value to print: a type that contains a secret, wrapped
// as described.
type redactValue struct {
	typ     string // the type, such as "*KeyRing"
	wrapper string // how the value is wrapped, such as "in a slice"
	value   any
}

func redactWrap[T any](typ string, v T) []redactValue {
	return []redactValue{
		{typ, "alone", v},
		{typ, "in an exported field", redactExported[T]{Value: v}},
		{typ, "in an exported field behind a pointer", &redactExported[T]{Value: v}},
		{typ, "in an unexported field", redactUnexported[T]{value: v}},
		{typ, "in a slice", []T{v}},
		{typ, "in a map value", map[string]T{"key": v}},
		{typ, "in an []any", []any{v}},
	}
}

func redactWrapComparable[T comparable](typ string, v T) []redactValue {
	return append(redactWrap(typ, v), redactValue{typ, "as a map key", map[T]int{v: 1}})
}

// redactFinder finds secrets in text: every substring of a given size of a
// spelling of a key or of the card number.
type redactFinder struct {
	windows map[int]map[string]string // size -> substring -> what it is part of
}

func newRedactFinder() *redactFinder {
	return &redactFinder{windows: make(map[int]map[string]string)}
}

// add registers every substring of s that is size bytes long, or s itself if
// it is shorter, as part of the secret described by label.
func (f *redactFinder) add(label, s string, size int) {
	size = min(size, len(s))
	if size == 0 {
		return
	}
	m := f.windows[size]
	if m == nil {
		m = make(map[string]string)
		f.windows[size] = m
	}
	for i := 0; i+size <= len(s); i++ {
		if _, ok := m[s[i:i+size]]; !ok {
			m[s[i:i+size]] = label
		}
	}
}

func (f *redactFinder) clone() *redactFinder {
	c := newRedactFinder()
	for size, m := range f.windows {
		c.windows[size] = make(map[string]string, len(m))
		for w, label := range m {
			c.windows[size][w] = label
		}
	}
	return c
}

// find returns the first secret in out and its byte offset.
func (f *redactFinder) find(out string) (label string, at int, found bool) {
	at = len(out)
	for size, m := range f.windows {
		for i := 0; i+size <= len(out) && i < at; i++ {
			if l, ok := m[out[i:i+size]]; ok {
				label, at, found = l, i, true
				break
			}
		}
	}
	return label, at, found
}

// mask returns out with every byte of every secret replaced by '*', cut to
// 300 bytes around the first secret, so that a failure can show it.
func (f *redactFinder) mask(out string) string {
	b := []byte(out)
	first := len(b)
	for size, m := range f.windows {
		for i := 0; i+size <= len(out); i++ {
			if _, ok := m[out[i:i+size]]; ok {
				copy(b[i:i+size], bytes.Repeat([]byte{'*'}, size))
				first = min(first, i)
			}
		}
	}
	if first == len(b) {
		first = 0
	}
	start := max(0, first-100)
	end := min(len(b), start+300)
	return strconv.Quote(string(b[start:end]))
}

// check reports an error if out, the output of source, contains a secret or
// the mark that fmt or slog leaves when a method panics. Digit runs listed in
// pointers are addresses, which are not checked.
func (f *redactFinder) check(t *testing.T, source, out string, pointers map[string]bool) {
	t.Helper()
	out = redactHidePointers(out, pointers)
	if label, at, found := f.find(out); found {
		t.Errorf("%s contains the %s at byte %d: %s", source, label, at, f.mask(out))
	}
	for _, mark := range []string{"PANIC=", "LogValue panicked"} {
		if strings.Contains(out, mark) {
			t.Errorf("%s contains %q, so a method panicked: %s", source, mark, f.mask(out))
		}
	}
}

// redactPointers returns the decimal form of each pointer in v, up to a few
// levels deep. %d prints the pointers that fmt does not follow as decimal
// numbers with random digits, which would match 8 digits of the card number
// by chance in an estimated 1 run in 1,000 if they were checked.
func redactPointers(v any) map[string]bool {
	seen := make(map[uintptr]bool)
	var walk func(rv reflect.Value, depth int)
	walk = func(rv reflect.Value, depth int) {
		if !rv.IsValid() || depth > 6 {
			return
		}
		switch rv.Kind() {
		case reflect.Pointer, reflect.Map, reflect.Func, reflect.Chan, reflect.UnsafePointer:
			if rv.IsNil() || seen[rv.Pointer()] {
				return
			}
			seen[rv.Pointer()] = true
			if rv.Kind() == reflect.Pointer {
				walk(rv.Elem(), depth+1)
			}
			if rv.Kind() == reflect.Map {
				for key, value := range rv.Seq2() {
					walk(key, depth+1)
					walk(value, depth+1)
				}
			}
		case reflect.Interface:
			walk(rv.Elem(), depth)
		case reflect.Struct:
			for i := range rv.NumField() {
				walk(rv.Field(i), depth+1)
			}
		case reflect.Slice, reflect.Array:
			// Skip scalar elements, and large arrays such as the one over
			// bbolt's memory map.
			switch rv.Type().Elem().Kind() {
			case reflect.Pointer, reflect.Map, reflect.Func, reflect.Chan, reflect.UnsafePointer,
				reflect.Interface, reflect.Struct, reflect.Slice, reflect.Array:
				for i := range min(rv.Len(), 1024) {
					walk(rv.Index(i), depth+1)
				}
			}
		}
	}
	walk(reflect.ValueOf(v), 0)

	decimal := make(map[string]bool, len(seen))
	for p := range seen {
		decimal[strconv.FormatUint(uint64(p), 10)] = true
	}
	return decimal
}

// redactHidePointers returns out with each run of digits that is a pointer
// in pointers replaced by '#'.
func redactHidePointers(out string, pointers map[string]bool) string {
	b := []byte(out)
	for i := 0; i < len(b); {
		j := i
		for j < len(b) && b[j] >= '0' && b[j] <= '9' {
			j++
		}
		if j == i {
			i++
			continue
		}
		if pointers[out[i:j]] {
			copy(b[i:j], strings.Repeat("#", j-i))
		}
		i = j
	}
	return string(b)
}

// redactCapture returns the result of produce, or the value of its panic.
func redactCapture(produce func() string) (out string, panicked bool) {
	defer func() {
		if r := recover(); r != nil {
			out, panicked = fmt.Sprint(r), true
		}
	}()
	return produce(), false
}

// redactKeys returns the decoded keys of a key file, by label.
func redactKeys(t *testing.T, keyFile []byte) map[string][]byte {
	t.Helper()
	keys := make(map[string][]byte)
	for line := range strings.Lines(string(keyFile)) {
		name, value, ok := strings.Cut(strings.TrimSpace(line), "=")
		if !ok || strings.HasPrefix(name, "#") {
			continue
		}
		for i, encoded := range strings.Split(value, ",") {
			raw, err := base64.URLEncoding.DecodeString(encoded)
			if err != nil || len(raw) != 32 {
				t.Fatalf("key file %s entry %d does not decode to 32 bytes (err %v)", name, i+1, err)
			}
			switch name {
			case tokenvault.EnvKeys:
				keys[fmt.Sprintf("Fernet key %d", i+1)] = raw
			case tokenvault.EnvIndexKey:
				keys["index key"] = raw
			default:
				t.Fatalf("key file has an unknown line %s", name)
			}
		}
	}
	if len(keys) < 2 {
		t.Fatalf("key file has %d keys, want at least 2", len(keys))
	}
	return keys
}

// addKey registers the spellings of a 32-byte key: each base64 alphabet with
// and without padding, hex in both cases, the raw bytes, and Go's quoted and
// decimal forms. It also registers the base64 of each 16-byte half, the HMAC
// and AES keys of a Fernet key, which is not a substring of the whole key's
// base64.
func (f *redactFinder) addKey(label string, raw []byte) {
	spell := func(form string, s string, size int) { f.add(label+" in "+form, s, size) }

	for _, part := range []struct {
		name  string
		bytes []byte
	}{{"", raw}, {" (first half)", raw[:16]}, {" (second half)", raw[16:]}} {
		spell("base64url"+part.name, base64.URLEncoding.EncodeToString(part.bytes), 16)
		spell("unpadded base64url"+part.name, base64.RawURLEncoding.EncodeToString(part.bytes), 16)
		spell("standard base64"+part.name, base64.StdEncoding.EncodeToString(part.bytes), 16)
		spell("unpadded standard base64"+part.name, base64.RawStdEncoding.EncodeToString(part.bytes), 16)
	}
	spell("hex", hex.EncodeToString(raw), 16)
	spell("upper-case hex", strings.ToUpper(hex.EncodeToString(raw)), 16)
	spell("raw bytes", string(raw), 16)
	spell("Go quoted form", strings.Trim(strconv.Quote(string(raw)), `"`), 16)
	// A list of small numbers is common in output, so 32 bytes of it are
	// needed before a match means the key.
	spell("Go decimal byte list", strings.Trim(fmt.Sprint(raw), "[]"), 32)
}

// addCard registers the spellings of a card number: each run of 8 digits,
// the number grouped by spaces or dashes, and encodings of its ASCII digits.
//
// NOTE: the hex of random ciphertexts, tokens and key ids gives about 280
// distinct runs of 8 digits per run of TestRedact, counted over two runs. So
// an estimated 1 run in 40,000 fails because one of them equals 8 digits of
// the number by chance.
func (f *redactFinder) addCard(pan string) {
	f.add("card number, 8 digits in a row", pan, 8)

	var groups []string
	for i := 0; i < len(pan); i += 4 {
		groups = append(groups, pan[i:min(i+4, len(pan))])
	}
	f.add("card number grouped by spaces", strings.Join(groups, " "), len(pan)+len(groups))
	f.add("card number grouped by dashes", strings.Join(groups, "-"), len(pan)+len(groups))

	f.add("card number in hex", hex.EncodeToString([]byte(pan)), 16)
	f.add("card number in upper-case hex", strings.ToUpper(hex.EncodeToString([]byte(pan))), 16)
	f.add("card number in base64", base64.StdEncoding.EncodeToString([]byte(pan)), 64)
	f.add("card number in base64url", base64.URLEncoding.EncodeToString([]byte(pan)), 64)
	f.add("card number as a Go decimal byte list", strings.Trim(fmt.Sprint([]byte(pan)), "[]"), 32)
}

// redactFixture is a vault over a real bbolt file with two Fernet keys, and
// values of every type that contains a key or a card number.
type redactFixture struct {
	ring   *tokenvault.KeyRing
	vault  *tokenvault.Vault
	closed *tokenvault.Vault // a vault that was closed
	finder *redactFinder
	values []redactValue
}

func newRedactFixture(t *testing.T) *redactFixture {
	t.Helper()
	ctx := context.Background()

	first, err := tokenvault.GenerateKeyRing()
	if err != nil {
		t.Fatal(err)
	}
	second, err := tokenvault.GenerateKeyRing()
	if err != nil {
		t.Fatal(err)
	}
	firstKeys := redactKeys(t, first.KeyFile())
	secondKeys := redactKeys(t, second.KeyFile())
	ring, err := tokenvault.NewKeyRing(
		[]string{
			base64.URLEncoding.EncodeToString(secondKeys["Fernet key 1"]),
			base64.URLEncoding.EncodeToString(firstKeys["Fernet key 1"]),
		},
		base64.URLEncoding.EncodeToString(firstKeys["index key"]))
	if err != nil {
		t.Fatal(err)
	}

	// The spellings come from KeyFile, the one method allowed to reveal the
	// keys, so that the test checks the keys the ring really holds.
	finder := newRedactFinder()
	keys := redactKeys(t, ring.KeyFile())
	if len(keys) != 3 {
		t.Fatalf("KeyFile has %d keys, want 2 Fernet keys and the index key", len(keys))
	}
	for label, raw := range keys {
		finder.addKey(label, raw)
	}
	finder.addCard(redactPAN)

	dir := t.TempDir()
	store, err := tokenvault.OpenBoltStore(filepath.Join(dir, "vault.db"), nil)
	if err != nil {
		t.Fatal(err)
	}
	vault, err := tokenvault.New(store, ring, tokenvault.WithClock(func() time.Time { return redactNow }))
	if err != nil {
		store.Close()
		t.Fatal(err)
	}
	t.Cleanup(func() { vault.Close() })

	closed, err := tokenvault.Open(filepath.Join(dir, "closed.db"), ring)
	if err != nil {
		t.Fatal(err)
	}
	if err := closed.Close(); err != nil {
		t.Fatal(err)
	}

	// A card-shaped token is random apart from the digits it keeps, so it
	// can share 8 digits in a row with the number by chance. Such a token
	// is no leak, but it would hide one, so draw again.
	var cardToken string
	for range 20 {
		token, err := vault.TokenizeCard(ctx, redactPAN, tokenvault.WithFormat(tokenvault.FormatCardFirstSix))
		if err != nil {
			t.Fatal(err)
		}
		if _, _, found := finder.find(token); !found {
			cardToken = token
			break
		}
	}
	if cardToken == "" {
		t.Fatal("20 card-first-six tokens in a row share 8 digits with the card number")
	}
	opaqueToken, err := vault.TokenizeCard(ctx, redactPAN, tokenvault.WithFormat(tokenvault.FormatOpaque), tokenvault.Deterministic("redact"))
	if err != nil {
		t.Fatal(err)
	}
	if err := vault.SuspendToken(ctx, cardToken, tokenvault.WithReason("card reported lost"), tokenvault.WithActor("support-7")); err != nil {
		t.Fatal(err)
	}
	if err := vault.ActivateToken(ctx, cardToken, tokenvault.WithReason("card found")); err != nil {
		t.Fatal(err)
	}

	card, err := tokenvault.ParseCardNumber(redactPAN)
	if err != nil {
		t.Fatal(err)
	}
	detokenized, err := vault.DetokenizeCard(ctx, cardToken)
	if err != nil {
		t.Fatal(err)
	}
	if detokenized.Digits() != redactPAN {
		t.Fatalf("DetokenizeCard(%q) = %s, want the tokenized card number", cardToken, detokenized)
	}
	cardRecord, err := store.Get(ctx, cardToken)
	if err != nil {
		t.Fatal(err)
	}
	opaqueRecord, err := store.Get(ctx, opaqueToken)
	if err != nil {
		t.Fatal(err)
	}
	info, err := vault.Inspect(ctx, cardToken)
	if err != nil {
		t.Fatal(err)
	}

	var values []redactValue
	values = append(values, redactWrapComparable("*KeyRing", ring)...)
	values = append(values, redactWrapComparable("KeyRing", *ring)...)
	values = append(values, redactWrapComparable("*KeyRing(nil)", (*tokenvault.KeyRing)(nil))...)
	values = append(values, redactWrapComparable("KeyRing(zero)", tokenvault.KeyRing{})...)
	values = append(values, redactWrapComparable("CardNumber", card)...)
	values = append(values, redactWrapComparable("*CardNumber", &card)...)
	values = append(values, redactWrapComparable("CardNumber(DetokenizeCard)", detokenized)...)
	values = append(values, redactWrapComparable("CardNumber(zero)", tokenvault.CardNumber{})...)
	values = append(values, redactWrapComparable("*CardNumber(nil)", (*tokenvault.CardNumber)(nil))...)
	values = append(values, redactWrapComparable("*Vault", vault)...)
	values = append(values, redactWrapComparable("*Vault(closed)", closed)...)
	values = append(values, redactWrapComparable("*Vault(nil)", (*tokenvault.Vault)(nil))...)
	values = append(values, redactWrapComparable("*Record(card-first-six)", cardRecord)...)
	values = append(values, redactWrap("Record(card-first-six)", *cardRecord)...)
	values = append(values, redactWrapComparable("*Record(opaque, deterministic)", opaqueRecord)...)
	values = append(values, redactWrapComparable("*Record(nil)", (*tokenvault.Record)(nil))...)
	values = append(values, redactWrapComparable("*TokenInfo", info)...)
	values = append(values, redactWrap("TokenInfo", *info)...)
	values = append(values, redactWrapComparable("*TokenInfo(nil)", (*tokenvault.TokenInfo)(nil))...)

	return &redactFixture{ring: ring, vault: vault, closed: closed, finder: finder, values: values}
}

// redactSlogForms are the ways a value reaches a slog handler.
var redactSlogForms = []struct {
	name string
	log  func(logger *slog.Logger, v any)
}{
	{"slog.Any", func(l *slog.Logger, v any) { l.Info("message", slog.Any("value", v)) }},
	{"slog.Group", func(l *slog.Logger, v any) { l.Info("message", slog.Group("group", slog.Any("value", v))) }},
	{"Logger.With", func(l *slog.Logger, v any) { l.With("value", v).Info("message") }},
}

// redactHandlerOptions drop the time, whose nanoseconds could match digits
// of the card number by chance.
var redactHandlerOptions = &slog.HandlerOptions{
	ReplaceAttr: func(groups []string, a slog.Attr) slog.Attr {
		if len(groups) == 0 && a.Key == slog.TimeKey {
			return slog.Attr{}
		}
		return a
	},
}

var redactHandlers = []struct {
	name string
	new  func(w io.Writer) slog.Handler
}{
	{"TextHandler", func(w io.Writer) slog.Handler { return slog.NewTextHandler(w, redactHandlerOptions) }},
	{"JSONHandler", func(w io.Writer) slog.Handler { return slog.NewJSONHandler(w, redactHandlerOptions) }},
}

func TestRedact(t *testing.T) {
	fx := newRedactFixture(t)

	for _, rv := range fx.values {
		t.Run(rv.typ+"/"+rv.wrapper, func(t *testing.T) {
			pointers := redactPointers(rv.value)
			for _, verb := range redactVerbs {
				source := fmt.Sprintf("fmt.Sprintf(%q) of %s %s", verb, rv.typ, rv.wrapper)
				out, panicked := redactCapture(func() string { return fmt.Sprintf(verb, rv.value) })
				if panicked {
					t.Errorf("%s panicked: %s", source, fx.finder.mask(out))
					continue
				}
				fx.finder.check(t, source, out, pointers)
			}

			for _, h := range redactHandlers {
				for _, form := range redactSlogForms {
					source := fmt.Sprintf("slog %s with %s of %s %s", h.name, form.name, rv.typ, rv.wrapper)
					out, panicked := redactCapture(func() string {
						var buf bytes.Buffer
						form.log(slog.New(h.new(&buf)), rv.value)
						return buf.String()
					})
					if panicked {
						t.Errorf("%s panicked: %s", source, fx.finder.mask(out))
						continue
					}
					fx.finder.check(t, source, out, pointers)
				}
			}

			source := fmt.Sprintf("json.Marshal of %s %s", rv.typ, rv.wrapper)
			out, panicked := redactCapture(func() string {
				b, err := json.Marshal(rv.value)
				if err != nil {
					return "error: " + err.Error()
				}
				return string(b)
			})
			if panicked {
				t.Errorf("%s panicked: %s", source, fx.finder.mask(out))
			} else {
				fx.finder.check(t, source, out, pointers)
			}
		})
	}

	for _, tc := range redactErrorCases(t, fx) {
		t.Run("error/"+tc.call+"/"+tc.input, func(t *testing.T) {
			finder := fx.finder
			if tc.value != "" {
				finder = finder.clone()
				finder.add("8-byte substring of the input", tc.value, 8)
			}

			source := fmt.Sprintf("%s(%s)", tc.call, tc.input)
			var err error
			out, panicked := redactCapture(func() string {
				err = tc.run(t)
				return ""
			})
			if panicked {
				t.Fatalf("%s panicked: %s", source, finder.mask(out))
			}
			if err == nil {
				t.Fatalf("%s err = nil, want %v", source, tc.want)
			}
			if !errors.Is(err, tc.want) {
				t.Errorf("%s err = %s, want %v", source, finder.mask(err.Error()), tc.want)
			}
			finder.check(t, source+" error text", err.Error(), nil)
		})
	}
}

// redactErrorCase is a failing call whose input contains a card number or a
// key.
type redactErrorCase struct {
	call  string // the function called
	input string // what the input is, never the input itself
	value string // the input unless it is all a key, whose substrings must not appear either
	want  error  // the sentinel the error must wrap
	run   func(t *testing.T) error
}

// redactBadCards returns card number inputs that ParseCardNumber rejects, by
// description. luhnOnly marks the ones rejected only by the Luhn check.
func redactBadCards() (inputs []struct{ name, value string }, luhnOnly map[string]bool) {
	p := redactPAN
	mapDigits := func(s string, zero rune) string {
		return strings.Map(func(r rune) rune { return zero + (r - '0') }, s)
	}
	lastDigit := p[len(p)-1] - '0'
	luhnFail := p[:len(p)-1] + string(rune('0'+(lastDigit+1)%10))

	inputs = []struct{ name, value string }{
		{"letter O for zero", strings.Replace(p, "0", "O", 1)},
		{"letter in the middle", p[:8] + "a" + p[8:]},
		{"letters after", p + "xyz"},
		{"full-width digits", mapDigits(p, '０')},
		{"one full-width digit", p[:15] + mapDigits(p[15:], '０')},
		{"Arabic-Indic digits", mapDigits(p, '٠')},
		{"double space", p[:4] + "  " + p[4:]},
		{"double dash", p[:4] + "--" + p[4:8] + "-" + p[8:12] + "-" + p[12:]},
		{"underscores", p[:4] + "_" + p[4:8] + "_" + p[8:12] + "_" + p[12:]},
		{"dots", p[:4] + "." + p[4:8] + "." + p[8:12] + "." + p[12:]},
		{"slash", p[:8] + "/" + p[8:]},
		{"tab", p[:8] + "\t" + p[8:]},
		{"newline", p[:8] + "\n" + p[8:]},
		{"Unicode minus sign", p[:8] + "\u2212" + p[8:]},
		{"NUL byte", p[:8] + "\x00" + p[8:]},
		{"leading dash", "-" + p},
		{"trailing dash", p + "-"},
		{"dash next to a space", p[:8] + "- " + p[8:]},
		{"too short", p[:11]},
		{"too long", p + "1234"},
		{"too long with spaces", p[:4] + " " + p[4:8] + " " + p[8:12] + " " + p[12:] + " 1234"},
		{"over 64 bytes", strings.Repeat(p+" ", 5)},
		{"Luhn failure", luhnFail},
		{"Luhn failure with spaces", luhnFail[:4] + " " + luhnFail[4:8] + " " + luhnFail[8:12] + " " + luhnFail[12:]},
	}
	return inputs, map[string]bool{"Luhn failure": true, "Luhn failure with spaces": true}
}

func redactErrorCases(t *testing.T, fx *redactFixture) []redactErrorCase {
	ctx := context.Background()
	v := fx.vault
	p := redactPAN
	var cases []redactErrorCase

	cards, luhnOnly := redactBadCards()
	for _, in := range cards {
		value := in.value
		cases = append(cases,
			redactErrorCase{"ParseCardNumber", in.name, value, tokenvault.ErrInvalidCardNumber, func(*testing.T) error {
				_, err := tokenvault.ParseCardNumber(value)
				return err
			}},
			redactErrorCase{"Vault.TokenizeCard", in.name, value, tokenvault.ErrInvalidCardNumber, func(*testing.T) error {
				_, err := v.TokenizeCard(ctx, value)
				return err
			}},
			redactErrorCase{"closed Vault.TokenizeCard", in.name, value, tokenvault.ErrInvalidCardNumber, func(*testing.T) error {
				_, err := fx.closed.TokenizeCard(ctx, value)
				return err
			}},
		)
		if !luhnOnly[in.name] {
			cases = append(cases, redactErrorCase{"Vault.TokensForCard", in.name, value, tokenvault.ErrInvalidCardNumber, func(*testing.T) error {
				_, err := v.TokensForCard(ctx, value)
				return err
			}})
		}
	}

	canceled, cancel := context.WithCancel(ctx)
	cancel()
	tooLongScope := strings.Repeat(p, tokenvault.MaxScopeSize/len(p)+1)
	options := []struct {
		name string
		want error
		opts []tokenvault.TokenizeOption
	}{
		{"unknown format", tokenvault.ErrInvalidOption, []tokenvault.TokenizeOption{tokenvault.WithFormat(42)}},
		{"negative expiry", tokenvault.ErrInvalidOption, []tokenvault.TokenizeOption{tokenvault.ExpiresAfter(-time.Second)}},
		{"expiry in the past", tokenvault.ErrInvalidOption, []tokenvault.TokenizeOption{tokenvault.ExpiresAt(redactNow.Add(-time.Hour))}},
		{"two expiries", tokenvault.ErrInvalidOption, []tokenvault.TokenizeOption{tokenvault.NoExpiry(), tokenvault.ExpiresAfter(time.Hour)}},
		{"card number as a too long scope", tokenvault.ErrInvalidOption, []tokenvault.TokenizeOption{tokenvault.Deterministic(tooLongScope)}},
		{"card number in an invalid UTF-8 scope", tokenvault.ErrInvalidOption, []tokenvault.TokenizeOption{tokenvault.Deterministic(p + "\xff")}},
	}
	for _, o := range options {
		cases = append(cases, redactErrorCase{"Vault.TokenizeCard", o.name, "", o.want, func(*testing.T) error {
			_, err := v.TokenizeCard(ctx, p, o.opts...)
			return err
		}})
	}
	cases = append(cases,
		redactErrorCase{"Vault.TokenizeCard", "canceled context", "", context.Canceled, func(*testing.T) error {
			_, err := v.TokenizeCard(canceled, p)
			return err
		}},
		redactErrorCase{"closed Vault.TokenizeCard", "valid card number", "", tokenvault.ErrVaultClosed, func(*testing.T) error {
			_, err := fx.closed.TokenizeCard(ctx, p)
			return err
		}},
		redactErrorCase{"Vault.Tokenize", "card number with FormatCard", "", tokenvault.ErrInvalidOption, func(*testing.T) error {
			_, err := v.Tokenize(ctx, []byte(p), tokenvault.WithFormat(tokenvault.FormatCard))
			return err
		}},
		redactErrorCase{"Vault.Tokenize", "card number repeated past MaxDataSize", "", tokenvault.ErrInvalidData, func(*testing.T) error {
			_, err := v.Tokenize(ctx, bytes.Repeat([]byte(p), tokenvault.MaxDataSize/len(p)+1))
			return err
		}},
	)

	// A card number passed by mistake where a token belongs.
	asTokens := []struct{ name, value string }{
		{"card number", p},
		{"card number with spaces", p[:4] + " " + p[4:8] + " " + p[8:12] + " " + p[12:]},
		{"card number that fails the Luhn check", redactPANNonLuhn},
		{"19-digit card number", "6250941006528000007"},
	}
	tokenCalls := []struct {
		name string
		run  func(vault *tokenvault.Vault, token string) error
	}{
		{"Detokenize", func(vault *tokenvault.Vault, token string) error { _, err := vault.Detokenize(ctx, token); return err }},
		{"DetokenizeCard", func(vault *tokenvault.Vault, token string) error {
			_, err := vault.DetokenizeCard(ctx, token)
			return err
		}},
		{"Inspect", func(vault *tokenvault.Vault, token string) error { _, err := vault.Inspect(ctx, token); return err }},
		{"SuspendToken", func(vault *tokenvault.Vault, token string) error {
			return vault.SuspendToken(ctx, token, tokenvault.WithReason("lost"))
		}},
		{"ActivateToken", func(vault *tokenvault.Vault, token string) error { return vault.ActivateToken(ctx, token) }},
		{"CloseToken", func(vault *tokenvault.Vault, token string) error { return vault.CloseToken(ctx, token) }},
	}
	for _, call := range tokenCalls {
		for _, in := range asTokens {
			cases = append(cases,
				redactErrorCase{"Vault." + call.name, in.name, in.value, tokenvault.ErrNotFound, func(*testing.T) error {
					return call.run(v, in.value)
				}},
				redactErrorCase{"closed Vault." + call.name, in.name, in.value, tokenvault.ErrVaultClosed, func(*testing.T) error {
					return call.run(fx.closed, in.value)
				}},
			)
		}
	}

	return append(cases, redactKeyErrorCases(t, fx)...)
}

// redactKeyErrorCases returns key ring inputs that are broken but contain a
// real key of the fixture, whole or in part.
func redactKeyErrorCases(t *testing.T, fx *redactFixture) []redactErrorCase {
	var fernetKeys []string
	var indexKey string
	for line := range strings.Lines(string(fx.ring.KeyFile())) {
		if v, ok := strings.CutPrefix(strings.TrimSpace(line), tokenvault.EnvKeys+"="); ok {
			fernetKeys = strings.Split(v, ",")
		}
		if v, ok := strings.CutPrefix(strings.TrimSpace(line), tokenvault.EnvIndexKey+"="); ok {
			indexKey = v
		}
	}
	if len(fernetKeys) != 2 || indexKey == "" {
		t.Fatalf("KeyFile has %d Fernet keys and index key set %t, want 2 and true", len(fernetKeys), indexKey != "")
	}
	k := fernetKeys[0]
	raw, err := base64.URLEncoding.DecodeString(k)
	if err != nil {
		t.Fatal(err)
	}

	broken := []struct{ name, value string }{
		{"key with a character appended", k + "A"},
		{"key with a character prepended", "A" + k},
		{"key twice", k + k},
		{"key with a space inside", k[:20] + " " + k[20:]},
		{"key with text after it", k + " # primary"},
		{"key in quotes", `"` + k + `"`},
		{"whole environment line", tokenvault.EnvKeys + "=" + k},
		{"hex key with 0x", "0x" + hex.EncodeToString(raw)},
		{"hex key with a digit appended", hex.EncodeToString(raw) + "0"},
		{"key cut short", k[:40]},
		{"key with a character replaced", k[:10] + "!" + k[11:]},
	}

	var cases []redactErrorCase
	for _, b := range broken {
		value := b.value
		cases = append(cases,
			redactErrorCase{"NewKeyRing", "primary: " + b.name, "", tokenvault.ErrInvalidKey, func(*testing.T) error {
				_, err := tokenvault.NewKeyRing([]string{value, fernetKeys[1]}, indexKey)
				return err
			}},
			redactErrorCase{"NewKeyRing", "second key: " + b.name, "", tokenvault.ErrInvalidKey, func(*testing.T) error {
				_, err := tokenvault.NewKeyRing([]string{fernetKeys[1], value}, indexKey)
				return err
			}},
			redactErrorCase{"NewKeyRing", "index key: " + b.name, "", tokenvault.ErrInvalidKey, func(*testing.T) error {
				_, err := tokenvault.NewKeyRing(fernetKeys, strings.ReplaceAll(value, k, indexKey))
				return err
			}},
			redactErrorCase{"ParseKeyRing", "second key: " + b.name, "", tokenvault.ErrInvalidKey, func(*testing.T) error {
				_, err := tokenvault.ParseKeyRing(fernetKeys[0]+","+value, indexKey)
				return err
			}},
		)
	}
	cases = append(cases,
		redactErrorCase{"NewKeyRing", "same key twice", "", tokenvault.ErrInvalidKey, func(*testing.T) error {
			_, err := tokenvault.NewKeyRing([]string{k, k}, indexKey)
			return err
		}},
		redactErrorCase{"NewKeyRing", "index key that is also a Fernet key", "", tokenvault.ErrInvalidKey, func(*testing.T) error {
			_, err := tokenvault.NewKeyRing(fernetKeys, k)
			return err
		}},
		redactErrorCase{"ParseKeyRing", "semicolon between keys", "", tokenvault.ErrInvalidKey, func(*testing.T) error {
			_, err := tokenvault.ParseKeyRing(fernetKeys[0]+";"+fernetKeys[1], indexKey)
			return err
		}},
		redactErrorCase{"ParseKeyRing", "Fernet keys and index key swapped", "", tokenvault.ErrInvalidKey, func(*testing.T) error {
			_, err := tokenvault.ParseKeyRing(indexKey, fernetKeys[0]+","+fernetKeys[1])
			return err
		}},
	)

	files := []struct {
		name    string
		content string
		mode    os.FileMode
	}{
		{"broken key", tokenvault.EnvKeys + "=" + k + "A\n" + tokenvault.EnvIndexKey + "=" + indexKey + "\n", 0o600},
		{"misspelled name", "TOKENVAULT_KEY=" + k + "\n" + tokenvault.EnvIndexKey + "=" + indexKey + "\n", 0o600},
		{"export prefix", "export " + tokenvault.EnvKeys + "=" + k + "\n" + tokenvault.EnvIndexKey + "=" + indexKey + "\n", 0o600},
		{"key without a name", k + "\n", 0o600},
		{"index key set twice", tokenvault.EnvKeys + "=" + k + "\n" + tokenvault.EnvIndexKey + "=" + indexKey + "\n" + tokenvault.EnvIndexKey + "=" + indexKey + "\n", 0o600},
		{"readable by others", string(fx.ring.KeyFile()), 0o644},
	}
	dir := t.TempDir()
	for i, f := range files {
		path := filepath.Join(dir, fmt.Sprintf("keys-%d", i))
		if err := os.WriteFile(path, []byte(f.content), f.mode); err != nil {
			t.Fatal(err)
		}
		// WriteFile applies the umask, so Chmod sets the exact mode under test.
		if err := os.Chmod(path, f.mode); err != nil {
			t.Fatal(err)
		}
		cases = append(cases, redactErrorCase{"LoadKeyFile", f.name, "", tokenvault.ErrInvalidKey, func(*testing.T) error {
			_, err := tokenvault.LoadKeyFile(path)
			return err
		}})
	}

	return append(cases, redactErrorCase{"KeyRingFromEnv", "broken key", "", tokenvault.ErrInvalidKey, func(t *testing.T) error {
		t.Setenv(tokenvault.EnvKeys, k+"A,"+fernetKeys[1])
		t.Setenv(tokenvault.EnvIndexKey, indexKey)
		_, err := tokenvault.KeyRingFromEnv()
		return err
	}})
}
