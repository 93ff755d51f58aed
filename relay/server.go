package relay

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/welkin-atproto/welkin/api"
	"github.com/welkin-atproto/welkin/atproto/identity"
	"github.com/welkin-atproto/welkin/atproto/stream"
	"github.com/welkin-atproto/welkin/atproto/xrpc"
	"github.com/welkin-atproto/welkin/internal/metrics"
	"github.com/welkin-atproto/welkin/relay/eventlog"
	"github.com/welkin-atproto/welkin/relay/jetstream"
	"github.com/welkin-atproto/welkin/relay/store"
	"github.com/welkin-atproto/welkin/relay/verify"
)

// shutdownTimeout is how long graceful shutdown waits for requests in
// flight and stream consumers.
const shutdownTimeout = 10 * time.Second

// fanoutFlushDelay is how long an event may wait for others to go to a
// consumer in the same write (stream.ServerOptions.FlushDelay): at the
// network's event rates it saves most of a system call per event per
// consumer, for a few milliseconds of latency.
const fanoutFlushDelay = 10 * time.Millisecond

// Server is a relay. Create it with New, serve Handler() yourself or call
// Serve / ListenAndServe, and Close it when done.
type Server struct {
	cfg Config
	log *slog.Logger

	st       *store.Store
	events   *eventlog.Log
	stream   *stream.Server
	jet      *jetstream.Server // the JSON stream, /subscribe
	seq      *sequencer
	resolver *identity.CachingResolver
	http     *http.Client // outbound requests: describeServer checks
	wsClient *http.Client // upstream WebSocket dials (no overall timeout)
	xrpc     *xrpc.Server
	registry *prometheus.Registry
	metrics  *relayMetrics
	handler  http.Handler

	verifyOpts verify.Options
	policy     hostPolicy

	statesMu sync.Mutex
	states   map[string]*hostState

	// Account state changes, one account at a time (didlock.go), and
	// re-synchronization (resync.go).
	locks      didLocks
	resync     *resyncer
	resyncDone chan struct{}
	resyncHTTP *http.Client // getRepo downloads, with their own timeout

	bgctx  context.Context
	stop   context.CancelFunc
	subsMu sync.Mutex
	subs   map[string]*subscriber
	closed bool

	closeOnce sync.Once
	closeErr  error
}

// New opens (creating on first start) the relay's state in cfg.DataDir
// (or cfg.DatabaseURL) and its event log, adds the configured hosts and
// starts subscribing to every host that is not blocked.
func New(ctx context.Context, cfg Config) (*Server, error) {
	cfg = cfg.withDefaults()
	s := &Server{cfg: cfg, log: cfg.Logger, subs: map[string]*subscriber{}, states: map[string]*hostState{},
		policy: newHostPolicy(cfg)}
	s.bgctx, s.stop = context.WithCancel(context.Background())
	ok := false
	defer func() {
		if !ok {
			s.Close()
		}
	}()
	var err error
	if err := mkdirAll(cfg.DataDir); err != nil {
		return nil, err
	}
	if s.st, err = store.Open(ctx, cfg.DBURL()); err != nil {
		return nil, err
	}
	s.st.SetClock(cfg.Now)
	s.events, err = eventlog.Open(eventlog.Options{
		Dir:       filepath.Join(cfg.DataDir, EventsDir),
		Retention: cfg.Retention,
		Now:       cfg.Now,
		Logger:    s.log,
		Span:      jetstream.Span, // a time of its own for each JSON event
	})
	if err != nil {
		return nil, fmt.Errorf("relay: opening the event log: %w", err)
	}
	var live atomic.Pointer[stream.Server]
	s.seq = newSequencer(s.events, func(ev stream.Event) {
		if p := live.Load(); p != nil {
			p.Publish(ev)
		}
	}, s.st.ApplyEvents, s.log)
	s.stream = stream.NewServer(s.events, &stream.ServerOptions{Logger: s.log, FlushDelay: fanoutFlushDelay})
	live.Store(s.stream)
	if s.jet, err = jetstream.NewServer(s.events, &jetstream.Options{Logger: s.log, Now: cfg.Now}); err != nil {
		return nil, err
	}

	s.http = identity.NewSafeHTTPClient(identity.SafeHTTPOptions{AllowPrivateNetworks: cfg.AllowInsecureHosts})
	ws := *s.http
	ws.Timeout = 0 // a stream lives long; the dial has its own timeouts
	s.wsClient = &ws
	base := identity.NewResolver(identity.Options{
		PLCURL:               cfg.PLCURL,
		HTTPClient:           s.http,
		AllowPrivateNetworks: cfg.AllowInsecureHosts,
		AllowLocalhost:       cfg.AllowInsecureHosts,
	})
	s.resolver = identity.NewCachingResolver(base, identity.CacheOptions{Now: cfg.Now})
	s.verifyOpts = verify.Options{Now: cfg.Now, Lenient: cfg.LenientInversion}
	s.resyncHTTP = identity.NewSafeHTTPClient(identity.SafeHTTPOptions{AllowPrivateNetworks: cfg.AllowInsecureHosts, Timeout: resyncTimeout})

	s.registry = prometheus.NewRegistry()
	s.metrics = newRelayMetrics(s.registry)
	if err := s.recoverStates(ctx); err != nil {
		return nil, err
	}
	s.startResync()
	cat, err := api.Catalog()
	if err != nil {
		return nil, err
	}
	s.xrpc = xrpc.NewServer(cat)
	s.xrpc.Logger = s.log
	s.xrpc.Observe = metrics.NewXRPC(s.registry, "relay").Observe
	s.registerSync()

	mux := http.NewServeMux()
	mux.Handle("/xrpc/", s.xrpc)
	mux.HandleFunc("GET /xrpc/com.atproto.sync.subscribeRepos", s.stream.ServeHTTP)
	mux.Handle("GET /subscribe", s.jet)
	mux.HandleFunc("GET /xrpc/_health", s.handleHealth)
	mux.Handle("GET /metrics", metrics.Handler(s.registry))
	s.registerAdmin(mux)
	s.registerTakedowns(mux)
	s.registerRedirects(mux)
	s.registerStatus(mux)
	s.handler = mux

	if err := s.addConfiguredHosts(ctx); err != nil {
		return nil, err
	}
	if err := s.startKnownHosts(ctx); err != nil {
		return nil, err
	}
	if err := s.seedResyncs(ctx); err != nil {
		return nil, err
	}
	ok = true
	return s, nil
}

