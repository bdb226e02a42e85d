package web

// Simple Repository API: PEP 503 HTML and PEP 691 JSON, chosen by Accept,
// with PEP 592 (yanked), 658/714 (core metadata), 700 (versions, size,
// upload-time), the serial header, ETags, redirects and the page cache,
// including its invalidation across instances sharing a database.

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/gatehouse-index/gatehouse/internal/db"
	"github.com/gatehouse-index/gatehouse/internal/db/dbtest"
	"github.com/gatehouse-index/gatehouse/internal/project"
)

func TestNegotiate(t *testing.T) {
	const pip = "application/vnd.pypi.simple.v1+json, application/vnd.pypi.simple.v1+html; q=0.1, text/html; q=0.01"
	const browser = "text/html,application/xhtml+xml,application/xml;q=0.9,image/avif,image/webp,*/*;q=0.8"
	tests := []struct {
		accept string
		want   string
	}{
		{"", mediaHTMLLegacy},
		{mediaJSON, mediaJSON},
		{mediaHTMLv1, mediaHTMLv1},
		{"text/html", mediaHTMLLegacy},
		{pip, mediaJSON},
		{browser, mediaHTMLLegacy},
		{"Application/Vnd.PyPI.Simple.V1+JSON", mediaJSON},
		// Quality values decide; ties go to JSON, then v1 HTML, then text/html.
		{"application/vnd.pypi.simple.v1+json;q=0.5, text/html", mediaHTMLLegacy},
		{"text/html;q=0.2, application/vnd.pypi.simple.v1+html;q=0.9", mediaHTMLv1},
		{"application/vnd.pypi.simple.v1+html, application/vnd.pypi.simple.v1+json", mediaJSON},
		{"text/html, application/vnd.pypi.simple.v1+html", mediaHTMLv1},
		{"text/html; q=0.5, application/vnd.pypi.simple.v1+json; q=0.5", mediaJSON},
		// q=0 means "not acceptable".
		{"application/vnd.pypi.simple.v1+json;q=0", mediaHTMLLegacy},
		{"application/vnd.pypi.simple.v1+json;q=0, text/html;q=0.1", mediaHTMLLegacy},
		// Wildcards: "*/*" alone (curl, old clients) is HTML; alongside
		// other types it competes like any range.
		{"*/*", mediaHTMLLegacy},
		{" */* ", mediaHTMLLegacy},
		{"*/*;q=0.1, application/vnd.pypi.simple.v1+html", mediaHTMLv1},
		{"application/*", mediaJSON},
		{"text/*", mediaHTMLLegacy},
		// Nothing acceptable or unparseable: HTML, never a 406.
		{"application/json", mediaHTMLLegacy},
		{"image/png", mediaHTMLLegacy},
		{"garbage", mediaHTMLLegacy},
		{";;;,,,", mediaHTMLLegacy},
		{"application/vnd.pypi.simple.v2+json", mediaHTMLLegacy},
	}
	for _, tt := range tests {
		if got := negotiate(tt.accept); got != tt.want {
			t.Errorf("negotiate(%q) = %q, want %q", tt.accept, got, tt.want)
		}
	}
}

// fooBar is the project most Simple API and page tests look at: Foo_Bar,
// uploaded in the order 1.0, 1.10, 1.9 so that PEP 440 order differs from
// both upload and string order.
//
//	1.0   sdist + wheel, Requires-Python >=3.8
//	1.10  wheel, Requires-Python >=3.9, yanked "broken build"
//	1.9   wheel, yanked without a reason
type fooBar struct {
	meta10            meta
	sdist10, wheel10  *dist
	wheel110, wheel19 *dist
	uploadTime        string // PEP 700 upload-time of every file
	yankedReason110   string
}

