package relay

import (
	"context"
	"errors"
	"fmt"
	"log/slog"

	"sync/atomic"
	"time"

	"github.com/welkin-atproto/welkin/api/atproto"
	"github.com/welkin-atproto/welkin/atproto/data"
	"github.com/welkin-atproto/welkin/atproto/identity"
	"github.com/welkin-atproto/welkin/atproto/stream"
	"github.com/welkin-atproto/welkin/atproto/syntax"
	"github.com/welkin-atproto/welkin/relay/store"
	"github.com/welkin-atproto/welkin/relay/verify"
)

// rejectLogsPerMinute bounds the rejection log records of one host.
const rejectLogsPerMinute = 20

// subscriber consumes one upstream host's stream.
type subscriber struct {
	s    *Server
	host hostAddr
	log  *slog.Logger

	cancel context.CancelFunc
	done   chan struct{}

	// Counts since the last save, and the latest handled seq.
	accepted, rejected atomic.Int64
	cursor             atomic.Int64
	dirty              chan struct{}
	logs               logLimiter
	// state holds the host's limits (its rate limiter among them),
	// behaviour, rejections and connection.
	state   *hostState
	backoff *backoff
}

// startHost starts a subscriber for h unless one runs or h is blocked.
func (s *Server) startHost(h store.Host) {
	if h.Status == store.HostBlocked {
		return
	}
	addr := hostAddr{Name: h.Hostname, NoTLS: h.NoTLS}
	s.subsMu.Lock()
	defer s.subsMu.Unlock()
	if s.closed || s.subs[h.Hostname] != nil {
		return
	}
	ctx, cancel := context.WithCancel(s.bgctx)
	sub := &subscriber{s: s, host: addr, log: s.log.With("host", h.Hostname), cancel: cancel,
		done: make(chan struct{}), dirty: make(chan struct{}, 1),
		logs: logLimiter{n: rejectLogsPerMinute, period: time.Minute}, backoff: newBackoff()}
	sub.state = s.syncHost(h)
	sub.cursor.Store(h.Cursor)
	s.subs[h.Hostname] = sub
	go sub.run(ctx)
}

// stopHost stops the host's subscriber, if any, and waits for it.
func (s *Server) stopHost(hostname string) {
	s.subsMu.Lock()
	sub := s.subs[hostname]
	delete(s.subs, hostname)
	s.subsMu.Unlock()
	if sub != nil {
		sub.cancel()
		<-sub.done
	}
}

func (sub *subscriber) run(ctx context.Context) {
	defer close(sub.done)
	saverDone := make(chan struct{})
	go func() {
		defer close(saverDone)
		sub.saveLoop(ctx)
	}()
	defer func() {
		<-saverDone
		sub.save() // the last progress, after every handler returned
	}()
	var upAt time.Time // when the current connection came up
	client := watchUpgrades(sub.s.wsClient, func() {
		upAt = sub.s.cfg.Now()
		sub.state.connected(upAt)
	})
	for ctx.Err() == nil {
		cursor := sub.cursor.Load()
		sub.log.Info("subscribing", "url", sub.host.streamURL(), "cursor", cursor)
		sub.state.dialing()
		upAt = time.Time{}
		// One subscription per connection: reconnecting is this loop's
		// business, with the backoff and the state the status page shows.
		connCtx, endConn := context.WithCancel(ctx)
		var failure error
		err := stream.Subscribe(connCtx, sub.host.streamURL(), cursor, sub.handle, &stream.SubscribeOptions{
			OnCursor: func(seq int64) {
				sub.cursor.Store(seq)
				sub.markDirty()
			},
			OnError: func(err error) {
				failure = err
				endConn()
				if reason := frameFault(err); reason != "" {
					// A frame the host sent broke the connection.
					sub.reject("frame", reason, "", 0, err)
				}
			},
			Workers:    sub.s.cfg.Workers,
			HTTPClient: client,
		})
		endConn()
		now := sub.s.cfg.Now()
		if ctx.Err() != nil {
			sub.state.disconnected(now, nil, 0, time.Time{})
			return
		}
		if errors.Is(err, stream.ErrFutureCursor) {
			// The upstream's sequence went back (its log was reset):
			// start over from what it retains. Events already relayed
			// come again and are refused as duplicate revs.
			sub.log.Warn("upstream says the saved cursor is in the future; restarting from its oldest event", "cursor", cursor)
			sub.state.disconnected(now, err, 0, now)
			sub.cursor.Store(0)
			if err := sub.s.st.ResetHostCursor(ctx, sub.host.Name, 0); err != nil {
				sub.log.Error("resetting the host's cursor", "err", err)
			}
			continue
		}
		if failure == nil {
			// The handler failed: a store or log error of the relay,
			// not a bad event. Start again from the saved cursor.
			failure = err
		}
		var up time.Duration
		if !upAt.IsZero() {
			up = now.Sub(upAt)
		}
		delay := sub.backoff.next(up)
		sub.state.disconnected(now, failure, sub.backoff.failures, now.Add(delay))
		sub.log.Warn("upstream connection ended; reconnecting", "err", failure, "up", up, "delay", delay, "failures", sub.backoff.failures)
		t := time.NewTimer(delay)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C:
		}
	}
}

