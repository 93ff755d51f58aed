package relay

import (
	"context"
	"math/rand/v2"
	"sync"
	"time"

	"github.com/welkin-atproto/welkin/atproto/syntax"
)

// Re-synchronization: when the chain of an account's commits breaks (a
// since or prevData that is not the last accepted commit's, or an
// authentic commit the relay could not apply), the relay marks the
// account desynchronized and queues it here. A worker fetches the
// repository from the account's PDS (resync_fetch.go), and when it
// verifies, stores its commit as the account's state and announces it
// downstream with a #sync event.
//
// The queue is fair across hosts: at most resyncPerHost fetches run at
// once against one host, hosts take turns, and at most Config.ResyncWorkers
// run in all. A failed attempt is retried after an exponential backoff
// (resyncMinBackoff doubling up to resyncMaxBackoff), resyncMaxAttempts
// times in all; then the account stays desynchronized, and its next
// commit, after resyncCooldown, queues it again.
const (
	resyncPerHost     = 2
	resyncMinBackoff  = time.Second
	resyncMaxBackoff  = 5 * time.Minute
	resyncMaxAttempts = 8
	resyncCooldown    = 10 * time.Minute
)

// Outcomes of one re-synchronization attempt, counted by
// welkin_relay_resyncs_total{outcome}.
const (
	// resyncSynced: the repository verified and was newer; a #sync was
	// emitted.
	resyncSynced = "synced"
	// resyncUnchanged: the repository's commit is the account's state
	// already; the flag was cleared, nothing emitted.
	resyncUnchanged = "unchanged"
	// resyncSkipped: nothing to do: the account is no longer
	// desynchronized (a #sync from its host came first), or not active.
	resyncSkipped = "skipped"
	// resyncStale: the repository is older than the account's state (a
	// rev that would go backwards); refused and retried.
	resyncStale = "stale"
	// resyncFetchFailed: the identity did not resolve, or the PDS did not
	// answer getRepo with a repository; retried.
	resyncFetchFailed = "fetch-failed"
	// resyncInvalid: the repository did not verify (signature, DID, tree,
	// limits); retried.
	resyncInvalid = "invalid-repo"
	// resyncGaveUp: the last attempt failed; the account stays
	// desynchronized.
	resyncGaveUp = "gave-up"
	// resyncError: the relay's own store or log failed; retried.
	resyncError = "error"
)

func resyncOutcomes() []string {
	return []string{resyncSynced, resyncUnchanged, resyncSkipped, resyncStale, resyncFetchFailed, resyncInvalid, resyncGaveUp, resyncError}
}

// resyncJob is one queued account.
type resyncJob struct {
	did     syntax.DID
	host    string // the fairness key: the host the account's events come from
	attempt int    // failed attempts so far
	due     time.Time
	running bool
	// again is set when the account's events were dropped for its
	// desynchronization while the job ran: the job runs once more, and
	// dropped is the highest rev among them.
	again   bool
	dropped syntax.TID
}

// resyncRun makes one attempt at a job and returns its outcome and
// whether to try again later.
type resyncRun func(ctx context.Context, j *resyncJob) (outcome string, retry bool)

type resyncHost struct {
	waiting []*resyncJob
	running int
}

// resyncer is the queue and its workers.
type resyncer struct {
	run     resyncRun
	workers int
	perHost int
	now     func() time.Time
	count   func(outcome string)
	queued  func(n int)

	mu       sync.Mutex
	jobs     map[syntax.DID]*resyncJob
	hosts    map[string]*resyncHost
	order    []string // hosts with waiting jobs, served in turn
	turn     int
	running  int
	cooldown map[syntax.DID]time.Time
	wake     chan struct{}
	wg       sync.WaitGroup
}

func newResyncer(run resyncRun, workers int, now func() time.Time) *resyncer {
	if workers < 1 {
		workers = 1
	}
	if now == nil {
		now = time.Now
	}
	return &resyncer{run: run, workers: workers, perHost: resyncPerHost, now: now,
		count: func(string) {}, queued: func(int) {},
		jobs: map[syntax.DID]*resyncJob{}, hosts: map[string]*resyncHost{},
		cooldown: map[syntax.DID]time.Time{}, wake: make(chan struct{}, 1)}
}

func (r *resyncer) signal() {
	select {
	case r.wake <- struct{}{}:
	default:
	}
}

// schedule queues did, whose events come from host, for a re-sync. rev,
// if set, is the rev of a commit just dropped because the account is
// desynchronized. An account queued already is not queued twice; one
// whose job is running gets one more run after it. force skips the
// cooldown after a job gave up (the operator or the start asks).
func (r *resyncer) schedule(did syntax.DID, host string, rev syntax.TID, force bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if j := r.jobs[did]; j != nil {
		if j.running {
			j.again = true
			if rev > j.dropped {
				j.dropped = rev
			}
		}
		return
	}
	now := r.now()
	if until, ok := r.cooldown[did]; ok {
		if !force && now.Before(until) {
			return
		}
		delete(r.cooldown, did)
	}
	j := &resyncJob{did: did, host: host, due: now}
	r.jobs[did] = j
	r.enqueueLocked(j)
	r.queued(len(r.jobs))
	r.signal()
}

