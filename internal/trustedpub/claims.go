package trustedpub

import (
	"fmt"
	"net/url"
	"slices"
	"strings"
)

// Claim rules per provider (spec §3.2, G6). A token is first looked up by
// the claims that make a publisher's lookup key, then the chosen publisher
// checks every claim it binds. Comparisons are case-insensitive only where
// the identity provider is (GitHub and GitLab names).

func publisherErr(format string, args ...any) *Error {
	return refuse(CodeInvalidPublisher, "valid token, but no corresponding publisher (%s)", fmt.Sprintf(format, args...))
}

func missing(name string) *Error { return publisherErr("Missing claim '%s'", name) }

// require returns the named string claims, or the first one missing.
func (c claims) require(names ...string) ([]string, *Error) {
	out := make([]string, len(names))
	for i, n := range names {
		v, ok := c.str(n)
		if !ok || v == "" {
			return nil, missing(n)
		}
		out[i] = v
	}
	return out, nil
}

// lookup is what a token's claims say about the publisher to look for:
// candidate lookup keys and the environment (or subject) to prefer.
type lookup struct {
	keys []string
	env  string
}

// lookupFor derives the lookup from a verified token.
func lookupFor(is *issuer, c claims) (lookup, *Error) {
	if ev, _ := c.str("event_name"); ev == "pull_request_target" {
		// Warehouse refuses it for GitHub; Gitea and Forgejo copy GitHub's
		// claims, so it is refused for every issuer.
		return lookup{}, publisherErr("Publishing from a workflow invoked via 'pull_request_target' is not supported.")
	}
	switch is.kind {
	case KindGitHub:
		v, e := c.require("sub", "repository", "repository_owner", "repository_owner_id", "job_workflow_ref", "ref", "sha")
		if e != nil {
			return lookup{}, e
		}
		repo, ownerID, jobRef := v[1], v[3], v[4]
		// In order: a publisher naming the reusable workflow the job runs
		// (job_workflow_ref ≠ workflow_ref); Warehouse's, by the file in
		// job_workflow_ref; the caller's workflow without a reusable one,
		// found so that its check can say what is missing.
		var keys []string
		add := func(k string) {
			if !slices.Contains(keys, k) {
				keys = append(keys, k)
			}
		}
		callerRef := strOr(c, "workflow_ref")
		if f := workflowFile(callerRef); f != "" && callerRef != jobRef {
			if path, _, ok := strings.Cut(jobRef, "@"); ok {
				add(reusableKey(githubKey(repo, ownerID, f), path))
			}
		}
		if f := workflowFile(jobRef); f != "" {
			add(githubKey(repo, ownerID, f))
		}
		if f := workflowFile(callerRef); f != "" {
			add(githubKey(repo, ownerID, f))
		}
		if len(keys) == 0 {
			return lookup{}, publisherErr("The job_workflow_ref claim %q names no workflow file", jobRef)
		}
		env, _ := c.str("environment")
		return lookup{keys: keys, env: strings.ToLower(env)}, nil
	case KindGitLab:
		v, e := c.require("sub", "project_path", "ci_config_ref_uri", "ref_path", "sha")
		if e != nil {
			return lookup{}, e
		}
		file := gitlabFile(v[2], v[1])
		if file == "" {
			return lookup{}, publisherErr("The ci_config_ref_uri claim %q does not name a CI file of %s", v[2], v[1])
		}
		env, _ := c.str("environment")
		return lookup{keys: []string{gitlabKey(v[1], file)}, env: env}, nil
	case KindGoogle:
		v, e := c.require("email")
		if e != nil {
			return lookup{}, e
		}
		sub, _ := c.str("sub")
		return lookup{keys: []string{v[0]}, env: sub}, nil
	case KindActiveState:
		v, e := c.require("sub", "organization", "project", "actor_id", "builder")
		if e != nil {
			return lookup{}, e
		}
		return lookup{keys: []string{activeStateKey(v[1], v[2], v[3])}}, nil
	case KindCustom:
		values, e := c.require(is.custom.Claims...)
		if e != nil {
			return lookup{}, e
		}
		return lookup{keys: []string{customKey(values)}}, nil
	}
	return lookup{}, publisherErr("unknown provider")
}

func strOr(c claims, name string) string {
	v, _ := c.str(name)
	return v
}

