package pgtest

import (
	"fmt"
	"os"
	"sync"
	"testing"

	"go.uber.org/goleak"
)

// Main runs a test package's tests, then stops the server the package
// started (if any) and fails the run if goroutines leaked. Call it from
// TestMain:
//
//	func TestMain(m *testing.M) { pgtest.Main(m) }
func Main(m *testing.M, opts ...goleak.Option) {
	code := m.Run()
	runAtExit()
	if err := closeShared(); err != nil {
		fmt.Fprintf(os.Stderr, "pgtest: stopping the test server: %v\n", err)
		if code == 0 {
			code = 1
		}
	}
	if code == 0 {
		if err := goleak.Find(opts...); err != nil {
			fmt.Fprintf(os.Stderr, "pgtest: goroutines leaked by the tests: %v\n", err)
			code = 1
		}
	}
	os.Exit(code)
}

// atExit holds the functions AtExit registered.
var atExit struct {
	mu    sync.Mutex
	funcs []func()
}

// AtExit registers f to run when the package's tests have finished, before
// [Main] stops the shared server and looks for leaked goroutines: for
// servers a package started for several of its tests.
func AtExit(f func()) {
	atExit.mu.Lock()
	defer atExit.mu.Unlock()
	atExit.funcs = append(atExit.funcs, f)
}

func runAtExit() {
	atExit.mu.Lock()
	funcs := atExit.funcs
	atExit.funcs = nil
	atExit.mu.Unlock()
	for i := len(funcs) - 1; i >= 0; i-- {
		funcs[i]()
	}
}
