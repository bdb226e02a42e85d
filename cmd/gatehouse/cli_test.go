package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"runtime/debug"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/gatehouse-index/gatehouse/internal/config"
	"github.com/gatehouse-index/gatehouse/internal/db"
	"github.com/gatehouse-index/gatehouse/internal/db/dbtest"
	"github.com/gatehouse-index/gatehouse/internal/derrors"
)

// cli runs the program with args and no environment, and returns stdout,
// stderr and the error.
func cli(t *testing.T, stdin string, args ...string) (string, string, error) {
	t.Helper()
	return cliEnv(t, nil, stdin, args...)
}

// cliEnv runs the program with the given environment variables.
func cliEnv(t *testing.T, vars map[string]string, stdin string, args ...string) (string, string, error) {
	t.Helper()
	var out, errb bytes.Buffer
	getenv := func(k string) string { return vars[k] }
	err := run(context.Background(), args, getenv, strings.NewReader(stdin), &out, &errb)
	return out.String(), errb.String(), err
}

// newIndex sets up an index in a new directory with 'migrate --create'
// and returns the --data-dir flag for it.
func newIndex(t *testing.T) []string {
	t.Helper()
	dd := []string{"--data-dir", filepath.Join(t.TempDir(), "data")}
	if _, errOut, err := cli(t, "", append([]string{"migrate", "--create"}, dd...)...); err != nil {
		t.Fatalf("migrate --create: %v\n%s", err, errOut)
	}
	return dd
}

// mustCLI runs a command that must succeed and returns its stdout.
func mustCLI(t *testing.T, stdin string, args ...string) string {
	t.Helper()
	out, errOut, err := cli(t, stdin, args...)
	if err != nil {
		t.Fatalf("gatehouse %s: %v\n%s", strings.Join(args, " "), err, errOut)
	}
	return out
}

// internalWords are what an error must not show a person: Go function
// names, wrapping prefixes and the flag package's phrasing.
var internalWords = regexp.MustCompile(`token\.Create|account\.|create user:|\(user \d+\)|^usage:|flag provided but not defined|open sqlite|goose`)

// wantAdvice checks that err is a message for a person: no internal names,
// a second line saying what to do, and that it contains each of want.
func wantAdvice(t *testing.T, what string, err error, stdout string, want ...string) {
	t.Helper()
	if err == nil {
		t.Errorf("%s: succeeded, want an error", what)
		return
	}
	msg := err.Error()
	if internalWords.MatchString(msg) {
		t.Errorf("%s: the message shows internal names:\n%s", what, msg)
	}
	if !strings.Contains(msg, "\n") {
		t.Errorf("%s: the message says what went wrong but not what to do:\n%s", what, msg)
	}
	for _, w := range want {
		if !strings.Contains(msg, w) {
			t.Errorf("%s: the message lacks %q:\n%s", what, w, msg)
		}
	}
	if stdout != "" {
		t.Errorf("%s: failed but wrote to stdout (a $(...) would capture it): %q", what, stdout)
	}
}

func TestCLIHelpEverywhere(t *testing.T) {
	for _, args := range [][]string{
		{"--help"}, {"help"},
		{"serve", "--help"}, {"migrate", "--help"}, {"version", "--help"},
		{"user", "--help"}, {"user", "create", "--help"}, {"user", "list", "--help"},
		{"token", "--help"}, {"token", "create", "--help"}, {"token", "list", "--help"}, {"token", "delete", "--help"},
		{"token", "revoke", "--help"},
	} {
		out, _, err := cli(t, "", args...)
		if err != nil {
			t.Errorf("%v: got error %v, want help and success", args, err)
		}
		if !strings.Contains(out, "Usage") {
			t.Errorf("%v: output has no usage text:\n%s", args, out)
		}
	}
	out, _, _ := cli(t, "", "serve", "--help")
	if !strings.Contains(out, "GATEHOUSE_DATA_DIR") {
		t.Errorf("serve --help does not name the environment variables:\n%s", out)
	}
}

