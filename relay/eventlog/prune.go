package eventlog

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"time"
)

// Prune applies the retention window: it deletes, oldest first, every
// sealed segment whose newest event is older than Options.Retention
// before Options.Now, and returns how many it deleted. The active segment
// is never deleted, so LatestSeq is unaffected and seqs continue. Readers
// in flight finish reading a deleted segment. With a negative Retention
// Prune does nothing.
//
// Segments are deleted strictly from the oldest, each deletion made
// durable before the next, so a crash during Prune leaves a log that
// still starts at a segment boundary and has no hole.
func (l *Log) Prune() (int, error) {
	if l.opts.Retention < 0 {
		return 0, nil
	}
	l.pruneMu.Lock()
	defer l.pruneMu.Unlock()
	cutoff := l.opts.Now().Add(-l.opts.Retention).UnixMicro()

	l.mu.Lock()
	if l.rclosed {
		l.mu.Unlock()
		return 0, ErrClosed
	}
	n := 0
	for n < len(l.segs)-1 && l.segs[n].lastMicros < cutoff {
		n++
	}
	if n == 0 {
		l.mu.Unlock()
		return 0, nil
	}
	victims := l.segs[:n:n]
	// A fresh slice, so that the old backing array (and the victims) can
	// be collected once readers are done with them.
	l.segs = append([]*segment(nil), l.segs[n:]...)
	l.mu.Unlock()

	deleted := 0
	var err error
	for _, s := range victims {
		if err == nil {
			err = removeSegment(l.opts.Dir, s)
			if err == nil {
				deleted++
				l.pruned.Add(1)
			} else {
				// Stop deleting: the files left are a contiguous run,
				// which Open takes back, and the next Prune retries.
				l.lg.Error("eventlog: deleting an expired segment", "segment", s.path, "err", err)
			}
		}
		s.release()
	}
	return deleted, err
}

// removeSegment deletes a segment file, then its sidecar (Open deletes a
// sidecar left without its segment), and makes the deletion durable.
func removeSegment(dir string, s *segment) error {
	if err := os.Remove(s.path); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("eventlog: %w", err)
	}
	if err := os.Remove(s.idxPath()); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("eventlog: %w", err)
	}
	if err := syncDir(dir); err != nil {
		return fmt.Errorf("eventlog: syncing directory %s: %w", dir, err)
	}
	return nil
}

// pruneLoop runs Prune every Options.PruneInterval until Close.
func (l *Log) pruneLoop() {
	defer close(l.pruneDone)
	t := time.NewTicker(l.opts.PruneInterval)
	defer t.Stop()
	for {
		select {
		case <-l.stopPrune:
			return
		case <-t.C:
			if _, err := l.Prune(); err != nil && !errors.Is(err, ErrClosed) {
				l.lg.Warn("eventlog: applying retention", "err", err)
			}
		}
	}
}
