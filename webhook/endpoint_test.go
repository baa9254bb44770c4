package webhook

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
)

// fileSecret is a secret as an endpoints file contains it, and its bytes.
var (
	fileSecretBytes = []byte("0123456789abcdef-endpoint-secret")
	fileSecret      = base64.StdEncoding.EncodeToString(fileSecretBytes)
)

// writeEndpointsFile writes content to a new file with mode and returns its
// path.
func writeEndpointsFile(t *testing.T, content string, mode os.FileMode) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "tokenvault.webhooks")
	if err := os.WriteFile(path, []byte(content), mode); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(path, mode); err != nil { // WriteFile applies the umask
		t.Fatal(err)
	}
	return path
}

func TestLoadEndpoints(t *testing.T) {
	path := writeEndpointsFile(t, `{"endpoints": [
		{"id": "billing", "url": "https://billing.example/hooks", "secret": "`+fileSecret+`"},
		{"id": "fraud.v2", "url": "http://127.0.0.1:8080/tokenvault?x=1", "secret": "`+fileSecret+`"}
	]}`, 0o600)

	endpoints, err := LoadEndpoints(path)
	if err != nil {
		t.Fatalf("LoadEndpoints err = %v", err)
	}
	if len(endpoints) != 2 {
		t.Fatalf("LoadEndpoints returned %d endpoints, want 2", len(endpoints))
	}
	if e := endpoints[0]; e.ID != "billing" || e.URL != "https://billing.example/hooks" || !bytes.Equal(e.Secret, fileSecretBytes) {
		t.Errorf("endpoint 1 = %s with secret matching %t, want billing at https://billing.example/hooks with the file's secret",
			e, bytes.Equal(e.Secret, fileSecretBytes))
	}
	if e := endpoints[1]; e.ID != "fraud.v2" || e.URL != "http://127.0.0.1:8080/tokenvault?x=1" {
		t.Errorf("endpoint 2 = %s, want fraud.v2 at http://127.0.0.1:8080/tokenvault?x=1", e)
	}
}

func TestLoadEndpointsEmptyList(t *testing.T) {
	endpoints, err := LoadEndpoints(writeEndpointsFile(t, `{"endpoints": []}`, 0o600))
	if err != nil || len(endpoints) != 0 {
		t.Errorf("LoadEndpoints(empty list) = %d endpoints, %v, want none and nil", len(endpoints), err)
	}
}

func TestLoadEndpointsMissingFile(t *testing.T) {
	_, err := LoadEndpoints(filepath.Join(t.TempDir(), "none.webhooks"))
	if !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("LoadEndpoints(missing file) err = %v, want fs.ErrNotExist", err)
	}
}

func TestLoadEndpointsRejectsReadableFile(t *testing.T) {
	if runtime.GOOS == "windows" {
		t.Skip("file modes do not control access on Windows")
	}
	content := `{"endpoints": [{"id": "a", "url": "https://a.example/", "secret": "` + fileSecret + `"}]}`
	for _, mode := range []os.FileMode{0o644, 0o640, 0o604, 0o620, 0o602} {
		_, err := LoadEndpoints(writeEndpointsFile(t, content, mode))
		if err == nil || !strings.Contains(err.Error(), "chmod 600") {
			t.Errorf("LoadEndpoints(mode %#o) err = %v, want an error that suggests chmod 600", mode, err)
		}
	}
}

