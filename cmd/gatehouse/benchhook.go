package main

import (
	"log/slog"

	"github.com/gatehouse-index/gatehouse/internal/web"
)

// benchHook, when set, is called once the web server is built. Only builds
// with the benchdebug tag set it (benchdebug.go), for cmd/benchsuite; a
// normal build has no debug listener at all.
var benchHook func(srv *web.Server, log *slog.Logger)
