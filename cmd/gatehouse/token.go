package main

import (
	"context"
	"flag"
	"fmt"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/gatehouse-index/gatehouse/internal/account"
	"github.com/gatehouse-index/gatehouse/internal/derrors"
	"github.com/gatehouse-index/gatehouse/internal/pep"
	"github.com/gatehouse-index/gatehouse/internal/token"
)

const tokenUsage = `Usage: gatehouse token <create|list|delete|revoke> [flags]

  create   make an API token and print it (run 'gatehouse token create --help')
  list     list a user's tokens
  delete   delete one of a user's tokens; it stops working at once
  revoke   revoke a leaked token by its value and email its owner`

func tokenCmd(ctx context.Context, e env, args []string) error {
	if len(args) == 0 {
		fmt.Fprintln(e.stderr, tokenUsage)
		return usageErr("token", "'gatehouse token' needs a subcommand: create, list, delete or revoke")
	}
	switch args[0] {
	case "-h", "-help", "--help", "help":
		fmt.Fprintln(e.stdout, tokenUsage)
		return nil
	case "create":
		return tokenCreate(ctx, e, args[1:])
	case "list":
		return tokenList(ctx, e, args[1:])
	case "delete":
		return tokenDelete(ctx, e, args[1:])
	case "revoke":
		return tokenRevoke(ctx, e, args[1:])
	}
	return usageErr("token", "There is no token subcommand %q (want create, list, delete or revoke)", args[0])
}

const tokenCreateUsage = `Usage: gatehouse token create --user NAME --description TEXT [--read] [--project NAME ...] [--expires DURATION] [flags]

Creates an API token and prints it once, alone on standard output, so that
  TOKEN=$(gatehouse token create --user alice --description laptop)
captures it; if anything goes wrong, nothing is printed there and the
command exits non-zero. Without --project the token can upload to every
project the user may upload to, and create new projects; with one or more
--project it is limited to those projects. Upload with:

  twine upload --repository-url <base-url>/legacy/ -u __token__ -p "$TOKEN" dist/*

Uploads need a verified email address and two-factor authentication, as on
PyPI: if the user lacks either, the token is still made and a warning on
standard error says what the user must do first.

With --read the token is read-only: it installs from an index that needs
credentials to read (--read-access authenticated) and is refused by the
upload API. Install with:

  pip install --index-url https://__token__:$TOKEN@<host>/simple/ NAME`

type multiFlag []string

func (m *multiFlag) String() string     { return strings.Join(*m, ",") }
func (m *multiFlag) Set(v string) error { *m = append(*m, v); return nil }

