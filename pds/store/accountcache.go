package store

import (
	"bytes"
	"sync"
	"sync/atomic"

	"github.com/welkin-atproto/welkin/atproto/syntax"
)

// accountCacheMax bounds the accounts kept in memory; the cache is emptied
// when it would grow past it.
const accountCacheMax = 4096

// accountCache keeps accounts read by DID, since every authenticated
// request reads its caller's row. Every change to pds_accounts goes through
// this store (create, update, delete), which drops the DID's entry and
// bumps gen once the change is committed; a reader caches what it read
// only if gen did not move while it read, so a row read before a change
// never outlives it. This holds while one Store is the only writer of its
// database, as it is in a PDS: another process changing the rows would
// not be seen.
type accountCache struct {
	gen atomic.Uint64

	mu sync.Mutex
	m  map[syntax.DID]*Account
}

func (c *accountCache) get(did syntax.DID) (*Account, bool) {
	c.mu.Lock()
	a, ok := c.m[did]
	c.mu.Unlock()
	if !ok {
		return nil, false
	}
	return a.clone(), true
}

// put caches a, read while the generation was gen.
func (c *accountCache) put(gen uint64, a *Account) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.gen.Load() != gen {
		return
	}
	if c.m == nil || len(c.m) >= accountCacheMax {
		c.m = make(map[syntax.DID]*Account)
	}
	c.m[a.DID] = a.clone()
}

// invalidate forgets did after a change to its row.
func (c *accountCache) invalidate(did syntax.DID) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.gen.Add(1)
	delete(c.m, did)
}

// clone returns a deep copy, so that callers never share the cached value.
func (a *Account) clone() *Account {
	b := *a
	b.SigningKey = bytes.Clone(a.SigningKey)
	if a.EmailConfirmedAt != nil {
		t := *a.EmailConfirmedAt
		b.EmailConfirmedAt = &t
	}
	if a.DeactivatedAt != nil {
		t := *a.DeactivatedAt
		b.DeactivatedAt = &t
	}
	if a.DeleteAfter != nil {
		t := *a.DeleteAfter
		b.DeleteAfter = &t
	}
	return &b
}
