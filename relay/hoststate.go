package relay

import (
	"sort"
	"sync"
	"sync/atomic"
	"time"
	"unicode/utf8"

	"github.com/welkin-atproto/welkin/atproto/syntax"
	"github.com/welkin-atproto/welkin/relay/store"
	"github.com/welkin-atproto/welkin/relay/verify"
)

// Bounds of what the relay remembers of each host, in memory.
const (
	// recentRejections is how many rejections the status page lists.
	recentRejections = 50
	// rejectionDetail bounds the detail kept with a rejection, in bytes.
	rejectionDetail = 200
	// coalesceWithin: a rejection like the newest one (same type, reason
	// and DID) within this span is counted into it instead of taking a
	// slot, so that a flood does not push out everything else.
	coalesceWithin = time.Minute
	// windowBuckets divide the behaviour window.
	windowBuckets = 24
	// throttledRecently: a host with an event over its rate limit this
	// recently is shown as throttled.
	throttledRecently = 10 * time.Minute
)

// hostState is what the relay knows of a host beyond the store: its
// effective limits, its behaviour over the recent window, its recent
// rejections and its connection. It outlives the host's subscriber (a
// blocked and unblocked host keeps it) but not the process.
type hostState struct {
	name string

	// The hot path reads these without the lock.
	accepted atomic.Int64 // accepted events not yet folded into the window
	ignored  atomic.Int64 // replays ignored since the relay started
	seen     atomic.Bool  // FirstSeen is set
	limits   atomic.Pointer[hostLimits]
	bucket   *tokenBucket

	mu          sync.Mutex
	facts       hostFacts // but Now, Events, Faults and TopFault
	window      [windowBuckets]windowBucket
	reasons     map[string]int64 // rejections by reason since start
	recent      []rejection      // ring of recentRejections, oldest first once full
	next        int              // the ring's next slot
	lastLimited time.Time        // the last event over the rate limit
	conn        connState

	// admitMu serializes account limit checks; pending holds the
	// accounts admitted whose first event is still being handled.
	admitMu sync.Mutex
	pending map[syntax.DID]int
}

// windowBucket counts one hour of a host's events.
type windowBucket struct {
	hour        int64 // Unix hour the counts belong to
	accepted    int64
	faults      int64
	rateLimited int64
	faultsBy    map[string]int64
}

// rejection is one refused event (or several like it, Count).
type rejection struct {
	Time   time.Time `json:"time"`
	Type   string    `json:"type"`
	Reason string    `json:"reason"`
	DID    string    `json:"did,omitempty"`
	Seq    int64     `json:"seq,omitempty"`
	Detail string    `json:"detail,omitempty"`
	Count  int64     `json:"count"`
}

// connState is the state of the connection to the host's stream.
type connState struct {
	Connected bool      `json:"connected"`
	Since     time.Time `json:"since,omitzero"` // connected, or disconnected, since
	// Attempts counts connection attempts, Failures the connections that
	// failed or ended, since the relay started.
	Attempts int64 `json:"attempts"`
	Failures int64 `json:"failures"`
	// Consecutive failures set the backoff; a healthy connection resets it.
	Consecutive int       `json:"consecutiveFailures"`
	LastError   string    `json:"lastError,omitempty"`
	LastErrorAt time.Time `json:"lastErrorAt,omitzero"`
	// NextAttempt is when the next attempt is due while disconnected.
	NextAttempt time.Time `json:"nextAttempt,omitzero"`
}

func newHostState(name string, now time.Time) *hostState {
	return &hostState{name: name, reasons: map[string]int64{}, bucket: &tokenBucket{last: now}, pending: map[syntax.DID]int{}}
}

// hostState returns the state of the named host, created on first use.
func (s *Server) hostState(name string) *hostState {
	s.statesMu.Lock()
	defer s.statesMu.Unlock()
	hs := s.states[name]
	if hs == nil {
		hs = newHostState(name, s.cfg.Now())
		s.states[name] = hs
	}
	return hs
}

// syncHost loads what the store says of h into its state and applies the
// policy again; call it when the stored host changed (limits, trust).
func (s *Server) syncHost(h store.Host) *hostState {
	hs := s.hostState(h.Hostname)
	hs.load(h)
	hs.recompute(s.policy, s.cfg.Now())
	return hs
}

