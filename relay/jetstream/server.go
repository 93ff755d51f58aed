package jetstream

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/coder/websocket"
	"github.com/klauspost/compress/zstd"

	"github.com/welkin-atproto/welkin/relay/eventlog"
)

// Options tune a Server. Zero values take the defaults.
type Options struct {
	// Buffer is how many log records' worth of live events may wait for
	// one subscriber before it is dropped. Default 4096.
	Buffer int
	// ReplayPage is how many log records a read takes. Default 500.
	ReplayPage int
	// PingInterval is how often a connection is pinged; one that does not
	// answer within WriteTimeout is dropped. Default 30s; negative
	// disables pings.
	PingInterval time.Duration
	// WriteTimeout bounds one message write. Default 10s.
	WriteTimeout time.Duration
	// Now is the clock that tells a cursor in the future. Default
	// time.Now.
	Now func() time.Time
	// Logger receives diagnostics. Default slog.Default().
	Logger *slog.Logger
}

// Server serves the stream from a relay's event log. Create it with
// NewServer and stop it with Shutdown before closing the log.
type Server struct {
	log  *eventlog.Log
	opts Options
	lg   *slog.Logger
	enc  *zstd.Encoder

	mu     sync.Mutex
	subs   map[*subscriber]struct{}
	closed bool
	done   chan struct{}
	conns  sync.WaitGroup

	stopHub context.CancelFunc
	hubDone chan struct{}

	dropped atomic.Int64
}

var errClosed = errors.New("jetstream: server closed")

// NewServer returns a Server reading log, and starts following it for
// live events. opts may be nil.
func NewServer(log *eventlog.Log, opts *Options) (*Server, error) {
	s := &Server{log: log, subs: map[*subscriber]struct{}{}, done: make(chan struct{}), hubDone: make(chan struct{})}
	if opts != nil {
		s.opts = *opts
	}
	if s.opts.Buffer <= 0 {
		s.opts.Buffer = 4096
	}
	if s.opts.ReplayPage <= 0 {
		s.opts.ReplayPage = 500
	}
	if s.opts.PingInterval == 0 {
		s.opts.PingInterval = 30 * time.Second
	}
	if s.opts.WriteTimeout <= 0 {
		s.opts.WriteTimeout = 10 * time.Second
	}
	if s.opts.Now == nil {
		s.opts.Now = time.Now
	}
	s.lg = s.opts.Logger
	if s.lg == nil {
		s.lg = slog.Default()
	}
	var err error
	if s.enc, err = NewEncoder(runtime.GOMAXPROCS(0)); err != nil {
		return nil, err
	}
	ctx, cancel := context.WithCancel(context.Background())
	s.stopHub = cancel
	latest, err := log.LatestSeq(ctx)
	if err != nil {
		cancel()
		return nil, fmt.Errorf("jetstream: %w", err)
	}
	go s.tail(ctx, latest)
	return s, nil
}

// Shutdown stops accepting subscribers, closes every connection with
// status 1001 (going away) so that subscribers reconnect with their
// cursor, and waits for the connections' handlers and the log follower to
// end, or ctx.
func (s *Server) Shutdown(ctx context.Context) error {
	s.mu.Lock()
	if !s.closed {
		s.closed = true
		close(s.done)
	}
	s.mu.Unlock()
	s.stopHub()
	finished := make(chan struct{})
	go func() {
		s.conns.Wait()
		<-s.hubDone
		close(finished)
	}()
	select {
	case <-finished:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Subscribers reports how many subscribers take live events.
func (s *Server) Subscribers() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.subs)
}

// Dropped reports how many subscribers were dropped for falling behind.
func (s *Server) Dropped() int64 { return s.dropped.Load() }

func isUpgrade(h http.Header) bool {
	has := func(name, token string) bool {
		for _, v := range h.Values(name) {
			for _, t := range strings.Split(v, ",") {
				if strings.EqualFold(strings.TrimSpace(t), token) {
					return true
				}
			}
		}
		return false
	}
	return has("Connection", "upgrade") && has("Upgrade", "websocket")
}

// ServeHTTP implements http.Handler for GET /subscribe. Bad parameters
// are answered 400 with a plain-text reason, before the upgrade, as
// Jetstream answers them.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet {
		w.Header().Set("Allow", "GET")
		http.Error(w, "the stream takes GET", http.StatusMethodNotAllowed)
		return
	}
	p, err := ParseParams(r.URL.RawQuery, r.Header)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	if !isUpgrade(r.Header) {
		http.Error(w, "the stream needs a WebSocket upgrade", http.StatusUpgradeRequired)
		return
	}
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		http.Error(w, "server shutting down", http.StatusServiceUnavailable)
		return
	}
	s.conns.Add(1)
	s.mu.Unlock()
	defer s.conns.Done()

	// A cursor in the future means live tail, as in Jetstream.
	if p.HasCursor && p.Cursor > s.opts.Now().UnixMicro() {
		p.HasCursor = false
	}
	c := &subscriber{ch: make(chan *batch, s.opts.Buffer), dropped: make(chan struct{})}
	c.filter.Store(p.Filter)
	registered := false
	if !p.HasCursor && !p.RequireHello {
		// Registered before the handshake, so that it sees every event
		// logged once its connection is open.
		if err := s.subscribe(c); err != nil {
			http.Error(w, "server shutting down", http.StatusServiceUnavailable)
			return
		}
		registered = true
	}
	defer s.unsubscribe(c)

	conn, err := websocket.Accept(w, r, &websocket.AcceptOptions{
		InsecureSkipVerify: true, // a public, unauthenticated stream
		CompressionMode:    websocket.CompressionDisabled,
	})
	if err != nil {
		s.lg.Debug("jetstream: handshake failed", "err", err)
		return
	}
	defer conn.CloseNow()
	conn.SetReadLimit(MaxSubscriberMessage)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() {
		select {
		case <-r.Context().Done():
			cancel()
		case <-ctx.Done():
		}
	}()
	cs := &session{s: s, ws: conn, ctx: ctx, sub: c, params: p, hello: make(chan struct{})}
	go cs.readLoop(cancel)
	if s.opts.PingInterval > 0 {
		go cs.keepalive()
	}
	if err := cs.run(registered); err != nil && ctx.Err() == nil {
		s.lg.Debug("jetstream: connection ended", "err", err)
	}
}
