package main

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"syscall"
)

// A command other than serve (or migrate --create) works on an index that
// exists. Run in the wrong directory, it would otherwise create a new,
// empty one, report success, and leave the real index untouched; worse,
// token create would mint its token with a new server secret that the
// server does not know. So these commands create nothing: requireIndex
// refuses to go on when the database file or the server secret is missing,
// and says where it looked and why.

// requireIndex checks that the index cfg describes exists. A PostgreSQL
// database is a server, not a file, so only its secret is checked.
func requireIndex(cfg *settings) error {
	if fi, err := os.Stat(cfg.DataDir); err == nil && !fi.IsDir() {
		return fail(errUsage, fmt.Sprintf("The data directory %s (%s) is a file, not a directory", abs(cfg.DataDir), cfg.origin("data-dir", "GATEHOUSE_DATA_DIR")),
			"Point --data-dir (or GATEHOUSE_DATA_DIR) at the directory where 'gatehouse serve' keeps its data.")
	}
	if path, ok := sqlitePath(cfg.DatabaseURL); ok {
		if missing(path) {
			return notSetUp(cfg, "database", path, cfg.given["database-url"] || cfg.getenv("GATEHOUSE_DATABASE_URL") != "")
		}
	}
	if cfg.SecretKey == "" && missing(cfg.SecretKeyFile) {
		return notSetUp(cfg, "server secret", cfg.SecretKeyFile, cfg.given["secret-key-file"] || cfg.getenv("GATEHOUSE_SECRET_KEY_FILE") != "")
	}
	return nil
}

// sqlitePath is the file a sqlite database URL names (see db.Open).
func sqlitePath(url string) (string, bool) {
	if strings.HasPrefix(url, "postgres://") || strings.HasPrefix(url, "postgresql://") {
		return "", false
	}
	return strings.TrimPrefix(url, "sqlite:"), true
}

// missing reports whether nothing is at path, also when part of the path
// is a file rather than a directory.
func missing(path string) bool {
	_, err := os.Stat(path)
	return errors.Is(err, fs.ErrNotExist) || errors.Is(err, syscall.ENOTDIR)
}

// notSetUp explains that thing (the database, the server secret) is not at
// path. explicit says the path was configured on its own rather than
// derived from the data directory.
func notSetUp(cfg *settings, thing, path string, explicit bool) error {
	where := fmt.Sprintf("Gatehouse looked in the data directory %s (%s", abs(cfg.DataDir), cfg.origin("data-dir", "GATEHOUSE_DATA_DIR"))
	if !explicit && !cfg.given["data-dir"] && cfg.getenv("GATEHOUSE_DATA_DIR") == "" {
		where += ", relative to the current directory"
	}
	where += ")."
	if explicit {
		where = "That path was configured explicitly, not taken from the data directory."
	}
	todo := where + "\n" +
		"Run the command in the directory where you run 'gatehouse serve', or point it at the\n" +
		"server's data directory with --data-dir DIR (or GATEHOUSE_DATA_DIR=DIR), and give it\n" +
		"the same --database-url and secret settings as the server.\n" +
		"To start a new, empty index there instead, run 'gatehouse migrate --create' first."
	return fail(fs.ErrNotExist, fmt.Sprintf("No Gatehouse index found: there is no %s at %s", thing, abs(path)), todo)
}

// abs is path made absolute for messages; path itself if that fails.
func abs(path string) string {
	if a, err := filepath.Abs(path); err == nil {
		return a
	}
	return path
}
