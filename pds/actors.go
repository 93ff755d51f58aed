package pds

import (
	"container/list"
	"context"
	"fmt"
	"os"
	"sync"
	"time"

	"github.com/welkin-atproto/welkin/atproto/repo"
	"github.com/welkin-atproto/welkin/atproto/syntax"
	"github.com/welkin-atproto/welkin/pds/actorstore"
)

// maxOpenActors bounds how many account databases stay open. Each open
// store holds SQLite connections and page cache (about half a megabyte for
// a small account); accounts beyond this are closed when idle, least
// recently used first, and reopened on demand.
const maxOpenActors = 128

// actorIdle is how long an account's store stays open after its last use.
// Reopening costs about a millisecond; an open store costs memory, so a PDS
// at rest closes them all.
const actorIdle = 30 * time.Second

// actors opens and caches the per-account stores. A store borrowed with
// get is never closed until its release function has been called.
type actors struct {
	dir string

	mu    sync.Mutex
	open  map[syntax.DID]*actorEntry
	lru   *list.List // of *actorEntry, most recently released at the front
	limit int
	// opening serializes the open of one DID, so that two callers never
	// open the same file twice.
	opening map[syntax.DID]chan struct{}

	// closeFailed holds the accounts whose store failed to close cleanly:
	// what they held may not be durable, so the durable mark must not move
	// until they have been reopened and synced (see syncStores). Guarded
	// by failMu, which closers take without mu.
	failMu      sync.Mutex
	closeFailed map[syntax.DID]struct{}
	// closing is held for reading while stores taken out of the cache are
	// being closed, outside mu (see waitCloses).
	closing sync.RWMutex

	// unstored holds the accounts with an acknowledged commit that their
	// database gave up storing (Store.ApplyCommitLater): only the next
	// start restores it, from the log, so until then the account is
	// neither read nor written, even once its store is closed and
	// reopened, and the durable mark stays (see syncStores). Guarded by
	// failMu.
	unstored map[syntax.DID]error
}

// noteUnstored records that the database of did gave up storing an
// acknowledged commit.
func (a *actors) noteUnstored(did syntax.DID, err error) {
	a.failMu.Lock()
	defer a.failMu.Unlock()
	if a.unstored == nil {
		a.unstored = make(map[syntax.DID]error)
	}
	if a.unstored[did] == nil {
		a.unstored[did] = err
	}
}

// unstoredErr returns the failure noted for did, or nil.
func (a *actors) unstoredErr(did syntax.DID) error {
	a.failMu.Lock()
	defer a.failMu.Unlock()
	return a.unstored[did]
}

// anyUnstored reports whether some account has a commit its database gave
// up storing.
func (a *actors) anyUnstored() bool {
	a.failMu.Lock()
	defer a.failMu.Unlock()
	return len(a.unstored) > 0
}

// closeStore closes st, which syncs it first, and remembers a failure.
func (a *actors) closeStore(st *actorstore.Store) {
	if err := st.Close(); err != nil {
		a.noteCloseFailed(st.DID())
	}
}

// takeCloseFailed returns and forgets the accounts whose store failed to
// close.
func (a *actors) takeCloseFailed() []syntax.DID {
	a.failMu.Lock()
	defer a.failMu.Unlock()
	out := make([]syntax.DID, 0, len(a.closeFailed))
	for did := range a.closeFailed {
		out = append(out, did)
	}
	clear(a.closeFailed)
	return out
}

// noteCloseFailed puts did back among the accounts whose store failed to
// close.
func (a *actors) noteCloseFailed(did syntax.DID) {
	a.failMu.Lock()
	defer a.failMu.Unlock()
	if a.closeFailed == nil {
		a.closeFailed = make(map[syntax.DID]struct{})
	}
	a.closeFailed[did] = struct{}{}
}

type actorEntry struct {
	st *actorstore.Store
	// repo is the account's repository at its stored head, kept open
	// between writes so that its MST nodes stay decoded. Only the holder
	// of the store's write lock (Store.Lock) touches it.
	repo *repo.Repo
	refs int
	elem *list.Element // in lru while refs == 0
	// idleSince is when refs last fell to zero.
	idleSince time.Time
}

func newActors(dir string) *actors {
	return &actors{dir: dir, open: map[syntax.DID]*actorEntry{}, lru: list.New(),
		limit: maxOpenActors, opening: map[syntax.DID]chan struct{}{}}
}

// get returns the store of did, opening (and creating) it if needed, once
// the commit last acknowledged on it is stored (see Store.WaitApplied), so
// that what the caller reads includes every acknowledged write. The caller
// must call release when done with it.
func (a *actors) get(ctx context.Context, did syntax.DID) (*actorstore.Store, func(), error) {
	if err := a.unstoredErr(did); err != nil {
		return nil, nil, fmt.Errorf("pds: account %s is unavailable until the PDS restarts: %w", did, err)
	}
	st, release, err := a.getNoWait(ctx, did)
	if err != nil {
		return nil, nil, err
	}
	if err := st.WaitApplied(ctx); err != nil {
		release()
		return nil, nil, err
	}
	return st, release, nil
}

// getForWrite is get without waiting for the account's queued commits to
// be stored: for a writer that builds on them (Store.LockForCommit) and
// reads only through methods that wait for them.
func (a *actors) getForWrite(ctx context.Context, did syntax.DID) (*actorstore.Store, func(), error) {
	if err := a.unstoredErr(did); err != nil {
		return nil, nil, fmt.Errorf("pds: account %s is unavailable until the PDS restarts: %w", did, err)
	}
	return a.getNoWait(ctx, did)
}

