package pds

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/welkin-atproto/welkin/api/atproto"
	"github.com/welkin-atproto/welkin/atproto/auth"
	"github.com/welkin-atproto/welkin/atproto/crypto"
	"github.com/welkin-atproto/welkin/atproto/plc"
	"github.com/welkin-atproto/welkin/atproto/syntax"
	"github.com/welkin-atproto/welkin/atproto/xrpc"
	"github.com/welkin-atproto/welkin/pds/store"
)

// registerServer registers com.atproto.server.*.
func (s *Server) registerServer() {
	x := s.xrpc
	xrpc.HandleQuery(x, atproto.ServerDescribeServerNSID, noParamsQuery(s.describeServer))
	xrpc.HandleProcedure(x, atproto.ServerCreateAccountNSID, s.createAccount)
	xrpc.HandleProcedure(x, atproto.ServerCreateSessionNSID, s.createSession)
	xrpc.HandleProcedure(x, atproto.ServerRefreshSessionNSID, noInputProc(s.refreshSession))
	xrpc.HandleQuery(x, atproto.ServerGetSessionNSID, noParamsQuery(s.getSession))
	xrpc.HandleProcedure(x, atproto.ServerDeleteSessionNSID, bareProc(s.deleteSession))

	xrpc.HandleProcedure(x, atproto.ServerCreateAppPasswordNSID, s.createAppPassword)
	xrpc.HandleQuery(x, atproto.ServerListAppPasswordsNSID, noParamsQuery(s.listAppPasswords))
	xrpc.HandleProcedure(x, atproto.ServerRevokeAppPasswordNSID, noOutputProc(s.revokeAppPassword))

	xrpc.HandleProcedure(x, atproto.ServerCreateInviteCodeNSID, s.createInviteCode)
	xrpc.HandleProcedure(x, atproto.ServerCreateInviteCodesNSID, s.createInviteCodes)
	xrpc.HandleQuery(x, atproto.ServerGetAccountInviteCodesNSID, s.getAccountInviteCodes)

	xrpc.HandleProcedure(x, atproto.ServerDeactivateAccountNSID, noOutputProc(s.deactivateAccount))
	xrpc.HandleProcedure(x, atproto.ServerActivateAccountNSID, bareProc(s.activateAccount))
	xrpc.HandleQuery(x, atproto.ServerCheckAccountStatusNSID, noParamsQuery(s.checkAccountStatus))
	xrpc.HandleProcedure(x, atproto.ServerRequestAccountDeleteNSID, bareProc(s.requestAccountDelete))
	xrpc.HandleProcedure(x, atproto.ServerDeleteAccountNSID, noOutputProc(s.deleteAccount))
	xrpc.HandleQuery(x, atproto.ServerGetServiceAuthNSID, s.getServiceAuth)

	xrpc.HandleProcedure(x, atproto.ServerRequestEmailConfirmationNSID, bareProc(s.requestEmailConfirmation))
	xrpc.HandleProcedure(x, atproto.ServerConfirmEmailNSID, noOutputProc(s.confirmEmail))
	xrpc.HandleProcedure(x, atproto.ServerRequestEmailUpdateNSID, noInputProc(s.requestEmailUpdate))
	xrpc.HandleProcedure(x, atproto.ServerUpdateEmailNSID, noOutputProc(s.updateEmail))
	xrpc.HandleProcedure(x, atproto.ServerRequestPasswordResetNSID, noOutputProc(s.requestPasswordReset))
	xrpc.HandleProcedure(x, atproto.ServerResetPasswordNSID, noOutputProc(s.resetPassword))
}

// Adapters from handler shapes without parameters, input or output to
// the typed registration helpers.

func noParamsQuery[O any](fn func(context.Context) (*O, error)) func(context.Context, *xrpc.NoParams) (*O, error) {
	return func(ctx context.Context, _ *xrpc.NoParams) (*O, error) { return fn(ctx) }
}

func noInputProc[O any](fn func(context.Context) (*O, error)) func(context.Context, *xrpc.NoInput) (*O, error) {
	return func(ctx context.Context, _ *xrpc.NoInput) (*O, error) { return fn(ctx) }
}

