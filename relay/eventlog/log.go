package eventlog

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/welkin-atproto/welkin/atproto/stream"
	"github.com/welkin-atproto/welkin/atproto/syntax"
)

const (
	// DefaultSegmentSize is Options.SegmentSize when zero.
	DefaultSegmentSize = 64 << 20
	// MaxSegmentSize bounds Options.SegmentSize (index offsets are 32-bit).
	MaxSegmentSize = 1 << 30
	// MaxBatchBytes bounds the encoded size of one AppendBatch.
	MaxBatchBytes = 1 << 30
	// DefaultRetention is Options.Retention when zero: the reference
	// relay and PDS keep 72 hours of backfill.
	DefaultRetention = 72 * time.Hour
	// MaxSeq is the largest seq handed out: the event-stream spec keeps
	// sequence numbers below 2^53 so that JavaScript can hold them.
	MaxSeq = 1<<53 - 1
	// MaxSinceLimit bounds the events one Since or Read call returns.
	MaxSinceLimit = 10_000
	// MaxSpan bounds the span of one event (Options.Span), in
	// microseconds.
	MaxSpan = 4096
)

// DefaultPruneInterval is Options.PruneInterval when zero.
const DefaultPruneInterval = time.Minute

var (
	// ErrClosed is returned by calls on a closed Log.
	ErrClosed = errors.New("eventlog: closed")
	// ErrLocked is returned by Open when another process has the log open.
	ErrLocked = errors.New("eventlog: directory is locked by another process")
	// ErrCorrupt is wrapped by errors about log files that are damaged
	// somewhere other than the unsynced tail, which Open repairs itself:
	// Open's, and a reader's that finds a record other than the index
	// promised. The error names the file and the offset.
	ErrCorrupt = errors.New("eventlog: corrupt log")
)

// Options configure a Log. Dir is required; zero values take the defaults.
type Options struct {
	// Dir holds the segment files; it is created if missing.
	Dir string
	// SegmentSize is the size past which the next batch starts a new
	// segment. Default DefaultSegmentSize; at most MaxSegmentSize.
	SegmentSize int64
	// Retention: whole sealed segments whose newest event is older than
	// this are deleted (by Prune, which also runs in the background every
	// PruneInterval). Default DefaultRetention; negative keeps everything.
	Retention time.Duration
	// PruneInterval is how often the background goroutine calls Prune.
	// Default DefaultPruneInterval; negative runs no background pruning
	// (the caller calls Prune).
	PruneInterval time.Duration
	// SyncInterval is the longest time between an AppendBatch and the
	// fsync that makes it durable. Zero fsyncs before AppendBatch returns
	// (concurrent callers share fsyncs); above zero, AppendBatch returns
	// once the events are written and Wait tells when they are durable.
	SyncInterval time.Duration
	// FirstSeq is the seq of the first event of a new, empty log: a relay
	// that lost its log starts above the seqs its consumers have seen.
	// Default 1. Ignored when the log exists.
	FirstSeq int64
	// Now is the clock of event times and retention. Default time.Now.
	Now func() time.Time
	// Span, when set, returns how many microseconds an event's time
	// occupies: the next event's time is at least this one's plus its
	// span, so that a reader can give each of up to span parts of the
	// event a distinct time of its own (a JSON stream does, for the ops
	// of a commit). Results are clamped to 0..MaxSpan. Nil means 0: the
	// events of one batch share one time.
	Span func(frame []byte) int
	// Logger receives recovery and background diagnostics. Default
	// slog.Default().
	Logger *slog.Logger
}

// Stats are a Log's counters and gauges, for metrics.
type Stats struct {
	OldestSeq  int64 // oldest retained durable event, 0 if none
	LatestSeq  int64 // durable: what readers see
	WrittenSeq int64 // written to the file, maybe not yet durable
	Segments   int
	Bytes      int64 // size of the segment files

	Batches        int64 // AppendBatch calls that wrote events
	Events         int64 // events appended
	Syncs          int64 // fsyncs of segment data
	Rolls          int64 // segments sealed
	PrunedSegments int64 // segments deleted by retention
	RecoveredBytes int64 // bytes of an unsynced tail dropped by Open
}

