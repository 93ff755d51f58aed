package pds

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"

	"github.com/welkin-atproto/welkin/atproto/data"
	"github.com/welkin-atproto/welkin/atproto/identity"
	"github.com/welkin-atproto/welkin/atproto/repo"
	"github.com/welkin-atproto/welkin/atproto/syntax"
	"github.com/welkin-atproto/welkin/atproto/xrpc"
	"github.com/welkin-atproto/welkin/pds/actorstore"
	"github.com/welkin-atproto/welkin/pds/store"
)

// Reads go through the account database's read-only connections: they
// never wait for a write of the account, and see the last stored commit.

// paramString returns the string parameter k, checked by the XRPC server.
func paramString(req *xrpc.Request, k string) string {
	v, _ := req.Params[k].(string)
	if v == "" {
		v = req.Query.Get(k)
	}
	return v
}

func paramInt(req *xrpc.Request, k string, def int64) int64 {
	if v, ok := req.Params[k].(int64); ok {
		return v
	}
	return def
}

func paramBool(req *xrpc.Request, k string) bool {
	v, _ := req.Params[k].(bool)
	return v
}

// recordNotFound is getRecord's answer for a record it does not serve.
func recordNotFound(uri string) error {
	return xrpc.Errorf(http.StatusBadRequest, "RecordNotFound", "Could not locate record: %s", uri)
}

// repoGetRecord serves com.atproto.repo.getRecord for the records of
// active hosted accounts. With cid, only that version is served, and only
// while it is the current one.
func (s *Server) repoGetRecord(ctx context.Context, req *xrpc.Request) (*xrpc.Response, error) {
	acct, err := s.readableAccount(ctx, paramString(req, "repo"))
	if err != nil {
		return nil, err
	}
	if acct == nil {
		return nil, xrpc.InvalidRequest("Could not locate record")
	}
	col, err := syntax.ParseNSID(paramString(req, "collection"))
	if err != nil {
		return nil, xrpc.InvalidRequest("invalid collection: " + err.Error())
	}
	rkey, err := syntax.ParseRecordKey(paramString(req, "rkey"))
	if err != nil {
		return nil, xrpc.InvalidRequest("invalid rkey: " + err.Error())
	}
	uri := recordURI(acct.DID, col, rkey)
	var want *data.CID
	if v := paramString(req, "cid"); v != "" {
		c, err := data.ParseCID(v)
		if err != nil {
			return nil, xrpc.InvalidRequest("invalid cid: " + err.Error())
		}
		want = &c
	}
	st, release, ok, err := s.repoStore(ctx, acct.DID)
	if err != nil {
		return nil, err
	}
	if !ok {
		return nil, recordNotFound(uri)
	}
	defer release()
	c, b, err := st.GetRecord(ctx, col, rkey)
	if errors.Is(err, repo.ErrRecordNotFound) {
		return nil, recordNotFound(uri)
	}
	if err != nil {
		return nil, err
	}
	if want != nil && *want != c {
		return nil, recordNotFound(uri)
	}
	value, err := data.UnmarshalCBOR(b)
	if err != nil {
		return nil, fmt.Errorf("pds: stored record %s: %w", uri, err)
	}
	return &xrpc.Response{Body: map[string]any{"uri": uri, "cid": c.String(), "value": value}}, nil
}

// repoListRecords serves com.atproto.repo.listRecords. As in the reference
// PDS, records come newest key first, and oldest first with reverse; the
// cursor is the last key of a full page (none when the listing is done).
func (s *Server) repoListRecords(ctx context.Context, req *xrpc.Request) (*xrpc.Response, error) {
	ident := paramString(req, "repo")
	acct, err := s.readableAccount(ctx, ident)
	if err != nil {
		return nil, err
	}
	if acct == nil {
		return nil, xrpc.InvalidRequest("Could not find repo: " + ident)
	}
	col, err := syntax.ParseNSID(paramString(req, "collection"))
	if err != nil {
		return nil, xrpc.InvalidRequest("invalid collection: " + err.Error())
	}
	limit := paramInt(req, "limit", actorstore.DefaultListLimit)
	if limit < 1 || limit > actorstore.MaxListLimit {
		return nil, xrpc.InvalidRequest(fmt.Sprintf("limit must be between 1 and %d", actorstore.MaxListLimit))
	}
	records := []any{}
	out := map[string]any{"records": records}
	st, release, ok, err := s.repoStore(ctx, acct.DID)
	if err != nil {
		return nil, err
	}
	if !ok {
		return &xrpc.Response{Body: out}, nil
	}
	defer release()
	page, next, err := st.ListRecordData(ctx, col, paramString(req, "cursor"), int(limit), !paramBool(req, "reverse"))
	if err != nil {
		return nil, err
	}
	for _, r := range page {
		value, err := data.UnmarshalCBOR(r.Value)
		if err != nil {
			return nil, fmt.Errorf("pds: stored record %s: %w", recordURI(acct.DID, col, r.RKey), err)
		}
		records = append(records, map[string]any{"uri": recordURI(acct.DID, col, r.RKey), "cid": r.CID.String(), "value": value})
	}
	out["records"] = records
	if next != "" {
		out["cursor"] = next
	}
	return &xrpc.Response{Body: out}, nil
}

// repoDescribeRepo serves com.atproto.repo.describeRepo. As in the
// reference PDS, the DID document must resolve (InvalidRequest
// otherwise), and handleIsCorrect says whether it declares the handle the
// account has here.
func (s *Server) repoDescribeRepo(ctx context.Context, req *xrpc.Request) (*xrpc.Response, error) {
	ident := paramString(req, "repo")
	acct, err := s.lookupAccount(ctx, ident)
	if err != nil {
		return nil, err
	}
	if acct == nil {
		return nil, xrpc.Errorf(http.StatusBadRequest, "RepoNotFound", "Could not find repo for DID: %s", ident)
	}
	switch acct.Status {
	case store.StatusTakendown:
		return nil, xrpc.Errorf(http.StatusBadRequest, "RepoTakendown", "Repo has been takendown: %s", ident)
	case store.StatusDeactivated:
		return nil, xrpc.Errorf(http.StatusBadRequest, "RepoDeactivated", "Repo has been deactivated: %s", ident)
	}
	doc, err := s.resolver.ResolveDIDDocument(ctx, acct.DID)
	if err != nil {
		return nil, xrpc.InvalidRequest(fmt.Sprintf("Could not resolve DID: %v", err))
	}
	docJSON, err := json.Marshal(doc)
	if err != nil {
		return nil, err
	}
	docValue, err := data.DecodeJSON(docJSON)
	if err != nil {
		return nil, fmt.Errorf("pds: DID document of %s: %w", acct.DID, err)
	}
	declared := syntax.HandleInvalid
	if id, err := identity.NewIdentity(doc); err == nil {
		declared = id.DeclaredHandle()
	}
	handle := acct.Handle
	if handle == "" {
		handle = syntax.HandleInvalid
	}
	collections := []any{}
	if st, release, ok, err := s.repoStore(ctx, acct.DID); err != nil {
		return nil, err
	} else if ok {
		cols, err := st.ListCollections(ctx)
		release()
		if err != nil {
			return nil, err
		}
		for _, c := range cols {
			collections = append(collections, string(c))
		}
	}
	return &xrpc.Response{Body: map[string]any{
		"handle":          string(handle),
		"did":             string(acct.DID),
		"didDoc":          docValue,
		"collections":     collections,
		"handleIsCorrect": declared != syntax.HandleInvalid && declared.Normalize() == handle.Normalize(),
	}}, nil
}
