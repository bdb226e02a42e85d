//go:build !linux

package blob

import "os"

// startWriteback is a hint that only Linux takes (see writeback_linux.go);
// elsewhere the fsync at Commit writes everything.
func startWriteback(f *os.File, off, n int64) {}
