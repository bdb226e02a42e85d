package mfa

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/sha256"
	"crypto/x509"
	"encoding/asn1"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"errors"
	"math/big"
	"strings"
	"testing"
	"time"

	"github.com/descope/virtualwebauthn"
	"github.com/go-webauthn/webauthn/protocol"

	"github.com/gatehouse-index/gatehouse/internal/db/dbtest"
	"github.com/gatehouse-index/gatehouse/internal/derrors"
)

// The login fuzz targets answer one real-looking login state: alice's
// BeginLogin state for her one security key, whose challenge is set to a
// fixed value, so that a seed signed for that challenge gets past the
// challenge check into the rest of §7.2 (RP ID hash, flags, signature,
// extensions, backup flags) and into webAuthnComplete (the challenge
// ledger, the signature counter and its compare-and-swap). With a fresh
// random challenge per input, as before, everything after the challenge
// comparison was out of reach.
//
// Every input starts from the same database: the ledger emptied and the
// key's stored counter put back to waFuzzStored, so inputs do not depend on
// each other and a failure reproduces.
//
// The oracle does not trust go-webauthn: a login may succeed only for a
// response that names alice's key, has client data of type webauthn.get
// for this challenge from the exact origin (not cross-origin), the RP ID's
// hash, the user-present flag, no backup flags (the key has none), a
// counter above the stored one, and a valid ECDSA signature by the key over
// authenticatorData || SHA-256(clientDataJSON). A counter that did not
// advance on an otherwise valid response is the clone refusal (403), with
// its email. Anything else is a 400 that changes nothing.

// waFuzzStored is the key's stored signature counter, so both a counter
// that advanced and one that went back can be tried.
const waFuzzStored = 5

// waFuzzChallenge is the login state's challenge, as go-webauthn stores it
// (base64url).
var waFuzzChallenge = base64.RawURLEncoding.EncodeToString([]byte("gatehouse fuzz challenge, 32 by"))

type waFuzz struct {
	fx       *waFixture
	userID   int64
	key      *waKey
	pub      *ecdsa.PublicKey
	credID   []byte
	handle   []byte
	state    []byte // the login state, with waFuzzChallenge
	options  []byte // BeginLogin's options, with waFuzzChallenge
	credRow  int64
	credJSON string // credential_json as registered
	// dirty is set once an input has changed the database (a login, or a
	// clone refusal); a refused input has been checked to change nothing,
	// so the next one starts from the same state without a reset.
	dirty bool
}

func waNewFuzz(f testing.TB) *waFuzz {
	fx := waNewFixture(f, dbtest.NewSQLite(f), waNoLimit{})
	u := fx.user("alice")
	key := waNewKey(virtualwebauthn.AuthenticatorOptions{})
	fx.register(u, key, false, "Key")
	z := &waFuzz{fx: fx, userID: u.ID, key: key, credID: key.cred.ID, dirty: true}
	priv, err := x509.ParsePKCS8PrivateKey(key.cred.Key.Data)
	if err != nil {
		f.Fatal(err)
	}
	z.pub = &priv.(*ecdsa.PrivateKey).PublicKey
	if err := fx.d.QueryRowContext(fx.ctx, `SELECT id, credential_json FROM webauthn_credentials WHERE user_id = $1`, u.ID).
		Scan(&z.credRow, &z.credJSON); err != nil {
		f.Fatal(err)
	}
	key.cred.Counter = waFuzzStored

	opts, state, err := fx.w.BeginLogin(fx.ctx, u.ID)
	if err != nil {
		f.Fatal(err)
	}
	if z.handle, err = fx.w.userHandle(fx.ctx, u.ID, false); err != nil || len(z.handle) == 0 {
		f.Fatalf("user handle %x: %v", z.handle, err)
	}
	var st webAuthnState
	if err := json.Unmarshal(state, &st); err != nil {
		f.Fatal(err)
	}
	st.Session.Challenge = waFuzzChallenge
	// go-webauthn also checks the wall clock; a long fuzzing run must not
	// outlive the state. The injected clock, which Gatehouse checks, stands
	// still.
	st.Session.Expires = time.Now().Add(24 * time.Hour)
	if z.state, err = json.Marshal(st); err != nil {
		f.Fatal(err)
	}
	var o map[string]any
	if err := json.Unmarshal(opts, &o); err != nil {
		f.Fatal(err)
	}
	o["publicKey"].(map[string]any)["challenge"] = waFuzzChallenge
	if z.options, err = json.Marshal(o); err != nil {
		f.Fatal(err)
	}
	return z
}