func seedFooBar(t *testing.T, f *fixture) *fooBar {
	t.Helper()
	m := meta{
		Name:                   "Foo_Bar",
		Version:                "1.0",
		Summary:                "The foo bar",
		RequiresPython:         ">=3.8",
		Description:            "# Foo Bar\n\nA *test* project.\n",
		DescriptionContentType: "text/markdown",
		Classifiers:            []string{"License :: OSI Approved :: MIT License", "Programming Language :: Python :: 3"},
		ProjectURLs:            []string{"Homepage, https://example.com/foo-bar", "Source, https://example.com/foo-bar/src"},
	}
	fb := &fooBar{meta10: m, uploadTime: "2026-03-01T12:00:00.123456Z", yankedReason110: "broken build"}
	fb.sdist10 = sdist(t, m)
	fb.wheel10 = wheel(t, m)
	fb.wheel110 = wheel(t, meta{Name: "Foo_Bar", Version: "1.10", Summary: "The foo bar", RequiresPython: ">=3.9"})
	fb.wheel19 = wheel(t, meta{Name: "Foo_Bar", Version: "1.9", Summary: "The foo bar"})
	for _, d := range []*dist{fb.sdist10, fb.wheel10, fb.wheel110, fb.wheel19} {
		f.mustUpload(t, d)
	}
	ctx := context.Background()
	alice := project.Actor{UserID: f.alice, Username: "alice"}
	if err := f.projects.Yank(ctx, alice, "foo-bar", "1.10", "1.10", fb.yankedReason110); err != nil {
		t.Fatal(err)
	}
	if err := f.projects.Yank(ctx, alice, "foo-bar", "1.9", "1.9", ""); err != nil {
		t.Fatal(err)
	}
	// Yanking through the service (as the admin CLI does) reaches the
	// page cache through the journal; nothing is cached yet here, but sync
	// keeps the fixture independent of that.
	if err := f.srv.simple.sync(ctx, f.projects); err != nil {
		t.Fatal(err)
	}
	return fb
}

// wantSimpleFile is the PEP 691 JSON of one file.
func wantSimpleFile(in *instance, d *dist, uploadTime string, yanked any) map[string]any {
	var coreMetadata any = false
	if d.Filetype == "bdist_wheel" {
		coreMetadata = map[string]any{"sha256": sha256Hex(d.Metadata)}
	}
	var requiresPython any
	if d.Meta.RequiresPython != "" {
		requiresPython = d.Meta.RequiresPython
	}
	return map[string]any{
		"filename":                d.Filename,
		"url":                     in.fileURL(d),
		"hashes":                  map[string]any{"sha256": sha256Hex(d.Content)},
		"requires-python":         requiresPython,
		"size":                    len(d.Content),
		"upload-time":             uploadTime,
		"yanked":                  yanked,
		"core-metadata":           coreMetadata,
		"data-dist-info-metadata": coreMetadata,
		"provenance":              nil,
	}
}

// wantSimpleAnchor is the PEP 503 anchor of one file: its attributes, as
// parsed (unescaped), plus its text under "#text".
func wantSimpleAnchor(in *instance, d *dist, yanked *string) map[string]string {
	a := map[string]string{
		"href":  in.fileURL(d) + "#sha256=" + sha256Hex(d.Content),
		"#text": d.Filename,
	}
	if d.Meta.RequiresPython != "" {
		a["data-requires-python"] = d.Meta.RequiresPython
	}
	if yanked != nil {
		a["data-yanked"] = *yanked
	}
	if d.Filetype == "bdist_wheel" {
		a["data-dist-info-metadata"] = "sha256=" + sha256Hex(d.Metadata)
		a["data-core-metadata"] = "sha256=" + sha256Hex(d.Metadata)
	}
	return a
}

// anchorsOf returns every <a> of a Simple page as wantSimpleAnchor shapes it.
func anchorsOf(t *testing.T, body []byte) []map[string]string {
	t.Helper()
	var out []map[string]string
	for _, a := range findAll(parseHTML(t, body), byTag("a")) {
		m := attrs(a)
		m["#text"] = text(a)
		out = append(out, m)
	}
	return out
}

// repositoryVersion returns the content of <meta name="pypi:repository-version">.
func repositoryVersion(t *testing.T, body []byte) string {
	t.Helper()
	metas := findAll(parseHTML(t, body), func(n *htmlNode) bool { return n.Data == "meta" && attr(n, "name") == "pypi:repository-version" })
	if len(metas) != 1 {
		t.Fatalf("got %d pypi:repository-version meta tags, want 1", len(metas))
	}
	return attr(metas[0], "content")
}

