package web

// The legacy upload API (POST /legacy/): Warehouse's checks in Warehouse's
// order with Warehouse's messages, carried in the status line's reason
// phrase as twine expects; duplicates, filename reuse, release age, size
// limits, and concurrent uploads.

import (
	"context"
	"encoding/base64"
	"fmt"
	"math/rand/v2"
	"net/http"
	"os"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gatehouse-index/gatehouse/internal/blob"
	"github.com/gatehouse-index/gatehouse/internal/db"
	"github.com/gatehouse-index/gatehouse/internal/db/dbtest"
	"github.com/gatehouse-index/gatehouse/internal/project"
)

// checkUpload compares an upload's answer with the wanted status and
// message (the reason phrase; "OK" for success).
func checkUpload(t *testing.T, what string, got uploadResult, wantCode int, wantReason string) {
	t.Helper()
	if got.code != wantCode || got.reason != wantReason {
		t.Errorf("%s:\ngot  %d %s\nwant %d %s", what, got.code, got.reason, wantCode, wantReason)
	}
}

// countRows runs a count(*) query.
func countRows(t *testing.T, d *db.DB, query string, args ...any) int {
	t.Helper()
	var n int
	if err := d.QueryRow(query, args...).Scan(&n); err != nil {
		t.Fatalf("%s: %v", query, err)
	}
	return n
}

// blobKeys lists every key in the blob store.
func (in *instance) blobKeys(t *testing.T) []string {
	t.Helper()
	var keys []string
	err := in.blobs.List(context.Background(), "", func(key string, _ blob.Info) error {
		keys = append(keys, key)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return keys
}

// blobKeysOf are the keys one uploaded file occupies.
func blobKeysOf(d *dist) []string {
	k := project.BlobKey(blake2Hex(d.Content))
	if d.Filetype == "bdist_wheel" {
		return []string{k, k + ".metadata"}
	}
	return []string{k}
}

func TestUploadAuthentication(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		f := newFixture(t, d)
		w := wheel(t, meta{Name: "demo", Version: "1.0"})
		invalidAuth := "Invalid or non-existent authentication information. See " + f.url + "/help/#invalid-auth for more information."
		for _, tt := range []struct {
			name, auth string
			wantCode   int
			wantReason string
		}{
			{"no credentials", "", 403, invalidAuth},
			{"malformed token", basicToken("pypi-not-a-macaroon"), 403, invalidAuth},
			{"bearer garbage", "Bearer garbage", 403, invalidAuth},
			{"password", "Basic " + base64.StdEncoding.EncodeToString([]byte("alice:hunter2")), 403,
				"Username/Password authentication is no longer supported. Migrate to API Tokens or Trusted Publishers instead. See " +
					f.url + "/help/#apitoken and " + f.url + "/help/#trusted-publishers"},
			{"bearer token", "Bearer " + f.token, 200, "OK"},
		} {
			res, err := f.post(tt.auth, w.form(), w.Filename, w.Content)
			if err != nil {
				t.Fatal(err)
			}
			checkUpload(t, tt.name, res, tt.wantCode, tt.wantReason)
		}
		// POST /legacy (no slash) is redirected, keeping the method.
		r, err := f.client.Post(f.url+"/legacy", "text/plain", nil)
		if err != nil {
			t.Fatal(err)
		}
		r.Body.Close()
		if r.StatusCode != http.StatusPermanentRedirect || r.Header.Get("Location") != "/legacy/" {
			t.Errorf("POST /legacy: got %d to %q, want 308 to /legacy/", r.StatusCode, r.Header.Get("Location"))
		}
	})
}

