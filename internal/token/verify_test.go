package token

import (
	"bytes"
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/gatehouse-index/gatehouse/internal/db"
	"github.com/gatehouse-index/gatehouse/internal/db/dbtest"
	"github.com/gatehouse-index/gatehouse/internal/derrors"
)

const (
	invalidAuthMsg = "Invalid or non-existent authentication information. See http://localhost:8080/help/#invalid-auth for more information."
	notForB        = "Invalid API Token: project-scoped token is not valid for project: 'b'"
	expiredMsg     = "Invalid API Token: token is expired"
	badSigMsg      = "Invalid API Token: signatures do not match"
)

func (f *fixture) auth(t *testing.T, raw string) *Verified {
	t.Helper()
	v, err := f.s.Authenticate(context.Background(), raw)
	if err != nil {
		t.Fatalf("Authenticate: %v", err)
	}
	return v
}

// permits checks PermitsProject for the fixture's projects: want lists the
// ones allowed, the others must fail with the exact message.
func (f *fixture) permits(t *testing.T, v *Verified, want ...string) {
	t.Helper()
	allowed := map[string]bool{}
	for _, w := range want {
		allowed[w] = true
	}
	for name, id := range map[string]int64{"a": f.a, "b": f.b, "c": f.c} {
		err := v.PermitsProject(name, id)
		switch {
		case allowed[name] && err != nil:
			t.Errorf("PermitsProject(%q): %v, want nil", name, err)
		case !allowed[name]:
			msg := fmt.Sprintf("Invalid API Token: project-scoped token is not valid for project: '%s'", name)
			if err == nil {
				t.Errorf("PermitsProject(%q) = nil, want %q", name, msg)
			} else {
				wantKind(t, err, derrors.Forbidden, msg)
			}
		}
	}
}

func TestAuthenticateScopes(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		f := newFixture(t, d)
		userTok, tok := f.create(t, f.alice, "user", nil, nil)
		v := f.auth(t, userTok)
		if v.Identity != (Identity{TokenID: tok.ID, UserID: f.alice, Username: "alice"}) {
			t.Errorf("Identity = %+v", v.Identity)
		}
		// A whole-account token works for any project (the role check is
		// the caller's) and may create projects.
		f.permits(t, v, "a", "b", "c")
		if !v.CanCreateProjects() || v.PermitsNewProject() != nil {
			t.Error("user token cannot create projects")
		}

		projTok, _ := f.create(t, f.alice, "proj a", []string{"a"}, nil)
		v = f.auth(t, projTok)
		f.permits(t, v, "a")
		if v.CanCreateProjects() {
			t.Error("project token can create projects")
		}
		wantKind(t, v.PermitsNewProject(), derrors.Forbidden,
			"Invalid API Token: project-scoped token used outside of a project context")
		// The name caveat and the id caveat must both hold: a project
		// re-created under the same name has a new id.
		wantKind(t, v.PermitsProject("a", f.a+100), derrors.Forbidden,
			"Invalid API Token: project-scoped token is not valid for project: 'a'")

		multi, _ := f.create(t, f.alice, "a and b", []string{"a", "b"}, nil)
		f.permits(t, f.auth(t, multi), "a", "b")
	})
}

func TestExpiry(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		ctx := context.Background()
		f := newFixture(t, d)
		created := f.clock.Now()
		exp := created.Add(time.Hour)
		raw, _ := f.create(t, f.alice, "expiring", []string{"a"}, &exp)

		f.clock.Set(exp.Add(-time.Second))
		f.auth(t, raw)
		f.clock.Set(exp)
		_, err := f.s.Authenticate(ctx, raw)
		wantKind(t, err, derrors.Forbidden, expiredMsg)
		f.clock.Set(created.Add(-time.Second)) // before not_before
		_, err = f.s.Authenticate(ctx, raw)
		wantKind(t, err, derrors.Forbidden, expiredMsg)

		// The expires_at column is checked too, on its own.
		f.clock.Set(created)
		raw2, tok2 := f.create(t, f.alice, "forever", nil, nil)
		if _, err := d.Exec(`UPDATE api_tokens SET expires_at = $1 WHERE id = $2`, created.Add(time.Minute), tok2.ID); err != nil {
			t.Fatal(err)
		}
		f.auth(t, raw2)
		f.clock.Set(created.Add(time.Minute))
		_, err = f.s.Authenticate(ctx, raw2)
		wantKind(t, err, derrors.Forbidden, expiredMsg)
	})
}