func noOutputProc[I any](fn func(context.Context, *I) error) func(context.Context, *I) (*xrpc.NoOutput, error) {
	return func(ctx context.Context, in *I) (*xrpc.NoOutput, error) { return nil, fn(ctx, in) }
}

func bareProc(fn func(context.Context) error) func(context.Context, *xrpc.NoInput) (*xrpc.NoOutput, error) {
	return func(ctx context.Context, _ *xrpc.NoInput) (*xrpc.NoOutput, error) { return nil, fn(ctx) }
}

// describeServer is com.atproto.server.describeServer.
func (s *Server) describeServer(ctx context.Context) (*atproto.ServerDescribeServer_Output, error) {
	invite := s.cfg.InviteRequired
	limit := s.cfg.MaxBlobSize
	return &atproto.ServerDescribeServer_Output{
		Did:                  s.cfg.ServiceDID,
		AvailableUserDomains: append([]string{}, s.cfg.HandleDomains...),
		InviteCodeRequired:   &invite,
		BlobUploadLimit:      &limit,
		Links:                &atproto.ServerDescribeServer_Links{},
		Contact:              &atproto.ServerDescribeServer_Contact{},
	}, nil
}

// createAccount is com.atproto.server.createAccount.
//
// Without a did, the PDS makes a new did:plc: a fresh repository signing
// key, a genesis operation signed with the server's rotation key, sent to
// the PLC directory. With a did (an account moving here from another
// PDS), the caller must prove control of it with a service token from
// that DID for this method; the account starts deactivated, to be
// activated once its repository is imported and its DID document points
// here.
func (s *Server) createAccount(ctx context.Context, in *atproto.ServerCreateAccount_Input) (*atproto.ServerCreateAccount_Output, error) {
	if in == nil {
		return nil, xrpc.InvalidRequest("Input is required")
	}
	if err := s.chargeIP(ctx, s.acct().limits.createAccount); err != nil {
		return nil, err
	}
	var requester syntax.DID
	if tok, ok := bearerToken(httpRequest(ctx)); ok {
		claims, err := s.services.Verify(ctx, tok, atproto.ServerCreateAccountNSID)
		if err != nil {
			return nil, err
		}
		requester = claims.Issuer
	}
	if in.PlcOp != nil {
		return nil, xrpc.InvalidRequest(`Unsupported input: "plcOp"`)
	}
	password := deref(in.Password)
	if len(password) > newPasswordMaxLength {
		return nil, xrpc.InvalidRequest(fmt.Sprintf("Password too long. Maximum length is %d characters.", newPasswordMaxLength))
	}
	invite := strings.TrimSpace(deref(in.InviteCode))
	if s.cfg.InviteRequired && invite == "" {
		return nil, xrpc.Errorf(http.StatusBadRequest, "InvalidInviteCode", "No invite code provided")
	}
	email := strings.ToLower(strings.TrimSpace(deref(in.Email)))
	if email == "" {
		return nil, xrpc.InvalidRequest("Email is required")
	}
	if !validEmail(email) {
		return nil, xrpc.InvalidRequest("This email address is not supported, please use a different email.")
	}
	var did syntax.DID
	if in.Did != nil {
		d, err := syntax.ParseDID(*in.Did)
		if err != nil {
			return nil, xrpc.InvalidRequest("invalid did")
		}
		did = d
	}
	handle, err := s.normalizeHandle(ctx, in.Handle, handleRules{did: did})
	if err != nil {
		return nil, err
	}
	if invite != "" {
		ic, err := s.accounts.GetInviteCode(ctx, invite)
		if errors.Is(err, store.ErrNotFound) || (err == nil && (ic.Disabled || len(ic.Uses) >= ic.Available)) {
			return nil, errInviteUnavailable()
		}
		if err != nil {
			return nil, err
		}
	}
	if _, err := s.accounts.AccountByHandle(ctx, handle); err == nil {
		return nil, xrpc.InvalidRequest("Handle already taken: " + string(handle))
	} else if !errors.Is(err, store.ErrNotFound) {
		return nil, err
	}
	if _, err := s.accounts.AccountByEmail(ctx, email); err == nil {
		return nil, xrpc.InvalidRequest("Email already taken: " + email)
	} else if !errors.Is(err, store.ErrNotFound) {
		return nil, err
	}

	key, err := crypto.GenerateK256()
	if err != nil {
		return nil, err
	}
	var genesis *plc.Operation
	migrating := did != ""
	if migrating {
		if did != requester {
			return nil, xrpc.AuthRequired("Missing auth to create account with did: " + string(did))
		}
	} else {
		recovery := strings.TrimSpace(deref(in.RecoveryKey))
		if recovery != "" {
			if _, err := crypto.ParsePublicDIDKey(recovery); err != nil {
				return nil, xrpc.InvalidRequest("recoveryKey must be a did:key")
			}
		}
		if genesis, did, err = s.genesisOp(handle, key.Public(), recovery); err != nil {
			return nil, err
		}
	}
	hash := ""
	if password != "" {
		if hash, err = store.HashPassword(password); err != nil {
			return nil, err
		}
	}
	now := s.cfg.Now().UTC()
	acct := store.Account{
		DID:          did,
		Handle:       handle,
		Email:        email,
		PasswordHash: hash,
		SigningKey:   key.Bytes(),
		Status:       store.StatusActive,
		CreatedAt:    now,
	}
	if migrating {
		acct.Status = store.StatusDeactivated
		acct.DeactivatedAt = &now
	}

	if genesis != nil {
		if err := s.submitPLC(ctx, did, genesis); err != nil {
			return nil, err
		}
	}
	if err := s.accounts.CreateAccount(ctx, acct, invite); err != nil {
		s.abandonDID(did, genesis)
		return nil, createAccountError(err, handle, email)
	}
	if err := s.setUpAccount(ctx, &acct, key); err != nil {
		s.undoAccount(did, genesis, !migrating)
		return nil, err
	}
	pair, err := s.sessions.CreateSession(ctx, did, auth.ScopeAccess)
	if err != nil {
		return nil, err
	}
	out := &atproto.ServerCreateAccount_Output{
		AccessJwt:  pair.Access,
		RefreshJwt: pair.Refresh,
		Did:        string(did),
		Handle:     string(handle),
	}
	if genesis != nil {
		if d, err := plc.DataForOp(did, genesis); err == nil {
			out.DidDoc, _ = jsonValue(d.Document())
		}
	} else {
		out.DidDoc = s.didDocValue(ctx, did)
	}
	return out, nil
}

