package web

// The error adapters: a rate-limited error reaches the client as a 429 with
// its own message and its Retry-After, and other errors carry no
// Retry-After.

import (
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/gatehouse-index/gatehouse/internal/db"
	"github.com/gatehouse-index/gatehouse/internal/db/dbtest"
	"github.com/gatehouse-index/gatehouse/internal/derrors"
)

func TestPageErrorsRetryAfter(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		f := newFixture(t, d)
		const limitMsg = "Too many attempts. Try again later."
		var limited error = derrors.Limited(5*time.Minute, limitMsg)
		derrors.Wrap(&limited, "account.Login")
		for _, tt := range []struct {
			name       string
			err        error
			accept     string
			status     int
			msg        string
			retryAfter string
		}{
			{"limited page", limited, "", http.StatusTooManyRequests, limitMsg, "300"},
			{"limited JSON", limited, "application/json", http.StatusTooManyRequests, limitMsg, "300"},
			{"rate-limited kind without a wait", derrors.New(derrors.RateLimited, limitMsg), "", http.StatusTooManyRequests, limitMsg, ""},
			{"invalid", derrors.New(derrors.Invalid, "The name is invalid."), "", http.StatusBadRequest, "The name is invalid.", ""},
			{"internal", errors.New("disk on fire"), "", http.StatusInternalServerError, "Internal server error.", ""},
		} {
			t.Run(tt.name, func(t *testing.T) {
				h := f.srv.pageErrors(func(w http.ResponseWriter, r *http.Request) error { return tt.err })
				req := httptest.NewRequest("POST", "/account/login/", nil)
				if tt.accept != "" {
					req.Header.Set("Accept", tt.accept)
				}
				rec := httptest.NewRecorder()
				h.ServeHTTP(rec, req)
				if rec.Code != tt.status {
					t.Errorf("status %d, want %d", rec.Code, tt.status)
				}
				if got := rec.Header().Get("Retry-After"); got != tt.retryAfter {
					t.Errorf("Retry-After %q, want %q", got, tt.retryAfter)
				}
				if body := rec.Body.String(); !strings.Contains(body, tt.msg) {
					t.Errorf("body does not show %q: %.500s", tt.msg, body)
				}
			})
		}
	})
}

// The database unreachable and a full disk are not internal errors: the
// client gets 503 or 507 and the message says what happened, so it knows to
// try again or to tell the administrator.
func TestUnavailableAndFullDiskStatuses(t *testing.T) {
	s := &Server{log: newTestLogger(t)}
	r := httptest.NewRequest(http.MethodGet, "/simple/x/", nil)
	for _, tt := range []struct {
		kind error
		want int
	}{
		{derrors.Unavailable, http.StatusServiceUnavailable},
		{derrors.NoSpace, http.StatusInsufficientStorage},
	} {
		err := derrors.New(tt.kind, "what happened, and what to do")
		if got := statusOf(err); got != tt.want {
			t.Errorf("statusOf(%v): got %d, want %d", tt.kind, got, tt.want)
		}
		if got := s.publicMessage(httptest.NewRecorder(), r, err, statusOf(err)); got != "what happened, and what to do" {
			t.Errorf("publicMessage for %v: got %q, want the error's own message", tt.kind, got)
		}
	}
}
