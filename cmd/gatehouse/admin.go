package main

import (
	"bufio"
	"context"
	"flag"
	"fmt"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/gatehouse-index/gatehouse/internal/account"
	"github.com/gatehouse-index/gatehouse/internal/pep"
)

const userUsage = `Usage: gatehouse user <create|list> [flags]

  create   add a user (run 'gatehouse user create --help')
  list     list users`

func userCmd(ctx context.Context, e env, args []string) error {
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" {
		fmt.Fprintln(e.stdout, userUsage)
		if len(args) == 0 {
			return fmt.Errorf("%w: user needs a subcommand: create or list", errUsage)
		}
		return nil
	}
	switch args[0] {
	case "create":
		return userCreate(ctx, e, args[1:])
	case "list":
		return userList(ctx, e, args[1:])
	}
	return fmt.Errorf("%w: unknown user subcommand %q (want create or list)", errUsage, args[0])
}

const userCreateUsage = `Usage: gatehouse user create --username NAME --email ADDRESS [--password-stdin] [--email-verified] [--admin] [flags]

Creates a user. Give the password on standard input with --password-stdin
(it is never taken as a flag, so it stays out of shell history and ps).

Uploading needs what PyPI needs: a verified primary email address and
two-factor authentication. --email-verified records the address as verified
(you vouch for it); otherwise the user follows the link sent when they ask
for one on their account page. Two-factor authentication is set up by the
user in the browser (Account → Two-factor authentication).`

func userCreate(ctx context.Context, e env, args []string) error {
	var username, email, fullName string
	var pwStdin, admin, verified bool
	cfg, err := loadConfig(e, "user create", userCreateUsage, args, func(fs *flag.FlagSet) {
		fs.StringVar(&username, "username", "", "username (letters, digits, '.', '_', '-')")
		fs.StringVar(&email, "email", "", "email address")
		fs.StringVar(&fullName, "name", "", "full name")
		fs.BoolVar(&pwStdin, "password-stdin", false, "read the password from the first line of standard input")
		fs.BoolVar(&admin, "admin", false, "make the user an administrator")
		fs.BoolVar(&verified, "email-verified", false, "record the email address as verified (you vouch for it; no verification link is sent)")
	})
	if err != nil {
		return helpOK(err)
	}
	if username == "" {
		return fmt.Errorf("%w: --username is required", errUsage)
	}
	var password string
	if pwStdin {
		line, err := bufio.NewReader(e.stdin).ReadString('\n')
		if err != nil && line == "" {
			return fmt.Errorf("--password-stdin: could not read a password from standard input")
		}
		password = strings.TrimRight(line, "\r\n")
	}
	a, err := open(ctx, cfg, newLogger(cfg, e))
	if err != nil {
		return err
	}
	defer a.Close()
	u, err := a.accounts.Create(ctx, account.NewUser{Username: username, Email: email, FullName: fullName, Password: password, IsAdmin: admin, EmailVerified: verified})
	if err != nil {
		return err
	}
	kind := "user"
	if u.IsAdmin {
		kind = "administrator"
	}
	fmt.Fprintf(e.stdout, "Created %s %q (id %d).\nNext: log in at %s/account/login/ and set up two-factor authentication, then: gatehouse token create --user %s --description \"my laptop\"\n",
		kind, u.Username, u.ID, cfg.BaseURL, u.Username)
	return nil
}

func userList(ctx context.Context, e env, args []string) error {
	cfg, err := loadConfig(e, "user list", "Usage: gatehouse user list [flags]\n\nLists every user.", args, nil)
	if err != nil {
		return helpOK(err)
	}
	a, err := open(ctx, cfg, newLogger(cfg, e))
	if err != nil {
		return err
	}
	defer a.Close()
	users, err := a.accounts.List(ctx)
	if err != nil {
		return err
	}
	tw := tabwriter.NewWriter(e.stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tUSERNAME\tEMAIL\tADMIN\tDISABLED\tCREATED")
	for _, u := range users {
		fmt.Fprintf(tw, "%d\t%s\t%s\t%v\t%v\t%s\n", u.ID, u.Username, u.PrimaryEmail, u.IsAdmin, u.Disabled, u.CreatedAt.Format("2006-01-02"))
	}
	return tw.Flush()
}

const tokenUsage = `Usage: gatehouse token create --user NAME --description TEXT [--project NAME ...] [--expires DURATION] [flags]

Creates an API token and prints it once. Without --project the token can
upload to every project the user may upload to, and create new projects; with
one or more --project it is limited to those projects. Upload with:

  twine upload --repository-url <base-url>/legacy/ -u __token__ -p <token> dist/*`

type multiFlag []string

func (m *multiFlag) String() string     { return strings.Join(*m, ",") }
func (m *multiFlag) Set(v string) error { *m = append(*m, v); return nil }

func tokenCmd(ctx context.Context, e env, args []string) error {
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" {
		fmt.Fprintln(e.stdout, tokenUsage)
		if len(args) == 0 {
			return fmt.Errorf("%w: token needs a subcommand: create", errUsage)
		}
		return nil
	}
	if args[0] != "create" {
		return fmt.Errorf("%w: unknown token subcommand %q (want create)", errUsage, args[0])
	}
	var username, description, expires string
	var projects multiFlag
	cfg, err := loadConfig(e, "token create", tokenUsage, args[1:], func(fs *flag.FlagSet) {
		fs.StringVar(&username, "user", "", "the user the token acts for")
		fs.StringVar(&description, "description", "", "what the token is for (unique per user, at most 100 characters)")
		fs.Var(&projects, "project", "limit the token to this project (repeat for several)")
		fs.StringVar(&expires, "expires", "", "lifetime, e.g. 720h or 30d; default: no expiry")
	})
	if err != nil {
		return helpOK(err)
	}
	if username == "" || description == "" {
		return fmt.Errorf("%w: --user and --description are required", errUsage)
	}
	var expiresAt *time.Time
	if expires != "" {
		d, err := parseLifetime(expires)
		if err != nil {
			return fmt.Errorf("%w: --expires: %v", errUsage, err)
		}
		t := time.Now().Add(d).UTC().Truncate(time.Second)
		expiresAt = &t
	}
	a, err := open(ctx, cfg, newLogger(cfg, e))
	if err != nil {
		return err
	}
	defer a.Close()
	u, err := a.accounts.ByUsername(ctx, username)
	if err != nil {
		return fmt.Errorf("%v Create the user first with 'gatehouse user create'", err)
	}
	var norm []string
	for _, p := range projects {
		norm = append(norm, pep.NormalizeName(p))
	}
	raw, tok, err := a.tokens.Create(ctx, u.ID, description, norm, expiresAt)
	if err != nil {
		return err
	}
	fmt.Fprintln(e.stdout, raw)
	scope := "all of " + u.Username + "'s projects (and new ones)"
	if len(norm) > 0 {
		scope = "projects " + strings.Join(norm, ", ")
	}
	exp := "never expires"
	if tok.ExpiresAt != nil {
		exp = "expires " + tok.ExpiresAt.Format(time.RFC3339)
	}
	fmt.Fprintf(e.stderr, "Token %q for %s: %s; %s. It is shown only this once.\n", description, u.Username, scope, exp)
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
