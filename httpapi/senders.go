package httpapi

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"runtime"
	"slices"
	"strings"

	"github.com/tokenvault/tokenvault"
	"github.com/tokenvault/tokenvault/webhook"
)

// maxSendersFileSize bounds what LoadSenders reads. A file with thousands of
// senders is far smaller.
const maxSendersFileSize = 1 << 20

// LoadSenders reads the senders of POST /notifications, for
// Config.Senders, from the JSON file at path: one object that maps each
// sender name to its secret in standard base64 with padding:
//
//	{"visa-vts": "BASE64 SECRET", "issuer-123": "BASE64 SECRET"}
//
// Each name must pass tokenvault.ValidateSender and each secret must decode
// to at least webhook.MinSecretSize bytes. Generate a secret with
// "head -c 32 /dev/urandom | base64" and share it with the sender only.
// Repeated names and values other than
// strings are rejected, and no error message contains a secret. An empty
// object is valid and turns the route off.
//
// A sender's value may also be an object that limits the sender to card
// brands, which LoadScopedSenders reads. LoadSenders rejects a file with
// such an entry, because its result has no place for the brands and the
// sender would then be allowed every brand.
//
// On Unix, LoadSenders rejects a file that its group or other users can read
// or write, because the secrets let anyone forge notifications. A missing
// file gives an error wrapping fs.ErrNotExist.
func LoadSenders(path string) (map[string][]byte, error) {
	secrets, brands, err := LoadScopedSenders(path)
	if err != nil {
		return nil, err
	}
	if len(brands) > 0 {
		return nil, fmt.Errorf(`httpapi: senders file %s limits %d of its senders to card brands, which this program does not enforce: load the file with httpapi.LoadScopedSenders, or remove "brands"`, path, len(brands))
	}
	return secrets, nil
}

// LoadScopedSenders reads a senders file as LoadSenders does, and returns
// the brands of each sender limited to card brands too, for
// Config.SenderBrands. A sender's value in the file is either its secret or
// an object with the secret and the brands whose tokens it may change:
//
//	{
//	  "issuer-123": "BASE64 SECRET",
//	  "visa-vts": {"secret": "BASE64 SECRET", "brands": ["visa"]}
//	}
//
// Brands are the names of the tokenvault.Brand constants, such as "visa",
// "mastercard" and "amex". A sender without "brands" may change every
// token, and an empty list is rejected, because it would read as "no brand".
// The object takes no other key. brands has an entry only for the senders
// with "brands".
//
// Errors name an entry by its position in the file, counted from 1. They
// never quote a name, key or value of the file, because a name and a secret
// written the wrong way round would otherwise put the secret in the log.
func LoadScopedSenders(path string) (secrets map[string][]byte, brands map[string][]tokenvault.Brand, err error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, nil, fmt.Errorf("httpapi: open senders file: %w", err)
	}
	defer f.Close()

	info, err := f.Stat()
	if err != nil {
		return nil, nil, fmt.Errorf("httpapi: senders file %s: %w", path, err)
	}
	if !info.Mode().IsRegular() {
		return nil, nil, fmt.Errorf("httpapi: senders file %s is not a regular file", path)
	}
	if perm := info.Mode().Perm(); runtime.GOOS != "windows" && perm&0o077 != 0 {
		return nil, nil, fmt.Errorf("httpapi: senders file %s has mode %#o, which lets other users read or change it: run chmod 600 %s", path, perm, path)
	}

	data, err := io.ReadAll(io.LimitReader(f, maxSendersFileSize+1))
	if err != nil {
		return nil, nil, fmt.Errorf("httpapi: read senders file %s: %w", path, err)
	}
	if len(data) > maxSendersFileSize {
		return nil, nil, fmt.Errorf("httpapi: senders file %s is larger than %d bytes", path, maxSendersFileSize)
	}

	secrets, brands, err = parseSenders(data)
	if err != nil {
		return nil, nil, fmt.Errorf("httpapi: senders file %s: %w", path, err)
	}
	return secrets, brands, nil
}

