package pds

import (
	"context"
	"errors"
	"fmt"
	"net/http"

	"github.com/welkin-atproto/welkin/atproto/data"
	"github.com/welkin-atproto/welkin/atproto/syntax"
	"github.com/welkin-atproto/welkin/atproto/xrpc"
	"github.com/welkin-atproto/welkin/pds/actorstore"
	"github.com/welkin-atproto/welkin/pds/blobstore"
)

// Blobs. uploadBlob streams the bytes to the blob store's temporary area
// and records their metadata (CID, sniffed MIME type, size, temporary key)
// in the account's database. A write whose records reference a blob checks
// it there and makes its bytes permanent before the commit is stored
// (commitBlobs); the commit's transaction marks it permanent and records
// which record references it. A blob whose last reference goes is queued
// in that same transaction and deleted, bytes then metadata, right after
// the commit (collectBlobGarbage). Uploads never referenced are deleted
// by the blob store's clean-up and forgotten after tempBlobTTL.

// maxGarbagePasses bounds the batches of unreferenced blobs one write
// deletes; the rest waits for the account's next write.
const maxGarbagePasses = 4

func payloadTooLarge() error { return xrpc.PayloadTooLarge("request entity too large") }

// repoUploadBlob serves com.atproto.repo.uploadBlob. As in the reference
// PDS, a deactivated account may upload (to fill a migrated repository),
// a body over the configured MaxBlobSize is a 413 PayloadTooLarge, and an
// upload of a blob that records already reference (a missing blob of an
// imported repository) is made permanent at once.
func (s *Server) repoUploadBlob(ctx context.Context, req *xrpc.Request) (*xrpc.Response, error) {
	c, err := s.requireAccess(ctx, authOpts{allowDeactivated: true})
	if err != nil {
		return nil, err
	}
	maxSize := s.cfg.MaxBlobSize
	if req.HTTP != nil && req.HTTP.ContentLength > maxSize {
		return nil, payloadTooLarge()
	}
	body := req.Body
	if body == nil {
		return nil, xrpc.InvalidRequest("Request encoding (Content-Type) required but not provided")
	}
	tb, err := s.blobs.PutTemp(ctx, c.DID, body, maxSize)
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.Is(err, blobstore.ErrTooLarge) || errors.As(err, &mbe) {
			return nil, payloadTooLarge()
		}
		return nil, err
	}
	mime := blobstore.SniffMIME(tb.Head, req.Encoding)
	st, release, err := s.actors.get(ctx, c.DID)
	if err != nil {
		return nil, err
	}
	defer release()
	now := s.cfg.Now()
	m, err := st.PutTempBlob(ctx, actorstore.BlobMeta{CID: tb.CID, MimeType: mime, Size: tb.Size, TempKey: tb.Key, CreatedAt: now})
	if err != nil {
		return nil, err
	}
	switch {
	case m.Permanent():
		// Already stored for good: this upload's copy is not needed.
		if err := s.blobs.DeleteTemp(ctx, c.DID, tb.Key); err != nil {
			s.log.WarnContext(ctx, "pds: dropping a redundant upload", "did", c.DID, "cid", tb.CID, "err", err)
		}
	default:
		referenced, err := st.HasBlobRefs(ctx, m.CID)
		if err != nil {
			return nil, err
		}
		if referenced {
			if err := s.makeBlobPermanent(ctx, c.DID, m); err != nil {
				return nil, err
			}
			if err := st.MarkBlobPermanent(ctx, m.CID); err != nil {
				return nil, err
			}
		}
	}
	if _, err := st.DeleteStaleTempBlobs(ctx, now.Add(-tempBlobTTL)); err != nil {
		s.log.WarnContext(ctx, "pds: forgetting stale uploads", "did", c.DID, "err", err)
	}
	return &xrpc.Response{Body: map[string]any{
		"blob": data.Blob{Ref: m.CID, MimeType: m.MimeType, Size: m.Size},
	}}, nil
}

// makeBlobPermanent moves the bytes of the temporary blob m to their
// permanent place in the blob store.
func (s *Server) makeBlobPermanent(ctx context.Context, did syntax.DID, m actorstore.BlobMeta) error {
	err := s.blobs.MakePermanent(ctx, did, m.TempKey, m.CID)
	if errors.Is(err, blobstore.ErrNotFound) {
		// The upload was cleaned up before a record referenced it.
		return blobNotFoundForRecord(m.CID)
	}
	if err != nil {
		return fmt.Errorf("pds: make blob %s permanent: %w", m.CID, err)
	}
	return nil
}