// TestUploadFormChecks walks through the form checks of spec §4.2 steps 5
// to 8 and 17 to 18. Cases that break two rules show which check comes
// first. None of them may leave anything behind.
func TestUploadFormChecks(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		f := newFixture(t, d)
		w := wheel(t, meta{Name: "demo", Version: "1.0"})
		see := " See " + coreMetadataHelp + " for more information."
		badName := "'-bad-' is an invalid value for Name. Error: Start and end with a letter or numeral containing only ASCII numeric and '.', '_' and '-'." + see

		type edit func([]field) []field
		set := func(name, value string) edit { return func(fs []field) []field { return withField(fs, name, value) } }
		drop := func(name string) edit { return set(name, "") }
		add := func(name, value string) edit {
			return func(fs []field) []field { return append(fs, field{name, value}) }
		}
		noDigests := []edit{drop("md5_digest"), drop("sha256_digest"), drop("blake2_256_digest")}

		tests := []struct {
			name       string
			edits      []edit
			filename   string // default w.Filename
			noFile     bool
			wantCode   int
			wantReason string
		}{
			{"missing :action", []edit{drop(":action")}, "", false, 400, "Missing :action field; twine and other clients send ':action=file_upload'."},
			{"missing :action before bad protocol", []edit{drop(":action"), set("protocol_version", "2")}, "", false, 400, "Missing :action field; twine and other clients send ':action=file_upload'."},
			{"unknown :action", []edit{set(":action", "bogus")}, "", false, 400, `Unknown :action "bogus"; the only action is 'file_upload'.`},
			{"pre-registration", []edit{set(":action", "submit")}, "", false, 410, "Project pre-registration is no longer required or supported, upload your files instead."},
			{"documentation upload", []edit{set(":action", "doc_upload")}, "", false, 410, "Uploading documentation is no longer supported, we recommend using https://readthedocs.org/."},
			{"unknown protocol_version", []edit{set("protocol_version", "2")}, "", false, 400, "Unknown protocol version."},
			{"protocol before name", []edit{set("protocol_version", "2"), set("name", "-bad-")}, "", false, 400, "Unknown protocol version."},
			{"missing name", []edit{drop("name")}, "", false, 400, "Invalid value for name. Error: This field is required."},
			{"bad name", []edit{set("name", "-bad-")}, "", false, 400, badName},
			{"name before filetype", []edit{set("name", "-bad-"), set("filetype", "egg")}, "", false, 400, badName},
			{"bad filetype", []edit{set("filetype", "bdist_egg")}, "", false, 400, "Invalid value for filetype. Error: Use a known file type."},
			{"filetype before digests", append([]edit{set("filetype", "bdist_egg")}, noDigests...), "", false, 400, "Invalid value for filetype. Error: Use a known file type."},
			{"wheel without pyversion", []edit{drop("pyversion")}, "", false, 400, "Invalid value for pyversion. Error: Python version is required for binary distribution uploads."},
			{"malformed sha256", []edit{set("sha256_digest", "xyz")}, "", false, 400, "Invalid value for sha256_digest. Error: Use a valid, hex-encoded, SHA256 message digest."},
			{"no digest", noDigests, "", false, 400, "Include at least one message digest."},
			{"digest before local version", append([]edit{set("version", "1.0+local")}, noDigests...), "", false, 400, "Include at least one message digest."},
			{"unknown metadata version", []edit{set("metadata_version", "3.0")}, "", false, 400, "'3.0' is an invalid value for Metadata-Version. Error: Use a known metadata version." + see},
			{"bad version", []edit{set("version", "one")}, "", false, 400, "'one' is an invalid value for Version. Error: Use PEP 440 versioning." + see},
			{"local version", []edit{set("version", "1.0+local")}, "", false, 400, "The use of local versions in '1.0+local' is not allowed." + see},
			{"direct dependency", []edit{add("requires_dist", "evil @ https://example.com/evil.whl")}, "", false, 400, "Can't have direct dependency: 'evil @ https://example.com/evil.whl'." + see},
			{"single-use field twice", []edit{add("version", "1.0")}, "", false, 400, "version: Field given more than once; send it once."},
			{"no file", nil, "", true, 400, "Upload payload does not have a file."},
			{"bad extension", nil, "demo-1.0.exe", false, 400, "Invalid file extension: Use .tar.gz, .whl or .zip extension. See https://www.python.org/dev/peps/pep-0527 and https://peps.python.org/pep-0715/ for more information"},
			{"sdist extension for a wheel", nil, "demo-1.0.tar.gz", false, 400, "Invalid file extension: Use .tar.gz, .whl or .zip extension. See https://www.python.org/dev/peps/pep-0527 and https://peps.python.org/pep-0715/ for more information"},
			{"slash in filename", nil, `x\demo-1.0-py3-none-any.whl`, false, 400, `Cannot upload a file with '/' or '\' in the name.`},
			{"digest mismatch", []edit{set("sha256_digest", sha256Hex([]byte("something else")))}, "", false, 400, "The digest supplied does not match a digest calculated from the uploaded file."},
			{"filename for another project", nil, "other-1.0-py3-none-any.whl", false, 400, "Start filename for 'demo' with 'demo'."},
			{"filename for another version", nil, "demo-2.0-py3-none-any.whl", false, 400, "Version in filename should be '1.0' not '2.0'."},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				fields := w.form()
				for _, e := range tt.edits {
					fields = e(fields)
				}
				filename, content := w.Filename, w.Content
				if tt.filename != "" {
					filename = tt.filename
				}
				if tt.noFile {
					content = nil
				}
				res, err := f.post(basicToken(f.token), fields, filename, content)
				if err != nil {
					t.Fatal(err)
				}
				checkUpload(t, tt.name, res, tt.wantCode, tt.wantReason)
				// The message is in the body too, HTML-escaped.
				if res.code != 200 && !strings.Contains(res.body, htmlEscape(tt.wantReason)) {
					t.Errorf("body %q lacks the message", res.body)
				}
			})
		}
		if n := countRows(t, d, `SELECT count(*) FROM projects`); n != 0 {
			t.Errorf("refused uploads left %d projects, want 0", n)
		}
		if keys := f.blobKeys(t); len(keys) != 0 {
			t.Errorf("refused uploads left blobs %v, want none", keys)
		}
	})
}

