package main

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"

	"github.com/gatehouse-index/gatehouse/internal/db"
)

const diskCase = "disk full"

func runDiskFull(ctx context.Context, h *harness) error {
	if os.Geteuid() != 0 {
		h.rep.skip(diskCase, "sqlite", "not root: cannot mount a small tmpfs for the data directory; run the harness as root for this case")
		return nil
	}
	if err := h.dataDirFull(ctx); err != nil {
		h.rep.fail(diskCase, "sqlite", err)
	}
	if err := h.databaseVolumeFull(ctx); err != nil {
		h.rep.fail(diskCase, "sqlite", err)
	}
	return nil
}

// tmpfs mounts a tmpfs of size at dir; the returned function resizes it
// ("512m") and unmount removes it.
func tmpfs(dir, size string) (resize func(string) error, unmount func(), err error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, nil, err
	}
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size="+size, "tmpfs", dir).CombinedOutput(); err != nil {
		return nil, nil, fmt.Errorf("mount tmpfs on %s: %v: %s", dir, err, out)
	}
	resize = func(size string) error {
		if out, err := exec.Command("mount", "-o", "remount,size="+size, dir).CombinedOutput(); err != nil {
			return fmt.Errorf("resize tmpfs: %v: %s", err, out)
		}
		return nil
	}
	unmount = func() { exec.Command("umount", "-l", dir).Run() }
	return resize, unmount, nil
}

// counts are the rows an upload would add to.
func (s *server) counts(ctx context.Context) (string, error) {
	d, err := db.Open(ctx, s.dbURL)
	if err != nil {
		return "", err
	}
	defer d.Close()
	var parts []string
	for _, t := range []string{"projects", "releases", "files", "filename_log", "journal"} {
		var n int
		if err := d.QueryRowContext(ctx, `SELECT count(*) FROM `+t).Scan(&n); err != nil {
			return "", err
		}
		parts = append(parts, fmt.Sprintf("%s %d", t, n))
	}
	return strings.Join(parts, ", "), nil
}

// readsWork checks that the seeded wheel is still listed and served whole.
func readsWork(ctx context.Context, s *server, w *wheel) (bool, string) {
	c := newClient(2)
	v, err := fetchView(ctx, c, s.base, []string{w.project})
	if err != nil {
		return false, err.Error()
	}
	vis, why := visibilityOf(ctx, c, s.base, v, w)
	return vis == complete, why
}

// dataDirFull puts the whole data directory (database, files, staged
// uploads) on a 64 MiB tmpfs and uploads 100 MiB; then 40 MiB, which fits
// because the staged file becomes the blob (no second copy); then frees
// space and uploads the 100 MiB again.
func (h *harness) dataDirFull(ctx context.Context) error {
	mnt := filepath.Join(h.work, "tmpfs-data")
	resize, unmount, err := tmpfs(mnt, "64m")
	if err != nil {
		return err
	}
	defer unmount()
	s, err := h.newServer(ctx, "diskfull", "sqlite", "--max-file-size", "200MiB")
	if err != nil {
		return err
	}
	s.dataDir = filepath.Join(mnt, "data")
	s.dbURL = "sqlite:" + filepath.Join(s.dataDir, "gatehouse.db")
	tokens, err := s.setup(ctx)
	if err != nil {
		return err
	}
	if err := s.start(ctx); err != nil {
		return err
	}
	defer s.stop()
	c := newClient(2)
	seed := buildWheel("full-disk", "1.0", 64<<10, h.rng)
	if r := uploadWheel(ctx, c, s.base, tokens["alice"], seed); r.code != http.StatusOK {
		return fmt.Errorf("seed upload: %s", r)
	}
	before, err := s.counts(ctx)
	if err != nil {
		return err
	}
	rep := h.rep
	const where = "data dir on a 64 MiB tmpfs"
	for _, size := range []int{100} {
		big := buildWheel("full-disk", fmt.Sprintf("2.%d", size), size<<20, h.rng)
		r := uploadWheel(ctx, c, s.base, tokens["alice"], big)
		clear := r.code == http.StatusInsufficientStorage && strings.Contains(r.status, "disk space")
		what := fmt.Sprintf("%s: %d MiB upload answered 507 'out of disk space'", where, size)
		rep.count(diskCase, "sqlite", what, boolInt(clear), 1, r.String())
		st, err := s.inspect(ctx, nil)
		if err != nil {
			return err
		}
		after, err := s.counts(ctx)
		if err != nil {
			return err
		}
		rep.count(diskCase, "sqlite", fmt.Sprintf("%s: partial blobs and temp files left by the %d MiB upload", where, size), len(st.orphans)+len(st.temps), 0, firstOf(append(st.orphans, st.temps...)))
		rep.count(diskCase, "sqlite", fmt.Sprintf("%s: database changed by the %d MiB upload", where, size), boolInt(after != before), 0, after)
		ok, why := readsWork(ctx, s, seed)
		rep.count(diskCase, "sqlite", fmt.Sprintf("%s: reads failing after the %d MiB upload", where, size), boolInt(!ok), 0, why)
	}
	fits := buildWheel("full-disk", "2.40", 40<<20, h.rng)
	r40 := uploadWheel(ctx, c, s.base, tokens["alice"], fits)
	rep.count(diskCase, "sqlite", where+": a 40 MiB upload (fits once, not twice) refused", boolInt(r40.code != http.StatusOK), 0, r40.String())
	if err := resize("512m"); err != nil {
		return err
	}
	big := buildWheel("full-disk", "2.100", 100<<20, h.rng)
	r := h.uploadRealClient(ctx, s, tokens["alice"], big)
	rep.count(diskCase, "sqlite", where+": the 100 MiB upload, once space is freed (tmpfs grown to 512 MiB), refused", boolInt(r != nil), 0, errNote(r))
	ok, why := readsWork(ctx, s, big)
	rep.count(diskCase, "sqlite", where+": the 100 MiB file then not served whole", boolInt(!ok), 0, why)
	return nil
}

