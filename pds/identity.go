package pds

import (
	"context"
	"errors"
	"net/http"
	"slices"
	"strings"

	"github.com/welkin-atproto/welkin/api/atproto"
	"github.com/welkin-atproto/welkin/atproto/identity"
	"github.com/welkin-atproto/welkin/atproto/plc"
	"github.com/welkin-atproto/welkin/atproto/syntax"
	"github.com/welkin-atproto/welkin/atproto/xrpc"
	"github.com/welkin-atproto/welkin/pds/store"
)

// registerIdentity registers com.atproto.identity.*.
func (s *Server) registerIdentity() {
	x := s.xrpc
	xrpc.HandleQuery(x, atproto.IdentityResolveHandleNSID, s.resolveHandle)
	xrpc.HandleQuery(x, atproto.IdentityResolveDidNSID, s.resolveDid)
	xrpc.HandleQuery(x, atproto.IdentityResolveIdentityNSID, s.resolveIdentity)
	xrpc.HandleProcedure(x, atproto.IdentityRefreshIdentityNSID, s.refreshIdentity)
	xrpc.HandleProcedure(x, atproto.IdentityUpdateHandleNSID, noOutputProc(s.updateHandle))
	xrpc.HandleQuery(x, atproto.IdentityGetRecommendedDidCredentialsNSID, noParamsQuery(s.getRecommendedDidCredentials))
	xrpc.HandleProcedure(x, atproto.IdentityRequestPlcOperationSignatureNSID, bareProc(s.requestPlcOperationSignature))
	xrpc.HandleProcedure(x, atproto.IdentitySignPlcOperationNSID, s.signPlcOperation)
	xrpc.HandleProcedure(x, atproto.IdentitySubmitPlcOperationNSID, noOutputProc(s.submitPlcOperation))
}

// resolveHandle is com.atproto.identity.resolveHandle: hosted handles are
// answered from the accounts table (a handle under the PDS's domains that
// no active account holds does not exist), others through the resolver.
func (s *Server) resolveHandle(ctx context.Context, p *atproto.IdentityResolveHandle_Params) (*atproto.IdentityResolveHandle_Output, error) {
	h, err := syntax.ParseHandle(p.Handle)
	if err != nil {
		return nil, xrpc.Errorf(http.StatusBadRequest, "InvalidHandle", "%s", handleParseMessage(err))
	}
	did, err := s.lookupHandle(ctx, h.Normalize())
	if err != nil {
		return nil, err
	}
	return &atproto.IdentityResolveHandle_Output{Did: string(did)}, nil
}

// lookupHandle resolves a handle: the PDS's own accounts first, then DNS
// and HTTPS through the resolver.
func (s *Server) lookupHandle(ctx context.Context, h syntax.Handle) (syntax.DID, error) {
	acct, err := s.accounts.AccountByHandle(ctx, h)
	if err == nil && acct.Status == store.StatusActive {
		return acct.DID, nil
	}
	if err != nil && !errors.Is(err, store.ErrNotFound) {
		return "", err
	}
	if s.isHostedHandle(h) {
		return "", xrpc.Errorf(http.StatusBadRequest, "HandleNotFound", "Unable to resolve handle")
	}
	did, err := s.resolver.ResolveHandle(ctx, h)
	if err != nil {
		e := xrpc.InvalidRequest("Unable to resolve handle")
		e.Err = err
		return "", e
	}
	return did, nil
}

// resolveDid is com.atproto.identity.resolveDid.
func (s *Server) resolveDid(ctx context.Context, p *atproto.IdentityResolveDid_Params) (*atproto.IdentityResolveDid_Output, error) {
	did, err := syntax.ParseDID(p.Did)
	if err != nil {
		return nil, xrpc.InvalidRequest("invalid did")
	}
	doc, err := s.resolver.ResolveDIDDocument(ctx, did)
	if err != nil {
		return nil, didResolutionError(err)
	}
	v, err := jsonValue(doc)
	if err != nil {
		return nil, err
	}
	return &atproto.IdentityResolveDid_Output{DidDoc: v}, nil
}

