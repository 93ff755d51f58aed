package pds

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/welkin-atproto/welkin/api/atproto"
	"github.com/welkin-atproto/welkin/api/lexutil"
	"github.com/welkin-atproto/welkin/atproto/car"
	"github.com/welkin-atproto/welkin/atproto/data"
	"github.com/welkin-atproto/welkin/atproto/repo"
	"github.com/welkin-atproto/welkin/atproto/syntax"
	"github.com/welkin-atproto/welkin/atproto/xrpc"
	"github.com/welkin-atproto/welkin/pds/actorstore"
)

// MaxImportSize bounds the CAR file importRepo reads. The whole file is
// checked before anything is stored, so it is held in memory; the XRPC
// server's raw body limit (xrpc.DefaultMaxRawBody unless configured)
// applies too. The reference PDS leaves this to its operator
// (PDS_MAX_REPO_IMPORT_SIZE).
const MaxImportSize = 1 << 30

// repoImportRepo serves com.atproto.repo.importRepo: the caller's whole
// repository is replaced by the one in the CAR file (an export of the
// account's repository from another host, in an account migration).
//
// The file is checked in full (every block against its CID, the tree's
// structure, every record present) and must be a repository of the
// caller's DID. Its commit's signature is not checked, as the reference
// PDS does not check it: the caller could write the same records one by
// one. The records are stored under a new commit, on the same tree, signed
// with the account's key here and with a rev above both the imported
// commit's and the current one's, so the repository verifies against the
// identity the account is moving to and its revs keep increasing for
// anyone who followed it elsewhere. A #sync event announces the new head
// (the reference PDS announces the import only when the account is
// activated). Blobs the records reference are listed by
// listMissingBlobs until they are uploaded.
func (s *Server) repoImportRepo(ctx context.Context, req *xrpc.Request) (*xrpc.Response, error) {
	c, err := s.requireAccess(ctx, authOpts{level: fullAccess, allowDeactivated: true})
	if err != nil {
		return nil, err
	}
	did := c.DID
	if req.HTTP != nil && req.HTTP.ContentLength > MaxImportSize {
		return nil, payloadTooLarge()
	}
	if req.Body == nil {
		return nil, xrpc.InvalidRequest("Request encoding (Content-Type) required but not provided")
	}
	key, err := s.signingKey(ctx, did)
	if err != nil {
		return nil, err
	}
	mem := repo.NewMemBlockStore()
	lim := car.DefaultLimits()
	lim.MaxTotalSize = MaxImportSize
	imp, err := repo.ImportCAR(ctx, req.Body, mem, repo.ImportOptions{DID: did, Limits: lim})
	if err != nil {
		var mbe *http.MaxBytesError
		switch {
		case errors.As(err, &mbe):
			return nil, payloadTooLarge()
		case ctx.Err() != nil:
			return nil, ctx.Err()
		}
		return nil, xrpc.InvalidRequest("Invalid repository: " + err.Error())
	}
	var records []repo.Entry
	if err := imp.Repo.Walk(ctx, func(path string, rc data.CID) error {
		records = append(records, repo.Entry{Key: path, Value: rc})
		return nil
	}); err != nil {
		return nil, xrpc.InvalidRequest("Invalid repository: " + err.Error())
	}
	blocks := mem.Blocks()
	delete(blocks, imp.CommitCID)

	st, release, err := s.actors.get(ctx, did)
	if err != nil {
		return nil, err
	}
	defer release()
	st.Lock()
	defer st.Unlock()
	_, since, _, err := st.Head(ctx)
	if err != nil {
		return nil, err
	}
	last := syntax.TID(since)
	if imp.Commit.Rev > last {
		last = imp.Commit.Rev
	}
	rev, err := s.clock.Next(last)
	if err != nil {
		return nil, err
	}
	commit := repo.NewCommit(did, imp.Commit.Data, rev)
	if err := commit.Sign(key); err != nil {
		return nil, fmt.Errorf("pds: sign imported repository: %w", err)
	}
	cb, err := commit.Bytes()
	if err != nil {
		return nil, err
	}
	cc := data.CIDForCBOR(cb)
	blocks[cc] = cb
	event, err := syncEvent(did, cc, cb, rev, s.cfg.Now().UTC())
	if err != nil {
		return nil, err
	}
	err = st.ReplaceRepo(ctx, &actorstore.Replacement{
		Since: syntax.TID(since), CommitCID: cc, Rev: rev, Blocks: blocks, Records: records, Event: event,
	})
	var re *actorstore.RecordError
	switch {
	case errors.As(err, &re):
		return nil, xrpc.InvalidRequest(fmt.Sprintf("Could not parse record at '%s'", re.Path))
	case errors.Is(err, actorstore.ErrConcurrentWrite):
		return nil, xrpc.Errorf(http.StatusConflict, "InvalidSwap", "the repository changed during the import; try again")
	case err != nil:
		return nil, err
	}
	s.seq.Notify(did)

	// Uploads made before the import that its records reference become
	// permanent now; the rest is listed by listMissingBlobs.
	temp, err := st.TempBlobsReferenced(ctx)
	if err != nil {
		return nil, err
	}
	for _, m := range temp {
		if err := s.makeBlobPermanent(ctx, did, m); err != nil {
			s.log.WarnContext(ctx, "pds: keeping an uploaded blob of an imported repository", "did", did, "cid", m.CID, "err", err)
			continue
		}
		if err := st.MarkBlobPermanent(ctx, m.CID); err != nil {
			return nil, err
		}
	}
	if err := s.collectBlobGarbage(ctx, st); err != nil {
		s.log.ErrorContext(ctx, "pds: deleting blobs after an import", "did", did, "err", err)
	}
	return nil, nil
}

// syncEvent encodes the #sync event body (seq 0, for the sequencer to
// fill in) announcing the commit cc of did: its blocks field is a CAR file
// holding the commit block alone.
func syncEvent(did syntax.DID, cc data.CID, commit []byte, rev syntax.TID, now time.Time) ([]byte, error) {
	var buf bytes.Buffer
	w, err := car.NewWriter(&buf, cc)
	if err != nil {
		return nil, err
	}
	if err := w.WriteBlock(cc, commit); err != nil {
		return nil, err
	}
	if err := w.Close(); err != nil {
		return nil, err
	}
	ev := &atproto.SyncSubscribeRepos_Sync{
		Did:    string(did),
		Blocks: buf.Bytes(),
		Rev:    string(rev),
		Time:   syntax.DatetimeFromTime(now).String(),
	}
	b, err := lexutil.MarshalCBOR(ev)
	if err != nil {
		return nil, fmt.Errorf("pds: encode #sync event: %w", err)
	}
	return b, nil
}
