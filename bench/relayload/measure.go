package main

import (
	"runtime"
	"runtime/debug"
	"syscall"
	"time"

	"github.com/welkin-atproto/welkin/bench/internal/procmem"
)

// cpuTime is the CPU time this process has used, user and system, from
// getrusage.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		panic(err) // RUSAGE_SELF with a valid pointer does not fail
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// span is a stretch of time and of this process's CPU time.
type span struct {
	wall, cpu time.Duration
}

// meter starts a span.
type meter struct {
	start time.Time
	cpu   time.Duration
}

func startMeter() meter { return meter{start: time.Now(), cpu: cpuTime()} }

func (m meter) stop() span {
	return span{wall: time.Since(m.start), cpu: cpuTime() - m.cpu}
}

// memory is this process's memory at rest.
type memory struct {
	rss   int64 // resident set (VmRSS)
	heap  int64 // Go heap spans in use
	stack int64 // goroutine stacks
}

// measureMemory collects garbage, returns what is free to the operating
// system (so that the resident set counts what is in use), and reads the
// process's memory.
func measureMemory() (memory, error) {
	runtime.GC()
	debug.FreeOSMemory()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	rss, err := procmem.RSS(0)
	return memory{rss: rss, heap: int64(ms.HeapInuse), stack: int64(ms.StackInuse)}, err
}
