package identity

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/welkin-atproto/welkin/atproto/syntax"
)

// fakeUpstream is a counting Resolver. When gate is set, DID document
// fetches wait for it to be closed.
type fakeUpstream struct {
	mu          sync.Mutex
	docs        map[syntax.DID][]byte
	didErrs     map[syntax.DID]error
	handles     map[syntax.Handle]syntax.DID
	gate        chan struct{}
	didCalls    atomic.Int64
	handleCalls atomic.Int64
}

func newFakeUpstream() *fakeUpstream {
	return &fakeUpstream{docs: map[syntax.DID][]byte{}, didErrs: map[syntax.DID]error{}, handles: map[syntax.Handle]syntax.DID{}}
}

func (f *fakeUpstream) ResolveDIDDocument(ctx context.Context, did syntax.DID) (*DIDDocument, error) {
	f.didCalls.Add(1)
	f.mu.Lock()
	gate := f.gate
	f.mu.Unlock()
	if gate != nil {
		select {
		case <-gate:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if err, ok := f.didErrs[did]; ok {
		return nil, err
	}
	b, ok := f.docs[did]
	if !ok {
		return nil, didErr(string(did), ErrDIDNotFound, nil)
	}
	return ParseDIDDocument(b)
}

func (f *fakeUpstream) ResolveDID(ctx context.Context, did syntax.DID) (*Identity, error) {
	doc, err := f.ResolveDIDDocument(ctx, did)
	if err != nil {
		return nil, err
	}
	return NewIdentity(doc)
}

func (f *fakeUpstream) ResolveHandle(ctx context.Context, h syntax.Handle) (syntax.DID, error) {
	f.handleCalls.Add(1)
	f.mu.Lock()
	defer f.mu.Unlock()
	if did, ok := f.handles[h]; ok {
		return did, nil
	}
	return "", &HandleError{Handle: string(h), Kind: ErrHandleNotFound}
}

func (f *fakeUpstream) Lookup(ctx context.Context, id syntax.AtIdentifier) (*Identity, error) {
	return lookup(ctx, f, id)
}

func (f *fakeUpstream) setDoc(t testing.TB, did syntax.DID, handle string) {
	b := docJSON(t, did, handle, newK256(t), "https://pds.example.com")
	f.mu.Lock()
	f.docs[did] = b
	f.mu.Unlock()
}

func (f *fakeUpstream) setGate(g chan struct{}) {
	f.mu.Lock()
	f.gate = g
	f.mu.Unlock()
}

func TestCacheCoalescing(t *testing.T) {
	const n = 1000
	up := newFakeUpstream()
	up.setDoc(t, testDID1, "alice.test")
	gate := make(chan struct{})
	up.setGate(gate)
	c := NewCachingResolver(up, CacheOptions{})

	var wg sync.WaitGroup
	results := make([]*Identity, n)
	errs := make([]error, n)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			results[i], errs[i] = c.ResolveDID(context.Background(), testDID1)
		}()
	}
	// Barrier: every caller has joined the one call in flight.
	waitFor(t, "all callers to join", func() bool { return c.didFlight.waiters(testDID1) == n })
	close(gate)
	wg.Wait()

	if got := up.didCalls.Load(); got != 1 {
		t.Fatalf("%d upstream calls, want 1", got)
	}
	for i := range n {
		if errs[i] != nil || results[i].DID != testDID1 {
			t.Fatalf("caller %d: %v", i, errs[i])
		}
	}
	if _, err := c.ResolveDID(context.Background(), testDID1); err != nil || up.didCalls.Load() != 1 {
		t.Errorf("cached call: %v, %d upstream calls", err, up.didCalls.Load())
	}
}

