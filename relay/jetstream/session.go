package jetstream

import (
	"context"
	"errors"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/coder/websocket"
)

// maxCloseReason bounds the reason of a close frame: its payload holds at
// most 125 bytes, two of them the status code (RFC 6455, section 5.5).
const maxCloseReason = 123

// reasonTooSlow is the close reason of a dropped subscriber, the error
// name subscribeRepos sends in the same case.
const reasonTooSlow = "ConsumerTooSlow"

// session is one subscriber's connection.
type session struct {
	s      *Server
	ws     *websocket.Conn
	ctx    context.Context
	sub    *subscriber
	params Params
	hello  chan struct{} // closed at the first options_update

	minTime int64 // events before this time are not sent (the cursor)
	last    int64 // seq of the last log record handled

	mu      sync.Mutex
	failure string // why the subscriber is being disconnected
}

// readLoop reads what the subscriber sends: options_update messages
// replace its filter; other message types are ignored, and a malformed
// message ends the connection, as in Jetstream. The WebSocket library
// answers pings and close frames here. cancel ends the session when the
// loop stops.
func (cs *session) readLoop(cancel context.CancelFunc) {
	defer cancel()
	greeted, failed := false, false
	for {
		// Reads end when the connection closes, not with the session's
		// context: cancelling a read would close the connection before
		// the session could say why. After a bad message the loop goes on
		// reading (and discarding), so that the close handshake the
		// session then starts finds its reader.
		typ, msg, err := cs.ws.Read(context.Background())
		if err != nil {
			return
		}
		if failed || typ != websocket.MessageText {
			continue
		}
		f, err := ParseSubscriberMessage(msg)
		if errors.Is(err, ErrUnknownMessage) {
			continue
		}
		if err != nil {
			cs.mu.Lock()
			cs.failure = err.Error()
			cs.mu.Unlock()
			failed = true
			cancel()
			continue
		}
		cs.sub.filter.Store(f)
		if !greeted {
			greeted = true
			close(cs.hello)
		}
	}
}

func (cs *session) keepalive() {
	t := time.NewTicker(cs.s.opts.PingInterval)
	defer t.Stop()
	for {
		select {
		case <-cs.ctx.Done():
			return
		case <-t.C:
			// Not bound to the session's context: the library closes
			// the connection when a write's context ends, which would
			// cut off the close handshake the session starts then.
			ctx, cancel := context.WithTimeout(context.Background(), cs.s.opts.WriteTimeout)
			err := cs.ws.Ping(ctx)
			cancel()
			if err != nil {
				cs.ws.CloseNow()
				return
			}
		}
	}
}

// run sends the replay, if the subscriber gave a cursor, then live events
// until the connection ends. registered says the subscriber already takes
// live events.
func (cs *session) run(registered bool) error {
	s, p := cs.s, cs.params
	if p.RequireHello {
		select {
		case <-cs.hello:
		case <-cs.ctx.Done():
			return cs.end()
		case <-s.done:
			return cs.goingAway()
		}
	}
	if p.HasCursor {
		cs.minTime = p.Cursor
		// An op's event is timed up to MaxSpan-1 microseconds after its
		// record, so the replay starts that much before the cursor.
		if p.Cursor >= MaxSpan {
			pos, err := s.log.SeekTime(cs.ctx, time.UnixMicro(p.Cursor-(MaxSpan-1)))
			if err != nil {
				return cs.stop(err)
			}
			cs.last = pos
		}
		if err := cs.replay(); err != nil {
			return cs.stop(err)
		}
	}
	if !registered {
		if err := s.subscribe(cs.sub); err != nil {
			return cs.goingAway()
		}
		if p.HasCursor {
			// Whatever was logged between the replay and the
			// registration; live events up to here are skipped below.
			if err := cs.replay(); err != nil {
				return cs.stop(err)
			}
		}
	}
	for {
		// A dropped subscriber is told so before anything else is sent.
		select {
		case <-cs.sub.dropped:
			return cs.ws.Close(websocket.StatusPolicyViolation, reasonTooSlow)
		default:
		}
		select {
		case <-cs.sub.dropped:
			return cs.ws.Close(websocket.StatusPolicyViolation, reasonTooSlow)
		case b := <-cs.sub.ch:
			if b.seq <= cs.last {
				continue
			}
			for _, it := range b.items {
				if err := cs.send(it); err != nil {
					return err
				}
			}
			cs.last = b.seq
		case <-s.done:
			return cs.goingAway()
		case <-cs.ctx.Done():
			return cs.end()
		}
	}
}

// replay sends the events of the log records after cs.last, up to the
// end of the durable log.
func (cs *session) replay() error {
	s := cs.s
	for {
		recs, err := s.log.Read(cs.ctx, cs.last, s.opts.ReplayPage)
		if err != nil {
			return err
		}
		for _, r := range recs {
			if r.Seq <= cs.last {
				continue
			}
			// The log knows each record's account: skip unwanted ones
			// before converting them.
			if f := cs.sub.filter.Load(); r.DID == "" || f.WantsDID(string(r.DID)) {
				for _, it := range s.items(r, false) {
					if err := cs.send(it); err != nil {
						return err
					}
				}
			}
			cs.last = r.Seq
		}
		if len(recs) < s.opts.ReplayPage {
			return nil
		}
		select {
		case <-s.done:
			return errClosed
		case <-cs.ctx.Done():
			return cs.ctx.Err()
		default:
		}
	}
}

// send writes one event if the subscriber wants it.
func (cs *session) send(it *item) error {
	f := cs.sub.filter.Load()
	if it.timeUS < cs.minTime || !f.Wants(it.did, it.collection) {
		return nil
	}
	typ, msg := websocket.MessageText, it.json
	if cs.params.Compress {
		typ, msg = websocket.MessageBinary, it.compressed(cs.s.enc)
	}
	if !f.Fits(len(msg)) {
		return nil
	}
	// As in keepalive, the write's context is not the session's.
	ctx, cancel := context.WithTimeout(context.Background(), cs.s.opts.WriteTimeout)
	defer cancel()
	return cs.ws.Write(ctx, typ, msg)
}

// stop ends the session after a failed replay.
func (cs *session) stop(err error) error {
	switch {
	case errors.Is(err, errClosed):
		return cs.goingAway()
	case cs.ctx.Err() != nil:
		return cs.end()
	}
	cs.s.lg.Warn("jetstream: replaying from the log", "err", err)
	return cs.ws.Close(websocket.StatusInternalError, "log unavailable")
}

func (cs *session) goingAway() error {
	return cs.ws.Close(websocket.StatusGoingAway, "server shutting down")
}

// end closes a session whose context ended: with the reason, when the
// subscriber sent a bad message; otherwise the connection is gone.
func (cs *session) end() error {
	cs.mu.Lock()
	failure := cs.failure
	cs.mu.Unlock()
	if failure == "" {
		return cs.ctx.Err()
	}
	return cs.ws.Close(websocket.StatusPolicyViolation, truncateReason(failure))
}

// truncateReason cuts s to fit a close frame, at a character boundary.
func truncateReason(s string) string {
	if len(s) <= maxCloseReason {
		return s
	}
	s = s[:maxCloseReason]
	for len(s) > 0 && !utf8.ValidString(s) {
		s = s[:len(s)-1]
	}
	return s
}
