package tokenvault

import (
	"fmt"
	"log/slog"
	"strings"
	"time"
)

// NotificationAction is the change that an inbound notification requests for
// a token. The zero value is invalid.
type NotificationAction uint8

const (
	// NotifySuspend adds the sender's own suspension of the token.
	NotifySuspend NotificationAction = iota + 1
	// NotifyResume lifts the sender's suspension. The token becomes active
	// only when no other party, this vault included, holds one.
	NotifyResume
	// NotifyDelete closes the token, as CloseToken does, even while parties
	// hold suspensions.
	NotifyDelete
	// NotifyReissue replaces the card number of a card token with
	// Notification.CardNumber, for example after the card was reissued.
	NotifyReissue
)

var notificationActionNames = [...]string{
	NotifySuspend: "suspend",
	NotifyResume:  "resume",
	NotifyDelete:  "delete",
	NotifyReissue: "reissue",
}

func (a NotificationAction) String() string {
	if a.Valid() {
		return notificationActionNames[a]
	}
	return fmt.Sprintf("NotificationAction(%d)", uint8(a))
}

// Valid reports whether a is one of the defined actions.
func (a NotificationAction) Valid() bool {
	return a >= NotifySuspend && int(a) < len(notificationActionNames)
}

// ParseNotificationAction returns the action named by s, as printed by
// NotificationAction.String.
func ParseNotificationAction(s string) (NotificationAction, error) {
	for a := NotifySuspend; a.Valid(); a++ {
		if notificationActionNames[a] == s {
			return a, nil
		}
	}
	return 0, invalid(ErrInvalidOption, "unknown notification action %q: want suspend, resume, delete or reissue", s)
}

// NotificationResult is the outcome of ApplyNotification. The zero value is
// invalid.
type NotificationResult uint8

const (
	// NotificationApplied: the notification was new, and it is now part of
	// the token's state, even when it changed nothing else.
	NotificationApplied NotificationResult = iota + 1
	// NotificationDuplicate: a notification with the same sender and id was
	// applied before, so nothing was written.
	NotificationDuplicate
	// NotificationStale: the sender's notification with this or a higher
	// sequence number was applied before, so nothing was written.
	NotificationStale
)

func (r NotificationResult) String() string {
	switch r {
	case NotificationApplied:
		return "applied"
	case NotificationDuplicate:
		return "duplicate"
	case NotificationStale:
		return "stale"
	default:
		return fmt.Sprintf("NotificationResult(%d)", uint8(r))
	}
}

// Limits on the fields of a Notification and on the senders of one token.
const (
	MaxNotificationIDSize = 128 // bytes of Notification.ID
	MaxSenderSize         = 64  // bytes of Notification.Sender

	// MaxSendersPerToken bounds the senders whose position a token keeps
	// in Record.Inbound, which keeps every record small.
	MaxSendersPerToken = 64
)

// Notification is a change to a token that another party, such as a card
// network's token service or an issuer, sends to the vault: the card was
// lost (suspend), found (resume), cancelled (delete) or reissued under a new
// number (reissue). Vault.ApplyNotification applies it.
//
// Security guarantees: a Notification holds the new card number of a
// reissue, so it prints and logs without it, whatever the verb, logger or
// encoder.
type Notification struct {
	// ID is the sender's id for the notification, which makes a redelivery
	// a duplicate: 1 to MaxNotificationIDSize bytes of printable ASCII,
	// space included. Ids of different senders never collide.
	ID string
	// Sender names the party that sent the notification, such as
	// "visa-vts" or "issuer-123": see ValidateSender. Its suspension is its
	// own, and the token's history records it as the actor.
	Sender string
	// Token is the token the notification is about.
	Token  string
	Action NotificationAction
	// Sequence orders the sender's notifications about one token, such as
	// a counter or the time in Unix nanoseconds: a notification applies
	// only if its Sequence is greater than that of every notification of
	// the sender applied to the token before. It must be positive.
	Sequence uint64

	// CardNumber is the new card number of a reissue, normalized as
	// TokenizeCard does, and must be empty for other actions.
	CardNumber string
	// AllowNonLuhn accepts a CardNumber that fails the Luhn check, as the
	// option of the same name does for TokenizeCard.
	AllowNonLuhn bool
	// CardExpiry, optional and for a reissue only, becomes the token's
	// expiry time: the end of the new card's validity. It must be in the
	// future. When it is zero, the token keeps its expiry time.
	CardExpiry time.Time

	// Reason is recorded in the token's history, at most MaxReasonSize
	// bytes of UTF-8.
	Reason string
}

