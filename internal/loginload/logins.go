package loginload

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// LoginStats counts the sign-in attempts of a run by their answer.
type LoginStats struct {
	Attempts int64
	OK       int64         // 303: signed in (the password was hashed and matched)
	Busy     int64         // 429 "Too many sign-ins are in progress": the hasher was full
	Limited  int64         // 429 for a tripped login limit: no hash was done
	Other    int64         // anything else, or no answer
	P50, P99 time.Duration // latency of every answered attempt
}

// Logins is a running set of login clients.
type Logins struct {
	cancel context.CancelFunc
	wg     sync.WaitGroup
	mu     sync.Mutex
	stats  LoginStats
	lat    []time.Duration
}

// Username is the i-th account's name.
func Username(i int) string { return fmt.Sprintf("loadlogin%d", i) }

// addr is the made-up client address of the i-th attempt, from 10/8.
func addr(i int64) string {
	return fmt.Sprintf("10.%d.%d.%d", (i>>16)&255, (i>>8)&255, i&255)
}

// seq numbers attempts across every Logins of the process, so no two
// attempts share an address.
var seq atomic.Int64

// StartLogins starts n clients, each posting the login form one attempt
// after another (no pause, as a crowd at the door does), rotating over
// accounts accounts with the right password, until Stop. With n = 0 it
// does nothing.
func StartLogins(ctx context.Context, base string, n, accounts int, password string) *Logins {
	ctx, cancel := context.WithCancel(ctx)
	l := &Logins{cancel: cancel}
	client := &http.Client{
		Transport:     &http.Transport{MaxIdleConnsPerHost: max(1, n)},
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
	for c := range n {
		l.wg.Add(1)
		go func() {
			defer l.wg.Done()
			for i := c; ctx.Err() == nil; i += n {
				t := time.Now()
				code, _, body, err := post(ctx, client, base+"/account/login/", addr(seq.Add(1)), url.Values{
					"username": {Username(i % max(1, accounts))}, "password": {password}, "next": {"/manage/account/"}})
				if ctx.Err() != nil {
					return
				}
				l.record(code, body, err, time.Since(t))
			}
		}()
	}
	return l
}

func (l *Logins) record(code int, body []byte, err error, took time.Duration) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.stats.Attempts++
	switch {
	case err != nil:
		l.stats.Other++
		return
	case code == http.StatusSeeOther:
		l.stats.OK++
	case code == http.StatusTooManyRequests && bytes.Contains(body, []byte("sign-ins are in progress")):
		l.stats.Busy++
	case code == http.StatusTooManyRequests:
		l.stats.Limited++
	default:
		l.stats.Other++
	}
	l.lat = append(l.lat, took)
}

// Reset forgets what was counted so far (the warm-up).
func (l *Logins) Reset() {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.stats, l.lat = LoginStats{}, nil
}

// Stop ends the clients and returns what they saw since the last Reset.
func (l *Logins) Stop() LoginStats {
	l.cancel()
	l.wg.Wait()
	l.mu.Lock()
	defer l.mu.Unlock()
	slices.Sort(l.lat)
	s := l.stats
	s.P50, s.P99 = percentile(l.lat, 0.50), percentile(l.lat, 0.99)
	return s
}

// post sends a form as a browser at address from behind the trusted proxy.
func post(ctx context.Context, client *http.Client, u, from string, form url.Values) (int, http.Header, []byte, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, u, strings.NewReader(form.Encode()))
	if err != nil {
		return 0, nil, nil, err
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("X-Forwarded-For", from)
	resp, err := client.Do(req)
	if err != nil {
		return 0, nil, nil, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	return resp.StatusCode, resp.Header, body, err
}

// Prepare makes sure accounts loadlogin0 … loadlogin<n-1> exist with
// password, registering the missing ones through the registration form
// (a name already taken is taken to be one of ours from an earlier run).
// A busy hasher's 429 is waited out as its Retry-After says.
func Prepare(ctx context.Context, base string, n int, password string) error {
	client := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	for i := 0; i < n; i++ {
		name := Username(i)
		code, header, body, err := post(ctx, client, base+"/account/register/", addr(seq.Add(1)), url.Values{
			"username": {name}, "full_name": {"Load " + name}, "email": {name + "@example.com"},
			"password": {password}, "password_confirm": {password}})
		switch {
		case err != nil:
			return fmt.Errorf("register %s: %w", name, err)
		case code == http.StatusSeeOther, code == http.StatusConflict:
		case code == http.StatusTooManyRequests:
			wait := time.Second
			if s, err := strconv.Atoi(header.Get("Retry-After")); err == nil {
				wait = time.Duration(s) * time.Second
			}
			select {
			case <-time.After(wait):
			case <-ctx.Done():
				return ctx.Err()
			}
			i-- // again
		case code == http.StatusForbidden:
			return fmt.Errorf("register %s: registration is closed; start the server with --registration open", name)
		default:
			return fmt.Errorf("register %s: got %d: %.300s", name, code, body)
		}
	}
	return nil
}
