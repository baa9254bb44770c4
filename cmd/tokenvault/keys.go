package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"strings"

	"github.com/tokenvault/tokenvault"
)

// Database location when neither --db nor TOKENVAULT_DB is given.
const (
	envDB         = "TOKENVAULT_DB"
	defaultDBPath = "./tokenvault.db"
)

var keygenCommand = &command{
	name:     "keygen",
	synopsis: "[--rotate [--db PATH] [--key-file PATH]] [--out FILE]",
	summary:  "Generate a new key ring: a Fernet key and an index key.",
	details: `
Without --out, keygen writes the key file to standard output. With --out, it
creates FILE with mode 0600 and never overwrites an existing file.

The key file has the lines TOKENVAULT_KEYS=... and TOKENVAULT_INDEX_KEY=...,
so it also works as an environment file. Anyone with the keys and the database
can read every value: keep the key file away from the database, and back it up,
because without it nothing in the vault can be detokenized.

With --rotate, keygen reads the vault's current keys, as the other commands
do, and writes them with a new Fernet key in front and the same index key. To
rotate the encryption key: run 'keygen --rotate --out NEW', use NEW as the key
file (or its lines as the environment), run 'tokenvault rewrap', and when it
reports no values left under the old key, remove that key from
TOKENVAULT_KEYS.`,
	setup: func(fs *flag.FlagSet) runFunc {
		out := fs.String("out", "", "write the key file to `FILE` with mode 0600 instead of standard output")
		rotate := fs.Bool("rotate", false, "write the vault's current keys with a new primary Fernet key in front, instead of new keys")
		vf := addVaultFlags(fs)
		return func(ctx context.Context, s streams, args []string) error {
			if len(args) > 0 {
				return usagef("unexpected argument %s: keygen takes no arguments", quoteArg(args[0]))
			}
			if !*rotate && (vf.db != "" || vf.keyFile != "") {
				return usagef("--db and --key-file select the keys to rotate: use them with --rotate")
			}
			return runKeygen(s, *out, *rotate, vf)
		}
	},
}

func runKeygen(s streams, out string, rotate bool, vf *vaultFlags) error {
	keys, err := newKeys(s.stderr, rotate, vf)
	if err != nil {
		return err
	}

	if out == "" {
		_, err := s.stdout.Write(keys.KeyFile())
		return err
	}
	if err := keys.WriteKeyFile(out); err != nil {
		if errors.Is(err, fs.ErrExist) {
			return fmt.Errorf("key file %s already exists: keygen never overwrites keys, so choose another path", out)
		}
		return err
	}
	fmt.Fprintf(s.stderr, "tokenvault keygen: wrote %s with mode 0600 (Fernet key id %s, index key id %s)\n",
		out, keys.Primary(), keys.IndexKeyID())
	return nil
}

// newKeys returns a new key ring, or with rotate the vault's current ring with
// a new primary key.
func newKeys(stderr io.Writer, rotate bool, vf *vaultFlags) (*tokenvault.KeyRing, error) {
	if !rotate {
		return tokenvault.GenerateKeyRing()
	}

	dbPath := vf.dbPath()
	dbExists, err := fileExists(dbPath)
	if err != nil {
		return nil, fmt.Errorf("check database %s: %w", dbPath, err)
	}
	if !dbExists && vf.keyFile == "" && os.Getenv(tokenvault.EnvKeys) == "" {
		return nil, fmt.Errorf("database %s does not exist and no keys are configured: there are no keys to rotate", dbPath)
	}
	current, err := vf.loadKeys(stderr, dbPath, true)
	if err != nil {
		return nil, err
	}
	return current.Rotate()
}

// vaultFlags are the flags of every command that opens the vault.
type vaultFlags struct {
	db      string
	keyFile string
}

func addVaultFlags(fs *flag.FlagSet) *vaultFlags {
	f := &vaultFlags{}
	fs.StringVar(&f.db, "db", "", "use the database file at `PATH` (default $"+envDB+", or "+defaultDBPath+" if it is unset)")
	fs.StringVar(&f.keyFile, "key-file", "", "read the keys from the key file at `PATH`, instead of $"+tokenvault.EnvKeys+
		" and $"+tokenvault.EnvIndexKey+" or the key file beside the database")
	return f
}

// dbPath returns the database path from --db, TOKENVAULT_DB or the default.
func (f *vaultFlags) dbPath() string {
	if f.db != "" {
		return f.db
	}
	if env := os.Getenv(envDB); env != "" {
		return env
	}
	return defaultDBPath
}

