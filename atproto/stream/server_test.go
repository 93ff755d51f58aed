package stream

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/coder/websocket"
)

const testTimeout = 30 * time.Second

// testStream is a Log, a Server and a sequencer publishing to both.
type testStream struct {
	log *MemLog
	srv *Server
	url string
	mu  sync.Mutex
	seq int64
}

func newTestStream(t testing.TB, capacity int, opts *ServerOptions) *testStream {
	t.Helper()
	ts := &testStream{log: NewMemLog(capacity)}
	ts.srv = NewServer(ts.log, opts)
	hs := httptest.NewServer(ts.srv)
	ts.url = "ws" + strings.TrimPrefix(hs.URL, "http")
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
		defer cancel()
		if err := ts.srv.Shutdown(ctx); err != nil {
			t.Errorf("shutdown: %v", err)
		}
		hs.Close()
	})
	return ts
}

func commitFrame(t testing.TB, seq int64, did string, pad int) []byte {
	body := map[string]any{"seq": seq, "repo": did}
	if pad > 0 {
		body["blocks"] = make([]byte, pad)
	}
	f, err := EncodeFrame("#commit", body)
	if err != nil {
		t.Fatal(err)
	}
	return f
}

// publish sequences, logs and publishes one event.
func (ts *testStream) publish(t testing.TB, did string, pad int) int64 {
	ts.mu.Lock()
	defer ts.mu.Unlock()
	ts.seq++
	ev := Event{Seq: ts.seq, Frame: commitFrame(t, ts.seq, did, pad)}
	if err := ts.log.Append(ev); err != nil {
		t.Error(err)
	}
	ts.srv.Publish(ev)
	return ts.seq
}

func dial(t testing.TB, url string) *websocket.Conn {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	c, _, err := websocket.Dial(ctx, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	c.SetReadLimit(MaxFrameSize)
	t.Cleanup(func() { c.CloseNow() })
	return c
}

type frame struct {
	h   Header
	seq int64
	err *StreamError
	raw []byte
}

func readFrame(ctx context.Context, c *websocket.Conn) (frame, error) {
	_, b, err := c.Read(ctx)
	if err != nil {
		return frame{}, err
	}
	h, body, err := DecodeFrame(b)
	if err != nil {
		return frame{}, err
	}
	fr := frame{h: h, raw: body}
	if h.Op == OpError {
		fr.err, err = DecodeError(body)
		return fr, err
	}
	fr.seq, _, err = BodyInt(body, "seq")
	return fr, err
}

// readSeqs reads until n seq-bearing events have arrived.
func readSeqs(t testing.TB, c *websocket.Conn, n int) []int64 {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	var seqs []int64
	for len(seqs) < n {
		fr, err := readFrame(ctx, c)
		if err != nil {
			t.Fatalf("after %d events: %v", len(seqs), err)
		}
		if fr.h.Op != OpMessage || fr.h.T != "#commit" {
			t.Fatalf("unexpected frame %+v", fr.h)
		}
		seqs = append(seqs, fr.seq)
	}
	return seqs
}

func assertContiguous(t testing.TB, seqs []int64, from, to int64) {
	t.Helper()
	if int64(len(seqs)) != to-from+1 {
		t.Fatalf("got %d events, want %d (%d..%d)", len(seqs), to-from+1, from, to)
	}
	for i, s := range seqs {
		if s != from+int64(i) {
			t.Fatalf("event %d has seq %d, want %d", i, s, from+int64(i))
		}
	}
}

func TestBackfillThenLiveNoGap(t *testing.T) {
	ts := newTestStream(t, 100000, &ServerOptions{Buffer: 1 << 14, BackfillPage: 37, PingInterval: 5 * time.Millisecond})
	const writers, perWriter = 4, 500
	const total = writers * perWriter
	var wg sync.WaitGroup
	midway := make(chan struct{})
	var once sync.Once
	for w := 0; w < writers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < perWriter; i++ {
				if ts.publish(t, "did:plc:a", 0) >= total/4 {
					once.Do(func() { close(midway) })
				}
			}
		}()
	}
	<-midway
	// Connect mid-burst: from the start, from a cursor, and live.
	c0 := dial(t, ts.url+"?cursor=0")
	c100 := dial(t, ts.url+"?cursor=100")
	wg.Wait()
	assertContiguous(t, readSeqs(t, c0, total), 1, total)
	assertContiguous(t, readSeqs(t, c100, total-100), 101, total)

	// A live consumer sees exactly what is published after it connects.
	live := dial(t, ts.url)
	for i := 0; i < 50; i++ {
		ts.publish(t, "did:plc:a", 0)
	}
	assertContiguous(t, readSeqs(t, live, 50), total+1, total+50)
}