func tokenCreate(ctx context.Context, e env, args []string) error {
	var username, description, expires string
	var projects multiFlag
	var readOnly bool
	cfg, err := loadConfig(e, "token create", tokenCreateUsage, args, func(fs *flag.FlagSet) {
		fs.StringVar(&username, "user", "", "the `NAME` of the user the token acts for")
		fs.StringVar(&description, "description", "", "`TEXT` saying what the token is for, e.g. laptop; unique per user, at most 100 characters")
		fs.Var(&projects, "project", "limit the token to this project `NAME` (repeat for several)")
		fs.StringVar(&expires, "expires", "", "the token's lifetime as a `DURATION`, e.g. 720h or 30d; default: no expiry")
		fs.BoolVar(&readOnly, "read", false, "make a read-only token: it installs (pip, uv) and never uploads")
	})
	if err != nil {
		return helpOK(err)
	}
	if username == "" || description == "" {
		return usageErr("token create", "--user and --description are required")
	}
	var expiresAt *time.Time
	if expires != "" {
		d, err := parseLifetime(expires)
		if err != nil {
			return usageErr("token create", "--expires: %v", err)
		}
		t := time.Now().Add(d).UTC().Truncate(time.Second)
		expiresAt = &t
	}
	a, err := open(ctx, cfg, newLogger(cfg, e), false)
	if err != nil {
		return err
	}
	defer a.Close()
	u, err := findUser(ctx, a, username)
	if err != nil {
		return err
	}
	var norm []string
	for _, p := range projects {
		norm = append(norm, pep.NormalizeName(p))
	}
	create := a.tokens.Create
	if readOnly {
		create = a.tokens.CreateReadOnly
	}
	raw, tok, err := create(ctx, u.ID, description, norm, expiresAt, token.Origin{CommandLine: true})
	if err != nil {
		return explain(err,
			advice{kind: derrors.Conflict, what: fmt.Sprintf("%s already has a token named %q", u.Username, strings.TrimSpace(description)),
				todo: fmt.Sprintf("Choose another --description, or delete the old token first:\n  gatehouse token delete --user %s --description %q\n'gatehouse token list --user %s' lists %s's tokens.",
					u.Username, strings.TrimSpace(description), u.Username, u.Username)},
			advice{kind: derrors.NotFound, todo: fmt.Sprintf("--project takes only projects that exist. A new project is created by its first upload: for that, make a token without --project (it can upload to all of %s's projects and create new ones).", u.Username)},
			advice{kind: derrors.Forbidden, todo: fmt.Sprintf("A token can only be limited to projects %s is an Owner or Maintainer of.", u.Username)},
			advice{kind: derrors.Invalid, todo: "Nothing was created. Check --description and --project."})
	}
	fmt.Fprintln(e.stdout, raw)
	scope := "all of " + u.Username + "'s projects (and new ones)"
	if len(norm) > 0 {
		scope = "projects " + strings.Join(tok.Projects, ", ")
	}
	exp := "never expires"
	if tok.ExpiresAt != nil {
		exp = "expires " + tok.ExpiresAt.Format(time.RFC3339)
	}
	if readOnly {
		scope = "read-only, " + strings.Replace(scope, "all of "+u.Username+"'s projects (and new ones)", "the whole index", 1)
		fmt.Fprintf(e.stderr, "Token %q for %s: %s; %s. It is shown only this once.\n", tok.Description, u.Username, scope, exp)
		host := cfg.BaseURL
		if i := strings.Index(host, "://"); i >= 0 {
			host = host[:i+3] + "__token__:$TOKEN@" + host[i+3:]
		}
		fmt.Fprintf(e.stderr, "Install with: pip install --index-url %s/simple/ NAME\n", host)
		return nil
	}
	fmt.Fprintf(e.stderr, "Token %q for %s: %s; %s. It is shown only this once.\n", tok.Description, u.Username, scope, exp)
	fmt.Fprintf(e.stderr, "Upload with: twine upload --repository-url %s/legacy/ -u __token__ -p \"$TOKEN\" dist/*\n", cfg.BaseURL)
	blockers, err := uploadBlockers(ctx, a, u)
	if err != nil {
		// The token exists and was printed: a failed check must not hide it.
		a.log.Warn("could not check whether the user can upload", "err", err)
		return nil
	}
	if len(blockers) > 0 {
		fmt.Fprintf(e.stderr, "Warning: uploads with this token are refused until %s has done this:\n", u.Username)
		for _, b := range blockers {
			fmt.Fprintf(e.stderr, "  - %s\n", b)
		}
		fmt.Fprintln(e.stderr, "The token starts working for uploads as soon as that is done; it need not be made again.")
	}
	return nil
}

// findUser looks a user up by name for the token commands.
func findUser(ctx context.Context, a *app, username string) (*account.User, error) {
	u, err := a.accounts.ByUsername(ctx, username)
	if err != nil {
		return nil, explain(err, advice{kind: derrors.NotFound, what: fmt.Sprintf("There is no user named %q in this index", username),
			todo: "'gatehouse user list' lists the users; 'gatehouse user create --username NAME ...' adds one."})
	}
	return u, nil
}

