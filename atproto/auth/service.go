package auth

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/welkin-atproto/welkin/atproto/crypto"
	"github.com/welkin-atproto/welkin/atproto/identity"
	"github.com/welkin-atproto/welkin/atproto/syntax"
)

const (
	// DefaultServiceTTL is the lifetime CreateServiceToken gives a token
	// when ttl is zero. The spec: "60 seconds is a good token lifetime".
	DefaultServiceTTL = time.Minute
	// DefaultServiceMaxTTL is the longest remaining lifetime a verifier
	// accepts by default; com.atproto.server.getServiceAuth issues at
	// most one hour.
	DefaultServiceMaxTTL = time.Hour
	// DefaultClockSkew is how far in the future iat may be by default.
	DefaultClockSkew = 30 * time.Second
)

// ServiceClaims are the verified claims of an inter-service token.
type ServiceClaims struct {
	// Issuer is the iss DID without its service fragment.
	Issuer syntax.DID
	// ServiceID is the fragment of iss ("atproto_labeler"), or "".
	ServiceID string
	Audience  string
	// LexiconMethod is lxm, or "" when absent.
	LexiconMethod string
	// JTI is the nonce, or "" when absent.
	JTI string
	// IssuedAt is zero when the token carries no iat.
	IssuedAt  time.Time
	ExpiresAt time.Time
}

type serviceHeaderOut struct {
	Typ string `json:"typ"`
	Alg string `json:"alg"`
}

type serviceClaimsOut struct {
	Iss string `json:"iss"`
	Aud string `json:"aud"`
	Exp int64  `json:"exp"`
	Iat int64  `json:"iat"`
	Lxm string `json:"lxm,omitempty"`
	Jti string `json:"jti"`
}

type serviceClaimsIn struct {
	Iss *string `json:"iss"`
	Aud *string `json:"aud"`
	Exp *int64  `json:"exp"`
	Iat *int64  `json:"iat"`
	Lxm *string `json:"lxm"`
	Jti *string `json:"jti"`
}

// serviceKeyIDs maps iss service fragments to DID document key ids, per
// the XRPC spec ("atproto_labeler" → "atproto_label"). A bare DID uses
// "atproto". Other fragments are refused.
var serviceKeyIDs = map[string]string{
	"":                "atproto",
	"atproto_labeler": "atproto_label",
}

func splitIssuer(iss string) (syntax.DID, string, error) {
	d, frag, hasFrag := strings.Cut(iss, "#")
	if hasFrag && frag == "" {
		return "", "", errors.New("empty service fragment in iss")
	}
	did, err := syntax.ParseDID(d)
	if err != nil {
		return "", "", err
	}
	if _, ok := serviceKeyIDs[frag]; !ok {
		return "", "", fmt.Errorf("unsupported service id %q in iss", frag)
	}
	return did, frag, nil
}

func randomJTI() (string, error) {
	var b [16]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", err
	}
	return hex.EncodeToString(b[:]), nil
}

// CreateServiceToken signs an inter-service JWT with key. iss is the
// account DID, optionally with a "#atproto_labeler" service fragment; aud
// is the receiving service's DID (it may carry a "#service" fragment); lxm
// is the NSID of the authorized method, or "" to omit it (receivers will
// then refuse it for most methods). The token is issued at now and expires
// after ttl (DefaultServiceTTL when zero). A random 128-bit jti is added.
func CreateServiceToken(key crypto.PrivateKey, iss, aud, lxm string, now time.Time, ttl time.Duration) (string, error) {
	if key == nil {
		return "", errors.New("auth: nil key")
	}
	if _, _, err := splitIssuer(iss); err != nil {
		return "", fmt.Errorf("auth: bad iss: %w", err)
	}
	if aud == "" {
		return "", errors.New("auth: empty aud")
	}
	if lxm != "" {
		if _, err := syntax.ParseNSID(lxm); err != nil {
			return "", fmt.Errorf("auth: bad lxm: %w", err)
		}
	}
	if ttl == 0 {
		ttl = DefaultServiceTTL
	}
	if ttl < 0 {
		return "", errors.New("auth: negative ttl")
	}
	alg := key.KeyType().JWTAlg()
	if alg == "" {
		return "", errors.New("auth: unsupported key type")
	}
	jti, err := randomJTI()
	if err != nil {
		return "", err
	}
	claims := serviceClaimsOut{
		Iss: iss, Aud: aud, Lxm: lxm, Jti: jti,
		Iat: now.Unix(), Exp: now.Add(ttl).Unix(),
	}
	return encodeJWT(serviceHeaderOut{Typ: "JWT", Alg: alg}, claims, key.HashAndSign)
}

