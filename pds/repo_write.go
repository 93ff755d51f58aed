package pds

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"time"

	"github.com/welkin-atproto/welkin/api/atproto"
	"github.com/welkin-atproto/welkin/api/lexutil"
	"github.com/welkin-atproto/welkin/atproto/crypto"
	"github.com/welkin-atproto/welkin/atproto/data"
	"github.com/welkin-atproto/welkin/atproto/repo"
	"github.com/welkin-atproto/welkin/atproto/syntax"
	"github.com/welkin-atproto/welkin/atproto/xrpc"
	"github.com/welkin-atproto/welkin/pds/actorstore"
	"github.com/welkin-atproto/welkin/pds/store"
)

// commitOpts are the conditions and extras of one repository write.
type commitOpts struct {
	// SwapCommit, when set, must be the CID of the current commit
	// (com.atproto.repo.* swapCommit); otherwise the write fails with
	// InvalidSwap.
	SwapCommit *data.CID
	// Check runs with the account's write lock held and the repository
	// open at its current head, before the writes are applied: the place
	// for swapRecord checks and for resolving a write's action against the
	// current state.
	Check func(ctx context.Context, r *repo.Repo) error
	// AfterApply runs with the account's write lock held once the commit
	// is stored in the account's database, with its result, when the
	// store has blobs waiting for deletion (Store.BlobGCPending): blob
	// bookkeeping that must follow the commit. A write with updates or
	// deletes, which may free blobs, is answered only after it has run or
	// been found not needed.
	AfterApply func(ctx context.Context, st *actorstore.Store, res *repo.CommitResult) error
}

// commitWrites applies writes to the repository of did as one signed
// commit, hands its #commit event to the sequencer while the account's
// database stores the commit in the background, then waits, with the
// account unlocked, until the event is durable in the firehose log: that
// log is what makes the write durable (group commit: one fsync for the
// writes of many accounts), and the account's database is restored from it
// after a crash (see replayLog). Reads and the next write of the account
// wait for the background transaction (actors.get, Store.Lock). Writes to
// one account are serialized; different accounts commit in parallel.
func (s *Server) commitWrites(ctx context.Context, did syntax.DID, writes []repo.RecordWrite, o commitOpts) (*repo.CommitResult, error) {
	res, wait, err := s.commitWritesLocked(ctx, did, writes, o)
	if err != nil {
		return nil, err
	}
	if err := wait(ctx); err != nil {
		return nil, fmt.Errorf("pds: commit %s of %s not yet durable: %w", res.Rev, did, err)
	}
	return res, nil
}

// commitWritesLocked is commitWrites up to the wait.
func (s *Server) commitWritesLocked(ctx context.Context, did syntax.DID, writes []repo.RecordWrite, o commitOpts) (*repo.CommitResult, func(context.Context) error, error) {
	key, err := s.signingKey(ctx, did)
	if err != nil {
		return nil, nil, err
	}
	// The commits of the account's earlier writes may still be queued in
	// its store (actorstore.Store.ApplyCommitLater): this one builds on
	// them without waiting, and what it reads of the store waits for them.
	st, release, err := s.actors.getForWrite(ctx, did)
	if err != nil {
		return nil, nil, err
	}
	defer release()
	e := s.actors.entry(did)

	st.LockForCommit()
	defer st.Unlock()
	r, err := s.openRepoLocked(ctx, st, e)
	if err != nil {
		return nil, nil, err
	}
	if r == nil {
		return nil, nil, xrpc.Errorf(http.StatusBadRequest, "RepoNotFound", "Could not find repo for DID: %s", did)
	}
	if o.SwapCommit != nil {
		if _, head := r.Head(); head != *o.SwapCommit {
			return nil, nil, xrpc.Errorf(http.StatusBadRequest, "InvalidSwap", "Commit was at %s", head)
		}
	}
	if o.Check != nil {
		if err := o.Check(ctx, r); err != nil {
			return nil, nil, err
		}
	}
	return s.commitLocked(ctx, st, e, r, writes, key, o.AfterApply)
}

