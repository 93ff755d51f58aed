package sequencer

import (
	"context"
	"fmt"
	"math/rand/v2"
	"slices"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/welkin-atproto/welkin/atproto/repo"
	"github.com/welkin-atproto/welkin/atproto/syntax"
)

// history is what concurrent writers did, to check the log against.
type history struct {
	mu      sync.Mutex
	revs    map[syntax.DID][]syntax.TID // commits written, per account
	appends []appended
}

type appended struct {
	did   syntax.DID
	after syntax.TID // the account's commit written just before, by the same goroutine
	seq   int64
}

func newHistory() *history { return &history{revs: make(map[syntax.DID][]syntax.TID)} }

func (h *history) wrote(did syntax.DID, rev syntax.TID) {
	h.mu.Lock()
	h.revs[did] = append(h.revs[did], rev)
	h.mu.Unlock()
}

func (h *history) appended(a appended) {
	h.mu.Lock()
	h.appends = append(h.appends, a)
	h.mu.Unlock()
}

// check verifies that the log holds every commit and append exactly once,
// with seqs 1..N, each account's commits in rev order, and each append
// after the commit its writer made before it.
func (h *history) check(t *testing.T, got []logged) {
	t.Helper()
	h.mu.Lock()
	defer h.mu.Unlock()
	total := len(h.appends)
	for _, revs := range h.revs {
		total += len(revs)
	}
	if len(got) != total {
		t.Fatalf("log holds %d events, %d were written", len(got), total)
	}
	checkGapless(t, got, 1)
	commitSeq := make(map[string]int64) // did + rev
	logged := make(map[syntax.DID][]syntax.TID)
	identities := make(map[int64]string)
	for _, ev := range got {
		switch ev.typ {
		case "#commit":
			did := syntax.DID(ev.did)
			if revs := logged[did]; len(revs) > 0 && revs[len(revs)-1] >= syntax.TID(ev.rev) {
				t.Fatalf("seq %d: commit %s of %s after %s", ev.seq, ev.rev, did, revs[len(revs)-1])
			}
			logged[did] = append(logged[did], syntax.TID(ev.rev))
			commitSeq[ev.did+" "+ev.rev] = ev.seq
		case "#identity":
			identities[ev.seq] = ev.did
		default:
			t.Fatalf("seq %d: unexpected %s", ev.seq, ev.typ)
		}
	}
	for did, revs := range h.revs {
		want := slices.Clone(revs)
		slices.Sort(want)
		if !slices.Equal(logged[did], want) {
			t.Fatalf("%s: logged commits %v, written %v", did, logged[did], want)
		}
	}
	for _, a := range h.appends {
		if identities[a.seq] != string(a.did) {
			t.Fatalf("Append of %s returned seq %d, which holds %q", a.did, a.seq, identities[a.seq])
		}
		if cs, ok := commitSeq[string(a.did)+" "+string(a.after)]; !ok || cs >= a.seq {
			t.Fatalf("Append of %s got seq %d, before its earlier commit %s (seq %d)", a.did, a.seq, a.after, cs)
		}
	}
}

