package tokenvault

import (
	"context"
	"fmt"
	"log/slog"
	"time"
)

// Store keeps token records for a Vault. The Vault encrypts before it calls a
// Store and decrypts after, so a Store receives only ciphertext, keyed
// fingerprints and non-secret metadata. Package storetest checks an implementation
// against every rule below.
//
// Implementations must be safe for concurrent use by multiple goroutines.
// Every method checks ctx before it starts and returns ctx.Err() if it is
// done; a method that has started its transaction may finish it. After Close,
// every method returns ErrStoreClosed.
//
// Records passed in and returned are copies: a Store keeps no reference to a
// *Record it was given and the caller may modify a *Record it received.
//
// # Keys
//
// A Store keeps each record under its key, Record.Key: its Locator if it has
// one, else its Token. Get, Update, History, Scan and ReplaceCiphertexts take
// keys; the indexes, FindByFingerprint and the outbox name tokens. The Vault
// gives a Locator only to a token from which it can compute the Locator
// again, so two records with one Token also have one key.
//
// # Indexes
//
// A Store keeps two indexes that always match the current records:
//   - by fingerprint: each record with a non-empty Fingerprint is listed under
//     it, so that FindByFingerprint returns every live token of a value;
//   - by deterministic key: each record with a non-empty DeterministicKey is
//     listed under it, and two records can never share one (a unique
//     constraint in SQL terms).
//
// The Vault clears both fields when it closes a token, so closed tokens leave
// both indexes in the same transaction as the close.
//
// # Atomicity
//
// Create writes the record and its index entries in one transaction. Update
// writes the record, its index changes and the history entry in one
// transaction, after reading the record inside that transaction, which makes
// it a compare-and-set. ReplaceCiphertexts applies each of its swaps in one
// transaction.
//
// # Outbox
//
// Create appends CreatedEvent(rec) to the store's outbox, and Update with a
// non-nil change appends ChangeEvent(token, change), in the transaction of
// the change itself: a change is never committed without its event, nor an
// event without its change. The store numbers events with Seq, from 1,
// increasing in commit order.
type Store interface {
	// Create inserts a new record. It returns ErrTokenExists if a record,
	// live or closed, is stored under rec.Key() or, for a record with a
	// Locator, under rec.Token. It returns ErrDeterministicKeyExists if
	// another record has rec.DeterministicKey. A token and a locator must
	// be 1 to MaxTokenSize bytes.
	Create(ctx context.Context, rec *Record) error

	// Get returns the record stored under key, or ErrNotFound.
	Get(ctx context.Context, key string) (*Record, error)

	// Update reads the record stored under key inside a write transaction and calls
	// fn with a copy. If fn returns an error, Update returns it and writes
	// nothing. If fn returns a nil *Change, Update writes nothing and returns
	// the record unchanged. Otherwise it sets the record's Revision, and the
	// change's, to one more than the stored revision, stores the record as fn
	// left it, updates the indexes and appends the change to the token's
	// history. Changes to rec.Token and rec.Locator are ignored.
	// The unique deterministic key is enforced as in Create.
	//
	// fn must have no side effects outside rec, because an implementation
	// may call it more than once, for example to retry a serialization
	// failure. Update returns ErrNotFound if no record is stored under key.
	Update(ctx context.Context, key string, fn func(rec *Record) (*Change, error)) (*Record, error)

	// History returns the record stored under key and its changes, oldest
	// first, read in one transaction, so that the history has exactly one
	// entry per revision of the record. It returns ErrNotFound if no record
	// is stored under key. A record with no changes has an empty, non-nil
	// history.
	History(ctx context.Context, key string) (*Record, []Change, error)

	// FindByDeterministicKey returns the record with key as its
	// DeterministicKey, or ErrNotFound.
	FindByDeterministicKey(ctx context.Context, key []byte) (*Record, error)

	// FindByFingerprint returns the tokens of the records whose Fingerprint is
	// fingerprint, in token order. It returns an empty slice, not an error,
	// when there are none.
	FindByFingerprint(ctx context.Context, fingerprint []byte) ([]string, error)

	// Events returns up to limit outbox events whose Seq is greater than
	// after, in Seq order; an empty result means there are none yet.
	Events(ctx context.Context, after uint64, limit int) ([]Event, error)

	// Scan returns up to limit records whose keys sort after after, in byte
	// order of the keys; after "" starts at the beginning. A short or empty
	// result means the scan reached the end.
	Scan(ctx context.Context, after string, limit int) ([]*Record, error)

	// ReplaceCiphertexts applies each swap whose record still has
	// swap.OldCiphertext, in one transaction, and returns how many it
	// applied. A swap for a record that changed meanwhile, was closed, or is
	// not stored is skipped without an error.
	ReplaceCiphertexts(ctx context.Context, swaps []CiphertextSwap) (int, error)

	// Metadata returns the vault-level entries whose names start with prefix,
	// such as the key-check entries. It returns an empty map when there are
	// none.
	Metadata(ctx context.Context, prefix string) (map[string][]byte, error)

	// SetMetadata stores value under name, or deletes name if value is nil.
	SetMetadata(ctx context.Context, name string, value []byte) error

	// Close releases the store. It is safe to call more than once.
	Close() error
}

