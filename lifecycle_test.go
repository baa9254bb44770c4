package tokenvault

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
)

const visaTest = "4111111111111111"

func TestLifecycleTransitions(t *testing.T) {
	forEachStore(t, func(t *testing.T, v *Vault, s Store, clock *testClock) {
		ctx := context.Background()
		token, err := v.TokenizeCard(ctx, visaTest)
		if err != nil {
			t.Fatalf("TokenizeCard err = %v", err)
		}

		steps := []struct {
			name  string
			apply func(context.Context, string, ...ChangeOption) error
			want  State
			err   error // wanted Detokenize error afterwards
		}{
			{"suspend", v.SuspendToken, StateSuspended, ErrSuspended},
			{"suspend again", v.SuspendToken, StateSuspended, ErrSuspended},
			{"activate", v.ActivateToken, StateActive, nil},
			{"activate again", v.ActivateToken, StateActive, nil},
			{"suspend before close", v.SuspendToken, StateSuspended, ErrSuspended},
			{"close", v.CloseToken, StateClosed, ErrClosed},
			{"close again", v.CloseToken, StateClosed, ErrClosed},
		}
		for _, step := range steps {
			clock.Advance(1)
			if err := step.apply(ctx, token, WithReason(step.name), WithActor("tester")); err != nil {
				t.Fatalf("%s: err = %v, want nil", step.name, err)
			}
			info, err := v.Inspect(ctx, token)
			if err != nil {
				t.Fatalf("%s: Inspect err = %v", step.name, err)
			}
			if info.State != step.want {
				t.Errorf("%s: state = %s, want %s", step.name, info.State, step.want)
			}
			if _, err := v.Detokenize(ctx, token); !errors.Is(err, step.err) {
				t.Errorf("%s: Detokenize err = %v, want %v", step.name, err, step.err)
			}
		}

		info, err := v.Inspect(ctx, token)
		if err != nil {
			t.Fatalf("Inspect err = %v", err)
		}
		wantPath := []struct {
			from, to State
			reason   string
		}{
			{StateActive, StateSuspended, "suspend"},
			{StateSuspended, StateActive, "activate"},
			{StateActive, StateSuspended, "suspend before close"},
			{StateSuspended, StateClosed, "close"},
		}
		if len(info.History) != len(wantPath) {
			t.Fatalf("history has %d entries, want %d (repeated requests must record nothing)", len(info.History), len(wantPath))
		}
		for i, want := range wantPath {
			got := info.History[i]
			if got.From != want.from || got.To != want.to || got.Reason != want.reason || got.Actor != "tester" {
				t.Errorf("history[%d] = %s->%s %q by %q, want %s->%s %q by tester", i, got.From, got.To, got.Reason, got.Actor, want.from, want.to, want.reason)
			}
			if got.Revision != uint64(i+1) {
				t.Errorf("history[%d].Revision = %d, want %d", i, got.Revision, i+1)
			}
			if got.Time.IsZero() {
				t.Errorf("history[%d].Time is zero", i)
			}
		}
	})
}

func TestLifecycleOutOfClosed(t *testing.T) {
	forEachStore(t, func(t *testing.T, v *Vault, s Store, clock *testClock) {
		ctx := context.Background()
		token, err := v.TokenizeCard(ctx, visaTest)
		if err != nil {
			t.Fatalf("TokenizeCard err = %v", err)
		}
		if err := v.CloseToken(ctx, token); err != nil {
			t.Fatalf("CloseToken err = %v", err)
		}

		for name, change := range map[string]func(context.Context, string, ...ChangeOption) error{
			"SuspendToken":  v.SuspendToken,
			"ActivateToken": v.ActivateToken,
		} {
			err := change(ctx, token)
			var te *TransitionError
			if !errors.As(err, &te) || !errors.Is(err, ErrClosed) {
				t.Fatalf("%s(closed) err = %v, want *TransitionError wrapping ErrClosed", name, err)
			}
			if te.From != StateClosed || !strings.Contains(err.Error(), "closed") {
				t.Errorf("%s(closed) err = %q, want it to name the closed state", name, err)
			}
		}
	})
}

