package apikey

import (
	"io/fs"
	"os"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"
)

// TestAuthenticateChecksFileOncePerInterval checks that Authenticate stats
// the file at most once per reloadInterval, however often it is called.
func TestAuthenticateChecksFileOncePerInterval(t *testing.T) {
	opened := time.Now()
	f, err := Open(filepath.Join(t.TempDir(), "keys"))
	if err != nil {
		t.Fatal(err)
	}
	secret, _, err := f.Create("x", []Role{RoleTokenize})
	if err != nil {
		t.Fatal(err)
	}
	var stats atomic.Int64
	f.stat = func(path string) (fs.FileInfo, error) {
		stats.Add(1)
		return os.Stat(path)
	}

	// The last call starts 2.5 s after Open, after the first check is due,
	// even if the process stalls.
	calls := 0
	for {
		elapsed := time.Since(opened)
		if _, err := f.Authenticate(secret); err != nil {
			t.Fatalf("Authenticate err = %v", err)
		}
		calls++
		if elapsed >= 2500*time.Millisecond {
			break
		}
	}

	// Checks are due 1 s and 2 s after Open. A stall of the process can
	// skip one, and nothing may add one.
	maxStats := int64(time.Since(opened) / reloadInterval)
	if n := stats.Load(); n < 1 || n > maxStats {
		t.Errorf("%d calls of Authenticate stat the file %d times in %v, want 1 to %d", calls, n, time.Since(opened).Round(time.Millisecond), maxStats)
	}
}

// TestAuthenticateAllocations checks that a rejected secret allocates
// nothing, and an accepted one only the copy of its roles.
func TestAuthenticateAllocations(t *testing.T) {
	f, err := Open(filepath.Join(t.TempDir(), "keys"))
	if err != nil {
		t.Fatal(err)
	}
	secret, _, err := f.Create("x", []Role{RoleTokenize})
	if err != nil {
		t.Fatal(err)
	}
	wrong := secret[:len(secret)-3] + "AAA"
	malformed := secret[:len(secret)-1] + "="

	if n := testing.AllocsPerRun(100, func() { f.Authenticate(wrong) }); n != 0 {
		t.Errorf("Authenticate(wrong secret) allocates %v times, want 0", n)
	}
	if n := testing.AllocsPerRun(100, func() { f.Authenticate(malformed) }); n != 0 {
		t.Errorf("Authenticate(malformed secret) allocates %v times, want 0", n)
	}
	if n := testing.AllocsPerRun(100, func() { f.Authenticate(secret) }); n != 1 {
		t.Errorf("Authenticate(valid secret) allocates %v times, want 1 (the roles)", n)
	}
}

func TestSecretIDNeverPanics(t *testing.T) {
	for _, s := range []string{"", "t", "tvk", "tvk_", "tvk_00000000", "tvk_00000000_", "\xff\xfe", string(make([]byte, secretLen))} {
		if _, ok := secretID(s); ok {
			t.Errorf("secretID(%q) ok = true, want false", s)
		}
	}
}
