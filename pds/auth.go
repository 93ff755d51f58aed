package pds

import (
	"context"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"net/http"
	"strings"

	"github.com/welkin-atproto/welkin/atproto/auth"
	"github.com/welkin-atproto/welkin/atproto/syntax"
	"github.com/welkin-atproto/welkin/atproto/xrpc"
	"github.com/welkin-atproto/welkin/pds/store"
)

// caller is the authenticated account behind a request.
type caller struct {
	DID     syntax.DID
	Scope   auth.Scope
	Account *store.Account
	// Token is the verified bearer token (the refresh token for
	// requireRefresh).
	Token  string
	Claims *auth.SessionClaims
}

// accessLevel says which session scopes a method accepts.
type accessLevel int

const (
	// anyAccess accepts full sessions and every app password.
	anyAccess accessLevel = iota
	// privilegedAccess accepts full sessions and privileged app passwords.
	privilegedAccess
	// fullAccess accepts only full (password) sessions.
	fullAccess
)

// authOpts tune requireAccess.
type authOpts struct {
	level accessLevel
	// allowDeactivated lets a deactivated account through (getSession,
	// activateAccount, checkAccountStatus, ...). Taken-down accounts are
	// always refused.
	allowDeactivated bool
}

// httpRequest returns the HTTP request behind an XRPC handler's context.
func httpRequest(ctx context.Context) *http.Request {
	if r := xrpc.RequestFromContext(ctx); r != nil {
		return r.HTTP
	}
	return nil
}

// bearerToken returns the token of an "Authorization: Bearer" header.
func bearerToken(r *http.Request) (string, bool) {
	if r == nil {
		return "", false
	}
	h := r.Header.Get("Authorization")
	if len(h) < 7 || !strings.EqualFold(h[:7], "bearer ") {
		return "", false
	}
	t := strings.TrimSpace(h[7:])
	return t, t != ""
}

// errAuthMissing is the reference PDS's answer to a request that needs a
// token and carries none: 401 with the error name AuthMissing.
func errAuthMissing() error {
	return xrpc.Errorf(http.StatusUnauthorized, "AuthMissing", "Authentication Required")
}

// accessToken returns the bearer token of a request that must carry one.
// No Authorization header is 401 AuthMissing; a header of another scheme
// (Basic, DPoP) is 400 InvalidToken, as the reference answers.
func accessToken(r *http.Request) (string, error) {
	if tok, ok := bearerToken(r); ok {
		return tok, nil
	}
	if r != nil && strings.TrimSpace(r.Header.Get("Authorization")) != "" {
		return "", xrpc.Errorf(http.StatusBadRequest, "InvalidToken", "Unexpected authorization type")
	}
	return "", errAuthMissing()
}

// requireAccess authenticates the caller with a session access token.
func (s *Server) requireAccess(ctx context.Context, o authOpts) (*caller, error) {
	tok, err := accessToken(httpRequest(ctx))
	if err != nil {
		return nil, err
	}
	claims, err := s.sessions.VerifyAccess(tok)
	if err != nil {
		return nil, err
	}
	switch o.level {
	case fullAccess:
		if claims.Scope != auth.ScopeAccess {
			return nil, xrpc.Errorf(http.StatusBadRequest, "InvalidToken", "Bad token scope")
		}
	case privilegedAccess:
		if claims.Scope != auth.ScopeAccess && claims.Scope != auth.ScopeAppPassPrivileged {
			return nil, xrpc.Errorf(http.StatusBadRequest, "InvalidToken", "Bad token scope")
		}
	}
	c, err := s.loadCaller(ctx, claims, o.allowDeactivated)
	if err != nil {
		return nil, err
	}
	c.Token = tok
	return c, nil
}

// optionalAccess is requireAccess for methods that also serve anonymous
// callers: no Authorization header gives a nil caller and no error.
func (s *Server) optionalAccess(ctx context.Context) (*caller, error) {
	if _, ok := bearerToken(httpRequest(ctx)); !ok {
		return nil, nil
	}
	return s.requireAccess(ctx, authOpts{})
}

// requireRefresh authenticates the caller with a refresh token.
func (s *Server) requireRefresh(ctx context.Context) (*caller, error) {
	tok, ok := bearerToken(httpRequest(ctx))
	if !ok {
		return nil, errAuthMissing()
	}
	claims, err := s.sessions.VerifyRefresh(tok)
	if err != nil {
		return nil, err
	}
	c, err := s.loadCaller(ctx, claims, true)
	if err != nil {
		return nil, err
	}
	c.Token = tok
	return c, nil
}

func (s *Server) loadCaller(ctx context.Context, claims *auth.SessionClaims, allowDeactivated bool) (*caller, error) {
	did := claims.Subject
	acct, err := s.accounts.AccountByDID(ctx, did)
	if errors.Is(err, store.ErrNotFound) {
		return nil, xrpc.InvalidToken("Account not found")
	}
	if err != nil {
		return nil, err
	}
	switch acct.Status {
	case store.StatusTakendown:
		return nil, xrpc.Errorf(http.StatusUnauthorized, "AccountTakedown", "Account has been taken down")
	case store.StatusDeactivated:
		if !allowDeactivated {
			return nil, xrpc.Errorf(http.StatusUnauthorized, "AccountDeactivated", "Account is deactivated")
		}
	}
	return &caller{DID: did, Scope: claims.Scope, Account: acct, Claims: claims}, nil
}

// requireAdmin checks HTTP basic auth "admin:<AdminPassword>".
func (s *Server) requireAdmin(ctx context.Context) error {
	if s.cfg.AdminPassword == "" {
		return xrpc.AuthRequired("admin API is disabled")
	}
	r := httpRequest(ctx)
	if r == nil || !s.isAdmin(r) {
		return xrpc.AuthRequired("Authentication Required")
	}
	return nil
}

func (s *Server) isAdmin(r *http.Request) bool {
	h := r.Header.Get("Authorization")
	if len(h) < 6 || !strings.EqualFold(h[:6], "basic ") {
		return false
	}
	raw, err := base64.StdEncoding.DecodeString(strings.TrimSpace(h[6:]))
	if err != nil {
		return false
	}
	user, pass, ok := strings.Cut(string(raw), ":")
	return ok && user == "admin" &&
		subtle.ConstantTimeCompare([]byte(pass), []byte(s.cfg.AdminPassword)) == 1
}
