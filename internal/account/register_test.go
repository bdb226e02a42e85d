package account

import (
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/gatehouse-index/gatehouse/internal/audit"
	"github.com/gatehouse-index/gatehouse/internal/db"
	"github.com/gatehouse-index/gatehouse/internal/db/dbtest"
	"github.com/gatehouse-index/gatehouse/internal/derrors"
)

func TestRegister(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		f := newFixture(t, d)
		start := f.clock.Now()
		u := f.register("Alice")
		if u.Username != "Alice" || u.PrimaryEmail != "Alice@example.com" || u.PrimaryVerified || !u.HasPassword || u.IsAdmin {
			t.Errorf("user = %+v", u)
		}
		if !u.PasswordDate.Equal(start.Truncate(time.Microsecond)) {
			t.Errorf("password date %v, want %v", u.PasswordDate, start)
		}
		if !u.LastLogin.IsZero() {
			t.Errorf("last login %v, want none: Register does not record a login", u.LastLogin)
		}
		m := f.lastMail("Alice@example.com", "verify-email")
		if m.UserID != u.ID || m.Data["Username"] != "Alice" || m.Data["Email"] != "Alice@example.com" || m.Data["ExpiresIn"] != "6 hours" ||
			!strings.HasPrefix(m.Data["Link"], testBaseURL+"/account/verify-email/?token=") || len(m.Data) != 4 {
			t.Errorf("verify-email = %+v", m)
		}
		e := f.lastEvent(audit.AccountCreate)
		if e.UserID != u.ID || e.ActorID != u.ID || e.Actor != "Alice" || e.Additional["email"] != "Alice@example.com" || e.IP != "10.0.0.Alice" || e.UserAgent != "test-agent/1.0" {
			t.Errorf("event = %+v", e)
		}
		// Usernames and addresses are unique ignoring case.
		_, err := f.s.Register(f.ctx, Registration{Username: "aLICE", Email: "other@example.com", Password: goodPassword, Confirm: goodPassword}, client("1"))
		wantErr(t, err, derrors.Conflict, "This username is already being used by another account. Choose a different username.")
		_, err = f.s.Register(f.ctx, Registration{Username: "bob", Email: "ALICE@EXAMPLE.COM", Password: goodPassword, Confirm: goodPassword}, client("1"))
		wantErr(t, err, derrors.Conflict, "This email address is already being used by another account. Use a different email.")
		// The account works for login at once.
		if _, err := f.s.CheckLogin(f.ctx, "alice", goodPassword, client("1")); err != nil {
			t.Errorf("login after registration: %v", err)
		}
	})
}

func TestRegisterRules(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		f := newFixture(t, d)
		ok := Registration{Username: "carol", FullName: "Carol", Email: "carol@example.com", Password: goodPassword, Confirm: goodPassword}
		for _, tc := range []struct {
			name string
			edit func(r *Registration)
			want string
		}{
			{"no username", func(r *Registration) { r.Username = "" }, "Enter a username."},
			{"bad username", func(r *Registration) { r.Username = "-carol" }, "The username is invalid."},
			{"username with space", func(r *Registration) { r.Username = "ca rol" }, "The username is invalid."},
			{"long username", func(r *Registration) { r.Username = strings.Repeat("c", 51) }, "Choose a username with 50 characters or less."},
			{"long name", func(r *Registration) { r.FullName = strings.Repeat("é", 101) }, "Choose a name with 100 characters or less."},
			{"url in name", func(r *Registration) { r.FullName = "visit https://spam.example" }, "URLs are not allowed in the name field."},
			{"no email", func(r *Registration) { r.Email = "" }, "Enter an email address."},
			{"bad email", func(r *Registration) { r.Email = "carol.example.com" }, "The email address isn't valid. Try again."},
			{"display name", func(r *Registration) { r.Email = "Carol <carol@example.com>" }, "The email address isn't valid. Try again."},
			{"dotless domain", func(r *Registration) { r.Email = "carol@localhost" }, "The email address isn't valid. Try again."},
			{"long email", func(r *Registration) { r.Email = strings.Repeat("c", 250) + "@example.com" }, "The email address is too long."},
			{"short password", func(r *Registration) { r.Password, r.Confirm = "abc1234", "abc1234" }, "Password too short: use at least 8 characters."},
			{"long password", func(r *Registration) { r.Password = strings.Repeat("x", 4097); r.Confirm = r.Password }, "Password too long: use at most 4096 characters."},
			{"mismatch", func(r *Registration) { r.Confirm = goodPassword + "!" }, "Your passwords don't match. Try again."},
			{"common", func(r *Registration) { r.Password, r.Confirm = "baseball", "baseball" }, msgCommonPassword},
			{"common any case", func(r *Registration) { r.Password, r.Confirm = "SunShine", "SunShine" }, msgCommonPassword},
			{"username as password", func(r *Registration) {
				r.Username = "carol-the-great"
				r.Password, r.Confirm = "Carol-The-Great", "Carol-The-Great"
			}, msgPersonalPassword},
			{"email as password", func(r *Registration) { r.Password, r.Confirm = "carol@example.com", "carol@example.com" }, msgPersonalPassword},
		} {
			t.Run(tc.name, func(t *testing.T) {
				r := ok
				tc.edit(&r)
				_, err := f.s.Register(f.ctx, r, client("9.9.9.9"))
				wantErr(t, err, derrors.Invalid, tc.want)
			})
		}
		if n := f.count(`SELECT COUNT(*) FROM users`); n != 0 {
			t.Errorf("%d users after refused registrations", n)
		}
		// Refusals are not counted: the same IP can still register.
		if _, err := f.s.Register(f.ctx, ok, client("9.9.9.9")); err != nil {
			t.Errorf("valid registration: %v", err)
		}
	})
}

