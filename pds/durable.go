package pds

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/welkin-atproto/welkin/api/atproto"
	"github.com/welkin-atproto/welkin/atproto/car"
	"github.com/welkin-atproto/welkin/atproto/data"
	"github.com/welkin-atproto/welkin/atproto/repo"
	"github.com/welkin-atproto/welkin/atproto/stream"
	"github.com/welkin-atproto/welkin/atproto/syntax"
	"github.com/welkin-atproto/welkin/pds/sequencer"
)

// How a repository write becomes durable.
//
// A commit is stored in the account's database without an fsync
// (actorstore.ApplyCommit) and its #commit event handed to the sequencer,
// and the write is acknowledged once the sequencer has made the event
// durable in the firehose log. The log's transactions carry the events of
// many accounts, so that one fsync serves many writes (group commit),
// where an fsync per account database would serve one.
//
// The event holds everything the commit wrote: the commit, its new MST
// nodes and records (the CAR slice) and its ops. So if a power loss takes
// a commit from the account's database but not from the log, replayLog
// restores it from the event when the PDS starts, before it serves. To
// keep that replay short, syncStores makes the account databases written
// since its last round durable, about every storeSyncEvery, and then
// records in the log the seq up to which they are (the durable mark): only
// the events above the mark can be missing from the databases. A store
// closed in between was made durable by its Close (if a Close fails, the
// mark stops moving until the next start).
//
// Writes that no event carries (blob metadata, repository imports) are
// durable on their own (actorstore uses durable transactions for them).

// replayLogMessage is logged when replayLog restored commits.
const replayLogMessage = "pds: restored commits lost from account databases"

// storeSyncEvery is how often the account databases written since the last
// round are made durable and the durable mark moved up.
const storeSyncEvery = time.Second

// unsyncedStores is the set of accounts whose database holds commits that
// may not be durable yet.
type unsyncedStores struct {
	mu  sync.Mutex
	set map[syntax.DID]struct{}
}

func (u *unsyncedStores) add(did syntax.DID) {
	u.mu.Lock()
	if u.set == nil {
		u.set = make(map[syntax.DID]struct{})
	}
	u.set[did] = struct{}{}
	u.mu.Unlock()
}

// take empties the set and returns what it held.
func (u *unsyncedStores) take() map[syntax.DID]struct{} {
	u.mu.Lock()
	defer u.mu.Unlock()
	m := u.set
	u.set = nil
	return m
}

// syncStores makes every account database written before the call durable
// and then moves the durable mark to the latest seq read at its start.
// Every event up to that seq was handed to the sequencer after its commit
// was stored and the account added to the unsynced set, so the set taken
// here covers them all.
func (s *Server) syncStores(ctx context.Context) error {
	latest, err := s.seq.LatestSeq(ctx)
	if err != nil {
		return err
	}
	dids := s.unsynced.take()
	var errs []error
	for did := range dids {
		st, release, ok := s.actors.getIfOpen(did)
		if !ok {
			continue // closed since, and Close syncs
		}
		err := st.Sync(ctx)
		release()
		if err != nil {
			s.unsynced.add(did)
			errs = append(errs, err)
		}
	}
	if err := errors.Join(errs...); err != nil {
		return err
	}
	if s.actors.closeFailed.Load() {
		return errors.New("pds: an account database failed to close cleanly; the durable mark stays until the next start")
	}
	return s.seq.SetDurableMark(ctx, latest)
}

// runStoreSync runs syncStores every storeSyncEvery until ctx ends.
func (s *Server) runStoreSync(ctx context.Context) {
	t := time.NewTicker(storeSyncEvery)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			if err := s.syncStores(ctx); err != nil && ctx.Err() == nil {
				s.log.Error("pds: making account databases durable", "err", err)
			}
		}
	}
}

