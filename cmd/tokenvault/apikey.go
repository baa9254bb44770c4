package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/tokenvault/tokenvault/apikey"
)

// API key file location when --api-keys is not given.
const (
	envAPIKeyFile = "TOKENVAULT_API_KEYS"
	apiKeysExt    = ".apikeys" // replaces the database path's extension
)

var apikeyCommand = &command{
	name:     "apikey",
	synopsis: "create --role ROLE[,ROLE] [--name NAME] | list | revoke ID",
	summary:  "Create, list and revoke the API keys of the HTTP service.",
	details: `
Clients of the HTTP service (tokenvault serve) authenticate with an API key.
Each key has a public id of 8 hexadecimal digits, an optional name and one or
more roles: tokenize, detokenize and lifecycle allow the matching requests,
and admin allows all of them.

create prints the new key's secret on standard output. It is shown only once,
because the file keeps only its SHA-256 hash. list prints the id, name, roles,
creation time and revocation time of every key, never a secret. revoke ID
revokes a key for good, and a running server rejects it within about a second.

The commands use the API key file at --api-keys PATH, else at
$TOKENVAULT_API_KEYS, else beside the database: the database path with its
extension replaced by .apikeys, such as ./tokenvault.apikeys for
./tokenvault.db. They never open the database, so they work while the server
runs. create makes the file with mode 0600, and every command rejects a file
that other users can read.`,
	setup: func(fs *flag.FlagSet) runFunc {
		var roles roleList
		fs.Var(&roles, "role", "with create: grant `ROLE` (tokenize, detokenize, lifecycle, or admin for all); repeat the flag or separate roles with commas")
		name := fs.String("name", "", "with create: label the key with `NAME`, such as the client's service, in at most 64 printable bytes")
		keysFlag := fs.String("api-keys", "", "use the API key file at `PATH` (default $"+envAPIKeyFile+", or the database path with its extension replaced by "+apiKeysExt+")")
		db := fs.String("db", "", "find the default API key file beside the database at `PATH`, which is not opened (default $"+envDB+", or "+defaultDBPath+")")

		return func(ctx context.Context, s streams, args []string) error {
			if len(args) == 0 {
				return usagef("missing subcommand: create, list or revoke")
			}
			subcommand, rest := args[0], args[1:]
			if subcommand != "create" && (len(roles) > 0 || isFlagSet(fs, "name")) {
				return usagef("--role and --name are only for apikey create")
			}

			vf := &vaultFlags{db: *db}
			path := apiKeyPath(*keysFlag, vf.dbPath())
			switch subcommand {
			case "create":
				return runAPIKeyCreate(s, path, rest, roles, *name)
			case "list":
				return runAPIKeyList(s, path, rest)
			case "revoke":
				return runAPIKeyRevoke(s, path, rest)
			default:
				return usagef("unknown subcommand %s: want create, list or revoke", quoteArg(subcommand))
			}
		}
	},
}

// roleList is the value of --role: every role given, in order, not yet
// validated.
type roleList []string

func (r *roleList) String() string { return strings.Join(*r, ",") }

func (r *roleList) Set(value string) error {
	*r = append(*r, strings.Split(value, ",")...)
	return nil
}

// keyIDPattern matches a key id, the public part of a secret.
var keyIDPattern = regexp.MustCompile(`^[0-9a-f]{8}$`)

func isFlagSet(fs *flag.FlagSet, name string) bool {
	set := false
	fs.Visit(func(f *flag.Flag) { set = set || f.Name == name })
	return set
}

// apiKeyPath returns the API key file path: flagPath if it is not empty, else
// $TOKENVAULT_API_KEYS, else the database path with its extension replaced by
// ".apikeys".
func apiKeyPath(flagPath, dbPath string) string {
	if flagPath != "" {
		return flagPath
	}
	if env := os.Getenv(envAPIKeyFile); env != "" {
		return env
	}

	path := strings.TrimSuffix(dbPath, filepath.Ext(dbPath)) + apiKeysExt
	if path == dbPath {
		path = dbPath + apiKeysExt
	}
	return path
}

