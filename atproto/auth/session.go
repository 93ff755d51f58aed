package auth

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/welkin-atproto/welkin/atproto/syntax"
)

// Scope is the scope claim of a PDS session token.
type Scope string

// Session token scopes, as the reference PDS names them.
const (
	ScopeAccess            Scope = "com.atproto.access"
	ScopeAppPass           Scope = "com.atproto.appPass"
	ScopeAppPassPrivileged Scope = "com.atproto.appPassPrivileged"
	ScopeRefresh           Scope = "com.atproto.refresh"
)

// Session token defaults, from the reference PDS: access tokens live 120
// minutes, refresh tokens 90 days, and a rotated refresh token stays usable
// for 2 hours, returning the same new pair.
const (
	DefaultAccessTTL    = 2 * time.Hour
	DefaultRefreshTTL   = 90 * 24 * time.Hour
	DefaultRefreshGrace = 2 * time.Hour
)

// Token types (the typ header), per the XRPC spec: RFC 9068 at+jwt for
// access tokens and refresh+jwt for refresh tokens.
const (
	TypAccess  = "at+jwt"
	TypRefresh = "refresh+jwt"
)

// MinSecretLength is the shortest HS256 secret accepted (RFC 7518 §3.2:
// at least the size of the hash output).
const MinSecretLength = 32

// SessionClaims are the verified claims of a session token.
type SessionClaims struct {
	Subject   syntax.DID
	Scope     Scope
	Audience  string
	JTI       string // refresh tokens only
	IssuedAt  time.Time
	ExpiresAt time.Time
}

// TokenPair is the result of creating or refreshing a session.
type TokenPair struct {
	Access           string
	Refresh          string
	RefreshJTI       string
	AccessExpiresAt  time.Time
	RefreshExpiresAt time.Time
}

// SessionIssuer mints and verifies the legacy (createSession) access and
// refresh JWTs of a PDS, HS256 with a server secret like the reference PDS.
// Fields must not change once in use; methods are safe for concurrent use
// if Store is.
type SessionIssuer struct {
	// Secret is the HMAC key, at least MinSecretLength bytes.
	Secret []byte
	// ServiceDID is this PDS's DID, used as aud and checked on verify.
	ServiceDID string
	// AccessTTL, RefreshTTL and RefreshGrace default to DefaultAccessTTL,
	// DefaultRefreshTTL and DefaultRefreshGrace when zero.
	AccessTTL    time.Duration
	RefreshTTL   time.Duration
	RefreshGrace time.Duration
	// Now returns the current time; time.Now when nil.
	Now func() time.Time
	// Store records refresh tokens. Required by CreateSession, Rotate and
	// Revoke; VerifyAccess and VerifyRefresh do not use it.
	Store RefreshStore

	// verified remembers access tokens already verified (the whole token
	// string, so a hit is the same bytes whose signature was checked), as
	// a client sends the same one with every request until it expires.
	verifiedMu sync.Mutex
	verified   map[string]verifiedToken
}

// verifiedToken is a remembered access token's claims, with the key and
// audience it was verified against: a hit counts only for the same ones.
type verifiedToken struct {
	claims SessionClaims
	secret []byte
	aud    string
}

// maxVerifiedTokens bounds the access tokens VerifyAccess remembers; when
// full, it forgets them all and starts over.
const maxVerifiedTokens = 4096

type sessionHeader struct {
	Typ string `json:"typ"`
	Alg string `json:"alg"`
}

type sessionClaimsOut struct {
	Scope Scope  `json:"scope"`
	Sub   string `json:"sub"`
	Aud   string `json:"aud"`
	Jti   string `json:"jti,omitempty"`
	Iat   int64  `json:"iat"`
	Exp   int64  `json:"exp"`
}

type sessionClaimsIn struct {
	Scope *string `json:"scope"`
	Sub   *string `json:"sub"`
	Aud   *string `json:"aud"`
	Jti   *string `json:"jti"`
	Iat   *int64  `json:"iat"`
	Exp   *int64  `json:"exp"`
}

func (s *SessionIssuer) now() time.Time {
	if s.Now != nil {
		return s.Now()
	}
	return time.Now()
}

func orDefault(d, def time.Duration) time.Duration {
	if d <= 0 {
		return def
	}
	return d
}

func (s *SessionIssuer) check() error {
	if len(s.Secret) < MinSecretLength {
		return fmt.Errorf("auth: session secret shorter than %d bytes", MinSecretLength)
	}
	if s.ServiceDID == "" {
		return errors.New("auth: SessionIssuer has no ServiceDID")
	}
	return nil
}

func (s *SessionIssuer) sign(msg []byte) ([]byte, error) {
	m := hmac.New(sha256.New, s.Secret)
	m.Write(msg)
	return m.Sum(nil), nil
}