func TestCacheHandleCoalescingAndLookup(t *testing.T) {
	up := newFakeUpstream()
	up.setDoc(t, testDID1, "alice.test")
	up.handles["alice.test"] = testDID1
	c := NewCachingResolver(up, CacheOptions{})
	var wg sync.WaitGroup
	for range 200 {
		wg.Add(2)
		go func() {
			defer wg.Done()
			ident, err := c.Lookup(context.Background(), "Alice.test")
			if err != nil || ident.Handle != "alice.test" {
				t.Errorf("by handle: %v", err)
			}
		}()
		go func() {
			defer wg.Done()
			ident, err := c.Lookup(context.Background(), testDID1.AtIdentifier())
			if err != nil || ident.Handle != "alice.test" {
				t.Errorf("by DID: %v", err)
			}
		}()
	}
	wg.Wait()
	// Whether or not the calls overlapped, each key is fetched once.
	if d, h := up.didCalls.Load(), up.handleCalls.Load(); d != 1 || h != 1 {
		t.Errorf("upstream calls: %d DID, %d handle", d, h)
	}
}

func TestCacheTTL(t *testing.T) {
	ctx := context.Background()
	clock := newFakeClock()
	up := newFakeUpstream()
	up.setDoc(t, testDID1, "alice.test")
	up.handles["alice.test"] = testDID1
	c := NewCachingResolver(up, CacheOptions{Now: clock.Now})

	resolve := func() {
		t.Helper()
		if _, err := c.ResolveDID(ctx, testDID1); err != nil {
			t.Fatal(err)
		}
	}
	resolve()
	clock.Advance(DefaultDIDTTL - time.Second)
	resolve()
	if n := up.didCalls.Load(); n != 1 {
		t.Fatalf("before expiry: %d calls", n)
	}
	clock.Advance(2 * time.Second)
	resolve()
	if n := up.didCalls.Load(); n != 2 {
		t.Fatalf("after expiry: %d calls", n)
	}

	// Handles have their own, shorter TTL.
	for range 2 {
		if _, err := c.ResolveHandle(ctx, "alice.test"); err != nil {
			t.Fatal(err)
		}
	}
	clock.Advance(DefaultHandleTTL + time.Second)
	if _, err := c.ResolveHandle(ctx, "alice.test"); err != nil {
		t.Fatal(err)
	}
	if n := up.handleCalls.Load(); n != 2 {
		t.Errorf("handle calls: %d", n)
	}
}

func TestCacheNegative(t *testing.T) {
	ctx := context.Background()
	clock := newFakeClock()
	up := newFakeUpstream()
	c := NewCachingResolver(up, CacheOptions{Now: clock.Now, DIDNegativeTTL: 5 * time.Minute})

	// Definite failures are cached for the negative TTL.
	for range 3 {
		if _, err := c.ResolveDID(ctx, testDID1); !errors.Is(err, ErrDIDNotFound) {
			t.Fatalf("err = %v", err)
		}
	}
	if n := up.didCalls.Load(); n != 1 {
		t.Fatalf("%d calls", n)
	}
	up.setDoc(t, testDID1, "alice.test")
	clock.Advance(4 * time.Minute)
	if _, err := c.ResolveDID(ctx, testDID1); !errors.Is(err, ErrDIDNotFound) {
		t.Fatalf("still negative: %v", err)
	}
	clock.Advance(2 * time.Minute)
	if _, err := c.ResolveDID(ctx, testDID1); err != nil {
		t.Fatalf("after negative TTL: %v", err)
	}

	// Transient failures are not cached.
	up.mu.Lock()
	up.didErrs[testDID2] = didErr(string(testDID2), ErrDIDResolutionFailed, errors.New("connection reset"))
	up.mu.Unlock()
	before := up.didCalls.Load()
	for range 3 {
		if _, err := c.ResolveDID(ctx, testDID2); !errors.Is(err, ErrDIDResolutionFailed) {
			t.Fatalf("err = %v", err)
		}
	}
	if n := up.didCalls.Load() - before; n != 3 {
		t.Errorf("transient: %d calls, want 3", n)
	}

	// Negative handle results are cached too.
	for range 3 {
		if _, err := c.ResolveHandle(ctx, "nobody.test"); !errors.Is(err, ErrHandleNotFound) {
			t.Fatalf("err = %v", err)
		}
	}
	if n := up.handleCalls.Load(); n != 1 {
		t.Errorf("handle calls: %d", n)
	}
}

