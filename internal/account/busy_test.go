package account

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/gatehouse-index/gatehouse/internal/audit"
	"github.com/gatehouse-index/gatehouse/internal/db"
	"github.com/gatehouse-index/gatehouse/internal/db/dbtest"
	"github.com/gatehouse-index/gatehouse/internal/derrors"
	"github.com/gatehouse-index/gatehouse/internal/workpool"
)

// busyPool is a one-worker hash pool whose wait the test controls: it sees
// when a caller starts waiting (waiting) and ends the wait itself (fire).
// hold fills the worker with a job that blocks until free is called.
type busyPool struct {
	*workpool.Pool
	waiting chan time.Duration
	fire    chan time.Time
	release chan struct{}
	held    chan error
}

func newBusyPool(wait time.Duration) *busyPool {
	bp := &busyPool{waiting: make(chan time.Duration, 16), fire: make(chan time.Time)}
	bp.Pool = workpool.New(workpool.Options{CPUs: 1, Wait: wait, After: func(d time.Duration) <-chan time.Time {
		bp.waiting <- d
		return bp.fire
	}})
	return bp
}

func (bp *busyPool) hold() {
	started := make(chan struct{})
	bp.release, bp.held = make(chan struct{}), make(chan error, 1)
	go func() {
		bp.held <- bp.Do(context.Background(), func() { close(started); <-bp.release })
	}()
	<-started
}

func (bp *busyPool) free(t *testing.T) {
	t.Helper()
	close(bp.release)
	must(t, <-bp.held)
}

// refused runs call while the pool is held, waits until it is waiting for
// a worker, lets the wait run out, and returns what call returned.
func (bp *busyPool) refused(t *testing.T, call func() error) error {
	t.Helper()
	errc := make(chan error, 1)
	go func() { errc <- call() }()
	select {
	case <-bp.waiting:
		bp.fire <- time.Time{}
	case err := <-errc:
		t.Fatalf("returned without waiting for the hasher: %v", err)
	}
	return <-errc
}

func withPool(p *workpool.Pool) func(*Options) {
	return func(o *Options) { o.Hasher = NewHasher(p) }
}

const msgBusy3s = "Too many sign-ins are in progress; try again in 3 seconds."

// TestHasherBusyLogin: with every hash worker taken for the whole wait, a
// login is answered 429 with Retry-After, the same for a real account, an
// unknown name, an account without a password and a disabled one; each
// refusal counts against the address and the name (not site-wide), and a
// real account's security history shows it. Once the worker is free,
// logins work again.
func TestHasherBusyLogin(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		bp := newBusyPool(2500 * time.Millisecond) // Retry-After rounds it up to 3 s
		f := newFixture(t, d, withPool(bp.Pool))
		alice := f.register("alice")
		_, err := f.s.Create(f.ctx, NewUser{Username: "nopass"})
		must(t, err)
		f.register("dora")
		_, err = d.Exec(`UPDATE users SET disabled = TRUE WHERE username = 'dora'`)
		must(t, err)

		bp.hold()
		hits := func(key string) int {
			return f.count(`SELECT COUNT(*) FROM throttle_hits WHERE key = $1`, key)
		}
		answers := map[string]error{}
		for i, name := range []string{"alice", "nobody", "nopass", "dora"} {
			ip := fmt.Sprintf("192.0.2.%d", 10+i)
			err := bp.refused(t, func() error {
				_, err := f.s.CheckLogin(f.ctx, name, goodPassword, client(ip))
				return err
			})
			wantLimited(t, err, msgBusy3s)
			if ra := retryAfter(err); ra != 3*time.Second {
				t.Errorf("%s: Retry-After %v, want 3s", name, ra)
			}
			answers[name] = err
			if n := hits("ip.login:" + ip); n != 1 {
				t.Errorf("%s: %d hits on the address's login limit, want 1", name, n)
			}
			if n := hits("user.login:" + loginKey(name)); n != 1 {
				t.Errorf("%s: %d hits on the name's login limit, want 1", name, n)
			}
		}
		for name, err := range answers {
			if err.Error() != answers["alice"].Error() || fmt.Sprintf("%T", err) != fmt.Sprintf("%T", answers["alice"]) ||
				retryAfter(err) != retryAfter(answers["alice"]) {
				t.Errorf("%s answers %T %q, alice %T %q", name, err, err, answers["alice"], answers["alice"])
			}
		}
		if n := hits("global.login:all"); n != 0 {
			t.Errorf("%d hits on the site-wide login limit, want none: no password was hashed", n)
		}
		if n := f.count(`SELECT COUNT(*) FROM events WHERE tag = $1 AND user_id = $2 AND additional LIKE '%"reason":"busy"%'`, audit.LoginFailure, alice.ID); n != 1 {
			t.Errorf("%d busy login failures recorded for alice, want 1", n)
		}

		// Re-authentication meets the same hasher, and is counted alike.
		err = bp.refused(t, func() error { return f.s.CheckPassword(f.ctx, alice.ID, goodPassword, client("192.0.2.30")) })
		wantLimited(t, err, msgBusy3s)
		if e := f.lastEvent(audit.ReauthFailure); e.UserID != alice.ID || e.Additional["reason"] != "busy" {
			t.Errorf("re-auth failure event %+v, want alice's, reason busy", e)
		}
		if n := hits("user.login:" + loginKey("alice")); n != 2 {
			t.Errorf("%d hits on alice's login limit, want 2", n)
		}

		// A password no account can have is refused without waiting for
		// the hasher, for every name alike.
		for _, name := range []string{"alice", "nobody"} {
			for _, pw := range []string{"", strings.Repeat("x", 4*4*MaxPasswordLen+1)} {
				_, err := f.s.CheckLogin(f.ctx, name, pw, client("192.0.2.40"))
				wantErr(t, err, derrors.Invalid, msgInvalidLogin)
			}
		}
		if n := len(bp.waiting); n != 0 {
			t.Errorf("%d logins with impossible passwords waited for the hasher", n)
		}

		bp.free(t)
		if _, err := f.s.CheckLogin(f.ctx, "alice", goodPassword, client("192.0.2.50")); err != nil {
			t.Errorf("with the worker free again: %v", err)
		}
		if st := bp.Stats(); st.Busy != 5 {
			t.Errorf("pool refused %d calls, want the 5 above", st.Busy)
		}
	})
}

