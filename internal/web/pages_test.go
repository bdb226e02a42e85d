package web

// Browser pages: the home page, project pages, and what an uploader can and
// cannot put on them.

import (
	"golang.org/x/net/html"
	"net/http"
	"reflect"
	"strings"
	"testing"

	"github.com/gatehouse-index/gatehouse/internal/db"
	"github.com/gatehouse-index/gatehouse/internal/db/dbtest"
)

const wantCSP = "default-src 'none'; script-src 'self'; connect-src 'self'; style-src 'self'; img-src 'self' https: data:; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"

// checkPageHeaders checks the security headers every page carries.
func checkPageHeaders(t *testing.T, r response) {
	t.Helper()
	for k, want := range map[string]string{
		"Content-Type":            "text/html; charset=utf-8",
		"Content-Security-Policy": wantCSP,
		"X-Content-Type-Options":  "nosniff",
		"X-Frame-Options":         "DENY",
		"Referrer-Policy":         "no-referrer",
	} {
		if got := r.header.Get(k); got != want {
			t.Errorf("%s: got %q, want %q", k, got, want)
		}
	}
	csp := r.header.Get("Content-Security-Policy")
	// Only our own script file (webauthn.js) may run: no inline script, no
	// eval, nothing from another origin.
	if strings.Contains(csp, "unsafe-inline") || strings.Contains(csp, "unsafe-eval") || !strings.Contains(csp, "script-src 'self';") {
		t.Errorf("Content-Security-Policy %q allows more script than 'self'", csp)
	}
}

func TestHomePage(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		f := newFixture(t, d)
		empty := f.getOK(t, "/")
		checkPageHeaders(t, empty)
		if got := text(parseHTML(t, empty.body)); !strings.Contains(got, "Nothing has been uploaded yet.") {
			t.Errorf("empty index home page: got %q, want the 'Nothing has been uploaded yet.' notice", got)
		}

		seedFooBar(t, f)
		r := f.getOK(t, "/")
		checkPageHeaders(t, r)
		var got [][2]string
		for _, li := range findAll(findAll(parseHTML(t, r.body), byClass("ul", "releases"))[0], byTag("li")) {
			a := findAll(li, byTag("a"))[0]
			got = append(got, [2]string{attr(a, "href"), text(li)})
		}
		// Newest first.
		want := [][2]string{
			{"/project/foo-bar/1.9/", "Foo_Bar 1.9 2026-03-01 The foo bar"},
			{"/project/foo-bar/1.10/", "Foo_Bar 1.10 2026-03-01 The foo bar"},
			{"/project/foo-bar/1.0/", "Foo_Bar 1.0 2026-03-01 The foo bar"},
		}
		if !reflect.DeepEqual(got, want) {
			t.Errorf("recent releases:\ngot  %q\nwant %q", got, want)
		}
	})
}

// projectPageView is what a project page shows, pulled out of its HTML.
type projectPageView struct {
	Heading     string
	Notices     []string // p.notice, in order
	Install     string
	Description string   // text of the description section
	Links       []string // "label href"
	History     []string // "version [yanked] [current]"
	Files       []fileView
}

type fileView struct {
	Href, Name, Type string
	Yanked           bool
	Hashes           []string // SHA256, BLAKE2b-256, MD5
}

func viewProjectPage(t *testing.T, body []byte) projectPageView {
	t.Helper()
	doc := parseHTML(t, body)
	var v projectPageView
	v.Heading = text(findAll(doc, byTag("h1"))[0])
	for _, p := range findAll(doc, byClass("p", "notice")) {
		v.Notices = append(v.Notices, text(p))
	}
	v.Install = text(findAll(doc, byClass("pre", "install"))[0])
	desc := findAll(doc, byClass("section", "description"))[0]
	v.Description = text(desc)
	for _, aside := range findAll(doc, byTag("aside")) {
		for _, ul := range findAll(aside, byTag("ul")) {
			for _, a := range findAll(ul, byTag("a")) {
				v.Links = append(v.Links, text(a)+" "+attr(a, "href"))
			}
		}
	}
	for _, li := range findAll(findAll(doc, byClass("ol", "history"))[0], byTag("li")) {
		s := text(findAll(li, byTag("a"))[0])
		if len(findAll(li, byClass("span", "yanked"))) > 0 {
			s += " yanked"
		}
		if attr(li, "aria-current") == "page" {
			s += " current"
		}
		v.History = append(v.History, s)
	}
	for _, tr := range findAll(findAll(doc, byTag("tbody"))[0], byTag("tr")) {
		tds := findAll(tr, byTag("td"))
		a := findAll(tds[0], byTag("a"))[0]
		fv := fileView{Href: attr(a, "href"), Name: text(a), Type: text(tds[1]), Yanked: len(findAll(tds[0], byClass("span", "yanked"))) > 0}
		for _, code := range findAll(tds[0], byTag("code")) {
			fv.Hashes = append(fv.Hashes, text(code))
		}
		v.Files = append(v.Files, fv)
	}
	return v
}

