package httpapi

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"testing"
	"unicode/utf8"

	"github.com/tokenvault/tokenvault"
	"github.com/tokenvault/tokenvault/internal/strictjson"
	"github.com/tokenvault/tokenvault/tokenvaulttest"
)

// Outputs of Python 3.11's json.dumps(s) (ensure_ascii=True), which Flask's
// jsonify uses.
var pythonStrings = []struct {
	in, want string
}{
	{"", `""`},
	{"4111111111111111", `"4111111111111111"`},
	{"tok_abc", `"tok_abc"`},
	{"caf\u00e9", `"caf\u00e9"`},
	{"\U0001F600", `"\ud83d\ude00"`},
	{"\u2028\u2029", `"\u2028\u2029"`},
	{"\uffff", `"\uffff"`},
	{"\U0010FFFF", `"\udbff\udfff"`},
	{`"\/`, `"\"\\/"`},
	{"</script>&", `"</script>&"`},
	{"\b\f\n\r\t", `"\b\f\n\r\t"`},
	{"\x00\x01\x1f\x7f", `"\u0000\u0001\u001f\u007f"`},
	{"a\u0080b", `"a\u0080b"`},
}

func TestAppendJSONStringMatchesPython(t *testing.T) {
	for _, tt := range pythonStrings {
		if got := string(appendJSONString(nil, tt.in)); got != tt.want {
			t.Errorf("appendJSONString(%q) = %s, want %s", tt.in, got, tt.want)
		}
		if got := string(appendJSONString(nil, []byte(tt.in))); got != tt.want {
			t.Errorf("appendJSONString([]byte(%q)) = %s, want %s", tt.in, got, tt.want)
		}
	}
}

func TestAppendJSONStringInvalidUTF8(t *testing.T) {
	got := string(appendJSONString(nil, "a\xffb\xe2\x82"))
	if want := `"a\ufffdb\ufffd\ufffd"`; got != want {
		t.Errorf("appendJSONString of invalid UTF-8 = %s, want %s", got, want)
	}
}

func FuzzAppendJSONString(f *testing.F) {
	for _, tt := range pythonStrings {
		f.Add(tt.in)
	}
	f.Fuzz(func(t *testing.T, s string) {
		out := appendJSONString(nil, s)
		for _, c := range out {
			if c < 0x20 || c >= 0x7f {
				t.Fatalf("appendJSONString(%q) = %q has a byte outside printable ASCII", s, out)
			}
		}
		var back string
		if err := json.Unmarshal(out, &back); err != nil {
			t.Fatalf("appendJSONString(%q) = %s is not a JSON string: %v", s, out, err)
		}
		if utf8.ValidString(s) && back != s {
			t.Fatalf("appendJSONString(%q) decodes to %q", s, back)
		}
	})
}

func TestAppendData(t *testing.T) {
	tests := []struct {
		value []byte
		want  string
	}{
		{[]byte("4111111111111111"), `{"data":"4111111111111111"}`},
		{[]byte("caf\xc3\xa9"), `{"data":"caf\u00e9"}`},
		{[]byte{0xc3}, `{"data_base64":"ww=="}`},
		{[]byte{0xed, 0xa0, 0x80}, `{"data_base64":"7aCA"}`}, // an encoded surrogate is not UTF-8
	}
	for _, tt := range tests {
		if got := string(appendData(nil, tt.value)); got != tt.want {
			t.Errorf("appendData(%q) = %s, want %s", tt.value, got, tt.want)
		}
	}
}

func TestPlausibleTokenAcceptsIssuedTokens(t *testing.T) {
	v := tokenvaulttest.New(t)
	ctx := context.Background()

	for _, pan := range []string{"4111111111111111", "378282246310005", "6011111111111117", "4222222222222", "6200000000000005"} {
		for _, format := range []tokenvault.Format{tokenvault.FormatCard, tokenvault.FormatCardFirstSix, tokenvault.FormatOpaque} {
			for range 20 {
				token, err := v.TokenizeCard(ctx, pan, tokenvault.WithFormat(format))
				if errors.Is(err, tokenvault.ErrInvalidOption) {
					continue // first six of a 13-digit number
				}
				if err != nil {
					t.Fatal(err)
				}
				if !tokenvault.IsTokenShaped(token) {
					t.Errorf("tokenvault.IsTokenShaped(%q) = false for a token the vault issued", token)
				}
			}
		}
	}
}

