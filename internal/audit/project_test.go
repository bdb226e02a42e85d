package audit

import (
	"context"
	"testing"
	"time"

	"github.com/gatehouse-index/gatehouse/internal/db"
	"github.com/gatehouse-index/gatehouse/internal/db/dbtest"
)

func TestDescribeProjectEvents(t *testing.T) {
	for _, c := range []struct {
		e    Event
		want string
	}{
		{Event{Tag: ProjectCreate, Actor: "alice"}, "Project created by alice"},
		{Event{Tag: ProjectReleaseAdd, Actor: "alice", Additional: map[string]any{"version": "1.0"}}, "Release 1.0 created by alice"},
		{Event{Tag: FileAdd, Actor: "bob", Additional: map[string]any{"filename": "x-1.0.tar.gz"}}, "File x-1.0.tar.gz uploaded by bob"},
		{Event{Tag: ProjectReleaseYank, Actor: "alice", Additional: map[string]any{"version": "1.0", "yanked_reason": ""}}, "Release 1.0 yanked by alice (no reason given)"},
		{Event{Tag: ProjectReleaseYank, Actor: "alice", Additional: map[string]any{"version": "1.0", "yanked_reason": "broken"}}, "Release 1.0 yanked by alice: broken"},
		{Event{Tag: ProjectReleaseUnyank, Actor: "alice", Additional: map[string]any{"version": "1.0"}}, "Release 1.0 un-yanked by alice"},
		{Event{Tag: ProjectReleaseRemove, Actor: "alice", Additional: map[string]any{"version": "1.0"}}, "Release 1.0 deleted by alice, with its files"},
		{Event{Tag: FileRemove, Actor: "alice", Additional: map[string]any{"filename": "x-1.0.tar.gz"}}, "File x-1.0.tar.gz deleted by alice"},
		{Event{Tag: ProjectRemove, Actor: "alice"}, "Project deleted by alice"},
		{Event{Tag: ProjectArchiveEnter, Actor: "alice"}, "Project archived by alice"},
		{Event{Tag: ProjectArchiveExit, Actor: "alice"}, "Project unarchived by alice"},
		{Event{Tag: ProjectQuarantineEnter, Actor: "root", Additional: map[string]any{"reason": "malware"}}, "Project quarantined by administrator root: malware"},
		{Event{Tag: ProjectQuarantineExit, Actor: "root"}, "Quarantine lifted by administrator root"},
		{Event{Tag: AdminProjectUploadLimit, Actor: "root", Additional: map[string]any{"limit": "200 MiB"}}, "Largest file set to 200 MiB by administrator root"},
		{Event{Tag: AdminProjectUploadLimit, Actor: "root"}, "Largest file back to the site default, set by administrator root"},
		{Event{Tag: AdminProjectTotalSizeLimit, Actor: "root", Additional: map[string]any{"limit": "20 GiB"}}, "Total size limit set to 20 GiB by administrator root"},
		{Event{Tag: AdminProjectReleaseAge, Actor: "root", Additional: map[string]any{"days": float64(30)}}, "Releases now take new files for 30 days, set by administrator root"},
	} {
		if got := Describe(Stored{Event: c.e}); got != c.want {
			t.Errorf("Describe(%s): got %q, want %q", c.e.Tag, got, c.want)
		}
	}
}

func TestForProjectPages(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		ctx := context.Background()
		now := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
		s := NewService(d, func() time.Time { return now })
		for i := 0; i < 5; i++ {
			if err := s.Record(ctx, Event{ProjectID: 3, Tag: FileAdd, Actor: "alice"}); err != nil {
				t.Fatal(err)
			}
		}
		s.Record(ctx, Event{ProjectID: 4, Tag: FileAdd})
		s.Record(ctx, Event{UserID: 3, Tag: AccountCreate})
		first, err := s.ForProject(ctx, 3, 0, 3)
		if err != nil {
			t.Fatal(err)
		}
		if len(first) != 3 || first[0].ID <= first[1].ID {
			t.Fatalf("first page: %+v, want 3 events newest first", first)
		}
		rest, err := s.ForProject(ctx, 3, first[2].ID, 3)
		if err != nil {
			t.Fatal(err)
		}
		if len(rest) != 2 || rest[0].ID >= first[2].ID {
			t.Fatalf("second page: %+v, want the 2 older events", rest)
		}
		for _, e := range append(first, rest...) {
			if e.ProjectID != 3 || e.Actor != "alice" {
				t.Errorf("event of another project or lost actor: %+v", e)
			}
		}
	})
}
