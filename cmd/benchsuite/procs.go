package main

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// server is a long-running process under test.
type server struct {
	name string
	base string // http://127.0.0.1:port
	cmd  *exec.Cmd
	done chan struct{} // closed when the process has exited
	log  string        // its stdout+stderr
	boot time.Duration // from exec to the first 200 (Gatehouse)
}

// procs remembers every server started so that all of them are stopped at
// the end, also after an error or Ctrl-C.
type procs struct {
	mu   sync.Mutex
	list []*server
}

// start runs s.cmd with its output going to s.log, in its own process group
// (so a terminal's Ctrl-C reaches us first and we stop it in order, and so
// nginx's worker is stopped with its master).
func (p *procs) start(s *server) error {
	f, err := os.Create(s.log)
	if err != nil {
		return err
	}
	s.cmd.Stdout, s.cmd.Stderr = f, f
	s.cmd.SysProcAttr = sysProcAttr()
	if err := s.cmd.Start(); err != nil {
		f.Close()
		return fmt.Errorf("start %s: %w", s.name, err)
	}
	s.done = make(chan struct{})
	go func() {
		s.cmd.Wait()
		f.Close()
		close(s.done)
	}()
	p.mu.Lock()
	p.list = append(p.list, s)
	p.mu.Unlock()
	return nil
}

// stopAll stops every server, newest first.
func (p *procs) stopAll() {
	p.mu.Lock()
	list := p.list
	p.list = nil
	p.mu.Unlock()
	for i := len(list) - 1; i >= 0; i-- {
		terminate(list[i])
	}
}

// stop stops one server and forgets it.
func (p *procs) stop(s *server) {
	p.mu.Lock()
	p.list = slices.DeleteFunc(p.list, func(x *server) bool { return x == s })
	p.mu.Unlock()
	terminate(s)
}

// terminate sends SIGTERM to the server's process group, and SIGKILL if it
// has not exited five seconds later.
func terminate(s *server) {
	pgid := -s.cmd.Process.Pid
	syscall.Kill(pgid, syscall.SIGTERM)
	select {
	case <-s.done:
	case <-time.After(5 * time.Second):
		syscall.Kill(pgid, syscall.SIGKILL)
		<-s.done
	}
}

// freePort asks the kernel for an unused loopback port. Another process
// could take it before our server binds it; on a benchmark box that is
// unlikely enough.
func freePort() (int, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port, nil
}

// waitHTTP polls url until it answers 200, the process exits, or a timeout.
func (h *harness) waitHTTP(ctx context.Context, s *server, url string) error {
	deadline := time.Now().Add(30 * time.Second)
	for {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		resp, err := h.client.Do(req)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		select {
		case <-s.done:
			return fmt.Errorf("%s exited during start-up; see %s:\n%s", s.name, s.log, tail(s.log))
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(10 * time.Millisecond): // P9 measures start-up to this poll's resolution
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s did not answer %s within 30s; see %s", s.name, url, s.log)
		}
	}
}

func tail(path string) string {
	b, _ := os.ReadFile(path)
	if len(b) > 2000 {
		b = b[len(b)-2000:]
	}
	return string(b)
}

// procStatus reads a "VmRSS:"-style line of /proc/<pid>/status, in MiB.
func procStatus(pid int, field string) (float64, error) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/status")
	if err != nil {
		return 0, err
	}
	for line := range strings.Lines(string(b)) {
		if rest, ok := strings.CutPrefix(line, field+":"); ok {
			f := strings.Fields(rest) // "12345 kB"
			if len(f) == 2 && f[1] == "kB" {
				kb, err := strconv.ParseFloat(f[0], 64)
				return kb / 1024, err
			}
		}
	}
	return 0, fmt.Errorf("no %s in /proc/%d/status", field, pid)
}

// rssPoller samples our server's VmRSS while a load runs and keeps the peak.
// VmHWM would give the peak too, but only since start, not per benchmark.
type rssPoller struct {
	stop chan struct{}
	done chan float64
	once sync.Once
	peak float64
}

