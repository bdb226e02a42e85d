package token

import (
	"encoding/base64"
	"errors"
	"net/http/httptest"
	"testing"
)

func TestFromRequest(t *testing.T) {
	basic := func(s string) string { return "Basic " + base64.StdEncoding.EncodeToString([]byte(s)) }
	tests := []struct {
		name   string
		header string // Authorization; "" means none
		raw    string
		ok     bool
		err    error
	}{
		{"none", "", "", false, nil},
		{"basic token", basic("__token__:pypi-abc"), "pypi-abc", true, nil},
		{"basic token whitespace", basic("__token__: pypi-abc\n"), "pypi-abc", true, nil},
		{"basic colon in token", basic("__token__:pypi-a:b"), "pypi-a:b", true, nil},
		{"basic scheme case", "basic " + base64.StdEncoding.EncodeToString([]byte("__token__:pypi-abc")), "pypi-abc", true, nil},
		{"basic empty token", basic("__token__:  "), "", false, nil},
		{"basic password", basic("alice:hunter2"), "", false, ErrPasswordAuth},
		{"basic empty user", basic(":pypi-abc"), "", false, ErrPasswordAuth},
		{"basic token username case", basic("__TOKEN__:pypi-abc"), "", false, ErrPasswordAuth},
		{"basic no colon", basic("__token__"), "", false, nil},
		{"basic bad base64", "Basic !!!", "", false, nil},
		{"bearer", "Bearer pypi-abc", "pypi-abc", true, nil},
		{"bearer spaces", "Bearer   pypi-abc  ", "pypi-abc", true, nil},
		{"token", "Token pypi-abc", "pypi-abc", true, nil},
		{"token lower", "token pypi-abc", "pypi-abc", true, nil},
		{"bearer empty", "Bearer ", "", false, nil},
		{"scheme only", "Bearer", "", false, nil},
		{"other scheme", "Digest abc", "", false, nil},
	}
	for _, tt := range tests {
		r := httptest.NewRequest("POST", "/legacy/", nil)
		if tt.header != "" {
			r.Header.Set("Authorization", tt.header)
		}
		raw, ok, err := FromRequest(r)
		if raw != tt.raw || ok != tt.ok || !errors.Is(err, tt.err) || (err == nil) != (tt.err == nil) {
			t.Errorf("%s: FromRequest = %q, %v, %v; want %q, %v, %v", tt.name, raw, ok, err, tt.raw, tt.ok, tt.err)
		}
	}
}
