package pds

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"

	"github.com/welkin-atproto/welkin/api/atproto"
	"github.com/welkin-atproto/welkin/atproto/car"
	"github.com/welkin-atproto/welkin/atproto/data"
	"github.com/welkin-atproto/welkin/atproto/repo"
	"github.com/welkin-atproto/welkin/atproto/syntax"
	"github.com/welkin-atproto/welkin/atproto/xrpc"
	"github.com/welkin-atproto/welkin/pds/actorstore"
)

// carStreamBuffer is how much of a streamed CAR response is produced before
// the response starts: an export that fails at once (a missing commit block)
// still gets an error response rather than a truncated 200.
const carStreamBuffer = 64 << 10

// syncGetRepo serves com.atproto.sync.getRepo: the repository at its
// current commit as a CAR file, or with since, the blocks stored by commits
// after that rev.
func (s *Server) syncGetRepo(ctx context.Context, req *xrpc.Request) (*xrpc.Response, error) {
	var p atproto.SyncGetRepo_Params
	if err := p.SetValues(req.Query); err != nil {
		return nil, xrpc.InvalidRequest(err.Error())
	}
	var since syntax.TID
	if p.Since != "" {
		t, err := syntax.ParseTID(p.Since)
		if err != nil {
			return nil, xrpc.InvalidRequest("invalid since parameter: " + err.Error())
		}
		since = t
	}
	return s.streamRepo(ctx, p.Did, since)
}

// syncGetCheckout serves the deprecated com.atproto.sync.getCheckout: a
// full export, as getRepo without since.
func (s *Server) syncGetCheckout(ctx context.Context, req *xrpc.Request) (*xrpc.Response, error) {
	var p atproto.SyncGetCheckout_Params
	if err := p.SetValues(req.Query); err != nil {
		return nil, xrpc.InvalidRequest(err.Error())
	}
	return s.streamRepo(ctx, p.Did, "")
}

// streamRepo answers with a CAR export of the repository of didParam, its
// root the current commit. Without since, or with a since that is not one
// of the account's commits whose tree the store keeps (see
// actorstore.Store.CommitAtRev), it is the whole repository at that commit,
// produced while it is sent (memory bounded by the tree's height). With
// the rev of such a commit, it is the diff from that commit: the new
// commit, the MST nodes that changed and the records created or updated,
// which is what a holder of the earlier commit lacks. Blocks of records
// written and deleted again since then are not sent.
func (s *Server) streamRepo(ctx context.Context, didParam string, since syntax.TID) (*xrpc.Response, error) {
	did, err := parseDIDParam(didParam)
	if err != nil {
		return nil, err
	}
	if _, err := s.syncAccount(ctx, did); err != nil {
		return nil, err
	}
	st, release, ok, err := s.repoStore(ctx, did)
	if err != nil {
		return nil, err
	}
	if !ok {
		return nil, xrpc.InvalidRequest("Could not find repo for DID: " + string(did))
	}
	head, _, ok, err := st.Head(ctx)
	if err == nil && !ok {
		err = xrpc.InvalidRequest("Could not find repo for DID: " + string(did))
	}
	var old data.CID
	if err == nil && since != "" {
		old, _, err = st.CommitAtRev(ctx, string(since))
	}
	if err != nil {
		release()
		return nil, err
	}
	return streamCAR(func(w io.Writer) error {
		defer release()
		br := st.BlockReader()
		defer br.Close()
		// The read transaction ends whenever output is handed to the
		// client, so a slow client never holds one open.
		w = endReadsOnWrite{w, br}
		if !old.Defined() {
			return repo.ExportCAR(ctx, br, head, w)
		}
		var blocks map[data.CID][]byte
		if old != head {
			if _, blocks, err = repo.Diff(ctx, br, old, head); err != nil {
				return err
			}
		}
		return car.WriteAll(w, []data.CID{head}, blocks)
	})
}

// endReadsOnWrite ends the read transaction of a BlockReader before each
// write of the export's output.
type endReadsOnWrite struct {
	w  io.Writer
	br *actorstore.BlockReader
}

