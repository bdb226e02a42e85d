//go:build !linux

package main

import "os"

// noEcho is only implemented on Linux; elsewhere a password typed on a
// terminal is read as it is, and shows as it is typed.
func noEcho(*os.File) (restore func(), ok bool) { return nil, false }
