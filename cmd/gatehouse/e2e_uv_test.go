package main

import (
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/gatehouse-index/gatehouse/internal/pep"
)

// uv is not on this machine, so the tests make the HTTP requests
// `uv pip install --index-url <base>/simple/ <names>` makes, as read from
// uv's source (crates/uv-client): every project page as PEP 691 JSON with
// uv's Accept header, the PEP 658 metadata of the chosen wheel for its
// Requires-Dist (uv resolves from metadata alone), then the wheel itself,
// checked against the page's sha256. Credentials, when given, are HTTP Basic
// on every request, as UV_INDEX_<NAME>_USERNAME/_PASSWORD make them.

const uvAccept = "application/vnd.pypi.simple.v1+json, application/vnd.pypi.simple.v1+html;q=0.2, text/html;q=0.01"

// uvClient is uv talking to one index.
type uvClient struct {
	t     *testing.T
	index string // ".../simple/"
	token string // "" for none
}

func (c uvClient) get(u, accept string) (*http.Response, []byte) {
	c.t.Helper()
	req, err := http.NewRequest(http.MethodGet, u, nil)
	if err != nil {
		c.t.Fatal(err)
	}
	if c.token != "" {
		req.Header.Set("Authorization", "Basic "+base64.StdEncoding.EncodeToString([]byte("__token__:"+c.token)))
	}
	req.Header.Set("Accept", accept)
	req.Header.Set("User-Agent", "uv/0.5.0")
	resp, err := e2eClient.Do(req)
	if err != nil {
		c.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp, b
}

// uvPage is the part of a PEP 691 page uv reads.
type uvPage struct {
	Files []struct {
		Filename     string            `json:"filename"`
		URL          string            `json:"url"`
		Hashes       map[string]string `json:"hashes"`
		CoreMetadata json.RawMessage   `json:"core-metadata"`
		Yanked       json.RawMessage   `json:"yanked"`
	} `json:"files"`
}

// install resolves names and their dependencies (no extras, no markers:
// the fixtures have none) to the newest pure wheel each and downloads them.
// It returns each project's chosen version, by normalized name.
func (c uvClient) install(names ...string) map[string]string {
	c.t.Helper()
	chosen := map[string]string{}
	queue := append([]string(nil), names...)
	for len(queue) > 0 {
		name := pep.NormalizeName(queue[0])
		queue = queue[1:]
		if _, ok := chosen[name]; ok {
			continue
		}
		resp, body := c.get(c.index+name+"/", uvAccept)
		var page uvPage
		if resp.StatusCode != http.StatusOK || !strings.HasPrefix(resp.Header.Get("Content-Type"), "application/vnd.pypi.simple.v1+json") || json.Unmarshal(body, &page) != nil {
			c.t.Fatalf("uv: GET %s%s/: %d %s\n%s", c.index, name, resp.StatusCode, resp.Header.Get("Content-Type"), body)
		}
		best, bestVersion := -1, pep.Version{}
		for i, f := range page.Files {
			w, err := pep.ParseWheelFilename(f.Filename)
			if err != nil || (len(f.Yanked) > 0 && string(f.Yanked) != "false") {
				continue
			}
			v, err := pep.ParseVersion(w.Version)
			if err != nil {
				continue
			}
			if best < 0 || pep.Compare(v, bestVersion) > 0 {
				best, bestVersion = i, v
			}
		}
		if best < 0 {
			c.t.Fatalf("uv: no wheel for %s on its page: %s", name, body)
		}
		f := page.Files[best]
		if strings.Contains(f.URL, "__token__") || (c.token != "" && strings.Contains(f.URL, c.token)) {
			c.t.Errorf("uv: a file URL carries the credentials: %s", f.URL)
		}
		if len(f.CoreMetadata) == 0 || string(f.CoreMetadata) == "false" {
			c.t.Fatalf("uv: %s has no core-metadata on its page; uv would download the whole wheel to resolve", f.Filename)
		}
		resp, meta := c.get(f.URL+".metadata", "*/*")
		if resp.StatusCode != http.StatusOK {
			c.t.Fatalf("uv: GET %s.metadata: %d %s", f.URL, resp.StatusCode, meta)
		}
		md, err := pep.ParseMetadata(meta)
		if err != nil {
			c.t.Fatalf("uv: the metadata of %s: %v", f.Filename, err)
		}
		for _, req := range md.GetAll("Requires-Dist") {
			queue = append(queue, requirementName(req))
		}
		resp, wheel := c.get(f.URL, "*/*")
		sum := sha256.Sum256(wheel)
		if resp.StatusCode != http.StatusOK || hex.EncodeToString(sum[:]) != f.Hashes["sha256"] {
			c.t.Fatalf("uv: GET %s: %d, sha256 %x, the page says %s", f.URL, resp.StatusCode, sum, f.Hashes["sha256"])
		}
		chosen[name] = bestVersion.String()
	}
	return chosen
}

// requirementName is the project name a PEP 508 requirement starts with.
func requirementName(req string) string {
	req = strings.TrimSpace(req)
	end := strings.IndexFunc(req, func(r rune) bool {
		return !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '_' || r == '.')
	})
	if end < 0 {
		end = len(req)
	}
	return pep.NormalizeName(req[:end])
}
