package main

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"time"
)

// killPoint is where in an upload the server is killed.
type killPoint struct {
	name    string
	body    float64 // > 0: after this fraction of the request body
	fp      string  // a failpoint (internal/failpoint) the server kills itself at
	afterOK bool    // as soon as the 200 has arrived
	random  bool    // at a random moment of the upload
}

var killPoints = []killPoint{
	{name: "10% of the body sent", body: 0.10},
	{name: "50% of the body sent", body: 0.50},
	{name: "99% of the body sent", body: 0.99},
	{name: "checked and flushed, not published", fp: "upload-staged"},
	{name: "blob temp file written, not renamed", fp: "blob-temp-written"},
	{name: "file stored, metadata not", fp: "upload-file-stored"},
	{name: "blobs stored, not committed", fp: "upload-before-commit"},
	{name: "committed, not answered", fp: "upload-committed"},
	{name: "right after the 200 OK", afterOK: true},
	{name: "a random moment", random: true},
}

func runKill(ctx context.Context, h *harness) error {
	if err := h.killLoop(ctx, "sqlite", h.cfg.killSQLite); err != nil {
		h.rep.fail("kill -9 during upload", "sqlite", err)
	}
	if h.pg == nil {
		h.rep.skip("kill -9 during upload", "postgres", "no PostgreSQL binaries")
		return nil
	}
	if err := h.killLoop(ctx, "postgres", h.cfg.killPostgres); err != nil {
		h.rep.fail("kill -9 during upload", "postgres", err)
	}
	return nil
}

// killTally counts what the loop saw.
type killTally struct {
	kills         map[string]int
	acked         int
	lost          []string // acknowledged, not complete after a restart
	absent        int      // not acknowledged, not visible: fine
	committed     int      // not acknowledged, completely visible: fine
	halfVisible   []string
	missing       int // rows without their blob, after a kill
	corrupt       int
	integrity     []string
	orphansAtKill int // unlisted blobs right after a kill (this upload's)
	orphansStale  int // unlisted blobs an earlier start-up sweep should have removed
	orphansLeft   int // unlisted blobs once the restarted server has swept
	tempsAtKill   int
	tempsLeft     int
	tempsLeftAt   []string
	notReached    []string
	restarts      []time.Duration
}

const killCase = "kill -9 during upload"