// resolveIdentity is com.atproto.identity.resolveIdentity: a DID or
// handle to the DID, its document and its handle verified both ways
// (handle.invalid when the handle does not point back at the DID).
func (s *Server) resolveIdentity(ctx context.Context, p *atproto.IdentityResolveIdentity_Params) (*atproto.IdentityResolveIdentity_Output, error) {
	id, err := syntax.ParseAtIdentifier(p.Identifier)
	if err != nil {
		return nil, xrpc.InvalidRequest("invalid identifier")
	}
	return s.identityInfo(ctx, id.Normalize())
}

// refreshIdentity is com.atproto.identity.refreshIdentity: resolveIdentity
// after dropping what the PDS has cached about the identifier.
func (s *Server) refreshIdentity(ctx context.Context, in *atproto.IdentityRefreshIdentity_Input) (*atproto.IdentityRefreshIdentity_Output, error) {
	if in == nil {
		return nil, xrpc.InvalidRequest("Input is required")
	}
	id, err := syntax.ParseAtIdentifier(in.Identifier)
	if err != nil {
		return nil, xrpc.InvalidRequest("invalid identifier")
	}
	id = id.Normalize()
	if err := s.resolver.Purge(ctx, id); err != nil {
		return nil, err
	}
	return s.identityInfo(ctx, id)
}

func (s *Server) identityInfo(ctx context.Context, id syntax.AtIdentifier) (*atproto.IdentityDefs_IdentityInfo, error) {
	var (
		did    syntax.DID
		asked  syntax.Handle
		err    error
		handle = syntax.HandleInvalid
	)
	if d, derr := id.AsDID(); derr == nil {
		did = d
	} else {
		if asked, err = id.AsHandle(); err != nil {
			return nil, xrpc.InvalidRequest("invalid identifier")
		}
		did, err = s.lookupHandle(ctx, asked)
		if err != nil {
			var xe *xrpc.Error
			if errors.As(err, &xe) && xe.Status == http.StatusBadRequest {
				return nil, xrpc.Errorf(http.StatusBadRequest, "HandleNotFound", "Unable to resolve handle")
			}
			return nil, err
		}
	}
	doc, err := s.resolver.ResolveDIDDocument(ctx, did)
	if err != nil {
		return nil, didResolutionError(err)
	}
	ident, err := identity.NewIdentity(doc)
	if err != nil {
		return nil, didResolutionError(err)
	}
	declared := ident.DeclaredHandle()
	if asked != "" {
		if declared != asked {
			return nil, xrpc.Errorf(http.StatusBadRequest, "HandleNotFound", "Handle does not match the DID document")
		}
		handle = asked
	} else if !declared.IsInvalidHandle() {
		if back, err := s.lookupHandle(ctx, declared); err == nil && back == did {
			handle = declared
		}
	}
	v, err := jsonValue(doc)
	if err != nil {
		return nil, err
	}
	return &atproto.IdentityDefs_IdentityInfo{Did: string(did), Handle: string(handle), DidDoc: v}, nil
}

// didResolutionError maps a resolver failure to the lexicon's errors.
func didResolutionError(err error) error {
	var e *xrpc.Error
	switch {
	case errors.Is(err, identity.ErrDIDNotFound):
		e = xrpc.Errorf(http.StatusBadRequest, "DidNotFound", "DID not found")
	case errors.Is(err, identity.ErrDIDDeactivated):
		e = xrpc.Errorf(http.StatusBadRequest, "DidDeactivated", "DID is deactivated")
	case errors.Is(err, identity.ErrUnsupportedDIDMethod):
		e = xrpc.InvalidRequest("unsupported DID method")
	case errors.Is(err, identity.ErrInvalidDIDDocument), errors.Is(err, identity.ErrDIDDocumentMismatch):
		e = xrpc.Errorf(http.StatusBadRequest, "DidNotFound", "DID document is invalid")
	default:
		e = xrpc.UpstreamFailure("could not resolve the DID")
	}
	e.Err = err
	return e
}

// updateHandle is com.atproto.identity.updateHandle.
func (s *Server) updateHandle(ctx context.Context, in *atproto.IdentityUpdateHandle_Input) error {
	c, err := s.requireAccess(ctx, authOpts{level: anyAccess, allowDeactivated: true})
	if err != nil {
		return err
	}
	if in == nil {
		return xrpc.InvalidRequest("Input is required")
	}
	if err := s.chargeDID(c.DID, s.acct().limits.handle...); err != nil {
		return err
	}
	return s.changeHandle(ctx, c.Account, in.Handle, false)
}