func TestCachePurge(t *testing.T) {
	ctx := context.Background()
	up := newFakeUpstream()
	up.setDoc(t, testDID1, "alice.test")
	up.handles["alice.test"] = testDID1
	c := NewCachingResolver(up, CacheOptions{})

	warm := func() {
		t.Helper()
		if _, err := c.Lookup(ctx, testDID1.AtIdentifier()); err != nil {
			t.Fatal(err)
		}
	}
	counts := func() (int64, int64) { return up.didCalls.Load(), up.handleCalls.Load() }

	warm()
	if d, h := counts(); d != 1 || h != 1 {
		t.Fatalf("warm: %d %d", d, h)
	}
	// Purge by DID drops the document and the handle it declared.
	if err := c.Purge(ctx, testDID1.AtIdentifier()); err != nil {
		t.Fatal(err)
	}
	warm()
	if d, h := counts(); d != 2 || h != 2 {
		t.Fatalf("after DID purge: %d %d", d, h)
	}
	// Purge by handle drops the handle and the DID it resolved to.
	if err := c.Purge(ctx, "ALICE.test"); err != nil {
		t.Fatal(err)
	}
	warm()
	if d, h := counts(); d != 3 || h != 3 {
		t.Fatalf("after handle purge: %d %d", d, h)
	}
	c.PurgeDID(testDID1)
	warm()
	if d, h := counts(); d != 4 || h != 3 {
		t.Fatalf("after PurgeDID: %d %d", d, h)
	}
	c.PurgeHandle("alice.test")
	warm()
	if d, h := counts(); d != 4 || h != 4 {
		t.Fatalf("after PurgeHandle: %d %d", d, h)
	}
	if dids, handles := c.Len(); dids != 1 || handles != 1 {
		t.Errorf("Len = %d, %d", dids, handles)
	}
}

func TestCachePurgeDuringFetch(t *testing.T) {
	ctx := context.Background()
	up := newFakeUpstream()
	up.setDoc(t, testDID1, "old.test")
	gate := make(chan struct{})
	up.setGate(gate)
	c := NewCachingResolver(up, CacheOptions{})

	done := make(chan *Identity, 1)
	go func() {
		ident, err := c.ResolveDID(ctx, testDID1)
		if err != nil {
			t.Error(err)
		}
		done <- ident
	}()
	waitFor(t, "fetch to start", func() bool { return up.didCalls.Load() == 1 })
	// An #identity event arrives while the old document is being fetched.
	up.setDoc(t, testDID1, "new.test")
	c.PurgeDID(testDID1)
	close(gate)
	<-done

	ident, err := c.ResolveDID(ctx, testDID1)
	if err != nil {
		t.Fatal(err)
	}
	if ident.Handle != "new.test" || up.didCalls.Load() != 2 {
		t.Errorf("handle %q after %d calls; the pre-purge fetch must not be cached", ident.Handle, up.didCalls.Load())
	}
}

