package tokenvault

import (
	"context"
	"fmt"
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

// SuspendToken moves an active token to suspended, so that Detokenize returns
// ErrSuspended until ActivateToken. Suspending a suspended token succeeds and
// records nothing. A closed token returns a *TransitionError that wraps
// ErrClosed; an unknown token returns ErrNotFound.
func (v *Vault) SuspendToken(ctx context.Context, token string, opts ...ChangeOption) error {
	return v.transition(ctx, token, StateSuspended, opts)
}

// ActivateToken moves a suspended token back to active. Activating an active
// token succeeds and records nothing. Errors are as for SuspendToken.
func (v *Vault) ActivateToken(ctx context.Context, token string, opts ...ChangeOption) error {
	return v.transition(ctx, token, StateActive, opts)
}

// CloseToken moves an active or suspended token to closed, which is final: the
// ciphertext is deleted from the record (crypto-shredding), the fingerprint is
// removed, and the token remains as a tombstone that Detokenize answers with
// ErrClosed. Closing a closed token succeeds and records nothing. A store may
// keep the old copy in free space until it is reused; Compact removes it.
func (v *Vault) CloseToken(ctx context.Context, token string, opts ...ChangeOption) error {
	return v.transition(ctx, token, StateClosed, opts)
}

// transition applies a lifecycle change as one compare-and-set in the store:
// the decision is made on the record read inside the store's transaction, so
// concurrent changes serialize and the history stays a valid path.
func (v *Vault) transition(ctx context.Context, token string, to State, opts []ChangeOption) error {
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
	_, err = v.store.Update(ctx, token, func(rec *Record) (*Change, error) {
		return applyTransition(rec, to, change, v.now())
	})
	return err
}

// applyTransition changes rec to the state to and returns the history entry,
// or nil when rec is already in that state. It must stay free of side
// effects, because a store may call it more than once.
func applyTransition(rec *Record, to State, change Change, now time.Time) (*Change, error) {
	from := rec.State
	if from == to {
		return nil, nil
	}
	if from == StateClosed {
		return nil, &TransitionError{Token: rec.Token, From: from, To: to}
	}

	rec.State = to
	rec.Updated = now
	if to == StateClosed {
		rec.Ciphertext = nil
		rec.KeyID = ""
		rec.Fingerprint = nil
		rec.DeterministicKey = nil
	}

	change.From = from
	change.To = to
	change.Time = now
	return &change, nil
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
	return nil
}
