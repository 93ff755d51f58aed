package auth

import (
	"errors"
	"strings"
	"sync"
	"testing"
	"time"
)

const pdsDID = "did:web:pds.example.com"

type sessFixture struct {
	clock *fakeClock
	store *MemoryRefreshStore
	iss   *SessionIssuer
}

func newSessFixture(t testing.TB) *sessFixture {
	t.Helper()
	clock := &fakeClock{t: t0}
	store := NewMemoryRefreshStore()
	return &sessFixture{clock: clock, store: store, iss: &SessionIssuer{
		Secret: []byte(strings.Repeat("s", 32)), ServiceDID: pdsDID, Now: clock.Now, Store: store,
	}}
}

func TestSessionRoundTrip(t *testing.T) {
	f := newSessFixture(t)
	for _, scope := range []Scope{ScopeAccess, ScopeAppPass, ScopeAppPassPrivileged} {
		pair, err := f.iss.CreateSession(ctx, userDID, scope)
		if err != nil {
			t.Fatal(err)
		}
		c, err := f.iss.VerifyAccess(pair.Access)
		if err != nil {
			t.Fatal(err)
		}
		if c.Subject != userDID || c.Scope != scope || c.Audience != pdsDID || !c.ExpiresAt.Equal(t0.Add(2*time.Hour)) {
			t.Fatalf("claims %+v", c)
		}
		r, err := f.iss.VerifyRefresh(pair.Refresh)
		if err != nil {
			t.Fatal(err)
		}
		if r.Scope != ScopeRefresh || r.JTI != pair.RefreshJTI || !r.ExpiresAt.Equal(t0.Add(90*24*time.Hour)) {
			t.Fatalf("refresh claims %+v", r)
		}
	}
	if f.store.Len() != 3 {
		t.Fatalf("store len %d", f.store.Len())
	}
	if _, err := f.iss.CreateSession(ctx, userDID, ScopeRefresh); err == nil {
		t.Fatal("refresh scope accepted for a session")
	}
	short := &SessionIssuer{Secret: []byte("short"), ServiceDID: f.iss.ServiceDID, Now: f.iss.Now, Store: f.iss.Store}
	if _, err := short.CreateSession(ctx, userDID, ScopeAccess); err == nil {
		t.Fatal("short secret accepted")
	}
}

func TestSessionTokenConfusion(t *testing.T) {
	f := newSessFixture(t)
	pair, err := f.iss.CreateSession(ctx, userDID, ScopeAccess)
	if err != nil {
		t.Fatal(err)
	}
	_, err = f.iss.VerifyAccess(pair.Refresh)
	expectErr(t, err, ErrInvalidToken, "InvalidToken", 400)
	_, err = f.iss.VerifyRefresh(pair.Access)
	expectErr(t, err, ErrInvalidToken, "InvalidToken", 400)
	_, err = f.iss.Rotate(ctx, pair.Access)
	expectErr(t, err, ErrInvalidToken, "InvalidToken", 400)

	// A service token is not an access token.
	sf := newSvcFixture(t, "k256")
	_, err = f.iss.VerifyAccess(sf.token(t, method))
	expectErr(t, err, ErrInvalidToken, "InvalidToken", 400)

	// Signed with the right secret but the wrong typ or scope.
	forge := func(hdr, claims map[string]any) string {
		tok, err := encodeJWT(hdr, claims, f.iss.sign)
		if err != nil {
			t.Fatal(err)
		}
		return tok
	}
	claims := map[string]any{"scope": "com.atproto.access", "sub": userDID, "aud": pdsDID, "exp": t0.Unix() + 60}
	for _, hdr := range []map[string]any{{"alg": "HS256"}, {"alg": "HS256", "typ": "JWT"}, {"alg": "HS384", "typ": "at+jwt"}, {"alg": "none", "typ": "at+jwt"}} {
		_, err = f.iss.VerifyAccess(forge(hdr, claims))
		expectErr(t, err, ErrInvalidToken, "InvalidToken", 400)
	}
	claims["scope"] = "com.atproto.refresh"
	_, err = f.iss.VerifyAccess(forge(map[string]any{"alg": "HS256", "typ": "at+jwt"}, claims))
	expectErr(t, err, ErrInvalidToken, "InvalidToken", 400)
	claims["scope"] = "com.atproto.access"
	claims["aud"] = "did:web:other.example.com"
	_, err = f.iss.VerifyAccess(forge(map[string]any{"alg": "HS256", "typ": "at+jwt"}, claims))
	expectErr(t, err, ErrInvalidToken, "InvalidToken", 400)
}

