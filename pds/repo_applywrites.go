package pds

import (
	"context"
	"fmt"

	"github.com/welkin-atproto/welkin/atproto/repo"
	"github.com/welkin-atproto/welkin/atproto/xrpc"
)

// The $type of each applyWrites operation and result.
const (
	applyWritesCreate       = "com.atproto.repo.applyWrites#create"
	applyWritesUpdate       = "com.atproto.repo.applyWrites#update"
	applyWritesDelete       = "com.atproto.repo.applyWrites#delete"
	applyWritesCreateResult = "com.atproto.repo.applyWrites#createResult"
	applyWritesUpdateResult = "com.atproto.repo.applyWrites#updateResult"
	applyWritesDeleteResult = "com.atproto.repo.applyWrites#deleteResult"
)

// repoApplyWrites serves com.atproto.repo.applyWrites: up to MaxWrites
// creates, updates and deletes applied as one commit, all or nothing.
// Unlike the single-record methods it checks no record swaps, and a
// delete of a missing record or an update of one fails the whole batch.
func (s *Server) repoApplyWrites(ctx context.Context, req *xrpc.Request) (*xrpc.Response, error) {
	in := req.Input
	repoIdent, _ := inputString(in, "repo")
	did, err := s.repoWriter(ctx, repoIdent)
	if err != nil {
		return nil, err
	}
	ops, _ := in["writes"].([]any)
	if len(ops) > MaxWrites {
		return nil, xrpc.InvalidRequest(fmt.Sprintf("Too many writes. Max: %d", MaxWrites))
	}
	var creates, updates, deletes int
	for _, op := range ops {
		m, _ := op.(map[string]any)
		switch m["$type"] {
		case applyWritesCreate:
			creates++
		case applyWritesUpdate:
			updates++
		default:
			deletes++
		}
	}
	if err := s.chargeWrite(ctx, did, creates, updates, deletes); err != nil {
		return nil, err
	}

	validate := inputBool(in, "validate")
	prepared := make([]*preparedWrite, len(ops))
	for i, op := range ops {
		m, ok := op.(map[string]any)
		if !ok {
			return nil, xrpc.InvalidRequest(fmt.Sprintf("writes[%d] must be an object", i))
		}
		collection, _ := inputString(m, "collection")
		rkey, _ := inputString(m, "rkey")
		where := fmt.Sprintf("writes[%d].value", i)
		var w *preparedWrite
		switch t, _ := m["$type"].(string); t {
		case applyWritesCreate:
			w, err = s.prepareRecord(repo.ActionCreate, collection, rkey, m["value"], validate, where)
		case applyWritesUpdate:
			w, err = s.prepareRecord(repo.ActionUpdate, collection, rkey, m["value"], validate, where)
		case applyWritesDelete:
			w, err = prepareDelete(collection, rkey)
		default:
			err = xrpc.InvalidRequest(fmt.Sprintf("Action not supported: %s", t))
		}
		if err != nil {
			return nil, err
		}
		prepared[i] = w
	}
	swapCommit, err := inputCID(in, "swapCommit")
	if err != nil {
		return nil, err
	}
	// What the check below reads of the store waits for the account's
	// queued commits; the commit builds on them without waiting.
	st, release, err := s.actors.getForWrite(ctx, did)
	if err != nil {
		return nil, err
	}
	defer release()

	writes := make([]repo.RecordWrite, len(prepared))
	for i, w := range prepared {
		writes[i] = w.recordWrite()
	}
	res, err := s.commitWrites(ctx, did, writes, commitOpts{
		SwapCommit: swapCommit,
		Check: func(ctx context.Context, r *repo.Repo) error {
			return s.commitBlobs(ctx, st, prepared)
		},
		AfterApply: s.afterCommit,
	})
	if err != nil {
		return nil, commitError(err)
	}

	results := make([]any, len(prepared))
	for i, w := range prepared {
		var r map[string]any
		switch w.action {
		case repo.ActionCreate, repo.ActionUpdate:
			t := applyWritesCreateResult
			if w.action == repo.ActionUpdate {
				t = applyWritesUpdateResult
			}
			r = map[string]any{"$type": t, "uri": w.uri(did), "cid": w.cid.String()}
			if w.status != "" {
				r["validationStatus"] = w.status
			}
		default:
			r = map[string]any{"$type": applyWritesDeleteResult}
		}
		results[i] = r
	}
	return &xrpc.Response{Body: map[string]any{"commit": commitMeta(res), "results": results}}, nil
}