func TestOutdatedCursor(t *testing.T) {
	ts := newTestStream(t, 10, nil)
	for i := 0; i < 30; i++ {
		ts.publish(t, "did:plc:a", 0)
	}
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	for _, tc := range []struct {
		cursor int64
		info   bool
	}{{5, true}, {19, true}, {20, false}, {0, false}, {25, false}} {
		c := dial(t, fmt.Sprintf("%s?cursor=%d", ts.url, tc.cursor))
		if tc.info {
			fr, err := readFrame(ctx, c)
			if err != nil || fr.h.T != "#info" {
				t.Fatalf("cursor %d: first frame %+v %v", tc.cursor, fr.h, err)
			}
			if name, _, _ := BodyString(fr.raw, "name"); name != InfoOutdatedCursor {
				t.Fatalf("info name %q", name)
			}
		}
		from := max(tc.cursor+1, 21)
		assertContiguous(t, readSeqs(t, c, int(30-from+1)), from, 30)
	}
}

func TestFutureCursor(t *testing.T) {
	ts := newTestStream(t, 10, nil)
	ts.publish(t, "did:plc:a", 0)
	c := dial(t, ts.url+"?cursor=2")
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	fr, err := readFrame(ctx, c)
	if err != nil || fr.err == nil || fr.err.Name != ErrNameFutureCursor {
		t.Fatalf("got %+v %v", fr, err)
	}
	if _, _, err := c.Read(ctx); websocket.CloseStatus(err) == -1 {
		t.Fatalf("connection not closed: %v", err)
	}
}

