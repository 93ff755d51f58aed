package relay

import (
	"context"
	"errors"
	"fmt"

	"github.com/welkin-atproto/welkin/api/atproto"
	"github.com/welkin-atproto/welkin/atproto/data"
	"github.com/welkin-atproto/welkin/atproto/stream"
	"github.com/welkin-atproto/welkin/atproto/syntax"
	"github.com/welkin-atproto/welkin/relay/eventlog"
	"github.com/welkin-atproto/welkin/relay/store"
	"github.com/welkin-atproto/welkin/relay/verify"
)

// recoverPage is how many log records recovery reads at a time.
const recoverPage = 1000

// recoverStates brings the stored account states up to the end of the
// event log before any upstream is followed. The sequencer stores the
// states of each batch, with the batch's last seq, after the batch is in
// the log; a crash between the two leaves logged events whose states were
// not stored. Their upstream events come again (the host cursors are
// saved only after the states), and without this step they would be
// accepted again and logged a second time under new seqs. Replaying the
// log's #commit and #sync events after the stored seq into the account
// states (rev, data, commit) makes the replayed upstream events duplicate
// revs, refused as such.
//
// #account events are replayed into the status, so that a restoration
// from a local takedown, which no upstream repeats, is not lost (see
// replayAccount). #identity and #account events carry no rev, so one
// caught in that window also comes again from upstream, is accepted
// again and appears twice in the stream, which is harmless: each states
// the current identity or status.
func (s *Server) recoverStates(ctx context.Context) error {
	applied, err := s.st.AppliedSeq(ctx)
	if err != nil {
		return err
	}
	latest, err := s.events.LatestSeq(ctx)
	if err != nil {
		return fmt.Errorf("relay: recovery: %w", err)
	}
	if applied > latest {
		// The log was started afresh under an older store.
		s.log.Warn("the event log ends before the seq the store records; continuing from the log's end", "log", latest, "store", applied)
		return s.st.SetAppliedSeq(ctx, latest)
	}
	if applied == latest {
		return nil
	}
	n := 0
	for cursor := applied; cursor < latest; {
		recs, err := s.events.Read(ctx, cursor, recoverPage)
		if err != nil {
			return fmt.Errorf("relay: recovery: reading the log after seq %d: %w", cursor, err)
		}
		if len(recs) == 0 {
			break
		}
		for _, r := range recs {
			cursor = r.Seq
			ok, err := s.replayRecord(ctx, r)
			if err != nil {
				return err
			}
			if ok {
				n++
			}
		}
	}
	s.log.Info("account states recovered from the event log", "from", applied, "to", latest, "updated", n)
	return s.st.SetAppliedSeq(ctx, latest)
}

// logState is what a logged #commit, #sync or #account says of its
// account: a commit (rev set) or a hosting status (status set).
type logState struct {
	did    syntax.DID
	rev    syntax.TID
	data   data.CID
	commit data.CID
	status string
}

// parseLogState reads the account state from a frame of the relay's log;
// ok is false for other event types. The frames were checked when they
// were accepted, and are checked again here as any input is.
func parseLogState(frame []byte) (st logState, ok bool, err error) {
	h, body, err := stream.DecodeFrame(frame)
	if err != nil {
		return st, false, err
	}
	switch h.T {
	case "#commit":
		c, _, err := verify.ParseCommit(body, nil)
		if err != nil {
			return st, false, err
		}
		return logState{did: c.DID(), rev: c.Rev(), data: c.Commit.Data, commit: c.Event.Commit}, true, nil
	case "#sync":
		sy, _, err := verify.ParseSync(body, nil)
		if err != nil {
			return st, false, err
		}
		return logState{did: sy.DID(), rev: sy.Rev(), data: sy.Commit.Data, commit: sy.CID}, true, nil
	case "#account":
		var ev atproto.SyncSubscribeRepos_Account
		if err := data.UnmarshalCBORInto(body, &ev); err != nil {
			return st, false, err
		}
		did, err := syntax.ParseDID(ev.Did)
		if err != nil {
			return st, false, err
		}
		return logState{did: did, status: accountStatus(&ev)}, true, nil
	}
	return st, false, nil
}

// replayRecord applies one logged event to its account's stored state,
// when it is newer than that state, and reports whether it did.
// Desync is left as stored: a #sync that cleared it is fetched again by
// the re-synchronization that the flag brings, which finds the repository
// current.
func (s *Server) replayRecord(ctx context.Context, r eventlog.Record) (bool, error) {
	ls, ok, err := parseLogState(r.Frame)
	if err != nil {
		s.log.Warn("recovery: skipping an unreadable event of the log", "seq", r.Seq, "err", err)
		return false, nil
	}
	if !ok {
		return false, nil
	}
	acct, err := s.st.Account(ctx, ls.did)
	switch {
	case errors.Is(err, store.ErrNotFound):
		if ls.status != "" {
			return false, nil // the upstream's replay brings it with its host
		}
		// First seen in the lost batch: its host is set by the next
		// event from it (afterReject in ingest.go).
		acct = store.Account{DID: ls.did, Status: store.StatusActive}
	case err != nil:
		return false, err
	}
	if ls.status != "" {
		return s.replayAccount(ctx, acct, ls.status)
	}
	if acct.Rev != "" && syntax.TID(acct.Rev) >= ls.rev {
		return false, nil
	}
	acct.Rev, acct.Data, acct.Commit = string(ls.rev), ls.data.String(), ls.commit.String()
	if err := s.st.PutAccount(ctx, acct); err != nil {
		return false, err
	}
	return true, nil
}

// replayAccount applies a logged #account event to acct. While an
// account is taken down here, its host's #account events are not logged
// (takedown.go), and the takedown is stored before it is logged; so a
// logged #account of a taken-down account is either the takedown's own
// (status takendown: nothing to do) or its restoration, which lifts the
// takedown and gives the host's status. Of any other account it is the
// host's status.
func (s *Server) replayAccount(ctx context.Context, acct store.Account, status string) (bool, error) {
	switch {
	case acct.TakenDown && status == store.StatusTakendown:
		return false, nil
	case acct.TakenDown:
		acct.TakenDown = false
	case acct.Status == status:
		return false, nil
	}
	acct.Status = status
	if err := s.st.PutAccount(ctx, acct); err != nil {
		return false, err
	}
	return true, nil
}