// load takes the stored facts of the host.
func (hs *hostState) load(h store.Host) {
	hs.mu.Lock()
	defer hs.mu.Unlock()
	hs.facts.Trusted = h.Trusted
	hs.facts.AccountLimit, hs.facts.EventRate, hs.facts.EventBurst = h.AccountLimit, h.EventRate, h.EventBurst
	if hs.facts.FirstSeen.IsZero() {
		hs.facts.FirstSeen = h.FirstSeen
	}
	hs.seen.Store(!hs.facts.FirstSeen.IsZero())
}

// markSeen records the first accepted event; it reports whether this
// call did (and the store must be told).
func (hs *hostState) markSeen(now time.Time) bool {
	hs.mu.Lock()
	defer hs.mu.Unlock()
	if !hs.facts.FirstSeen.IsZero() {
		return false
	}
	hs.facts.FirstSeen = now
	hs.seen.Store(true)
	return true
}

// bucketAt returns the window bucket of now's hour, emptied if it held an
// older hour. Call with mu held.
func (hs *hostState) bucketAt(now time.Time) *windowBucket {
	hour := now.Unix() / 3600
	b := &hs.window[int(hour%windowBuckets+windowBuckets)%windowBuckets]
	if b.hour != hour {
		*b = windowBucket{hour: hour}
	}
	return b
}

// fold moves the accepted count into the window. Call with mu held.
func (hs *hostState) fold(now time.Time) {
	if n := hs.accepted.Swap(0); n > 0 {
		hs.bucketAt(now).accepted += n
	}
}

// windowTotals sums the window: events (accepted and faults), faults, the
// most common fault, and events over the rate limit. Call with mu held.
func (hs *hostState) windowTotals(now time.Time) (events, faults int64, top string, limited int64) {
	hour := now.Unix() / 3600
	by := map[string]int64{}
	for _, b := range hs.window {
		if b.hour <= hour-windowBuckets || b.hour > hour {
			continue
		}
		events += b.accepted + b.faults
		faults += b.faults
		limited += b.rateLimited
		for r, n := range b.faultsBy {
			by[r] += n
		}
	}
	for r, n := range by {
		if n > by[top] || (n == by[top] && r < top) {
			top = r
		}
	}
	return events, faults, top, limited
}

// recompute applies the policy to the host as it stands at now, and
// updates its rate limiter.
func (hs *hostState) recompute(p hostPolicy, now time.Time) hostLimits {
	hs.mu.Lock()
	hs.fold(now)
	f := hs.facts
	f.Now = now
	f.Events, f.Faults, f.TopFault, _ = hs.windowTotals(now)
	hs.mu.Unlock()
	l := p.limits(f)
	hs.limits.Store(&l)
	hs.bucket.set(l.Rate, l.Burst)
	return l
}

// currentLimits returns the limits last computed.
func (hs *hostState) currentLimits() hostLimits {
	if l := hs.limits.Load(); l != nil {
		return *l
	}
	return hostLimits{}
}

// admit decides whether the host may bring the account did: whether the
// accounts stored (count) and those admitted but not yet stored stay
// under its limit. On success did holds a place until release is called,
// which must be after the account is stored; an account both stored and
// not yet released counts twice for that moment, which errs on the side
// of the limit. Hosts without a limit are not counted. release is never
// nil.
func (hs *hostState) admit(did syntax.DID, count func() (int64, error)) (ok bool, release func(), err error) {
	release = func() {}
	limit := hs.currentLimits().Accounts
	if limit >= TrustedAccountLimit {
		return true, release, nil
	}
	hs.admitMu.Lock()
	defer hs.admitMu.Unlock()
	n, err := count()
	if err != nil {
		return false, release, err
	}
	if n+int64(len(hs.pending)) >= limit {
		return false, release, nil
	}
	hs.pending[did]++
	return true, func() {
		hs.admitMu.Lock()
		defer hs.admitMu.Unlock()
		if hs.pending[did]--; hs.pending[did] <= 0 {
			delete(hs.pending, did)
		}
	}, nil
}

