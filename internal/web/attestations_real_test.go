package web

import (
	"context"
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/gatehouse-index/gatehouse/internal/attest"
	"github.com/gatehouse-index/gatehouse/internal/attest/attesttest"
	"github.com/gatehouse-index/gatehouse/internal/db"
	"github.com/gatehouse-index/gatehouse/internal/db/dbtest"
	"github.com/gatehouse-index/gatehouse/internal/trustedpub"
	"github.com/gatehouse-index/gatehouse/internal/trustedpub/oidctest"
)

// realAssets are attestations made on GitHub Actions against the
// public-good Sigstore, with the sdist they attest (internal/attest's
// testdata README says where they come from).
const realAssets = "../attest/testdata/pypi-attestations"

func readAsset(t *testing.T, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(realAssets, name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// The official action's real output: pypi-attestations 0.0.19's sdist
// with the publish and SLSA attestations its release workflow made on
// GitHub Actions, uploaded through a trusted publisher for that workflow
// and verified by the embedded public-good root (SCTs included). The
// project page then links the commit the certificate names.
func TestUploadRealAttestations(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		ctx := context.Background()
		tr, err := attest.LoadTrustedRoot("")
		if err != nil {
			t.Fatal(err)
		}
		v, err := attest.NewVerifier(tr)
		if err != nil {
			t.Fatal(err)
		}
		blobDir := t.TempDir()
		tf := newTPFixtureWith(t, d, fixtureConfig{attest: v, blobDir: blobDir})
		tf.mustUpload(t, wheel(t, meta{Name: "pypi-attestations", Version: "0.0.1"}))
		proj, err := tf.projects.Get(ctx, "pypi-attestations")
		if err != nil {
			t.Fatal(err)
		}
		if _, err := tf.tp.AddToProject(ctx, trustedpub.Actor{UserID: tf.alice, Username: "alice"}, proj,
			trustedpub.Input{Provider: trustedpub.KindGitHub, Fields: map[string]string{"owner": "trailofbits", "owner_id": "2314423",
				"repository": "pypi-attestations", "workflow": "release.yml"}}); err != nil {
			t.Fatal(err)
		}
		m, refusal, err := tf.tp.Exchange(ctx, tf.github.Sign(oidctest.GitHub("gatehouse.test", "trailofbits/pypi-attestations", "2314423", "release.yml", tf.clock.Now())), tf.client())
		if err != nil || refusal != nil {
			t.Fatalf("exchange: %v %v", err, refusal)
		}
		// The stand-in issuer cannot live at GitHub's URL; the publisher is
		// set to GitHub's real issuer, as it is in production, so the
		// certificate's issuer is compared with what Fulcio certified.
		if _, err := d.Exec(`UPDATE trusted_publishers SET issuer_url = 'https://token.actions.githubusercontent.com'`); err != nil {
			t.Fatal(err)
		}

		const filename = "pypi_attestations-0.0.19.tar.gz"
		sd := &dist{Meta: meta{Name: "pypi-attestations", Version: "0.0.19"}, Filename: filename, Filetype: "sdist", PyVersion: "source",
			Content: readAsset(t, filename)}
		field := func(names ...string) string {
			var raws []json.RawMessage
			for _, n := range names {
				raws = append(raws, readAsset(t, n))
			}
			return mustJSON(raws)
		}

		// Real, but about another file, or signed on GitLab: refused, and
		// nothing is stored.
		for _, c := range []struct{ name, field, want string }{
			{"GitLab's attestation of another file", field("gitlab_oidc_project-0.0.3.tar.gz.publish.attestation"), "the statement's subject is \"gitlab_oidc_project-0.0.3.tar.gz\""},
			{"a person's signature with a timestamp", field(filename + ".publish.attestation.with_timestamp"), `the certificate was issued for "https://github.com/login/oauth"`},
		} {
			before := attestState(t, tf.instance, blobDir)
			res := tf.tpIn.uploadAs(t, m.Token, withField(sd.form(), "attestations", c.field), sd)
			if res.code != http.StatusBadRequest || !strings.Contains(res.reason, "Invalid attestations supplied during upload: "+c.want) {
				t.Fatalf("%s: got %s", c.name, res)
			}
			if after := attestState(t, tf.instance, blobDir); after != before {
				t.Fatalf("%s changed the index:\nbefore %s\nafter  %s", c.name, before, after)
			}
		}

		if res := tf.tpIn.uploadAs(t, m.Token, withField(sd.form(), "attestations", field(filename+".publish.attestation", filename+".slsa.attestation")), sd); res.code != http.StatusOK {
			t.Fatalf("the real attestations: %s %s", res, res.body)
		}
		r := tf.tpIn.get(t, "/integrity/pypi-attestations/0.0.19/"+filename+"/provenance", "Accept", integrityMediaType)
		if r.code != http.StatusOK || !strings.Contains(string(r.body), `"publisher":{"kind":"GitHub","repository":"trailofbits/pypi-attestations","workflow":"release.yml"}`) {
			t.Fatalf("provenance: %d %s", r.code, r.body)
		}
		const commit = "08802efe1f8e5fec4ad842d6b8ce97656092ee72"
		if pg := tf.tpIn.get(t, "/project/pypi-attestations/0.0.19/"); !strings.Contains(string(pg.body),
			`commit <a href="https://github.com/trailofbits/pypi-attestations/commit/`+commit+`"><code>`+commit+`</code></a>`) {
			t.Errorf("the project page does not link the certificate's commit:\n%s", pg.body)
		}
	})
}

