package tokenvault_test

import (
	"context"
	"encoding/csv"
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"testing"

	"github.com/tokenvault/tokenvault"
)

// testPAN is one row of testdata/test-pans.csv, card numbers that card
// networks and processors publish as test numbers.
type testPAN struct {
	brand     string
	pan       string
	length    int
	luhnValid bool
}

func readTestPANs(t *testing.T) []testPAN {
	t.Helper()
	f, err := os.Open(filepath.Join("testdata", "test-pans.csv"))
	if err != nil {
		t.Fatalf("open test numbers: %v", err)
	}
	defer f.Close()
	rows, err := csv.NewReader(f).ReadAll()
	if err != nil {
		t.Fatalf("read test numbers: %v", err)
	}

	var pans []testPAN
	for i, row := range rows[1:] {
		length, err := strconv.Atoi(row[2])
		if err != nil || len(row) != 4 {
			t.Fatalf("row %d is malformed", i+2)
		}
		pans = append(pans, testPAN{brand: row[0], pan: row[1], length: length, luhnValid: row[3] == "true"})
	}
	if len(pans) != 47 {
		t.Fatalf("read %d test numbers, want 47", len(pans))
	}
	return pans
}

// TestTestPANs tokenizes every published test number into a bbolt vault,
// detokenizes them back after reopening the file, and moves some through
// the lifecycle.
func TestTestPANs(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "vault.db")
	keys, err := tokenvault.GenerateKeyRing()
	if err != nil {
		t.Fatal(err)
	}
	v, err := tokenvault.Open(path, keys)
	if err != nil {
		t.Fatalf("Open err = %v", err)
	}

	pans := readTestPANs(t)
	tokens := make([]string, len(pans))
	for i, p := range pans {
		var opts []tokenvault.TokenizeOption
		if !p.luhnValid {
			if _, err := v.TokenizeCard(ctx, p.pan); !errors.Is(err, tokenvault.ErrInvalidCardNumber) {
				t.Errorf("row %d (%s): TokenizeCard without AllowNonLuhn err = %v, want ErrInvalidCardNumber", i+2, p.brand, err)
			}
			opts = append(opts, tokenvault.AllowNonLuhn())
		}
		token, err := v.TokenizeCard(ctx, p.pan, opts...)
		if err != nil {
			t.Fatalf("row %d (%s): TokenizeCard err = %v", i+2, p.brand, err)
		}
		if len(token) != p.length || token[len(token)-4:] != p.pan[len(p.pan)-4:] {
			t.Errorf("row %d (%s): token %s does not keep the length %d and the last four digits", i+2, p.brand, token, p.length)
		}
		info, err := v.Inspect(ctx, token)
		if err != nil {
			t.Fatalf("row %d: Inspect err = %v", i+2, err)
		}
		if string(info.Brand) != p.brand {
			t.Errorf("row %d: brand = %q, want %q", i+2, info.Brand, p.brand)
		}
		tokens[i] = token
	}
	v.Close()

	v, err = tokenvault.Open(path, keys)
	if err != nil {
		t.Fatalf("reopen err = %v", err)
	}
	defer v.Close()
	for i, p := range pans {
		got, err := v.Detokenize(ctx, tokens[i])
		if err != nil || string(got) != p.pan {
			t.Errorf("row %d (%s): Detokenize(%s) err = %v, value matches = %t", i+2, p.brand, tokens[i], err, string(got) == p.pan)
		}
	}

	for i := 0; i < len(tokens); i += 5 {
		if err := v.SuspendToken(ctx, tokens[i], tokenvault.WithReason("fraud review")); err != nil {
			t.Fatalf("SuspendToken err = %v", err)
		}
		if _, err := v.Detokenize(ctx, tokens[i]); !errors.Is(err, tokenvault.ErrSuspended) {
			t.Errorf("Detokenize(suspended) err = %v, want ErrSuspended", err)
		}
		if i%10 == 0 {
			if err := v.ActivateToken(ctx, tokens[i]); err != nil {
				t.Fatalf("ActivateToken err = %v", err)
			}
			if got, err := v.Detokenize(ctx, tokens[i]); err != nil || string(got) != pans[i].pan {
				t.Errorf("Detokenize(reactivated) err = %v", err)
			}
			continue
		}
		if err := v.CloseToken(ctx, tokens[i], tokenvault.WithReason("card replaced")); err != nil {
			t.Fatalf("CloseToken err = %v", err)
		}
		if _, err := v.Detokenize(ctx, tokens[i]); !errors.Is(err, tokenvault.ErrClosed) {
			t.Errorf("Detokenize(closed) err = %v, want ErrClosed", err)
		}
	}
}