func (sub *subscriber) markDirty() {
	select {
	case sub.dirty <- struct{}{}:
	default:
	}
}

// saveLoop writes the host's progress whenever it changed, one write at a
// time, so a burst of events costs one write.
func (sub *subscriber) saveLoop(ctx context.Context) {
	tick := time.NewTicker(policyInterval)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-sub.dirty:
			sub.save()
		case <-tick.C:
			sub.state.recompute(sub.s.policy, sub.s.cfg.Now())
		}
	}
}

func (sub *subscriber) save() {
	acc, rej := sub.accepted.Swap(0), sub.rejected.Swap(0)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := sub.s.st.SaveHostProgress(ctx, sub.host.Name, sub.cursor.Load(), acc, rej); err != nil {
		sub.log.Error("saving the host's cursor", "err", err)
		sub.accepted.Add(acc)
		sub.rejected.Add(rej)
	}
}

// handle handles one upstream message. Bad events are counted and
// dropped; only failures of the relay itself (store, log) return errors.
func (sub *subscriber) handle(ctx context.Context, m stream.Message) error {
	switch m.Header.T {
	case "#commit", "#sync", "#identity", "#account":
		if !sub.state.bucket.allow(sub.s.cfg.Now()) {
			sub.reject(m.Header.T, reasonRateLimited, "", m.Seq, errors.New("the host is over its event rate limit"))
			return nil
		}
	}
	switch m.Header.T {
	case "#commit":
		return sub.handleCommit(ctx, m)
	case "#sync":
		return sub.handleSync(ctx, m)
	case "#identity":
		return sub.handleIdentity(ctx, m)
	case "#account":
		return sub.handleAccount(ctx, m)
	case "#info":
		name, _, _ := stream.BodyString(m.Body, "name")
		sub.log.Info("upstream info message", "name", name)
		return nil
	default:
		// Unknown message types are skipped, as the event-stream
		// specification asks of consumers.
		return nil
	}
}

// reject counts a refused event, records it for the status page and logs
// it at a bounded rate.
func (sub *subscriber) reject(typ, reason string, did syntax.DID, seq int64, err error) {
	if verify.Reason(reason).Ignorable() {
		// A replay of what was already accepted (PDSs send a #sync
		// repeating an account's first commit, for one): ignored, as
		// the sync specification says, not held against the host.
		sub.s.metrics.ignored(typ, reason)
		sub.state.ignored.Add(1)
		return
	}
	sub.rejected.Add(1)
	sub.s.metrics.rejected(typ, reason)
	detail := ""
	if err != nil {
		detail = err.Error()
	}
	sub.state.rejected(sub.s.cfg.Now(), typ, reason, string(did), seq, detail)
	if reason == reasonDesynchronized || reason == reasonTakendown {
		return
	}
	if ok, suppressed := sub.logs.allow(time.Now()); ok {
		sub.log.Warn("event rejected", "type", typ, "reason", reason, "did", did, "seq", seq, "err", err, "suppressed", suppressed)
	}
}

