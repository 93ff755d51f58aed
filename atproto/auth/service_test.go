package auth

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/welkin-atproto/welkin/atproto/crypto"
	"github.com/welkin-atproto/welkin/atproto/syntax"
)

const (
	userDID = "did:plc:ewvi7nxzyoun6zhxrhs64oiz"
	svcDID  = "did:web:appview.example.com"
	method  = "app.bsky.feed.getTimeline"
)

type svcFixture struct {
	key      crypto.PrivateKey
	resolver *fakeResolver
	clock    *fakeClock
	v        *ServiceVerifier
}

func newSvcFixture(t testing.TB, kt crypto.KeyType) *svcFixture {
	t.Helper()
	key := genKey(t, kt)
	r := newFakeResolver()
	r.cached[userDID] = makeIdentity(t, userDID, map[string]crypto.PublicKey{"atproto": key.Public()})
	clock := &fakeClock{t: t0}
	return &svcFixture{key: key, resolver: r, clock: clock, v: &ServiceVerifier{
		Resolver: r, Audience: svcDID, Now: clock.Now, ReplayCache: NewMemoryReplayCache(0),
	}}
}

func (f *svcFixture) token(t testing.TB, lxm string) string {
	t.Helper()
	tok, err := CreateServiceToken(f.key, userDID, svcDID, lxm, f.clock.Now(), 0)
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

var ctx = context.Background()

func TestServiceRoundTrip(t *testing.T) {
	for _, kt := range []crypto.KeyType{crypto.KeyTypeK256, crypto.KeyTypeP256} {
		t.Run(string(kt), func(t *testing.T) {
			f := newSvcFixture(t, kt)
			tok := f.token(t, method)
			if got := strings.Count(tok, "."); got != 2 {
				t.Fatalf("%d dots", got)
			}
			jwt, err := parseJWT(tok)
			if err != nil {
				t.Fatal(err)
			}
			if jwt.header.Alg != kt.JWTAlg() || *jwt.header.Typ != "JWT" {
				t.Fatalf("header %+v", jwt.header)
			}
			c, err := f.v.Verify(ctx, tok, method)
			if err != nil {
				t.Fatal(err)
			}
			if c.Issuer != userDID || c.ServiceID != "" || c.Audience != svcDID || c.LexiconMethod != method ||
				len(c.JTI) != 32 || !c.IssuedAt.Equal(t0) || !c.ExpiresAt.Equal(t0.Add(time.Minute)) {
				t.Fatalf("claims %+v", c)
			}
		})
	}
}

func TestServiceLabelerFragment(t *testing.T) {
	f := newSvcFixture(t, crypto.KeyTypeK256)
	labelKey := genKey(t, crypto.KeyTypeP256)
	f.resolver.cached[userDID] = makeIdentity(t, userDID, map[string]crypto.PublicKey{
		"atproto": f.key.Public(), "atproto_label": labelKey.Public(),
	})
	iss := userDID + "#atproto_labeler"
	tok, err := CreateServiceToken(labelKey, iss, svcDID, method, t0, 0)
	if err != nil {
		t.Fatal(err)
	}
	c, err := f.v.Verify(ctx, tok, method)
	if err != nil {
		t.Fatal(err)
	}
	if c.Issuer != userDID || c.ServiceID != "atproto_labeler" {
		t.Fatalf("claims %+v", c)
	}
	// The #atproto key does not sign for the labeler service.
	tok, _ = CreateServiceToken(f.key, iss, svcDID, method, t0, 0)
	_, err = f.v.Verify(ctx, tok, method)
	expectErr(t, err, ErrBadJwtSignature, "BadJwtSignature", 401)
	// Unknown service fragments are refused.
	if _, err := CreateServiceToken(f.key, userDID+"#atproto_pds", svcDID, method, t0, 0); err == nil {
		t.Fatal("unknown fragment accepted by CreateServiceToken")
	}
	tok = craft(t, f.key, map[string]any{"alg": "ES256K", "typ": "JWT"}, map[string]any{
		"iss": userDID + "#atproto_pds", "aud": svcDID, "exp": t0.Unix() + 60, "lxm": method, "jti": "x"})
	_, err = f.v.Verify(ctx, tok, method)
	expectErr(t, err, ErrBadJwt, "BadJwt", 401)
}

func TestServiceExpired(t *testing.T) {
	f := newSvcFixture(t, crypto.KeyTypeK256)
	tok := f.token(t, method)
	f.clock.Advance(time.Minute) // now == exp: still valid, as in the reference
	if _, err := f.v.Verify(ctx, tok, method); err != nil {
		t.Fatal(err)
	}
	tok = f.token(t, method)
	f.clock.Advance(time.Minute + time.Second)
	_, err := f.v.Verify(ctx, tok, method)
	expectErr(t, err, ErrJwtExpired, "JwtExpired", 401)
}

func TestServiceAudience(t *testing.T) {
	f := newSvcFixture(t, crypto.KeyTypeK256)
	tok, err := CreateServiceToken(f.key, userDID, "did:web:other.example.com", method, t0, 0)
	if err != nil {
		t.Fatal(err)
	}
	_, err = f.v.Verify(ctx, tok, method)
	expectErr(t, err, ErrBadJwtAudience, "BadJwtAudience", 401)

	v := *f.v
	v.Audience = ""
	v.AudienceFunc = func(aud string) bool { return aud == svcDID || aud == svcDID+"#bsky_appview" }
	tok, _ = CreateServiceToken(f.key, userDID, svcDID+"#bsky_appview", method, t0, 0)
	if _, err := v.Verify(ctx, tok, method); err != nil {
		t.Fatal(err)
	}
	v.AudienceFunc = nil
	if _, err := v.Verify(ctx, tok, method); err == nil || errors.As(err, new(*Error)) {
		t.Fatalf("verifier without audience: %v", err)
	}
}

func TestServiceLexiconMethod(t *testing.T) {
	f := newSvcFixture(t, crypto.KeyTypeK256)
	_, err := f.v.Verify(ctx, f.token(t, "app.bsky.feed.getAuthorFeed"), method)
	expectErr(t, err, ErrBadJwtLexiconMethod, "BadJwtLexiconMethod", 401)

	noLxm := f.token(t, "")
	_, err = f.v.Verify(ctx, noLxm, method)
	expectErr(t, err, ErrBadJwtLexiconMethod, "BadJwtLexiconMethod", 401)

	// Empty requested method skips the check (reference: lxm null).
	if _, err := f.v.Verify(ctx, f.token(t, method), ""); err != nil {
		t.Fatal(err)
	}
	v := *f.v
	v.AllowMissingLxm = true
	if _, err := v.Verify(ctx, noLxm, method); err != nil {
		t.Fatal(err)
	}
	// A wrong lxm is refused even then.
	_, err = v.Verify(ctx, f.token(t, "com.atproto.repo.createRecord"), method)
	expectErr(t, err, ErrBadJwtLexiconMethod, "BadJwtLexiconMethod", 401)
}

func TestServiceKeyRotationRefresh(t *testing.T) {
	f := newSvcFixture(t, crypto.KeyTypeK256)
	newKey := genKey(t, crypto.KeyTypeP256) // rotated to another curve too
	f.resolver.fresh[userDID] = makeIdentity(t, userDID, map[string]crypto.PublicKey{"atproto": newKey.Public()})
	tok, err := CreateServiceToken(newKey, userDID, svcDID, method, t0, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.v.Verify(ctx, tok, method); err != nil {
		t.Fatal(err)
	}
	if f.resolver.refreshes != 1 {
		t.Fatalf("refreshes = %d", f.resolver.refreshes)
	}

	// Signed by a key the fresh document does not have either.
	stranger := genKey(t, crypto.KeyTypeK256)
	tok, _ = CreateServiceToken(stranger, userDID, svcDID, method, t0, 0)
	_, err = f.v.Verify(ctx, tok, method)
	expectErr(t, err, ErrBadJwtSignature, "BadJwtSignature", 401)
	if f.resolver.refreshes != 2 {
		t.Fatalf("refreshes = %d, want exactly one more", f.resolver.refreshes)
	}

	// Without a refresher the stale key is final.
	f2 := newSvcFixture(t, crypto.KeyTypeK256)
	f2.resolver.fresh[userDID] = f.resolver.fresh[userDID]
	f2.v.Resolver = plainResolver{f2.resolver}
	tok, _ = CreateServiceToken(newKey, userDID, svcDID, method, t0, 0)
	_, err = f2.v.Verify(ctx, tok, method)
	expectErr(t, err, ErrBadJwtSignature, "BadJwtSignature", 401)

	// Unknown issuer.
	tok, _ = CreateServiceToken(newKey, "did:plc:unknownunknownunknown", svcDID, method, t0, 0)
	_, err = f.v.Verify(ctx, tok, method)
	expectErr(t, err, ErrUnresolvableIssuer, "BadJwt", 401)
}

// craft signs arbitrary header and claims with key.
func craft(t testing.TB, key crypto.PrivateKey, hdr, claims map[string]any) string {
	t.Helper()
	tok, err := encodeJWT(hdr, claims, key.HashAndSign)
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

func validClaims() map[string]any {
	return map[string]any{"iss": userDID, "aud": svcDID, "exp": t0.Unix() + 60, "iat": t0.Unix(), "lxm": method, "jti": "abc"}
}

func TestServiceAlg(t *testing.T) {
	f := newSvcFixture(t, crypto.KeyTypeK256)
	// alg none, with an empty signature and with a real one.
	hdr := b64.EncodeToString([]byte(`{"alg":"none","typ":"JWT"}`))
	pl := b64.EncodeToString([]byte(`{"iss":"` + userDID + `","aud":"` + svcDID + `","exp":9999999999,"lxm":"` + method + `"}`))
	for _, tok := range []string{hdr + "." + pl + ".", craft(t, f.key, map[string]any{"alg": "none"}, validClaims())} {
		_, err := f.v.Verify(ctx, tok, method)
		expectErr(t, err, ErrBadJwt, "BadJwt", 401)
	}
	for _, alg := range []string{"HS256", "RS256", "es256k", "EdDSA"} {
		_, err := f.v.Verify(ctx, craft(t, f.key, map[string]any{"alg": alg, "typ": "JWT"}, validClaims()), method)
		expectErr(t, err, ErrBadJwt, "BadJwt", 401)
	}
	// K-256 key, header claims ES256: algorithm confusion.
	_, err := f.v.Verify(ctx, craft(t, f.key, map[string]any{"alg": "ES256", "typ": "JWT"}, validClaims()), method)
	expectErr(t, err, ErrBadJwtSignature, "BadJwtSignature", 401)
	// Missing typ is accepted (the reference accepts it too).
	if _, err := f.v.Verify(ctx, craft(t, f.key, map[string]any{"alg": "ES256K"}, validClaims()), method); err != nil {
		t.Fatal(err)
	}
	// crit is refused.
	_, err = f.v.Verify(ctx, craft(t, f.key, map[string]any{"alg": "ES256K", "crit": []string{"b64"}}, validClaims()), method)
	expectErr(t, err, ErrBadJwt, "BadJwt", 401)
}

func TestServiceHighS(t *testing.T) {
	for _, kt := range []crypto.KeyType{crypto.KeyTypeK256, crypto.KeyTypeP256} {
		f := newSvcFixture(t, kt)
		tok := f.token(t, method)
		_, err := f.v.Verify(ctx, flipS(t, tok, kt), method)
		expectErr(t, err, ErrBadJwtSignature, "BadJwtSignature", 401)
		if !errors.Is(err, crypto.ErrHighS) {
			t.Fatalf("%s: want ErrHighS in chain, got %v", kt, err)
		}
		// The original (low-S) token is still fresh: the rejected twin did
		// not consume its jti.
		if _, err := f.v.Verify(ctx, tok, method); err != nil {
			t.Fatal(err)
		}
	}
}

func TestServiceReplay(t *testing.T) {
	f := newSvcFixture(t, crypto.KeyTypeK256)
	tok := f.token(t, method)
	if _, err := f.v.Verify(ctx, tok, method); err != nil {
		t.Fatal(err)
	}
	_, err := f.v.Verify(ctx, tok, method)
	expectErr(t, err, ErrJwtReplayed, "BadJwt", 401)
	// A second token is fine.
	if _, err := f.v.Verify(ctx, f.token(t, method), method); err != nil {
		t.Fatal(err)
	}
	// jti required with a replay cache; optional without.
	c := validClaims()
	delete(c, "jti")
	tok = craft(t, f.key, map[string]any{"alg": "ES256K", "typ": "JWT"}, c)
	_, err = f.v.Verify(ctx, tok, method)
	expectErr(t, err, ErrBadJwt, "BadJwt", 401)
	v := *f.v
	v.ReplayCache = nil
	if _, err := v.Verify(ctx, tok, method); err != nil {
		t.Fatal(err)
	}
}

func TestServiceClaimsValidation(t *testing.T) {
	f := newSvcFixture(t, crypto.KeyTypeK256)
	hdr := map[string]any{"alg": "ES256K", "typ": "JWT"}
	cases := map[string]func(c map[string]any){
		"missing exp":     func(c map[string]any) { delete(c, "exp") },
		"zero exp":        func(c map[string]any) { c["exp"] = 0 },
		"negative exp":    func(c map[string]any) { c["exp"] = -5 },
		"fractional exp":  func(c map[string]any) { c["exp"] = float64(t0.Unix()) + 0.5 },
		"string exp":      func(c map[string]any) { c["exp"] = "9999999999" },
		"missing iss":     func(c map[string]any) { delete(c, "iss") },
		"bad iss":         func(c map[string]any) { c["iss"] = "alice.example.com" },
		"missing aud":     func(c map[string]any) { delete(c, "aud") },
		"numeric aud":     func(c map[string]any) { c["aud"] = 5 },
		"lxm not string":  func(c map[string]any) { c["lxm"] = []string{method} },
		"iat future":      func(c map[string]any) { c["iat"] = t0.Unix() + 31; c["exp"] = t0.Unix() + 90 },
		"iat after exp":   func(c map[string]any) { c["iat"] = t0.Unix() + 20; c["exp"] = t0.Unix() + 10 },
		"exp too far":     func(c map[string]any) { c["exp"] = t0.Add(2 * time.Hour).Unix() },
		"empty jti":       func(c map[string]any) { c["jti"] = "" },
		"trailing fields": func(c map[string]any) { c["exp"] = nil },
	}
	for name, mod := range cases {
		c := validClaims()
		mod(c)
		_, err := f.v.Verify(ctx, craft(t, f.key, hdr, c), method)
		if err == nil {
			t.Errorf("%s: accepted", name)
			continue
		}
		if !errors.Is(err, ErrBadJwt) {
			t.Errorf("%s: %v", name, err)
		}
	}
	// iat slightly ahead (within skew) is fine.
	c := validClaims()
	c["iat"] = t0.Unix() + 10
	if _, err := f.v.Verify(ctx, craft(t, f.key, hdr, c), method); err != nil {
		t.Fatal(err)
	}
}

func TestServiceRejectsSessionTokens(t *testing.T) {
	f := newSvcFixture(t, crypto.KeyTypeK256)
	s := newSessFixture(t)
	pair, err := s.iss.CreateSession(ctx, userDID, ScopeAccess)
	if err != nil {
		t.Fatal(err)
	}
	for _, tok := range []string{pair.Access, pair.Refresh} {
		_, err := f.v.Verify(ctx, tok, method)
		expectErr(t, err, ErrBadJwtType, "BadJwtType", 401)
	}
	// Same, signed with the right key: the typ alone refuses it.
	for _, typ := range []string{"at+jwt", "refresh+jwt", "dpop+jwt", "JOSE"} {
		_, err := f.v.Verify(ctx, craft(t, f.key, map[string]any{"alg": "ES256K", "typ": typ}, validClaims()), method)
		expectErr(t, err, ErrBadJwtType, "BadJwtType", 401)
	}
}

func TestParseJWTStrict(t *testing.T) {
	f := newSvcFixture(t, crypto.KeyTypeK256)
	good := f.token(t, method)
	parts := strings.Split(good, ".")
	bad := []string{
		"", ".", "..", "a.b", parts[0] + "." + parts[1],
		good + ".", good + "." + parts[2],
		parts[0] + "=." + parts[1] + "." + parts[2],
		parts[0] + "." + parts[1] + "." + parts[2] + "==",
		parts[0] + "." + strings.ReplaceAll(parts[1], "-", "+") + "x." + parts[2],
		b64.EncodeToString([]byte(`[1]`)) + "." + parts[1] + "." + parts[2],
		b64.EncodeToString([]byte(`{"alg":"ES256K"} {}`)) + "." + parts[1] + "." + parts[2],
		parts[0] + "." + b64.EncodeToString([]byte(`"x"`)) + "." + parts[2],
		strings.Repeat("a", MaxTokenLength+1),
	}
	for _, tok := range bad {
		if _, err := parseJWT(tok); err == nil {
			t.Errorf("accepted %q", tok)
		}
		_, err := f.v.Verify(ctx, tok, method)
		expectErr(t, err, ErrBadJwt, "BadJwt", 401)
	}
}

func TestMemoryReplayCacheBounded(t *testing.T) {
	c := NewMemoryReplayCache(3)
	for i, k := range []string{"a", "b", "c", "d"} {
		if c.Seen(k, t0.Add(time.Duration(i+1)*time.Minute), t0) {
			t.Fatalf("%s seen", k)
		}
	}
	if c.Len() != 3 {
		t.Fatalf("len %d", c.Len())
	}
	// "a" (soonest to expire) was evicted; "d" is remembered.
	if c.Seen("a", t0.Add(time.Minute), t0) {
		t.Fatal("a should have been evicted")
	}
	if !c.Seen("d", t0.Add(4*time.Minute), t0) {
		t.Fatal("d forgotten")
	}
	// Expired entries are dropped.
	if c.Seen("d", t0.Add(4*time.Minute), t0.Add(5*time.Minute)) {
		t.Fatal("expired entry still held")
	}
	if c.Len() != 1 {
		t.Fatalf("len %d", c.Len())
	}
}

var _ DIDRefresher = (*fakeResolver)(nil)
var _ = syntax.DID("")
