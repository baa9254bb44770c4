// Package apikey keeps the API keys of the tokenvault HTTP service in a file,
// as SHA-256 hashes, and authenticates bearer secrets against them.
//
//	keys, err := apikey.Open("tokenvault.apikeys")
//	secret, key, err := keys.Create("billing", []apikey.Role{apikey.RoleTokenize})
//	// Give secret to the client. It cannot be shown again.
//	key, err = keys.Authenticate(secret) // on each request
//	if err == nil && key.Has(apikey.RoleTokenize) { ... }
//
// # Secrets
//
// A secret is "tvk_", a key id of 8 lowercase hexadecimal digits, "_", and 43
// base64url characters that encode 32 random bytes, 56 characters in all:
//
//	tvk_1f0e3a9c_<43 characters>
//
// The key id is public: logs, audit records, List and Revoke use it. The
// secret is returned once, by Create, and the file keeps only the SHA-256 hash
// of the whole secret.
//
// # Security model
//
// The hash is SHA-256 without salt, not a password hash, because each secret
// has 256 random bits. No dictionary applies, and a search of 2^256
// candidates is infeasible however fast the hash. Authenticate compares hashes with crypto/subtle, and does the
// same work for an unknown id as for a wrong secret or a revoked key, so that
// timing does not show which ids exist. Whether a string has the layout of a
// secret is public, so malformed input is rejected early.
//
// Every read of the file rejects it if group or other users may read or write
// it, as OpenSSH does for private keys, and writers create it with mode
// 0600. The file holds no secret, but its hashes and roles are sensitive
// still: anyone who can write it can grant any role.
//
// Authenticate never puts its argument in an error, and Revoke does only when
// it is a well-formed key id, so a secret passed to either never reaches an
// error. The package never logs.
//
// # Concurrency
//
// Create and Revoke hold an exclusive flock(2) on the file PATH.lock while
// they read, change and write the file, so writers in several processes never
// lose each other's changes. They replace the file atomically: a temporary
// file in the same directory is written, synced and renamed over the file,
// then the directory is synced. Readers never lock, because they see the old
// file or the new one.
//
// Authenticate works on a copy in memory, and checks at most once a second
// whether the file changed. A revocation or a new key from another File
// value or process therefore takes effect within about a second, provided
// that Authenticate is being called.
//
// # File format
//
// The file is a JSON object: "version" is 1, and "keys" is an array of objects
// with "id", "name", "roles" (an array of role names), "sha256" (the hash in
// hexadecimal), "created" and, once revoked, "revoked" (RFC 3339 times in
// UTC). Unknown fields, another version, an invalid key and a repeated id all
// make the file invalid, and an invalid file accepts no secret at all.
//
// # Caveats
//
// A key stays valid in other processes for up to about a second after Revoke
// returns.
//
// flock(2) locks are advisory and are not reliable on some network file
// systems; keep the file on a local disk.
//
// A write replaces a symbolic link at the path with a regular file.
//
// A process killed during a write can leave a file named .NAME.tmp-* beside
// the file. It holds only hashes and can be deleted.
package apikey