func (sub *subscriber) accept(ctx context.Context, typ string, reason verify.Reason) {
	sub.accepted.Add(1)
	sub.state.accepted.Add(1)
	sub.s.metrics.accepted(typ, string(reason))
	if !sub.state.seen.Load() && sub.state.markSeen(sub.s.cfg.Now()) {
		// The host's first accepted event: its age starts now.
		if err := sub.s.st.MarkHostSeen(ctx, sub.host.Name, sub.s.cfg.Now()); err != nil {
			sub.log.Error("recording the host's first event", "err", err)
		}
		sub.state.recompute(sub.s.policy, sub.s.cfg.Now())
	}
}

// account returns the stored state of did; found is false for an account
// the relay has not seen.
func (s *Server) account(ctx context.Context, did syntax.DID) (acct store.Account, found bool, err error) {
	acct, err = s.st.Account(ctx, did)
	if errors.Is(err, store.ErrNotFound) {
		return store.Account{DID: did}, false, nil
	}
	return acct, err == nil, err
}

// admit checks that a host may bring another account, did, and reserves
// its place until release is called, after the event is handled (and the
// account stored): new accounts of one host are handled in parallel, and
// each must see the others. release is never nil.
func (sub *subscriber) admit(ctx context.Context, did syntax.DID) (ok bool, release func(), err error) {
	return sub.state.admit(did, func() (int64, error) { return sub.s.st.AccountCount(ctx, sub.host.Name) })
}

// errAccountLimit is the detail of a reasonAccountLimit rejection.
func (sub *subscriber) errAccountLimit() error {
	l := sub.state.currentLimits()
	return fmt.Errorf("the host has reached its limit of %s (%s)", countOf(l.Accounts, "account"), l.AccountsReason)
}

// resolve returns the identity of did, as verify.Identity (nil on failure,
// never a typed nil) and the error.
func (s *Server) resolve(ctx context.Context, did syntax.DID, refresh bool) (verify.Identity, error) {
	var (
		id  *identity.Identity
		err error
	)
	if refresh {
		id, err = s.resolver.RefreshDID(ctx, did)
	} else {
		id, err = s.resolver.ResolveDID(ctx, did)
	}
	if err != nil || id == nil {
		return nil, err
	}
	return id, nil
}

// state is the verify view of a stored account.
func state(a store.Account) verify.AccountState {
	st := verify.AccountState{Rev: syntax.TID(a.Rev), Desync: a.Desync}
	if !a.Active() {
		st.Status = a.HostingStatus()
	}
	if c, err := data.ParseCID(a.Data); err == nil {
		st.Data = &c
	}
	if c, err := data.ParseCID(a.Commit); err == nil {
		st.Commit = &c
	}
	return st
}

// withState writes a verified state into a stored account.
func withState(a store.Account, st verify.AccountState) store.Account {
	a.Rev, a.Desync = string(st.Rev), st.Desync
	a.Data, a.Commit = "", ""
	if st.Data != nil {
		a.Data = st.Data.String()
	}
	if st.Commit != nil {
		a.Commit = st.Commit.String()
	}
	return a
}

