package stream

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"
)

// keysOnWorkers returns two keys that go to different workers of n.
func keysOnWorkers(t *testing.T, n int) (string, string) {
	t.Helper()
	a := "did:plc:a"
	for i := range 100 {
		b := fmt.Sprintf("did:plc:b%d", i)
		if fnv(a)%uint32(n) != fnv(b)%uint32(n) {
			return a, b
		}
	}
	t.Fatal("no two keys on different workers")
	return "", ""
}

func TestDispatcherCursorWaitsForSlowKey(t *testing.T) {
	slow, fast := keysOnWorkers(t, 2)
	release := make(chan struct{})
	var mu sync.Mutex
	var cursors []int64
	handled := make(chan int64, 10)
	d := NewDispatcher(2, 4, func(m Message) string { return string(m.Body) }, func(_ context.Context, m Message) error {
		if string(m.Body) == slow {
			<-release
		}
		handled <- m.Seq
		return nil
	}, func(seq int64) {
		mu.Lock()
		cursors = append(cursors, seq)
		mu.Unlock()
	})
	if n := startedWorkers(d); n != 0 {
		t.Fatalf("%d workers before the first message", n)
	}
	ctx := context.Background()
	for seq, key := range []string{slow, fast, fast} {
		if err := d.Dispatch(ctx, Message{Seq: int64(seq + 1), Body: []byte(key)}); err != nil {
			t.Fatal(err)
		}
	}
	if n := startedWorkers(d); n != 2 {
		t.Fatalf("%d workers after messages for two", n)
	}
	for range 2 {
		select {
		case <-handled:
		case <-time.After(testTimeout):
			t.Fatal("the fast key's messages were not handled")
		}
	}
	mu.Lock()
	if len(cursors) != 0 {
		t.Errorf("cursor reported %v while seq 1 is in progress", cursors)
	}
	mu.Unlock()
	close(release)
	if err := d.Close(); err != nil {
		t.Fatal(err)
	}
	// Once seq 1 is done the cursor moves past it; seq 3's bookkeeping
	// may finish after seq 1's, so the cursor may stop at 2 on the way,
	// but it only rises and ends at 3.
	mu.Lock()
	defer mu.Unlock()
	if len(cursors) == 0 || cursors[len(cursors)-1] != 3 {
		t.Fatalf("cursors %v, want them to end at 3", cursors)
	}
	for i, c := range cursors {
		if c < 2 || (i > 0 && c <= cursors[i-1]) {
			t.Errorf("cursors %v: want each past seq 1 and above the one before", cursors)
		}
	}
}

func TestDispatcherStopsAfterHandlerError(t *testing.T) {
	boom := errors.New("boom")
	d := NewDispatcher(1, 1, RepoKey, func(context.Context, Message) error { return boom }, nil)
	ctx := context.Background()
	if err := d.Dispatch(ctx, Message{Seq: 1}); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(testTimeout)
	for d.Err() == nil {
		if time.Now().After(deadline) {
			t.Fatal("the handler's error was not recorded")
		}
		time.Sleep(time.Millisecond)
	}
	if err := d.Dispatch(ctx, Message{Seq: 2}); !errors.Is(err, boom) {
		t.Errorf("Dispatch after a failure = %v", err)
	}
	if err := d.Close(); !errors.Is(err, boom) {
		t.Errorf("Close = %v", err)
	}
}

func startedWorkers(d *Dispatcher) int {
	d.mu.Lock()
	defer d.mu.Unlock()
	n := 0
	for _, q := range d.queues {
		if q != nil {
			n++
		}
	}
	return n
}