func TestAuthenticateRefusals(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		ctx := context.Background()
		f := newFixture(t, d)
		raw, tok := f.create(t, f.alice, "t", nil, nil)
		enc := strings.TrimPrefix(raw, "pypi-")

		unauth := []string{
			"",
			"pypi-",
			enc,                  // no prefix
			"pypl-" + enc,        // wrong prefix
			"PYPI-" + enc,        // prefixes are case-sensitive
			"pypi-" + enc + "\n", // not trimmed here (FromRequest trims)
			"pypi-" + enc[:20] + "\n" + enc[20:],
			"pypi-" + enc[:len(enc)-1], // truncated
			"pypi-" + enc + "AAAA",     // trailing bytes
			"pypi-not base64!",
			"pypi-" + base64.RawURLEncoding.EncodeToString([]byte("garbage")),
			"pypi-" + strings.Repeat("A", maxRawLen),
		}
		for _, r := range unauth {
			_, err := f.s.Authenticate(ctx, r)
			if !errorsIsMsg(err, derrors.Unauthenticated, invalidAuthMsg) {
				t.Errorf("Authenticate(%.40q) = %v, want unauthenticated", r, err)
			}
		}
		// Padding is tolerated, as pymacaroons does.
		f.auth(t, raw+strings.Repeat("=", (4-len(enc)%4)%4))

		// A well-formed token for an id we do not know.
		ghost, err := mint(rootKey(testSecret, "6f0c5b0e-8a4c-4d5e-9a43-3c1f0f6d9b11"), "6f0c5b0e-8a4c-4d5e-9a43-3c1f0f6d9b11", "x", nil)
		if err != nil {
			t.Fatal(err)
		}
		_, err = f.s.Authenticate(ctx, ghost)
		wantKind(t, err, derrors.Unauthenticated, invalidAuthMsg)

		// A disabled owner has no identity.
		if _, err := d.Exec(`UPDATE users SET disabled = TRUE WHERE id = $1`, f.alice); err != nil {
			t.Fatal(err)
		}
		_, err = f.s.Authenticate(ctx, raw)
		wantKind(t, err, derrors.Unauthenticated, invalidAuthMsg)
		if _, err := d.Exec(`UPDATE users SET disabled = FALSE WHERE id = $1`, f.alice); err != nil {
			t.Fatal(err)
		}
		f.auth(t, raw)

		// Tampering: the signature, a caveat, the identifier's key.
		data, _ := base64.RawURLEncoding.DecodeString(enc)
		flip := func(i int) string {
			b := bytes.Clone(data)
			b[i] ^= 0x01
			return "pypi-" + base64.RawURLEncoding.EncodeToString(b)
		}
		_, err = f.s.Authenticate(ctx, flip(len(data)-1))
		wantKind(t, err, derrors.Forbidden, badSigMsg)
		uid := bytes.Index(data, []byte(fmt.Sprintf(`[3,"%d"]`, f.alice)))
		if uid < 0 {
			t.Fatalf("user caveat not found in %q", data)
		}
		_, err = f.s.Authenticate(ctx, flip(uid+4)) // the user id digit
		wantKind(t, err, derrors.Forbidden, badSigMsg)
		wrongKey, _ := mint(rootKey([]byte(strings.Repeat("x", 32)), tok.ID), tok.ID, "localhost:8080", []string{fmt.Sprintf(`[3,"%d"]`, f.alice)})
		_, err = f.s.Authenticate(ctx, wrongKey)
		wantKind(t, err, derrors.Forbidden, badSigMsg)
		// Someone else's id in the caveat, correctly signed (as if the
		// server had issued it wrongly): the user restriction fails.
		other, _ := mint(rootKey(testSecret, tok.ID), tok.ID, "localhost:8080", []string{fmt.Sprintf(`[3,"%d"]`, f.bob)})
		_, err = f.s.Authenticate(ctx, other)
		wantKind(t, err, derrors.Forbidden, "Invalid API Token: current user does not match user restriction in token")

		// Third-party caveats are refused outright.
		m, _ := parse(raw)
		if err := m.AddThirdPartyCaveat([]byte("k"), []byte("id"), "elsewhere"); err != nil {
			t.Fatal(err)
		}
		third, _ := encode(m)
		_, err = f.s.Authenticate(ctx, third)
		wantKind(t, err, derrors.Unauthenticated, invalidAuthMsg)
	})
}

