package mfa

import (
	"bytes"
	"database/sql"
	"encoding/base64"
	"encoding/json"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/descope/virtualwebauthn"
	"github.com/fxamacker/cbor/v2"

	"github.com/gatehouse-index/gatehouse/internal/audit"
	"github.com/gatehouse-index/gatehouse/internal/db"
	"github.com/gatehouse-index/gatehouse/internal/db/dbtest"
	"github.com/gatehouse-index/gatehouse/internal/derrors"
)

// waOptions decodes options JSON into a generic map under "publicKey".
func waOptions(t *testing.T, optionsJSON []byte) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(optionsJSON, &m); err != nil {
		t.Fatal(err)
	}
	return m["publicKey"].(map[string]any)
}

func TestWebAuthnSecurityKey(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		f := waNewFixture(t, d, nil)
		u := f.user("alice")
		key := waNewKey(virtualwebauthn.AuthenticatorOptions{})

		opts, state, err := f.w.BeginRegistration(f.ctx, u, false)
		if err != nil {
			t.Fatal(err)
		}
		o := waOptions(t, opts)
		sel := o["authenticatorSelection"].(map[string]any)
		if o["attestation"] != "none" || sel["residentKey"] != "discouraged" || sel["userVerification"] != "discouraged" ||
			o["timeout"] != float64(300000) {
			t.Errorf("security key options = %s", opts)
		}
		user := o["user"].(map[string]any)
		if user["name"] != "alice" || user["displayName"] != "Test alice" {
			t.Errorf("user entity = %v", user)
		}
		if rp := o["rp"].(map[string]any); rp["id"] != waRPID || rp["name"] != "Gatehouse" {
			t.Errorf("rp entity = %v", rp)
		}
		handle, _ := base64.RawURLEncoding.DecodeString(user["id"].(string))
		if len(handle) != 32 {
			t.Errorf("user handle is %d bytes, want 32", len(handle))
		}
		if _, ok := o["excludeCredentials"]; ok {
			t.Errorf("first registration excludes credentials: %s", opts)
		}
		cred, err := f.w.FinishRegistration(f.ctx, u, "  YubiKey 5  ", state, key.attest(t, opts), waClient("192.0.2.1"))
		if err != nil {
			t.Fatal(err)
		}
		key.auth.AddCredential(key.cred)
		if cred.Label != "YubiKey 5" || cred.Passkey || cred.UserID != u.ID || cred.ID == 0 {
			t.Errorf("credential = %+v", cred)
		}
		ev := f.events(u.ID, audit.TwoFactorAdded)
		if len(ev) != 1 || ev[0].Add["method"] != "webauthn" || ev[0].Add["label"] != "YubiKey 5" || ev[0].Add["kind"] != "security-key" {
			t.Errorf("method_added events = %+v", ev)
		}
		m := f.mails(u.ID)
		if len(m) != 1 || m[0].Template != "two-factor-added" || m[0].To != "alice@example.com" ||
			m[0].Data["Method"] != "security key “YubiKey 5”" || m[0].Data["Username"] != "alice" {
			t.Errorf("mails = %+v", m)
		}

		// A second registration excludes the first key, and reuses the handle.
		opts2, _, err := f.w.BeginRegistration(f.ctx, u, false)
		if err != nil {
			t.Fatal(err)
		}
		o2 := waOptions(t, opts2)
		ex, _ := o2["excludeCredentials"].([]any)
		if len(ex) != 1 || ex[0].(map[string]any)["id"] != base64.RawURLEncoding.EncodeToString(key.cred.ID) {
			t.Errorf("excludeCredentials = %v", o2["excludeCredentials"])
		}
		if o2["user"].(map[string]any)["id"] != user["id"] {
			t.Errorf("user handle changed between registrations")
		}

		// Login as a second factor.
		lopts, lstate, err := f.w.BeginLogin(f.ctx, u.ID)
		if err != nil {
			t.Fatal(err)
		}
		lo := waOptions(t, lopts)
		if lo["userVerification"] != "discouraged" || lo["rpId"] != waRPID || len(lo["allowCredentials"].([]any)) != 1 {
			t.Errorf("login options = %s", lopts)
		}
		got, err := f.w.FinishLogin(f.ctx, u.ID, lstate, key.assert(t, lopts), waClient("192.0.2.1"))
		if err != nil {
			t.Fatal(err)
		}
		if got.ID != cred.ID || got.Label != "YubiKey 5" || got.SignCount != 1 || got.LastUsedAt.IsZero() {
			t.Errorf("login credential = %+v", got)
		}
		if _, err := f.login(u.ID, key); err != nil {
			t.Fatal(err)
		}
		if n := f.storedCount(cred.ID); n != 2 {
			t.Errorf("stored sign count = %d, want 2", n)
		}
		list, err := f.w.Credentials(f.ctx, u.ID)
		if err != nil || len(list) != 1 || list[0].SignCount != 2 || list[0].LastUsedAt.IsZero() {
			t.Errorf("Credentials = %+v, %v", list, err)
		}
		if has, err := f.w.HasPasskey(f.ctx, u.ID); has || err != nil {
			t.Errorf("HasPasskey = %v, %v; want false", has, err)
		}
		// A security key does not sign in alone.
		if _, _, err := f.passkeyLogin(key); err == nil {
			t.Error("security key without user handle signed in as a passkey")
		}
	})
}