// changeHandle gives acct the handle raw: the rules of normalizeHandle,
// the handle free on this PDS, the DID document updated (a signed PLC
// operation for did:plc; a did:web must already declare it), then the
// store, the caches and an #identity event.
func (s *Server) changeHandle(ctx context.Context, acct *store.Account, raw string, admin bool) error {
	h, err := s.normalizeHandle(ctx, raw, handleRules{did: acct.DID, admin: admin})
	if err != nil {
		return err
	}
	if other, err := s.accounts.AccountByHandle(ctx, h); err == nil && other.DID != acct.DID {
		return errHandleTaken(h)
	} else if err != nil && !errors.Is(err, store.ErrNotFound) {
		return err
	}
	if acct.DID.Method() == "plc" {
		if err := s.updatePLCHandle(ctx, acct.DID, h); err != nil {
			return err
		}
	} else {
		s.resolver.PurgeDID(acct.DID)
		id, err := s.resolver.ResolveDID(ctx, acct.DID)
		if err != nil || id.DeclaredHandle() != h {
			e := xrpc.InvalidRequest("DID is not properly configured for handle")
			e.Err = err
			return e
		}
	}
	if err := s.accounts.UpdateHandle(ctx, acct.DID, h); err != nil {
		if errors.Is(err, store.ErrHandleTaken) {
			return errHandleTaken(h)
		}
		return err
	}
	s.resolver.PurgeDID(acct.DID)
	s.resolver.PurgeHandle(h)
	if acct.Handle != "" {
		s.resolver.PurgeHandle(acct.Handle)
	}
	if err := s.emitIdentity(ctx, acct.DID, h); err != nil {
		// The handle is changed; a retry of the same update sends the
		// event again, as with the reference.
		s.log.Error("pds: #identity event after a handle change", "did", acct.DID, "err", err)
	}
	return nil
}

func errHandleTaken(h syntax.Handle) error {
	return xrpc.Errorf(http.StatusBadRequest, "HandleNotAvailable", "Handle already taken: %s", h)
}

// getRecommendedDidCredentials is
// com.atproto.identity.getRecommendedDidCredentials: what the account's
// DID document should hold to be hosted here (used when moving here).
func (s *Server) getRecommendedDidCredentials(ctx context.Context) (*atproto.IdentityGetRecommendedDidCredentials_Output, error) {
	c, err := s.requireAccess(ctx, authOpts{level: anyAccess, allowDeactivated: true})
	if err != nil {
		return nil, err
	}
	key, err := s.signingKey(ctx, c.DID)
	if err != nil {
		return nil, err
	}
	out := &atproto.IdentityGetRecommendedDidCredentials_Output{
		RotationKeys:        []string{s.keys.rotation.Public().DIDKey()},
		VerificationMethods: map[string]any{plcKeyAtproto: key.Public().DIDKey()},
		Services: map[string]any{
			plcServicePDS: map[string]any{"type": plcServiceType, "endpoint": s.cfg.PublicURL},
		},
	}
	if c.Account.Handle != "" {
		out.AlsoKnownAs = []string{"at://" + string(c.Account.Handle)}
	}
	return out, nil
}

// requestPlcOperationSignature is
// com.atproto.identity.requestPlcOperationSignature: emails the token
// signPlcOperation asks for.
func (s *Server) requestPlcOperationSignature(ctx context.Context) error {
	c, err := s.requireAccess(ctx, authOpts{level: fullAccess, allowDeactivated: true})
	if err != nil {
		return err
	}
	if err := s.chargeDID(c.DID, s.acct().limits.email...); err != nil {
		return err
	}
	return s.issueEmailToken(ctx, c.Account, store.PurposePLCOperation, c.Account.Email)
}

