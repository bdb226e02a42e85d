package pep

import (
	"bytes"
	"encoding/json"
	"os"
	"os/exec"
	"testing"
)

// debianPython is the interpreter the cross-checks run against. It must be
// the distribution's own Python, whose python3-packaging is the reference
// implementation the tests compare with.
const debianPython = "/usr/bin/python3"

// runPython runs script with Debian's Python, feeding it input as JSON on
// stdin and decoding its JSON stdout into out. The test is skipped when that
// Python or its packaging module is unavailable.
func runPython(t *testing.T, script string, input, out any) {
	t.Helper()
	if _, err := os.Stat(debianPython); err != nil {
		t.Skipf("%s not available: %v", debianPython, err)
	}
	// -I: isolated mode, so neither PYTHON* variables nor user
	// site-packages can substitute another packaging version.
	if err := exec.Command(debianPython, "-I", "-c", "import packaging").Run(); err != nil {
		t.Skipf("%s cannot import packaging: %v", debianPython, err)
	}
	in, err := json.Marshal(input)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(debianPython, "-I", "-c", script)
	cmd.Stdin = bytes.NewReader(in)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	stdout, err := cmd.Output()
	if err != nil {
		t.Fatalf("python failed: %v\n%s", err, stderr.String())
	}
	if err := json.Unmarshal(stdout, out); err != nil {
		t.Fatalf("decoding python output: %v\n%s", err, stdout)
	}
}
