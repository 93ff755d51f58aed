package relay

import (
	"context"
	"time"

	"github.com/welkin-atproto/welkin/relay/store"
)

// hostReport is everything the relay tells of one host: to its operator
// on the status page (and its JSON twin), and to the relay's operator in
// the admin listing.
type hostReport struct {
	Hostname string `json:"hostname"`
	Status   string `json:"status"`
	Trusted  bool   `json:"trusted"`
	// Seq is the last upstream seq handled.
	Seq       int64     `json:"seq"`
	FirstSeen time.Time `json:"firstSeen,omitzero"`
	AddedAt   time.Time `json:"addedAt"`
	Accounts  int64     `json:"accountCount"`
	// Accepted and Rejected count the host's events since it was added.
	Accepted int64 `json:"accepted"`
	Rejected int64 `json:"rejected"`
	// Ignored counts, since the relay started, events dropped as replays
	// of a rev already accepted: no fault of the host.
	Ignored int64      `json:"ignoredReplays"`
	Limits  limitsView `json:"limits"`
	// Overrides are the operator's limits (0: the policy decides).
	Overrides overridesView `json:"overrides"`
	// Throttled is set when an event went over the rate limit lately;
	// RateLimited counts such events over the behaviour window.
	Throttled       bool      `json:"throttled"`
	RateLimited     int64     `json:"rateLimitedLastDay"`
	LastRateLimited time.Time `json:"lastRateLimited,omitzero"`
	Connection      connState `json:"connection"`
	// Errors count rejections by reason since the relay started;
	// Rejections are the latest, newest first.
	Errors     []reasonCount `json:"errors"`
	Rejections []rejection   `json:"recentRejections"`
}

type limitsView struct {
	Step               string  `json:"step"`
	AccountLimit       int64   `json:"accountLimit"`
	AccountLimitReason string  `json:"accountLimitReason"`
	EventRate          float64 `json:"eventRate"`
	EventBurst         int     `json:"eventBurst"`
	EventRateReason    string  `json:"eventRateReason"`
}

type overridesView struct {
	AccountLimit int64   `json:"accountLimit"`
	EventRate    float64 `json:"eventRate"`
	EventBurst   int64   `json:"eventBurst"`
}

// hostReport describes the stored host h as it stands now.
func (s *Server) hostReport(ctx context.Context, h store.Host) (hostReport, error) {
	count, err := s.st.AccountCount(ctx, h.Hostname)
	if err != nil {
		return hostReport{}, err
	}
	now := s.cfg.Now()
	hs := s.hostState(h.Hostname)
	hs.load(h)
	l := hs.recompute(s.policy, now)
	a := hs.activity(now)
	seq := h.Cursor
	s.subsMu.Lock()
	if sub := s.subs[h.Hostname]; sub != nil {
		seq = max(seq, sub.cursor.Load())
	}
	s.subsMu.Unlock()
	return hostReport{
		Hostname:  h.Hostname,
		Status:    h.Status,
		Trusted:   h.Trusted,
		Seq:       seq,
		FirstSeen: a.FirstSeen,
		AddedAt:   h.CreatedAt,
		Accounts:  count,
		Accepted:  h.Accepted,
		Rejected:  h.Rejected,
		Ignored:   a.Ignored,
		Limits: limitsView{Step: l.Step, AccountLimit: l.Accounts, AccountLimitReason: l.AccountsReason,
			EventRate: l.Rate, EventBurst: l.Burst, EventRateReason: l.RateReason},
		Overrides:       overridesView{AccountLimit: h.AccountLimit, EventRate: h.EventRate, EventBurst: h.EventBurst},
		Throttled:       !a.LastLimited.IsZero() && now.Sub(a.LastLimited) < throttledRecently,
		RateLimited:     a.Limited,
		LastRateLimited: a.LastLimited,
		Connection:      a.Conn,
		Errors:          sortedReasons(a.Reasons),
		Rejections:      a.Rejections,
	}, nil
}
