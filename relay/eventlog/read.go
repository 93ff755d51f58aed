package eventlog

import (
	"context"
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"sort"
	"time"

	"github.com/welkin-atproto/welkin/atproto/stream"
	"github.com/welkin-atproto/welkin/atproto/syntax"
)

// Record is one event as the log holds it.
type Record struct {
	Seq int64
	// Time is when the event was appended (Options.Now), to the
	// microsecond. Times never decrease along the log.
	Time time.Time
	// DID is the account the event is about, as given to AppendBatch;
	// empty if none.
	DID syntax.DID
	// Frame is the encoded event frame. It belongs to the caller.
	Frame []byte
}

// Since implements stream.Log: it returns up to limit durable events with
// seq above cursor, in seq order, starting at the oldest retained event
// when cursor is older than that. limit <= 0 or above MaxSinceLimit means
// MaxSinceLimit. A result shorter than that bound means there are no more
// durable events after it, so callers can page until a short page.
func (l *Log) Since(ctx context.Context, cursor int64, limit int) ([]stream.Event, error) {
	var out []stream.Event
	err := l.visit(ctx, cursor, limit, func(n int) { out = make([]stream.Event, 0, n) },
		func(r *rec) { out = append(out, stream.Event{Seq: r.seq, Frame: r.frame}) })
	if err != nil {
		return nil, err
	}
	return out, nil
}