// initRepo writes the first commit of a new account's repository (no
// records), with its #commit event.
func (s *Server) initRepo(ctx context.Context, did syntax.DID, key crypto.PrivateKey) (*repo.CommitResult, error) {
	st, release, err := s.actors.get(ctx, did)
	if err != nil {
		return nil, err
	}
	defer release()
	e := s.actors.entry(did)
	st.Lock()
	defer st.Unlock()
	if _, _, ok, err := st.Head(ctx); err != nil {
		return nil, err
	} else if ok {
		return nil, fmt.Errorf("pds: repository of %s already exists", did)
	}
	r, err := repo.NewRepo(did, st.CommitStore())
	if err != nil {
		return nil, err
	}
	res, wait, err := s.commitLocked(ctx, st, e, r, nil, key, nil)
	if err != nil {
		return nil, err
	}
	if err := wait(ctx); err != nil {
		return nil, fmt.Errorf("pds: first commit of %s not yet durable: %w", did, err)
	}
	return res, nil
}

// openRepoLocked returns the account's repository at its head, queued
// commits included (nil when it has none), reusing the copy kept in e.
// st's lock is held (LockForCommit).
func (s *Server) openRepoLocked(ctx context.Context, st *actorstore.Store, e *actorEntry) (*repo.Repo, error) {
	head, _, ok, err := st.CommitHead(ctx)
	if err != nil {
		return nil, err
	}
	if !ok {
		e.repo = nil
		return nil, nil
	}
	if e.repo != nil {
		if _, c := e.repo.Head(); c == head && !e.repo.HasPending() {
			return e.repo, nil
		}
	}
	r, err := repo.OpenRepo(ctx, st.CommitStore(), head)
	if err != nil {
		e.repo = nil
		return nil, fmt.Errorf("pds: open repository of %s: %w", st.DID(), err)
	}
	e.repo = r
	return r, nil
}

