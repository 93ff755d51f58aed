package auth

import (
	"container/heap"
	"sync"
	"time"
)

// ReplayCache remembers token nonces until their tokens expire.
type ReplayCache interface {
	// Seen records key as used until expires and reports whether it was
	// already recorded (and not yet expired at now).
	Seen(key string, expires, now time.Time) bool
}

// DefaultReplayCacheSize is the capacity NewMemoryReplayCache uses for a
// non-positive size.
const DefaultReplayCacheSize = 100_000

// MemoryReplayCache is an in-memory ReplayCache holding at most a fixed
// number of unexpired entries. When it is full, the entry closest to
// expiry is dropped to make room: under a flood of valid tokens the
// protection degrades for the oldest nonces rather than failing closed.
// It is safe for concurrent use.
type MemoryReplayCache struct {
	mu      sync.Mutex
	max     int
	entries map[string]*replayEntry
	byExp   replayHeap
}

type replayEntry struct {
	key     string
	expires time.Time
	index   int
}

// NewMemoryReplayCache returns a cache holding at most size entries.
func NewMemoryReplayCache(size int) *MemoryReplayCache {
	if size <= 0 {
		size = DefaultReplayCacheSize
	}
	return &MemoryReplayCache{max: size, entries: make(map[string]*replayEntry)}
}

// Len returns the number of entries held, expired or not.
func (c *MemoryReplayCache) Len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.entries)
}

// Seen implements ReplayCache.
func (c *MemoryReplayCache) Seen(key string, expires, now time.Time) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	for len(c.byExp) > 0 && c.byExp[0].expires.Before(now) {
		e := heap.Pop(&c.byExp).(*replayEntry)
		delete(c.entries, e.key)
	}
	if _, ok := c.entries[key]; ok {
		return true
	}
	for len(c.entries) >= c.max {
		e := heap.Pop(&c.byExp).(*replayEntry)
		delete(c.entries, e.key)
	}
	e := &replayEntry{key: key, expires: expires}
	heap.Push(&c.byExp, e)
	c.entries[key] = e
	return false
}

type replayHeap []*replayEntry

func (h replayHeap) Len() int           { return len(h) }
func (h replayHeap) Less(i, j int) bool { return h[i].expires.Before(h[j].expires) }
func (h replayHeap) Swap(i, j int) {
	h[i], h[j] = h[j], h[i]
	h[i].index = i
	h[j].index = j
}
func (h *replayHeap) Push(x any) {
	e := x.(*replayEntry)
	e.index = len(*h)
	*h = append(*h, e)
}
func (h *replayHeap) Pop() any {
	old := *h
	n := len(old)
	e := old[n-1]
	old[n-1] = nil
	*h = old[:n-1]
	return e
}