// addConfiguredHosts stores the --hosts and --trusted-hosts.
func (s *Server) addConfiguredHosts(ctx context.Context) error {
	add := func(name string, trusted bool) error {
		h, err := parseHostname(name, s.cfg.AllowInsecureHosts)
		if err != nil {
			return fmt.Errorf("relay: configured host: %w", err)
		}
		_, _, err = s.st.AddHost(ctx, store.Host{Hostname: h.Name, NoTLS: h.NoTLS, Trusted: trusted})
		return err
	}
	for _, h := range s.cfg.Hosts {
		if err := add(h, false); err != nil {
			return err
		}
	}
	for _, h := range s.cfg.TrustedHosts {
		if err := add(h, true); err != nil {
			return err
		}
	}
	return nil
}

// startKnownHosts starts a subscriber for every stored host not blocked.
func (s *Server) startKnownHosts(ctx context.Context) error {
	cursor := ""
	for {
		hosts, next, err := s.st.ListHosts(ctx, cursor, store.MaxListLimit)
		if err != nil {
			return err
		}
		for _, h := range hosts {
			s.startHost(h)
		}
		if next == "" {
			return nil
		}
		cursor = next
	}
}

// Config returns the configuration in effect, defaults filled in.
func (s *Server) Config() Config { return s.cfg }

// Handler is the relay's HTTP handler.
func (s *Server) Handler() http.Handler { return s.handler }

// Close stops the subscribers (saving each host's cursor), disconnects the
// stream's consumers and closes the log and the store. Stop serving
// requests first.
func (s *Server) Close() error {
	s.closeOnce.Do(func() {
		var errs []error
		s.subsMu.Lock()
		s.closed = true
		subs := s.subs
		s.subs = map[string]*subscriber{}
		s.subsMu.Unlock()
		for _, sub := range subs {
			sub.cancel()
		}
		for _, sub := range subs {
			<-sub.done
		}
		if s.stop != nil {
			s.stop()
		}
		if s.resyncDone != nil {
			<-s.resyncDone
		}
		if s.stream != nil {
			ctx, cancel := context.WithTimeout(context.Background(), shutdownTimeout)
			s.stream.Shutdown(ctx)
			cancel()
		}
		if s.jet != nil {
			ctx, cancel := context.WithTimeout(context.Background(), shutdownTimeout)
			s.jet.Shutdown(ctx)
			cancel()
		}
		if s.seq != nil {
			s.seq.close()
		}
		if s.events != nil {
			errs = append(errs, s.events.Close())
		}
		if s.st != nil {
			errs = append(errs, s.st.Close())
		}
		s.closeErr = errors.Join(errs...)
	})
	return s.closeErr
}

// ListenAndServe listens on the configured address and serves until ctx
// is done, then shuts down gracefully.
func (s *Server) ListenAndServe(ctx context.Context) error {
	ln, err := net.Listen("tcp", s.cfg.Addr())
	if err != nil {
		return err
	}
	return s.Serve(ctx, ln)
}

// Serve serves on ln until ctx is done, then stops accepting connections
// and waits (up to a bound) for requests in flight. It does not Close the
// relay. ln is closed on return.
func (s *Server) Serve(ctx context.Context, ln net.Listener) error {
	srv := &http.Server{
		Handler:           s.handler,
		ReadHeaderTimeout: 10 * time.Second,
		ErrorLog:          slog.NewLogLogger(s.log.Handler(), slog.LevelWarn),
		BaseContext:       func(net.Listener) context.Context { return context.WithoutCancel(ctx) },
	}
	srv.RegisterOnShutdown(func() {
		sctx, cancel := context.WithTimeout(context.Background(), shutdownTimeout)
		defer cancel()
		s.stream.Shutdown(sctx)
		s.jet.Shutdown(sctx)
	})
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	s.log.Info("relay listening", "addr", ln.Addr().String(), "version", s.cfg.Version)
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.Background(), shutdownTimeout)
	defer cancel()
	err := srv.Shutdown(sctx)
	if serr := <-errc; serr != nil && !errors.Is(serr, http.ErrServerClosed) && err == nil {
		err = serr
	}
	return err
}

func (s *Server) handleHealth(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := context.WithTimeout(r.Context(), 5*time.Second)
	defer cancel()
	if err := s.st.Ping(ctx); err != nil {
		s.log.Error("health check failed", "err", err)
		writeJSON(w, http.StatusServiceUnavailable, map[string]string{"version": s.cfg.Version, "error": "Service Unavailable"})
		return
	}
	writeJSON(w, http.StatusOK, map[string]string{"version": s.cfg.Version})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		status, b = http.StatusInternalServerError, []byte(`{"error":"InternalServerError"}`)
	}
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(status)
	w.Write(b)
}