// DIDResolver resolves an issuer DID. *identity.BaseResolver and
// *identity.CachingResolver satisfy it.
type DIDResolver interface {
	ResolveDID(ctx context.Context, did syntax.DID) (*identity.Identity, error)
}

// DIDRefresher is optionally implemented by a DIDResolver (as
// *identity.CachingResolver does) to fetch a DID document again, bypassing
// any cache, after a signature failed to verify with the cached key.
type DIDRefresher interface {
	RefreshDID(ctx context.Context, did syntax.DID) (*identity.Identity, error)
}

// ServiceVerifier checks inter-service JWTs. Its fields must not change
// once Verify is in use; Verify is safe for concurrent use.
type ServiceVerifier struct {
	// Resolver finds the issuer's signing key. Required. If it also
	// implements DIDRefresher, a failed signature check refreshes the DID
	// document once and retries with the new key.
	Resolver DIDResolver
	// Audience is this service's DID; aud must equal it. If AudienceFunc is
	// set it decides instead (e.g. to accept "did:web:x#bsky_appview" as
	// well). One of the two is required.
	Audience     string
	AudienceFunc func(aud string) bool
	// Now returns the current time; time.Now when nil.
	Now func() time.Time
	// MaxTTL bounds exp - now; DefaultServiceMaxTTL when zero.
	MaxTTL time.Duration
	// ClockSkew is how far in the future iat may lie (issuer clock ahead);
	// DefaultClockSkew when zero, none when negative. Expiry itself has no
	// leeway, as in the reference: a token is expired once now > exp.
	ClockSkew time.Duration
	// AllowMissingLxm accepts tokens without lxm for any method. By
	// default a token without lxm is refused whenever Verify is asked for
	// a method, as the reference verifier does.
	AllowMissingLxm bool
	// ReplayCache, when set, refuses a second use of the same (iss, jti)
	// before the token expires, and makes jti required.
	ReplayCache ReplayCache
}

func (v *ServiceVerifier) now() time.Time {
	if v.Now != nil {
		return v.Now()
	}
	return time.Now()
}

