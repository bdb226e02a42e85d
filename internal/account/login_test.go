package account

import (
	"database/sql"
	"encoding/base64"
	"fmt"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/argon2"
	"golang.org/x/crypto/bcrypt"
	"golang.org/x/text/unicode/norm"

	"github.com/gatehouse-index/gatehouse/internal/audit"
	"github.com/gatehouse-index/gatehouse/internal/db"
	"github.com/gatehouse-index/gatehouse/internal/db/dbtest"
	"github.com/gatehouse-index/gatehouse/internal/derrors"
)

func TestLoginMessages(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		f := newFixture(t, d)
		u := f.register("alice")
		c := client("192.0.2.1")

		_, err := f.s.CheckLogin(f.ctx, "alice@example.com", goodPassword, c)
		wantErr(t, err, derrors.Invalid, "Usernames are not the same as email addresses. Enter your username instead of your email address.")
		_, err = f.s.CheckLogin(f.ctx, "nobody", goodPassword, c)
		wantErr(t, err, derrors.Invalid, "The username or password is invalid. Try again.")

		_, err = f.s.CheckLogin(f.ctx, "alice", goodPassword+"x", c)
		wantErr(t, err, derrors.Invalid, "The username or password is invalid. Try again.")
		e := f.lastEvent(audit.LoginFailure)
		if e.UserID != u.ID || e.Additional["reason"] != "invalid_password" || e.IP != "192.0.2.1" {
			t.Errorf("failure event = %+v", e)
		}
		_, err = f.s.CheckLogin(f.ctx, "alice", "", c)
		wantErr(t, err, derrors.Invalid, "The username or password is invalid. Try again.")

		// Success returns the user and records nothing: CompleteLogin does.
		before := len(f.tags(u.ID))
		got, err := f.s.CheckLogin(f.ctx, "ALICE", goodPassword, c)
		must(t, err)
		if got.ID != u.ID {
			t.Errorf("CheckLogin = %+v", got)
		}
		if n := len(f.tags(u.ID)); n != before {
			t.Errorf("CheckLogin recorded %d events", n-before)
		}
		f.clock.Advance(time.Minute)
		must(t, f.s.CompleteLogin(f.ctx, nil, u.ID, "", c))
		e = f.lastEvent(audit.LoginSuccess)
		if e.UserID != u.ID || e.ActorID != u.ID || e.Additional["two_factor_method"] != "none" {
			t.Errorf("success event = %+v", e)
		}
		got, _ = f.s.ByID(f.ctx, u.ID)
		if !got.LastLogin.Equal(f.clock.Now().Truncate(time.Microsecond)) {
			t.Errorf("last login %v, want %v", got.LastLogin, f.clock.Now())
		}
		must(t, d.InTx(f.ctx, func(tx *sql.Tx) error { return f.s.CompleteLogin(f.ctx, tx, u.ID, "totp", c) }))
		if e := f.lastEvent(audit.LoginSuccess); e.Additional["two_factor_method"] != "totp" {
			t.Errorf("method = %v", e.Additional)
		}

		// An account without a password cannot log in with any.
		_, err = f.s.Create(f.ctx, NewUser{Username: "nopass"})
		must(t, err)
		_, err = f.s.CheckLogin(f.ctx, "nopass", "", c)
		wantErr(t, err, derrors.Invalid, "The username or password is invalid. Try again.")
		_, err = f.s.CheckLogin(f.ctx, "nopass", goodPassword, c)
		wantErr(t, err, derrors.Invalid, "The username or password is invalid. Try again.")

		// Disabled: refused, but only once the password is right.
		_, err = d.Exec(`UPDATE users SET disabled = TRUE WHERE id = $1`, u.ID)
		must(t, err)
		_, err = f.s.CheckLogin(f.ctx, "alice", "wrong-password", c)
		wantErr(t, err, derrors.Invalid, "The username or password is invalid. Try again.")
		_, err = f.s.CheckLogin(f.ctx, "alice", goodPassword, c)
		wantErr(t, err, derrors.Forbidden, "Your account has been disabled. Contact an administrator.")
	})
}