func (h *harness) killLoop(ctx context.Context, dialect string, n int) error {
	s, err := h.newServer(ctx, "kill", dialect)
	if err != nil {
		return err
	}
	s.logLvl = "debug" // the start-up sweep says at debug level that it is done
	tokens, err := s.setup(ctx)
	if err != nil {
		return err
	}
	tok := tokens["alice"]
	c := newClient(4)
	projects := []string{"crash-a", "crash-b", "crash-c"}

	// Every point equally often, in a random order.
	var plan []killPoint
	for len(plan) < n {
		perm := h.rng.Perm(len(killPoints))
		for _, i := range perm {
			plan = append(plan, killPoints[i])
		}
	}
	plan = plan[:n]

	t := killTally{kills: map[string]int{}}
	var mustStay []*wheel // acknowledged, or seen complete after a restart
	uploadTook := 50 * time.Millisecond
	start := func(i int) error {
		env := []string{}
		if i < len(plan) && plan[i].fp != "" {
			env = append(env, "GATEHOUSE_FAILPOINT="+plan[i].fp)
		}
		begin := time.Now()
		swept := s.waitLog("removed unlisted package files")
		tempsSwept := s.waitLog("removed temp files left by an earlier crash")
		if err := s.start(ctx, env...); err != nil {
			return err
		}
		t.restarts = append(t.restarts, time.Since(begin))
		// The temp-file and orphan sweeps run in the background; wait
		// until both are done so that what they left is counted, not
		// what they had not reached yet.
		for what, done := range map[string]<-chan struct{}{"orphan": swept, "temp-file": tempsSwept} {
			select {
			case <-done:
			case <-time.After(30 * time.Second):
				return fmt.Errorf("the restarted server did not finish its %s sweep within 30s", what)
			case <-ctx.Done():
				return ctx.Err()
			}
		}
		return nil
	}
	if err := start(0); err != nil {
		return err
	}
	defer s.kill()

	for i, p := range plan {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		payload := 16<<10 + h.rng.IntN(112<<10)
		if p.body > 0 || p.random {
			payload = 256<<10 + h.rng.IntN(4<<20)
		}
		w := buildWheel(projects[i%len(projects)], fmt.Sprintf("1.0.%d", i), payload, h.rng)
		t.kills[p.name]++
		r := h.killDuring(ctx, s, c, tok, w, p, uploadTook)
		if p.afterOK && r.code == http.StatusOK {
			uploadTook = (uploadTook*3 + r.took) / 4
		}
		if p.fp != "" && r.code != 0 {
			t.notReached = append(t.notReached, fmt.Sprintf("%s: %s", p.fp, r.status))
		}
		if r.code == http.StatusOK {
			t.acked++
			mustStay = append(mustStay, w)
		} else if p.afterOK {
			return fmt.Errorf("upload %d (%s) was refused before the kill: %s %s", i, w.filename, r, r.body)
		}

		// The server is dead. What did it leave?
		st, err := s.inspect(ctx, func(name string) bool { return name == w.filename || i%25 == 24 })
		if err != nil {
			return fmt.Errorf("after kill %d: %w", i, err)
		}
		if dialect == "sqlite" && st.integrity != "ok" {
			t.integrity = append(t.integrity, fmt.Sprintf("kill %d: %s", i, st.integrity))
		}
		t.missing += len(st.missing)
		t.corrupt += len(st.corrupt)
		t.tempsAtKill += len(st.temps)
		mine := blake2Hex(w.data)
		for _, o := range st.orphans {
			if strings.Contains(o, mine) {
				t.orphansAtKill++
			} else {
				t.orphansStale++
			}
		}

		// Restart (armed for the next kill) and look at it as clients do.
		if err := start(i + 1); err != nil {
			return fmt.Errorf("restart after kill %d: %w", i, err)
		}
		st, err = s.inspect(ctx, nil)
		if err != nil {
			return err
		}
		t.tempsLeft += len(st.temps)
		if len(st.temps) > 0 {
			t.tempsLeftAt = append(t.tempsLeftAt, fmt.Sprintf("after kill %d at %q: %s", i, p.name, strings.Join(st.temps, " ")))
		}
		t.orphansLeft += len(st.orphans)
		v, err := fetchView(ctx, c, s.base, projects)
		if err != nil {
			return fmt.Errorf("after restart %d: %w", i, err)
		}
		full := i%25 == 24 || i == len(plan)-1
		for _, m := range mustStay {
			if m == w || full {
				if vis, why := visibilityOf(ctx, c, s.base, v, m); vis != complete {
					t.lost = append(t.lost, fmt.Sprintf("%s (%s, %s)", m.filename, vis, why))
				}
			} else if !listed(v, m) {
				t.lost = append(t.lost, m.filename+" (not listed)")
			}
		}
		if r.code != http.StatusOK {
			switch vis, why := visibilityOf(ctx, c, s.base, v, w); vis {
			case absent:
				t.absent++
			case complete:
				t.committed++
				mustStay = append(mustStay, w)
			default:
				t.halfVisible = append(t.halfVisible, fmt.Sprintf("%s killed at %q: %s", w.filename, p.name, why))
			}
		}
	}

	// pip, from the index alone, fetches every file that must be there.
	pipErr := pipDownload(ctx, s.base, filepath.Join(h.work, "pip-"+dialect), mustStay)
	if pipErr != nil {
		fmt.Printf("faults: %s\n", pipErr)
	}

	// A clean stop, then `gatehouse sweep` with no grace: nothing unlisted,
	// nothing temporary, every row with its bytes.
	s.stop()
	out, sweepErr := s.cli(ctx, "", "sweep", "--older-than", "0s")
	st, err := s.inspect(ctx, func(string) bool { return true })
	if err != nil {
		return err
	}

	var kinds []string
	for k, v := range t.kills {
		kinds = append(kinds, fmt.Sprintf("%s ×%d", k, v))
	}
	sort.Strings(kinds)
	rep := h.rep
	rep.info(killCase, dialect, "kills", fmt.Sprint(n), strings.Join(kinds, ", "))
	rep.info(killCase, dialect, "acknowledged uploads", fmt.Sprint(t.acked), "")
	rep.count(killCase, dialect, "acknowledged uploads lost or damaged", len(t.lost), 0, firstOf(t.lost))
	rep.count(killCase, dialect, "unacknowledged uploads half-visible", len(t.halfVisible), 0, firstOf(t.halfVisible))
	rep.info(killCase, dialect, "unacknowledged uploads absent / complete", fmt.Sprintf("%d / %d", t.absent, t.committed),
		"complete = committed before the kill, listed whole after restart")
	rep.count(killCase, dialect, "failpoints not reached", len(t.notReached), 0, firstOf(t.notReached))
	rep.count(killCase, dialect, "rows without their blob after a kill", t.missing, 0, "")
	rep.count(killCase, dialect, "blobs with wrong bytes", t.corrupt, 0, "")
	if dialect == "sqlite" {
		rep.count(killCase, dialect, "PRAGMA integrity_check not ok", len(t.integrity), 0, firstOf(t.integrity))
	}
	rep.info(killCase, dialect, "temp files right after kills", fmt.Sprint(t.tempsAtKill), "")
	rep.count(killCase, dialect, "temp files after restart", t.tempsLeft, 0, firstOf(t.tempsLeftAt))
	rep.info(killCase, dialect, "orphan blobs right after kills", fmt.Sprint(t.orphansAtKill), "written, never committed")
	rep.count(killCase, dialect, "orphan blobs left by the start-up sweep", t.orphansLeft+t.orphansStale, 0, "")
	rep.count(killCase, dialect, "files pip could not download intact", boolInt(pipErr != nil), 0, errNote(pipErr))
	rep.count(killCase, dialect, "gatehouse sweep failed", boolInt(sweepErr != nil), 0, errNote(sweepErr)+strings.TrimSpace(out))
	rep.count(killCase, dialect, "at the end: orphans + temps + rows without blob", len(st.orphans)+len(st.temps)+len(st.missing)+len(st.corrupt), 0, "")
	rep.count(killCase, dialect, "at the end: rows", len(st.rows), len(mustStay), "every acknowledged or completely visible upload, nothing else")
	slices.Sort(t.restarts)
	rep.info(killCase, dialect, "restart to ready, p50 / max", fmt.Sprintf("%s / %s", t.restarts[len(t.restarts)/2].Round(time.Millisecond),
		t.restarts[len(t.restarts)-1].Round(time.Millisecond)), "")
	return nil
}

