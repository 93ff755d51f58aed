package stream

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/coder/websocket"
)

// ServerOptions tune a Server. Zero values take the defaults.
type ServerOptions struct {
	// Buffer is how many live events may wait for one consumer before it
	// is dropped with ConsumerTooSlow. Default 1024.
	Buffer int
	// BackfillPage is how many events a replay reads from the Log at a
	// time. Default 500.
	BackfillPage int
	// PingInterval is how often an idle connection is pinged; a consumer
	// that does not answer within WriteTimeout is dropped. Default 30s;
	// negative disables pings.
	PingInterval time.Duration
	// WriteTimeout bounds one write to a consumer (a batch of frames, or
	// a ping): each must complete within WriteTimeout/2 to WriteTimeout
	// of its start. Default 10s.
	WriteTimeout time.Duration
	// FlushDelay is how long a live event may wait for more to be sent
	// with it in one write. A consumer then costs one system call per
	// FlushDelay, or per 64 KiB of events, rather than one per event,
	// and each event reaches it at most FlushDelay later. Zero (the
	// default) sends each event as soon as it is published, together
	// only with those already waiting.
	FlushDelay time.Duration
	// Logger receives connection-level diagnostics. Default slog.Default().
	Logger *slog.Logger
}

// Server serves one event stream endpoint over WebSocket. Every event is
// handed to Publish once, already encoded, and the same byte slice is
// queued to every live consumer; a consumer whose queue is full is sent a
// ConsumerTooSlow error frame and disconnected, without holding up anyone
// else.
type Server struct {
	log  Log
	opts ServerOptions
	lg   *slog.Logger

	outdated []byte // the #info OutdatedCursor frame, encoded once
	tooSlow  []byte // the ConsumerTooSlow error frame, encoded once

	mu     sync.Mutex
	subs   map[*consumer]struct{}
	closed bool
	done   chan struct{}
	wg     sync.WaitGroup

	dropped atomic.Int64
}

type consumer struct {
	ch      chan Event
	dropped chan struct{} // closed when the consumer fell behind
	// nudge ends a FlushDelay wait early: Publish signals it when the
	// queue holds a full batch, or half of Buffer.
	nudge   chan struct{}
	nudgeAt int
}

// NewServer returns a Server replaying from log. opts may be nil.
func NewServer(log Log, opts *ServerOptions) *Server {
	s := &Server{log: log, subs: make(map[*consumer]struct{}), done: make(chan struct{})}
	if opts != nil {
		s.opts = *opts
	}
	if s.opts.Buffer <= 0 {
		s.opts.Buffer = 1024
	}
	if s.opts.BackfillPage <= 0 {
		s.opts.BackfillPage = 500
	}
	if s.opts.PingInterval == 0 {
		s.opts.PingInterval = 30 * time.Second
	}
	if s.opts.WriteTimeout <= 0 {
		s.opts.WriteTimeout = 10 * time.Second
	}
	s.lg = s.opts.Logger
	if s.lg == nil {
		s.lg = slog.Default()
	}
	var err error
	s.outdated, err = EncodeFrame("#info", map[string]any{
		"name":    InfoOutdatedCursor,
		"message": "Requested cursor exceeded limit. Possibly missing events",
	})
	if err != nil {
		panic(err)
	}
	s.tooSlow, err = EncodeErrorFrame(ErrNameConsumerTooSlow, "Stream consumer too slow")
	if err != nil {
		panic(err)
	}
	return s
}

// Publish queues ev to every live consumer. The caller appends ev to the
// Log first and publishes events in increasing seq order, from one
// goroutine or under its own lock. ev.Frame is shared, never copied, and
// must not be modified afterwards.
func (s *Server) Publish(ev Event) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for c := range s.subs {
		select {
		case c.ch <- ev:
			if len(c.ch) == c.nudgeAt {
				select {
				case c.nudge <- struct{}{}:
				default:
				}
			}
		default:
			delete(s.subs, c)
			close(c.dropped)
			s.dropped.Add(1)
		}
	}
}

// Consumers reports how many consumers are receiving live events.
func (s *Server) Consumers() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.subs)
}

// Dropped reports how many consumers have been dropped for falling behind.
func (s *Server) Dropped() int64 { return s.dropped.Load() }

var errClosed = errors.New("stream: server closed")

func (s *Server) subscribe() (*consumer, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil, errClosed
	}
	c := &consumer{ch: make(chan Event, s.opts.Buffer), dropped: make(chan struct{}),
		nudge: make(chan struct{}, 1), nudgeAt: max(1, min(maxBatchEvents, s.opts.Buffer/2))}
	s.subs[c] = struct{}{}
	return c, nil
}

func (s *Server) unsubscribe(c *consumer) {
	s.mu.Lock()
	delete(s.subs, c)
	s.mu.Unlock()
}

