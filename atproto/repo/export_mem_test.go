package repo

import (
	"context"
	"runtime"
	"testing"
)

// heapProbe is an io.Writer that counts the bytes written and, every
// probeEvery bytes, collects garbage and records the live heap.
type heapProbe struct {
	n, next uint64
	maxLive uint64
	probes  int
}

const probeEvery = 2 << 20

func liveHeap() uint64 {
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return ms.HeapAlloc
}

func (p *heapProbe) Write(b []byte) (int, error) {
	p.n += uint64(len(b))
	if p.n >= p.next {
		p.next = p.n + probeEvery
		p.maxLive = max(p.maxLive, liveHeap())
		p.probes++
	}
	return len(b), nil
}

// TestExportCARConstantMemory exports a 100,000-record repository and
// checks that the live heap while the CAR streams out stays far below the
// size of the CAR: the export keeps nothing of what it has written.
func TestExportCARConstantMemory(t *testing.T) {
	if testing.Short() {
		t.Skip("builds a 100,000-record repository")
	}
	tr := benchRepo(t, 100_000)
	before := liveHeap()
	p := &heapProbe{next: probeEvery}
	if err := tr.ExportCAR(context.Background(), p); err != nil {
		t.Fatal(err)
	}
	runtime.KeepAlive(tr)
	if p.probes < 4 {
		t.Fatalf("only %d probes over a %d-byte CAR", p.probes, p.n)
	}
	growth := int64(p.maxLive) - int64(before)
	t.Logf("CAR %d bytes, live heap %d before, at most %+d during the export (%d probes)", p.n, before, growth, p.probes)
	// Streaming needs a few buffers (the CAR writer's 64 KiB, one node per
	// layer); a generous bound, an eighth of the CAR, still fails an
	// export that holds what it writes.
	if limit := int64(p.n / 8); growth > limit {
		t.Fatalf("live heap grew by %d bytes during the export of a %d-byte CAR, more than %d", growth, p.n, limit)
	}
}
