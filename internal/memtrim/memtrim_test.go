package memtrim

import (
	"context"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"
)

// stepper drives a loop by hand: tick sends one tick and returns once the
// loop has dealt with it.
type stepper struct {
	ticks   chan time.Time
	handled chan struct{}
}

func (s stepper) tick() {
	s.ticks <- time.Time{}
	<-s.handled
}

func TestTrimmerReleasesOnceAfterQuiet(t *testing.T) {
	var released, quiet atomic.Int64
	handled := make(chan struct{})
	tr := &Trimmer{release: func() { released.Add(1) }, handled: handled}
	// OnQuiet runs with each release, before it.
	tr.OnQuiet = func() {
		if quiet.Add(1) != released.Load()+1 {
			t.Errorf("OnQuiet call %d came after release %d", quiet.Load(), released.Load())
		}
	}
	ticks := make(chan time.Time)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		tr.loop(ctx, ticks)
	}()
	defer func() {
		cancel()
		<-done
	}()
	st := stepper{ticks, handled}

	// A fresh server is dirty: its first quiet interval releases, and
	// quiet intervals after that do not release again.
	st.tick()
	if got := released.Load(); got != 1 {
		t.Fatalf("after the first quiet intervals: %d releases, want 1", got)
	}
	st.tick()
	if got := released.Load(); got != 1 {
		t.Fatalf("quiet with nothing new: %d releases, want still 1", got)
	}

	// Activity in every interval holds the release back.
	h := tr.Wrap(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	for range 3 {
		h.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest("GET", "/", nil))
		st.tick()
	}
	if got := released.Load(); got != 1 {
		t.Fatalf("while requests keep coming: %d releases, want still 1", got)
	}
	// The first quiet interval after them releases once.
	st.tick()
	if got := released.Load(); got != 2 {
		t.Fatalf("after the requests stopped: %d releases, want 2", got)
	}
	if tr.Trims() != 2 {
		t.Fatalf("Trims() = %d, want 2", tr.Trims())
	}
	if got := quiet.Load(); got != 2 {
		t.Fatalf("OnQuiet ran %d times, want 2", got)
	}
}

func TestTrimmerRunStopsWithContext(t *testing.T) {
	var tr Trimmer
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		tr.Run(ctx, time.Hour)
	}()
	cancel()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("Run did not return after its context was cancelled")
	}
}
