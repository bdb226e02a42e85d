package account

import (
	"context"
	"encoding/json"
	"fmt"
	"net/mail"
	"regexp"
	"strings"
	"sync"
	"unicode"
	"unicode/utf8"

	zxcvbndata "github.com/ccojocar/zxcvbn-go/data"

	"github.com/gatehouse-index/gatehouse/internal/derrors"
)

// Field limits, Warehouse's (spec §1.1 Registration).
const (
	MaxUsernameLen = 50
	MaxFullNameLen = 100
	MaxEmailLen    = 254
	// MaxEmailsPerUser bounds the addresses of one account (and so the
	// new-email-added notices one addition sends).
	MaxEmailsPerUser = 10
)

// Password length rules (NIST SP 800-63B): at least 8 characters, at most
// 4096, no composition rules and no truncation.
const (
	MinPasswordLen = 8
	MaxPasswordLen = 4096
)

// usernameRE is Warehouse's rule: letters, digits, '.', '_' and '-', starting
// and ending with a letter or digit.
var usernameRE = regexp.MustCompile(`^[A-Za-z0-9]([A-Za-z0-9._-]*[A-Za-z0-9])?$`)

func checkUsername(name string) error {
	switch {
	case name == "":
		return derrors.New(derrors.Invalid, "Enter a username.")
	case len(name) > MaxUsernameLen:
		return derrors.New(derrors.Invalid, "The username is too long. Choose a username with %d characters or less.", MaxUsernameLen)
	case !usernameRE.MatchString(name):
		return derrors.New(derrors.Invalid, "The username is invalid. Usernames must be composed of letters, numbers, dots, hyphens and underscores. And must also start and finish with a letter or number. Choose a different username.")
	}
	return nil
}

func checkFullName(name string) error {
	switch {
	case utf8.RuneCountInString(name) > MaxFullNameLen:
		return derrors.New(derrors.Invalid, "The name is too long. Choose a name with %d characters or less.", MaxFullNameLen)
	case strings.Contains(name, "://"):
		// Spammers register accounts to put links on profile pages.
		return derrors.New(derrors.Invalid, "URLs are not allowed in the name field.")
	case strings.ContainsRune(name, 0):
		return derrors.New(derrors.Invalid, "Null bytes are not allowed.")
	}
	return nil
}

// checkEmailSyntax accepts a bare address (no display name, no comments)
// whose domain has a dot: the mail must be deliverable over the Internet.
func checkEmailSyntax(addr string) error {
	if addr == "" {
		return derrors.New(derrors.Invalid, "Enter an email address.")
	}
	if len(addr) > MaxEmailLen {
		return derrors.New(derrors.Invalid, "The email address is too long. Try again.")
	}
	a, err := mail.ParseAddress(addr)
	if err != nil || a.Address != addr || a.Name != "" {
		return derrors.New(derrors.Invalid, "The email address isn't valid. Try again.")
	}
	at := strings.LastIndexByte(addr, '@')
	domain := addr[at+1:]
	if !strings.Contains(domain, ".") || strings.HasPrefix(domain, ".") || strings.HasSuffix(domain, ".") || strings.Contains(domain, "..") {
		return derrors.New(derrors.Invalid, "The email address isn't valid. Try again.")
	}
	return nil
}

// emailKey is the form addresses are unique in: lower-cased whole. Local
// parts are case-sensitive in theory, never in practice, and two accounts
// differing only in case would let one hijack the other's resets.
func emailKey(addr string) string { return strings.ToLower(addr) }

// CheckPasswordLength applies the length rules, counting characters (not
// bytes) of the normalized password.
func CheckPasswordLength(pw string) error {
	n := utf8.RuneCountInString(normalize(pw))
	if n < MinPasswordLen {
		return derrors.New(derrors.Invalid, "Password too short: use at least %d characters.", MinPasswordLen)
	}
	if n > MaxPasswordLen {
		return derrors.New(derrors.Invalid, "Password too long: use at most %d characters.", MaxPasswordLen)
	}
	return nil
}