func errorsIsMsg(err, kind error, msg string) bool {
	got, _ := derrors.Message(err)
	return errors.Is(err, kind) && got == msg
}

// TestIssuedCaveatsReapplied mints a token for a project token's id without
// its caveats (as only a holder of the server secret could) and checks that
// the caveats stored in the database still apply.
func TestIssuedCaveatsReapplied(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		f := newFixture(t, d)
		exp := f.clock.Now().Add(time.Hour)
		_, tok := f.create(t, f.alice, "a only", []string{"a"}, &exp)
		bare, err := mint(rootKey(testSecret, tok.ID), tok.ID, "localhost:8080", nil)
		if err != nil {
			t.Fatal(err)
		}
		v := f.auth(t, bare)
		f.permits(t, v, "a")
		f.clock.Set(exp)
		_, err = f.s.Authenticate(context.Background(), bare)
		wantKind(t, err, derrors.Forbidden, expiredMsg)
	})
}

func TestAttenuation(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		ctx := context.Background()
		f := newFixture(t, d)
		userTok, _ := f.create(t, f.alice, "user", nil, nil)
		projTok, _ := f.create(t, f.alice, "a", []string{"a"}, nil)
		attenuate := func(raw, caveat string) string {
			t.Helper()
			out, err := Attenuate(raw, caveat)
			if err != nil {
				t.Fatalf("Attenuate(%s): %v", caveat, err)
			}
			return out
		}

		// Narrowing a user token to a project.
		onlyA := attenuate(userTok, `[1,["a"]]`)
		f.permits(t, f.auth(t, onlyA), "a")
		wantKind(t, f.auth(t, onlyA).PermitsProject("b", f.b), derrors.Forbidden, notForB)
		// By project id.
		f.permits(t, f.auth(t, attenuate(userTok, fmt.Sprintf(`[2,["%d"]]`, f.b))), "b")

		// A broader caveat cannot widen a project token.
		wider := attenuate(projTok, `[1,["a","b","c"]]`)
		f.permits(t, f.auth(t, wider), "a")

		// Expiry added by the client.
		soon := attenuate(userTok, fmt.Sprintf(`[0,%d,%d]`, f.clock.Now().Unix()+60, f.clock.Now().Unix()))
		f.auth(t, soon)
		f.clock.Advance(time.Minute)
		_, err := f.s.Authenticate(ctx, soon)
		wantKind(t, err, derrors.Forbidden, expiredMsg)
		f.auth(t, userTok)

		// Another user.
		_, err = f.s.Authenticate(ctx, attenuate(userTok, fmt.Sprintf(`[3,"%d"]`, f.bob)))
		wantKind(t, err, derrors.Forbidden, "Invalid API Token: current user does not match user restriction in token")

		// Several failures are all reported, once each.
		both := attenuate(attenuate(userTok, fmt.Sprintf(`[3,"%d"]`, f.bob)), `[0,1,0]`)
		_, err = f.s.Authenticate(ctx, both)
		wantKind(t, err, derrors.Forbidden, "Invalid API Token: current user does not match user restriction in token, token is expired")

		// Unknown or malformed caveats: Attenuate refuses them, and a
		// token carrying one anyway is refused.
		for caveat, reason := range map[string]string{
			`[99,"x"]`:      "caveat has unknown tag: 99",
			`["x"]`:         "caveat has unknown tag: x",
			`[-1]`:          "caveat has unknown tag: -1",
			`[]`:            "caveat array cannot be empty",
			`"user"`:        "caveat must be an array",
			`{"foo":1}`:     "caveat must be an array",
			`[0,1]`:         "Not enough values",
			`[1,"a"]`:       "invalid values for fields",
			`[1,["a"],"x"]`: "invalid values for fields",
			`[0,1.5,0]`:     "invalid values for fields",
			`not json`:      "caveat is not valid JSON",
		} {
			if _, err := Attenuate(userTok, caveat); err == nil {
				t.Errorf("Attenuate(%s) succeeded", caveat)
			}
			bad, err := addCaveat(userTok, caveat)
			if err != nil {
				t.Fatal(err)
			}
			_, err = f.s.Authenticate(ctx, bad)
			wantKind(t, err, derrors.Forbidden, "Invalid API Token: "+reason)
		}
		if _, err := Attenuate("pypi-bad", `[1,["a"]]`); err == nil {
			t.Error("Attenuate of a malformed token succeeded")
		}
	})
}

