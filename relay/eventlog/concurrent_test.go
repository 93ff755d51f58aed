package eventlog

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/http/httptest"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/welkin-atproto/welkin/atproto/stream"
	"github.com/welkin-atproto/welkin/atproto/syntax"
)

// TestConcurrentAppendersAndReaders runs appenders, tailing readers, random
// point readers and Stats callers together (under -race in CI): readers
// must see every event exactly once, in order, with its own frame, and
// never an event before it is durable.
func TestConcurrentAppendersAndReaders(t *testing.T) {
	for _, interval := range []time.Duration{0, time.Millisecond} {
		t.Run(fmt.Sprintf("SyncInterval=%v", interval), func(t *testing.T) {
			dir := t.TempDir()
			l := openLog(t, Options{Dir: dir, SegmentSize: 16 << 10, SyncInterval: interval})
			const appenders, batches, readers = 4, 60, 3
			var total atomic.Int64
			ctx := testCtx(t)
			var wg sync.WaitGroup
			errc := make(chan error, appenders+2*readers+1)
			for a := range appenders {
				wg.Add(1)
				go func() {
					defer wg.Done()
					rng := rand.New(rand.NewPCG(uint64(a), 1))
					for range batches {
						n := 1 + rng.IntN(6)
						first, err := l.AppendBatch(n, build)
						if err != nil {
							errc <- err
							return
						}
						if interval > 0 {
							if _, err := l.Wait(ctx, first+int64(n)-2); err != nil {
								errc <- err
								return
							}
						}
						total.Add(int64(n))
					}
				}()
			}
			appendDone := make(chan struct{})
			go func() { wg.Wait(); close(appendDone) }()

			var rwg sync.WaitGroup
			for r := range readers {
				// A tailing reader: Wait, then Since from where it is.
				rwg.Add(1)
				go func() {
					defer rwg.Done()
					var last int64
					page := 1 + r*50
					for {
						select {
						case <-appendDone:
							if last == total.Load() {
								return
							}
						default:
						}
						wctx, cancel := context.WithTimeout(ctx, 20*time.Millisecond)
						_, err := l.Wait(wctx, last)
						cancel()
						if err != nil && !errors.Is(err, context.DeadlineExceeded) {
							errc <- err
							return
						}
						evs, err := l.Since(ctx, last, page)
						if err != nil {
							errc <- err
							return
						}
						for _, ev := range evs {
							if ev.Seq != last+1 || !bytes.Equal(ev.Frame, frameFor(ev.Seq)) {
								errc <- fmt.Errorf("reader %d: got seq %d after %d", r, ev.Seq, last)
								return
							}
							last = ev.Seq
						}
					}
				}()
				// A point reader: Gets of random durable seqs, a few each
				// time the log moves.
				rwg.Add(1)
				go func() {
					defer rwg.Done()
					rng := rand.New(rand.NewPCG(uint64(r), 2))
					var seen int64
					for {
						latest, more, err := waitMore(ctx, l, seen, appendDone)
						if err != nil || !more {
							if err != nil {
								errc <- err
							}
							return
						}
						seen = latest
						for range 4 {
							seq := 1 + rng.Int64N(latest)
							rec, err := l.Get(ctx, seq)
							if err != nil {
								errc <- fmt.Errorf("Get(%d) with latest %d: %w", seq, latest, err)
								return
							}
							if !bytes.Equal(rec.Frame, frameFor(seq)) || rec.DID != didFor(seq) {
								errc <- fmt.Errorf("Get(%d): wrong record", seq)
								return
							}
						}
					}
				}()
			}
			rwg.Add(1)
			go func() {
				defer rwg.Done()
				var seen int64
				for {
					latest, more, err := waitMore(ctx, l, seen, appendDone)
					if err != nil || !more {
						if err != nil {
							errc <- err
						}
						return
					}
					seen = latest
					st := l.Stats()
					if st.LatestSeq > st.WrittenSeq || st.LatestSeq < latest {
						errc <- fmt.Errorf("Stats: durable seq %d, written %d, after Wait gave %d", st.LatestSeq, st.WrittenSeq, latest)
						return
					}
					if _, err := l.OldestSeq(ctx); err != nil {
						errc <- err
						return
					}
				}
			}()
			rwg.Wait()
			close(errc)
			for err := range errc {
				t.Fatal(err)
			}
			n := total.Load()
			if n < appenders*batches {
				t.Fatalf("appended %d events", n)
			}
			if err := l.Sync(); err != nil {
				t.Fatal(err)
			}
			checkRange(t, l, 1, n)
			if st := l.Stats(); interval == 0 && st.Syncs > st.Batches+st.Rolls {
				t.Errorf("%d fsyncs for %d batches", st.Syncs, st.Batches)
			}
		})
	}
}

// waitMore waits until the log's durable seq passes seen and returns it,
// with more false once done is closed and the log has stopped moving.
func waitMore(ctx context.Context, l *Log, seen int64, done <-chan struct{}) (int64, bool, error) {
	for {
		wctx, cancel := context.WithTimeout(ctx, 20*time.Millisecond)
		latest, err := l.Wait(wctx, seen)
		cancel()
		switch {
		case err == nil:
			return latest, true, nil
		case !errors.Is(err, context.DeadlineExceeded) || ctx.Err() != nil:
			return 0, false, err
		}
		select {
		case <-done:
			return 0, false, nil
		default:
		}
	}
}

