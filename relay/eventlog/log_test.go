package eventlog

import (
	"bytes"
	"context"
	"errors"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/welkin-atproto/welkin/atproto/stream"
	"github.com/welkin-atproto/welkin/atproto/syntax"
)

func TestAppendReadAcrossRolls(t *testing.T) {
	dir := t.TempDir()
	clock := newFakeClock()
	// Small segments: a few dozen records each, so that sealed segments
	// have several sparse index entries and the log many segments.
	l := openLog(t, Options{Dir: dir, SegmentSize: 4 << 10, Now: clock.Now})
	var next int64 = 1
	for i := range 60 {
		n := 1 + i%9
		if first := appendN(t, l, n); first != next {
			t.Fatalf("batch %d starts at seq %d, want %d", i, first, next)
		}
		next += int64(n)
		clock.Advance(time.Second)
	}
	last := next - 1
	st := l.Stats()
	if st.Segments < 4 || st.Rolls != int64(st.Segments-1) {
		t.Fatalf("Stats: %d segments, %d rolls; want several segments", st.Segments, st.Rolls)
	}
	if st.LatestSeq != last || st.WrittenSeq != last || st.OldestSeq != 1 || st.Events != last || st.Batches != 60 {
		t.Fatalf("Stats = %+v, want latest %d", st, last)
	}
	checkRange(t, l, 1, last)

	// Every page size, from every cursor, gives the same contiguous run.
	ctx := testCtx(t)
	for _, page := range []int{1, 2, 63, 64, 65, 200, 0} {
		for cursor := int64(0); cursor <= last; cursor += 17 {
			rs, err := l.Read(ctx, cursor, page)
			if err != nil {
				t.Fatal(err)
			}
			want := min(last-cursor, int64(page))
			if page == 0 {
				want = last - cursor
			}
			if int64(len(rs)) != want {
				t.Fatalf("Read(%d, %d): %d records, want %d", cursor, page, len(rs), want)
			}
			for i, r := range rs {
				checkRecord(t, r, cursor+1+int64(i))
			}
		}
	}
	// Times are those of the clock at each append, never decreasing.
	rs := readAll(t, l, 0, 1000)
	if !rs[0].Time.Equal(newFakeClock().Now()) {
		t.Fatalf("first record's time %v", rs[0].Time)
	}
	for i := 1; i < len(rs); i++ {
		if rs[i].Time.Before(rs[i-1].Time) {
			t.Fatalf("seq %d has a time before its predecessor's", rs[i].Seq)
		}
	}
	// Since agrees with Read.
	evs, err := l.Since(ctx, 10, 50)
	if err != nil || len(evs) != 50 {
		t.Fatalf("Since: %d events, %v", len(evs), err)
	}
	for i, ev := range evs {
		if ev.Seq != int64(11+i) || !bytes.Equal(ev.Frame, frameFor(ev.Seq)) {
			t.Fatalf("Since event %d: seq %d frame %q", i, ev.Seq, ev.Frame)
		}
	}
	// A negative cursor reads from the start.
	if evs, err := l.Since(ctx, -5, 2); err != nil || len(evs) != 2 || evs[0].Seq != 1 {
		t.Fatalf("Since(-5) = %v, %v", evs, err)
	}
	// Past the end: nothing.
	for _, c := range []int64{last, last + 1, MaxSeq, math.MaxInt64} {
		if evs, err := l.Since(ctx, c, 10); err != nil || len(evs) != 0 {
			t.Fatalf("Since(%d) = %d events, %v", c, len(evs), err)
		}
	}
}