func TestWebAuthnPasskey(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		f := waNewFixture(t, d, nil)
		alice, bob := f.user("alice"), f.user("bob")
		ka, kb := waNewKey(virtualwebauthn.AuthenticatorOptions{}), waNewKey(virtualwebauthn.AuthenticatorOptions{})

		opts, _, err := f.w.BeginRegistration(f.ctx, alice, true)
		if err != nil {
			t.Fatal(err)
		}
		sel := waOptions(t, opts)["authenticatorSelection"].(map[string]any)
		if sel["residentKey"] != "required" || sel["requireResidentKey"] != true || sel["userVerification"] != "required" {
			t.Errorf("passkey authenticatorSelection = %v", sel)
		}
		ca := f.register(alice, ka, true, "Phone")
		cb := f.register(bob, kb, true, "Laptop")
		if !ca.Passkey || !cb.Passkey {
			t.Fatalf("passkey flags: %+v %+v", ca, cb)
		}
		if m := f.mails(alice.ID); len(m) != 1 || m[0].Data["Method"] != "passkey “Phone”" {
			t.Errorf("mails = %+v", m)
		}
		if ev := f.events(alice.ID, audit.TwoFactorAdded); len(ev) != 1 || ev[0].Add["kind"] != "passkey" {
			t.Errorf("events = %+v", ev)
		}
		if has, err := f.w.HasPasskey(f.ctx, alice.ID); !has || err != nil {
			t.Errorf("HasPasskey = %v, %v", has, err)
		}

		popts, _, err := f.w.BeginPasskeyLogin(f.ctx)
		if err != nil {
			t.Fatal(err)
		}
		po := waOptions(t, popts)
		if _, ok := po["allowCredentials"]; ok || po["userVerification"] != "required" {
			t.Errorf("passkey login options = %s", popts)
		}
		for range 2 {
			id, cred, err := f.passkeyLogin(ka)
			if err != nil || id != alice.ID || cred.ID != ca.ID {
				t.Fatalf("alice's passkey: id %d cred %+v err %v", id, cred, err)
			}
			id, cred, err = f.passkeyLogin(kb)
			if err != nil || id != bob.ID || cred.ID != cb.ID {
				t.Fatalf("bob's passkey: id %d cred %+v err %v", id, cred, err)
			}
		}
		// A passkey is also a second factor (it returns the user handle,
		// which must match).
		if _, err := f.login(alice.ID, ka); err != nil {
			t.Fatal(err)
		}
	})
}

// TestWebAuthnOrigin is spec C1.
func TestWebAuthnOrigin(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		f := waNewFixture(t, d, waNoLimit{})
		u := f.user("alice")
		key := waNewKey(virtualwebauthn.AuthenticatorOptions{})
		f.register(u, key, false, "Key")

		cases := []struct {
			name string
			edit func(*waSpec)
		}{
			{"look-alike host", func(s *waSpec) { s.Origin = "https://index-example.com" }},
			{"subdomain of look-alike", func(s *waSpec) { s.Origin = "https://index.example.evil.test" }},
			{"http", func(s *waSpec) { s.Origin = "http://index.example" }},
			{"extra port", func(s *waSpec) { s.Origin = "https://index.example:8443" }},
			{"default port spelled out", func(s *waSpec) { s.Origin = "https://index.example:443" }},
			{"path", func(s *waSpec) { s.Origin = "https://index.example/login" }},
			{"upper case", func(s *waSpec) { s.Origin = "https://INDEX.example" }},
			{"empty", func(s *waSpec) { s.Origin = "" }},
			{"cross origin", func(s *waSpec) { s.CrossOrigin = true; s.TopOrigin = "https://evil.test" }},
			{"cross origin flag", func(s *waSpec) { s.CrossOrigin = true }},
			{"top origin without cross origin", func(s *waSpec) { s.TopOrigin = waOrigin }},
			{"other RP ID", func(s *waSpec) { s.RPID = "evil.test" }},
			{"create type", func(s *waSpec) { s.Type = "webauthn.create" }},
		}
		// The hand-made assertion is accepted when nothing is changed.
		opts, state, err := f.w.BeginLogin(f.ctx, u.ID)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := f.w.FinishLogin(f.ctx, u.ID, state, key.sign(t, opts, key.goodSpec()), waClient("192.0.2.1")); err != nil {
			t.Fatalf("honest hand-made assertion: %v", err)
		}
		for _, tc := range cases {
			opts, state, err := f.w.BeginLogin(f.ctx, u.ID)
			if err != nil {
				t.Fatal(err)
			}
			s := key.goodSpec()
			tc.edit(&s)
			_, err = f.w.FinishLogin(f.ctx, u.ID, state, key.sign(t, opts, s), waClient("192.0.2.1"))
			waIs(t, err, derrors.Invalid, tc.name)
			waMsg(t, err, webAuthnMsgInvalid)
		}

		// Registration checks the origin too.
		k2 := waNewKey(virtualwebauthn.AuthenticatorOptions{})
		opts, state, err = f.w.BeginRegistration(f.ctx, u, false)
		if err != nil {
			t.Fatal(err)
		}
		o, _ := virtualwebauthn.ParseAttestationOptions(string(opts))
		bad := virtualwebauthn.RelyingParty{ID: waRPID, Name: "x", Origin: "https://index.example:8443"}
		_, err = f.w.FinishRegistration(f.ctx, u, "Other", state, []byte(virtualwebauthn.CreateAttestationResponse(bad, k2.auth, k2.cred, *o)), waClient("192.0.2.1"))
		waIs(t, err, derrors.Invalid, "registration from another origin")
	})
}

func TestWebAuthnConfig(t *testing.T) {
	d := dbtest.NewSQLite(t)
	for _, tc := range []struct {
		rpID    string
		origins []string
	}{
		{"index.example", []string{"https://index.example/"}},
		{"index.example", []string{"https://index.example/login"}},
		{"index.example", []string{"https://other.example"}},
		{"index.example", []string{"ftp://index.example"}},
		{"index.example", nil},
		{"index.example:8080", []string{"https://index.example:8080"}},
		{"", []string{"https://index.example"}},
	} {
		if _, err := NewWebAuthn(WebAuthnOptions{DB: d, RPID: tc.rpID, RPOrigins: tc.origins, Limiter: waNoLimit{}}); err == nil {
			t.Errorf("NewWebAuthn(%q, %q) accepted", tc.rpID, tc.origins)
		}
	}
	for _, tc := range []struct {
		rpID   string
		origin string
	}{
		{"localhost", "http://localhost:8080"},
		{"index.example", "https://index.example"},
		{"example.org", "https://pypi.example.org"},
	} {
		if _, err := NewWebAuthn(WebAuthnOptions{DB: d, RPID: tc.rpID, RPOrigins: []string{tc.origin}, Limiter: waNoLimit{}}); err != nil {
			t.Errorf("NewWebAuthn(%q, %q): %v", tc.rpID, tc.origin, err)
		}
	}
}