// Shutdown stops accepting consumers, closes every connection with status
// 1001 (going away) so that consumers reconnect elsewhere with their
// cursor, and waits for the connection handlers to return or ctx to end.
func (s *Server) Shutdown(ctx context.Context) error {
	s.mu.Lock()
	if !s.closed {
		s.closed = true
		close(s.done)
	}
	s.mu.Unlock()
	finished := make(chan struct{})
	go func() {
		s.wg.Wait()
		close(finished)
	}()
	select {
	case <-finished:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func headerHas(h http.Header, name, token string) bool {
	for _, v := range h.Values(name) {
		for _, t := range strings.Split(v, ",") {
			if strings.EqualFold(strings.TrimSpace(t), token) {
				return true
			}
		}
	}
	return false
}

func httpError(w http.ResponseWriter, code int, name, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	b, _ := jsonError(name, msg)
	_, _ = w.Write(b)
}

func jsonError(name, msg string) ([]byte, error) {
	return []byte(`{"error":` + strconv.Quote(name) + `,"message":` + strconv.Quote(msg) + `}`), nil
}

// ServeHTTP implements http.Handler. The optional query parameter cursor
// selects a replay: every retained event with seq > cursor, then live
// events, with no gap or duplicate; 0 replays everything retained; a
// cursor older than the retained window gets an #info OutdatedCursor
// frame first; one above the latest seq gets a FutureCursor error frame
// and the connection is closed.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet {
		w.Header().Set("Allow", "GET")
		httpError(w, http.StatusMethodNotAllowed, "MethodNotAllowed", "stream endpoints take GET")
		return
	}
	if !headerHas(r.Header, "Connection", "upgrade") || !headerHas(r.Header, "Upgrade", "websocket") {
		httpError(w, http.StatusUpgradeRequired, "UpgradeRequired", "stream endpoints need a WebSocket upgrade")
		return
	}
	cursor := int64(-1)
	if c := r.URL.Query().Get("cursor"); c != "" {
		n, err := strconv.ParseInt(c, 10, 64)
		if err != nil || n < 0 {
			httpError(w, http.StatusBadRequest, "InvalidRequest", "invalid cursor")
			return
		}
		cursor = n
	}

	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		httpError(w, http.StatusServiceUnavailable, "ServiceUnavailable", "server shutting down")
		return
	}
	s.wg.Add(1)
	s.mu.Unlock()
	defer s.wg.Done()

	// A live-only consumer is registered before the handshake, so that it
	// sees every event published once its connection is open.
	var sub *consumer
	if cursor < 0 {
		var err error
		if sub, err = s.subscribe(); err != nil {
			httpError(w, http.StatusServiceUnavailable, "ServiceUnavailable", err.Error())
			return
		}
		defer s.unsubscribe(sub)
	}

	bw := &batchResponse{ResponseWriter: w, timeout: s.opts.WriteTimeout}
	conn, err := websocket.Accept(bw, r, &websocket.AcceptOptions{
		InsecureSkipVerify: true, // a public, unauthenticated stream
		CompressionMode:    websocket.CompressionDisabled,
	})
	if err != nil {
		s.lg.Debug("stream: handshake failed", "err", err)
		return
	}
	defer conn.CloseNow()
	if bw.conn == nil {
		conn.Close(websocket.StatusInternalError, "connection not hijacked")
		return
	}
	// Streams are one-way: reading only answers control frames and notices
	// a consumer going away.
	ctx, cancel := context.WithCancel(conn.CloseRead(context.Background()))
	defer cancel()
	go func() {
		select {
		case <-r.Context().Done():
			cancel()
		case <-ctx.Done():
		}
	}()
	if s.opts.PingInterval > 0 {
		go s.keepalive(ctx, conn)
	}
	c := &connState{s: s, conn: conn, bc: bw.conn, ctx: ctx}
	if err := c.run(cursor, sub); err != nil && ctx.Err() == nil {
		s.lg.Debug("stream: connection ended", "err", err)
	}
}

func (s *Server) keepalive(ctx context.Context, conn *websocket.Conn) {
	t := time.NewTicker(s.opts.PingInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			pctx, cancel := context.WithTimeout(ctx, s.opts.WriteTimeout)
			err := conn.Ping(pctx)
			cancel()
			if err != nil {
				conn.CloseNow()
				return
			}
		}
	}
}

type connState struct {
	s     *Server
	conn  *websocket.Conn
	bc    *batchConn
	ctx   context.Context
	last  int64       // seq of the last event sent
	timer *time.Timer // waits FlushDelay for more events; made on first use
}

// hold starts a batch of messages (see batchConn).
func (c *connState) hold() error { return c.bc.hold() }

// send writes one frame as a message of the batch held; it goes out at
// release.
func (c *connState) send(frame []byte) error { return c.bc.writeMessage(frame) }

// sendNow writes one frame in a batch of its own.
func (c *connState) sendNow(frame []byte) error {
	if err := c.hold(); err != nil {
		return err
	}
	err := c.send(frame)
	return errors.Join(err, c.bc.release())
}

// closeWith sends an error frame and closes the connection.
func (c *connState) closeWith(frame []byte, code websocket.StatusCode, reason string) error {
	if err := c.sendNow(frame); err != nil {
		return err
	}
	return c.conn.Close(code, reason)
}