func TestRegisterPasswordLength(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		f := newFixture(t, d)
		for i, pw := range []string{"zq7vlmx2", strings.Repeat("lantern ", 512)} { // 8 and 4096 characters
			name := []string{"eight", "maxlen"}[i]
			if _, err := f.s.Register(f.ctx, Registration{Username: name, Email: name + "@example.com", Password: pw, Confirm: pw}, client(name)); err != nil {
				t.Fatalf("%d-character password: %v", len([]rune(pw)), err)
			}
			if _, err := f.s.CheckLogin(f.ctx, name, pw, client(name)); err != nil {
				t.Errorf("login with %d-character password: %v", len([]rune(pw)), err)
			}
		}
		// Characters, not bytes: 8 two-byte characters are enough.
		pw := "ééééçççç"
		if _, err := f.s.Register(f.ctx, Registration{Username: "accents", Email: "accents@example.com", Password: pw, Confirm: pw}, client("acc")); err != nil {
			t.Errorf("8 non-ASCII characters: %v", err)
		}
	})
}

func TestRegistrationClosed(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		f := newFixture(t, d, func(o *Options) { o.DefaultRegistrationOpen = false })
		r := Registration{Username: "dave", Email: "dave@example.com", Password: goodPassword, Confirm: goodPassword}
		_, err := f.s.Register(f.ctx, r, client("1"))
		wantErr(t, err, derrors.Forbidden, "Registration is closed. Ask an administrator for an account.")
		admin, err := f.s.Create(f.ctx, NewUser{Username: "root", Password: goodPassword, IsAdmin: true})
		must(t, err)
		must(t, f.s.SetRegistrationOpen(f.ctx, admin.ID, true, client("1")))
		if _, err := f.s.Register(f.ctx, r, client("1")); err != nil {
			t.Errorf("after opening: %v", err)
		}
	})
}

func TestRegisterLimits(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		f := newFixture(t, d)
		reg := func(name, ip string) (*User, error) {
			return f.s.Register(f.ctx, Registration{Username: name, Email: name + "@example.com", Password: goodPassword, Confirm: goodPassword}, client(ip))
		}
		// email.add: 2 unverified addresses per IP per day, registration included.
		for _, n := range []string{"u1", "u2"} {
			_, err := reg(n, "203.0.113.5")
			must(t, err)
		}
		_, err := reg("u3", "203.0.113.5")
		wantLimited(t, err, "Too many emails have been added to this account without verifying them. Check your inbox and follow the verification links. (IP: 203.0.113.5)")
		f.clock.Advance(24 * time.Hour)
		_, err = reg("u3", "203.0.113.5")
		must(t, err)

		// register: 10 accounts per IP per hour, even when each address is
		// verified (which clears email.add).
		ip := "198.51.100.7"
		for i := range 10 {
			name := "v" + string(rune('a'+i))
			u, err := reg(name, ip)
			must(t, err)
			_, err = f.s.VerifyEmail(f.ctx, u.ID, f.token(name+"@example.com", "verify-email"), client(ip))
			must(t, err)
		}
		_, err = reg("vz", ip)
		wantLimited(t, err, "Too many accounts have been created from your network.")
		f.clock.Advance(time.Hour)
		_, err = reg("vz", ip)
		must(t, err)
	})
}

// A failure anywhere in the transaction (here: queueing the email) leaves
// nothing behind: no user, no event, no hits.
func TestRegisterAtomic(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		f := newFixture(t, d)
		f.notify.fail = errors.New("outbox full")
		_, err := f.s.Register(f.ctx, Registration{Username: "erin", Email: "erin@example.com", Password: goodPassword, Confirm: goodPassword}, client("1"))
		if err == nil {
			t.Fatal("registration succeeded with a failing notifier")
		}
		for _, table := range []string{"users", "user_emails", "one_time_tokens", "events", "throttle_hits"} {
			if n := f.count(`SELECT COUNT(*) FROM ` + table); n != 0 {
				t.Errorf("%s has %d rows after a failed registration", table, n)
			}
		}
	})
}