// rejected records a refused event.
func (hs *hostState) rejected(now time.Time, typ, reason, did string, seq int64, detail string) {
	hs.mu.Lock()
	defer hs.mu.Unlock()
	hs.reasons[reason]++
	b := hs.bucketAt(now)
	switch {
	case reason == reasonRateLimited:
		b.rateLimited++
		hs.lastLimited = now
	case faultReason(reason):
		b.faults++
		if b.faultsBy == nil {
			b.faultsBy = map[string]int64{}
		}
		b.faultsBy[reason]++
	}
	if verify.Reason(reason).Ignorable() {
		return
	}
	detail = truncate(detail, rejectionDetail)
	if n := len(hs.recent); n > 0 {
		last := &hs.recent[(hs.next+n-1)%n] // next stays 0 until the ring is full
		if last.Type == typ && last.Reason == reason && last.DID == did && now.Sub(last.Time) < coalesceWithin {
			last.Count++
			last.Time, last.Seq, last.Detail = now, seq, detail
			return
		}
	}
	r := rejection{Time: now, Type: typ, Reason: reason, DID: did, Seq: seq, Detail: detail, Count: 1}
	if len(hs.recent) < recentRejections {
		hs.recent = append(hs.recent, r)
		return
	}
	hs.recent[hs.next] = r
	hs.next = (hs.next + 1) % recentRejections
}

// hostActivity is a snapshot of a host's state for reports.
type hostActivity struct {
	Rejections  []rejection // newest first
	Reasons     map[string]int64
	Conn        connState
	Limited     int64 // events over the rate limit in the window
	LastLimited time.Time
	FirstSeen   time.Time
	Ignored     int64 // replays ignored since the relay started
}

func (hs *hostState) activity(now time.Time) hostActivity {
	hs.mu.Lock()
	defer hs.mu.Unlock()
	hs.fold(now)
	a := hostActivity{Conn: hs.conn, LastLimited: hs.lastLimited, FirstSeen: hs.facts.FirstSeen, Reasons: make(map[string]int64, len(hs.reasons))}
	_, _, _, a.Limited = hs.windowTotals(now)
	a.Ignored = hs.ignored.Load()
	for r, n := range hs.reasons {
		a.Reasons[r] = n
	}
	n := len(hs.recent)
	a.Rejections = make([]rejection, 0, n)
	for i := range n {
		// Newest first: the slot before next, going back.
		a.Rejections = append(a.Rejections, hs.recent[(hs.next-1-i+2*n)%n])
	}
	return a
}

// sortedReasons lists reasons by count, most first.
func sortedReasons(m map[string]int64) []reasonCount {
	out := make([]reasonCount, 0, len(m))
	for r, n := range m {
		out = append(out, reasonCount{r, n})
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Count != out[j].Count {
			return out[i].Count > out[j].Count
		}
		return out[i].Reason < out[j].Reason
	})
	return out
}

type reasonCount struct {
	Reason string `json:"reason"`
	Count  int64  `json:"count"`
}

// Connection events, from the host's subscriber.

func (hs *hostState) dialing() {
	hs.mu.Lock()
	hs.conn.Attempts++
	hs.mu.Unlock()
}

func (hs *hostState) connected(now time.Time) {
	hs.mu.Lock()
	hs.conn.Connected, hs.conn.Since, hs.conn.NextAttempt = true, now, time.Time{}
	hs.mu.Unlock()
}

// disconnected records a connection that failed or ended with err (nil
// when the relay itself stopped it), and when the next attempt is due.
func (hs *hostState) disconnected(now time.Time, err error, consecutive int, next time.Time) {
	hs.mu.Lock()
	defer hs.mu.Unlock()
	if hs.conn.Connected || hs.conn.Since.IsZero() {
		hs.conn.Since = now
	}
	hs.conn.Connected = false
	hs.conn.NextAttempt = next
	hs.conn.Consecutive = consecutive
	if err != nil {
		hs.conn.Failures++
		hs.conn.LastError, hs.conn.LastErrorAt = truncate(err.Error(), rejectionDetail), now
	}
}

// truncate cuts s to at most n bytes on a rune boundary, marking the cut.
func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	cut := n - len("…")
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + "…"
}
