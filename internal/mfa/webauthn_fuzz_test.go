package mfa

import (
	"errors"
	"testing"

	"github.com/descope/virtualwebauthn"

	"github.com/gatehouse-index/gatehouse/internal/db/dbtest"
	"github.com/gatehouse-index/gatehouse/internal/derrors"
)

// FuzzFinishLogin feeds arbitrary bytes as the browser's response: whatever
// they are, FinishLogin must not panic and must answer derrors.Invalid (a
// 400), never an internal error. Each input answers a fresh challenge, so
// even a mutation of the valid seed that keeps its meaning is refused.
func FuzzFinishLogin(f *testing.F) {
	fx := waNewFixture(f, dbtest.NewSQLite(f), waNoLimit{})
	u := fx.user("alice")
	key := waNewKey(virtualwebauthn.AuthenticatorOptions{})
	fx.register(u, key, false, "Key")
	opts, _, err := fx.w.BeginLogin(fx.ctx, u.ID)
	if err != nil {
		f.Fatal(err)
	}
	good := key.assert(f, opts)
	f.Add(good)
	for _, field := range []string{"clientDataJSON", "authenticatorData", "signature"} {
		f.Add(waEditResponse(f, good, field, func(b []byte) []byte { return b[:len(b)/2] }))
		f.Add(waEditResponse(f, good, field, func(b []byte) []byte { b[len(b)-1] ^= 0xff; return b }))
	}
	for _, s := range []string{
		"", "{}", "null", "[]", `"x"`, "{", `{"id":"AA","rawId":"AA","type":"public-key"}`,
		`{"id":"AA","rawId":"AA","type":"public-key","response":{"clientDataJSON":"e30","authenticatorData":"","signature":""}}`,
		`{"id":"AA","rawId":"AA","type":"public-key","response":{"clientDataJSON":"e30","authenticatorData":"` +
			"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAEE" + `","signature":"MAA"}}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, resp []byte) {
		_, state, err := fx.w.BeginLogin(fx.ctx, u.ID)
		if err != nil {
			t.Fatal(err)
		}
		_, err = fx.w.FinishLogin(fx.ctx, u.ID, state, resp, waClient("192.0.2.1"))
		if err == nil || !errors.Is(err, derrors.Invalid) {
			t.Fatalf("FinishLogin(%q) = %v, want a derrors.Invalid error", resp, err)
		}
	})
}
