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
	"github.com/welkin-atproto/welkin/pds/actorstore"
	"github.com/welkin-atproto/welkin/pds/sequencer"
	"github.com/welkin-atproto/welkin/pds/store"
)

// How a repository write becomes durable.
//
// A commit's #commit event is handed to the sequencer while the account's
// database queues the commit for a background transaction, without an
// fsync, shared with the account's other commits of the moment
// (actorstore.ApplyCommitLater), and the write is acknowledged once the
// sequencer has made the event durable in the firehose log. Reads of the
// account wait for the queue to be stored; its next write builds on the
// queue. The log's transactions carry the events of many accounts, so that
// one fsync serves many writes (group commit), where an fsync per account
// database would serve one.
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
// store is reopened and synced before the mark moves).
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

// unsyncedOutbox is an account's outbox as the sequencer reads it: reading
// rows marks the account unsynced before their events can reach the log,
// so that syncStores never moves the durable mark past an event whose
// commit it did not sync (rows handed over with Submit were marked by their
// writer already; these are the ones a crash left, or Notify announced).
type unsyncedOutbox struct {
	*actorstore.Store
	unsynced *unsyncedStores
}

func (o unsyncedOutbox) Outbox(ctx context.Context, afterID int64, limit int) ([]actorstore.OutboxRow, error) {
	rows, err := o.Store.Outbox(ctx, afterID, limit)
	if len(rows) > 0 {
		o.unsynced.add(o.Store.DID())
	}
	return rows, err
}

// syncStores makes every account database written before the call durable
// and then moves the durable mark to the latest seq read at its start.
// Every event up to that seq was made from an outbox row that was handed
// to the sequencer, or read by it, after the account was added to the
// unsynced set (commitLocked, unsyncedOutbox), so the set taken here
// covers them all.
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
	// A store not open any more was synced by its Close, once that is
	// over; stores that failed to close are reopened and synced.
	s.actors.waitCloses()
	for _, did := range s.actors.takeCloseFailed() {
		if !s.actors.exists(did) {
			continue // deleted since
		}
		st, release, err := s.actors.get(ctx, did)
		if err == nil {
			err = st.Sync(ctx)
			release()
		}
		if err != nil {
			s.actors.noteCloseFailed(did)
			errs = append(errs, fmt.Errorf("pds: account database of %s failed to close cleanly and cannot be synced: %w", did, err))
		}
	}
	if s.actors.anyUnstored() {
		// A logged commit is missing from its database, and only the
		// replay of the next start brings it back: the mark must stay
		// below its event.
		errs = append(errs, errors.New("pds: an acknowledged commit could not be stored in its account's database; the durable mark stays until the PDS restarts"))
	}
	if err := errors.Join(errs...); err != nil {
		return err
	}
	return s.seq.SetDurableMark(ctx, latest)
}

// replayLog restores into the account databases the commits whose events
// are in the log above the durable mark but which the databases lost (a
// power loss), then makes every database with a commit event above the
// mark durable and moves the mark to the end of the log. It runs on start,
// before anything is served. A commit the databases still hold after a
// crash may be in the page cache only; it is made durable here too, since
// the mark moves past its event.
//
// An account that cannot be restored or synced is logged and left out,
// and the mark then stays where it was, so that the next start tries
// again; the other accounts still start.
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
	var (
		touched  = make(map[syntax.DID]bool) // accounts with #commit events above the mark
		failed   = make(map[syntax.DID]bool)
		restored int
	)
	cursor := mark
	for {
		evs, err := s.seq.Since(ctx, cursor, sequencer.MaxSinceLimit)
		if err != nil {
			return err
		}
		for _, ev := range evs {
			cursor = ev.Seq
			did, replayed, err := s.replayEvent(ctx, ev, failed)
			if err != nil {
				s.log.Error("pds: cannot restore a logged commit into its account's database", "did", did, "seq", ev.Seq, "err", err)
				failed[did] = true
				continue
			}
			if did != "" {
				touched[did] = true
			}
			if replayed {
				restored++
			}
		}
		if len(evs) < sequencer.MaxSinceLimit {
			break
		}
	}
	for did := range touched {
		if failed[did] {
			continue
		}
		st, release, err := s.actors.get(ctx, did)
		if err == nil {
			err = st.Sync(ctx)
			release()
		}
		if err != nil {
			s.log.Error("pds: cannot make an account database durable", "did", did, "err", err)
			failed[did] = true
		}
	}
	if restored > 0 {
		s.log.Warn(replayLogMessage, "commits", restored, "from_seq", mark+1, "to_seq", latest)
	}
	if len(failed) > 0 {
		s.log.Error("pds: the durable mark stays until the accounts that failed are restored", "accounts", len(failed), "mark", mark)
		return nil
	}
	return s.seq.SetDurableMark(ctx, latest)
}

// replayEvent restores the commit of one logged #commit event into its
// account's database if the database lacks it. It returns the account of
// any #commit event whose account still exists, and whether it restored
// the commit. Accounts in failed are passed over. When the database is
// missing more than this event (its head is below the event's since), the
// commit cannot be restored; that is logged, and the database's outbox IDs
// are still lifted above the sequencer's cursor.
func (s *Server) replayEvent(ctx context.Context, ev stream.Event, failed map[syntax.DID]bool) (syntax.DID, bool, error) {
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
	if failed[did] {
		return "", false, nil
	}
	// The accounts table, not the database's directory, says whether the
	// account still exists: a power loss may have taken a new directory.
	if _, err := s.accounts.AccountByDID(ctx, did); errors.Is(err, store.ErrNotFound) {
		return "", false, nil // deleted since
	} else if err != nil {
		return did, false, err
	}
	st, release, err := s.actors.get(ctx, did)
	if err != nil {
		return did, false, err
	}
	defer release()
	st.Lock()
	defer st.Unlock()
	_, head, ok, err := st.Head(ctx)
	if err != nil {
		return did, false, err
	}
	var since string
	if c.Since != nil {
		since = *c.Since
	}
	if ok && head >= c.Rev {
		return did, false, nil // the database has it
	}
	floor, err := s.seq.Cursor(ctx, did)
	if err != nil {
		return did, false, err
	}
	if head != since {
		s.log.Error("pds: cannot restore a lost commit: the account's database lacks its predecessor too",
			"did", did, "seq", ev.Seq, "rev", c.Rev, "since", since, "head", head)
		return did, false, st.RaiseOutboxIDs(ctx, floor)
	}
	_, blocks, err := car.ReadAll(bytes.NewReader(c.Blocks), car.Limits{})
	if err != nil {
		return did, false, fmt.Errorf("blocks of %s at %s: %w", did, c.Rev, err)
	}
	ops := make([]repo.Op, len(c.Ops))
	for i, op := range c.Ops {
		ops[i] = repo.Op{Action: op.Action, Path: op.Path, CID: op.Cid, Prev: op.Prev}
	}
	res := &repo.CommitResult{CID: c.Commit, Rev: syntax.TID(c.Rev), Since: syntax.TID(since), Ops: ops, Blocks: blocks}
	if err := st.ReplayCommit(ctx, res, floor); err != nil {
		return did, false, fmt.Errorf("restore %s at %s: %w", did, c.Rev, err)
	}
	if e := s.actors.entry(did); e != nil {
		e.repo = nil
	}
	return did, true, nil
}