// A Google Cloud publisher's attestation: the service account is what is
// verified, stored, served and shown.
func TestUploadGoogleAttestation(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		ctx := context.Background()
		vs, err := attesttest.New()
		if err != nil {
			t.Fatal(err)
		}
		v, err := attest.NewVerifier(vs.Trusted())
		if err != nil {
			t.Fatal(err)
		}
		tf := newTPFixtureWith(t, d, fixtureConfig{attest: v, blobDir: t.TempDir()})
		tf.mustUpload(t, wheel(t, meta{Name: "widget", Version: "1.0"}))
		widget, err := tf.projects.Get(ctx, "widget")
		if err != nil {
			t.Fatal(err)
		}
		const sa = "release@acme-ci.iam.gserviceaccount.com"
		if _, err := tf.tp.AddToProject(ctx, trustedpub.Actor{UserID: tf.alice, Username: "alice"}, widget,
			trustedpub.Input{Provider: trustedpub.KindGoogle, Fields: map[string]string{"email": sa}}); err != nil {
			t.Fatal(err)
		}
		m, refusal, err := tf.tp.Exchange(ctx, tf.google.Sign(oidctest.Google("gatehouse.test", sa, "1234567890", tf.clock.Now())), tf.client())
		if err != nil || refusal != nil {
			t.Fatalf("exchange: %v %v", err, refusal)
		}
		w := wheel(t, meta{Name: "widget", Version: "1.1"})
		sign := func(identity string) string {
			a, err := vs.Sign(attesttest.Statement{SubjectName: w.Filename, SubjectSHA256: sha256Hex(w.Content), PredicateType: attest.PublishPredicate},
				identity, tf.google.URL, time.Now().Add(5*time.Minute))
			if err != nil {
				t.Fatal(err)
			}
			return attesttest.Array(a)
		}
		if res := tf.tpIn.uploadAs(t, m.Token, withField(w.form(), "attestations", sign("mallory@evil.iam.gserviceaccount.com")), w); res.code != http.StatusBadRequest ||
			!strings.Contains(res.reason, "not the trusted publisher's service account "+sa) {
			t.Fatalf("another service account: %s", res)
		}
		if res := tf.tpIn.uploadAs(t, m.Token, withField(w.form(), "attestations", sign(sa)), w); res.code != http.StatusOK {
			t.Fatalf("the service account's attestation: %s %s", res, res.body)
		}
		r := tf.tpIn.get(t, "/integrity/widget/1.1/"+w.Filename+"/provenance", "Accept", integrityMediaType)
		if r.code != http.StatusOK || !strings.Contains(string(r.body), `"publisher":{"email":"`+sa+`","kind":"Google"}`) {
			t.Fatalf("provenance: %d %s", r.code, r.body)
		}
		if pg := tf.tpIn.get(t, "/project/widget/1.1/"); !strings.Contains(string(pg.body), "Built by Google Cloud service account <code>"+sa+"</code> (verified attestation)") {
			t.Errorf("the project page does not name the service account:\n%s", pg.body)
		}
	})
}