func TestSessionExpiredAndTampered(t *testing.T) {
	f := newSessFixture(t)
	pair, err := f.iss.CreateSession(ctx, userDID, ScopeAccess)
	if err != nil {
		t.Fatal(err)
	}
	parts := strings.Split(pair.Access, ".")
	// Tampered payload (changed sub) or signature.
	evil := b64.EncodeToString([]byte(`{"scope":"com.atproto.access","sub":"did:plc:attacker","aud":"` + pdsDID + `","exp":9999999999}`))
	for _, tok := range []string{
		parts[0] + "." + evil + "." + parts[2],
		parts[0] + "." + parts[1] + "." + b64.EncodeToString(make([]byte, 32)),
		parts[0] + "." + parts[1] + "." + parts[2][:len(parts[2])-2],
		"garbage",
	} {
		_, err := f.iss.VerifyAccess(tok)
		expectErr(t, err, ErrInvalidToken, "InvalidToken", 400)
	}
	other := &SessionIssuer{Secret: []byte(strings.Repeat("t", 32)), ServiceDID: f.iss.ServiceDID, Now: f.iss.Now}
	_, err = other.VerifyAccess(pair.Access)
	expectErr(t, err, ErrInvalidToken, "InvalidToken", 400)

	// Verified twice before it expires (the second time from what the
	// issuer remembers), then refused once expired.
	for range 2 {
		c, err := f.iss.VerifyAccess(pair.Access)
		if err != nil || c.Subject != userDID {
			t.Fatalf("VerifyAccess of a fresh token: %+v, %v", c, err)
		}
		c.Subject = "did:plc:changedbythecaller"
	}
	f.clock.Advance(2*time.Hour + time.Second)
	_, err = f.iss.VerifyAccess(pair.Access)
	expectErr(t, err, ErrExpiredToken, "ExpiredToken", 400)
	// An expired token that is also tampered is invalid, not expired.
	_, err = f.iss.VerifyAccess(parts[0] + "." + parts[1] + "." + b64.EncodeToString(make([]byte, 32)))
	expectErr(t, err, ErrInvalidToken, "InvalidToken", 400)
	// The refresh token still works.
	if _, err := f.iss.VerifyRefresh(pair.Refresh); err != nil {
		t.Fatal(err)
	}
}

func TestSessionRotation(t *testing.T) {
	f := newSessFixture(t)
	first, err := f.iss.CreateSession(ctx, userDID, ScopeAppPass)
	if err != nil {
		t.Fatal(err)
	}
	f.clock.Advance(time.Hour)
	second, err := f.iss.Rotate(ctx, first.Refresh)
	if err != nil {
		t.Fatal(err)
	}
	if second.RefreshJTI == first.RefreshJTI || second.Refresh == first.Refresh {
		t.Fatal("not rotated")
	}
	c, err := f.iss.VerifyAccess(second.Access)
	if err != nil || c.Scope != ScopeAppPass {
		t.Fatalf("new access: %+v %v", c, err)
	}
	// Reuse within the grace period: same pair.
	f.clock.Advance(time.Hour)
	again, err := f.iss.Rotate(ctx, first.Refresh)
	if err != nil {
		t.Fatal(err)
	}
	if *again != *second {
		t.Fatalf("reuse gave a different pair")
	}
	// After the grace period (2h from rotation) the old token is revoked.
	f.clock.Advance(time.Hour)
	_, err = f.iss.Rotate(ctx, first.Refresh)
	expectErr(t, err, ErrTokenRevoked, "ExpiredToken", 400)
	if !errors.Is(err, ErrTokenRevoked) {
		t.Fatal(err)
	}
	// The new one still rotates.
	third, err := f.iss.Rotate(ctx, second.Refresh)
	if err != nil {
		t.Fatal(err)
	}
	// Logout revokes immediately.
	if err := f.iss.Revoke(ctx, third.Refresh); err != nil {
		t.Fatal(err)
	}
	_, err = f.iss.Rotate(ctx, third.Refresh)
	expectErr(t, err, ErrTokenRevoked, "ExpiredToken", 400)

	// Grace never extends past the token's own expiry.
	g := newSessFixture(t)
	g.iss.RefreshTTL = 3 * time.Hour
	p, _ := g.iss.CreateSession(ctx, userDID, ScopeAccess)
	g.clock.Advance(150 * time.Minute)
	if _, err := g.iss.Rotate(ctx, p.Refresh); err != nil {
		t.Fatal(err)
	}
	g.clock.Advance(31 * time.Minute)
	_, err = g.iss.Rotate(ctx, p.Refresh)
	expectErr(t, err, ErrExpiredToken, "ExpiredToken", 400)
	g.store.DeleteExpired(g.clock.Now())
	if g.store.Len() != 1 {
		t.Fatalf("store len %d", g.store.Len())
	}
	if err := g.store.RevokeDID(ctx, userDID); err != nil || g.store.Len() != 0 {
		t.Fatal("RevokeDID")
	}
}

func TestSessionConcurrentRotation(t *testing.T) {
	f := newSessFixture(t)
	first, err := f.iss.CreateSession(ctx, userDID, ScopeAccess)
	if err != nil {
		t.Fatal(err)
	}
	const n = 16
	results := make([]*TokenPair, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			results[i], errs[i] = f.iss.Rotate(ctx, first.Refresh)
		}()
	}
	wg.Wait()
	for i := range n {
		if errs[i] != nil {
			t.Fatal(errs[i])
		}
		if *results[i] != *results[0] {
			t.Fatalf("result %d differs", i)
		}
	}
	// Only the old record and the winning successor remain.
	if f.store.Len() != 2 {
		t.Fatalf("store len %d", f.store.Len())
	}
	if _, err := f.iss.Rotate(ctx, results[0].Refresh); err != nil {
		t.Fatal(err)
	}
}
