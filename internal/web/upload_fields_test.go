package web

import (
	"encoding/json"
	"reflect"
	"testing"

	"github.com/gatehouse-index/gatehouse/internal/db"
	"github.com/gatehouse-index/gatehouse/internal/db/dbtest"
)

// extrasMeta is a package as setuptools, flit, hatchling and poetry build
// them: extras, dependencies, several classifiers and project URLs.
func extrasMeta(name string) meta {
	return meta{
		Name: name, Version: "1.0", Summary: "Has extras", RequiresPython: ">=3.8",
		Classifiers:   []string{"Programming Language :: Python :: 3", "License :: OSI Approved :: MIT License", "Typing :: Typed"},
		ProjectURLs:   []string{"Homepage, https://example.com/", "Issues, https://example.com/issues"},
		RequiresDist:  []string{"requests>=2", `pytest; extra == "test"`, `sphinx>=5; extra == "docs"`},
		ProvidesExtra: []string{"test", "docs"},
	}
}

// TestUploadMultiUseFields uploads a package with every multiple-use field
// repeated, under each client's spelling, and checks that only single-use
// repeats are refused (issue 12: twine 4 sending "provides_extras" once per
// extra was refused).
func TestUploadMultiUseFields(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		f := newFixture(t, d)
		repeatable := []field{
			{"platform", "linux"}, {"platform", "win32"},
			{"supported_platform", "a"}, {"supported_platform", "b"},
			{"requires_external", "libpq"}, {"requires_external", "libssl"},
			{"provides_dist", "demo-compat"}, {"provides_dist", "demo-old"},
			{"obsoletes_dist", "olddemo"}, {"obsoletes_dist", "olderdemo"},
			{"dynamic", "Classifier"}, {"dynamic", "Requires-Dist"},
			{"keywords", "a"}, {"keywords", "b"},
		}
		clients := []struct {
			name   string
			rename map[string]string // form field → this client's spelling
		}{
			{"twine 4", map[string]string{"license_files": "license_file"}},
			{"uv and twine 6", map[string]string{"provides_extras": "provides_extra", "license_files": "license_file"}},
			{"Warehouse's own spelling", map[string]string{"provides_extras": "provides_extra"}},
		}
		for i, c := range clients {
			t.Run(c.name, func(t *testing.T) {
				name := []string{"extras-a", "extras-b", "extras-c"}[i]
				w := wheel(t, extrasMeta(name))
				fields := append(w.form(), repeatable...)
				fields = append(fields, field{"license_files", "LICENSE"}, field{"license_files", "NOTICE"})
				for j := range fields {
					if to, ok := c.rename[fields[j].name]; ok {
						fields[j].name = to
					}
				}
				res := f.uploadAs(t, f.token, fields, w)
				checkUpload(t, "upload with repeated multiple-use fields", res, 200, "OK")
				var got struct {
					Info struct {
						ProvidesExtra []string          `json:"provides_extra"`
						RequiresDist  []string          `json:"requires_dist"`
						Classifiers   []string          `json:"classifiers"`
						ProjectURLs   map[string]string `json:"project_urls"`
						Keywords      string            `json:"keywords"`
						Dynamic       []string          `json:"dynamic"`
					} `json:"info"`
				}
				if err := json.Unmarshal(f.getOK(t, "/pypi/"+name+"/json").body, &got); err != nil {
					t.Fatal(err)
				}
				m := extrasMeta(name)
				for _, c := range []struct {
					what      string
					got, want any
				}{
					{"provides_extra", got.Info.ProvidesExtra, m.ProvidesExtra},
					{"requires_dist", got.Info.RequiresDist, m.RequiresDist},
					{"classifiers", got.Info.Classifiers, m.Classifiers},
					{"project_urls", got.Info.ProjectURLs, map[string]string{"Homepage": "https://example.com/", "Issues": "https://example.com/issues"}},
					{"keywords", got.Info.Keywords, "a,b"},
					{"dynamic", got.Info.Dynamic, []string{"Classifier", "Requires-Dist"}},
				} {
					if !reflect.DeepEqual(c.got, c.want) {
						t.Errorf("JSON API %s: got %v, want %v", c.what, c.got, c.want)
					}
				}
			})
		}

		t.Run("one list under two spellings is merged", func(t *testing.T) {
			w := wheel(t, extrasMeta("extras-both"))
			fields := append(w.form(), field{"provides_extra", "test"}, field{"provides_extra", "docs"})
			checkUpload(t, "provides_extra and provides_extras both", f.uploadAs(t, f.token, fields, w), 200, "OK")
			var got struct {
				Info struct {
					ProvidesExtra []string `json:"provides_extra"`
				} `json:"info"`
			}
			json.Unmarshal(f.getOK(t, "/pypi/extras-both/json").body, &got)
			if want := []string{"docs", "test"}; !reflect.DeepEqual(sortedCopy(got.Info.ProvidesExtra), want) {
				t.Errorf("provides_extra: got %v, want %v once each", got.Info.ProvidesExtra, want)
			}
		})

		for _, single := range []string{"name", "version", "summary", "description", "author", "author_email",
			"license", "home_page", "requires_python", "metadata_version", "filetype", "pyversion",
			"description_content_type", "sha256_digest", "license_expression"} {
			t.Run("single-use "+single+" twice is refused", func(t *testing.T) {
				w := wheel(t, extrasMeta("single-use"))
				fields := w.form()
				v, sent := "text/plain", false
				for _, fl := range fields {
					if fl.name == single {
						v, sent = fl.value, true
					}
				}
				fields = append(fields, field{single, v})
				if !sent {
					fields = append(fields, field{single, v})
				}
				checkUpload(t, single+" twice", f.uploadAs(t, f.token, fields, w), 400, single+": Field given more than once; send it once.")
			})
		}

		t.Run("an unknown field, even repeated, is ignored", func(t *testing.T) {
			w := wheel(t, extrasMeta("unknown-field"))
			fields := append(w.form(), field{"some_future_field", "a"}, field{"some_future_field", "b"})
			checkUpload(t, "unknown field twice", f.uploadAs(t, f.token, fields, w), 200, "OK")
		})
	})
}

