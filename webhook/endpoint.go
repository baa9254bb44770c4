package webhook

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/url"
	"os"
	"regexp"
	"runtime"

	"github.com/tokenvault/tokenvault"
	"github.com/tokenvault/tokenvault/internal/strictjson"
)

// MinSecretSize is the minimum length of an endpoint's secret in bytes, so
// that the HMAC key has at least 128 bits.
const MinSecretSize = 16

// maxEndpointsFileSize bounds what LoadEndpoints reads. A file with
// thousands of endpoints is far smaller.
const maxEndpointsFileSize = 1 << 20

// MaxIDSize is the longest endpoint ID, in bytes: the subscriber name,
// "webhook:" and the ID, is at most tokenvault.MaxSubscriberNameSize bytes.
const MaxIDSize = tokenvault.MaxSubscriberNameSize - len(subscriberPrefix)

// endpointIDPattern matches an endpoint ID. The ID is part of the subscriber
// name, which the vault limits to [A-Za-z0-9._:-], and of log records and
// command-line arguments, so it has no spaces, separators or control
// characters.
var endpointIDPattern = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]*$`)

// Endpoint is a receiver of webhooks. Its String, GoString, Format, LogValue
// and MarshalJSON methods show the ID and the URL without its password, never
// the secret.
type Endpoint struct {
	// ID names the endpoint in the subscriber name ("webhook:" + ID), logs
	// and commands: 1 to MaxIDSize (56) characters of [A-Za-z0-9._-],
	// starting with a letter or digit.
	ID string
	// URL is the absolute http or https URL that events are POSTed to.
	// NOTE: over http, the tokens and the event fields cross the network in
	// clear text, so anyone on the path can read them. The signature only
	// stops them from being changed.
	URL string
	// Secret is the HMAC-SHA256 key that signs each request, at least
	// MinSecretSize bytes. The receiver has a copy of the same bytes.
	Secret []byte
}

// String returns the ID and the redacted URL.
func (e Endpoint) String() string {
	return fmt.Sprintf("Endpoint(%s, %s)", e.ID, e.RedactedURL())
}

// RedactedURL returns the URL with its password, if any, replaced by
// "xxxxx", as url.URL.Redacted does. A credential in the path or query
// still shows.
func (e Endpoint) RedactedURL() string { return redactURL(e.URL) }

// GoString returns String, for %#v.
func (e Endpoint) GoString() string { return e.String() }

// Format prints String for every verb, so that no verb prints the secret.
func (e Endpoint) Format(f fmt.State, verb rune) { fmt.Fprint(f, e.String()) }

// LogValue logs the ID and the redacted URL.
func (e Endpoint) LogValue() slog.Value {
	return slog.GroupValue(slog.String("id", e.ID), slog.String("url", e.RedactedURL()))
}

// MarshalJSON encodes the ID and the redacted URL, without the secret.
// LoadEndpoints does not read this form back.
func (e Endpoint) MarshalJSON() ([]byte, error) {
	return json.Marshal(struct {
		ID  string `json:"id"`
		URL string `json:"url"`
	}{e.ID, e.RedactedURL()})
}

// redactURL returns raw with its password replaced by "xxxxx", or a
// placeholder if raw does not parse, because it may then contain anything.
func redactURL(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return "[invalid URL]"
	}
	return u.Redacted()
}

// endpointsFile is the JSON form of an endpoints file.
type endpointsFile struct {
	Endpoints []endpointJSON `json:"endpoints" strict:"required"`
}

type endpointJSON struct {
	ID     string `json:"id" strict:"required"`
	URL    string `json:"url" strict:"required"`
	Secret string `json:"secret" strict:"required"` // standard base64, with padding
}

// LoadEndpoints reads the endpoints file at path, a JSON object such as
//
//	{"endpoints": [
//	  {"id": "billing", "url": "https://billing.example/hooks", "secret": "BASE64"}
//	]}
//
// where each secret is standard base64 (with padding) of at least
// MinSecretSize random bytes, such as the output of
// "head -c 32 /dev/urandom | base64". Unknown fields, repeated IDs and
// invalid values are rejected, as are null, keys that differ only in case
// and any data after the object. An error names an endpoint by its position
// in the list, from 1, and quotes none of its fields, so that a secret in
// the wrong field does not reach a log. An empty list is valid, but a
// missing "endpoints" is not.
//
// On Unix, LoadEndpoints rejects a file that its group or other users can
// read or write, as tokenvault.LoadKeyFile does, because the secrets let
// anyone forge webhooks. A missing file gives an error wrapping
// fs.ErrNotExist.
func LoadEndpoints(path string) ([]Endpoint, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("webhook: open endpoints file: %w", err)
	}
	defer f.Close()

	info, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("webhook: endpoints file %s: %w", path, err)
	}
	if !info.Mode().IsRegular() {
		return nil, fmt.Errorf("webhook: endpoints file %s is not a regular file", path)
	}
	if perm := info.Mode().Perm(); runtime.GOOS != "windows" && perm&0o077 != 0 {
		return nil, fmt.Errorf("webhook: endpoints file %s has mode %#o, which lets other users read or change it; run chmod 600 %s", path, perm, path)
	}

	data, err := io.ReadAll(io.LimitReader(f, maxEndpointsFileSize+1))
	if err != nil {
		return nil, fmt.Errorf("webhook: read endpoints file %s: %w", path, err)
	}
	if len(data) > maxEndpointsFileSize {
		return nil, fmt.Errorf("webhook: endpoints file %s is larger than %d bytes", path, maxEndpointsFileSize)
	}

	endpoints, err := parseEndpoints(data)
	if err != nil {
		return nil, fmt.Errorf("webhook: endpoints file %s: %w", path, err)
	}
	return endpoints, nil
}

// parseEndpoints decodes and validates the contents of an endpoints file.
func parseEndpoints(data []byte) ([]Endpoint, error) {
	// strictjson, unlike encoding/json, rejects a second "Secret" key that
	// would silently replace "secret", and its messages never quote a value.
	var file endpointsFile
	if err := strictjson.Decode(data, &file); err != nil {
		return nil, err
	}

	endpoints := make([]Endpoint, 0, len(file.Endpoints))
	for i, raw := range file.Endpoints {
		secret, err := base64.StdEncoding.DecodeString(raw.Secret)
		if err != nil {
			// The message of err quotes no input, but the index of the
			// bad byte is of no use, so it is dropped.
			return nil, fmt.Errorf("endpoint %d: secret is not standard base64 with padding, as the base64 command writes it", i+1)
		}
		endpoints = append(endpoints, Endpoint{ID: raw.ID, URL: raw.URL, Secret: secret})
	}
	if err := validateEndpoints(endpoints); err != nil {
		return nil, err
	}
	return endpoints, nil
}

// validateEndpoints checks each endpoint's ID, URL and secret, and that no
// two endpoints share an ID. Its errors name an endpoint by its position from
// 1 and never quote its ID or URL, because a file with its fields mixed up
// can hold a secret in either.
func validateEndpoints(endpoints []Endpoint) error {
	positions := make(map[string]int, len(endpoints))
	for i, e := range endpoints {
		if err := validateEndpoint(e); err != nil {
			return fmt.Errorf("endpoint %d: %w", i+1, err)
		}
		if first, ok := positions[e.ID]; ok {
			return fmt.Errorf("endpoint %d: its id is the same as that of endpoint %d, but each endpoint needs its own", i+1, first)
		}
		positions[e.ID] = i + 1
	}
	return nil
}

func validateEndpoint(e Endpoint) error {
	if len(e.ID) > MaxIDSize || !endpointIDPattern.MatchString(e.ID) {
		return fmt.Errorf("invalid id: want 1 to %d characters of A-Z, a-z, 0-9, '.', '_' and '-', starting with a letter or digit", MaxIDSize)
	}

	u, err := url.Parse(e.URL)
	if err != nil {
		return fmt.Errorf("invalid url: it does not parse as a URL")
	}
	if (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
		return fmt.Errorf("invalid url: want an absolute http or https URL")
	}

	if len(e.Secret) < MinSecretSize {
		return fmt.Errorf("secret is %d bytes, fewer than the minimum of %d", len(e.Secret), MinSecretSize)
	}
	return nil
}