// uploadRealClient uploads w with Debian's twine when it is installed (the
// real client), else with the harness's own.
func (h *harness) uploadRealClient(ctx context.Context, s *server, tok string, w *wheel) error {
	twine, err := exec.LookPath("twine")
	if err != nil {
		if r := uploadWheel(ctx, newClient(1), s.base, tok, w); r.code != http.StatusOK {
			return errors.New(r.String())
		}
		return nil
	}
	dir := filepath.Join(h.work, "twine")
	os.MkdirAll(dir, 0o755)
	path := filepath.Join(dir, w.filename)
	if err := os.WriteFile(path, w.data, 0o644); err != nil {
		return err
	}
	defer os.Remove(path)
	cmd := exec.CommandContext(ctx, twine, "upload", "--disable-progress-bar", "--non-interactive", "--repository-url", s.base+"/legacy/", "-u", "__token__", "-p", tok, path)
	cmd.Env = append(childEnv(), "HOME="+dir)
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("twine: %v: %s", err, lastLines(string(out), 5))
	}
	return nil
}

// databaseVolumeFull keeps the files and temp files on the ordinary disk
// and only the SQLite database on a small tmpfs, which is then filled.
func (h *harness) databaseVolumeFull(ctx context.Context) error {
	mnt := filepath.Join(h.work, "tmpfs-db")
	_, unmount, err := tmpfs(mnt, "16m")
	if err != nil {
		return err
	}
	defer unmount()
	s, err := h.newServer(ctx, "dbfull", "sqlite")
	if err != nil {
		return err
	}
	s.dbURL = "sqlite:" + filepath.Join(mnt, "gatehouse.db")
	tokens, err := s.setup(ctx)
	if err != nil {
		return err
	}
	if err := s.start(ctx); err != nil {
		return err
	}
	defer s.stop()
	c := newClient(2)
	seed := buildWheel("full-db", "1.0", 16<<10, h.rng)
	if r := uploadWheel(ctx, c, s.base, tokens["alice"], seed); r.code != http.StatusOK {
		return fmt.Errorf("seed upload: %s", r)
	}
	// Fill the volume. The upload carries a long description, so that its
	// transaction needs new pages and cannot fit in what SQLite's WAL
	// already holds.
	filler := filepath.Join(mnt, "filler")
	if err := fill(filler); err != nil {
		return err
	}
	before, err := s.counts(ctx)
	if err != nil {
		return err
	}
	w := buildWheel("full-db", "2.0", 16<<10, h.rng)
	w.extra = [][2]string{{"description", strings.Repeat("A long description that needs database pages. ", 60000)}, {"description_content_type", "text/plain"}}
	r := uploadWheel(ctx, c, s.base, tokens["alice"], w)
	const where = "database volume full"
	rep := h.rep
	clear := r.code == http.StatusInsufficientStorage && strings.Contains(r.status, "disk space")
	rep.count(diskCase, "sqlite", where+": upload answered 507 'out of disk space'", boolInt(clear), 1, r.String())
	st, err := s.inspect(ctx, nil)
	if err != nil {
		return err
	}
	after, err := s.counts(ctx)
	if err != nil {
		return err
	}
	rep.count(diskCase, "sqlite", where+": blobs and temp files left", len(st.orphans)+len(st.temps), 0, firstOf(append(st.orphans, st.temps...)))
	rep.count(diskCase, "sqlite", where+": database changed", boolInt(after != before), 0, after)
	rep.count(diskCase, "sqlite", where+": PRAGMA integrity_check not ok", boolInt(st.integrity != "ok"), 0, st.integrity)
	ok, why := readsWork(ctx, s, seed)
	rep.count(diskCase, "sqlite", where+": reads failing", boolInt(!ok), 0, why)
	os.Remove(filler)
	r = uploadWheel(ctx, c, s.base, tokens["alice"], w)
	rep.count(diskCase, "sqlite", where+": the same upload, once space is freed, refused", boolInt(r.code != http.StatusOK), 0, r.String())
	return nil
}

// fill writes path until the file system is full.
func fill(path string) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	defer f.Close()
	buf := make([]byte, 64<<10)
	for {
		if _, err := f.Write(buf); err != nil {
			if errors.Is(err, syscall.ENOSPC) {
				return nil
			}
			return err
		}
	}
}
