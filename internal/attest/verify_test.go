package attest

import (
	"errors"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/gatehouse-index/gatehouse/internal/attest/attesttest"
)

const (
	fname = "demo-1.0-py3-none-any.whl"
	fsha  = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
)

var ghPub = Publisher{Kind: "github", Repository: "acme/demo", Workflow: "release.yml"}

func newSigstore(t *testing.T) *attesttest.Sigstore {
	t.Helper()
	s, err := attesttest.New()
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func sign(t *testing.T, s *attesttest.Sigstore, st attesttest.Statement, identity string, at time.Time) string {
	t.Helper()
	a, err := s.Sign(st, identity, attesttest.GitHubIssuer, at)
	if err != nil {
		t.Fatal(err)
	}
	return string(a)
}

func good() attesttest.Statement {
	return attesttest.Statement{SubjectName: fname, SubjectSHA256: fsha, PredicateType: PublishPredicate}
}

func verifyField(t *testing.T, trusted *attesttest.Sigstore, field string, pub Publisher) ([]Verified, error) {
	t.Helper()
	v, err := NewVerifier(trusted.Trusted())
	if err != nil {
		t.Fatal(err)
	}
	atts, err := Parse([]byte(field))
	if err != nil {
		return nil, err
	}
	return v.Verify(atts, File{Filename: fname, SHA256: fsha}, pub)
}

func TestVerifyAcceptsAGoodAttestation(t *testing.T) {
	s := newSigstore(t)
	slsa := good()
	slsa.PredicateType = SLSAPredicate
	id := attesttest.GitHubIdentity("acme/demo", "release.yml")
	now := time.Now().Add(5 * time.Minute) // inside the virtual certificate's ten minutes
	field := "[" + sign(t, s, good(), id, now) + "," + sign(t, s, slsa, id, now) + "]"
	got, err := verifyField(t, s, field, ghPub)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 || got[0].Certificate.SubjectAlternativeName != id || got[1].PredicateType != SLSAPredicate {
		t.Fatalf("verified %+v", got)
	}
}

func TestVerifyRefusals(t *testing.T) {
	s := newSigstore(t)
	other := newSigstore(t)
	id := attesttest.GitHubIdentity("acme/demo", "release.yml")
	now := time.Now().Add(5 * time.Minute) // inside the virtual certificate's ten minutes
	wrongDigest := good()
	wrongDigest.SubjectSHA256 = strings.Repeat("f", 64)
	wrongName := good()
	wrongName.SubjectName = "other-1.0.tar.gz"
	slsa := good()
	slsa.PredicateType = SLSAPredicate
	unknown := good()
	unknown.PredicateType = "https://example.com/mine"
	one := sign(t, s, good(), id, now)
	cases := []struct {
		name, field, want string
		pub               Publisher
	}{
		{"wrong subject digest", "[" + sign(t, s, wrongDigest, id, now) + "]", "subject digest (sha256 ffff", ghPub},
		{"wrong subject name", "[" + sign(t, s, wrongName, id, now) + "]", `subject is "other-1.0.tar.gz"`, ghPub},
		{"another publisher's repository", "[" + sign(t, s, good(), attesttest.GitHubIdentity("mallory/demo", "release.yml"), now) + "]",
			"source repository https://github.com/mallory/demo does not match the trusted publisher's https://github.com/acme/demo", ghPub},
		{"another workflow", "[" + sign(t, s, good(), attesttest.GitHubIdentity("acme/demo", "evil.yml"), now) + "]",
			"does not match the trusted publisher's workflow release.yml", ghPub},
		{"expired certificate, no timestamp", "[" + sign(t, s, good(), id, now.Add(20*time.Minute)) + "]", "Sigstore verification failed", ghPub},
		{"untrusted root", "[" + sign(t, other, good(), id, now) + "]", "not enough verified log entries from transparency log", ghPub},
		{"malformed JSON", `[{"version":1,`, "not a JSON array of attestation objects", ghPub},
		{"not an array", `{"version":1}`, "not a JSON array of attestation objects", ghPub},
		{"three attestations", "[" + one + "," + one + "," + one + "]", "3 attestations supplied; at most 2", ghPub},
		{"same predicate twice", "[" + one + "," + one + "]", "more than one attestation with predicate type", ghPub},
		{"unknown predicate", "[" + sign(t, s, unknown, id, now) + "]", `unsupported predicate type "https://example.com/mine"`, ghPub},
		{"empty", `[]`, "empty array", ghPub},
		{"no publisher", "[" + one + "]", "not made by a trusted publisher", Publisher{}},
		{"ActiveState", "[" + one + "]", "not supported for ActiveState publishers", Publisher{Kind: "activestate"}},
		{"a Google publisher, a GitHub certificate", "[" + one + "]", `issued for "https://token.actions.githubusercontent.com", not the publisher's issuer "https://accounts.google.com"`,
			Publisher{Kind: "google", Email: "ci@acme.iam.gserviceaccount.com"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := verifyField(t, s, c.field, c.pub)
			var inv *Invalid
			if !errors.As(err, &inv) {
				t.Fatalf("err = %v, want *Invalid", err)
			}
			if !strings.Contains(err.Error(), c.want) {
				t.Fatalf("err = %q, want it to contain %q", err, c.want)
			}
		})
	}
}

func TestTheEmbeddedRootIsThePublicGoodOne(t *testing.T) {
	tr, err := LoadTrustedRoot("")
	if err != nil {
		t.Fatal(err)
	}
	found := false
	for _, l := range tr.RekorLogs() {
		found = found || l.BaseURL == "https://rekor.sigstore.dev"
	}
	if !found || len(tr.FulcioCertificateAuthorities()) == 0 {
		t.Fatal("the embedded root has no public-good Rekor or Fulcio")
	}
}

// The trusted root as --sigstore-trusted-root reads it verifies what the
// virtual Sigstore signs, as the in-memory one does.
func TestTrustedRootFileVerifies(t *testing.T) {
	s := newSigstore(t)
	path, err := s.WriteTrustedRoot(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	tr, err := LoadTrustedRoot(path)
	if err != nil {
		t.Fatal(err)
	}
	v, err := NewVerifier(tr)
	if err != nil {
		t.Fatal(err)
	}
	atts, err := Parse([]byte("[" + sign(t, s, good(), attesttest.GitHubIdentity("acme/demo", "release.yml"), time.Now().Add(5*time.Minute)) + "]"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := v.Verify(atts, File{Filename: fname, SHA256: fsha}, ghPub); err != nil {
		t.Fatal(err)
	}
	if _, err := LoadTrustedRoot(filepath.Join(t.TempDir(), "missing.json")); err == nil {
		t.Fatal("a missing trusted root loaded")
	}
}
