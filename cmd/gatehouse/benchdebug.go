//go:build benchdebug

package main

import (
	"encoding/json"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
	"os"
	"runtime"

	"github.com/gatehouse-index/gatehouse/internal/web"
)

// A benchdebug build (go build -tags benchdebug, as cmd/benchsuite does)
// serves profiling and counters on a second loopback listener named by
// BENCHSUITE_DEBUG_ADDR, so the benchmark can profile the server under load
// and count root-index renders and allocations per request. The variable
// is deliberately not a GATEHOUSE_ setting: it exists only in these builds.
func init() {
	benchHook = func(srv *web.Server, log *slog.Logger) {
		addr := os.Getenv("BENCHSUITE_DEBUG_ADDR")
		if addr == "" {
			return
		}
		ln, err := net.Listen("tcp", addr)
		if err != nil {
			log.Error("benchdebug: cannot listen", "addr", addr, "err", err)
			return
		}
		mux := http.NewServeMux()
		mux.HandleFunc("/debug/pprof/", pprof.Index)
		mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
		mux.HandleFunc("/debug/pagecache", func(w http.ResponseWriter, r *http.Request) {
			json.NewEncoder(w).Encode(srv.PageCacheStats())
		})
		mux.HandleFunc("/debug/memstats", func(w http.ResponseWriter, r *http.Request) {
			var m runtime.MemStats
			runtime.ReadMemStats(&m)
			json.NewEncoder(w).Encode(map[string]uint64{"mallocs": m.Mallocs, "total_alloc": m.TotalAlloc,
				"num_gc": uint64(m.NumGC), "heap_inuse": m.HeapInuse, "sys": m.Sys})
		})
		log.Info("benchdebug: profiling and counters", "addr", ln.Addr().String())
		go http.Serve(ln, mux)
	}
}
