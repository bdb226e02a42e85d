package web

// The root index /simple/: maintained chunk by chunk, it must always equal
// a full render of the projects table, in both formats and both encodings;
// a change must cost one chunk, not every project; concurrent requests must
// share one pass; and the gzip form must decode with pip's own HTTP stack.

import (
	"bytes"
	"compress/gzip"
	"context"
	"fmt"
	"hash/crc32"
	"html"
	"io"
	"math/rand/v2"
	"net/http"
	"os"
	"os/exec"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/gatehouse-index/gatehouse/internal/db"
	"github.com/gatehouse-index/gatehouse/internal/db/dbtest"
	"github.com/gatehouse-index/gatehouse/internal/pep"
)

// seedProjects inserts n projects straight into the database, without
// releases: enough for the root index, and fast enough for a million
// (one INSERT … SELECT over a generated sequence). Display names are
// "Pkg_<hex>.Zz", normalized "pkg-<hex>-zz"; the hex is scrambled so that
// names do not arrive in sorted order. Serials are the row numbers.
func seedProjects(t testing.TB, d *db.DB, n int, prefix string) {
	t.Helper()
	ctx := context.Background()
	// i*2654435761 mod 2^32 is a bijection on 32-bit values: unique names.
	hexExpr := map[db.Dialect]string{
		db.SQLite:   `printf('%08x', (i * 2654435761) % 4294967296)`,
		db.Postgres: `lpad(to_hex((i * 2654435761) % 4294967296), 8, '0')`,
	}[d.Dialect]
	q := `WITH RECURSIVE seq(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM seq WHERE i < ` + strconv.Itoa(n) + `)
		INSERT INTO projects (name, normalized_name, ultranormalized_name, created_at, last_serial)
		SELECT '` + prefix + `_' || ` + hexExpr + ` || '.Zz', '` + strings.ToLower(prefix) + `-' || ` + hexExpr + ` || '-zz',
			'` + strings.ToLower(prefix) + `' || ` + hexExpr + ` || 'zz', $1, i FROM seq`
	if _, err := d.ExecContext(ctx, q, t0); err != nil {
		t.Fatalf("seeding %d projects: %v", n, err)
	}
}

// wantRoot renders the root index the simple way, from the whole table:
// what every incremental update must still equal.
func wantRoot(t *testing.T, in *instance) (htmlBody, jsonBody []byte) {
	t.Helper()
	ctx := context.Background()
	serial, err := in.projects.LastSerial(ctx)
	if err != nil {
		t.Fatal(err)
	}
	ps, err := in.projects.ListProjects(ctx)
	if err != nil {
		t.Fatal(err)
	}
	sort.Slice(ps, func(i, j int) bool { return ps[i].NormalizedName < ps[j].NormalizedName })
	var hb bytes.Buffer
	hb.WriteString("<!DOCTYPE html>\n<html>\n  <head>\n    <meta name=\"pypi:repository-version\" content=\"1.4\">\n    <title>Simple index</title>\n  </head>\n  <body>\n")
	type jp struct {
		Name   string `json:"name"`
		Serial int64  `json:"_last-serial"`
	}
	list := []jp{}
	for _, p := range ps {
		fmt.Fprintf(&hb, "    <a href=\"/simple/%s/\">%s</a>\n", p.NormalizedName, html.EscapeString(p.Name))
		list = append(list, jp{p.Name, p.LastSerial})
	}
	fmt.Fprintf(&hb, "  </body>\n</html>\n<!--SERIAL %d-->\n", serial)
	jb, err := marshalSimple(map[string]any{"meta": map[string]any{"api-version": "1.4", "_last-serial": serial}, "projects": list})
	if err != nil {
		t.Fatal(err)
	}
	return hb.Bytes(), jb
}

func gunzip(t *testing.T, b []byte) []byte {
	t.Helper()
	zr, err := gzip.NewReader(bytes.NewReader(b))
	if err != nil {
		t.Fatalf("gzip header: %v", err)
	}
	zr.Multistream(false) // one member, as we send it
	out, err := io.ReadAll(zr)
	if err != nil {
		t.Fatalf("gunzip (CRC and length are checked too): %v", err)
	}
	return out
}