func accessScope(sc Scope) bool {
	return sc == ScopeAccess || sc == ScopeAppPass || sc == ScopeAppPassPrivileged
}

// mint creates an access and a refresh token for did without storing them.
func (s *SessionIssuer) mint(did syntax.DID, scope Scope, now time.Time) (*TokenPair, error) {
	jti, err := randomJTI()
	if err != nil {
		return nil, err
	}
	accExp := now.Add(orDefault(s.AccessTTL, DefaultAccessTTL))
	refExp := now.Add(orDefault(s.RefreshTTL, DefaultRefreshTTL))
	access, err := encodeJWT(sessionHeader{Typ: TypAccess, Alg: "HS256"}, sessionClaimsOut{
		Scope: scope, Sub: did.String(), Aud: s.ServiceDID, Iat: now.Unix(), Exp: accExp.Unix(),
	}, s.sign)
	if err != nil {
		return nil, err
	}
	refresh, err := encodeJWT(sessionHeader{Typ: TypRefresh, Alg: "HS256"}, sessionClaimsOut{
		Scope: ScopeRefresh, Sub: did.String(), Aud: s.ServiceDID, Jti: jti, Iat: now.Unix(), Exp: refExp.Unix(),
	}, s.sign)
	if err != nil {
		return nil, err
	}
	return &TokenPair{
		Access: access, Refresh: refresh, RefreshJTI: jti,
		AccessExpiresAt: time.Unix(accExp.Unix(), 0), RefreshExpiresAt: time.Unix(refExp.Unix(), 0),
	}, nil
}

// CreateSession mints a new access/refresh pair for did and records the
// refresh token in Store. scope is the access scope: ScopeAccess, or
// ScopeAppPass / ScopeAppPassPrivileged for app-password logins; tokens
// obtained by rotating the refresh token keep it.
func (s *SessionIssuer) CreateSession(ctx context.Context, did syntax.DID, scope Scope) (*TokenPair, error) {
	if err := s.check(); err != nil {
		return nil, err
	}
	if s.Store == nil {
		return nil, errors.New("auth: SessionIssuer has no Store")
	}
	if _, err := syntax.ParseDID(did.String()); err != nil {
		return nil, fmt.Errorf("auth: %w", err)
	}
	if !accessScope(scope) {
		return nil, fmt.Errorf("auth: bad session scope %q", scope)
	}
	pair, err := s.mint(did, scope, s.now())
	if err != nil {
		return nil, err
	}
	if err := s.Store.Put(ctx, RefreshRecord{JTI: pair.RefreshJTI, DID: did, Scope: scope, ExpiresAt: pair.RefreshExpiresAt}); err != nil {
		return nil, err
	}
	return pair, nil
}

// VerifyAccess checks an access token (typ at+jwt). Errors are *Error
// values with status 400 named ExpiredToken (the token verified but is past
// exp; the client should refresh) or InvalidToken (anything else).
func (s *SessionIssuer) VerifyAccess(token string) (*SessionClaims, error) {
	s.verifiedMu.Lock()
	v, ok := s.verified[token]
	s.verifiedMu.Unlock()
	if ok && v.aud == s.ServiceDID && hmac.Equal(v.secret, s.Secret) && !s.now().After(v.claims.ExpiresAt) {
		c := v.claims
		return &c, nil
	}
	c, err := s.verify(token, TypAccess)
	if err != nil {
		return nil, err
	}
	s.verifiedMu.Lock()
	if s.verified == nil || len(s.verified) >= maxVerifiedTokens {
		s.verified = make(map[string]verifiedToken)
	}
	s.verified[token] = verifiedToken{claims: *c, secret: s.Secret, aud: s.ServiceDID}
	s.verifiedMu.Unlock()
	return c, nil
}

// VerifyRefresh checks a refresh token's signature and claims (typ
// refresh+jwt). It does not consult Store; Rotate does.
func (s *SessionIssuer) VerifyRefresh(token string) (*SessionClaims, error) {
	return s.verify(token, TypRefresh)
}

