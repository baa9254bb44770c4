package tokenvault

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// Published test card numbers, never real cards.
const (
	reissuedVisa = "4012888888881881"
	mastercard   = "5555555555554444"
	amex         = "378282246310005"
)

func newNotification(token, sender, id string, action NotificationAction, sequence uint64) Notification {
	return Notification{ID: id, Sender: sender, Token: token, Action: action, Sequence: sequence}
}

// applyWant applies n and fails the test unless the result is want.
func applyWant(t *testing.T, v *Vault, n Notification, want NotificationResult) {
	t.Helper()
	got, err := v.ApplyNotification(context.Background(), n)
	if err != nil {
		t.Fatalf("ApplyNotification(%v) err = %v, want %s", n, err, want)
	}
	if got != want {
		t.Fatalf("ApplyNotification(%v) = %s, want %s", n, got, want)
	}
}

func tokenizeTestCard(t *testing.T, v *Vault, pan string, opts ...TokenizeOption) string {
	t.Helper()
	token, err := v.TokenizeCard(context.Background(), pan, opts...)
	if err != nil {
		t.Fatalf("TokenizeCard err = %v", err)
	}
	return token
}

func inspectTest(t *testing.T, v *Vault, token string) *TokenInfo {
	t.Helper()
	info, err := v.Inspect(context.Background(), token)
	if err != nil {
		t.Fatalf("Inspect(%s) err = %v", token, err)
	}
	return info
}

// tokenEvents returns the outbox events of token.
func tokenEvents(t *testing.T, s Store, token string) []Event {
	t.Helper()
	all, err := s.Events(context.Background(), 0, 100000)
	if err != nil {
		t.Fatalf("Events err = %v", err)
	}
	var events []Event
	for _, ev := range all {
		if ev.Token == token {
			events = append(events, ev)
		}
	}
	return events
}

func TestNotificationDuplicate(t *testing.T) {
	forEachStore(t, func(t *testing.T, v *Vault, s Store, clock *testClock) {
		token := tokenizeTestCard(t, v, visaTest)
		n := newNotification(token, "visa-vts", "n-1", NotifySuspend, 1)

		applyWant(t, v, n, NotificationApplied)
		applyWant(t, v, n, NotificationDuplicate)

		info := inspectTest(t, v, token)
		if info.State != StateSuspended {
			t.Errorf("state = %s, want suspended", info.State)
		}
		if len(info.History) != 1 {
			t.Errorf("history has %d entries, want 1", len(info.History))
		}
		if events := tokenEvents(t, s, token); len(events) != 2 {
			t.Errorf("outbox has %d events of the token, want 2 (created, suspended)", len(events))
		}
	})
}

func TestNotificationDuplicateConcurrent(t *testing.T) {
	forEachStore(t, func(t *testing.T, v *Vault, s Store, clock *testClock) {
		token := tokenizeTestCard(t, v, visaTest)
		n := newNotification(token, "visa-vts", "n-1", NotifySuspend, 1)

		const deliveries = 64
		results := make([]NotificationResult, deliveries)
		errs := make([]error, deliveries)
		var wg sync.WaitGroup
		for i := range deliveries {
			wg.Go(func() {
				results[i], errs[i] = v.ApplyNotification(context.Background(), n)
			})
		}
		wg.Wait()

		applied, duplicates := 0, 0
		for i := range deliveries {
			if errs[i] != nil {
				t.Fatalf("delivery %d: err = %v", i, errs[i])
			}
			switch results[i] {
			case NotificationApplied:
				applied++
			case NotificationDuplicate:
				duplicates++
			default:
				t.Errorf("delivery %d: result = %s, want applied or duplicate", i, results[i])
			}
		}
		if applied != 1 || duplicates != deliveries-1 {
			t.Errorf("%d applied and %d duplicates, want 1 and %d", applied, duplicates, deliveries-1)
		}
		if history := inspectTest(t, v, token).History; len(history) != 1 {
			t.Errorf("history has %d entries, want 1", len(history))
		}
		if events := tokenEvents(t, s, token); len(events) != 2 {
			t.Errorf("outbox has %d events of the token, want 2 (created, suspended)", len(events))
		}
	})
}

func TestNotificationOutOfOrder(t *testing.T) {
	forEachStore(t, func(t *testing.T, v *Vault, s Store, clock *testClock) {
		ctx := context.Background()
		token := tokenizeTestCard(t, v, visaTest)

		applyWant(t, v, newNotification(token, "issuer-1", "close", NotifyDelete, 2), NotificationApplied)
		applyWant(t, v, newNotification(token, "issuer-1", "suspend", NotifySuspend, 1), NotificationStale)

		info := inspectTest(t, v, token)
		if info.State != StateClosed {
			t.Errorf("state = %s, want closed", info.State)
		}
		if len(info.History) != 1 {
			t.Errorf("history has %d entries, want 1 (the close)", len(info.History))
		}
		if _, err := v.Detokenize(ctx, token); !errors.Is(err, ErrClosed) {
			t.Errorf("Detokenize err = %v, want ErrClosed", err)
		}
	})
}

