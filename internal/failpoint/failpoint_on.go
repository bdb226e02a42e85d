//go:build faultpoints

package failpoint

import (
	"fmt"
	"net/http"
	"os"
	"runtime"
	"strings"
	"syscall"
)

// Enabled reports whether this binary was built with failpoints.
const Enabled = true

// armed is the set of points named by GATEHOUSE_FAILPOINT (comma
// separated), read once at start.
var armed = func() map[string]bool {
	m := map[string]bool{}
	for p := range strings.SplitSeq(os.Getenv("GATEHOUSE_FAILPOINT"), ",") {
		if p = strings.TrimSpace(p); p != "" {
			m[p] = true
		}
	}
	return m
}()

// Hit kills the process with SIGKILL, as a power cut or the OOM killer
// would, if the point name is armed: no deferred function runs, no buffer is
// flushed, no file is closed. It says so on stderr first, so the harness
// knows the point was reached.
func Hit(name string) {
	if !armed[name] {
		return
	}
	fmt.Fprintf(os.Stderr, "failpoint %s: killing the process\n", name)
	syscall.Kill(os.Getpid(), syscall.SIGKILL)
	select {} // SIGKILL is not deliverable late; never return
}

// With GATEHOUSE_FAULTS_DEBUG=host:port the binary also answers
// GET /goroutines there with runtime.NumGoroutine(), so the harness can
// watch for goroutines piling up without a profiling endpoint in the real
// server.
func init() {
	addr := os.Getenv("GATEHOUSE_FAULTS_DEBUG")
	if addr == "" {
		return
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /goroutines", func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintln(w, runtime.NumGoroutine())
	})
	go http.ListenAndServe(addr, mux)
}
