// Package bench measures cfgsnap as a switch runs it, and writes
// lab/BENCHMARKS.md: one table in which each figure stands beside its anchor,
// measured in the same run, with their ratio (cfgsnap / anchor).
//
// Its one test, TestBenchReport, is what `make bench` runs after the packages'
// Go benchmarks, whose output it reads for BenchmarkHandle and
// BenchmarkGitHistory. Everything else it measures on the real binary
// (bin/cfgsnap) as a process: wall time from start to exit, and peak RSS from
// the child's rusage (ru_maxrss, what /usr/bin/time -v reports). The server is
// a real OpenSSH sshd listening on loopback inside a network namespace that
// stands for srbase-mgmt; cfgsnap reaches it through option netns, the OpenSSH
// anchors through ip netns exec, as Nokia's examples do. As on a switch, the
// event carries only what the event-handler instance may set (target, netns);
// what cfgsnap takes only from root (the source file, keys, spool) goes on the
// command line as flags. It asserts no timing: a figure is written down, never
// judged.
//
// Without -report the test skips, so `make test` does not run it:
//
//	go test -v -run TestBenchReport ./lab/bench -args -report FILE [-gobench FILE] [-bin PATH]
package bench