// reset puts the database back to the state every input starts from.
func (z *waFuzz) reset(t *testing.T) {
	if !z.dirty {
		return
	}
	z.dirty = false
	for _, q := range []struct {
		sql  string
		args []any
	}{
		{`DELETE FROM one_time_tokens WHERE purpose = $1`, []any{webAuthnLedgerPurpose}},
		{`UPDATE webauthn_credentials SET sign_count = $1, credential_json = $2, last_used_at = NULL WHERE id = $3`,
			[]any{waFuzzStored, z.credJSON, z.credRow}},
		{`DELETE FROM outbox`, nil},
		{`DELETE FROM events`, nil},
	} {
		if _, err := z.fx.d.ExecContext(context.Background(), q.sql, q.args...); err != nil {
			t.Fatalf("%s: %v", q.sql, err)
		}
	}
}

// waFuzzAfter is what a login may change.
type waFuzzAfter struct {
	signCount int64
	ledger    int
	emails    int
}

func (z *waFuzz) after(t *testing.T) waFuzzAfter {
	var a waFuzzAfter
	ctx := context.Background()
	if err := z.fx.d.QueryRowContext(ctx, `SELECT sign_count FROM webauthn_credentials WHERE id = $1`, z.credRow).Scan(&a.signCount); err != nil {
		t.Fatal(err)
	}
	if err := z.fx.d.QueryRowContext(ctx, `SELECT count(*) FROM one_time_tokens WHERE purpose = $1`, webAuthnLedgerPurpose).Scan(&a.ledger); err != nil {
		t.Fatal(err)
	}
	if err := z.fx.d.QueryRowContext(ctx, `SELECT count(*) FROM outbox`).Scan(&a.emails); err != nil {
		t.Fatal(err)
	}
	return a
}

// verdict is the oracle's reading of a response: whether everything but
// the counter makes it a valid login (and if not, why), and its counter.
func (z *waFuzz) verdict(resp []byte) (valid bool, why string, counter uint32) {
	parsed, err := protocol.ParseCredentialRequestResponseBytes(resp)
	if err != nil {
		return false, "does not parse", 0
	}
	raw := parsed.Raw.AssertionResponse
	if string(parsed.RawID) != string(z.credID) {
		return false, "not alice's key", 0
	}
	var cd struct {
		Type, Challenge, Origin string
		CrossOrigin             bool
	}
	if err := json.Unmarshal(raw.ClientDataJSON, &cd); err != nil {
		return false, "client data is not JSON", 0
	}
	ad := []byte(raw.AuthenticatorData)
	rpHash := sha256.Sum256([]byte(waRPID))
	switch {
	case cd.Type != "webauthn.get":
		return false, "type " + cd.Type, 0
	case cd.Challenge != waFuzzChallenge:
		return false, "another challenge", 0
	case cd.Origin != waOrigin:
		return false, "origin " + cd.Origin, 0
	case cd.CrossOrigin:
		return false, "cross-origin", 0
	case len(ad) < 37:
		return false, "short authenticator data", 0
	case string(ad[:32]) != string(rpHash[:]):
		return false, "another RP ID", 0
	case ad[32]&0x01 == 0:
		return false, "user not present", 0
	case ad[32]&(0x08|0x10) != 0:
		return false, "backup flags the key never had", 0
	case len(parsed.Response.UserHandle) > 0 && string(parsed.Response.UserHandle) != string(z.handle):
		return false, "another user handle", 0
	}
	cdHash := sha256.Sum256(raw.ClientDataJSON)
	digest := sha256.Sum256(append(append([]byte{}, ad...), cdHash[:]...))
	if !ecdsa.VerifyASN1(z.pub, digest[:], raw.Signature) {
		return false, "bad signature", 0
	}
	return true, "", binary.BigEndian.Uint32(ad[33:37])
}