func TestLegacyCaveats(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		ctx := context.Background()
		f := newFixture(t, d)
		userTok, _ := f.create(t, f.alice, "user", nil, nil)
		with := func(caveat string) string {
			t.Helper()
			out, err := Attenuate(userTok, caveat)
			if err != nil {
				t.Fatalf("Attenuate(%s): %v", caveat, err)
			}
			return out
		}
		f.permits(t, f.auth(t, with(`{"version":1,"permissions":"user"}`)), "a", "b", "c")
		f.permits(t, f.auth(t, with(`{"version":1,"permissions":{"projects":["a"]}}`)), "a")
		f.permits(t, f.auth(t, with(fmt.Sprintf(`{"project_ids":["%d"]}`, f.b))), "b")
		f.auth(t, with(fmt.Sprintf(`{"exp":%d,"nbf":%d}`, f.clock.Now().Unix()+1, f.clock.Now().Unix())))
		_, err := f.s.Authenticate(ctx, with(fmt.Sprintf(`{"exp":%d,"nbf":%d}`, f.clock.Now().Unix(), f.clock.Now().Unix()-10)))
		wantKind(t, err, derrors.Forbidden, expiredMsg)
		// A version-1 caveat with anything else is not adapted.
		if _, err := Attenuate(userTok, `{"version":1,"permissions":"everything"}`); err == nil {
			t.Error(`Attenuate accepted {"version":1,"permissions":"everything"}`)
		}
	})
}

func TestLastUsed(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		ctx := context.Background()
		f := newFixture(t, d)
		raw, _ := f.create(t, f.alice, "t", nil, nil)
		lastUsed := func() *time.Time {
			t.Helper()
			list, err := f.s.List(ctx, f.alice)
			if err != nil || len(list) != 1 {
				t.Fatalf("List: %v, %v", list, err)
			}
			return list[0].LastUsedAt
		}
		if lastUsed() != nil {
			t.Fatal("new token has a last-used time")
		}
		first := f.clock.Now()
		f.auth(t, raw)
		if got := lastUsed(); got == nil || !got.Equal(first) {
			t.Fatalf("LastUsedAt = %v, want %v", got, first)
		}
		f.clock.Set(first.Add(30 * time.Second))
		f.auth(t, raw)
		if got := lastUsed(); !got.Equal(first) {
			t.Errorf("LastUsedAt = %v after 30s, want unchanged %v", got, first)
		}
		f.clock.Set(first.Add(61 * time.Second))
		f.auth(t, raw)
		if got := lastUsed(); !got.Equal(f.clock.Now()) {
			t.Errorf("LastUsedAt = %v, want %v", got, f.clock.Now())
		}
	})
}
