package web

import (
	"net/http"
	"strconv"
	"time"

	"github.com/gatehouse-index/gatehouse/internal/account"
	"github.com/gatehouse-index/gatehouse/internal/audit"
	"github.com/gatehouse-index/gatehouse/internal/derrors"
)

type adminHomePage struct {
	basePage
	Query            string
	Users            []account.User
	RegistrationOpen bool
	ReadOnly         bool
}

func (s *Server) adminHome(w http.ResponseWriter, r *http.Request) error {
	q := r.URL.Query().Get("q")
	var users []account.User
	var err error
	if q != "" {
		if users, err = s.accounts.Search(r.Context(), q, 100); err != nil {
			return err
		}
	} else if users, err = s.accounts.List(r.Context()); err != nil {
		return err
	}
	if len(users) > 100 {
		users = users[:100]
	}
	return s.render(w, http.StatusOK, "admin_home.html", adminHomePage{
		basePage: s.base(r, "Administration"), Query: q, Users: users,
		RegistrationOpen: s.accounts.RegistrationOpen(r.Context()), ReadOnly: s.accounts.ReadOnly(r.Context())})
}

type adminUserPage struct {
	basePage
	Target   *account.User
	Emails   []account.Email
	Sessions []sessionRow
	History  []historyRow
}

func (s *Server) targetUser(r *http.Request) (*account.User, error) {
	id, err := strconv.ParseInt(r.PathValue("id"), 10, 64)
	if err != nil {
		return nil, derrors.New(derrors.NotFound, "No such user.")
	}
	return s.accounts.ByID(r.Context(), id)
}

func (s *Server) adminUser(w http.ResponseWriter, r *http.Request) error {
	t, err := s.targetUser(r)
	if err != nil {
		return err
	}
	ctx := r.Context()
	emails, err := s.accounts.Emails(ctx, t.ID)
	if err != nil {
		return err
	}
	sessions, err := s.sessions.ListForUser(ctx, t.ID)
	if err != nil {
		return err
	}
	events, err := s.audit.ForUser(ctx, t.ID, time.Time{}, 500)
	if err != nil {
		return err
	}
	page := adminUserPage{basePage: s.base(r, "User "+t.Username), Target: t, Emails: emails}
	for _, se := range sessions {
		page.Sessions = append(page.Sessions, sessionRow{IDHash: se.IDHash, Browser: describeAgent(se.UserAgent), IP: se.IP, CreatedAt: se.CreatedAt, LastSeen: se.LastSeenAt})
	}
	for _, e := range events {
		page.History = append(page.History, historyRow{When: e.CreatedAt, What: audit.Describe(e), IP: dash(e.IP), Browser: eventAgent(e.UserAgent)})
	}
	return s.render(w, http.StatusOK, "admin_user.html", page)
}

func (s *Server) adminSetDisabled(w http.ResponseWriter, r *http.Request, disabled bool) error {
	admin := stateOf(r).user
	t, err := s.targetUser(r)
	if err != nil {
		return err
	}
	if err := s.accounts.SetDisabled(r.Context(), admin.ID, t.ID, disabled, r.PostFormValue("reason"), stateOf(r).client()); err != nil {
		msg, ok := userMessage(err)
		if !ok {
			return err
		}
		s.flash(w, r, flashError, msg)
	} else if disabled {
		s.flash(w, r, flashSuccess, "Disabled "+t.Username+": every session and API token stopped working.")
	} else {
		s.flash(w, r, flashSuccess, "Enabled "+t.Username+".")
	}
	http.Redirect(w, r, "/admin/users/"+strconv.FormatInt(t.ID, 10)+"/", http.StatusSeeOther)
	return nil
}

func (s *Server) adminDisableUser(w http.ResponseWriter, r *http.Request) error {
	return s.adminSetDisabled(w, r, true)
}

func (s *Server) adminEnableUser(w http.ResponseWriter, r *http.Request) error {
	return s.adminSetDisabled(w, r, false)
}

// adminSettings flips the site switches: registration and read-only mode.
func (s *Server) adminSettings(w http.ResponseWriter, r *http.Request) error {
	admin := stateOf(r).user
	c := stateOf(r).client()
	var err error
	switch r.PostFormValue("setting") {
	case "registration":
		err = s.accounts.SetRegistrationOpen(r.Context(), admin.ID, r.PostFormValue("value") == "open", c)
	case "read_only":
		err = s.accounts.SetReadOnly(r.Context(), admin.ID, r.PostFormValue("value") == "on", c)
	default:
		err = derrors.New(derrors.Invalid, "Unknown setting.")
	}
	if err != nil {
		return err
	}
	s.flash(w, r, flashSuccess, "Setting saved.")
	http.Redirect(w, r, "/admin/", http.StatusSeeOther)
	return nil
}

// adminRecoverUser is administrator-assisted account recovery for someone
// who lost every second factor and recovery code. The administrator records
// how they verified the person's identity; the account's factors and
// password are wiped and the owner receives a password reset link.
func (s *Server) adminRecoverUser(w http.ResponseWriter, r *http.Request) error {
	admin := stateOf(r).user
	t, err := s.targetUser(r)
	if err != nil {
		return err
	}
	c := stateOf(r).client()
	if err := s.mfa.AdminRecover(r.Context(), admin.ID, admin.Username, t.ID, r.PostFormValue("verified_how"), c); err != nil {
		msg, ok := userMessage(err)
		if !ok {
			return err
		}
		s.flash(w, r, flashError, msg)
	} else {
		if err := s.accounts.RequestPasswordReset(r.Context(), t.Username, c); err != nil {
			s.log.Warn("password reset after account recovery", "err", err)
		}
		s.mailKick()
		s.flash(w, r, flashSuccess, "Recovered "+t.Username+": second factors removed, password cleared, reset link emailed.")
	}
	http.Redirect(w, r, "/admin/users/"+strconv.FormatInt(t.ID, 10)+"/", http.StatusSeeOther)
	return nil
}