func TestNotificationStaleSameSequence(t *testing.T) {
	forEachStore(t, func(t *testing.T, v *Vault, s Store, clock *testClock) {
		token := tokenizeTestCard(t, v, visaTest)

		applyWant(t, v, newNotification(token, "issuer-1", "a", NotifySuspend, 5), NotificationApplied)
		applyWant(t, v, newNotification(token, "issuer-1", "b", NotifyResume, 5), NotificationStale)
		// Sequences are per sender: another sender's lower number applies.
		applyWant(t, v, newNotification(token, "visa-vts", "a", NotifySuspend, 1), NotificationApplied)

		info := inspectTest(t, v, token)
		if info.State != StateSuspended {
			t.Errorf("state = %s, want suspended", info.State)
		}
		if len(info.History) != 2 {
			t.Errorf("history has %d entries, want 2", len(info.History))
		}
	})
}

func TestNotificationPartySuspensions(t *testing.T) {
	forEachStore(t, func(t *testing.T, v *Vault, s Store, clock *testClock) {
		ctx := context.Background()
		token := tokenizeTestCard(t, v, visaTest)

		applyWant(t, v, newNotification(token, "visa-vts", "1", NotifySuspend, 1), NotificationApplied)
		applyWant(t, v, newNotification(token, "issuer-1", "1", NotifySuspend, 1), NotificationApplied)
		applyWant(t, v, newNotification(token, "visa-vts", "2", NotifyResume, 2), NotificationApplied)

		if _, err := v.Detokenize(ctx, token); !errors.Is(err, ErrSuspended) {
			t.Errorf("Detokenize after one of two resumes: err = %v, want ErrSuspended", err)
		}
		info := inspectTest(t, v, token)
		if info.State != StateSuspended {
			t.Errorf("state after one of two resumes = %s, want suspended", info.State)
		}
		if last := info.History[len(info.History)-1]; last.Type != EventSuspensionLifted {
			t.Errorf("last change type = %s, want suspension_lifted", last.Type)
		}

		applyWant(t, v, newNotification(token, "issuer-1", "2", NotifyResume, 2), NotificationApplied)
		if _, err := v.Detokenize(ctx, token); err != nil {
			t.Errorf("Detokenize after both resumes: err = %v, want nil", err)
		}
		if state := inspectTest(t, v, token).State; state != StateActive {
			t.Errorf("state after both resumes = %s, want active", state)
		}
	})
}

func TestNotificationAndLocalSuspension(t *testing.T) {
	forEachStore(t, func(t *testing.T, v *Vault, s Store, clock *testClock) {
		ctx := context.Background()
		token := tokenizeTestCard(t, v, visaTest)

		if err := v.SuspendToken(ctx, token); err != nil {
			t.Fatalf("SuspendToken err = %v", err)
		}
		applyWant(t, v, newNotification(token, "visa-vts", "1", NotifySuspend, 1), NotificationApplied)

		err := v.ActivateToken(ctx, token)
		var still *StillSuspendedError
		if !errors.As(err, &still) {
			t.Fatalf("ActivateToken err = %v, want *StillSuspendedError", err)
		}
		if !errors.Is(err, ErrSuspended) {
			t.Errorf("ActivateToken err = %v, want it to wrap ErrSuspended", err)
		}
		if !slices.Equal(still.Parties, []string{"visa-vts"}) {
			t.Errorf("StillSuspendedError.Parties = %q, want [visa-vts]", still.Parties)
		}

		applyWant(t, v, newNotification(token, "visa-vts", "2", NotifyResume, 2), NotificationApplied)
		if _, err := v.Detokenize(ctx, token); err != nil {
			t.Errorf("Detokenize after both lifted: err = %v, want nil", err)
		}
	})
}

func TestNotificationResumeKeepsLocalSuspension(t *testing.T) {
	forEachStore(t, func(t *testing.T, v *Vault, s Store, clock *testClock) {
		ctx := context.Background()
		token := tokenizeTestCard(t, v, visaTest)
		if err := v.SuspendToken(ctx, token); err != nil {
			t.Fatalf("SuspendToken err = %v", err)
		}

		// The sender holds no suspension, so its resume lifts nothing.
		applyWant(t, v, newNotification(token, "visa-vts", "1", NotifyResume, 1), NotificationApplied)
		if _, err := v.Detokenize(ctx, token); !errors.Is(err, ErrSuspended) {
			t.Errorf("Detokenize err = %v, want ErrSuspended", err)
		}
	})
}