func strp(s string) *string { return &s }

func TestSimpleDetail(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		f := newFixture(t, d)
		fb := seedFooBar(t, f)
		serial := f.serialOf(t, "foo-bar")

		t.Run("JSON", func(t *testing.T) {
			r := f.getOK(t, "/simple/foo-bar/", "Accept", mediaJSON)
			if got := r.header.Get("Content-Type"); got != mediaJSON {
				t.Errorf("Content-Type: got %q, want %q", got, mediaJSON)
			}
			if got := r.header.Get("Vary"); got != "Accept" {
				t.Errorf("Vary: got %q, want %q", got, "Accept")
			}
			if got, want := r.header.Get("X-PyPI-Last-Serial"), strconv.FormatInt(serial, 10); got != want {
				t.Errorf("X-PyPI-Last-Serial: got %q, want %q", got, want)
			}
			if !bytes.HasSuffix(r.body, []byte("}\n")) {
				t.Errorf("body does not end with a newline: %q", r.body[max(0, len(r.body)-20):])
			}
			want := jsonOf(t, map[string]any{
				"meta":           map[string]any{"api-version": "1.4", "_last-serial": serial},
				"name":           "foo-bar",
				"project-status": map[string]any{"status": "active"},
				"versions":       []string{"1.0", "1.9", "1.10"}, // PEP 440 order, oldest first
				// PEP 708, always there as PyPI sends it (alternates_test.go).
				"alternate-locations": []any{},
				"files": []any{ // by version, then filename
					wantSimpleFile(f.instance, fb.wheel10, fb.uploadTime, false),
					wantSimpleFile(f.instance, fb.sdist10, fb.uploadTime, false),
					wantSimpleFile(f.instance, fb.wheel19, fb.uploadTime, true),
					wantSimpleFile(f.instance, fb.wheel110, fb.uploadTime, "broken build"),
				},
			})
			got := decodeJSON(t, r.body)
			if !reflect.DeepEqual(got, want) {
				t.Errorf("detail JSON:\ngot  %s\nwant %s", mustJSON(got), mustJSON(want))
			}
			// Deliberately absent (see renderDetail): pip 23.0 crashes on a
			// dict under "dist-info-metadata".
			for _, file := range got["files"].([]any) {
				if _, ok := file.(map[string]any)["dist-info-metadata"]; ok {
					t.Errorf("file %v has a \"dist-info-metadata\" key; want only core-metadata and data-dist-info-metadata", file.(map[string]any)["filename"])
				}
			}
		})

		for _, tt := range []struct{ accept, wantType string }{
			{"", "text/html; charset=utf-8"},
			{"text/html", "text/html; charset=utf-8"},
			{mediaHTMLv1, mediaHTMLv1 + "; charset=utf-8"},
			{"garbage/type", "text/html; charset=utf-8"},
		} {
			t.Run("HTML Accept="+tt.accept, func(t *testing.T) {
				r := f.getOK(t, "/simple/foo-bar/", "Accept", tt.accept)
				if got := r.header.Get("Content-Type"); got != tt.wantType {
					t.Errorf("Content-Type: got %q, want %q", got, tt.wantType)
				}
				if got := r.header.Get("Vary"); got != "Accept" {
					t.Errorf("Vary: got %q, want %q", got, "Accept")
				}
				if got, want := r.header.Get("X-PyPI-Last-Serial"), strconv.FormatInt(serial, 10); got != want {
					t.Errorf("X-PyPI-Last-Serial: got %q, want %q", got, want)
				}
				if got := repositoryVersion(t, r.body); got != "1.4" {
					t.Errorf("pypi:repository-version: got %q, want %q", got, "1.4")
				}
				if !bytes.Contains(r.body, []byte(`<meta name="pypi:repository-version" content="1.4">`)) {
					t.Errorf("body lacks the literal repository-version meta tag:\n%s", r.body)
				}
				want := []map[string]string{
					wantSimpleAnchor(f.instance, fb.wheel10, nil),
					wantSimpleAnchor(f.instance, fb.sdist10, nil),
					wantSimpleAnchor(f.instance, fb.wheel19, strp("")),
					wantSimpleAnchor(f.instance, fb.wheel110, strp("broken build")),
				}
				if got := anchorsOf(t, r.body); !reflect.DeepEqual(got, want) {
					t.Errorf("anchors:\ngot  %s\nwant %s", mustJSON(got), mustJSON(want))
				}
				// The attribute is escaped in the markup, not just parseable.
				if !bytes.Contains(r.body, []byte(`data-requires-python="&gt;=3.9"`)) {
					t.Errorf("body lacks the escaped data-requires-python=\"&gt;=3.9\":\n%s", r.body)
				}
				if want := fmt.Sprintf("<!--SERIAL %d-->\n", serial); !bytes.HasSuffix(r.body, []byte(want)) {
					t.Errorf("body does not end with %q:\n%s", want, r.body)
				}
			})
		}

		t.Run("core metadata is the wheel's METADATA", func(t *testing.T) {
			for _, w := range []*dist{fb.wheel10, fb.wheel19, fb.wheel110} {
				r := f.getOK(t, f.fileURL(w)+".metadata")
				if !bytes.Equal(r.body, w.Metadata) {
					t.Errorf("%s.metadata: got %q, want the wheel's METADATA %q", w.Filename, r.body, w.Metadata)
				}
				// The hash advertised in the page is that of the served bytes.
				if got, want := sha256Hex(r.body), sha256Hex(w.Metadata); got != want {
					t.Errorf("%s.metadata: sha256 %s, advertised %s", w.Filename, got, want)
				}
			}
		})

		t.Run("CORS and caching headers", func(t *testing.T) {
			r := f.getOK(t, "/simple/foo-bar/")
			for k, want := range map[string]string{
				"Access-Control-Allow-Origin":   "*",
				"Access-Control-Allow-Methods":  "GET",
				"Access-Control-Allow-Headers":  "Content-Type, If-Match, If-Modified-Since, If-None-Match, If-Unmodified-Since",
				"Access-Control-Max-Age":        "86400",
				"Access-Control-Expose-Headers": "X-PyPI-Last-Serial",
				"Cache-Control":                 "max-age=600, public",
			} {
				if got := r.header.Get(k); got != want {
					t.Errorf("%s: got %q, want %q", k, got, want)
				}
			}
		})
	})
}