// setUpAccount writes the first commit of a new account and, for an
// active account, announces it: #identity and #account before the
// commit, #sync after it (the reference's order).
func (s *Server) setUpAccount(ctx context.Context, acct *store.Account, key crypto.PrivateKey) error {
	active := acct.Status == store.StatusActive
	if active {
		if err := s.emitIdentity(ctx, acct.DID, acct.Handle); err != nil {
			return err
		}
		if err := s.emitAccount(ctx, acct.DID, true, ""); err != nil {
			return err
		}
	}
	if _, err := s.initRepo(ctx, acct.DID, key); err != nil {
		return err
	}
	if active {
		if err := s.emitSync(ctx, acct.DID); err != nil {
			// The account exists and its commit is on the firehose; a
			// missing #sync is not worth failing the creation for.
			s.log.Warn("pds: #sync event for a new account", "did", acct.DID, "err", err)
		}
		s.requestCrawlSoon()
	}
	return nil
}

// abandonDID tombstones a did:plc made for an account that could not be
// stored, so that no orphan identity points at this PDS.
func (s *Server) abandonDID(did syntax.DID, genesis *plc.Operation) {
	if genesis == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	prev, err := genesis.CID()
	if err == nil {
		err = s.tombstonePLC(ctx, did, prev)
	}
	if err != nil {
		s.log.Error("pds: could not tombstone the DID of a failed account creation", "did", did, "err", err)
	}
}