func TestLoadEndpointsRejectsDirectory(t *testing.T) {
	dir := t.TempDir()
	if err := os.Chmod(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	if _, err := LoadEndpoints(dir); err == nil {
		t.Error("LoadEndpoints(directory) err = nil, want an error")
	}
}

func TestLoadEndpointsInvalid(t *testing.T) {
	endpoint := func(id, url, secret string) string {
		return fmt.Sprintf(`{"id": %q, "url": %q, "secret": %q}`, id, url, secret)
	}
	list := func(endpoints ...string) string {
		return `{"endpoints": [` + strings.Join(endpoints, ",") + `]}`
	}
	shortSecret := base64.StdEncoding.EncodeToString([]byte("fifteen bytes.."))

	tests := []struct {
		name    string
		content string
		want    string // a part of the error message
	}{
		{"not JSON", "endpoints = []", "expected a JSON object"},
		{"array", `[` + endpoint("a", "https://a.example/", fileSecret) + `]`, "expected a JSON object"},
		{"unknown field", `{"endpoints": [], "retries": 3}`, "retries: unknown field"},
		{"unknown endpoint field", list(`{"id": "a", "url": "https://a.example/", "secret": "` + fileSecret + `", "Secret": "x"}`), "endpoints[0].secret: duplicate field"},
		{"no endpoints field", `{}`, "endpoints: missing required field"},
		{"null endpoints", `{"endpoints": null}`, "endpoints: null is not allowed"},
		{"trailing data", `{"endpoints": []} {}`, "unexpected data after the JSON object"},
		{"secret not base64", list(endpoint("a", "https://a.example/", "not base64!")), "not standard base64"},
		{"secret unpadded", list(endpoint("a", "https://a.example/", strings.TrimRight(base64.StdEncoding.EncodeToString([]byte("seventeen bytes..")), "="))), "not standard base64"},
		{"secret too short", list(endpoint("a", "https://a.example/", shortSecret)), "fewer than the minimum of 16"},
		{"secret missing", list(`{"id": "a", "url": "https://a.example/"}`), "endpoints[0].secret: missing required field"},
		{"secret empty", list(endpoint("a", "https://a.example/", "")), "fewer than the minimum of 16"},
		{"id missing", list(`{"url": "https://a.example/", "secret": "` + fileSecret + `"}`), "endpoints[0].id: missing required field"},
		{"id empty", list(endpoint("", "https://a.example/", fileSecret)), "invalid id"},
		{"id with slash", list(endpoint("a/b", "https://a.example/", fileSecret)), "invalid id"},
		{"id with colon", list(endpoint("a:b", "https://a.example/", fileSecret)), "invalid id"},
		{"id with space", list(endpoint("a b", "https://a.example/", fileSecret)), "invalid id"},
		{"id starting with dot", list(endpoint(".a", "https://a.example/", fileSecret)), "invalid id"},
		{"id too long", list(endpoint(strings.Repeat("a", MaxIDSize+1), "https://a.example/", fileSecret)), "invalid id"},
		{"id repeated", list(endpoint("a", "https://a.example/", fileSecret), endpoint("a", "https://b.example/", fileSecret)), "endpoint 2: its id is the same as that of endpoint 1"},
		{"relative url", list(endpoint("a", "/hooks", fileSecret)), "want an absolute http or https URL"},
		{"ftp url", list(endpoint("a", "ftp://a.example/", fileSecret)), "want an absolute http or https URL"},
		{"url without host", list(endpoint("a", "https:///hooks", fileSecret)), "want an absolute http or https URL"},
		{"url does not parse", list(endpoint("a", "https://a.example/%zz", fileSecret)), "does not parse"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := LoadEndpoints(writeEndpointsFile(t, tt.content, 0o600))
			if err == nil {
				t.Fatalf("LoadEndpoints err = nil, want an error containing %q", tt.want)
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("LoadEndpoints err = %v, want it to contain %q", err, tt.want)
			}
			if strings.Contains(err.Error(), fileSecret) || strings.Contains(err.Error(), string(fileSecretBytes)) {
				t.Errorf("LoadEndpoints error %q contains the secret", err)
			}
		})
	}
}

func TestLoadEndpointsMaxIDSize(t *testing.T) {
	id := strings.Repeat("a", MaxIDSize)
	content := `{"endpoints": [{"id": "` + id + `", "url": "https://a.example/", "secret": "` + fileSecret + `"}]}`
	if _, err := LoadEndpoints(writeEndpointsFile(t, content, 0o600)); err != nil {
		t.Errorf("LoadEndpoints(id of %d bytes) err = %v, want nil", MaxIDSize, err)
	}
}

