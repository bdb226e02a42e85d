package main

import (
	"bufio"
	"io"
	"os"
)

// readSecretLine reads the first line of r. When r is a terminal it calls
// prompt first and turns echo off while the line is typed, so that a
// password typed for --password-stdin does not stay on the screen (see
// noEcho). fromTerminal reports which case it was.
func readSecretLine(r io.Reader, prompt func()) (line string, fromTerminal bool, err error) {
	if f, ok := r.(*os.File); ok {
		if restore, ok := noEcho(f); ok {
			defer restore()
			prompt()
			line, err = bufio.NewReader(f).ReadString('\n')
			return line, true, err
		}
	}
	line, err = bufio.NewReader(r).ReadString('\n')
	return line, false, err
}