// checkRoot fetches the root in both formats and both encodings and
// compares each with a full render.
func checkRoot(t *testing.T, in *instance, when string) {
	t.Helper()
	wantHTML, wantJSON := wantRoot(t, in)
	for _, tt := range []struct {
		accept string
		want   []byte
	}{{"", wantHTML}, {mediaJSON, wantJSON}} {
		plain := in.getOK(t, "/simple/", "Accept", tt.accept)
		if !bytes.Equal(plain.body, tt.want) {
			t.Fatalf("%s, Accept %q: the index differs from a full render\n%s", when, tt.accept, firstDiff(plain.body, tt.want))
		}
		z := in.getOK(t, "/simple/", "Accept", tt.accept, "Accept-Encoding", "gzip")
		if got := z.header.Get("Content-Encoding"); got != "gzip" {
			t.Fatalf("%s: Content-Encoding %q, want gzip", when, got)
		}
		if got := gunzip(t, z.body); !bytes.Equal(got, tt.want) {
			t.Fatalf("%s, Accept %q, gzip: the index differs from a full render\n%s", when, tt.accept, firstDiff(got, tt.want))
		}
		if plain.header.Get("ETag") == z.header.Get("ETag") {
			t.Fatalf("%s: identity and gzip share the ETag %s", when, z.header.Get("ETag"))
		}
	}
}

func firstDiff(got, want []byte) string {
	n := 0
	for n < len(got) && n < len(want) && got[n] == want[n] {
		n++
	}
	lo := max(n-80, 0)
	return fmt.Sprintf("first difference at byte %d of %d (want %d):\ngot  …%q\nwant …%q",
		n, len(got), len(want), got[lo:min(n+80, len(got))], want[lo:min(n+80, len(want))])
}

// nameWhere finds a project name (display form, normalized by
// pep.NormalizeName) for which isBoundary is as asked.
func nameWhere(t *testing.T, boundary bool, prefix string) string {
	t.Helper()
	for i := range 100000 {
		n := fmt.Sprintf("%s-%d", prefix, i)
		if isBoundary(pep.NormalizeName(n)) == boundary {
			return n
		}
	}
	t.Fatal("no such name")
	return ""
}

func deleteProject(t *testing.T, in *instance, norm string) {
	t.Helper()
	r, err := in.db.ExecContext(context.Background(), `DELETE FROM projects WHERE normalized_name = $1`, norm)
	if err != nil {
		t.Fatal(err)
	}
	if n, _ := r.RowsAffected(); n != 1 {
		t.Fatalf("delete %s: %d rows", norm, n)
	}
}

