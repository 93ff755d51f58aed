package pds

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"

	"github.com/welkin-atproto/welkin/api/atproto"
	"github.com/welkin-atproto/welkin/atproto/data"
	"github.com/welkin-atproto/welkin/atproto/repo"
	"github.com/welkin-atproto/welkin/atproto/syntax"
	"github.com/welkin-atproto/welkin/atproto/xrpc"
	"github.com/welkin-atproto/welkin/pds/actorstore"
	"github.com/welkin-atproto/welkin/pds/store"
)

// The com.atproto.repo.* endpoints live in the repo_*.go files: record
// writes (repo_records.go, repo_applywrites.go) and reads
// (repo_read.go), blobs (repo_blob.go) and imports (repo_import.go). Every
// write goes through commitWrites; this file holds what they share.

// registerRepo registers the com.atproto.repo.* methods.
func (s *Server) registerRepo() {
	s.xrpc.Handle(atproto.RepoCreateRecordNSID, xrpc.Procedure, s.repoCreateRecord)
	s.xrpc.Handle(atproto.RepoPutRecordNSID, xrpc.Procedure, s.repoPutRecord)
	s.xrpc.Handle(atproto.RepoDeleteRecordNSID, xrpc.Procedure, s.repoDeleteRecord)
	s.xrpc.Handle(atproto.RepoApplyWritesNSID, xrpc.Procedure, s.repoApplyWrites)
	s.xrpc.Handle(atproto.RepoGetRecordNSID, xrpc.Query, s.repoGetRecord)
	s.xrpc.Handle(atproto.RepoListRecordsNSID, xrpc.Query, s.repoListRecords)
	s.xrpc.Handle(atproto.RepoDescribeRepoNSID, xrpc.Query, s.repoDescribeRepo)
	s.xrpc.Handle(atproto.RepoUploadBlobNSID, xrpc.Procedure, s.repoUploadBlob)
	s.xrpc.Handle(atproto.RepoListMissingBlobsNSID, xrpc.Query, s.repoListMissingBlobs)
	s.xrpc.Handle(atproto.RepoImportRepoNSID, xrpc.Procedure, s.repoImportRepo)
}

// maxWriteAttempts bounds how often a write whose preconditions (read
// before taking the account's lock) changed under it is prepared again.
const maxWriteAttempts = 5

// errWriteRaced is returned by a commit's Check when the state a write was
// prepared against changed before the account's lock was taken: the write
// is prepared again.
var errWriteRaced = errors.New("pds: repository changed while the write was prepared")

// inputString returns the string member k of a JSON input (checked against
// the lexicon by the XRPC server) and whether it is present.
func inputString(in map[string]any, k string) (string, bool) {
	v, ok := in[k].(string)
	return v, ok
}

// inputBool returns the boolean member k of a JSON input, nil when absent.
func inputBool(in map[string]any, k string) *bool {
	if v, ok := in[k].(bool); ok {
		return &v
	}
	return nil
}

// inputCID parses the CID string member k of a JSON input; nil when absent
// or null.
func inputCID(in map[string]any, k string) (*data.CID, error) {
	v, ok := in[k].(string)
	if !ok {
		return nil, nil
	}
	c, err := data.ParseCID(v)
	if err != nil {
		return nil, xrpc.InvalidRequest(fmt.Sprintf("invalid %s: %v", k, err))
	}
	return &c, nil
}

// lookupAccount finds the hosted account a handle or DID names; nil when
// the PDS hosts none.
func (s *Server) lookupAccount(ctx context.Context, ident string) (*store.Account, error) {
	id, err := syntax.ParseAtIdentifier(ident)
	if err != nil {
		return nil, xrpc.InvalidRequest("invalid repo: " + err.Error())
	}
	var acct *store.Account
	if did, err := id.AsDID(); err == nil {
		acct, err = s.accounts.AccountByDID(ctx, did)
		if errors.Is(err, store.ErrNotFound) {
			return nil, nil
		}
		return acct, err
	}
	h, err := id.AsHandle()
	if err != nil {
		return nil, xrpc.InvalidRequest("invalid repo: " + err.Error())
	}
	acct, err = s.accounts.AccountByHandle(ctx, h.Normalize())
	if errors.Is(err, store.ErrNotFound) {
		return nil, nil
	}
	return acct, err
}

