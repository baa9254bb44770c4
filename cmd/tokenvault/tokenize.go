package main

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/tokenvault/tokenvault"
)

var tokenizeCommand = &command{
	name:     "tokenize",
	synopsis: "[flags] < values > tokens",
	summary:  "Tokenize one value per input line, writing one token per output line.",
	details: `
Each line of standard input is one value, and line N of standard output is its
token. A line ending may be LF or CRLF. A card number may separate groups of
digits with single spaces or dashes. A line that fails, such as an empty line or
an invalid card number, gets an empty output line and the message
"line N: reason" on standard error, which never contains the line; the other
lines are still tokenized, and the exit status is 1.

On the first run, with no keys configured and no database, tokenize creates the
database and a key file beside it (see 'tokenvault help keygen').`,
	setup: func(fs *flag.FlagSet) runFunc {
		vf := addVaultFlags(fs)
		tf := addTokenizeFlags(fs)

		return func(ctx context.Context, s streams, args []string) error {
			if len(args) > 0 {
				return usagef("unexpected argument %s: tokenize reads values from standard input, as in tokenvault tokenize < FILE", quoteArg(args[0]))
			}
			opts, isCard, err := tf.options(fs)
			if err != nil {
				return err
			}

			vault, err := vf.open(s.stderr, true)
			if err != nil {
				return err
			}
			err = processLineBatches(ctx, s, isCard, func(ctx context.Context, lines [][]byte) ([][]byte, []error) {
				return tokenizeLines(ctx, vault, isCard, lines, opts)
			})
			return closeVault(vault, err)
		}
	},
}

// tokenizeFlags are the flags of tokenize and import that choose the options
// of each Tokenize call.
type tokenizeFlags struct {
	format, valueType, scope, expiresIn *string
	deterministic, allowNonLuhn         *bool
}

func addTokenizeFlags(fs *flag.FlagSet) *tokenizeFlags {
	return &tokenizeFlags{
		format:        fs.String("format", "", "token `FORMAT`: opaque, card or card-first-six (default card for --type card, opaque for --type data)"),
		valueType:     fs.String("type", "card", "`TYPE` of each value: card (a card number) or data (any bytes, tokenized as given)"),
		deterministic: fs.Bool("deterministic", false, "return the same token for the same value, scope and format while that token is live"),
		scope:         fs.String("scope", "", "with --deterministic, tokenize within the scope `NAME`, so that the same value gets another token in each scope"),
		allowNonLuhn:  fs.Bool("allow-non-luhn", false, "accept card numbers that fail the Luhn check"),
		expiresIn:     fs.String("expires-in", "", "make tokens expire `DURATION` after creation, as a Go duration such as 720h or 90m, or \"never\" (default never)"),
	}
}

// options validates the flags and returns the options for each call, and
// whether the values are card numbers.
func (f *tokenizeFlags) options(fs *flag.FlagSet) ([]tokenvault.TokenizeOption, bool, error) {
	return tokenizeOptions(fs, *f.valueType, *f.format, *f.deterministic, *f.scope, *f.allowNonLuhn, *f.expiresIn)
}

// tokenizeOptions validates the flags of tokenize and returns the options
// for each call, and whether the lines are card numbers.
func tokenizeOptions(fs *flag.FlagSet, valueType, format string, deterministic bool, scope string, allowNonLuhn bool, expiresIn string) ([]tokenvault.TokenizeOption, bool, error) {
	var opts []tokenvault.TokenizeOption

	var isCard bool
	switch valueType {
	case "card":
		isCard = true
	case "data":
		if allowNonLuhn {
			return nil, false, usagef("--allow-non-luhn applies to --type card only")
		}
	default:
		return nil, false, usagef("invalid --type %s: expected card or data", quoteArg(valueType))
	}

	if format != "" {
		f, err := tokenvault.ParseFormat(format)
		if err != nil {
			return nil, false, usagef("invalid --format %s: expected opaque, card or card-first-six", quoteArg(format))
		}
		if !isCard && f != tokenvault.FormatOpaque {
			return nil, false, usagef("--format %s is for card numbers: --type data takes --format opaque only", f)
		}
		opts = append(opts, tokenvault.WithFormat(f))
	}

	if flagWasSet(fs, "scope") && !deterministic {
		return nil, false, usagef("--scope requires --deterministic")
	}
	if len(scope) > tokenvault.MaxScopeSize || !utf8.ValidString(scope) {
		return nil, false, usagef("invalid --scope: expected valid UTF-8 of at most %d bytes", tokenvault.MaxScopeSize)
	}
	if deterministic {
		opts = append(opts, tokenvault.Deterministic(scope))
	}
	if allowNonLuhn {
		opts = append(opts, tokenvault.AllowNonLuhn())
	}

	switch {
	case expiresIn == "" || expiresIn == "never":
	default:
		d, err := time.ParseDuration(expiresIn)
		if err != nil {
			return nil, false, usagef("invalid --expires-in %s: expected a Go duration such as 720h or 90m, or \"never\"", quoteArg(expiresIn))
		}
		if d <= 0 {
			return nil, false, usagef("invalid --expires-in %s: the duration must be positive; use \"never\" for tokens that do not expire", quoteArg(expiresIn))
		}
		opts = append(opts, tokenvault.ExpiresAfter(d))
	}
	return opts, isCard, nil
}

