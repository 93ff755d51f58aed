package identity

import (
	"container/list"
	"context"
	"errors"
	"sync"
	"time"

	"github.com/welkin-atproto/welkin/atproto/syntax"
)

// CacheOptions configures a CachingResolver. Zero fields take the defaults.
type CacheOptions struct {
	// DIDTTL is how long a resolved DID document is kept (default 24h).
	DIDTTL time.Duration
	// DIDNegativeTTL is how long a definite DID failure (not found,
	// deactivated, invalid document, unsupported method) is kept
	// (default 5m).
	DIDNegativeTTL time.Duration
	// HandleTTL is how long a handle-to-DID result is kept (default 1h).
	HandleTTL time.Duration
	// HandleNegativeTTL is how long a definite handle failure is kept
	// (default 1m).
	HandleNegativeTTL time.Duration
	// MaxEntries bounds each of the DID and handle caches; the least
	// recently used entry is evicted first (default 100000).
	MaxEntries int
	// MinRefreshInterval is how recently a DID must have been fetched for
	// RefreshDID to return the cached copy instead of fetching again
	// (default 1m). It stops a flood of bad signatures from turning into a
	// flood of directory requests.
	MinRefreshInterval time.Duration
	// UpstreamTimeout bounds one coalesced upstream call, which runs
	// detached from any single caller's cancellation (default 30s).
	UpstreamTimeout time.Duration
	// Now is the clock (default time.Now). Tests inject a fake one.
	Now func() time.Time
}

// Cache defaults.
const (
	DefaultDIDTTL             = 24 * time.Hour
	DefaultDIDNegativeTTL     = 5 * time.Minute
	DefaultHandleTTL          = time.Hour
	DefaultHandleNegativeTTL  = time.Minute
	DefaultMaxCacheEntries    = 100_000
	DefaultMinRefreshInterval = time.Minute
	DefaultUpstreamTimeout    = 30 * time.Second
)

// CachingResolver wraps a Resolver with TTL caches for DID documents and
// handle resolutions, with LRU eviction, and coalesces concurrent requests:
// any number of simultaneous lookups of one DID or handle make a single
// upstream request. Transient failures (ErrDIDResolutionFailed or
// ErrHandleResolutionFailed that are not also a definite failure, context
// errors) are shared with the concurrent callers but not cached. Lookup
// verifies handles through the cached parts. It is safe for concurrent use.
type CachingResolver struct {
	upstream Resolver
	opts     CacheOptions

	mu      sync.Mutex
	dids    *lru[syntax.DID, didValue]
	handles *lru[syntax.Handle, syntax.DID]
	// Upstream fetches in progress, by key, each with a unique token. A
	// purge deletes the key's token so that a fetch which began before the
	// purge does not store its (possibly stale) result.
	seq           uint64
	pendingDID    map[syntax.DID]uint64
	pendingHandle map[syntax.Handle]uint64

	didFlight    flightGroup[syntax.DID, didValue]
	handleFlight flightGroup[syntax.Handle, syntax.DID]
}

type didValue struct {
	doc   *DIDDocument
	ident *Identity
}

var _ Resolver = (*CachingResolver)(nil)