// TestWebAuthnChallenge is spec C2.
func TestWebAuthnChallenge(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		f := waNewFixture(t, d, waNoLimit{})
		f.w.rand = waZeroReader{} // only alice gets a user handle
		u, other := f.user("alice"), f.user("bob")
		key := waNewKey(virtualwebauthn.AuthenticatorOptions{})
		f.register(u, key, false, "Key")
		zero := waNewKey(virtualwebauthn.AuthenticatorOptions{})
		zero.zero = true
		f.register(u, zero, false, "Zero")
		c := waClient("192.0.2.1")

		// Challenges are 32 random bytes even though Rand returns zeros.
		o1, s1, err := f.w.BeginLogin(f.ctx, u.ID)
		if err != nil {
			t.Fatal(err)
		}
		o2, s2, err := f.w.BeginLogin(f.ctx, u.ID)
		if err != nil {
			t.Fatal(err)
		}
		c1, _ := base64.RawURLEncoding.DecodeString(waOptions(t, o1)["challenge"].(string))
		c2, _ := base64.RawURLEncoding.DecodeString(waOptions(t, o2)["challenge"].(string))
		if len(c1) < 16 || bytes.Equal(c1, c2) || bytes.Equal(c1, make([]byte, len(c1))) {
			t.Fatalf("weak challenges %x %x", c1, c2)
		}

		// An answer to another ceremony's challenge.
		_, err = f.w.FinishLogin(f.ctx, u.ID, s1, key.assert(t, o2), c)
		waIs(t, err, derrors.Invalid, "wrong challenge")

		// Replays: the same response with the same state, and with a new one.
		for _, k := range []*waKey{key, zero} {
			opts, state, err := f.w.BeginLogin(f.ctx, u.ID)
			if err != nil {
				t.Fatal(err)
			}
			resp := k.assert(t, opts)
			if _, err := f.w.FinishLogin(f.ctx, u.ID, state, resp, c); err != nil {
				t.Fatal(err)
			}
			_, err = f.w.FinishLogin(f.ctx, u.ID, state, resp, c)
			waIs(t, err, derrors.Invalid, "replay with the same state")
			_, err = f.w.FinishLogin(f.ctx, u.ID, s2, resp, c)
			waIs(t, err, derrors.Invalid, "replay with a new state")
		}
		// A fresh response to a used state (the zero-counter key would pass
		// every other check).
		opts, state, err := f.w.BeginLogin(f.ctx, u.ID)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := f.w.FinishLogin(f.ctx, u.ID, state, zero.assert(t, opts), c); err != nil {
			t.Fatal(err)
		}
		_, err = f.w.FinishLogin(f.ctx, u.ID, state, zero.assert(t, opts), c)
		waIs(t, err, derrors.Invalid, "second response to one state")

		// Expiry on the injected clock.
		opts, state, err = f.w.BeginLogin(f.ctx, u.ID)
		if err != nil {
			t.Fatal(err)
		}
		f.clock.Advance(WebAuthnCeremonyTimeout + time.Second)
		_, err = f.w.FinishLogin(f.ctx, u.ID, state, key.assert(t, opts), c)
		waIs(t, err, derrors.Invalid, "expired state")
		waMsg(t, err, webAuthnMsgExpired)
		opts, state, err = f.w.BeginLogin(f.ctx, u.ID)
		if err != nil {
			t.Fatal(err)
		}
		f.clock.Advance(WebAuthnCeremonyTimeout - time.Second)
		if _, err := f.w.FinishLogin(f.ctx, u.ID, state, key.assert(t, opts), c); err != nil {
			t.Errorf("state just inside the timeout: %v", err)
		}

		// A state is bound to its user and its kind of ceremony.
		opts, state, err = f.w.BeginLogin(f.ctx, u.ID)
		if err != nil {
			t.Fatal(err)
		}
		_, err = f.w.FinishLogin(f.ctx, other.ID, state, key.assert(t, opts), c)
		waIs(t, err, derrors.Invalid, "state of another user")
		_, _, err = f.w.FinishPasskeyLogin(f.ctx, state, key.assert(t, opts), c)
		waIs(t, err, derrors.Invalid, "2FA state used for a passkey login")
		ropts, rstate, err := f.w.BeginRegistration(f.ctx, u, false)
		if err != nil {
			t.Fatal(err)
		}
		_, err = f.w.FinishLogin(f.ctx, u.ID, rstate, key.assert(t, ropts), c)
		waIs(t, err, derrors.Invalid, "registration state used for a login")
		for _, junk := range [][]byte{nil, []byte("{}"), []byte("not json"), []byte(`{"ceremony":"login"}`)} {
			_, err = f.w.FinishLogin(f.ctx, u.ID, junk, key.assert(t, opts), c)
			waIs(t, err, derrors.Invalid, "junk state "+string(junk))
		}

		// Registration: the same response twice, and after expiry.
		k3 := waNewKey(virtualwebauthn.AuthenticatorOptions{})
		ropts, rstate, err = f.w.BeginRegistration(f.ctx, u, false)
		if err != nil {
			t.Fatal(err)
		}
		resp := k3.attest(t, ropts)
		if _, err := f.w.FinishRegistration(f.ctx, u, "Third", rstate, resp, c); err != nil {
			t.Fatal(err)
		}
		if _, err := f.w.FinishRegistration(f.ctx, u, "Fourth", rstate, resp, c); err == nil {
			t.Error("registration replayed")
		}
		k4 := waNewKey(virtualwebauthn.AuthenticatorOptions{})
		ropts, rstate, err = f.w.BeginRegistration(f.ctx, u, false)
		if err != nil {
			t.Fatal(err)
		}
		f.clock.Advance(WebAuthnCeremonyTimeout + time.Second)
		_, err = f.w.FinishRegistration(f.ctx, u, "Late", rstate, k4.attest(t, ropts), c)
		waIs(t, err, derrors.Invalid, "expired registration")
	})
}

