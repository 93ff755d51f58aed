package jetstream

import (
	"context"
	"encoding/json"
	"errors"
	"sync"
	"sync/atomic"

	"github.com/klauspost/compress/zstd"

	"github.com/welkin-atproto/welkin/relay/eventlog"
)

// item is one event ready to send: its JSON, encoded once, and its zstd
// form, made once on first need. Items of live events are shared by every
// subscriber and never modified.
type item struct {
	timeUS     int64
	did        string
	collection string
	json       []byte

	zOnce sync.Once
	zst   []byte
}

// compressed returns the item's zstd message.
func (it *item) compressed(enc *zstd.Encoder) []byte {
	it.zOnce.Do(func() { it.zst = enc.EncodeAll(it.json, nil) })
	return it.zst
}

// batch is the items of one log record.
type batch struct {
	seq   int64
	items []*item
}

// subscriber is one connection's place in the live fan-out.
type subscriber struct {
	filter  atomic.Pointer[Filter]
	ch      chan *batch
	dropped chan struct{} // closed when the subscriber fell behind
}

// wantsAny reports whether any item of b passes the subscriber's filter.
func (c *subscriber) wantsAny(b *batch) bool {
	f := c.filter.Load()
	for _, it := range b.items {
		if f.Wants(it.did, it.collection) {
			return true
		}
	}
	return false
}

// items converts one log record into its items.
func (s *Server) items(r eventlog.Record, live bool) []*item {
	evs, err := FromFrame(r.Time, r.Frame)
	if err != nil {
		lvl := s.lg.Debug
		if live {
			lvl = s.lg.Warn
		}
		lvl("jetstream: converting a logged event", "seq", r.Seq, "err", err)
	}
	out := make([]*item, 0, len(evs))
	for i := range evs {
		ev := &evs[i]
		b, err := json.Marshal(ev)
		if err != nil {
			s.lg.Warn("jetstream: encoding an event", "seq", r.Seq, "did", ev.DID, "err", err)
			continue
		}
		out = append(out, &item{timeUS: ev.TimeUS, did: ev.DID, collection: ev.Collection(), json: b})
	}
	return out
}

// tail follows the log from after seq pos and hands every new record,
// converted once, to the live subscribers. While there are none it only
// keeps its place: a subscriber that registers replays from the log
// whatever came before, so nothing is lost by not converting it here.
func (s *Server) tail(ctx context.Context, pos int64) {
	defer close(s.hubDone)
	for {
		durable, err := s.log.Wait(ctx, pos)
		if err != nil {
			return // the log closed, or Shutdown
		}
		if !s.listening() {
			pos = durable
			continue
		}
		recs, err := s.log.Read(ctx, pos, s.opts.ReplayPage)
		if err != nil {
			if ctx.Err() != nil || errors.Is(err, eventlog.ErrClosed) {
				return
			}
			s.lg.Error("jetstream: reading the log; live subscribers miss the events up to its end", "after", pos, "to", durable, "err", err)
			pos = durable
			continue
		}
		if len(recs) == 0 {
			pos = durable
			continue
		}
		for _, r := range recs {
			s.publish(&batch{seq: r.Seq, items: s.items(r, true)})
			pos = r.Seq
		}
	}
}

// listening reports whether any subscriber takes live events.
func (s *Server) listening() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.subs) > 0
}

// publish queues b to every subscriber that wants any of it; one whose
// queue is full is dropped.
func (s *Server) publish(b *batch) {
	if len(b.items) == 0 {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for c := range s.subs {
		if !c.wantsAny(b) {
			continue
		}
		select {
		case c.ch <- b:
		default:
			delete(s.subs, c)
			close(c.dropped)
			s.dropped.Add(1)
		}
	}
}

func (s *Server) subscribe(c *subscriber) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return errClosed
	}
	s.subs[c] = struct{}{}
	return nil
}

func (s *Server) unsubscribe(c *subscriber) {
	s.mu.Lock()
	delete(s.subs, c)
	s.mu.Unlock()
}
