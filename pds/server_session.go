package pds

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"sync"

	"github.com/welkin-atproto/welkin/api/atproto"
	"github.com/welkin-atproto/welkin/atproto/auth"
	"github.com/welkin-atproto/welkin/atproto/data"
	"github.com/welkin-atproto/welkin/atproto/syntax"
	"github.com/welkin-atproto/welkin/atproto/xrpc"
	"github.com/welkin-atproto/welkin/pds/store"
)

// Password length limits, from the reference PDS: new passwords may be
// at most newPasswordMaxLength characters; logins accept up to
// oldPasswordMaxLength, for passwords set before the limit was lowered.
const (
	newPasswordMaxLength = 256
	oldPasswordMaxLength = 512
)

// errBadLogin is the answer to every failed login, whatever failed, so
// that it says nothing about which accounts exist.
func errBadLogin() error { return xrpc.AuthRequired("Invalid identifier or password") }

// createSession is com.atproto.server.createSession: a login with an
// account password (a full session) or an app password (a session limited
// to the app password's scope).
func (s *Server) createSession(ctx context.Context, in *atproto.ServerCreateSession_Input) (*atproto.ServerCreateSession_Output, error) {
	if in == nil {
		return nil, xrpc.InvalidRequest("Input is required")
	}
	key := in.Identifier + "-" + clientIP(httpRequest(ctx))
	if err := s.charge(key, 1, s.acct().limits.session...); err != nil {
		return nil, err
	}
	if len(in.Password) > oldPasswordMaxLength {
		return nil, xrpc.AuthRequired("Password too long. Consider resetting your password.")
	}
	acct, ap, err := s.login(ctx, in.Identifier, in.Password)
	if err != nil {
		return nil, err
	}
	if acct.Status == store.StatusTakendown {
		// The reference gives a taken-down account that asks with
		// allowTakendown a session limited to migrating away; such a
		// session scope does not exist here, so the login is refused.
		return nil, xrpc.Errorf(401, "AccountTakedown", "Account has been taken down")
	}
	scope := auth.ScopeAccess
	if ap != nil {
		scope = auth.ScopeAppPass
		if ap.Privileged {
			scope = auth.ScopeAppPassPrivileged
		}
	}
	pair, err := s.sessions.CreateSession(ctx, acct.DID, scope)
	if err != nil {
		return nil, err
	}
	out := &atproto.ServerCreateSession_Output{
		AccessJwt:  pair.Access,
		RefreshJwt: pair.Refresh,
		Did:        string(acct.DID),
		Handle:     handleOf(acct),
		DidDoc:     s.didDocValue(ctx, acct.DID),
	}
	out.Email, out.EmailConfirmed, out.Active, out.Status = sessionAccountFields(acct)
	return out, nil
}

// login finds the account named by identifier (a handle, a DID or an
// email address, in any letter case) and checks password against its
// account password, then its app passwords. It returns the app password
// used, or nil for the account password. Every failure is the same
// AuthenticationRequired error.
func (s *Server) login(ctx context.Context, identifier, password string) (*store.Account, *store.AppPassword, error) {
	id := strings.ToLower(strings.TrimSpace(identifier))
	var (
		acct *store.Account
		err  error
	)
	switch {
	case strings.Contains(id, "@"):
		acct, err = s.accounts.AccountByEmail(ctx, id)
	default:
		ai, perr := syntax.ParseAtIdentifier(id)
		if perr != nil {
			err = store.ErrNotFound
		} else if did, derr := ai.AsDID(); derr == nil {
			acct, err = s.accounts.AccountByDID(ctx, did)
		} else if h, herr := ai.AsHandle(); herr == nil {
			acct, err = s.accounts.AccountByHandle(ctx, h.Normalize())
		} else {
			err = store.ErrNotFound
		}
	}
	if errors.Is(err, store.ErrNotFound) {
		// Spend the time a password check would, so that the answer's
		// delay does not tell which identifiers exist.
		burnPasswordCheck(password)
		return nil, nil, errBadLogin()
	}
	if err != nil {
		return nil, nil, err
	}
	if s.checkAccountPassword(acct, password) {
		return acct, nil, nil
	}
	if acct.Status == store.StatusTakendown {
		// Taken-down accounts cannot log in with app passwords.
		return nil, nil, errBadLogin()
	}
	ap, err := s.checkAppPassword(ctx, acct.DID, password)
	if err != nil {
		return nil, nil, err
	}
	if ap == nil {
		return nil, nil, errBadLogin()
	}
	return acct, ap, nil
}