func runAPIKeyCreate(s streams, path string, args []string, roleNames roleList, name string) error {
	if len(args) > 0 {
		return usagef("unexpected argument %s: apikey create takes no arguments", quoteArg(args[0]))
	}
	if len(roleNames) == 0 {
		return usagef("missing --role: give the key at least one role, from tokenize, detokenize, lifecycle and admin")
	}
	roles := make([]apikey.Role, len(roleNames))
	for i, roleName := range roleNames {
		role, err := apikey.ParseRole(roleName)
		if err != nil {
			return usagef("unknown role %s in --role: want tokenize, detokenize, lifecycle or admin", quoteArg(roleName))
		}
		roles[i] = role
	}

	file, err := apikey.Open(path)
	if err != nil {
		return apikeyError(err)
	}
	existed, err := fileExists(path)
	if err != nil {
		return fmt.Errorf("check API key file %s: %w", path, err)
	}
	secret, key, err := file.Create(name, roles)
	if errors.Is(err, apikey.ErrInvalid) {
		return usagef("%s", errorMessage(err))
	}
	if err != nil {
		return apikeyError(err)
	}

	if _, err := fmt.Fprintln(s.stdout, secret); err != nil {
		return err
	}
	if !existed {
		fmt.Fprintf(s.stderr, "tokenvault apikey: created the API key file %s with mode 0600\n", path)
	}
	fmt.Fprintf(s.stderr, "tokenvault apikey: created API key %s%s with roles %s in %s.\n", key.ID, describeName(key.Name), joinRoles(key.Roles), path)
	fmt.Fprintln(s.stderr, "  The secret on standard output is shown only once: store it now, because the file keeps only its hash.")
	return nil
}

func runAPIKeyList(s streams, path string, args []string) error {
	if len(args) > 0 {
		return usagef("unexpected argument %s: apikey list takes no arguments", quoteArg(args[0]))
	}
	file, err := apikey.Open(path)
	if err != nil {
		return apikeyError(err)
	}
	keys, err := file.List()
	if err != nil {
		return apikeyError(err)
	}

	if exists, err := fileExists(path); err == nil && !exists {
		fmt.Fprintf(s.stderr, "tokenvault apikey: the API key file %s does not exist yet: 'tokenvault apikey create' creates it\n", path)
	}
	return writeKeyTable(s.stdout, keys)
}

// writeKeyTable writes one line per key, under a header, in aligned columns.
// Times are RFC 3339 in UTC, and "-" fills an empty name or revocation time.
func writeKeyTable(w io.Writer, keys []apikey.Key) error {
	table := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(table, "ID\tNAME\tROLES\tCREATED\tREVOKED")
	for _, k := range keys {
		name := k.Name
		if name == "" {
			name = "-"
		}
		revoked := "-"
		if !k.Revoked.IsZero() {
			revoked = k.Revoked.UTC().Format(time.RFC3339)
		}
		fmt.Fprintf(table, "%s\t%s\t%s\t%s\t%s\n", k.ID, name, joinRoles(k.Roles), k.Created.UTC().Format(time.RFC3339), revoked)
	}
	return table.Flush()
}

func runAPIKeyRevoke(s streams, path string, args []string) error {
	switch {
	case len(args) == 0:
		return usagef("missing ID: pass the id of the key to revoke, as 'tokenvault apikey list' prints it")
	case len(args) > 1:
		return usagef("unexpected argument %s: apikey revoke takes one ID", quoteArg(args[1]))
	}
	id := args[0]
	if !keyIDPattern.MatchString(id) {
		// The argument is not echoed, because it may be a secret.
		return usagef("invalid key id: want the 8 lowercase hexadecimal digits that 'tokenvault apikey list' prints, not a secret")
	}

	file, err := apikey.Open(path)
	if err != nil {
		return apikeyError(err)
	}
	before, err := findKey(file, id)
	if err != nil {
		return apikeyError(err)
	}
	if before != nil && !before.Revoked.IsZero() {
		fmt.Fprintf(s.stderr, "tokenvault apikey: API key %s%s was already revoked at %s\n",
			before.ID, describeName(before.Name), before.Revoked.UTC().Format(time.RFC3339))
		return nil
	}

	err = file.Revoke(id)
	if errors.Is(err, apikey.ErrNotFound) {
		return fmt.Errorf("no API key with id %s in %s", id, path)
	}
	if err != nil {
		return apikeyError(err)
	}
	name := ""
	if before != nil {
		name = before.Name
	}
	fmt.Fprintf(s.stderr, "tokenvault apikey: revoked API key %s%s. A running server rejects it within about a second.\n",
		id, describeName(name))
	return nil
}

// findKey returns the key of file with the id, or nil if there is none.
func findKey(file *apikey.File, id string) (*apikey.Key, error) {
	keys, err := file.List()
	if err != nil {
		return nil, err
	}
	for i := range keys {
		if keys[i].ID == id {
			return &keys[i], nil
		}
	}
	return nil, nil
}

func describeName(name string) string {
	if name == "" {
		return ""
	}
	return " (" + strconv.Quote(name) + ")"
}

func joinRoles(roles []apikey.Role) string {
	names := make([]string, len(roles))
	for i, r := range roles {
		names[i] = string(r)
	}
	return strings.Join(names, ",")
}

// apikeyError returns err with the message that errorMessage returns.
func apikeyError(err error) error {
	return errors.New(errorMessage(err))
}

// errorMessage returns the message of err without the "apikey: " prefixes
// that package apikey puts on each wrapped error, because the command prints
// its own prefix once.
func errorMessage(err error) string {
	return strings.ReplaceAll(err.Error(), "apikey: ", "")
}