// TestHasherBusySetPassword: registration, reset and the CLI's user create
// answer a busy hasher with the 429 too, and change nothing: no account,
// the reset link still usable, nothing counted.
func TestHasherBusySetPassword(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		const want = "Too many passwords are being checked right now; try again in 1 second."
		bp := newBusyPool(time.Second)
		f := newFixture(t, d, withPool(bp.Pool))
		f.registerVerified("alice")
		must(t, f.s.RequestPasswordReset(f.ctx, "alice", client("192.0.2.1")))
		tok := f.token("alice@example.com", "password-reset")
		users := f.count(`SELECT COUNT(*) FROM users`)
		limits := f.count(`SELECT COUNT(*) FROM throttle_hits`)

		bp.hold()
		err := bp.refused(t, func() error {
			_, err := f.s.Register(f.ctx, Registration{Username: "bob", FullName: "Bob", Email: "bob@example.com",
				Password: goodPassword, Confirm: goodPassword}, client("192.0.2.2"))
			return err
		})
		wantLimited(t, err, want)
		err = bp.refused(t, func() error {
			_, err := f.s.ResetPassword(f.ctx, tok, newPassword, newPassword, client("192.0.2.3"))
			return err
		})
		wantLimited(t, err, want)
		err = bp.refused(t, func() error {
			_, err := f.s.Create(f.ctx, NewUser{Username: "carol", Password: goodPassword})
			return err
		})
		wantLimited(t, err, want)
		if n := f.count(`SELECT COUNT(*) FROM users`); n != users {
			t.Errorf("%d users after the refusals, want %d", n, users)
		}
		if n := f.count(`SELECT COUNT(*) FROM throttle_hits`); n != limits {
			t.Errorf("%d limit hits after the refusals, want %d: setting a password tries none", n, limits)
		}

		bp.free(t)
		_, err = f.s.ResetPassword(f.ctx, tok, newPassword, newPassword, client("192.0.2.3"))
		must(t, err)
		_, err = f.s.CheckLogin(f.ctx, "alice", newPassword, client("192.0.2.4"))
		must(t, err)
	})
}

// TestEveryNameCostsOneHash is spec A6's timing check by count: a login
// hashes exactly once whether the account exists, has a password, or the
// password is right; and not at all for a password no account can have.
// (Counting replaces timing: the work is the same when the count is.)
func TestEveryNameCostsOneHash(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		pool := workpool.New(workpool.Options{CPUs: 1})
		f := newFixture(t, d, withPool(pool))
		f.register("alice")
		_, err := f.s.Create(f.ctx, NewUser{Username: "nopass"})
		must(t, err)
		for _, c := range []struct {
			name, pw string
			hashes   uint64
		}{
			{"alice", goodPassword, 1},
			{"alice", "wrong-password", 1},
			{"nobody", "wrong-password", 1},
			{"nopass", "wrong-password", 1},
			{"alice", "", 0},
			{"nobody", "", 0},
			{"nopass", "", 0},
		} {
			before := pool.Stats().Ran
			f.s.CheckLogin(f.ctx, c.name, c.pw, client("192.0.2."+c.name))
			if got := pool.Stats().Ran - before; got != c.hashes {
				t.Errorf("login %s with %q: %d hashes, want %d", c.name, c.pw, got, c.hashes)
			}
		}
	})
}

// TestDummyHashMatchesNothing: the dummy hash has the current parameters
// (so it costs what a real verification costs) and no password matches it.
func TestDummyHashMatchesNothing(t *testing.T) {
	h := NewHasher(workpool.New(workpool.Options{CPUs: 1}))
	d1, d2 := dummyHash(), dummyHash()
	if d1 == d2 || needsRehash(d1) {
		t.Fatalf("dummy hashes %q and %q: want distinct, with the current parameters", d1, d2)
	}
	for _, pw := range []string{"", "password", goodPassword} {
		if ok, err := h.Verify(context.Background(), pw, d1); ok || err != nil {
			t.Errorf("Verify(%q, dummy) = %v, %v; want false, nil", pw, ok, err)
		}
	}
}
