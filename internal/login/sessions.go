package login

import (
	"context"
	"database/sql"

	"github.com/gatehouse-index/gatehouse/internal/account"
	"github.com/gatehouse-index/gatehouse/internal/audit"
)

// EndSession ends one of the signed-in user's sessions, by the hash the
// sessions page lists, and records it, in one transaction. Another user's
// session is not found (no IDOR).
func (s *Service) EndSession(ctx context.Context, b Browser, u *account.User, idHash string) error {
	return s.db.InTx(ctx, func(tx *sql.Tx) error {
		if err := s.sessions.EndUserSession(ctx, tx, u.ID, idHash); err != nil {
			return err
		}
		return audit.Record(ctx, tx, s.now(), sessionEvent(b, u, nil))
	})
}

// EndOtherSessions ends every session of the user but this browser's, and
// records how many, in one transaction.
func (s *Service) EndOtherSessions(ctx context.Context, b Browser, u *account.User) (int64, error) {
	var n int64
	err := s.db.InTx(ctx, func(tx *sql.Tx) error {
		var err error
		if n, err = s.sessions.EndAllForUser(ctx, tx, u.ID, b.Session.IDHash); err != nil {
			return err
		}
		return audit.Record(ctx, tx, s.now(), sessionEvent(b, u, map[string]any{"count": n, "scope": "others"}))
	})
	return n, err
}

func sessionEvent(b Browser, u *account.User, add map[string]any) audit.Event {
	return audit.Event{UserID: u.ID, ActorID: u.ID, Actor: u.Username, Tag: audit.SessionRevoked,
		IP: b.Client.IP, UserAgent: b.Client.UserAgent, Additional: add}
}

// Logout ends this browser's session and records it, in one transaction.
func (s *Service) Logout(ctx context.Context, b Browser, u *account.User) error {
	return s.db.InTx(ctx, func(tx *sql.Tx) error {
		if b.Session != nil {
			if err := s.sessions.EndIn(ctx, tx, b.Session.IDHash); err != nil {
				return err
			}
		}
		if u == nil {
			return nil
		}
		return audit.Record(ctx, tx, s.now(), audit.Event{UserID: u.ID, ActorID: u.ID, Actor: u.Username, Tag: audit.Logout,
			IP: b.Client.IP, UserAgent: b.Client.UserAgent})
	})
}