// TestUploadFormAgreesWithMetadata checks the dependency fields of the form
// against the archive's own METADATA.
func TestUploadFormAgreesWithMetadata(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		f := newFixture(t, d)
		see := " See " + coreMetadataHelp + " for more information."
		tests := []struct {
			name       string
			edit       func([]field) []field
			wantReason string
		}{
			{"a dependency the file does not have",
				func(fs []field) []field { return append(fs, field{"requires_dist", "evil>=1"}) },
				"Invalid distribution file. Requires-Dist in agree_demo-1.0.dist-info/METADATA does not match the upload's requires_dist field: the form sends 'evil>=1', which agree_demo-1.0.dist-info/METADATA does not have. Upload the file with a client that reads its metadata from the file (twine, uv)."},
			{"a dependency left out",
				func(fs []field) []field {
					return append(withField(fs, "requires_dist", ""), field{"requires_dist", "requests>=2"}, field{"requires_dist", `pytest; extra == "test"`})
				},
				`Invalid distribution file. Requires-Dist in agree_demo-1.0.dist-info/METADATA does not match the upload's requires_dist field: agree_demo-1.0.dist-info/METADATA has 'sphinx>=5; extra == "docs"', which the form does not send. Upload the file with a client that reads its metadata from the file (twine, uv).`},
			{"an extra the file does not have",
				func(fs []field) []field { return append(fs, field{"provides_extras", "admin"}) },
				"Invalid distribution file. Provides-Extra in agree_demo-1.0.dist-info/METADATA does not match the upload's provides_extra field: the form sends 'admin', which agree_demo-1.0.dist-info/METADATA does not have. Upload the file with a client that reads its metadata from the file (twine, uv)."},
			{"another Requires-Python",
				func(fs []field) []field { return withField(fs, "requires_python", ">=2.7") },
				"Invalid distribution file. Requires-Python in agree_demo-1.0.dist-info/METADATA does not match the upload's requires_python field: the form sends '>=2.7', which agree_demo-1.0.dist-info/METADATA does not have. Upload the file with a client that reads its metadata from the file (twine, uv)."},
			{"an invalid Requires-Python",
				func(fs []field) []field { return withField(fs, "requires_python", ">=3.8,<") },
				"'>=3.8,<' is an invalid value for Requires-Python. Error: Use a PEP 440 version specifier, such as '>=3.9' or '>=3.8, <4'." + see},
			{"Requires-Python that is not a specifier",
				func(fs []field) []field { return withField(fs, "requires_python", "3.8") },
				"'3.8' is an invalid value for Requires-Python. Error: Use a PEP 440 version specifier, such as '>=3.9' or '>=3.8, <4'." + see},
		}
		w := wheel(t, extrasMeta("agree-demo"))
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				checkUpload(t, tt.name, f.uploadAs(t, f.token, tt.edit(w.form()), w), 400, tt.wantReason)
			})
		}
		if n := countRows(t, d, `SELECT count(*) FROM projects`); n != 0 {
			t.Errorf("refused uploads left %d projects, want 0", n)
		}

		t.Run("spelling differences are not disagreements", func(t *testing.T) {
			fs := withField(w.form(), "requires_python", " >= 3.8 ")
			fs = withField(fs, "provides_extras", "")
			fs = append(fs, field{"provides_extras", "Test"}, field{"provides_extras", "docs"})
			checkUpload(t, "respelled fields", f.uploadAs(t, f.token, fs, w), 200, "OK")
		})

		t.Run("fields the client left out are taken from the file", func(t *testing.T) {
			w := wheel(t, extrasMeta("filled-in"))
			fs := withField(w.form(), "requires_dist", "")
			fs = withField(fs, "provides_extras", "")
			fs = withField(fs, "requires_python", "")
			checkUpload(t, "upload without dependency fields", f.uploadAs(t, f.token, fs, w), 200, "OK")
			var got struct {
				Info struct {
					ProvidesExtra  []string `json:"provides_extra"`
					RequiresDist   []string `json:"requires_dist"`
					RequiresPython string   `json:"requires_python"`
				} `json:"info"`
				URLs []struct {
					RequiresPython string `json:"requires_python"`
				} `json:"urls"`
			}
			json.Unmarshal(f.getOK(t, "/pypi/filled-in/json").body, &got)
			m := extrasMeta("filled-in")
			if !reflect.DeepEqual(got.Info.RequiresDist, m.RequiresDist) || !reflect.DeepEqual(got.Info.ProvidesExtra, m.ProvidesExtra) ||
				got.Info.RequiresPython != ">=3.8" || len(got.URLs) != 1 || got.URLs[0].RequiresPython != ">=3.8" {
				t.Errorf("JSON API: got %+v, want the file's requires_dist, provides_extra and requires_python", got)
			}
		})
	})
}