// parseSenders decodes the contents of a senders file. It reads token by
// token because encoding/json keeps the last of repeated keys in a map.
func parseSenders(data []byte) (map[string][]byte, map[string][]tokenvault.Brand, error) {
	dec := json.NewDecoder(bytes.NewReader(data))
	if tok, err := dec.Token(); err != nil || tok != json.Delim('{') {
		return nil, nil, errors.New(`want one JSON object, such as {"visa-vts": "BASE64 SECRET"}`)
	}

	secrets := make(map[string][]byte)
	brands := make(map[string][]tokenvault.Brand)
	positions := make(map[string]int)
	for entry := 1; dec.More(); entry++ {
		name, secret, senderBrands, err := parseSender(dec)
		if err != nil {
			return nil, nil, fmt.Errorf("entry %d: %w", entry, err)
		}
		if first, dup := positions[name]; dup {
			return nil, nil, fmt.Errorf("entry %d has the sender name of entry %d", entry, first)
		}
		positions[name] = entry
		secrets[name] = secret
		if senderBrands != nil {
			brands[name] = senderBrands
		}
	}

	if _, err := dec.Token(); err != nil {
		return nil, nil, errors.New("the file is not valid JSON: the object does not end")
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, nil, errors.New("data after the JSON object")
	}
	return secrets, brands, nil
}

// parseSender decodes one entry of a senders file: a name and either its
// secret or an object with "secret" and "brands". brands is nil when the
// entry has no "brands". Its errors never contain the name, which may be a
// secret written in the wrong place.
func parseSender(dec *json.Decoder) (name string, secret []byte, brands []tokenvault.Brand, err error) {
	tok, err := dec.Token()
	if err != nil {
		return "", nil, nil, errors.New("the file is not valid JSON")
	}
	name = tok.(string) // object keys are always strings
	if err := tokenvault.ValidateSender(name); err != nil {
		return "", nil, nil, fmt.Errorf(`invalid sender name, which comes before the secret as in {"visa-vts": "BASE64 SECRET"}: %w`, err)
	}

	tok, err = dec.Token()
	if err != nil {
		return "", nil, nil, errors.New("the file is not valid JSON after the sender name")
	}
	switch v := tok.(type) {
	case string:
		secret, err = decodeSecret(v)
		return name, secret, nil, err
	case json.Delim:
		if v == '{' {
			secret, brands, err = parseSenderObject(dec)
			return name, secret, brands, err
		}
	}
	return "", nil, nil, errors.New(`the value must be the secret, a string of standard base64, or an object such as {"secret": "BASE64 SECRET", "brands": ["visa"]}`)
}

// parseSenderObject decodes the object form of a sender's value, whose
// opening brace dec has read.
func parseSenderObject(dec *json.Decoder) (secret []byte, brands []tokenvault.Brand, err error) {
	var haveSecret, haveBrands bool
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return nil, nil, errors.New("the file is not valid JSON in the sender's object")
		}
		switch tok.(string) {
		case "secret":
			if haveSecret {
				return nil, nil, errors.New(`"secret" appears twice`)
			}
			haveSecret = true
			tok, err := dec.Token()
			encoded, ok := tok.(string)
			if err != nil || !ok {
				return nil, nil, errors.New(`"secret" must be a string of standard base64`)
			}
			if secret, err = decodeSecret(encoded); err != nil {
				return nil, nil, err
			}
		case "brands":
			if haveBrands {
				return nil, nil, errors.New(`"brands" appears twice`)
			}
			haveBrands = true
			if brands, err = parseBrands(dec); err != nil {
				return nil, nil, err
			}
		default:
			return nil, nil, errors.New(`the sender's object has a key other than "secret" and "brands"`)
		}
	}
	if _, err := dec.Token(); err != nil {
		return nil, nil, errors.New("the file is not valid JSON: the sender's object does not end")
	}

	if !haveSecret {
		return nil, nil, errors.New(`the sender's object has no "secret"`)
	}
	return secret, brands, nil
}

