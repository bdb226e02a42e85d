package blob

import (
	"os"
	"syscall"
)

// syncFileRangeWrite is SYNC_FILE_RANGE_WRITE: start writing the dirty
// pages of the range, do not wait for them.
const syncFileRangeWrite = 0x2

// startWriteback asks the kernel to start writing bytes [off, off+n) of f
// to disk, without waiting. It is only a hint (errors are ignored): the
// fsync before publication is what makes a blob durable. It lets the disk
// work while a large upload is still arriving and being hashed, so that the
// fsync at Commit finds most of it written.
func startWriteback(f *os.File, off, n int64) {
	rc, err := f.SyscallConn()
	if err != nil {
		return
	}
	rc.Control(func(fd uintptr) {
		syscall.SyncFileRange(int(fd), off, n, syncFileRangeWrite)
	})
}
