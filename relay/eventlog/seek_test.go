package eventlog

import (
	"testing"
	"time"
)

// TestSpanSpacesTimes checks that Options.Span spaces event times: each
// event's time is at least its predecessor's plus the predecessor's span,
// within a batch, across batches and across a reopen, even with a clock
// that does not move.
func TestSpanSpacesTimes(t *testing.T) {
	dir := t.TempDir()
	clock := newFakeClock()
	span := func(frame []byte) int { return len(frame) % 4 } // 0..3
	opts := Options{Dir: dir, Now: clock.Now, Span: span, SegmentSize: 2048}
	l := openLog(t, opts)
	for range 20 {
		appendN(t, l, 7)
	}
	clock.Advance(time.Second)
	appendN(t, l, 3)
	check := func(rs []Record) {
		t.Helper()
		for i := 1; i < len(rs); i++ {
			prev, cur := rs[i-1], rs[i]
			want := prev.Time.UnixMicro() + int64(span(prev.Frame))
			if cur.Time.UnixMicro() < want {
				t.Fatalf("seq %d at %d, want at least %d (seq %d at %d, span %d)",
					cur.Seq, cur.Time.UnixMicro(), want, prev.Seq, prev.Time.UnixMicro(), span(prev.Frame))
			}
		}
	}
	rs := readAll(t, l, 0, 50)
	if len(rs) != 143 {
		t.Fatalf("read %d events, want 143", len(rs))
	}
	check(rs)
	if got, want := rs[len(rs)-3].Time, clock.Now(); !got.Equal(want) {
		t.Fatalf("the first event after the clock moved is at %v, want %v", got, want)
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	l = openLog(t, opts)
	appendN(t, l, 5)
	check(readAll(t, l, 0, 50))
}

// TestNoSpanSharesBatchTime checks the default: the events of one batch
// share one time.
func TestNoSpanSharesBatchTime(t *testing.T) {
	l := openLog(t, Options{Dir: t.TempDir(), Now: newFakeClock().Now})
	appendN(t, l, 4)
	rs := readAll(t, l, 0, 10)
	for _, r := range rs[1:] {
		if !r.Time.Equal(rs[0].Time) {
			t.Fatalf("seq %d at %v, seq 1 at %v", r.Seq, r.Time, rs[0].Time)
		}
	}
}

// TestSeekTime checks SeekTime against a linear search over every event,
// for times before, between, at and after the events', across sealed and
// active segments, and after pruning.
func TestSeekTime(t *testing.T) {
	clock := newFakeClock()
	l := openLog(t, Options{Dir: t.TempDir(), Now: clock.Now, SegmentSize: 4096,
		Span: func([]byte) int { return 1 }, Retention: time.Hour})
	ctx := testCtx(t)
	if got, err := l.SeekTime(ctx, clock.Now()); err != nil || got != 0 {
		t.Fatalf("SeekTime on an empty log = %d, %v; want 0", got, err)
	}
	for i := range 60 {
		appendN(t, l, 1+i%9)
		clock.Advance(time.Duration(i%4) * time.Millisecond)
	}
	check := func() {
		t.Helper()
		rs := readAll(t, l, 0, 100)
		latest, _ := l.LatestSeq(ctx)
		probe := []int64{rs[0].Time.UnixMicro() - 1000, rs[len(rs)-1].Time.UnixMicro() + 1}
		for _, r := range rs {
			m := r.Time.UnixMicro()
			probe = append(probe, m-1, m, m+1)
		}
		for _, p := range probe {
			want := latest
			for _, r := range rs {
				if r.Time.UnixMicro() >= p {
					want = r.Seq - 1
					break
				}
			}
			got, err := l.SeekTime(ctx, time.UnixMicro(p))
			if err != nil || got != want {
				t.Fatalf("SeekTime(%d) = %d, %v; want %d", p, got, err, want)
			}
		}
	}
	check()
	if len(segFiles(t, l.opts.Dir)) < 3 {
		t.Fatalf("want several segments, have %d", len(segFiles(t, l.opts.Dir)))
	}
	clock.Advance(time.Hour - 50*time.Millisecond)
	if n, err := l.Prune(); err != nil || n == 0 {
		t.Fatalf("Prune = %d, %v; want some segments deleted", n, err)
	}
	check()
	l.Close()
	if _, err := l.SeekTime(ctx, clock.Now()); err == nil {
		t.Fatal("SeekTime on a closed log succeeded")
	}
}