// TestEndpointRedacted prints an endpoint every way that code commonly does
// and checks that neither the secret nor the URL's password appears.
func TestEndpointRedacted(t *testing.T) {
	e := Endpoint{ID: "billing", URL: "https://user:url-password@billing.example/hooks", Secret: fileSecretBytes}
	secrets := []string{string(fileSecretBytes), fileSecret, "url-password", fmt.Sprint(fileSecretBytes[:4])}

	var logged bytes.Buffer
	slog.New(slog.NewJSONHandler(&logged, nil)).Info("endpoint", "endpoint", e)
	var textLogged bytes.Buffer
	slog.New(slog.NewTextHandler(&textLogged, nil)).Info("endpoint", "endpoint", e)
	encoded, err := json.Marshal(e)
	if err != nil {
		t.Fatalf("json.Marshal(Endpoint) err = %v", err)
	}

	outputs := map[string]string{
		"%v":           fmt.Sprintf("%v", e),
		"%+v":          fmt.Sprintf("%+v", e),
		"%#v":          fmt.Sprintf("%#v", e),
		"%s":           fmt.Sprintf("%s", e),
		"%x":           fmt.Sprintf("%x", e),
		"%v pointer":   fmt.Sprintf("%v", &e),
		"%+v slice":    fmt.Sprintf("%+v", []Endpoint{e}),
		"%#v slice":    fmt.Sprintf("%#v", []Endpoint{e}),
		"String":       e.String(),
		"slog JSON":    logged.String(),
		"slog text":    textLogged.String(),
		"json.Marshal": string(encoded),
	}
	for name, out := range outputs {
		for _, secret := range secrets {
			if strings.Contains(out, secret) {
				t.Errorf("%s of an Endpoint contains a secret: %s", name, out)
			}
		}
		if !strings.Contains(out, "billing") {
			t.Errorf("%s of an Endpoint does not show its ID: %s", name, out)
		}
	}
}

// TestLoadEndpointsErrorsQuoteNoValue checks that a rejected endpoint is
// named by its position, because an id or URL field that holds a secret,
// such as in a file whose id and secret were swapped, must not reach a log.
func TestLoadEndpointsErrorsQuoteNoValue(t *testing.T) {
	// secretID is a secret that is also a valid id, as a base64 secret
	// without padding characters or '+' and '/' can be.
	const secretID = "K7gNU3sdo2OL0wNhqoVWhr3g6s1xYv72"
	endpoint := func(id, url, secret string) string {
		return fmt.Sprintf(`{"id": %q, "url": %q, "secret": %q}`, id, url, secret)
	}
	list := func(endpoints ...string) string {
		return `{"endpoints": [` + strings.Join(endpoints, ",") + `]}`
	}
	valid := endpoint("billing", "https://billing.example/hooks", fileSecret)

	tests := []struct {
		name    string
		content string
		secret  string // the value that the error must not contain
		want    string // a part of the error message
	}{
		{"id and secret swapped", list(valid, endpoint(fileSecret, "https://a.example/", "billing")), fileSecret, "endpoint 2: secret is not standard base64"},
		{"id and base64 secret swapped", list(endpoint(fileSecret, "https://a.example/", "YmlsbGluZw==")), fileSecret, "endpoint 1: invalid id"},
		{"secret as url", list(valid, endpoint("ledger", fileSecret, fileSecret)), fileSecret, "endpoint 2: invalid url: want an absolute http or https URL"},
		{"secret as url path", list(endpoint("ledger", "ftp://a.example/"+secretID, fileSecret)), secretID, "endpoint 1: invalid url"},
		{"secret as repeated id", list(endpoint(secretID, "https://a.example/", fileSecret), valid, endpoint(secretID, "https://b.example/", fileSecret)), secretID, "endpoint 3: its id is the same as that of endpoint 1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := LoadEndpoints(writeEndpointsFile(t, tt.content, 0o600))
			if err == nil {
				t.Fatalf("LoadEndpoints err = nil, want an error containing %q", tt.want)
			}
			if strings.Contains(err.Error(), tt.secret) {
				t.Errorf("LoadEndpoints error %q contains the value of a rejected field", err)
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("LoadEndpoints err = %v, want it to contain %q", err, tt.want)
			}
		})
	}
}