func TestGetEverySeq(t *testing.T) {
	dir := t.TempDir()
	l := openLog(t, Options{Dir: dir, SegmentSize: 8 << 10})
	const total = 700
	for range total / 7 {
		appendN(t, l, 7)
	}
	check := func(l *Log) {
		t.Helper()
		ctx := testCtx(t)
		for seq := int64(1); seq <= total; seq++ {
			r, err := l.Get(ctx, seq)
			if err != nil {
				t.Fatalf("Get(%d): %v", seq, err)
			}
			checkRecord(t, r, seq)
		}
		for _, seq := range []int64{-1, 0, total + 1, MaxSeq + 1} {
			if _, err := l.Get(ctx, seq); !errors.Is(err, ErrNotFound) {
				t.Fatalf("Get(%d) = %v, want ErrNotFound", seq, err)
			}
		}
	}
	// Active segment (full index) and sealed ones (sparse index).
	check(l)
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	// Sealed segments from their sidecars.
	l = openLog(t, Options{Dir: dir, SegmentSize: 8 << 10})
	check(l)
	l.Close()

	// Sidecars missing or damaged: rebuilt by scanning.
	idx, _ := filepath.Glob(filepath.Join(dir, "*"+idxExt))
	if len(idx) < 2 {
		t.Fatalf("%d sidecars, want several", len(idx))
	}
	os.Remove(idx[0])
	b, err := os.ReadFile(idx[1])
	if err != nil {
		t.Fatal(err)
	}
	b[len(b)/2] ^= 0x40
	os.WriteFile(idx[1], b, 0o644)
	l = openLog(t, Options{Dir: dir, SegmentSize: 8 << 10})
	check(l)
	l.Close()
	for _, p := range idx[:2] {
		if b2, err := os.ReadFile(p); err != nil {
			t.Fatalf("sidecar %s not rewritten: %v", p, err)
		} else if _, err := decodeSidecar(b2, mustSegFirst(t, p)); err != nil {
			t.Fatalf("rewritten sidecar %s: %v", p, err)
		}
	}
}

func mustSegFirst(t testing.TB, path string) int64 {
	t.Helper()
	first, ok := parseSegName(filepath.Base(path), idxExt)
	if !ok {
		first, ok = parseSegName(filepath.Base(path), segExt)
	}
	if !ok {
		t.Fatalf("bad file name %s", path)
	}
	return first
}

func TestReopenResumesSeq(t *testing.T) {
	dir := t.TempDir()
	var want int64
	for round := range 5 {
		l := openLog(t, Options{Dir: dir, SegmentSize: 2 << 10})
		if got, _ := l.LatestSeq(testCtx(t)); got != want {
			t.Fatalf("round %d: LatestSeq %d after reopen, want %d", round, got, want)
		}
		for range 10 {
			if first := appendN(t, l, 3); first != want+1 {
				t.Fatalf("round %d: batch starts at %d, want %d", round, first, want+1)
			}
			want += 3
		}
		checkRange(t, l, 1, want)
		// Alternate a clean close and a crash.
		if round%2 == 0 {
			if err := l.Close(); err != nil {
				t.Fatal(err)
			}
		} else {
			l.crash()
		}
	}
	l := openLog(t, Options{Dir: dir})
	checkRange(t, l, 1, want)
}

func TestFirstSeq(t *testing.T) {
	dir := t.TempDir()
	ctx := testCtx(t)
	l := openLog(t, Options{Dir: dir, FirstSeq: 5000})
	if got, _ := l.LatestSeq(ctx); got != 4999 {
		t.Fatalf("LatestSeq of an empty log = %d, want 4999", got)
	}
	if got, _ := l.OldestSeq(ctx); got != 0 {
		t.Fatalf("OldestSeq of an empty log = %d, want 0", got)
	}
	if evs, err := l.Since(ctx, 0, 10); err != nil || len(evs) != 0 {
		t.Fatalf("Since on an empty log: %v, %v", evs, err)
	}
	if first := appendN(t, l, 2); first != 5000 {
		t.Fatalf("first seq %d, want 5000", first)
	}
	l.Close()
	// FirstSeq is ignored once the log exists.
	l = openLog(t, Options{Dir: dir, FirstSeq: 9})
	checkRange(t, l, 5000, 5001)

	for _, bad := range []Options{
		{Dir: ""},
		{Dir: dir, FirstSeq: -1},
		{Dir: dir, FirstSeq: MaxSeq + 1},
		{Dir: dir, SegmentSize: MaxSegmentSize + 1},
		{Dir: dir, SegmentSize: -1},
		{Dir: dir, SyncInterval: -time.Second},
	} {
		if l, err := Open(bad); err == nil {
			l.Close()
			t.Errorf("Open(%+v) succeeded", bad)
		}
	}
}

func TestLocked(t *testing.T) {
	dir := t.TempDir()
	l := openLog(t, Options{Dir: dir})
	if l2, err := Open(Options{Dir: dir, Logger: quietLogger()}); !errors.Is(err, ErrLocked) {
		if err == nil {
			l2.Close()
		}
		t.Fatalf("second Open = %v, want ErrLocked", err)
	}
	l.Close()
	l2 := openLog(t, Options{Dir: dir})
	l2.Close()
}

