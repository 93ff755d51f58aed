package pds

import (
	"bytes"
	"context"
	"fmt"

	"github.com/welkin-atproto/welkin/api/atproto"
	"github.com/welkin-atproto/welkin/api/lexutil"
	"github.com/welkin-atproto/welkin/atproto/car"
	"github.com/welkin-atproto/welkin/atproto/syntax"
	"github.com/welkin-atproto/welkin/pds/sequencer"
	"github.com/welkin-atproto/welkin/pds/store"
)

// Account status values of #account events that are not store statuses:
// a deleted account has no row left to hold one.
const statusDeleted = "deleted"

// emitIdentity sequences an #identity event for did: the account's DID
// document or handle changed, and consumers should resolve it again. handle
// is the account's current handle, or "" to leave it out (as after a PLC
// operation submitted by the user, whose handle the PDS does not vouch
// for). It returns once the event is durable.
func (s *Server) emitIdentity(ctx context.Context, did syntax.DID, handle syntax.Handle) error {
	ev := &atproto.SyncSubscribeRepos_Identity{
		Did:  string(did),
		Time: syntax.DatetimeFromTime(s.cfg.Now()).String(),
	}
	if handle != "" {
		h := string(handle)
		ev.Handle = &h
	}
	return s.appendEvent(ctx, did, sequencer.KindIdentity, ev)
}

// emitAccount sequences an #account event for did. active says whether the
// repository is served; status, for an inactive account, is "deactivated",
// "takendown" or "deleted" (and "" for an active one, which the event then
// leaves out, as the reference does).
func (s *Server) emitAccount(ctx context.Context, did syntax.DID, active bool, status string) error {
	ev := &atproto.SyncSubscribeRepos_Account{
		Did:    string(did),
		Time:   syntax.DatetimeFromTime(s.cfg.Now()).String(),
		Active: active,
	}
	if !active && status != "" {
		st := status
		ev.Status = &st
	}
	return s.appendEvent(ctx, did, sequencer.KindAccount, ev)
}

// emitAccountStatus sequences the #account event that describes the stored
// state of acct.
func (s *Server) emitAccountStatus(ctx context.Context, acct *store.Account) error {
	active, status := accountStatus(acct)
	return s.emitAccount(ctx, acct.DID, active, status)
}

// emitSync sequences a #sync event carrying the account's current commit:
// consumers that hold an older state of the repository should fetch it
// again. It is sent when an account becomes active (creation, activation
// after a migration), as the reference does. An account without a
// repository gets no event.
func (s *Server) emitSync(ctx context.Context, did syntax.DID) error {
	st, release, err := s.actors.get(ctx, did)
	if err != nil {
		return err
	}
	defer release()
	head, rev, ok, err := st.Head(ctx)
	if err != nil || !ok {
		return err
	}
	commit, err := st.GetBlock(ctx, head)
	if err != nil {
		return fmt.Errorf("pds: #sync event: read commit: %w", err)
	}
	var buf bytes.Buffer
	w, err := car.NewWriter(&buf, head)
	if err == nil {
		if err = w.WriteBlock(head, commit); err == nil {
			err = w.Close()
		}
	}
	if err != nil {
		return fmt.Errorf("pds: #sync event: encode CAR: %w", err)
	}
	ev := &atproto.SyncSubscribeRepos_Sync{
		Did:    string(did),
		Blocks: buf.Bytes(),
		Rev:    rev,
		Time:   syntax.DatetimeFromTime(s.cfg.Now()).String(),
	}
	return s.appendEvent(ctx, did, sequencer.KindSync, ev)
}

func (s *Server) appendEvent(ctx context.Context, did syntax.DID, kind string, ev lexutil.Marshaler) error {
	body, err := lexutil.MarshalCBOR(ev)
	if err != nil {
		return fmt.Errorf("pds: encode #%s event: %w", kind, err)
	}
	if _, err := s.seq.Append(ctx, did, kind, body); err != nil {
		return fmt.Errorf("pds: sequence #%s event of %s: %w", kind, did, err)
	}
	return nil
}

// accountStatus is how an account's state appears in #account events,
// getSession and createSession: active, or inactive with a status.
func accountStatus(acct *store.Account) (active bool, status string) {
	switch {
	case acct == nil:
		return false, statusDeleted
	case acct.Status == store.StatusTakendown:
		return false, string(store.StatusTakendown)
	case acct.Status == store.StatusDeactivated:
		return false, string(store.StatusDeactivated)
	default:
		return true, ""
	}
}