// prepare loads the account of a #commit or #sync and applies the checks
// that come before verification: inactive accounts are dropped (taken
// down here, or not active at their host) and a new account must fit the
// host's limit. ok is false when the event was rejected (and counted).
// The caller holds the account's lock, and calls release once the event
// is handled.
func (sub *subscriber) prepare(ctx context.Context, typ string, did syntax.DID, seq int64) (acct store.Account, ok bool, release func(), err error) {
	release = func() {}
	acct, found, err := sub.s.account(ctx, did)
	if err != nil {
		return acct, false, release, err
	}
	if found && acct.TakenDown {
		sub.reject(typ, reasonTakendown, did, seq, errors.New("account is taken down at this relay"))
		return acct, false, release, nil
	}
	if found && !acct.Active() {
		sub.reject(typ, string(verify.ReasonInactiveAccount), did, seq, fmt.Errorf("account is %s", acct.Status))
		return acct, false, release, nil
	}
	if !found || acct.Host != sub.host.Name {
		ok, release, err = sub.admit(ctx, did)
		if err != nil {
			return acct, false, release, err
		}
		if !ok {
			sub.reject(typ, reasonAccountLimit, did, seq, sub.errAccountLimit())
			return acct, false, release, nil
		}
	}
	return acct, true, release, nil
}

// lockAndVerify takes the lock of did, applies prepare's checks and runs
// verification with the account's state: the steps #commit and #sync
// share. A refused event is counted, and its verdict is not OK (with no
// Reason when prepare refused it). done, to be called once
// the event is handled, releases what was taken, even on error.
func (sub *subscriber) lockAndVerify(ctx context.Context, typ string, did syntax.DID, seq int64,
	run func(verify.Identity, verify.AccountState) verify.Verdict) (acct store.Account, v verify.Verdict, done func(), err error) {
	unlock := sub.s.locks.lock(did)
	acct, ok, release, err := sub.prepare(ctx, typ, did, seq)
	done = func() {
		release()
		unlock()
	}
	if err != nil || !ok {
		return acct, verify.Verdict{}, done, err
	}
	v = sub.check(ctx, did, func(id verify.Identity) verify.Verdict { return run(id, state(acct)) })
	if !v.OK {
		sub.reject(typ, string(v.Reason), did, seq, v.Err)
	}
	return acct, v, done, nil
}

// check runs verification, and once more with a refreshed identity when
// the outcome may depend on stale identity data.
func (sub *subscriber) check(ctx context.Context, did syntax.DID, run func(verify.Identity) verify.Verdict) verify.Verdict {
	id, _ := sub.s.resolve(ctx, did, false)
	v := run(id)
	if !v.OK && v.Reason.RefreshIdentity() {
		if id2, err := sub.s.resolve(ctx, did, true); err == nil {
			v = run(id2)
		}
	}
	return v
}

// handleCommit handles a #commit. The chain of an account's commits is
// checked (verify.VerifyCommit); when it breaks, the commit is dropped,
// the account marked desynchronized and queued for a re-sync, which
// fetches its repository and emits a #sync. Until then its commits are
// checked and dropped, as the sync specification asks of a repository out
// of sync ("Any #commit or #sync messages received for a repo which is in
// desynchronized state are ignored"): the #sync, with a rev above theirs,
// gives consumers the state they would have reached. A #sync from the
// host is accepted and ends the desynchronization (handleSync).
func (sub *subscriber) handleCommit(ctx context.Context, m stream.Message) error {
	const typ = "#commit"
	c, reason, err := verify.ParseCommit(m.Body, &sub.s.verifyOpts)
	if err != nil {
		sub.reject(typ, string(reason), "", m.Seq, err)
		return nil
	}
	did := c.DID()
	acct, v, done, err := sub.lockAndVerify(ctx, typ, did, m.Seq, func(id verify.Identity, st verify.AccountState) verify.Verdict {
		return verify.VerifyCommit(c, sub.host.httpURL(), id, st, &sub.s.verifyOpts)
	})
	defer done()
	if err != nil {
		return err
	}
	if !v.OK {
		return sub.afterReject(ctx, acct, v.Reason, c.Rev())
	}
	if acct.Desync || v.Resync {
		why := reasonDesynchronized
		if !acct.Desync {
			why = string(v.Reason)
		}
		sub.reject(typ, why, did, m.Seq, v.Err)
		return sub.desync(ctx, acct, c.Rev())
	}
	ev := *c.Event
	next := withState(acct, v.NewState)
	next.Host, next.Status = sub.host.Name, store.StatusActive
	return sub.emit(ctx, typ, did, v.Reason, &next, func(seq int64) ([]byte, error) {
		ev.Seq = seq
		return stream.EncodeFrame(typ, &ev)
	})
}

