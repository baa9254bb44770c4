package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"path/filepath"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"
	"unicode"

	"github.com/tokenvault/tokenvault"
	"github.com/tokenvault/tokenvault/webhook"
)

// Webhooks file location when --webhooks is not given.
const (
	envWebhooks = "TOKENVAULT_WEBHOOKS"
	webhooksExt = ".webhooks" // replaces the database path's extension
)

var webhooksCommand = &command{
	name:     "webhooks",
	synopsis: "list | dead-letters [ENDPOINT] | redeliver ENDPOINT SEQ [SEQ...]",
	summary:  "List the webhook endpoints, and show or redeliver their dead letters.",
	details: `
When the webhooks file exists, tokenvault serve sends each event of the
vault's outbox, such as a token created, suspended or closed, to every
endpoint in the file as a signed JSON POST request. Package
github.com/tokenvault/tokenvault/webhook describes the requests and how to
verify them. The file is JSON with mode 0600:

    {"endpoints": [
      {"id": "billing", "url": "https://billing.example/hooks", "secret": "BASE64"}
    ]}

An id is 1 to 56 characters of A-Z, a-z, 0-9, '.', '_' and '-'. A secret is
at least 16 random bytes in standard base64, such as the output of
'head -c 32 /dev/urandom | base64', and the receiver has the same bytes.

Each endpoint gets the events in outbox order, except that a redelivered
dead letter comes after the events sent since it was set aside, which can
include later revisions of its token. Receivers that need order compare each
token's "revision" field and ignore older ones, and drop repeats by the
body's "id" field. A new endpoint first gets every event since the vault was
created, because the outbox is never pruned.

A failed attempt (a status other than 2xx, a redirect, a network error, or
no response within 10s) is retried after a random wait of up to 1s, a limit
that doubles after each failed attempt up to 10m. After 12 failed attempts
the event becomes a dead letter of that endpoint, and the endpoint goes on
with the next event. When the database fails, for example on a full disk,
serve logs the error and starts the endpoint again after a random wait of
0.5s to 1s, a range that doubles with each failure in a row up to 30s to 1m.

list prints the id and URL of every endpoint, with any password in the URL
hidden and never a secret, and reads only the webhooks file. dead-letters
prints the dead letters of ENDPOINT, or of every endpoint in the file: the
event's seq, type, token and revision, the attempts, when the event was set
aside, and the last error. redeliver ENDPOINT SEQ queues dead letter SEQ of
ENDPOINT again, and serve sends it before any newer event when it next
starts.

dead-letters and redeliver open the database, so they cannot run while
tokenvault serve holds it: stop serve, run them, then start serve again.

The commands use the webhooks file at --webhooks PATH, else at
$TOKENVAULT_WEBHOOKS, else beside the database: the database path with its
extension replaced by .webhooks, such as ./tokenvault.webhooks for
./tokenvault.db.`,
	setup: func(fs *flag.FlagSet) runFunc {
		vf := addVaultFlags(fs)
		webhooksFlag := fs.String("webhooks", "", "use the webhooks file at `PATH` (default $"+envWebhooks+", or the database path with its extension replaced by "+webhooksExt+")")

		return func(ctx context.Context, s streams, args []string) error {
			if len(args) == 0 {
				return usagef("missing subcommand: list, dead-letters or redeliver")
			}
			subcommand, rest := args[0], args[1:]
			path, _ := webhooksPath(*webhooksFlag, vf.dbPath())

			switch subcommand {
			case "list":
				return runWebhooksList(s, path, rest)
			case "dead-letters":
				return runWebhooksDeadLetters(ctx, s, vf, path, rest)
			case "redeliver":
				return runWebhooksRedeliver(ctx, s, vf, path, rest)
			default:
				return usagef("unknown subcommand %s: want list, dead-letters or redeliver", quoteArg(subcommand))
			}
		}
	},
}

// webhooksPath returns the webhooks file path: flagPath if it is not empty,
// else $TOKENVAULT_WEBHOOKS, else the database path with its extension
// replaced by ".webhooks". named reports whether a flag or the environment
// gave the path.
func webhooksPath(flagPath, dbPath string) (path string, named bool) {
	path = flagOrEnv(flagPath, envWebhooks, "")
	if path != "" {
		return path, true
	}

	path = strings.TrimSuffix(dbPath, filepath.Ext(dbPath)) + webhooksExt
	if path == dbPath {
		path = dbPath + webhooksExt
	}
	return path, false
}