// replayLog restores into the account databases the commits whose events
// are in the log above the durable mark but which the databases lost (a
// power loss), then makes those databases durable and moves the mark to
// the end of the log. It runs on start, before anything is served.
func (s *Server) replayLog(ctx context.Context) error {
	mark, err := s.seq.DurableMark(ctx)
	if err != nil {
		return err
	}
	latest, err := s.seq.LatestSeq(ctx)
	if err != nil {
		return err
	}
	if latest <= mark {
		return nil
	}
	if oldest, err := s.seq.OldestSeq(ctx); err != nil {
		return err
	} else if oldest > mark+1 {
		s.log.Warn("pds: events above the durable mark were pruned; they cannot be replayed", "mark", mark, "oldest", oldest)
	}
	replayed := make(map[syntax.DID]bool)
	cursor := mark
	for {
		evs, err := s.seq.Since(ctx, cursor, sequencer.MaxSinceLimit)
		if err != nil {
			return err
		}
		for _, ev := range evs {
			cursor = ev.Seq
			did, ok, err := s.replayEvent(ctx, ev)
			if err != nil {
				return fmt.Errorf("pds: replaying seq %d: %w", ev.Seq, err)
			}
			if ok {
				replayed[did] = true
			}
		}
		if len(evs) < sequencer.MaxSinceLimit {
			break
		}
	}
	for did := range replayed {
		st, release, err := s.actors.get(ctx, did)
		if err != nil {
			return err
		}
		err = st.Sync(ctx)
		release()
		if err != nil {
			return err
		}
	}
	if len(replayed) > 0 {
		s.log.Warn(replayLogMessage, "accounts", len(replayed), "from_seq", mark+1, "to_seq", latest)
	}
	return s.seq.SetDurableMark(ctx, latest)
}

// replayEvent restores the commit of one logged event into its account's
// database if the database lacks it, and reports the account when it did.
// An event that cannot be restored because the database is missing more
// than the log holds is logged, not returned: the other accounts still
// start.
func (s *Server) replayEvent(ctx context.Context, ev stream.Event) (syntax.DID, bool, error) {
	h, body, err := stream.DecodeFrame(ev.Frame)
	if err != nil {
		return "", false, err
	}
	if h.T != "#commit" {
		return "", false, nil
	}
	var c atproto.SyncSubscribeRepos_Commit
	if err := data.UnmarshalCBORInto(body, &c); err != nil {
		return "", false, fmt.Errorf("decode #commit: %w", err)
	}
	did := syntax.DID(c.Repo)
	if !s.actors.exists(did) {
		return "", false, nil // deleted since
	}
	st, release, err := s.actors.get(ctx, did)
	if err != nil {
		return "", false, err
	}
	defer release()
	st.Lock()
	defer st.Unlock()
	_, head, ok, err := st.Head(ctx)
	if err != nil {
		return "", false, err
	}
	var since string
	if c.Since != nil {
		since = *c.Since
	}
	if ok && head >= c.Rev {
		return "", false, nil // the database has it
	}
	if head != since {
		s.log.Error("pds: cannot restore a lost commit: the account's database lacks its predecessor too",
			"did", did, "seq", ev.Seq, "rev", c.Rev, "since", since, "head", head)
		return "", false, nil
	}
	_, blocks, err := car.ReadAll(bytes.NewReader(c.Blocks), car.Limits{})
	if err != nil {
		return "", false, fmt.Errorf("blocks of %s at %s: %w", did, c.Rev, err)
	}
	ops := make([]repo.Op, len(c.Ops))
	for i, op := range c.Ops {
		ops[i] = repo.Op{Action: op.Action, Path: op.Path, CID: op.Cid, Prev: op.Prev}
	}
	floor, err := s.seq.Cursor(ctx, did)
	if err != nil {
		return "", false, err
	}
	res := &repo.CommitResult{CID: c.Commit, Rev: syntax.TID(c.Rev), Since: syntax.TID(since), Ops: ops, Blocks: blocks}
	if err := st.ReplayCommit(ctx, res, floor); err != nil {
		return "", false, fmt.Errorf("restore %s at %s: %w", did, c.Rev, err)
	}
	if e := s.actors.entry(did); e != nil {
		e.repo = nil
	}
	return did, true, nil
}
