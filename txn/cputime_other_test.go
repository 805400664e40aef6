//go:build !unix

package txn_test

import "time"

// cpuTime is not measured here: benchmarks report 0.
func cpuTime() time.Duration { return 0 }

// serverCPU is not measured here: benchmarks report 0.
func serverCPU([]uint32) time.Duration { return 0 }