// Log is a durable, append-only log of sequenced event frames in segment
// files. It implements stream.Log. See the package documentation.
type Log struct {
	opts Options
	lg   *slog.Logger
	lock *os.File

	// appendMu serializes writers. It guards the fields below it and is
	// held while segments are created and sealed.
	appendMu   sync.Mutex
	closed     bool
	w          *os.File // write handle of the active segment
	cur        *segment // the active segment, the last of segs
	next       int64    // seq of the next event
	nextMicros int64    // the earliest time the next event may take
	wbuf       []byte
	obuf       []uint32
	mbuf       []int64

	// mu guards segs and the index fields of every segment. Readers hold
	// it only to look up where to read.
	mu      sync.RWMutex
	segs    []*segment // by first seq; the last one is active
	rclosed bool

	// durable is the highest seq known to be on stable storage; readers
	// never see past it. Changed only under smu.
	durable atomic.Int64

	// Group commit. written and sfile say what the next fsync covers:
	// every seq in (durable, written] is in sfile (a roll syncs the old
	// segment before writing to a new one).
	smu        sync.Mutex
	scond      *sync.Cond
	syncing    bool
	written    int64
	sfile      *os.File
	serr       error         // sticky: a failed fsync leaves the log unusable for writes
	advanced   chan struct{} // closed and replaced whenever durable moves
	timerArmed bool
	sclosed    bool

	// pruneMu serializes Prune calls (the background loop's and the
	// caller's); Prune takes mu only to edit segs.
	pruneMu   sync.Mutex
	stopPrune chan struct{}
	stopOnce  sync.Once
	pruneDone chan struct{}

	batches, events, syncs, rolls, pruned, recovered atomic.Int64
}

var _ stream.Log = (*Log)(nil)

