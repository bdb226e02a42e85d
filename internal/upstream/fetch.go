package upstream

// Reading an upstream's project page: PEP 691 JSON when it offers it, else
// PEP 503 HTML, both into Page, with every file URL made absolute and every
// file carrying the sha256 its bytes will be checked against (a file
// without one is left out: it could not be verified).

import (
	"context"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"mime"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"golang.org/x/net/html"
)

// maxPage bounds an upstream page (PyPI's largest are a few MiB).
const maxPage = 64 << 20

type pageResult struct {
	page        *Page
	etag        string
	notFound    bool
	notModified bool
}

func (s *Service) fetchPage(ctx context.Context, up, name, etag string) (*pageResult, error) {
	pageURL := up + name + "/"
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, pageURL, nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Accept", "application/vnd.pypi.simple.v1+json, application/vnd.pypi.simple.v1+html;q=0.2, text/html;q=0.1")
	req.Header.Set("User-Agent", "Gatehouse pull-through cache")
	if etag != "" {
		req.Header.Set("If-None-Match", etag)
	}
	resp, err := s.client.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	switch {
	case resp.StatusCode == http.StatusNotFound:
		return &pageResult{notFound: true}, nil
	case resp.StatusCode == http.StatusNotModified && etag != "":
		return &pageResult{notModified: true}, nil
	case resp.StatusCode != http.StatusOK:
		return nil, fmt.Errorf("%s: %s", pageURL, resp.Status)
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxPage+1))
	if err != nil {
		return nil, fmt.Errorf("%s: %w", pageURL, err)
	}
	if len(body) > maxPage {
		return nil, fmt.Errorf("%s: page larger than %d MiB", pageURL, maxPage>>20)
	}
	base, _ := url.Parse(pageURL)
	if final := resp.Request.URL; final != nil {
		base = final
	}
	mt, _, _ := mime.ParseMediaType(resp.Header.Get("Content-Type"))
	var p *Page
	if mt == "application/vnd.pypi.simple.v1+json" {
		p, err = parseJSON(body, base)
	} else {
		p, err = parseHTML(body, base)
	}
	if err != nil {
		return nil, fmt.Errorf("%s: %w", pageURL, err)
	}
	p.Name = name
	if sh := resp.Header.Get("X-PyPI-Last-Serial"); sh != "" {
		p.Serial, _ = strconv.ParseInt(sh, 10, 64)
	}
	return &pageResult{page: p, etag: resp.Header.Get("ETag")}, nil
}

func validSHA256(h string) bool {
	b, err := hex.DecodeString(h)
	return err == nil && len(b) == 32 && h == strings.ToLower(h)
}

// parseJSON reads a PEP 691 page.
func parseJSON(body []byte, base *url.URL) (*Page, error) {
	var raw struct {
		Meta struct {
			LastSerial int64 `json:"_last-serial"`
		} `json:"meta"`
		ProjectStatus struct {
			Status string `json:"status"`
		} `json:"project-status"`
		Versions []string `json:"versions"`
		Files    []struct {
			Filename       string            `json:"filename"`
			URL            string            `json:"url"`
			Hashes         map[string]string `json:"hashes"`
			Size           int64             `json:"size"`
			UploadTime     string            `json:"upload-time"`
			RequiresPython *string           `json:"requires-python"`
			Yanked         any               `json:"yanked"`
			CoreMetadata   any               `json:"core-metadata"`
			DistInfo       any               `json:"data-dist-info-metadata"`
		} `json:"files"`
	}
	if err := json.Unmarshal(body, &raw); err != nil {
		return nil, fmt.Errorf("not a PEP 691 page: %w", err)
	}
	p := &Page{Status: raw.ProjectStatus.Status, Versions: raw.Versions, Serial: raw.Meta.LastSerial}
	for _, f := range raw.Files {
		u, err := base.Parse(f.URL)
		if err != nil || (u.Scheme != "https" && u.Scheme != "http") || !validSHA256(f.Hashes["sha256"]) || !validFilename(f.Filename) {
			continue
		}
		u.Fragment = ""
		file := File{Filename: f.Filename, URL: u.String(), SHA256: f.Hashes["sha256"], Size: f.Size, UploadTime: f.UploadTime}
		if f.RequiresPython != nil {
			file.RequiresPython = *f.RequiresPython
		}
		switch y := f.Yanked.(type) {
		case bool:
			if y {
				file.Yanked = true
			}
		case string:
			file.Yanked = y
		}
		file.MetadataSHA256 = metadataDigest(f.CoreMetadata)
		if file.MetadataSHA256 == "" {
			file.MetadataSHA256 = metadataDigest(f.DistInfo)
		}
		p.Files = append(p.Files, file)
	}
	return p, nil
}

