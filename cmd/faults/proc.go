package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// server is one gatehouse index under test: its data directory and
// database, and the process serving it while one runs. The index outlives
// the processes: the harness kills and restarts them over the same data.
type server struct {
	h       *harness
	name    string // for log file names
	dataDir string
	dbURL   string
	dialect string // "sqlite" or "postgres"
	port    int
	base    string   // http://localhost:port
	args    []string // extra serve flags
	logLvl  string

	// Set while a process runs.
	cmd      *exec.Cmd
	done     chan struct{} // closed when it has exited
	debug    string        // its goroutine endpoint, host:port
	starts   int
	logPaths []string

	mu      sync.Mutex
	logTail []string // recent log lines of the current process
	waiters []logWaiter
}

// logWaiter is someone waiting for a log line containing text.
type logWaiter struct {
	text string
	ch   chan struct{}
}

// start runs `gatehouse serve` with extra environment (failpoints) and
// returns once it logs that it is running, or fails if it exits first.
func (s *server) start(ctx context.Context, env ...string) error {
	if s.cmd != nil {
		return errors.New("server already running")
	}
	debugPort, err := freePort()
	if err != nil {
		return err
	}
	s.debug = fmt.Sprintf("127.0.0.1:%d", debugPort)
	s.starts++
	logPath := filepath.Join(s.h.out, "logs", fmt.Sprintf("%s-%03d.log", s.name, s.starts))
	s.logPaths = append(s.logPaths, logPath)
	lf, err := os.Create(logPath)
	if err != nil {
		return err
	}
	lvl := s.logLvl
	if lvl == "" {
		lvl = "info"
	}
	args := append([]string{"serve", "--listen", fmt.Sprintf("127.0.0.1:%d", s.port), "--base-url", s.base,
		"--data-dir", s.dataDir, "--database-url", s.dbURL, "--log-level", lvl}, s.args...)
	cmd := exec.Command(s.h.bin, args...)
	cmd.Env = childEnv(append([]string{"GATEHOUSE_FAULTS_DEBUG=" + s.debug}, env...)...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	pr, pw := io.Pipe()
	cmd.Stdout, cmd.Stderr = pw, pw
	if err := cmd.Start(); err != nil {
		lf.Close()
		return fmt.Errorf("start gatehouse: %w", err)
	}
	s.cmd = cmd
	s.done = make(chan struct{})
	s.mu.Lock()
	s.logTail = nil
	s.mu.Unlock()
	ready := s.waitLog("Gatehouse is running")
	go s.readLog(pr, lf)
	go func() {
		cmd.Wait()
		pw.Close()
		close(s.done)
	}()
	select {
	case <-ready:
		return nil
	case <-s.done:
		s.cmd = nil
		return fmt.Errorf("gatehouse exited during start-up; its log (%s) ends:\n%s", logPath, s.tail())
	case <-time.After(60 * time.Second):
		s.kill()
		return fmt.Errorf("gatehouse did not start within 60s; its log (%s) ends:\n%s", logPath, s.tail())
	case <-ctx.Done():
		s.kill()
		return ctx.Err()
	}
}

// readLog copies the process's output to its log file, keeps the last
// lines and wakes whoever waits for a line.
func (s *server) readLog(r io.Reader, lf *os.File) {
	defer lf.Close()
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		lf.WriteString(line + "\n")
		s.mu.Lock()
		s.logTail = append(s.logTail, line)
		if len(s.logTail) > 200 {
			s.logTail = s.logTail[len(s.logTail)-200:]
		}
		kept := s.waiters[:0]
		for _, w := range s.waiters {
			if strings.Contains(line, w.text) {
				close(w.ch)
			} else {
				kept = append(kept, w)
			}
		}
		s.waiters = kept
		s.mu.Unlock()
	}
	io.Copy(io.Discard, r)
}

// waitLog returns a channel closed when the current process logs a line
// containing text (from now on).
func (s *server) waitLog(text string) <-chan struct{} {
	ch := make(chan struct{})
	s.mu.Lock()
	s.waiters = append(s.waiters, logWaiter{text, ch})
	s.mu.Unlock()
	return ch
}

// logged reports whether a recent line of the current process contains text.
func (s *server) logged(text string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, l := range s.logTail {
		if strings.Contains(l, text) {
			return true
		}
	}
	return false
}

func (s *server) tail() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	t := s.logTail
	if len(t) > 30 {
		t = t[len(t)-30:]
	}
	return strings.Join(t, "\n")
}

func (s *server) pid() int { return s.cmd.Process.Pid }

// kill sends SIGKILL and waits for the process to be gone.
func (s *server) kill() {
	if s.cmd == nil {
		return
	}
	select {
	case <-s.done: // already dead (a failpoint): its pid may be reused
	default:
		syscall.Kill(s.cmd.Process.Pid, syscall.SIGKILL)
		<-s.done
	}
	s.cmd = nil
}

// exited waits up to d for the process to exit on its own (a failpoint
// killed it) and reports whether it did.
func (s *server) exited(d time.Duration) bool {
	select {
	case <-s.done:
		s.cmd = nil
		return true
	case <-time.After(d):
		return false
	}
}

// stop sends SIGTERM and waits for a clean exit, killing after 30s.
func (s *server) stop() {
	if s.cmd == nil {
		return
	}
	syscall.Kill(s.cmd.Process.Pid, syscall.SIGTERM)
	select {
	case <-s.done:
	case <-time.After(30 * time.Second):
		syscall.Kill(s.cmd.Process.Pid, syscall.SIGKILL)
		<-s.done
	}
	s.cmd = nil
}

// sample is the server process's resource use at one moment.
type sample struct {
	rssMiB     float64
	fds        int
	threads    int
	goroutines int
}

// measure reads /proc and the goroutine endpoint.
func (s *server) measure() (sample, error) {
	var m sample
	if s.cmd == nil {
		return m, errors.New("not running")
	}
	pid := s.pid()
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/status")
	if err != nil {
		return m, err
	}
	for line := range strings.Lines(string(b)) {
		f := strings.Fields(line)
		if len(f) < 2 {
			continue
		}
		switch f[0] {
		case "VmRSS:":
			kb, _ := strconv.ParseFloat(f[1], 64)
			m.rssMiB = kb / 1024
		case "Threads:":
			m.threads, _ = strconv.Atoi(f[1])
		}
	}
	if ents, err := os.ReadDir(fmt.Sprintf("/proc/%d/fd", pid)); err == nil {
		m.fds = len(ents)
	}
	m.goroutines, err = s.goroutines()
	return m, err
}

var debugClient = &http.Client{Timeout: 5 * time.Second}

func (s *server) goroutines() (int, error) {
	resp, err := debugClient.Get("http://" + s.debug + "/goroutines")
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return strconv.Atoi(strings.TrimSpace(string(b)))
}

// freePort asks the kernel for an unused loopback port.
func freePort() (int, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port, nil
}

// childEnv is our environment without GATEHOUSE_* variables, so that a
// developer's own configuration cannot point a server under test at a real
// index.
func childEnv(extra ...string) []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "GATEHOUSE_") {
			env = append(env, kv)
		}
	}
	return append(env, extra...)
}
