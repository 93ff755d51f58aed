package stream

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/http"
	"net/url"
	"strconv"
	"sync"
	"time"

	"github.com/coder/websocket"
)

// Message is one frame received from a stream.
type Message struct {
	Header Header
	Body   []byte // the payload's DAG-CBOR; decode with data.UnmarshalCBORInto
	Seq    int64  // the body's "seq" field, 0 when it has none (#info)
}

// Handler processes one message. An error stops Subscribe, which returns
// it; the cursor does not advance past a failed message.
type Handler func(ctx context.Context, m Message) error

// KeyFunc names the ordering domain of a message: messages with one key
// are handled in order, messages with different keys may run in parallel.
type KeyFunc func(m Message) string

// RepoKey keys a message by its account: the body's "repo" field (#commit)
// or else its "did" field (#identity, #account, #sync).
func RepoKey(m Message) string {
	if s, ok, _ := BodyString(m.Body, "repo"); ok {
		return s
	}
	s, _, _ := BodyString(m.Body, "did")
	return s
}

// SubscribeOptions tune Subscribe. Zero values take the defaults.
type SubscribeOptions struct {
	// OnCursor is called with the seq up to which every message has been
	// handled; persist it to resume from after a restart. Calls are
	// serialized and increasing.
	OnCursor func(seq int64)
	// OnError, when set, is told of each connection failure before the
	// next attempt.
	OnError func(err error)
	// Workers > 1 handles messages with Workers goroutines, sharded by
	// Key (default RepoKey), in order per key. QueueLen bounds each
	// worker's queue (default 64).
	Workers  int
	Key      KeyFunc
	QueueLen int
	// MinBackoff and MaxBackoff bound the jittered exponential delay
	// between connection attempts. Defaults 500ms and 30s.
	MinBackoff, MaxBackoff time.Duration
	// HTTPClient dials the WebSocket. Default http.DefaultClient.
	HTTPClient *http.Client
}

// ErrFutureCursor is returned (wrapped in a *StreamError, matched with
// errors.Is) when the server reports the cursor is ahead of its stream:
// reconnecting would not help.
var ErrFutureCursor = errors.New("stream: cursor is in the future")

// Is matches a FutureCursor StreamError with ErrFutureCursor.
func (e *StreamError) Is(target error) bool {
	return target == ErrFutureCursor && e.Name == ErrNameFutureCursor
}

// Subscribe consumes the stream at rawURL (ws:// or wss://, any query
// parameters kept) until ctx ends or handler fails, reconnecting with
// backoff after any connection failure and resuming after the last seq
// received. cursor < 0 starts live; otherwise it is the last seq already
// handled. Out-of-order or repeated seqs drop the connection and are not
// handled. opts may be nil.
func Subscribe(ctx context.Context, rawURL string, cursor int64, handler Handler, opts *SubscribeOptions) error {
	var o SubscribeOptions
	if opts != nil {
		o = *opts
	}
	if o.MinBackoff <= 0 {
		o.MinBackoff = 500 * time.Millisecond
	}
	if o.MaxBackoff < o.MinBackoff {
		o.MaxBackoff = max(30*time.Second, o.MinBackoff)
	}
	if o.Key == nil {
		o.Key = RepoKey
	}
	u, err := url.Parse(rawURL)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()

	var d *Dispatcher
	if o.Workers > 1 {
		d = NewDispatcher(o.Workers, o.QueueLen, o.Key, handler, o.OnCursor)
		defer d.Close()
		// A failed handler ends the subscription.
		defer context.AfterFunc(d.ctx, cancel)()
	}
	handle := func(m Message) error {
		if d != nil {
			return d.Dispatch(ctx, m)
		}
		if err := handler(ctx, m); err != nil {
			return err
		}
		if m.Seq > 0 && o.OnCursor != nil {
			o.OnCursor(m.Seq)
		}
		return nil
	}

	backoff := o.MinBackoff
	for {
		got, err := subscribeOnce(ctx, o.HTTPClient, u, &cursor, handle)
		var herr *handlerError
		switch {
		case errors.As(err, &herr):
			return herr.err
		case errors.Is(err, ErrFutureCursor):
			return err
		case ctx.Err() != nil:
			if d != nil {
				if derr := d.Err(); derr != nil {
					return derr
				}
			}
			return ctx.Err()
		}
		if o.OnError != nil && err != nil {
			o.OnError(err)
		}
		if got {
			backoff = o.MinBackoff
		}
		wait := backoff/2 + rand.N(backoff/2+1)
		backoff = min(backoff*2, o.MaxBackoff)
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			continue // reported at the top of the loop
		case <-t.C:
		}
	}
}

type handlerError struct{ err error }

func (e *handlerError) Error() string { return e.err.Error() }

