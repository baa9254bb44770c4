package tokenvault

import (
	"errors"
	"fmt"
)

// Errors returned by the Vault. Callers test for them with errors.Is, because
// most are wrapped with the operation and the reason.
var (
	// ErrNotFound is returned when a token is unknown, malformed or altered.
	// The three cases are deliberately indistinguishable, so that a caller
	// cannot probe which token strings are close to real ones.
	ErrNotFound = errors.New("tokenvault: token not found")

	// ErrSuspended is returned by Detokenize when the token is suspended.
	ErrSuspended = errors.New("tokenvault: token is suspended")

	// ErrClosed is returned by Detokenize when the token is closed, and by
	// SuspendToken and ActivateToken, wrapped in a *TransitionError, because
	// a closed token cannot change state again.
	ErrClosed = errors.New("tokenvault: token is closed")

	// ErrExpired is returned by Detokenize when the token's expiry time has
	// passed.
	ErrExpired = errors.New("tokenvault: token has expired")

	// ErrVaultClosed is returned by every method called after Vault.Close.
	ErrVaultClosed = errors.New("tokenvault: vault is closed")

	// ErrInvalidCardNumber is returned, wrapped with the reason, when a card
	// number has characters other than ASCII digits and single separators,
	// has fewer than 12 or more than 19 digits, or fails the Luhn check
	// without AllowNonLuhn. The message never contains the number.
	ErrInvalidCardNumber = errors.New("tokenvault: invalid card number")

	// ErrInvalidData is returned, wrapped with the reason, when generic data is
	// empty or longer than MaxDataSize.
	ErrInvalidData = errors.New("tokenvault: invalid data")

	// ErrInvalidOption is returned, wrapped with the reason, when a tokenize or
	// lifecycle option is invalid: a zero or negative expiry, a scope or reason
	// that is too long, or a format that does not fit the value. It is also
	// returned when a field of a Notification other than its card number is
	// invalid, or when a reissue does not fit its token.
	ErrInvalidOption = errors.New("tokenvault: invalid option")

	// ErrTokenSpaceExhausted is returned by TokenizeCard when every attempt to
	// draw an unused token collided with an existing one. With at least five
	// random digits per card-shaped token, it means the store already holds
	// most tokens of that card number's shape.
	ErrTokenSpaceExhausted = errors.New("tokenvault: no unused token left in this token space")

	// ErrInvalidKey is returned, wrapped with the reason, when a key cannot be
	// decoded, a key ring repeats a key, or no key is configured.
	ErrInvalidKey = errors.New("tokenvault: invalid key")

	// ErrKeyMismatch is returned by Open and New when the configured keys
	// cannot decrypt what the store holds: a key that encrypted records is
	// missing from the key ring, or the index key differs from the one the
	// fingerprints were made with.
	ErrKeyMismatch = errors.New("tokenvault: keys do not match the vault")

	// ErrUnknownKey is returned by Detokenize when a record was encrypted under
	// a key that is not in the key ring. Open prevents this for records that
	// existed when it ran, so it means another process added the key later.
	ErrUnknownKey = errors.New("tokenvault: record is encrypted under a key that is not configured")

	// ErrIntegrity is returned when a stored record fails authentication: its
	// ciphertext was altered or moved from another record in the store.
	ErrIntegrity = errors.New("tokenvault: stored record failed its integrity check")

	// ErrSubscriberRunning is returned, wrapped with the name, by Subscribe
	// when another Subscribe call with the same name is running in the
	// vault.
	ErrSubscriberRunning = errors.New("tokenvault: a subscriber with this name is already running")
)

// Errors returned by Store implementations. The Vault translates them; users
// of a Vault see them only from Open.
var (
	// ErrTokenExists is returned by Store.Create when the token is already
	// stored, including as a closed tombstone.
	ErrTokenExists = errors.New("tokenvault: token already exists")

	// ErrDeterministicKeyExists is returned by Store.Create when another live
	// record has the same deterministic key.
	ErrDeterministicKeyExists = errors.New("tokenvault: deterministic key already exists")

	// ErrStoreClosed is returned by Store methods called after Store.Close.
	ErrStoreClosed = errors.New("tokenvault: store is closed")

	// ErrLocked is returned by Open when another process, or another Open in
	// this process, holds the database file and the lock timeout passed.
	ErrLocked = errors.New("tokenvault: database file is in use")

	// ErrSchemaVersion is returned by Open when the file was written by a
	// version of tokenvault with a storage schema that this version neither
	// reads nor upgrades, such as a newer one.
	ErrSchemaVersion = errors.New("tokenvault: unsupported schema version")

	// ErrNotVault is returned by Open when the file is not a tokenvault
	// database: a bbolt database that tokenvault did not create, or a file
	// whose bbolt header is invalid, of another bbolt version or damaged.
	ErrNotVault = errors.New("tokenvault: file is not a tokenvault database")
)

// TransitionError is returned when a lifecycle change is not allowed from the
// token's current state. Only a closed token rejects changes, so it wraps
// ErrClosed.
type TransitionError struct {
	Token string // the token, which is safe to show
	From  State  // the state the token is in
	To    State  // the state that was requested
}

func (e *TransitionError) Error() string {
	return fmt.Sprintf("tokenvault: cannot change token %s from %s to %s: a closed token cannot change state",
		e.Token, e.From, e.To)
}

// Unwrap returns ErrClosed, the reason every rejected transition fails.
func (e *TransitionError) Unwrap() error {
	return ErrClosed
}

// invalid wraps a sentinel with a reason that must never contain a secret.
func invalid(sentinel error, format string, args ...any) error {
	return fmt.Errorf("%w: "+format, append([]any{sentinel}, args...)...)
}