func metadataDigest(v any) string {
	if m, ok := v.(map[string]any); ok {
		if h, ok := m["sha256"].(string); ok && validSHA256(h) {
			return h
		}
	}
	return ""
}

// validFilename refuses names that could not be a distribution's: a path,
// a control character.
func validFilename(n string) bool {
	return n != "" && len(n) <= 255 && !strings.ContainsAny(n, "/\\\x00\r\n\"") && n != "." && n != ".."
}

// parseHTML reads a PEP 503 page with a real HTML parser: the anchors'
// href (with #sha256=), data-requires-python, data-yanked and the PEP 658/
// 714 metadata attributes, and the PEP 792 status meta element.
func parseHTML(body []byte, base *url.URL) (*Page, error) {
	doc, err := html.Parse(strings.NewReader(string(body)))
	if err != nil {
		return nil, fmt.Errorf("not an HTML page: %w", err)
	}
	p := &Page{}
	var walk func(n *html.Node)
	walk = func(n *html.Node) {
		if n.Type == html.ElementNode && n.Data == "meta" && attr(n, "name") == "pypi:project-status" {
			p.Status = attr(n, "content")
		}
		if n.Type == html.ElementNode && n.Data == "a" {
			if f, ok := anchorFile(n, base); ok {
				p.Files = append(p.Files, f)
			}
		}
		for c := n.FirstChild; c != nil; c = c.NextSibling {
			walk(c)
		}
	}
	walk(doc)
	return p, nil
}

func anchorFile(n *html.Node, base *url.URL) (File, bool) {
	u, err := base.Parse(attr(n, "href"))
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") {
		return File{}, false
	}
	frag := u.Fragment
	u.Fragment = ""
	sum, ok := strings.CutPrefix(frag, "sha256=")
	if !ok || !validSHA256(sum) {
		return File{}, false
	}
	var text strings.Builder
	for c := n.FirstChild; c != nil; c = c.NextSibling {
		if c.Type == html.TextNode {
			text.WriteString(c.Data)
		}
	}
	name := strings.TrimSpace(text.String())
	if !validFilename(name) {
		return File{}, false
	}
	f := File{Filename: name, URL: u.String(), SHA256: sum, RequiresPython: attr(n, "data-requires-python")}
	if hasAttr(n, "data-yanked") {
		if r := attr(n, "data-yanked"); r != "" {
			f.Yanked = r
		} else {
			f.Yanked = true
		}
	}
	for _, a := range []string{"data-core-metadata", "data-dist-info-metadata"} {
		if h, ok := strings.CutPrefix(attr(n, a), "sha256="); ok && validSHA256(h) {
			f.MetadataSHA256 = h
			break
		}
	}
	return f, true
}

func attr(n *html.Node, key string) string {
	for _, a := range n.Attr {
		if a.Key == key {
			return a.Val
		}
	}
	return ""
}

func hasAttr(n *html.Node, key string) bool {
	for _, a := range n.Attr {
		if a.Key == key {
			return true
		}
	}
	return false
}