// Record is a token as a Store keeps it. Fields other than Ciphertext hold no
// secret: Fingerprint and DeterministicKey are HMAC-SHA256 values under the
// index key, which cannot be tested against guesses without that key.
type Record struct {
	Token string
	// Locator, when not empty, is the key the store keeps the record under
	// instead of Token. The Vault computes it from the token, so that new
	// records sort in creation order even when their tokens look random.
	Locator string

	State    State
	Revision uint64 // 0 at creation; the Store adds 1 for each Change

	Metadata

	// KeyID names the Fernet key that produced Ciphertext.
	KeyID KeyID
	// Ciphertext is a Fernet token of the value bound to Token. It is nil
	// once the token is closed.
	Ciphertext []byte
	// Fingerprint is the keyed blind index of the value, without scope, used
	// to list the tokens of a value: 32 bytes, or nil once the token is
	// closed. Stores may rely on the fixed size.
	Fingerprint []byte
	// DeterministicKey is the keyed blind index of the scope, format and
	// value for deterministic tokens, unique among live records. It is nil
	// for random tokens and once the token is closed.
	DeterministicKey []byte

	// Suspenders lists, sorted, the parties whose suspension holds the
	// token: LocalParty for SuspendToken, or the sender of an inbound
	// notification. A suspended token becomes active only when the list is
	// empty.
	Suspenders []string
	// Inbound is the state of the inbound notifications applied to the
	// token.
	Inbound InboundState
	// ExpiryRecorded is set once the token's expiry has been written to the
	// outbox as EventExpired.
	ExpiryRecorded bool
}

// InboundState is a record's memory of the inbound notifications applied to
// it, so that a notification is applied once and never after a newer one.
type InboundState struct {
	// Senders is the last sequence number applied per sender, sorted by
	// sender.
	Senders []SenderPosition
	// Recent is the most recent applied notifications, oldest first, at
	// most MaxRecentNotifications, each as its sender, ':' and its id.
	Recent []string
}

// SenderPosition is the newest notification of one sender applied to a token.
type SenderPosition struct {
	Sender   string
	Sequence uint64
}

// MaxRecentNotifications bounds InboundState.Recent. A duplicate older than
// that is still never applied twice, because its sequence number is no
// newer than the sender's position. It is then reported as stale.
const MaxRecentNotifications = 64