// Open opens the log in opts.Dir, creating it if needed. It checks every
// sealed segment (by its sidecar index, or by scanning it when that is
// missing or stale), scans the active segment and cuts off a torn or
// unsynced tail: the log then ends at its last complete record, and seqs
// continue from there.
func Open(opts Options) (*Log, error) {
	if opts.Dir == "" {
		return nil, errors.New("eventlog: Options.Dir is required")
	}
	switch {
	case opts.SegmentSize == 0:
		opts.SegmentSize = DefaultSegmentSize
	case opts.SegmentSize < 0 || opts.SegmentSize > MaxSegmentSize:
		return nil, fmt.Errorf("eventlog: SegmentSize %d is outside 1..%d", opts.SegmentSize, MaxSegmentSize)
	}
	if opts.Retention == 0 {
		opts.Retention = DefaultRetention
	}
	if opts.PruneInterval == 0 {
		opts.PruneInterval = DefaultPruneInterval
	}
	if opts.SyncInterval < 0 {
		return nil, fmt.Errorf("eventlog: negative SyncInterval %v", opts.SyncInterval)
	}
	switch {
	case opts.FirstSeq == 0:
		opts.FirstSeq = 1
	case opts.FirstSeq < 0 || opts.FirstSeq > MaxSeq:
		return nil, fmt.Errorf("eventlog: FirstSeq %d is outside 1..%d", opts.FirstSeq, MaxSeq)
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	l := &Log{opts: opts, lg: opts.Logger, advanced: make(chan struct{})}
	if l.lg == nil {
		l.lg = slog.Default()
	}
	l.scond = sync.NewCond(&l.smu)
	if err := os.MkdirAll(opts.Dir, 0o755); err != nil {
		return nil, fmt.Errorf("eventlog: %w", err)
	}
	lock, err := lockDir(opts.Dir)
	if err != nil {
		return nil, fmt.Errorf("eventlog: %w", err)
	}
	l.lock = lock
	if err := l.load(); err != nil {
		l.closeFiles()
		lock.Close()
		return nil, err
	}
	if opts.Retention > 0 && opts.PruneInterval > 0 {
		l.stopPrune, l.pruneDone = make(chan struct{}), make(chan struct{})
		go l.pruneLoop()
	}
	return l, nil
}

// load reads the directory into l.segs and opens the active segment.
func (l *Log) load() error {
	dir := l.opts.Dir
	ents, err := os.ReadDir(dir)
	if err != nil {
		return fmt.Errorf("eventlog: %w", err)
	}
	var firsts []int64
	idx := map[int64]bool{}
	for _, e := range ents {
		name := e.Name()
		if first, ok := parseSegName(name, segExt); ok {
			firsts = append(firsts, first)
		} else if first, ok := parseSegName(name, idxExt); ok {
			idx[first] = true
		} else if strings.HasSuffix(name, tmpExt) {
			os.Remove(filepath.Join(dir, name))
		}
	}
	slices.Sort(firsts)
	for first := range idx {
		if _, ok := slices.BinarySearch(firsts, first); !ok {
			os.Remove(filepath.Join(dir, segName(first)+idxExt)) // left by an interrupted prune
		}
	}
	if len(firsts) == 0 {
		s, w, err := l.createSegment(l.opts.FirstSeq)
		if err != nil {
			return err
		}
		l.segs, l.w = []*segment{s}, w
	} else {
		for i, first := range firsts {
			s := newSegment(dir, first)
			l.segs = append(l.segs, s)
			if i < len(firsts)-1 {
				err = l.loadSealed(s, idx[first])
			} else {
				err = l.loadActive(s)
			}
			if err != nil {
				return err
			}
			if i > 0 {
				if prev := l.segs[i-1]; prev.last+1 != s.first {
					return fmt.Errorf("%w: segment %s ends at seq %d but the next one starts at %d",
						ErrCorrupt, filepath.Base(prev.path), prev.last, s.first)
				}
			}
		}
	}
	a := l.segs[len(l.segs)-1]
	l.cur = a
	l.next = a.last + 1
	l.nextMicros = a.lastMicros
	if a.empty() && len(l.segs) > 1 {
		l.nextMicros = l.segs[len(l.segs)-2].lastMicros
	}
	if l.opts.Span != nil && l.nextMicros > 0 {
		// The newest event's span is not stored: assume the largest.
		l.nextMicros += MaxSpan
	}
	l.durable.Store(a.last)
	l.written, l.sfile = a.last, l.w
	return nil
}

// loadSealed indexes a segment that is not the last one: from its sidecar
// when that checks out, else by scanning it, which must find nothing but
// whole records.
func (l *Log) loadSealed(s *segment, hasIdx bool) error {
	r, err := os.Open(s.path)
	if err != nil {
		return fmt.Errorf("eventlog: %w", err)
	}
	s.r = r
	fi, err := r.Stat()
	if err != nil {
		return fmt.Errorf("eventlog: %w", err)
	}
	size := fi.Size()
	if hasIdx {
		hdr := make([]byte, segHeaderSize)
		_, herr := r.ReadAt(hdr, 0)
		b, err := os.ReadFile(s.idxPath())
		if err == nil && herr == nil && checkSegHeader(hdr, s.first) == nil {
			sc, err := decodeSidecar(b, s.first)
			if err == nil && sc.size == size {
				s.loadSidecar(sc)
				return nil
			}
		}
		l.lg.Warn("eventlog: rebuilding the index of a segment", "segment", s.path)
	}
	end, stop := s.scan(r, size)
	if stop != nil || end != size || s.empty() {
		if stop == nil {
			stop = errors.New("no records")
		}
		return fmt.Errorf("%w: sealed segment %s: %v", ErrCorrupt, s.path, stop)
	}
	if err := writeSidecar(s.idxPath(), s.sidecar()); err != nil {
		l.lg.Warn("eventlog: writing a segment index", "segment", s.path, "err", err)
	}
	return nil
}

// loadActive scans the last segment, cuts off whatever follows its last
// valid record, and opens it for appending.
func (l *Log) loadActive(s *segment) error {
	os.Remove(s.idxPath()) // it will grow; a sidecar is written when it is sealed
	w, err := os.OpenFile(s.path, os.O_RDWR, 0)
	if err != nil {
		return fmt.Errorf("eventlog: %w", err)
	}
	l.w = w
	fi, err := w.Stat()
	if err != nil {
		return fmt.Errorf("eventlog: %w", err)
	}
	size := fi.Size()
	s.active = true
	end, stop := s.scan(w, size)
	if end == 0 {
		// No valid header. A segment's header is made durable before any
		// of its records is written, so a short file is an interrupted
		// creation, and anything longer is damage we must not paper over.
		if size > segHeaderSize {
			return fmt.Errorf("%w: segment %s: %v", ErrCorrupt, s.path, stop)
		}
		l.lg.Warn("eventlog: rewriting the header of an interrupted segment", "segment", s.path, "reason", stop)
		if err := w.Truncate(0); err != nil {
			return fmt.Errorf("eventlog: %w", err)
		}
		if _, err := w.WriteAt(segHeader(s.first), 0); err != nil {
			return fmt.Errorf("eventlog: %w", err)
		}
		end = segHeaderSize
	}
	if end != size {
		l.lg.Warn("eventlog: dropping the torn tail of the log",
			"segment", s.path, "offset", end, "bytes", size-end, "last_seq", s.last, "reason", stop)
		if err := w.Truncate(end); err != nil {
			return fmt.Errorf("eventlog: %w", err)
		}
		l.recovered.Add(size - end)
	}
	if end != size || size <= segHeaderSize {
		if err := datasync(w); err != nil {
			return fmt.Errorf("eventlog: %w", err)
		}
	}
	r, err := os.Open(s.path)
	if err != nil {
		return fmt.Errorf("eventlog: %w", err)
	}
	s.r = r
	return nil
}

// createSegment creates the segment file for first and makes it and its
// directory entry durable before anything is written to it.
func (l *Log) createSegment(first int64) (*segment, *os.File, error) {
	s := newSegment(l.opts.Dir, first)
	s.active = true
	w, err := os.OpenFile(s.path, os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o644)
	if err != nil {
		return nil, nil, fmt.Errorf("eventlog: %w", err)
	}
	fail := func(err error) (*segment, *os.File, error) {
		w.Close()
		os.Remove(s.path)
		return nil, nil, fmt.Errorf("eventlog: creating segment: %w", err)
	}
	if _, err := w.WriteAt(segHeader(first), 0); err != nil {
		return fail(err)
	}
	if err := datasync(w); err != nil {
		return fail(err)
	}
	if err := syncDir(l.opts.Dir); err != nil {
		return fail(err)
	}
	if s.r, err = os.Open(s.path); err != nil {
		return fail(err)
	}
	return s, w, nil
}

// writeSidecar writes a sidecar index through a temporary file. It is not
// synced: one lost or torn by a crash fails its checksum and is rebuilt.
func writeSidecar(path string, sc *sidecar) error {
	tmp := path + tmpExt
	if err := os.WriteFile(tmp, encodeSidecar(sc), 0o644); err != nil {
		os.Remove(tmp)
		return err
	}
	return os.Rename(tmp, path)
}

// BuildFunc returns the frame of the i-th event of a batch, whose seq is
// seq, and the DID of the account it is about (empty if none). The frame
// is copied before the next call, so its buffer may be reused.
type BuildFunc func(i int, seq int64) (frame []byte, did syntax.DID, err error)

// AppendBatch appends n events with the consecutive seqs first, first+1,
// ..., calling build for each to get its frame (which usually carries its
// seq), and returns first. With SyncInterval zero it returns once the
// events are durable, sharing one fsync with concurrent callers; otherwise
// once they are written (see Wait). If build fails, nothing is written and
// no seq is used. n == 0 does nothing and returns 0.
//
// Appends are serialized, and build runs under the append lock: it must
// not call AppendBatch, Prune, Sync or Close.
func (l *Log) AppendBatch(n int, build BuildFunc) (first int64, err error) {
	if n < 0 {
		return 0, fmt.Errorf("eventlog: negative batch size %d", n)
	}
	if n == 0 {
		return 0, nil
	}
	l.appendMu.Lock()
	last, err := l.appendLocked(n, build)
	l.appendMu.Unlock()
	if err != nil {
		return 0, err
	}
	first = last - int64(n) + 1
	if l.opts.SyncInterval == 0 {
		if err := l.syncTo(last); err != nil {
			return 0, err
		}
	}
	return first, nil
}

func (l *Log) appendLocked(n int, build BuildFunc) (last int64, err error) {
	if l.closed {
		return 0, ErrClosed
	}
	if err := l.failed(); err != nil {
		return 0, err
	}
	if l.cur.size >= l.opts.SegmentSize {
		if err := l.roll(); err != nil {
			return 0, err
		}
	}
	first := l.next
	if first > MaxSeq-int64(n)+1 {
		return 0, fmt.Errorf("eventlog: seq would pass %d", int64(MaxSeq))
	}
	now, nextMicros := l.opts.Now().UnixMicro(), l.nextMicros
	seg := l.cur
	base := seg.size
	buf, offs, times := l.wbuf[:0], l.obuf[:0], l.mbuf[:0]
	for i := range n {
		seq := first + int64(i)
		frame, did, err := build(i, seq)
		if err != nil {
			return 0, fmt.Errorf("eventlog: building event %d of %d (seq %d): %w", i, n, seq, err)
		}
		if len(frame) > stream.MaxFrameSize {
			return 0, fmt.Errorf("eventlog: event %d of %d (seq %d): frame of %d bytes exceeds the maximum of %d",
				i, n, seq, len(frame), stream.MaxFrameSize)
		}
		if len(did) > syntax.DIDMaxLength {
			return 0, fmt.Errorf("eventlog: event %d of %d (seq %d): DID of %d bytes exceeds the maximum of %d",
				i, n, seq, len(did), syntax.DIDMaxLength)
		}
		if len(buf)+recordSize(len(did), len(frame)) > MaxBatchBytes {
			return 0, fmt.Errorf("eventlog: batch exceeds %d bytes", MaxBatchBytes)
		}
		micros := max(now, nextMicros)
		nextMicros = micros + l.span(frame)
		offs = append(offs, uint32(base+int64(len(buf))))
		times = append(times, micros)
		buf = appendRecord(buf, seq, micros, string(did), frame)
	}
	if _, err := l.w.WriteAt(buf, base); err != nil {
		// Take back whatever part of the batch reached the file; if even
		// that fails, the file's tail is unknown and only a reopen (which
		// recovers) can continue.
		if terr := l.w.Truncate(base); terr != nil {
			l.fail(fmt.Errorf("eventlog: write failed (%v), then truncating it failed: %w", err, terr))
		}
		return 0, fmt.Errorf("eventlog: writing events: %w", err)
	}
	last = first + int64(n) - 1
	l.mu.Lock()
	for i, off := range offs {
		seg.add(off, first+int64(i), times[i])
	}
	seg.size = base + int64(len(buf))
	l.mu.Unlock()
	l.next, l.nextMicros = last+1, nextMicros
	if cap(buf) <= 16<<20 {
		l.wbuf, l.obuf, l.mbuf = buf, offs, times
	} else {
		l.wbuf, l.obuf, l.mbuf = nil, nil, nil
	}
	l.batches.Add(1)
	l.events.Add(int64(n))

	l.smu.Lock()
	l.written, l.sfile = last, l.w
	if l.opts.SyncInterval > 0 && !l.timerArmed {
		l.timerArmed = true
		time.AfterFunc(l.opts.SyncInterval, l.timedSync)
	}
	l.smu.Unlock()
	return last, nil
}

// span is Options.Span of frame, clamped to 0..MaxSpan.
func (l *Log) span(frame []byte) int64 {
	if l.opts.Span == nil {
		return 0
	}
	return int64(min(max(l.opts.Span(frame), 0), MaxSpan))
}

// roll seals the active segment (fsync, sidecar) and starts a new one.
// The caller holds appendMu.
func (l *Log) roll() error {
	old := l.cur
	if old.empty() {
		return nil
	}
	if err := l.syncTo(l.next - 1); err != nil {
		return err
	}
	// Now durable == written and no writer can add to old, so no fsync
	// will touch its write handle again.
	s, w, err := l.createSegment(l.next)
	if err != nil {
		return err
	}
	l.mu.Lock()
	old.offs, old.active = nil, false
	l.segs = append(l.segs, s)
	sc := old.sidecar()
	l.mu.Unlock()
	l.smu.Lock()
	l.sfile = w
	l.smu.Unlock()
	l.w.Close()
	l.w, l.cur = w, s
	l.rolls.Add(1)
	if err := writeSidecar(old.idxPath(), sc); err != nil {
		l.lg.Warn("eventlog: writing a segment index", "segment", old.path, "err", err)
	}
	return nil
}

// failed returns the sticky error of a failed write or fsync.
func (l *Log) failed() error {
	l.smu.Lock()
	defer l.smu.Unlock()
	return l.serr
}

func (l *Log) fail(err error) {
	l.smu.Lock()
	if l.serr == nil {
		l.serr = err
		l.lg.Error("eventlog: the log cannot take more writes until it is reopened", "err", err)
	}
	l.scond.Broadcast()
	l.smu.Unlock()
}

// syncTo returns once seq target is durable: another caller's fsync may
// cover it, or this caller becomes the one that fsyncs, for everything
// written so far.
func (l *Log) syncTo(target int64) error {
	l.smu.Lock()
	defer l.smu.Unlock()
	for {
		if l.durable.Load() >= target {
			return nil
		}
		if l.serr != nil {
			return l.serr
		}
		if !l.syncing {
			break
		}
		l.scond.Wait()
	}
	l.syncing = true
	upto, f := l.written, l.sfile
	l.smu.Unlock()
	err := datasync(f)
	l.smu.Lock()
	l.syncing = false
	l.syncs.Add(1)
	if err != nil {
		if l.serr == nil {
			l.serr = fmt.Errorf("eventlog: fsync failed, reopen the log to recover: %w", err)
			l.lg.Error("eventlog: the log cannot take more writes until it is reopened", "err", err)
		}
	} else if upto > l.durable.Load() {
		l.durable.Store(upto)
		close(l.advanced)
		l.advanced = make(chan struct{})
	}
	l.scond.Broadcast()
	if l.serr != nil {
		return l.serr
	}
	return nil
}

// timedSync is the SyncInterval timer: it makes everything written so far
// durable.
func (l *Log) timedSync() {
	l.smu.Lock()
	l.timerArmed = false
	target, closed := l.written, l.sclosed
	l.smu.Unlock()
	if closed {
		return
	}
	l.syncTo(target) // a failure is sticky and reported to writers and waiters
}

// Sync makes every event written so far durable.
func (l *Log) Sync() error {
	l.appendMu.Lock()
	defer l.appendMu.Unlock()
	if l.closed {
		return ErrClosed
	}
	return l.syncTo(l.next - 1)
}

// Wait blocks until the durable seq is above after and returns it. It
// returns early with an error when ctx ends, the log is closed, or an
// fsync failed. A writer with SyncInterval > 0 calls Wait(ctx, last-1)
// before publishing events up to last; a tailing reader calls Wait with
// the last seq it has read, then Since.
func (l *Log) Wait(ctx context.Context, after int64) (int64, error) {
	for {
		l.smu.Lock()
		d, ch, err, closed := l.durable.Load(), l.advanced, l.serr, l.sclosed
		l.smu.Unlock()
		switch {
		case d > after:
			return d, nil
		case err != nil:
			return d, err
		case closed:
			return d, ErrClosed
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return d, ctx.Err()
		}
	}
}

// Close makes written events durable, stops the background work and
// closes the files. Readers in flight finish first.
func (l *Log) Close() error {
	if l.stopPrune != nil {
		l.stopOnce.Do(func() { close(l.stopPrune) })
		<-l.pruneDone
	}
	l.appendMu.Lock()
	defer l.appendMu.Unlock()
	if l.closed {
		return nil
	}
	l.closed = true
	err := l.syncTo(l.next - 1)
	l.smu.Lock()
	l.sclosed = true
	close(l.advanced)
	l.advanced = make(chan struct{})
	l.smu.Unlock()
	l.closeFiles()
	if cerr := l.lock.Close(); err == nil {
		err = cerr
	}
	return err
}

// closeFiles closes the write handle and drops the list's reference to
// every segment.
func (l *Log) closeFiles() {
	if l.w != nil {
		l.w.Close()
	}
	l.mu.Lock()
	l.rclosed = true
	for _, s := range l.segs {
		s.release()
	}
	l.segs = nil
	l.mu.Unlock()
}

// Stats returns the log's counters.
func (l *Log) Stats() Stats {
	st := Stats{
		Batches:        l.batches.Load(),
		Events:         l.events.Load(),
		Syncs:          l.syncs.Load(),
		Rolls:          l.rolls.Load(),
		PrunedSegments: l.pruned.Load(),
		RecoveredBytes: l.recovered.Load(),
		LatestSeq:      l.durable.Load(),
	}
	l.mu.RLock()
	defer l.mu.RUnlock()
	st.OldestSeq = l.oldestLocked()
	st.Segments = len(l.segs)
	for _, s := range l.segs {
		st.Bytes += s.size
	}
	if len(l.segs) > 0 {
		st.WrittenSeq = l.segs[len(l.segs)-1].last
	}
	return st
}
