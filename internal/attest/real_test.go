package attest

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// realDir holds attestations made on GitHub Actions, GitLab CI and
// Google Cloud Build against the public-good Sigstore (see its README).
const realDir = "testdata/pypi-attestations"

func readReal(t *testing.T, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(realDir, name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func realFile(t *testing.T, name string) File {
	t.Helper()
	sum := sha256.Sum256(readReal(t, name))
	return File{Filename: name, SHA256: hex.EncodeToString(sum[:])}
}

// realField is the upload field of the named attestation files.
func realField(t *testing.T, names ...string) []byte {
	t.Helper()
	var raws []json.RawMessage
	for _, n := range names {
		raws = append(raws, readReal(t, n))
	}
	b, _ := json.Marshal(raws)
	return b
}

// The real attestations verify against the embedded public-good root,
// SCTs included, for their own publisher only.
func TestRealAttestations(t *testing.T) {
	tr, err := LoadTrustedRoot("")
	if err != nil {
		t.Fatal(err)
	}
	if len(tr.CTLogs()) == 0 {
		t.Fatal("the public-good root lists no CT log, so SCTs would not be checked")
	}
	v, err := NewVerifier(tr)
	if err != nil {
		t.Fatal(err)
	}
	const sdist = "pypi_attestations-0.0.19.tar.gz"
	github := Publisher{Kind: "github", Repository: "trailofbits/pypi-attestations", Workflow: "release.yml"}
	gitlab := Publisher{Kind: "gitlab", Repository: "facutuesca/gitlab-oidc-project", Workflow: ".gitlab-ci.yml"}
	const sa = "919436158236-compute@developer.gserviceaccount.com"

	// Google Cloud Build: the repository has the provenance, not the file;
	// the file is named by the statement the service account signed.
	var gcb struct {
		AttestationBundles []struct {
			Attestations []json.RawMessage `json:"attestations"`
		} `json:"attestation_bundles"`
	}
	if err := json.Unmarshal(readReal(t, "gcb_attestation_test-0.0.0.tar.gz.provenance"), &gcb); err != nil {
		t.Fatal(err)
	}
	gcbField, _ := json.Marshal(gcb.AttestationBundles[0].Attestations)
	gcbFile := File{Filename: "gcb_attestation_test-0.0.0.tar.gz", SHA256: "461317362419124b6012e855423a9078d6de8aed3e74fa78cc74d669b23dc6cf"}

	other := realFile(t, "rfc8785-0.1.2-py3-none-any.whl")
	other.Filename = sdist // the right name, another file's digest
	for _, c := range []struct {
		name  string
		field []byte
		file  File
		pub   Publisher
		want  string // "" verifies
	}{
		{"GitHub publish and SLSA", realField(t, sdist+".publish.attestation", sdist+".slsa.attestation"), realFile(t, sdist), github, ""},
		{"GitLab", realField(t, "gitlab_oidc_project-0.0.3.tar.gz.publish.attestation"), realFile(t, "gitlab_oidc_project-0.0.3.tar.gz"), gitlab, ""},
		{"Google Cloud Build", gcbField, gcbFile, Publisher{Kind: "google", Email: sa}, ""},

		{"GitHub, another workflow", realField(t, sdist+".publish.attestation"), realFile(t, sdist),
			Publisher{Kind: "github", Repository: "trailofbits/pypi-attestations", Workflow: "ci.yml"}, "does not match the trusted publisher's workflow ci.yml"},
		{"GitHub, another repository", realField(t, sdist+".publish.attestation"), realFile(t, sdist),
			Publisher{Kind: "github", Repository: "mallory/pypi-attestations", Workflow: "release.yml"}, "does not match the trusted publisher's https://github.com/mallory/pypi-attestations"},
		{"GitHub attestation, GitLab publisher", realField(t, sdist+".publish.attestation"), realFile(t, sdist), gitlab, `not the publisher's issuer "https://gitlab.com"`},
		{"Google, another service account", gcbField, gcbFile, Publisher{Kind: "google", Email: "ci@evil.iam.gserviceaccount.com"}, "not the trusted publisher's service account"},
		{"another file's digest", realField(t, sdist+".publish.attestation"), other, github, "subject digest"},
		// Signed on Sigstore's staging instance, whose log the public-good
		// root does not list.
		{"another Sigstore's log", realField(t, "rfc8785-0.1.2-py3-none-any.whl.publish.attestation"), realFile(t, "rfc8785-0.1.2-py3-none-any.whl"),
			Publisher{Kind: "github", Repository: "trailofbits/rfc8785.py", Workflow: "release.yml"}, "not enough verified log entries"},
		// Newer pypi-attestations add RFC 3161 timestamps: the field is
		// read, the log's integrated time still dates the certificate, and
		// what is left to refuse is the signer (a person).
		{"with a signed timestamp", realField(t, sdist+".publish.attestation.with_timestamp"), realFile(t, sdist), github, `issued for "https://github.com/login/oauth"`},
	} {
		t.Run(c.name, func(t *testing.T) {
			atts, err := Parse(c.field)
			if err != nil {
				t.Fatal(err)
			}
			got, err := v.Verify(atts, c.file, c.pub)
			if c.want == "" {
				if err != nil || len(got) != len(atts) {
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
