package project

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/gatehouse-index/gatehouse/internal/db"
	"github.com/gatehouse-index/gatehouse/internal/db/dbtest"
	"github.com/gatehouse-index/gatehouse/internal/derrors"
	"github.com/gatehouse-index/gatehouse/internal/pep"
)

const testHelp = "https://pypi.example.com/help/"

// insertProject adds a project row directly.
func insertProject(t *testing.T, d *db.DB, name string) {
	t.Helper()
	_, err := d.Exec(`INSERT INTO projects (name, normalized_name, ultranormalized_name, created_at) VALUES ($1, $2, $3, $4)`,
		name, pep.NormalizeName(name), pep.UltranormalizeName(name), time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))
	if err != nil {
		t.Fatal(err)
	}
}

// TestCheckNewProjectName checks the rules for a new project's name (spec
// §4.2 step 9) and their order: invalid, exists, prohibited, too similar,
// standard library.
func TestCheckNewProjectName(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		s := NewService(d, nil, Options{HelpURL: testHelp})
		ctx := context.Background()
		insertProject(t, d, "Hello-World")
		insertProject(t, d, "0s") // ultranormalizes like "os"
		for _, name := range []string{"Reserved", "he11o-world", "json"} {
			if err := s.Prohibit(ctx, name); err != nil {
				t.Fatal(err)
			}
		}
		if err := s.Prohibit(ctx, "RESERVED"); err != nil {
			t.Errorf("prohibiting a name twice: %v", err)
		}

		see := " See " + testHelp + "#project-name for more information."
		tests := []struct {
			name     string
			wantKind error
			want     string
		}{
			{"brand-new", nil, ""},
			{"-x", derrors.Invalid, "The name '-x' is invalid." + see},
			{"hello_world", derrors.Conflict, "The name 'hello_world' conflicts with an existing project." + see},
			{"HELLO.WORLD", derrors.Conflict, "The name 'HELLO.WORLD' conflicts with an existing project." + see},
			{"reserved", derrors.Invalid, "The name 'reserved' isn't allowed." + see},
			{"Reserved_", derrors.Invalid, "The name 'Reserved_' is invalid." + see},
			{"RESERVED", derrors.Invalid, "The name 'RESERVED' isn't allowed." + see},
			{"He11o.W0rld", derrors.Invalid, "The name 'He11o.W0rld' is too similar to an existing project." + see},
			{"helloworld", derrors.Invalid, "The name 'helloworld' is too similar to an existing project." + see},
			{"he11o-world", derrors.Invalid, "The name 'he11o-world' isn't allowed." + see},       // prohibited before too similar
			{"json", derrors.Invalid, "The name 'json' isn't allowed." + see},                     // prohibited before standard library
			{"os", derrors.Invalid, "The name 'os' is too similar to an existing project." + see}, // too similar before standard library
			{"asyncio", derrors.Invalid, "The name 'asyncio' isn't allowed (conflict with Python Standard Library module name)." + see},
			{"Typing", derrors.Invalid, "The name 'Typing' isn't allowed (conflict with Python Standard Library module name)." + see},
			{"typing-extensions", nil, ""},
		}
		for _, tt := range tests {
			err := s.checkNewProjectName(ctx, d, tt.name)
			if tt.wantKind == nil {
				if err != nil {
					t.Errorf("%q: got %v, want no error", tt.name, err)
				}
				continue
			}
			if !errors.Is(err, tt.wantKind) {
				t.Errorf("%q: got %v, want kind %v", tt.name, err, tt.wantKind)
			}
			if got, _ := derrors.Message(err); got != tt.want {
				t.Errorf("%q:\ngot  %q\nwant %q", tt.name, got, tt.want)
			}
		}
	})
}