// finish answers the login state with resp from a fresh database and checks
// the outcome against the oracle. It returns "ok", "cloned" or "invalid".
func (z *waFuzz) finish(t *testing.T, resp []byte) string {
	z.reset(t)
	_, err := z.fx.w.FinishLogin(context.Background(), z.userID, z.state, resp, waClient("192.0.2.1"))
	a := z.after(t)
	z.dirty = a != waFuzzAfter{signCount: waFuzzStored}
	valid, why, counter := z.verdict(resp)
	unchanged := a.signCount == waFuzzStored && a.ledger == 0
	switch {
	case err == nil:
		if !valid {
			t.Fatalf("FinishLogin accepted a response whose %s:\n%s", why, resp)
		}
		if counter <= waFuzzStored {
			t.Fatalf("FinishLogin accepted a counter of %d, stored %d:\n%s", counter, waFuzzStored, resp)
		}
		if a.signCount != int64(counter) || a.ledger != 1 {
			t.Fatalf("after a login: counter %d (want %d), %d used challenges (want 1)", a.signCount, counter, a.ledger)
		}
		return "ok"
	case errors.Is(err, derrors.Forbidden):
		if msg, _ := derrors.Message(err); msg != webAuthnMsgCloned || !valid || counter > waFuzzStored {
			t.Fatalf("FinishLogin = %v (valid %v %s, counter %d), want the clone refusal only for a counter that did not advance:\n%s",
				err, valid, why, counter, resp)
		}
		if !unchanged || a.emails != 1 {
			t.Fatalf("after the clone refusal: %+v, want nothing changed and one email", a)
		}
		return "cloned"
	case errors.Is(err, derrors.Invalid):
		if msg, _ := derrors.Message(err); msg != webAuthnMsgInvalid {
			t.Fatalf("FinishLogin = %v, want the message %q", err, webAuthnMsgInvalid)
		}
		if !unchanged || a.emails != 0 {
			t.Fatalf("a refused response changed the database: %+v\n%s", a, resp)
		}
		return "invalid"
	default:
		t.Fatalf("FinishLogin(%q) = %v, want success, a 400 or the clone refusal", resp, err)
		return ""
	}
}

// waFuzzSeed is a seed and what it must come to before any fuzzing.
type waFuzzSeed struct {
	name, want string
	resp       []byte
}

// signRaw signs authData || SHA-256(clientData) with the key and wraps it
// as a browser's response.
func (z *waFuzz) signRaw(t testing.TB, clientData, authData []byte, userHandle []byte) []byte {
	cdHash := sha256.Sum256(clientData)
	digest := sha256.Sum256(append(append([]byte{}, authData...), cdHash[:]...))
	sig, err := z.key.cred.Key.Sign(digest[:])
	if err != nil {
		t.Fatal(err)
	}
	return waAssertionJSON(z.credID, clientData, authData, sig, userHandle)
}

// waAuthData is authenticator data for rpID with flags, a counter and
// anything after them (attested credential data, extensions).
func waAuthData(rpID string, flags byte, counter uint32, rest ...byte) []byte {
	h := sha256.Sum256([]byte(rpID))
	ad := append(h[:], flags)
	ad = binary.BigEndian.AppendUint32(ad, counter)
	return append(ad, rest...)
}