func TestLoginLimits(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		f := newFixture(t, d)
		f.register("alice")
		f.register("bob")
		const msg = "There have been too many unsuccessful login attempts. Try again later."

		// ip.login: 10 failures from one IP, against any accounts (unknown
		// names count too), block that IP even with the right password.
		attacker := client("203.0.113.9")
		for i := range 10 {
			name := []string{"alice", "nobody"}[i%2]
			_, err := f.s.CheckLogin(f.ctx, name, "guess-"+name, attacker)
			wantErr(t, err, derrors.Invalid, "")
		}
		_, err := f.s.CheckLogin(f.ctx, "bob", goodPassword, attacker)
		wantLimited(t, err, msg)
		if _, err := f.s.CheckLogin(f.ctx, "bob", goodPassword, client("192.0.2.50")); err != nil {
			t.Errorf("another IP: %v", err)
		}
		f.clock.Advance(5 * time.Minute)
		if _, err := f.s.CheckLogin(f.ctx, "bob", goodPassword, attacker); err != nil {
			t.Errorf("after the window: %v", err)
		}

		// user.login: 10 failures for one account from 10 IPs block that
		// account, whatever the IP, until the window passes.
		for i := range 10 {
			_, err := f.s.CheckLogin(f.ctx, "bob", "wrong", client("198.51.100."+string(rune('a'+i))))
			wantErr(t, err, derrors.Invalid, "The username or password is invalid.")
		}
		_, err = f.s.CheckLogin(f.ctx, "bob", goodPassword, client("192.0.2.77"))
		wantLimited(t, err, msg)
		err = f.s.CheckPassword(f.ctx, mustUser(t, f, "bob").ID, goodPassword, client("192.0.2.77"))
		wantLimited(t, err, msg)
		if _, err := f.s.CheckLogin(f.ctx, "alice", goodPassword, client("192.0.2.77")); err != nil {
			t.Errorf("another account: %v", err)
		}
		f.clock.Advance(5 * time.Minute)
		u, err := f.s.CheckLogin(f.ctx, "bob", goodPassword, client("192.0.2.77"))
		must(t, err)

		// A completed login clears the account's count.
		for i := range 9 {
			_, err := f.s.CheckLogin(f.ctx, "bob", "wrong", client("198.51.101."+string(rune('a'+i))))
			wantErr(t, err, derrors.Invalid, "")
		}
		must(t, f.s.CompleteLogin(f.ctx, nil, u.ID, "", client("192.0.2.77")))
		for i := range 9 {
			_, err := f.s.CheckLogin(f.ctx, "bob", "wrong", client("198.51.102."+string(rune('a'+i))))
			wantErr(t, err, derrors.Invalid, "")
		}
		if _, err := f.s.CheckLogin(f.ctx, "bob", goodPassword, client("192.0.2.77")); err != nil {
			t.Errorf("after a completed login the count restarts: %v", err)
		}
	})
}