func TestSimpleIndex(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		f := newFixture(t, d)
		seedFooBar(t, f)
		f.mustUpload(t, wheel(t, meta{Name: "Another", Version: "0.1"}))
		last, err := f.projects.LastSerial(context.Background())
		if err != nil {
			t.Fatal(err)
		}

		r := f.getOK(t, "/simple/", "Accept", mediaJSON)
		if got := r.header.Get("Content-Type"); got != mediaJSON {
			t.Errorf("Content-Type: got %q, want %q", got, mediaJSON)
		}
		if got, want := r.header.Get("X-PyPI-Last-Serial"), strconv.FormatInt(last, 10); got != want {
			t.Errorf("X-PyPI-Last-Serial: got %q, want %q (the newest journal entry)", got, want)
		}
		want := jsonOf(t, map[string]any{
			"meta": map[string]any{"api-version": "1.4", "_last-serial": last},
			"projects": []any{ // by normalized name, with display names
				map[string]any{"name": "Another", "_last-serial": f.serialOf(t, "another")},
				map[string]any{"name": "Foo_Bar", "_last-serial": f.serialOf(t, "foo-bar")},
			},
		})
		if got := decodeJSON(t, r.body); !reflect.DeepEqual(got, want) {
			t.Errorf("index JSON:\ngot  %s\nwant %s", mustJSON(got), mustJSON(want))
		}

		r = f.getOK(t, "/simple/")
		if got := r.header.Get("Content-Type"); got != "text/html; charset=utf-8" {
			t.Errorf("Content-Type: got %q, want %q", got, "text/html; charset=utf-8")
		}
		if got := r.header.Get("Vary"); got != "Accept, Accept-Encoding" {
			t.Errorf("Vary: got %q, want %q", got, "Accept, Accept-Encoding")
		}
		if got := repositoryVersion(t, r.body); got != "1.4" {
			t.Errorf("pypi:repository-version: got %q, want %q", got, "1.4")
		}
		wantAnchors := []map[string]string{
			{"href": "/simple/another/", "#text": "Another"},
			{"href": "/simple/foo-bar/", "#text": "Foo_Bar"},
		}
		if got := anchorsOf(t, r.body); !reflect.DeepEqual(got, wantAnchors) {
			t.Errorf("index anchors:\ngot  %v\nwant %v", got, wantAnchors)
		}
	})
}