// undoAccount removes an account whose creation failed after it was
// stored.
func (s *Server) undoAccount(did syntax.DID, genesis *plc.Operation, announced bool) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := s.accounts.DeleteAccount(ctx, did); err != nil && !errors.Is(err, store.ErrNotFound) {
		s.log.Error("pds: undoing a failed account creation", "did", did, "err", err)
	}
	s.forgetSigningKey(did)
	if announced {
		if err := s.emitAccount(ctx, did, false, statusDeleted); err != nil {
			s.log.Error("pds: undoing a failed account creation", "did", did, "err", err)
		}
	}
	if err := s.removeActorStore(ctx, did); err != nil {
		s.log.Error("pds: undoing a failed account creation", "did", did, "err", err)
	} else if err := s.seq.ResetAccount(ctx, did); err != nil {
		s.log.Error("pds: undoing a failed account creation", "did", did, "err", err)
	}
	s.abandonDID(did, genesis)
}

func errInviteUnavailable() error {
	return xrpc.Errorf(http.StatusBadRequest, "InvalidInviteCode", "Provided invite code not available")
}

// createAccountError maps the store's refusals of a new account.
func createAccountError(err error, handle syntax.Handle, email string) error {
	switch {
	case errors.Is(err, store.ErrHandleTaken):
		return xrpc.InvalidRequest("Handle already taken: " + string(handle))
	case errors.Is(err, store.ErrEmailTaken):
		return xrpc.InvalidRequest("Email already taken: " + email)
	case errors.Is(err, store.ErrDIDTaken):
		return xrpc.InvalidRequest("User already exists")
	case errors.Is(err, store.ErrInvalidInvite):
		return errInviteUnavailable()
	}
	return err
}

// deactivateAccount is com.atproto.server.deactivateAccount.
func (s *Server) deactivateAccount(ctx context.Context, in *atproto.ServerDeactivateAccount_Input) error {
	c, err := s.requireAccess(ctx, authOpts{level: fullAccess, allowDeactivated: true})
	if err != nil {
		return err
	}
	var deleteAfter *time.Time
	if in != nil && in.DeleteAfter != nil {
		dt, err := syntax.ParseDatetime(*in.DeleteAfter)
		if err != nil {
			return xrpc.InvalidRequest("deleteAfter must be a datetime")
		}
		t := dt.Time().UTC()
		deleteAfter = &t
	}
	if err := s.accounts.SetStatus(ctx, c.DID, store.StatusDeactivated, s.cfg.Now().UTC(), deleteAfter); err != nil {
		if errors.Is(err, store.ErrNotFound) {
			return xrpc.InvalidRequest("Account not found")
		}
		return err
	}
	return s.emitAccount(ctx, c.DID, false, string(store.StatusDeactivated))
}

// activateAccount is com.atproto.server.activateAccount: the account's
// DID document must name this PDS and the account's signing key (and, for
// did:plc, keep the server's rotation key), then the account is served
// again and announced with #account, #identity and #sync.
func (s *Server) activateAccount(ctx context.Context) error {
	c, err := s.requireAccess(ctx, authOpts{level: fullAccess, allowDeactivated: true})
	if err != nil {
		return err
	}
	return s.activate(ctx, c.Account)
}

func (s *Server) activate(ctx context.Context, acct *store.Account) error {
	if err := s.checkDIDDocForService(ctx, acct.DID); err != nil {
		return err
	}
	if err := s.accounts.SetStatus(ctx, acct.DID, store.StatusActive, s.cfg.Now().UTC(), nil); err != nil {
		if errors.Is(err, store.ErrNotFound) {
			return xrpc.Errorf(http.StatusBadRequest, "AccountNotFound", "user not found")
		}
		return err
	}
	if err := s.emitAccount(ctx, acct.DID, true, ""); err != nil {
		return err
	}
	if err := s.emitIdentity(ctx, acct.DID, acct.Handle); err != nil {
		return err
	}
	if err := s.emitSync(ctx, acct.DID); err != nil {
		return err
	}
	s.requestCrawlSoon()
	return nil
}

