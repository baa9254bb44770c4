package tokenvault

import (
	"context"
	"errors"
	"slices"
	"sync"
	"testing"
	"time"
)

func TestDeterministicSameToken(t *testing.T) {
	forEachStore(t, func(t *testing.T, v *Vault, s Store, clock *testClock) {
		ctx := context.Background()
		first, err := v.TokenizeCard(ctx, visaTest, Deterministic("merchant-1"))
		if err != nil {
			t.Fatalf("TokenizeCard err = %v", err)
		}

		for _, spelling := range []string{visaTest, "4111 1111 1111 1111", "4111-1111-1111-1111"} {
			got, err := v.TokenizeCard(ctx, spelling, Deterministic("merchant-1"))
			if err != nil || got != first {
				t.Errorf("TokenizeCard(%q, same scope) = %s, %v; want %s", maskDigits(spelling), got, err, first)
			}
		}

		others := map[string][]TokenizeOption{
			"other scope":   {Deterministic("merchant-2")},
			"empty scope":   {Deterministic("")},
			"other format":  {Deterministic("merchant-1"), WithFormat(FormatOpaque)},
			"random":        nil,
			"random again":  nil,
			"first six too": {Deterministic("merchant-1"), WithFormat(FormatCardFirstSix)},
		}
		seen := map[string]string{first: "first"}
		for name, opts := range others {
			got, err := v.TokenizeCard(ctx, visaTest, opts...)
			if err != nil {
				t.Fatalf("%s: TokenizeCard err = %v", name, err)
			}
			if prev, dup := seen[got]; dup {
				t.Errorf("%s: token %s repeats the token of %s", name, got, prev)
			}
			seen[got] = name
		}

		data1, _ := v.Tokenize(ctx, []byte(visaTest), Deterministic("merchant-1"))
		if _, dup := seen[data1]; dup {
			t.Error("the same bytes as data and as a card number share a deterministic token")
		}
	})
}

func TestDeterministicAfterClose(t *testing.T) {
	forEachStore(t, func(t *testing.T, v *Vault, s Store, clock *testClock) {
		ctx := context.Background()
		first, _ := v.TokenizeCard(ctx, visaTest, Deterministic("m"))
		if err := v.CloseToken(ctx, first); err != nil {
			t.Fatalf("CloseToken err = %v", err)
		}

		second, err := v.TokenizeCard(ctx, visaTest, Deterministic("m"))
		if err != nil || second == first {
			t.Fatalf("TokenizeCard after close = %s, %v; want a new token", second, err)
		}
		if again, _ := v.TokenizeCard(ctx, visaTest, Deterministic("m")); again != second {
			t.Errorf("TokenizeCard again = %s, want the new token %s", again, second)
		}
	})
}

func TestDeterministicSuspendedReturned(t *testing.T) {
	forEachStore(t, func(t *testing.T, v *Vault, s Store, clock *testClock) {
		ctx := context.Background()
		first, _ := v.TokenizeCard(ctx, visaTest, Deterministic("m"))
		if err := v.SuspendToken(ctx, first); err != nil {
			t.Fatalf("SuspendToken err = %v", err)
		}
		if got, err := v.TokenizeCard(ctx, visaTest, Deterministic("m")); err != nil || got != first {
			t.Errorf("TokenizeCard of a suspended value = %s, %v; want the suspended token %s", got, err, first)
		}
	})
}

func TestDeterministicExpiredReplaced(t *testing.T) {
	forEachStore(t, func(t *testing.T, v *Vault, s Store, clock *testClock) {
		ctx := context.Background()
		first, err := v.TokenizeCard(ctx, visaTest, Deterministic("m"), ExpiresAfter(time.Minute))
		if err != nil {
			t.Fatalf("TokenizeCard err = %v", err)
		}
		clock.Advance(time.Minute)

		second, err := v.TokenizeCard(ctx, visaTest, Deterministic("m"))
		if err != nil || second == first {
			t.Fatalf("TokenizeCard after expiry = %s, %v; want a new token", second, err)
		}
		info, err := v.Inspect(ctx, first)
		if err != nil || info.State != StateClosed {
			t.Fatalf("expired token state = %v, err %v; want closed", info.State, err)
		}
		if got, _ := v.Detokenize(ctx, second); string(got) != visaTest {
			t.Error("new deterministic token does not detokenize to the value")
		}
	})
}

// TestDeterministicConcurrent has 64 goroutines tokenize one value at once;
// the store's unique index must make them all get one token.
func TestDeterministicConcurrent(t *testing.T) {
	forEachStore(t, func(t *testing.T, v *Vault, s Store, clock *testClock) {
		ctx := context.Background()
		const goroutines = 64
		tokens := make([]string, goroutines)
		var wg sync.WaitGroup
		for i := range goroutines {
			wg.Go(func() {
				var err error
				tokens[i], err = v.TokenizeCard(ctx, "5105105105105100", Deterministic("race"))
				if err != nil {
					t.Errorf("goroutine %d: TokenizeCard err = %v", i, err)
				}
			})
		}
		wg.Wait()

		if n := len(slices.Compact(slices.Sorted(slices.Values(tokens)))); n != 1 {
			t.Fatalf("64 concurrent deterministic tokenizations gave %d tokens, want 1", n)
		}
		all, err := v.TokensForCard(ctx, "5105105105105100")
		if err != nil || len(all) != 1 {
			t.Errorf("TokensForCard = %v, %v; want exactly the one token", all, err)
		}
	})
}