// workflowFile is the file name of a GitHub workflow ref,
// "owner/repo/.github/workflows/release.yml@refs/tags/v1" → "release.yml".
func workflowFile(ref string) string {
	path, _, ok := strings.Cut(ref, "@")
	if !ok {
		return ""
	}
	parts := strings.Split(path, "/")
	if len(parts) != 5 || parts[2] != ".github" || parts[3] != "workflows" || !ghWorkflowRE.MatchString(parts[4]) {
		return ""
	}
	return parts[4]
}

// gitlabFile is the CI file path in a ci_config_ref_uri,
// "gitlab.com/acme/widget//.gitlab-ci.yml@refs/heads/main" →
// ".gitlab-ci.yml", provided the project part is projectPath.
func gitlabFile(uri, projectPath string) string {
	rest, _, ok := strings.Cut(uri, "@")
	if !ok {
		return ""
	}
	_, afterHost, ok := strings.Cut(rest, "/")
	if !ok {
		return ""
	}
	proj, file, ok := strings.Cut(afterHost, "//")
	if !ok || !strings.EqualFold(proj, projectPath) || file == "" {
		return ""
	}
	return file
}

// checkClaims checks every claim the publisher binds.
func checkClaims(p *Publisher, is *issuer, c claims) *Error {
	if p.IssuerURL != is.url || p.Kind != is.kind {
		// Lookups filter on both; this is the second line of G7.
		return publisherErr("JWT issuer %s does not match expected issuer %s", is.url, p.IssuerURL)
	}
	cfg := p.Config
	switch p.Kind {
	case KindGitHub:
		return checkGitHub(cfg, c)
	case KindGitLab:
		return checkGitLab(cfg, is, c)
	case KindGoogle:
		if email, _ := c.str("email"); email != cfg["email"] {
			return publisherErr("Check failed for required claim 'email'")
		}
		if v, ok := c["email_verified"].(bool); !ok || !v {
			return publisherErr("Check failed for required claim 'email_verified'")
		}
		if cfg["sub"] != "" && strOr(c, "sub") != cfg["sub"] {
			return publisherErr("Check failed for optional claim 'sub'")
		}
	case KindActiveState:
		parts := strings.Split(strOr(c, "sub"), ":")
		if len(parts) < 4 || parts[0] != "org" || parts[1] != cfg["organization"] || parts[2] != "project" || parts[3] != cfg["project"] {
			return publisherErr("Check failed for required claim 'sub'")
		}
		for _, n := range []string{"organization", "project", "actor_id"} {
			if strOr(c, n) != cfg[n] {
				return publisherErr("Check failed for required claim '%s'", n)
			}
		}
		if strOr(c, "builder") != "pypi-publisher" {
			return publisherErr("Check failed for required claim 'builder'")
		}
	case KindCustom:
		for _, n := range is.custom.Claims {
			if strOr(c, n) != cfg["claim_"+n] {
				return publisherErr("Check failed for required claim '%s'", n)
			}
		}
	}
	return nil
}