// checkDIDDocForService checks that the DID document of did makes this
// PDS its host: the atproto_pds endpoint is PublicURL, the atproto key is
// the account's signing key, and a did:plc keeps the server's rotation
// key.
func (s *Server) checkDIDDocForService(ctx context.Context, did syntax.DID) error {
	key, err := s.signingKey(ctx, did)
	if err != nil {
		return err
	}
	wantKey := key.Public().DIDKey()
	var endpoint, signing string
	if did.Method() == "plc" {
		d, err := s.plc.Data(ctx, did)
		if err != nil {
			return plcError(err)
		}
		if !slices.Contains(d.RotationKeys, s.keys.rotation.Public().DIDKey()) {
			return xrpc.InvalidRequest("Server rotation key not included in PLC DID data")
		}
		if svc, ok := d.Services[plcServicePDS]; ok {
			endpoint = svc.Endpoint
		}
		signing = d.VerificationMethods[plcKeyAtproto]
	} else {
		s.resolver.PurgeDID(did)
		id, err := s.resolver.ResolveDID(ctx, did)
		if err != nil {
			e := xrpc.InvalidRequest("Could not resolve DID")
			e.Err = err
			return e
		}
		endpoint, _ = id.PDSEndpoint()
		if k, err := id.SigningKey(); err == nil {
			signing = k.DIDKey()
		}
	}
	if endpoint == "" || strings.TrimRight(endpoint, "/") != s.cfg.PublicURL {
		return xrpc.InvalidRequest("DID document atproto_pds service endpoint does not match PDS public url")
	}
	if signing != wantKey {
		return xrpc.InvalidRequest("DID document verification method does not match expected signing key")
	}
	return nil
}

// checkAccountStatus is com.atproto.server.checkAccountStatus, which a
// client moving an account here polls to see how far the move has come.
func (s *Server) checkAccountStatus(ctx context.Context) (*atproto.ServerCheckAccountStatus_Output, error) {
	c, err := s.requireAccess(ctx, authOpts{level: anyAccess, allowDeactivated: true})
	if err != nil {
		return nil, err
	}
	st, release, err := s.actors.get(ctx, c.DID)
	if err != nil {
		return nil, err
	}
	defer release()
	head, rev, ok, err := st.Head(ctx)
	if err != nil {
		return nil, err
	}
	if !ok {
		return nil, xrpc.Errorf(http.StatusBadRequest, "RepoNotFound", "Could not find repo for DID: %s", c.DID)
	}
	out := &atproto.ServerCheckAccountStatus_Output{
		Activated:          c.Account.Status == store.StatusActive,
		ValidDid:           s.checkDIDDocForService(ctx, c.DID) == nil,
		RepoCommit:         head.String(),
		RepoRev:            rev,
		PrivateStateValues: 0,
	}
	counts, err := st.Counts(ctx)
	if err != nil {
		return nil, err
	}
	out.RepoBlocks = counts.Blocks
	out.IndexedRecords = counts.Records
	out.ExpectedBlobs = counts.ExpectedBlobs
	out.ImportedBlobs = counts.ImportedBlobs
	return out, nil
}

// requestAccountDelete is com.atproto.server.requestAccountDelete: a token
// for deleteAccount is emailed to the account's address.
func (s *Server) requestAccountDelete(ctx context.Context) error {
	c, err := s.requireAccess(ctx, authOpts{level: fullAccess, allowDeactivated: true})
	if err != nil {
		return err
	}
	if err := s.chargeDID(c.DID, s.acct().limits.email...); err != nil {
		return err
	}
	return s.issueEmailToken(ctx, c.Account, store.PurposeDeleteAccount, c.Account.Email)
}