// TestCLISubcommandHelp: a command's help shows its own flags first and the
// shared server settings once; only serve lists every setting.
func TestCLISubcommandHelp(t *testing.T) {
	out := mustCLI(t, "", "user", "create", "--help")
	own, shared, ok := strings.Cut(out, "Where the index is")
	if !ok {
		t.Fatalf("user create --help has no section for the shared settings:\n%s", out)
	}
	for _, f := range []string{"--username", "--email", "--password-stdin", "--no-password", "--admin", "--email-verified"} {
		if !strings.Contains(own, "\n  "+f) {
			t.Errorf("user create --help does not list its own flag %s before the shared ones", f)
		}
	}
	for _, f := range []string{"--max-file-size", "--session-idle", "--smtp-url", "--cache-poll", "--trusted-proxies"} {
		if strings.Contains(out, f) {
			t.Errorf("user create --help lists the server-only setting %s", f)
		}
	}
	for _, f := range locationFlags {
		if n := strings.Count(shared, "\n  --"+f+" "); n != 1 {
			t.Errorf("user create --help lists --%s %d times, want once", f, n)
		}
	}
	if !strings.Contains(shared, "gatehouse serve --help") {
		t.Errorf("user create --help does not say where the other settings are")
	}

	out = mustCLI(t, "", "serve", "--help")
	for _, s := range config.Settings() {
		if n := strings.Count(out, "\n  --"+s.Flag+" "); n != 1 {
			t.Errorf("serve --help lists --%s %d times, want once", s.Flag, n)
		}
		if !strings.Contains(out, "$"+s.Env) {
			t.Errorf("serve --help does not name %s", s.Env)
		}
	}
}

func TestCLIUsageErrors(t *testing.T) {
	for _, args := range [][]string{
		{}, {"frobnicate"}, {"user"}, {"user", "delete"}, {"token"}, {"token", "create"}, {"token", "list"},
		{"serve", "--listen", "nonsense"}, {"serve", "extra-arg"}, {"user", "create"}, {"user", "create", "--bogus"},
		{"user", "create", "--username", "bob"}, {"token", "create", "--user", "bob", "--description", "x", "--expires", "soon"},
	} {
		out, _, err := cli(t, "", args...)
		if !errors.Is(err, errUsage) || exitCode(err) != 2 {
			t.Errorf("%v: got %v, want a usage error (exit 2)", args, err)
		}
		if out != "" {
			t.Errorf("%v: a usage error wrote to stdout: %q", args, out)
		}
		if err != nil && internalWords.MatchString(err.Error()) {
			t.Errorf("%v: %q shows internal words", args, err)
		}
	}
}

