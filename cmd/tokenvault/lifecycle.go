package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"unicode/utf8"

	"github.com/tokenvault/tokenvault"
)

// transitionFunc is Vault.SuspendToken, ActivateToken or CloseToken.
type transitionFunc func(v *tokenvault.Vault, ctx context.Context, token string, opts ...tokenvault.ChangeOption) error

var suspendCommand = newTransitionCommand("suspend", "suspended", (*tokenvault.Vault).SuspendToken,
	"Suspend a token, so that detokenize fails until the token is activated again.", `
Suspending a suspended token succeeds and records nothing. A closed token
cannot be suspended.`)

var activateCommand = newTransitionCommand("activate", "active", (*tokenvault.Vault).ActivateToken,
	"Activate a suspended token, so that detokenize returns its value again.", `
Activating an active token succeeds and records nothing. A closed token cannot
be activated.`)

var closeCommand = newTransitionCommand("close", "closed", (*tokenvault.Vault).CloseToken,
	"Close a token for good: its encrypted value is deleted.", `
Closing cannot be undone. The token stays in the vault with its history, so
inspect still shows it and it is never issued again, but detokenize fails for
it. Closing a closed token succeeds and records nothing. The old copy of the
encrypted value stays in the database file's free pages until later writes
reuse them; run 'tokenvault compact' to remove it at once.`)

func newTransitionCommand(name, state string, transition transitionFunc, summary, details string) *command {
	return &command{
		name:     name,
		synopsis: "[--reason TEXT] [--actor TEXT] [flags] TOKEN",
		summary:  summary,
		details: details + `

The reason and the actor are recorded in the token's history, which inspect
shows.`,
		setup: func(fs *flag.FlagSet) runFunc {
			vf := addVaultFlags(fs)
			reason := fs.String("reason", "", "record `TEXT` in the history as the reason for the change, such as \"card reported lost\"")
			actor := fs.String("actor", "", "record `TEXT` in the history as who requested the change, such as a user or service id")

			return func(ctx context.Context, s streams, args []string) error {
				token, err := tokenArgument(args)
				if err != nil {
					return err
				}
				if err := checkChangeText(*reason, *actor); err != nil {
					return err
				}

				vault, err := vf.open(s.stderr, false)
				if err != nil {
					return err
				}
				err = transition(vault, ctx, token, tokenvault.WithReason(*reason), tokenvault.WithActor(*actor))
				switch {
				case err == nil:
					fmt.Fprintf(s.stderr, "tokenvault %s: token %s is %s\n", name, token, state)
				case errors.Is(err, tokenvault.ErrNotFound):
					err = fmt.Errorf("token %s: %w", quoteArg(token), err)
				}
				return closeVault(vault, err)
			}
		},
	}
}

// tokenArgument returns the one TOKEN argument of args.
func tokenArgument(args []string) (string, error) {
	switch len(args) {
	case 0:
		return "", usagef("missing TOKEN argument")
	case 1:
		return args[0], nil
	default:
		return "", usagef("expected one TOKEN argument, got %d arguments", len(args))
	}
}

// checkChangeText rejects --reason and --actor values that the vault would
// reject, as usage errors.
func checkChangeText(reason, actor string) error {
	if len(reason) > tokenvault.MaxReasonSize || !utf8.ValidString(reason) {
		return usagef("invalid --reason: expected valid UTF-8 of at most %d bytes", tokenvault.MaxReasonSize)
	}
	if len(actor) > tokenvault.MaxActorSize || !utf8.ValidString(actor) {
		return usagef("invalid --actor: expected valid UTF-8 of at most %d bytes", tokenvault.MaxActorSize)
	}
	return nil
}