func (s *SessionIssuer) verify(token, typ string) (*SessionClaims, error) {
	if err := s.check(); err != nil {
		return nil, err
	}
	jwt, err := parseJWT(token)
	if err != nil {
		return nil, sessErr(ErrInvalidToken, "Token could not be verified", err)
	}
	if jwt.header.Alg != "HS256" {
		return nil, sessErr(ErrInvalidToken, "Token could not be verified", errors.New("unexpected alg"))
	}
	if jwt.header.Typ == nil || *jwt.header.Typ != typ {
		return nil, sessErr(ErrInvalidToken, "Invalid token type", nil)
	}
	want, _ := s.sign([]byte(jwt.signingInput))
	if !hmac.Equal(want, jwt.sig) {
		return nil, sessErr(ErrInvalidToken, "Token could not be verified", errors.New("bad signature"))
	}
	var in sessionClaimsIn
	if err := decodeObject(jwt.claims, &in); err != nil {
		return nil, sessErr(ErrInvalidToken, "Token could not be verified", err)
	}
	if in.Scope == nil || in.Sub == nil || in.Aud == nil || in.Exp == nil {
		return nil, sessErr(ErrInvalidToken, "Token could not be verified", errors.New("missing claim"))
	}
	if s.now().After(time.Unix(*in.Exp, 0)) {
		return nil, sessErr(ErrExpiredToken, "Token has expired", nil)
	}
	if *in.Aud != s.ServiceDID {
		return nil, sessErr(ErrInvalidToken, "Token could not be verified", errors.New("bad audience"))
	}
	did, err := syntax.ParseDID(*in.Sub)
	if err != nil {
		return nil, sessErr(ErrInvalidToken, "Token could not be verified", err)
	}
	sc := Scope(*in.Scope)
	c := &SessionClaims{Subject: did, Scope: sc, Audience: *in.Aud, ExpiresAt: time.Unix(*in.Exp, 0)}
	if in.Iat != nil {
		c.IssuedAt = time.Unix(*in.Iat, 0)
	}
	if typ == TypAccess {
		if !accessScope(sc) {
			return nil, sessErr(ErrInvalidToken, "Bad token scope", nil)
		}
		return c, nil
	}
	if sc != ScopeRefresh {
		return nil, sessErr(ErrInvalidToken, "Bad token scope", nil)
	}
	if in.Jti == nil || *in.Jti == "" {
		return nil, sessErr(ErrInvalidToken, "Token could not be verified", errors.New("missing jti"))
	}
	c.JTI = *in.Jti
	return c, nil
}

// Rotate exchanges a refresh token for a new pair (refreshSession). The old
// refresh token stays usable for RefreshGrace (capped at its own expiry)
// and, when used again in that window, returns the very same new pair, so a
// client that refreshes twice concurrently, or loses the response, is not
// logged out. After the grace period it is revoked and answers
// ExpiredToken ("Token has been revoked"), as the reference does.
func (s *SessionIssuer) Rotate(ctx context.Context, refreshToken string) (*TokenPair, error) {
	if s.Store == nil {
		return nil, errors.New("auth: SessionIssuer has no Store")
	}
	claims, err := s.VerifyRefresh(refreshToken)
	if err != nil {
		return nil, err
	}
	revoked := sessErr(ErrTokenRevoked, "Token has been revoked", nil)
	rec, err := s.Store.Get(ctx, claims.JTI)
	if errors.Is(err, ErrRefreshNotFound) {
		return nil, revoked
	} else if err != nil {
		return nil, err
	}
	now := s.now()
	if rec.DID != claims.Subject {
		return nil, revoked
	}
	if !rec.ExpiresAt.After(now) {
		_ = s.Store.Revoke(ctx, rec.JTI)
		return nil, revoked
	}
	if rec.Next != nil {
		p := *rec.Next
		return &p, nil
	}
	graceEnd := now.Add(orDefault(s.RefreshGrace, DefaultRefreshGrace))
	if rec.ExpiresAt.Before(graceEnd) {
		graceEnd = rec.ExpiresAt
	}
	pair, err := s.mint(rec.DID, rec.Scope, now)
	if err != nil {
		return nil, err
	}
	if err := s.Store.Put(ctx, RefreshRecord{JTI: pair.RefreshJTI, DID: rec.DID, Scope: rec.Scope, ExpiresAt: pair.RefreshExpiresAt}); err != nil {
		return nil, err
	}
	winner, err := s.Store.MarkRotated(ctx, rec.JTI, *pair, graceEnd)
	if err != nil {
		_ = s.Store.Revoke(ctx, pair.RefreshJTI)
		if errors.Is(err, ErrRefreshNotFound) {
			return nil, revoked
		}
		return nil, err
	}
	if winner.RefreshJTI != pair.RefreshJTI {
		// A concurrent Rotate won; hand out its pair and drop ours.
		_ = s.Store.Revoke(ctx, pair.RefreshJTI)
	}
	return &winner, nil
}

// Revoke ends the session of a refresh token (deleteSession). Revoking an
// unknown or already revoked token is not an error.
func (s *SessionIssuer) Revoke(ctx context.Context, refreshToken string) error {
	if s.Store == nil {
		return errors.New("auth: SessionIssuer has no Store")
	}
	claims, err := s.VerifyRefresh(refreshToken)
	if err != nil {
		return err
	}
	return s.Store.Revoke(ctx, claims.JTI)
}