// tokenizeLines returns the token of each line, or its error, through the
// vault's batch tokenization. A problem with one line, such as an invalid
// card number, is a *lineError, whose message comes from the library, which
// never puts the value in it. A failure of the whole call, such as an expiry
// past the latest time the store can record or a failed store write, stops
// the run instead.
func tokenizeLines(ctx context.Context, vault *tokenvault.Vault, isCard bool, lines [][]byte, opts []tokenvault.TokenizeOption) ([][]byte, []error) {
	var results []tokenvault.TokenizeResult
	var callErr error
	if isCard {
		pans := make([]string, len(lines))
		for i, line := range lines {
			pans[i] = string(line)
		}
		results, callErr = vault.TokenizeCardBatch(ctx, pans, opts...)
	} else {
		results, callErr = vault.TokenizeBatch(ctx, lines, opts...)
	}

	outputs := make([][]byte, len(lines))
	errs := make([]error, len(lines))
	for i, r := range results {
		switch {
		case r.Err == nil:
			outputs[i] = []byte(r.Token)
		case oneValueFailed(r.Err, callErr):
			errs[i] = &lineError{msg: flagHints(errorText(r.Err))}
		default:
			errs[i] = errors.New(flagHints(errorText(r.Err)))
		}
	}
	return outputs, errs
}

// oneValueFailed reports whether err, the error of one value of a batch
// tokenization that failed with callErr as a whole (nil if it did not), is
// about that value alone.
func oneValueFailed(err, callErr error) bool {
	if callErr != nil && errors.Is(err, callErr) {
		return false
	}
	return errors.Is(err, tokenvault.ErrInvalidCardNumber) ||
		errors.Is(err, tokenvault.ErrInvalidData) ||
		errors.Is(err, tokenvault.ErrInvalidOption) ||
		errors.Is(err, tokenvault.ErrTokenSpaceExhausted)
}

// flagHints returns msg with the library's hints, which name Go options,
// changed to name the flags of tokenize.
func flagHints(msg string) string {
	msg = strings.ReplaceAll(msg, "use AllowNonLuhn", "use --allow-non-luhn")
	msg = strings.ReplaceAll(msg, "use FormatCard", "use --format card")
	return strings.ReplaceAll(msg, "use NoExpiry", "use --expires-in never")
}

var detokenizeCommand = &command{
	name:     "detokenize",
	synopsis: "[flags] < tokens > values",
	summary:  "Detokenize one token per input line, writing one value per output line.",
	details: `
Each line of standard input is one token, and line N of standard output is its
value: the digits of a card number, or the bytes of other data. Spaces and tabs
around a token are ignored. A token that is unknown, suspended, closed or
expired gets an empty output line and the message "line N: reason" on standard
error; the other lines are still detokenized, and the exit status is 1.

A value that contains a line break cannot be written as one line, so it fails
in the same way.`,
	setup: func(fs *flag.FlagSet) runFunc {
		vf := addVaultFlags(fs)
		return func(ctx context.Context, s streams, args []string) error {
			if len(args) > 0 {
				return usagef("unexpected argument %s: detokenize reads tokens from standard input, as in tokenvault detokenize < FILE", quoteArg(args[0]))
			}

			vault, err := vf.open(s.stderr, false)
			if err != nil {
				return err
			}
			err = processLines(ctx, s, true, func(ctx context.Context, line []byte) ([]byte, error) {
				return detokenizeLine(ctx, vault, line)
			})
			return closeVault(vault, err)
		}
	},
}

// detokenizeLine returns the value of the token on one line.
func detokenizeLine(ctx context.Context, vault *tokenvault.Vault, line []byte) ([]byte, error) {
	token := strings.Trim(string(line), " \t")
	if token == "" {
		return nil, &lineError{msg: "line is empty, expected a token"}
	}

	value, err := vault.Detokenize(ctx, token)
	if err != nil {
		if reason := detokenizeFailure(err); reason != "" {
			return nil, &lineError{msg: reason}
		}
		// Errors from the store name the token. Keep it out of the message,
		// like every other part of the line.
		return nil, errors.New(strings.ReplaceAll(errorText(err), token, "<token>"))
	}
	// tokenize strips a trailing CR as part of a CRLF ending, so a value
	// that ends in one would not survive a round trip either.
	if bytes.IndexByte(value, '\n') >= 0 || bytes.HasSuffix(value, []byte("\r")) {
		return nil, &lineError{msg: "the value contains a line break, so it cannot be written as one output line"}
	}
	return value, nil
}

// detokenizeFailure returns the reason for an error that concerns one token,
// or "" for an error that stops the run.
func detokenizeFailure(err error) string {
	switch {
	case errors.Is(err, tokenvault.ErrNotFound):
		return "token not found: it is unknown, malformed or altered"
	case errors.Is(err, tokenvault.ErrSuspended):
		return "token is suspended: run 'tokenvault activate' to detokenize it again"
	case errors.Is(err, tokenvault.ErrClosed):
		return "token is closed and its value is deleted"
	case errors.Is(err, tokenvault.ErrExpired):
		return "token has expired"
	case errors.Is(err, tokenvault.ErrUnknownKey):
		return "token's record is encrypted under a key that is not in the key ring"
	case errors.Is(err, tokenvault.ErrIntegrity):
		return "token's stored record failed its integrity check"
	default:
		return ""
	}
}

// closeVault closes vault and returns err, or the close error if err is nil.
func closeVault(vault *tokenvault.Vault, err error) error {
	closeErr := vault.Close()
	if err != nil {
		return err
	}
	if closeErr != nil {
		return fmt.Errorf("close database: %w", closeErr)
	}
	return nil
}

func flagWasSet(fs *flag.FlagSet, name string) bool {
	set := false
	fs.Visit(func(f *flag.Flag) {
		if f.Name == name {
			set = true
		}
	})
	return set
}
