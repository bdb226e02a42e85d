package blob

import (
	"errors"
	"fmt"
	"os"
	"syscall"
	"time"
)

// StartWriting registers this process as a writer of the store for as long
// as it runs and removes what writers that died (kill -9, a power cut) left
// behind: their ".tmp-*" files.
//
// Writers hold a shared flock(2) on the store's root directory; the kernel
// drops it when the process dies, however it dies. If no other process holds
// it, every temporary file last written before since is a dead writer's and
// is removed, however new (a server restarted right after a crash finds
// fresh ones); since is when this process started, so that the sweep can run
// beside its own first uploads. If another
// writer is alive (several instances sharing one files directory), only
// temporary files older than olderThan are removed, so as not to pull a file
// from under a Put in progress there.
//
// stop releases the registration; call it when the process stops writing.
// On filesystems without flock (some network filesystems) the lock cannot be
// taken and StartWriting falls back to the age rule alone.
func (s *FS) StartWriting(since time.Time, olderThan time.Duration) (swept int, stop func(), err error) {
	f, err := os.Open(s.root.Name())
	if err != nil {
		return 0, nil, fmt.Errorf("blob: open root for locking: %w", err)
	}
	stop = func() { f.Close() } // closing the descriptor releases the lock
	fd := int(f.Fd())
	age := olderThan
	lockErr := flock(fd, syscall.LOCK_EX|syscall.LOCK_NB)
	switch {
	case lockErr == nil:
		age = max(time.Since(since), 0) // nobody else writes: every temp file from before we started is a dead writer's
	case errors.Is(lockErr, syscall.EWOULDBLOCK):
		// Another writer is alive.
	default:
		// No flock here: the age rule alone.
	}
	swept, err = s.Sweep(age)
	if lockErr == nil || errors.Is(lockErr, syscall.EWOULDBLOCK) {
		// Downgrade (or wait for a writer that is sweeping at its start).
		if lerr := flock(fd, syscall.LOCK_SH); lerr != nil && err == nil {
			err = fmt.Errorf("blob: lock root: %w", lerr)
		}
	}
	return swept, stop, err
}

func flock(fd, how int) error {
	for {
		err := syscall.Flock(fd, how)
		if !errors.Is(err, syscall.EINTR) {
			return err
		}
	}
}