func TestSimpleRedirectsToNormalizedName(t *testing.T) {
	f := newFixture(t, dbtest.NewSQLite(t))
	for _, path := range []string{"/simple/Foo_Bar/", "/simple/foo_bar", "/simple/FOO.BAR/", "/simple/foo-bar", "/simple/Foo__Bar"} {
		r := f.get(t, path)
		if r.code != http.StatusMovedPermanently {
			t.Errorf("GET %s: got status %d, want 301", path, r.code)
		}
		if got := r.header.Get("Location"); got != "/simple/foo-bar/" {
			t.Errorf("GET %s: Location %q, want %q", path, got, "/simple/foo-bar/")
		}
		if got := r.header.Get("Access-Control-Allow-Origin"); got != "*" {
			t.Errorf("GET %s: Access-Control-Allow-Origin %q, want %q", path, got, "*")
		}
	}
}

func TestSimpleSerialAndETag(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		f := newFixture(t, d)
		v1 := wheel(t, meta{Name: "demo", Version: "1.0"})
		f.mustUpload(t, v1)
		serial1 := f.serialOf(t, "demo")

		page1 := f.getOK(t, "/simple/demo/")
		etag1 := page1.header.Get("ETag")
		if got, want := page1.header.Get("X-PyPI-Last-Serial"), strconv.FormatInt(serial1, 10); got != want {
			t.Errorf("X-PyPI-Last-Serial: got %q, want %q", got, want)
		}
		if !strings.HasPrefix(etag1, `"`) || !strings.HasSuffix(etag1, `"`) || len(etag1) < 4 {
			t.Fatalf("ETag: got %q, want a quoted strong ETag", etag1)
		}
		// HEAD answers with the headers of GET and no body.
		req, _ := http.NewRequest("HEAD", f.url+"/simple/demo/", nil)
		if resp, err := f.client.Do(req); err != nil {
			t.Fatal(err)
		} else {
			resp.Body.Close()
			if resp.StatusCode != 200 || resp.ContentLength != int64(len(page1.body)) || resp.Header.Get("ETag") != etag1 {
				t.Errorf("HEAD: got %d, Content-Length %d, ETag %q; want 200, %d, %q", resp.StatusCode, resp.ContentLength, resp.Header.Get("ETag"), len(page1.body), etag1)
			}
		}
		jsonPage := f.getOK(t, "/simple/demo/", "Accept", mediaJSON)
		jsonETag := jsonPage.header.Get("ETag")
		if jsonETag == etag1 {
			t.Errorf("HTML and JSON share the ETag %s; want one per representation", etag1)
		}

		for _, tt := range []struct {
			name, accept, ifNoneMatch string
			want                      int
		}{
			{"same ETag", "", etag1, http.StatusNotModified},
			{"weak form of the ETag", "", "W/" + etag1, http.StatusNotModified},
			{"one of a list", "", `"nope", ` + etag1, http.StatusNotModified},
			{"star", "", "*", http.StatusNotModified},
			{"other ETag", "", `"nope"`, http.StatusOK},
			{"JSON ETag", mediaJSON, jsonETag, http.StatusNotModified},
			{"HTML ETag for JSON", mediaJSON, etag1, http.StatusOK},
		} {
			t.Run(tt.name, func(t *testing.T) {
				r := f.get(t, "/simple/demo/", "Accept", tt.accept, "If-None-Match", tt.ifNoneMatch)
				if r.code != tt.want {
					t.Fatalf("got status %d, want %d", r.code, tt.want)
				}
				if tt.want != http.StatusNotModified {
					return
				}
				if len(r.body) != 0 {
					t.Errorf("304 with a body of %d bytes, want none", len(r.body))
				}
				wantETag := etag1
				if tt.accept == mediaJSON {
					wantETag = jsonETag
				}
				if got := r.header.Get("ETag"); got != wantETag {
					t.Errorf("ETag: got %q, want %q", got, wantETag)
				}
				if got := r.header.Get("Vary"); got != "Accept" {
					t.Errorf("Vary: got %q, want %q", got, "Accept")
				}
				if got, want := r.header.Get("X-PyPI-Last-Serial"), strconv.FormatInt(serial1, 10); got != want {
					t.Errorf("X-PyPI-Last-Serial: got %q, want %q", got, want)
				}
			})
		}

		// A new upload through this instance shows up at once, with a new
		// serial and ETag.
		v2 := wheel(t, meta{Name: "demo", Version: "2.0"})
		f.mustUpload(t, v2)
		serial2 := f.serialOf(t, "demo")
		if serial2 <= serial1 {
			t.Fatalf("serial after the second upload: got %d, want more than %d", serial2, serial1)
		}
		page2 := f.get(t, "/simple/demo/", "If-None-Match", etag1)
		if page2.code != http.StatusOK {
			t.Fatalf("revalidating the old ETag after an upload: got status %d, want 200", page2.code)
		}
		if got, want := page2.header.Get("X-PyPI-Last-Serial"), strconv.FormatInt(serial2, 10); got != want {
			t.Errorf("X-PyPI-Last-Serial after upload: got %q, want %q", got, want)
		}
		if got := page2.header.Get("ETag"); got == etag1 || got == "" {
			t.Errorf("ETag after upload: got %q, want a new one (old %s)", got, etag1)
		}
		want := []map[string]string{wantSimpleAnchor(f.instance, v1, nil), wantSimpleAnchor(f.instance, v2, nil)}
		if got := anchorsOf(t, page2.body); !reflect.DeepEqual(got, want) {
			t.Errorf("anchors after upload:\ngot  %s\nwant %s", mustJSON(got), mustJSON(want))
		}
		// The index was invalidated too.
		last, _ := f.projects.LastSerial(context.Background())
		if got, want := f.getOK(t, "/simple/").header.Get("X-PyPI-Last-Serial"), strconv.FormatInt(last, 10); got != want {
			t.Errorf("index X-PyPI-Last-Serial after upload: got %q, want %q", got, want)
		}
	})
}

