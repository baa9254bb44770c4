package tokenvault

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"
)

// ApplyNotification applies n, an inbound notification from another party,
// to its token and reports whether it was new. The check and the change are
// one Store.Update, so the notification's id and the sender's sequence
// number are stored in the transaction of the change they cause, and
// concurrent deliveries of one notification apply it once:
//
//   - If the token's last MaxRecentNotifications applied notifications
//     include one with n's sender and id, the result is
//     NotificationDuplicate.
//   - Otherwise, if n.Sequence is not greater than the sequence number of
//     the sender's last notification applied to the token, the result is
//     NotificationStale. A duplicate whose id has left the recent list is
//     reported as stale and changes nothing either.
//   - Otherwise n is applied and the result is NotificationApplied.
//
// Neither a duplicate nor a stale notification writes anything.
//
// Suspend adds the sender's own suspension, as SuspendToken does for this
// vault's. Resume lifts only the sender's suspension, and the token stays
// suspended while other parties hold theirs, with the result still
// NotificationApplied. Delete closes the token, even while parties hold
// suspensions.
// Reissue is described below. The token's history records the sender as the
// actor and n.Reason as the reason.
//
// An applied notification that changes no state, such as a resume from a
// sender that holds no suspension, is still stored, so that an older
// notification of the sender that arrives later is stale. Because a Store
// writes only a change, the token's history and the outbox then get an
// entry of type EventNotificationRecorded whose From and To are both the
// token's state.
//
// A closed token stays closed. A delete of a closed token is reported as
// applied and writes nothing. A suspend or resume returns a
// *TransitionError and a reissue another error, both wrapping ErrClosed.
// Duplicate and stale notifications are reported as such before that check.
//
// Reissue replaces the card number of a card token, active or suspended,
// without changing its state, and records EventValueUpdated. The new number
// is encrypted under the primary key, and the brand, the last four digits
// (and the first six with FormatCardFirstSix), the fingerprint and the
// expiry (when n.CardExpiry is set) become the new card's. A deterministic
// token gets the deterministic key of the new number in its scope and
// format, unless another token holds that key already: then this token keeps
// none, and Deterministic tokenization of the new number returns the other
// token. A card-shaped token keeps its digits, so its last four (and first
// six) digits then differ from the card's, which Inspect shows. Because
// those formats promise the card's length, a reissue whose number has
// another length than the card-shaped token is rejected.
//
// Errors wrap ErrInvalidOption or ErrInvalidCardNumber for an invalid field
// and never contain the card number. An unknown token returns ErrNotFound.
func (v *Vault) ApplyNotification(ctx context.Context, n Notification) (NotificationResult, error) {
	card, err := n.validate()
	if err != nil {
		return 0, err
	}

	done, err := v.enter()
	if err != nil {
		return 0, err
	}
	defer done()

	if !plausibleToken(n.Token) {
		return 0, ErrNotFound
	}
	now := v.now()
	var value *reissueValue
	if n.Action == NotifyReissue {
		value, err = v.prepareReissue(ctx, n.Token, card, n.CardExpiry, now)
		if err != nil {
			return 0, err
		}
	}

	result, wrote, err := v.updateForNotification(ctx, &n, value, now)
	if errors.Is(err, ErrDeterministicKeyExists) && value != nil && value.deterministicKey != nil {
		// Another token already has the new number's deterministic key, so
		// this one goes without.
		value.deterministicKey = nil
		result, wrote, err = v.updateForNotification(ctx, &n, value, now)
	}
	if err != nil {
		return 0, err
	}

	if wrote {
		v.notifyWritten()
	}
	return result, nil
}

// updateForNotification runs applyNotification in one Store.Update and
// reports whether the store wrote a change.
func (v *Vault) updateForNotification(ctx context.Context, n *Notification, value *reissueValue, now time.Time) (result NotificationResult, wrote bool, err error) {
	_, err = v.update(ctx, n.Token, func(rec *Record) (*Change, error) {
		// The store may call this function more than once, so it sets the
		// results on every call and changes nothing else outside rec.
		r, change, err := applyNotification(rec, n, value, now)
		result, wrote = r, change != nil
		return change, err
	})
	if err != nil {
		return 0, false, err
	}
	return result, wrote, nil
}