func TestNotificationUnchangedIsRecorded(t *testing.T) {
	forEachStore(t, func(t *testing.T, v *Vault, s Store, clock *testClock) {
		token := tokenizeTestCard(t, v, visaTest)

		applyWant(t, v, newNotification(token, "visa-vts", "resume", NotifyResume, 10), NotificationApplied)
		info := inspectTest(t, v, token)
		if len(info.History) != 1 {
			t.Fatalf("history has %d entries, want 1 for the resume that changed nothing", len(info.History))
		}
		got := info.History[0]
		if got.Type != EventNotificationRecorded || got.From != StateActive || got.To != StateActive || got.Actor != "visa-vts" {
			t.Errorf("history[0] = %s %s->%s by %q, want notification_recorded active->active by visa-vts", got.Type, got.From, got.To, got.Actor)
		}
		events := tokenEvents(t, s, token)
		if len(events) != 2 || events[1].Type != EventNotificationRecorded {
			t.Errorf("outbox events of the token = %v, want created then notification_recorded", events)
		}

		// Because the resume was recorded, an older suspend is stale and a
		// redelivery of the resume is a duplicate.
		applyWant(t, v, newNotification(token, "visa-vts", "suspend", NotifySuspend, 9), NotificationStale)
		applyWant(t, v, newNotification(token, "visa-vts", "resume", NotifyResume, 10), NotificationDuplicate)
		if state := inspectTest(t, v, token).State; state != StateActive {
			t.Errorf("state = %s, want active", state)
		}

		// A second suspend from a sender that holds one already is
		// recorded as notification_recorded suspended->suspended.
		applyWant(t, v, newNotification(token, "visa-vts", "s1", NotifySuspend, 11), NotificationApplied)
		applyWant(t, v, newNotification(token, "visa-vts", "s2", NotifySuspend, 12), NotificationApplied)
		info = inspectTest(t, v, token)
		last := info.History[len(info.History)-1]
		if last.Type != EventNotificationRecorded || last.From != StateSuspended || last.To != StateSuspended {
			t.Errorf("last change = %s %s->%s, want notification_recorded suspended->suspended", last.Type, last.From, last.To)
		}
	})
}

func TestNotificationClosedToken(t *testing.T) {
	forEachStore(t, func(t *testing.T, v *Vault, s Store, clock *testClock) {
		ctx := context.Background()
		token := tokenizeTestCard(t, v, visaTest)
		if err := v.CloseToken(ctx, token); err != nil {
			t.Fatalf("CloseToken err = %v", err)
		}

		for _, action := range []NotificationAction{NotifySuspend, NotifyResume, NotifyReissue} {
			n := newNotification(token, "visa-vts", "n-"+action.String(), action, 1)
			if action == NotifyReissue {
				n.CardNumber = reissuedVisa
			}
			_, err := v.ApplyNotification(ctx, n)
			if !errors.Is(err, ErrClosed) {
				t.Errorf("ApplyNotification(%s) of a closed token: err = %v, want ErrClosed", action, err)
			}
			var te *TransitionError
			if action != NotifyReissue && !errors.As(err, &te) {
				t.Errorf("ApplyNotification(%s) of a closed token: err = %v, want *TransitionError", action, err)
			}
		}
		applyWant(t, v, newNotification(token, "visa-vts", "delete", NotifyDelete, 2), NotificationApplied)

		if history := inspectTest(t, v, token).History; len(history) != 1 {
			t.Errorf("history has %d entries, want 1 (the close only)", len(history))
		}
	})
}

func TestNotificationDelete(t *testing.T) {
	forEachStore(t, func(t *testing.T, v *Vault, s Store, clock *testClock) {
		ctx := context.Background()
		token := tokenizeTestCard(t, v, visaTest)
		if err := v.SuspendToken(ctx, token); err != nil {
			t.Fatalf("SuspendToken err = %v", err)
		}

		applyWant(t, v, newNotification(token, "issuer-1", "del", NotifyDelete, 1), NotificationApplied)
		applyWant(t, v, newNotification(token, "issuer-1", "del", NotifyDelete, 1), NotificationDuplicate)

		info := inspectTest(t, v, token)
		if info.State != StateClosed {
			t.Errorf("state = %s, want closed", info.State)
		}
		last := info.History[len(info.History)-1]
		if last.Type != EventClosed || last.Actor != "issuer-1" {
			t.Errorf("last change = %s by %q, want closed by issuer-1", last.Type, last.Actor)
		}
		if tokens, err := v.TokensForCard(ctx, visaTest); err != nil || len(tokens) != 0 {
			t.Errorf("TokensForCard = %q, %v, want none", tokens, err)
		}
	})
}

