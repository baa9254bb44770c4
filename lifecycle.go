package tokenvault

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"
	"unicode/utf8"
)

// State is the lifecycle state of a token. The zero value is invalid, so a
// record that was never given a state cannot pass for an active one.
type State uint8

const (
	// StateActive tokens detokenize until they expire.
	StateActive State = iota + 1
	// StateSuspended tokens keep their value but do not detokenize until they
	// are activated again.
	StateSuspended
	// StateClosed tokens have lost their value for good. The token remains as
	// a tombstone so that it is never issued again.
	StateClosed
)

func (s State) String() string {
	switch s {
	case StateActive:
		return "active"
	case StateSuspended:
		return "suspended"
	case StateClosed:
		return "closed"
	default:
		return fmt.Sprintf("State(%d)", uint8(s))
	}
}

// Valid reports whether s is one of the defined states.
func (s State) Valid() bool {
	return s >= StateActive && s <= StateClosed
}

// ParseState returns the state named by s, as printed by State.String.
func ParseState(s string) (State, error) {
	for st := StateActive; st <= StateClosed; st++ {
		if st.String() == s {
			return st, nil
		}
	}
	return 0, fmt.Errorf("tokenvault: unknown state %q: want active, suspended or closed", s)
}

// Change is one entry of a token's history: a lifecycle transition with the
// reason and the actor the caller gave. It never holds the token's value.
type Change struct {
	Revision uint64    // the record's revision after the change, set by the Store
	Type     EventType // the kind of change, which the outbox event gets too
	From     State     // state before the change
	To       State     // state after the change
	Reason   string    // free text from the caller, may be empty
	Actor    string    // who requested the change, may be empty
	Time     time.Time // when the change committed, from the vault's clock
}

// Limits on the text a caller attaches to a change.
const (
	MaxReasonSize = 1024 // bytes of Change.Reason
	MaxActorSize  = 256  // bytes of Change.Actor
)

// ChangeOption annotates a lifecycle change.
type ChangeOption func(*Change)

// WithReason records why the change was made, such as "card reported lost".
func WithReason(reason string) ChangeOption {
	return func(c *Change) { c.Reason = reason }
}

// WithActor records who requested the change, such as a user or service id.
func WithActor(actor string) ChangeOption {
	return func(c *Change) { c.Actor = actor }
}

// LocalParty is the party of SuspendToken and ActivateToken, next to the
// senders of inbound notifications, in Record.Suspenders.
const LocalParty = "vault"

// SuspendToken moves an active token to suspended, so that Detokenize returns
// ErrSuspended until ActivateToken. Suspending a token that this vault has
// already suspended succeeds and records nothing. Suspending one that only
// other parties (senders of inbound notifications) hold adds this vault's
// suspension. A closed token returns a *TransitionError that wraps ErrClosed;
// an unknown token returns ErrNotFound.
func (v *Vault) SuspendToken(ctx context.Context, token string, opts ...ChangeOption) error {
	return v.transition(ctx, token, StateSuspended, LocalParty, opts)
}

// ActivateToken lifts this vault's suspension of a token. The token becomes
// active unless other parties still hold their own suspensions: then it stays
// suspended and ActivateToken returns a *StillSuspendedError, which wraps
// ErrSuspended and names them. Activating an active token succeeds and
// records nothing. Other errors are as for SuspendToken.
func (v *Vault) ActivateToken(ctx context.Context, token string, opts ...ChangeOption) error {
	return v.transition(ctx, token, StateActive, LocalParty, opts)
}

// CloseToken moves an active or suspended token to closed, which is final
// whoever holds suspensions: the ciphertext is deleted from the record
// (crypto-shredding), the fingerprint is removed, and the token remains as a
// tombstone that Detokenize answers with ErrClosed. Closing a closed token
// succeeds and records nothing. A store may keep the old copy in free space
// until it is reused; Compact removes it.
func (v *Vault) CloseToken(ctx context.Context, token string, opts ...ChangeOption) error {
	return v.transition(ctx, token, StateClosed, LocalParty, opts)
}

// StillSuspendedError is returned by ActivateToken when the vault's own
// suspension is lifted but other parties still hold theirs.
type StillSuspendedError struct {
	Token   string
	Parties []string // the parties that still hold a suspension, sorted
}