// subscribeOnce runs one connection; got reports whether any message came.
func subscribeOnce(ctx context.Context, client *http.Client, u *url.URL, cursor *int64, handle func(Message) error) (got bool, err error) {
	cu := *u
	if *cursor >= 0 {
		q := cu.Query()
		q.Set("cursor", strconv.FormatInt(*cursor, 10))
		cu.RawQuery = q.Encode()
	}
	conn, _, err := websocket.Dial(ctx, cu.String(), &websocket.DialOptions{HTTPClient: client})
	if err != nil {
		return false, err
	}
	defer conn.CloseNow()
	conn.SetReadLimit(MaxFrameSize)
	for {
		typ, b, err := conn.Read(ctx)
		if err != nil {
			return got, err
		}
		if typ != websocket.MessageBinary {
			conn.Close(websocket.StatusUnsupportedData, "binary frames only")
			return got, errors.New("stream: text frame")
		}
		h, body, err := DecodeFrame(b)
		if errors.Is(err, ErrUnknownOp) {
			continue
		}
		if err != nil {
			conn.Close(websocket.StatusUnsupportedData, "invalid frame")
			return got, err
		}
		if h.Op == OpError {
			se, err := DecodeError(body)
			if err != nil {
				return got, err
			}
			conn.Close(websocket.StatusNormalClosure, "")
			return got, se
		}
		m := Message{Header: h, Body: body}
		seq, ok, err := BodyInt(body, "seq")
		if err != nil {
			return got, err
		}
		if ok {
			if seq <= 0 || (*cursor >= 0 && seq <= *cursor) {
				conn.Close(websocket.StatusProtocolError, "seq out of order")
				return got, fmt.Errorf("stream: seq %d after %d", seq, *cursor)
			}
			m.Seq = seq
		}
		got = true
		if err := handle(m); err != nil {
			return got, &handlerError{err}
		}
		if ok {
			*cursor = seq
		}
	}
}

// Dispatcher runs a Handler over a fixed set of workers, each message
// going to the worker its key hashes to: one key's messages are handled in
// arrival order, different keys in parallel. It tracks which seqs are done
// and reports, through onCursor, the highest seq at and below which every
// dispatched message has been handled. A worker and its queue are made
// when the first message for it comes, so a quiet stream costs none.
type Dispatcher struct {
	key      KeyFunc
	handler  Handler
	queueLen int
	wg       sync.WaitGroup
	ctx      context.Context
	cancel   context.CancelFunc

	mu       sync.Mutex
	queues   []chan *dispatched // nil until the worker starts
	pending  []*dispatched      // seq-bearing messages, in arrival order
	onCursor func(int64)
	err      error
}

type dispatched struct {
	m    Message
	done bool // guarded by Dispatcher.mu
}

// NewDispatcher returns a dispatcher of up to workers goroutines with
// queues of queueLen messages (default 64). onCursor may be nil.
func NewDispatcher(workers, queueLen int, key KeyFunc, h Handler, onCursor func(int64)) *Dispatcher {
	if workers < 1 {
		workers = 1
	}
	if queueLen < 1 {
		queueLen = 64
	}
	ctx, cancel := context.WithCancel(context.Background())
	return &Dispatcher{key: key, handler: h, queueLen: queueLen, ctx: ctx, cancel: cancel,
		onCursor: onCursor, queues: make([]chan *dispatched, workers)}
}

func fnv(s string) uint32 {
	h := uint32(2166136261)
	for i := 0; i < len(s); i++ {
		h ^= uint32(s[i])
		h *= 16777619
	}
	return h
}

// Dispatch queues m, waiting while its worker's queue is full. It fails
// once a handler has failed, or when ctx ends.
func (d *Dispatcher) Dispatch(ctx context.Context, m Message) error {
	item := &dispatched{m: m}
	w := fnv(d.key(m)) % uint32(len(d.queues))
	d.mu.Lock()
	if err := d.err; err != nil {
		d.mu.Unlock()
		return err
	}
	q := d.queues[w]
	if q == nil {
		q = make(chan *dispatched, d.queueLen)
		d.queues[w] = q
		d.wg.Add(1)
		go d.work(q)
	}
	if m.Seq > 0 {
		d.pending = append(d.pending, item)
	}
	d.mu.Unlock()
	select {
	case q <- item:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	case <-d.ctx.Done():
		if err := d.Err(); err != nil {
			return err
		}
		return errors.New("stream: dispatcher closed")
	}
}

func (d *Dispatcher) work(q chan *dispatched) {
	defer d.wg.Done()
	for it := range q {
		if d.ctx.Err() != nil {
			continue
		}
		if err := d.handler(d.ctx, it.m); err != nil {
			d.mu.Lock()
			if d.err == nil {
				d.err = err
			}
			d.mu.Unlock()
			d.cancel()
			continue
		}
		if it.m.Seq > 0 {
			d.markDone(it)
		}
	}
}

// markDone records it as handled and advances the cursor past every
// leading handled message.
func (d *Dispatcher) markDone(it *dispatched) {
	d.mu.Lock()
	defer d.mu.Unlock()
	it.done = true
	var adv int64
	n := 0
	for n < len(d.pending) && d.pending[n].done {
		adv = d.pending[n].m.Seq
		n++
	}
	if n > 0 {
		d.pending = append(d.pending[:0], d.pending[n:]...)
		if d.onCursor != nil {
			// Called under the lock so that calls stay ordered.
			d.onCursor(adv)
		}
	}
}

// Err reports the first handler error.
func (d *Dispatcher) Err() error {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.err
}

// Close finishes the queued messages and stops the workers. Dispatch must
// not be called after Close.
func (d *Dispatcher) Close() error {
	d.mu.Lock()
	for _, q := range d.queues {
		if q != nil {
			close(q)
		}
	}
	d.mu.Unlock()
	d.wg.Wait()
	d.cancel()
	return d.Err()
}