// TestWebAuthnFlags is spec C3.
func TestWebAuthnFlags(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		f := waNewFixture(t, d, waNoLimit{})
		u := f.user("alice")
		c := waClient("192.0.2.1")
		sk := waNewKey(virtualwebauthn.AuthenticatorOptions{})
		f.register(u, sk, false, "Key")
		pk := waNewKey(virtualwebauthn.AuthenticatorOptions{})
		f.register(u, pk, true, "Passkey")

		// UP=0 is refused everywhere.
		sk.auth.Options.UserNotPresent = true
		_, err := f.login(u.ID, sk)
		waIs(t, err, derrors.Invalid, "2FA with UP=0")
		sk.auth.Options.UserNotPresent = false
		pk.auth.Options.UserNotPresent = true
		_, _, err = f.passkeyLogin(pk)
		waIs(t, err, derrors.Invalid, "passkey with UP=0")
		pk.auth.Options.UserNotPresent = false

		// UV=0: fine for a second factor, refused for a passkey sign-in.
		sk.auth.Options.UserNotVerified = true
		if _, err := f.login(u.ID, sk); err != nil {
			t.Errorf("2FA with UV=0: %v", err)
		}
		pk.auth.Options.UserNotVerified = true
		if _, err := f.login(u.ID, pk); err != nil {
			t.Errorf("passkey as 2FA with UV=0: %v", err)
		}
		_, _, err = f.passkeyLogin(pk)
		waIs(t, err, derrors.Invalid, "passkey sign-in with UV=0")
		pk.auth.Options.UserNotVerified = false
		if _, _, err := f.passkeyLogin(pk); err != nil {
			t.Errorf("passkey sign-in with UV=1: %v", err)
		}

		// Registration: UP=0 refused; UV=0 refused only for a passkey.
		for _, tc := range []struct {
			name    string
			opts    virtualwebauthn.AuthenticatorOptions
			passkey bool
			ok      bool
		}{
			{"key UP=0", virtualwebauthn.AuthenticatorOptions{UserNotPresent: true}, false, false},
			{"passkey UP=0", virtualwebauthn.AuthenticatorOptions{UserNotPresent: true}, true, false},
			{"key UV=0", virtualwebauthn.AuthenticatorOptions{UserNotVerified: true}, false, true},
			{"passkey UV=0", virtualwebauthn.AuthenticatorOptions{UserNotVerified: true}, true, false},
		} {
			k := waNewKey(tc.opts)
			opts, state, err := f.w.BeginRegistration(f.ctx, u, tc.passkey)
			if err != nil {
				t.Fatal(err)
			}
			_, err = f.w.FinishRegistration(f.ctx, u, tc.name, state, k.attest(t, opts), c)
			if tc.ok && err != nil {
				t.Errorf("%s: %v", tc.name, err)
			}
			if !tc.ok {
				waIs(t, err, derrors.Invalid, tc.name)
			}
		}
	})
}

// TestWebAuthnSignCount is spec C4.
func TestWebAuthnSignCount(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		f := waNewFixture(t, d, waNoLimit{})
		u := f.user("alice")
		c := waClient("192.0.2.1")
		key := waNewKey(virtualwebauthn.AuthenticatorOptions{})
		key.cred.Counter = 9
		cred := f.register(u, key, false, "Old key")
		if cred.SignCount != 9 || f.storedCount(cred.ID) != 9 {
			t.Fatalf("registered count %d / %d, want 9", cred.SignCount, f.storedCount(cred.ID))
		}
		if _, err := f.login(u.ID, key); err != nil { // 10
			t.Fatal(err)
		}
		before := len(f.mails(u.ID))
		for _, counter := range []uint32{10, 9, 0} {
			opts, state, err := f.w.BeginLogin(f.ctx, u.ID)
			if err != nil {
				t.Fatal(err)
			}
			s := key.goodSpec()
			s.Counter = counter
			_, err = f.w.FinishLogin(f.ctx, u.ID, state, key.sign(t, opts, s), c)
			waIs(t, err, derrors.Forbidden, "counter regression")
			waMsg(t, err, webAuthnMsgCloned)
		}
		if n := f.storedCount(cred.ID); n != 10 {
			t.Errorf("stored count %d after refused logins, want 10", n)
		}
		ev := f.events(u.ID, audit.WebAuthnSignCountError)
		if len(ev) != 3 || ev[0].Add["label"] != "Old key" || ev[0].Add["stored"] != float64(10) || ev[1].Add["got"] != float64(9) {
			t.Errorf("sign count events = %+v", ev)
		}
		m := f.mails(u.ID)[before:]
		if len(m) != 3 || m[0].Template != "webauthn-sign-count" || m[0].Data["Label"] != "Old key" || m[0].Data["Username"] != "alice" {
			t.Errorf("mails = %+v", m)
		}
		// A higher counter works again.
		opts, state, err := f.w.BeginLogin(f.ctx, u.ID)
		if err != nil {
			t.Fatal(err)
		}
		s := key.goodSpec()
		s.Counter = 11
		if _, err := f.w.FinishLogin(f.ctx, u.ID, state, key.sign(t, opts, s), c); err != nil {
			t.Fatal(err)
		}

		// An authenticator that always says 0 is accepted every time.
		zero := waNewKey(virtualwebauthn.AuthenticatorOptions{})
		zero.zero = true
		zc := f.register(u, zero, true, "Synced passkey")
		for range 3 {
			if _, err := f.login(u.ID, zero); err != nil {
				t.Fatal(err)
			}
			if _, _, err := f.passkeyLogin(zero); err != nil {
				t.Fatal(err)
			}
		}
		if n := f.storedCount(zc.ID); n != 0 {
			t.Errorf("zero counter stored as %d", n)
		}
		// …but once it has counted, 0 is a regression.
		opts, state, err = f.w.BeginLogin(f.ctx, u.ID)
		if err != nil {
			t.Fatal(err)
		}
		zero.zero = false
		if _, err := f.w.FinishLogin(f.ctx, u.ID, state, zero.assert(t, opts), c); err != nil {
			t.Fatal(err)
		}
		zero.zero, zero.cred.Counter = true, 0
		_, err = f.login(u.ID, zero)
		waIs(t, err, derrors.Forbidden, "0 after 1")

		// Two assertions with the same counter racing: exactly one wins.
		k2 := waNewKey(virtualwebauthn.AuthenticatorOptions{})
		f.register(u, k2, false, "Raced")
		type attempt struct{ state, resp []byte }
		var tries []attempt
		for range 2 {
			opts, state, err := f.w.BeginLogin(f.ctx, u.ID)
			if err != nil {
				t.Fatal(err)
			}
			s := k2.goodSpec()
			s.Counter = 5
			tries = append(tries, attempt{state, k2.sign(t, opts, s)})
		}
		var wg sync.WaitGroup
		errs := make([]error, len(tries))
		for i, a := range tries {
			wg.Go(func() { _, errs[i] = f.w.FinishLogin(f.ctx, u.ID, a.state, a.resp, c) })
		}
		wg.Wait()
		if (errs[0] == nil) == (errs[1] == nil) {
			t.Fatalf("racing logins: %v / %v, want exactly one success", errs[0], errs[1])
		}
		for _, err := range errs {
			if err != nil {
				waIs(t, err, derrors.Forbidden, "lost race")
			}
		}
	})
}

