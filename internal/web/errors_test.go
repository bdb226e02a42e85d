package web

import (
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/gatehouse-index/gatehouse/internal/derrors"
)

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
		if got := s.publicMessage(r, err, statusOf(err)); got != "what happened, and what to do" {
			t.Errorf("publicMessage for %v: got %q, want the error's own message", tt.kind, got)
		}
	}
}