// commitLocked applies writes to r, signs the commit, starts storing it
// with its event in the background (Store.ApplyCommitLater) and hands the
// event to the sequencer; it returns the function that waits for the event
// to be durable (and, when after is set and the commit updates or deletes,
// for after to have run). On any failure the cached repository is dropped,
// so the next write reopens it from the stored head.
func (s *Server) commitLocked(ctx context.Context, st *actorstore.Store, e *actorEntry, r *repo.Repo, writes []repo.RecordWrite, key crypto.PrivateKey,
	after func(context.Context, *actorstore.Store, *repo.CommitResult) error) (res *repo.CommitResult, wait func(context.Context) error, err error) {
	defer func() {
		if err != nil {
			e.repo = nil
		}
	}()
	if len(writes) > 0 {
		if err := r.Apply(ctx, writes); err != nil {
			return nil, nil, repoWriteError(err)
		}
	}
	res, err = r.Commit(ctx, key, s.clock)
	if err != nil {
		return nil, nil, fmt.Errorf("pds: commit: %w", err)
	}
	ev, err := commitEvent(res, s.cfg.Now())
	if err != nil {
		return nil, nil, err
	}
	did := st.DID()
	// The account's transaction is not fsynced, and may still be running
	// when the write is acknowledged: the sequencer's log makes the write
	// durable, and the store is synced later (syncStores). The background
	// transaction holds a reference to the store, so that it stays open.
	release := s.actors.retain(did, e)
	stored := make(chan struct{})
	id, err := st.ApplyCommitLater(res, ev, actorstore.LaterHooks{
		Retry: func(err error) {
			s.log.Error("pds: cannot store a commit in its account's database; trying again", "did", did, "rev", res.Rev, "err", err)
		},
		Done: func(err error) {
			defer release()
			defer close(stored)
			if err != nil {
				s.actors.noteUnstored(did, err)
				s.log.Error("pds: gave up storing a commit in its account's database; the account is unavailable until the PDS restarts and restores it from the log",
					"did", did, "rev", res.Rev, "err", err)
				return
			}
			// Taking the lock waits for the account's queued commits; a
			// store with no blob to delete needs none of it.
			if after != nil && st.BlobGCPending() {
				st.Lock()
				defer st.Unlock()
				if err := after(context.WithoutCancel(ctx), st, res); err != nil {
					s.log.Error("pds: after commit", "did", did, "rev", res.Rev, "err", err)
				}
			}
		},
	})
	if err != nil {
		release()
		return nil, nil, err
	}
	e.repo = r
	s.unsynced.add(did)
	logged := s.seq.Submit(did, actorstore.OutboxRow{ID: id, Rev: string(res.Rev), Kind: actorstore.KindCommit, Body: ev})
	waitStored := after != nil && slices.ContainsFunc(res.Ops, func(op repo.Op) bool { return op.Action != repo.ActionCreate })
	wait = func(ctx context.Context) error {
		if err := logged(ctx); err != nil {
			return err
		}
		if !waitStored {
			return nil
		}
		// A failure to store is logged by Done; the write is durable in
		// the log all the same.
		select {
		case <-stored:
			return nil
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	return res, wait, nil
}

// repoWriteError maps an error of Repo.Apply to what the client sees.
func repoWriteError(err error) error {
	var xe *xrpc.Error
	if errors.As(err, &xe) {
		return err
	}
	if errors.Is(err, repo.ErrRecordNotFound) {
		return xrpc.InvalidRequest("Could not find record: " + err.Error())
	}
	return xrpc.InvalidRequest(err.Error())
}

// commitEvent encodes the #commit event body of res (sync 1.1: prevData,
// ops with prev, the inversion-complete CAR slice), with seq 0 for the
// sequencer to fill in.
func commitEvent(res *repo.CommitResult, now time.Time) ([]byte, error) {
	ev := &atproto.SyncSubscribeRepos_Commit{
		Repo:     string(res.Commit.DID),
		Commit:   res.CID,
		Rev:      string(res.Rev),
		Blocks:   res.CAR,
		Ops:      make([]*atproto.SyncSubscribeRepos_RepoOp, len(res.Ops)),
		Blobs:    []data.CID{},
		PrevData: res.PrevData,
		Time:     syntax.DatetimeFromTime(now).String(),
	}
	if res.Since != "" {
		since := string(res.Since)
		ev.Since = &since
	}
	for i, op := range res.Ops {
		ev.Ops[i] = &atproto.SyncSubscribeRepos_RepoOp{Action: op.Action, Path: op.Path, Cid: op.CID, Prev: op.Prev}
	}
	b, err := lexutil.MarshalCBOR(ev)
	if err != nil {
		return nil, fmt.Errorf("pds: encode #commit event: %w", err)
	}
	return b, nil
}

// signingKey returns the repository signing key of did, parsed once and
// kept in memory.
func (s *Server) signingKey(ctx context.Context, did syntax.DID) (crypto.PrivateKey, error) {
	if k, ok := s.keyCache.Load(did); ok {
		return k.(crypto.PrivateKey), nil
	}
	acct, err := s.accounts.AccountByDID(ctx, did)
	if err != nil {
		if errors.Is(err, store.ErrNotFound) {
			return nil, xrpc.Errorf(http.StatusBadRequest, "RepoNotFound", "Could not find repo for DID: %s", did)
		}
		return nil, err
	}
	k, err := crypto.ParsePrivateBytesK256(acct.SigningKey)
	if err != nil {
		return nil, fmt.Errorf("pds: signing key of %s: %w", did, err)
	}
	s.keyCache.Store(did, k)
	return k, nil
}

// forgetSigningKey drops a cached key (key rotation, account deletion).
func (s *Server) forgetSigningKey(did syntax.DID) { s.keyCache.Delete(did) }