func TestHTTPErrors(t *testing.T) {
	ts := newTestStream(t, 10, nil)
	u := "http" + strings.TrimPrefix(ts.url, "ws")
	for _, tc := range []struct {
		method, query string
		upgrade       bool
		code          int
	}{
		{"POST", "", true, http.StatusMethodNotAllowed},
		{"GET", "", false, http.StatusUpgradeRequired},
		{"GET", "?cursor=-1", true, http.StatusBadRequest},
		{"GET", "?cursor=x", true, http.StatusBadRequest},
	} {
		req, _ := http.NewRequest(tc.method, u+tc.query, nil)
		if tc.upgrade {
			req.Header.Set("Connection", "Upgrade")
			req.Header.Set("Upgrade", "websocket")
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != tc.code {
			t.Errorf("%s %s: status %d, want %d", tc.method, tc.query, resp.StatusCode, tc.code)
		}
	}
}

func TestSlowConsumerDropped(t *testing.T) {
	ts := newTestStream(t, 1<<20, &ServerOptions{Buffer: 8, WriteTimeout: testTimeout})
	slow := dial(t, ts.url) // never reads until dropped
	fast := dial(t, ts.url)
	if ts.srv.Consumers() != 2 {
		// Both are registered before their handshakes complete.
		t.Fatal("consumers not registered")
	}
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	// Publish in step with the fast consumer until the slow one, whose
	// socket buffers fill with 16 KiB frames, falls behind.
	var n int64
	for ts.srv.Dropped() == 0 {
		if n > 100000 {
			t.Fatal("slow consumer never dropped")
		}
		n = ts.publish(t, "did:plc:a", 16<<10)
		fr, err := readFrame(ctx, fast)
		if err != nil || fr.seq != n {
			t.Fatalf("fast consumer: seq %d, want %d: %v", fr.seq, n, err)
		}
	}
	// The fast consumer keeps receiving after the slow one is gone.
	for i := 0; i < 10; i++ {
		n = ts.publish(t, "did:plc:a", 0)
		assertContiguous(t, readSeqs(t, fast, 1), n, n)
	}
	if ts.srv.Consumers() != 1 || ts.srv.Dropped() != 1 {
		t.Fatalf("consumers %d dropped %d", ts.srv.Consumers(), ts.srv.Dropped())
	}
	// The slow consumer gets what was sent, in order, then the error.
	var last int64
	for {
		fr, err := readFrame(ctx, slow)
		if err != nil {
			t.Fatalf("slow consumer after seq %d: %v", last, err)
		}
		if fr.err != nil {
			if fr.err.Name != ErrNameConsumerTooSlow {
				t.Fatalf("error %v", fr.err)
			}
			break
		}
		if fr.seq != last+1 {
			t.Fatalf("slow consumer: seq %d after %d", fr.seq, last)
		}
		last = fr.seq
	}
	if _, _, err := slow.Read(ctx); err == nil {
		t.Fatal("slow consumer still connected")
	}
}

// switchHandler lets a test replace the server behind one URL.
type switchHandler struct{ h atomic.Pointer[Server] }

func (s *switchHandler) ServeHTTP(w http.ResponseWriter, r *http.Request) { s.h.Load().ServeHTTP(w, r) }

func TestReconnectResumesFromCursor(t *testing.T) {
	log := NewMemLog(1000)
	s1 := NewServer(log, nil)
	sw := &switchHandler{}
	sw.h.Store(s1)
	hs := httptest.NewServer(sw)
	defer hs.Close()
	url := "ws" + strings.TrimPrefix(hs.URL, "http")
	var seq int64
	pub := func(s *Server, n int) {
		for i := 0; i < n; i++ {
			seq++
			ev := Event{Seq: seq, Frame: commitFrame(t, seq, "did:plc:a", 0)}
			if err := log.Append(ev); err != nil {
				t.Fatal(err)
			}
			s.Publish(ev)
		}
	}
	pub(s1, 50)

	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	var mu sync.Mutex
	var got []int64
	reached := make(chan int64, 200)
	var persisted atomic.Int64
	stop := errors.New("stop")
	handler := func(_ context.Context, m Message) error {
		if m.Seq == 80 && persisted.Load() < 80 {
			return stop // fail once: the cursor must stay at 79
		}
		mu.Lock()
		got = append(got, m.Seq)
		mu.Unlock()
		reached <- m.Seq
		return nil
	}
	opts := &SubscribeOptions{
		OnCursor:   func(s int64) { persisted.Store(s) },
		MinBackoff: time.Millisecond,
		MaxBackoff: 10 * time.Millisecond,
	}
	errc := make(chan error, 1)
	go func() { errc <- Subscribe(ctx, url, 0, handler, opts) }()
	for s := int64(0); s < 50; {
		s = <-reached
	}
	// Graceful shutdown of the first server; the consumer reconnects to
	// the second, which shares the log, and resumes.
	s2 := NewServer(log, nil)
	sw.h.Store(s2)
	if err := s1.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	pub(s2, 50)
	if err := <-errc; !errors.Is(err, stop) {
		t.Fatalf("Subscribe: %v", err)
	}
	if p := persisted.Load(); p != 79 {
		t.Fatalf("persisted cursor %d, want 79", p)
	}
	// A new subscription from the persisted cursor picks up the rest.
	persisted.Store(80) // let seq 80 through this time
	go func() { errc <- Subscribe(ctx, url, 79, handler, opts) }()
	for s := int64(0); s < 100; {
		s = <-reached
	}
	cancel()
	if err := <-errc; !errors.Is(err, context.Canceled) {
		t.Fatalf("Subscribe: %v", err)
	}
	mu.Lock()
	assertContiguous(t, got, 1, 100)
	mu.Unlock()
	sctx, scancel := context.WithTimeout(context.Background(), testTimeout)
	defer scancel()
	if err := s2.Shutdown(sctx); err != nil {
		t.Fatal(err)
	}
}

func TestSubscribeFutureCursor(t *testing.T) {
	ts := newTestStream(t, 10, nil)
	ts.publish(t, "did:plc:a", 0)
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	err := Subscribe(ctx, ts.url, 5, func(context.Context, Message) error { return nil }, &SubscribeOptions{MinBackoff: time.Millisecond})
	if !errors.Is(err, ErrFutureCursor) {
		t.Fatalf("got %v", err)
	}
}

func TestDispatcherPerDIDOrder(t *testing.T) {
	ts := newTestStream(t, 10000, nil)
	const n, dids = 2000, 13
	for i := 0; i < n; i++ {
		ts.publish(t, fmt.Sprintf("did:plc:%d", i*7%dids), 0)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var mu sync.Mutex
	lastByDID := map[string]int64{}
	var handled atomic.Int64
	var active, peak atomic.Int64
	var cursorMu sync.Mutex
	var cursors []int64
	done := make(chan struct{})
	handler := func(_ context.Context, m Message) error {
		a := active.Add(1)
		for p := peak.Load(); a > p && !peak.CompareAndSwap(p, a); p = peak.Load() {
		}
		did := RepoKey(m)
		mu.Lock()
		if prev := lastByDID[did]; m.Seq <= prev {
			t.Errorf("%s: seq %d after %d", did, m.Seq, prev)
		}
		lastByDID[did] = m.Seq
		mu.Unlock()
		active.Add(-1)
		return nil
	}
	opts := &SubscribeOptions{
		Workers: 4,
		OnCursor: func(s int64) {
			cursorMu.Lock()
			cursors = append(cursors, s)
			cursorMu.Unlock()
			if handled.Add(1); s == n {
				close(done)
			}
		},
	}
	errc := make(chan error, 1)
	go func() { errc <- Subscribe(ctx, ts.url, 0, handler, opts) }()
	select {
	case <-done:
	case err := <-errc:
		t.Fatal(err)
	}
	cancel()
	<-errc
	if len(lastByDID) != dids {
		t.Fatalf("%d dids", len(lastByDID))
	}
	cursorMu.Lock()
	defer cursorMu.Unlock()
	for i := 1; i < len(cursors); i++ {
		if cursors[i] <= cursors[i-1] {
			t.Fatalf("cursor went from %d to %d", cursors[i-1], cursors[i])
		}
	}
	t.Logf("peak concurrent handlers %d, cursor reports %d", peak.Load(), len(cursors))
}

// TestFlushDelay: with a flush delay, a lone event still arrives, and
// events published together arrive in order.
func TestFlushDelay(t *testing.T) {
	ts := newTestStream(t, 100, &ServerOptions{FlushDelay: 20 * time.Millisecond})
	c := dial(t, ts.url) // a live consumer is registered once dialled
	ts.publish(t, "did:plc:a", 0)
	assertContiguous(t, readSeqs(t, c, 1), 1, 1)
	for range 5 {
		ts.publish(t, "did:plc:a", 0)
	}
	assertContiguous(t, readSeqs(t, c, 5), 2, 6)
}

// TestFlushDelayNudged: a consumer waiting out a long flush delay gets
// its events once a full batch is queued, and the server shuts down
// without waiting for the delay.
func TestFlushDelayNudged(t *testing.T) {
	ts := newTestStream(t, 100, &ServerOptions{Buffer: 16, FlushDelay: time.Hour})
	c := dial(t, ts.url)
	// The consumer takes the first and waits; the next 8, half of
	// Buffer, make a full batch queued behind it.
	for range 9 {
		ts.publish(t, "did:plc:a", 0)
	}
	assertContiguous(t, readSeqs(t, c, 9), 1, 9)
	ts.publish(t, "did:plc:a", 0) // waits out the hour, unless shut down
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	go func() { // reads on, and so answers the server's close
		for {
			if _, _, err := c.Read(ctx); err != nil {
				return
			}
		}
	}()
	if err := ts.srv.Shutdown(ctx); err != nil {
		t.Fatalf("shutdown during a flush delay: %v", err)
	}
}