func TestCloseShredsCiphertext(t *testing.T) {
	forEachStore(t, func(t *testing.T, v *Vault, s Store, clock *testClock) {
		ctx := context.Background()
		token, err := v.TokenizeCard(ctx, visaTest, Deterministic("shop"))
		if err != nil {
			t.Fatalf("TokenizeCard err = %v", err)
		}
		if err := v.CloseToken(ctx, token, WithReason("customer request")); err != nil {
			t.Fatalf("CloseToken err = %v", err)
		}

		rec, err := v.get(ctx, token)
		if err != nil {
			t.Fatalf("store Get(%q) err = %v, want the tombstone", token, err)
		}
		if rec.Ciphertext != nil || rec.Fingerprint != nil || rec.DeterministicKey != nil || rec.KeyID != "" {
			t.Errorf("closed record keeps ciphertext %t, fingerprint %t, deterministic key %t, key id %q; want all cleared",
				rec.Ciphertext != nil, rec.Fingerprint != nil, rec.DeterministicKey != nil, rec.KeyID)
		}
		if rec.Last4 != "1111" {
			t.Errorf("closed record Last4 = %q, want the metadata kept", rec.Last4)
		}

		if _, err := v.Detokenize(ctx, token); !errors.Is(err, ErrClosed) {
			t.Errorf("Detokenize(closed) err = %v, want ErrClosed, not ErrNotFound", err)
		}
		tokens, err := v.TokensForCard(ctx, visaTest)
		if err != nil || len(tokens) != 0 {
			t.Errorf("TokensForCard after close = %v, %v; want no tokens", tokens, err)
		}
	})
}

func TestLifecycleUnknownToken(t *testing.T) {
	forEachStore(t, func(t *testing.T, v *Vault, s Store, clock *testClock) {
		ctx := context.Background()
		for _, token := range []string{"", "tok_", "4000000000000001", "tok_06h45c1n6gbaopedgies0c821cmoi2ctjdug"} {
			for name, change := range map[string]func(context.Context, string, ...ChangeOption) error{
				"SuspendToken": v.SuspendToken, "ActivateToken": v.ActivateToken, "CloseToken": v.CloseToken,
			} {
				if err := change(ctx, token); !errors.Is(err, ErrNotFound) {
					t.Errorf("%s(%q) err = %v, want ErrNotFound", name, token, err)
				}
			}
		}
	})
}

func TestLifecycleOptionLimits(t *testing.T) {
	forEachStore(t, func(t *testing.T, v *Vault, s Store, clock *testClock) {
		ctx := context.Background()
		token, err := v.Tokenize(ctx, []byte("iban DE89370400440532013000"))
		if err != nil {
			t.Fatalf("Tokenize err = %v", err)
		}

		cases := map[string]ChangeOption{
			"long reason":  WithReason(strings.Repeat("r", MaxReasonSize+1)),
			"long actor":   WithActor(strings.Repeat("a", MaxActorSize+1)),
			"invalid utf8": WithReason("\xff\xfe"),
		}
		for name, opt := range cases {
			if err := v.SuspendToken(ctx, token, opt); !errors.Is(err, ErrInvalidOption) {
				t.Errorf("%s: SuspendToken err = %v, want ErrInvalidOption", name, err)
			}
		}
		info, err := v.Inspect(ctx, token)
		if err != nil || info.State != StateActive || len(info.History) != 0 {
			t.Errorf("after rejected changes: state %v, %d history entries, err %v; want active, none", info.State, len(info.History), err)
		}
	})
}