func TestCacheRefreshDID(t *testing.T) {
	ctx := context.Background()
	clock := newFakeClock()
	up := newFakeUpstream()
	up.setDoc(t, testDID1, "alice.test")
	c := NewCachingResolver(up, CacheOptions{Now: clock.Now, MinRefreshInterval: time.Minute})

	first, err := c.ResolveDID(ctx, testDID1)
	if err != nil {
		t.Fatal(err)
	}
	up.setDoc(t, testDID1, "alice.test") // key rotated
	// Refreshing right after a fetch is rate-limited.
	if _, err := c.RefreshDID(ctx, testDID1); err != nil || up.didCalls.Load() != 1 {
		t.Fatalf("rate-limited refresh: %v, %d calls", err, up.didCalls.Load())
	}
	clock.Advance(2 * time.Minute)
	second, err := c.RefreshDID(ctx, testDID1)
	if err != nil || up.didCalls.Load() != 2 {
		t.Fatalf("refresh: %v, %d calls", err, up.didCalls.Load())
	}
	k1, _ := first.SigningKey()
	k2, _ := second.SigningKey()
	if k1.Equal(k2) {
		t.Error("refresh returned the old key")
	}
	// The refreshed copy is now the cached one.
	third, err := c.ResolveDID(ctx, testDID1)
	if k3, _ := third.SigningKey(); err != nil || !k3.Equal(k2) || up.didCalls.Load() != 2 {
		t.Errorf("after refresh: %v", err)
	}
}

func TestCacheEviction(t *testing.T) {
	ctx := context.Background()
	up := newFakeUpstream()
	for _, d := range []syntax.DID{testDID1, testDID2, testDID3} {
		up.setDoc(t, d, "")
	}
	c := NewCachingResolver(up, CacheOptions{MaxEntries: 2})
	for _, d := range []syntax.DID{testDID1, testDID2, testDID1, testDID3} {
		if _, err := c.ResolveDID(ctx, d); err != nil {
			t.Fatal(err)
		}
	}
	if dids, _ := c.Len(); dids != 2 {
		t.Errorf("Len = %d", dids)
	}
	// DID2 was least recently used and is gone; DID1 survived.
	before := up.didCalls.Load()
	_, _ = c.ResolveDID(ctx, testDID1)
	if up.didCalls.Load() != before {
		t.Error("DID1 was evicted")
	}
	_, _ = c.ResolveDID(ctx, testDID2)
	if up.didCalls.Load() != before+1 {
		t.Error("DID2 was not evicted")
	}
}

func TestCacheCallerCancellation(t *testing.T) {
	up := newFakeUpstream()
	up.setDoc(t, testDID1, "alice.test")
	gate := make(chan struct{})
	up.setGate(gate)
	c := NewCachingResolver(up, CacheOptions{})

	ctx, cancel := context.WithCancel(context.Background())
	first := make(chan error, 1)
	go func() {
		_, err := c.ResolveDID(ctx, testDID1)
		first <- err
	}()
	second := make(chan error, 1)
	go func() {
		_, err := c.ResolveDID(context.Background(), testDID1)
		second <- err
	}()
	waitFor(t, "both callers to join", func() bool { return c.didFlight.waiters(testDID1) == 2 })
	cancel()
	if err := <-first; !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled caller: %v", err)
	}
	close(gate)
	if err := <-second; err != nil {
		t.Errorf("other caller: %v", err)
	}
	if n := up.didCalls.Load(); n != 1 {
		t.Errorf("%d calls", n)
	}
}

func TestCacheReturnsCopies(t *testing.T) {
	ctx := context.Background()
	up := newFakeUpstream()
	up.setDoc(t, testDID1, "alice.test")
	c := NewCachingResolver(up, CacheOptions{})
	a, err := c.ResolveDID(ctx, testDID1)
	if err != nil {
		t.Fatal(err)
	}
	a.Handle = "mallory.test"
	doc, _ := c.ResolveDIDDocument(ctx, testDID1)
	doc.AlsoKnownAs[0] = "at://mallory.test"
	b, _ := c.ResolveDID(ctx, testDID1)
	doc2, _ := c.ResolveDIDDocument(ctx, testDID1)
	if b.Handle != "alice.test" || doc2.AlsoKnownAs[0] != "at://alice.test" {
		t.Errorf("cache was modified through a returned value: %q %q", b.Handle, doc2.AlsoKnownAs[0])
	}
}
