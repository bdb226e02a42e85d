package main

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"io"
	"mime/multipart"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/gatehouse-index/gatehouse/internal/attest"
	"github.com/gatehouse-index/gatehouse/internal/attest/attesttest"
)

// e2eAttestedUpload is the upload twine --attestations makes (Debian's
// twine 4.0.2 lacks the flag, so the test sends the same multipart form
// itself): tp-demo 1.1 with publish and SLSA attestations signed by the
// virtual Sigstore for octo/widget's release.yml, then the Integrity API
// serves them and the Simple API links them.
func e2eAttestedUpload(t *testing.T, c *http.Client, public, minted, issuerURL string, vs *attesttest.Sigstore) {
	t.Helper()
	const filename = "tp_demo-1.1-py3-none-any.whl"
	content := e2eWheel(t, "tp-demo", "1.1", e2eMetadata("tp-demo", "1.1"))
	sum := sha256.Sum256(content)
	sha := hex.EncodeToString(sum[:])
	var atts []json.RawMessage
	for _, pt := range []string{attest.PublishPredicate, attest.SLSAPredicate} {
		a, err := vs.Sign(attesttest.Statement{SubjectName: filename, SubjectSHA256: sha, PredicateType: pt},
			attesttest.GitHubIdentity("octo/widget", "release.yml"), issuerURL, time.Now().Add(5*time.Minute))
		if err != nil {
			t.Fatal(err)
		}
		atts = append(atts, a)
	}
	var body bytes.Buffer
	mw := multipart.NewWriter(&body)
	for _, kv := range [][2]string{{":action", "file_upload"}, {"protocol_version", "1"}, {"metadata_version", "2.1"},
		{"name", "tp-demo"}, {"version", "1.1"}, {"filetype", "bdist_wheel"}, {"pyversion", "py3"},
		{"sha256_digest", sha}, {"attestations", attesttest.Array(atts...)}} {
		mw.WriteField(kv[0], kv[1])
	}
	fw, _ := mw.CreateFormFile("content", filename)
	fw.Write(content)
	mw.Close()
	req, _ := http.NewRequest("POST", public+"/legacy/", &body)
	req.Header.Set("Content-Type", mw.FormDataContentType())
	req.SetBasicAuth("__token__", minted)
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("attested upload: %s %s", resp.Status, b)
	}

	req, _ = http.NewRequest("GET", public+"/integrity/tp-demo/1.1/"+filename+"/provenance", nil)
	req.Header.Set("Accept", "application/vnd.pypi.integrity.v1+json")
	resp, err = c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	b, _ = io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || resp.Header.Get("Content-Type") != "application/vnd.pypi.integrity.v1+json" ||
		!strings.Contains(string(b), `"publisher":{"environment":"pypi","kind":"GitHub","repository":"octo/widget","workflow":"release.yml"}`) {
		t.Fatalf("provenance: %s %s\n%s", resp.Status, resp.Header.Get("Content-Type"), b)
	}

	req, _ = http.NewRequest("GET", public+"/simple/tp-demo/", nil)
	req.Header.Set("Accept", "application/vnd.pypi.simple.v1+json")
	resp, err = c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	b, _ = io.ReadAll(resp.Body)
	resp.Body.Close()
	if !strings.Contains(string(b), `"provenance":"`+public+`/integrity/tp-demo/1.1/`+filename+`/provenance"`) {
		t.Fatalf("the Simple API does not link the provenance:\n%s", b)
	}
}