// repoWriter authenticates a repository write: the caller's access token
// must be valid, its account active, and repo (a handle or DID) must name
// that same account. As the reference PDS answers: 403 AccountNotFound for
// a repo it does not host, 401 AuthenticationRequired for another
// account's repo.
func (s *Server) repoWriter(ctx context.Context, repoIdent string) (syntax.DID, error) {
	c, err := s.requireAccess(ctx, authOpts{})
	if err != nil {
		return "", err
	}
	// The usual case, a write to the caller's own repo named by its DID or
	// handle, needs no second look-up: requireAccess loaded the account.
	if c.Account != nil && (repoIdent == string(c.DID) || (c.Account.Handle != "" && strings.EqualFold(repoIdent, string(c.Account.Handle)))) {
		return c.DID, nil
	}
	acct, err := s.lookupAccount(ctx, repoIdent)
	if err != nil {
		return "", err
	}
	if acct == nil {
		return "", xrpc.Errorf(http.StatusForbidden, "AccountNotFound", "Account not found")
	}
	if acct.DID != c.DID {
		return "", xrpc.AuthRequired("Authentication Required")
	}
	return c.DID, nil
}

// readableAccount is the account whose records a public read (getRecord,
// listRecords) serves: a hosted account that is active, or nil.
func (s *Server) readableAccount(ctx context.Context, repoIdent string) (*store.Account, error) {
	acct, err := s.lookupAccount(ctx, repoIdent)
	if err != nil || acct == nil {
		return nil, err
	}
	if acct.Status != store.StatusActive {
		return nil, nil
	}
	return acct, nil
}

// repoStore borrows the account database of did for a read; ok is false
// when the account has none (no file is created for it).
func (s *Server) repoStore(ctx context.Context, did syntax.DID) (st *actorstore.Store, release func(), ok bool, err error) {
	if !s.actors.exists(did) {
		return nil, nil, false, nil
	}
	st, release, err = s.actors.get(ctx, did)
	if err != nil {
		return nil, nil, false, err
	}
	return st, release, true, nil
}

// recordURI is the AT-URI of a record.
func recordURI(did syntax.DID, collection syntax.NSID, rkey syntax.RecordKey) string {
	return "at://" + string(did) + "/" + string(collection) + "/" + string(rkey)
}

// commitMeta is the com.atproto.repo.defs#commitMeta of a commit.
func commitMeta(res *repo.CommitResult) map[string]any {
	return map[string]any{"cid": res.CID.String(), "rev": string(res.Rev)}
}

// commitError maps what commitWrites returns for a write the repository
// layer refused to the error the client sees.
func commitError(err error) error {
	if errors.Is(err, repo.ErrCommitTooLarge) {
		return xrpc.InvalidRequest("Too many writes. Max event size: 2MB")
	}
	var xe *xrpc.Error
	if errors.As(err, &xe) || errors.Is(err, errWriteRaced) {
		return err
	}
	if errors.Is(err, repo.ErrInvalidWrite) || errors.Is(err, repo.ErrRecordExists) || errors.Is(err, repo.ErrRecordNotFound) {
		return xrpc.InvalidRequest(err.Error())
	}
	return err
}

// afterCommit runs after every repository write, with the account's lock
// held: it deletes the blobs that lost their last reference.
func (s *Server) afterCommit(ctx context.Context, st *actorstore.Store, _ *repo.CommitResult) error {
	return s.collectBlobGarbage(ctx, st)
}

// writeAttempts runs attempt until it does not report errWriteRaced, at
// most maxWriteAttempts times.
func writeAttempts(attempt func() error) error {
	var err error
	for range maxWriteAttempts {
		if err = attempt(); !errors.Is(err, errWriteRaced) {
			return err
		}
	}
	return xrpc.Errorf(http.StatusConflict, "InvalidSwap", "the repository kept changing during the write; try again")
}