func TestUploadProjectNamesAndPermissions(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		f := newFixture(t, d)
		ctx := context.Background()
		see := " See " + f.url + "/help/#project-name for more information."
		f.mustUpload(t, wheel(t, meta{Name: "hello", Version: "1.0"}))
		f.mustUpload(t, wheel(t, meta{Name: "other", Version: "1.0"}))
		if err := f.projects.Prohibit(ctx, "Reserved.Name"); err != nil {
			t.Fatal(err)
		}
		helloToken := f.mintToken(t, f.alice, "hello")
		otherToken := f.mintToken(t, f.alice, "other")
		bob := addUser(t, d, "bob")
		bobToken := f.mintToken(t, bob)

		tests := []struct {
			name       string
			token      string
			dist       *dist
			wantCode   int
			wantReason string
		}{
			{"prohibited", f.token, wheel(t, meta{Name: "reserved_name", Version: "1.0"}), 400, "The name 'reserved_name' isn't allowed." + see},
			{"too similar", f.token, wheel(t, meta{Name: "He11o", Version: "1.0"}), 400, "The name 'He11o' is too similar to an existing project." + see},
			{"too similar with separators", f.token, wheel(t, meta{Name: "h.e_l-l.o", Version: "1.0"}), 400, "The name 'h.e_l-l.o' is too similar to an existing project." + see},
			{"standard library", f.token, wheel(t, meta{Name: "asyncio", Version: "1.0"}), 400, "The name 'asyncio' isn't allowed (conflict with Python Standard Library module name)." + see},
			{"project token cannot create", helloToken, wheel(t, meta{Name: "brand-new", Version: "1.0"}), 403,
				"The given token isn't allowed to create the new project 'brand-new'. Create it with a token scoped to your whole account." + see},
			{"project token for another project", otherToken, wheel(t, meta{Name: "hello", Version: "2.0"}), 403,
				"Invalid API Token: project-scoped token is not valid for project: 'hello'"},
			{"user without a role", bobToken, wheel(t, meta{Name: "hello", Version: "2.0"}), 403, "The user 'bob' isn't allowed to upload to project 'hello'." + see},
			{"project token for its project", helloToken, wheel(t, meta{Name: "hello", Version: "2.0"}), 200, "OK"},
			{"existing project by another spelling", f.token, wheel(t, meta{Name: "HELLO", Version: "3.0"}), 200, "OK"},
			{"new project", bobToken, wheel(t, meta{Name: "bobs-project", Version: "1.0"}), 200, "OK"},
		}
		for _, tt := range tests {
			res := f.uploadAs(t, tt.token, tt.dist.form(), tt.dist)
			checkUpload(t, tt.name, res, tt.wantCode, tt.wantReason)
		}
		// The project keeps its first display name, and bob owns his.
		if p, err := f.projects.Get(ctx, "hello"); err != nil || p.Name != "hello" {
			t.Errorf("project hello: got %+v, %v; want display name %q", p, err, "hello")
		}
		if p, err := f.projects.Get(ctx, "bobs-project"); err != nil {
			t.Errorf("bobs-project: %v", err)
		} else if r, _ := f.projects.Role(ctx, p.ID, bob); r != project.RoleOwner {
			t.Errorf("bob's role on bobs-project: got %q, want %q", r, project.RoleOwner)
		}
		for _, name := range []string{"reserved-name", "he11o", "h-e-l-l-o", "asyncio", "brand-new"} {
			if n := countRows(t, d, `SELECT count(*) FROM projects WHERE normalized_name = $1`, name); n != 0 {
				t.Errorf("refused project %s exists", name)
			}
		}
	})
}