func checkGitHub(cfg map[string]string, c claims) *Error {
	repo := cfg["owner"] + "/" + cfg["repository"]
	if !strings.EqualFold(strOr(c, "repository"), repo) {
		return publisherErr("Check failed for required claim 'repository'")
	}
	if strOr(c, "repository_owner") != cfg["owner"] && !strings.EqualFold(strOr(c, "repository_owner"), cfg["owner"]) {
		return publisherErr("Check failed for required claim 'repository_owner'")
	}
	if strOr(c, "repository_owner_id") != cfg["owner_id"] {
		// The owner was renamed or deleted and the name taken by someone
		// else: the id tells them apart.
		return publisherErr("Check failed for required claim 'repository_owner_id'")
	}
	ref, sha := strOr(c, "ref"), strOr(c, "sha")
	// The workflow the publisher names, at the token's ref or sha.
	workflowPath := strings.ToLower(repo) + "/.github/workflows/" + cfg["workflow"]
	matchesAt := func(claim string) bool {
		path, at, ok := strings.Cut(claim, "@")
		if !ok {
			return false
		}
		wp, wf, _ := cutLast(path, "/")
		want, wantFile, _ := cutLast(workflowPath, "/")
		return strings.EqualFold(wp, want) && wf == wantFile && (at == ref || at == sha) && at != ""
	}
	jobRef := strOr(c, "job_workflow_ref")
	if reusable := cfg["reusable_workflow"]; reusable != "" {
		// The job runs a reusable workflow: the caller (workflow_ref) must
		// be the publisher's workflow, and the job's own workflow
		// (job_workflow_ref) the named reusable one, at the pinned ref if
		// one is given.
		if !matchesAt(strOr(c, "workflow_ref")) {
			return publisherErr("The workflow_ref claim does not match, expecting %s@%s", workflowPath, ref)
		}
		wantPath, wantRef, pinned := strings.Cut(reusable, "@")
		path, at, ok := strings.Cut(jobRef, "@")
		if !ok || !strings.EqualFold(path, wantPath) || (pinned && at != wantRef) {
			return publisherErr("The job_workflow_ref claim does not match, expecting %s", reusable)
		}
	} else if !matchesAt(jobRef) {
		msg := fmt.Sprintf("The job_workflow_ref claim does not match, expecting one of [%s@%s, %s@%s]", workflowPath, ref, workflowPath, sha)
		if wr := strOr(c, "workflow_ref"); wr != "" && wr != jobRef {
			msg += "; the job runs the reusable workflow " + jobRef + ": name it in the publisher's reusable workflow field"
		}
		return publisherErr("%s", msg)
	}
	if env := cfg["environment"]; env != "" && !strings.EqualFold(strOr(c, "environment"), env) {
		return publisherErr("Check failed for optional claim 'environment'")
	}
	return nil
}

func checkGitLab(cfg map[string]string, is *issuer, c claims) *Error {
	path := cfg["namespace"] + "/" + cfg["project"]
	sub := strOr(c, "sub")
	want := "project_path:" + path
	if len(sub) < len(want) || !strings.EqualFold(sub[:len(want)], want) || (len(sub) > len(want) && sub[len(want)] != ':') {
		return publisherErr("Check failed for required claim 'sub'")
	}
	if !strings.EqualFold(strOr(c, "project_path"), path) {
		return publisherErr("Check failed for required claim 'project_path'")
	}
	host := is.url
	if u, err := url.Parse(is.url); err == nil {
		host = u.Host
	}
	refPath, sha := strOr(c, "ref_path"), strOr(c, "sha")
	uri := strOr(c, "ci_config_ref_uri")
	// host/namespace/project compares case-insensitively, as GitLab's
	// paths do; the file and the ref exactly.
	hostPath := host + "/" + path
	fileAt := "//" + cfg["workflow_filepath"] + "@"
	ok := len(uri) > len(hostPath) && strings.EqualFold(uri[:len(hostPath)], hostPath) && strings.HasPrefix(uri[len(hostPath):], fileAt)
	var at string
	if ok {
		at = uri[len(hostPath)+len(fileAt):]
	}
	if !ok || at == "" || (at != refPath && at != sha) {
		return publisherErr("The ci_config_ref_uri claim does not match, expecting one of [%s%s%s, %s%s%s]", hostPath, fileAt, refPath, hostPath, fileAt, sha)
	}
	if env := cfg["environment"]; env != "" && strOr(c, "environment") != env {
		return publisherErr("Check failed for optional claim 'environment'")
	}
	return nil
}

// cutLast splits s around the last sep.
func cutLast(s, sep string) (before, after string, found bool) {
	if i := strings.LastIndex(s, sep); i >= 0 {
		return s[:i], s[i+len(sep):], true
	}
	return s, "", false
}

// recordedClaims are the claims kept with a minted token and in the audit
// trail: what repository, workflow, ref and commit published.
func recordedClaims(is *issuer, c claims) map[string]string {
	names := map[string][]string{
		KindGitHub:      {"repository", "repository_owner_id", "workflow_ref", "job_workflow_ref", "ref", "sha", "environment", "event_name", "run_id"},
		KindGitLab:      {"project_path", "ci_config_ref_uri", "ref_path", "sha", "environment", "pipeline_id"},
		KindGoogle:      {"email", "sub"},
		KindActiveState: {"organization", "project", "actor_id", "sub"},
	}[is.kind]
	if is.kind == KindCustom {
		names = append(append(names, is.custom.Claims...), "ref", "sha", "workflow_ref", "repository")
	}
	out := map[string]string{}
	for _, n := range names {
		if v, ok := c.str(n); ok && v != "" && len(v) <= maxField {
			out[n] = v
		}
	}
	return out
}