// loadEndpoints returns the endpoints of the webhooks file at path, with an
// error that explains how to create a missing file.
func loadEndpoints(path string) ([]webhook.Endpoint, error) {
	endpoints, err := webhook.LoadEndpoints(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("webhooks file %s does not exist: create it as 'tokenvault help webhooks' shows, or pass --webhooks PATH", path)
	}
	if err != nil {
		return nil, errors.New(strings.ReplaceAll(err.Error(), "webhook: ", ""))
	}
	return endpoints, nil
}

func runWebhooksList(s streams, path string, args []string) error {
	if len(args) > 0 {
		return usagef("unexpected argument %s: webhooks list takes no arguments", quoteArg(args[0]))
	}
	endpoints, err := loadEndpoints(path)
	if err != nil {
		return err
	}

	table := tabwriter.NewWriter(s.stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintln(table, "ID\tURL")
	for _, e := range endpoints {
		fmt.Fprintf(table, "%s\t%s\n", e.ID, e.RedactedURL())
	}
	if err := table.Flush(); err != nil {
		return err
	}
	if len(endpoints) == 0 {
		fmt.Fprintf(s.stderr, "tokenvault webhooks: the webhooks file %s has no endpoints\n", path)
	}
	return nil
}

func runWebhooksDeadLetters(ctx context.Context, s streams, vf *vaultFlags, path string, args []string) error {
	if len(args) > 1 {
		return usagef("unexpected argument %s: webhooks dead-letters takes at most one ENDPOINT", quoteArg(args[1]))
	}
	endpoints, err := loadEndpoints(path)
	if err != nil {
		return err
	}
	if len(args) == 1 {
		e, err := findEndpoint(endpoints, args[0], path)
		if err != nil {
			return err
		}
		endpoints = []webhook.Endpoint{e}
	}

	vault, err := openWebhooksVault(s.stderr, vf, "dead-letters")
	if err != nil {
		return err
	}
	err = writeDeadLetters(ctx, s, vault, endpoints)
	return closeVault(vault, err)
}

// writeDeadLetters prints the dead letters of endpoints as a table.
func writeDeadLetters(ctx context.Context, s streams, vault *tokenvault.Vault, endpoints []webhook.Endpoint) error {
	table := tabwriter.NewWriter(s.stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintln(table, "ENDPOINT\tSEQ\tTYPE\tTOKEN\tREVISION\tATTEMPTS\tSET_ASIDE\tLAST_ERROR")
	count := 0
	for _, e := range endpoints {
		letters, err := vault.DeadLetters(ctx, webhook.SubscriberName(e.ID))
		if err != nil {
			return fmt.Errorf("read dead letters of endpoint %s: %w", e.ID, err)
		}
		for _, l := range letters {
			fmt.Fprintf(table, "%s\t%d\t%s\t%s\t%d\t%d\t%s\t%s\n", e.ID, l.Event.Seq, l.Event.Type, l.Event.Token,
				l.Event.Revision, l.Attempts, l.Time.UTC().Format(time.RFC3339), printableError(l.LastError))
		}
		count += len(letters)
	}
	if err := table.Flush(); err != nil {
		return err
	}

	if count == 0 {
		fmt.Fprintln(s.stderr, "tokenvault webhooks: no dead letters")
	}
	return nil
}

// printableError returns a dead letter's LastError on one line, without
// the "webhook: " prefix, and with control characters, which a receiver's
// error could carry, replaced by spaces.
func printableError(text string) string {
	text = strings.ReplaceAll(text, "webhook: ", "")
	return strings.Map(func(r rune) rune {
		if unicode.IsControl(r) {
			return ' '
		}
		return r
	}, text)
}

func runWebhooksRedeliver(ctx context.Context, s streams, vf *vaultFlags, path string, args []string) error {
	switch len(args) {
	case 0:
		return usagef("missing ENDPOINT and SEQ: pass an endpoint id and the seq of a dead letter, as 'tokenvault webhooks dead-letters' prints them")
	case 1:
		return usagef("missing SEQ: pass the seq of a dead letter of the endpoint, as 'tokenvault webhooks dead-letters ENDPOINT' prints it")
	}
	var seqs []uint64
	for _, arg := range args[1:] {
		seq, err := strconv.ParseUint(arg, 10, 64)
		if err != nil || seq == 0 {
			return usagef("invalid SEQ %s: want a positive integer, as 'tokenvault webhooks dead-letters' prints it", quoteArg(arg))
		}
		seqs = append(seqs, seq)
	}
	endpoints, err := loadEndpoints(path)
	if err != nil {
		return err
	}
	e, err := findEndpoint(endpoints, args[0], path)
	if err != nil {
		return err
	}

	vault, err := openWebhooksVault(s.stderr, vf, "redeliver")
	if err != nil {
		return err
	}
	err = redeliver(ctx, s, vault, e, seqs)
	return closeVault(vault, err)
}

// redeliver queues the dead letters seqs of e. It stops at the first seq
// that is not a dead letter, after queuing those before it.
func redeliver(ctx context.Context, s streams, vault *tokenvault.Vault, e webhook.Endpoint, seqs []uint64) error {
	name := webhook.SubscriberName(e.ID)
	for _, seq := range seqs {
		err := vault.Redeliver(ctx, name, seq)
		if errors.Is(err, tokenvault.ErrNotFound) {
			return fmt.Errorf("endpoint %s has no dead letter with seq %d: 'tokenvault webhooks dead-letters %s' lists them", e.ID, seq, e.ID)
		}
		if err != nil {
			return fmt.Errorf("redeliver seq %d to endpoint %s: %w", seq, e.ID, err)
		}
		fmt.Fprintf(s.stderr, "tokenvault webhooks: queued dead letter seq %d of endpoint %s; serve sends it when it next starts\n", seq, e.ID)
	}
	return nil
}

// findEndpoint returns the endpoint with id, or an error that names the
// webhooks file.
func findEndpoint(endpoints []webhook.Endpoint, id, path string) (webhook.Endpoint, error) {
	for _, e := range endpoints {
		if e.ID == id {
			return e, nil
		}
	}
	return webhook.Endpoint{}, fmt.Errorf("no endpoint with id %s in the webhooks file %s: 'tokenvault webhooks list' prints the endpoints", quoteArg(id), path)
}

// openWebhooksVault opens the existing vault, with an error that explains
// a database held by serve.
func openWebhooksVault(stderr io.Writer, vf *vaultFlags, subcommand string) (*tokenvault.Vault, error) {
	vault, err := vf.open(stderr, false)
	if errors.Is(err, tokenvault.ErrLocked) {
		return nil, fmt.Errorf("database %s is in use by another process, such as tokenvault serve: "+
			"webhooks %s needs the database, so stop serve, run it, then start serve again", vf.dbPath(), subcommand)
	}
	return vault, err
}

// startWebhooks starts a webhook dispatcher for endpoints, if there are any,
// that logs each failed attempt and each restart of an endpoint's
// subscription, and returns the function that stops it and waits until it
// has stopped. serve calls that function before it closes the vault.
func startWebhooks(logger *slog.Logger, vault *tokenvault.Vault, path string, endpoints []webhook.Endpoint) (stop func()) {
	if len(endpoints) == 0 {
		return func() {}
	}

	ids := make([]string, len(endpoints))
	for i, e := range endpoints {
		ids[i] = e.ID
	}
	d := webhook.NewDispatcher(vault, endpoints, &webhook.Options{
		OnError: func(f webhook.Failure) {
			attrs := []any{"endpoint", f.Endpoint, "event_id", f.Event.ID, "seq", f.Event.Seq, "attempt", f.Attempt, "error", f.Err.Error()}
			if f.Dead {
				logger.Error("webhook delivery failed for the last time, so the event is now a dead letter: stop serve and run 'tokenvault webhooks redeliver ENDPOINT SEQ' to send it again", attrs...)
				return
			}
			logger.Warn("webhook delivery failed, retrying after a backoff", attrs...)
		},
		// The backoff spaces these records out to one every 30s to 1m per
		// endpoint after a few failures in a row.
		OnSubscriptionError: func(e webhook.SubscriptionError) {
			logger.Error("webhook delivery to an endpoint stopped on an error, restarting it after a backoff",
				"endpoint", e.Endpoint, "failures", e.Failures, "retry_in", e.Wait.String(), "error", errorText(e.Err))
		},
	})

	logger.Info("started webhook dispatcher", "webhooks", path, "endpoints", ids)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		// Run returns before ctx is done only on an error that subscribing
		// again cannot fix, such as a closed vault.
		err := d.Run(ctx)
		if ctx.Err() == nil {
			logger.Error("webhook dispatcher stopped, so no webhooks are sent until serve restarts", "webhooks", path, "error", errorText(err))
		}
	}()

	return func() {
		cancel()
		<-done
		logger.Info("stopped webhook dispatcher")
	}
}

// loadServeEndpoints returns the endpoints for serve: none if the webhooks
// file does not exist and no flag or environment variable named it.
func loadServeEndpoints(logger *slog.Logger, path string, named bool) ([]webhook.Endpoint, error) {
	endpoints, err := webhook.LoadEndpoints(path)
	switch {
	case errors.Is(err, fs.ErrNotExist) && !named:
		logger.Info("no webhooks file, so serve sends no webhooks", "webhooks", path)
		return nil, nil
	case err != nil:
		return nil, err
	case len(endpoints) == 0:
		logger.Warn("the webhooks file has no endpoints, so serve sends no webhooks", "webhooks", path)
	}
	return endpoints, nil
}