func TestPlausibleTokenRejects(t *testing.T) {
	for _, s := range []string{
		"", "4111111111111111", "378282246310005", "4111 1111 1111 1111", "41111111111",
		"41111111111111111111", "tok_", "tok_" + "w00000000000000000000000000000000000",
		"TOK_000000000000000000000000000000000000", "gAAAAABrEzUVTnPJ5fDS_mW1MsWfcK",
	} {
		if tokenvault.IsTokenShaped(s) {
			t.Errorf("tokenvault.IsTokenShaped(%q) = true, want false", s)
		}
	}
}

func TestKnownFieldPath(t *testing.T) {
	for path, want := range map[string]bool{
		"data":                 true,
		"items[2].data":        true,
		"items[12].expires_in": true,
		"tokens[0]":            true,
		"4111111111111111":     false,
		"items[2].pan":         false,
		"items[x].data":        false,
		"items[].data":         false,
		"items[2":              false,
		"Data":                 false,
		"":                     false,
	} {
		if got := knownFieldPath(path); got != want {
			t.Errorf("knownFieldPath(%q) = %t, want %t", path, got, want)
		}
	}
}

func TestDecodeProblemCodes(t *testing.T) {
	for sjCode, want := range strictCodes {
		p := decodeProblem(&strictjson.Error{Code: sjCode, Field: "data", Msg: "x"})
		status := 400
		if sjCode == strictjson.CodeTooManyItems {
			status = 413
		}
		if p.code != want || codes[p.code].status != status || codes[p.code].name != sjCode {
			t.Errorf("decodeProblem(%s) = %s (%d), want %s %d", sjCode, p.code, codes[p.code].status, sjCode, status)
		}
	}
	if p := decodeProblem(errors.New("not a strictjson error")); p.code != codeInternal {
		t.Errorf("decodeProblem of another error = %s, want internal_error", p.code)
	}
}

func TestVaultProblem(t *testing.T) {
	tests := []struct {
		err  error
		want code
	}{
		{tokenvault.ErrNotFound, codeTokenNotFound},
		{fmt.Errorf("x: %w", tokenvault.ErrSuspended), codeTokenSuspended},
		{tokenvault.ErrClosed, codeTokenClosed},
		{&tokenvault.TransitionError{Token: "t", From: tokenvault.StateClosed, To: tokenvault.StateActive}, codeTokenClosed},
		{tokenvault.ErrExpired, codeTokenExpired},
		{tokenvault.ErrVaultClosed, codeUnavailable},
		{fmt.Errorf("%w: bad", tokenvault.ErrInvalidCardNumber), codeInvalidCardNumber},
		{fmt.Errorf("%w: bad", tokenvault.ErrInvalidData), codeInvalidData},
		{fmt.Errorf("%w: bad", tokenvault.ErrInvalidOption), codeInvalidOption},
		{context.Canceled, codeCanceled},
		{tokenvault.ErrIntegrity, codeInternal},
		{tokenvault.ErrTokenSpaceExhausted, codeInternal},
	}
	for _, tt := range tests {
		if got := vaultProblem(tt.err).code; got != tt.want {
			t.Errorf("vaultProblem(%v) = %s, want %s", tt.err, got, tt.want)
		}
	}
}

func TestCodeNamesUnique(t *testing.T) {
	seen := map[string]bool{}
	for c := code(0); c < numCodes; c++ {
		info := codes[c]
		if info.name == "" || info.status == 0 || (c != codeOK && info.message == "") {
			t.Errorf("code %d has no name, status or message: %+v", c, info)
		}
		if seen[info.name] {
			t.Errorf("code name %q is used twice", info.name)
		}
		seen[info.name] = true
	}
}
