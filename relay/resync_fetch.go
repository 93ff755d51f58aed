package relay

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"time"

	"github.com/welkin-atproto/welkin/api/atproto"
	"github.com/welkin-atproto/welkin/atproto/car"
	"github.com/welkin-atproto/welkin/atproto/data"
	"github.com/welkin-atproto/welkin/atproto/repo"
	"github.com/welkin-atproto/welkin/atproto/stream"
	"github.com/welkin-atproto/welkin/atproto/syntax"
	"github.com/welkin-atproto/welkin/relay/store"
	"github.com/welkin-atproto/welkin/relay/verify"
)

// resyncTimeout bounds one getRepo request, the download included.
const resyncTimeout = 3 * time.Minute

// fetchedRepo is a repository fetched and verified in full.
type fetchedRepo struct {
	rev         syntax.TID
	commitCID   data.CID
	commitBlock []byte
	// endpoint is the PDS it came from.
	endpoint string
}

// errResyncStale is returned when the fetched repository is older than
// the account's state.
var errResyncStale = errors.New("the repository is older than the relay's state")

// resyncOnce is the resyncRun of the relay: one attempt at
// re-synchronizing j's account.
func (s *Server) resyncOnce(ctx context.Context, j *resyncJob) (string, bool) {
	log := s.log.With("did", j.did, "attempt", j.attempt+1)
	acct, found, err := s.account(ctx, j.did)
	if err != nil {
		log.Error("re-sync: reading the account", "err", err)
		return resyncError, true
	}
	if !found || !acct.Desync || !acct.Active() {
		return resyncSkipped, false
	}
	id, err := s.resolve(ctx, j.did, true)
	if err != nil {
		log.Warn("re-sync: resolving the identity", "err", err)
		return resyncFetchFailed, true
	}
	fr, err := s.fetchRepo(ctx, j.did, id)
	if err != nil {
		var ve *repoError
		if errors.As(err, &ve) {
			log.Warn("re-sync: the repository does not verify", "err", err)
			return resyncInvalid, true
		}
		log.Warn("re-sync: fetching the repository", "err", err)
		return resyncFetchFailed, true
	}
	outcome, err := s.applyResync(ctx, j, id, fr)
	switch {
	case errors.Is(err, errResyncStale):
		log.Warn("re-sync: refused", "rev", fr.rev, "err", err)
		return resyncStale, true
	case outcome == resyncInvalid:
		log.Warn("re-sync: the repository's commit does not verify", "err", err)
		return outcome, true
	case err != nil:
		log.Error("re-sync: storing the result", "err", err)
		return resyncError, true
	}
	log.Info("re-sync done", "outcome", outcome, "rev", fr.rev)
	return outcome, false
}

// repoError is a repository that was fetched but did not verify.
type repoError struct{ err error }

func (e *repoError) Error() string { return e.err.Error() }
func (e *repoError) Unwrap() error { return e.err }

// fetchRepo downloads did's repository from the PDS its identity names,
// with com.atproto.sync.getRepo, and verifies it in full as it reads:
// every block against its CID, the commit signed by the identity's key
// for did, the tree valid and complete with every record present
// (repo.ImportCAR), within Config.MaxRepoSize.
func (s *Server) fetchRepo(ctx context.Context, did syntax.DID, id verify.Identity) (*fetchedRepo, error) {
	ep, err := id.PDSEndpoint()
	if err != nil {
		return nil, fmt.Errorf("no PDS endpoint: %w", err)
	}
	u, err := url.Parse(ep)
	if err != nil || u.Host == "" || u.User != nil || !(u.Scheme == "https" || u.Scheme == "http" && s.cfg.AllowInsecureHosts) {
		return nil, fmt.Errorf("PDS endpoint %q is not an https URL", ep)
	}
	key, err := id.SigningKey()
	if err != nil || key == nil {
		return nil, &repoError{fmt.Errorf("no signing key: %v", err)}
	}
	ctx, cancel := context.WithTimeout(ctx, resyncTimeout)
	defer cancel()
	q := url.Values{"did": {string(did)}}
	target := u.JoinPath("/xrpc/" + atproto.SyncGetRepoNSID)
	target.RawQuery = q.Encode()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, target.String(), nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Accept", "application/vnd.ipld.car")
	resp, err := s.resyncHTTP.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		msg, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
		return nil, fmt.Errorf("getRepo from %s: status %d: %s", u.Host, resp.StatusCode, bytes.TrimSpace(msg))
	}
	if resp.ContentLength > s.cfg.MaxRepoSize {
		return nil, &repoError{fmt.Errorf("repository of %d bytes is larger than the limit of %d", resp.ContentLength, s.cfg.MaxRepoSize)}
	}
	bs := repo.NewMemBlockStore()
	res, err := repo.ImportCAR(ctx, resp.Body, bs, repo.ImportOptions{
		DID:       did,
		PublicKey: key,
		Limits:    car.Limits{MaxTotalSize: s.cfg.MaxRepoSize},
	})
	if err != nil {
		if ctx.Err() != nil {
			return nil, err
		}
		return nil, &repoError{err}
	}
	block, err := bs.GetBlock(ctx, res.CommitCID)
	if err != nil {
		return nil, &repoError{err}
	}
	return &fetchedRepo{rev: res.Commit.Rev, commitCID: res.CommitCID, commitBlock: block, endpoint: ep}, nil
}

