// Package loginload measures whether sign-ins can starve the index (spec
// security-and-performance.md P7, issue 15 item 3): the Simple API's p99
// and throughput while N clients log in with real passwords, so that every
// attempt costs a real argon2id hash on the server.
//
// It talks HTTP to a running server only. The server must trust the
// loopback as a proxy (--trusted-proxies 127.0.0.1/32): each login attempt
// comes "from" an address of its own (X-Forwarded-For), so the per-IP
// login limit, which a refusal by a busy hasher counts against, never
// stops the load. Registration must be open (the default): Prepare creates
// the accounts through the registration form.
//
// cmd/loadlogins is the command around it; cmd/benchsuite can call Run (or
// StartLogins beside its own wrk run) directly.
package loginload

import (
	"context"
	"fmt"
	"net/http"
	"slices"
	"time"
)

// Options is one measurement.
type Options struct {
	Base     string        // the server, e.g. http://127.0.0.1:8080
	Project  string        // /simple/<Project>/ is what is read; it must exist
	Conns    int           // keep-alive connections reading the page (default 32)
	Levels   []int         // concurrent login clients per level (default 0, 8, 16, 32)
	Duration time.Duration // measured time per level (default 10s)
	Warmup   time.Duration // load before each level's measurement (default 2s; negative: none)
	Password string        // of the accounts Prepare made
	Accounts int           // accounts the logins rotate over (default 4 × the largest level)
}

func (o *Options) defaults() {
	if o.Conns <= 0 {
		o.Conns = 32
	}
	if len(o.Levels) == 0 {
		o.Levels = []int{0, 8, 16, 32}
	}
	if o.Duration <= 0 {
		o.Duration = 10 * time.Second
	}
	if o.Warmup < 0 {
		o.Warmup = 0
	} else if o.Warmup == 0 {
		o.Warmup = 2 * time.Second
	}
	if o.Password == "" {
		o.Password = DefaultPassword
	}
	if o.Accounts <= 0 {
		o.Accounts = 4 * max(1, slices.Max(o.Levels))
	}
}

// DefaultPassword is the accounts' password unless one is given: long and
// not in any common-password list, so registration accepts it.
const DefaultPassword = "loadlogin-quartz-meadow-7341"

// Level is what one level measured.
type Level struct {
	Logins int        // concurrent login clients
	Reads  ReadStats  // the Simple API page
	Login  LoginStats // the sign-ins
	Took   time.Duration
}

// Run measures every level in turn against a server whose accounts
// Prepare made. The first level's reads are the baseline of Ratios.
func Run(ctx context.Context, o Options) ([]Level, error) {
	o.defaults()
	page := o.Base + "/simple/" + o.Project + "/"
	if err := check(ctx, page); err != nil {
		return nil, err
	}
	var out []Level
	for _, n := range o.Levels {
		logins := StartLogins(ctx, o.Base, n, o.Accounts, o.Password)
		Reads(ctx, page, o.Conns, o.Warmup) // warm-up: the same load, not counted
		logins.Reset()
		start := time.Now()
		reads := Reads(ctx, page, o.Conns, o.Duration)
		lv := Level{Logins: n, Reads: reads, Login: logins.Stop(), Took: time.Since(start)}
		if err := ctx.Err(); err != nil {
			return out, err
		}
		out = append(out, lv)
	}
	return out, nil
}

// Ratios is a level's reads against the baseline's: throughput (want ≥
// 0.7) and p99 (want ≤ 2).
func Ratios(baseline, l Level) (throughput, p99 float64) {
	if baseline.Reads.RPS > 0 {
		throughput = l.Reads.RPS / baseline.Reads.RPS
	}
	if baseline.Reads.P99 > 0 {
		p99 = float64(l.Reads.P99) / float64(baseline.Reads.P99)
	}
	return throughput, p99
}

func check(ctx context.Context, url string) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return fmt.Errorf("the server does not answer %s: %w", url, err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("%s answers %d; give an existing project", url, resp.StatusCode)
	}
	return nil
}