func TestTokensForValue(t *testing.T) {
	forEachStore(t, func(t *testing.T, v *Vault, s Store, clock *testClock) {
		ctx := context.Background()
		var want []string
		for _, opts := range [][]TokenizeOption{nil, nil, {Deterministic("a")}, {WithFormat(FormatOpaque)}} {
			token, err := v.TokenizeCard(ctx, visaTest, opts...)
			if err != nil {
				t.Fatalf("TokenizeCard err = %v", err)
			}
			want = append(want, token)
		}
		other, _ := v.TokenizeCard(ctx, "4242424242424242")
		dataToken, _ := v.Tokenize(ctx, []byte("secret value"))

		got, err := v.TokensForCard(ctx, "4111 1111 1111 1111")
		slices.Sort(want)
		if err != nil || !slices.Equal(got, want) {
			t.Errorf("TokensForCard = %v, %v; want %v", got, err, want)
		}
		if slices.Contains(got, other) {
			t.Error("TokensForCard lists the token of another card number")
		}
		if got, err := v.TokensForData(ctx, []byte("secret value")); err != nil || !slices.Equal(got, []string{dataToken}) {
			t.Errorf("TokensForData = %v, %v; want [%s]", got, err, dataToken)
		}
		if got, err := v.TokensForCard(ctx, "6011111111111117"); err != nil || len(got) != 0 {
			t.Errorf("TokensForCard(never tokenized) = %v, %v; want empty", got, err)
		}
		if _, err := v.TokensForCard(ctx, "not a card"); !errors.Is(err, ErrInvalidCardNumber) {
			t.Errorf("TokensForCard(invalid) err = %v, want ErrInvalidCardNumber", err)
		}
	})
}

// TestFingerprintSurvivesRotation checks that rotating the Fernet keys leaves
// fingerprints, and so deterministic tokens, unchanged: they use the index
// key only.
func TestFingerprintSurvivesRotation(t *testing.T) {
	ctx := context.Background()
	s := NewMemoryStore()
	old, _ := GenerateKeyRing()
	v, err := New(s, old)
	if err != nil {
		t.Fatalf("New err = %v", err)
	}
	token, _ := v.TokenizeCard(ctx, visaTest, Deterministic("m"))

	rotated := rotateKeys(t, old)
	v2, err := New(s, rotated)
	if err != nil {
		t.Fatalf("New with rotated keys err = %v", err)
	}
	if _, err := v2.Rewrap(ctx, nil); err != nil {
		t.Fatalf("Rewrap err = %v", err)
	}

	if got, err := v2.TokenizeCard(ctx, visaTest, Deterministic("m")); err != nil || got != token {
		t.Errorf("deterministic token after rotation = %s, %v; want %s", got, err, token)
	}
	if got, _ := v2.TokensForCard(ctx, visaTest); !slices.Equal(got, []string{token}) {
		t.Errorf("TokensForCard after rotation = %v, want [%s]", got, token)
	}
}

// rotateKeys returns a ring with a new primary Fernet key before the keys of
// old, and the same index key.
func rotateKeys(t *testing.T, old *KeyRing) *KeyRing {
	t.Helper()
	ring, err := old.Rotate()
	if err != nil {
		t.Fatalf("Rotate err = %v", err)
	}
	return ring
}

// lookupGapStore is a real store that runs a step between the deterministic
// lookup and the next write, as another caller could.
type lookupGapStore struct {
	Store
	between func()
}

func (s *lookupGapStore) FindByDeterministicKey(ctx context.Context, key []byte) (*Record, error) {
	rec, err := s.Store.FindByDeterministicKey(ctx, key)
	if s.between != nil {
		between := s.between
		s.between = nil
		between()
	}
	return rec, err
}

// TestDeterministicExpiredReissuedMeanwhile reissues an expired
// deterministic token between the lookup that finds it expired and the close
// that would replace it: the close must see the new value and expiry, and
// leave the token alone.
func TestDeterministicExpiredReissuedMeanwhile(t *testing.T) {
	ctx := context.Background()
	clock := newTestClock()
	s := &lookupGapStore{Store: NewMemoryStore()}
	v := newTestVault(t, s, clock)

	token, _ := v.TokenizeCard(ctx, visaTest, Deterministic("m"), ExpiresAfter(time.Minute))
	clock.Advance(time.Minute)
	s.between = func() {
		_, err := v.ApplyNotification(ctx, Notification{
			ID: "reissue-1", Sender: "issuer-1", Token: token, Action: NotifyReissue, Sequence: 1,
			CardNumber: "4242424242424242", CardExpiry: clock.Now().Add(time.Hour),
		})
		if err != nil {
			t.Errorf("ApplyNotification err = %v", err)
		}
	}

	if _, err := v.TokenizeCard(ctx, visaTest, Deterministic("m")); err != nil {
		t.Fatalf("TokenizeCard err = %v", err)
	}
	got, err := v.Detokenize(ctx, token)
	if err != nil || string(got) != "4242424242424242" {
		t.Errorf("reissued token: Detokenize err = %v, new value = %t; want the reissued value kept", err, string(got) == "4242424242424242")
	}
}
