package main

import (
	"bytes"
	"context"
	"errors"
	"path/filepath"
	"strings"
	"testing"
)

// cli runs the program with args and returns stdout, stderr and the error.
func cli(t *testing.T, stdin string, args ...string) (string, string, error) {
	t.Helper()
	var out, errb bytes.Buffer
	err := run(context.Background(), args, func(string) string { return "" }, strings.NewReader(stdin), &out, &errb)
	return out.String(), errb.String(), err
}

func TestHelpEverywhere(t *testing.T) {
	for _, args := range [][]string{
		{"--help"}, {"help"},
		{"serve", "--help"}, {"migrate", "--help"},
		{"user", "--help"}, {"user", "create", "--help"}, {"user", "list", "--help"},
		{"token", "--help"}, {"token", "create", "--help"},
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

func TestUsageErrors(t *testing.T) {
	for _, args := range [][]string{
		{}, {"frobnicate"}, {"user"}, {"user", "delete"}, {"token"}, {"token", "create"},
		{"serve", "--listen", "nonsense"}, {"serve", "extra-arg"}, {"user", "create"},
	} {
		_, _, err := cli(t, "", args...)
		if !errors.Is(err, errUsage) || exitCode(err) != 2 {
			t.Errorf("%v: got %v, want a usage error (exit 2)", args, err)
		}
	}
}

func TestUserAndTokenCommands(t *testing.T) {
	dir := t.TempDir()
	dd := []string{"--data-dir", dir}
	out, _, err := cli(t, "correct horse battery staple\n", append([]string{"user", "create", "--username", "Alice", "--email", "alice@example.com", "--password-stdin", "--admin"}, dd...)...)
	if err != nil || !strings.Contains(out, `Created administrator "Alice"`) {
		t.Fatalf("user create: %q, %v", out, err)
	}
	if _, _, err := cli(t, "", append([]string{"user", "create", "--username", "alice"}, dd...)...); err == nil || !strings.Contains(err.Error(), "already taken") {
		t.Errorf("duplicate username ignoring case: got %v, want 'already taken'", err)
	}
	if _, _, err := cli(t, "", append([]string{"user", "create", "--username", "-bad-"}, dd...)...); err == nil || !strings.Contains(err.Error(), "invalid") {
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
	if _, _, err := cli(t, "", append([]string{"token", "create", "--user", "alice", "--description", "laptop"}, dd...)...); err == nil || !strings.Contains(err.Error(), "already in use") {
		t.Errorf("duplicate description: got %v, want 'already in use'", err)
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
	out, _, err = cli(t, "", "migrate", "--database-url", "sqlite:"+filepath.Join(dir, "gatehouse.db"))
	if err != nil || !strings.Contains(out, "up to date") {
		t.Errorf("migrate: %q, %v", out, err)
	}
}