// backfill sends every logged event after c.last.
func (c *connState) backfill() error {
	for {
		evs, err := c.s.log.Since(c.ctx, c.last, c.s.opts.BackfillPage)
		if err != nil {
			return err
		}
		for i := 0; i < len(evs); i += maxBatchEvents {
			if err := c.sendEvents(evs[i:min(i+maxBatchEvents, len(evs))]); err != nil {
				return err
			}
		}
		if len(evs) < c.s.opts.BackfillPage {
			return nil
		}
		select {
		case <-c.s.done:
			return errClosed
		default:
		}
	}
}

func (c *connState) run(cursor int64, sub *consumer) error {
	s := c.s
	if cursor >= 0 {
		latest, err := s.log.LatestSeq(c.ctx)
		if err != nil {
			return c.conn.Close(websocket.StatusInternalError, "log unavailable")
		}
		if cursor > latest {
			f, err := EncodeErrorFrame(ErrNameFutureCursor, "Cursor in the future.")
			if err != nil {
				return err
			}
			return c.closeWith(f, websocket.StatusPolicyViolation, ErrNameFutureCursor)
		}
		if cursor > 0 {
			oldest, err := s.log.OldestSeq(c.ctx)
			if err != nil {
				return c.conn.Close(websocket.StatusInternalError, "log unavailable")
			}
			if oldest > 0 && cursor < oldest-1 {
				if err := c.sendNow(s.outdated); err != nil {
					return err
				}
			}
		}
		c.last = cursor
		// Replay, then register for live events, then replay whatever was
		// logged meanwhile; live events at or below the replayed position
		// are skipped, so nothing is missed or repeated.
		if err := c.backfill(); err != nil {
			return err
		}
		if sub, err = s.subscribe(); err != nil {
			return c.conn.Close(websocket.StatusGoingAway, "server shutting down")
		}
		defer s.unsubscribe(sub)
		if err := c.backfill(); err != nil {
			return err
		}
	}
	for {
		// A dropped consumer is told so before anything else is sent.
		select {
		case <-sub.dropped:
			return c.closeWith(s.tooSlow, websocket.StatusPolicyViolation, ErrNameConsumerTooSlow)
		default:
		}
		select {
		case <-sub.dropped:
			return c.closeWith(s.tooSlow, websocket.StatusPolicyViolation, ErrNameConsumerTooSlow)
		case ev := <-sub.ch:
			if err := c.sendLive(ev, sub, cursor >= 0); err != nil {
				return err
			}
		case <-s.done:
			return c.conn.Close(websocket.StatusGoingAway, "server shutting down")
		case <-c.ctx.Done():
			return c.ctx.Err()
		}
	}
}

// sendEvents sends the events after c.last in one batch.
func (c *connState) sendEvents(evs []Event) error {
	if err := c.hold(); err != nil {
		return err
	}
	var err error
	for _, ev := range evs {
		if ev.Seq <= c.last {
			continue
		}
		if err = c.send(ev.Frame); err != nil {
			break
		}
		c.last = ev.Seq
	}
	return errors.Join(err, c.bc.release())
}

// sendLive sends a live event, and in the same batch the events queued
// behind it. With FlushDelay, it first waits that long for more to come,
// unless enough are waiting already. With skipSent (a replay came first),
// events at or below the last one sent are skipped.
func (c *connState) sendLive(ev Event, sub *consumer, skipSent bool) error {
	if d := c.s.opts.FlushDelay; d > 0 && len(sub.ch) < sub.nudgeAt {
		c.linger(sub, d)
	}
	if err := c.hold(); err != nil {
		return err
	}
	var err error
	for n := 0; ; n++ {
		if !skipSent || ev.Seq > c.last {
			if err = c.send(ev.Frame); err != nil {
				break
			}
			c.last = ev.Seq
		}
		if n+1 >= maxBatchEvents {
			break
		}
		// The batch ends when the queue is empty, or when the consumer
		// was dropped, which it is told before anything else.
		var ok bool
		select {
		case <-sub.dropped:
		default:
			select {
			case ev = <-sub.ch:
				ok = true
			default:
			}
		}
		if !ok {
			break
		}
	}
	return errors.Join(err, c.bc.release())
}

// linger waits d, for events to gather in the consumer's queue, or less
// when Publish nudges (the queue holds a full batch), the consumer is
// dropped or the connection or the server is closing. It does not wake
// for each event: Publish only queues them.
func (c *connState) linger(sub *consumer, d time.Duration) {
	select {
	case <-sub.nudge: // a stale nudge, from before the last batch
	default:
	}
	if len(sub.ch) >= sub.nudgeAt { // filled up meanwhile; no nudge will come
		return
	}
	if c.timer == nil {
		c.timer = time.NewTimer(d)
	} else {
		c.timer.Reset(d)
	}
	select {
	case <-c.timer.C:
		return
	case <-sub.nudge:
	case <-sub.dropped:
	case <-c.s.done:
	case <-c.ctx.Done():
	}
	c.timer.Stop()
}
