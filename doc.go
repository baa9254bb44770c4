// Package tokenvault replaces card numbers and other secrets with tokens that
// are safe to store and pass around. Only the vault can turn a token back into
// its value, and only while the token is active and unexpired.
//
//	keys, err := tokenvault.KeyRingFromEnv() // TOKENVAULT_KEYS, TOKENVAULT_INDEX_KEY
//	v, err := tokenvault.Open("tokenvault.db", keys)
//	defer v.Close()
//
//	token, err := v.TokenizeCard(ctx, "4111 1111 1111 1111") // "7305518264081111"
//	card, err := v.DetokenizeCard(ctx, token)                // prints as ************1111
//
// A Vault keeps its records in a Store: a bbolt file by default (Open), or
// any implementation given to New, such as the in-memory MemoryStore. Package
// storetest checks a Store implementation; package tokenvaulttest gives
// consumers' unit tests a ready vault in one line.
//
// # Security model
//
// Apart from the digits that a card-shaped token keeps, a token is never
// derived from the value: holding every token reveals nothing else about
// the values. An opaque token is "tok_", 48 bits of creation time and 128
// random bits. A card-shaped token keeps the length and the last four
// digits (FormatCardFirstSix also keeps the first six), and always fails the
// Luhn check. A FormatCard token's other digits are a number the
// vault reserved, in creation order, encrypted with FF1 (NIST SP 800-38G)
// under a key derived from the index key, so that the store can keep new
// records in creation order. Without the index key they look random. Other
// card-shaped tokens draw them at random.
//
// Values are encrypted with Fernet (AES-128-CBC and HMAC-SHA256) under the
// primary key of the KeyRing, together with their token, so that a ciphertext
// moved to another record in the store fails to decrypt. Ciphertext never
// leaves the vault.
//
// Fingerprints, which find the tokens of a value and make Deterministic
// tokenization possible, are HMAC-SHA256 under a separate index key: a copy
// of the store without that key cannot be searched for a guessed card number,
// as an unkeyed hash could.
//
// What the store shows without keys: tokens, states, history, expiry, the
// brand, the last four digits and, with FormatCardFirstSix, the first six.
// These are what PCI DSS allows to display.
//
// Detokenize answers every unknown, malformed or altered token with the same
// ErrNotFound. Errors and printed values never contain a card number or key:
// CardNumber and KeyRing print masked whatever the verb, logger or encoder.
// The package logs only to a logger given with WithLogger or
// BoltOptions.Logger, and only a failed background merge and a schema
// upgrade, with the file's path.
//
// CloseToken deletes the ciphertext and the fingerprint (crypto-shredding)
// and keeps a tombstone, so a closed token answers ErrClosed and is never
// issued again. bbolt keeps the old page in the file's free space until a
// later write reuses it; Vault.Compact rewrites the file without it.
//
// # Key rotation
//
// Put a new Fernet key first (KeyRing.Rotate does this), keep the old ones
// after it, and reopen: new values use the new key and old ones still
// decrypt. Vault.Rewrap then re-encrypts the old records in batches, keeping
// their Fernet timestamps and expiry, and can resume after an interruption.
// With RewrapOptions.RetireKeys and no records left under a key, drop that
// key (KeyRing.Without) after Vault.Compact has removed its old ciphertexts
// from the file. Open refuses a key ring that lacks a key still in use,
// and an index key other than the one the fingerprints were made with; the
// index key does not rotate.
//
// # Caveats
//
// A bbolt file can be open in one process at a time; Open fails with
// ErrLocked after the lock timeout. On Unix the lock is on the file named
// like the database with ".lock" added. Several processes need a shared
// Store.
//
// Card-shaped tokens have few random digits: five for a 15-digit number with
// FormatCardFirstSix, which leaves 10,000 Luhn-valid numbers the token could
// stand for. They are unguessable only with the vault's access control in
// front of them; use FormatOpaque where that matters more than the shape.
//
// Closing a token and rewrapping leave old ciphertexts in bbolt's free pages
// until they are reused: run Vault.Compact before relying on their absence,
// for example before destroying a retired key.
//
// Expiry is checked against the vault's clock, so clocks of processes that
// share a store must agree.
//
// # Compatibility
//
// Tokens issued by a version of this package stay valid in later versions.
// The bbolt file records a schema version. Open upgrades a file of an older
// schema that this version can upgrade, in place and for good, and rejects
// any other version (ErrSchemaVersion) instead of guessing. Schema
// version 2 added the fingerprint log, version 3 its sorted runs, version 4
// records under locators, version 5 blocks of entries in the runs and
// version 6 blocks in the fingerprint log and the outbox. A
// build that reads an older version rejects a file once a later build has
// opened it. Stored ciphertexts are
// standard Fernet tokens, which any Fernet implementation with the key can
// decrypt; their plaintext is a version byte, the token, and the value.
package tokenvault
