package token

import (
	"testing"
	"time"
)

// FuzzAuthenticateParse feeds arbitrary strings to the part of Authenticate
// that runs before any database access: decoding the token and parsing its
// caveats. It must never panic, and whatever parses must re-encode to a
// token that parses to the same macaroon.
func FuzzAuthenticateParse(f *testing.F) {
	key := rootKey(testSecret, "0b7a2d0c-5f7e-4c1e-9d55-8a3f1e2b4c6d")
	for _, caveats := range [][]string{
		nil,
		{`[3,"1"]`},
		{`[1,["a","b"]]`, `[2,["1","2"]]`, `[0,1767225600,1735689600]`},
		{`{"version":1,"permissions":"user"}`, `{"exp":2,"nbf":1}`},
	} {
		raw, err := mint(key, "0b7a2d0c-5f7e-4c1e-9d55-8a3f1e2b4c6d", "localhost:8080", caveats)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(raw)
	}
	for _, s := range []string{"", "pypi-", "pypi-AgE", "pypi-AgEA", "pypi-====", "pypi-\n", "token", "pypi-AAAA"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		m, err := parse(raw)
		if err != nil {
			return
		}
		for _, c := range m.Caveats() {
			parseCaveat(c.Id)
		}
		again, err := encode(m)
		if err != nil {
			t.Fatalf("encode after parse: %v", err)
		}
		m2, err := parse(again)
		if err != nil {
			t.Fatalf("re-encoded token does not parse: %v", err)
		}
		if !m.Equal(m2) {
			t.Fatal("re-encoded token differs")
		}
	})
}

// FuzzParseCaveat checks that caveat parsing never panics and that a
// parsed caveat's checks run.
func FuzzParseCaveat(f *testing.F) {
	for _, s := range []string{
		`[0,1,2]`, `[1,["a"]]`, `[2,["1"]]`, `[3,"1"]`, `[4,"x"]`, `[]`, `{}`,
		`{"version":1,"permissions":"user"}`, `{"version":1,"permissions":{"projects":["a"]}}`,
		`{"exp":1,"nbf":0}`, `{"project_ids":["1"]}`, `[0,1e400,0]`, `[[[[[[`, `"\ud800"`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		c, err := parseCaveat(data)
		if err != nil {
			if err.Error() == "" {
				t.Fatal("empty failure reason")
			}
			return
		}
		c.checkRequest(1, 0, time.Unix(1767225600, 0))
		c.checkProject("a", 1)
	})
}
