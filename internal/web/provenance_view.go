package web

import (
	"net/url"
	"strings"

	"github.com/gatehouse-index/gatehouse/internal/project"
)

// builderView is who built a file, as the project page links it: a
// forge's repository, workflow and commit, or (Google, custom issuers)
// the identity the certificate names and who vouched for it.
type builderView struct {
	Repository, RepositoryURL string
	Workflow, WorkflowURL     string
	Commit, CommitURL         string
	Identity, IdentityKind    string
}

// viewBuilder links a file's provenance publisher on its forge: GitHub,
// or the GitLab instance that issued the publisher's token (gitlab.com
// unless a self-managed one).
func viewBuilder(b *project.Builder) *builderView {
	if b == nil {
		return nil
	}
	switch b.Kind {
	case "google":
		return &builderView{Identity: b.Identity, IdentityKind: "Google Cloud service account"}
	case "custom":
		return &builderView{Identity: b.Identity, IdentityKind: "token subject from " + b.Issuer}
	}
	host := "https://github.com/"
	commitPath, blobPath := "/commit/", "/blob/"
	workflowDir := ".github/workflows/"
	if b.Kind == "gitlab" {
		host, commitPath, blobPath, workflowDir = "https://gitlab.com/", "/-/commit/", "/-/blob/", ""
		if b.Issuer != "" {
			host = strings.TrimSuffix(b.Issuer, "/") + "/"
		}
	}
	repo := host + (&url.URL{Path: b.Repository}).EscapedPath()
	v := &builderView{Repository: b.Repository, RepositoryURL: repo, Workflow: b.Workflow, Commit: b.Commit}
	ref := b.Commit
	if ref == "" {
		ref = "HEAD"
	} else {
		v.CommitURL = repo + commitPath + url.PathEscape(b.Commit)
	}
	v.WorkflowURL = repo + blobPath + url.PathEscape(ref) + "/" + (&url.URL{Path: workflowDir + b.Workflow}).EscapedPath()
	return v
}

// previousBuilders are the publishers that built the release before rel
// (releases newest first, as Detail sorts them), for the "built by
// another publisher" marker.
func previousBuilders(d *project.Detail, rel *project.Release) map[string]bool {
	for i := range d.Releases {
		if d.Releases[i].ID != rel.ID || i+1 >= len(d.Releases) {
			continue
		}
		out := map[string]bool{}
		for _, f := range d.FilesOf(d.Releases[i+1].ID) {
			if f.Builder != nil {
				out[f.Builder.Key()] = true
			}
		}
		return out
	}
	return nil
}
