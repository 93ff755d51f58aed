// Package memtrim hands a server's free heap memory back to the operating
// system once the server has gone quiet.
//
// Go's runtime keeps freed heap pages for reuse and returns them to the
// system only gradually, so a server that has just handled a burst (sign-ups
// hashing passwords with a memory-hard function, a batch of large uploads)
// stays at its peak resident size for minutes after the last request. A
// self-hosted server spends most of its life idle; what it costs then is what
// its operator pays for. A Trimmer watches the requests going through a
// handler and, after a quiet interval with none, runs debug.FreeOSMemory
// once: a full collection and a release of every free page. It does nothing
// while requests keep coming, and nothing twice in a row.
package memtrim

import (
	"context"
	"net/http"
	"runtime/debug"
	"sync/atomic"
	"time"
)

// DefaultQuiet is the quiet interval servers use: long enough that a
// trimming collection never lands in the middle of a burst, short enough that
// an idle server is back at its resting size within a minute.
const DefaultQuiet = 20 * time.Second

// Trimmer counts activity and releases memory after a quiet interval. The
// zero value is ready to use.
type Trimmer struct {
	// OnQuiet, if set, runs at each release before the Go heap's: the
	// place to hand back memory the Go runtime does not manage, such as
	// SQLite's caches. Set it before Run.
	OnQuiet func()

	activity atomic.Uint64
	trims    atomic.Uint64

	// release frees memory; nil means debug.FreeOSMemory. Tests replace it.
	release func()
	// handled, if set, receives a value after each tick is dealt with, so
	// that tests can step the loop.
	handled chan<- struct{}
}

// Touch records activity.
func (t *Trimmer) Touch() { t.activity.Add(1) }

// Trims returns how many times memory has been released.
func (t *Trimmer) Trims() uint64 { return t.trims.Load() }

// Wrap returns a handler that records a request's start as activity and then
// calls h.
func (t *Trimmer) Wrap(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		t.Touch()
		h.ServeHTTP(w, r)
	})
}

// Run checks every quiet interval until ctx is done, releasing memory after
// the first interval without activity that follows some activity.
func (t *Trimmer) Run(ctx context.Context, quiet time.Duration) {
	tk := time.NewTicker(quiet)
	defer tk.Stop()
	t.loop(ctx, tk.C)
}

// loop is Run with the ticks supplied.
func (t *Trimmer) loop(ctx context.Context, ticks <-chan time.Time) {
	last := t.activity.Load()
	// dirty says activity was seen since the last release. A server
	// starts dirty: loading its state allocates too.
	dirty := true
	for {
		select {
		case <-ctx.Done():
			return
		case <-ticks:
		}
		t.check(&last, &dirty)
		if t.handled != nil {
			t.handled <- struct{}{}
		}
	}
}

// check looks at the activity since the last tick and releases memory when
// there was none and some came before.
func (t *Trimmer) check(last *uint64, dirty *bool) {
	now := t.activity.Load()
	if now != *last {
		*last, *dirty = now, true
		return
	}
	if !*dirty {
		return
	}
	*dirty = false
	if t.OnQuiet != nil {
		t.OnQuiet()
	}
	if t.release != nil {
		t.release()
	} else {
		debug.FreeOSMemory()
	}
	t.trims.Add(1)
}