// TestLifecycleRace races suspend and close on one token. Every change is a
// compare-and-set, so the token must end closed and its history must be a
// valid path: active -> suspended? -> closed, closed only once.
func TestLifecycleRace(t *testing.T) {
	forEachStore(t, func(t *testing.T, v *Vault, s Store, clock *testClock) {
		ctx := context.Background()
		token, err := v.TokenizeCard(ctx, visaTest)
		if err != nil {
			t.Fatalf("TokenizeCard err = %v", err)
		}

		const goroutines = 1000
		var wg sync.WaitGroup
		errs := make(chan error, goroutines)
		for i := range goroutines {
			wg.Go(func() {
				var err error
				if i%2 == 0 {
					err = v.SuspendToken(ctx, token, WithActor("racer"))
				} else {
					err = v.CloseToken(ctx, token, WithActor("racer"))
				}
				if err != nil && !errors.Is(err, ErrClosed) {
					errs <- err
				}
			})
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Errorf("racing change err = %v, want nil or ErrClosed", err)
		}

		info, err := v.Inspect(ctx, token)
		if err != nil {
			t.Fatalf("Inspect err = %v", err)
		}
		if info.State != StateClosed {
			t.Fatalf("final state = %s, want closed", info.State)
		}
		checkValidPath(t, info.History)
	})
}

// checkValidPath fails t unless history is a chain of allowed transitions
// that starts at active and ends at the last entry's state.
func checkValidPath(t *testing.T, history []Change) {
	t.Helper()
	if len(history) == 0 {
		t.Fatal("history is empty, want at least the close")
	}
	allowed := map[[2]State]bool{
		{StateActive, StateSuspended}: true,
		{StateSuspended, StateActive}: true,
		{StateActive, StateClosed}:    true,
		{StateSuspended, StateClosed}: true,
	}
	state := StateActive
	for i, c := range history {
		if c.From != state {
			t.Fatalf("history[%d] starts from %s, but the token was %s", i, c.From, state)
		}
		if !allowed[[2]State{c.From, c.To}] {
			t.Fatalf("history[%d] is %s->%s, which is not an allowed transition", i, c.From, c.To)
		}
		if c.Revision != uint64(i+1) {
			t.Fatalf("history[%d].Revision = %d, want %d", i, c.Revision, i+1)
		}
		state = c.To
	}
	if state != StateClosed {
		t.Fatalf("history ends at %s, want closed", state)
	}
}

func TestStateStrings(t *testing.T) {
	if s := State(0).String(); s == "active" || State(0).Valid() {
		t.Errorf("zero State is %q, valid %t; want invalid", s, State(0).Valid())
	}
	for _, st := range []State{StateActive, StateSuspended, StateClosed} {
		got, err := ParseState(st.String())
		if err != nil || got != st {
			t.Errorf("ParseState(%q) = %v, %v; want %v", st.String(), got, err, st)
		}
	}
	if _, err := ParseState("open"); err == nil {
		t.Error(`ParseState("open") err = nil, want an error`)
	}
}

// TestInspectSnapshot inspects a token while other goroutines keep changing
// it: each result must be one moment, with one history entry per revision
// and the last entry ending in the state shown.
func TestInspectSnapshot(t *testing.T) {
	forEachStore(t, func(t *testing.T, v *Vault, s Store, clock *testClock) {
		ctx := context.Background()
		token, _ := v.TokenizeCard(ctx, visaTest)

		stop := make(chan struct{})
		var wg sync.WaitGroup
		wg.Go(func() {
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				if i%2 == 0 {
					v.SuspendToken(ctx, token)
				} else {
					v.ActivateToken(ctx, token)
				}
			}
		})
		for range 300 {
			info, err := v.Inspect(ctx, token)
			if err != nil {
				t.Errorf("Inspect err = %v", err)
				break
			}
			n := len(info.History)
			if uint64(n) != info.Revision || (n > 0 && info.History[n-1].To != info.State) {
				t.Errorf("Inspect = revision %d, state %s, %d history entries; want one moment", info.Revision, info.State, n)
				break
			}
		}
		close(stop)
		wg.Wait()
	})
}