// TestConcurrentPrune deletes segments while readers read them: a read
// either gets whole, correct records or starts at the new oldest event.
func TestConcurrentPrune(t *testing.T) {
	clock := newFakeClock()
	l := openLog(t, Options{Dir: t.TempDir(), SegmentSize: 2 << 10, Retention: time.Hour, Now: clock.Now})
	ctx := testCtx(t)
	stop := make(chan struct{})
	var wg sync.WaitGroup
	errc := make(chan error, 8)
	for r := range 3 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rng := rand.New(rand.NewPCG(uint64(r), 3))
			var seen int64
			for {
				latest, more, err := waitMore(ctx, l, seen, stop)
				if err != nil || !more {
					if err != nil {
						errc <- err
					}
					return
				}
				seen = latest
				cursor := rng.Int64N(latest + 1)
				rs, err := l.Read(ctx, cursor, 1+rng.IntN(200))
				if err != nil {
					errc <- err
					return
				}
				for i, rec := range rs {
					if (i > 0 && rec.Seq != rs[i-1].Seq+1) || rec.Seq <= cursor || !bytes.Equal(rec.Frame, frameFor(rec.Seq)) {
						errc <- fmt.Errorf("Read(%d): record %d has seq %d", cursor, i, rec.Seq)
						return
					}
				}
			}
		}()
	}
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			select {
			case <-stop:
				return
			default:
			}
			if _, err := l.Prune(); err != nil {
				errc <- err
				return
			}
			runtime.Gosched()
		}
	}()
	for range 300 {
		appendN(t, l, 3)
		clock.Advance(time.Minute)
	}
	close(stop)
	wg.Wait()
	close(errc)
	for err := range errc {
		t.Fatal(err)
	}
	if st := l.Stats(); st.PrunedSegments == 0 {
		t.Fatalf("nothing pruned: %+v", st)
	}
}

func TestBackgroundPrune(t *testing.T) {
	clock := newFakeClock()
	dir := t.TempDir()
	l := openLog(t, Options{Dir: dir, SegmentSize: 1 << 10, Retention: time.Hour, PruneInterval: time.Millisecond, Now: clock.Now})
	for range 5 {
		appendN(t, l, 40)
	}
	clock.Advance(2 * time.Hour)
	deadline := time.Now().Add(testTimeout)
	for l.Stats().PrunedSegments < 4 {
		if time.Now().After(deadline) {
			t.Fatalf("background pruning did not happen: %+v", l.Stats())
		}
		time.Sleep(time.Millisecond)
	}
	if n := len(segFiles(t, dir)); n != 1 {
		t.Fatalf("%d segment files left", n)
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
}

// TestServesSubscribeRepos serves a stream.Server from the log: consumers
// with a cursor replay from the files, page by page, then continue live,
// with no gap and no duplicate.
func TestServesSubscribeRepos(t *testing.T) {
	l := openLog(t, Options{Dir: t.TempDir(), SegmentSize: 4 << 10})
	srv := stream.NewServer(l, &stream.ServerOptions{BackfillPage: 7})
	hs := httptest.NewServer(srv)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
		defer cancel()
		srv.Shutdown(ctx)
		hs.Close()
	})
	url := "ws" + strings.TrimPrefix(hs.URL, "http")
	publish := func(n int) {
		t.Helper()
		var frames []stream.Event
		first, err := l.AppendBatch(n, func(_ int, seq int64) ([]byte, syntax.DID, error) {
			f, err := stream.EncodeFrame("#identity", map[string]any{
				"seq": seq, "did": "did:plc:a", "time": "2026-03-01T12:00:00.000Z"})
			frames = append(frames, stream.Event{Seq: seq, Frame: f})
			return f, "did:plc:a", err
		})
		if err != nil {
			t.Fatal(err)
		}
		for i, ev := range frames {
			if ev.Seq != first+int64(i) {
				t.Fatalf("frame %d has seq %d", i, ev.Seq)
			}
			srv.Publish(ev)
		}
	}
	for range 30 {
		publish(5)
	}
	latest := int64(150)
	for _, cursor := range []int64{0, 1, 73, 149, 150} {
		latest += 10
		target := latest
		ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
		var got []int64
		done := make(chan struct{})
		errDone := errors.New("done")
		handler := func(_ context.Context, m stream.Message) error {
			got = append(got, m.Seq)
			if m.Seq == target {
				close(done)
				return errDone
			}
			return nil
		}
		errc := make(chan error, 1)
		go func() {
			errc <- stream.Subscribe(ctx, url, cursor, handler, &stream.SubscribeOptions{MinBackoff: time.Millisecond})
		}()
		publish(10) // live, or replayed if the consumer connects later
		select {
		case <-done:
		case <-ctx.Done():
			t.Fatalf("cursor %d: timed out after %d events", cursor, len(got))
		}
		if err := <-errc; !errors.Is(err, errDone) {
			t.Fatalf("cursor %d: Subscribe = %v", cursor, err)
		}
		cancel()
		if int64(len(got)) != target-cursor || got[0] != cursor+1 {
			t.Fatalf("cursor %d: %d events from %v, want %d..%d", cursor, len(got), got[:1], cursor+1, target)
		}
		for i := 1; i < len(got); i++ {
			if got[i] != got[i-1]+1 {
				t.Fatalf("cursor %d: seq %d after %d", cursor, got[i], got[i-1])
			}
		}
	}
}
