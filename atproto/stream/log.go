package stream

import (
	"context"
	"errors"
	"sync"
)

// Event is one sequenced, encoded frame.
type Event struct {
	Seq   int64
	Frame []byte
}

// Log is the durable source of a stream's events: a server replays from it
// for consumers that give a cursor. Events must be appended to the log
// before they are published to the Server, in increasing seq order.
type Log interface {
	// Since returns up to limit events with Seq > cursor, in seq order.
	Since(ctx context.Context, cursor int64, limit int) ([]Event, error)
	// OldestSeq is the seq of the oldest retained event, 0 if none.
	OldestSeq(ctx context.Context) (int64, error)
	// LatestSeq is the highest seq ever appended, 0 if none, even if that
	// event is no longer retained.
	LatestSeq(ctx context.Context) (int64, error)
}

// MemLog is an in-memory Log that retains the most recent events in a ring.
type MemLog struct {
	mu     sync.RWMutex
	ring   []Event
	start  int // index of the oldest event
	n      int
	latest int64
}

// NewMemLog returns a MemLog retaining up to capacity events.
func NewMemLog(capacity int) *MemLog {
	if capacity < 1 {
		capacity = 1
	}
	return &MemLog{ring: make([]Event, capacity)}
}

// ErrSeqOrder is returned by MemLog.Append for a seq not above the latest.
var ErrSeqOrder = errors.New("stream: seq must increase")

// Append adds an event, dropping the oldest one when the ring is full.
func (l *MemLog) Append(ev Event) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if ev.Seq <= l.latest {
		return ErrSeqOrder
	}
	i := (l.start + l.n) % len(l.ring)
	if l.n == len(l.ring) {
		l.start = (l.start + 1) % len(l.ring)
	} else {
		l.n++
	}
	l.ring[i] = ev
	l.latest = ev.Seq
	return nil
}

func (l *MemLog) at(i int) Event { return l.ring[(l.start+i)%len(l.ring)] }

// Since implements Log.
func (l *MemLog) Since(_ context.Context, cursor int64, limit int) ([]Event, error) {
	l.mu.RLock()
	defer l.mu.RUnlock()
	// Binary search for the first event with Seq > cursor.
	lo, hi := 0, l.n
	for lo < hi {
		m := int(uint(lo+hi) >> 1)
		if l.at(m).Seq <= cursor {
			lo = m + 1
		} else {
			hi = m
		}
	}
	k := l.n - lo
	if limit > 0 && k > limit {
		k = limit
	}
	out := make([]Event, k)
	for j := range out {
		out[j] = l.at(lo + j)
	}
	return out, nil
}

// OldestSeq implements Log.
func (l *MemLog) OldestSeq(context.Context) (int64, error) {
	l.mu.RLock()
	defer l.mu.RUnlock()
	if l.n == 0 {
		return 0, nil
	}
	return l.at(0).Seq, nil
}

// LatestSeq implements Log.
func (l *MemLog) LatestSeq(context.Context) (int64, error) {
	l.mu.RLock()
	defer l.mu.RUnlock()
	return l.latest, nil
}
