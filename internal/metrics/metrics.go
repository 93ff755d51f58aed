// Package metrics holds the Prometheus instruments shared by Welkin's
// services.
//
// XRPC counts and times the requests of an xrpc.Server per method:
//
//	reg := prometheus.NewRegistry()
//	m := metrics.NewXRPC(reg, "pds")
//	srv := xrpc.NewServer(catalog)
//	srv.Observe = m.Observe
//	mux.Handle("/metrics", metrics.Handler(reg))
package metrics

import (
	"net/http"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// UnknownNSID is the nsid label of requests that reached no registered
// method, so that a client cannot grow the label set by calling made-up
// names.
const UnknownNSID = "unknown"

// DurationBuckets are the upper bounds, in seconds, of the request
// duration histogram: from half a millisecond (a cached query on
// loopback) to ten seconds (a large upload or a slow upstream).
var DurationBuckets = []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10}

// XRPC holds the per-method request instruments of one XRPC service.
type XRPC struct {
	requests *prometheus.CounterVec
	duration *prometheus.HistogramVec
}

// NewXRPC creates the instruments welkin_xrpc_requests_total{service,
// nsid,status} and welkin_xrpc_request_duration_seconds{service,nsid}
// and registers them with reg (prometheus.DefaultRegisterer when nil).
// service is a constant label telling services apart when several share
// a registry. It panics if the instruments are already registered for
// the same service, as prometheus.MustRegister does.
func NewXRPC(reg prometheus.Registerer, service string) *XRPC {
	if reg == nil {
		reg = prometheus.DefaultRegisterer
	}
	constLabels := prometheus.Labels{"service": service}
	m := &XRPC{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name:        "welkin_xrpc_requests_total",
			Help:        "XRPC requests answered, by method and HTTP status.",
			ConstLabels: constLabels,
		}, []string{"nsid", "status"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:        "welkin_xrpc_request_duration_seconds",
			Help:        "Time to answer an XRPC request, by method.",
			ConstLabels: constLabels,
			Buckets:     DurationBuckets,
		}, []string{"nsid"}),
	}
	reg.MustRegister(m.requests, m.duration)
	return m
}

// Observe records one answered request. Its signature is that of
// xrpc.Server.Observe, so a service wires it with srv.Observe = m.Observe.
// An empty nsid (a request no method was registered for) is recorded as
// UnknownNSID.
func (m *XRPC) Observe(nsid string, status int, d time.Duration) {
	if nsid == "" {
		nsid = UnknownNSID
	}
	m.requests.WithLabelValues(nsid, statusLabel(status)).Inc()
	m.duration.WithLabelValues(nsid).Observe(d.Seconds())
}

// statusLabel formats common statuses without allocating.
func statusLabel(status int) string {
	switch status {
	case http.StatusOK:
		return "200"
	case http.StatusBadRequest:
		return "400"
	case http.StatusUnauthorized:
		return "401"
	case http.StatusNotFound:
		return "404"
	case http.StatusInternalServerError:
		return "500"
	case http.StatusNotImplemented:
		return "501"
	}
	return strconv.Itoa(status)
}

// Handler serves the metrics gathered by reg in the Prometheus text
// format, for a service's /metrics endpoint. A nil reg serves
// prometheus.DefaultGatherer.
func Handler(reg prometheus.Gatherer) http.Handler {
	if reg == nil {
		reg = prometheus.DefaultGatherer
	}
	return promhttp.HandlerFor(reg, promhttp.HandlerOpts{})
}
