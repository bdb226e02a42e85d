package main

import (
	"context"
	"flag"
	"fmt"
	"strings"
	"text/tabwriter"

	"github.com/gatehouse-index/gatehouse/internal/account"
	"github.com/gatehouse-index/gatehouse/internal/derrors"
)

const userUsage = `Usage: gatehouse user <create|list> [flags]

  create   add a user (run 'gatehouse user create --help')
  list     list users, with whether each can upload yet`

func userCmd(ctx context.Context, e env, args []string) error {
	if len(args) == 0 {
		fmt.Fprintln(e.stderr, userUsage)
		return usageErr("user", "'gatehouse user' needs a subcommand: create or list")
	}
	switch args[0] {
	case "-h", "-help", "--help", "help":
		fmt.Fprintln(e.stdout, userUsage)
		return nil
	case "create":
		return userCreate(ctx, e, args[1:])
	case "list":
		return userList(ctx, e, args[1:])
	}
	return usageErr("user", "There is no user subcommand %q (want create or list)", args[0])
}

const userCreateUsage = `Usage: gatehouse user create --username NAME --email ADDRESS --password-stdin [--email-verified] [--admin] [flags]
       gatehouse user create --username NAME --email ADDRESS --email-verified --no-password [flags]

Creates a user in an existing index (see 'gatehouse migrate --help' to start
a new one).

A password is required, or the user could never log in. Give it on standard
input with --password-stdin: type it when asked (it is not shown), or pipe
it, e.g. printf '%s\n' "$PASSWORD" | gatehouse user create ... It is never
taken as a flag, so it stays out of shell history and ps. The same rules as
the registration form apply: at least 8 characters, not a common password,
not the user's own name or address.

To let the user choose their own password instead, use --no-password with a
verified address: they then ask for a link with "Forgot your password?" on
the login page (<base-url>/account/request-password-reset/).

Uploading needs what PyPI needs: a verified primary email address and
two-factor authentication. --email-verified records the address as verified
(you vouch for it; no email is sent); otherwise the user asks for a
verification link on their account page after logging in. Two-factor
authentication is set up by the user in the browser.`

func userCreate(ctx context.Context, e env, args []string) error {
	var username, email, fullName string
	var pwStdin, noPassword, admin, verified bool
	cfg, err := loadConfig(e, "user create", userCreateUsage, args, func(fs *flag.FlagSet) {
		fs.StringVar(&username, "username", "", "`NAME` to log in with (letters, digits, '.', '_', '-')")
		fs.StringVar(&email, "email", "", "the user's email `ADDRESS`")
		fs.StringVar(&fullName, "name", "", "the user's full `NAME`, shown on their projects")
		fs.BoolVar(&pwStdin, "password-stdin", false, "read the password from the first line of standard input")
		fs.BoolVar(&noPassword, "no-password", false, "create the user without a password: they choose one through a password-reset link (needs --email and --email-verified)")
		fs.BoolVar(&admin, "admin", false, "make the user an administrator")
		fs.BoolVar(&verified, "email-verified", false, "record the email address as verified (you vouch for it; no verification link is sent)")
	})
	if err != nil {
		return helpOK(err)
	}
	if username == "" {
		return usageErr("user create", "--username is required")
	}
	switch {
	case pwStdin && noPassword:
		return usageErr("user create", "Give either --password-stdin or --no-password, not both")
	case !pwStdin && !noPassword:
		return fail(errUsage, fmt.Sprintf("A password is required: without one, %s could never log in", username),
			fmt.Sprintf("Add --password-stdin and type the password when asked, or pipe it:\n"+
				"  printf '%%s\\n' \"$PASSWORD\" | gatehouse user create --username %s ... --password-stdin\n"+
				"Or, to let %s choose one through a password-reset link, add --no-password\n"+
				"(with --email and --email-verified). See 'gatehouse user create --help'.", username, username))
	case noPassword && (email == "" || !verified):
		return usageErr("user create", "--no-password needs --email and --email-verified: password-reset links are only sent to a verified address, and that link is how %s would choose a password", username)
	}
	a, err := open(ctx, cfg, newLogger(cfg, e), false)
	if err != nil {
		return err
	}
	defer a.Close()
	var password string
	if pwStdin {
		if password, err = readPassword(ctx, e, username); err != nil {
			return err
		}
	}
	u, err := a.accounts.Create(ctx, account.NewUser{Username: username, Email: email, FullName: fullName, Password: password, IsAdmin: admin, EmailVerified: verified})
	if err != nil {
		return explain(err, advice{kind: derrors.Conflict, todo: "'gatehouse user list' lists the existing users. Nothing was created."},
			advice{kind: derrors.Invalid, todo: "Nothing was created."})
	}
	kind := "user"
	if u.IsAdmin {
		kind = "administrator"
	}
	fmt.Fprintf(e.stdout, "Created %s %q (id %d).\n", kind, u.Username, u.ID)
	if !u.HasPassword {
		fmt.Fprintf(e.stdout, "%s has no password yet: they open %s/account/request-password-reset/, enter %s,\nand follow the link emailed to %s to choose one.\n",
			u.Username, cfg.BaseURL, u.Username, u.PrimaryEmail)
		if cfg.SMTPURL == "" {
			fmt.Fprintf(e.stdout, "(With no --smtp-url, the server writes that email under %s instead of sending it.)\n", abs(cfg.MailDir))
		}
	}
	blockers, err := uploadBlockers(ctx, a, u)
	if err != nil {
		return err
	}
	fmt.Fprintf(e.stdout, "Before %s can upload:\n", u.Username)
	for _, b := range blockers {
		fmt.Fprintf(e.stdout, "  - %s\n", b)
	}
	fmt.Fprintf(e.stdout, "Then make an API token: gatehouse token create --user %s --description \"my laptop\"\n", u.Username)
	return nil
}

