package main

import (
	"context"
	"flag"
	"fmt"
	"runtime"
	"runtime/debug"
	"strings"
)

// buildTime is when the binary was built, set by `make build` with
// -ldflags "-X main.buildTime=…": the Go toolchain records the commit's
// time but not the build's.
var buildTime string

const versionUsage = `Usage: gatehouse version

Prints the module version and the source revision this binary was built
from (from the build information the Go toolchain records), the commit time,
whether the working tree had uncommitted changes, and the Go version.
'gatehouse --version' does the same.`

func versionCmd(_ context.Context, e env, args []string) error {
	fs := flag.NewFlagSet("gatehouse version", flag.ContinueOnError)
	if err := parseFlags(fs, e, "version", args, versionUsage, false); err != nil {
		return helpOK(err)
	}
	bi, ok := debug.ReadBuildInfo()
	fmt.Fprint(e.stdout, versionText(bi, ok, buildTime))
	return nil
}

// versionText renders what the build information says: the module
// version, then the VCS settings `go build` stamps (vcs.revision, vcs.time,
// vcs.modified), then the toolchain.
func versionText(bi *debug.BuildInfo, ok bool, built string) string {
	var b strings.Builder
	version := "(unknown)"
	goVersion := runtime.Version()
	vcs := map[string]string{}
	if ok && bi != nil {
		if bi.Main.Version != "" {
			version = bi.Main.Version
		}
		if bi.GoVersion != "" {
			goVersion = bi.GoVersion
		}
		for _, s := range bi.Settings {
			vcs[s.Key] = s.Value
		}
	}
	fmt.Fprintf(&b, "gatehouse %s\n", version)
	if rev := vcs["vcs.revision"]; rev != "" {
		if vcs["vcs.modified"] == "true" {
			rev += " (modified: built with uncommitted changes)"
		}
		fmt.Fprintf(&b, "revision  %s\n", rev)
		if t := vcs["vcs.time"]; t != "" {
			fmt.Fprintf(&b, "committed %s\n", t)
		}
	} else {
		// Go stamps the revision only when it builds inside a git
		// checkout (not a worktree, not a tarball) without -buildvcs=false.
		fmt.Fprintf(&b, "revision  unknown (no version control information was recorded: build with 'make build' in a git clone)\n")
	}
	if built != "" {
		fmt.Fprintf(&b, "built     %s\n", built)
	}
	fmt.Fprintf(&b, "go        %s %s/%s\n", goVersion, runtime.GOOS, runtime.GOARCH)
	return b.String()
}