// afterReject follows up a rejected #commit of acct. A commit that passed
// the signature check but cannot be applied (its ops do not invert to its
// prevData, or it has none) is authentic: the host has moved past what
// the relay holds, so the account is out of sync. A duplicate rev passed
// the host check before the rev check, so the host may adopt an account
// that recovery restored without one (recover.go).
func (sub *subscriber) afterReject(ctx context.Context, acct store.Account, reason verify.Reason, rev syntax.TID) error {
	switch reason {
	case verify.ReasonInversionMismatch, verify.ReasonMissingPrevData:
		if acct.Rev != "" {
			return sub.desync(ctx, acct, rev)
		}
	case verify.ReasonDuplicateRev:
		if acct.Host == "" && acct.Rev != "" {
			acct.Host = sub.host.Name
			return sub.s.st.PutAccount(ctx, acct)
		}
	}
	return nil
}

// desync marks acct desynchronized (unless it is already) and queues it
// for a re-sync; rev is the commit just dropped. The caller holds the
// account's lock.
func (sub *subscriber) desync(ctx context.Context, acct store.Account, rev syntax.TID) error {
	if !acct.Desync || acct.Host == "" {
		acct.Desync = true
		if acct.Host == "" {
			acct.Host = sub.host.Name
		}
		if err := sub.s.st.PutAccount(ctx, acct); err != nil {
			return err
		}
	}
	sub.s.scheduleResync(acct, rev, false)
	return nil
}

func (sub *subscriber) handleSync(ctx context.Context, m stream.Message) error {
	const typ = "#sync"
	sy, reason, err := verify.ParseSync(m.Body, &sub.s.verifyOpts)
	if err != nil {
		sub.reject(typ, string(reason), "", m.Seq, err)
		return nil
	}
	did := sy.DID()
	acct, v, done, err := sub.lockAndVerify(ctx, typ, did, m.Seq, func(id verify.Identity, st verify.AccountState) verify.Verdict {
		return verify.VerifySync(sy, sub.host.httpURL(), id, st, &sub.s.verifyOpts)
	})
	defer done()
	if err != nil || !v.OK {
		return err
	}
	ev := *sy.Event
	next := withState(acct, v.NewState)
	next.Host, next.Status = sub.host.Name, store.StatusActive
	return sub.emit(ctx, typ, did, verify.ReasonNone, &next, func(seq int64) ([]byte, error) {
		ev.Seq = seq
		return stream.EncodeFrame(typ, &ev)
	})
}

// checkHostOf checks that this host is the PDS of did, with the cached
// identity (fetched afresh when fresh is set), and once more with a
// refreshed one if the check fails.
func (sub *subscriber) checkHostOf(ctx context.Context, did syntax.DID, fresh bool) (string, error) {
	if fresh {
		sub.s.resolver.PurgeDID(did)
	}
	var (
		reason verify.Reason
		err    error
	)
	for attempt := range 2 {
		var id verify.Identity
		id, err = sub.s.resolve(ctx, did, attempt > 0)
		if err != nil {
			reason, err = verify.ReasonNoIdentity, fmt.Errorf("resolving %s: %w", did, err)
		} else if reason, err = verify.CheckHost(sub.host.httpURL(), id); err == nil {
			return "", nil
		}
		if fresh {
			break
		}
	}
	return string(reason), err
}