func TestCLIUserAndTokenCommands(t *testing.T) {
	dd := newIndex(t)
	dir := dd[1]
	out, _, err := cli(t, "correct horse battery staple\n", append([]string{"user", "create", "--username", "Alice", "--email", "alice@example.com", "--password-stdin", "--admin"}, dd...)...)
	if err != nil || !strings.Contains(out, `Created administrator "Alice"`) {
		t.Fatalf("user create: %q, %v", out, err)
	}
	if _, _, err := cli(t, "another long passphrase\n", append([]string{"user", "create", "--username", "alice", "--password-stdin"}, dd...)...); err == nil || !strings.Contains(err.Error(), "already taken") {
		t.Errorf("duplicate username ignoring case: got %v, want 'already taken'", err)
	}
	if _, _, err := cli(t, "another long passphrase\n", append([]string{"user", "create", "--username", "-bad-", "--password-stdin"}, dd...)...); err == nil || !strings.Contains(err.Error(), "invalid") {
		t.Errorf("bad username: got %v, want invalid", err)
	}
	if _, _, err := cli(t, "short\n", append([]string{"user", "create", "--username", "bob", "--password-stdin"}, dd...)...); err == nil || !strings.Contains(err.Error(), "too short") {
		t.Errorf("short password: got %v, want 'too short'", err)
	}
	out, _, err = cli(t, "", append([]string{"user", "list"}, dd...)...)
	if err != nil || !strings.Contains(out, "Alice") || !strings.Contains(out, "alice@example.com") {
		t.Errorf("user list: %q, %v", out, err)
	}

	out, errOut, err := cli(t, "", append([]string{"token", "create", "--user", "alice", "--description", "laptop", "--expires", "30d"}, dd...)...)
	if err != nil || !strings.HasPrefix(out, "pypi-") {
		t.Fatalf("token create: %q, %v", out, err)
	}
	if strings.Contains(errOut, strings.TrimSpace(out)) {
		t.Error("the token was also written to stderr (logs)")
	}
	if _, _, err := cli(t, "", append([]string{"token", "create", "--user", "alice", "--description", "x", "--project", "nope"}, dd...)...); err == nil {
		t.Error("token for a missing project was created")
	}
	if _, _, err := cli(t, "", append([]string{"token", "create", "--user", "nobody", "--description", "x"}, dd...)...); err == nil || !strings.Contains(err.Error(), "user create") {
		t.Errorf("token for a missing user: got %v, want advice to create the user", err)
	}
	if _, _, err := cli(t, "", append([]string{"token", "create", "--user", "alice", "--description", "y", "--expires", "soon"}, dd...)...); !errors.Is(err, errUsage) {
		t.Errorf("bad --expires: got %v, want a usage error", err)
	}
	out, _, err = cli(t, "", append([]string{"token", "list", "--user", "alice"}, dd...)...)
	if err != nil || !strings.Contains(out, "laptop") || strings.Contains(out, "pypi-") {
		t.Errorf("token list: %q, %v", out, err)
	}
	if _, _, err := cli(t, "", append([]string{"token", "delete", "--user", "alice", "--description", "laptop"}, dd...)...); err != nil {
		t.Errorf("token delete: %v", err)
	}
	if out, _, _ := cli(t, "", append([]string{"token", "list", "--user", "alice"}, dd...)...); strings.Contains(out, "laptop") {
		t.Errorf("token list after delete: %q", out)
	}
	out, _, err = cli(t, "", "migrate", "--database-url", "sqlite:"+filepath.Join(dir, "gatehouse.db"))
	if err != nil || !strings.Contains(out, "up to date") {
		t.Errorf("migrate: %q, %v", out, err)
	}
}

// TestCLITokenRevoke: 'gatehouse token revoke' takes a leaked token's value
// on standard input, revokes it and queues the owner's email; anything
// that is not a live token of this index changes nothing and says why.
func TestCLITokenRevoke(t *testing.T) {
	dd := newIndex(t)
	mustCLI(t, "violet-harbour-lantern-42\n", append([]string{"user", "create", "--username", "alice", "--email", "alice@example.com", "--password-stdin", "--email-verified"}, dd...)...)
	leaked := strings.TrimSpace(mustCLI(t, "", append([]string{"token", "create", "--user", "alice", "--description", "laptop"}, dd...)...))
	kept := strings.TrimSpace(mustCLI(t, "", append([]string{"token", "create", "--user", "alice", "--description", "ci"}, dd...)...))

	out, errOut, err := cli(t, leaked+"\n", append([]string{"token", "revoke", "--url", "https://gist.example/1"}, dd...)...)
	if err != nil || out != "Revoked alice's token \"laptop\" (whole account); it no longer works. An email telling alice is queued; the server sends it.\n" {
		t.Fatalf("token revoke: %q, %v", out, err)
	}
	if strings.Contains(out+errOut, leaked) {
		t.Error("token revoke printed the token")
	}
	if out := mustCLI(t, "", append([]string{"token", "list", "--user", "alice"}, dd...)...); strings.Contains(out, "laptop") || !strings.Contains(out, "ci") {
		t.Errorf("token list after revoke: %q, want only ci", out)
	}

	for _, tc := range []struct {
		what, stdin, want string
		usage             bool
	}{
		{"again", leaked + "\n", "This token is not one of this index's, or it was already deleted or revoked", false},
		{"nothing", "", "No token on standard input", true},
		{"not a token", "hunter2\n", `That is not an API token: tokens start with "pypi-"`, true},
		{"bad url", kept + "\n", "Report 1: the url must be at most 2000 characters", false},
	} {
		args := []string{"token", "revoke"}
		if tc.what == "bad url" {
			args = append(args, "--url", "https://x.example/\x07")
		}
		out, _, err := cli(t, tc.stdin, append(args, dd...)...)
		if err == nil || !strings.Contains(err.Error(), tc.want) || out != "" {
			t.Errorf("%s: got %q, %v; want an error saying %q and nothing on stdout", tc.what, out, err, tc.want)
		}
		if errors.Is(err, errUsage) != tc.usage {
			t.Errorf("%s: usage error %v, want %v", tc.what, errors.Is(err, errUsage), tc.usage)
		}
	}
	if out := mustCLI(t, "", append([]string{"token", "list", "--user", "alice"}, dd...)...); !strings.Contains(out, "ci") {
		t.Errorf("a refused revoke deleted the other token: %q", out)
	}
}

