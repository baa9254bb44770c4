package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"

	"github.com/tokenvault/tokenvault/internal/digitgroups"
)

// Exit statuses.
const (
	exitOK      = 0
	exitFailure = 1 // a line or the command failed
	exitUsage   = 2 // the command line is invalid
)

// streams are the standard input and outputs of a command.
type streams struct {
	stdin  io.Reader
	stdout io.Writer
	stderr io.Writer
}

// command is one subcommand. setup defines the subcommand's flags on fs and
// returns the function that runs it with the positional arguments.
type command struct {
	name     string
	synopsis string // arguments after the name in the usage line
	summary  string // one-line description for the command list
	details  string // further paragraphs for "tokenvault help NAME"
	setup    func(fs *flag.FlagSet) runFunc
}

type runFunc func(ctx context.Context, s streams, args []string) error

// commands lists the subcommands in the order help prints them.
var commands = []*command{
	keygenCommand,
	tokenizeCommand,
	detokenizeCommand,
	importCommand,
	suspendCommand,
	activateCommand,
	closeCommand,
	inspectCommand,
	rewrapCommand,
	compactCommand,
	serveCommand,
	apikeyCommand,
	webhooksCommand,
}

// usageError is an invalid command line. It exits with status 2.
type usageError struct {
	msg string
}

func (e *usageError) Error() string { return e.msg }

func usagef(format string, args ...any) error {
	return &usageError{msg: fmt.Sprintf(format, args...)}
}

// errReported is a failure that the command has already described on
// standard error. It exits with status 1 and no further message.
var errReported = errors.New("failure already reported")

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	go func() {
		// After the first signal, restore the default behavior, so that a
		// second one ends the process even if shutting down hangs.
		<-ctx.Done()
		stop()
	}()

	code := run(ctx, os.Args[1:], streams{stdin: os.Stdin, stdout: os.Stdout, stderr: os.Stderr})
	stop()
	os.Exit(code)
}