// TestWebAuthnSignCountCAS drives the compare-and-swap directly: a record
// read before a concurrent login moved the counter must not win.
func TestWebAuthnSignCountCAS(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		f := waNewFixture(t, d, waNoLimit{})
		u := f.user("alice")
		key := waNewKey(virtualwebauthn.AuthenticatorOptions{})
		cred := f.register(u, key, false, "Key")
		recs, err := webAuthnRecords(f.ctx, d, u.ID)
		if err != nil {
			t.Fatal(err)
		}
		stale := recs[0]
		opts, state, err := f.w.BeginLogin(f.ctx, u.ID)
		if err != nil {
			t.Fatal(err)
		}
		resp := key.assert(t, opts) // counter 1
		// Another login stores counter 2 meanwhile.
		if _, err := d.ExecContext(f.ctx, `UPDATE webauthn_credentials SET sign_count = 2 WHERE id = $1`, cred.ID); err != nil {
			t.Fatal(err)
		}
		st, err := f.w.decodeState(state, webAuthnCeremonyLogin, u.ID)
		if err != nil {
			t.Fatal(err)
		}
		parsed, err := webAuthnParseAssertion(resp)
		if err != nil {
			t.Fatal(err)
		}
		_, err = f.w.webAuthnComplete(f.ctx, u.ID, st, stale, parsed, &stale.wa, waClient("192.0.2.1"))
		waIs(t, err, derrors.Forbidden, "stale compare-and-swap")
		if n := f.storedCount(cred.ID); n != 2 {
			t.Errorf("stored count %d, want 2", n)
		}
		if ev := f.events(u.ID, audit.WebAuthnSignCountError); len(ev) != 1 {
			t.Errorf("events = %+v", ev)
		}
	})
}

// TestWebAuthnTamper is spec C5.
func TestWebAuthnTamper(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		f := waNewFixture(t, d, waNoLimit{})
		u := f.user("alice")
		key := waNewKey(virtualwebauthn.AuthenticatorOptions{})
		f.register(u, key, false, "Key")
		c := waClient("192.0.2.1")
		try := func(name string, edit func(resp []byte) []byte) {
			t.Helper()
			opts, state, err := f.w.BeginLogin(f.ctx, u.ID)
			if err != nil {
				t.Fatal(err)
			}
			_, err = f.w.FinishLogin(f.ctx, u.ID, state, edit(key.assert(t, opts)), c)
			waIs(t, err, derrors.Invalid, name)
		}
		flip := func(field string, i int) func([]byte) []byte {
			return func(resp []byte) []byte {
				return waEditResponse(t, resp, field, func(b []byte) []byte {
					j := i
					if j < 0 {
						j += len(b)
					}
					b[j] ^= 0x01
					return b
				})
			}
		}
		for _, i := range []int{0, 10, 20, 30, -3, -1} {
			try("clientDataJSON byte", flip("clientDataJSON", i))
		}
		for _, i := range []int{0, 31, 32, 33, 36} {
			try("authenticatorData byte", flip("authenticatorData", i))
		}
		for _, i := range []int{0, 5, 20, -1} {
			try("signature byte", flip("signature", i))
		}
		truncate := func(field string) func([]byte) []byte {
			return func(resp []byte) []byte {
				return waEditResponse(t, resp, field, func(b []byte) []byte { return b[:len(b)/2] })
			}
		}
		for _, field := range []string{"clientDataJSON", "authenticatorData", "signature"} {
			try("truncated "+field, truncate(field))
			try("empty "+field, func(resp []byte) []byte {
				return waEditResponse(t, resp, field, func([]byte) []byte { return nil })
			})
		}
		// A key signing in after all that still works.
		if _, err := f.login(u.ID, key); err != nil {
			t.Fatal(err)
		}
	})
}

