package attest

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/gatehouse-index/gatehouse/internal/attest/attesttest"
)

// Google and custom-issuer publishers: the certificate's issuer and the
// identity Fulcio certifies (the SAN) must be the publisher's.
func TestVerifyOtherProviders(t *testing.T) {
	s := newSigstore(t)
	now := time.Now().Add(5 * time.Minute) // inside the virtual certificate's ten minutes
	signAs := func(identity, issuer string) string {
		t.Helper()
		a, err := s.Sign(good(), identity, issuer, now)
		if err != nil {
			t.Fatal(err)
		}
		return "[" + string(a) + "]"
	}
	const sa = "release@acme-ci.iam.gserviceaccount.com"
	google := Publisher{Kind: "google", Email: sa}
	custom := Publisher{Kind: "custom", Issuer: "https://ci.acme.test", IssuerName: "acme-ci", Subject: "project:demo:ref:main"}
	for _, c := range []struct {
		name, field string
		pub         Publisher
		want        string // "" accepted
	}{
		{"Google service account", signAs(sa, "https://accounts.google.com"), google, ""},
		{"Google, another service account", signAs("mallory@evil.iam.gserviceaccount.com", "https://accounts.google.com"), google,
			"issued to mallory@evil.iam.gserviceaccount.com, not the trusted publisher's service account " + sa},
		{"Google email from another issuer", signAs(sa, "https://token.actions.githubusercontent.com"), google, "not the publisher's issuer"},
		{"custom issuer, its subject", signAs("project:demo:ref:main", "https://ci.acme.test"), custom, ""},
		{"custom issuer, another subject", signAs("project:evil:ref:main", "https://ci.acme.test"), custom,
			"issued to project:evil:ref:main, not the trusted publisher's subject project:demo:ref:main"},
		{"custom issuer, another issuer", signAs("project:demo:ref:main", "https://ci.evil.test"), custom, `not the publisher's issuer "https://ci.acme.test"`},
		{"custom issuer that does not pin sub", signAs("project:demo:ref:main", "https://ci.acme.test"),
			Publisher{Kind: "custom", Issuer: "https://ci.acme.test", IssuerName: "acme-ci"}, "the acme-ci issuer's publishers do not pin the token's sub claim"},
	} {
		t.Run(c.name, func(t *testing.T) {
			got, err := verifyField(t, s, c.field, c.pub)
			if c.want == "" {
				if err != nil || len(got) != 1 {
					t.Fatalf("refused: %v", err)
				}
				return
			}
			var inv *Invalid
			if !errors.As(err, &inv) || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("err = %v, want *Invalid containing %q", err, c.want)
			}
		})
	}
}

// A root that lists a CT log demands an SCT in the certificate, as the
// public-good one does; the virtual CA's certificates have none.
func TestVerifyWantsSCTWhenTheRootHasCTLogs(t *testing.T) {
	s := newSigstore(t)
	v, err := NewVerifier(s.TrustedWithCT())
	if err != nil {
		t.Fatal(err)
	}
	atts, err := Parse([]byte("[" + sign(t, s, good(), attesttest.GitHubIdentity("acme/demo", "release.yml"), time.Now().Add(5*time.Minute)) + "]"))
	if err != nil {
		t.Fatal(err)
	}
	_, err = v.Verify(atts, File{Filename: fname, SHA256: fsha}, ghPub)
	if err == nil || !strings.Contains(err.Error(), "SCT") {
		t.Fatalf("an attestation without SCT against a root with CT logs: %v", err)
	}
}
