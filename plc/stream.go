package plc

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/coder/websocket"

	"github.com/welkin-atproto/welkin/plc/store"
)

// Close reasons of /export/stream (did:plc spec v0.3, "Export Streaming
// WebSocket").
const (
	CloseFutureCursor    = "FutureCursor"
	CloseOutdatedCursor  = "OutdatedCursor"
	CloseConsumerTooSlow = "ConsumerTooSlow"
)

const (
	// streamPage is how many operations a backfill reads at a time.
	streamPage = 500
	// streamWriteTimeout bounds one message write; a consumer that cannot
	// take a message in that time is gone.
	streamWriteTimeout = 10 * time.Second
)

// event is one encoded stream message, shared by every consumer.
type event struct {
	seq  int64
	data []byte
}

// subscriber is one live consumer: a bounded queue of events, and a
// channel closed when the hub drops it for falling behind.
type subscriber struct {
	ch      chan event
	dropped chan struct{}
}

// hub reads newly sequenced operations from the store, in seq order, and
// fans each one out, encoded once, to every subscriber. It is woken by
// notify when this process accepts an operation, and polls for those that
// other processes sharing the database accept.
type hub struct {
	st   store.Store
	log  *slog.Logger
	buf  int
	poll time.Duration

	wake chan struct{}
	done chan struct{}
	// ready is closed once lastSeen holds the store's position.
	ready chan struct{}

	mu       sync.Mutex
	subs     map[*subscriber]struct{}
	lastSeen int64
	closed   bool
}

func newHub(st store.Store, log *slog.Logger, buf int, poll time.Duration) *hub {
	return &hub{
		st: st, log: log, buf: buf, poll: poll,
		wake:  make(chan struct{}, 1),
		done:  make(chan struct{}),
		ready: make(chan struct{}),
		subs:  make(map[*subscriber]struct{}),
	}
}

func (h *hub) notify() {
	select {
	case h.wake <- struct{}{}:
	default:
	}
}

func (h *hub) close() {
	h.mu.Lock()
	h.closed = true
	h.mu.Unlock()
	close(h.done)
}

func (h *hub) run() {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() {
		<-h.done
		cancel()
	}()
	tick := time.NewTicker(h.poll)
	defer tick.Stop()
	initialized := false
	for {
		if !initialized {
			seq, err := h.st.LastSeq(ctx)
			if err == nil {
				h.mu.Lock()
				h.lastSeen = seq
				h.mu.Unlock()
				close(h.ready)
				initialized = true
			} else if ctx.Err() == nil {
				h.log.Error("export stream: reading the sequence position", "err", err)
			}
		} else {
			h.pump(ctx)
		}
		select {
		case <-h.done:
			return
		case <-h.wake:
		case <-tick.C:
		}
	}
}

// pump sends every operation sequenced since the last one sent.
func (h *hub) pump(ctx context.Context) {
	for {
		h.mu.Lock()
		after := h.lastSeen
		h.mu.Unlock()
		entries, err := h.st.ExportSeq(ctx, after, streamPage)
		if err != nil {
			if ctx.Err() == nil {
				h.log.Error("export stream: reading new operations", "err", err)
			}
			return
		}
		if len(entries) == 0 {
			return
		}
		evts := make([]event, 0, len(entries))
		for _, e := range entries {
			b, err := encodeSequenced(e)
			if err != nil {
				h.log.Error("export stream: encoding", "seq", e.Seq, "err", err)
				return
			}
			evts = append(evts, event{e.Seq, b})
		}
		h.mu.Lock()
		for _, ev := range evts {
			for sub := range h.subs {
				select {
				case sub.ch <- ev:
				default:
					delete(h.subs, sub)
					close(sub.dropped)
				}
			}
		}
		h.lastSeen = evts[len(evts)-1].seq
		h.mu.Unlock()
		if len(entries) < streamPage {
			return
		}
	}
}