// deleteAccount is com.atproto.server.deleteAccount: the account password
// and the emailed token delete the account for good.
func (s *Server) deleteAccount(ctx context.Context, in *atproto.ServerDeleteAccount_Input) error {
	if err := s.chargeIP(ctx, s.acct().limits.tokenUse); err != nil {
		return err
	}
	if in == nil {
		return xrpc.InvalidRequest("Input is required")
	}
	if len(in.Password) > oldPasswordMaxLength {
		return xrpc.AuthRequired("Password too long. Consider resetting your password.")
	}
	did, err := syntax.ParseDID(in.Did)
	if err != nil {
		return xrpc.InvalidRequest("invalid did")
	}
	acct, err := s.accounts.AccountByDID(ctx, did)
	if errors.Is(err, store.ErrNotFound) {
		return xrpc.InvalidRequest("account not found")
	}
	if err != nil {
		return err
	}
	if !s.checkAccountPassword(acct, in.Password) {
		return xrpc.AuthRequired("Invalid did or password")
	}
	if err := s.useEmailToken(ctx, did, store.PurposeDeleteAccount, in.Token); err != nil {
		return err
	}
	return s.deleteAccountData(ctx, did)
}

// deleteAccountData deletes an account and everything the PDS keeps for
// it: the service rows (with its sessions and tokens), the #account
// event saying so, the repository, the blobs. The account's row goes
// first, so that a failure later leaves data no account points at, which
// a new attempt (the admin API) removes.
func (s *Server) deleteAccountData(ctx context.Context, did syntax.DID) error {
	if err := s.accounts.DeleteAccount(ctx, did); err != nil && !errors.Is(err, store.ErrNotFound) {
		return err
	}
	s.forgetSigningKey(did)
	if err := s.emitAccount(ctx, did, false, statusDeleted); err != nil {
		return err
	}
	var errs []error
	if err := s.removeActorStore(ctx, did); err != nil {
		errs = append(errs, err)
	} else if err := s.seq.ResetAccount(ctx, did); err != nil {
		errs = append(errs, err)
	}
	if err := s.blobs.DeleteAll(ctx, did); err != nil {
		errs = append(errs, err)
	}
	s.resolver.PurgeDID(did)
	return errors.Join(errs...)
}

// removeActorStore deletes the account's database, waiting (a bounded
// time) for requests and the sequencer to let go of it.
func (s *Server) removeActorStore(ctx context.Context, did syntax.DID) error {
	const wait = 10 * time.Second
	deadline := time.Now().Add(wait)
	delay := 5 * time.Millisecond
	for {
		err := s.actors.remove(did)
		if err == nil {
			return nil
		}
		if time.Now().After(deadline) {
			return err
		}
		select {
		case <-ctx.Done():
			return err
		case <-time.After(delay):
		}
		delay = min(delay*2, 250*time.Millisecond)
	}
}

// Methods that service tokens are restricted for, from the reference PDS.
// privilegedMethods need a full or privileged session; protectedMethods
// manage the account and must be called on the PDS directly, never with a
// service token. Names compare case-insensitively, as the reference's do.
var (
	privilegedMethods = lxmSet(
		atproto.ServerCreateAccountNSID,
		"chat.bsky.actor.deleteAccount",
		"chat.bsky.actor.exportAccountData",
		"chat.bsky.convo.deleteMessageForSelf",
		"chat.bsky.convo.getConvo",
		"chat.bsky.convo.getConvoForMembers",
		"chat.bsky.convo.getLog",
		"chat.bsky.convo.getMessages",
		"chat.bsky.convo.leaveConvo",
		"chat.bsky.convo.listConvos",
		"chat.bsky.convo.muteConvo",
		"chat.bsky.convo.sendMessage",
		"chat.bsky.convo.sendMessageBatch",
		"chat.bsky.convo.unmuteConvo",
		"chat.bsky.convo.updateRead",
	)
	protectedMethods = lxmSet(
		atproto.AdminSendEmailNSID,
		atproto.IdentityRequestPlcOperationSignatureNSID,
		atproto.IdentitySignPlcOperationNSID,
		atproto.IdentityUpdateHandleNSID,
		atproto.ServerActivateAccountNSID,
		atproto.ServerConfirmEmailNSID,
		atproto.ServerCreateAppPasswordNSID,
		atproto.ServerDeactivateAccountNSID,
		atproto.ServerGetAccountInviteCodesNSID,
		atproto.ServerGetSessionNSID,
		atproto.ServerListAppPasswordsNSID,
		atproto.ServerRequestAccountDeleteNSID,
		atproto.ServerRequestEmailConfirmationNSID,
		atproto.ServerRequestEmailUpdateNSID,
		atproto.ServerRevokeAppPasswordNSID,
		atproto.ServerUpdateEmailNSID,
	)
)

