package tokenvault

import (
	"context"
	"errors"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	bolt "go.etcd.io/bbolt"

	"github.com/tokenvault/tokenvault/internal/luhn"
)

// locatedCards are public test card numbers of several lengths.
var locatedCards = []string{visaTest, mastercard, "378282246310005", "4222222222222", "6011111111111117", "3530111333300000"}

// TestLocatedCardTokens checks that FormatCard tokens get locators in
// creation order on each shipped store, keep the shape of a card token,
// and work through every operation that takes a token.
func TestLocatedCardTokens(t *testing.T) {
	forEachStore(t, func(t *testing.T, v *Vault, s Store, clock *testClock) {
		ctx := context.Background()
		var last string
		for i, pan := range slices.Repeat(locatedCards, 3) {
			token := tokenizeTestCard(t, v, pan)
			if len(token) != len(pan) || token[len(token)-4:] != pan[len(pan)-4:] || luhn.Valid(token) {
				t.Fatalf("token %d for a %d-digit number has length %d, last four %t, passes Luhn %t", i, len(pan), len(token), token[len(token)-4:] == pan[len(pan)-4:], luhn.Valid(token))
			}

			rec, err := v.get(ctx, token)
			if err != nil {
				t.Fatalf("get(token %d) err = %v", i, err)
			}
			if !strings.HasPrefix(rec.Locator, locatorPrefix) || rec.Locator <= last {
				t.Errorf("token %d has locator %q after %q, want a later locator", i, rec.Locator, last)
			}
			last = rec.Locator
			if _, err := s.Get(ctx, token); !errors.Is(err, ErrNotFound) {
				t.Errorf("store Get(token %d) err = %v, want ErrNotFound: the record is under its locator", i, err)
			}

			if got, err := v.Detokenize(ctx, token); err != nil || string(got) != pan {
				t.Errorf("Detokenize(token %d) err = %v, value matches %t", i, err, string(got) == pan)
			}
		}

		token := tokenizeTestCard(t, v, visaTest)
		if err := v.SuspendToken(ctx, token); err != nil {
			t.Fatalf("SuspendToken err = %v", err)
		}
		if _, err := v.Detokenize(ctx, token); !errors.Is(err, ErrSuspended) {
			t.Errorf("Detokenize(suspended) err = %v, want ErrSuspended", err)
		}
		if err := v.ActivateToken(ctx, token); err != nil {
			t.Fatalf("ActivateToken err = %v", err)
		}
		if info := inspectTest(t, v, token); info.Token != token || len(info.History) != 2 {
			t.Errorf("Inspect = token %q with %d changes, want %q with 2", info.Token, len(info.History), token)
		}
		tokens, err := v.TokensForCard(ctx, visaTest)
		if err != nil || !slices.Contains(tokens, token) {
			t.Errorf("TokensForCard = %d tokens, %v, want one of them the new token", len(tokens), err)
		}
		if err := v.CloseToken(ctx, token); err != nil {
			t.Fatalf("CloseToken err = %v", err)
		}
		if _, err := v.Detokenize(ctx, token); !errors.Is(err, ErrClosed) {
			t.Errorf("Detokenize(closed) err = %v, want ErrClosed", err)
		}
		events := tokenEvents(t, s, token)
		if len(events) != 4 {
			t.Errorf("outbox has %d events of the token, want 4 (created, suspended, activated, closed)", len(events))
		}
	})
}

// TestLocatedDeterministic checks that a deterministic FormatCard token is
// found again through the deterministic index, which names its locator.
func TestLocatedDeterministic(t *testing.T) {
	forEachStore(t, func(t *testing.T, v *Vault, s Store, clock *testClock) {
		first := tokenizeTestCard(t, v, visaTest, Deterministic("shop"))
		if again := tokenizeTestCard(t, v, visaTest, Deterministic("shop")); again != first {
			t.Errorf("deterministic TokenizeCard again = another token, want the first")
		}
		rec, err := v.get(context.Background(), first)
		if err != nil || rec.Locator == "" {
			t.Fatalf("get(deterministic token) = locator %q, %v, want a locator", rec.Locator, err)
		}
	})
}