func pollRSS(pid int) *rssPoller {
	p := &rssPoller{stop: make(chan struct{}), done: make(chan float64, 1)}
	go func() {
		var peak float64
		t := time.NewTicker(200 * time.Millisecond)
		defer t.Stop()
		for {
			if v, err := procStatus(pid, "VmRSS"); err == nil {
				peak = max(peak, v)
			}
			select {
			case <-p.stop:
				p.done <- peak
				return
			case <-t.C:
			}
		}
	}()
	return p
}

// Stop ends the sampling and returns the peak in MiB; again, the same.
func (p *rssPoller) Stop() float64 {
	p.once.Do(func() {
		close(p.stop)
		p.peak = <-p.done
	})
	return p.peak
}

// childEnv is our environment without GATEHOUSE_* variables, so that a
// developer's own configuration cannot redirect the server under test to a
// real database.
func childEnv(extra ...string) []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "GATEHOUSE_") && !strings.HasPrefix(kv, "GOMAXPROCS=") {
			env = append(env, kv)
		}
	}
	return append(env, extra...)
}

// cpuSeconds is the user+system CPU time of a server's process and its
// direct children (nginx's worker), from /proc. Comparing it per request
// tells how hard each server worked even when the load generator, not the
// server, was the bottleneck (large responses on a 2-core box).
func cpuSeconds(pid int) float64 {
	total := procCPU(pid)
	if b, err := os.ReadFile(fmt.Sprintf("/proc/%d/task/%d/children", pid, pid)); err == nil {
		for _, f := range strings.Fields(string(b)) {
			if c, err := strconv.Atoi(f); err == nil {
				total += procCPU(c)
			}
		}
	}
	return total
}

// procCPU is one process's user+system CPU seconds.
func procCPU(pid int) float64 {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0
	}
	// Fields after the command name, which is in parentheses and may
	// contain spaces: state is field 3, utime 14 and stime 15.
	_, rest, ok := strings.Cut(string(b), ") ")
	f := strings.Fields(rest)
	if !ok || len(f) < 13 {
		return 0
	}
	ut, _ := strconv.ParseFloat(f[11], 64)
	st, _ := strconv.ParseFloat(f[12], 64)
	return (ut + st) / clockTicks
}

// clockTicks is USER_HZ, the unit of /proc times; the kernel fixes it at
// 100 for user space on every Linux architecture Go supports.
const clockTicks = 100

// cpuTimes is the time CPU0 and CPU1 spent running processes (user, nice,
// system) and in total, in seconds, from /proc/stat.
type cpuTimes struct{ busy, total [2]float64 }

func readCPUs() cpuTimes {
	var t cpuTimes
	b, _ := os.ReadFile("/proc/stat")
	for line := range strings.Lines(string(b)) {
		f := strings.Fields(line)
		if len(f) < 9 || (f[0] != "cpu0" && f[0] != "cpu1") {
			continue
		}
		i := int(f[0][3] - '0')
		for j, v := range f[1:9] { // user nice system idle iowait irq softirq steal
			x, _ := strconv.ParseFloat(v, 64)
			t.total[i] += x / clockTicks
			if j < 3 {
				t.busy[i] += x / clockTicks
			}
		}
	}
	return t
}

// otherLoad is the share of each CPU, in percent, that went to processes
// other than the ones we account for (the server on CPU0; wrk and this
// harness on CPU1) between two readings: other sessions' builds and tests
// on a shared machine. Interrupt time is left out on both sides, so this is
// an estimate, good for telling a disturbed round from a clean one.
func otherLoad(a, b cpuTimes, ours0, ours1 float64) (cpu0, cpu1 float64) {
	pct := func(i int, ours float64) float64 {
		el := b.total[i] - a.total[i]
		if el <= 0 {
			return 0
		}
		return max(0, 100*((b.busy[i]-a.busy[i])-ours)/el)
	}
	return pct(0, ours0), pct(1, ours1)
}