func TestAppendErrors(t *testing.T) {
	dir := t.TempDir()
	l := openLog(t, Options{Dir: dir})
	appendN(t, l, 3)

	// A failing build writes nothing and uses no seq.
	boom := errors.New("boom")
	_, err := l.AppendBatch(5, func(i int, seq int64) ([]byte, syntax.DID, error) {
		if i == 3 {
			return nil, "", boom
		}
		return frameFor(seq), didFor(seq), nil
	})
	if !errors.Is(err, boom) || !strings.Contains(err.Error(), "seq 7") {
		t.Fatalf("AppendBatch with a failing build = %v", err)
	}
	// Oversized frames and DIDs are refused the same way.
	_, err = l.AppendBatch(1, func(int, int64) ([]byte, syntax.DID, error) {
		return make([]byte, stream.MaxFrameSize+1), "", nil
	})
	if err == nil || !strings.Contains(err.Error(), "exceeds") {
		t.Fatalf("oversized frame: %v", err)
	}
	_, err = l.AppendBatch(1, func(int, int64) ([]byte, syntax.DID, error) {
		return []byte("x"), syntax.DID("did:web:" + strings.Repeat("a", syntax.DIDMaxLength)), nil
	})
	if err == nil || !strings.Contains(err.Error(), "DID") {
		t.Fatalf("oversized DID: %v", err)
	}
	if _, err := l.AppendBatch(-1, build); err == nil {
		t.Fatal("negative batch size accepted")
	}
	if first, err := l.AppendBatch(0, build); first != 0 || err != nil {
		t.Fatalf("empty batch = %d, %v", first, err)
	}
	if first := appendN(t, l, 1); first != 4 {
		t.Fatalf("next seq %d, want 4", first)
	}
	checkRange(t, l, 1, 4)

	// A frame of exactly the maximum size goes through and reads back.
	big := bytes.Repeat([]byte{0xab}, stream.MaxFrameSize)
	if _, err := l.AppendBatch(1, func(int, int64) ([]byte, syntax.DID, error) { return big, "did:plc:big", nil }); err != nil {
		t.Fatal(err)
	}
	r, err := l.Get(testCtx(t), 5)
	if err != nil || !bytes.Equal(r.Frame, big) || r.DID != "did:plc:big" {
		t.Fatalf("Get of the largest frame: %d bytes, %v", len(r.Frame), err)
	}
}

func TestClosed(t *testing.T) {
	l := openLog(t, Options{Dir: t.TempDir()})
	appendN(t, l, 2)
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	if err := l.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	ctx := testCtx(t)
	if _, err := l.AppendBatch(1, build); !errors.Is(err, ErrClosed) {
		t.Fatalf("AppendBatch after Close: %v", err)
	}
	if _, err := l.Since(ctx, 0, 10); !errors.Is(err, ErrClosed) {
		t.Fatalf("Since after Close: %v", err)
	}
	if _, err := l.Since(ctx, 100, 10); !errors.Is(err, ErrClosed) {
		t.Fatalf("Since past the end after Close: %v", err)
	}
	if _, err := l.OldestSeq(ctx); !errors.Is(err, ErrClosed) {
		t.Fatalf("OldestSeq after Close: %v", err)
	}
	if _, err := l.LatestSeq(ctx); !errors.Is(err, ErrClosed) {
		t.Fatalf("LatestSeq after Close: %v", err)
	}
	if _, err := l.Prune(); err != nil && !errors.Is(err, ErrClosed) {
		t.Fatalf("Prune after Close: %v", err)
	}
	if err := l.Sync(); !errors.Is(err, ErrClosed) {
		t.Fatalf("Sync after Close: %v", err)
	}
	if _, err := l.Wait(ctx, 10); !errors.Is(err, ErrClosed) {
		t.Fatalf("Wait after Close: %v", err)
	}
	cctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := l.Since(cctx, 0, 1); !errors.Is(err, context.Canceled) {
		t.Fatalf("Since with a canceled context: %v", err)
	}
}