// NewCachingResolver returns a CachingResolver in front of upstream. DID
// documents are fetched with upstream.ResolveDIDDocument and Identities
// derived here.
func NewCachingResolver(upstream Resolver, opts CacheOptions) *CachingResolver {
	if opts.DIDTTL <= 0 {
		opts.DIDTTL = DefaultDIDTTL
	}
	if opts.DIDNegativeTTL <= 0 {
		opts.DIDNegativeTTL = DefaultDIDNegativeTTL
	}
	if opts.HandleTTL <= 0 {
		opts.HandleTTL = DefaultHandleTTL
	}
	if opts.HandleNegativeTTL <= 0 {
		opts.HandleNegativeTTL = DefaultHandleNegativeTTL
	}
	if opts.MaxEntries <= 0 {
		opts.MaxEntries = DefaultMaxCacheEntries
	}
	if opts.MinRefreshInterval <= 0 {
		opts.MinRefreshInterval = DefaultMinRefreshInterval
	}
	if opts.UpstreamTimeout <= 0 {
		opts.UpstreamTimeout = DefaultUpstreamTimeout
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	return &CachingResolver{
		upstream: upstream,
		opts:     opts,
		dids:     newLRU[syntax.DID, didValue](opts.MaxEntries),
		handles:  newLRU[syntax.Handle, syntax.DID](opts.MaxEntries),

		pendingDID:    make(map[syntax.DID]uint64),
		pendingHandle: make(map[syntax.Handle]uint64),
	}
}

// ResolveDID implements Resolver. The returned Identity is a copy the
// caller may modify (its shared parts are immutable).
func (c *CachingResolver) ResolveDID(ctx context.Context, did syntax.DID) (*Identity, error) {
	v, err := c.resolveDID(ctx, did, false)
	if err != nil {
		return nil, err
	}
	return v.ident.clone(), nil
}

// ResolveDIDDocument implements Resolver. The returned document is a copy.
func (c *CachingResolver) ResolveDIDDocument(ctx context.Context, did syntax.DID) (*DIDDocument, error) {
	v, err := c.resolveDID(ctx, did, false)
	if err != nil {
		return nil, err
	}
	return v.doc.clone(), nil
}

// RefreshDID fetches did again, bypassing the cache, for callers whose
// signature check failed with the cached key ("refresh once and retry").
// If the cached copy was fetched less than MinRefreshInterval ago it is
// returned as is. Concurrent refreshes are coalesced.
func (c *CachingResolver) RefreshDID(ctx context.Context, did syntax.DID) (*Identity, error) {
	v, err := c.resolveDID(ctx, did, true)
	if err != nil {
		return nil, err
	}
	return v.ident.clone(), nil
}

func (c *CachingResolver) resolveDID(ctx context.Context, did syntax.DID, refresh bool) (didValue, error) {
	now := c.opts.Now()
	c.mu.Lock()
	e, ok := c.dids.get(did)
	c.mu.Unlock()
	if ok && c.didFresh(e, refresh, now) {
		return e.val, e.err
	}
	return c.didFlight.do(ctx, did, func() (didValue, error) {
		c.mu.Lock()
		// A call that finished between our cache check and joining the
		// flight may have stored a fresh result already.
		if e, ok := c.dids.get(did); ok && c.didFresh(e, refresh, c.opts.Now()) {
			c.mu.Unlock()
			return e.val, e.err
		}
		c.seq++
		tok := c.seq
		c.pendingDID[did] = tok
		c.mu.Unlock()
		defer func() {
			c.mu.Lock()
			if c.pendingDID[did] == tok {
				delete(c.pendingDID, did)
			}
			c.mu.Unlock()
		}()
		uctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), c.opts.UpstreamTimeout)
		defer cancel()
		v, err := c.fetchDID(uctx, did)
		ttl := c.opts.DIDTTL
		if err != nil {
			if !definiteDIDFailure(err) {
				return v, err
			}
			ttl = c.opts.DIDNegativeTTL
		}
		now := c.opts.Now()
		c.mu.Lock()
		if c.pendingDID[did] == tok {
			c.dids.put(did, entry[didValue]{val: v, err: err, fetched: now, expires: now.Add(ttl)})
		}
		c.mu.Unlock()
		return v, err
	})
}

// didFresh reports whether a cached DID entry may be returned: unexpired
// for a normal resolution, fetched within MinRefreshInterval for a refresh.
func (c *CachingResolver) didFresh(e entry[didValue], refresh bool, now time.Time) bool {
	if refresh {
		return now.Sub(e.fetched) < c.opts.MinRefreshInterval
	}
	return now.Before(e.expires)
}

func (c *CachingResolver) fetchDID(ctx context.Context, did syntax.DID) (didValue, error) {
	doc, err := c.upstream.ResolveDIDDocument(ctx, did)
	if err != nil {
		return didValue{}, err
	}
	ident, err := NewIdentity(doc)
	if err != nil {
		return didValue{}, err
	}
	if ident.DID != did {
		return didValue{}, didErr(string(did), ErrDIDDocumentMismatch, nil)
	}
	return didValue{doc: doc.clone(), ident: ident}, nil
}

// ResolveHandle implements Resolver.
func (c *CachingResolver) ResolveHandle(ctx context.Context, handle syntax.Handle) (syntax.DID, error) {
	h := handle.Normalize()
	now := c.opts.Now()
	c.mu.Lock()
	e, ok := c.handles.get(h)
	c.mu.Unlock()
	if ok && now.Before(e.expires) {
		return e.val, e.err
	}
	return c.handleFlight.do(ctx, h, func() (syntax.DID, error) {
		c.mu.Lock()
		if e, ok := c.handles.get(h); ok && c.opts.Now().Before(e.expires) {
			c.mu.Unlock()
			return e.val, e.err
		}
		c.seq++
		tok := c.seq
		c.pendingHandle[h] = tok
		c.mu.Unlock()
		defer func() {
			c.mu.Lock()
			if c.pendingHandle[h] == tok {
				delete(c.pendingHandle, h)
			}
			c.mu.Unlock()
		}()
		uctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), c.opts.UpstreamTimeout)
		defer cancel()
		did, err := c.upstream.ResolveHandle(uctx, h)
		ttl := c.opts.HandleTTL
		if err != nil {
			if !definiteHandleFailure(err) {
				return did, err
			}
			ttl = c.opts.HandleNegativeTTL
		}
		now := c.opts.Now()
		c.mu.Lock()
		if c.pendingHandle[h] == tok {
			c.handles.put(h, entry[syntax.DID]{val: did, err: err, fetched: now, expires: now.Add(ttl)})
		}
		c.mu.Unlock()
		return did, err
	})
}