// seededName is a seeded project (no releases, so its row can be deleted)
// for which isBoundary is as asked, skipping the first skip of them.
func seededName(t *testing.T, in *instance, boundary bool, skip int) string {
	t.Helper()
	ps, err := in.projects.ListProjects(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range ps {
		if strings.HasPrefix(p.NormalizedName, "pkg-") && isBoundary(p.NormalizedName) == boundary {
			if skip == 0 {
				return p.NormalizedName
			}
			skip--
		}
	}
	t.Fatal("no such seeded project")
	return ""
}

func maxChunk(in *instance) (n int) {
	for _, c := range in.srv.simple.root.cur.Load().chunks {
		n = max(n, c.n)
	}
	return n
}

// TestRootIndexIncremental changes the index every way it can change and
// checks, after each, that the page equals a full render while only the
// affected chunks were rendered; and that a fresh instance, building from
// scratch, produces the same bytes and ETags (chunking depends on the names
// only, so replicas agree).
func TestRootIndexIncremental(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		f := newFixture(t, d)
		const n = 3000
		seedProjects(t, d, n, "Pkg")
		checkRoot(t, f.instance, "first render")
		st := f.srv.PageCacheStats()
		if st.RootBuilds != 1 || st.RootEntriesRendered != n {
			t.Fatalf("first render: %d builds rendering %d entries, want 1 and %d", st.RootBuilds, st.RootEntriesRendered, n)
		}
		if st.RootChunks < 3 {
			t.Fatalf("%d projects make %d chunks; the test needs several", n, st.RootChunks)
		}

		// step changes the index, invalidates as the server would, and
		// checks the page and what it cost.
		step := func(what string, change func()) {
			t.Helper()
			before := f.srv.PageCacheStats()
			limit := 2 * maxChunk(f.instance) // a chunk and a neighbour, at most
			change()
			checkRoot(t, f.instance, what)
			after := f.srv.PageCacheStats()
			if after.RootBuilds != before.RootBuilds {
				t.Errorf("%s: the whole index was rendered again (%d builds, was %d)", what, after.RootBuilds, before.RootBuilds)
			}
			if got := after.RootEntriesRendered - before.RootEntriesRendered; got == 0 || got > uint64(limit) {
				t.Errorf("%s: %d entries rendered; want some, and at most %d of %d", what, got, limit, n)
			}
		}
		step("upload to an existing project", func() {
			f.mustUpload(t, wheel(t, meta{Name: "Existing", Version: "1.0"})) // creates it…
			checkRoot(t, f.instance, "new project")
			f.mustUpload(t, wheel(t, meta{Name: "Existing", Version: "2.0"})) // …then changes it
		})
		step("new project that starts a chunk", func() {
			f.mustUpload(t, wheel(t, meta{Name: nameWhere(t, true, "Boundary"), Version: "1.0"}))
		})
		step("new project inside a chunk", func() {
			f.mustUpload(t, wheel(t, meta{Name: nameWhere(t, false, "Inner"), Version: "1.0"}))
		})
		step("new project before every other", func() {
			f.mustUpload(t, wheel(t, meta{Name: "0000-first", Version: "1.0"}))
		})
		// There is no way to delete a project yet; the index handles it
		// anyway, as a project whose row is gone.
		step("deleted project that started a chunk", func() {
			lo := seededName(t, f.instance, true, 0)
			deleteProject(t, f.instance, lo)
			f.srv.simple.invalidate(lo)
		})
		step("deleted project inside a chunk", func() {
			norm := seededName(t, f.instance, false, 10)
			deleteProject(t, f.instance, norm)
			f.srv.simple.invalidate(norm)
		})
		step("several changes in one pass", func() {
			f.mustUpload(t, wheel(t, meta{Name: "zzz-last", Version: "1.0"}))
			f.mustUpload(t, wheel(t, meta{Name: nameWhere(t, true, "Another-boundary"), Version: "1.0"}))
			gone := seededName(t, f.instance, false, 20)
			deleteProject(t, f.instance, gone)
			f.srv.simple.invalidate(gone)
		})

		fresh := newInstance(t, d, fixtureConfig{})
		for _, hdr := range [][]string{{}, {"Accept", mediaJSON}, {"Accept-Encoding", "gzip"}, {"Accept", mediaJSON, "Accept-Encoding", "gzip"}} {
			a, b := f.getOK(t, "/simple/", hdr...), fresh.getOK(t, "/simple/", hdr...)
			if !bytes.Equal(a.body, b.body) || a.header.Get("ETag") != b.header.Get("ETag") {
				t.Errorf("%v: the updated index (%d bytes, ETag %s) differs from a fresh build (%d bytes, ETag %s)",
					hdr, len(a.body), a.header.Get("ETag"), len(b.body), b.header.Get("ETag"))
			}
		}
	})
}

