package trustedpub

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
)

// errGitHubUnknownOwner is GitHub saying there is no such user or
// organization.
var errGitHubUnknownOwner = errors.New("unknown GitHub owner")

// lookupGitHubOwner asks the GitHub API for an owner's login (as GitHub
// spells it) and numeric id. The id is what a publisher binds: a login can
// be given up and taken by someone else, the id cannot (Warehouse's defence
// against account resurrection). Errors other than errGitHubUnknownOwner
// say, in words for the form, why GitHub could not answer; the caller then
// accepts an id entered by hand.
func (s *Service) lookupGitHubOwner(ctx context.Context, owner string) (login, id string, err error) {
	ctx, cancel := context.WithTimeout(ctx, s.timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, s.githubAPI+"/users/"+url.PathEscape(owner), nil)
	if err != nil {
		return "", "", fmt.Errorf("The GitHub API URL is not usable.")
	}
	req.Header.Set("Accept", "application/vnd.github+json")
	req.Header.Set("User-Agent", "Gatehouse trusted publishing")
	resp, err := s.client.Do(req)
	if err != nil {
		s.log.Warn("GitHub API lookup failed", "owner", owner, "err", err)
		return "", "", fmt.Errorf("The GitHub API (%s) could not be reached.", s.githubAPI)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	switch {
	case resp.StatusCode == http.StatusNotFound:
		return "", "", errGitHubUnknownOwner
	case resp.StatusCode == http.StatusForbidden || resp.StatusCode == http.StatusTooManyRequests:
		return "", "", fmt.Errorf("The GitHub API has rate-limited this server's lookups for now.")
	case resp.StatusCode != http.StatusOK:
		return "", "", fmt.Errorf("The GitHub API answered %s.", resp.Status)
	}
	var u struct {
		Login string `json:"login"`
		ID    int64  `json:"id"`
	}
	if err := json.Unmarshal(body, &u); err != nil || u.ID <= 0 || !ghOwnerRE.MatchString(u.Login) {
		return "", "", fmt.Errorf("The GitHub API's answer could not be read.")
	}
	return u.Login, strconv.FormatInt(u.ID, 10), nil
}
