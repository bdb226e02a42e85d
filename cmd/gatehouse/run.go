package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"strings"
)

// errUsage marks a command-line mistake: exit status 2, as flag does.
var errUsage = errors.New("usage")

func exitCode(err error) int {
	if errors.Is(err, errUsage) {
		return 2
	}
	return 1
}

// env is what every subcommand gets instead of reaching for globals.
type env struct {
	getenv func(string) string
	stdin  io.Reader
	stdout io.Writer
	stderr io.Writer
}

// command is one subcommand.
type command struct {
	name    string
	summary string
	run     func(ctx context.Context, e env, args []string) error
}

func commands() []command {
	return []command{
		{"serve", "run the package index server", serve},
		{"migrate", "apply database migrations and exit", migrate},
		{"user", "manage users: user create, user list", userCmd},
		{"token", "manage API tokens: token create", tokenCmd},
	}
}

const topUsage = `Gatehouse is a self-hostable Python package index.

Usage:
  gatehouse <command> [flags]

Commands:
%s
Run 'gatehouse <command> --help' for the flags of a command. Every flag can
also be set with an environment variable (shown in the flag's help).

Quick start:
  gatehouse serve                                   # http://localhost:8080/
  gatehouse user create --username alice --email alice@example.com --email-verified --password-stdin
  # alice logs in and sets up two-factor authentication in the browser
  gatehouse token create --user alice --description laptop
`

// run is the whole program: main only adds the process environment.
func run(ctx context.Context, args []string, getenv func(string) string, stdin io.Reader, stdout, stderr io.Writer) error {
	e := env{getenv: getenv, stdin: stdin, stdout: stdout, stderr: stderr}
	var list strings.Builder
	for _, c := range commands() {
		fmt.Fprintf(&list, "  %-9s %s\n", c.name, c.summary)
	}
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		fmt.Fprintf(stdout, topUsage, list.String())
		if len(args) == 0 {
			return fmt.Errorf("%w: no command given", errUsage)
		}
		return nil
	}
	for _, c := range commands() {
		if c.name == args[0] {
			return c.run(ctx, e, args[1:])
		}
	}
	fmt.Fprintf(stderr, topUsage, list.String())
	return fmt.Errorf("%w: unknown command %q", errUsage, args[0])
}

// parseFlags parses args, printing usage on --help (and returning
// flag.ErrHelp, which callers turn into success).
func parseFlags(fs *flag.FlagSet, e env, args []string, usage string) error {
	fs.SetOutput(e.stderr)
	fs.Usage = func() {
		fmt.Fprintln(e.stdout, usage)
		fmt.Fprintln(e.stdout, "\nFlags:")
		fs.SetOutput(e.stdout)
		fs.PrintDefaults()
		fs.SetOutput(e.stderr)
	}
	err := fs.Parse(args)
	if errors.Is(err, flag.ErrHelp) {
		return err
	}
	if err != nil {
		return fmt.Errorf("%w: %v", errUsage, err)
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("%w: unexpected argument %q", errUsage, fs.Arg(0))
	}
	return nil
}

// helpOK turns --help into success.
func helpOK(err error) error {
	if errors.Is(err, flag.ErrHelp) {
		return nil
	}
	return err
}
