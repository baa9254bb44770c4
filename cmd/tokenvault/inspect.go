package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"

	"github.com/tokenvault/tokenvault"
)

var inspectCommand = &command{
	name:     "inspect",
	synopsis: "[flags] TOKEN",
	summary:  "Print a token's state, metadata and history as JSON, never its value.",
	details: `
The JSON object has the keys token, state (active, suspended or closed),
expired, revision, kind (card or data), format, brand, first6 (only for the
card-first-six format), last4, deterministic, scope (only for deterministic
tokens), created, updated, expires (omitted when the token does not expire),
suspended_by (the parties that hold a suspension, omitted when none does) and
history. history lists the changes after the token was issued, oldest first.
Each entry has revision, type (suspended, activated, closed, expired,
value_updated, suspension_lifted or notification_recorded), from, to, reason,
actor and time. Times are RFC 3339 in UTC. inspect works for
closed tokens too.`,
	setup: func(fs *flag.FlagSet) runFunc {
		vf := addVaultFlags(fs)
		return func(ctx context.Context, s streams, args []string) error {
			token, err := tokenArgument(args)
			if err != nil {
				return err
			}

			vault, err := vf.open(s.stderr, false)
			if err != nil {
				return err
			}
			info, err := vault.Inspect(ctx, token)
			if err == nil {
				err = writeJSON(s, info)
			} else if errors.Is(err, tokenvault.ErrNotFound) {
				err = fmt.Errorf("token %s: %w", quoteArg(token), err)
			}
			return closeVault(vault, err)
		}
	},
}

func writeJSON(s streams, v any) error {
	data, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return err
	}
	_, err = s.stdout.Write(append(data, '\n'))
	return err
}
