package stream

import (
	"context"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// BenchmarkFanout100 publishes b.N events to 100 consumers reading over
// loopback WebSockets in this process, and reports the frames delivered
// per second across all of them, and the process's CPU time per frame
// delivered (server and consumers together, where getrusage exists).
func BenchmarkFanout100(b *testing.B) {
	const consumers, window = 100, 4096
	ts := newTestStream(b, 1<<16, &ServerOptions{Buffer: 2 * window})
	frame := commitFrame(b, 1, "did:plc:a", 200)
	counts := make([]atomic.Int64, consumers)
	progress := make(chan struct{}, 1)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	var wg sync.WaitGroup
	for i := range consumers {
		c := dial(b, ts.url)
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				if _, _, err := c.Read(ctx); err != nil {
					return
				}
				if n := counts[i].Add(1); n%256 == 0 || n == int64(b.N) {
					select {
					case progress <- struct{}{}:
					default:
					}
				}
			}
		}()
	}
	slowest := func() int64 {
		m := counts[0].Load()
		for i := range counts {
			m = min(m, counts[i].Load())
		}
		return m
	}
	b.SetBytes(int64(len(frame)) * consumers)
	b.ResetTimer()
	start, cpu := time.Now(), processCPU()
	for i := 1; i <= b.N; i++ {
		for int64(i)-slowest() > window {
			select {
			case <-progress:
			case <-ctx.Done():
				b.Fatal("consumers stalled")
			}
		}
		ts.srv.Publish(Event{Seq: int64(i), Frame: frame})
	}
	for slowest() < int64(b.N) {
		select {
		case <-progress:
		case <-ctx.Done():
			b.Fatal("consumers stalled")
		}
	}
	elapsed, cpu := time.Since(start), processCPU()-cpu
	b.StopTimer()
	if d := ts.srv.Dropped(); d != 0 {
		b.Fatalf("%d consumers dropped", d)
	}
	b.ReportMetric(float64(b.N)*consumers/elapsed.Seconds(), "frames/s")
	if cpu > 0 {
		b.ReportMetric(float64(cpu.Nanoseconds())/(float64(b.N)*consumers), "cpu-ns/frame")
	}
	cancel()
	wg.Wait()
}

// BenchmarkIdleConsumerMemory reports the heap held per idle live
// consumer, counting both ends of the connection since both run in this
// process.
func BenchmarkIdleConsumerMemory(b *testing.B) {
	const n = 200
	ts := newTestStream(b, 16, nil)
	var perConsumer float64
	for b.Loop() {
		before := heapInUse()
		conns := make([]func(), 0, n)
		for range n {
			c := dial(b, ts.url)
			conns = append(conns, func() { c.CloseNow() })
		}
		if c := ts.srv.Consumers(); c != n {
			b.Fatalf("%d consumers registered", c)
		}
		after := heapInUse()
		perConsumer = float64(after-before) / n
		for _, c := range conns {
			c()
		}
		deadline := time.Now().Add(testTimeout)
		for ts.srv.Consumers() != 0 {
			if time.Now().After(deadline) {
				b.Fatal("consumers not released")
			}
			runtime.Gosched()
		}
	}
	b.ReportMetric(perConsumer, "bytes/consumer")
	b.ReportMetric(0, "ns/op")
}

func heapInUse() uint64 {
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m.HeapInuse
}
