package tokenvault

import (
	"context"
	"errors"
	"testing"
	"time"
)

func TestRecordExpirations(t *testing.T) {
	forEachStore(t, func(t *testing.T, v *Vault, s Store, clock *testClock) {
		ctx := context.Background()
		tokenize := func(opts ...TokenizeOption) string {
			t.Helper()
			token, err := v.Tokenize(ctx, []byte(time.Now().String()), opts...)
			if err != nil {
				t.Fatalf("Tokenize err = %v", err)
			}
			return token
		}
		active := tokenize(ExpiresAfter(time.Hour))
		suspended := tokenize(ExpiresAfter(time.Hour))
		closed := tokenize(ExpiresAfter(time.Hour))
		later := tokenize(ExpiresAfter(3 * time.Hour))
		never := tokenize()
		if err := v.SuspendToken(ctx, suspended); err != nil {
			t.Fatal(err)
		}
		if err := v.CloseToken(ctx, closed); err != nil {
			t.Fatal(err)
		}

		if n, err := v.RecordExpirations(ctx); n != 0 || err != nil {
			t.Errorf("RecordExpirations before any expiry = %d, %v, want 0, nil", n, err)
		}
		clock.Advance(time.Hour) // expiry is inclusive: a token expires at its Expires time
		before := len(allVaultEvents(t, v))
		if n, err := v.RecordExpirations(ctx); n != 2 || err != nil {
			t.Fatalf("RecordExpirations after an hour = %d, %v, want 2 (the active and the suspended token), nil", n, err)
		}

		events := allVaultEvents(t, v)[before:]
		if len(events) != 2 {
			t.Fatalf("RecordExpirations appended %d events, want 2", len(events))
		}
		byToken := map[string]Event{events[0].Token: events[0], events[1].Token: events[1]}
		for token, state := range map[string]State{active: StateActive, suspended: StateSuspended} {
			ev, ok := byToken[token]
			if !ok {
				t.Errorf("no EventExpired for token %q", token)
				continue
			}
			if ev.Type != EventExpired || ev.From != state || ev.To != state || !ev.Time.Equal(clock.Now()) || ev.Actor != expiryActor {
				t.Errorf("event of token %q = %+v, want type expired, from and to %s, time %v, actor %q", token, ev, state, clock.Now(), expiryActor)
			}

			rec, history, err := s.History(ctx, token)
			if err != nil {
				t.Fatalf("History(%q) err = %v", token, err)
			}
			if !rec.ExpiryRecorded || rec.State != state {
				t.Errorf("record of %q: ExpiryRecorded %t, state %s, want true and %s", token, rec.ExpiryRecorded, rec.State, state)
			}
			last := history[len(history)-1]
			if last.Type != EventExpired || last.From != state || last.To != state || last.Revision != ev.Revision {
				t.Errorf("last history entry of %q = %+v, want type expired, from and to %s, revision %d", token, last, state, ev.Revision)
			}
		}
		for _, token := range []string{closed, later, never} {
			if rec, err := s.Get(ctx, token); err != nil || rec.ExpiryRecorded {
				t.Errorf("Get(%q) = ExpiryRecorded %t, err %v, want false: it is closed, not yet expired or never expires", token, rec.ExpiryRecorded, err)
			}
		}
		if _, err := v.Detokenize(ctx, active); !errors.Is(err, ErrExpired) {
			t.Errorf("Detokenize of the recorded token err = %v, want ErrExpired", err)
		}

		if n, err := v.RecordExpirations(ctx); n != 0 || err != nil {
			t.Errorf("second RecordExpirations = %d, %v, want 0, nil", n, err)
		}
		clock.Advance(2 * time.Hour)
		if n, err := v.RecordExpirations(ctx); n != 1 || err != nil {
			t.Errorf("RecordExpirations after three hours = %d, %v, want 1, nil", n, err)
		}
		if len(allVaultEvents(t, v)) != before+3 {
			t.Errorf("outbox has %d events, want %d", len(allVaultEvents(t, v)), before+3)
		}
	})
}

// TestRecordExpirationsPages checks a store with more records than one scan
// page, and concurrent calls that must record each expiry once.
func TestRecordExpirationsPages(t *testing.T) {
	forEachStore(t, func(t *testing.T, v *Vault, s Store, clock *testClock) {
		ctx := context.Background()
		const tokens = expiryScanPage*2 + 7
		for i := range tokens {
			if _, err := v.Tokenize(ctx, []byte{byte(i), byte(i >> 8)}, ExpiresAfter(time.Minute)); err != nil {
				t.Fatal(err)
			}
		}
		clock.Advance(time.Minute)

		counts := make(chan int, 3)
		for range 3 {
			go func() {
				n, err := v.RecordExpirations(ctx)
				if err != nil {
					t.Errorf("RecordExpirations err = %v", err)
				}
				counts <- n
			}()
		}
		total := 0
		for range 3 {
			total += <-counts
		}
		if total != tokens {
			t.Errorf("three concurrent RecordExpirations recorded %d expirations in all, want %d, one per token", total, tokens)
		}
		if n := len(allVaultEvents(t, v)); n != 2*tokens {
			t.Errorf("outbox has %d events, want %d: one created and one expired per token", n, 2*tokens)
		}
	})
}