// run runs the command line args and returns the exit status.
func run(ctx context.Context, args []string, s streams) int {
	if len(args) == 0 {
		printUsage(s.stderr)
		return exitUsage
	}
	switch args[0] {
	case "help", "-h", "-help", "--help":
		return runHelp(args[1:], s)
	}

	cmd := findCommand(args[0])
	if cmd == nil {
		fmt.Fprintf(s.stderr, "tokenvault: unknown command %s: run 'tokenvault help' for the list of commands\n", quoteArg(args[0]))
		return exitUsage
	}

	fs := flag.NewFlagSet("tokenvault "+cmd.name, flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.Usage = func() {}
	runCmd := cmd.setup(fs)
	positional, err := parseInterspersed(fs, args[1:])
	if errors.Is(err, flag.ErrHelp) {
		printCommandHelp(s.stdout, cmd)
		return exitOK
	}
	if err == nil {
		err = runCmd(ctx, s, positional)
	}
	return report(s.stderr, cmd, err)
}

// report prints err, unless it is nil or already reported, and returns the
// exit status for it.
func report(stderr io.Writer, cmd *command, err error) int {
	var usage *usageError
	switch {
	case err == nil:
		return exitOK
	case errors.As(err, &usage):
		fmt.Fprintf(stderr, "tokenvault %s: %s\n", cmd.name, usage.msg)
		fmt.Fprintf(stderr, "Run 'tokenvault help %s' for usage.\n", cmd.name)
		return exitUsage
	case errors.Is(err, errReported):
		return exitFailure
	case errors.Is(err, context.Canceled):
		fmt.Fprintf(stderr, "tokenvault %s: interrupted by a signal before the command finished\n", cmd.name)
		return exitFailure
	default:
		fmt.Fprintf(stderr, "tokenvault %s: %s\n", cmd.name, errorText(err))
		return exitFailure
	}
}

// errorText returns the message of err without the "tokenvault: " prefixes
// that the library puts on each wrapped error, because the command prints
// its own prefix once.
func errorText(err error) string {
	return strings.ReplaceAll(err.Error(), "tokenvault: ", "")
}

// parseInterspersed parses the flags of args, which may come before, between
// or after the positional arguments, and returns the positional arguments.
// Arguments after "--" are all positional.
func parseInterspersed(fs *flag.FlagSet, args []string) ([]string, error) {
	var positional []string
	for {
		if err := fs.Parse(args); err != nil {
			if errors.Is(err, flag.ErrHelp) {
				return nil, err
			}
			// The flag package quotes the invalid value in its message.
			return nil, usagef("%s", maskDigitRuns(err.Error()))
		}

		rest := fs.Args()
		consumed := len(args) - len(rest)
		if consumed > 0 && args[consumed-1] == "--" {
			return append(positional, rest...), nil
		}
		if len(rest) == 0 {
			return positional, nil
		}
		positional = append(positional, rest[0])
		args = rest[1:]
	}
}

func findCommand(name string) *command {
	for _, cmd := range commands {
		if cmd.name == name {
			return cmd
		}
	}
	return nil
}

// runHelp prints the usage of every command, or of the commands named in
// args, on standard output.
func runHelp(args []string, s streams) int {
	if len(args) == 0 {
		printUsage(s.stdout)
		for _, cmd := range commands {
			fmt.Fprintln(s.stdout)
			printCommandHelp(s.stdout, cmd)
		}
		return exitOK
	}

	for i, name := range args {
		cmd := findCommand(name)
		if cmd == nil {
			fmt.Fprintf(s.stderr, "tokenvault help: unknown command %s: run 'tokenvault help' for the list of commands\n", quoteArg(name))
			return exitUsage
		}
		if i > 0 {
			fmt.Fprintln(s.stdout)
		}
		printCommandHelp(s.stdout, cmd)
	}
	return exitOK
}

func printUsage(w io.Writer) {
	fmt.Fprintln(w, "tokenvault tokenizes card numbers and other secrets in a local vault file.")
	fmt.Fprintln(w)
	fmt.Fprintln(w, "Usage: tokenvault COMMAND [flags] [arguments]")
	fmt.Fprintln(w)
	fmt.Fprintln(w, "Commands:")
	for _, cmd := range commands {
		fmt.Fprintf(w, "  %-11s %s\n", cmd.name, cmd.summary)
	}
	fmt.Fprintln(w)
	fmt.Fprintln(w, "Every command that opens the database takes its keys from --key-file PATH, else")
	fmt.Fprintln(w, "from $TOKENVAULT_KEYS and $TOKENVAULT_INDEX_KEY, else from the key file beside the")
	fmt.Fprintln(w, "database: its path with the extension replaced by .key, such as ./tokenvault.key")
	fmt.Fprintln(w, "for ./tokenvault.db. For a new database, tokenize, import and serve create that key file.")
	fmt.Fprintln(w, "apikey works on the API key file only, so it also runs while serve holds the database.")
	fmt.Fprintln(w)
	fmt.Fprintln(w, "Run 'tokenvault help' for the flags of every command, or 'tokenvault help COMMAND' for one.")
	fmt.Fprintln(w, "Exit status: 0 on success, 1 when a line or the command failed, 2 for a usage error.")
}

func printCommandHelp(w io.Writer, cmd *command) {
	fmt.Fprintf(w, "Usage: tokenvault %s %s\n\n", cmd.name, cmd.synopsis)
	fmt.Fprintf(w, "%s\n", cmd.summary)
	if cmd.details != "" {
		fmt.Fprintf(w, "\n%s\n", strings.TrimSpace(cmd.details))
	}

	fs := flag.NewFlagSet(cmd.name, flag.ContinueOnError)
	cmd.setup(fs)
	first := true
	fs.VisitAll(func(f *flag.Flag) {
		if first {
			fmt.Fprintf(w, "\nFlags:\n")
			first = false
		}
		valueName, usage := flag.UnquoteUsage(f)
		if _, isBool := f.Value.(interface{ IsBoolFlag() bool }); isBool {
			valueName = ""
		}
		line := "  --" + f.Name
		if valueName != "" {
			line += " " + valueName
		}
		fmt.Fprintf(w, "%s\n        %s", line, usage)
		if f.DefValue != "" && f.DefValue != "false" {
			fmt.Fprintf(w, " (default %s)", f.DefValue)
		}
		fmt.Fprintln(w)
	})
}

// quoteArg quotes a command-line argument for an error message, masked by
// maskDigitRuns.
func quoteArg(arg string) string {
	return strconv.Quote(maskDigitRuns(arg))
}

// maskDigitRuns replaces with '*' the digits of every run of digits and
// separators that holds six or more digits, so that a card number typed in
// the wrong place is not echoed to the terminal or a log. It joins more than
// the card number screens do: any number of spaces, tabs, dashes, dots,
// slashes, underscores and no-break spaces, in any mix.
func maskDigitRuns(text string) string {
	out := []byte(text)
	for i := 0; i < len(out); {
		j, digits := i, 0
		for j < len(out) {
			if isDigit(out[j]) {
				digits++
				j++
				continue
			}
			width := digitgroups.CharWidth(text[j:])
			if width == 0 {
				break
			}
			j += width
		}
		if digits >= 6 {
			for k := i; k < j; k++ {
				if isDigit(out[k]) {
					out[k] = '*'
				}
			}
		}
		i = max(j, i+1)
	}
	return string(out)
}

func isDigit(c byte) bool { return c >= '0' && c <= '9' }
