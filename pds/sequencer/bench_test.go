package sequencer

import (
	"context"
	"fmt"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/welkin-atproto/welkin/atproto/repo"
	"github.com/welkin-atproto/welkin/atproto/stream"
	"github.com/welkin-atproto/welkin/atproto/syntax"
)

// BenchmarkSequencer is the whole write path with W concurrent writers,
// each on its own account: a commit and its event stored in the account's
// database (one fsync), Notify, and the sequencer's group commit into the
// log. It reports events per second and events per log transaction.
func BenchmarkSequencer(b *testing.B) {
	for _, writers := range []int{1, 16, 64} {
		b.Run(fmt.Sprintf("writers=%d", writers), func(b *testing.B) {
			e := newEnv(b, filepath.Join(b.TempDir(), "log.sqlite"))
			e.tune = defaultTuning
			e.opts.Publish = func(stream.Event) {}
			s := e.open(b)
			ctx := context.Background()
			dids := make([]syntax.DID, writers)
			for i := range dids {
				dids[i] = testDID(i)
				e.accts.store(b, dids[i])
			}
			clock := repo.NewRevClock(5)
			var (
				wg   sync.WaitGroup
				next = make(chan struct{}, 1024)
			)
			start := s.Stats()
			b.ResetTimer()
			t0 := time.Now()
			go func() {
				for range b.N {
					next <- struct{}{}
				}
				close(next)
			}()
			for _, did := range dids {
				st := e.accts.store(b, did)
				wg.Go(func() {
					for range next {
						if _, err := writeCommit(ctx, st, clock, nil); err != nil {
							b.Error(err)
							return
						}
						s.Notify(did)
					}
				})
			}
			wg.Wait()
			for _, did := range dids {
				if err := s.Flush(ctx, did); err != nil {
					b.Fatal(err)
				}
			}
			elapsed := time.Since(t0)
			b.StopTimer()
			st := s.Stats()
			events, batches := st.Events-start.Events, st.Batches-start.Batches
			if events != int64(b.N) {
				b.Fatalf("sequenced %d events for %d writes", events, b.N)
			}
			b.ReportMetric(float64(events)/elapsed.Seconds(), "events/s")
			if batches > 0 {
				b.ReportMetric(float64(events)/float64(batches), "events/batch")
			}
		})
	}
}

// BenchmarkSequencerDrain is the sequencer alone: outboxes filled
// beforehand are drained into the log by Recover.
func BenchmarkSequencerDrain(b *testing.B) {
	const accounts = 64
	e := newEnv(b, filepath.Join(b.TempDir(), "log.sqlite"))
	e.tune = defaultTuning
	e.tune.noAck = true
	e.opts.Publish = func(stream.Event) {}
	dids := testDIDs(accounts)
	clock := repo.NewRevClock(6)
	for i := range b.N {
		if _, err := writeCommit(context.Background(), e.accts.store(b, dids[i%accounts]), clock, nil); err != nil {
			b.Fatal(err)
		}
	}
	s := e.open(b)
	b.ResetTimer()
	t0 := time.Now()
	if err := s.Recover(context.Background(), dids); err != nil {
		b.Fatal(err)
	}
	elapsed := time.Since(t0)
	b.StopTimer()
	st := s.Stats()
	if st.Events != int64(b.N) {
		b.Fatalf("sequenced %d events for %d rows", st.Events, b.N)
	}
	b.ReportMetric(float64(b.N)/elapsed.Seconds(), "events/s")
	if st.Batches > 0 {
		b.ReportMetric(float64(st.Events)/float64(st.Batches), "events/batch")
	}
}
