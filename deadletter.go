package tokenvault

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"time"
	"unicode/utf8"
)

// maxLastErrorSize bounds DeadLetter.LastError, in bytes, so that a handler
// that returns a whole response body cannot grow the store without limit.
const maxLastErrorSize = 1024

// DeadLetter is an event that a subscriber's handler failed
// SubscribeOptions.MaxAttempts times in a row. The subscriber set it aside
// and went on with the next event; Redeliver queues it again.
type DeadLetter struct {
	Event     Event
	Attempts  int    // failed attempts before the event was set aside
	LastError string // message of the last failure, cut to 1 KiB
	Time      time.Time
}

// DeadLetters returns the dead letters of subscriber name, in Seq order. It
// returns an empty slice when there are none, including for a name that
// never subscribed.
func (v *Vault) DeadLetters(ctx context.Context, name string) ([]DeadLetter, error) {
	if err := checkSubscriberName(name); err != nil {
		return nil, err
	}
	return v.readLetters(ctx, deadPrefix(name))
}

// Redeliver takes the dead letter seq of subscriber name off the list and
// queues it for delivery. The running Subscribe call of name in this vault
// delivers it after the event in progress, and the next Subscribe call
// delivers it before any event after its cursor. A Subscribe call in another
// process finds it at its next poll. Redeliver returns an error wrapping ErrNotFound if name has no dead
// letter seq.
func (v *Vault) Redeliver(ctx context.Context, name string, seq uint64) error {
	if err := checkSubscriberName(name); err != nil {
		return err
	}
	v.outbox.letters.Lock()
	defer v.outbox.letters.Unlock()

	dead := deadPrefix(name) + seqName(seq)
	entries, err := v.storeMetadata(ctx, dead)
	if err != nil {
		return err
	}
	value, ok := entries[dead]
	if !ok {
		return fmt.Errorf("tokenvault: subscriber %q has no dead letter with seq %d: %w", name, seq, ErrNotFound)
	}

	// The queue entry is written before the dead letter is deleted, so that
	// a crash in between leaves the event in both lists rather than in none.
	if err := v.storeSetMetadata(ctx, redeliverPrefix(name)+seqName(seq), value); err != nil {
		return err
	}
	if err := v.storeSetMetadata(ctx, dead, nil); err != nil {
		return err
	}
	v.outbox.requestRedelivery(name)
	return nil
}

// readLetters returns the dead letters stored under prefix, in Seq order.
func (v *Vault) readLetters(ctx context.Context, prefix string) ([]DeadLetter, error) {
	entries, err := v.storeMetadata(ctx, prefix)
	if err != nil {
		return nil, err
	}

	letters := make([]DeadLetter, 0, len(entries))
	for name, value := range entries {
		letter, err := decodeDeadLetter(value)
		if err != nil {
			return nil, fmt.Errorf("tokenvault: metadata entry %s: %w", name, err)
		}
		letters = append(letters, letter)
	}
	slices.SortFunc(letters, func(a, b DeadLetter) int {
		switch {
		case a.Event.Seq < b.Event.Seq:
			return -1
		case a.Event.Seq > b.Event.Seq:
			return 1
		}
		return 0
	})
	return letters, nil
}

// addDeadLetter stores the dead letter of ev for subscriber name.
func (v *Vault) addDeadLetter(ctx context.Context, name string, letter *DeadLetter) error {
	value, err := encodeDeadLetter(letter)
	if err != nil {
		return err
	}
	return v.storeSetMetadata(ctx, deadPrefix(name)+seqName(letter.Event.Seq), value)
}

// deadLetterJSON is the stored form of a DeadLetter. Enums are stored by
// name, so that the form does not depend on their numbering.
type deadLetterJSON struct {
	Seq       uint64    `json:"seq"`
	Token     string    `json:"token"`
	Revision  uint64    `json:"revision"`
	Type      string    `json:"type"`
	From      string    `json:"from,omitempty"`
	To        string    `json:"to"`
	Reason    string    `json:"reason,omitempty"`
	Actor     string    `json:"actor,omitempty"`
	EventTime time.Time `json:"event_time"`

	Attempts  int       `json:"attempts"`
	LastError string    `json:"last_error"`
	Time      time.Time `json:"time"`
}

func encodeDeadLetter(letter *DeadLetter) ([]byte, error) {
	ev := &letter.Event
	stored := deadLetterJSON{
		Seq:       ev.Seq,
		Token:     ev.Token,
		Revision:  ev.Revision,
		Type:      ev.Type.String(),
		To:        ev.To.String(),
		Reason:    ev.Reason,
		Actor:     ev.Actor,
		EventTime: ev.Time,
		Attempts:  letter.Attempts,
		LastError: letter.LastError,
		Time:      letter.Time,
	}
	if ev.From.Valid() {
		stored.From = ev.From.String()
	}
	return json.Marshal(&stored)
}

func decodeDeadLetter(value []byte) (DeadLetter, error) {
	var stored deadLetterJSON
	if err := json.Unmarshal(value, &stored); err != nil {
		return DeadLetter{}, fmt.Errorf("dead letter does not decode: %w", ErrIntegrity)
	}
	typ, err := ParseEventType(stored.Type)
	if err != nil {
		return DeadLetter{}, fmt.Errorf("dead letter has event type %q: %w", stored.Type, ErrIntegrity)
	}
	to, err := ParseState(stored.To)
	if err != nil {
		return DeadLetter{}, fmt.Errorf("dead letter has state %q: %w", stored.To, ErrIntegrity)
	}
	var from State
	if stored.From != "" {
		if from, err = ParseState(stored.From); err != nil {
			return DeadLetter{}, fmt.Errorf("dead letter has state %q: %w", stored.From, ErrIntegrity)
		}
	}

	return DeadLetter{
		Event: Event{
			Seq:      stored.Seq,
			ID:       EventID(stored.Token, stored.Revision),
			Token:    stored.Token,
			Revision: stored.Revision,
			Type:     typ,
			From:     from,
			To:       to,
			Reason:   stored.Reason,
			Actor:    stored.Actor,
			Time:     stored.EventTime,
		},
		Attempts:  stored.Attempts,
		LastError: stored.LastError,
		Time:      stored.Time,
	}, nil
}

// lastErrorText returns the message of err as valid UTF-8 of at most
// maxLastErrorSize bytes.
func lastErrorText(err error) string {
	text := strings.ToValidUTF8(err.Error(), "\uFFFD")
	if len(text) <= maxLastErrorSize {
		return text
	}
	const ellipsis = "..."
	cut := maxLastErrorSize - len(ellipsis)
	for cut > 0 && !utf8.RuneStart(text[cut]) {
		cut--
	}
	return text[:cut] + ellipsis
}