// TestWebAuthnRegistration is spec C6.
func TestWebAuthnRegistration(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		f := waNewFixture(t, d, waNoLimit{})
		alice, bob := f.user("alice"), f.user("bob")
		c := waClient("192.0.2.1")
		finish := func(name string, k *waKey, edit func([]byte) []byte) (*Credential, error) {
			t.Helper()
			opts, state, err := f.w.BeginRegistration(f.ctx, bob, false)
			if err != nil {
				t.Fatal(err)
			}
			resp := k.attest(t, opts)
			if edit != nil {
				resp = edit(resp)
			}
			return f.w.FinishRegistration(f.ctx, bob, name, state, resp, c)
		}

		// The same credential id for a second account.
		shared := waNewKey(virtualwebauthn.AuthenticatorOptions{})
		f.register(alice, shared, false, "Shared")
		_, err := finish("Shared", shared, nil)
		waIs(t, err, derrors.Conflict, "credential id of another user")
		waMsg(t, err, "Credential ID already in use")

		// Credential ids: 1023 bytes is the most WebAuthn allows (§4).
		long := waNewKey(virtualwebauthn.AuthenticatorOptions{})
		long.cred.ID = bytes.Repeat([]byte{0xA5}, 1024)
		_, err = finish("Too long", long, nil)
		waIs(t, err, derrors.Invalid, "1024-byte credential id")
		long.cred.ID = bytes.Repeat([]byte{0x5A}, 1023)
		if _, err := finish("Longest", long, nil); err != nil {
			t.Errorf("1023-byte credential id: %v", err)
		}

		// BE=0 with BS=1.
		_, err = finish("Backup", waNewKey(virtualwebauthn.AuthenticatorOptions{BackupState: true}), nil)
		waIs(t, err, derrors.Invalid, "BE=0 BS=1")
		if _, err := finish("Synced", waNewKey(virtualwebauthn.AuthenticatorOptions{BackupEligible: true, BackupState: true}), nil); err != nil {
			t.Errorf("BE=1 BS=1: %v", err)
		}

		// Attestation "none" is what we ask for and is accepted.
		none := func(resp []byte) []byte {
			return waEditResponse(t, resp, "attestationObject", func(b []byte) []byte {
				var obj map[string]any
				if err := cbor.Unmarshal(b, &obj); err != nil {
					t.Fatal(err)
				}
				out, err := cbor.Marshal(map[string]any{"fmt": "none", "attStmt": map[string]any{}, "authData": obj["authData"]})
				if err != nil {
					t.Fatal(err)
				}
				return out
			})
		}
		if _, err := finish("None", waNewKey(virtualwebauthn.AuthenticatorOptions{}), none); err != nil {
			t.Errorf("attestation none: %v", err)
		}

		// Malformed input is a 400, never a 500.
		cborJunk := func(resp []byte) []byte {
			return waEditResponse(t, resp, "attestationObject", func([]byte) []byte { return []byte{0xff, 0x00, 0x13, 0x37} })
		}
		cborTrunc := func(resp []byte) []byte {
			return waEditResponse(t, resp, "attestationObject", func(b []byte) []byte { return b[:len(b)-7] })
		}
		clientDataFlip := func(resp []byte) []byte {
			return waEditResponse(t, resp, "clientDataJSON", func(b []byte) []byte { b[len(b)/2] ^= 0x40; return b })
		}
		for name, edit := range map[string]func([]byte) []byte{
			"garbage CBOR":          cborJunk,
			"truncated CBOR":        cborTrunc,
			"tampered client data":  clientDataFlip,
			"not JSON":              func([]byte) []byte { return []byte("{") },
			"JSON null":             func([]byte) []byte { return []byte("null") },
			"JSON array":            func([]byte) []byte { return []byte("[]") },
			"empty":                 func([]byte) []byte { return nil },
			"huge":                  func([]byte) []byte { return bytes.Repeat([]byte(" "), 1<<20) },
			"wrong type":            func(b []byte) []byte { return bytes.Replace(b, []byte(`"public-key"`), []byte(`"password"`), 1) },
			"assertion, not attest": func([]byte) []byte { return []byte(`{"id":"AA","rawId":"AA","type":"public-key","response":{}}`) },
		} {
			_, err := finish("Bad "+name, waNewKey(virtualwebauthn.AuthenticatorOptions{}), edit)
			waIs(t, err, derrors.Invalid, name)
		}
		// Nothing half-registered.
		list, _ := f.w.Credentials(f.ctx, bob.ID)
		if len(list) != 3 {
			t.Errorf("bob has %d credentials, want 3 (Longest, Synced, None): %+v", len(list), list)
		}
	})
}

// TestWebAuthnOwnership is spec C7.
func TestWebAuthnOwnership(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		f := waNewFixture(t, d, nil)
		alice, bob := f.user("alice"), f.user("bob")
		c := waClient("192.0.2.1")
		ka, kb := waNewKey(virtualwebauthn.AuthenticatorOptions{}), waNewKey(virtualwebauthn.AuthenticatorOptions{})
		f.register(alice, ka, true, "Alice's passkey")
		f.register(bob, kb, true, "Bob's passkey")
		ks := waNewKey(virtualwebauthn.AuthenticatorOptions{})
		f.register(alice, ks, false, "Alice's key")

		// Bob's key answering Alice's 2FA challenge.
		opts, state, err := f.w.BeginLogin(f.ctx, alice.ID)
		if err != nil {
			t.Fatal(err)
		}
		_, err = f.w.FinishLogin(f.ctx, alice.ID, state, kb.sign(t, opts, kb.goodSpec()), c)
		waIs(t, err, derrors.Invalid, "bob's credential for alice")
		// …even without a user handle.
		opts, state, err = f.w.BeginLogin(f.ctx, alice.ID)
		if err != nil {
			t.Fatal(err)
		}
		s := kb.goodSpec()
		s.UserHandle = nil
		_, err = f.w.FinishLogin(f.ctx, alice.ID, state, kb.sign(t, opts, s), c)
		waIs(t, err, derrors.Invalid, "bob's credential for alice, no handle")
		// Alice's passkey claiming Bob's user handle in her 2FA.
		opts, state, err = f.w.BeginLogin(f.ctx, alice.ID)
		if err != nil {
			t.Fatal(err)
		}
		s = ka.goodSpec()
		s.UserHandle = kb.auth.Options.UserHandle
		_, err = f.w.FinishLogin(f.ctx, alice.ID, state, ka.sign(t, opts, s), c)
		waIs(t, err, derrors.Invalid, "user handle mismatch in 2FA")

		// Passkey sign-in: Bob's passkey carrying Alice's handle.
		popts, pstate, err := f.w.BeginPasskeyLogin(f.ctx)
		if err != nil {
			t.Fatal(err)
		}
		s = kb.goodSpec()
		s.UserHandle = ka.auth.Options.UserHandle
		_, _, err = f.w.FinishPasskeyLogin(f.ctx, pstate, kb.sign(t, popts, s), c)
		waIs(t, err, derrors.Invalid, "bob's passkey with alice's handle")
		// Alice's security key (not a passkey) with her own handle.
		popts, pstate, err = f.w.BeginPasskeyLogin(f.ctx)
		if err != nil {
			t.Fatal(err)
		}
		s = ks.goodSpec()
		s.UserHandle = ka.auth.Options.UserHandle
		_, _, err = f.w.FinishPasskeyLogin(f.ctx, pstate, ks.sign(t, popts, s), c)
		waIs(t, err, derrors.Invalid, "security key as a passkey")
		// No handle, or a handle of nobody: refused, counted against nobody.
		for _, h := range [][]byte{nil, bytes.Repeat([]byte{7}, 32), bytes.Repeat([]byte{7}, 65)} {
			popts, pstate, err = f.w.BeginPasskeyLogin(f.ctx)
			if err != nil {
				t.Fatal(err)
			}
			s = ka.goodSpec()
			s.UserHandle = h
			_, _, err = f.w.FinishPasskeyLogin(f.ctx, pstate, ka.sign(t, popts, s), c)
			waIs(t, err, derrors.Invalid, "unknown handle")
		}
		fails := f.events(alice.ID, audit.LoginFailure)
		if len(fails) != 5 || fails[0].Add["reason"] != "invalid_webauthn" {
			t.Errorf("alice's failures = %+v, want 5 invalid_webauthn", fails)
		}
		if n := len(f.events(bob.ID, audit.LoginFailure)); n != 0 {
			t.Errorf("bob has %d failures, want 0", n)
		}
		// The honest passkeys still work.
		if id, _, err := f.passkeyLogin(kb); err != nil || id != bob.ID {
			t.Errorf("bob's passkey: %d, %v", id, err)
		}
	})
}

