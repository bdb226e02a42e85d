// Command gatehouse is a self-hostable Python package index: pip and uv
// install from it, twine uploads to it. See `gatehouse --help`.
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Getenv, os.Stdin, os.Stdout, os.Stderr); err != nil {
		// run's errors are already written for the reader (see explain):
		// what went wrong, then what to do.
		fmt.Fprintln(os.Stderr, "gatehouse: "+err.Error())
		os.Exit(exitCode(err))
	}
}