// TestCLIErrorsSpeakToThePerson (issue 12 §5.2): every error path says what
// went wrong and what to do in the user's words, and writes nothing to
// stdout, so that TOKEN=$(gatehouse token create …) stays empty.
func TestCLIErrorsSpeakToThePerson(t *testing.T) {
	dd := newIndex(t)
	mustCLI(t, "violet-harbour-lantern-42\n", append([]string{"user", "create", "--username", "alice", "--email", "alice@example.com", "--password-stdin"}, dd...)...)
	mustCLI(t, "", append([]string{"token", "create", "--user", "alice", "--description", "laptop"}, dd...)...)

	out, _, err := cli(t, "", append([]string{"token", "create", "--user", "alice", "--description", "laptop"}, dd...)...)
	wantAdvice(t, "reused token description", err, out, `alice already has a token named "laptop"`, "--description", "gatehouse token delete --user alice", "gatehouse token list --user alice")

	out, _, err = cli(t, "", append([]string{"token", "create", "--user", "bob", "--description", "x"}, dd...)...)
	wantAdvice(t, "token for a missing user", err, out, `There is no user named "bob"`, "gatehouse user list", "gatehouse user create")

	out, _, err = cli(t, "", append([]string{"token", "create", "--user", "alice", "--description", "x", "--project", "nope"}, dd...)...)
	wantAdvice(t, "token for a missing project", err, out, "Project 'nope' does not exist", "without --project")

	out, _, err = cli(t, "", append([]string{"token", "delete", "--user", "alice", "--description", "phone"}, dd...)...)
	wantAdvice(t, "deleting a missing token", err, out, `alice has no token named "phone"`, "gatehouse token list --user alice")

	out, _, err = cli(t, "another long passphrase\n", append([]string{"user", "create", "--username", "ALICE", "--password-stdin"}, dd...)...)
	wantAdvice(t, "taken username", err, out, `"ALICE" is already taken`, "gatehouse user list")

	out, _, err = cli(t, "", append([]string{"user", "create", "--username", "carol", "--password-stdin"}, dd...)...)
	wantAdvice(t, "empty standard input", err, out, "no password on standard input", "printf")

	out, _, err = cli(t, "", append([]string{"user", "create", "--username", "carol", "--bogus"}, dd...)...)
	wantAdvice(t, "unknown flag", err, out, "There is no flag --bogus", "gatehouse user create --help")

	// A busy port: the server says who holds it and which flag changes it.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	out, _, err = cli(t, "", append([]string{"serve", "--listen", ln.Addr().String()}, dd...)...)
	wantAdvice(t, "busy port", err, out, "already listening on "+ln.Addr().String(), "--listen")

	// A data directory that is a file: said for serve and for the others.
	file := filepath.Join(t.TempDir(), "not-a-dir")
	if err := os.WriteFile(file, []byte("x"), 0o600); err != nil {
		t.Fatal(err)
	}
	out, _, err = cli(t, "", "serve", "--listen", "127.0.0.1:0", "--data-dir", file)
	wantAdvice(t, "serve with a file as data dir", err, out, file, "not a directory", "--data-dir")
	out, _, err = cli(t, "", "user", "list", "--data-dir", file)
	wantAdvice(t, "user list with a file as data dir", err, out, file, "not a directory", "--data-dir")

	// A PostgreSQL server that is not there: the URL without its password.
	out, _, err = cli(t, "", "migrate", "--database-url", "postgres://gh:hunter2@127.0.0.1:1/gatehouse?connect_timeout=5")
	wantAdvice(t, "unreachable database", err, out, "postgres://gh:xxxxx@127.0.0.1:1/gatehouse", "--database-url")
	if err != nil && strings.Contains(err.Error(), "hunter2") {
		t.Errorf("the database password is in the message: %v", err)
	}
}