// editJSON changes the response's outer JSON.
func editJSON(t testing.TB, resp []byte, edit func(m map[string]any)) []byte {
	var m map[string]any
	if err := json.Unmarshal(resp, &m); err != nil {
		t.Fatal(err)
	}
	edit(m)
	out, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// highS turns a DER ECDSA signature (r, s) into (r, n-s): as valid, and not
// the same bytes.
func highS(t testing.TB, der []byte) []byte {
	var sig struct{ R, S *big.Int }
	if _, err := asn1.Unmarshal(der, &sig); err != nil {
		t.Fatal(err)
	}
	sig.S = new(big.Int).Sub(elliptic.P256().Params().N, sig.S)
	out, err := asn1.Marshal(sig)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func (z *waFuzz) seeds(t testing.TB) []waFuzzSeed {
	const (
		up, uv, be, bs, at, ed = 0x01, 0x04, 0x08, 0x10, 0x40, 0x80
	)
	cd := func(fields string) []byte {
		return []byte(`{"type":"webauthn.get","challenge":"` + waFuzzChallenge + `","origin":"` + waOrigin + `"` + fields + `}`)
	}
	good := cd(`,"crossOrigin":false`)
	next := uint32(waFuzzStored + 1)
	honest := z.signRaw(t, good, waAuthData(waRPID, up|uv, next), nil)
	var seeds []waFuzzSeed
	add := func(name, want string, resp []byte) { seeds = append(seeds, waFuzzSeed{name, want, resp}) }

	// As a browser sends it: virtualwebauthn answering the options.
	z.key.cred.Counter = waFuzzStored
	add("browser", "ok", z.key.assert(t, z.options))
	add("honest", "ok", honest)
	add("user verification not asked for, not done", "ok", z.signRaw(t, good, waAuthData(waRPID, up, next), nil))
	add("user handle", "ok", z.signRaw(t, good, waAuthData(waRPID, up|uv, next), z.handle))
	add("highest counter", "ok", z.signRaw(t, good, waAuthData(waRPID, up, 0xffffffff), nil))
	add("client data with unknown fields and escapes", "ok", z.signRaw(t,
		[]byte(`{"type":"webauthn.get","challenge":"`+waFuzzChallenge+`","origin":"https:\/\/index.example","tokenBinding":{"status":"supported"},"other_keys_can_be_added_here":"do not compare clientDataJSON against a template. See https://goo.gl/yabPex"}`),
		waAuthData(waRPID, up, next), nil))
	add("client extension results and attachment", "ok", editJSON(t, honest, func(m map[string]any) {
		m["clientExtensionResults"] = map[string]any{}
		m["authenticatorAttachment"] = "cross-platform"
	}))
	// An authenticator extension output (CBOR {"credProtect": 1}): the
	// extensions are the authenticator's to report, and an RP ignores what
	// it did not ask for.
	add("authenticator extension output", "ok", z.signRaw(t, good,
		waAuthData(waRPID, up|ed, next, 0xa1, 0x6b, 'c', 'r', 'e', 'd', 'P', 'r', 'o', 't', 'e', 'c', 't', 0x01), nil))
	add("high-S signature", "ok", editJSON(t, honest, func(m map[string]any) {
		r := m["response"].(map[string]any)
		sig, _ := base64.RawURLEncoding.DecodeString(r["signature"].(string))
		r["signature"] = base64.RawURLEncoding.EncodeToString(highS(t, sig))
	}))

	// The counter did not advance.
	add("counter replayed", "cloned", z.signRaw(t, good, waAuthData(waRPID, up, waFuzzStored), nil))
	add("counter back to 0", "cloned", z.signRaw(t, good, waAuthData(waRPID, up, 0), nil))

	// Signed, and still wrong.
	for _, c := range []struct{ name, cd string }{
		{"create type", `{"type":"webauthn.create","challenge":"` + waFuzzChallenge + `","origin":"` + waOrigin + `"}`},
		{"other challenge", `{"type":"webauthn.get","challenge":"AAAA","origin":"` + waOrigin + `"}`},
		{"origin with port", `{"type":"webauthn.get","challenge":"` + waFuzzChallenge + `","origin":"https://index.example:443"}`},
		{"origin with path", `{"type":"webauthn.get","challenge":"` + waFuzzChallenge + `","origin":"https://index.example/"}`},
		{"http origin", `{"type":"webauthn.get","challenge":"` + waFuzzChallenge + `","origin":"http://index.example"}`},
		{"cross origin", `{"type":"webauthn.get","challenge":"` + waFuzzChallenge + `","origin":"` + waOrigin + `","crossOrigin":true,"topOrigin":"https://evil.test"}`},
		{"top origin alone", `{"type":"webauthn.get","challenge":"` + waFuzzChallenge + `","origin":"` + waOrigin + `","topOrigin":"https://evil.test"}`},
		{"origin twice", `{"type":"webauthn.get","challenge":"` + waFuzzChallenge + `","origin":"` + waOrigin + `","origin":"https://evil.test"}`},
		{"not JSON", `{"type":"webauthn.get",`},
	} {
		add(c.name, "invalid", z.signRaw(t, []byte(c.cd), waAuthData(waRPID, up, next), nil))
	}
	for _, c := range []struct {
		name string
		ad   []byte
	}{
		{"other RP ID", waAuthData("evil.test", up, next)},
		{"user not present", waAuthData(waRPID, uv, next)},
		{"backup eligible", waAuthData(waRPID, up|be, next)},
		{"backup state without eligible", waAuthData(waRPID, up|bs, next)},
		{"extensions flag, no extensions", waAuthData(waRPID, up|ed, next)},
		{"attested credential flag, no data", waAuthData(waRPID, up|at, next)},
		{"trailing bytes", waAuthData(waRPID, up, next, 0, 0, 0)},
		{"short", waAuthData(waRPID, up, next)[:36]},
	} {
		add(c.name, "invalid", z.signRaw(t, good, c.ad, nil))
	}
	add("other user handle", "invalid", z.signRaw(t, good, waAuthData(waRPID, up, next), []byte("someone else")))
	add("appid extension claimed", "invalid", editJSON(t, honest, func(m map[string]any) {
		m["clientExtensionResults"] = map[string]any{"appid": true}
	}))
	add("signature over other data", "invalid", editJSON(t, honest, func(m map[string]any) {
		sig := z.signRaw(t, good, waAuthData(waRPID, up, next+1), nil)
		var other map[string]any
		json.Unmarshal(sig, &other)
		m["response"].(map[string]any)["signature"] = other["response"].(map[string]any)["signature"]
	}))
	add("raw r||s signature", "invalid", editJSON(t, honest, func(m map[string]any) {
		r := m["response"].(map[string]any)
		der, _ := base64.RawURLEncoding.DecodeString(r["signature"].(string))
		var sig struct{ R, S *big.Int }
		asn1.Unmarshal(der, &sig)
		r["signature"] = base64.RawURLEncoding.EncodeToString(append(sig.R.FillBytes(make([]byte, 32)), sig.S.FillBytes(make([]byte, 32))...))
	}))
	add("other key id", "invalid", editJSON(t, honest, func(m map[string]any) {
		m["id"], m["rawId"] = "AAAA", "AAAA"
	}))
	add("id and rawId differ", "invalid", editJSON(t, honest, func(m map[string]any) { m["id"] = "AAAA" }))
	add("attestation type", "invalid", editJSON(t, honest, func(m map[string]any) { m["type"] = "public-key-x" }))
	for _, field := range []string{"clientDataJSON", "authenticatorData", "signature"} {
		add("half "+field, "invalid", waEditResponse(t, honest, field, func(b []byte) []byte { return b[:len(b)/2] }))
		add("flipped "+field, "invalid", waEditResponse(t, honest, field, func(b []byte) []byte { b[len(b)-1] ^= 0xff; return b }))
	}
	for _, s := range []string{
		"", "{}", "null", "[]", `"x"`, "{", `{"id":"AA","rawId":"AA","type":"public-key"}`,
		`{"id":"AA","rawId":"AA","type":"public-key","response":{"clientDataJSON":"e30","authenticatorData":"","signature":""}}`,
		`{"id":"AA","rawId":"AA","type":"public-key","response":{"clientDataJSON":"e30","authenticatorData":"` +
			"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAEE" + `","signature":"MAA"}}`,
		strings.Repeat("[", 10000),
	} {
		add("junk "+s[:min(len(s), 10)], "invalid", []byte(s))
	}
	return seeds
}

// FuzzFinishLogin feeds arbitrary bytes as the browser's response to
// alice's login state (see the top of this file): whatever they are,
// FinishLogin must not panic, and must succeed exactly for a valid, signed,
// advancing response, refuse a non-advancing counter as a clone, and
// answer everything else with a 400 that changes nothing.
func FuzzFinishLogin(f *testing.F) {
	z := waNewFuzz(f)
	for _, s := range z.seeds(f) {
		f.Add(s.resp)
	}
	f.Fuzz(func(t *testing.T, resp []byte) {
		z.finish(t, resp)
	})
}

// FuzzFinishLoginSigned fuzzes what an authenticator signs: the client data
// and the authenticator data, which the harness signs with alice's key and
// wraps as a browser would. A signature cannot be forged, so without this
// a mutation never gets past the signature check; here every check before
// and after it sees arbitrary signed input, and the oracle decides.
func FuzzFinishLoginSigned(f *testing.F) {
	z := waNewFuzz(f)
	for _, s := range z.seeds(f) {
		parsed, err := protocol.ParseCredentialRequestResponseBytes(s.resp)
		if err != nil || string(parsed.RawID) != string(z.credID) {
			continue
		}
		f.Add([]byte(parsed.Raw.AssertionResponse.ClientDataJSON), []byte(parsed.Raw.AssertionResponse.AuthenticatorData))
	}
	f.Fuzz(func(t *testing.T, clientData, authData []byte) {
		z.finish(t, z.signRaw(t, clientData, authData, nil))
	})
}

// TestFinishLoginSeeds: every seed of the login fuzz targets comes to what
// it was made for, so the corpus keeps reaching the code it was written
// for, and the oracle agrees with FinishLogin on each.
func TestFinishLoginSeeds(t *testing.T) {
	z := waNewFuzz(t)
	for _, s := range z.seeds(t) {
		t.Run(s.name, func(t *testing.T) {
			if got := z.finish(t, s.resp); got != s.want {
				t.Errorf("got %s, want %s:\n%s", got, s.want, s.resp)
			}
		})
	}
}