func TestUploadDuplicatesAndReleaseRules(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		f := newFixture(t, d)
		ctx := context.Background()
		reuseHelp := " See " + f.url + "/help/#file-name-reuse for more information."
		m := meta{Name: "demo", Version: "1.0"}
		w, s := wheel(t, m), sdist(t, m)
		f.mustUpload(t, w)
		f.mustUpload(t, s)

		t.Run("identical re-upload is a no-op", func(t *testing.T) {
			serial := f.serialOf(t, "demo")
			journal := countRows(t, d, `SELECT count(*) FROM journal`)
			checkUpload(t, "re-upload", f.upload(t, w), 200, "OK")
			if got := f.serialOf(t, "demo"); got != serial {
				t.Errorf("serial after a duplicate: got %d, want unchanged %d", got, serial)
			}
			if got := countRows(t, d, `SELECT count(*) FROM journal`); got != journal {
				t.Errorf("journal entries after a duplicate: got %d, want unchanged %d", got, journal)
			}
			if got := countRows(t, d, `SELECT count(*) FROM files WHERE filename = $1`, w.Filename); got != 1 {
				t.Errorf("rows for %s: got %d, want 1", w.Filename, got)
			}
		})

		t.Run("same name, other bytes", func(t *testing.T) {
			other := wheel(t, meta{Name: "demo", Version: "1.0", Payload: "changed = True\n"})
			checkUpload(t, "different wheel", f.upload(t, other), 400,
				fmt.Sprintf("File already exists ('%s', with blake2_256 hash '%s').", other.Filename, blake2Hex(other.Content))+reuseHelp)
		})

		t.Run("same bytes, other name", func(t *testing.T) {
			renamed := *w
			renamed.Filename = "demo-1.0-py2.py3-none-any.whl"
			checkUpload(t, "renamed wheel", f.upload(t, &renamed), 400,
				fmt.Sprintf("File already exists ('%s', with blake2_256 hash '%s').", renamed.Filename, blake2Hex(w.Content))+reuseHelp)
		})

		t.Run("one sdist per release", func(t *testing.T) {
			checkUpload(t, "second sdist", f.upload(t, sdistZip(t, m)), 400, "Only one sdist may be uploaded per release.")
		})

		t.Run("deleted filename stays used", func(t *testing.T) {
			if _, err := d.ExecContext(ctx, `DELETE FROM files WHERE filename = $1`, s.Filename); err != nil {
				t.Fatal(err)
			}
			want := "This filename was previously used by a file that has since been deleted. Use a different version." + reuseHelp
			checkUpload(t, "same sdist again", f.upload(t, s), 400, want)
			other := sdist(t, meta{Name: "demo", Version: "1.0", Payload: "# new\n"})
			checkUpload(t, "new sdist, old name", f.upload(t, other), 400, want)
		})

		t.Run("release older than 14 days", func(t *testing.T) {
			m2 := meta{Name: "demo", Version: "2.0"}
			first := wheel(t, m2)
			f.mustUpload(t, first) // release 2.0 is created at t0
			defer f.clock.Set(t0)

			f.clock.Set(t0.Add(14 * 24 * time.Hour))
			checkUpload(t, "at exactly 14 days", f.upload(t, sdist(t, m2)), 200, "OK")

			f.clock.Set(t0.Add(14*24*time.Hour + time.Second))
			checkUpload(t, "after 14 days", f.upload(t, wheelTagged(t, m2, "py2")), 400, "Uploading new files to releases older than 14 days is not allowed.")
			// A duplicate is still answered as one: twine --skip-existing.
			checkUpload(t, "duplicate after 14 days", f.upload(t, first), 200, "OK")
			// New releases are fine.
			checkUpload(t, "new release", f.upload(t, wheel(t, meta{Name: "demo", Version: "3.0"})), 200, "OK")
		})
	})
}

