package identity

import (
	"context"
	"sync"
)

// flightGroup coalesces concurrent calls for the same key into one
// execution. Unlike a plain singleflight, the shared work runs in its own
// goroutine, so a waiter whose context ends can return early without
// cancelling the work for the others.
type flightGroup[K comparable, V any] struct {
	mu    sync.Mutex
	calls map[K]*flightCall[V]
}

type flightCall[V any] struct {
	done    chan struct{}
	val     V
	err     error
	waiters int // callers that joined, guarded by flightGroup.mu
}

// do runs fn once for all concurrent callers with the same key and returns
// its result, or ctx's error if ctx ends first.
func (g *flightGroup[K, V]) do(ctx context.Context, key K, fn func() (V, error)) (V, error) {
	g.mu.Lock()
	c, ok := g.calls[key]
	if !ok {
		if g.calls == nil {
			g.calls = make(map[K]*flightCall[V])
		}
		c = &flightCall[V]{done: make(chan struct{})}
		g.calls[key] = c
		go func() {
			c.val, c.err = fn()
			g.mu.Lock()
			if g.calls[key] == c {
				delete(g.calls, key)
			}
			g.mu.Unlock()
			close(c.done)
		}()
	}
	c.waiters++
	g.mu.Unlock()
	select {
	case <-c.done:
		return c.val, c.err
	case <-ctx.Done():
		var zero V
		return zero, ctx.Err()
	}
}

// forget makes later calls for key start new work instead of joining the
// call in flight.
func (g *flightGroup[K, V]) forget(key K) {
	g.mu.Lock()
	delete(g.calls, key)
	g.mu.Unlock()
}

// waiters reports how many callers are waiting on the call in flight for
// key (0 when there is none). Used by tests to build barriers.
func (g *flightGroup[K, V]) waiters(key K) int {
	g.mu.Lock()
	defer g.mu.Unlock()
	if c, ok := g.calls[key]; ok {
		return c.waiters
	}
	return 0
}
