package main

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
)

// nginxConf is the reference server: one worker, sendfile, an open-file
// cache and ETags, no access log, everything in our temp dir. It is the
// practical upper bound for serving pre-rendered bytes.
//
// keepalive_requests is raised because nginx otherwise closes a connection
// after 1,000 requests and wrk has to reconnect, which Gatehouse (no limit)
// would not be charged for. "charset utf-8" makes text/html answers carry
// "; charset=utf-8" as ours do.
const nginxConf = `%s
worker_processes 1;
pid %[2]s/nginx.pid;
error_log %[2]s/error.log warn;
events { worker_connections 1024; }
http {
    types {
        text/html html;
        application/vnd.pypi.simple.v1+json json;
        application/zip whl;
    }
    default_type application/octet-stream;
    charset utf-8;
    sendfile on;
    tcp_nopush on;
    tcp_nodelay on;
    keepalive_timeout 120s;
    keepalive_requests 1000000;
    open_file_cache max=1000 inactive=60s;
    open_file_cache_valid 60s;
    etag on;
    access_log off;
    client_body_temp_path %[2]s/tmp/body;
    proxy_temp_path %[2]s/tmp/proxy;
    fastcgi_temp_path %[2]s/tmp/fastcgi;
    uwsgi_temp_path %[2]s/tmp/uwsgi;
    scgi_temp_path %[2]s/tmp/scgi;
    server {
        listen 127.0.0.1:%[3]d;
        root %[2]s/html;
    }
}
`

// startNginx writes every target's body into a docroot, starts nginx on a
// free loopback port pinned like our server, and checks that it sends the
// same bytes. For conditional targets it then looks up each server's own
// ETag (nginx's is mtime-size, ours a content hash) and checks both answer
// 304.
func (h *harness) startNginx(ctx context.Context, ts []*target) error {
	prefix := filepath.Join(h.tmp, "nginx")
	root := filepath.Join(prefix, "html")
	if err := os.MkdirAll(filepath.Join(prefix, "tmp"), 0o755); err != nil {
		return err
	}
	for _, t := range ts {
		if err := writeFile(root, t.path, t.body); err != nil {
			return err
		}
	}
	port, err := freePort()
	if err != nil {
		return err
	}
	// Run as root, the master would hand the worker to "nobody", who cannot
	// read our private temp dir; keep the worker as the current user.
	user := ""
	if os.Geteuid() == 0 {
		user = "user root;"
	}
	conf := filepath.Join(prefix, "nginx.conf")
	if err := os.WriteFile(conf, fmt.Appendf(nil, nginxConf, user, prefix, port), 0o644); err != nil {
		return err
	}
	// -e: the compiled-in error log (/var/log/nginx) is opened before the
	// configuration is read; keep even that in the temp dir.
	cmd := h.pinned(context.Background(), cpuServer, "nginx", "-p", prefix+"/", "-e", filepath.Join(prefix, "error.log"), "-c", conf, "-g", "daemon off;")
	h.nginx = &server{name: "nginx", base: fmt.Sprintf("http://127.0.0.1:%d", port), cmd: cmd, log: filepath.Join(h.tmp, "nginx.log")}
	if err := h.procs.start(h.nginx); err != nil {
		return err
	}
	if err := h.waitHTTP(ctx, h.nginx, h.nginx.base+ts[0].path); err != nil {
		return err
	}
	for _, t := range ts {
		t.nginx.url = h.nginx.base + t.path
		status, body, hdr, err := h.fetch(ctx, http.MethodGet, t.nginx.url, t.nginx.headers...)
		if err != nil {
			return err
		}
		if status != http.StatusOK || !bytes.Equal(body, t.body) {
			return fmt.Errorf("nginx %s: status %d, %d bytes; want 200 and the %d bytes Gatehouse sent", t.nginx.url, status, len(body), len(t.body))
		}
		if !t.conditional {
			continue
		}
		t.ours.headers = append(t.ours.headers, "If-None-Match: "+t.oursETag)
		t.nginx.headers = append(t.nginx.headers, "If-None-Match: "+hdr.Get("ETag"))
		for _, e := range []endpoint{t.ours, t.nginx} {
			status, _, _, err := h.fetch(ctx, http.MethodGet, e.url, e.headers...)
			if err != nil {
				return err
			}
			if status != http.StatusNotModified {
				return fmt.Errorf("%s with %v: status %d, want 304", e.url, e.headers, status)
			}
		}
	}
	return nil
}