// String describes n without its card number.
func (n Notification) String() string {
	card := ""
	if n.CardNumber != "" {
		card = ", card number [redacted]"
	}
	return fmt.Sprintf("Notification(%s of %s from %s, id %q, sequence %d%s)",
		n.Action, n.Token, n.Sender, n.ID, n.Sequence, card)
}

// GoString returns String, for %#v.
func (n Notification) GoString() string { return n.String() }

// Format prints String for every verb, including %+v and %x, which would
// otherwise print the card number.
func (n Notification) Format(f fmt.State, verb rune) { fmt.Fprint(f, n.String()) }

// LogValue logs n without its card number. Its receiver is a pointer so that
// slog can log a nil *Notification. A Notification value still logs
// redacted, through MarshalText.
func (n *Notification) LogValue() slog.Value {
	if n == nil {
		return slog.StringValue("<nil>")
	}
	return slog.GroupValue(
		slog.String("id", n.ID),
		slog.String("sender", n.Sender),
		slog.String("token", n.Token),
		slog.String("action", n.Action.String()),
		slog.Uint64("sequence", n.Sequence),
	)
}

// MarshalText returns String, so that encoders such as encoding/json cannot
// write the card number.
func (n Notification) MarshalText() ([]byte, error) { return []byte(n.String()), nil }

// ValidateSender returns an error wrapping ErrInvalidOption unless name can
// send notifications: 1 to MaxSenderSize bytes of [a-z0-9._-], and not
// LocalParty, which names this vault's own suspensions.
func ValidateSender(name string) error {
	if name == "" || len(name) > MaxSenderSize {
		return invalid(ErrInvalidOption, "sender name is %d bytes, want 1 to %d", len(name), MaxSenderSize)
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		if !('a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '.' || c == '_' || c == '-') {
			return invalid(ErrInvalidOption, "sender name has a byte other than a-z, 0-9, '.', '_' or '-' at offset %d", i)
		}
	}
	if name == LocalParty {
		return invalid(ErrInvalidOption, "sender name %q is reserved for the vault's own suspensions", LocalParty)
	}
	return nil
}

// validate checks the fields that need no record. It parses the card number
// of a reissue, the only field that can hold a secret, and returns it.
func (n *Notification) validate() (CardNumber, error) {
	if err := ValidateSender(n.Sender); err != nil {
		return CardNumber{}, err
	}
	if n.ID == "" || len(n.ID) > MaxNotificationIDSize {
		return CardNumber{}, invalid(ErrInvalidOption, "notification id is %d bytes, want 1 to %d", len(n.ID), MaxNotificationIDSize)
	}
	if i := strings.IndexFunc(n.ID, func(r rune) bool { return r < 0x20 || r > 0x7e }); i >= 0 {
		return CardNumber{}, invalid(ErrInvalidOption, "notification id has a byte other than printable ASCII at offset %d", i)
	}
	if !n.Action.Valid() {
		return CardNumber{}, invalid(ErrInvalidOption, "unknown notification action %s", n.Action)
	}
	if n.Sequence == 0 {
		return CardNumber{}, invalid(ErrInvalidOption, "notification sequence is 0: it must be positive")
	}
	if ContainsCardNumber(n.ID) {
		return CardNumber{}, invalid(ErrInvalidOption, "notification id contains what looks like a card number, which the token's record would keep in the clear")
	}
	if err := validateChange(&Change{Reason: n.Reason, Actor: n.Sender}); err != nil {
		return CardNumber{}, err
	}

	if n.Action != NotifyReissue {
		if n.CardNumber != "" || n.AllowNonLuhn || !n.CardExpiry.IsZero() {
			return CardNumber{}, invalid(ErrInvalidOption, "card number, AllowNonLuhn and card expiry are for reissue notifications only, and this one is %s", n.Action)
		}
		return CardNumber{}, nil
	}
	return parseCardNumber(n.CardNumber, !n.AllowNonLuhn)
}

// recentKey is the entry of InboundState.Recent for a notification. A sender
// name has no ':', so sender and id never run into each other.
func recentKey(sender, id string) string {
	return sender + ":" + id
}