func TestNotificationReissue(t *testing.T) {
	forEachStore(t, func(t *testing.T, v *Vault, s Store, clock *testClock) {
		ctx := context.Background()
		token := tokenizeTestCard(t, v, visaTest, ExpiresAfter(time.Hour))
		cardExpiry := time.Date(2030, 12, 31, 23, 59, 59, 0, time.UTC)

		n := newNotification(token, "visa-vts", "r-1", NotifyReissue, 1)
		n.CardNumber = "5555 5555 5555 4444"
		n.CardExpiry = cardExpiry
		n.Reason = "card reissued"
		applyWant(t, v, n, NotificationApplied)

		got, err := v.Detokenize(ctx, token)
		if err != nil || string(got) != mastercard {
			t.Errorf("Detokenize = %s, %v, want the new number", CardNumber{digits: ptr(string(got))}, err)
		}
		info := inspectTest(t, v, token)
		if info.Last4 != "4444" || info.Brand != BrandMastercard {
			t.Errorf("Last4, Brand = %s, %s, want 4444, mastercard", info.Last4, info.Brand)
		}
		if !info.Expires.Equal(cardExpiry) {
			t.Errorf("Expires = %s, want %s", info.Expires, cardExpiry)
		}
		if info.State != StateActive {
			t.Errorf("state = %s, want active", info.State)
		}
		if token[len(token)-4:] != "1111" {
			t.Errorf("token %s changed its digits", token)
		}
		last := info.History[len(info.History)-1]
		if last.Type != EventValueUpdated || last.From != StateActive || last.To != StateActive || last.Reason != "card reissued" {
			t.Errorf("last change = %s %s->%s %q, want value_updated active->active %q", last.Type, last.From, last.To, last.Reason, "card reissued")
		}
		events := tokenEvents(t, s, token)
		if ev := events[len(events)-1]; ev.Type != EventValueUpdated {
			t.Errorf("last outbox event type = %s, want value_updated", ev.Type)
		}

		if tokens, err := v.TokensForCard(ctx, mastercard); err != nil || !slices.Equal(tokens, []string{token}) {
			t.Errorf("TokensForCard(new number) = %q, %v, want [%s]", tokens, err, token)
		}
		if tokens, err := v.TokensForCard(ctx, visaTest); err != nil || len(tokens) != 0 {
			t.Errorf("TokensForCard(old number) = %q, %v, want none", tokens, err)
		}

		// The old expiry has passed, but the new one has not.
		clock.Advance(2 * time.Hour)
		if _, err := v.Detokenize(ctx, token); err != nil {
			t.Errorf("Detokenize after the old expiry: err = %v, want nil", err)
		}
	})
}

func ptr[T any](v T) *T { return &v }

func TestNotificationReissueKeepsStateAndExpiry(t *testing.T) {
	forEachStore(t, func(t *testing.T, v *Vault, s Store, clock *testClock) {
		ctx := context.Background()
		token := tokenizeTestCard(t, v, visaTest, ExpiresAfter(time.Hour))
		before := inspectTest(t, v, token)
		applyWant(t, v, newNotification(token, "visa-vts", "s", NotifySuspend, 1), NotificationApplied)

		n := newNotification(token, "visa-vts", "r", NotifyReissue, 2)
		n.CardNumber = reissuedVisa
		applyWant(t, v, n, NotificationApplied)

		info := inspectTest(t, v, token)
		if info.State != StateSuspended {
			t.Errorf("state = %s, want suspended", info.State)
		}
		if !info.Expires.Equal(before.Expires) {
			t.Errorf("Expires = %s, want the old %s", info.Expires, before.Expires)
		}
		if info.Last4 != "1881" {
			t.Errorf("Last4 = %s, want 1881", info.Last4)
		}

		applyWant(t, v, newNotification(token, "visa-vts", "a", NotifyResume, 3), NotificationApplied)
		got, err := v.Detokenize(ctx, token)
		if err != nil || string(got) != reissuedVisa {
			t.Errorf("Detokenize err = %v, or the value is not the new number", err)
		}
	})
}