// collectBlobGarbage deletes the blobs of st's account that lost their
// last reference: bytes first, then metadata, so that a crash between the
// two leaves the blob queued for the next pass. The caller holds the
// account's write lock, so no commit references them meanwhile.
func (s *Server) collectBlobGarbage(ctx context.Context, st *actorstore.Store) error {
	for range maxGarbagePasses {
		if !st.BlobGCPending() {
			return nil
		}
		cids, err := st.BlobGarbage(ctx, 0)
		if err != nil || len(cids) == 0 {
			return err
		}
		// The commit that freed them may not be durable yet (its event
		// may still be on its way to the log): make it so before the
		// bytes go, or a power loss could bring back a record whose blob
		// is gone.
		if err := st.Sync(ctx); err != nil {
			return err
		}
		if err := s.blobs.Delete(ctx, st.DID(), cids...); err != nil {
			return fmt.Errorf("pds: delete unreferenced blobs: %w", err)
		}
		if err := st.DeleteBlobs(ctx, cids); err != nil {
			return err
		}
	}
	return nil
}

// repoListMissingBlobs serves com.atproto.repo.listMissingBlobs: the blobs
// the caller's records reference that were never uploaded here, as after
// importRepo. A deactivated account may call it, to finish a migration.
func (s *Server) repoListMissingBlobs(ctx context.Context, req *xrpc.Request) (*xrpc.Response, error) {
	c, err := s.requireAccess(ctx, authOpts{allowDeactivated: true})
	if err != nil {
		return nil, err
	}
	limit := paramInt(req, "limit", actorstore.DefaultBlobListLimit)
	if limit < 1 || limit > actorstore.MaxBlobListLimit {
		return nil, xrpc.InvalidRequest(fmt.Sprintf("limit must be between 1 and %d", actorstore.MaxBlobListLimit))
	}
	var cursor data.CID
	if v := paramString(req, "cursor"); v != "" {
		if cursor, err = data.ParseCID(v); err != nil {
			return nil, xrpc.InvalidRequest("invalid cursor: " + err.Error())
		}
	}
	blobs := []any{}
	out := map[string]any{}
	st, release, ok, err := s.repoStore(ctx, c.DID)
	if err != nil {
		return nil, err
	}
	if ok {
		defer release()
		missing, err := st.ListMissingBlobs(ctx, cursor, int(limit))
		if err != nil {
			return nil, err
		}
		for _, m := range missing {
			blobs = append(blobs, map[string]any{"cid": m.CID.String(), "recordUri": recordURI(c.DID, m.Collection, m.RKey)})
		}
		if len(missing) == int(limit) {
			out["cursor"] = missing[len(missing)-1].CID.String()
		}
	}
	out["blobs"] = blobs
	return &xrpc.Response{Body: out}, nil
}

// blobMeta returns the MIME type and size of a permanent blob of did, or
// an error matching actorstore.ErrBlobNotFound (also for uploads no record
// references yet, which are not served).
func (s *Server) blobMeta(ctx context.Context, did syntax.DID, cid data.CID) (mime string, size int64, err error) {
	st, release, ok, err := s.repoStore(ctx, did)
	if err != nil {
		return "", 0, err
	}
	if !ok {
		return "", 0, fmt.Errorf("pds: %s: %w", cid, actorstore.ErrBlobNotFound)
	}
	defer release()
	m, err := st.Blob(ctx, cid)
	if err != nil {
		return "", 0, err
	}
	if !m.Permanent() {
		return "", 0, fmt.Errorf("pds: %s: %w", cid, actorstore.ErrBlobNotFound)
	}
	return m.MimeType, m.Size, nil
}

// listBlobCIDs lists the blobs that did's records reference (those of
// records written after rev since, when since is not empty), in a stable
// order: up to limit after cursor (a CID from a previous page, "" for the
// start), with the cursor of the next page ("" at the end).
func (s *Server) listBlobCIDs(ctx context.Context, did syntax.DID, since string, cursor string, limit int) ([]data.CID, string, error) {
	var after data.CID
	if cursor != "" {
		c, err := data.ParseCID(cursor)
		if err != nil {
			return nil, "", xrpc.InvalidRequest("invalid cursor: " + err.Error())
		}
		after = c
	}
	st, release, ok, err := s.repoStore(ctx, did)
	if err != nil || !ok {
		return nil, "", err
	}
	defer release()
	limit = min(max(limit, 1), actorstore.MaxBlobListLimit)
	cids, err := st.ListBlobs(ctx, since, after, limit)
	if err != nil {
		return nil, "", err
	}
	next := ""
	if len(cids) == limit {
		next = cids[len(cids)-1].String()
	}
	return cids, next, nil
}
