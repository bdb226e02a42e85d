package web

// A memory check of the root index at scale, run by hand (it seeds up to a
// million projects and takes a while):
//
//	GATEHOUSE_ROOT_MEMCHECK=1000000 scripts/test ./internal/web/ -run TestRootIndexMemory -v
//
// It reports the Go heap and the process's RSS with the projects loaded,
// after the root has been served in every form, and after an upload; it
// asserts only that the pages are complete, not any number: the numbers
// depend on the machine and belong in a report, not in a unit test.

import (
	"bytes"
	"compress/gzip"
	"io"
	"net/http"
	"os"
	"runtime"
	"runtime/debug"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/gatehouse-index/gatehouse/internal/db"
	"github.com/gatehouse-index/gatehouse/internal/db/dbtest"
)

func TestRootIndexMemory(t *testing.T) {
	n, _ := strconv.Atoi(os.Getenv("GATEHOUSE_ROOT_MEMCHECK"))
	if n <= 0 {
		t.Skip("set GATEHOUSE_ROOT_MEMCHECK to a number of projects to run the memory check")
	}
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		f := newFixture(t, d)
		f.mustUpload(t, wheel(t, meta{Name: "demo", Version: "1.0"}))
		start := time.Now()
		seedProjects(t, d, n, "Pkg")
		t.Logf("seeded %d projects in %v", n, time.Since(start).Round(time.Millisecond))

		idle := memNow(t)
		resetPeak()
		start = time.Now()
		gz := fetchRoot(t, f.instance, "", "gzip")
		t.Logf("first request (full render), gzip HTML: %d bytes in %v", gz.size, time.Since(start).Round(time.Millisecond))
		html := fetchRoot(t, f.instance, "", "")
		json := fetchRoot(t, f.instance, mediaJSON, "")
		gzJSON := fetchRoot(t, f.instance, mediaJSON, "gzip")
		for _, r := range []fetched{gz, html} {
			if r.entries != n+1 {
				t.Fatalf("HTML index lists %d projects, want %d", r.entries, n+1)
			}
		}
		for _, r := range []fetched{json, gzJSON} {
			if r.entries != n+1 {
				t.Fatalf("JSON index lists %d projects, want %d", r.entries, n+1)
			}
		}
		loaded := memNow(t)
		st := f.srv.PageCacheStats()
		t.Logf("sizes: HTML %d bytes (gzip %d), JSON %d bytes (gzip %d); %d chunks, %d bytes compressed",
			html.size, gz.size, json.size, gzJSON.size, st.RootChunks, st.RootBytes)

		f.mustUpload(t, wheel(t, meta{Name: "demo", Version: "2.0"}))
		before := f.srv.PageCacheStats()
		start = time.Now()
		if _, err := f.srv.simple.root.current(t.Context()); err != nil {
			t.Fatal(err)
		}
		t.Logf("after an upload: applying it took %v", time.Since(start).Round(time.Microsecond))
		fetchRoot(t, f.instance, "", "gzip")
		after := f.srv.PageCacheStats()
		upload := memNow(t)
		if after.RootBuilds != before.RootBuilds {
			t.Errorf("the upload caused a full render")
		}
		t.Logf("after the upload: %d chunks and %d entries rendered", after.RootChunkRenders-before.RootChunkRenders, after.RootEntriesRendered-before.RootEntriesRendered)
		t.Logf("%-34s heap in use %7.1f MiB   RSS %7.1f MiB", "idle, projects in the database:", mib(idle.heap), mib(idle.rss))
		t.Logf("%-34s heap in use %7.1f MiB   RSS %7.1f MiB  (+%.1f MiB)   peak RSS while rendering %7.1f MiB",
			"root served in all four forms:", mib(loaded.heap), mib(loaded.rss), mib(loaded.rss-idle.rss), mib(loaded.peak))
		t.Logf("%-34s heap in use %7.1f MiB   RSS %7.1f MiB  (+%.1f MiB)", "after one upload:", mib(upload.heap), mib(upload.rss), mib(upload.rss-idle.rss))
	})
}

type fetched struct {
	size    int64 // bytes on the wire
	entries int   // projects listed
}

// fetchRoot reads /simple/ as a stream, counting projects without keeping
// the page, so that the measurement sees the server's memory and not the
// client's.
func fetchRoot(t *testing.T, in *instance, accept, encoding string) fetched {
	t.Helper()
	req, _ := http.NewRequest("GET", in.url+"/simple/", nil)
	req.Header.Set("Accept", accept)
	req.Header.Set("Accept-Encoding", encoding)
	resp, err := in.client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("GET /simple/: %d", resp.StatusCode)
	}
	counted := &countingReader{r: resp.Body}
	var body io.Reader = counted
	if encoding == "gzip" {
		zr, err := gzip.NewReader(counted)
		if err != nil {
			t.Fatal(err)
		}
		body = zr
	}
	needle := []byte(`<a href="`)
	if accept == mediaJSON {
		needle = []byte(`"_last-serial":`)
	}
	// Count in a sliding buffer: the JSON page is one line of tens of MB.
	entries := 0
	buf := make([]byte, 64<<10)
	keep := 0
	for {
		m, err := body.Read(buf[keep:])
		window := buf[:keep+m]
		entries += bytes.Count(window, needle)
		keep = min(len(needle)-1, len(window))
		copy(buf, window[len(window)-keep:])
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	if accept == mediaJSON {
		entries-- // the meta object's serial
	}
	return fetched{size: counted.n, entries: entries}
}

type countingReader struct {
	r io.Reader
	n int64
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	return n, err
}

type memSample struct{ heap, rss, peak int64 }

// memNow collects garbage, returns freed memory to the OS, and samples.
func memNow(t *testing.T) memSample {
	t.Helper()
	runtime.GC()
	debug.FreeOSMemory()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return memSample{heap: int64(ms.HeapInuse), rss: procStatus(t, "VmRSS"), peak: procStatus(t, "VmHWM")}
}

// resetPeak resets VmHWM, so that the peak seen later is the rendering's,
// not the seeding's (Linux ≥ 4.0).
func resetPeak() { os.WriteFile("/proc/self/clear_refs", []byte("5"), 0) }

func procStatus(t *testing.T, field string) int64 {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		t.Skipf("no /proc: %v", err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, field+":"); ok {
			kb, _ := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
			return kb << 10
		}
	}
	return 0
}

func mib(b int64) float64 { return float64(b) / (1 << 20) }