// TestCLIPasswordPolicy (issue 12 §5.3): user create refuses the passwords
// the registration form refuses, and creates nothing.
func TestCLIPasswordPolicy(t *testing.T) {
	dd := newIndex(t)
	for _, tc := range []struct{ pw, want string }{
		{"password", "common passwords"},
		{"12345678", "common passwords"},
		{"Password1234!", "common passwords"},
		{"dave-the-builder", "can't be your username"},
		{"dave@example.com", "can't be your username, name or email"},
	} {
		out, _, err := cli(t, tc.pw+"\n", append([]string{"user", "create", "--username", "dave-the-builder", "--email", "dave@example.com", "--password-stdin"}, dd...)...)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("password %q: got %v, want a refusal mentioning %q", tc.pw, err, tc.want)
		}
		if out != "" {
			t.Errorf("password %q refused but stdout has %q", tc.pw, out)
		}
	}
	if out := mustCLI(t, "", append([]string{"user", "list"}, dd...)...); strings.Contains(out, "dave") {
		t.Errorf("a refused user was created:\n%s", out)
	}
	mustCLI(t, "correct horse battery staple\n", append([]string{"user", "create", "--username", "dave-the-builder", "--email", "dave@example.com", "--password-stdin"}, dd...)...)
}

// TestCLIRefusesToCreateAnIndex (issue 12 §5.4): run where there is no
// index, the commands other than serve create nothing and say where they
// looked and how to point them at the right place.
func TestCLIRefusesToCreateAnIndex(t *testing.T) {
	cwd := t.TempDir()
	t.Chdir(cwd)
	def := filepath.Join(cwd, "gatehouse-data")
	for _, args := range [][]string{
		{"user", "list"},
		{"user", "create", "--username", "erin", "--email", "erin@example.com", "--email-verified", "--no-password"},
		{"token", "create", "--user", "erin", "--description", "laptop"},
		{"token", "list", "--user", "erin"},
		{"migrate"},
	} {
		out, _, err := cli(t, "", args...)
		wantAdvice(t, strings.Join(args, " "), err, out, def, "the default", "--data-dir", "GATEHOUSE_DATA_DIR", "gatehouse migrate --create")
		if _, err := os.Stat(def); !errors.Is(err, os.ErrNotExist) {
			t.Fatalf("%v created %s (stat: %v)", args, def, err)
		}
	}
	// Named by the environment: the message says so.
	elsewhere := filepath.Join(cwd, "elsewhere")
	out, _, err := cliEnv(t, map[string]string{"GATEHOUSE_DATA_DIR": elsewhere}, "", "user", "list")
	wantAdvice(t, "GATEHOUSE_DATA_DIR", err, out, elsewhere, "set by GATEHOUSE_DATA_DIR")

	// migrate --create makes one, and then the commands work on it.
	out = mustCLI(t, "", "migrate", "--create")
	if !strings.Contains(out, def) {
		t.Errorf("migrate --create does not say where it created the index: %q", out)
	}
	mustCLI(t, "", "user", "create", "--username", "erin", "--email", "erin@example.com", "--email-verified", "--no-password")
	mustCLI(t, "", "token", "create", "--user", "erin", "--description", "laptop")

	// Without the server's secret, token create would mint a token the
	// server cannot verify: it refuses, and does not make a new secret.
	secret := filepath.Join(def, "secret.key")
	if err := os.Remove(secret); err != nil {
		t.Fatal(err)
	}
	out, _, err = cli(t, "", "token", "create", "--user", "erin", "--description", "phone")
	wantAdvice(t, "missing secret", err, out, secret, "server secret", "--data-dir")
	if _, err := os.Stat(secret); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("token create wrote a new server secret (stat: %v)", err)
	}
}