func TestSimpleUnknownProject(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		f := newFixture(t, d)
		for _, accept := range []string{"", mediaJSON} {
			r := f.get(t, "/simple/nope/", "Accept", accept)
			if r.code != http.StatusNotFound {
				t.Errorf("Accept %q: got status %d, want 404", accept, r.code)
			}
			if got, want := string(r.body), "No project named \"nope\".\n"; got != want {
				t.Errorf("Accept %q: body %q, want %q", accept, got, want)
			}
		}
		// The 404 is cached, but the project's first upload drops it.
		w := wheel(t, meta{Name: "nope", Version: "1.0"})
		f.mustUpload(t, w)
		r := f.getOK(t, "/simple/nope/")
		if got, want := anchorsOf(t, r.body), []map[string]string{wantSimpleAnchor(f.instance, w, nil)}; !reflect.DeepEqual(got, want) {
			t.Errorf("anchors:\ngot  %s\nwant %s", mustJSON(got), mustJSON(want))
		}
	})
}

// TestSimpleServedWithoutDatabase shows that warm pages, 304 revalidations
// and cached 404s cost no database query: they are still served after the
// database is closed, while anything that does query it fails.
func TestSimpleServedWithoutDatabase(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		f := newFixture(t, d)
		f.mustUpload(t, wheel(t, meta{Name: "demo", Version: "1.0"}))
		warmHTML := f.getOK(t, "/simple/demo/")
		warmJSON := f.getOK(t, "/simple/demo/", "Accept", mediaJSON)
		warmIndex := f.getOK(t, "/simple/")
		if r := f.get(t, "/simple/nope/"); r.code != http.StatusNotFound {
			t.Fatalf("unknown project: got status %d, want 404", r.code)
		}

		if err := d.Close(); err != nil {
			t.Fatal(err)
		}
		// Proof that the database is gone: the JSON API, which reads it on
		// every request, now fails.
		if r := f.get(t, "/pypi/demo/json"); r.code != http.StatusInternalServerError {
			t.Fatalf("JSON API with the database closed: got status %d, want 500", r.code)
		}

		for _, tt := range []struct {
			name, path, accept string
			warm               response
		}{
			{"HTML", "/simple/demo/", "", warmHTML},
			{"JSON", "/simple/demo/", mediaJSON, warmJSON},
			{"index", "/simple/", "", warmIndex},
		} {
			r := f.get(t, tt.path, "Accept", tt.accept)
			if r.code != http.StatusOK || !bytes.Equal(r.body, tt.warm.body) {
				t.Errorf("%s without database: got status %d and %d bytes, want 200 and the warm page (%d bytes)", tt.name, r.code, len(r.body), len(tt.warm.body))
			}
			etag := tt.warm.header.Get("ETag")
			r = f.get(t, tt.path, "Accept", tt.accept, "If-None-Match", etag)
			if r.code != http.StatusNotModified || len(r.body) != 0 {
				t.Errorf("%s revalidation without database: got status %d with %d bytes, want 304 and no body", tt.name, r.code, len(r.body))
			}
		}
		if r := f.get(t, "/simple/nope/"); r.code != http.StatusNotFound {
			t.Errorf("cached 404 without database: got status %d, want 404", r.code)
		}
	})
}

