package relay

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"sync"
	"testing"

	"github.com/welkin-atproto/welkin/atproto/stream"
	"github.com/welkin-atproto/welkin/atproto/syntax"
	"github.com/welkin-atproto/welkin/relay/eventlog"
)

// TestSequencer submits events from many goroutines, some failing to
// encode: the others get distinct seqs, are published once each in seq
// order, and the log holds exactly them.
func TestSequencer(t *testing.T) {
	l, err := eventlog.Open(eventlog.Options{Dir: t.TempDir(), Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	var (
		mu        sync.Mutex
		published []int64
	)
	seq := newSequencer(l, func(ev stream.Event) {
		mu.Lock()
		published = append(published, ev.Seq)
		mu.Unlock()
	}, nil, nil)
	const workers, each = 8, 40
	var (
		wg    sync.WaitGroup
		seqMu sync.Mutex
		seen  = map[int64]bool{}
		fails int
	)
	for w := range workers {
		wg.Go(func() {
			for i := range each {
				bad := i%10 == 9
				did := syntax.DID(fmt.Sprintf("did:plc:w%d", w))
				s, err := seq.submit(context.Background(), did, nil, func(s int64) ([]byte, error) {
					if bad {
						return nil, errors.New("cannot encode")
					}
					return stream.EncodeFrame("#info", map[string]any{"seq": s})
				})
				seqMu.Lock()
				if bad {
					if err == nil {
						t.Errorf("a failing encode got seq %d", s)
					}
					fails++
				} else if err != nil {
					t.Errorf("submit: %v", err)
				} else if seen[s] {
					t.Errorf("seq %d given twice", s)
				} else {
					seen[s] = true
				}
				seqMu.Unlock()
			}
		})
	}
	wg.Wait()
	seq.close()
	want := workers*each - fails
	if len(published) != want || len(seen) != want {
		t.Fatalf("published %d, seqs %d, want %d", len(published), len(seen), want)
	}
	for i, s := range published {
		if s != int64(i+1) {
			t.Fatalf("published[%d] = seq %d", i, s)
		}
	}
	if last, _ := l.LatestSeq(context.Background()); last != int64(want) {
		t.Fatalf("log ends at %d, want %d", last, want)
	}
	if _, err := seq.submit(context.Background(), "", nil, nil); !errors.Is(err, errSequencerClosed) {
		t.Fatalf("submit after close: %v", err)
	}
}