func TestWebAuthnRateLimit(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		f := waNewFixture(t, d, nil)
		u := f.user("alice")
		key := waNewKey(virtualwebauthn.AuthenticatorOptions{})
		f.register(u, key, true, "Key")
		c := waClient("192.0.2.9")
		for i := range 5 {
			opts, state, err := f.w.BeginLogin(f.ctx, u.ID)
			if err != nil {
				t.Fatal(err)
			}
			s := key.goodSpec()
			s.Origin = "https://evil.test"
			_, err = f.w.FinishLogin(f.ctx, u.ID, state, key.sign(t, opts, s), c)
			waIs(t, err, derrors.Invalid, "failure "+string(rune('1'+i)))
		}
		// The limit now refuses even a valid response, before looking at it.
		_, err := f.login(u.ID, key)
		waIs(t, err, derrors.RateLimited, "2FA over the limit")
		_, _, err = f.passkeyLogin(key)
		waIs(t, err, derrors.RateLimited, "passkey over the limit")
		f.clock.Advance(6 * time.Minute)
		if _, err := f.login(u.ID, key); err != nil {
			t.Errorf("after the window: %v", err)
		}
	})
}

func TestWebAuthnLabels(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		f := waNewFixture(t, d, waNoLimit{})
		u := f.user("alice")
		c := waClient("192.0.2.1")
		f.register(u, waNewKey(virtualwebauthn.AuthenticatorOptions{}), false, "YubiKey")
		for _, tc := range []struct {
			label string
			kind  error
			msg   string
		}{
			{"", derrors.Invalid, "Enter a label for the key."},
			{"   ", derrors.Invalid, "Enter a label for the key."},
			{strings.Repeat("x", 65), derrors.Invalid, "The label must be at most 64 characters."},
			{"bad\nlabel", derrors.Invalid, "The label must not contain control characters."},
			{"yubikey", derrors.Conflict, "Label 'yubikey' already in use"},
			{" YUBIKEY ", derrors.Conflict, "Label 'YUBIKEY' already in use"},
		} {
			k := waNewKey(virtualwebauthn.AuthenticatorOptions{})
			opts, state, err := f.w.BeginRegistration(f.ctx, u, false)
			if err != nil {
				t.Fatal(err)
			}
			_, err = f.w.FinishRegistration(f.ctx, u, tc.label, state, k.attest(t, opts), c)
			waIs(t, err, tc.kind, tc.label)
			waMsg(t, err, tc.msg)
		}
		f.register(u, waNewKey(virtualwebauthn.AuthenticatorOptions{}), false, strings.Repeat("é", 64))
		// Another user may reuse a label.
		f.register(f.user("bob"), waNewKey(virtualwebauthn.AuthenticatorOptions{}), false, "YubiKey")
		if list, _ := f.w.Credentials(f.ctx, u.ID); len(list) != 2 {
			t.Errorf("alice has %d keys, want 2", len(list))
		}
	})
}

func TestWebAuthnPreconditions(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		f := waNewFixture(t, d, waNoLimit{})
		unverified := f.userWith("carol", false, true)
		_, _, err := f.w.BeginRegistration(f.ctx, unverified, false)
		waIs(t, err, derrors.Forbidden, "unverified email")
		waMsg(t, err, webAuthnMsgNeedVerified)
		noCodes := f.userWith("dave", true, false)
		_, _, err = f.w.BeginRegistration(f.ctx, noCodes, true)
		waIs(t, err, derrors.Forbidden, "no recovery codes")
		waMsg(t, err, webAuthnMsgNeedRecovery)
		// BeginLogin needs a key.
		_, _, err = f.w.BeginLogin(f.ctx, noCodes.ID)
		waIs(t, err, derrors.Invalid, "no keys")
	})
}