// droppedSince returns the highest rev of the commits dropped while j
// ran.
func (r *resyncer) droppedSince(j *resyncJob) syntax.TID {
	r.mu.Lock()
	defer r.mu.Unlock()
	return j.dropped
}

func (r *resyncer) enqueueLocked(j *resyncJob) {
	h := r.hosts[j.host]
	if h == nil {
		h = &resyncHost{}
		r.hosts[j.host] = h
	}
	if len(h.waiting) == 0 {
		r.order = append(r.order, j.host)
	}
	h.waiting = append(h.waiting, j)
}

// loop starts due jobs until ctx ends, then waits for the running ones.
func (r *resyncer) loop(ctx context.Context) {
	defer r.wg.Wait()
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	for {
		wait := r.dispatch(ctx)
		if !timer.Stop() {
			select {
			case <-timer.C:
			default:
			}
		}
		if wait >= 0 {
			timer.Reset(wait)
		}
		select {
		case <-ctx.Done():
			return
		case <-r.wake:
		case <-timer.C:
		}
	}
}

// dispatch starts the jobs that are due, taking the hosts in turn, as far
// as the limits allow, and returns how long until the next waiting job is
// due (-1 if there is none, or no worker is free).
func (r *resyncer) dispatch(ctx context.Context) time.Duration {
	r.mu.Lock()
	defer r.mu.Unlock()
	now := r.now()
	for _, j := range r.takeDueLocked(now) {
		r.wg.Add(1)
		go func() {
			defer r.wg.Done()
			outcome, retry := r.run(ctx, j)
			r.finish(ctx, j, outcome, retry)
		}()
	}
	if r.running >= r.workers {
		return -1
	}
	next := time.Duration(-1)
	for _, name := range r.order {
		h := r.hosts[name]
		if h.running >= r.perHost {
			continue
		}
		for _, j := range h.waiting {
			if d := max(j.due.Sub(now), 0); next < 0 || d < next {
				next = d
			}
		}
	}
	return next
}

// takeDueLocked marks as running, and returns, the jobs that may start
// now, taking the hosts in turn.
func (r *resyncer) takeDueLocked(now time.Time) []*resyncJob {
	var out []*resyncJob
	for r.running < r.workers {
		j := r.pickLocked(now)
		if j == nil {
			break
		}
		j.running, j.again = true, false
		r.running++
		r.hosts[j.host].running++
		out = append(out, j)
	}
	return out
}

// pickLocked takes the next due job of the next host in turn that may
// run one more.
func (r *resyncer) pickLocked(now time.Time) *resyncJob {
	for range len(r.order) {
		if r.turn >= len(r.order) {
			r.turn = 0
		}
		name := r.order[r.turn]
		h := r.hosts[name]
		r.turn++
		if h.running >= r.perHost {
			continue
		}
		for i, j := range h.waiting {
			if j.due.After(now) {
				continue
			}
			h.waiting = append(h.waiting[:i], h.waiting[i+1:]...)
			if len(h.waiting) == 0 {
				r.removeHostLocked(name)
			}
			return j
		}
	}
	return nil
}

// removeHostLocked takes name out of the turns once it has nothing
// waiting.
func (r *resyncer) removeHostLocked(name string) {
	for i, n := range r.order {
		if n == name {
			r.order = append(r.order[:i], r.order[i+1:]...)
			if r.turn > i {
				r.turn--
			}
			return
		}
	}
}

// finish records the outcome of a run and queues the job again when it
// failed (after its backoff) or events were dropped meanwhile (at once).
func (r *resyncer) finish(ctx context.Context, j *resyncJob, outcome string, retry bool) {
	r.count(outcome)
	r.mu.Lock()
	defer r.mu.Unlock()
	j.running = false
	r.running--
	h := r.hosts[j.host]
	h.running--
	defer r.signal()
	switch {
	case ctx.Err() != nil:
		delete(r.jobs, j.did)
	case retry:
		j.attempt++
		if j.attempt >= resyncMaxAttempts {
			delete(r.jobs, j.did)
			r.cooldown[j.did] = r.now().Add(resyncCooldown)
			r.count(resyncGaveUp)
			break
		}
		j.due = r.now().Add(resyncBackoff(j.attempt))
		r.enqueueLocked(j)
	case j.again:
		j.attempt, j.due, j.dropped = 0, r.now(), ""
		r.enqueueLocked(j)
	default:
		delete(r.jobs, j.did)
	}
	if h.running == 0 && len(h.waiting) == 0 {
		delete(r.hosts, j.host)
	}
	r.queued(len(r.jobs))
}

// resyncBackoff is the pause after the attempt-th failure: doubling from
// resyncMinBackoff, at most resyncMaxBackoff, with jitter of up to a
// quarter so that accounts failing together do not retry together.
func resyncBackoff(attempt int) time.Duration {
	d := resyncMinBackoff
	for i := 1; i < attempt && d < resyncMaxBackoff; i++ {
		d *= 2
	}
	d = min(d, resyncMaxBackoff)
	return d - time.Duration(rand.Int64N(int64(d/4)+1))
}

// pending reports how many accounts are queued or being re-synchronized.
func (r *resyncer) pending() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.jobs)
}