func tokenList(ctx context.Context, e env, args []string) error {
	var username string
	cfg, err := loadConfig(e, "token list", "Usage: gatehouse token list --user NAME [flags]\n\nLists a user's API tokens, newest first. The tokens themselves are shown only\nwhen made; this shows what each is for, what it may do and when it was last used.", args, func(fs *flag.FlagSet) {
		fs.StringVar(&username, "user", "", "the `NAME` of the user whose tokens to list")
	})
	if err != nil {
		return helpOK(err)
	}
	if username == "" {
		return usageErr("token list", "--user is required")
	}
	a, err := open(ctx, cfg, newLogger(cfg, e), false)
	if err != nil {
		return err
	}
	defer a.Close()
	u, err := findUser(ctx, a, username)
	if err != nil {
		return err
	}
	tokens, err := a.tokens.List(ctx, u.ID)
	if err != nil {
		return err
	}
	if len(tokens) == 0 {
		fmt.Fprintf(e.stderr, "%s has no API tokens: make one with 'gatehouse token create --user %s --description TEXT'.\n", u.Username, u.Username)
		return nil
	}
	tw := tabwriter.NewWriter(e.stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "DESCRIPTION\tSCOPE\tCREATED\tEXPIRES\tLAST USED")
	day := func(t *time.Time, none string) string {
		if t == nil {
			return none
		}
		return t.Format("2006-01-02")
	}
	for _, t := range tokens {
		scope := "all projects"
		if len(t.Projects) > 0 {
			scope = strings.Join(t.Projects, ", ")
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", t.Description, scope, t.CreatedAt.Format("2006-01-02"), day(t.ExpiresAt, "never"), day(t.LastUsedAt, "never"))
	}
	return tw.Flush()
}

func tokenDelete(ctx context.Context, e env, args []string) error {
	var username, description string
	cfg, err := loadConfig(e, "token delete", "Usage: gatehouse token delete --user NAME --description TEXT [flags]\n\nDeletes one of a user's API tokens, named by its description (see\n'gatehouse token list'). It stops working at once.", args, func(fs *flag.FlagSet) {
		fs.StringVar(&username, "user", "", "the `NAME` of the user who owns the token")
		fs.StringVar(&description, "description", "", "the token's description (`TEXT`), as 'gatehouse token list' shows it")
	})
	if err != nil {
		return helpOK(err)
	}
	if username == "" || description == "" {
		return usageErr("token delete", "--user and --description are required")
	}
	a, err := open(ctx, cfg, newLogger(cfg, e), false)
	if err != nil {
		return err
	}
	defer a.Close()
	u, err := findUser(ctx, a, username)
	if err != nil {
		return err
	}
	tokens, err := a.tokens.List(ctx, u.ID)
	if err != nil {
		return err
	}
	want := strings.TrimSpace(description)
	for _, t := range tokens {
		if t.Description == want {
			if _, err := a.tokens.Delete(ctx, u.ID, t.ID, token.Origin{CommandLine: true}); err != nil {
				return err
			}
			fmt.Fprintf(e.stdout, "Deleted %s's token %q; it no longer works.\n", u.Username, t.Description)
			return nil
		}
	}
	return fail(derrors.NotFound, fmt.Sprintf("%s has no token named %q", u.Username, want),
		fmt.Sprintf("'gatehouse token list --user %s' lists %s's tokens.", u.Username, u.Username))
}

const tokenRevokeUsage = `Usage: gatehouse token revoke [--url URL] [flags] < token.txt

Revokes a leaked API token by its value: the token is deleted at once and
its owner is emailed that an administrator revoked it, and why. Give the
token on standard input (type or paste it when asked, or pipe it), never as
an argument, where it would stay in the shell's history:

  printf '%s\n' "$LEAKED" | gatehouse token revoke --url https://example.com/where/it/was/found

Use it when someone reports a token found in public. Anyone can also report
one to the server itself: POST /_/secrets/disclose-token (see docs/tokens.md).`

func tokenRevoke(ctx context.Context, e env, args []string) error {
	var foundAt string
	cfg, err := loadConfig(e, "token revoke", tokenRevokeUsage, args, func(fs *flag.FlagSet) {
		fs.StringVar(&foundAt, "url", "", "where the token was found (`URL`), for the owner's email and the security history")
	})
	if err != nil {
		return helpOK(err)
	}
	line, fromTerminal, rerr := readSecretLine(e.stdin, func() {
		fmt.Fprint(e.stderr, "Paste the leaked token (not shown as you type), then Enter: ")
	})
	if fromTerminal {
		fmt.Fprintln(e.stderr)
	}
	if ctx.Err() != nil {
		return explain(ctx.Err())
	}
	raw := strings.TrimSpace(line)
	if raw == "" && rerr != nil {
		return fail(errUsage, "No token on standard input",
			"Paste the token and press Enter, or pipe it: printf '%s\n' \"$LEAKED\" | gatehouse token revoke")
	}
	if !strings.HasPrefix(raw, token.Prefix) {
		return fail(errUsage, fmt.Sprintf("That is not an API token: tokens start with %q", token.Prefix),
			"Give the whole token, as it was found, on standard input.")
	}
	a, err := open(ctx, cfg, newLogger(cfg, e), false)
	if err != nil {
		return err
	}
	defer a.Close()
	revoked, err := a.tokens.RevokeLeaked(ctx, []token.Leak{{Token: raw, URL: foundAt}}, token.Origin{CommandLine: true})
	if err != nil {
		return explain(err, advice{kind: derrors.Invalid, todo: "Nothing was revoked. Check --url."})
	}
	if len(revoked) == 0 {
		return fail(derrors.NotFound, "This token is not one of this index's, or it was already deleted or revoked",
			"Nothing was changed. A token of another index (pypi.org's, say) must be revoked there.")
	}
	t := revoked[0]
	fmt.Fprintf(e.stdout, "Revoked %s's token %q (%s); it no longer works. An email telling %s is queued; the server sends it.\n", t.Username, t.Description, token.ScopeWords(t.Token), t.Username)
	return nil
}

// parseLifetime accepts Go durations plus a "d" suffix for days.
func parseLifetime(s string) (time.Duration, error) {
	if n, ok := strings.CutSuffix(s, "d"); ok {
		var days int
		if _, err := fmt.Sscanf(n, "%d", &days); err != nil || days <= 0 {
			return 0, fmt.Errorf("not a lifetime: %q (e.g. 30d or 12h)", s)
		}
		return time.Duration(days) * 24 * time.Hour, nil
	}
	d, err := time.ParseDuration(s)
	if err != nil || d <= 0 {
		return 0, fmt.Errorf("not a lifetime: %q (e.g. 30d or 12h)", s)
	}
	return d, nil
}
