package pds

import (
	"context"
	"errors"
	"net/http"
	"slices"

	"github.com/welkin-atproto/welkin/atproto/data"
	"github.com/welkin-atproto/welkin/atproto/repo"
	"github.com/welkin-atproto/welkin/atproto/syntax"
	"github.com/welkin-atproto/welkin/atproto/xrpc"
	"github.com/welkin-atproto/welkin/pds/actorstore"
)

// writeResult is the output of createRecord and putRecord.
func writeResult(did syntax.DID, w *preparedWrite, res *repo.CommitResult) map[string]any {
	out := map[string]any{"uri": w.uri(did), "cid": w.cid.String()}
	if res != nil {
		out["commit"] = commitMeta(res)
	}
	if w.status != "" {
		out["validationStatus"] = w.status
	}
	return out
}

// repoCreateRecord serves com.atproto.repo.createRecord. Like the
// reference PDS, creating a follow, block, like or repost (with validation
// not turned off) deletes, in the same commit, the caller's records of the
// same collection with the same subject, so that duplicates do not pile
// up.
func (s *Server) repoCreateRecord(ctx context.Context, req *xrpc.Request) (*xrpc.Response, error) {
	in := req.Input
	repoIdent, _ := inputString(in, "repo")
	did, err := s.repoWriter(ctx, repoIdent)
	if err != nil {
		return nil, err
	}
	if err := s.chargeWrite(ctx, did, 1, 0, 0); err != nil {
		return nil, err
	}
	collection, _ := inputString(in, "collection")
	rkey, _ := inputString(in, "rkey")
	validate := inputBool(in, "validate")
	w, err := s.prepareRecord(repo.ActionCreate, collection, rkey, in["record"], validate, "record")
	if err != nil {
		return nil, err
	}
	swapCommit, err := inputCID(in, "swapCommit")
	if err != nil {
		return nil, err
	}
	// What the checks below read of the store waits for the account's
	// queued commits; a plain create reads nothing.
	st, release, err := s.actors.getForWrite(ctx, did)
	if err != nil {
		return nil, err
	}
	defer release()
	dedupe := validate == nil || *validate
	links := actorstore.Backlinks(string(w.collection), w.record)
	if !dedupe {
		links = nil
	}

	var res *repo.CommitResult
	err = writeAttempts(func() error {
		conflicts, err := backlinkConflicts(ctx, st, w, links)
		if err != nil {
			return err
		}
		writes := make([]repo.RecordWrite, 0, len(conflicts)+1)
		for _, k := range conflicts {
			writes = append(writes, repo.RecordWrite{Action: repo.ActionDelete, Collection: w.collection, RKey: k})
		}
		writes = append(writes, w.recordWrite())
		res, err = s.commitWrites(ctx, did, writes, commitOpts{
			SwapCommit: swapCommit,
			Check: func(ctx context.Context, r *repo.Repo) error {
				if len(links) > 0 {
					now, err := backlinkConflicts(ctx, st, w, links)
					if err != nil {
						return err
					}
					if !slices.Equal(now, conflicts) {
						return errWriteRaced
					}
				}
				if _, _, err := r.GetRecord(ctx, w.collection, w.rkey); err == nil {
					return xrpc.InvalidRequest("Record already exists: " + w.uri(did))
				} else if !errors.Is(err, repo.ErrRecordNotFound) {
					return err
				}
				return s.commitBlobs(ctx, st, []*preparedWrite{w})
			},
			AfterApply: s.afterCommit,
		})
		return err
	})
	if err != nil {
		return nil, commitError(err)
	}
	return &xrpc.Response{Body: writeResult(did, w, res)}, nil
}

// backlinkConflicts returns the keys of the records that a new record w
// with backlinks links would duplicate (other than w's own key).
func backlinkConflicts(ctx context.Context, st *actorstore.Store, w *preparedWrite, links []actorstore.Backlink) ([]syntax.RecordKey, error) {
	var out []syntax.RecordKey
	for _, l := range links {
		keys, err := st.BacklinkConflicts(ctx, w.collection, l.Path, l.LinkTo)
		if err != nil {
			return nil, err
		}
		for _, k := range keys {
			if k != w.rkey && !slices.Contains(out, k) {
				out = append(out, k)
			}
		}
	}
	slices.Sort(out)
	return out, nil
}

// currentRecord returns the CID of the record at collection/rkey in st's
// index, nil when there is none.
func currentRecord(ctx context.Context, st *actorstore.Store, collection syntax.NSID, rkey syntax.RecordKey) (*data.CID, error) {
	c, _, err := st.GetRecord(ctx, collection, rkey)
	if errors.Is(err, repo.ErrRecordNotFound) {
		return nil, nil
	}
	var missing *repo.MissingBlockError
	if errors.As(err, &missing) {
		// The index names the record; its block is what is missing.
		return &missing.CID, nil
	}
	if err != nil {
		return nil, err
	}
	return &c, nil
}