// subscribe registers a consumer. Every event with seq above the returned
// position will be queued for it; everything up to that position it must
// read from the store itself.
func (h *hub) subscribe(ctx context.Context) (*subscriber, int64, error) {
	select {
	case <-h.ready:
	case <-h.done:
		return nil, 0, errors.New("server shutting down")
	case <-ctx.Done():
		return nil, 0, ctx.Err()
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.closed {
		return nil, 0, errors.New("server shutting down")
	}
	sub := &subscriber{ch: make(chan event, h.buf), dropped: make(chan struct{})}
	h.subs[sub] = struct{}{}
	return sub, h.lastSeen, nil
}

func (h *hub) unsubscribe(sub *subscriber) {
	h.mu.Lock()
	delete(h.subs, sub)
	h.mu.Unlock()
}

// handleStream serves /export/stream (did:plc spec v0.3). Without a cursor
// it streams operations accepted after the connection; with one, it first
// replays the operations after that seq (within the catch-up window), then
// continues live. A consumer more than StreamBuffer events behind is closed
// with reason ConsumerTooSlow.
func (s *Server) handleStream(w http.ResponseWriter, r *http.Request) {
	if !headerHasToken(r.Header, "Connection", "upgrade") || !headerHasToken(r.Header, "Upgrade", "websocket") {
		writeError(w, http.StatusUpgradeRequired, "upgrade required")
		return
	}
	cursor := int64(-1)
	if c := r.URL.Query().Get("cursor"); c != "" {
		n, err := strconv.ParseInt(c, 10, 64)
		if err != nil || n < 0 {
			writeError(w, http.StatusBadRequest, "Invalid cursor parameter")
			return
		}
		cursor = n
	}
	ctx := r.Context()

	// A live-only consumer is registered before the handshake completes,
	// so that it sees every operation accepted after it connected.
	// Operations the store held when the consumer connected are skipped,
	// even if the hub has yet to send them.
	var (
		sub  *subscriber
		skip int64
		err  error
	)
	if cursor < 0 {
		if sub, _, err = s.hub.subscribe(ctx); err != nil {
			writeError(w, http.StatusServiceUnavailable, err.Error())
			return
		}
		defer s.hub.unsubscribe(sub)
		if skip, err = s.st.LastSeq(ctx); err != nil {
			s.internalError(w, r, err)
			return
		}
	}

	conn, err := websocket.Accept(w, r, &websocket.AcceptOptions{InsecureSkipVerify: true})
	if err != nil {
		s.log.Info("export stream: handshake failed", "err", err)
		return
	}
	defer conn.CloseNow()
	// The stream is one-way; reading only handles control frames and
	// notices when the consumer goes away.
	ctx = conn.CloseRead(ctx)

	send := func(b []byte) error {
		wctx, cancel := context.WithTimeout(ctx, streamWriteTimeout)
		defer cancel()
		return conn.Write(wctx, websocket.MessageText, b)
	}

	if cursor >= 0 {
		reason, err := s.backfillCheck(ctx, cursor)
		if err != nil {
			s.log.Error("export stream: cursor check", "err", err)
			conn.Close(websocket.StatusInternalError, "internal error")
			return
		}
		if reason != "" {
			conn.Close(websocket.StatusNormalClosure, reason)
			return
		}
		// Catch up from the store, then register and read the gap up to
		// the hub's position; the rest comes live.
		last, err := s.backfill(ctx, cursor, -1, send)
		if err != nil {
			return
		}
		var boundary int64
		if sub, boundary, err = s.hub.subscribe(ctx); err != nil {
			conn.Close(websocket.StatusGoingAway, "server shutting down")
			return
		}
		defer s.hub.unsubscribe(sub)
		if _, err := s.backfill(ctx, last, boundary, send); err != nil {
			return
		}
	}
	for {
		select {
		case <-sub.dropped:
			conn.Close(websocket.StatusNormalClosure, CloseConsumerTooSlow)
			return
		default:
		}
		select {
		case ev := <-sub.ch:
			if ev.seq <= skip {
				continue
			}
			if err := send(ev.data); err != nil {
				return
			}
		case <-sub.dropped:
			conn.Close(websocket.StatusNormalClosure, CloseConsumerTooSlow)
			return
		case <-s.hub.done:
			conn.Close(websocket.StatusGoingAway, "server shutting down")
			return
		case <-ctx.Done():
			return
		}
	}
}

// backfillCheck returns the close reason for a cursor that cannot be
// served: beyond the latest seq, or older than the catch-up window.
func (s *Server) backfillCheck(ctx context.Context, cursor int64) (string, error) {
	last, err := s.st.LastSeq(ctx)
	if err != nil {
		return "", err
	}
	if cursor > last {
		return CloseFutureCursor, nil
	}
	next, err := s.st.ExportSeq(ctx, cursor, 1)
	if err != nil {
		return "", err
	}
	if len(next) > 0 && next[0].CreatedAt.Before(s.cfg.Now().Add(-s.cfg.StreamCatchup)) {
		return CloseOutdatedCursor, nil
	}
	return "", nil
}

// backfill sends the stored operations with after < seq <= upto (no upper
// bound if upto < 0) and returns the last seq sent (after if none).
func (s *Server) backfill(ctx context.Context, after, upto int64, send func([]byte) error) (int64, error) {
	for upto < 0 || after < upto {
		entries, err := s.st.ExportSeq(ctx, after, streamPage)
		if err != nil {
			return after, err
		}
		for _, e := range entries {
			if upto >= 0 && e.Seq > upto {
				return after, nil
			}
			b, err := encodeSequenced(e)
			if err != nil {
				return after, err
			}
			if err := send(b); err != nil {
				return after, err
			}
			after = e.Seq
		}
		if len(entries) < streamPage {
			break
		}
	}
	return after, nil
}

// headerHasToken reports whether the comma-separated header name contains
// token, case-insensitively.
func headerHasToken(h http.Header, name, token string) bool {
	for _, v := range h.Values(name) {
		for part := range strings.SplitSeq(v, ",") {
			if strings.EqualFold(strings.TrimSpace(part), token) {
				return true
			}
		}
	}
	return false
}