func (e endReadsOnWrite) Write(p []byte) (int, error) {
	e.br.Close()
	return e.w.Write(p)
}

// streamCAR answers with the CAR that produce writes, streamed through a
// pipe as it is written. The first carStreamBuffer bytes (or the whole CAR
// when smaller) are produced before the answer starts, so that an early
// failure is an error response; a failure after that ends the response
// early: the connection is aborted (no end of chunked body), so the receiver
// sees a failed transfer rather than a shorter CAR. produce runs in its own
// goroutine and stops when the client goes away.
func streamCAR(produce func(w io.Writer) error) (*xrpc.Response, error) {
	pr, pw := io.Pipe()
	go func() {
		pw.CloseWithError(produce(pw))
	}()
	br := bufio.NewReaderSize(pr, carStreamBuffer)
	if _, err := br.Peek(carStreamBuffer); err != nil && !errors.Is(err, io.EOF) && !errors.Is(err, bufio.ErrBufferFull) {
		pr.CloseWithError(err)
		return nil, exportError(err)
	}
	return &xrpc.Response{Encoding: carEncoding, Raw: &carStream{br, pr}}, nil
}

// carStream is the body of a streamed CAR response: a buffer in front of the
// pipe its producer writes to.
type carStream struct {
	r    *bufio.Reader
	pipe *io.PipeReader
}

// Read reads the CAR. When the producer failed, it aborts the response with
// http.ErrAbortHandler, the net/http way of cutting a response short so that
// the client sees a broken transfer and not a complete, shorter body.
func (c *carStream) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	if n == 0 && err != nil && !errors.Is(err, io.EOF) {
		panic(http.ErrAbortHandler)
	}
	return n, err
}

// Close closes the pipe, stopping the producer.
func (c *carStream) Close() error { return c.pipe.Close() }

// exportError is what the client sees of a failure to read a repository
// that the PDS hosts: its data is damaged, or the read was interrupted.
func exportError(err error) error {
	var xe *xrpc.Error
	if errors.As(err, &xe) {
		return err
	}
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return err
	}
	e := xrpc.InternalServerError("")
	e.Err = fmt.Errorf("reading repository: %w", err)
	return e
}

// syncGetRecord serves com.atproto.sync.getRecord: the proof of a record at
// the current commit, a CAR holding the commit, the MST nodes on the
// record's path and the record. For a record that does not exist the nodes
// prove its absence, as the reference PDS answers.
func (s *Server) syncGetRecord(ctx context.Context, req *xrpc.Request) (*xrpc.Response, error) {
	var p atproto.SyncGetRecord_Params
	if err := p.SetValues(req.Query); err != nil {
		return nil, xrpc.InvalidRequest(err.Error())
	}
	did, err := parseDIDParam(p.Did)
	if err != nil {
		return nil, err
	}
	col, err := syntax.ParseNSID(p.Collection)
	if err != nil {
		return nil, xrpc.InvalidRequest("invalid collection parameter: " + err.Error())
	}
	rkey, err := syntax.ParseRecordKey(p.Rkey)
	if err != nil {
		return nil, xrpc.InvalidRequest("invalid rkey parameter: " + err.Error())
	}
	if _, err := s.syncAccount(ctx, did); err != nil {
		return nil, err
	}
	st, release, ok, err := s.repoStore(ctx, did)
	if err != nil {
		return nil, err
	}
	if !ok {
		return nil, xrpc.InvalidRequest("Could not find repo for DID: " + string(did))
	}
	defer release()
	head, _, ok, err := st.Head(ctx)
	if err != nil {
		return nil, err
	}
	if !ok {
		return nil, xrpc.InvalidRequest("Could not find repo for DID: " + string(did))
	}
	br := st.BlockReader()
	defer br.Close()
	proof, err := repo.RecordProof(ctx, br, head, col, rkey)
	if err != nil {
		return nil, exportError(err)
	}
	return &xrpc.Response{Encoding: carEncoding, Raw: bytes.NewReader(proof),
		Header: http.Header{"Content-Length": {strconv.Itoa(len(proof))}}}, nil
}

