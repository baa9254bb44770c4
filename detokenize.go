package tokenvault

import (
	"context"
	"fmt"
	"time"
)

// Detokenize returns the value of an active, unexpired token: the digits of a
// card number, or the exact bytes of other data. It returns ErrSuspended,
// ErrClosed or ErrExpired for a token in that condition, and ErrNotFound,
// identical in every case, for a token that is unknown, malformed or altered.
func (v *Vault) Detokenize(ctx context.Context, token string) ([]byte, error) {
	_, value, err := v.detokenize(ctx, token)
	return value, err
}

// DetokenizeCard is Detokenize for a card token, returning a CardNumber that
// prints masked. It fails for a token of other data.
func (v *Vault) DetokenizeCard(ctx context.Context, token string) (CardNumber, error) {
	rec, value, err := v.detokenize(ctx, token)
	if err != nil {
		return CardNumber{}, err
	}
	if rec.Kind != KindCard {
		return CardNumber{}, fmt.Errorf("tokenvault: token %s stands for %s, not a card number", token, rec.Kind)
	}
	digits := string(value)
	return CardNumber{digits: &digits}, nil
}

// detokenize does one store read and one decryption.
func (v *Vault) detokenize(ctx context.Context, token string) (*Record, []byte, error) {
	done, err := v.enter()
	if err != nil {
		return nil, nil, err
	}
	defer done()
	return v.detokenizeEntered(ctx, token)
}

// detokenizeEntered is detokenize for a caller that has entered the vault.
func (v *Vault) detokenizeEntered(ctx context.Context, token string) (*Record, []byte, error) {
	if !plausibleToken(token) {
		return nil, nil, ErrNotFound
	}
	rec, err := v.get(ctx, token)
	if err != nil {
		return nil, nil, err
	}
	if err := usable(rec, v.now()); err != nil {
		return nil, nil, err
	}

	payload, err := v.keys.decrypt(rec.KeyID, rec.Ciphertext)
	if err != nil {
		return nil, nil, fmt.Errorf("token %s: %w", token, err)
	}
	value, err := unseal(token, payload)
	if err != nil {
		return nil, nil, fmt.Errorf("token %s: %w", token, err)
	}
	return rec, value, nil
}

// usable returns nil if rec can be detokenized at now, or the sentinel that
// gives the reason. A closed token reports closed even if it also expired.
func usable(rec *Record, now time.Time) error {
	switch {
	case rec.State == StateClosed:
		return ErrClosed
	case rec.State == StateSuspended:
		return ErrSuspended
	case rec.State != StateActive:
		return fmt.Errorf("token %s: state %s: %w", rec.Token, rec.State, ErrIntegrity)
	case rec.Expired(now):
		return ErrExpired
	default:
		return nil
	}
}

// TokenInfo is the result of Inspect: a token's state, metadata and history,
// never its value.
type TokenInfo struct {
	Token    string
	State    State
	Expired  bool // the expiry time has passed
	Revision uint64
	Metadata
	Suspenders []string // parties that hold a suspension; see Record.Suspenders
	History    []Change // oldest first
}

// Inspect returns the state, metadata and history of token without decrypting
// anything. A closed token is still found. Unknown or malformed tokens return
// ErrNotFound.
func (v *Vault) Inspect(ctx context.Context, token string) (*TokenInfo, error) {
	done, err := v.enter()
	if err != nil {
		return nil, err
	}
	defer done()

	if !plausibleToken(token) {
		return nil, ErrNotFound
	}
	rec, history, err := v.history(ctx, token)
	if err != nil {
		return nil, err
	}

	return &TokenInfo{
		Token:      rec.Token,
		State:      rec.State,
		Expired:    rec.Expired(v.now()),
		Revision:   rec.Revision,
		Metadata:   rec.Metadata,
		Suspenders: rec.Suspenders,
		History:    history,
	}, nil
}

// TokensForCard returns the tokens of a card number that are not closed, in
// every scope and format, found by its keyed fingerprint without decrypting
// anything. Suspended and expired tokens are listed, and Inspect returns
// their state. The number is normalized as by ParseCardNumber,
// except that the Luhn check is skipped so that numbers tokenized with
// AllowNonLuhn are found.
func (v *Vault) TokensForCard(ctx context.Context, pan string) ([]string, error) {
	card, err := parseCardNumber(pan, false)
	if err != nil {
		return nil, err
	}
	return v.tokensFor(ctx, KindCard, []byte(card.Digits()))
}

// TokensForData returns the live tokens of data, as TokensForCard does for a
// card number.
func (v *Vault) TokensForData(ctx context.Context, data []byte) ([]string, error) {
	if len(data) == 0 || len(data) > MaxDataSize {
		return nil, invalid(ErrInvalidData, "data is %d bytes, want 1 to %d", len(data), MaxDataSize)
	}
	return v.tokensFor(ctx, KindData, data)
}

func (v *Vault) tokensFor(ctx context.Context, kind Kind, value []byte) ([]string, error) {
	done, err := v.enter()
	if err != nil {
		return nil, err
	}
	defer done()

	return v.store.FindByFingerprint(ctx, v.keys.fingerprint(kind, value))
}
