package token

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/gatehouse-index/gatehouse/internal/account"
	"github.com/gatehouse-index/gatehouse/internal/db"
	"github.com/gatehouse-index/gatehouse/internal/db/dbtest"
	"github.com/gatehouse-index/gatehouse/internal/derrors"
	"github.com/gatehouse-index/gatehouse/internal/mail"
	"github.com/gatehouse-index/gatehouse/internal/testclock"
)

// testSecret is the server secret of every test service.
var testSecret = bytes.Repeat([]byte("s3cr3t-"), 8)

const testHelp = "http://localhost:8080/help/"

// testOrigin is the browser the tests' changes come from.
var testOrigin = Origin{Client: account.Client{IP: "192.0.2.9", UserAgent: "test browser"}}

// fixture is a Service over a test database with a settable clock and a
// user, alice, who owns projects "a" and "b"; project "c" belongs to bob.
type fixture struct {
	s          *Service
	d          *db.DB
	clock      *testclock.Clock
	alice, bob int64
	a, b, c    int64 // project ids
}

func newFixture(t *testing.T, d *db.DB) *fixture {
	t.Helper()
	f := &fixture{d: d, clock: testclock.New(time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC))}
	renderer, err := mail.NewRenderer("Gatehouse", "http://localhost:8080")
	if err != nil {
		t.Fatal(err)
	}
	s, err := NewService(d, Options{
		Secret:   testSecret,
		Location: "localhost:8080",
		HelpURL:  testHelp,
		Now:      f.clock.Now,
		Notifier: mail.NewNotifier(renderer, f.clock.Now),
		Links:    account.Links{Tokens: "http://localhost:8080/manage/account/token/"},
	})
	if err != nil {
		t.Fatal(err)
	}
	f.s = s
	f.alice = addUser(t, d, "alice")
	f.bob = addUser(t, d, "bob")
	f.a = addProject(t, d, "a")
	f.b = addProject(t, d, "b")
	f.c = addProject(t, d, "c")
	addRole(t, d, f.a, f.alice, "Owner")
	addRole(t, d, f.b, f.alice, "Maintainer")
	addRole(t, d, f.c, f.bob, "Owner")
	return f
}

func addUser(t *testing.T, d *db.DB, name string) int64 {
	t.Helper()
	var id int64
	err := d.QueryRow(`INSERT INTO users (username, username_key, created_at) VALUES ($1, $2, $3) RETURNING id`,
		name, strings.ToLower(name), time.Now().UTC()).Scan(&id)
	if err != nil {
		t.Fatal(err)
	}
	return id
}

func addProject(t *testing.T, d *db.DB, name string) int64 {
	t.Helper()
	var id int64
	err := d.QueryRow(`INSERT INTO projects (name, normalized_name, ultranormalized_name, created_at) VALUES ($1, $2, $3, $4) RETURNING id`,
		name, name, name, time.Now().UTC()).Scan(&id)
	if err != nil {
		t.Fatal(err)
	}
	return id
}

func addRole(t *testing.T, d *db.DB, projectID, userID int64, role string) {
	t.Helper()
	if _, err := d.Exec(`INSERT INTO roles (project_id, user_id, role) VALUES ($1, $2, $3)`, projectID, userID, role); err != nil {
		t.Fatal(err)
	}
}

// create mints a token and fails the test on error.
func (f *fixture) create(t *testing.T, user int64, desc string, projects []string, exp *time.Time) (string, Token) {
	t.Helper()
	raw, tok, err := f.s.Create(context.Background(), user, desc, projects, exp, testOrigin)
	if err != nil {
		t.Fatalf("Create(%q, %v): %v", desc, projects, err)
	}
	return raw, tok
}

// wantKind fails unless err has the kind and, if msg is not empty, exactly
// that message.
func wantKind(t *testing.T, err, kind error, msg string) {
	t.Helper()
	if !errors.Is(err, kind) {
		t.Fatalf("got error %v, want kind %v", err, kind)
	}
	if msg != "" {
		if got, _ := derrors.Message(err); got != msg {
			t.Fatalf("got message %q, want %q", got, msg)
		}
	}
}