func TestWebAuthnRemove(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		f := waNewFixture(t, d, waNoLimit{})
		alice, bob := f.user("alice"), f.user("bob")
		c := waClient("192.0.2.1")
		k1 := f.register(alice, waNewKey(virtualwebauthn.AuthenticatorOptions{}), false, "First")
		bobs := f.register(bob, waNewKey(virtualwebauthn.AuthenticatorOptions{}), false, "Bob's")

		err := f.w.RemoveCredential(f.ctx, alice.ID, k1.ID, "First", c)
		waIs(t, err, derrors.Conflict, "last factor")
		waMsg(t, err, webAuthnMsgLastFactor)

		k2 := f.register(alice, waNewKey(virtualwebauthn.AuthenticatorOptions{}), true, "Second")
		if _, err := d.ExecContext(f.ctx, `INSERT INTO devices (user_id, token_hash, created_at, last_used_at, remember_until)
			VALUES ($1, 'h', $2, $2, $3)`, alice.ID, time.Now().UTC(), time.Now().UTC().Add(time.Hour)); err != nil {
			t.Fatal(err)
		}
		for _, typed := range []string{"first", "Firs", "", "Second"} {
			err = f.w.RemoveCredential(f.ctx, alice.ID, k1.ID, typed, c)
			waIs(t, err, derrors.Invalid, "typed "+typed)
			waMsg(t, err, "Type the key's label exactly to confirm.")
		}
		err = f.w.RemoveCredential(f.ctx, alice.ID, bobs.ID, "Bob's", c)
		waIs(t, err, derrors.NotFound, "another user's key")
		err = f.w.RemoveCredential(f.ctx, alice.ID, 99999, "First", c)
		waIs(t, err, derrors.NotFound, "no such key")

		before := len(f.mails(alice.ID))
		if err := f.w.RemoveCredential(f.ctx, alice.ID, k1.ID, "First", c); err != nil {
			t.Fatal(err)
		}
		ev := f.events(alice.ID, audit.TwoFactorRemoved)
		if len(ev) != 1 || ev[0].Add["method"] != "webauthn" || ev[0].Add["label"] != "First" {
			t.Errorf("removed events = %+v", ev)
		}
		m := f.mails(alice.ID)[before:]
		if len(m) != 1 || m[0].Template != "two-factor-removed" || m[0].Data["Method"] != "security key “First”" {
			t.Errorf("mails = %+v", m)
		}
		var remembered int
		d.QueryRowContext(f.ctx, `SELECT COUNT(*) FROM devices WHERE user_id = $1 AND remember_until IS NOT NULL`, alice.ID).Scan(&remembered)
		if remembered != 0 {
			t.Error("remembered browsers survived a key removal")
		}
		// With an authenticator app, the last key may go.
		err = f.w.RemoveCredential(f.ctx, alice.ID, k2.ID, "Second", c)
		waIs(t, err, derrors.Conflict, "last factor again")
		if _, err := d.ExecContext(f.ctx, `INSERT INTO totp_secrets (user_id, secret_enc, created_at) VALUES ($1, 'x', $2)`,
			alice.ID, time.Now().UTC()); err != nil {
			t.Fatal(err)
		}
		if err := f.w.RemoveCredential(f.ctx, alice.ID, k2.ID, "Second", c); err != nil {
			t.Fatal(err)
		}
		if list, _ := f.w.Credentials(f.ctx, alice.ID); len(list) != 0 {
			t.Errorf("alice still has %+v", list)
		}
		if list, _ := f.w.Credentials(f.ctx, bob.ID); len(list) != 1 {
			t.Errorf("bob lost his key: %+v", list)
		}
	})
}

// TestWebAuthnChallengeLedger: a challenge is consumed atomically, so two
// requests racing with one state cannot both sign in.
func TestWebAuthnChallengeLedger(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		f := waNewFixture(t, d, waNoLimit{})
		u := f.user("alice")
		key := waNewKey(virtualwebauthn.AuthenticatorOptions{})
		key.zero = true
		f.register(u, key, false, "Key")

		_, state, err := f.w.BeginLogin(f.ctx, u.ID)
		if err != nil {
			t.Fatal(err)
		}
		st, err := f.w.decodeState(state, webAuthnCeremonyLogin, u.ID)
		if err != nil {
			t.Fatal(err)
		}
		consume := func() error {
			return d.InTx(f.ctx, func(tx *sql.Tx) error { return f.w.consumeChallenge(f.ctx, tx, u.ID, st, f.w.clock()) })
		}
		if err := consume(); err != nil {
			t.Fatal(err)
		}
		if err := consume(); err != errWebAuthnReplay {
			t.Fatalf("second consume: %v, want errWebAuthnReplay", err)
		}
		// Stale rows are dropped as the user signs in again.
		f.clock.Advance(WebAuthnCeremonyTimeout + 2*time.Minute)
		if _, err := f.login(u.ID, key); err != nil {
			t.Fatal(err)
		}
		var n int
		d.QueryRowContext(f.ctx, `SELECT COUNT(*) FROM one_time_tokens WHERE user_id = $1`, u.ID).Scan(&n)
		if n != 1 {
			t.Errorf("%d ledger rows, want 1", n)
		}

		for range 3 {
			opts, state, err := f.w.BeginLogin(f.ctx, u.ID)
			if err != nil {
				t.Fatal(err)
			}
			resp := key.assert(t, opts)
			var wg sync.WaitGroup
			errs := make([]error, 4)
			for i := range errs {
				wg.Go(func() { _, errs[i] = f.w.FinishLogin(f.ctx, u.ID, state, resp, waClient("192.0.2.1")) })
			}
			wg.Wait()
			ok := 0
			for _, err := range errs {
				if err == nil {
					ok++
				} else {
					waIs(t, err, derrors.Invalid, "concurrent replay")
				}
			}
			if ok != 1 {
				t.Fatalf("%d of %d concurrent uses of one state succeeded: %v", ok, len(errs), errs)
			}
		}
	})
}

// TestWebAuthnServiceLimiter runs the 2FA limit through the package's own
// Service, which the web layer passes as the limiter.
func TestWebAuthnServiceLimiter(t *testing.T) {
	var _ SecondFactorLimiter = (*Service)(nil)
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		f := waNewFixture(t, d, waNoLimit{})
		svc, err := NewService(Options{DB: d, Secret: bytes.Repeat([]byte("s"), 32), Now: f.clock.Now})
		if err != nil {
			t.Fatal(err)
		}
		f.w.limiter = svc
		u := f.user("alice")
		key := waNewKey(virtualwebauthn.AuthenticatorOptions{})
		f.register(u, key, false, "Key")
		for range 5 {
			opts, state, err := f.w.BeginLogin(f.ctx, u.ID)
			if err != nil {
				t.Fatal(err)
			}
			s := key.goodSpec()
			s.Flags = 0
			_, err = f.w.FinishLogin(f.ctx, u.ID, state, key.sign(t, opts, s), waClient("192.0.2.1"))
			waIs(t, err, derrors.Invalid, "UP=0")
		}
		if ev := f.events(u.ID, audit.LoginFailure); len(ev) != 5 || ev[4].Add["reason"] != ReasonInvalidWebAuthn {
			t.Errorf("failures = %+v", ev)
		}
		_, err = f.login(u.ID, key)
		waIs(t, err, derrors.RateLimited, "over the limit")
	})
}
