package relay

import (
	"sync"

	"github.com/welkin-atproto/welkin/atproto/syntax"
)

// didLocks serializes the changes to one account's state: the handling of
// its upstream events, its re-synchronization and its takedown each read
// the stored account, decide, and write it back (with an event, through
// the sequencer) under the account's lock, so that none overwrites what
// another decided meanwhile. Different accounts never wait for each other.
type didLocks struct {
	mu sync.Mutex
	m  map[syntax.DID]*didLock
}

type didLock struct {
	mu   sync.Mutex
	refs int
}

// lock takes the lock of did and returns its release.
func (l *didLocks) lock(did syntax.DID) (unlock func()) {
	l.mu.Lock()
	if l.m == nil {
		l.m = map[syntax.DID]*didLock{}
	}
	e := l.m[did]
	if e == nil {
		e = &didLock{}
		l.m[did] = e
	}
	e.refs++
	l.mu.Unlock()
	e.mu.Lock()
	return func() {
		e.mu.Unlock()
		l.mu.Lock()
		e.refs--
		if e.refs == 0 {
			delete(l.m, did)
		}
		l.mu.Unlock()
	}
}