// Read is Since returning whole records: the frame with its time and DID.
func (l *Log) Read(ctx context.Context, cursor int64, limit int) ([]Record, error) {
	var out []Record
	err := l.visit(ctx, cursor, limit, func(n int) { out = make([]Record, 0, n) },
		func(r *rec) {
			out = append(out, Record{
				Seq:   r.seq,
				Time:  time.UnixMicro(r.micros),
				DID:   syntax.DID(r.did),
				Frame: r.frame,
			})
		})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// Get returns the record of one seq, found through the index. It returns
// an error wrapping ErrNotFound when seq is not retained or not yet
// durable.
func (l *Log) Get(ctx context.Context, seq int64) (Record, error) {
	if seq < 1 || seq > MaxSeq {
		return Record{}, fmt.Errorf("%w: seq %d is outside 1..%d", ErrNotFound, seq, int64(MaxSeq))
	}
	rs, err := l.Read(ctx, seq-1, 1)
	if err != nil {
		return Record{}, err
	}
	if len(rs) == 0 || rs[0].Seq != seq {
		return Record{}, fmt.Errorf("%w: seq %d", ErrNotFound, seq)
	}
	return rs[0], nil
}

// ErrNotFound is wrapped by Get's error for a seq the log does not hold.
var ErrNotFound = errors.New("eventlog: no such event")

// OldestSeq implements stream.Log: the seq of the oldest retained durable
// event, 0 if there is none.
func (l *Log) OldestSeq(ctx context.Context) (int64, error) {
	if err := ctx.Err(); err != nil {
		return 0, err
	}
	l.mu.RLock()
	defer l.mu.RUnlock()
	if l.rclosed {
		return 0, ErrClosed
	}
	return l.oldestLocked(), nil
}

// LatestSeq implements stream.Log: the highest durable seq, even when
// retention has deleted that event. A new log opened with Options.FirstSeq
// reports FirstSeq-1, so that consumers holding cursors from a lost log
// below FirstSeq are replayed from the start instead of told their cursor
// is in the future.
func (l *Log) LatestSeq(ctx context.Context) (int64, error) {
	if err := ctx.Err(); err != nil {
		return 0, err
	}
	l.mu.RLock()
	closed := l.rclosed
	l.mu.RUnlock()
	if closed {
		return 0, ErrClosed
	}
	return l.durable.Load(), nil
}

// oldestLocked returns the first seq of the oldest segment when that event
// is durable, else 0. The caller holds mu. Only the active segment can be
// empty, and it is the last one, so the oldest segment holds the oldest
// event whenever the log holds any.
func (l *Log) oldestLocked() int64 {
	if len(l.segs) == 0 {
		return 0
	}
	s := l.segs[0]
	if s.empty() || s.first > l.durable.Load() {
		return 0
	}
	return s.first
}

// span is the part of one segment a read needs: the bytes [off, end),
// whose first record has seq seq, holding the wanted seqs from..to.
type span struct {
	seg      *segment
	off, end int64
	seq      int64
	from, to int64
}

// plan finds where the durable seqs from..to (at most limit of them, the
// range moved up to the oldest retained seq) lie, and takes a reference on
// each segment involved, which the caller releases.
func (l *Log) plan(from, durable int64, limit int) ([]span, error) {
	l.mu.RLock()
	defer l.mu.RUnlock()
	if l.rclosed {
		return nil, ErrClosed
	}
	segs := l.segs
	if len(segs) == 0 {
		return nil, nil
	}
	from = max(from, segs[0].first)
	to := min(durable, from+int64(limit)-1)
	if from > to {
		return nil, nil
	}
	// The last segment starting at or before from.
	i := sort.Search(len(segs), func(i int) bool { return segs[i].first > from }) - 1
	var spans []span
	for ; i < len(segs) && segs[i].first <= to; i++ {
		s := segs[i]
		if s.empty() || s.last < from {
			continue
		}
		a, b := max(from, s.first), min(to, s.last)
		off, seq := s.startOf(a)
		s.acquire()
		spans = append(spans, span{seg: s, off: off, end: s.endOf(b), seq: seq, from: a, to: b})
	}
	return spans, nil
}

// visit calls each for every durable record with seq above cursor, up to
// limit of them, after calling size with how many there will be. The
// records alias buffers that belong to the caller from then on.
func (l *Log) visit(ctx context.Context, cursor int64, limit int, size func(int), each func(*rec)) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if limit <= 0 || limit > MaxSinceLimit {
		limit = MaxSinceLimit
	}
	durable := l.durable.Load()
	if cursor >= durable {
		l.mu.RLock()
		closed := l.rclosed
		l.mu.RUnlock()
		if closed {
			return ErrClosed
		}
		size(0)
		return nil
	}
	spans, err := l.plan(max(cursor, 0)+1, durable, limit)
	defer func() {
		for _, sp := range spans {
			sp.seg.release()
		}
	}()
	if err != nil {
		return err
	}
	n := 0
	for _, sp := range spans {
		n += int(sp.to - sp.from + 1)
	}
	size(n)
	for _, sp := range spans {
		if err := ctx.Err(); err != nil {
			return err
		}
		if err := readSpan(&sp, each); err != nil {
			return err
		}
	}
	return nil
}

// readSpan reads one span and passes on its wanted records, checking that
// each is whole and has the seq the index promises.
func readSpan(sp *span, each func(*rec)) error {
	s := sp.seg
	name := filepath.Base(s.path)
	buf := make([]byte, sp.end-sp.off)
	if n, err := s.r.ReadAt(buf, sp.off); n < len(buf) {
		if err == nil || errors.Is(err, io.EOF) {
			err = io.ErrUnexpectedEOF
		}
		return fmt.Errorf("%w: segment %s: reading %d bytes at offset %d: %v", ErrCorrupt, name, len(buf), sp.off, err)
	}
	p, off := buf, sp.off
	for seq := sp.seq; seq <= sp.to; seq++ {
		r, n, err := decodeRecord(p)
		if err != nil {
			return fmt.Errorf("%w: segment %s: record of seq %d at offset %d: %v", ErrCorrupt, name, seq, off, err)
		}
		if r.seq != seq {
			return fmt.Errorf("%w: segment %s: record at offset %d has seq %d, want %d", ErrCorrupt, name, off, r.seq, seq)
		}
		if seq >= sp.from {
			each(&r)
		}
		p, off = p[n:], off+int64(n)
	}
	return nil
}
