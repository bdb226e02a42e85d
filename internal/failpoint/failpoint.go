//go:build !faultpoints

// Package failpoint marks the steps of a write at which the fault harness
// (cmd/faults) may stop the server dead, to prove that a crash between two
// steps leaves nothing half-visible.
//
// In an ordinary build Hit is an empty function that the compiler removes.
// Built with -tags faultpoints, Hit(name) kills the process with SIGKILL
// when GATEHOUSE_FAILPOINT names that point (see failpoint_on.go). Release
// binaries are never built with the tag.
package failpoint

// Enabled reports whether this binary was built with failpoints.
const Enabled = false

// Hit marks the point name. It does nothing in this build.
func Hit(name string) {}