// open opens the vault with opts. A missing database is an error unless
// mayCreate is set. Then open creates the database, and also the key file
// beside it when no keys are configured. The store's log records, such as a
// failed merge of the fingerprint index or a schema upgrade, go to stderr as
// text unless opts set another logger.
func (f *vaultFlags) open(stderr io.Writer, mayCreate bool, opts ...tokenvault.Option) (*tokenvault.Vault, error) {
	dbPath := f.dbPath()
	dbExists, err := fileExists(dbPath)
	if err != nil {
		return nil, fmt.Errorf("check database %s: %w", dbPath, err)
	}
	if !dbExists && !mayCreate {
		return nil, fmt.Errorf("database %s does not exist: tokenize creates it, or pass --db or set %s to use another", dbPath, envDB)
	}

	keys, err := f.loadKeys(stderr, dbPath, dbExists)
	if err != nil {
		return nil, err
	}
	opts = append([]tokenvault.Option{tokenvault.WithLogger(slog.New(slog.NewTextHandler(stderr, nil)))}, opts...)
	vault, err := tokenvault.Open(dbPath, keys, opts...)
	if errors.Is(err, tokenvault.ErrLocked) {
		return nil, fmt.Errorf("open database %s: %w: if tokenvault serve has it open, stop serve or send the request to its HTTP API", dbPath, err)
	}
	if err != nil {
		return nil, fmt.Errorf("open database %s: %w", dbPath, err)
	}
	return vault, nil
}

// loadKeys returns the key ring from --key-file, the environment or the key
// file beside the database, in that order. It creates that key file only when
// the database does not exist, because a new key could not decrypt an
// existing one.
func (f *vaultFlags) loadKeys(stderr io.Writer, dbPath string, dbExists bool) (*tokenvault.KeyRing, error) {
	if f.keyFile != "" {
		return tokenvault.LoadKeyFile(f.keyFile)
	}
	if os.Getenv(tokenvault.EnvKeys) != "" || os.Getenv(tokenvault.EnvIndexKey) != "" {
		return tokenvault.KeyRingFromEnv()
	}

	keyPath := keyPathBeside(dbPath)
	keys, err := tokenvault.LoadKeyFile(keyPath)
	switch {
	case err == nil:
		return keys, nil
	case !errors.Is(err, fs.ErrNotExist):
		return nil, err
	case dbExists:
		return nil, fmt.Errorf("database %s exists but no key was found: pass --key-file, set %s and %s, or put the vault's key file at %s "+
			"(a new key cannot decrypt an existing database, so none is created)",
			dbPath, tokenvault.EnvKeys, tokenvault.EnvIndexKey, keyPath)
	}
	return createKeyFile(stderr, keyPath, dbPath)
}

// createKeyFile writes a new key ring to keyPath for a new database, and warns
// that the key sits beside the data.
func createKeyFile(stderr io.Writer, keyPath, dbPath string) (*tokenvault.KeyRing, error) {
	keys, err := tokenvault.GenerateKeyRing()
	if err != nil {
		return nil, err
	}

	err = keys.WriteKeyFile(keyPath)
	if errors.Is(err, fs.ErrExist) {
		// Another process created the file after LoadKeyFile found none.
		return tokenvault.LoadKeyFile(keyPath)
	}
	if err != nil {
		return nil, err
	}

	fmt.Fprintf(stderr, `tokenvault: created the key file %s (mode 0600) beside the new database %s.
  The key sits beside the data: anyone who can read both files can read every
  value in the vault. To keep them apart, move the key file elsewhere and pass
  --key-file PATH, or set %s and %s from its two lines
  and delete the file. Back it up: without it, nothing in the vault can be
  detokenized.
`, keyPath, dbPath, tokenvault.EnvKeys, tokenvault.EnvIndexKey)
	return keys, nil
}

// keyPathBeside returns the key file path for a database: the database path
// with its extension replaced by ".key".
func keyPathBeside(dbPath string) string {
	keyPath := strings.TrimSuffix(dbPath, filepath.Ext(dbPath)) + ".key"
	if keyPath == dbPath {
		keyPath = dbPath + ".key"
	}
	return keyPath
}

func fileExists(path string) (bool, error) {
	_, err := os.Stat(path)
	switch {
	case err == nil:
		return true, nil
	case errors.Is(err, fs.ErrNotExist):
		return false, nil
	default:
		return false, err
	}
}