// Lookup implements Resolver, verifying handles through the caches.
func (c *CachingResolver) Lookup(ctx context.Context, id syntax.AtIdentifier) (*Identity, error) {
	return lookup(ctx, c, id)
}

// Purge drops everything cached about id: for a DID, its document and the
// resolution of the handle its document declared; for a handle, its
// resolution and the document of the DID it resolved to. Use it on
// #identity events.
func (c *CachingResolver) Purge(ctx context.Context, id syntax.AtIdentifier) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if did, err := id.AsDID(); err == nil {
		c.mu.Lock()
		if e, ok := c.dids.get(did); ok && e.val.ident != nil {
			c.purgeHandleLocked(e.val.ident.DeclaredHandle())
		}
		c.purgeDIDLocked(did)
		c.mu.Unlock()
		return nil
	}
	h, err := id.AsHandle()
	if err != nil {
		return err
	}
	h = h.Normalize()
	c.mu.Lock()
	if e, ok := c.handles.get(h); ok && e.err == nil {
		c.purgeDIDLocked(e.val)
	}
	c.purgeHandleLocked(h)
	c.mu.Unlock()
	return nil
}

// PurgeDID drops the cached document of did.
func (c *CachingResolver) PurgeDID(did syntax.DID) {
	c.mu.Lock()
	c.purgeDIDLocked(did)
	c.mu.Unlock()
}

// PurgeHandle drops the cached resolution of handle.
func (c *CachingResolver) PurgeHandle(handle syntax.Handle) {
	c.mu.Lock()
	c.purgeHandleLocked(handle.Normalize())
	c.mu.Unlock()
}

func (c *CachingResolver) purgeDIDLocked(did syntax.DID) {
	delete(c.pendingDID, did)
	c.dids.remove(did)
	c.didFlight.forget(did)
}

func (c *CachingResolver) purgeHandleLocked(h syntax.Handle) {
	delete(c.pendingHandle, h)
	c.handles.remove(h)
	c.handleFlight.forget(h)
}

// Len returns the number of cached DID and handle entries, expired ones
// included until they are evicted or replaced.
func (c *CachingResolver) Len() (dids, handles int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.dids.len(), c.handles.len()
}

func definiteDIDFailure(err error) bool {
	return errors.Is(err, ErrDIDNotFound) || errors.Is(err, ErrDIDDeactivated) ||
		errors.Is(err, ErrUnsupportedDIDMethod) || errors.Is(err, ErrInvalidDIDDocument) ||
		errors.Is(err, ErrDIDDocumentMismatch)
}

func definiteHandleFailure(err error) bool {
	if errors.Is(err, ErrHandleResolutionFailed) {
		return false
	}
	return errors.Is(err, ErrHandleNotFound) || errors.Is(err, ErrHandleAmbiguous) ||
		errors.Is(err, ErrHandleReservedTLD)
}

// clone copies a document so cached copies cannot be changed by callers.
func (d *DIDDocument) clone() *DIDDocument {
	if d == nil {
		return nil
	}
	c := *d
	c.Context = append([]byte(nil), d.Context...)
	c.AlsoKnownAs = append([]string(nil), d.AlsoKnownAs...)
	c.VerificationMethod = append([]VerificationMethod(nil), d.VerificationMethod...)
	c.Service = append([]Service(nil), d.Service...)
	return &c
}

// entry is one cached result.
type entry[V any] struct {
	val     V
	err     error
	fetched time.Time
	expires time.Time
}

// lru is a size-bounded map with least-recently-used eviction. It is not
// safe for concurrent use; CachingResolver guards it with its mutex.
type lru[K comparable, V any] struct {
	max   int
	order *list.List // front = most recently used; elements hold *lruItem
	items map[K]*list.Element
}

type lruItem[K comparable, V any] struct {
	key K
	e   entry[V]
}

func newLRU[K comparable, V any](max int) *lru[K, V] {
	return &lru[K, V]{max: max, order: list.New(), items: make(map[K]*list.Element)}
}

func (l *lru[K, V]) get(k K) (entry[V], bool) {
	el, ok := l.items[k]
	if !ok {
		return entry[V]{}, false
	}
	l.order.MoveToFront(el)
	return el.Value.(*lruItem[K, V]).e, true
}

func (l *lru[K, V]) put(k K, e entry[V]) {
	if el, ok := l.items[k]; ok {
		el.Value.(*lruItem[K, V]).e = e
		l.order.MoveToFront(el)
		return
	}
	l.items[k] = l.order.PushFront(&lruItem[K, V]{key: k, e: e})
	for l.order.Len() > l.max {
		last := l.order.Back()
		l.order.Remove(last)
		delete(l.items, last.Value.(*lruItem[K, V]).key)
	}
}

func (l *lru[K, V]) remove(k K) {
	if el, ok := l.items[k]; ok {
		l.order.Remove(el)
		delete(l.items, k)
	}
}

func (l *lru[K, V]) len() int { return l.order.Len() }
