package eventlog

import (
	"context"
	"sort"
	"time"
)

// SeekTime returns the cursor from which Read (or Since) yields the
// retained events whose time is at or after t: the seq before the first
// of them. When t is at or before the oldest retained event's time, that
// is the seq before the oldest event; when every durable event is older
// than t, it is the latest durable seq, so that a reader starting there
// sees only events appended later.
//
// The segments' time bounds and sparse index narrow the search to one
// stretch of at most indexStride records, which is then read.
func (l *Log) SeekTime(ctx context.Context, t time.Time) (int64, error) {
	if err := ctx.Err(); err != nil {
		return 0, err
	}
	micros := t.UnixMicro()
	durable := l.durable.Load()
	start, direct, err := l.seekIndex(micros, durable)
	if err != nil || direct {
		return start, err
	}
	rs, err := l.Read(ctx, start, indexStride)
	if err != nil {
		return 0, err
	}
	for _, r := range rs {
		if r.Time.UnixMicro() >= micros {
			return r.Seq - 1, nil
		}
	}
	if len(rs) > 0 {
		return rs[len(rs)-1].Seq, nil
	}
	return max(start, durable), nil
}

// seekIndex looks up micros in the index. When direct is true, cursor is
// the answer; otherwise the first event at or after micros is one of the
// indexStride events after cursor (or the log changed meanwhile).
func (l *Log) seekIndex(micros, durable int64) (cursor int64, direct bool, err error) {
	l.mu.RLock()
	defer l.mu.RUnlock()
	if l.rclosed {
		return 0, false, ErrClosed
	}
	segs := l.segs
	if n := len(segs); n > 0 && segs[n-1].empty() {
		segs = segs[:n-1] // only the active segment can be empty
	}
	// The first segment that ends at or after micros: times never
	// decrease along the log, so this predicate is monotonic.
	i := sort.Search(len(segs), func(i int) bool { return segs[i].lastMicros >= micros })
	if i == len(segs) {
		return durable, true, nil
	}
	s := segs[i]
	k := sort.Search(len(s.sparseMicros), func(k int) bool { return s.sparseMicros[k] >= micros })
	if k == 0 {
		// The segment's first event is the one (the segment before it
		// ends before micros).
		return min(s.first-1, durable), true, nil
	}
	// Entry k-1 is before micros, entry k (if any) at or after it.
	return s.first + int64(k-1)*indexStride, false, nil
}