// TestCLIUserCreateNeedsAPassword (issue 12 §5.6): a user who could never
// log in is not made by accident; --no-password says how to set one.
func TestCLIUserCreateNeedsAPassword(t *testing.T) {
	dd := newIndex(t)
	out, _, err := cli(t, "", append([]string{"user", "create", "--username", "frank", "--email", "frank@example.com", "--email-verified"}, dd...)...)
	if !errors.Is(err, errUsage) {
		t.Errorf("user create without a password: got %v, want a usage error", err)
	}
	wantAdvice(t, "no password", err, out, "--password-stdin", "--no-password")
	out, _, err = cli(t, "", append([]string{"user", "create", "--username", "frank", "--email", "frank@example.com", "--no-password"}, dd...)...)
	wantAdvice(t, "--no-password with an unverified address", err, out, "--email-verified")
	if out := mustCLI(t, "", append([]string{"user", "list"}, dd...)...); strings.Contains(out, "frank") {
		t.Fatalf("a refused user was created:\n%s", out)
	}

	out = mustCLI(t, "", append([]string{"user", "create", "--username", "frank", "--email", "frank@example.com", "--email-verified", "--no-password"}, dd...)...)
	for _, want := range []string{"frank has no password yet", "http://localhost:8080/account/request-password-reset/", "frank@example.com"} {
		if !strings.Contains(out, want) {
			t.Errorf("user create --no-password output lacks %q:\n%s", want, out)
		}
	}
	if strings.Contains(out, "Next: log in") {
		t.Errorf("tells a user with no password to log in:\n%s", out)
	}
	help := mustCLI(t, "", "user", "create", "--help")
	if !strings.Contains(help, "A password is required") || !strings.Contains(help, "--no-password") {
		t.Errorf("user create --help does not explain the password rule:\n%s", help)
	}
}

// TestCLIHintsUseTheBaseURL (issue 12 §5.7): hints name the configured base
// URL, not localhost:8080.
func TestCLIHintsUseTheBaseURL(t *testing.T) {
	dd := newIndex(t)
	vars := map[string]string{"GATEHOUSE_BASE_URL": "https://pypi.example.com"}
	out, _, err := cliEnv(t, vars, "violet-harbour-lantern-42\n", append([]string{"user", "create", "--username", "gina", "--email", "gina@example.com", "--password-stdin"}, dd...)...)
	if err != nil {
		t.Fatal(err)
	}
	_, errOut, err := cliEnv(t, vars, "", append([]string{"token", "create", "--user", "gina", "--description", "laptop"}, dd...)...)
	if err != nil {
		t.Fatal(err)
	}
	help, _, _ := cliEnv(t, vars, "", "--help")
	tokenHelp, _, _ := cliEnv(t, vars, "", "token", "create", "--help")
	for name, text := range map[string]string{"user create": out, "token create": errOut, "--help": help, "token create --help": tokenHelp} {
		if strings.Contains(text, "localhost:8080") {
			t.Errorf("%s names localhost:8080 although the base URL is https://pypi.example.com:\n%s", name, text)
		}
		if !strings.Contains(text, "https://pypi.example.com/") {
			t.Errorf("%s does not name the configured base URL:\n%s", name, text)
		}
	}
	if !strings.Contains(errOut, "https://pypi.example.com/legacy/") {
		t.Errorf("token create does not give the upload URL:\n%s", errOut)
	}
}