// applyNotification decides what n does to rec, changes rec accordingly and
// returns the result and the history entry. The entry is nil when nothing
// must be written. value is the prepared reissue, nil for other actions.
func applyNotification(rec *Record, n *Notification, value *reissueValue, now time.Time) (NotificationResult, *Change, error) {
	key := recentKey(n.Sender, n.ID)
	if slices.Contains(rec.Inbound.Recent, key) {
		return NotificationDuplicate, nil, nil
	}
	i, known := slices.BinarySearchFunc(rec.Inbound.Senders, n.Sender, compareSender)
	if known && n.Sequence <= rec.Inbound.Senders[i].Sequence {
		return NotificationStale, nil, nil
	}
	if rec.State == StateClosed && n.Action == NotifyDelete {
		// Nothing can change a closed token again, so its inbound state
		// no longer matters.
		return NotificationApplied, nil, nil
	}
	if !known && len(rec.Inbound.Senders) >= MaxSendersPerToken {
		return 0, nil, invalid(ErrInvalidOption, "the token has notifications from %d senders already, the maximum", MaxSendersPerToken)
	}

	entry := Change{Reason: n.Reason, Actor: n.Sender}
	var change *Change
	var err error
	switch n.Action {
	case NotifySuspend:
		change, err = applyTransition(rec, StateSuspended, n.Sender, entry, now)
	case NotifyResume:
		change, err = applyTransition(rec, StateActive, n.Sender, entry, now)
	case NotifyDelete:
		change, err = applyTransition(rec, StateClosed, n.Sender, entry, now)
	case NotifyReissue:
		change, err = value.apply(rec, entry, now)
	default:
		err = invalid(ErrInvalidOption, "unknown notification action %s", n.Action)
	}
	if err != nil {
		return 0, nil, err
	}
	if change == nil {
		change = unchangedState(rec, entry, now)
	}

	rec.Inbound.Recent = append(rec.Inbound.Recent, key)
	if extra := len(rec.Inbound.Recent) - MaxRecentNotifications; extra > 0 {
		rec.Inbound.Recent = slices.Delete(rec.Inbound.Recent, 0, extra)
	}
	if known {
		rec.Inbound.Senders[i].Sequence = n.Sequence
	} else {
		rec.Inbound.Senders = slices.Insert(rec.Inbound.Senders, i, SenderPosition{Sender: n.Sender, Sequence: n.Sequence})
	}
	return NotificationApplied, change, nil
}

func compareSender(pos SenderPosition, sender string) int {
	return strings.Compare(pos.Sender, sender)
}

// unchangedState returns the history entry of a notification that changes
// no state: EventNotificationRecorded, with From and To the current state.
// rec is active or suspended.
func unchangedState(rec *Record, change Change, now time.Time) *Change {
	change.Type = EventNotificationRecorded
	change.From = rec.State
	change.To = rec.State
	change.Time = now
	rec.Updated = now
	return &change
}

// reissueValue is a new card number prepared for a token outside the store's
// transaction: encrypted, with its metadata and index entries.
type reissueValue struct {
	keyID            KeyID
	ciphertext       []byte
	fingerprint      []byte
	deterministicKey []byte // nil unless the token is deterministic
	brand            Brand
	first6           string
	last4            string
	expires          time.Time // zero to keep the token's expiry
}

// prepareReissue checks that the card number card fits token and encrypts it
// for the token. It reads the token's kind, format and scope, which never
// change after Create, so they still hold inside the later transaction.
func (v *Vault) prepareReissue(ctx context.Context, token string, card CardNumber, expiry time.Time, now time.Time) (*reissueValue, error) {
	var expires time.Time
	if !expiry.IsZero() {
		expires = expiry.Round(0).UTC()
		if !expires.After(now) {
			return nil, invalid(ErrInvalidOption, "card expiry is not in the future")
		}
		if expires.After(maxExpiry) {
			return nil, invalid(ErrInvalidOption, "card expiry is after %s, the latest a vault can store", maxExpiry.Format(time.RFC3339))
		}
	}

	rec, err := v.get(ctx, token)
	if err != nil {
		return nil, err
	}
	if rec.Kind != KindCard {
		return nil, invalid(ErrInvalidOption, "reissue needs a card token, and this token stands for %s", rec.Kind)
	}
	digits := card.Digits()
	if rec.Format != FormatOpaque && len(digits) != len(token) {
		return nil, invalid(ErrInvalidOption, "the new card number has %d digits, but the %s token has %d: close the token and tokenize the new number instead",
			len(digits), rec.Format, len(token))
	}

	keyID, ciphertext, err := v.keys.encrypt(seal(token, []byte(digits)), now)
	if err != nil {
		return nil, err
	}
	value := &reissueValue{
		keyID:       keyID,
		ciphertext:  ciphertext,
		fingerprint: v.keys.fingerprint(KindCard, []byte(digits)),
		brand:       brandOf(digits),
		last4:       digits[len(digits)-4:],
		expires:     expires,
	}
	if rec.Format == FormatCardFirstSix {
		value.first6 = digits[:6]
	}
	if rec.Deterministic {
		value.deterministicKey = v.keys.deterministicKey(value.fingerprint, rec.Scope, rec.Format)
	}
	return value, nil
}

// apply puts the new card number into rec, which must not be closed, and
// returns the history entry.
func (r *reissueValue) apply(rec *Record, change Change, now time.Time) (*Change, error) {
	if rec.State == StateClosed {
		return nil, fmt.Errorf("tokenvault: cannot reissue token %s: %w: tokenize the new number instead", rec.Token, ErrClosed)
	}

	rec.KeyID = r.keyID
	rec.Ciphertext = r.ciphertext
	rec.Fingerprint = r.fingerprint
	rec.DeterministicKey = r.deterministicKey
	rec.Brand = r.brand
	rec.Last4 = r.last4
	if rec.Format == FormatCardFirstSix {
		rec.First6 = r.first6
	}
	if !r.expires.IsZero() {
		rec.Expires = r.expires
		// The new expiry has not passed, so its EventExpired is yet to be
		// written.
		rec.ExpiryRecorded = false
	}
	rec.Updated = now

	change.Type = EventValueUpdated
	change.From = rec.State
	change.To = rec.State
	change.Time = now
	return &change, nil
}