// syncEvent builds the #sync event announcing fr: its blocks are a CAR
// holding just the signed commit, as the sync specification has it.
func syncEvent(did syntax.DID, fr *fetchedRepo, now time.Time) (*atproto.SyncSubscribeRepos_Sync, error) {
	var buf bytes.Buffer
	if err := car.WriteAll(&buf, []data.CID{fr.commitCID}, map[data.CID][]byte{fr.commitCID: fr.commitBlock}); err != nil {
		return nil, err
	}
	return &atproto.SyncSubscribeRepos_Sync{
		Did:    string(did),
		Rev:    string(fr.rev),
		Blocks: buf.Bytes(),
		Time:   syntax.DatetimeFromTime(now).String(),
	}, nil
}

// applyResync makes a fetched repository the account's state, under the
// account's lock and against its state then: a repository older than the
// state is refused (errResyncStale), one at the state's own commit only
// clears the flag, and a newer one is checked as any #sync event is
// (verify.VerifySync: host, status, rev, signature) and emitted as one,
// together with the new state. When commits newer than the fetched one
// were dropped meanwhile, the account stays desynchronized and the job
// runs again.
func (s *Server) applyResync(ctx context.Context, j *resyncJob, id verify.Identity, fr *fetchedRepo) (string, error) {
	unlock := s.locks.lock(j.did)
	defer unlock()
	acct, found, err := s.account(ctx, j.did)
	if err != nil {
		return resyncError, err
	}
	if !found || !acct.Desync || !acct.Active() {
		return resyncSkipped, nil
	}
	switch {
	case acct.Rev != "" && fr.rev < syntax.TID(acct.Rev):
		return resyncStale, fmt.Errorf("%w: rev %s, the relay has %s", errResyncStale, fr.rev, acct.Rev)
	case acct.Rev != "" && fr.rev == syntax.TID(acct.Rev):
		if acct.Commit != fr.commitCID.String() {
			return resyncStale, fmt.Errorf("%w: commit %s at rev %s, the relay has %s", errResyncStale, fr.commitCID, fr.rev, acct.Commit)
		}
		acct.Desync = s.resync.droppedSince(j) > fr.rev
		return resyncUnchanged, s.st.PutAccount(ctx, acct)
	}
	ev, err := syncEvent(j.did, fr, s.cfg.Now())
	if err != nil {
		return resyncError, err
	}
	body, err := data.MarshalCBOR(ev)
	if err != nil {
		return resyncError, err
	}
	sy, reason, err := verify.ParseSync(body, &s.verifyOpts)
	if err != nil {
		return resyncInvalid, fmt.Errorf("%s: %w", reason, err)
	}
	v := verify.VerifySync(sy, fr.endpoint, id, state(acct), &s.verifyOpts)
	if !v.OK {
		return resyncInvalid, fmt.Errorf("%s: %w", v.Reason, v.Err)
	}
	next := withState(acct, v.NewState)
	next.Desync = s.resync.droppedSince(j) > fr.rev
	if _, err := s.seq.submit(ctx, j.did, &next, func(seq int64) ([]byte, error) {
		ev.Seq = seq
		return stream.EncodeFrame("#sync", ev)
	}); err != nil {
		return resyncError, err
	}
	return resyncSynced, nil
}

// startResync starts the re-sync queue's workers, stopped by Close.
func (s *Server) startResync() {
	s.resync = newResyncer(s.resyncOnce, s.cfg.ResyncWorkers, s.cfg.Now)
	s.resync.count = func(o string) { s.metrics.resyncs.WithLabelValues(o).Inc() }
	s.resync.queued = func(n int) { s.metrics.pending.Set(float64(n)) }
	s.resyncDone = make(chan struct{})
	go func() {
		defer close(s.resyncDone)
		s.resync.loop(s.bgctx)
	}()
}

// scheduleResync queues did for a re-sync (resync.go), keyed by the host
// its events come from.
func (s *Server) scheduleResync(acct store.Account, dropped syntax.TID, force bool) {
	s.resync.schedule(acct.DID, acct.Host, dropped, force)
}

// seedResyncs queues every account marked desynchronized, on start.
func (s *Server) seedResyncs(ctx context.Context) error {
	cursor := ""
	for {
		accts, next, err := s.st.ListDesynchronized(ctx, cursor, store.MaxListLimit)
		if err != nil {
			return err
		}
		for _, a := range accts {
			if a.Active() {
				s.scheduleResync(a, "", true)
			}
		}
		if next == "" {
			return nil
		}
		cursor = next
	}
}
