package web

import (
	"errors"
	"net/http"
	"net/url"
	"slices"
	"strings"

	"github.com/gatehouse-index/gatehouse/internal/derrors"
	"github.com/gatehouse-index/gatehouse/internal/org"
	"github.com/gatehouse-index/gatehouse/internal/pep"
)

// The organization guards, composed after manage as the project guards are:
// manage(orgOwner(sudo(h))). orgOwner lets through the owners of the
// organization the route names ({organization}), orgManager its owners and
// managers, orgMember any member. Each records the organization and the
// role in the request state, and applies the organization's security
// policies; anyone else gets a 403 that says why, and an organization that
// does not exist a 404. A GET by an old name (before a rename) is sent to
// the same page under the new one.
func (s *Server) orgOwner(h handlerFunc) handlerFunc {
	return s.orgRole(h, org.RoleOwner)
}

func (s *Server) orgManager(h handlerFunc) handlerFunc {
	return s.orgRole(h, org.RoleOwner, org.RoleManager)
}

func (s *Server) orgMember(h handlerFunc) handlerFunc {
	return s.orgRole(h, org.Roles...)
}

func (s *Server) orgRole(h handlerFunc, allowed ...string) handlerFunc {
	return func(w http.ResponseWriter, r *http.Request) error {
		st := stateOf(r)
		name := r.PathValue("organization")
		m, err := s.orgs.MembershipOf(r.Context(), name, st.user.ID)
		if err != nil {
			return err
		}
		if m.Org.NormalizedName != pep.NormalizeName(name) && r.Method == http.MethodGet {
			http.Redirect(w, r, renamedPath(r.URL.Path, name, m.Org.NormalizedName), http.StatusMovedPermanently)
			return nil
		}
		if !slices.Contains(allowed, m.Role) {
			switch len(allowed) {
			case 1:
				return derrors.New(derrors.Forbidden, "Only an owner of the organization %s can do this.", m.Org.Name)
			case 2:
				return derrors.New(derrors.Forbidden, "Only an owner or manager of the organization %s can do this.", m.Org.Name)
			}
			return derrors.New(derrors.Forbidden, "You are not a member of the organization %s.", m.Org.Name)
		}
		if err := s.orgs.CheckOrganization(r.Context(), st.user.ID, m.Org); err != nil {
			return s.policyRefusal(w, r, err)
		}
		st.orgMembership = m
		return h(w, r)
	}
}

// renamedPath is path with its organization segment old replaced by new.
func renamedPath(path, old, new string) string {
	segs := strings.Split(path, "/")
	for i, seg := range segs {
		if seg == old {
			segs[i] = url.PathEscape(new)
			break
		}
	}
	return strings.Join(segs, "/")
}

// policyRefusal answers a management action that a security policy refuses
// (a member without a security key where one is required): the browser goes
// to the two-factor page, where the key is added, with the policy's message.
// Anything else is returned as it is.
func (s *Server) policyRefusal(w http.ResponseWriter, r *http.Request, err error) error {
	msg, ok := derrors.Message(err)
	if !ok || !errors.Is(err, derrors.Forbidden) {
		return err
	}
	s.flash(w, r, flashError, msg)
	back := ""
	if r.Method == http.MethodGet {
		back = "?next=" + url.QueryEscape(safeNext(r.URL.RequestURI(), "/manage/projects/"))
	}
	http.Redirect(w, r, "/manage/account/two-factor/"+back, http.StatusSeeOther)
	return nil
}
