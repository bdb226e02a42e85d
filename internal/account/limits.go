package account

import (
	"time"

	"github.com/gatehouse-index/gatehouse/internal/db"
	"github.com/gatehouse-index/gatehouse/internal/throttle"
)

// limiters are the account rate limits, with Warehouse's defaults (spec
// §1.6) plus one on registrations per IP. Limits are checked before the work
// they guard (outside the transaction: a check reads through the pool, which
// on SQLite is the connection the transaction holds) and hit inside the
// transaction of the change they count.
type limiters struct {
	register      *throttle.Limiter // accounts created, per IP
	ipLogin       *throttle.Limiter // failed passwords, per IP
	globalLogin   *throttle.Limiter // failed passwords, site-wide: protects the hasher
	userLogin     *throttle.Limiter // failed passwords, per username (loginKey), unknown names too
	emailAdd      *throttle.Limiter // addresses added (registration too), per IP; cleared on verify
	emailVerify   *throttle.Limiter // verification emails sent, per user id; cleared on verify
	emailChange   *throttle.Limiter // unverified-primary replacements, per user id
	passwordReset *throttle.Limiter // reset emails, per user id; cleared on reset
	resetIP       *throttle.Limiter // reset requests, per IP, whether or not an account matched
}

// globalKey is the single key of site-wide limits.
const globalKey = "all"

func newLimiters(d *db.DB, now func() time.Time) limiters {
	return limiters{
		register:      throttle.New(d, "register", now, throttle.Limit{N: 10, Per: time.Hour}),
		ipLogin:       throttle.New(d, "ip.login", now, throttle.Limit{N: 10, Per: 5 * time.Minute}),
		globalLogin:   throttle.New(d, "global.login", now, throttle.Limit{N: 1000, Per: 5 * time.Minute}),
		userLogin:     throttle.New(d, "user.login", now, throttle.Limit{N: 10, Per: 5 * time.Minute}),
		emailAdd:      throttle.New(d, "email.add", now, throttle.Limit{N: 2, Per: 24 * time.Hour}),
		emailVerify:   throttle.New(d, "email.verify", now, throttle.Limit{N: 3, Per: 6 * time.Hour}),
		emailChange:   throttle.New(d, "email.change", now, throttle.Limit{N: 5, Per: 5 * time.Minute}, throttle.Limit{N: 20, Per: time.Hour}),
		passwordReset: throttle.New(d, "password.reset", now, throttle.Limit{N: 5, Per: 24 * time.Hour}),
		resetIP:       throttle.New(d, "password.reset.ip", now, throttle.Limit{N: 20, Per: time.Hour}),
	}
}
