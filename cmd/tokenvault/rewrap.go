package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"slices"

	"github.com/tokenvault/tokenvault"
)

var rewrapCommand = &command{
	name:     "rewrap",
	synopsis: "[--batch N] [flags]",
	summary:  "Re-encrypt every value under the primary key, the first in the key ring.",
	details: `
Use rewrap to rotate keys: write the keys with a new primary in front with
'keygen --rotate', and run rewrap with them. It prints progress on standard
error (a bar with the time left on a terminal, a line every 10 seconds
otherwise) and a summary on standard output: the number of values
re-encrypted, each value that failed with its token and key id, and the number
of values left under each key. When every value was re-encrypted, it compacts
the database file, so that no copy of an old ciphertext stays in its free
pages. Once a key has no values left, remove it from the key ring.

An interrupted rewrap resumes after its last committed batch when run again.
The exit status is 1 if any value failed.`,
	setup: func(fs *flag.FlagSet) runFunc {
		vf := addVaultFlags(fs)
		batch := fs.Int("batch", tokenvault.DefaultRewrapBatch, "re-encrypt `N` values per database transaction")

		return func(ctx context.Context, s streams, args []string) error {
			if len(args) > 0 {
				return usagef("unexpected argument %s: rewrap takes no arguments", quoteArg(args[0]))
			}
			if *batch < 1 {
				return usagef("invalid --batch %d: expected a positive number", *batch)
			}

			vault, err := vf.open(s.stderr, false)
			if err != nil {
				return err
			}
			err = runRewrap(ctx, s, vault, *batch)
			return closeVault(vault, err)
		}
	},
}

func runRewrap(ctx context.Context, s streams, vault *tokenvault.Vault, batch int) error {
	total, err := valuesToRewrap(ctx, vault)
	if err != nil {
		return err
	}

	prog := newProgress(s.stderr, "rewrap", "values")
	opts := &tokenvault.RewrapOptions{
		BatchSize: batch,
		// The database file is locked to this process, so no other writer
		// can still be encrypting under an old key.
		RetireKeys: true,
		AfterBatch: func(r *tokenvault.RewrapReport) {
			done := r.Rewrapped + len(r.Failed)
			prog.update(int64(done), float64(done)/float64(max(total, 1)))
		},
	}
	report, err := vault.Rewrap(ctx, opts)
	prog.finish()
	if report != nil {
		printRewrapReport(s.stdout, vault.Keys(), report)
	}

	switch {
	case errors.Is(err, context.Canceled):
		return errors.New("interrupted: run rewrap again to resume after the last committed batch")
	case err != nil:
		return err
	case len(report.Failed) > 0:
		return fmt.Errorf("%d values could not be re-encrypted and stay under their old keys", len(report.Failed))
	}
	return compact(ctx, s, vault)
}

// valuesToRewrap returns the number of values under keys other than the
// primary, which a rewrap re-encrypts.
func valuesToRewrap(ctx context.Context, vault *tokenvault.Vault) (int, error) {
	usage, err := vault.KeyUsage(ctx)
	if err != nil {
		return 0, fmt.Errorf("count the values under each key: %w", err)
	}
	primary := vault.Keys().Primary()
	total := 0
	for id, n := range usage {
		if id != primary {
			total += n
		}
	}
	return total, nil
}

// compact compacts the database file and reports it on standard error.
func compact(ctx context.Context, s streams, vault *tokenvault.Vault) error {
	fmt.Fprintln(s.stderr, "tokenvault: compacting the database file, so that replaced and deleted ciphertexts leave its free pages")
	if err := vault.Compact(ctx); err != nil {
		return fmt.Errorf("compact: %w", err)
	}
	return nil
}

var compactCommand = &command{
	name:     "compact",
	synopsis: "[flags]",
	summary:  "Rewrite the database file without the old copies bbolt keeps in free pages.",
	details: `
bbolt writes every change to new pages and keeps the old ones, with the
ciphertexts of closed tokens, in the file's free space until later writes
reuse them. compact copies the live data to a new file and replaces the old
one. Run it after closing tokens whose values must be gone from the file.
rewrap runs it by itself. It needs free disk space for a second copy of the
live data.`,
	setup: func(fs *flag.FlagSet) runFunc {
		vf := addVaultFlags(fs)
		return func(ctx context.Context, s streams, args []string) error {
			if len(args) > 0 {
				return usagef("unexpected argument %s: compact takes no arguments", quoteArg(args[0]))
			}
			vault, err := vf.open(s.stderr, false)
			if err != nil {
				return err
			}
			return closeVault(vault, compact(ctx, s, vault))
		}
	},
}

// printRewrapReport writes the summary of a rewrap: counts, failures and the
// values left under each key.
func printRewrapReport(w io.Writer, keys *tokenvault.KeyRing, report *tokenvault.RewrapReport) {
	primary := keys.Primary()
	fmt.Fprintf(w, "re-encrypted: %d values under key %s\n", report.Rewrapped, primary)
	fmt.Fprintf(w, "failed: %d\n", len(report.Failed))
	for _, f := range report.Failed {
		fmt.Fprintf(w, "  token %s under key %s: %s\n", f.Token, f.KeyID, errorText(f.Err))
	}
	if report.Remaining == nil {
		fmt.Fprintln(w, "remaining per key: unknown, because the run did not finish")
		return
	}

	fmt.Fprintln(w, "remaining per key:")
	// The key ring's keys in its order, primary first, then any other key
	// that records use.
	ids := keys.KeyIDs()
	var others []tokenvault.KeyID
	for id := range report.Remaining {
		if !slices.Contains(ids, id) {
			others = append(others, id)
		}
	}
	slices.Sort(others)
	for _, id := range append(ids, others...) {
		n := report.Remaining[id]
		switch {
		case id == primary:
			fmt.Fprintf(w, "  %s: %d (primary)\n", id, n)
		case n == 0:
			fmt.Fprintf(w, "  %s: 0 (no values left: you can remove this key from the key ring)\n", id)
		default:
			fmt.Fprintf(w, "  %s: %d (keep this key until rewrap reports 0)\n", id, n)
		}
	}
}