// TestSimpleCacheAcrossInstances runs two servers over two connections to
// one database, as two replicas behind a load balancer would: a change made
// through A reaches B's cache through the journal.
func TestSimpleCacheAcrossInstances(t *testing.T) {
	ctx := context.Background()
	open := func(t *testing.T, url string) *db.DB {
		d, err := db.Open(ctx, url)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { d.Close() })
		return d
	}
	for _, dialect := range []string{"sqlite", "postgres"} {
		t.Run(dialect, func(t *testing.T) {
			var url string
			if dialect == "sqlite" {
				url = "sqlite:" + filepath.Join(t.TempDir(), "shared.db")
			} else {
				url = dbtest.PostgresURL(t)
			}
			dA, dB := open(t, url), open(t, url)
			if _, err := dA.Migrate(ctx, nil); err != nil {
				t.Fatal(err)
			}
			blobDir := t.TempDir() // shared file storage
			a := newFixtureWith(t, dA, fixtureConfig{blobDir: blobDir})
			b := newInstance(t, dB, fixtureConfig{blobDir: blobDir})

			v1 := wheel(t, meta{Name: "demo", Version: "1.0"})
			a.mustUpload(t, v1)

			// Warm B: the project in both formats, the index, and a 404.
			oldHTML := b.getOK(t, "/simple/demo/")
			oldJSON := b.getOK(t, "/simple/demo/", "Accept", mediaJSON)
			oldIndex := b.getOK(t, "/simple/", "Accept-Encoding", "gzip")
			if r := b.get(t, "/simple/later/"); r.code != http.StatusNotFound {
				t.Fatalf("B, unknown project: got status %d, want 404", r.code)
			}

			v2 := wheel(t, meta{Name: "demo", Version: "2.0"})
			a.mustUpload(t, v2)
			later := wheel(t, meta{Name: "later", Version: "1.0"})
			a.mustUpload(t, later)

			// Until B reads the journal it serves what it has.
			if r := b.getOK(t, "/simple/demo/"); !bytes.Equal(r.body, oldHTML.body) {
				t.Fatalf("B changed before reading the journal; the test cannot tell sync from no caching")
			}
			if r := b.getOK(t, "/simple/", "Accept-Encoding", "gzip"); !bytes.Equal(r.body, oldIndex.body) {
				t.Fatalf("B's index changed before reading the journal; the test cannot tell sync from no caching")
			}
			if err := b.srv.simple.sync(ctx, b.projects); err != nil {
				t.Fatalf("sync: %v", err)
			}

			wantSerial := strconv.FormatInt(b.serialOf(t, "demo"), 10)
			r := b.getOK(t, "/simple/demo/")
			if got, want := anchorsOf(t, r.body), []map[string]string{wantSimpleAnchor(b, v1, nil), wantSimpleAnchor(b, v2, nil)}; !reflect.DeepEqual(got, want) {
				t.Errorf("B after sync, anchors:\ngot  %s\nwant %s", mustJSON(got), mustJSON(want))
			}
			if got := r.header.Get("X-PyPI-Last-Serial"); got != wantSerial {
				t.Errorf("B after sync, X-PyPI-Last-Serial: got %q, want %q", got, wantSerial)
			}
			if got, old := r.header.Get("ETag"), oldHTML.header.Get("ETag"); got == old {
				t.Errorf("B after sync, ETag: got the old %s, want a new one", got)
			}
			if r := b.get(t, "/simple/demo/", "Accept", mediaJSON, "If-None-Match", oldJSON.header.Get("ETag")); r.code != http.StatusOK {
				t.Errorf("B after sync, revalidating the old JSON ETag: got status %d, want 200", r.code)
			}
			if r := b.get(t, "/simple/later/"); r.code != http.StatusOK {
				t.Errorf("B after sync, the new project: got status %d, want 200 (the cached 404 must be dropped)", r.code)
			}
			if got := anchorsOf(t, b.getOK(t, "/simple/").body); len(got) != 2 || got[1]["href"] != "/simple/later/" {
				t.Errorf("B after sync, index anchors: got %v, want demo and later", got)
			}
			checkRoot(t, b, "B after sync")
			if r := b.get(t, "/simple/", "Accept-Encoding", "gzip", "If-None-Match", oldIndex.header.Get("ETag")); r.code != http.StatusOK {
				t.Errorf("B after sync, revalidating the old index ETag: got status %d, want 200", r.code)
			}
			// B serves the new file from the shared storage.
			if r := b.getOK(t, b.fileURL(v2)); !bytes.Equal(r.body, v2.Content) {
				t.Errorf("B serving %s: got %d bytes, want the uploaded %d", v2.Filename, len(r.body), len(v2.Content))
			}

			t.Run("WatchChanges", func(t *testing.T) {
				ctx, cancel := context.WithCancel(context.Background())
				done := make(chan struct{})
				go func() { defer close(done); b.srv.WatchChanges(ctx, 10*time.Millisecond) }()
				defer func() { cancel(); <-done }()

				v3 := wheel(t, meta{Name: "demo", Version: "3.0"})
				a.mustUpload(t, v3)
				want := []map[string]string{wantSimpleAnchor(b, v1, nil), wantSimpleAnchor(b, v2, nil), wantSimpleAnchor(b, v3, nil)}
				// Eventual consistency: no timing is asserted, only that the
				// change arrives within a generous bound.
				deadline := time.Now().Add(10 * time.Second)
				for {
					got := anchorsOf(t, b.getOK(t, "/simple/demo/").body)
					if reflect.DeepEqual(got, want) {
						break
					}
					if time.Now().After(deadline) {
						t.Fatalf("B did not show %s within 10s; anchors: %s", v3.Filename, mustJSON(got))
					}
					time.Sleep(10 * time.Millisecond)
				}
				if got, want := b.getOK(t, "/simple/demo/").header.Get("X-PyPI-Last-Serial"), strconv.FormatInt(b.serialOf(t, "demo"), 10); got != want {
					t.Errorf("B after WatchChanges, X-PyPI-Last-Serial: got %q, want %q", got, want)
				}
			})
		})
	}
}
