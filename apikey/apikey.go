package apikey

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"
)

// Role is a permission an API key grants. The zero Role is invalid.
type Role string

// Roles. RoleAdmin grants every role.
const (
	RoleTokenize   Role = "tokenize"   // POST /tokenize and /tokenize/batch
	RoleDetokenize Role = "detokenize" // POST /detokenize and /detokenize/batch
	RoleLifecycle  Role = "lifecycle"  // POST /suspend, /activate, /close
	RoleAdmin      Role = "admin"      // everything
)

// allRoles lists the valid roles in the order that keys store and print them.
var allRoles = []Role{RoleTokenize, RoleDetokenize, RoleLifecycle, RoleAdmin}

// MaxNameLen is the maximum length of a key's name in bytes.
const MaxNameLen = 64

// Errors returned by File methods. Test for them with errors.Is, because
// ErrNotFound and ErrInvalid are wrapped with the reason.
var (
	// ErrUnauthorized is returned by Authenticate for an unknown, malformed or
	// revoked secret, with no way to tell which.
	ErrUnauthorized = errors.New("apikey: invalid or revoked API key")

	// ErrNotFound is returned by Revoke for an unknown key id.
	ErrNotFound = errors.New("apikey: no API key with that id")

	// ErrInvalid is returned, wrapped with the reason, by Create and ParseRole
	// when a role is unknown, no role is given, or a name is longer than
	// MaxNameLen bytes, not valid UTF-8 or not printable.
	ErrInvalid = errors.New("apikey: invalid API key name or role")
)

// String returns the role's name.
func (r Role) String() string { return string(r) }

// Roles returns every valid role, RoleAdmin last.
func Roles() []Role { return slices.Clone(allRoles) }

// ParseRole returns the role named s, or an error wrapping ErrInvalid that
// names s.
func ParseRole(s string) (Role, error) {
	role := Role(s)
	if !slices.Contains(allRoles, role) {
		return "", fmt.Errorf("%w: unknown role %q, want one of %s", ErrInvalid, s, roleNames())
	}
	return role, nil
}

func roleNames() string {
	names := make([]string, len(allRoles))
	for i, r := range allRoles {
		names[i] = string(r)
	}
	return strings.Join(names, ", ")
}

// Key describes an API key, never its secret.
type Key struct {
	ID      string    // public identifier, safe to log
	Name    string    // label given at creation
	Roles   []Role    // at least one, in the order of Roles(), without repeats
	Created time.Time // UTC, in whole seconds
	Revoked time.Time // zero while the key is valid
}

// Has reports whether k grants role. RoleAdmin grants every valid role, and
// no key grants an invalid one.
func (k Key) Has(role Role) bool {
	if !slices.Contains(allRoles, role) {
		return false
	}
	for _, r := range k.Roles {
		if r == role || r == RoleAdmin {
			return true
		}
	}
	return false
}

// normalizeRoles validates roles and returns them in the order of allRoles,
// without repeats.
func normalizeRoles(roles []Role) ([]Role, error) {
	if len(roles) == 0 {
		return nil, fmt.Errorf("%w: a key needs at least one role, from %s", ErrInvalid, roleNames())
	}
	for _, r := range roles {
		if _, err := ParseRole(string(r)); err != nil {
			return nil, err
		}
	}

	var normalized []Role
	for _, r := range allRoles {
		if slices.Contains(roles, r) {
			normalized = append(normalized, r)
		}
	}
	return normalized, nil
}

// validateName returns an error wrapping ErrInvalid unless name is at most
// MaxNameLen bytes of printable UTF-8. The error never contains the name.
func validateName(name string) error {
	if len(name) > MaxNameLen {
		return fmt.Errorf("%w: name is %d bytes long, more than the maximum of %d", ErrInvalid, len(name), MaxNameLen)
	}
	if !utf8.ValidString(name) {
		return fmt.Errorf("%w: name is not valid UTF-8", ErrInvalid)
	}
	for i, r := range name {
		if !unicode.IsPrint(r) {
			return fmt.Errorf("%w: name contains the non-printable character %U at byte %d", ErrInvalid, r, i)
		}
	}
	return nil
}