func TestCreate(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		f := newFixture(t, d)
		u, err := f.s.Create(f.ctx, NewUser{Username: "Frank", Email: "frank@example.com", FullName: "Frank", IsAdmin: true})
		must(t, err)
		if !u.IsAdmin || u.HasPassword || !u.PasswordDate.IsZero() || u.PrimaryEmail != "frank@example.com" {
			t.Errorf("created %+v", u)
		}
		_, err = f.s.Create(f.ctx, NewUser{Username: "FRANK"})
		wantErr(t, err, derrors.Conflict, "already taken")
		_, err = f.s.Create(f.ctx, NewUser{Username: "-bad-"})
		wantErr(t, err, derrors.Invalid, "invalid")
		if len(f.mails()) != 0 {
			t.Errorf("Create sent %+v", f.mails())
		}
		got, err := f.s.ByUsername(f.ctx, "frank")
		must(t, err)
		if got.ID != u.ID {
			t.Errorf("ByUsername = %+v", got)
		}
		_, err = f.s.ByUsername(f.ctx, "nobody")
		wantErr(t, err, derrors.NotFound, "nobody")
		list, err := f.s.List(f.ctx)
		must(t, err)
		if len(list) != 1 || list[0].Username != "Frank" {
			t.Errorf("List = %+v", list)
		}
	})
}

// TestOnePasswordPolicy (issue 12 §5.3): Create (gatehouse user create)
// and Register (the web form) refuse the same passwords with the same
// message, so no caller can choose "password" or "12345678".
func TestOnePasswordPolicy(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		f := newFixture(t, d)
		for i, tc := range []struct{ pw, want string }{
			{"password", msgCommonPassword},
			{"12345678", msgCommonPassword},
			{"qwerty!!", msgCommonPassword},
			{"short", "Password too short: use at least 8 characters."},
			{"Gwen-the-Great", msgPersonalPassword},
			{"gwen@example.com", msgPersonalPassword},
			{"pass\x00word-long", "Null bytes are not allowed."},
		} {
			_, err := f.s.Create(f.ctx, NewUser{Username: "gwen-the-great", Email: "gwen@example.com", Password: tc.pw})
			wantErr(t, err, derrors.Invalid, tc.want)
			_, err = f.s.Register(f.ctx, Registration{Username: "gwen-the-great", Email: "gwen@example.com", Password: tc.pw, Confirm: tc.pw}, client(fmt.Sprint("10.1.1.", i)))
			wantErr(t, err, derrors.Invalid, tc.want)
		}
		if n := f.count(`SELECT COUNT(*) FROM users`); n != 0 {
			t.Errorf("%d users after refused passwords", n)
		}
		u, err := f.s.Create(f.ctx, NewUser{Username: "gwen-the-great", Email: "gwen@example.com", Password: goodPassword})
		must(t, err)
		if _, err := f.s.CheckLogin(f.ctx, "gwen-the-great", goodPassword, client("10.1.2.1")); err != nil || !u.HasPassword {
			t.Errorf("login with the password Create accepted: %v", err)
		}
	})
}

func TestSearch(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		f := newFixture(t, d)
		for _, n := range []struct{ name, email string }{{"Alpha", "a@corp.example"}, {"beta_1", "Beta@Home.example"}, {"gamma", "g%x@corp.example"}} {
			_, err := f.s.Create(f.ctx, NewUser{Username: n.name, Email: n.email})
			must(t, err)
		}
		for _, tc := range []struct {
			q    string
			want string
		}{
			{"ALP", "Alpha"},
			{"corp", "Alpha gamma"},
			{"home.EX", "beta_1"},
			{"_", "beta_1"}, // literal, not "any character"
			{"%", "gamma"},  // literal, not "anything"
			{"", "Alpha beta_1 gamma"},
			{"zzz", ""},
		} {
			us, err := f.s.Search(f.ctx, tc.q, 10)
			must(t, err)
			var names []string
			for _, u := range us {
				names = append(names, u.Username)
			}
			if got := strings.Join(names, " "); got != tc.want {
				t.Errorf("Search(%q) = %q, want %q", tc.q, got, tc.want)
			}
		}
	})
}

func TestCommonPasswordVariants(t *testing.T) {
	common := map[string]struct{}{"password": {}, "qwerty": {}}
	for pw, want := range map[string]bool{
		"password": true, "password1234": true, "qwerty!!": true, "password2024!": true,
		"passwordx": false, "1234password": false, "zq7vlmx2": false,
	} {
		if got := isCommon(pw, common); got != want {
			t.Errorf("isCommon(%q) = %v, want %v", pw, got, want)
		}
	}
}
