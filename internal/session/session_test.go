package session

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/gatehouse-index/gatehouse/internal/db"
	"github.com/gatehouse-index/gatehouse/internal/db/dbtest"
	"github.com/gatehouse-index/gatehouse/internal/testclock"
)

func TestLifecycle(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		ctx := context.Background()
		clock := testclock.New(time.Date(2026, 5, 1, 9, 0, 0, 0, time.UTC))
		m := NewManager(d, Options{IdleTimeout: time.Hour, AbsoluteTimeout: 3 * time.Hour, Now: clock.Now})
		var uid int64
		if err := d.QueryRow(`INSERT INTO users (username, username_key, created_at) VALUES ('a', 'a', $1) RETURNING id`, clock.Now()).Scan(&uid); err != nil {
			t.Fatal(err)
		}
		raw, err := m.New(ctx, nil, &Session{UserID: uid, Level: Password, IP: "10.0.0.1", UserAgent: "test"})
		if err != nil {
			t.Fatal(err)
		}
		if len(raw) < 43 {
			t.Fatalf("raw id %q: want 256 bits (43 base64 chars)", raw)
		}
		// Only the hash is stored.
		var stored string
		d.QueryRow(`SELECT id_hash FROM sessions`).Scan(&stored)
		if stored == raw || stored != Hash(raw) {
			t.Fatalf("stored id %q: want the SHA-256 of the cookie value, not the value", stored)
		}
		s, err := m.Load(ctx, raw)
		if err != nil || s.UserID != uid || s.Level != Password {
			t.Fatalf("Load: %+v, %v", s, err)
		}

		// Idle timeout: 59 minutes keeps it alive (and touches it), a further
		// hour without requests ends it.
		clock.Advance(59 * time.Minute)
		if _, err := m.Load(ctx, raw); err != nil {
			t.Fatalf("after 59m idle: %v", err)
		}
		clock.Advance(60 * time.Minute)
		if _, err := m.Load(ctx, raw); !errors.Is(err, ErrNoSession) {
			t.Fatalf("after 60m idle: got %v, want ErrNoSession", err)
		}

		// Absolute timeout, however active.
		raw, _ = m.New(ctx, nil, &Session{UserID: uid, Level: Password})
		for i := 0; i < 5; i++ {
			clock.Advance(50 * time.Minute)
			_, err = m.Load(ctx, raw)
		}
		if !errors.Is(err, ErrNoSession) {
			t.Fatalf("after 250m of activity with a 3h absolute timeout: got %v, want ErrNoSession", err)
		}

		// Rotate: the old id dies, the new one works.
		old, _ := m.New(ctx, nil, &Session{Level: Anonymous, Data: map[string]string{"flash": "x"}})
		oldS, _ := m.Load(ctx, old)
		fresh, err := m.Rotate(ctx, nil, oldS, &Session{UserID: uid, Level: TwoFactor})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := m.Load(ctx, old); !errors.Is(err, ErrNoSession) {
			t.Errorf("old id after Rotate: got %v, want ErrNoSession", err)
		}
		if s, err := m.Load(ctx, fresh); err != nil || s.Level != TwoFactor {
			t.Errorf("new id after Rotate: %+v, %v", s, err)
		}

		// Sudo window.
		s, _ = m.Load(ctx, fresh)
		if m.RecentlyAuthenticated(s) {
			t.Error("never re-authenticated, yet RecentlyAuthenticated")
		}
		m.MarkReauth(ctx, s)
		clock.Advance(29 * time.Minute)
		if !m.RecentlyAuthenticated(s) {
			t.Error("29 minutes after re-authentication: want recent")
		}
		clock.Advance(2 * time.Minute)
		if m.RecentlyAuthenticated(s) {
			t.Error("31 minutes after re-authentication: want not recent")
		}

		// Listing and ending: another user's session cannot be ended by id.
		var other int64
		d.QueryRow(`INSERT INTO users (username, username_key, created_at) VALUES ('b', 'b', $1) RETURNING id`, clock.Now()).Scan(&other)
		theirs, _ := m.New(ctx, nil, &Session{UserID: other, Level: Password})
		if err := m.EndUserSession(ctx, nil, uid, Hash(theirs)); err == nil {
			t.Error("user a ended user b's session")
		}
		mine2, _ := m.New(ctx, nil, &Session{UserID: uid, Level: Password})
		list, _ := m.ListForUser(ctx, uid)
		if len(list) != 2 {
			t.Fatalf("ListForUser: %d sessions, want 2", len(list))
		}
		if n, err := m.EndAllForUser(ctx, nil, uid, Hash(fresh)); err != nil || n != 1 {
			t.Errorf("EndAllForUser keeping one: ended %d, %v; want 1", n, err)
		}
		if _, err := m.Load(ctx, mine2); !errors.Is(err, ErrNoSession) {
			t.Error("ended session still loads")
		}
		if _, err := m.Load(ctx, theirs); err != nil {
			t.Errorf("another user's session was ended too: %v", err)
		}
		// Data round-trips.
		s, _ = m.Load(ctx, fresh)
		s.Data["k"] = "v"
		m.SaveData(ctx, s)
		if s2, _ := m.Load(ctx, fresh); s2.Data["k"] != "v" {
			t.Errorf("Data: got %v", s2.Data)
		}
		if _, err := m.Load(ctx, "not-a-session"); !errors.Is(err, ErrNoSession) {
			t.Errorf("unknown id: %v", err)
		}
	})
}