// The per-user limit counts unknown names as it counts accounts, by the
// name the lookup uses, so once it trips a probe from a fresh address
// cannot tell which names exist (spec A6). Spellings the lookup treats as
// other names are other keys: nobody locks out an account by failing
// against a name that is not its own.
func TestLoginLimitUnknownNames(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		f := newFixture(t, d)
		alice := f.register("alice")
		f.register("bob")
		const msg = "There have been too many unsuccessful login attempts. Try again later."

		// Ten failures for each name, in other cases than the probes use,
		// each from its own address (the per-IP limit stays out of it).
		for i := range 10 {
			for _, name := range []string{"ALICE", "Nobody"} {
				_, err := f.s.CheckLogin(f.ctx, name, "guess", client(fmt.Sprintf("198.51.100.%s-%d", name, i)))
				wantErr(t, err, derrors.Invalid, "The username or password is invalid. Try again.")
			}
		}
		probe := func(name, password string) error {
			_, err := f.s.CheckLogin(f.ctx, name, password, client("192.0.2.200"))
			return err
		}
		real, unknown := probe("alice", goodPassword), probe("nobody", goodPassword)
		wantLimited(t, real, msg)
		wantLimited(t, unknown, msg)
		if real.Error() != unknown.Error() || fmt.Sprintf("%T", real) != fmt.Sprintf("%T", unknown) {
			t.Errorf("a real and an unknown name answer differently through the limit: %v / %v", real, unknown)
		}
		if ra, ru := retryAfter(real), retryAfter(unknown); ra != ru || ra != 5*time.Minute {
			t.Errorf("Retry-After %v for the real name, %v for the unknown one; want 5m for both", ra, ru)
		}
		// Re-authentication shares the account's count.
		wantLimited(t, f.s.CheckPassword(f.ctx, alice.ID, goodPassword, client("192.0.2.201")), msg)

		// Other spellings are other names, and other accounts are free.
		for _, name := range []string{"alice ", "alice2", "nobody2"} {
			_, err := f.s.CheckLogin(f.ctx, name, "guess", client("192.0.2.202"))
			wantErr(t, err, derrors.Invalid, "The username or password is invalid. Try again.")
		}
		if _, err := f.s.CheckLogin(f.ctx, "bob", goodPassword, client("192.0.2.203")); err != nil {
			t.Errorf("another account: %v", err)
		}

		// The stored keys are fixed-size hashes, never the typed text.
		rows, err := d.Query(`SELECT key FROM throttle_hits WHERE key LIKE 'user.login:%'`)
		must(t, err)
		defer rows.Close()
		keys := map[string]bool{}
		for rows.Next() {
			var k string
			must(t, rows.Scan(&k))
			keys[k] = true
			if lk := strings.ToLower(k); strings.Contains(lk, "alice") || strings.Contains(lk, "nobody") || len(k) != len("user.login:")+64 {
				t.Errorf("throttle key %q holds the typed name or is not a SHA-256", k)
			}
		}
		must(t, rows.Err())
		// alice, nobody, "alice ", alice2, nobody2.
		if len(keys) != 5 {
			t.Errorf("%d per-user keys, want 5: %v", len(keys), keys)
		}

		// Both windows pass alike.
		f.clock.Advance(5 * time.Minute)
		if err := probe("alice", goodPassword); err != nil {
			t.Errorf("real name after the window: %v", err)
		}
		wantErr(t, probe("nobody", goodPassword), derrors.Invalid, "The username or password is invalid. Try again.")
	})
}

func retryAfter(err error) time.Duration {
	wait, _ := derrors.RetryAfter(err)
	return wait
}

func mustUser(t *testing.T, f *fixture, name string) *User {
	t.Helper()
	u, err := f.s.ByUsername(f.ctx, name)
	must(t, err)
	return u
}

func TestReauth(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		f := newFixture(t, d)
		u := f.register("alice")
		c := client("192.0.2.1")
		must(t, f.s.CheckPassword(f.ctx, u.ID, goodPassword, c))
		err := f.s.CheckPassword(f.ctx, u.ID, "nope-nope", c)
		wantErr(t, err, derrors.Invalid, "The password is invalid. Try again.")
		if e := f.lastEvent(audit.ReauthFailure); e.UserID != u.ID || e.Additional["reason"] != "invalid_password" {
			t.Errorf("event = %+v", e)
		}
		if n := f.count(`SELECT COUNT(*) FROM events WHERE tag = $1`, audit.LoginFailure); n != 0 {
			t.Errorf("re-auth failure recorded as %d login failures", n)
		}
	})
}