func (sub *subscriber) handleIdentity(ctx context.Context, m stream.Message) error {
	const typ = "#identity"
	var ev atproto.SyncSubscribeRepos_Identity
	if err := data.UnmarshalCBORInto(m.Body, &ev); err != nil {
		sub.reject(typ, reasonBadBody, "", m.Seq, err)
		return nil
	}
	did, err := syntax.ParseDID(ev.Did)
	if err != nil {
		sub.reject(typ, string(verify.ReasonBadDID), "", m.Seq, err)
		return nil
	}
	// The identity changed: forget what is cached whatever comes next.
	sub.s.resolver.Purge(ctx, syntax.AtIdentifier(did))
	if reason, err := sub.checkHostOf(ctx, did, true); err != nil {
		sub.reject(typ, reason, did, m.Seq, err)
		return nil
	}
	unlock := sub.s.locks.lock(did)
	defer unlock()
	acct, found, err := sub.s.account(ctx, did)
	if err != nil {
		return err
	}
	if !found || acct.Host != sub.host.Name {
		ok, release, err := sub.admit(ctx, did)
		defer release()
		if err != nil {
			return err
		} else if !ok {
			sub.reject(typ, reasonAccountLimit, did, m.Seq, sub.errAccountLimit())
			return nil
		}
	}
	var next *store.Account
	if !found || acct.Host != sub.host.Name {
		acct.Host = sub.host.Name
		next = &acct
	}
	return sub.emit(ctx, typ, did, verify.ReasonNone, next, func(seq int64) ([]byte, error) {
		ev.Seq = seq
		return stream.EncodeFrame(typ, &ev)
	})
}

func (sub *subscriber) handleAccount(ctx context.Context, m stream.Message) error {
	const typ = "#account"
	var ev atproto.SyncSubscribeRepos_Account
	if err := data.UnmarshalCBORInto(m.Body, &ev); err != nil {
		sub.reject(typ, reasonBadBody, "", m.Seq, err)
		return nil
	}
	did, err := syntax.ParseDID(ev.Did)
	if err != nil {
		sub.reject(typ, string(verify.ReasonBadDID), "", m.Seq, err)
		return nil
	}
	if reason, err := sub.checkHostOf(ctx, did, false); err != nil {
		sub.reject(typ, reason, did, m.Seq, err)
		return nil
	}
	unlock := sub.s.locks.lock(did)
	defer unlock()
	acct, found, err := sub.s.account(ctx, did)
	if err != nil {
		return err
	}
	if !found || acct.Host != sub.host.Name {
		ok, release, err := sub.admit(ctx, did)
		defer release()
		if err != nil {
			return err
		} else if !ok {
			sub.reject(typ, reasonAccountLimit, did, m.Seq, sub.errAccountLimit())
			return nil
		}
	}
	status := accountStatus(&ev)
	acct.Host, acct.Status = sub.host.Name, status
	if acct.TakenDown {
		// The host's word is kept for when the takedown is lifted, and
		// not passed on: downstream, the account stays taken down.
		sub.reject(typ, reasonTakendown, did, m.Seq, errors.New("account is taken down at this relay"))
		return sub.s.st.PutAccount(ctx, acct)
	}
	return sub.emit(ctx, typ, did, verify.ReasonNone, &acct, func(seq int64) ([]byte, error) {
		ev.Seq = seq
		return stream.EncodeFrame(typ, &ev)
	})
}

// accountStatus is the hosting status an #account event gives.
func accountStatus(ev *atproto.SyncSubscribeRepos_Account) string {
	if ev.Active {
		return store.StatusActive
	}
	if ev.Status != nil && *ev.Status != "" && *ev.Status != store.StatusActive {
		return *ev.Status
	}
	return store.StatusDeactivated
}

// emit sequences an accepted event into the log, with acct, the
// account's new state (nil if unchanged), and counts it.
func (sub *subscriber) emit(ctx context.Context, typ string, did syntax.DID, reason verify.Reason, acct *store.Account, encode encodeFunc) error {
	if _, err := sub.s.seq.submit(ctx, did, acct, encode); err != nil {
		return fmt.Errorf("relay: sequencing %s of %s from %s: %w", typ, did, sub.host.Name, err)
	}
	sub.accept(ctx, typ, reason)
	return nil
}