// getNoWait is get without waiting for a commit being stored: for the
// sequencer, which reads only the outbox, and whose loop must not stall on
// one account.
func (a *actors) getNoWait(ctx context.Context, did syntax.DID) (*actorstore.Store, func(), error) {
	for {
		a.mu.Lock()
		if e, ok := a.open[did]; ok {
			e.refs++
			if e.elem != nil {
				a.lru.Remove(e.elem)
				e.elem = nil
			}
			a.mu.Unlock()
			return e.st, a.releaser(did, e), nil
		}
		if ch, ok := a.opening[did]; ok {
			a.mu.Unlock()
			select {
			case <-ch:
				continue
			case <-ctx.Done():
				return nil, nil, ctx.Err()
			}
		}
		ch := make(chan struct{})
		a.opening[did] = ch
		a.mu.Unlock()

		st, err := actorstore.Open(ctx, a.dir, did)

		a.mu.Lock()
		delete(a.opening, did)
		close(ch)
		if err != nil {
			a.mu.Unlock()
			return nil, nil, err
		}
		e := &actorEntry{st: st, refs: 1}
		a.open[did] = e
		evicted := a.evictLocked()
		a.mu.Unlock()
		a.closeStores(evicted)
		return st, a.releaser(did, e), nil
	}
}

// getIfOpen is get for a store that is open, without opening it.
func (a *actors) getIfOpen(did syntax.DID) (*actorstore.Store, func(), bool) {
	a.mu.Lock()
	defer a.mu.Unlock()
	e, ok := a.open[did]
	if !ok {
		return nil, nil, false
	}
	e.refs++
	if e.elem != nil {
		a.lru.Remove(e.elem)
		e.elem = nil
	}
	return e.st, a.releaser(did, e), true
}

// retain takes one more reference to the store of e, to which the caller
// holds one, and returns its release function.
func (a *actors) retain(did syntax.DID, e *actorEntry) func() {
	a.mu.Lock()
	e.refs++
	a.mu.Unlock()
	return a.releaser(did, e)
}

func (a *actors) releaser(did syntax.DID, e *actorEntry) func() {
	var once sync.Once
	return func() {
		once.Do(func() {
			var evicted []*actorstore.Store
			a.mu.Lock()
			e.refs--
			if e.refs == 0 && a.open[did] == e {
				e.idleSince = time.Now()
				e.elem = a.lru.PushFront(did)
				evicted = a.evictLocked()
			}
			a.mu.Unlock()
			a.closeStores(evicted)
		})
	}
}

// evictLocked takes idle stores beyond the limit out of the cache and
// returns them; the caller closes them (closeStores) once a.mu is
// released.
func (a *actors) evictLocked() []*actorstore.Store {
	var out []*actorstore.Store
	for len(a.open) > a.limit {
		back := a.lru.Back()
		if back == nil {
			break
		}
		did := back.Value.(syntax.DID)
		a.lru.Remove(back)
		e := a.open[did]
		delete(a.open, did)
		out = append(out, e.st)
	}
	if len(out) > 0 {
		a.closing.RLock() // released by closeStores
	}
	return out
}

// closeStores closes stores evictLocked or closeIdle took out of the
// cache, without a.mu: a Close syncs and checkpoints, and every lookup
// would wait for it.
func (a *actors) closeStores(sts []*actorstore.Store) {
	if len(sts) == 0 {
		return
	}
	defer a.closing.RUnlock()
	for _, st := range sts {
		a.closeStore(st)
	}
}

// waitCloses returns once every close that started before the call is
// over, so that a store no longer in the cache is known to be synced (or
// noted in closeFailed).
func (a *actors) waitCloses() {
	a.closing.Lock()
	a.closing.Unlock()
}

// closeIdle closes the stores that nobody has used since before cutoff,
// and returns how many it closed.
func (a *actors) closeIdle(cutoff time.Time) int {
	a.mu.Lock()
	var idle []*actorstore.Store
	for back := a.lru.Back(); back != nil; back = a.lru.Back() {
		did := back.Value.(syntax.DID)
		e := a.open[did]
		if !e.idleSince.Before(cutoff) {
			break
		}
		a.lru.Remove(back)
		delete(a.open, did)
		idle = append(idle, e.st)
	}
	if len(idle) > 0 {
		a.closing.RLock() // released by closeStores
	}
	a.mu.Unlock()
	a.closeStores(idle)
	return len(idle)
}

// openCount returns how many stores are open.
func (a *actors) openCount() int {
	a.mu.Lock()
	defer a.mu.Unlock()
	return len(a.open)
}

// entry returns the cache entry of an open store; the caller must hold a
// reference to it (from get).
func (a *actors) entry(did syntax.DID) *actorEntry {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.open[did]
}

// exists reports whether did has a store on disk.
func (a *actors) exists(did syntax.DID) bool {
	_, err := os.Stat(actorstore.Dir(a.dir, did))
	return err == nil
}

// remove closes and deletes the store of did (account deletion). It fails
// if the store is in use.
func (a *actors) remove(did syntax.DID) error {
	a.mu.Lock()
	if e, ok := a.open[did]; ok {
		if e.refs > 0 {
			a.mu.Unlock()
			return fmt.Errorf("pds: account store of %s is in use", did)
		}
		if e.elem != nil {
			a.lru.Remove(e.elem)
		}
		delete(a.open, did)
		a.closeStore(e.st)
	}
	a.mu.Unlock()
	return os.RemoveAll(actorstore.Dir(a.dir, did))
}

// closeAll closes every open store.
func (a *actors) closeAll() {
	a.mu.Lock()
	defer a.mu.Unlock()
	for did, e := range a.open {
		a.closeStore(e.st)
		delete(a.open, did)
	}
	a.lru.Init()
}
