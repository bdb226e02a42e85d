package main

import (
	"bufio"
	"fmt"
	"os"
	"strings"
	"syscall"
	"testing"

	"golang.org/x/sys/unix"
)

// openPTY returns both ends of a new pseudo-terminal.
func openPTY(t *testing.T) (master, slave *os.File) {
	t.Helper()
	master, err := os.OpenFile("/dev/ptmx", os.O_RDWR, 0)
	if err != nil {
		t.Skipf("no pseudo-terminals here: %v", err)
	}
	t.Cleanup(func() { master.Close() })
	if err := unix.IoctlSetPointerInt(int(master.Fd()), unix.TIOCSPTLCK, 0); err != nil {
		t.Fatal(err)
	}
	n, err := unix.IoctlGetInt(int(master.Fd()), unix.TIOCGPTN)
	if err != nil {
		t.Fatal(err)
	}
	slave, err = os.OpenFile(fmt.Sprintf("/dev/pts/%d", n), os.O_RDWR|syscall.O_NOCTTY, 0)
	if err != nil {
		t.Skipf("cannot open the pseudo-terminal's other end: %v", err)
	}
	t.Cleanup(func() { slave.Close() })
	return master, slave
}

// TestCLIPasswordNotEchoed: a password typed on a terminal for
// --password-stdin is read without being shown, and echo comes back after.
func TestCLIPasswordNotEchoed(t *testing.T) {
	master, slave := openPTY(t)
	const pw = "violet-harbour-lantern-42"
	prompted := make(chan struct{})
	type result struct {
		line     string
		terminal bool
		err      error
	}
	done := make(chan result, 1)
	go func() {
		line, terminal, err := readSecretLine(slave, func() { close(prompted) })
		done <- result{line, terminal, err}
	}()
	<-prompted
	if _, err := master.Write([]byte(pw + "\n")); err != nil {
		t.Fatal(err)
	}
	r := <-done
	if r.err != nil || !r.terminal || strings.TrimRight(r.line, "\r\n") != pw {
		t.Fatalf("readSecretLine = %q, terminal %v, %v", r.line, r.terminal, r.err)
	}
	// Whatever the terminal showed comes before this marker.
	if _, err := slave.Write([]byte("END\n")); err != nil {
		t.Fatal(err)
	}
	shown, err := bufio.NewReader(master).ReadString('D')
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(shown, pw) {
		t.Errorf("the password was echoed: %q", shown)
	}
	old, err := unix.IoctlGetTermios(int(slave.Fd()), unix.TCGETS)
	if err != nil {
		t.Fatal(err)
	}
	if old.Lflag&unix.ECHO == 0 {
		t.Error("echo is still off after the password was read")
	}
}
