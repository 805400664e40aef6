package devdb

import (
	"os/exec"
	"strings"
	"testing"
)

// TestProgramsLinkNoTestCode checks that this package and the example
// programs that start a cluster with it link neither the testing package,
// nor the test harness, nor a Docker client: an example is code a reader
// copies into a service.
func TestProgramsLinkNoTestCode(t *testing.T) {
	t.Parallel()
	goBin, err := exec.LookPath("go")
	if err != nil {
		t.Skip("needs the go command to list dependencies")
	}
	const mod = "github.com/txkit/txkit/"
	args := []string{"list", "-deps"}
	for _, p := range []string{
		"internal/devdb",
		"examples/bank", "examples/inventory", "examples/jobqueue",
		"examples/leader", "examples/repository", "examples/pool",
	} {
		args = append(args, mod+p)
	}
	out, err := exec.Command(goBin, args...).Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	for dep := range strings.Lines(string(out)) {
		dep = strings.TrimSpace(dep)
		if dep == "testing" || strings.HasPrefix(dep, "testing/") ||
			strings.Contains(dep, "goleak") || strings.Contains(dep, "testify") ||
			strings.Contains(dep, "testcontainers") || strings.Contains(dep, "docker") ||
			strings.HasPrefix(dep, mod+"tests/") {
			t.Errorf("linked by a program: %s", dep)
		}
	}
}