func sortedCopy(s []string) []string {
	c := append([]string(nil), s...)
	for i := range c {
		for j := i + 1; j < len(c); j++ {
			if c[j] < c[i] {
				c[i], c[j] = c[j], c[i]
			}
		}
	}
	return c
}

// TestJSONNoSniff checks that every JSON answer carries nosniff: a summary
// of "<script>" must never be sniffed into HTML.
func TestJSONNoSniff(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		f := newFixture(t, d)
		f.mustUpload(t, wheel(t, meta{Name: "sniff", Version: "1.0", Summary: "<script>alert(1)</script>"}))
		for _, c := range []struct{ path, accept string }{
			{"/pypi/sniff/json", ""},
			{"/pypi/sniff/1.0/json", ""},
			{"/pypi/nothing-here/json", ""},
			{"/simple/sniff/", "application/vnd.pypi.simple.v1+json"},
			{"/simple/", "application/vnd.pypi.simple.v1+json"},
		} {
			r := f.get(t, c.path, "Accept", c.accept)
			if got := r.header.Get("X-Content-Type-Options"); got != "nosniff" {
				t.Errorf("GET %s: X-Content-Type-Options %q, want nosniff", c.path, got)
			}
			if !json.Valid(r.body) {
				t.Errorf("GET %s: body is not JSON: %.200s", c.path, r.body)
			}
		}
	})
}
