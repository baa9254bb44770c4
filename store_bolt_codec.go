package tokenvault

import (
	"encoding/binary"
	"fmt"

	"github.com/tokenvault/tokenvault/internal/wire"
)

// Versions of the encodings of bbolt values; the first byte of each value.
// A record of version 2 is one of version 1 followed by its token, and is
// kept under its locator.
const (
	recordEncodingV1 = 1
	recordEncodingV2 = 2
	changeEncodingV1 = 1
)

// encodeRecord returns the bbolt value of rec. The bbolt key is the token of
// a record without a locator, which is then not repeated, and the locator of
// one with a locator, which then ends with its token.
func encodeRecord(rec *Record) []byte {
	e := wire.NewEncoder(160 + len(rec.Ciphertext) + len(rec.Token))
	if rec.Locator == "" {
		e.Byte(recordEncodingV1)
	} else {
		e.Byte(recordEncodingV2)
	}
	e.Byte(byte(rec.State))
	e.Uvarint(rec.Revision)
	e.Byte(byte(rec.Kind))
	e.Byte(byte(rec.Format))
	e.String(string(rec.Brand))
	e.String(rec.First6)
	e.String(rec.Last4)
	e.Byte(boolByte(rec.Deterministic))
	e.String(rec.Scope)
	e.Time(rec.Created)
	e.Time(rec.Updated)
	e.Time(rec.Expires)
	e.String(string(rec.KeyID))
	e.ByteSlice(rec.Ciphertext)
	e.ByteSlice(rec.Fingerprint)
	e.ByteSlice(rec.DeterministicKey)
	e.Uvarint(uint64(len(rec.Suspenders)))
	for _, party := range rec.Suspenders {
		e.String(party)
	}
	e.Uvarint(uint64(len(rec.Inbound.Senders)))
	for _, pos := range rec.Inbound.Senders {
		e.String(pos.Sender)
		e.Uvarint(pos.Sequence)
	}
	e.Uvarint(uint64(len(rec.Inbound.Recent)))
	for _, id := range rec.Inbound.Recent {
		e.String(id)
	}
	e.Byte(boolByte(rec.ExpiryRecorded))
	if rec.Locator != "" {
		e.String(rec.Token)
	}
	return e.Bytes()
}

// maxListLen bounds the lists decoded from a record, so that a corrupt count
// cannot make decoding allocate without bound.
const maxListLen = 4096

// decodeList decodes a count and then that many elements with one.
func decodeList[T any](d *wire.Decoder, one func() T) []T {
	n := d.Uvarint()
	if n > maxListLen {
		d.Fail()
	}
	if n == 0 || n > maxListLen {
		return nil
	}
	list := make([]T, 0, n)
	for range n {
		list = append(list, one())
	}
	return list
}

// decodeRecord decodes a value written by encodeRecord under key. The result
// shares no memory with b, which may be bbolt memory that is invalid after
// the transaction ends.
func decodeRecord(key string, b []byte) (*Record, error) {
	d := wire.NewCopyDecoder(b)
	version := d.Byte()
	if version != recordEncodingV1 && version != recordEncodingV2 {
		return nil, fmt.Errorf("record %s: encoding version %d: %w", key, version, ErrIntegrity)
	}

	rec := &Record{Token: key}
	rec.State = State(d.Byte())
	rec.Revision = d.Uvarint()
	rec.Kind = Kind(d.Byte())
	rec.Format = Format(d.Byte())
	rec.Brand = Brand(d.String())
	rec.First6 = d.String()
	rec.Last4 = d.String()
	rec.Deterministic = d.Byte() == 1
	rec.Scope = d.String()
	rec.Created = d.Time()
	rec.Updated = d.Time()
	rec.Expires = d.Time()
	rec.KeyID = KeyID(d.String())
	rec.Ciphertext = d.ByteSlice()
	rec.Fingerprint = d.ByteSlice()
	rec.DeterministicKey = d.ByteSlice()
	rec.Suspenders = decodeList(d, d.String)
	rec.Inbound.Senders = decodeList(d, func() SenderPosition {
		return SenderPosition{Sender: d.String(), Sequence: d.Uvarint()}
	})
	rec.Inbound.Recent = decodeList(d, d.String)
	rec.ExpiryRecorded = d.Byte() == 1
	if version == recordEncodingV2 {
		rec.Locator, rec.Token = key, d.String()
		if rec.Token == "" {
			d.Fail()
		}
	}

	if err := d.Err(); err != nil || !rec.State.Valid() || rec.Kind == 0 || rec.Kind > KindData || rec.Format == 0 || rec.Format > FormatCardFirstSix {
		return nil, fmt.Errorf("record %s: does not decode: %w", key, ErrIntegrity)
	}
	return rec, nil
}

