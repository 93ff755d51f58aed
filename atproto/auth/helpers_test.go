package auth

import (
	"context"
	"errors"
	"math/big"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/welkin-atproto/welkin/atproto/crypto"
	"github.com/welkin-atproto/welkin/atproto/identity"
	"github.com/welkin-atproto/welkin/atproto/syntax"
)

// fakeResolver serves DID documents from memory. cached is what
// ResolveDID returns; fresh (if set) is what RefreshDID returns.
type fakeResolver struct {
	mu        sync.Mutex
	cached    map[syntax.DID]*identity.Identity
	fresh     map[syntax.DID]*identity.Identity
	refreshes int
}

func newFakeResolver() *fakeResolver {
	return &fakeResolver{cached: map[syntax.DID]*identity.Identity{}, fresh: map[syntax.DID]*identity.Identity{}}
}

func (r *fakeResolver) ResolveDID(_ context.Context, did syntax.DID) (*identity.Identity, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	id, ok := r.cached[did]
	if !ok {
		return nil, errors.New("not found")
	}
	return id, nil
}

func (r *fakeResolver) RefreshDID(_ context.Context, did syntax.DID) (*identity.Identity, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.refreshes++
	id, ok := r.fresh[did]
	if !ok {
		id, ok = r.cached[did]
	}
	if !ok {
		return nil, errors.New("not found")
	}
	r.cached[did] = id
	return id, nil
}

// plainResolver hides RefreshDID.
type plainResolver struct{ r *fakeResolver }

func (p plainResolver) ResolveDID(ctx context.Context, did syntax.DID) (*identity.Identity, error) {
	return p.r.ResolveDID(ctx, did)
}

func makeIdentity(t testing.TB, did string, keys map[string]crypto.PublicKey) *identity.Identity {
	t.Helper()
	doc := &identity.DIDDocument{ID: did}
	for id, k := range keys {
		doc.VerificationMethod = append(doc.VerificationMethod, identity.VerificationMethod{
			ID: did + "#" + id, Type: "Multikey", Controller: did, PublicKeyMultibase: k.Multibase(),
		})
	}
	ident, err := identity.NewIdentity(doc)
	if err != nil {
		t.Fatal(err)
	}
	return ident
}

type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

var t0 = time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)

func genKey(t testing.TB, kt crypto.KeyType) crypto.PrivateKey {
	t.Helper()
	var k crypto.PrivateKey
	var err error
	if kt == crypto.KeyTypeP256 {
		k, err = crypto.GenerateP256()
	} else {
		k, err = crypto.GenerateK256()
	}
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// expectErr asserts err is an *Error matching kind with the given name and
// status.
func expectErr(t *testing.T, err error, kind error, name string, status int) {
	t.Helper()
	if err == nil {
		t.Fatalf("expected %s, got nil", name)
	}
	var ae *Error
	if !errors.As(err, &ae) {
		t.Fatalf("expected *Error, got %T %v", err, err)
	}
	if !errors.Is(err, kind) {
		t.Fatalf("expected kind %v, got %v", kind, err)
	}
	if ae.ErrorName() != name || ae.Status() != status {
		t.Fatalf("got %s/%d, want %s/%d (%v)", ae.ErrorName(), ae.Status(), name, status, err)
	}
}

// flipS replaces the signature of token by its high-S twin (r, n-s).
func flipS(t *testing.T, token string, kt crypto.KeyType) string {
	t.Helper()
	var n *big.Int
	if kt == crypto.KeyTypeP256 {
		n, _ = new(big.Int).SetString("ffffffff00000000ffffffffffffffffbce6faada7179e84f3b9cac2fc632551", 16)
	} else {
		n, _ = new(big.Int).SetString("fffffffffffffffffffffffffffffffebaaedce6af48a03bbfd25e8cd0364141", 16)
	}
	i := strings.LastIndexByte(token, '.')
	sig, err := b64.DecodeString(token[i+1:])
	if err != nil || len(sig) != 64 {
		t.Fatalf("bad sig: %v", err)
	}
	s := new(big.Int).SetBytes(sig[32:])
	s.Sub(n, s)
	out := make([]byte, 64)
	copy(out, sig[:32])
	s.FillBytes(out[32:])
	return token[:i+1] + b64.EncodeToString(out)
}

// The identity package's resolvers plug in directly.
var (
	_ DIDResolver  = (*identity.BaseResolver)(nil)
	_ DIDResolver  = (*identity.CachingResolver)(nil)
	_ DIDRefresher = (*identity.CachingResolver)(nil)
)