// signPlcOperation is com.atproto.identity.signPlcOperation: with the
// emailed token, the server signs (with its rotation key) an operation
// that follows the account's latest one, with the fields given replacing
// the latest ones. It is returned, not submitted: the client submits it,
// typically through the PDS the account moves to.
func (s *Server) signPlcOperation(ctx context.Context, in *atproto.IdentitySignPlcOperation_Input) (*atproto.IdentitySignPlcOperation_Output, error) {
	c, err := s.requireAccess(ctx, authOpts{level: fullAccess, allowDeactivated: true})
	if err != nil {
		return nil, err
	}
	if in == nil || in.Token == nil || *in.Token == "" {
		return nil, xrpc.InvalidRequest("email confirmation token required to sign PLC operations")
	}
	if c.DID.Method() != "plc" {
		return nil, xrpc.InvalidRequest("only did:plc identities have PLC operations")
	}
	var (
		vms  map[string]string
		svcs map[string]plc.Service
	)
	if in.VerificationMethods != nil {
		if vms, err = verificationMethodsValue(in.VerificationMethods); err != nil {
			return nil, xrpc.InvalidRequest(err.Error())
		}
	}
	if in.Services != nil {
		if svcs, err = servicesValue(in.Services); err != nil {
			return nil, xrpc.InvalidRequest(err.Error())
		}
	}
	if err := s.useEmailToken(ctx, c.DID, store.PurposePLCOperation, *in.Token); err != nil {
		return nil, err
	}
	op, err := s.updateOp(ctx, c.DID, func(op *plc.Operation) error {
		if in.RotationKeys != nil {
			op.RotationKeys = append([]string{}, in.RotationKeys...)
		}
		if in.AlsoKnownAs != nil {
			op.AlsoKnownAs = append([]string{}, in.AlsoKnownAs...)
		}
		if vms != nil {
			op.VerificationMethods = vms
		}
		if svcs != nil {
			op.Services = svcs
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	if err := plc.CheckNewOpLimits(op); err != nil {
		return nil, xrpc.InvalidRequest("invalid PLC operation: " + strings.TrimPrefix(err.Error(), "plc: "))
	}
	v, err := opValue(op)
	if err != nil {
		return nil, err
	}
	return &atproto.IdentitySignPlcOperation_Output{Operation: v}, nil
}

// submitPlcOperation is com.atproto.identity.submitPlcOperation: a signed
// operation for the caller's did:plc, which must keep the account hosted
// here (the server's rotation key, this PDS as atproto_pds, the account's
// signing key, its handle first in alsoKnownAs), is sent to the PLC
// directory and announced with an #identity event.
func (s *Server) submitPlcOperation(ctx context.Context, in *atproto.IdentitySubmitPlcOperation_Input) error {
	c, err := s.requireAccess(ctx, authOpts{level: anyAccess, allowDeactivated: true})
	if err != nil {
		return err
	}
	if in == nil || in.Operation == nil {
		return xrpc.InvalidRequest("Invalid operation")
	}
	if c.DID.Method() != "plc" {
		return xrpc.InvalidRequest("only did:plc identities have PLC operations")
	}
	op, err := parseSubmittedOp(in.Operation)
	if err != nil {
		e := xrpc.InvalidRequest("Invalid operation")
		e.Err = err
		return e
	}
	if !slices.Contains(op.RotationKeys, s.keys.rotation.Public().DIDKey()) {
		return xrpc.InvalidRequest("Rotation keys do not include server's rotation key")
	}
	svc, ok := op.Services[plcServicePDS]
	if !ok || svc.Type != plcServiceType {
		return xrpc.InvalidRequest("Incorrect type on atproto_pds service")
	}
	if svc.Endpoint != s.cfg.PublicURL {
		return xrpc.InvalidRequest("Incorrect endpoint on atproto_pds service")
	}
	key, err := s.signingKey(ctx, c.DID)
	if err != nil {
		return err
	}
	if op.VerificationMethods[plcKeyAtproto] != key.Public().DIDKey() {
		return xrpc.InvalidRequest("Incorrect signing key")
	}
	if c.Account.Handle != "" && (len(op.AlsoKnownAs) == 0 || op.AlsoKnownAs[0] != "at://"+string(c.Account.Handle)) {
		return xrpc.InvalidRequest("Incorrect handle in alsoKnownAs")
	}
	if err := s.submitPLC(ctx, c.DID, op); err != nil {
		return err
	}
	s.resolver.PurgeDID(c.DID)
	return s.emitIdentity(ctx, c.DID, "")
}
