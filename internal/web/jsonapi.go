package web

import (
	"net/http"
	"strconv"
	"strings"

	"github.com/gatehouse-index/gatehouse/internal/derrors"
	"github.com/gatehouse-index/gatehouse/internal/pep"
	"github.com/gatehouse-index/gatehouse/internal/project"
)

// jsonProject serves /pypi/<project>/json: the latest release's info, its
// files, and every release's files (PyPI's JSON API).
func (s *Server) jsonProject(w http.ResponseWriter, r *http.Request) error {
	d, err := s.jsonDetail(r)
	if err != nil {
		return err
	}
	rel := d.Latest()
	if rel == nil {
		return derrors.New(derrors.NotFound, "Not Found")
	}
	releases := map[string][]map[string]any{}
	for _, rr := range d.Releases {
		releases[rr.Version] = s.jsonFiles(d.FilesOf(rr.ID), &rr)
	}
	return s.writeJSON(w, d, rel, map[string]any{
		"info":            s.jsonInfo(d, rel),
		"last_serial":     d.Project.LastSerial,
		"releases":        releases,
		"urls":            s.jsonFiles(d.FilesOf(rel.ID), rel),
		"vulnerabilities": []any{},
	})
}

// jsonRelease serves /pypi/<project>/<version>/json.
func (s *Server) jsonRelease(w http.ResponseWriter, r *http.Request) error {
	d, err := s.jsonDetail(r)
	if err != nil {
		return err
	}
	rel, err := d.Release(r.PathValue("version"))
	if err != nil {
		return err
	}
	return s.writeJSON(w, d, rel, map[string]any{
		"info":            s.jsonInfo(d, rel),
		"last_serial":     d.Project.LastSerial,
		"urls":            s.jsonFiles(d.FilesOf(rel.ID), rel),
		"vulnerabilities": []any{},
	})
}

// jsonDetail loads the project the JSON API asks for. A quarantined
// project is not found, as on PyPI: its files must not be offered.
func (s *Server) jsonDetail(r *http.Request) (*project.Detail, error) {
	norm := pep.NormalizeName(r.PathValue("project"))
	if ok, err := s.mayRead(r, norm, 0); err != nil {
		return nil, err
	} else if !ok {
		return nil, derrors.New(derrors.NotFound, "Not Found")
	}
	d, err := s.projects.Detail(r.Context(), norm)
	if err != nil {
		return nil, err
	}
	if d.Project.Status == project.StatusQuarantined {
		return nil, derrors.New(derrors.NotFound, "Not Found")
	}
	return d, nil
}

func (s *Server) writeJSON(w http.ResponseWriter, d *project.Detail, rel *project.Release, v any) error {
	b, err := marshalSimple(v)
	if err != nil {
		return err
	}
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("Access-Control-Allow-Origin", "*")
	h.Set("Cache-Control", "max-age=900, public")
	h.Set("X-PyPI-Last-Serial", strconv.FormatInt(d.Project.LastSerial, 10))
	w.Write(b)
	return nil
}

func (s *Server) jsonInfo(d *project.Detail, rel *project.Release) map[string]any {
	f := rel.Fields()
	first := func(k string) any {
		if v := f[k]; len(v) > 0 {
			return v[0]
		}
		return nil
	}
	list := func(k string) any {
		if v := f[k]; len(v) > 0 {
			return v
		}
		return nil
	}
	urls := map[string]string{}
	for _, pu := range f["project_urls"] {
		label, u, ok := cutComma(pu)
		if ok {
			urls[label] = u
		}
	}
	var projectURLs any
	if len(urls) > 0 {
		projectURLs = urls
	}
	classifiers := f["classifiers"]
	if classifiers == nil {
		classifiers = []string{}
	}
	return map[string]any{
		"name":                     d.Project.Name,
		"version":                  rel.Version,
		"summary":                  rel.Summary,
		"description":              rel.Description,
		"description_content_type": nullIfEmpty(rel.DescriptionContentType),
		"author":                   first("author"),
		"author_email":             first("author_email"),
		"maintainer":               first("maintainer"),
		"maintainer_email":         first("maintainer_email"),
		"license":                  first("license"),
		"license_expression":       first("license_expression"),
		"keywords":                 keywords(f["keywords"]),
		"classifiers":              classifiers,
		"platform":                 first("platform"),
		"home_page":                first("home_page"),
		"download_url":             first("download_url"),
		"requires_dist":            list("requires_dist"),
		"provides_extra":           list("provides_extra"),
		"requires_python":          nullIfEmpty(rel.RequiresPython),
		"project_urls":             projectURLs,
		"package_url":              s.baseURL + "/project/" + d.Project.NormalizedName + "/",
		"project_url":              s.baseURL + "/project/" + d.Project.NormalizedName + "/",
		"release_url":              s.baseURL + "/project/" + d.Project.NormalizedName + "/" + rel.Version + "/",
		"yanked":                   rel.Yanked,
		"yanked_reason":            nullIfEmpty(rel.YankedReason),
		"bugtrack_url":             nil,
		"docs_url":                 nil,
		"downloads":                map[string]int{"last_day": -1, "last_month": -1, "last_week": -1},
		"dynamic":                  list("dynamic"),
	}
}

func (s *Server) jsonFiles(files []project.File, rel *project.Release) []map[string]any {
	out := make([]map[string]any, 0, len(files))
	for i := range files {
		f := &files[i]
		out = append(out, map[string]any{
			"filename":             f.Filename,
			"packagetype":          f.PackageType,
			"python_version":       f.PythonVersion,
			"digests":              map[string]string{"md5": f.MD5, "sha256": f.SHA256, "blake2b_256": f.Blake2_256},
			"md5_digest":           f.MD5,
			"size":                 f.Size,
			"upload_time":          f.UploadedAt.UTC().Format("2006-01-02T15:04:05"),
			"upload_time_iso_8601": f.UploadedAt.UTC().Format("2006-01-02T15:04:05.000000Z"),
			"url":                  s.fileURL(f),
			"requires_python":      nullIfEmpty(f.RequiresPython),
			"yanked":               rel.Yanked,
			"yanked_reason":        nullIfEmpty(rel.YankedReason),
			"has_sig":              false,
			"comment_text":         "",
			"downloads":            -1,
		})
	}
	return out
}

func nullIfEmpty(s string) any {
	if s == "" {
		return nil
	}
	return s
}

func cutComma(s string) (string, string, bool) {
	for i := 0; i < len(s); i++ {
		if s[i] == ',' {
			return strings.TrimSpace(s[:i]), strings.TrimSpace(s[i+1:]), true
		}
	}
	return "", "", false
}

// keywords is the Keywords field as METADATA writes it, comma-separated,
// however the client sent it (one field, or one field per keyword).
func keywords(vs []string) any {
	if len(vs) == 0 {
		return nil
	}
	return strings.Join(vs, ",")
}
