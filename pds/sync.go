package pds

import (
	"context"
	"errors"
	"net/http"
	"strings"

	"github.com/welkin-atproto/welkin/api/atproto"
	"github.com/welkin-atproto/welkin/atproto/data"
	"github.com/welkin-atproto/welkin/atproto/syntax"
	"github.com/welkin-atproto/welkin/atproto/xrpc"
	"github.com/welkin-atproto/welkin/pds/store"
)

// The com.atproto.sync.* methods serve an account's repository, blobs and
// status to anyone: relays, AppViews, migrating hosts. They are files of
// their own by subject: sync_repo.go (repositories, commits, blocks),
// sync_blob.go (blobs) and sync_status.go (account listings and status).
// subscribeRepos is mounted by server.go on the sequencer; crawl.go asks
// relays to subscribe.

// carEncoding is the MIME type of CAR responses.
const carEncoding = "application/vnd.ipld.car"

// registerSync registers the com.atproto.sync.* methods.
func (s *Server) registerSync() {
	s.xrpc.Handle(atproto.SyncGetRepoNSID, xrpc.Query, s.syncGetRepo)
	s.xrpc.Handle(atproto.SyncGetCheckoutNSID, xrpc.Query, s.syncGetCheckout)
	s.xrpc.Handle(atproto.SyncGetRecordNSID, xrpc.Query, s.syncGetRecord)
	s.xrpc.Handle(atproto.SyncGetBlocksNSID, xrpc.Query, s.syncGetBlocks)
	s.xrpc.Handle(atproto.SyncGetBlobNSID, xrpc.Query, s.syncGetBlob)
	xrpc.HandleQuery(s.xrpc, atproto.SyncGetLatestCommitNSID, s.syncGetLatestCommit)
	xrpc.HandleQuery(s.xrpc, atproto.SyncGetHeadNSID, s.syncGetHead)
	xrpc.HandleQuery(s.xrpc, atproto.SyncGetRepoStatusNSID, s.syncGetRepoStatus)
	xrpc.HandleQuery(s.xrpc, atproto.SyncListReposNSID, s.syncListRepos)
	xrpc.HandleQuery(s.xrpc, atproto.SyncListBlobsNSID, s.syncListBlobs)
}

// repoNotFound is the error of a sync read of an account this PDS does not
// host (or no longer hosts).
func repoNotFound(did string) error {
	return xrpc.Errorf(http.StatusBadRequest, "RepoNotFound", "Could not find repo for DID: %s", did)
}

// parseDIDParam parses the did parameter of a sync method.
func parseDIDParam(v string) (syntax.DID, error) {
	did, err := syntax.ParseDID(v)
	if err != nil {
		return "", xrpc.InvalidRequest("invalid did parameter: " + err.Error())
	}
	return did, nil
}

// syncAccount returns the account whose repository a sync read asks for,
// refusing it as the reference PDS does: RepoNotFound when the PDS does not
// host it, and, unless the caller is the account itself or the admin,
// RepoTakendown and RepoDeactivated for unavailable accounts.
func (s *Server) syncAccount(ctx context.Context, did syntax.DID) (*store.Account, error) {
	acct, err := s.accounts.AccountByDID(ctx, did)
	if errors.Is(err, store.ErrNotFound) {
		return nil, repoNotFound(string(did))
	}
	if err != nil {
		return nil, err
	}
	if acct.Status == store.StatusActive {
		return acct, nil
	}
	privileged, err := s.isOwnerOrAdmin(ctx, did)
	if err != nil {
		return nil, err
	}
	if privileged {
		return acct, nil
	}
	switch acct.Status {
	case store.StatusTakendown:
		return nil, xrpc.Errorf(http.StatusBadRequest, "RepoTakendown", "Repo has been takendown: %s", did)
	case store.StatusDeactivated:
		return nil, xrpc.Errorf(http.StatusBadRequest, "RepoDeactivated", "Repo has been deactivated: %s", did)
	}
	return acct, nil
}

// isOwnerOrAdmin reports whether the request carries the admin's basic
// credentials or an access token of did itself. Sync reads are public;
// credentials only lift the availability checks, as the reference's
// optional "user or admin" authentication does, so they are only looked at
// for an account that is not active. There, credentials that are present
// but invalid fail the request, as they do in the reference; an
// authorization scheme other than Basic and Bearer is ignored.
func (s *Server) isOwnerOrAdmin(ctx context.Context, did syntax.DID) (bool, error) {
	r := httpRequest(ctx)
	if r == nil {
		return false, nil
	}
	h := r.Header.Get("Authorization")
	scheme, _, _ := strings.Cut(h, " ")
	switch {
	case strings.EqualFold(scheme, "basic"):
		if s.cfg.AdminPassword == "" || !s.isAdmin(r) {
			return false, xrpc.AuthRequired("Authentication Required")
		}
		return true, nil
	case strings.EqualFold(scheme, "bearer"):
		tok, ok := bearerToken(r)
		if !ok {
			return false, xrpc.AuthRequired("Authentication Required")
		}
		// Only the token is checked, not the account's status: a
		// taken-down or deactivated account may still read its own data.
		claims, err := s.sessions.VerifyAccess(tok)
		if err != nil {
			return false, err
		}
		return claims.Subject == did, nil
	}
	return false, nil
}

// repoHead returns the current commit of did's repository; ok is false when
// it has none.
func (s *Server) repoHead(ctx context.Context, did syntax.DID) (head data.CID, rev string, ok bool, err error) {
	st, release, ok, err := s.repoStore(ctx, did)
	if err != nil || !ok {
		return data.CID{}, "", false, err
	}
	defer release()
	return st.Head(ctx)
}
