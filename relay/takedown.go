package relay

import (
	"context"
	"errors"
	"net/http"

	"github.com/welkin-atproto/welkin/api/atproto"
	"github.com/welkin-atproto/welkin/atproto/stream"
	"github.com/welkin-atproto/welkin/atproto/syntax"
	"github.com/welkin-atproto/welkin/relay/store"
)

// Local takedowns. The sync specification lets intermediaries apply
// takedowns of their own ("it is legitimate for intermediary services to
// apply takedowns"); the relay's operator takes an account down and
// restores it with these routes, under the admin's basic auth:
//
//	POST /admin/repos/takedown  {"did": "did:plc:..."}
//	POST /admin/repos/restore   {"did": "did:plc:..."}
//
// Each answers {"did": ..., "active": ..., "status": ...}, the account's
// status at the relay after the change.
//
// A takedown is stored first (an account the relay has not seen yet is
// stored taken down), then announced downstream as #account {active:
// false, status: "takendown"}; asking again announces it again. From then
// on the account's #commit and #sync events are dropped (counted with the
// reason "takendown"), its #account events only update the status its
// host gives, which does not lift the takedown, getRepoStatus and
// listRepos report it taken down, and repository reads answer
// RepoTakendown. Restoring announces the status the host gives (active,
// or its own inactive status). Commits dropped meanwhile leave a gap that
// the next commit reveals, which brings a re-sync (resync.go).
func (s *Server) registerTakedowns(mux *http.ServeMux) {
	mux.HandleFunc("POST /admin/repos/takedown", s.adminRepo(s.takeDown))
	mux.HandleFunc("POST /admin/repos/restore", s.adminRepo(s.restore))
}

type adminRepoRequest struct {
	DID string `json:"did"`
}

type adminRepoResponse struct {
	DID    string `json:"did"`
	Active bool   `json:"active"`
	Status string `json:"status"`
}

// adminRepo checks basic auth and the body {"did": ...} and answers with
// the account that change returns.
func (s *Server) adminRepo(change func(context.Context, syntax.DID) (store.Account, error)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if !s.adminAuthorized(w, r) {
			return
		}
		var req adminRepoRequest
		if err := decodeAdminBody(r, &req); err != nil {
			writeJSON(w, http.StatusBadRequest, adminError{"InvalidRequest", "body must be JSON {\"did\": ...}: " + err.Error()})
			return
		}
		did, err := syntax.ParseDID(req.DID)
		if err != nil {
			writeJSON(w, http.StatusBadRequest, adminError{"InvalidRequest", "did: " + err.Error()})
			return
		}
		acct, err := change(r.Context(), did)
		if errors.Is(err, errUnknownRepo) {
			writeJSON(w, http.StatusNotFound, adminError{"RepoNotFound", "unknown account: " + string(did)})
			return
		}
		if err != nil {
			s.log.Error("admin: changing an account's takedown", "did", did, "err", err)
			writeJSON(w, http.StatusInternalServerError, adminError{"InternalServerError", "changing the account failed"})
			return
		}
		writeJSON(w, http.StatusOK, adminRepoResponse{DID: string(did), Active: acct.Active(), Status: acct.HostingStatus()})
	}
}

// errUnknownRepo: restoring an account the relay does not hold.
var errUnknownRepo = errors.New("relay: unknown account")

// takeDown takes did down at this relay and announces it.
func (s *Server) takeDown(ctx context.Context, did syntax.DID) (store.Account, error) {
	unlock := s.locks.lock(did)
	defer unlock()
	acct, _, err := s.account(ctx, did)
	if err != nil {
		return acct, err
	}
	acct.TakenDown = true
	// Stored before it is announced: a crash in between must not leave
	// the account served after consumers were told it is taken down.
	if err := s.st.PutAccount(ctx, acct); err != nil {
		return acct, err
	}
	if err := s.announceStatus(ctx, acct); err != nil {
		return acct, err
	}
	s.metrics.takedowns.WithLabelValues("takedown").Inc()
	s.log.Info("admin: account taken down", "did", did)
	return acct, nil
}

// restore lifts the local takedown of did and announces the status its
// host gives. An account that is not taken down is left as it is.
func (s *Server) restore(ctx context.Context, did syntax.DID) (store.Account, error) {
	unlock := s.locks.lock(did)
	defer unlock()
	acct, found, err := s.account(ctx, did)
	if err != nil {
		return acct, err
	}
	if !found {
		return acct, errUnknownRepo
	}
	if !acct.TakenDown {
		return acct, nil
	}
	acct.TakenDown = false
	if err := s.announceStatus(ctx, acct); err != nil {
		return acct, err
	}
	if acct.Desync && acct.Active() {
		s.scheduleResync(acct, "", true)
	}
	s.metrics.takedowns.WithLabelValues("restore").Inc()
	s.log.Info("admin: account restored", "did", did, "status", acct.HostingStatus())
	return acct, nil
}

// announceStatus emits the account's status at the relay as an #account
// event, storing acct with it.
func (s *Server) announceStatus(ctx context.Context, acct store.Account) error {
	ev := &atproto.SyncSubscribeRepos_Account{
		Did:    string(acct.DID),
		Active: acct.Active(),
		Time:   syntax.DatetimeFromTime(s.cfg.Now()).String(),
	}
	if !acct.Active() {
		st := acct.HostingStatus()
		ev.Status = &st
	}
	_, err := s.seq.submit(ctx, acct.DID, &acct, func(seq int64) ([]byte, error) {
		ev.Seq = seq
		return stream.EncodeFrame("#account", ev)
	})
	return err
}
