package backup

import (
	"bytes"
	"context"
	"fmt"
	"net/url"
	"os"
	"os/exec"
	"strings"
)

// pgConn splits a database URL into what libpq's tools get on the command
// line and the password, which goes in PGPASSWORD instead: a command line
// is visible to every user of the machine (ps), the environment is not.
func pgConn(databaseURL string) (dbname string, env []string, err error) {
	u, err := url.Parse(databaseURL)
	if err != nil {
		return "", nil, fmt.Errorf("the database URL does not parse")
	}
	env = os.Environ()
	if pw, ok := u.User.Password(); ok {
		env = append(env, "PGPASSWORD="+pw)
		u.User = url.User(u.User.Username())
	}
	return u.String(), env, nil
}

// pgDump dumps the database, as of snapshot, in pg_dump's custom format
// (compressed; pg_restore reads it).
func pgDump(ctx context.Context, o Options, snapshot, path string) error {
	prog := o.PgDump
	if prog == "" {
		prog = "pg_dump"
	}
	dbname, env, err := pgConn(o.DatabaseURL)
	if err != nil {
		return err
	}
	return runPg(ctx, prog, env, "--format=custom", "--no-owner", "--no-privileges",
		"--snapshot="+snapshot, "--file="+path, "--dbname="+dbname)
}

// pgRestore loads a dump into the database; with clean it first drops
// what the dump is about to create.
func pgRestore(ctx context.Context, prog, databaseURL, path string, clean bool) error {
	if prog == "" {
		prog = "pg_restore"
	}
	dbname, env, err := pgConn(databaseURL)
	if err != nil {
		return err
	}
	args := []string{"--no-owner", "--no-privileges", "--exit-on-error", "--single-transaction", "--dbname=" + dbname}
	if clean {
		args = append(args, "--clean", "--if-exists")
	}
	return runPg(ctx, prog, env, append(args, path)...)
}

// runPg runs a PostgreSQL client program. Its error output is returned
// without the arguments, which name the database.
func runPg(ctx context.Context, prog string, env []string, args ...string) error {
	cmd := exec.CommandContext(ctx, prog, args...)
	cmd.Env = env
	var out bytes.Buffer
	cmd.Stdout = &out
	cmd.Stderr = &out
	if err := cmd.Run(); err != nil {
		if execErr, ok := err.(*exec.Error); ok {
			return fmt.Errorf("%s is needed for PostgreSQL backups and was not found (%v): install the PostgreSQL client tools of the server's major version (Debian: postgresql-client)", prog, execErr.Err)
		}
		return fmt.Errorf("%s failed (%v): %s", prog, err, strings.TrimSpace(out.String()))
	}
	return nil
}