func TestNewServiceOptions(t *testing.T) {
	d := dbtest.NewSQLite(t)
	ok := Options{Secret: testSecret, Location: "h", HelpURL: testHelp}
	if _, err := NewService(d, ok); err != nil {
		t.Fatal(err)
	}
	for name, o := range map[string]Options{
		"short secret": {Secret: testSecret[:31], Location: "h", HelpURL: testHelp},
		"no location":  {Secret: testSecret, HelpURL: testHelp},
		"no help":      {Secret: testSecret, Location: "h"},
	} {
		if _, err := NewService(d, o); err == nil {
			t.Errorf("%s: NewService succeeded, want error", name)
		}
	}
}

func TestCreateListDelete(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		ctx := context.Background()
		f := newFixture(t, d)

		raw, tok := f.create(t, f.alice, "  laptop  ", nil, nil)
		if !strings.HasPrefix(raw, "pypi-") {
			t.Errorf("raw token %q lacks the pypi- prefix", raw)
		}
		if tok.Description != "laptop" || tok.Permissions != "user" || len(tok.Projects) != 0 || tok.ExpiresAt != nil {
			t.Errorf("user token = %+v", tok)
		}
		f.clock.Advance(time.Second)
		exp := f.clock.Now().Add(24*time.Hour + 500*time.Millisecond)
		_, tok2 := f.create(t, f.alice, "ci", []string{"B", "a", "b"}, &exp)
		if tok2.Permissions != "projects: b, a" {
			t.Errorf("Permissions = %q, want %q", tok2.Permissions, "projects: b, a")
		}
		if want := f.clock.Now().Add(24 * time.Hour); tok2.ExpiresAt == nil || !tok2.ExpiresAt.Equal(want) {
			t.Errorf("ExpiresAt = %v, want %v (whole seconds)", tok2.ExpiresAt, want)
		}
		f.create(t, f.bob, "laptop", nil, nil) // same name, other user: fine

		list, err := f.s.List(ctx, f.alice)
		if err != nil {
			t.Fatal(err)
		}
		if len(list) != 2 {
			t.Fatalf("List = %d tokens, want 2", len(list))
		}
		got := list[0] // newest first
		if got.ID != tok2.ID || got.UserID != f.alice || got.Description != "ci" ||
			fmt.Sprint(got.Projects) != "[b a]" || !got.CreatedAt.Equal(tok2.CreatedAt) ||
			got.ExpiresAt == nil || !got.ExpiresAt.Equal(*tok2.ExpiresAt) || got.LastUsedAt != nil {
			t.Errorf("List[0] = %+v, want %+v", got, tok2)
		}
		if list[1].ID != tok.ID || list[1].Permissions != "user" {
			t.Errorf("List[1] = %+v, want %+v", list[1], tok)
		}

		// Only own tokens can be deleted.
		wantKind(t, deleteErr(f.s.Delete(ctx, f.bob, tok.ID, testOrigin)), derrors.NotFound, "")
		wantKind(t, deleteErr(f.s.Delete(ctx, f.alice, "not-a-uuid\x00", testOrigin)), derrors.NotFound, "")
		if _, err := f.s.Delete(ctx, f.alice, tok.ID, testOrigin); err != nil {
			t.Fatal(err)
		}
		wantKind(t, deleteErr(f.s.Delete(ctx, f.alice, tok.ID, testOrigin)), derrors.NotFound, "")
		wantKind(t, mustAuthErr(f, raw), derrors.Unauthenticated, "")
		if list, _ := f.s.List(ctx, f.alice); len(list) != 1 {
			t.Errorf("after Delete: %d tokens, want 1", len(list))
		}
		// The name is free again.
		f.create(t, f.alice, "laptop", nil, nil)
	})
}

func mustAuthErr(f *fixture, raw string) error {
	_, err := f.s.Authenticate(context.Background(), raw)
	return err
}

