package workpool

import "golang.org/x/sys/unix"

// jobNice is the niceness of a job's thread: with the server's threads at
// 0, the kernel gives a runnable nice-10 thread about a tenth of the CPU
// time they get, and preempts it as soon as one of them wakes.
const jobNice = 10

// lowerPriority lowers the calling thread's priority. On Linux niceness is
// per thread, and PRIO_PROCESS with a thread id sets just that thread.
// Failure (a seccomp profile that forbids it) only loses the priority, not
// the bound on concurrency, so it is ignored.
func lowerPriority() {
	unix.Setpriority(unix.PRIO_PROCESS, unix.Gettid(), jobNice)
}
