package loginload

import (
	"context"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"
)

// TestLoginsCountAnswers: each answer the server gives is counted under its
// kind, and every attempt comes from an address of its own.
func TestLoginsCountAnswers(t *testing.T) {
	var mu sync.Mutex
	seen := map[string]int{}
	addrs := map[string]bool{}
	all := make(chan struct{})
	var once sync.Once
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		name := r.PostFormValue("username")
		mu.Lock()
		if addrs[r.Header.Get("X-Forwarded-For")] {
			t.Errorf("address %s used twice", r.Header.Get("X-Forwarded-For"))
		}
		addrs[r.Header.Get("X-Forwarded-For")] = true
		seen[name]++
		// A client's second request comes after it counted the answer
		// to its first.
		if seen[Username(0)] >= 2 && seen[Username(1)] >= 2 && seen[Username(2)] >= 2 {
			once.Do(func() { close(all) })
		}
		mu.Unlock()
		switch name {
		case Username(0):
			http.Redirect(w, r, "/manage/account/", http.StatusSeeOther)
		case Username(1):
			http.Error(w, "Too many sign-ins are in progress; try again in 1 second.", http.StatusTooManyRequests)
		default:
			http.Error(w, "There have been too many unsuccessful login attempts. Try again later.", http.StatusTooManyRequests)
		}
	}))
	defer srv.Close()
	// Client c always logs in as account c: 3 clients over 3 accounts.
	l := StartLogins(context.Background(), srv.URL, 3, 3, "pw")
	<-all
	s := l.Stop()
	if s.OK < 1 || s.Busy < 1 || s.Limited < 1 || s.Other != 0 || s.OK+s.Busy+s.Limited != s.Attempts {
		t.Errorf("stats %+v: want signed-in, busy and limited answers counted apart, and nothing else", s)
	}
	if s.P99 < s.P50 || s.P50 <= 0 {
		t.Errorf("latencies p50 %v, p99 %v", s.P50, s.P99)
	}
}

func TestPercentile(t *testing.T) {
	var d []time.Duration
	for i := 1; i <= 100; i++ {
		d = append(d, time.Duration(i)*time.Millisecond)
	}
	if p := percentile(d, 0.99); p != 99*time.Millisecond {
		t.Errorf("p99 of 1..100 ms = %v, want 99ms", p)
	}
	if p := percentile(d, 0.50); p != 50*time.Millisecond {
		t.Errorf("p50 = %v, want 50ms", p)
	}
	if p := percentile(nil, 0.99); p != 0 {
		t.Errorf("p99 of nothing = %v", p)
	}
	tput, p99 := Ratios(Level{Reads: ReadStats{RPS: 1000, P99: 4 * time.Millisecond}}, Level{Reads: ReadStats{RPS: 700, P99: 8 * time.Millisecond}})
	if tput != 0.7 || p99 != 2 {
		t.Errorf("Ratios = %v, %v; want 0.7, 2", tput, p99)
	}
}
