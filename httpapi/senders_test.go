package httpapi_test

import (
	"bytes"
	"slices"
	"strings"
	"testing"

	"github.com/tokenvault/tokenvault"
	"github.com/tokenvault/tokenvault/httpapi"
)

func TestLoadSendersErrorsNeverQuoteName(t *testing.T) {
	const (
		secret    = "dmlzYS12dHMgc2VjcmV0LCAzMiBieXRlcyBsb25nLi4="
		hexSecret = "7669736120767473207365637265742c203332206279746573206c6f6e672e2e"
	)
	tests := []struct {
		name    string
		content string
		leak    string
		entry   string // the position that the error names
	}{
		{"base64 secret as the name", `{"` + secret + `": "visa-vts"}`, secret, "entry 1"},
		{"hex secret as the name", `{"` + hexSecret + `": "visa-vts"}`, hexSecret, "entry 1"},
		{"hex secret as the name, value not a string", `{"` + hexSecret + `": 1}`, hexSecret, "entry 1"},
		{"hex secret as the name, short secret", `{"` + hexSecret + `": "c2hvcnQ="}`, hexSecret, "entry 1"},
		{"hex secret repeated", `{"` + hexSecret + `": "` + secret + `", "` + hexSecret + `": "` + secret + `"}`, hexSecret, "entry 2"},
	}
	for _, tt := range tests {
		_, err := httpapi.LoadSenders(writeSendersFile(t, tt.content, 0o600))
		if err == nil {
			t.Errorf("LoadSenders(%s) err = nil, want an error", tt.name)
			continue
		}
		if strings.Contains(err.Error(), tt.leak) || strings.Contains(err.Error(), strings.TrimRight(tt.leak, "=")) {
			t.Errorf("LoadSenders(%s) error %q contains the rejected name", tt.name, err)
		}
		if !strings.Contains(err.Error(), tt.entry) {
			t.Errorf("LoadSenders(%s) error %q does not name the entry by position", tt.name, err)
		}
	}
}

func TestLoadScopedSenders(t *testing.T) {
	content := `{
		"issuer-1": "aXNzdWVyLTEgc2VjcmV0LCAzMiBieXRlcyBsb25nLi4=",
		"visa-vts": {"brands": ["visa", "mastercard"], "secret": "dmlzYS12dHMgc2VjcmV0LCAzMiBieXRlcyBsb25nLi4="},
		"bank-2": {"secret": "aXNzdWVyLTEgc2VjcmV0LCAzMiBieXRlcyBsb25nLi4="}
	}`
	path := writeSendersFile(t, content, 0o600)
	secrets, brands, err := httpapi.LoadScopedSenders(path)
	if err != nil {
		t.Fatalf("LoadScopedSenders err = %v", err)
	}
	if len(secrets) != 3 || !bytes.Equal(secrets["visa-vts"], visaSecret) || !bytes.Equal(secrets["issuer-1"], issuerSecret) || !bytes.Equal(secrets["bank-2"], issuerSecret) {
		t.Errorf("LoadScopedSenders = %d senders, or a secret differs from the file's", len(secrets))
	}
	want := []tokenvault.Brand{tokenvault.BrandVisa, tokenvault.BrandMastercard}
	if len(brands) != 1 || !slices.Equal(brands["visa-vts"], want) {
		t.Errorf("LoadScopedSenders brands = %v, want visa-vts: %v only", brands, want)
	}

	if _, err := httpapi.LoadSenders(path); err == nil || !strings.Contains(err.Error(), "brands") {
		t.Errorf("LoadSenders of a file with brands: err = %v, want an error about brands", err)
	}
	unscoped, err := httpapi.LoadSenders(writeSendersFile(t, `{"bank-2": {"secret": "aXNzdWVyLTEgc2VjcmV0LCAzMiBieXRlcyBsb25nLi4="}}`, 0o600))
	if err != nil || !bytes.Equal(unscoped["bank-2"], issuerSecret) {
		t.Errorf("LoadSenders of an object without brands = %d senders, %v, want bank-2 and nil", len(unscoped), err)
	}
}

func TestLoadScopedSendersRejects(t *testing.T) {
	const (
		secret = "dmlzYS12dHMgc2VjcmV0LCAzMiBieXRlcyBsb25nLi4="
		other  = "aXNzdWVyLTEgc2VjcmV0LCAzMiBieXRlcyBsb25nLi4="
	)
	tests := []struct {
		name    string
		content string
	}{
		{"no secret", `{"visa-vts": {"brands": ["visa"]}}`},
		{"secret twice", `{"visa-vts": {"secret": "` + secret + `", "secret": "` + other + `"}}`},
		{"brands twice", `{"visa-vts": {"secret": "` + secret + `", "brands": ["visa"], "brands": ["amex"]}}`},
		{"secret as a key", `{"visa-vts": {"` + secret + `": "visa"}}`},
		{"unknown key", `{"visa-vts": {"secret": "` + secret + `", "Brands": ["visa"]}}`},
		{"secret not a string", `{"visa-vts": {"secret": 1}}`},
		{"short secret", `{"visa-vts": {"secret": "c2hvcnQ="}}`},
		{"empty brands", `{"visa-vts": {"secret": "` + secret + `", "brands": []}}`},
		{"brands not an array", `{"visa-vts": {"secret": "` + secret + `", "brands": "visa"}}`},
		{"brand not a string", `{"visa-vts": {"secret": "` + secret + `", "brands": [1]}}`},
		{"secret as a brand", `{"visa-vts": {"secret": "` + other + `", "brands": ["` + secret + `"]}}`},
		{"brand in capitals", `{"visa-vts": {"secret": "` + secret + `", "brands": ["Visa"]}}`},
		{"object not closed", `{"visa-vts": {"secret": "` + secret + `"`},
		{"value is an array", `{"visa-vts": ["` + secret + `"]}`},
	}
	for _, tt := range tests {
		_, _, err := httpapi.LoadScopedSenders(writeSendersFile(t, tt.content, 0o600))
		if err == nil {
			t.Errorf("LoadScopedSenders(%s) err = nil, want an error", tt.name)
			continue
		}
		for _, s := range []string{secret, other, strings.TrimRight(secret, "="), strings.TrimRight(other, "=")} {
			if strings.Contains(err.Error(), s) {
				t.Errorf("LoadScopedSenders(%s) error %q contains a secret", tt.name, err)
			}
		}
	}
}