func (e *StillSuspendedError) Error() string {
	return fmt.Sprintf("tokenvault: token %s stays suspended by %s", e.Token, strings.Join(e.Parties, ", "))
}

// Unwrap returns ErrSuspended: the token cannot be detokenized.
func (e *StillSuspendedError) Unwrap() error { return ErrSuspended }

// transition applies a lifecycle change as one compare-and-set in the store:
// the decision is made on the record read inside the store's transaction, so
// concurrent changes serialize and the history stays a valid path.
func (v *Vault) transition(ctx context.Context, token string, to State, party string, opts []ChangeOption) error {
	var change Change
	for _, opt := range opts {
		opt(&change)
	}
	if err := validateChange(&change); err != nil {
		return err
	}

	done, err := v.enter()
	if err != nil {
		return err
	}
	defer done()

	if !plausibleToken(token) {
		return ErrNotFound
	}
	rec, err := v.update(ctx, token, func(rec *Record) (*Change, error) {
		return applyTransition(rec, to, party, change, v.now())
	})
	if err != nil {
		return err
	}
	v.notifyWritten()
	if to == StateActive && rec.State == StateSuspended {
		return &StillSuspendedError{Token: token, Parties: rec.Suspenders}
	}
	return nil
}

// applyTransition moves rec toward the state to on behalf of party and
// returns the history entry, or nil when nothing changes. A suspension is
// held per party: rec becomes active only when no party holds one. It must
// stay free of side effects, because a store may call it more than once.
func applyTransition(rec *Record, to State, party string, change Change, now time.Time) (*Change, error) {
	from := rec.State
	if from == StateClosed {
		if to == StateClosed {
			return nil, nil
		}
		return nil, &TransitionError{Token: rec.Token, From: from, To: to}
	}
	if from == StateSuspended && len(rec.Suspenders) == 0 {
		// A record suspended before suspensions were kept per party.
		rec.Suspenders = []string{LocalParty}
	}

	switch to {
	case StateSuspended:
		added := false
		rec.Suspenders, added = insertSorted(rec.Suspenders, party)
		if !added {
			return nil, nil
		}
		change.Type = EventSuspended

	case StateActive:
		removed := false
		rec.Suspenders, removed = removeSorted(rec.Suspenders, party)
		if !removed {
			return nil, nil
		}
		if len(rec.Suspenders) > 0 {
			to = StateSuspended
			change.Type = EventSuspensionLifted
		} else {
			change.Type = EventActivated
		}

	case StateClosed:
		rec.Suspenders = nil
		rec.Ciphertext = nil
		rec.KeyID = ""
		rec.Fingerprint = nil
		rec.DeterministicKey = nil
		change.Type = EventClosed

	default:
		return nil, fmt.Errorf("tokenvault: invalid target state %s", to)
	}

	rec.State = to
	rec.Updated = now
	change.From = from
	change.To = to
	change.Time = now
	return &change, nil
}

// insertSorted adds s to the sorted list, reporting whether it was absent.
func insertSorted(list []string, s string) ([]string, bool) {
	i, found := slices.BinarySearch(list, s)
	if found {
		return list, false
	}
	return slices.Insert(list, i, s), true
}

// removeSorted removes s from the sorted list, reporting whether it was there.
func removeSorted(list []string, s string) ([]string, bool) {
	i, found := slices.BinarySearch(list, s)
	if !found {
		return list, false
	}
	list = slices.Delete(list, i, i+1)
	if len(list) == 0 {
		list = nil
	}
	return list, true
}

func validateChange(c *Change) error {
	if len(c.Reason) > MaxReasonSize {
		return invalid(ErrInvalidOption, "reason is %d bytes, the maximum is %d", len(c.Reason), MaxReasonSize)
	}
	if len(c.Actor) > MaxActorSize {
		return invalid(ErrInvalidOption, "actor is %d bytes, the maximum is %d", len(c.Actor), MaxActorSize)
	}
	if !utf8.ValidString(c.Reason) || !utf8.ValidString(c.Actor) {
		return invalid(ErrInvalidOption, "reason and actor must be valid UTF-8")
	}
	if ContainsCardNumber(c.Reason) || ContainsCardNumber(c.Actor) {
		return invalid(ErrInvalidOption, "reason or actor contains what looks like a card number, which history would keep in the clear")
	}
	return nil
}
