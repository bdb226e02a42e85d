package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// `gatehouse sweep` removes what an interrupted upload leaves (a file no
// row lists, a temp file), and nothing else, while the server runs.
func TestE2ESweepRemovesUnlistedFiles(t *testing.T) {
	for _, dialect := range e2eDialects {
		t.Run(dialect, func(t *testing.T) {
			s := e2eStartServer(t, dialect)
			s.createUser(t, "alice")
			tok := s.createToken(t, "alice", "sweep")
			data := e2eWheel(t, "kept", "1.0", e2eMetadata("kept", "1.0"))
			s.mustUpload(t, tok, e2eWheelForm("kept", "1.0", e2eWheelName("kept", "1.0"), data))
			listed := s.snapshot(t).Blobs

			// What a kill -9 leaves: an upload's staged file (at the top
			// of the files directory), and blobs published by a
			// transaction that never committed.
			digest := strings.Repeat("5e", 32)
			orphan := filepath.Join(s.dataDir, "files", digest[:2], digest[2:4], digest)
			temp := filepath.Join(s.dataDir, "files", ".tmp-interrupted")
			old := time.Now().Add(-2 * time.Hour)
			for _, p := range []string{orphan, orphan + ".metadata", temp} {
				if err := os.MkdirAll(filepath.Dir(p), 0o750); err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(p, []byte("left by a crash"), 0o640); err != nil {
					t.Fatal(err)
				}
				os.Chtimes(p, old, old)
			}

			out := s.admin(t, "sweep")
			if want := "Removed 1 temporary file(s) and 2 package file(s) that no release lists"; !strings.Contains(out, want) {
				t.Errorf("gatehouse sweep: got %q, want %q", out, want)
			}
			after := s.snapshot(t).Blobs
			var files []string
			for _, b := range after {
				if !strings.HasSuffix(b, "/") {
					files = append(files, b)
				}
			}
			var want []string
			for _, b := range listed {
				if !strings.HasSuffix(b, "/") {
					want = append(want, b)
				}
			}
			if strings.Join(files, "\n") != strings.Join(want, "\n") {
				t.Errorf("files after the sweep:\n%s\nwant the listed ones only:\n%s", strings.Join(files, "\n"), strings.Join(want, "\n"))
			}
		})
	}
}
