package relay

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/welkin-atproto/welkin/atproto/syntax"
)

type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *fakeClock) now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

func jobDID(host string, i int) syntax.DID {
	return syntax.DID(fmt.Sprintf("did:plc:%s%023d", host, i))
}

// TestResyncQueueTurns queues a large backlog on one host and a few jobs
// on two others, and finishes the running jobs oldest first: the hosts
// take turns, so the small ones are not stuck behind the large one, and
// no host has more than resyncPerHost jobs running, nor all more than the
// workers.
func TestResyncQueueTurns(t *testing.T) {
	const workers = 3
	r := newResyncer(nil, workers, nil)
	for i := range 10 {
		r.schedule(jobDID("a", i), "a", "", false)
	}
	for _, h := range []string{"b", "c"} {
		for i := range 2 {
			r.schedule(jobDID(h, i), h, "", false)
		}
	}
	if n := r.pending(); n != 14 {
		t.Fatalf("pending = %d, want 14", n)
	}
	r.schedule(jobDID("a", 0), "a", "", false) // queued already
	if n := r.pending(); n != 14 {
		t.Fatalf("pending after a repeated schedule = %d, want 14", n)
	}
	var (
		picks   []string
		running []*resyncJob
	)
	perHost := map[string]int{}
	for r.pending() > 0 {
		r.mu.Lock()
		started := r.takeDueLocked(r.now())
		r.mu.Unlock()
		for _, j := range started {
			picks = append(picks, j.host)
			perHost[j.host]++
			if perHost[j.host] > resyncPerHost {
				t.Fatalf("%d jobs of %s run at once, more than %d", perHost[j.host], j.host, resyncPerHost)
			}
		}
		running = append(running, started...)
		if len(running) > workers {
			t.Fatalf("%d jobs run at once, more than %d workers", len(running), workers)
		}
		if len(running) == 0 {
			t.Fatalf("nothing runs, %d jobs pending", r.pending())
		}
		j := running[0]
		running = running[1:]
		perHost[j.host]--
		r.finish(context.Background(), j, resyncSynced, false)
	}
	want := "[a b c a b c a a a a a a a a]"
	if fmt.Sprint(picks) != want {
		t.Fatalf("jobs started in the order %v, want %s", picks, want)
	}
}

// TestResyncQueueLoop runs a backlog through the loop's workers: every
// job runs once, never more at once than the limits allow.
func TestResyncQueueLoop(t *testing.T) {
	release := make(chan struct{})
	var (
		mu       sync.Mutex
		running  = map[string]int{}
		maxHost  = map[string]int{}
		total    int
		maxTotal int
		order    []string
	)
	run := func(ctx context.Context, j *resyncJob) (string, bool) {
		mu.Lock()
		running[j.host]++
		total++
		maxHost[j.host] = max(maxHost[j.host], running[j.host])
		maxTotal = max(maxTotal, total)
		order = append(order, j.host)
		mu.Unlock()
		select {
		case <-release:
		case <-ctx.Done():
		}
		mu.Lock()
		running[j.host]--
		total--
		mu.Unlock()
		return resyncSynced, false
	}
	const workers = 3
	r := newResyncer(run, workers, nil)
	for i := range 10 {
		r.schedule(jobDID("a", i), "a.example.com", "", false)
	}
	for _, h := range []string{"b", "c"} {
		for i := range 2 {
			r.schedule(jobDID(h, i), h+".example.com", "", false)
		}
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan struct{})
	go func() {
		defer close(done)
		r.loop(ctx)
	}()
	deadline := time.Now().Add(10 * time.Second)
	for {
		mu.Lock()
		n := len(order)
		mu.Unlock()
		if n == workers {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d jobs started, want %d", n, workers)
		}
		time.Sleep(time.Millisecond)
	}
	mu.Lock()
	first := slices.Clone(order)
	mu.Unlock()
	slices.Sort(first)
	if fmt.Sprint(first) != "[a.example.com b.example.com c.example.com]" {
		t.Errorf("the first jobs started are of %v, want one of each host", first)
	}
	close(release)
	for r.pending() > 0 {
		if time.Now().After(deadline) {
			t.Fatalf("%d jobs still pending", r.pending())
		}
		time.Sleep(time.Millisecond)
	}
	cancel()
	<-done
	mu.Lock()
	defer mu.Unlock()
	if len(order) != 14 {
		t.Fatalf("%d jobs ran, want 14", len(order))
	}
	if maxTotal > workers {
		t.Errorf("%d jobs ran at once, more than %d workers", maxTotal, workers)
	}
	for h, n := range maxHost {
		if n > resyncPerHost {
			t.Errorf("%d jobs of %s ran at once, more than %d", n, h, resyncPerHost)
		}
	}
}