func TestProjectPage(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		f := newFixture(t, d)
		fb := seedFooBar(t, f)
		hashes := func(d *dist) []string {
			return []string{sha256Hex(d.Content), blake2Hex(d.Content), md5Hex(d.Content)}
		}

		t.Run("latest", func(t *testing.T) {
			for _, path := range []string{"/project/foo-bar/", "/project/Foo_Bar/", "/project/foo-bar/1.0/"} {
				r := f.getOK(t, path)
				checkPageHeaders(t, r)
				got := viewProjectPage(t, r.body)
				want := projectPageView{
					Heading:     "Foo_Bar 1.0",
					Install:     "pip install --index-url " + f.url + "/simple/ Foo_Bar==1.0",
					Description: "Description Foo Bar A test project.",
					Links:       []string{"Homepage https://example.com/foo-bar", "Source https://example.com/foo-bar/src"},
					History:     []string{"1.10 yanked", "1.9 yanked", "1.0 current"},
					Files: []fileView{
						{Href: f.fileURL(fb.wheel10), Name: fb.wheel10.Filename, Type: "Wheel (py3)", Hashes: hashes(fb.wheel10)},
						{Href: f.fileURL(fb.sdist10), Name: fb.sdist10.Filename, Type: "Source", Hashes: hashes(fb.sdist10)},
					},
				}
				if !reflect.DeepEqual(got, want) {
					t.Errorf("GET %s:\ngot  %s\nwant %s", path, mustJSON(got), mustJSON(want))
				}
			}
			// The markdown description is rendered, not shown as source.
			body := string(f.getOK(t, "/project/foo-bar/").body)
			if !strings.Contains(body, "<em>test</em>") {
				t.Errorf("project page lacks the rendered description <em>test</em>")
			}
		})

		t.Run("yanked release", func(t *testing.T) {
			got := viewProjectPage(t, f.getOK(t, "/project/foo-bar/1.10/").body)
			want := projectPageView{
				Heading: "Foo_Bar 1.10",
				Notices: []string{
					"Yanked: this release was withdrawn: broken build. pip installs it only when pinned exactly.",
					"This is not the latest release.",
				},
				Install:     "pip install --index-url " + f.url + "/simple/ Foo_Bar==1.10",
				Description: "Description The author of this package has not provided a project description.",
				History:     []string{"1.10 yanked current", "1.9 yanked", "1.0"},
				Files: []fileView{
					{Href: f.fileURL(fb.wheel110), Name: fb.wheel110.Filename, Type: "Wheel (py3)", Yanked: true, Hashes: hashes(fb.wheel110)},
				},
			}
			if !reflect.DeepEqual(got, want) {
				t.Errorf("GET /project/foo-bar/1.10/:\ngot  %s\nwant %s", mustJSON(got), mustJSON(want))
			}
			// Without a reason, the notice just says it was withdrawn.
			got = viewProjectPage(t, f.getOK(t, "/project/foo-bar/1.9/").body)
			if want := "Yanked: this release was withdrawn. pip installs it only when pinned exactly."; len(got.Notices) == 0 || got.Notices[0] != want {
				t.Errorf("GET /project/foo-bar/1.9/: notices %q, want first %q", got.Notices, want)
			}
		})

		t.Run("not found", func(t *testing.T) {
			for _, path := range []string{"/project/nope/", "/project/foo-bar/9.9/", "/project/foo-bar/not-a-version/", "/no/such/page"} {
				r := f.get(t, path)
				if r.code != http.StatusNotFound {
					t.Errorf("GET %s: got status %d, want 404", path, r.code)
				}
				checkPageHeaders(t, r)
			}
		})
	})
}

