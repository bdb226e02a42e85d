package main

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"strings"
	"syscall"

	"github.com/gatehouse-index/gatehouse/internal/derrors"
)

// errUsage marks a command-line mistake: exit status 2, as flag does.
var errUsage = errors.New("usage")

func exitCode(err error) int {
	if errors.Is(err, errUsage) {
		return 2
	}
	return 1
}

// cliError is an error as the person at the terminal reads it: what went
// wrong and what to do about it, in their words (flags, paths, usernames),
// never the names of the functions it went through. Every error run returns
// is one: explain makes them at the boundary.
type cliError struct {
	what  string // what went wrong, a sentence
	todo  string // what to do about it; may be empty
	cause error  // for errors.Is: errUsage, a derrors kind, a syscall error
}

func (e *cliError) Error() string {
	if e.todo == "" {
		return e.what
	}
	return e.what + "\n" + e.todo
}

func (e *cliError) Unwrap() error { return e.cause }

// usageErr is a command-line mistake in the command named cmd ("user
// create"): exit status 2, with a pointer to the command's help.
func usageErr(cmd, format string, args ...any) error {
	help := "gatehouse --help"
	if cmd != "" {
		help = "gatehouse " + cmd + " --help"
	}
	return &cliError{
		what:  capitalize(sentence(fmt.Sprintf(format, args...))),
		todo:  fmt.Sprintf("Run '%s' to see how to use it.", help),
		cause: errUsage,
	}
}

// fail is an error whose words are already the user's: what went wrong and
// what to do.
func fail(cause error, what, todo string) error {
	return &cliError{what: sentence(what), todo: todo, cause: cause}
}

// advice is what a command adds to a domain error of one kind (a derrors
// sentinel): the domain's message says what went wrong in general terms,
// the command knows the flags and names to suggest. what, when set,
// replaces the domain's message.
type advice struct {
	kind error
	what string
	todo string
}

// explain turns any error into a cliError. Domain errors (those carrying a
// derrors kind) keep their message, which is written for people, and get
// the first advice whose kind matches. System errors get a sentence about
// the file or address involved. Anything else is an internal error: its
// text is kept, since the operator needs it to find the cause.
func explain(err error, adv ...advice) error {
	if err == nil {
		return nil
	}
	var ce *cliError
	if errors.As(err, &ce) {
		return err
	}
	if errors.Is(err, context.Canceled) {
		return &cliError{what: "Interrupted; nothing more was done.", cause: err}
	}
	if msg, ok := derrors.Message(err); ok {
		e := &cliError{what: sentence(msg), cause: err}
		for _, a := range adv {
			if errors.Is(err, a.kind) {
				if a.what != "" {
					e.what = sentence(a.what)
				}
				e.todo = a.todo
				break
			}
		}
		return e
	}
	if e := explainSystem(err); e != nil {
		return e
	}
	return &cliError{what: sentence("Unexpected error: " + err.Error()),
		todo:  "Nothing was changed by the step that failed. If the cause above is not clear, rerun with --log-level debug, and report it if it looks like a bug.",
		cause: err}
}

// explainSystem describes failures of the operating system that a person
// can fix: permissions, missing or misplaced files, a full disk.
func explainSystem(err error) error {
	var pe *fs.PathError
	if !errors.As(err, &pe) {
		return nil
	}
	path := abs(pe.Path)
	switch {
	case errors.Is(err, fs.ErrPermission):
		return fail(err, fmt.Sprintf("Gatehouse may not %s %s: permission denied", opWords(pe.Op), path),
			"Run the command as the user that owns the data directory, fix the permissions, or choose another directory with --data-dir (or GATEHOUSE_DATA_DIR).")
	case errors.Is(err, syscall.ENOTDIR):
		return fail(err, fmt.Sprintf("%s: part of this path is a file, not a directory", path),
			"Point --data-dir (or GATEHOUSE_DATA_DIR) at a directory, or at a path that does not exist yet.")
	case errors.Is(err, syscall.ENOSPC):
		return fail(err, fmt.Sprintf("No space left on the device holding %s", path), "Free some space and try again.")
	case errors.Is(err, syscall.EROFS):
		return fail(err, fmt.Sprintf("%s is on a read-only file system", path),
			"Choose a writable directory with --data-dir (or GATEHOUSE_DATA_DIR).")
	}
	return nil
}

// opWords names a PathError's operation as a person would.
func opWords(op string) string {
	switch op {
	case "mkdir":
		return "create the directory"
	case "open", "openat":
		return "open"
	case "stat", "lstat":
		return "look at"
	case "remove", "unlinkat":
		return "remove"
	}
	return "use (" + op + ")"
}

// sentence ends s with a full stop, so that messages from flag, config
// and the domain read alike. It does not capitalize: a message may start
// with a username, whose case is the user's.
func sentence(s string) string {
	s = strings.TrimSpace(s)
	if s == "" {
		return s
	}
	if !strings.HasSuffix(s, ".") && !strings.HasSuffix(s, "?") && !strings.HasSuffix(s, "!") && !strings.HasSuffix(s, ")") {
		s += "."
	}
	return s
}

// capitalize upper-cases the first letter of a message from flag or config
// ("there is no flag --x", "session timeouts must be positive"); usage
// messages never start with a name.
func capitalize(s string) string {
	if s != "" && s[0] >= 'a' && s[0] <= 'z' {
		return string(s[0]-'a'+'A') + s[1:]
	}
	return s
}