func TestNotificationReissueFirstSix(t *testing.T) {
	forEachStore(t, func(t *testing.T, v *Vault, s Store, clock *testClock) {
		ctx := context.Background()
		token := tokenizeTestCard(t, v, visaTest, WithFormat(FormatCardFirstSix))

		n := newNotification(token, "visa-vts", "r", NotifyReissue, 1)
		n.CardNumber = mastercard
		applyWant(t, v, n, NotificationApplied)

		info := inspectTest(t, v, token)
		if info.First6 != "555555" || info.Last4 != "4444" {
			t.Errorf("First6, Last4 = %s, %s, want 555555, 4444", info.First6, info.Last4)
		}
		if token[:6] != "411111" {
			t.Errorf("token %s changed its first six digits", token)
		}

		n = newNotification(token, "visa-vts", "r-amex", NotifyReissue, 2)
		n.CardNumber = amex
		_, err := v.ApplyNotification(ctx, n)
		if !errors.Is(err, ErrInvalidOption) {
			t.Errorf("reissue with a 15-digit number for a 16-digit token: err = %v, want ErrInvalidOption", err)
		}
	})
}

func TestNotificationReissueOpaqueLength(t *testing.T) {
	forEachStore(t, func(t *testing.T, v *Vault, s Store, clock *testClock) {
		ctx := context.Background()
		token := tokenizeTestCard(t, v, visaTest, WithFormat(FormatOpaque))

		n := newNotification(token, "visa-vts", "r", NotifyReissue, 1)
		n.CardNumber = amex
		applyWant(t, v, n, NotificationApplied)

		got, err := v.Detokenize(ctx, token)
		if err != nil || string(got) != amex {
			t.Errorf("Detokenize err = %v, or the value is not the new number", err)
		}
	})
}

func TestNotificationReissueDeterministic(t *testing.T) {
	forEachStore(t, func(t *testing.T, v *Vault, s Store, clock *testClock) {
		token := tokenizeTestCard(t, v, visaTest, Deterministic("shop"))

		n := newNotification(token, "visa-vts", "r", NotifyReissue, 1)
		n.CardNumber = reissuedVisa
		applyWant(t, v, n, NotificationApplied)

		if again := tokenizeTestCard(t, v, reissuedVisa, Deterministic("shop")); again != token {
			t.Errorf("deterministic TokenizeCard(new number) = %s, want the reissued token %s", again, token)
		}
		if fresh := tokenizeTestCard(t, v, visaTest, Deterministic("shop")); fresh == token {
			t.Errorf("deterministic TokenizeCard(old number) = %s, the reissued token, want a new one", fresh)
		}
	})
}

func TestNotificationReissueDeterministicKeyTaken(t *testing.T) {
	forEachStore(t, func(t *testing.T, v *Vault, s Store, clock *testClock) {
		ctx := context.Background()
		token := tokenizeTestCard(t, v, visaTest, Deterministic("shop"))
		other := tokenizeTestCard(t, v, reissuedVisa, Deterministic("shop"))

		n := newNotification(token, "visa-vts", "r", NotifyReissue, 1)
		n.CardNumber = reissuedVisa
		applyWant(t, v, n, NotificationApplied)

		if again := tokenizeTestCard(t, v, reissuedVisa, Deterministic("shop")); again != other {
			t.Errorf("deterministic TokenizeCard(new number) = %s, want the token that held the key, %s", again, other)
		}
		rec, err := v.get(ctx, token)
		if err != nil {
			t.Fatalf("Get err = %v", err)
		}
		if rec.DeterministicKey != nil {
			t.Errorf("the reissued token kept a deterministic key, want none")
		}
		if !rec.Deterministic {
			t.Errorf("Deterministic = false, want it kept")
		}
		tokens, err := v.TokensForCard(ctx, reissuedVisa)
		if err != nil || !slices.Equal(tokens, sorted(token, other)) {
			t.Errorf("TokensForCard(new number) = %q, %v, want both tokens", tokens, err)
		}
	})
}

func sorted(s ...string) []string {
	slices.Sort(s)
	return s
}