// TestCLITokenCreateWarnsAboutUploads (issue 12 §5.8): a token for a user
// who cannot upload yet comes with a warning on stderr saying what is
// missing; stdout holds the token alone.
func TestCLITokenCreateWarnsAboutUploads(t *testing.T) {
	dd := newIndex(t)
	mustCLI(t, "violet-harbour-lantern-42\n", append([]string{"user", "create", "--username", "hana", "--email", "hana@example.com", "--password-stdin"}, dd...)...)
	out, errOut, err := cli(t, "", append([]string{"token", "create", "--user", "hana", "--description", "laptop"}, dd...)...)
	if err != nil {
		t.Fatal(err)
	}
	if lines := strings.Split(strings.TrimSpace(out), "\n"); len(lines) != 1 || !strings.HasPrefix(lines[0], "pypi-") {
		t.Errorf("stdout is not the token alone: %q", out)
	}
	for _, want := range []string{"Warning", "hana@example.com is not verified", "Resend verification", "no two-factor authentication", "/manage/account/two-factor/"} {
		if !strings.Contains(errOut, want) {
			t.Errorf("token create for a user who cannot upload: stderr lacks %q:\n%s", want, errOut)
		}
	}

	// Verified and with a second factor: no warning.
	mustCLI(t, "violet-harbour-lantern-42\n", append([]string{"user", "create", "--username", "ivan", "--email", "ivan@example.com", "--email-verified", "--password-stdin"}, dd...)...)
	d, err := db.Open(context.Background(), "sqlite:"+filepath.Join(dd[1], "gatehouse.db"))
	if err != nil {
		t.Fatal(err)
	}
	_, err = d.Exec(`INSERT INTO totp_secrets (user_id, secret_enc, created_at) SELECT id, 'unused', $1 FROM users WHERE username_key = 'ivan'`, time.Now().UTC())
	d.Close()
	if err != nil {
		t.Fatal(err)
	}
	_, errOut, err = cli(t, "", append([]string{"token", "create", "--user", "ivan", "--description", "laptop"}, dd...)...)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(errOut, "Warning") {
		t.Errorf("warned about a user who can upload:\n%s", errOut)
	}
}

// TestCLIVersion (issue 12 §5.11): version and --version print the module
// version and the VCS revision from the build information.
func TestCLIVersion(t *testing.T) {
	for _, args := range [][]string{{"version"}, {"--version"}} {
		out := mustCLI(t, "", args...)
		if !strings.HasPrefix(out, "gatehouse ") || !strings.Contains(out, "revision") || !strings.Contains(out, "go1.") {
			t.Errorf("%v: %q", args, out)
		}
	}
	bi := &debug.BuildInfo{GoVersion: "go1.26.8", Main: debug.Module{Path: "github.com/gatehouse-index/gatehouse", Version: "v1.2.3"},
		Settings: []debug.BuildSetting{{Key: "vcs.revision", Value: "0a40f17f233c98bdf378584460ee35e0df02c9f3"},
			{Key: "vcs.time", Value: "2026-11-22T09:29:51Z"}, {Key: "vcs.modified", Value: "true"}}}
	got := versionText(bi, true, "2026-12-01T10:00:00Z")
	for _, want := range []string{"gatehouse v1.2.3", "0a40f17f233c98bdf378584460ee35e0df02c9f3", "modified", "2026-11-22T09:29:51Z", "built     2026-12-01T10:00:00Z", "go1.26.8"} {
		if !strings.Contains(got, want) {
			t.Errorf("versionText lacks %q:\n%s", want, got)
		}
	}
	got = versionText(&debug.BuildInfo{Main: debug.Module{Version: "(devel)"}}, true, "")
	if !strings.Contains(got, "revision  unknown") || strings.Contains(got, "modified") || strings.Contains(got, "built") {
		t.Errorf("versionText without VCS information:\n%s", got)
	}
	if help := mustCLI(t, "", "--help"); !strings.Contains(help, "--version") || !strings.Contains(help, "version ") {
		t.Errorf("--help does not mention version:\n%s", help)
	}
}

// TestCLIExplain checks the mechanism behind every message: a domain error
// keeps its message without the wrapping of the functions it went through
// and gets the command's advice for its kind; a system error names the
// file and what to do; exit codes follow the cause.
func TestCLIExplain(t *testing.T) {
	wrapped := fmt.Errorf("token.Create(user 1): %w", derrors.New(derrors.Conflict, "API token name already in use"))
	err := explain(wrapped, advice{kind: derrors.NotFound, todo: "not this"}, advice{kind: derrors.Conflict, todo: "Choose another --description."})
	if got, want := err.Error(), "API token name already in use.\nChoose another --description."; got != want {
		t.Errorf("explain(domain error) = %q, want %q", got, want)
	}
	if !errors.Is(err, derrors.Conflict) || exitCode(err) != 1 {
		t.Errorf("explain lost the kind: %v", err)
	}
	// Permission problems cannot be produced for real when the tests run
	// as root, so the error is built here as os.MkdirAll returns it.
	denied := fmt.Errorf("create data dir: %w", &fs.PathError{Op: "mkdir", Path: "/srv/gatehouse-data", Err: syscall.EACCES})
	err = explain(denied)
	for _, want := range []string{"may not create the directory /srv/gatehouse-data: permission denied", "--data-dir", "GATEHOUSE_DATA_DIR"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("explain(permission denied) = %q, want it to contain %q", err, want)
		}
	}
	err = explain(errors.New("goose: no such table"))
	if !strings.HasPrefix(err.Error(), "Unexpected error: goose: no such table.") || !strings.Contains(err.Error(), "\n") {
		t.Errorf("explain(internal error) = %q", err)
	}
	if err := explain(context.Canceled); !strings.Contains(err.Error(), "Interrupted") {
		t.Errorf("explain(context.Canceled) = %q", err)
	}
	if err := usageErr("user create", "--username is required"); exitCode(err) != 2 || !strings.Contains(err.Error(), "gatehouse user create --help") {
		t.Errorf("usageErr = %q (exit %d)", err, exitCode(err))
	}
}

