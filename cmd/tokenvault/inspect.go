package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"time"

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
tokens), created, updated, expires (omitted when the token does not expire)
and history. Each history entry has revision, from, to, reason, actor and time.
Times are RFC 3339 in UTC. inspect works for closed tokens too.`,
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
				err = writeJSON(s, newInspectOutput(info))
			} else if errors.Is(err, tokenvault.ErrNotFound) {
				err = fmt.Errorf("token %s: %w", quoteArg(token), err)
			}
			return closeVault(vault, err)
		}
	},
}

// inspectOutput is the JSON form of a tokenvault.TokenInfo.
type inspectOutput struct {
	Token         string             `json:"token"`
	State         string             `json:"state"`
	Expired       bool               `json:"expired"`
	Revision      uint64             `json:"revision"`
	Kind          string             `json:"kind"`
	Format        string             `json:"format"`
	Brand         string             `json:"brand,omitempty"`
	First6        string             `json:"first6,omitempty"`
	Last4         string             `json:"last4,omitempty"`
	Deterministic bool               `json:"deterministic"`
	Scope         *string            `json:"scope,omitempty"`
	Created       string             `json:"created"`
	Updated       string             `json:"updated"`
	Expires       string             `json:"expires,omitempty"`
	History       []historyEntryJSON `json:"history"`
}

type historyEntryJSON struct {
	Revision uint64 `json:"revision"`
	From     string `json:"from"`
	To       string `json:"to"`
	Reason   string `json:"reason"`
	Actor    string `json:"actor"`
	Time     string `json:"time"`
}

func newInspectOutput(info *tokenvault.TokenInfo) *inspectOutput {
	out := &inspectOutput{
		Token:         info.Token,
		State:         info.State.String(),
		Expired:       info.Expired,
		Revision:      info.Revision,
		Kind:          info.Kind.String(),
		Format:        info.Format.String(),
		Brand:         string(info.Brand),
		First6:        info.First6,
		Last4:         info.Last4,
		Deterministic: info.Deterministic,
		Created:       formatTime(info.Created),
		Updated:       formatTime(info.Updated),
		History:       []historyEntryJSON{},
	}
	if info.Deterministic {
		out.Scope = &info.Scope
	}
	if !info.Expires.IsZero() {
		out.Expires = formatTime(info.Expires)
	}

	for _, change := range info.History {
		out.History = append(out.History, historyEntryJSON{
			Revision: change.Revision,
			From:     change.From.String(),
			To:       change.To.String(),
			Reason:   change.Reason,
			Actor:    change.Actor,
			Time:     formatTime(change.Time),
		})
	}
	return out
}

// formatTime returns t in RFC 3339 in UTC, with the fraction of a second
// when t has one.
func formatTime(t time.Time) string {
	return t.UTC().Format(time.RFC3339Nano)
}

func writeJSON(s streams, v any) error {
	data, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return err
	}
	_, err = s.stdout.Write(append(data, '\n'))
	return err
}