// TestResyncQueueRetries fails a job every time: it runs again after a
// growing backoff, gives up after resyncMaxAttempts, and is not queued
// again during the cooldown unless forced.
func TestResyncQueueRetries(t *testing.T) {
	clock := &fakeClock{t: time.Unix(1_700_000_000, 0)}
	var (
		mu       sync.Mutex
		calls    int
		outcomes []string
	)
	r := newResyncer(func(context.Context, *resyncJob) (string, bool) {
		mu.Lock()
		calls++
		mu.Unlock()
		return resyncFetchFailed, true
	}, 1, clock.now)
	r.count = func(o string) {
		mu.Lock()
		outcomes = append(outcomes, o)
		mu.Unlock()
	}
	ctx := context.Background()
	did := jobDID("a", 1)
	r.schedule(did, "a.example.com", "", false)
	for attempt := 1; attempt <= resyncMaxAttempts; attempt++ {
		r.dispatch(ctx)
		r.wg.Wait()
		mu.Lock()
		n := calls
		mu.Unlock()
		if n != attempt {
			t.Fatalf("attempt %d: the job ran %d times", attempt, n)
		}
		if attempt == resyncMaxAttempts {
			break
		}
		full := min(resyncMinBackoff<<(attempt-1), resyncMaxBackoff)
		wait := r.dispatch(ctx) // not due yet: starts nothing
		if wait < full*3/4 || wait > full {
			t.Fatalf("after failure %d the job waits %v, want within [%v, %v]", attempt, wait, full*3/4, full)
		}
		r.wg.Wait()
		mu.Lock()
		n = calls
		mu.Unlock()
		if n != attempt {
			t.Fatalf("the job ran again before its backoff ended")
		}
		clock.add(wait)
	}
	if n := r.pending(); n != 0 {
		t.Fatalf("pending after giving up = %d", n)
	}
	mu.Lock()
	gaveUp := slices.Index(outcomes, resyncGaveUp)
	mu.Unlock()
	if gaveUp != resyncMaxAttempts {
		t.Fatalf("outcomes %v: want %d failures, then %s", outcomes, resyncMaxAttempts, resyncGaveUp)
	}
	r.schedule(did, "a.example.com", "", false)
	if r.pending() != 0 {
		t.Fatal("queued again during the cooldown")
	}
	r.schedule(did, "a.example.com", "", true)
	if r.pending() != 1 {
		t.Fatal("a forced schedule was not queued")
	}
}

// TestResyncQueueAgain drops a commit while the job runs: the job runs
// once more afterwards, and sees the dropped rev.
func TestResyncQueueAgain(t *testing.T) {
	started := make(chan struct{}, 2)
	release := make(chan struct{})
	var (
		mu      sync.Mutex
		dropped []syntax.TID
	)
	var r *resyncer
	r = newResyncer(func(ctx context.Context, j *resyncJob) (string, bool) {
		started <- struct{}{}
		<-release
		mu.Lock()
		dropped = append(dropped, r.droppedSince(j))
		mu.Unlock()
		return resyncSynced, false
	}, 1, nil)
	ctx, cancel := context.WithCancel(context.Background())
	did := jobDID("a", 2)
	r.schedule(did, "a.example.com", "", false)
	r.dispatch(ctx)
	<-started
	r.schedule(did, "a.example.com", "3l3qo2vutsw2b", false)
	release <- struct{}{}
	deadline := time.Now().Add(10 * time.Second)
	for {
		r.dispatch(ctx)
		select {
		case <-started:
		case <-time.After(10 * time.Millisecond):
			if time.Now().After(deadline) {
				t.Fatal("the job did not run again")
			}
			continue
		}
		break
	}
	release <- struct{}{}
	r.wg.Wait()
	cancel()
	if r.pending() != 0 {
		t.Fatalf("pending = %d after the second run", r.pending())
	}
	if fmt.Sprint(dropped) != "[3l3qo2vutsw2b ]" {
		t.Fatalf("dropped revs seen by the runs = %q", dropped)
	}
}

func TestResyncBackoff(t *testing.T) {
	prev := time.Duration(0)
	for attempt := 1; attempt <= 20; attempt++ {
		full := resyncMinBackoff
		for i := 1; i < attempt && full < resyncMaxBackoff; i++ {
			full *= 2
		}
		full = min(full, resyncMaxBackoff)
		d := resyncBackoff(attempt)
		if d < full*3/4 || d > full {
			t.Fatalf("backoff %d = %v, want within [%v, %v]", attempt, d, full*3/4, full)
		}
		if full < prev {
			t.Fatalf("backoff shrank at attempt %d", attempt)
		}
		prev = full
	}
}