// Verify checks token and returns its claims. lxm is the NSID of the
// method being called: the token's lxm must equal it (absent only with
// AllowMissingLxm). An empty lxm skips the method check entirely, as the
// reference does for a null lxm; endpoints should always pass it.
//
// Errors are *Error values (status 401) matching one of the ErrBadJwt*,
// ErrJwtExpired, ErrJwtReplayed or ErrUnresolvableIssuer sentinels, except
// for a verifier without audience, which is a plain configuration error.
func (v *ServiceVerifier) Verify(ctx context.Context, token, lxm string) (*ServiceClaims, error) {
	if v.Audience == "" && v.AudienceFunc == nil {
		return nil, errors.New("auth: ServiceVerifier has no Audience")
	}
	if v.Resolver == nil {
		return nil, errors.New("auth: ServiceVerifier has no Resolver")
	}
	jwt, err := parseJWT(token)
	if err != nil {
		return nil, svcErr(ErrBadJwt, "poorly formatted jwt", err)
	}
	if t := jwt.header.Typ; t != nil && !strings.EqualFold(*t, "JWT") {
		// at+jwt (session access), refresh+jwt, dpop+jwt and anything
		// else we do not know are refused.
		return nil, svcErr(ErrBadJwtType, fmt.Sprintf("invalid jwt type %q", *t), nil)
	}
	switch jwt.header.Alg {
	case "ES256K", "ES256":
	default:
		return nil, svcErr(ErrBadJwt, fmt.Sprintf("unsupported jwt alg %q", jwt.header.Alg), nil)
	}
	var in serviceClaimsIn
	if err := decodeObject(jwt.claims, &in); err != nil {
		return nil, svcErr(ErrBadJwt, "poorly formatted jwt claims", err)
	}
	if in.Iss == nil || in.Aud == nil || in.Exp == nil {
		return nil, svcErr(ErrBadJwt, "jwt is missing iss, aud or exp", nil)
	}
	did, svc, err := splitIssuer(*in.Iss)
	if err != nil {
		return nil, svcErr(ErrBadJwt, "bad jwt issuer", err)
	}
	if *in.Exp <= 0 {
		return nil, svcErr(ErrBadJwt, "bad jwt exp", nil)
	}
	now := v.now()
	exp := time.Unix(*in.Exp, 0)
	skew := v.ClockSkew
	if skew == 0 {
		skew = DefaultClockSkew
	} else if skew < 0 {
		skew = 0
	}
	maxTTL := v.MaxTTL
	if maxTTL <= 0 {
		maxTTL = DefaultServiceMaxTTL
	}
	if now.After(exp) {
		return nil, svcErr(ErrJwtExpired, "jwt expired", nil)
	}
	if exp.Sub(now) > maxTTL+skew {
		return nil, svcErr(ErrBadJwt, "jwt exp is too far in the future", nil)
	}
	claims := &ServiceClaims{Issuer: did, ServiceID: svc, Audience: *in.Aud, ExpiresAt: exp}
	if in.Iat != nil {
		iat := time.Unix(*in.Iat, 0)
		if *in.Iat <= 0 || *in.Iat > *in.Exp || iat.Sub(now) > skew {
			return nil, svcErr(ErrBadJwt, "bad jwt iat", nil)
		}
		claims.IssuedAt = iat
	}
	if in.Jti != nil {
		if *in.Jti == "" {
			return nil, svcErr(ErrBadJwt, "empty jwt jti", nil)
		}
		claims.JTI = *in.Jti
	} else if v.ReplayCache != nil {
		return nil, svcErr(ErrBadJwt, "jwt is missing jti", nil)
	}
	if v.AudienceFunc != nil {
		if !v.AudienceFunc(*in.Aud) {
			return nil, svcErr(ErrBadJwtAudience, "jwt audience does not match service did", nil)
		}
	} else if *in.Aud != v.Audience {
		return nil, svcErr(ErrBadJwtAudience, "jwt audience does not match service did", nil)
	}
	if in.Lxm != nil {
		claims.LexiconMethod = *in.Lxm
	}
	if lxm != "" {
		switch {
		case in.Lxm == nil && !v.AllowMissingLxm:
			return nil, svcErr(ErrBadJwtLexiconMethod, fmt.Sprintf("missing jwt lexicon method (\"lxm\"); must match %s", lxm), nil)
		case in.Lxm != nil && *in.Lxm != lxm:
			return nil, svcErr(ErrBadJwtLexiconMethod, fmt.Sprintf("bad jwt lexicon method (\"lxm\"); must match %s", lxm), nil)
		}
	}
	if err := v.checkSignature(ctx, jwt, did, svc); err != nil {
		return nil, err
	}
	if v.ReplayCache != nil && v.ReplayCache.Seen(*in.Iss+"\x00"+claims.JTI, exp, now) {
		return nil, svcErr(ErrJwtReplayed, "jwt replayed", nil)
	}
	return claims, nil
}

func issuerKey(id *identity.Identity, svc string) (crypto.PublicKey, error) {
	return id.Key(serviceKeyIDs[svc])
}

func verifyJWS(key crypto.PublicKey, jwt *parsedJWT) error {
	if jwt.header.Alg != key.KeyType().JWTAlg() {
		return fmt.Errorf("jwt alg %s does not match issuer key type %s", jwt.header.Alg, key.KeyType())
	}
	return key.HashAndVerify([]byte(jwt.signingInput), jwt.sig)
}

// checkSignature verifies with the resolved key and, on failure, with the
// key of a freshly refreshed DID document (at most once).
func (v *ServiceVerifier) checkSignature(ctx context.Context, jwt *parsedJWT, did syntax.DID, svc string) error {
	ident, err := v.Resolver.ResolveDID(ctx, did)
	if err != nil {
		return svcErr(ErrUnresolvableIssuer, "could not resolve jwt issuer", err)
	}
	key, keyErr := issuerKey(ident, svc)
	var sigErr error
	if keyErr == nil {
		if sigErr = verifyJWS(key, jwt); sigErr == nil {
			return nil
		}
	}
	if r, ok := v.Resolver.(DIDRefresher); ok {
		if fresh, err := r.RefreshDID(ctx, did); err == nil {
			if k2, err := issuerKey(fresh, svc); err == nil && (key == nil || !k2.Equal(key)) {
				keyErr = nil
				if sigErr = verifyJWS(k2, jwt); sigErr == nil {
					return nil
				}
			}
		}
	}
	if keyErr != nil {
		return svcErr(ErrUnresolvableIssuer, "jwt issuer has no usable signing key", keyErr)
	}
	return svcErr(ErrBadJwtSignature, "jwt signature does not match jwt issuer", sigErr)
}
