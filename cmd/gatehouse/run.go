package main

import (
	"context"
	"fmt"
	"io"
	"strings"

	"github.com/gatehouse-index/gatehouse/internal/config"
)

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
		{"migrate", "set up a new index (--create), or apply database migrations, and exit", migrate},
		{"user", "manage users: user create, user list", userCmd},
		{"token", "manage API tokens: token create, token list, token delete", tokenCmd},
		{"storage", "move the package files between stores: storage copy --from … --to …", storageCmd},
		{"sweep", "remove files that interrupted uploads left behind (also done at every start)", sweep},
		{"upstream", "prune the pull-through cache: upstream prune --older-than 30d", upstreamCmd},
		{"backup", "write a consistent backup of the running index to a directory", backupCmd},
		{"restore", "restore a backup into a new index", restoreCmd},
		{"version", "print the version and the source revision it was built from", versionCmd},
	}
}

const topUsage = `Gatehouse is a self-hostable Python package index.

Usage:
  gatehouse <command> [flags]
  gatehouse --version

Commands:
%s
Run 'gatehouse <command> --help' for the flags of a command. Every command
takes the server's settings too (--data-dir, --database-url, ...), so they
find the same index as 'gatehouse serve'; each setting can also be given as
an environment variable: see 'gatehouse serve --help'.

Quick start (in one directory; the index lives in ./gatehouse-data):
  gatehouse serve                # in one terminal; open %s/
  gatehouse user create --username alice --email alice@example.com --email-verified --password-stdin
  # alice logs in at %s/account/login/ and sets up two-factor authentication
  gatehouse token create --user alice --description laptop
`

// run is the whole program: main only adds the process environment. Every
// error it returns has been explained (see explain) and so reads as advice
// to the person who typed the command; nothing goes to stdout on failure.
func run(ctx context.Context, args []string, getenv func(string) string, stdin io.Reader, stdout, stderr io.Writer) error {
	e := env{getenv: getenv, stdin: stdin, stdout: stdout, stderr: stderr}
	var names []string
	var list strings.Builder
	for _, c := range commands() {
		names = append(names, c.name)
		fmt.Fprintf(&list, "  %-9s %s\n", c.name, c.summary)
	}
	base := baseURLFromEnv(getenv)
	usage := fmt.Sprintf(topUsage, list.String(), base, base)
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return fail(errUsage, "No command given (the commands are listed above)", "")
	}
	switch args[0] {
	case "-h", "-help", "--help", "help":
		fmt.Fprint(stdout, usage)
		return nil
	case "-version", "--version":
		return explain(versionCmd(ctx, e, args[1:]))
	}
	for _, c := range commands() {
		if c.name == args[0] {
			return explain(c.run(ctx, e, args[1:]))
		}
	}
	return fail(errUsage, fmt.Sprintf("There is no command %q", args[0]),
		fmt.Sprintf("The commands are %s. Run 'gatehouse --help' to see what each does.", strings.Join(names, ", ")))
}

// baseURLFromEnv is the base URL the environment configures, for help text
// written before any flag is parsed; "<base-url>" when the environment's
// settings are not valid.
func baseURLFromEnv(getenv func(string) string) string {
	cfg, err := config.FromEnv(getenv)
	if err != nil {
		return "<base-url>"
	}
	return cfg.BaseURL
}