// TestLocatorsSurviveReopen checks that a reopened vault never reuses a
// number, so that it cannot give two tokens one locator.
func TestLocatorsSurviveReopen(t *testing.T) {
	path := filepath.Join(t.TempDir(), "vault.db")
	keys, err := GenerateKeyRing()
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()

	seen := make(map[string]string) // locator -> token
	for round := range 3 {
		v, err := Open(path, keys)
		if err != nil {
			t.Fatalf("Open round %d err = %v", round, err)
		}
		for range 5 {
			token := tokenizeTestCard(t, v, mastercard)
			rec, err := v.get(ctx, token)
			if err != nil {
				t.Fatalf("get err = %v", err)
			}
			if prev, ok := seen[rec.Locator]; ok {
				t.Fatalf("round %d: locator %q given again, to %s after %s", round, rec.Locator, token, prev)
			}
			seen[rec.Locator] = token
		}
		for locator, token := range seen {
			if got, err := v.Detokenize(ctx, token); err != nil || string(got) != mastercard {
				t.Errorf("round %d: Detokenize(token under %s) err = %v", round, locator, err)
			}
		}
		if err := v.Close(); err != nil {
			t.Fatal(err)
		}
	}
}

// storeDirect stores value under token without a locator, as versions
// before locators did, and returns the record.
func storeDirect(t *testing.T, v *Vault, token string, value string) *Record {
	t.Helper()
	rec, err := v.newRecord(context.Background(), []byte(value), Metadata{Kind: KindCard, Format: FormatCardFirstSix, Last4: value[len(value)-4:], First6: value[:6], Created: v.now(), Updated: v.now()}, v.keys.fingerprint(KindCard, []byte(value)), nil)
	if err != nil {
		t.Fatal(err)
	}
	rec.Token = token
	rec.KeyID, rec.Ciphertext, err = v.keys.encrypt(seal(token, []byte(value)), rec.Created)
	if err != nil {
		t.Fatal(err)
	}
	if err := v.store.Create(context.Background(), rec); err != nil {
		t.Fatalf("store Create(direct record) err = %v", err)
	}
	return rec
}

// withLocatedSum returns digits with its fifth digit from the right changed
// so that its Luhn sum is locatedSum, as one random token in ten of older
// versions had.
func withLocatedSum(digits string) string {
	b := []byte(digits)
	setLocatedSum(b)
	return string(b)
}

// TestOlderTokenWithLocatedSum checks that a random token of an older
// version whose Luhn sum marks located tokens is still found, also when its
// locator holds the record of another token.
func TestOlderTokenWithLocatedSum(t *testing.T) {
	forEachStore(t, func(t *testing.T, v *Vault, s Store, clock *testClock) {
		ctx := context.Background()
		older := withLocatedSum("4111119876541111")
		storeDirect(t, v, older, visaTest)

		if got, err := v.Detokenize(ctx, older); err != nil || string(got) != visaTest {
			t.Fatalf("Detokenize(older token) err = %v, value matches %t", err, string(got) == visaTest)
		}

		// Put another token's record under the older token's locator.
		locator, ok := v.locators.locatorOfToken(older)
		if !ok {
			t.Fatal("locatorOfToken(older token) ok = false, want true")
		}
		other := storeDirect(t, v, withLocatedSum("4111110000001111"), visaTest)
		squatter := other.Clone()
		squatter.Token, squatter.Locator = withLocatedSum("4111112222221111"), locator
		if err := s.Create(ctx, squatter); err != nil {
			t.Fatalf("store Create(record under the locator) err = %v", err)
		}

		if got, err := v.Detokenize(ctx, older); err != nil || string(got) != visaTest {
			t.Errorf("Detokenize(older token) with its locator taken err = %v, value matches %t", err, string(got) == visaTest)
		}
		if err := v.SuspendToken(ctx, older); err != nil {
			t.Fatalf("SuspendToken(older token) err = %v", err)
		}
		if info := inspectTest(t, v, older); info.State != StateSuspended {
			t.Errorf("Inspect(older token) state = %s, want suspended", info.State)
		}
		if rec, err := s.Get(ctx, locator); err != nil || rec.State != StateActive || rec.Revision != 0 {
			t.Errorf("record under the locator after SuspendToken(older token) = %v, want it unchanged", err)
		}
	})
}

