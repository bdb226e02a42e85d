package main

// End-to-end: hostile and broken uploads, sent over real HTTP to the real
// server, on SQLite and on PostgreSQL. Each is refused with a 4xx whose
// reason phrase says why, and leaves the database and the blob store exactly
// as they were.

import (
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/gatehouse-index/gatehouse/internal/token"
)

func TestE2EBadInput(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end test; skipped with -short")
	}
	t.Parallel()
	for _, dialect := range e2eDialects {
		t.Run(dialect, func(t *testing.T) {
			t.Parallel()
			e2eBadInputScenario(t, dialect)
		})
	}
}

func e2eBadInputScenario(t *testing.T, dialect string) {
	// A small file limit, so that the oversize case needs only 2 MiB.
	srv := e2eStartServer(t, dialect, "--max-file-size", "1MiB")
	srv.createUser(t, "bob")
	full := srv.createToken(t, "bob", "everything")

	// A valid wheel of project name at version, and its upload form.
	wheel := func(name, version string) []byte {
		return e2eWheel(t, name, version, e2eMetadata(name, version))
	}
	good := func(name, version string) e2eForm {
		return e2eWheelForm(name, version, e2eWheelName(name, version), wheel(name, version))
	}
	srv.mustUpload(t, full, good("proj-a", "1.0"))
	srv.mustUpload(t, full, good("proj-b", "1.0"))
	scopedA := srv.createToken(t, "bob", "proj-a only", "proj-a")
	expired, err := token.Attenuate(full, `[0,1,0]`) // expired at 1970-01-01T00:00:01Z
	if err != nil {
		t.Fatal(err)
	}

	// Every case would be a valid upload of a new file but for its one
	// defect, so a server that missed the defect would change the state.
	contentDisposition := func(filename string) string {
		return `form-data; name="content"; filename="` + filename + `"`
	}
	truncated := wheel("proj-a", "2.0")
	truncated = truncated[:len(truncated)/2]
	oversize := make([]byte, 2<<20)
	rng := rand.NewChaCha8([32]byte{1})
	rng.Read(oversize)
	bomb := e2eZipBomb(t)
	if len(bomb) > 1<<20 {
		t.Fatalf("the zip bomb is %d bytes compressed, want under the 1 MiB limit", len(bomb))
	}

	cases := []struct {
		name  string
		token string
		form  e2eForm
		code  int
		want  string // in the reason phrase
	}{
		{
			name: "wrong sha256 digest", token: full,
			form: good("proj-a", "2.0").with("sha256_digest", strings.Repeat("0", 64)),
			code: 400, want: "The digest supplied does not match a digest calculated from the uploaded file.",
		},
		{
			name: "version in METADATA differs from the file name", token: full,
			form: e2eWheelForm("proj-a", "2.0", e2eWheelName("proj-a", "2.0"),
				e2eWheel(t, "proj-a", "2.0", e2eMetadata("proj-a", "2.1"))),
			code: 400, want: "The version in proj_a-2.0.dist-info/METADATA ('2.1') does not match the upload ('2.0')",
		},
		{
			name: "invalid version", token: full,
			form: good("proj-a", "2.0").with("version", "1.0-foo!"),
			code: 400, want: "'1.0-foo!' is an invalid value for Version",
		},
		{
			name: "file name with ../", token: full,
			form: good("proj-a", "2.0").withContentDisposition(contentDisposition("../proj_a-2.0-py3-none-any.whl")),
			code: 400, want: "Cannot upload a file with '/' or '\\' in the name.",
		},
		{
			name: "file name with a directory", token: full,
			form: good("proj-a", "2.0").withContentDisposition(contentDisposition("dist/proj_a-2.0-py3-none-any.whl")),
			code: 400, want: "Cannot upload a file with '/' or '\\' in the name.",
		},
		{
			name: "file name with a backslash", token: full,
			form: good("proj-a", "2.0").withContentDisposition(contentDisposition(`dist\\proj_a-2.0-py3-none-any.whl`)),
			code: 400, want: "Cannot upload a file with '/' or '\\' in the name.",
		},
		{
			name: "file name ..", token: full,
			form: good("proj-a", "2.0").withContentDisposition(contentDisposition("..")),
			code: 400, want: "Cannot upload a file with '/' or '\\' in the name.",
		},
		{
			name: "file name with ../ in RFC 2231 form", token: full,
			form: good("proj-a", "2.0").withContentDisposition(`form-data; name="content"; filename*=UTF-8''..%2Fproj_a-2.0-py3-none-any.whl`),
			code: 400, want: "Cannot upload a file with '/' or '\\' in the name.",
		},
		{
			// Go's MIME header parser refuses control bytes in a header.
			name: "file name with NUL", token: full,
			form: good("proj-a", "2.0").withContentDisposition(contentDisposition("proj_a-2.0-py3-none-any.whl\x00.txt")),
			code: 400, want: "Invalid request: malformed multipart body",
		},
		{
			// Percent-encoded, the NUL gets past the header parser.
			name: "file name with NUL in RFC 2231 form", token: full,
			form: good("proj-a", "2.0").withContentDisposition(`form-data; name="content"; filename*=UTF-8''proj_a-2.0-py3-none-any.whl%00.txt`),
			code: 400, want: "Cannot upload a file with non-printable characters (ascii 0-31) or the DEL character (ascii 127) in the name.",
		},
		{
			name: "zip bomb", token: full,
			form: e2eWheelForm(e2eBombProject, e2eBombVersion, e2eWheelName(e2eBombProject, e2eBombVersion), bomb),
			code: 400, want: "Invalid distribution file. File exceeds compression ratio of 50",
		},
		{
			name: "truncated archive", token: full,
			form: e2eWheelForm("proj-a", "2.0", e2eWheelName("proj-a", "2.0"), truncated),
			code: 400, want: "Invalid distribution file.",
		},
		{
			name: "missing content part", token: full,
			form: good("proj-a", "2.0").without("content"),
			code: 400, want: "Upload payload does not have a file.",
		},
		{
			name: "file over --max-file-size", token: full,
			form: e2eWheelForm("proj-a", "3.0", e2eWheelName("proj-a", "3.0"), oversize),
			code: 400, want: "File too large. Limit for project 'proj-a' is 1 MB.",
		},
		{
			name: "form field not UTF-8", token: full,
			form: good("proj-a", "2.0").with("summary", "\xff"),
			code: 400, want: "summary: Field is not valid UTF-8.",
		},
		{
			name: "METADATA not UTF-8", token: full,
			form: e2eWheelForm("proj-a", "2.0", e2eWheelName("proj-a", "2.0"),
				e2eWheel(t, "proj-a", "2.0", "Metadata-Version: 2.1\nName: proj-a\nVersion: 2.0\nSummary: caf\xe9 (Latin-1)\n\n")),
			code: 400, want: "not valid UTF-8",
		},
		{
			name: "version field given twice", token: full,
			form: good("proj-a", "2.0").plus("version", "2.0"),
			code: 400, want: "version: Field given more than once; send it once.",
		},
		{
			name: "unknown :action", token: full,
			form: good("proj-a", "2.0").with(":action", "frobnicate"),
			code: 400, want: `Unknown :action "frobnicate"`,
		},
		{
			name: "no credentials", token: "",
			form: good("proj-a", "2.0"),
			code: 403, want: "Invalid or non-existent authentication information.",
		},
		{
			name: "garbage token", token: "pypi-this-is-not-a-macaroon",
			form: good("proj-a", "2.0"),
			code: 403, want: "Invalid or non-existent authentication information.",
		},
		{
			name: "expired token", token: expired,
			form: good("proj-a", "2.0"),
			code: 403, want: "Invalid API Token: token is expired",
		},
		{
			name: "token scoped to another project", token: scopedA,
			form: good("proj-b", "2.0"),
			code: 403, want: "Invalid API Token: project-scoped token is not valid for project: 'proj-b'",
		},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			before := srv.snapshot(t)
			r := srv.upload(t, c.token, c.form)
			if r.code < 400 || r.code > 499 {
				t.Errorf("status: got %q, want a 4xx (%d)", r.status, c.code)
			} else if r.code != c.code {
				t.Errorf("status code: got %d (%q), want %d", r.code, r.status, c.code)
			}
			if !strings.Contains(r.status, c.want) {
				t.Errorf("reason phrase: got %q, want it to contain %q", r.status, c.want)
			}
			e2eSameState(t, before, srv.snapshot(t))
		})
	}

	// Refused uploads are answered on a hijacked connection; the request
	// log must still show their status.
	if log := srv.log.String(); strings.Contains(log, "path=/legacy/ status=0") {
		t.Errorf("the request log shows status=0 for an upload, want the status sent")
	}

	// The control: the snapshot does see an accepted upload, and the
	// refusals left the server able to take one.
	t.Run("a valid upload afterwards changes the state", func(t *testing.T) {
		before := srv.snapshot(t)
		srv.mustUpload(t, scopedA, good("proj-a", "2.0"))
		after := srv.snapshot(t)
		if len(after.Files) != len(before.Files)+1 || after.Releases != before.Releases+1 ||
			after.Journal <= before.Journal || len(after.Blobs) <= len(before.Blobs) {
			t.Errorf("after a valid upload: got %+v, want one more file and release, and more journal rows and blobs than %+v", after, before)
		}
	})
}