// headRecord returns the CID of the record at collection/rkey in r, nil
// when there is none.
func headRecord(ctx context.Context, r *repo.Repo, collection syntax.NSID, rkey syntax.RecordKey) (*data.CID, error) {
	c, _, err := r.GetRecord(ctx, collection, rkey)
	if errors.Is(err, repo.ErrRecordNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	return &c, nil
}

func sameCID(a, b *data.CID) bool {
	if a == nil || b == nil {
		return a == b
	}
	return *a == *b
}

// swapRecordError is the reference PDS's answer to a swapRecord that does
// not match the current record.
func swapRecordError(cur *data.CID) error {
	at := "null"
	if cur != nil {
		at = cur.String()
	}
	return xrpc.Errorf(http.StatusBadRequest, "InvalidSwap", "Record was at %s", at)
}

// checkSwapRecord applies a putRecord or deleteRecord swapRecord: when
// given, a null swap wants no current record and a CID wants exactly that
// record.
func checkSwapRecord(given bool, swap, cur *data.CID) error {
	if given && !sameCID(swap, cur) {
		return swapRecordError(cur)
	}
	return nil
}

// repoPutRecord serves com.atproto.repo.putRecord: it creates the record or
// replaces it. Writing the record it already holds makes no commit, and
// the response then carries no commit, as the reference PDS answers.
func (s *Server) repoPutRecord(ctx context.Context, req *xrpc.Request) (*xrpc.Response, error) {
	in := req.Input
	repoIdent, _ := inputString(in, "repo")
	did, err := s.repoWriter(ctx, repoIdent)
	if err != nil {
		return nil, err
	}
	collection, _ := inputString(in, "collection")
	rkey, _ := inputString(in, "rkey")
	if _, err := syntax.ParseRecordKey(rkey); err != nil {
		return nil, xrpc.InvalidRequest("Invalid record key: " + err.Error())
	}
	col, err := syntax.ParseNSID(collection)
	if err != nil {
		return nil, xrpc.InvalidRequest("Invalid collection: " + err.Error())
	}
	if err := s.chargeWrite(ctx, did, 0, 1, 0); err != nil {
		return nil, err
	}
	validate := inputBool(in, "validate")
	swapCommit, err := inputCID(in, "swapCommit")
	if err != nil {
		return nil, err
	}
	_, swapGiven := in["swapRecord"]
	swapRecord, err := inputCID(in, "swapRecord")
	if err != nil {
		return nil, err
	}
	st, release, err := s.actors.get(ctx, did)
	if err != nil {
		return nil, err
	}
	defer release()

	var w *preparedWrite
	var res *repo.CommitResult
	err = writeAttempts(func() error {
		cur, err := currentRecord(ctx, st, col, syntax.RecordKey(rkey))
		if err != nil {
			return err
		}
		action := repo.ActionCreate
		if cur != nil {
			action = repo.ActionUpdate
		}
		if w, err = s.prepareRecord(action, collection, rkey, in["record"], validate, "record"); err != nil {
			return err
		}
		if cur != nil && *cur == w.cid {
			res = nil // the record is already there: nothing to commit
			return nil
		}
		res, err = s.commitWrites(ctx, did, []repo.RecordWrite{w.recordWrite()}, commitOpts{
			SwapCommit: swapCommit,
			Check: func(ctx context.Context, r *repo.Repo) error {
				now, err := headRecord(ctx, r, w.collection, w.rkey)
				if err != nil {
					return err
				}
				if !sameCID(now, cur) {
					return errWriteRaced
				}
				if err := checkSwapRecord(swapGiven, swapRecord, now); err != nil {
					return err
				}
				return s.commitBlobs(ctx, st, []*preparedWrite{w})
			},
			AfterApply: s.afterCommit,
		})
		return err
	})
	if err != nil {
		return nil, commitError(err)
	}
	return &xrpc.Response{Body: writeResult(did, w, res)}, nil
}

// repoDeleteRecord serves com.atproto.repo.deleteRecord. Deleting a record
// that does not exist succeeds without a commit (and the response carries
// none), as the reference PDS answers.
func (s *Server) repoDeleteRecord(ctx context.Context, req *xrpc.Request) (*xrpc.Response, error) {
	in := req.Input
	repoIdent, _ := inputString(in, "repo")
	did, err := s.repoWriter(ctx, repoIdent)
	if err != nil {
		return nil, err
	}
	if err := s.chargeWrite(ctx, did, 0, 0, 1); err != nil {
		return nil, err
	}
	collection, _ := inputString(in, "collection")
	rkey, _ := inputString(in, "rkey")
	w, err := prepareDelete(collection, rkey)
	if err != nil {
		return nil, err
	}
	swapCommit, err := inputCID(in, "swapCommit")
	if err != nil {
		return nil, err
	}
	_, swapGiven := in["swapRecord"]
	swapRecord, err := inputCID(in, "swapRecord")
	if err != nil {
		return nil, err
	}
	st, release, err := s.actors.get(ctx, did)
	if err != nil {
		return nil, err
	}
	defer release()

	var res *repo.CommitResult
	err = writeAttempts(func() error {
		cur, err := currentRecord(ctx, st, w.collection, w.rkey)
		if err != nil {
			return err
		}
		if cur == nil {
			res = nil
			return nil
		}
		res, err = s.commitWrites(ctx, did, []repo.RecordWrite{w.recordWrite()}, commitOpts{
			SwapCommit: swapCommit,
			Check: func(ctx context.Context, r *repo.Repo) error {
				now, err := headRecord(ctx, r, w.collection, w.rkey)
				if err != nil {
					return err
				}
				if now == nil || *now != *cur {
					return errWriteRaced
				}
				return checkSwapRecord(swapGiven, swapRecord, now)
			},
			AfterApply: s.afterCommit,
		})
		return err
	})
	if err != nil {
		return nil, commitError(err)
	}
	out := map[string]any{}
	if res != nil {
		out["commit"] = commitMeta(res)
	}
	return &xrpc.Response{Body: out}, nil
}