// write runs writers goroutines, each making ops writes to random accounts
// (notifying seq() after each) and, every fifth write, an Append for the
// account just written.
func writeConcurrently(t *testing.T, e *env, seq func() *Sequencer, h *history, dids []syntax.DID, writers, ops int, progress *atomic.Int64) {
	t.Helper()
	clock := repo.NewRevClock(9)
	var wg sync.WaitGroup
	errs := make(chan error, writers)
	for w := range writers {
		rng := rand.New(rand.NewPCG(uint64(w), 42))
		wg.Go(func() {
			ctx := context.Background()
			for i := range ops {
				did := dids[rng.IntN(len(dids))]
				st, err := e.accts.get(ctx, did)
				if err != nil {
					errs <- err
					return
				}
				rev, err := writeCommit(ctx, st, clock, nil)
				if err != nil {
					errs <- err
					return
				}
				h.wrote(did, rev)
				// Counted here, so that a write whose Append is dropped
				// below still counts.
				if progress != nil {
					progress.Add(1)
				}
				s := seq()
				s.Notify(did)
				if i%5 == 4 {
					n, err := s.Append(ctx, did, KindIdentity, identityBody(t, did, ""))
					if err == ErrClosed {
						// The sequencer was replaced meanwhile; the
						// event was not logged.
						continue
					}
					if err != nil {
						errs <- fmt.Errorf("append: %w", err)
						return
					}
					h.appended(appended{did: did, after: rev, seq: n})
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
}

func testDIDs(n int) []syntax.DID {
	dids := make([]syntax.DID, n)
	for i := range dids {
		dids[i] = testDID(i)
	}
	return dids
}

// Many goroutines write many accounts through real actor stores; the log
// must hold every event exactly once, in per-account order, with seqs
// 1..N.
func TestConcurrentWritersKeepOrder(t *testing.T) {
	forEachBackend(t, func(t *testing.T, path string) {
		ctx := t.Context()
		e := newEnv(t, path)
		s := e.open(t)
		dids := testDIDs(24)
		h := newHistory()

		// Recover and Flush run concurrently with the writers.
		stop := make(chan struct{})
		var bg sync.WaitGroup
		bg.Go(func() {
			for {
				select {
				case <-stop:
					return
				default:
				}
				if err := s.Recover(ctx, dids); err != nil {
					t.Error(err)
					return
				}
			}
		})
		writeConcurrently(t, e, func() *Sequencer { return s }, h, dids, 16, 25, nil)
		close(stop)
		bg.Wait()
		if err := s.Recover(ctx, dids); err != nil {
			t.Fatal(err)
		}
		got := readLog(t, s)
		h.check(t, got)

		pub := e.rec.events()
		if len(pub) != len(got) {
			t.Fatalf("published %d events, logged %d", len(pub), len(got))
		}
		for i, ev := range pub {
			if ev.Seq != int64(i+1) {
				t.Fatalf("published event %d has seq %d", i, ev.Seq)
			}
		}
		if st := s.Stats(); st.Batches >= st.Events {
			t.Logf("no batch held more than one event: %+v", st)
		}
	})
}

// crashRecoveryOps is how many writes each of TestCrashRecovery's writers
// makes: enough that they are still writing when the first sequencer stops.
const crashRecoveryOps = 60

// A sequencer stops while writers keep writing; a new one on the same log
// recovers while they go on. Nothing is lost or sequenced twice, whether
// it was sequenced and not acknowledged, notified and not sequenced, or
// written while no sequencer ran.
func TestCrashRecovery(t *testing.T) {
	forEachBackend(t, func(t *testing.T, path string) {
		ctx := t.Context()
		e := newEnv(t, path)
		e.tune.noAck = true // the first run leaves every row in the outboxes
		first := e.open(t)
		dids := testDIDs(12)
		h := newHistory()

		var cur atomic.Pointer[Sequencer]
		cur.Store(first)
		var progress atomic.Int64
		done := make(chan struct{})
		go func() {
			defer close(done)
			writeConcurrently(t, e, cur.Load, h, dids, 8, crashRecoveryOps, &progress)
		}()

		eventually(t, "writers make progress", func() bool { return progress.Load() >= 60 })
		// Some accounts are flushed, so the first run leaves sequenced but
		// unacknowledged rows as well as unsequenced ones.
		for _, did := range dids[:4] {
			if err := first.Flush(ctx, did); err != nil {
				t.Fatal(err)
			}
		}
		if err := first.Close(); err != nil {
			t.Fatal(err)
		}
		before := first.Stats().Events
		if before == 0 {
			t.Fatal("the first run sequenced nothing")
		}
		// Writes go on with no sequencer running. On a slow machine the
		// writers may have finished already; then there is nothing more to
		// wait for.
		at := progress.Load()
		want := min(at+20, 8*crashRecoveryOps)
		eventually(t, "writers go on without a sequencer", func() bool { return progress.Load() >= want })
		if at == 8*crashRecoveryOps {
			t.Log("the writers finished before the sequencer closed; no write happened without one")
		}

		e.tune.noAck = false
		e.tune.ackRows = 3
		second := e.open(t)
		cur.Store(second)
		if err := second.Recover(ctx, dids); err != nil {
			t.Fatal(err)
		}
		<-done
		if t.Failed() {
			return
		}
		if err := second.Recover(ctx, dids); err != nil {
			t.Fatal(err)
		}
		got := readLog(t, second)
		h.check(t, got)
		if int64(len(got)) <= before {
			t.Fatalf("the second run sequenced nothing (%d events, %d before)", len(got), before)
		}

		// A third run finds nothing left to do.
		if err := second.Close(); err != nil {
			t.Fatal(err)
		}
		third := e.open(t)
		if err := third.Recover(ctx, dids); err != nil {
			t.Fatal(err)
		}
		if st := third.Stats(); st.Events != 0 || st.Skipped != 0 {
			t.Fatalf("third run: %+v", st)
		}
		if n := len(readLog(t, third)); n != len(got) {
			t.Fatalf("log holds %d events after the third run, %d before", n, len(got))
		}
	})
}
