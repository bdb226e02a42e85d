package workpool

import (
	"context"
	"runtime"
	"testing"

	"golang.org/x/sys/unix"
)

// niceness is the calling thread's nice value (the raw system call returns
// 20 - nice).
func niceness(t *testing.T) int {
	t.Helper()
	p, err := unix.Getpriority(unix.PRIO_PROCESS, unix.Gettid())
	if err != nil {
		t.Fatal(err)
	}
	return 20 - p
}

// TestJobsRunAtLowPriority: a job's thread is niced, and the caller's is
// left as it was.
func TestJobsRunAtLowPriority(t *testing.T) {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	base := niceness(t)
	if base >= jobNice {
		t.Skipf("the test already runs at nice %d, at or below the jobs' %d", base, jobNice)
	}
	var inJob int
	if err := New(Options{Workers: 1}).Do(context.Background(), func() { inJob = niceness(t) }); err != nil {
		t.Fatal(err)
	}
	if inJob != jobNice {
		t.Errorf("job ran at nice %d, want %d", inJob, jobNice)
	}
	if got := niceness(t); got != base {
		t.Errorf("caller's thread is at nice %d after the job, want its own %d", got, base)
	}
}