// TestMatchesMemLog checks the stream.Log semantics against the reference
// in-memory implementation: same events in, same answers out.
func TestMatchesMemLog(t *testing.T) {
	l := openLog(t, Options{Dir: t.TempDir(), SegmentSize: 3 << 10, FirstSeq: 40})
	mem := stream.NewMemLog(1 << 20)
	ctx := testCtx(t)
	for i := range 40 {
		first := appendN(t, l, 1+i%6)
		for seq := first; seq < first+int64(1+i%6); seq++ {
			if err := mem.Append(stream.Event{Seq: seq, Frame: frameFor(seq)}); err != nil {
				t.Fatal(err)
			}
		}
	}
	latest, _ := mem.LatestSeq(ctx)
	for cursor := int64(0); cursor <= latest+2; cursor += 3 {
		for _, limit := range []int{1, 5, 64, 500} {
			want, _ := mem.Since(ctx, cursor, limit)
			got, err := l.Since(ctx, cursor, limit)
			if err != nil {
				t.Fatal(err)
			}
			if len(got) != len(want) {
				t.Fatalf("Since(%d, %d): %d events, MemLog %d", cursor, limit, len(got), len(want))
			}
			for i := range got {
				if got[i].Seq != want[i].Seq || !bytes.Equal(got[i].Frame, want[i].Frame) {
					t.Fatalf("Since(%d, %d)[%d]: seq %d, MemLog %d", cursor, limit, i, got[i].Seq, want[i].Seq)
				}
			}
		}
	}
	mo, _ := mem.OldestSeq(ctx)
	lo, _ := l.OldestSeq(ctx)
	ml, _ := mem.LatestSeq(ctx)
	ll, _ := l.LatestSeq(ctx)
	if mo != lo || ml != ll {
		t.Fatalf("oldest/latest %d/%d, MemLog %d/%d", lo, ll, mo, ml)
	}
}

func TestSyncIntervalAndWait(t *testing.T) {
	l := openLog(t, Options{Dir: t.TempDir(), SyncInterval: 5 * time.Millisecond})
	ctx := testCtx(t)
	first := appendN(t, l, 10)
	// Wait returns once the timer's fsync has made the batch durable.
	d, err := l.Wait(ctx, first-1)
	if err != nil || d < first {
		t.Fatalf("Wait = %d, %v", d, err)
	}
	if d, err = l.Wait(ctx, first+8); err != nil || d != first+9 {
		t.Fatalf("Wait for the last of the batch = %d, %v", d, err)
	}
	checkRange(t, l, 1, 10)
	// Sync makes everything durable at once.
	appendN(t, l, 5)
	if err := l.Sync(); err != nil {
		t.Fatal(err)
	}
	if got, _ := l.LatestSeq(ctx); got != 15 {
		t.Fatalf("LatestSeq after Sync = %d", got)
	}
	// Wait ends with its context.
	cctx, cancel := context.WithTimeout(ctx, time.Millisecond)
	defer cancel()
	if _, err := l.Wait(cctx, 15); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Wait past the end = %v, want DeadlineExceeded", err)
	}
	// Wait ends with Close.
	done := make(chan error, 1)
	go func() {
		_, err := l.Wait(ctx, 15)
		done <- err
	}()
	l.Close()
	select {
	case err := <-done:
		if !errors.Is(err, ErrClosed) {
			t.Fatalf("Wait across Close = %v", err)
		}
	case <-ctx.Done():
		t.Fatal("Wait did not return after Close")
	}
}

func TestUnsyncedEventsInvisible(t *testing.T) {
	// With a long SyncInterval nothing is fsynced by the timer during the
	// test: written events must stay invisible to readers until Sync.
	l := openLog(t, Options{Dir: t.TempDir(), SyncInterval: time.Hour})
	ctx := testCtx(t)
	appendN(t, l, 3)
	if evs, _ := l.Since(ctx, 0, 10); len(evs) != 0 {
		t.Fatalf("%d unsynced events visible", len(evs))
	}
	if st := l.Stats(); st.WrittenSeq != 3 || st.LatestSeq != 0 {
		t.Fatalf("Stats = %+v", st)
	}
	if got, _ := l.OldestSeq(ctx); got != 0 {
		t.Fatalf("OldestSeq of unsynced events = %d", got)
	}
	if err := l.Sync(); err != nil {
		t.Fatal(err)
	}
	checkRange(t, l, 1, 3)
}
