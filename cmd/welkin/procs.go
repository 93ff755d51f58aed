package main

import (
	"runtime"
	"runtime/debug"
)

// pdsProcsPerCPU is how many Go processors (Ps) the PDS runs per CPU the
// runtime would use by default.
//
// The PDS's threads often block in the kernel: the firehose log's fsync
// after every batch, the account databases' reads, writes and syncs. A P
// held by a thread blocked there is lost to the other goroutines until the
// runtime hands it on, and the goroutine coming back from the kernel must
// then wait for a free P, behind every runnable request. With twice as many
// Ps as CPUs, the CPUs stay busy meanwhile and the log's goroutine finds a
// P at once. pdsload on 2 CPUs, 64 clients: 10-20% more writes per second
// and a p99 latency about a fifth lower; 1 and 16 clients about the same.
const pdsProcsPerCPU = 2

// scaleProcs multiplies GOMAXPROCS by factor, unless getenv says the
// operator set GOMAXPROCS, and returns the value in force.
func scaleProcs(factor int, getenv func(string) string) int {
	if getenv("GOMAXPROCS") != "" || factor <= 1 {
		return runtime.GOMAXPROCS(0)
	}
	n := runtime.GOMAXPROCS(0) * factor
	runtime.GOMAXPROCS(n)
	return n
}

// pdsGCPercent is the PDS's garbage collection target (GOGC): the heap may
// grow to three times what is live before a collection, against twice by
// default. A write allocates about 25 KB that dies at once, and the live
// heap is small, so at the default the collector ran several times a second
// under load. pdsload on 2 CPUs, 64 clients over 200 accounts, alternating
// 30 s runs: 4,359, 5,058 and 4,603 against 4,051, 4,218 and 3,517 writes
// per second, for 25-30 MB more right after the load. 400 was no better.
const pdsGCPercent = 200

// setGCPercent sets the garbage collection target to percent, unless
// getenv says the operator set GOGC, and returns the value in force.
func setGCPercent(percent int, getenv func(string) string) int {
	if getenv("GOGC") != "" {
		old := debug.SetGCPercent(-1)
		debug.SetGCPercent(old)
		return old
	}
	debug.SetGCPercent(percent)
	return percent
}
