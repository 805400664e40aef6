// Package fault holds txkit's fault tests: a bank workload run while
// connections are cut and backends terminated, and a server restart in the
// middle of a run. Its traffic goes to 127.0.0.1 only, and every test is
// bounded in count and time.
package fault