// TestLocatedTokenTakenByOlderToken checks that when the next located token
// equals a random token of an older version, the vault draws the one after.
func TestLocatedTokenTakenByOlderToken(t *testing.T) {
	forEachStore(t, func(t *testing.T, v *Vault, s Store, clock *testClock) {
		ctx := context.Background()
		tokenizeTestCard(t, v, visaTest) // reserves a block

		predict := &locators{reserver: v.locators.reserver, cipher: v.locators.cipher, next: v.locators.next, end: v.locators.next + 1}
		next, _, ok, err := predict.newToken(ctx, visaTest)
		if err != nil || !ok {
			t.Fatalf("newToken = ok %t, %v", ok, err)
		}
		storeDirect(t, v, next, mastercard)

		token := tokenizeTestCard(t, v, visaTest)
		if token == next {
			t.Fatal("TokenizeCard returned the token an older record has")
		}
		if got, err := v.Detokenize(ctx, token); err != nil || string(got) != visaTest {
			t.Errorf("Detokenize(new token) err = %v, value matches %t", err, string(got) == visaTest)
		}
		if got, err := v.Detokenize(ctx, next); err != nil || string(got) != mastercard {
			t.Errorf("Detokenize(older token) err = %v, value matches %t", err, string(got) == mastercard)
		}
	})
}

// TestLocatorsRunOut checks that a card number too short for the next
// number gets a random token, kept under itself.
func TestLocatorsRunOut(t *testing.T) {
	s := NewMemoryStore()
	s.locators = pow10(12-locatedKeep) - 1
	v := newTestVault(t, s, newTestClock())
	ctx := context.Background()
	short := "4222222222222"                                         // 13 digits: 8 encrypt the number, up to 10^8
	twelve := "50000000000" + string(luhn.CheckDigit("50000000000")) // 12 digits, generated: 7 encrypt the number

	last := tokenizeTestCard(t, v, twelve)
	random := tokenizeTestCard(t, v, twelve)
	longer := tokenizeTestCard(t, v, short)

	for _, tc := range []struct {
		name, token, pan string
		located          bool
	}{
		{"last number that fits", last, twelve, true},
		{"after the last number", random, twelve, false},
		{"longer number", longer, short, true},
	} {
		rec, err := v.get(ctx, tc.token)
		if err != nil {
			t.Fatalf("%s: get err = %v", tc.name, err)
		}
		if located := rec.Locator != ""; located != tc.located {
			t.Errorf("%s: located = %t, want %t", tc.name, located, tc.located)
		}
		if sum := luhn.Sum(tc.token); (sum == locatedSum) != tc.located || sum == 0 {
			t.Errorf("%s: token's Luhn sum = %d", tc.name, sum)
		}
		if got, err := v.Detokenize(ctx, tc.token); err != nil || string(got) != tc.pan {
			t.Errorf("%s: Detokenize err = %v", tc.name, err)
		}
	}
}

// TestRandomCardTokensAvoidLocatedSum checks that random card-shaped tokens
// never have the Luhn sum that marks located tokens.
func TestRandomCardTokensAvoidLocatedSum(t *testing.T) {
	for range 2000 {
		token, err := newCardToken(visaTest, true)
		if err != nil {
			t.Fatal(err)
		}
		if sum := luhn.Sum(token); sum == 0 || sum == locatedSum {
			t.Fatalf("newCardToken drew a token with Luhn sum %d", sum)
		}
	}
}

