package web

import (
	"context"
	"encoding/json"
	"io/fs"
	"net/http"
	"net/url"
	"path/filepath"
	"slices"
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

// attestState is every row an upload may write and every file in the
// store, for "a refused upload leaves nothing behind".
func attestState(t *testing.T, in *instance, blobDir string) string {
	t.Helper()
	var files []string
	filepath.WalkDir(blobDir, func(p string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			files = append(files, p)
		}
		return nil
	})
	slices.Sort(files)
	var b strings.Builder
	for _, table := range []string{"projects", "releases", "files", "file_provenance", "journal", "filename_log"} {
		rows, err := in.db.Query(`SELECT count(*) FROM ` + table)
		if err != nil {
			t.Fatal(err)
		}
		for rows.Next() {
			var n int
			rows.Scan(&n)
			b.WriteString(table + ":" + string(rune('0'+n)) + " ")
		}
		rows.Close()
	}
	return b.String() + strings.Join(files, "\n")
}

// Issue 10: attestations made by the trusted publisher that uploads are
// verified, stored and served; every forged or mismatched one refuses the
// file with its own message and leaves nothing behind.
func TestUploadAttestations(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		ctx := context.Background()
		vs, err := attesttest.New()
		if err != nil {
			t.Fatal(err)
		}
		other, err := attesttest.New()
		if err != nil {
			t.Fatal(err)
		}
		v, err := attest.NewVerifier(vs.Trusted())
		if err != nil {
			t.Fatal(err)
		}
		blobDir := t.TempDir()
		tf := newTPFixtureWith(t, d, fixtureConfig{attest: v, blobDir: blobDir})
		tf.mustUpload(t, wheel(t, meta{Name: "widget", Version: "1.0"}))
		widget, err := tf.projects.Get(ctx, "widget")
		if err != nil {
			t.Fatal(err)
		}
		if _, err := tf.tp.AddToProject(ctx, trustedpub.Actor{UserID: tf.alice, Username: "alice"}, widget,
			trustedpub.Input{Provider: trustedpub.KindGitHub, Fields: map[string]string{"owner": "octo", "repository": "widget", "workflow": "release.yml"}}); err != nil {
			t.Fatal(err)
		}
		m, refusal, err := tf.tp.Exchange(ctx, tf.github.Sign(oidctest.GitHub("gatehouse.test", "octo/widget", "1001", "release.yml", tf.clock.Now())), tf.client())
		if err != nil || refusal != nil {
			t.Fatalf("exchange: %v %v", err, refusal)
		}

		w := wheel(t, meta{Name: "widget", Version: "1.1"})
		sha := sha256Hex(w.Content)
		id := attesttest.GitHubIdentity("octo/widget", "release.yml")
		now := time.Now().Add(5 * time.Minute) // inside the virtual certificate's ten minutes
		sign := func(s *attesttest.Sigstore, name, digest, predicate, identity string, at time.Time) string {
			t.Helper()
			a, err := s.Sign(attesttest.Statement{SubjectName: name, SubjectSHA256: digest, PredicateType: predicate}, identity, tf.github.URL, at)
			if err != nil {
				t.Fatal(err)
			}
			return string(a)
		}
		publish := sign(vs, w.Filename, sha, attest.PublishPredicate, id, now)
		slsa := sign(vs, w.Filename, sha, attest.SLSAPredicate, id, now)
		const prefix = "Invalid attestations supplied during upload: "

		for _, c := range []struct {
			name, tok, field, want string
		}{
			{"wrong subject digest", m.Token, "[" + sign(vs, w.Filename, strings.Repeat("0", 64), attest.PublishPredicate, id, now) + "]",
				prefix + "the statement's subject digest (sha256 0000"},
			{"another publisher's repository", m.Token, "[" + sign(vs, w.Filename, sha, attest.PublishPredicate, attesttest.GitHubIdentity("mallory/widget", "release.yml"), now) + "]",
				prefix + "the certificate's source repository https://github.com/mallory/widget does not match the trusted publisher's https://github.com/octo/widget"},
			{"expired certificate, no signed timestamp", m.Token, "[" + sign(vs, w.Filename, sha, attest.PublishPredicate, id, now.Add(20*time.Minute)) + "]",
				prefix + "Sigstore verification failed: failed to verify log inclusion: integrated time outside certificate validity"},
			{"untrusted root", m.Token, "[" + sign(other, w.Filename, sha, attest.PublishPredicate, id, now) + "]",
				prefix + "Sigstore verification failed: failed to verify log inclusion: not enough verified log entries"},
			{"malformed JSON", m.Token, `[{"version": 1,`, prefix + "the attestations field is not a JSON array of attestation objects"},
			{"three attestations", m.Token, "[" + publish + "," + slsa + "," + publish + "]", prefix + "3 attestations supplied; at most 2 are allowed"},
			{"an API token", tf.token, "[" + publish + "]", prefix + "Attestations are only supported when using Trusted Publishing"},
		} {
			t.Run(c.name, func(t *testing.T) {
				before := attestState(t, tf.instance, blobDir)
				res := tf.tpIn.uploadAs(t, c.tok, withField(w.form(), "attestations", c.field), w)
				if res.code != http.StatusBadRequest || !strings.Contains(res.reason, c.want) {
					t.Fatalf("got %s, want 400 %q", res, c.want)
				}
				if after := attestState(t, tf.instance, blobDir); after != before {
					t.Fatalf("a refused upload changed the index:\nbefore %s\nafter  %s", before, after)
				}
			})
		}

		// The policy: without attestations, a project that requires them
		// refuses the file.
		fresh := tf.session(t, tf.alice, false)
		path := "/manage/project/widget/settings/publishing/attestations/"
		wantRecPage(t, tf.page(t, "POST", path, url.Values{"require": {"maybe"}}, fresh), http.StatusBadRequest, "on or off")
		// Without a recent password: sent to enter it, nothing changes.
		tf.page(t, "POST", path, url.Values{"require": {"on"}}, tf.session(t, tf.alice, true))
		if n := tf.count(t, `SELECT count(*) FROM projects WHERE require_attestations`); n != 0 {
			t.Fatalf("refused forms turned the policy on (%d)", n)
		}
		if rec := tf.page(t, "POST", path, url.Values{"require": {"on"}}, fresh); rec.Code != http.StatusSeeOther {
			t.Fatalf("require=on: %d\n%s", rec.Code, rec.Body.String())
		}
		wantRecPage(t, tf.page(t, "GET", "/manage/project/widget/settings/publishing/", nil, fresh), http.StatusOK, "Turn off: accept files without attestations")
		if n := tf.count(t, `SELECT count(*) FROM events WHERE tag = 'project:require_attestations:enabled'`); n != 1 {
			t.Fatalf("%d require-attestations events, want 1", n)
		}
		if res := tf.tpIn.uploadAs(t, m.Token, w.form(), w); res.code != http.StatusBadRequest || !strings.Contains(res.reason, "This project requires attestations") {
			t.Fatalf("no attestations on a project that requires them: %s", res)
		}

		// Both predicate types, from the publisher: stored and served.
		if res := tf.tpIn.uploadAs(t, m.Token, withField(w.form(), "attestations", "["+publish+","+slsa+"]"), w); res.code != http.StatusOK {
			t.Fatalf("good attestations: %s %s", res, res.body)
		}
		r := tf.tpIn.get(t, "/integrity/widget/1.1/"+w.Filename+"/provenance", "Accept", integrityMediaType)
		if r.code != http.StatusOK || r.header.Get("Content-Type") != integrityMediaType {
			t.Fatalf("provenance: %d %s %s", r.code, r.header.Get("Content-Type"), r.body)
		}
		var prov struct {
			Version            int
			AttestationBundles []struct {
				Publisher    map[string]string
				Attestations []json.RawMessage
			} `json:"attestation_bundles"`
		}
		if err := json.Unmarshal(r.body, &prov); err != nil {
			t.Fatal(err)
		}
		if prov.Version != 1 || len(prov.AttestationBundles) != 1 {
			t.Fatalf("provenance %s", r.body)
		}
		bundle := prov.AttestationBundles[0]
		if bundle.Publisher["kind"] != "GitHub" || bundle.Publisher["repository"] != "octo/widget" || bundle.Publisher["workflow"] != "release.yml" || len(bundle.Attestations) != 2 {
			t.Fatalf("provenance bundle %s", r.body)
		}
		// What is served verifies again.
		atts, err := attest.Parse([]byte(mustJSON(bundle.Attestations)))
		if err != nil {
			t.Fatal(err)
		}
		if _, err := v.Verify(atts, attest.File{Filename: w.Filename, SHA256: sha}, attest.Publisher{Kind: "github", Issuer: tf.github.URL, Repository: "octo/widget", Workflow: "release.yml"}); err != nil {
			t.Fatalf("the served attestations do not verify: %v", err)
		}
		// The Simple API links it (PEP 740), in both formats; the file
		// without provenance has none.
		provURL := tf.url + "/integrity/widget/1.1/" + w.Filename + "/provenance"
		sj := tf.tpIn.get(t, "/simple/widget/", "Accept", "application/vnd.pypi.simple.v1+json")
		var simple struct {
			Files []struct {
				Filename   string
				Provenance *string
			}
		}
		if err := json.Unmarshal(sj.body, &simple); err != nil {
			t.Fatal(err)
		}
		for _, f := range simple.Files {
			want := f.Filename == w.Filename
			if got := f.Provenance != nil; got != want || (want && *f.Provenance != provURL) {
				t.Errorf("simple JSON %s provenance %v, want %v (%s)", f.Filename, f.Provenance, want, provURL)
			}
		}
		if sh := tf.tpIn.get(t, "/simple/widget/", "Accept", "text/html"); !strings.Contains(string(sh.body), `data-provenance="`+provURL+`"`) || strings.Count(string(sh.body), "data-provenance") != 1 {
			t.Errorf("simple HTML lacks the one data-provenance link:\n%s", sh.body)
		}
		// The project page says who built it, and marks the file without.
		if pg := tf.tpIn.get(t, "/project/widget/1.1/"); !strings.Contains(string(pg.body), `Built by <a href="https://github.com/octo/widget">octo/widget</a>, workflow <a href="https://github.com/octo/widget/blob/HEAD/.github/workflows/release.yml">release.yml</a>`) {
			t.Errorf("project page 1.1 lacks the builder:\n%s", pg.body)
		}
		if pg := tf.tpIn.get(t, "/project/widget/1.0/"); !strings.Contains(string(pg.body), "no provenance") {
			t.Errorf("project page 1.0 lacks the no-provenance marker")
		}

		// A file without provenance, and one that does not exist: 404.
		for _, p := range []string{"/integrity/widget/1.0/widget-1.0-py3-none-any.whl/provenance", "/integrity/widget/1.1/nope.whl/provenance"} {
			if r := tf.tpIn.get(t, p); r.code != http.StatusNotFound {
				t.Errorf("%s: %d, want 404", p, r.code)
			}
		}
	})
}