func TestNotificationReissueRejected(t *testing.T) {
	forEachStore(t, func(t *testing.T, v *Vault, s Store, clock *testClock) {
		ctx := context.Background()
		card := tokenizeTestCard(t, v, visaTest)
		data, err := v.Tokenize(ctx, []byte("not a card"))
		if err != nil {
			t.Fatalf("Tokenize err = %v", err)
		}

		tests := []struct {
			name   string
			token  string
			card   string
			expiry time.Time
			want   error
		}{
			{"data token", data, reissuedVisa, time.Time{}, ErrInvalidOption},
			{"shorter number", card, amex, time.Time{}, ErrInvalidOption},
			{"fails Luhn", card, "4012888888881882", time.Time{}, ErrInvalidCardNumber},
			{"not a number", card, "4012-8888-8888-188x", time.Time{}, ErrInvalidCardNumber},
			{"no number", card, "", time.Time{}, ErrInvalidCardNumber},
			{"expiry passed", card, reissuedVisa, clock.Now().Add(-time.Second), ErrInvalidOption},
			{"expiry now", card, reissuedVisa, clock.Now(), ErrInvalidOption},
			{"expiry too late", card, reissuedVisa, time.Date(2300, 1, 1, 0, 0, 0, 0, time.UTC), ErrInvalidOption},
			{"unknown token", "tok_000000000000000000000000000000000000", reissuedVisa, time.Time{}, ErrNotFound},
		}
		for i, tt := range tests {
			n := newNotification(tt.token, "visa-vts", "r-"+strconv.Itoa(i), NotifyReissue, uint64(i+1))
			n.CardNumber, n.CardExpiry = tt.card, tt.expiry
			_, err := v.ApplyNotification(ctx, n)
			if !errors.Is(err, tt.want) {
				t.Errorf("%s: err = %v, want %v", tt.name, err, tt.want)
			}
			checkNoCardNumber(t, tt.name, err, tt.card)
		}

		got, err := v.Detokenize(ctx, card)
		if err != nil || string(got) != visaTest {
			t.Errorf("Detokenize after rejected reissues: err = %v, or the value changed", err)
		}
		if history := inspectTest(t, v, card).History; len(history) != 0 {
			t.Errorf("history has %d entries after rejected reissues, want 0", len(history))
		}
	})
}

func TestNotificationReissueAllowNonLuhn(t *testing.T) {
	forEachStore(t, func(t *testing.T, v *Vault, s Store, clock *testClock) {
		ctx := context.Background()
		token := tokenizeTestCard(t, v, visaTest)
		const nonLuhn = "4012888888881882"

		n := newNotification(token, "visa-vts", "r", NotifyReissue, 1)
		n.CardNumber = nonLuhn
		n.AllowNonLuhn = true
		applyWant(t, v, n, NotificationApplied)

		got, err := v.Detokenize(ctx, token)
		if err != nil || string(got) != nonLuhn {
			t.Errorf("Detokenize err = %v, or the value is not the new number", err)
		}
	})
}

func TestNotificationReissueExpiryRecorded(t *testing.T) {
	forEachStore(t, func(t *testing.T, v *Vault, s Store, clock *testClock) {
		ctx := context.Background()
		token := tokenizeTestCard(t, v, visaTest, ExpiresAfter(time.Hour))
		if _, err := v.update(ctx, token, func(rec *Record) (*Change, error) {
			rec.ExpiryRecorded = true
			return &Change{Type: EventExpired, From: rec.State, To: rec.State, Time: clock.Now()}, nil
		}); err != nil {
			t.Fatalf("Update err = %v", err)
		}

		n := newNotification(token, "visa-vts", "r", NotifyReissue, 1)
		n.CardNumber = reissuedVisa
		n.CardExpiry = clock.Now().Add(48 * time.Hour)
		applyWant(t, v, n, NotificationApplied)

		rec, err := v.get(ctx, token)
		if err != nil {
			t.Fatalf("Get err = %v", err)
		}
		if rec.ExpiryRecorded {
			t.Errorf("ExpiryRecorded = true after a reissue with a new expiry, want false")
		}
	})
}

func TestNotificationRecentTrimmed(t *testing.T) {
	forEachStore(t, func(t *testing.T, v *Vault, s Store, clock *testClock) {
		ctx := context.Background()
		token := tokenizeTestCard(t, v, visaTest)

		total := MaxRecentNotifications + 3
		for i := range total {
			action := NotifySuspend
			if i%2 == 1 {
				action = NotifyResume
			}
			applyWant(t, v, newNotification(token, "visa-vts", "n-"+strconv.Itoa(i), action, uint64(i+1)), NotificationApplied)
		}

		rec, err := v.get(ctx, token)
		if err != nil {
			t.Fatalf("Get err = %v", err)
		}
		if len(rec.Inbound.Recent) != MaxRecentNotifications {
			t.Errorf("Recent has %d ids, want %d", len(rec.Inbound.Recent), MaxRecentNotifications)
		}
		if want := []SenderPosition{{"visa-vts", uint64(total)}}; !slices.Equal(rec.Inbound.Senders, want) {
			t.Errorf("Senders = %v, want %v", rec.Inbound.Senders, want)
		}

		// The first id has left the recent list: its redelivery is stale
		// and, like a duplicate, changes nothing.
		applyWant(t, v, newNotification(token, "visa-vts", "n-0", NotifySuspend, 1), NotificationStale)
		newest := "n-" + strconv.Itoa(total-1)
		applyWant(t, v, newNotification(token, "visa-vts", newest, NotifyResume, uint64(total)), NotificationDuplicate)
		if history := inspectTest(t, v, token).History; len(history) != total {
			t.Errorf("history has %d entries, want %d", len(history), total)
		}
	})
}