func TestLocatorOf(t *testing.T) {
	for _, tc := range []struct {
		n    uint64
		want string
	}{
		{0, "~0000000000000000"},
		{0xabc, "~0000000000000abc"},
		{1<<64 - 1, "~ffffffffffffffff"},
	} {
		if got := locatorOf(tc.n); got != tc.want {
			t.Errorf("locatorOf(%#x) = %q, want %q", tc.n, got, tc.want)
		}
	}
}

// reserverHidingStore hides LocatorReserver and the other optional
// interfaces of the store it wraps, as a metrics or tracing wrapper does.
type reserverHidingStore struct{ Store }

// TestLocatedTokenThroughWrappedStore checks that a vault over a store that
// hides LocatorReserver still finds the located tokens in it.
func TestLocatedTokenThroughWrappedStore(t *testing.T) {
	s := NewMemoryStore()
	v := newTestVault(t, s, newTestClock())
	ctx := context.Background()
	token := tokenizeTestCard(t, v, visaTest)

	wrapped, err := New(reserverHidingStore{s}, v.Keys())
	if err != nil {
		t.Fatalf("New(wrapped store) err = %v", err)
	}
	if got, err := wrapped.Detokenize(ctx, token); err != nil || string(got) != visaTest {
		t.Errorf("Detokenize(located token) through the wrapped store err = %v, value matches %t", err, string(got) == visaTest)
	}
	if err := wrapped.SuspendToken(ctx, token); err != nil {
		t.Errorf("SuspendToken(located token) through the wrapped store err = %v", err)
	}
	if _, err := wrapped.Inspect(ctx, token); err != nil {
		t.Errorf("Inspect(located token) through the wrapped store err = %v", err)
	}

	random := tokenizeTestCard(t, wrapped, mastercard)
	if sum := luhn.Sum(random); sum == locatedSum {
		t.Errorf("TokenizeCard through the wrapped store made a token with Luhn sum %d, want a random one", sum)
	}
	if got, err := wrapped.Detokenize(ctx, random); err != nil || string(got) != mastercard {
		t.Errorf("Detokenize(random token) err = %v, value matches %t", err, string(got) == mastercard)
	}
}

// TestLocatorWithVersion1Record checks that a record of encoding version 1,
// which has no token of its own, written under a locator is reported as
// damaged instead of as not found.
func TestLocatorWithVersion1Record(t *testing.T) {
	path := filepath.Join(t.TempDir(), "vault.db")
	s, err := OpenBoltStore(path, nil)
	if err != nil {
		t.Fatalf("OpenBoltStore err = %v", err)
	}
	v := newTestVault(t, s, newTestClock())
	ctx := context.Background()
	located := tokenizeTestCard(t, v, visaTest)
	direct := tokenizeTestCard(t, v, visaTest, WithFormat(FormatCardFirstSix))
	rec, err := v.get(ctx, located)
	if err != nil {
		t.Fatalf("get(located token) err = %v", err)
	}

	err = s.update(ctx, func(tx *bolt.Tx) error {
		tokens := tx.Bucket(bucketTokens)
		return tokens.Put([]byte(rec.Locator), slices.Clone(tokens.Get([]byte(direct))))
	})
	if err != nil {
		t.Fatalf("copy the direct record under the locator: %v", err)
	}

	if _, err := v.Detokenize(ctx, located); !errors.Is(err, ErrIntegrity) {
		t.Errorf("Detokenize(located token) err = %v, want ErrIntegrity", err)
	}
	if _, err := v.Inspect(ctx, located); !errors.Is(err, ErrIntegrity) {
		t.Errorf("Inspect(located token) err = %v, want ErrIntegrity", err)
	}
	if err := v.SuspendToken(ctx, located); !errors.Is(err, ErrIntegrity) {
		t.Errorf("SuspendToken(located token) err = %v, want ErrIntegrity", err)
	}
}