// TestUploadStoreFailure: when the blob store cannot take the upload, the
// server says it is its own fault (500), not the file's, and nothing
// changes.
func TestUploadStoreFailure(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		dir := t.TempDir()
		f := newFixtureWith(t, d, fixtureConfig{blobDir: dir})
		// The store's directory goes away under it (a lost mount, say): not
		// even root can create a file in a removed directory.
		if err := os.RemoveAll(dir); err != nil {
			t.Fatal(err)
		}
		checkUpload(t, "upload into a removed store", f.upload(t, wheel(t, meta{Name: "demo", Version: "1.0"})), 500,
			"Internal server error. The problem has been logged; please try again later.")
		if n := countRows(t, d, `SELECT count(*) FROM projects`); n != 0 {
			t.Errorf("a failed upload left %d projects, want 0", n)
		}
	})
}

// incompressible returns n random bytes (fixed seed), so that a wheel
// holding them is about n bytes long.
func incompressible(n int) string {
	r := rand.New(rand.NewChaCha8([32]byte{1}))
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(r.Uint32())
	}
	return string(b)
}

func TestUploadSizeLimits(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		// "capped" lives under the default project limit, which its first two
		// files fill exactly; "demo" tests the per-file limit.
		c1, c2, c3 := wheel(t, meta{Name: "capped", Version: "1.0"}), wheel(t, meta{Name: "capped", Version: "2.0"}), wheel(t, meta{Name: "capped", Version: "3.0"})
		projectLimit := int64(len(c1.Content) + len(c2.Content))
		f := newFixtureWith(t, d, fixtureConfig{limits: project.Limits{MaxFileSize: 1 << 20, MaxProjectSize: projectLimit}})

		t.Run("per file", func(t *testing.T) {
			f.mustUpload(t, wheel(t, meta{Name: "demo", Version: "1.0"}))
			big := wheel(t, meta{Name: "demo", Version: "2.0", Payload: incompressible(3 << 19)}) // 1.5 MiB
			if len(big.Content) <= 1<<20 {
				t.Fatalf("test wheel is only %d bytes", len(big.Content))
			}
			checkUpload(t, "1.5 MiB file, 1 MiB limit", f.upload(t, big), 400,
				"File too large. Limit for project 'demo' is 1 MB. See "+f.url+"/help/#file-size-limit for more information.")
			// A project's own limits override the defaults.
			if _, err := d.Exec(`UPDATE projects SET upload_limit = $1, total_size_limit = $2 WHERE normalized_name = 'demo'`, 2<<20, 1<<30); err != nil {
				t.Fatal(err)
			}
			checkUpload(t, "1.5 MiB file, 2 MiB project limit", f.upload(t, big), 200, "OK")
		})

		t.Run("per project", func(t *testing.T) {
			f.mustUpload(t, c1)
			checkUpload(t, "up to the limit", f.upload(t, c2), 200, "OK")
			checkUpload(t, "over the limit", f.upload(t, c3), 400,
				"Project size too large. Limit for project 'capped' total size is 0 GB. See "+f.url+"/help/#project-size-limit for more information.")
			if got := countRows(t, d, `SELECT total_size FROM projects WHERE normalized_name = 'capped'`); int64(got) != projectLimit {
				t.Errorf("total_size: got %d, want %d", got, projectLimit)
			}
			// Raising the project's own limit lets the file in.
			if _, err := d.Exec(`UPDATE projects SET total_size_limit = $1 WHERE normalized_name = 'capped'`, projectLimit+int64(len(c3.Content))); err != nil {
				t.Fatal(err)
			}
			checkUpload(t, "raised limit", f.upload(t, c3), 200, "OK")
		})
	})
}