// killDuring uploads w and kills the server at point p. It returns the
// client's outcome; the server is dead when it returns.
func (h *harness) killDuring(ctx context.Context, s *server, c *http.Client, tok string, w *wheel, p killPoint, typical time.Duration) reply {
	body, ct := w.form()
	switch {
	case p.body > 0:
		pb := &pacedBody{r: bytes.NewReader(body), pauseAt: max(int64(p.body*float64(len(body))), 1),
			reached: make(chan struct{}), release: make(chan struct{})}
		done := make(chan reply, 1)
		go func() { done <- upload(ctx, c, s.base, tok, pb, int64(len(body)), ct) }()
		select {
		case <-pb.reached:
			s.kill()
			close(pb.release)
			return <-done
		case r := <-done:
			s.kill()
			return r
		}
	case p.fp != "":
		r := upload(ctx, c, s.base, tok, bytes.NewReader(body), int64(len(body)), ct)
		if !s.exited(10 * time.Second) {
			s.kill()
		}
		return r
	case p.afterOK:
		r := upload(ctx, c, s.base, tok, bytes.NewReader(body), int64(len(body)), ct)
		s.kill()
		return r
	default: // random
		done := make(chan reply, 1)
		go func() { done <- upload(ctx, c, s.base, tok, bytes.NewReader(body), int64(len(body)), ct) }()
		d := time.Duration(h.rng.Int64N(int64(typical)*3/2 + 1))
		select {
		case <-time.After(d):
			s.kill()
			return <-done
		case r := <-done:
			s.kill()
			return r
		}
	}
}

// listed reports whether both APIs list w with its sha256.
func listed(v *view, w *wheel) bool {
	sf, ok := v.simple[w.project][w.filename]
	return ok && sf.Hashes["sha256"] == w.sha256 && v.json[w.project][w.filename] == w.sha256
}

func firstOf(list []string) string {
	if len(list) == 0 {
		return ""
	}
	if len(list) == 1 {
		return list[0]
	}
	return fmt.Sprintf("%s; and %d more", list[0], len(list)-1)
}

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}

func errNote(err error) string {
	if err == nil {
		return ""
	}
	return oneLine(err.Error())
}