// readPassword reads the first line of standard input. From a terminal it
// asks for the password on stderr and does not echo it.
func readPassword(ctx context.Context, e env, username string) (string, error) {
	line, fromTerminal, err := readSecretLine(e.stdin, func() {
		fmt.Fprintf(e.stderr, "Password for %s (at least %d characters; not shown as you type), then Enter: ", username, account.MinPasswordLen)
	})
	if fromTerminal {
		fmt.Fprintln(e.stderr)
	}
	if ctx.Err() != nil {
		return "", explain(ctx.Err())
	}
	if err != nil && line == "" {
		return "", fail(errUsage, "--password-stdin: no password on standard input",
			fmt.Sprintf("Type the password and press Enter, or pipe it: printf '%%s\\n' \"$PASSWORD\" | gatehouse user create --username %s ... --password-stdin", username))
	}
	return strings.TrimRight(line, "\r\n"), nil
}

// uploadBlockers lists, with what to do about each, what keeps u from
// uploading: the prerequisites the upload endpoint checks (a verified
// primary address, then a second factor, as on PyPI), and what stands in
// the way of meeting them (a disabled account, no password to log in with).
func uploadBlockers(ctx context.Context, a *app, u *account.User) ([]string, error) {
	base := a.cfg.BaseURL
	var out []string
	if u.Disabled {
		reason := ""
		if u.DisabledReason != "" {
			reason = " (" + u.DisabledReason + ")"
		}
		out = append(out, fmt.Sprintf("%s's account is disabled%s: an administrator re-enables it at %s/admin/users/%d/.", u.Username, reason, base, u.ID))
	}
	switch {
	case u.PrimaryEmail == "":
		out = append(out, fmt.Sprintf("%s has no email address: after logging in they add one at %s/manage/account/ and follow the verification link.", u.Username, base))
	case !u.PrimaryVerified:
		out = append(out, fmt.Sprintf("%s's address %s is not verified: after logging in they choose \"Resend verification\" at %s/manage/account/ and follow the emailed link.", u.Username, u.PrimaryEmail, base))
	}
	has2FA, err := a.mfa.HasTwoFactor(ctx, u.ID)
	if err != nil {
		return nil, err
	}
	if !has2FA {
		out = append(out, fmt.Sprintf("%s has no two-factor authentication: after logging in at %s/account/login/ they set it up at %s/manage/account/two-factor/.", u.Username, base, base))
	}
	return out, nil
}

func userList(ctx context.Context, e env, args []string) error {
	cfg, err := loadConfig(e, "user list", "Usage: gatehouse user list [flags]\n\nLists every user, and whether each can upload yet (a verified email address\nand two-factor authentication, as on PyPI).", args, nil)
	if err != nil {
		return helpOK(err)
	}
	a, err := open(ctx, cfg, newLogger(cfg, e), false)
	if err != nil {
		return err
	}
	defer a.Close()
	users, err := a.accounts.List(ctx)
	if err != nil {
		return err
	}
	if len(users) == 0 {
		fmt.Fprintln(e.stderr, "No users yet: add one with 'gatehouse user create'.")
		return nil
	}
	tw := tabwriter.NewWriter(e.stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tUSERNAME\tEMAIL\tVERIFIED\t2FA\tADMIN\tDISABLED\tCREATED")
	for _, u := range users {
		has2FA, err := a.mfa.HasTwoFactor(ctx, u.ID)
		if err != nil {
			return err
		}
		fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", u.ID, u.Username, orDash(u.PrimaryEmail), yesNo(u.PrimaryVerified), yesNo(has2FA),
			yesNo(u.IsAdmin), yesNo(u.Disabled), u.CreatedAt.Format("2006-01-02"))
	}
	return tw.Flush()
}

func yesNo(b bool) string {
	if b {
		return "yes"
	}
	return "no"
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
