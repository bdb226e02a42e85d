package main

import (
	"os"
	"strconv"
	"syscall"
	"unsafe"
)

// sysProcAttr starts a server in its own process group and has the kernel
// kill it if the harness dies without cleaning up (kill -9); that reaches
// the direct child only, so an nginx worker can outlive it. Pdeathsig
// fires when the starting OS thread exits; Go only retires threads that a
// goroutine locked and left locked, which this program never does.
func sysProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
}

// pinSelf restricts every thread of this process to cpu. The affinity mask
// is per thread, and a new thread inherits its creator's, so setting it on
// all current threads (twice, to catch any created meanwhile) pins the
// whole Go runtime without re-executing under taskset.
func pinSelf(cpu int) error {
	var mask [16]uint64 // room for 1024 CPUs
	mask[cpu/64] = 1 << (cpu % 64)
	for range 2 {
		ents, err := os.ReadDir("/proc/self/task")
		if err != nil {
			return err
		}
		for _, e := range ents {
			tid, err := strconv.Atoi(e.Name())
			if err != nil {
				continue
			}
			_, _, errno := syscall.RawSyscall(syscall.SYS_SCHED_SETAFFINITY, uintptr(tid), unsafe.Sizeof(mask), uintptr(unsafe.Pointer(&mask)))
			if errno != 0 && errno != syscall.ESRCH { // ESRCH: the thread has exited
				return errno
			}
		}
	}
	return nil
}