// TestRootIndexOnePassForConcurrentRequests: after an upload, 32 requests
// at once cause one pass that renders one chunk, not 32 renders of every
// project; the project page, likewise, is rendered once. The database is
// held (a transaction on SQLite's one connection, a table lock on
// PostgreSQL) until every request has arrived and is waiting, so the
// requests really are concurrent.
func TestRootIndexOnePassForConcurrentRequests(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		f := newFixture(t, d)
		seedProjects(t, d, 2000, "Pkg")
		f.mustUpload(t, wheel(t, meta{Name: "demo", Version: "1.0"}))
		f.getOK(t, "/simple/")
		f.getOK(t, "/simple/demo/")
		f.mustUpload(t, wheel(t, meta{Name: "demo", Version: "2.0"}))
		want, _ := wantRoot(t, f.instance)
		before := f.srv.PageCacheStats()

		const clients = 32
		arrived := make(chan struct{}, 4*clients)
		f.srv.simple.root.onWait = func() { arrived <- struct{}{} }
		f.srv.simple.onMiss = func() { arrived <- struct{}{} }
		hold, err := d.BeginTx(t.Context(), nil)
		if err != nil {
			t.Fatal(err)
		}
		if d.Dialect == db.Postgres {
			if _, err := hold.Exec(`LOCK TABLE projects IN ACCESS EXCLUSIVE MODE`); err != nil {
				t.Fatal(err)
			}
		}

		var wg sync.WaitGroup
		bodies := make([][]byte, 2*clients)
		codes := make([]int, 2*clients)
		for i := range 2 * clients {
			path := "/simple/"
			if i%2 == 1 {
				path = "/simple/demo/"
			}
			wg.Go(func() {
				resp, err := f.client.Get(f.url + path)
				if err != nil {
					t.Error(err)
					return
				}
				defer resp.Body.Close()
				codes[i] = resp.StatusCode
				bodies[i], _ = io.ReadAll(resp.Body)
			})
		}
		for range 2 * clients {
			<-arrived
		}
		hold.Rollback()
		wg.Wait()
		for i := 0; i < 2*clients; i += 2 {
			if codes[i] != 200 || !bytes.Equal(bodies[i], want) {
				t.Fatalf("request %d: status %d, %d bytes; want 200 and the full render (%d bytes)", i, codes[i], len(bodies[i]), len(want))
			}
			if codes[i+1] != 200 || !bytes.Equal(bodies[i+1], bodies[1]) {
				t.Fatalf("project page request %d: status %d, or a different body", i+1, codes[i+1])
			}
		}
		after := f.srv.PageCacheStats()
		if got := after.RootBuilds - before.RootBuilds; got != 0 {
			t.Errorf("root: %d full renders after an upload to an existing project, want 0", got)
		}
		if got := after.RootUpdates - before.RootUpdates; got != 1 {
			t.Errorf("root: %d passes for %d concurrent requests, want 1", got, clients)
		}
		if got := after.RootChunkRenders - before.RootChunkRenders; got != 1 {
			t.Errorf("root: %d chunks rendered for an upload to one existing project, want 1", got)
		}
		if got := after.Renders - before.Renders; got != 1 {
			t.Errorf("project page: %d renders for %d concurrent requests after an upload, want 1", got, clients)
		}
	})
}