// Messages of the password rules that callers and tests match.
const (
	msgPasswordMismatch = "Your passwords don't match. Try again."
	msgCommonPassword   = "This password appears in a list of common passwords. Choose a different password."
	msgBreachedPassword = "This password appears in a security breach or has been compromised and cannot be used. Choose a different password."
	msgPersonalPassword = "Your password can't be your username, name or email address. Choose a different password."
)

// CheckNewPassword applies the rules for a password being chosen
// (registration, change, reset): length, confirmation, not a common
// password, not the user's own name or address, not in a known breach. u
// supplies the user's details and may be nil.
func (s *Service) CheckNewPassword(ctx context.Context, pw, confirm string, u *User) error {
	if strings.ContainsRune(pw, 0) {
		return derrors.New(derrors.Invalid, "Null bytes are not allowed.")
	}
	if err := CheckPasswordLength(pw); err != nil {
		return err
	}
	if pw != confirm {
		return derrors.New(derrors.Invalid, msgPasswordMismatch)
	}
	folded := strings.ToLower(normalize(pw))
	common, err := commonPasswords()
	if err != nil {
		return err
	}
	if isCommon(folded, common) {
		return derrors.New(derrors.Invalid, msgCommonPassword)
	}
	if u != nil && isPersonal(folded, u) {
		return derrors.New(derrors.Invalid, msgPersonalPassword)
	}
	if s.breach != nil {
		breached, err := s.breach.Check(ctx, pw)
		if err != nil {
			// Fail open, as Warehouse does: an outage of the breach service
			// must not stop people from setting passwords. The error never
			// contains the password or its hash.
			s.log.Warn("breached-password check unavailable; password accepted", "err", err)
		}
		if breached {
			return derrors.New(derrors.Invalid, msgBreachedPassword)
		}
	}
	return nil
}

// isPersonal reports whether the (case-folded) password is the user's
// username, full name, address or the address's local part, the "user
// inputs" zxcvbn penalises most.
func isPersonal(folded string, u *User) bool {
	email := strings.ToLower(u.PrimaryEmail)
	local, _, _ := strings.Cut(email, "@")
	for _, v := range []string{strings.ToLower(u.Username), strings.ToLower(normalize(u.FullName)), email, local} {
		if v != "" && folded == v {
			return true
		}
	}
	return false
}

// commonPasswords is the zxcvbn list of the 7,141 most common passwords
// (from leaked password dumps), as shipped in
// github.com/ccojocar/zxcvbn-go v1.0.4, data/Passwords.json: lower-case,
// most frequent first. It is read from the module's embedded data on first
// use, not through its frequency package, whose init parses every zxcvbn
// dictionary (about 10 MB, 45 ms) at each start of the binary.
var commonPasswords = sync.OnceValues(func() (map[string]struct{}, error) {
	raw, err := zxcvbndata.Asset("data/Passwords.json")
	if err != nil {
		return nil, fmt.Errorf("common-password list: %w", err)
	}
	var f struct{ List []string }
	if err := json.Unmarshal(raw, &f); err != nil {
		return nil, fmt.Errorf("common-password list: %w", err)
	}
	set := make(map[string]struct{}, len(f.List))
	for _, p := range f.List {
		set[strings.ToLower(p)] = struct{}{}
	}
	return set, nil
})

// isCommon reports whether a (folded) password is on the list, also after
// removing what people most often bolt onto a common word to pass a length
// rule: trailing digits and punctuation ("password1234", "qwerty!!").
func isCommon(folded string, common map[string]struct{}) bool {
	if _, ok := common[folded]; ok {
		return true
	}
	base := strings.TrimRightFunc(folded, func(r rune) bool { return unicode.IsDigit(r) || unicode.IsPunct(r) || unicode.IsSymbol(r) })
	if len(base) >= 4 && base != folded {
		if _, ok := common[base]; ok {
			return true
		}
	}
	return false
}
