package main

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"sync"
)

const raceCase = "races"

func runRaces(ctx context.Context, h *harness) error {
	for _, dialect := range h.dialects() {
		if err := h.races(ctx, dialect); err != nil {
			h.rep.fail(raceCase, dialect, err)
		}
	}
	return nil
}

// dialects are the databases the harness can run on here.
func (h *harness) dialects() []string {
	if h.pg == nil {
		h.rep.skip("PostgreSQL cases", "postgres", "no PostgreSQL binaries (apt-get install postgresql)")
		return []string{"sqlite"}
	}
	return []string{"sqlite", "postgres"}
}

// together runs fn(i) for i < n, all released at once.
func together(n int, fn func(i int)) {
	var ready, done sync.WaitGroup
	start := make(chan struct{})
	for i := range n {
		ready.Add(1)
		done.Add(1)
		go func() {
			defer done.Done()
			ready.Done()
			<-start
			fn(i)
		}()
	}
	ready.Wait()
	close(start)
	done.Wait()
}

func (h *harness) races(ctx context.Context, dialect string) error {
	s, tokens, err := h.startServer(ctx, "race", dialect)
	if err != nil {
		return err
	}
	defer s.stop()
	const n = 16
	c := newClient(2 * n)
	rep := h.rep

	// (a) 16 identical uploads of one file: all succeed, one row, its blobs.
	same := buildWheel("race-same", "1.0", 64<<10, h.rng)
	replies := make([]reply, n)
	together(n, func(i int) { replies[i] = uploadWheel(ctx, c, s.base, tokens["alice"], same) })
	ok := 0
	var other []string
	for _, r := range replies {
		if r.code == http.StatusOK {
			ok++
		} else {
			other = append(other, r.String())
		}
	}
	rep.count(raceCase, dialect, "16 identical uploads: 200s", ok, n, firstOf(other))
	st, err := s.inspect(ctx, func(string) bool { return true })
	if err != nil {
		return err
	}
	rep.count(raceCase, dialect, "16 identical uploads: rows", rowsNamed(st, same.filename), 1, "")
	rep.count(raceCase, dialect, "16 identical uploads: orphan blobs", len(st.orphans), 0, firstOf(st.orphans))

	// (b) 16 different files under one name, in an existing project:
	// exactly one wins; the others are told the file exists.
	if r := uploadWheel(ctx, c, s.base, tokens["alice"], buildWheel("race-diff", "0.1", 1<<10, h.rng)); r.code != http.StatusOK {
		return fmt.Errorf("setting up race-diff: %s", r)
	}
	var variants []*wheel
	for range n {
		variants = append(variants, buildWheel("race-diff", "1.0", 64<<10, h.rng))
	}
	together(n, func(i int) { replies[i] = uploadWheel(ctx, c, s.base, tokens["alice"], variants[i]) })
	ok, other = 0, nil
	var winner *wheel
	refusedClearly := 0
	for i, r := range replies {
		switch {
		case r.code == http.StatusOK:
			ok++
			winner = variants[i]
		case (r.code == http.StatusBadRequest || r.code == http.StatusConflict) && strings.Contains(r.status, "File already exists"):
			refusedClearly++
		default:
			other = append(other, r.String())
		}
	}
	rep.count(raceCase, dialect, "16 different files, one name: 200s", ok, 1, "")
	rep.count(raceCase, dialect, "16 different files, one name: refused as 'File already exists'", refusedClearly, n-1, firstOf(other))
	st, err = s.inspect(ctx, func(string) bool { return true })
	if err != nil {
		return err
	}
	rep.count(raceCase, dialect, "16 different files, one name: rows", rowsNamed(st, variants[0].filename), 1, "")
	rep.count(raceCase, dialect, "16 different files, one name: orphan blobs", len(st.orphans), 0, firstOf(st.orphans))
	if winner != nil {
		v, err := fetchView(ctx, c, s.base, []string{"race-diff"})
		if err != nil {
			return err
		}
		vis, why := visibilityOf(ctx, c, s.base, v, winner)
		rep.count(raceCase, dialect, "16 different files, one name: winner served intact", boolInt(vis == complete), 1, why)
	}

	// Two users create one project (names that normalize alike) at once.
	rounds := pick(h.cfg.long, 20, 5)
	bad := []string{}
	for r := range rounds {
		names := [2]string{fmt.Sprintf("Race-Proj-%d", r), fmt.Sprintf("race_proj.%d", r)}
		users := [2]string{"alice", "bob"}
		var got [2]reply
		together(2, func(i int) {
			got[i] = uploadWheel(ctx, c, s.base, tokens[users[i]], buildWheel(names[i], "1.0", 4<<10, h.rng))
		})
		st, err := s.inspect(ctx, nil)
		if err != nil {
			return err
		}
		norm := fmt.Sprintf("race-proj-%d", r)
		owners := st.owners[norm]
		oks := boolInt(got[0].code == 200) + boolInt(got[1].code == 200)
		loserOK := true
		for _, g := range got {
			if g.code != 200 && g.code != http.StatusForbidden && g.code != http.StatusConflict {
				loserOK = false
			}
		}
		projects := 0
		for _, p := range st.projects {
			if p == norm {
				projects++
			}
		}
		if projects != 1 || len(owners) != 1 || oks != 1 || !loserOK || len(st.orphans) > 0 {
			bad = append(bad, fmt.Sprintf("round %d: %d project(s), owners %v, answers %q and %q, %d orphan(s)", r, projects, owners, got[0].status, got[1].status, len(st.orphans)))
		}
	}
	rep.count(raceCase, dialect, fmt.Sprintf("one project created by two users at once, %d rounds: rounds without exactly one project, one owner, one 200 and a 403/409", rounds),
		len(bad), 0, firstOf(bad))
	return nil
}

func rowsNamed(st *state, filename string) int {
	n := 0
	for _, r := range st.rows {
		if r.filename == filename {
			n++
		}
	}
	return n
}
