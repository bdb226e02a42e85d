//go:build !linux

package main

import (
	"errors"
	"syscall"
)

// The suite measures on Linux (taskset, /proc, sendfile); elsewhere it
// compiles so that `go build ./...` works, but does not pin.
func sysProcAttr() *syscall.SysProcAttr { return &syscall.SysProcAttr{Setpgid: true} }

func pinSelf(cpu int) error { return errors.New("CPU pinning needs Linux") }