func lxmSet(names ...string) map[string]bool {
	m := make(map[string]bool, len(names))
	for _, n := range names {
		m[strings.ToLower(n)] = true
	}
	return m
}

// Lifetimes of tokens from getServiceAuth (the reference's limits).
const (
	maxServiceTokenTTL           = time.Hour
	maxMethodlessServiceTokenTTL = time.Minute
)

// getServiceAuth is com.atproto.server.getServiceAuth: a service token
// signed with the account's repository signing key, so that the service
// aud can check it against the account's DID document.
func (s *Server) getServiceAuth(ctx context.Context, p *atproto.ServerGetServiceAuth_Params) (*atproto.ServerGetServiceAuth_Output, error) {
	c, err := s.requireAccess(ctx, authOpts{level: anyAccess, allowDeactivated: true})
	if err != nil {
		return nil, err
	}
	if !validServiceAudience(p.Aud) {
		return nil, xrpc.InvalidRequest("aud must be a valid atproto DID or did#serviceId reference")
	}
	lxm := p.Lxm
	if lxm != "" && privilegedMethods[strings.ToLower(lxm)] && c.Scope == auth.ScopeAppPass {
		return nil, xrpc.InvalidRequest("insufficient access to request a service auth token for the following method: " + lxm)
	}
	now := s.cfg.Now()
	var ttl time.Duration
	if p.Exp != nil && *p.Exp != 0 {
		diff := time.Unix(*p.Exp, 0).Sub(now)
		switch {
		case diff < 0:
			return nil, xrpc.Errorf(http.StatusBadRequest, "BadExpiration", "expiration is in past")
		case diff > maxServiceTokenTTL:
			return nil, xrpc.Errorf(http.StatusBadRequest, "BadExpiration", "cannot request a token with an expiration more than an hour in the future")
		case lxm == "" && diff > maxMethodlessServiceTokenTTL:
			return nil, xrpc.Errorf(http.StatusBadRequest, "BadExpiration", "cannot request a method-less token with an expiration more than a minute in the future")
		}
		ttl = max(diff, time.Nanosecond)
	}
	if lxm != "" && protectedMethods[strings.ToLower(lxm)] {
		return nil, xrpc.InvalidRequest("cannot request a service auth token for the following protected method: " + lxm)
	}
	key, err := s.signingKey(ctx, c.DID)
	if err != nil {
		return nil, err
	}
	tok, err := auth.CreateServiceToken(key, string(c.DID), p.Aud, lxm, now, ttl)
	if err != nil {
		return nil, xrpc.InvalidRequest(err.Error())
	}
	return &atproto.ServerGetServiceAuth_Output{Token: tok}, nil
}

// validServiceAudience reports whether aud is an atproto DID (did:plc or
// did:web), optionally with a "#service" fragment.
func validServiceAudience(aud string) bool {
	d, frag, hasFrag := strings.Cut(aud, "#")
	did, err := syntax.ParseDID(d)
	if err != nil || (did.Method() != "plc" && did.Method() != "web") {
		return false
	}
	if !hasFrag {
		return true
	}
	if frag == "" {
		return false
	}
	for _, r := range frag {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || strings.ContainsRune("._:%-", r)) {
			return false
		}
	}
	return true
}

func deref[T any](p *T) T {
	var zero T
	if p == nil {
		return zero
	}
	return *p
}

// deleteExpiredAccounts deletes the deactivated accounts whose owners
// asked (deactivateAccount with deleteAfter) to be deleted by now. It is
// meant for the server's periodic background work.
func (s *Server) deleteExpiredAccounts(ctx context.Context) error {
	for {
		dids, err := s.accounts.AccountsToDelete(ctx, s.cfg.Now(), 100)
		if err != nil || len(dids) == 0 {
			return err
		}
		for _, did := range dids {
			s.log.Info("pds: deleting an account past its deleteAfter", "did", did)
			if err := s.deleteAccountData(ctx, did); err != nil {
				return err
			}
		}
	}
}