// Metadata is the data a vault keeps about a token besides its value. It is
// safe to show: at most the first six and last four digits of a card number, which
// PCI DSS allows to display.
type Metadata struct {
	Kind          Kind
	Format        Format
	Brand         Brand  // card brand by issuer prefix, "" when unknown
	First6        string // first six digits, kept only for FormatCardFirstSix
	Last4         string // last four digits of a card number
	Deterministic bool   // tokenized with Deterministic
	Scope         string // deterministic scope, "" when none was given
	Created       time.Time
	Updated       time.Time
	Expires       time.Time // zero when the token does not expire
}

// Expired reports whether the token had expired at now.
func (m *Metadata) Expired(now time.Time) bool {
	return !m.Expires.IsZero() && !now.Before(m.Expires)
}

// Key returns the key the store keeps rec under: its Locator, or its Token
// when it has no Locator.
func (rec *Record) Key() string {
	if rec.Locator != "" {
		return rec.Locator
	}
	return rec.Token
}

// CiphertextSwap is a request to Store.ReplaceCiphertexts to re-encrypt one
// record.
type CiphertextSwap struct {
	Key           string // the record's key, Record.Key
	OldCiphertext []byte // applied only if the record still has these bytes
	NewKeyID      KeyID
	NewCiphertext []byte
}

// MaxTokenSize is the longest token a Store must accept, in bytes. The vault
// issues tokens of at most 40 bytes.
const MaxTokenSize = 255

// checkKeySizes returns an error unless the token of rec, and its locator
// if it has one, are 1 to MaxTokenSize bytes.
func checkKeySizes(rec *Record) error {
	if len(rec.Token) == 0 || len(rec.Token) > MaxTokenSize {
		return fmt.Errorf("tokenvault: token length %d is outside 1 to %d", len(rec.Token), MaxTokenSize)
	}
	if len(rec.Locator) > MaxTokenSize {
		return fmt.Errorf("tokenvault: locator length %d is over %d", len(rec.Locator), MaxTokenSize)
	}
	return nil
}

// Kind is the type of value a token stands for. The zero value is invalid.
type Kind uint8

const (
	// KindCard is a payment card number (PAN), normalized to its digits.
	KindCard Kind = iota + 1
	// KindData is any other secret, kept as the exact bytes given.
	KindData
)

func (k Kind) String() string {
	switch k {
	case KindCard:
		return "card"
	case KindData:
		return "data"
	default:
		return fmt.Sprintf("Kind(%d)", uint8(k))
	}
}

// Clone returns a deep copy of rec, for Store implementations that must not
// share slices with their callers.
func (rec *Record) Clone() *Record {
	c := *rec
	c.Ciphertext = cloneBytes(rec.Ciphertext)
	c.Fingerprint = cloneBytes(rec.Fingerprint)
	c.DeterministicKey = cloneBytes(rec.DeterministicKey)
	c.Suspenders = cloneSlice(rec.Suspenders)
	c.Inbound.Senders = cloneSlice(rec.Inbound.Senders)
	c.Inbound.Recent = cloneSlice(rec.Inbound.Recent)
	return &c
}

// String describes rec without its ciphertext or index values.
func (rec *Record) String() string {
	if rec == nil {
		return "<nil>"
	}
	return fmt.Sprintf("Record(%s %s %s, %s, revision %d, key %s)",
		rec.Token, rec.Kind, rec.Format, rec.State, rec.Revision, rec.KeyID)
}

// LogValue logs rec without its ciphertext or index values.
func (rec *Record) LogValue() slog.Value {
	if rec == nil {
		return slog.StringValue("<nil>")
	}
	return slog.GroupValue(
		slog.String("token", rec.Token),
		slog.String("state", rec.State.String()),
		slog.String("kind", rec.Kind.String()),
		slog.String("key_id", string(rec.KeyID)),
	)
}

func cloneSlice[T any](s []T) []T {
	if s == nil {
		return nil
	}
	return append([]T(nil), s...)
}

func cloneBytes(b []byte) []byte {
	if b == nil {
		return nil
	}
	return append([]byte(nil), b...)
}
