package tokenvault

import (
	"fmt"
	"strconv"
	"time"
)

// EventType is the kind of change to a token. The zero value is invalid.
type EventType uint8

const (
	EventCreated      EventType = iota + 1 // the token was issued
	EventSuspended                         // the token became suspended
	EventActivated                         // the token became active again
	EventClosed                            // the token was closed for good
	EventExpired                           // the token's expiry time passed; its state is unchanged
	EventValueUpdated                      // the value was replaced, such as a reissued card

	// EventSuspensionLifted: one party lifted its suspension while others
	// still hold theirs, so the token stays suspended.
	EventSuspensionLifted

	// EventNotificationRecorded: an inbound notification was applied but
	// changed nothing, such as a resume from a sender that held no
	// suspension. It is recorded so that an older one arriving later is
	// stale.
	EventNotificationRecorded
)

var eventTypeNames = [...]string{
	EventCreated:              "created",
	EventSuspended:            "suspended",
	EventActivated:            "activated",
	EventClosed:               "closed",
	EventExpired:              "expired",
	EventValueUpdated:         "value_updated",
	EventSuspensionLifted:     "suspension_lifted",
	EventNotificationRecorded: "notification_recorded",
}

func (t EventType) String() string {
	if t >= EventCreated && int(t) < len(eventTypeNames) {
		return eventTypeNames[t]
	}
	return fmt.Sprintf("EventType(%d)", uint8(t))
}

// Valid reports whether t is one of the defined event types.
func (t EventType) Valid() bool { return t >= EventCreated && int(t) < len(eventTypeNames) }

// ParseEventType returns the event type named by s, as printed by String.
func ParseEventType(s string) (EventType, error) {
	for t := EventCreated; int(t) < len(eventTypeNames); t++ {
		if eventTypeNames[t] == s {
			return t, nil
		}
	}
	return 0, fmt.Errorf("tokenvault: unknown event type %q", s)
}

// Event is one entry of a store's outbox: a change to a token, written in the
// same transaction as the change itself, so that neither can exist without
// the other. It never holds the token's value.
type Event struct {
	// Seq is the event's position in the store's outbox, from 1, in commit
	// order. Consumers keep the Seq of the last event they handled as their
	// cursor.
	Seq uint64
	// ID is stable across redeliveries: receivers use it to drop
	// duplicates.
	ID       string
	Token    string
	Revision uint64 // the token's revision after the change: 0 for created, then 1, 2, ...
	Type     EventType
	From     State // zero for EventCreated
	To       State
	Reason   string
	Actor    string
	Time     time.Time
}

// EventID returns the id of the event at revision of token. It is derived,
// not random, so that every store and every redelivery gives one event the
// same id.
func EventID(token string, revision uint64) string {
	return "evt_" + token + "_" + strconv.FormatUint(revision, 10)
}

// CreatedEvent returns the outbox event of a new record, for Store
// implementations; the store sets Seq.
func CreatedEvent(rec *Record) Event {
	return Event{
		ID:    EventID(rec.Token, 0),
		Token: rec.Token,
		Type:  EventCreated,
		To:    rec.State,
		Time:  rec.Created,
	}
}

// ChangeEvent returns the outbox event of a change to token, for Store
// implementations; the store sets Seq. A change without a Type gets one from
// its target state.
func ChangeEvent(token string, c *Change) Event {
	typ := c.Type
	if !typ.Valid() {
		switch c.To {
		case StateSuspended:
			typ = EventSuspended
		case StateClosed:
			typ = EventClosed
		default:
			typ = EventActivated
		}
	}
	return Event{
		ID:       EventID(token, c.Revision),
		Token:    token,
		Revision: c.Revision,
		Type:     typ,
		From:     c.From,
		To:       c.To,
		Reason:   c.Reason,
		Actor:    c.Actor,
		Time:     c.Time,
	}
}
