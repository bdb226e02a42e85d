package main

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestCLIBackupArguments: DEST (or SRC) may come before, after or between
// the flags; none, or two, is a usage error that says so; a backup of a
// directory with no index is refused as for every other command.
func TestCLIBackupArguments(t *testing.T) {
	ctx := context.Background()
	do := func(args ...string) (string, error) {
		var out, errOut bytes.Buffer
		err := run(ctx, args, e2eNoEnv, strings.NewReader(""), &out, &errOut)
		return out.String() + errOut.String(), err
	}
	for _, args := range [][]string{{"backup"}, {"restore", "--force"}} {
		_, err := do(args...)
		if !errors.Is(err, errUsage) || !strings.Contains(err.Error(), "No backup directory") {
			t.Errorf("gatehouse %s: %v, want a usage error naming the missing directory", strings.Join(args, " "), err)
		}
	}
	if _, err := do("backup", "a", "b"); !errors.Is(err, errUsage) || !strings.Contains(err.Error(), `Unexpected argument "b"`) {
		t.Errorf("gatehouse backup a b: %v, want a usage error about b", err)
	}
	empty := t.TempDir()
	dest := filepath.Join(t.TempDir(), "b")
	for _, args := range [][]string{
		{"backup", dest, "--data-dir", empty},
		{"backup", "--data-dir", empty, dest},
	} {
		_, err := do(args...)
		if err == nil || !strings.Contains(err.Error(), "No Gatehouse index found") {
			t.Errorf("gatehouse %s: %v, want no index found", strings.Join(args, " "), err)
		}
		if _, statErr := os.Stat(dest); statErr == nil {
			t.Errorf("gatehouse %s created %s", strings.Join(args, " "), dest)
		}
	}
	if out, err := do("backup", "--help"); err != nil || !strings.Contains(out, "Usage: gatehouse backup") {
		t.Errorf("gatehouse backup --help: %v\n%s", err, out)
	}
}