// TestUploadConcurrency sends the same upload many times at once, as a
// retrying client or a CI matrix does: each file must be stored once, and
// every identical attempt answered 200.
func TestUploadConcurrency(t *testing.T) {
	const n = 16
	// parallel runs n uploads at once and returns their answers.
	parallel := func(t *testing.T, f *fixture, dists []*dist) []uploadResult {
		t.Helper()
		results := make([]uploadResult, len(dists))
		errs := make([]error, len(dists))
		var start, wg sync.WaitGroup
		start.Add(1)
		for i, d := range dists {
			wg.Add(1)
			go func() {
				defer wg.Done()
				start.Wait()
				results[i], errs[i] = f.post(basicToken(f.token), d.form(), d.Filename, d.Content)
			}()
		}
		start.Done()
		wg.Wait()
		for _, err := range errs {
			if err != nil {
				t.Fatal(err)
			}
		}
		return results
	}
	repeat := func(d *dist) []*dist {
		out := make([]*dist, n)
		for i := range out {
			out[i] = d
		}
		return out
	}

	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		f := newFixture(t, d)

		for _, tt := range []struct {
			name  string
			setup []*dist // uploaded first, one by one
			dist  *dist
		}{
			{"new release of an existing project", []*dist{wheel(t, meta{Name: "demo", Version: "1.0"})}, wheel(t, meta{Name: "demo", Version: "2.0"})},
			{"existing release", nil, sdist(t, meta{Name: "demo", Version: "2.0"})},
			{"new project", nil, wheel(t, meta{Name: "fresh", Version: "1.0"})},
		} {
			t.Run("identical: "+tt.name, func(t *testing.T) {
				for _, s := range tt.setup {
					f.mustUpload(t, s)
				}
				before := f.blobKeys(t)
				for i, res := range parallel(t, f, repeat(tt.dist)) {
					checkUpload(t, fmt.Sprintf("upload %d", i), res, 200, "OK")
				}
				if got := countRows(t, d, `SELECT count(*) FROM files WHERE filename = $1`, tt.dist.Filename); got != 1 {
					t.Errorf("rows for %s: got %d, want 1", tt.dist.Filename, got)
				}
				want := append(before, blobKeysOf(tt.dist)...)
				sort.Strings(want)
				if got := f.blobKeys(t); strings.Join(got, " ") != strings.Join(want, " ") {
					t.Errorf("blobs:\ngot  %v\nwant %v", got, want)
				}
				if r := f.getOK(t, f.fileURL(tt.dist)); string(r.body) != string(tt.dist.Content) {
					t.Errorf("served %s differs from the upload", tt.dist.Filename)
				}
			})
		}
		if got := countRows(t, d, `SELECT count(*) FROM projects WHERE normalized_name = 'fresh'`); got != 1 {
			t.Errorf("projects named fresh: got %d, want 1", got)
		}
		if got := countRows(t, d, `SELECT count(*) FROM roles r JOIN projects p ON p.id = r.project_id WHERE p.normalized_name = 'fresh'`); got != 1 {
			t.Errorf("roles on fresh: got %d, want 1", got)
		}
		if got := countRows(t, d, `SELECT count(*) FROM releases r JOIN projects p ON p.id = r.project_id WHERE p.normalized_name = 'demo'`); got != 2 {
			t.Errorf("releases of demo: got %d, want 2", got)
		}

		t.Run("different files, one name", func(t *testing.T) {
			var dists []*dist
			for i := range n {
				dists = append(dists, wheel(t, meta{Name: "demo", Version: "3.0", Payload: fmt.Sprintf("variant = %d\n", i)}))
			}
			sizeBefore := countRows(t, d, `SELECT total_size FROM projects WHERE normalized_name = 'demo'`)
			var winner *dist
			for i, res := range parallel(t, f, dists) {
				if res.code == 200 {
					if winner != nil {
						t.Errorf("uploads %s and %d were both accepted", winner.Meta.Payload, i)
					}
					winner = dists[i]
					continue
				}
				want := fmt.Sprintf("File already exists ('%s', with blake2_256 hash '%s'). See %s/help/#file-name-reuse for more information.",
					dists[i].Filename, blake2Hex(dists[i].Content), f.url)
				checkUpload(t, fmt.Sprintf("upload %d", i), res, 400, want)
			}
			if winner == nil {
				t.Fatalf("no upload was accepted")
			}
			if got := countRows(t, d, `SELECT count(*) FROM files WHERE filename = $1`, winner.Filename); got != 1 {
				t.Errorf("rows for %s: got %d, want 1", winner.Filename, got)
			}
			if r := f.getOK(t, f.fileURL(winner)); string(r.body) != string(winner.Content) {
				t.Errorf("served file is not the accepted upload")
			}
			if got, want := countRows(t, d, `SELECT total_size FROM projects WHERE normalized_name = 'demo'`), sizeBefore+len(winner.Content); got != want {
				t.Errorf("total_size: got %d, want %d (only the accepted file counts)", got, want)
			}
		})
	})
}