// assertInert fails if a page could run script: a <script> (or other
// active) element, an on* event handler attribute, or a javascript: URL
// anywhere in the parsed page, or the literal markers in its source.
func assertInert(t *testing.T, page string, body []byte) {
	t.Helper()
	for _, marker := range []string{"<script>alert", "onerror=", "javascript:"} {
		if strings.Contains(strings.ToLower(string(body)), marker) {
			t.Errorf("%s: page contains %q", page, marker)
		}
	}
	for n := range parseHTML(t, body).Descendants() {
		if n.Type != htmlElement {
			continue
		}
		switch n.Data {
		case "script":
			// The one script allowed is the site's own webauthn.js, by
			// reference, with no inline content.
			if !ownScript(n) {
				t.Errorf("%s: page has a <script> element that is not the site's webauthn.js", page)
			}
		case "iframe", "object", "embed", "frame", "base", "form":
			t.Errorf("%s: page has a <%s> element", page, n.Data)
		}
		for _, a := range n.Attr {
			if strings.HasPrefix(strings.ToLower(a.Key), "on") {
				t.Errorf("%s: <%s> has event handler %s=%q", page, n.Data, a.Key, a.Val)
			}
			v := strings.ToLower(strings.Join(strings.Fields(a.Val), ""))
			if strings.Contains(v, "javascript:") || strings.Contains(v, "vbscript:") || strings.HasPrefix(v, "data:text/html") {
				t.Errorf("%s: <%s %s=%q> is a script URL", page, n.Data, a.Key, a.Val)
			}
		}
	}
}

func TestDescriptionXSS(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		f := newFixture(t, d)
		const evilSummary = `<script>alert(1)</script> summary`
		markdown := meta{
			Name:    "md-xss",
			Version: "1.0",
			Summary: evilSummary,
			Description: "# Title\n\n**bold** text\n\n<script>alert(1)</script>\n\n" +
				"<img src=x onerror=alert(1)>\n\n" +
				"[x](javascript:alert(1))\n\n" +
				"[y](JaVaScRiPt:alert(1))\n\n" +
				`<a href="javascript:alert(1)">raw link</a>` + "\n\n" +
				`<iframe src="https://example.com"></iframe>` + "\n\n" +
				"![img](javascript:alert(1))\n",
			DescriptionContentType: "text/markdown",
			ProjectURLs:            []string{"Homepage, javascript:alert(1)", "Docs, https://example.com/docs"},
		}
		rst := meta{
			Name:                   "rst-xss",
			Version:                "1.0",
			Summary:                evilSummary,
			Description:            "Title\n=====\n\n.. raw:: html\n\n   <script>alert(1)</script>\n\n<script>alert(1)</script>\n",
			DescriptionContentType: "text/x-rst",
		}
		f.mustUpload(t, wheel(t, markdown))
		f.mustUpload(t, wheel(t, rst))

		md := f.getOK(t, "/project/md-xss/")
		checkPageHeaders(t, md)
		assertInert(t, "markdown page", md.body)
		// Sanitizing keeps the harmless markup and the safe link.
		for _, want := range []string{"<strong>bold</strong>", `href="https://example.com/docs"`} {
			if !strings.Contains(string(md.body), want) {
				t.Errorf("markdown page lacks %q", want)
			}
		}

		rp := f.getOK(t, "/project/rst-xss/")
		checkPageHeaders(t, rp)
		assertInert(t, "rst page", rp.body)
		// reStructuredText is shown as escaped text.
		if !strings.Contains(string(rp.body), "&lt;script&gt;alert(1)&lt;/script&gt;") {
			t.Errorf("rst page lacks the escaped description text")
		}

		home := f.getOK(t, "/")
		assertInert(t, "home page", home.body)
		if !strings.Contains(text(parseHTML(t, home.body)), evilSummary) {
			t.Errorf("home page does not show the summary as text")
		}
	})
}

// ownScript reports whether a <script> element is exactly the layout's
// reference to /static/webauthn.<hash>.js.
func ownScript(n *html.Node) bool {
	if n.FirstChild != nil {
		return false
	}
	for _, a := range n.Attr {
		if a.Key == "src" {
			return strings.HasPrefix(a.Val, "/static/webauthn.") && strings.HasSuffix(a.Val, ".js")
		}
	}
	return false
}
