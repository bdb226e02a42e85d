package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"time"
)

// The bare Go server is the second reference for the small-page path
// (issue 15, item 5): a plain net/http handler that answers every
// benchmarked URL with exactly the status, headers and body Gatehouse sent,
// from a map, with nothing else. Gatehouse against it is the cost of our
// own code; it against nginx is the cost of net/http on one core.
//
// It is this program started again with bareCommand as its first argument,
// pinned and with GOMAXPROCS like Gatehouse, so both run the same Go
// runtime and the same http.Server settings.
//
// With -raw it is instead a hand-written HTTP/1.1 keep-alive loop on
// net.Conn that sends each small page (status line, headers, body) with one
// write(2), as nginx does, where net/http's 4 KiB connection buffer makes two
// for a page over about 3.5 KB. It is not a server anyone should run: it is
// the upper bound of "a different HTTP path for the tool routes" in Go
// (issue 15, item 5), measured so the proposal has numbers.
const bareCommand = "bare-serve"

// bareEntry is one URL of the bare server: what Gatehouse answered for it.
type bareEntry struct {
	Path      string      `json:"path"`
	File      string      `json:"file"`       // the body, in the nginx docroot
	Stream    bool        `json:"stream"`     // send from the file each time (downloads), as nginx does
	ETag      string      `json:"etag"`       // Gatehouse's; If-None-Match with it gets a 304
	Header200 http.Header `json:"header_200"` // without Date and Content-Length
	Header304 http.Header `json:"header_304"`

	body   []byte
	length []string
	// -raw: the response up to the Date header
	raw200, raw304 []byte
}

// bareMemstatsPath answers the process's heap allocation count, so that the
// report can show allocations per request beside Gatehouse's.
const bareMemstatsPath = "/__bench/memstats"

func serveBare(args []string) error {
	fs := flag.NewFlagSet(bareCommand, flag.ContinueOnError)
	manifest := fs.String("manifest", "", "JSON list of entries")
	listen := fs.String("listen", "127.0.0.1:0", "address")
	raw := fs.Bool("raw", false, "hand-written HTTP/1.1, one write per response (pages only)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	b, err := os.ReadFile(*manifest)
	if err != nil {
		return err
	}
	var entries []*bareEntry
	if err := json.Unmarshal(b, &entries); err != nil {
		return err
	}
	byPath := map[string]*bareEntry{}
	for _, e := range entries {
		fi, err := os.Stat(e.File)
		if err != nil {
			return err
		}
		if !e.Stream {
			if e.body, err = os.ReadFile(e.File); err != nil {
				return err
			}
		}
		e.length = []string{strconv.FormatInt(fi.Size(), 10)}
		byPath[e.Path] = e
	}
	ln, err := net.Listen("tcp", *listen)
	if err != nil {
		return err
	}
	if *raw {
		return serveRaw(ln, byPath)
	}
	// The same server settings as `gatehouse serve` with its defaults.
	srv := &http.Server{
		Handler:           bareHandler(byPath),
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       30 * time.Second,
		IdleTimeout:       2 * time.Minute,
		MaxHeaderBytes:    64 << 10,
	}
	err = srv.Serve(ln)
	if errors.Is(err, http.ErrServerClosed) {
		return nil
	}
	return err
}

func bareHandler(byPath map[string]*bareEntry) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		e, ok := byPath[r.URL.Path]
		if !ok {
			if r.URL.Path == bareMemstatsPath {
				var m runtime.MemStats
				runtime.ReadMemStats(&m)
				fmt.Fprintf(w, `{"mallocs":%d}`, m.Mallocs)
				return
			}
			http.NotFound(w, r)
			return
		}
		h := w.Header()
		if inm := r.Header.Get("If-None-Match"); inm != "" && inm == e.ETag {
			for k, v := range e.Header304 {
				h[k] = v
			}
			w.WriteHeader(http.StatusNotModified)
			return
		}
		for k, v := range e.Header200 {
			h[k] = v
		}
		h["Content-Length"] = e.length
		if !e.Stream {
			w.Write(e.body)
			return
		}
		f, err := os.Open(e.File)
		if err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		defer f.Close()
		io.Copy(w, f) // sendfile, through the ResponseWriter's ReadFrom
	})
}

