package tokenvault

import (
	"path/filepath"
	"sync"
	"testing"
	"time"
)

// testStores lists the shipped stores, so behaviour tests run on each.
var testStores = []struct {
	name string
	open func(t *testing.T) Store
}{
	{"memory", func(t *testing.T) Store { return NewMemoryStore() }},
	{"bolt", func(t *testing.T) Store {
		s, err := OpenBoltStore(filepath.Join(t.TempDir(), "vault.db"), nil)
		if err != nil {
			t.Fatalf("OpenBoltStore err = %v", err)
		}
		return s
	}},
}

// forEachStore runs test once per shipped store, with a vault over it.
func forEachStore(t *testing.T, test func(t *testing.T, v *Vault, s Store, clock *testClock)) {
	for _, ts := range testStores {
		t.Run(ts.name, func(t *testing.T) {
			s := ts.open(t)
			clock := newTestClock()
			v := newTestVault(t, s, clock)
			test(t, v, s, clock)
		})
	}
}

func newTestVault(t *testing.T, s Store, clock *testClock) *Vault {
	t.Helper()
	keys, err := GenerateKeyRing()
	if err != nil {
		t.Fatalf("GenerateKeyRing err = %v", err)
	}
	v, err := New(s, keys, WithClock(clock.Now))
	if err != nil {
		t.Fatalf("New err = %v", err)
	}
	t.Cleanup(func() { v.Close() })
	return v
}

// testClock is a clock that moves only when a test advances it.
type testClock struct {
	mu  sync.Mutex
	now time.Time
}

func newTestClock() *testClock {
	return &testClock{now: time.Date(2026, 12, 4, 12, 0, 0, 0, time.UTC)}
}

func (c *testClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *testClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}
