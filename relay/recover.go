package relay

import (
	"context"
	"errors"
	"fmt"

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
// #identity and #account events are not replayed: they carry no rev, so
// one caught in that window is accepted again and appears twice in the
// stream, which is harmless (each states the current identity or status).
// Local takedowns are stored before their #account event is logged.
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

// logState is what a logged #commit or #sync says of its account.
type logState struct {
	did    syntax.DID
	rev    syntax.TID
	data   data.CID
	commit data.CID
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
		// First seen in the lost batch: its host is set by the next
		// event from it (see rejected).
		acct = store.Account{DID: ls.did, Status: store.StatusActive}
	case err != nil:
		return false, err
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
