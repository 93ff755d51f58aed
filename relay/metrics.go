package relay

import (
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/welkin-atproto/welkin/relay/verify"
)

// Extra rejection reasons of the relay itself, beside verify's.
const (
	reasonAccountLimit = "host-account-limit"
	reasonBadBody      = "bad-body"
	// reasonRateLimited: the host sent more events than its rate limit.
	reasonRateLimited = "rate-limited"
	// reasonBadFrame: a frame that is not a valid event-stream frame
	// (not DAG-CBOR, no header, trailing bytes), counted with the type
	// "frame" since its type is unknown.
	reasonBadFrame = "bad-frame"
	// reasonTakendown: the account is taken down at this relay.
	reasonTakendown = "takendown"
	// reasonDesynchronized: a #commit of an account whose chain broke,
	// dropped until a re-sync brings it back (resync.go).
	reasonDesynchronized = "desynchronized"
)

// relayMetrics are the relay's Prometheus instruments.
type relayMetrics struct {
	events  *prometheus.CounterVec // type, outcome (accepted, rejected), reason
	resyncs *prometheus.CounterVec // outcome
	pending prometheus.Gauge       // accounts queued for a re-sync or in one
	// takedowns counts local takedowns and their reversals (action).
	takedowns *prometheus.CounterVec
}

func newRelayMetrics(reg prometheus.Registerer) *relayMetrics {
	m := &relayMetrics{
		events: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "welkin", Subsystem: "relay", Name: "events_total",
			Help: "Upstream events handled, by type, outcome (accepted, rejected, ignored) and reason.",
		}, []string{"type", "outcome", "reason"}),
		resyncs: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "welkin", Subsystem: "relay", Name: "resyncs_total",
			Help: "Repository re-synchronization attempts, by outcome.",
		}, []string{"outcome"}),
		pending: prometheus.NewGauge(prometheus.GaugeOpts{
			Namespace: "welkin", Subsystem: "relay", Name: "resync_pending",
			Help: "Accounts queued for a re-synchronization or in one.",
		}),
		takedowns: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "welkin", Subsystem: "relay", Name: "takedowns_total",
			Help: "Local account takedowns and restorations, by action.",
		}, []string{"action"}),
	}
	reg.MustRegister(m.events, m.resyncs, m.pending, m.takedowns)
	// Pre-register the reasons so that dashboards see zeros.
	for _, t := range []string{"#commit", "#sync"} {
		for _, r := range verify.Reasons() {
			m.events.WithLabelValues(t, "rejected", string(r))
		}
		m.events.WithLabelValues(t, "rejected", reasonTakendown)
	}
	m.events.WithLabelValues("#commit", "rejected", reasonDesynchronized)
	for _, o := range resyncOutcomes() {
		m.resyncs.WithLabelValues(o)
	}
	m.takedowns.WithLabelValues("takedown")
	m.takedowns.WithLabelValues("restore")
	return m
}

// accepted counts an accepted event; reason is the notable condition it
// carried (a broken chain), "" if none.
func (m *relayMetrics) accepted(typ, reason string) {
	m.events.WithLabelValues(typ, "accepted", reason).Inc()
}

func (m *relayMetrics) rejected(typ, reason string) {
	m.events.WithLabelValues(typ, "rejected", reason).Inc()
}

// ignored counts an event dropped as a replay (a rev already accepted):
// the sync specification asks consumers to ignore such events, and they
// are no fault of the host.
func (m *relayMetrics) ignored(typ, reason string) {
	m.events.WithLabelValues(typ, "ignored", reason).Inc()
}

// logLimiter lets through at most n log records per period, and counts
// the ones it held back, for the next record to report.
type logLimiter struct {
	n      int
	period time.Duration

	mu         sync.Mutex
	start      time.Time
	count      int
	suppressed int
}

// allow reports whether a record may be logged now, and how many were
// suppressed since the last one that was.
func (l *logLimiter) allow(now time.Time) (bool, int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if now.Sub(l.start) >= l.period {
		l.start, l.count = now, 0
	}
	if l.count >= l.n {
		l.suppressed++
		return false, 0
	}
	l.count++
	s := l.suppressed
	l.suppressed = 0
	return true, s
}
