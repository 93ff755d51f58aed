package eventlog

import (
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// hourlyLog writes one batch per hour, each batch larger than a segment,
// so that segment k holds batch k and its events all have time T0+k hours.
// It returns the log, its clock, and the first seq of each batch.
func hourlyLog(t *testing.T, dir string, retention time.Duration, batches int) (*Log, *fakeClock, []int64) {
	t.Helper()
	clock := newFakeClock()
	l := openLog(t, Options{Dir: dir, SegmentSize: 1 << 10, Retention: retention, Now: clock.Now})
	var firsts []int64
	for range batches {
		firsts = append(firsts, appendN(t, l, 40))
		clock.Advance(time.Hour)
	}
	if n := len(segFiles(t, dir)); n != batches {
		t.Fatalf("%d segments for %d batches", n, batches)
	}
	return l, clock, firsts
}

func TestPruneRetention(t *testing.T) {
	dir := t.TempDir()
	// Batches at T0 .. T0+5h; the clock is now T0+6h.
	l, clock, firsts := hourlyLog(t, dir, 3*time.Hour+30*time.Minute, 6)
	latest := firsts[5] + 39
	ctx := testCtx(t)

	// Cutoff T0+2h30m: the segments of T0, T0+1h and T0+2h go.
	n, err := l.Prune()
	if err != nil || n != 3 {
		t.Fatalf("Prune = %d, %v; want 3 segments", n, err)
	}
	checkRange(t, l, firsts[3], latest)
	if files := segFiles(t, dir); len(files) != 3 || filepath.Base(files[0]) != segNameOf(firsts[3]) {
		t.Fatalf("segment files after Prune: %v", files)
	}
	if idx, _ := filepath.Glob(filepath.Join(dir, "*"+idxExt)); len(idx) != 2 {
		t.Fatalf("sidecars after Prune: %v", idx)
	}
	// A pruned seq is gone; a cursor below the window starts at its
	// oldest event, as stream.Log wants.
	if _, err := l.Get(ctx, firsts[2]); !errors.Is(err, ErrNotFound) {
		t.Fatalf("Get of a pruned seq = %v", err)
	}
	evs, err := l.Since(ctx, 5, 3)
	if err != nil || len(evs) != 3 || evs[0].Seq != firsts[3] {
		t.Fatalf("Since(5) after Prune = %v, %v", evs, err)
	}
	if st := l.Stats(); st.PrunedSegments != 3 || st.Segments != 3 || st.OldestSeq != firsts[3] {
		t.Fatalf("Stats = %+v", st)
	}

	// Nothing more is due yet.
	if n, err := l.Prune(); n != 0 || err != nil {
		t.Fatalf("second Prune = %d, %v", n, err)
	}

	// Far in the future every sealed segment goes, but never the active
	// one: LatestSeq and the next seq stay.
	clock.Advance(100 * time.Hour)
	if n, err := l.Prune(); n != 2 || err != nil {
		t.Fatalf("Prune of all sealed segments = %d, %v", n, err)
	}
	checkRange(t, l, firsts[5], latest)
	if first := appendN(t, l, 40); first != latest+1 {
		t.Fatalf("next seq after pruning %d, want %d", first, latest+1)
	}
	l.Close()

	// The pruned log reopens with the same window and seqs.
	l = openLog(t, Options{Dir: dir})
	checkRange(t, l, firsts[5], latest+40)
	if first := appendN(t, l, 1); first != latest+41 {
		t.Fatalf("next seq after reopening %d, want %d", first, latest+41)
	}
}

func TestPruneKeepsLatestWhenEmpty(t *testing.T) {
	// An empty active segment after pruning (a crash right after a roll)
	// still reports the latest seq, and OldestSeq 0.
	dir := t.TempDir()
	l, _, firsts := hourlyLog(t, dir, -1, 3)
	latest := firsts[2] + 39
	l.Close()
	if err := os.WriteFile(filepath.Join(dir, segNameOf(latest+1)), segHeader(latest+1), 0o644); err != nil {
		t.Fatal(err)
	}
	clock := newFakeClock()
	clock.Advance(1000 * time.Hour)
	l = openLog(t, Options{Dir: dir, Retention: time.Hour, Now: clock.Now})
	if n, err := l.Prune(); n != 3 || err != nil {
		t.Fatalf("Prune = %d, %v", n, err)
	}
	ctx := testCtx(t)
	if got, _ := l.LatestSeq(ctx); got != latest {
		t.Fatalf("LatestSeq = %d, want %d", got, latest)
	}
	if got, _ := l.OldestSeq(ctx); got != 0 {
		t.Fatalf("OldestSeq = %d, want 0", got)
	}
	if evs, err := l.Since(ctx, 0, 10); err != nil || len(evs) != 0 {
		t.Fatalf("Since = %v, %v", evs, err)
	}
	if first := appendN(t, l, 1); first != latest+1 {
		t.Fatalf("next seq %d, want %d", first, latest+1)
	}
	checkRange(t, l, latest+1, latest+1)
}

func TestPruneDisabled(t *testing.T) {
	dir := t.TempDir()
	l, clock, firsts := hourlyLog(t, dir, -1, 4)
	clock.Advance(10000 * time.Hour)
	if n, err := l.Prune(); n != 0 || err != nil {
		t.Fatalf("Prune with retention off = %d, %v", n, err)
	}
	checkRange(t, l, 1, firsts[3]+39)
}

func TestPruneStopsAtFailure(t *testing.T) {
	// A segment that cannot be deleted stops Prune there, so the files
	// left stay a contiguous run.
	dir := t.TempDir()
	l, _, firsts := hourlyLog(t, dir, time.Minute, 4)
	// Replace the second segment with a non-empty directory: os.Remove
	// fails on it.
	second := filepath.Join(dir, segNameOf(firsts[1]))
	os.Remove(second)
	if err := os.MkdirAll(filepath.Join(second, "x"), 0o755); err != nil {
		t.Fatal(err)
	}
	n, err := l.Prune()
	if n != 1 || err == nil {
		t.Fatalf("Prune = %d, %v; want 1 and an error", n, err)
	}
	if _, err := os.Stat(filepath.Join(dir, segNameOf(firsts[2]))); err != nil {
		t.Fatalf("segment after the failure deleted: %v", err)
	}
	// The in-memory window moved on regardless.
	checkRange(t, l, firsts[3], firsts[3]+39)
}