// TestCLIPostgresNeedsNoDataDir: with PostgreSQL and the secret given, the
// admin commands work with no data directory and create none; migrate
// fills a new, empty PostgreSQL database without --create.
func TestCLIPostgresNeedsNoDataDir(t *testing.T) {
	pg := dbtest.PostgresURL(t)
	missingDir := filepath.Join(t.TempDir(), "no-such-dir")
	flags := []string{"--database-url", pg, "--data-dir", missingDir, "--secret-key", strings.Repeat("ab", 32)}
	if out := mustCLI(t, "", append([]string{"migrate"}, flags...)...); !strings.Contains(out, "PostgreSQL database is up to date") {
		t.Errorf("migrate: %q", out)
	}
	mustCLI(t, "violet-harbour-lantern-42\n", append([]string{"user", "create", "--username", "jo", "--email", "jo@example.com", "--password-stdin"}, flags...)...)
	if out := mustCLI(t, "", append([]string{"token", "create", "--user", "jo", "--description", "ci"}, flags...)...); !strings.HasPrefix(out, "pypi-") {
		t.Errorf("token create: %q", out)
	}
	if _, err := os.Stat(missingDir); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("the commands created %s (stat: %v)", missingDir, err)
	}
	// Without the secret they refuse rather than make one in the data dir.
	out, _, err := cli(t, "", "token", "create", "--user", "jo", "--description", "ci2", "--database-url", pg, "--data-dir", missingDir)
	wantAdvice(t, "PostgreSQL without the secret", err, out, filepath.Join(missingDir, "secret.key"), "server secret")
}

// TestCLIReadmeCommands: every gatehouse command in the README's shell
// blocks is one the CLI accepts (its flags exist), the quickstart builds
// offline, and no command uses $TOKEN without stopping when it is empty
// (issue 12 §5.2, §5.9).
func TestCLIReadmeCommands(t *testing.T) {
	readme, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	blocks := regexp.MustCompile("(?s)```sh\n(.*?)```").FindAllStringSubmatch(string(readme), -1)
	cmdRE := regexp.MustCompile(`(?:^|\$\()\s*(?:\./)?gatehouse ([^)#]*)`)
	var n int
	for _, b := range blocks {
		for _, line := range strings.Split(b[1], "\n") {
			line = strings.TrimSpace(line)
			if strings.HasPrefix(line, "#") {
				continue
			}
			if m := cmdRE.FindStringSubmatch(line); m != nil {
				n++
				args := append(strings.Fields(m[1]), "--help")
				if _, _, err := cli(t, "", args...); err != nil {
					t.Errorf("README: %q is refused: %v", line, err)
				}
			}
			if strings.Contains(line, "-m build") && !strings.Contains(line, "--no-isolation") {
				t.Errorf("README: %q needs PyPI to build (build isolation); add --no-isolation", line)
			}
			if strings.Contains(line, `"$TOKEN"`) {
				t.Errorf("README: %q goes on with an empty token when token create failed; use ${TOKEN:?...}", line)
			}
		}
	}
	if n < 2 {
		t.Fatalf("found only %d gatehouse commands in README.md's shell blocks", n)
	}
}