// TestRootIndexGzip: pip's requests sends Accept-Encoding: gzip; the page
// goes out precompressed, with its own ETag, and revalidates per encoding.
func TestRootIndexGzip(t *testing.T) {
	f := newFixture(t, dbtest.NewSQLite(t))
	seedProjects(t, f.db, 1500, "Pkg")
	plain := f.getOK(t, "/simple/")
	z := f.getOK(t, "/simple/", "Accept-Encoding", "gzip, deflate")
	for _, r := range []response{plain, z} {
		if got := r.header.Get("Vary"); got != "Accept, Accept-Encoding" {
			t.Errorf("Vary: got %q, want %q", got, "Accept, Accept-Encoding")
		}
	}
	if plain.header.Get("Content-Encoding") != "" || z.header.Get("Content-Encoding") != "gzip" {
		t.Fatalf("Content-Encoding: %q without gzip, %q with; want none and gzip", plain.header.Get("Content-Encoding"), z.header.Get("Content-Encoding"))
	}
	if got := z.header.Get("Content-Length"); got != strconv.Itoa(len(z.body)) {
		t.Errorf("gzip Content-Length %s, body %d bytes", got, len(z.body))
	}
	if len(z.body)*4 > len(plain.body) {
		t.Errorf("gzip body %d bytes for %d uncompressed; want it at least 4× smaller", len(z.body), len(plain.body))
	}
	if got := gunzip(t, z.body); !bytes.Equal(got, plain.body) {
		t.Fatalf("gunzipped page differs from the identity page\n%s", firstDiff(got, plain.body))
	}

	for _, tt := range []struct {
		name, encoding, inm string
		want                int
	}{
		{"gzip ETag, gzip", "gzip", z.header.Get("ETag"), http.StatusNotModified},
		{"identity ETag, identity", "", plain.header.Get("ETag"), http.StatusNotModified},
		{"gzip ETag, identity", "", z.header.Get("ETag"), http.StatusOK},
		{"identity ETag, gzip", "gzip", plain.header.Get("ETag"), http.StatusOK},
		{"gzip refused by q=0", "gzip;q=0, identity", plain.header.Get("ETag"), http.StatusNotModified},
		{"star", "*", z.header.Get("ETag"), http.StatusNotModified},
	} {
		r := f.get(t, "/simple/", "Accept-Encoding", tt.encoding, "If-None-Match", tt.inm)
		if r.code != tt.want {
			t.Errorf("%s: status %d, want %d", tt.name, r.code, tt.want)
		}
	}

	// HEAD: the length of what GET would send, no body.
	req, _ := http.NewRequest("HEAD", f.url+"/simple/", nil)
	req.Header.Set("Accept-Encoding", "gzip")
	resp, err := f.client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.ContentLength != int64(len(z.body)) {
		t.Errorf("HEAD with gzip: Content-Length %d, want %d", resp.ContentLength, len(z.body))
	}

	// pip's vendored requests and urllib3, as pip would fetch it.
	python := os.Getenv("GATEHOUSE_TEST_PYTHON")
	if python == "" {
		python = "python3"
	}
	out, err := exec.Command(python, "-c", `
import sys
from pip._vendor import requests
r = requests.get(sys.argv[1])
r.raise_for_status()
sys.stdout.write(r.headers.get("Content-Encoding", "") + "\n")
sys.stdout.buffer.write(r.content)
`, f.url+"/simple/").Output()
	if err != nil {
		t.Fatalf("pip's requests fetching /simple/: %v", err)
	}
	enc, body, _ := bytes.Cut(out, []byte("\n"))
	if string(enc) != "gzip" || !bytes.Equal(body, plain.body) {
		t.Errorf("pip's requests: Content-Encoding %q, %d bytes; want gzip and the %d-byte page", enc, len(body), len(plain.body))
	}
}

func TestAcceptsGzip(t *testing.T) {
	for h, want := range map[string]bool{
		"": false, "gzip": true, "gzip, deflate": true, "deflate, gzip;q=0.5": true, "GZIP": true, "x-gzip": true,
		"gzip;q=0": false, "gzip; q=0.0": false, "br": false, "*": true, "*;q=0": false, "gzip;q=0, *": false, "identity": false,
	} {
		if got := acceptsGzip(h); got != want {
			t.Errorf("acceptsGzip(%q) = %v, want %v", h, got, want)
		}
	}
}

// TestCRCCombine checks the CRC-32 combination that the gzip trailer is
// built from against CRC-32 of the concatenated bytes.
func TestCRCCombine(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for range 200 {
		a := make([]byte, rng.IntN(5000))
		b := make([]byte, rng.IntN(70000))
		for i := range a {
			a[i] = byte(rng.Uint32())
		}
		for i := range b {
			b[i] = byte(rng.Uint32())
		}
		want := crc32.ChecksumIEEE(append(slices.Clone(a), b...))
		if got := crcCombine(crc32.ChecksumIEEE(a), crc32.ChecksumIEEE(b), crcShift(int64(len(b)))); got != want {
			t.Fatalf("combine of %d and %d bytes: %08x, want %08x", len(a), len(b), got, want)
		}
	}
}