func TestNotificationIDsPerSender(t *testing.T) {
	forEachStore(t, func(t *testing.T, v *Vault, s Store, clock *testClock) {
		token := tokenizeTestCard(t, v, visaTest)

		applyWant(t, v, newNotification(token, "visa-vts", "1", NotifySuspend, 1), NotificationApplied)
		applyWant(t, v, newNotification(token, "issuer-1", "1", NotifySuspend, 1), NotificationApplied)

		rec, err := v.get(context.Background(), token)
		if err != nil {
			t.Fatalf("Get err = %v", err)
		}
		if want := []string{"issuer-1", "visa-vts"}; !slices.Equal(rec.Suspenders, want) {
			t.Errorf("Suspenders = %q, want %q", rec.Suspenders, want)
		}
	})
}

func TestNotificationMaxSenders(t *testing.T) {
	forEachStore(t, func(t *testing.T, v *Vault, s Store, clock *testClock) {
		ctx := context.Background()
		token := tokenizeTestCard(t, v, visaTest)
		for i := range MaxSendersPerToken {
			applyWant(t, v, newNotification(token, "sender-"+strconv.Itoa(i), "1", NotifyResume, 1), NotificationApplied)
		}

		_, err := v.ApplyNotification(ctx, newNotification(token, "one-too-many", "1", NotifySuspend, 1))
		if !errors.Is(err, ErrInvalidOption) {
			t.Errorf("ApplyNotification from sender %d: err = %v, want ErrInvalidOption", MaxSendersPerToken+1, err)
		}
		// Known senders go on.
		applyWant(t, v, newNotification(token, "sender-0", "2", NotifySuspend, 2), NotificationApplied)
	})
}

func TestNotificationInvalid(t *testing.T) {
	v := newTestVault(t, NewMemoryStore(), newTestClock())
	ctx := context.Background()
	token := tokenizeTestCard(t, v, visaTest)
	valid := newNotification(token, "visa-vts", "id-1", NotifySuspend, 1)

	tests := []struct {
		name   string
		change func(n *Notification)
		want   error
	}{
		{"empty id", func(n *Notification) { n.ID = "" }, ErrInvalidOption},
		{"long id", func(n *Notification) { n.ID = strings.Repeat("a", MaxNotificationIDSize+1) }, ErrInvalidOption},
		{"control byte in id", func(n *Notification) { n.ID = "a\nb" }, ErrInvalidOption},
		{"non-ASCII id", func(n *Notification) { n.ID = "ä" }, ErrInvalidOption},
		{"empty sender", func(n *Notification) { n.Sender = "" }, ErrInvalidOption},
		{"long sender", func(n *Notification) { n.Sender = strings.Repeat("a", MaxSenderSize+1) }, ErrInvalidOption},
		{"uppercase sender", func(n *Notification) { n.Sender = "Visa" }, ErrInvalidOption},
		{"sender with colon", func(n *Notification) { n.Sender = "visa:vts" }, ErrInvalidOption},
		{"reserved sender", func(n *Notification) { n.Sender = LocalParty }, ErrInvalidOption},
		{"zero action", func(n *Notification) { n.Action = 0 }, ErrInvalidOption},
		{"unknown action", func(n *Notification) { n.Action = NotifyReissue + 1 }, ErrInvalidOption},
		{"zero sequence", func(n *Notification) { n.Sequence = 0 }, ErrInvalidOption},
		{"card number on suspend", func(n *Notification) { n.CardNumber = reissuedVisa }, ErrInvalidOption},
		{"card expiry on suspend", func(n *Notification) { n.CardExpiry = time.Now().Add(time.Hour) }, ErrInvalidOption},
		{"AllowNonLuhn on suspend", func(n *Notification) { n.AllowNonLuhn = true }, ErrInvalidOption},
		{"long reason", func(n *Notification) { n.Reason = strings.Repeat("x", MaxReasonSize+1) }, ErrInvalidOption},
		{"invalid UTF-8 reason", func(n *Notification) { n.Reason = "\xff" }, ErrInvalidOption},
		{"malformed token", func(n *Notification) { n.Token = "tok_x" }, ErrNotFound},
		{"card number as token", func(n *Notification) { n.Token = visaTest }, ErrNotFound},
		{"unknown token", func(n *Notification) { n.Token = "tok_000000000000000000000000000000000000" }, ErrNotFound},
	}
	for _, tt := range tests {
		n := valid
		tt.change(&n)
		got, err := v.ApplyNotification(ctx, n)
		if !errors.Is(err, tt.want) || got != 0 {
			t.Errorf("%s: ApplyNotification = %s, %v, want 0, %v", tt.name, got, err, tt.want)
		}
		checkNoCardNumber(t, tt.name, err, reissuedVisa)
	}

	if state := inspectTest(t, v, token).State; state != StateActive {
		t.Errorf("state after invalid notifications = %s, want active", state)
	}
	applyWant(t, v, valid, NotificationApplied)
}

