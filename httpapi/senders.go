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
// On Unix, LoadSenders rejects a file that its group or other users can read
// or write, because the secrets let anyone forge notifications. A missing
// file gives an error wrapping fs.ErrNotExist.
func LoadSenders(path string) (map[string][]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("httpapi: open senders file: %w", err)
	}
	defer f.Close()

	info, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("httpapi: senders file %s: %w", path, err)
	}
	if !info.Mode().IsRegular() {
		return nil, fmt.Errorf("httpapi: senders file %s is not a regular file", path)
	}
	if perm := info.Mode().Perm(); runtime.GOOS != "windows" && perm&0o077 != 0 {
		return nil, fmt.Errorf("httpapi: senders file %s has mode %#o, which lets other users read or change it: run chmod 600 %s", path, perm, path)
	}

	data, err := io.ReadAll(io.LimitReader(f, maxSendersFileSize+1))
	if err != nil {
		return nil, fmt.Errorf("httpapi: read senders file %s: %w", path, err)
	}
	if len(data) > maxSendersFileSize {
		return nil, fmt.Errorf("httpapi: senders file %s is larger than %d bytes", path, maxSendersFileSize)
	}

	senders, err := parseSenders(data)
	if err != nil {
		return nil, fmt.Errorf("httpapi: senders file %s: %w", path, err)
	}
	return senders, nil
}

// parseSenders decodes the contents of a senders file. It reads token by
// token because encoding/json keeps the last of repeated keys in a map.
func parseSenders(data []byte) (map[string][]byte, error) {
	dec := json.NewDecoder(bytes.NewReader(data))
	if tok, err := dec.Token(); err != nil || tok != json.Delim('{') {
		return nil, errors.New(`want one JSON object, such as {"visa-vts": "BASE64 SECRET"}`)
	}

	senders := make(map[string][]byte)
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return nil, errors.New("the file is not valid JSON")
		}
		name := tok.(string) // object keys are always strings
		if err := tokenvault.ValidateSender(name); err != nil {
			return nil, fmt.Errorf("sender %q: %w", name, err)
		}
		if _, dup := senders[name]; dup {
			return nil, fmt.Errorf("sender %q appears twice", name)
		}

		tok, err = dec.Token()
		if err != nil {
			return nil, fmt.Errorf("sender %q: the file is not valid JSON after the name", name)
		}
		encoded, ok := tok.(string)
		if !ok {
			return nil, fmt.Errorf("sender %q: the secret must be a string of standard base64", name)
		}
		secret, err := base64.StdEncoding.DecodeString(encoded)
		if err != nil {
			return nil, fmt.Errorf("sender %q: the secret is not standard base64 with padding", name)
		}
		if len(secret) < webhook.MinSecretSize {
			return nil, fmt.Errorf("sender %q: the secret is %d bytes, want at least %d", name, len(secret), webhook.MinSecretSize)
		}
		senders[name] = secret
	}

	if _, err := dec.Token(); err != nil {
		return nil, errors.New("the file is not valid JSON: the object does not end")
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, errors.New("data after the JSON object")
	}
	return senders, nil
}

// copySenders checks the senders of Config.Senders and returns a copy, or
// nil when there are none.
func copySenders(senders map[string][]byte) (map[string][]byte, error) {
	if len(senders) == 0 {
		return nil, nil
	}
	copied := make(map[string][]byte, len(senders))
	for name, secret := range senders {
		if err := tokenvault.ValidateSender(name); err != nil {
			return nil, fmt.Errorf("httpapi: Config.Senders: sender %q: %w", name, err)
		}
		if len(secret) < webhook.MinSecretSize {
			return nil, fmt.Errorf("httpapi: Config.Senders: sender %q has a secret of %d bytes, want at least %d", name, len(secret), webhook.MinSecretSize)
		}
		copied[name] = bytes.Clone(secret)
	}
	return copied, nil
}