// checkAccountPassword reports whether password is the account's
// password. An account without one (imported, not yet set) never matches.
func (s *Server) checkAccountPassword(acct *store.Account, password string) bool {
	if acct.PasswordHash == "" || password == "" || len(password) > oldPasswordMaxLength {
		burnPasswordCheck(password)
		return false
	}
	ok, err := store.VerifyPassword(acct.PasswordHash, password)
	if err != nil {
		s.log.Error("pds: stored password hash is unreadable", "did", acct.DID, "err", err)
		return false
	}
	return ok
}

var (
	dummyHashOnce sync.Once
	dummyHash     string
)

// burnPasswordCheck runs one password verification against a fixed hash,
// for the failures that would otherwise answer faster than a real check.
func burnPasswordCheck(password string) {
	dummyHashOnce.Do(func() {
		dummyHash, _ = store.HashPassword("welkin-timing-equalizer")
	})
	if dummyHash != "" {
		store.VerifyPassword(dummyHash, password)
	}
}

// refreshSession is com.atproto.server.refreshSession: the refresh token
// is exchanged for a new pair (rotation with a grace period, see
// auth.SessionIssuer.Rotate).
func (s *Server) refreshSession(ctx context.Context) (*atproto.ServerRefreshSession_Output, error) {
	c, err := s.requireRefresh(ctx)
	if err != nil {
		return nil, err
	}
	pair, err := s.sessions.Rotate(ctx, c.Token)
	if err != nil {
		return nil, err
	}
	out := &atproto.ServerRefreshSession_Output{
		AccessJwt:  pair.Access,
		RefreshJwt: pair.Refresh,
		Did:        string(c.DID),
		Handle:     handleOf(c.Account),
		DidDoc:     s.didDocValue(ctx, c.DID),
	}
	out.Email, out.EmailConfirmed, out.Active, out.Status = sessionAccountFields(c.Account)
	return out, nil
}

// getSession is com.atproto.server.getSession.
func (s *Server) getSession(ctx context.Context) (*atproto.ServerGetSession_Output, error) {
	c, err := s.requireAccess(ctx, authOpts{level: anyAccess, allowDeactivated: true})
	if err != nil {
		return nil, err
	}
	out := &atproto.ServerGetSession_Output{
		Did:    string(c.DID),
		Handle: handleOf(c.Account),
		DidDoc: s.didDocValue(ctx, c.DID),
	}
	out.Email, out.EmailConfirmed, out.Active, out.Status = sessionAccountFields(c.Account)
	return out, nil
}

// deleteSession is com.atproto.server.deleteSession: it revokes the
// refresh token it is called with. Its access tokens stay valid until
// they expire (at most two hours), as with the reference.
func (s *Server) deleteSession(ctx context.Context) error {
	tok, ok := bearerToken(httpRequest(ctx))
	if !ok {
		return errAuthMissing()
	}
	return s.sessions.Revoke(ctx, tok)
}

// handleOf is the handle a session shows: the account's, or
// handle.invalid for an account without one.
func handleOf(acct *store.Account) string {
	if acct == nil || acct.Handle == "" {
		return string(syntax.HandleInvalid)
	}
	return string(acct.Handle)
}

// sessionAccountFields are the email and status fields of the session
// outputs. status is left out for an active account, as the reference
// does.
func sessionAccountFields(acct *store.Account) (email *string, confirmed *bool, active *bool, status *string) {
	if acct.Email != "" {
		e := acct.Email
		email = &e
	}
	c := acct.EmailConfirmedAt != nil
	confirmed = &c
	a, st := accountStatus(acct)
	active = &a
	if st != "" {
		status = &st
	}
	return
}

// didDocValue is the account's DID document for a session response, as
// a generic data-model value, or nil when it cannot be resolved (the
// response leaves it out then, as the reference does).
func (s *Server) didDocValue(ctx context.Context, did syntax.DID) any {
	doc, err := s.resolver.ResolveDIDDocument(ctx, did)
	if err != nil {
		s.log.WarnContext(ctx, "pds: could not resolve DID document for a session", "did", did, "err", err)
		return nil
	}
	v, err := jsonValue(doc)
	if err != nil {
		s.log.WarnContext(ctx, "pds: could not render DID document", "did", did, "err", err)
		return nil
	}
	return v
}

// jsonValue turns a JSON-marshalable Go value into the generic data
// model, for the "unknown" fields of XRPC outputs.
func jsonValue(v any) (any, error) {
	b, err := json.Marshal(v)
	if err != nil {
		return nil, err
	}
	return data.DecodeJSON(b)
}