const eventEncodingV1 = 1

// encodeEvent returns the bbolt value of ev; its Seq is the key and its ID is
// derived from the token and revision.
func encodeEvent(ev *Event) []byte {
	e := wire.NewEncoder(64 + len(ev.Token) + len(ev.Reason) + len(ev.Actor))
	e.Byte(eventEncodingV1)
	e.String(ev.Token)
	e.Uvarint(ev.Revision)
	e.Byte(byte(ev.Type))
	e.Byte(byte(ev.From))
	e.Byte(byte(ev.To))
	e.String(ev.Reason)
	e.String(ev.Actor)
	e.Time(ev.Time)
	return e.Bytes()
}

func decodeEvent(seq uint64, b []byte) (Event, error) {
	d := wire.NewDecoder(b)
	if v := d.Byte(); v != eventEncodingV1 {
		return Event{}, fmt.Errorf("outbox event %d: encoding version %d: %w", seq, v, ErrIntegrity)
	}

	ev := Event{Seq: seq}
	ev.Token = d.String()
	ev.Revision = d.Uvarint()
	ev.Type = EventType(d.Byte())
	ev.From = State(d.Byte())
	ev.To = State(d.Byte())
	ev.Reason = d.String()
	ev.Actor = d.String()
	ev.Time = d.Time()
	if err := d.Err(); err != nil || !ev.Type.Valid() || !ev.To.Valid() {
		return Event{}, fmt.Errorf("outbox event %d does not decode: %w", seq, ErrIntegrity)
	}
	ev.ID = EventID(ev.Token, ev.Revision)
	return ev, nil
}

func encodeChange(c *Change) []byte {
	e := wire.NewEncoder(32 + len(c.Reason) + len(c.Actor))
	e.Byte(changeEncodingV1)
	e.Byte(byte(c.From))
	e.Byte(byte(c.To))
	e.Byte(byte(c.Type))
	e.String(c.Reason)
	e.String(c.Actor)
	e.Time(c.Time)
	return e.Bytes()
}

func decodeChange(revision uint64, b []byte) (Change, error) {
	d := wire.NewDecoder(b)
	if v := d.Byte(); v != changeEncodingV1 {
		return Change{}, fmt.Errorf("history entry encoding version %d: %w", v, ErrIntegrity)
	}

	c := Change{Revision: revision}
	c.From = State(d.Byte())
	c.To = State(d.Byte())
	c.Type = EventType(d.Byte())
	c.Reason = d.String()
	c.Actor = d.String()
	c.Time = d.Time()
	if err := d.Err(); err != nil || !c.From.Valid() || !c.To.Valid() {
		return Change{}, fmt.Errorf("history entry does not decode: %w", ErrIntegrity)
	}
	return c, nil
}

// historyPrefix returns the bbolt key prefix of the history entries of the
// record under key: the key's length, so that no key's prefix is another
// key's, and the key.
func historyPrefix(key string) []byte {
	p := make([]byte, 0, 1+len(key)+8)
	p = append(p, byte(len(key)))
	return append(p, key...)
}

// historyKey returns the bbolt key of a history entry of the record under
// key: its prefix, then the revision in big-endian order, so entries sort
// oldest first.
func historyKey(key string, revision uint64) []byte {
	return binary.BigEndian.AppendUint64(historyPrefix(key), revision)
}

// fingerprintKey returns the bbolt key of a fingerprint index entry: the
// fixed-size fingerprint, then the token.
func fingerprintKey(fingerprint []byte, token string) []byte {
	k := make([]byte, 0, len(fingerprint)+len(token))
	k = append(k, fingerprint...)
	return append(k, token...)
}

func boolByte(b bool) byte {
	if b {
		return 1
	}
	return 0
}