// parseBrands decodes the array of "brands".
func parseBrands(dec *json.Decoder) ([]tokenvault.Brand, error) {
	errNotArray := errors.New(`"brands" must be an array of brand names, such as ["visa", "mastercard"]`)
	if tok, err := dec.Token(); err != nil || tok != json.Delim('[') {
		return nil, errNotArray
	}
	brands := []tokenvault.Brand{}
	for i := 1; dec.More(); i++ {
		tok, err := dec.Token()
		name, ok := tok.(string)
		if err != nil || !ok {
			return nil, errNotArray
		}
		if !slices.Contains(knownBrands, tokenvault.Brand(name)) {
			return nil, fmt.Errorf(`item %d of "brands" is not a known brand: want %s`, i, knownBrandNames())
		}
		brands = append(brands, tokenvault.Brand(name))
	}
	if _, err := dec.Token(); err != nil {
		return nil, errNotArray
	}
	if len(brands) == 0 {
		return nil, errors.New(`"brands" is empty, which would allow no token: list brands, or omit "brands" to allow every brand`)
	}
	return brands, nil
}

// decodeSecret decodes and checks a secret of the senders file.
func decodeSecret(encoded string) ([]byte, error) {
	secret, err := base64.StdEncoding.DecodeString(encoded)
	if err != nil {
		return nil, errors.New("the secret is not standard base64 with padding")
	}
	if len(secret) < webhook.MinSecretSize {
		return nil, fmt.Errorf("the secret is %d bytes, want at least %d", len(secret), webhook.MinSecretSize)
	}
	return secret, nil
}

// knownBrands are the brands that a sender may be limited to: the
// tokenvault.Brand constants.
//
// NOTE: a brand added to package tokenvault must be added here too, or
// senders files and Config.SenderBrands that name it are rejected.
var knownBrands = []tokenvault.Brand{
	tokenvault.BrandVisa,
	tokenvault.BrandMastercard,
	tokenvault.BrandAmex,
	tokenvault.BrandDiscover,
	tokenvault.BrandDiners,
	tokenvault.BrandJCB,
	tokenvault.BrandUnionPay,
	tokenvault.BrandMaestro,
	tokenvault.BrandBancontact,
	tokenvault.BrandBankcardAU,
}

func knownBrandNames() string {
	names := make([]string, len(knownBrands))
	for i, b := range knownBrands {
		names[i] = string(b)
	}
	return strings.Join(names, ", ")
}

// copySenders checks the senders of Config.Senders and returns a copy, or
// nil when there are none. Its errors name no sender, because a name that
// fails the checks may be a secret put in the wrong place.
func copySenders(senders map[string][]byte) (map[string][]byte, error) {
	if len(senders) == 0 {
		return nil, nil
	}
	copied := make(map[string][]byte, len(senders))
	for name, secret := range senders {
		if err := tokenvault.ValidateSender(name); err != nil {
			return nil, fmt.Errorf("httpapi: Config.Senders has an invalid sender name: %w", err)
		}
		if len(secret) < webhook.MinSecretSize {
			return nil, fmt.Errorf("httpapi: Config.Senders has a sender whose secret is %d bytes, want at least %d", len(secret), webhook.MinSecretSize)
		}
		copied[name] = bytes.Clone(secret)
	}
	return copied, nil
}

// copySenderBrands checks Config.SenderBrands against the senders that
// copySenders returned and returns a copy without the empty lists, or nil
// when no sender is limited. Its errors name no sender, as copySenders'
// do not.
func copySenderBrands(brands map[string][]tokenvault.Brand, senders map[string][]byte) (map[string][]tokenvault.Brand, error) {
	var copied map[string][]tokenvault.Brand
	for name, list := range brands {
		if _, ok := senders[name]; !ok {
			return nil, errors.New("httpapi: Config.SenderBrands has a sender that is not in Config.Senders")
		}
		for i, b := range list {
			if !slices.Contains(knownBrands, b) {
				return nil, fmt.Errorf("httpapi: Config.SenderBrands has an unknown brand at index %d of a sender's list: want %s", i, knownBrandNames())
			}
		}
		if len(list) == 0 {
			continue
		}
		if copied == nil {
			copied = make(map[string][]tokenvault.Brand)
		}
		copied[name] = slices.Clone(list)
	}
	return copied, nil
}