func TestNotificationVaultClosed(t *testing.T) {
	v := newTestVault(t, NewMemoryStore(), newTestClock())
	token := tokenizeTestCard(t, v, visaTest)
	if err := v.Close(); err != nil {
		t.Fatalf("Close err = %v", err)
	}
	_, err := v.ApplyNotification(context.Background(), newNotification(token, "visa-vts", "1", NotifySuspend, 1))
	if !errors.Is(err, ErrVaultClosed) {
		t.Errorf("ApplyNotification after Close: err = %v, want ErrVaultClosed", err)
	}
}

// checkNoCardNumber fails the test if err mentions the digits of pan, in a
// row or split by separators.
func checkNoCardNumber(t *testing.T, name string, err error, pan string) {
	t.Helper()
	if err == nil {
		return
	}
	digits := strings.Map(func(r rune) rune {
		if r >= '0' && r <= '9' {
			return r
		}
		return -1
	}, pan)
	if len(digits) < 8 {
		return
	}
	msg := strings.Map(func(r rune) rune {
		if r >= '0' && r <= '9' {
			return r
		}
		return -1
	}, err.Error())
	if strings.Contains(msg, digits[len(digits)-8:]) || strings.Contains(msg, digits[:8]) {
		t.Errorf("%s: error %q contains the card number", name, err)
	}
}

func TestNotificationPrintsNoCardNumber(t *testing.T) {
	n := Notification{ID: "n-1", Sender: "visa-vts", Token: "tok_x", Action: NotifyReissue, Sequence: 7, CardNumber: reissuedVisa}

	for _, format := range []string{"%v", "%+v", "%#v", "%s", "%q", "%x", "%d"} {
		for _, value := range []any{n, &n, []Notification{n}, struct{ N Notification }{n}} {
			if got := fmt.Sprintf(format, value); strings.Contains(got, reissuedVisa) {
				t.Errorf("Sprintf(%q, %T) = %s, contains the card number", format, value, got)
			}
		}
	}

	var buf bytes.Buffer
	for _, h := range []slog.Handler{slog.NewJSONHandler(&buf, nil), slog.NewTextHandler(&buf, nil)} {
		slog.New(h).Info("notification", "value", n, "pointer", &n, "nil", (*Notification)(nil))
	}
	if strings.Contains(buf.String(), reissuedVisa) {
		t.Errorf("slog output contains the card number: %s", buf.String())
	}
	if !strings.Contains(buf.String(), "visa-vts") {
		t.Errorf("slog output lacks the sender: %s", buf.String())
	}
}

func TestNotificationActionStrings(t *testing.T) {
	for a := NotifySuspend; a <= NotifyReissue; a++ {
		got, err := ParseNotificationAction(a.String())
		if err != nil || got != a {
			t.Errorf("ParseNotificationAction(%q) = %v, %v, want %v", a.String(), got, err, a)
		}
	}
	for _, s := range []string{"", "Suspend", "close", "NotificationAction(0)"} {
		if _, err := ParseNotificationAction(s); !errors.Is(err, ErrInvalidOption) {
			t.Errorf("ParseNotificationAction(%q) err = %v, want ErrInvalidOption", s, err)
		}
	}
	if s := NotificationAction(0).String(); s != "NotificationAction(0)" {
		t.Errorf("NotificationAction(0).String() = %q", s)
	}
	results := map[NotificationResult]string{
		NotificationApplied: "applied", NotificationDuplicate: "duplicate", NotificationStale: "stale", 0: "NotificationResult(0)",
	}
	for r, want := range results {
		if got := r.String(); got != want {
			t.Errorf("NotificationResult(%d).String() = %q, want %q", uint8(r), got, want)
		}
	}
}

func TestValidateSender(t *testing.T) {
	for _, name := range []string{"visa-vts", "issuer-123", "a", "mc.mdes_2", strings.Repeat("z", MaxSenderSize)} {
		if err := ValidateSender(name); err != nil {
			t.Errorf("ValidateSender(%q) err = %v, want nil", name, err)
		}
	}
	for _, name := range []string{"", "vault", "Visa", "visa vts", "visa/vts", "visa:vts", strings.Repeat("z", MaxSenderSize+1)} {
		if err := ValidateSender(name); !errors.Is(err, ErrInvalidOption) {
			t.Errorf("ValidateSender(%q) err = %v, want ErrInvalidOption", name, err)
		}
	}
}