// syncGetBlocks serves com.atproto.sync.getBlocks: a CAR without roots
// holding the blocks asked for. When any is missing nothing is sent but an
// InvalidRequest naming them, as the reference PDS answers.
func (s *Server) syncGetBlocks(ctx context.Context, req *xrpc.Request) (*xrpc.Response, error) {
	var p atproto.SyncGetBlocks_Params
	if err := p.SetValues(req.Query); err != nil {
		return nil, xrpc.InvalidRequest(err.Error())
	}
	did, err := parseDIDParam(p.Did)
	if err != nil {
		return nil, err
	}
	cids := make([]data.CID, 0, len(p.Cids))
	seen := make(map[data.CID]struct{}, len(p.Cids))
	for _, v := range p.Cids {
		c, err := data.ParseCID(v)
		if err != nil {
			return nil, xrpc.InvalidRequest(fmt.Sprintf("invalid cid %q: %v", v, err))
		}
		if _, dup := seen[c]; !dup {
			seen[c] = struct{}{}
			cids = append(cids, c)
		}
	}
	if _, err := s.syncAccount(ctx, did); err != nil {
		return nil, err
	}
	st, release, ok, err := s.repoStore(ctx, did)
	if err != nil {
		return nil, err
	}
	if !ok {
		return nil, xrpc.InvalidRequest("Could not find repo for DID: " + string(did))
	}
	missing, err := st.MissingBlocks(ctx, cids)
	if err != nil {
		release()
		return nil, err
	}
	if len(missing) > 0 {
		release()
		names := make([]byte, 0, len(missing)*60)
		for i, c := range missing {
			if i > 0 {
				names = append(names, ',')
			}
			names = append(names, c.String()...)
		}
		return nil, xrpc.InvalidRequest("Could not find cids: " + string(names))
	}
	return streamCAR(func(w io.Writer) error {
		defer release()
		br := st.BlockReader()
		defer br.Close()
		cw, err := car.NewWriter(endReadsOnWrite{w, br})
		if err != nil {
			return err
		}
		for _, c := range cids {
			b, err := br.GetBlock(ctx, c)
			if err != nil {
				return err
			}
			if err := cw.WriteBlock(c, b); err != nil {
				return err
			}
		}
		return cw.Close()
	})
}

// syncHead is the head commit and rev of the repository didParam names,
// for getLatestCommit and getHead; a repository without one is a 400 with
// the error name notFound.
func (s *Server) syncHead(ctx context.Context, didParam, notFound string) (data.CID, string, error) {
	did, err := parseDIDParam(didParam)
	if err != nil {
		return data.CID{}, "", err
	}
	if _, err := s.syncAccount(ctx, did); err != nil {
		return data.CID{}, "", err
	}
	head, rev, ok, err := s.repoHead(ctx, did)
	if err != nil {
		return data.CID{}, "", err
	}
	if !ok {
		return data.CID{}, "", xrpc.Errorf(http.StatusBadRequest, notFound, "Could not find root for DID: %s", did)
	}
	return head, rev, nil
}

// syncGetLatestCommit serves com.atproto.sync.getLatestCommit.
func (s *Server) syncGetLatestCommit(ctx context.Context, p *atproto.SyncGetLatestCommit_Params) (*atproto.SyncGetLatestCommit_Output, error) {
	head, rev, err := s.syncHead(ctx, p.Did, "RepoNotFound")
	if err != nil {
		return nil, err
	}
	return &atproto.SyncGetLatestCommit_Output{Cid: head.String(), Rev: rev}, nil
}

// syncGetHead serves the deprecated com.atproto.sync.getHead.
func (s *Server) syncGetHead(ctx context.Context, p *atproto.SyncGetHead_Params) (*atproto.SyncGetHead_Output, error) {
	head, _, err := s.syncHead(ctx, p.Did, "HeadNotFound")
	if err != nil {
		return nil, err
	}
	return &atproto.SyncGetHead_Output{Root: head.String()}, nil
}