func TestCreateRules(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		ctx := context.Background()
		f := newFixture(t, d)
		f.create(t, f.alice, "taken", nil, nil)
		past := f.clock.Now().Add(-time.Second)
		now := f.clock.Now()
		tests := []struct {
			name     string
			user     int64
			desc     string
			projects []string
			exp      *time.Time
			kind     error
			msg      string
			field    string
		}{
			{"empty", f.alice, "  ", nil, nil, derrors.Invalid, "Specify a token name.", FieldDescription},
			{"too long", f.alice, strings.Repeat("é", 101), nil, nil, derrors.Invalid, "The token name must be at most 100 characters long.", FieldDescription},
			{"control", f.alice, "a\x00b", nil, nil, derrors.Invalid, "The token name must not contain control characters.", FieldDescription},
			{"duplicate", f.alice, "taken", nil, nil, derrors.Conflict, "API token name already in use", FieldDescription},
			{"past expiry", f.alice, "x", nil, &past, derrors.Invalid, "The token's expiry must be in the future.", FieldExpires},
			{"expiry now", f.alice, "x", nil, &now, derrors.Invalid, "The token's expiry must be in the future.", FieldExpires},
			{"missing project", f.alice, "x", []string{"a", "nope"}, nil, derrors.NotFound, "Project 'nope' does not exist.", FieldScope},
			{"no role", f.alice, "x", []string{"c"}, nil, derrors.Forbidden, "You are not an owner or maintainer of project 'c'.", FieldScope},
			{"bad name", f.alice, "x", []string{"-a"}, nil, derrors.Invalid, `"-a" is not a valid project name.`, FieldScope},
			{"no user", 999, "x", nil, nil, derrors.NotFound, "", ""},
		}
		for _, tt := range tests {
			_, _, err := f.s.Create(ctx, tt.user, tt.desc, tt.projects, tt.exp, testOrigin)
			if err == nil {
				t.Errorf("%s: Create succeeded", tt.name)
				continue
			}
			if !errors.Is(err, tt.kind) {
				t.Errorf("%s: got %v, want kind %v", tt.name, err, tt.kind)
			} else if msg, _ := derrors.Message(err); tt.msg != "" && msg != tt.msg {
				t.Errorf("%s: got %q, want %q", tt.name, msg, tt.msg)
			}
			if got := derrors.FieldOf(err); got != tt.field {
				t.Errorf("%s: the error is about field %q, want %q", tt.name, got, tt.field)
			}
		}
		// 100 characters is fine; nothing was written by the failures.
		f.create(t, f.alice, strings.Repeat("é", 100), nil, nil)
		if list, _ := f.s.List(ctx, f.alice); len(list) != 2 {
			t.Errorf("%d tokens, want 2", len(list))
		}
		if n := f.count(t, `SELECT count(*) FROM events`); n != 2 {
			t.Errorf("%d events, want 2 (one per token made): a refusal recorded something", n)
		}
	})
}

// TestDatabaseHoldsNoSecrets checks the claim in the package comment: no
// column of api_tokens holds the root key, the raw token or its signature,
// in any common encoding.
func TestDatabaseHoldsNoSecrets(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		f := newFixture(t, d)
		exp := f.clock.Now().Add(time.Hour)
		var secrets [][]byte
		for i, projects := range [][]string{nil, {"a"}, {"a", "b"}} {
			raw, tok := f.create(t, f.alice, fmt.Sprint("t", i), projects, &exp)
			if _, err := f.s.Authenticate(context.Background(), raw); err != nil {
				t.Fatal(err) // also sets last_used_at
			}
			m, err := parse(raw)
			if err != nil {
				t.Fatal(err)
			}
			key := rootKey(testSecret, tok.ID)
			for _, b := range [][]byte{key, m.Signature(), testSecret} {
				secrets = append(secrets, b,
					[]byte(hex.EncodeToString(b)),
					[]byte(base64.StdEncoding.EncodeToString(b)),
					[]byte(base64.RawURLEncoding.EncodeToString(b)))
			}
			enc := strings.TrimPrefix(raw, "pypi-")
			secrets = append(secrets, []byte(raw), []byte(enc), []byte(enc[len(enc)-43:]))
		}

		rows, err := d.Query(`SELECT * FROM api_tokens`)
		if err != nil {
			t.Fatal(err)
		}
		defer rows.Close()
		cols, _ := rows.Columns()
		n := 0
		for rows.Next() {
			n++
			vals := make([]any, len(cols))
			ptrs := make([]any, len(cols))
			for i := range vals {
				ptrs[i] = &vals[i]
			}
			if err := rows.Scan(ptrs...); err != nil {
				t.Fatal(err)
			}
			for i, v := range vals {
				var cell []byte
				switch v := v.(type) {
				case []byte:
					cell = v
				case string:
					cell = []byte(v)
				default:
					cell = []byte(fmt.Sprint(v))
				}
				for _, s := range secrets {
					if bytes.Contains(cell, s) {
						t.Errorf("column %s holds secret material %q", cols[i], s)
					}
				}
			}
		}
		if err := rows.Err(); err != nil {
			t.Fatal(err)
		}
		if n != 3 {
			t.Fatalf("scanned %d rows, want 3", n)
		}
	})
}
