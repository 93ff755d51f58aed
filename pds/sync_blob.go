package pds

import (
	"context"
	"errors"
	"mime"
	"net/http"
	"strconv"

	"github.com/welkin-atproto/welkin/api/atproto"
	"github.com/welkin-atproto/welkin/atproto/data"
	"github.com/welkin-atproto/welkin/atproto/syntax"
	"github.com/welkin-atproto/welkin/atproto/xrpc"
	"github.com/welkin-atproto/welkin/pds/actorstore"
	"github.com/welkin-atproto/welkin/pds/blobstore"
)

// blobNotFound is the reference PDS's answer for a blob it does not serve:
// an InvalidRequest, not the lexicon's BlobNotFound, which official clients
// therefore never see.
func blobNotFound() error { return xrpc.InvalidRequest("Blob not found") }

// syncGetBlob serves com.atproto.sync.getBlob: the bytes of a blob that a
// record of the account references, with the MIME type recorded at upload
// and the headers that keep a browser from running or rendering it in the
// PDS's origin (nosniff, a sandboxing Content-Security-Policy, and a
// download disposition), as the reference PDS sends them. Uploads that no
// record references yet are not served.
func (s *Server) syncGetBlob(ctx context.Context, req *xrpc.Request) (*xrpc.Response, error) {
	var p atproto.SyncGetBlob_Params
	if err := p.SetValues(req.Query); err != nil {
		return nil, xrpc.InvalidRequest(err.Error())
	}
	did, err := parseDIDParam(p.Did)
	if err != nil {
		return nil, err
	}
	cid, err := data.ParseCID(p.Cid)
	if err != nil {
		return nil, xrpc.InvalidRequest("invalid cid parameter: " + err.Error())
	}
	if _, err := s.syncAccount(ctx, did); err != nil {
		return nil, err
	}
	mimeType, _, err := s.blobMeta(ctx, did, cid)
	if errors.Is(err, actorstore.ErrBlobNotFound) {
		return nil, blobNotFound()
	}
	if err != nil {
		return nil, err
	}
	rc, size, err := s.blobs.Get(ctx, did, cid)
	if errors.Is(err, blobstore.ErrNotFound) {
		return nil, blobNotFound()
	}
	if err != nil {
		return nil, err
	}
	h := http.Header{}
	h.Set("Content-Length", strconv.FormatInt(size, 10))
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Content-Disposition", `attachment; filename="`+cid.String()+`"`)
	h.Set("Content-Security-Policy", "default-src 'none'; sandbox")
	return &xrpc.Response{Encoding: blobContentType(mimeType), Raw: rc, Header: h}, nil
}

// blobContentType is the Content-Type of a blob response: the recorded
// MIME type when it is a well-formed media type, else the generic one.
func blobContentType(recorded string) string {
	if recorded != "" {
		if mt, params, err := mime.ParseMediaType(recorded); err == nil {
			if ct := mime.FormatMediaType(mt, params); ct != "" {
				return ct
			}
		}
	}
	return "application/octet-stream"
}

// syncListBlobs serves com.atproto.sync.listBlobs: the CIDs of the blobs the
// account's records reference, in a stable order, optionally only those of
// records written after the rev since. Like the reference PDS, it gives the
// last CID of every non-empty page as the cursor; a listing ends with an
// empty page.
func (s *Server) syncListBlobs(ctx context.Context, p *atproto.SyncListBlobs_Params) (*atproto.SyncListBlobs_Output, error) {
	did, err := parseDIDParam(p.Did)
	if err != nil {
		return nil, err
	}
	if p.Since != "" {
		if _, err := syntax.ParseTID(p.Since); err != nil {
			return nil, xrpc.InvalidRequest("invalid since parameter: " + err.Error())
		}
	}
	limit := actorstore.DefaultBlobListLimit
	if p.Limit != nil {
		limit = int(*p.Limit)
	}
	if limit < 1 || limit > actorstore.MaxBlobListLimit {
		return nil, xrpc.InvalidRequest("limit must be between 1 and 1000")
	}
	if _, err := s.syncAccount(ctx, did); err != nil {
		return nil, err
	}
	cids, _, err := s.listBlobCIDs(ctx, did, p.Since, p.Cursor, limit)
	if err != nil {
		return nil, err
	}
	out := &atproto.SyncListBlobs_Output{Cids: make([]string, len(cids))}
	for i, c := range cids {
		out.Cids[i] = c.String()
	}
	if n := len(out.Cids); n > 0 {
		last := out.Cids[n-1]
		out.Cursor = &last
	}
	return out, nil
}
