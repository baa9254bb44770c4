// Package apikey keeps the API keys of the tokenvault HTTP service in a file,
// as SHA-256 hashes, and authenticates bearer secrets against them.
package apikey

import (
	"errors"
	"time"
)

// Role is a permission an API key grants.
type Role string

// Roles. RoleAdmin grants every role.
const (
	RoleTokenize   Role = "tokenize"   // POST /tokenize and /tokenize/batch
	RoleDetokenize Role = "detokenize" // POST /detokenize and /detokenize/batch
	RoleLifecycle  Role = "lifecycle"  // POST /suspend, /activate, /close
	RoleAdmin      Role = "admin"      // everything
)

// ErrUnauthorized is returned by Authenticate for an unknown, malformed or
// revoked secret, with no way to tell which.
var ErrUnauthorized = errors.New("apikey: invalid or revoked API key")

// ErrNotFound is returned by Revoke for an unknown key id.
var ErrNotFound = errors.New("apikey: no API key with that id")

// Key describes an API key, never its secret.
type Key struct {
	ID      string    // public identifier, safe to log
	Name    string    // label given at creation
	Roles   []Role
	Created time.Time
	Revoked time.Time // zero while the key is valid
}

// Has reports whether k grants role; RoleAdmin grants all.
func (k Key) Has(role Role) bool {
	panic("apikey: not implemented yet")
}

// File is a file of API keys. Its methods are safe for concurrent use, and
// several processes may use one file: the command line adds and revokes keys
// while the server authenticates, and the server sees the change within a
// second.
type File struct{}

// Open returns the key file at path; the file is created by the first Create.
func Open(path string) (*File, error) { panic("apikey: not implemented yet") }

// Create adds a key with the roles and returns its secret, which is shown
// only now: the file keeps its SHA-256 hash.
func (f *File) Create(name string, roles []Role) (secret string, key Key, err error) {
	panic("apikey: not implemented yet")
}

// List returns every key, revoked ones included, oldest first.
func (f *File) List() ([]Key, error) { panic("apikey: not implemented yet") }

// Revoke revokes the key id, or returns ErrNotFound.
func (f *File) Revoke(id string) error { panic("apikey: not implemented yet") }

// Authenticate returns the valid key whose secret is secret, comparing hashes
// in constant time, or ErrUnauthorized.
func (f *File) Authenticate(secret string) (Key, error) { panic("apikey: not implemented yet") }
