//go:build !linux

package workpool

// lowerPriority is only implemented on Linux, where niceness is per thread;
// elsewhere jobs run at the server's priority, bounded in number only.
func lowerPriority() {}
