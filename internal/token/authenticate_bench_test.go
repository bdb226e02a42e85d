package token

import (
	"context"
	"testing"
	"time"

	"github.com/gatehouse-index/gatehouse/internal/account"
	"github.com/gatehouse-index/gatehouse/internal/db/dbtest"
	"github.com/gatehouse-index/gatehouse/internal/mail"
	"github.com/gatehouse-index/gatehouse/internal/testclock"
)

// BenchmarkAuthenticateReadToken is the check every read from a private
// index makes (go test -bench AuthenticateReadToken ./internal/token): the
// token's row on SQLite, its signature and its caveats. It is here to
// profile, not to hold a number; make bench measures the whole request.
func BenchmarkAuthenticateReadToken(b *testing.B) {
	d := dbtest.NewSQLite(b)
	clock := testclock.New(time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC))
	renderer, _ := mail.NewRenderer("Gatehouse", "http://localhost:8080")
	s, err := NewService(d, Options{Secret: testSecret, Location: "localhost:8080", HelpURL: testHelp, Now: clock.Now,
		Notifier: mail.NewNotifier(renderer, clock.Now), Links: account.Links{Tokens: "http://x/"}})
	if err != nil {
		b.Fatal(err)
	}
	var uid int64
	if err := d.QueryRow(`INSERT INTO users (username, username_key, created_at) VALUES ('alice', 'alice', $1) RETURNING id`, time.Now().UTC()).Scan(&uid); err != nil {
		b.Fatal(err)
	}
	raw, _, err := s.CreateReadOnly(context.Background(), uid, "r", nil, nil, Origin{CommandLine: true})
	if err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	if _, err := s.Authenticate(ctx, raw); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if _, err := s.Authenticate(ctx, raw); err != nil {
			b.Fatal(err)
		}
	}
}
