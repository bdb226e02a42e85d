package web

// PyPI's JSON API: /pypi/<project>/json and /pypi/<project>/<version>/json.

import (
	"net/http"
	"reflect"
	"strconv"
	"testing"

	"github.com/gatehouse-index/gatehouse/internal/db"
	"github.com/gatehouse-index/gatehouse/internal/db/dbtest"
)

// wantJSONFile is one entry of "urls" or "releases".
func wantJSONFile(in *instance, d *dist, yanked bool, yankedReason any) map[string]any {
	var requiresPython any
	if d.Meta.RequiresPython != "" {
		requiresPython = d.Meta.RequiresPython
	}
	return map[string]any{
		"filename":       d.Filename,
		"packagetype":    d.Filetype,
		"python_version": d.PyVersion,
		"digests": map[string]any{
			"md5":         md5Hex(d.Content),
			"sha256":      sha256Hex(d.Content),
			"blake2b_256": blake2Hex(d.Content),
		},
		"md5_digest":           md5Hex(d.Content),
		"size":                 len(d.Content),
		"upload_time":          "2026-03-01T12:00:00",
		"upload_time_iso_8601": "2026-03-01T12:00:00.123456Z",
		"url":                  in.fileURL(d),
		"requires_python":      requiresPython,
		"yanked":               yanked,
		"yanked_reason":        yankedReason,
		"has_sig":              false,
		"comment_text":         "",
		"downloads":            -1,
	}
}

func TestJSONAPI(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		f := newFixture(t, d)
		fb := seedFooBar(t, f)
		serial := f.serialOf(t, "foo-bar")

		checkHeaders := func(t *testing.T, r response) {
			t.Helper()
			for k, want := range map[string]string{
				"Content-Type":                "application/json",
				"Access-Control-Allow-Origin": "*",
				"Cache-Control":               "max-age=900, public",
				"X-PyPI-Last-Serial":          strconv.FormatInt(serial, 10),
			} {
				if got := r.header.Get(k); got != want {
					t.Errorf("%s: got %q, want %q", k, got, want)
				}
			}
		}

		t.Run("project", func(t *testing.T) {
			// Latest is the newest release that is neither yanked nor a
			// pre-release: 1.0, since 1.9 and 1.10 are yanked.
			for _, path := range []string{"/pypi/foo-bar/json", "/pypi/Foo_Bar/json"} {
				r := f.getOK(t, path)
				checkHeaders(t, r)
				got := decodeJSON(t, r.body)

				info := got["info"].(map[string]any)
				for k, want := range map[string]any{
					"name":                     "Foo_Bar",
					"version":                  "1.0",
					"summary":                  "The foo bar",
					"description":              fb.meta10.Description,
					"description_content_type": "text/markdown",
					"requires_python":          ">=3.8",
					"classifiers":              []any{"License :: OSI Approved :: MIT License", "Programming Language :: Python :: 3"},
					"project_urls":             map[string]any{"Homepage": "https://example.com/foo-bar", "Source": "https://example.com/foo-bar/src"},
					"package_url":              f.url + "/project/foo-bar/",
					"project_url":              f.url + "/project/foo-bar/",
					"release_url":              f.url + "/project/foo-bar/1.0/",
					"yanked":                   false,
					"yanked_reason":            nil,
					"author":                   nil,
					"license":                  nil,
					"requires_dist":            nil,
				} {
					if !reflect.DeepEqual(info[k], want) {
						t.Errorf("GET %s: info[%q]: got %#v, want %#v", path, k, info[k], want)
					}
				}

				wantURLs := jsonOf(t, []any{wantJSONFile(f.instance, fb.wheel10, false, nil), wantJSONFile(f.instance, fb.sdist10, false, nil)})
				if !reflect.DeepEqual(got["urls"], wantURLs) {
					t.Errorf("GET %s: urls:\ngot  %s\nwant %s", path, mustJSON(got["urls"]), mustJSON(wantURLs))
				}
				wantReleases := jsonOf(t, map[string]any{
					"1.0":  []any{wantJSONFile(f.instance, fb.wheel10, false, nil), wantJSONFile(f.instance, fb.sdist10, false, nil)},
					"1.9":  []any{wantJSONFile(f.instance, fb.wheel19, true, nil)},
					"1.10": []any{wantJSONFile(f.instance, fb.wheel110, true, "broken build")},
				})
				if !reflect.DeepEqual(got["releases"], wantReleases) {
					t.Errorf("GET %s: releases:\ngot  %s\nwant %s", path, mustJSON(got["releases"]), mustJSON(wantReleases))
				}
				if got, want := got["last_serial"], float64(serial); got != want {
					t.Errorf("GET %s: last_serial: got %v, want %v", path, got, want)
				}
				if got, want := got["vulnerabilities"], []any{}; !reflect.DeepEqual(got, want) {
					t.Errorf("GET %s: vulnerabilities: got %#v, want %#v", path, got, want)
				}
			}
		})

		t.Run("release", func(t *testing.T) {
			r := f.getOK(t, "/pypi/foo-bar/1.10/json")
			checkHeaders(t, r)
			got := decodeJSON(t, r.body)
			info := got["info"].(map[string]any)
			for k, want := range map[string]any{
				"name":            "Foo_Bar",
				"version":         "1.10",
				"requires_python": ">=3.9",
				"yanked":          true,
				"yanked_reason":   "broken build",
				"release_url":     f.url + "/project/foo-bar/1.10/",
				"classifiers":     []any{},
				"project_urls":    nil,
			} {
				if !reflect.DeepEqual(info[k], want) {
					t.Errorf("info[%q]: got %#v, want %#v", k, info[k], want)
				}
			}
			wantURLs := jsonOf(t, []any{wantJSONFile(f.instance, fb.wheel110, true, "broken build")})
			if !reflect.DeepEqual(got["urls"], wantURLs) {
				t.Errorf("urls:\ngot  %s\nwant %s", mustJSON(got["urls"]), mustJSON(wantURLs))
			}
			if _, ok := got["releases"]; ok {
				t.Errorf("a release's JSON has a \"releases\" key; PyPI sends it only for the project")
			}
			// Versions are compared canonically: 1.10.0 is 1.10.
			if got := decodeJSON(t, f.getOK(t, "/pypi/foo-bar/1.10.0/json").body)["info"].(map[string]any)["version"]; got != "1.10" {
				t.Errorf("GET /pypi/foo-bar/1.10.0/json: info.version %v, want 1.10", got)
			}
		})

		t.Run("not found", func(t *testing.T) {
			for _, path := range []string{"/pypi/nope/json", "/pypi/foo-bar/9.9/json", "/pypi/foo-bar/not-a-version/json", "/pypi/nope/1.0/json"} {
				r := f.get(t, path)
				if r.code != http.StatusNotFound {
					t.Errorf("GET %s: got status %d, want 404", path, r.code)
				}
				if got, want := r.header.Get("Content-Type"), "application/json"; got != want {
					t.Errorf("GET %s: Content-Type %q, want %q", path, got, want)
				}
				if got, want := decodeJSON(t, r.body), map[string]any{"message": "Not Found"}; !reflect.DeepEqual(got, want) {
					t.Errorf("GET %s: body %s, want %s", path, r.body, mustJSON(want))
				}
			}
		})
	})
}