func TestHashUpgrade(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		f := newFixture(t, d)
		pwDate := time.Date(2020, 1, 2, 3, 4, 5, 6000, time.UTC)
		insert := func(name, hash string) int64 {
			var id int64
			must(t, d.QueryRow(`INSERT INTO users (username, username_key, password_hash, password_date, created_at) VALUES ($1, $1, $2, $3, $3) RETURNING id`,
				name, hash, pwDate).Scan(&id))
			return id
		}
		storedHash := func(id int64) string {
			var h string
			must(t, d.QueryRow(`SELECT password_hash FROM users WHERE id = $1`, id).Scan(&h))
			return h
		}
		pw := "imported from warehouse"
		bc, err := bcrypt.GenerateFromPassword([]byte(pw), bcrypt.MinCost)
		must(t, err)
		for _, tc := range []struct{ name, hash string }{
			{"bcrypt2b", string(bc)},
			{"bcrypt2y", "$2y$" + string(bc)[4:]},
			{"weakargon", weakArgon(t, pw)},
		} {
			id := insert(tc.name, tc.hash)
			if _, err := f.s.CheckLogin(f.ctx, tc.name, pw+"!", client("1")); err == nil {
				t.Errorf("%s: wrong password accepted", tc.name)
			}
			if storedHash(id) != tc.hash {
				t.Errorf("%s: hash changed after a failed login", tc.name)
			}
			if _, err := f.s.CheckLogin(f.ctx, tc.name, pw, client("1")); err != nil {
				t.Fatalf("%s: %v", tc.name, err)
			}
			h := storedHash(id)
			if !strings.HasPrefix(h, "$argon2id$v=19$m=19456,t=2,p=1$") {
				t.Errorf("%s: hash after login %q, want current argon2id", tc.name, h)
			}
			u, err := f.s.ByID(f.ctx, id)
			must(t, err)
			if !u.PasswordDate.Equal(pwDate) {
				t.Errorf("%s: password date %v, want unchanged %v", tc.name, u.PasswordDate, pwDate)
			}
			if _, err := f.s.CheckLogin(f.ctx, tc.name, pw, client("1")); err != nil {
				t.Errorf("%s: login with upgraded hash: %v", tc.name, err)
			}
			if storedHash(id) != h {
				t.Errorf("%s: current hash rehashed again", tc.name)
			}
		}

		// bcrypt reads 72 bytes only: a longer password whose first 72
		// bytes match must not pass as the same password.
		long := strings.Repeat("a", 72)
		bl, err := bcrypt.GenerateFromPassword([]byte(long), bcrypt.MinCost)
		must(t, err)
		insert("bcryptlong", string(bl))
		_, err = f.s.CheckLogin(f.ctx, "bcryptlong", long+"tail", client("2"))
		wantErr(t, err, derrors.Invalid, "The username or password is invalid.")
		if _, err := f.s.CheckLogin(f.ctx, "bcryptlong", long, client("2")); err != nil {
			t.Errorf("exact 72-byte bcrypt password: %v", err)
		}

		// A format we cannot read fails as a wrong password, never a 500.
		insert("alien", "pbkdf2_sha256$1000$salt$hash")
		_, err = f.s.CheckLogin(f.ctx, "alien", pw, client("3"))
		wantErr(t, err, derrors.Invalid, "The username or password is invalid.")
	})
}

// weakArgon is an argon2id hash with lower parameters than the current ones
// (m=8 MiB, t=1), as an older Gatehouse or another tool might have written.
func weakArgon(t *testing.T, pw string) string {
	t.Helper()
	salt := []byte("0123456789abcdef")
	key := argon2.IDKey([]byte(pw), salt, 1, 8*1024, 1, 32)
	enc := base64.RawStdEncoding
	return fmt.Sprintf("$argon2id$v=19$m=8192,t=1,p=1$%s$%s", enc.EncodeToString(salt), enc.EncodeToString(key))
}

func TestNoTruncationAndNormalization(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		f := newFixture(t, d)
		long := strings.Repeat("abcdefghij", 10) // 100 characters
		_, err := f.s.Register(f.ctx, Registration{Username: "longpw", Email: "l@example.com", Password: long, Confirm: long}, client("1"))
		must(t, err)
		variant := []byte(long)
		variant[89] = 'X' // character 90
		_, err = f.s.CheckLogin(f.ctx, "longpw", string(variant), client("1"))
		wantErr(t, err, derrors.Invalid, "The username or password is invalid.")
		if _, err := f.s.CheckLogin(f.ctx, "longpw", long, client("1")); err != nil {
			t.Errorf("exact password: %v", err)
		}

		// The same text composed (NFC) or decomposed (NFD) is one password.
		nfc := norm.NFC.String("Crème brûlée für Ångström")
		nfd := norm.NFD.String(nfc)
		if nfc == nfd {
			t.Fatal("test strings are equal")
		}
		_, err = f.s.Register(f.ctx, Registration{Username: "unicode", Email: "u@example.com", Password: nfd, Confirm: nfd}, client("2"))
		must(t, err)
		for _, pw := range []string{nfc, nfd} {
			if _, err := f.s.CheckLogin(f.ctx, "unicode", pw, client("2")); err != nil {
				t.Errorf("login with %+q: %v", pw, err)
			}
		}
		// 4097 characters are refused at login without hashing.
		_, err = f.s.CheckLogin(f.ctx, "unicode", strings.Repeat("x", 4097), client("2"))
		wantErr(t, err, derrors.Invalid, "The username or password is invalid.")
	})
}