// startBare writes the manifest from the targets (after startNginx has
// put their bodies in the docroot) and starts the bare server, and the raw
// one, on CPU0.
func (h *harness) startBare(ctx context.Context, ts []*target) error {
	root := filepath.Join(h.tmp, "nginx", "html")
	seen := map[string]bool{}
	var entries []*bareEntry
	for _, t := range ts {
		if seen[t.path] {
			continue
		}
		seen[t.path] = true
		entries = append(entries, &bareEntry{Path: t.path, File: filepath.Join(root, filepath.FromSlash(strings.TrimPrefix(t.path, "/"))),
			Stream: t.file, ETag: t.oursETag, Header200: replayable(t.hdr200), Header304: replayable(t.hdr304)})
	}
	b, err := json.Marshal(entries)
	if err != nil {
		return err
	}
	manifest := filepath.Join(h.tmp, "bare.json")
	if err := os.WriteFile(manifest, b, 0o644); err != nil {
		return err
	}
	for _, raw := range []bool{false, true} {
		port, err := freePort()
		if err != nil {
			return err
		}
		args := []string{bareCommand, "-manifest", manifest, "-listen", fmt.Sprintf("127.0.0.1:%d", port)}
		name := "bare-go"
		if raw {
			args, name = append(args, "-raw"), "raw-go"
		}
		cmd := h.pinned(context.Background(), cpuServer, h.self, args...)
		cmd.Env = childEnv(fmt.Sprintf("GOMAXPROCS=%d", h.cfg.gomaxprocs))
		s := &server{name: name, base: fmt.Sprintf("http://127.0.0.1:%d", port), cmd: cmd, log: filepath.Join(h.tmp, name+".log")}
		if err := h.procs.start(s); err != nil {
			return err
		}
		if raw {
			h.rawSrv = s
		} else {
			h.bare = s
		}
		for _, t := range ts {
			e := &t.bare
			if raw {
				if !t.withRaw() {
					continue
				}
				e = &t.rawEP
				*e = endpoint{headers: []string{t.bare.headers[0]}} // Accept; If-None-Match is added below
			}
			e.url = s.base + t.path
			if err := h.waitHTTP(ctx, s, e.url); err != nil {
				return err
			}
			status, body, _, err := h.fetch(ctx, http.MethodGet, e.url, e.headers...)
			if err != nil {
				return err
			}
			if status != http.StatusOK || string(body) != string(t.body) {
				return fmt.Errorf("%s server %s: status %d, %d bytes; want 200 and the %d bytes Gatehouse sent", name, e.url, status, len(body), len(t.body))
			}
			if t.conditional {
				e.headers = append(e.headers, "If-None-Match: "+t.oursETag)
				if status, _, _, err := h.fetch(ctx, http.MethodGet, e.url, e.headers...); err != nil || status != http.StatusNotModified {
					return fmt.Errorf("%s server %s with %v: status %d, want 304 (%v)", name, e.url, e.headers, status, err)
				}
			}
		}
	}
	return nil
}

// replayable is a response's header without what net/http sets itself.
func replayable(h http.Header) http.Header {
	out := h.Clone()
	out.Del("Date")
	out.Del("Content-Length")
	return out
}

// bareAllocs reads the bare server's allocation count.
func (h *harness) bareAllocs(ctx context.Context) (uint64, bool) {
	m, err := h.memStats(ctx, h.bare.base+bareMemstatsPath)
	return m["mallocs"], err == nil
}

// serveRaw answers GETs of the manifest's pages with prebuilt bytes: one
// write per response, the Date header spliced in, keep-alive until the
// client closes. It reads only the request line, If-None-Match and
// Connection; anything else it does not know gets a 404.
func serveRaw(ln net.Listener, byPath map[string]*bareEntry) error {
	for _, e := range byPath {
		if e.Stream {
			continue
		}
		e.raw200 = rawHead("200 OK", e.Header200, e.length[0])
		e.raw304 = rawHead("304 Not Modified", e.Header304, "")
	}
	var date atomic.Pointer[string]
	setDate := func() {
		d := time.Now().UTC().Format(http.TimeFormat)
		date.Store(&d)
	}
	setDate()
	go func() {
		for range time.Tick(time.Second) {
			setDate()
		}
	}()
	for {
		c, err := ln.Accept()
		if err != nil {
			return err
		}
		go rawConn(c, byPath, &date)
	}
}

// rawHead is a status line and headers, in net/http's order (sorted),
// without Date and the blank line.
func rawHead(status string, h http.Header, length string) []byte {
	b := []byte("HTTP/1.1 " + status + "\r\n")
	keys := make([]string, 0, len(h))
	for k := range h {
		keys = append(keys, k)
	}
	if length != "" {
		keys = append(keys, "Content-Length")
	}
	slices.Sort(keys)
	for _, k := range keys {
		if k == "Content-Length" && length != "" {
			b = append(b, "Content-Length: "+length+"\r\n"...)
			continue
		}
		for _, v := range h[k] {
			b = append(b, k+": "+v+"\r\n"...)
		}
	}
	return b
}

func rawConn(c net.Conn, byPath map[string]*bareEntry, date *atomic.Pointer[string]) {
	defer c.Close()
	br := bufio.NewReaderSize(c, 4096)
	out := make([]byte, 0, 16<<10)
	var inm []byte
	for {
		line, err := br.ReadSlice('\n')
		if err != nil {
			return
		}
		_, rest, _ := bytes.Cut(line, []byte(" "))
		path, _, _ := bytes.Cut(rest, []byte(" "))
		e := byPath[string(path)]
		inm = inm[:0]
		closing := false
		for {
			hl, err := br.ReadSlice('\n')
			if err != nil {
				return
			}
			hl = bytes.TrimRight(hl, "\r\n")
			if len(hl) == 0 {
				break
			}
			k, v, _ := bytes.Cut(hl, []byte(":"))
			switch {
			case bytes.EqualFold(k, []byte("If-None-Match")):
				inm = append(inm, bytes.TrimSpace(v)...)
			case bytes.EqualFold(k, []byte("Connection")) && bytes.EqualFold(bytes.TrimSpace(v), []byte("close")):
				closing = true
			}
		}
		out = out[:0]
		switch {
		case e == nil || e.raw200 == nil:
			out = append(out, "HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n"...)
		case len(inm) > 0 && string(inm) == e.ETag:
			out = append(out, e.raw304...)
			out = append(out, "Date: "+*date.Load()+"\r\n\r\n"...)
		default:
			out = append(out, e.raw200...)
			out = append(out, "Date: "+*date.Load()+"\r\n\r\n"...)
			out = append(out, e.body...)
		}
		if _, err := c.Write(out); err != nil || closing {
			return
		}
	}
}
