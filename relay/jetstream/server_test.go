package jetstream

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/welkin-atproto/welkin/atproto/syntax"
	"github.com/welkin-atproto/welkin/relay/eventlog"
)

// harness is a Server on a loopback port over a test log.
type harness struct {
	log  *testLog
	srv  *Server
	base string // http://127.0.0.1:PORT
}

func newHarness(t *testing.T, l *testLog, opts Options) *harness {
	t.Helper()
	if l == nil {
		l = openTestLog(t)
	}
	if opts.Logger == nil {
		opts.Logger = quietLogger()
	}
	if opts.Now == nil {
		opts.Now = l.clock.Now
	}
	srv, err := NewServer(l.Log, &opts)
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	mux.Handle("GET /subscribe", srv)
	hs := httptest.NewServer(mux) // 127.0.0.1, a free port
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
		defer cancel()
		if err := srv.Shutdown(ctx); err != nil {
			t.Errorf("Shutdown: %v", err)
		}
		hs.Close()
	})
	return &harness{log: l, srv: srv, base: hs.URL}
}

// client is a subscriber connection.
type client struct {
	t    *testing.T
	ws   *websocket.Conn
	comp bool
}

func (h *harness) dial(t *testing.T, query string, header http.Header) *client {
	t.Helper()
	u := strings.Replace(h.base, "http://", "ws://", 1) + "/subscribe"
	if query != "" {
		u += "?" + query
	}
	ws, _, err := websocket.Dial(testCtx(t), u, &websocket.DialOptions{HTTPHeader: header})
	if err != nil {
		t.Fatalf("dialing %s: %v", u, err)
	}
	ws.SetReadLimit(-1)
	t.Cleanup(func() { ws.CloseNow() })
	q, _ := url.ParseQuery(query)
	return &client{t: t, ws: ws, comp: q.Get("compress") == "true" || strings.Contains(header.Get("Socket-Encoding"), "zstd")}
}

// waitLive waits until n subscribers take live events.
func (h *harness) waitLive(t *testing.T, n int) {
	t.Helper()
	deadline := time.Now().Add(testTimeout)
	for h.srv.Subscribers() != n {
		if time.Now().After(deadline) {
			t.Fatalf("%d live subscribers, want %d", h.srv.Subscribers(), n)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

// next reads one event, as JSON text (uncompressed if need be).
func (c *client) next() (Event, []byte) {
	c.t.Helper()
	typ, msg, err := c.ws.Read(testCtx(c.t))
	if err != nil {
		c.t.Fatalf("reading an event: %v", err)
	}
	if c.comp {
		if typ != websocket.MessageBinary {
			c.t.Fatalf("a compressed stream sent a %v message", typ)
		}
		dec, err := NewDecoder()
		if err != nil {
			c.t.Fatal(err)
		}
		defer dec.Close()
		if msg, err = dec.DecodeAll(msg, nil); err != nil {
			c.t.Fatalf("decompressing: %v", err)
		}
	} else if typ != websocket.MessageText {
		c.t.Fatalf("a JSON stream sent a %v message", typ)
	}
	var ev Event
	if err := json.Unmarshal(msg, &ev); err != nil {
		c.t.Fatalf("%s: %v", msg, err)
	}
	return ev, msg
}

// expect reads len(want) events and checks each against want, as JSON.
func (c *client) expect(want ...[]byte) {
	c.t.Helper()
	for i, w := range want {
		_, got := c.next()
		if string(got) != string(w) {
			c.t.Fatalf("event %d:\n got %s\nwant %s", i, got, w)
		}
	}
}

// closed reads until the connection ends and returns its close error.
func (c *client) closed() error {
	c.t.Helper()
	for {
		if _, _, err := c.ws.Read(testCtx(c.t)); err != nil {
			return err
		}
	}
}

// events is the JSON of every event the records yield.
func events(t *testing.T, recs ...eventlog.Record) [][]byte {
	t.Helper()
	var out [][]byte
	for _, r := range recs {
		evs, err := FromFrame(r.Time, r.Frame)
		if err != nil {
			t.Fatal(err)
		}
		for i := range evs {
			b, err := json.Marshal(&evs[i])
			if err != nil {
				t.Fatal(err)
			}
			out = append(out, b)
		}
	}
	return out
}

const (
	alice = syntax.DID("did:plc:alice0000000000000000000")
	bob   = syntax.DID("did:plc:bob000000000000000000000")
)

func TestLive(t *testing.T) {
	h := newHarness(t, nil, Options{})
	c := h.dial(t, "", nil)
	h.waitLive(t, 1)
	r := newTestRepo(t, alice)
	f1, _ := r.commit(t, put("app.bsky.feed.post", "3l3qo2vutsw2b", post(t, "one")), put("app.bsky.feed.post", "3l3qo2vutsw2c", post(t, "two")))
	recs := h.log.append(t, alice, f1, identityFrame(t, string(alice), "alice.test", 2), accountFrame(t, string(alice), true, "", 3))
	want := events(t, recs...)
	if len(want) != 4 {
		t.Fatalf("%d events, want 4", len(want))
	}
	c.expect(want...)
	var times []int64
	for _, w := range want {
		var ev Event
		json.Unmarshal(w, &ev)
		times = append(times, ev.TimeUS)
	}
	for i := 1; i < len(times); i++ {
		if times[i] <= times[i-1] {
			t.Fatalf("time_us %d follows %d", times[i], times[i-1])
		}
	}
}

// replayLog fills a log: a three-op commit, then (a second later) an
// identity event, then (a second later) a one-op commit, and returns the
// events' JSON.
func replayLog(t *testing.T, l *testLog) [][]byte {
	t.Helper()
	r := newTestRepo(t, alice)
	f1, _ := r.commit(t, put("app.bsky.feed.post", "3l3qo2vutsw2b", post(t, "one")),
		put("app.bsky.feed.post", "3l3qo2vutsw2c", post(t, "two")), put("app.bsky.feed.like", "3l3qo2vutsw2d", post(t, "three")))
	recs := l.append(t, alice, f1)
	l.clock.Advance(time.Second)
	recs = append(recs, l.append(t, alice, identityFrame(t, string(alice), "alice.test", 2))...)
	l.clock.Advance(time.Second)
	f3, _ := r.commit(t, del("app.bsky.feed.post", "3l3qo2vutsw2b"))
	recs = append(recs, l.append(t, alice, f3)...)
	return events(t, recs...)
}

func timeOf(t *testing.T, js []byte) int64 {
	var ev Event
	if err := json.Unmarshal(js, &ev); err != nil {
		t.Fatal(err)
	}
	return ev.TimeUS
}

func TestCursorReplay(t *testing.T) {
	h := newHarness(t, nil, Options{ReplayPage: 2})
	all := replayLog(t, h.log)
	if len(all) != 5 {
		t.Fatalf("%d events, want 5", len(all))
	}
	for _, tc := range []struct {
		name   string
		cursor int64
		from   int // index of the first event replayed
	}{
		{"zero", 0, 0},
		{"negative", -5, 0},
		{"before the log", timeOf(t, all[0]) - int64(time.Hour/time.Microsecond), 0},
		{"first event", timeOf(t, all[0]), 0},
		{"inside a commit", timeOf(t, all[1]), 1},
		{"between commit ops", timeOf(t, all[2]), 2},
		{"just after a commit", timeOf(t, all[2]) + 1, 3},
		{"identity", timeOf(t, all[3]), 3},
		{"last event", timeOf(t, all[4]), 4},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := h.dial(t, fmt.Sprintf("cursor=%d", tc.cursor), nil)
			c.expect(all[tc.from:]...)
			h.waitLive(t, 1)
			// Then live events, once each.
			live := events(t, h.log.append(t, bob, identityFrame(t, string(bob), "bob.test", 9))...)
			c.expect(live...)
			all = append(all, live...)
			c.ws.Close(websocket.StatusNormalClosure, "")
			h.waitLive(t, 0)
		})
	}
}

// TestCursorPruned checks a cursor older than the log's retention: the
// replay starts at the oldest event retained.
func TestCursorPruned(t *testing.T) {
	c := newClock()
	el, err := eventlog.Open(eventlog.Options{Dir: t.TempDir(), Now: c.Now, Span: Span, SegmentSize: 1024,
		Retention: time.Hour, PruneInterval: -1, Logger: quietLogger()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { el.Close() })
	l := &testLog{Log: el, clock: c}
	var recs []eventlog.Record
	for i := range 12 {
		recs = append(recs, l.append(t, alice, identityFrame(t, string(alice), "alice.test", int64(i)))...)
		c.Advance(10 * time.Minute)
	}
	if n, err := el.Prune(); err != nil || n == 0 {
		t.Fatalf("Prune = %d, %v; want segments deleted", n, err)
	}
	oldest, _ := el.OldestSeq(testCtx(t))
	h := newHarness(t, l, Options{})
	cl := h.dial(t, fmt.Sprintf("cursor=%d", recs[0].Time.UnixMicro()), nil)
	cl.expect(events(t, recs[oldest-1:]...)...)
}

// TestCursorFuture checks that a cursor after the clock means live only.
func TestCursorFuture(t *testing.T) {
	h := newHarness(t, nil, Options{})
	replayLog(t, h.log)
	c := h.dial(t, fmt.Sprintf("cursor=%d", h.log.clock.Now().Add(time.Hour).UnixMicro()), nil)
	h.waitLive(t, 1)
	live := events(t, h.log.append(t, bob, identityFrame(t, string(bob), "bob.test", 9))...)
	c.expect(live...)
}

// TestReplayCutover writes while subscribers replay from the start: each
// must see every event exactly once, in order.
func TestReplayCutover(t *testing.T) {
	h := newHarness(t, nil, Options{ReplayPage: 3})
	const before, during = 20, 200
	frame := func(i int) []byte { return identityFrame(t, string(alice), "alice.test", int64(i)) }
	for i := range before {
		h.log.append(t, alice, frame(i))
	}
	done := make(chan error, 1)
	go func() {
		for i := range during {
			if _, err := h.log.AppendBatch(1, func(int, int64) ([]byte, syntax.DID, error) {
				return frame(before + i), alice, nil
			}); err != nil {
				done <- err
				return
			}
		}
		done <- nil
	}()
	clients := []*client{h.dial(t, "cursor=0", nil), h.dial(t, "cursor=0&compress=true", nil), h.dial(t, "cursor=1", nil)}
	for n, c := range clients {
		last := int64(0)
		for i := range before + during {
			ev, _ := c.next()
			if ev.Identity == nil || ev.Identity.Seq != int64(i) {
				t.Fatalf("client %d, event %d: %+v", n, i, ev)
			}
			if ev.TimeUS <= last {
				t.Fatalf("client %d: time_us %d after %d", n, ev.TimeUS, last)
			}
			last = ev.TimeUS
		}
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}

func TestCompressed(t *testing.T) {
	h := newHarness(t, nil, Options{})
	all := replayLog(t, h.log)
	for _, tc := range []struct {
		query  string
		header http.Header
	}{
		{"cursor=0&compress=true", nil},
		{"cursor=0", http.Header{"Socket-Encoding": {"zstd"}}},
	} {
		c := h.dial(t, tc.query, tc.header)
		if !c.comp {
			t.Fatal("the client does not expect compression")
		}
		c.expect(all...) // next checks binary messages and decompresses
	}
}

// TestDictionaryIsPublished checks the embedded dictionary against the
// copy of Jetstream's published one in ../shared.
func TestDictionaryIsPublished(t *testing.T) {
	const path = "../../../shared/jetstream/zstd_dictionary"
	want, err := readShared(path)
	if err != nil {
		if ciRun() {
			t.Fatalf("reading %s: %v", path, err)
		}
		t.Skipf("SKIPPING: the published dictionary is not at %s (%v)", path, err)
	}
	if string(Dictionary()) != string(want) {
		t.Fatal("the embedded dictionary differs from Jetstream's published one")
	}
}

func TestFiltersOnTheWire(t *testing.T) {
	h := newHarness(t, nil, Options{})
	ra, rb := newTestRepo(t, alice), newTestRepo(t, bob)
	fa, _ := ra.commit(t, put("app.bsky.feed.post", "3l3qo2vutsw2b", post(t, "a post")), put("app.bsky.graph.follow", "3l3qo2vutsw2c", post(t, "a follow")))
	fb, _ := rb.commit(t, put("app.bsky.graph.follow", "3l3qo2vutsw2b", post(t, "bob's follow")))
	ra1 := h.log.append(t, alice, fa)
	rb1 := h.log.append(t, bob, fb, identityFrame(t, string(bob), "bob.test", 5))
	ra2 := h.log.append(t, alice, identityFrame(t, string(alice), "alice.test", 6))
	ea, eb, ea2 := events(t, ra1...), events(t, rb1...), events(t, ra2...)

	c := h.dial(t, "cursor=0&wantedCollections=app.bsky.graph.*&wantedDids="+string(alice), nil)
	c.expect(ea[1], ea2[0])
	c = h.dial(t, "cursor=0&wantedCollections=app.bsky.feed.post&wantedCollections=app.bsky.graph.follow", nil)
	c.expect(ea[0], ea[1], eb[0], eb[1], ea2[0])
	c = h.dial(t, "cursor=0&wantedDids="+string(bob), nil)
	c.expect(eb...)
	// maxMessageSizeBytes leaves out what is larger.
	size := len(eb[1])
	c = h.dial(t, fmt.Sprintf("cursor=0&wantedDids=%s&maxMessageSizeBytes=%d", bob, size), nil)
	c.expect(eb[1])
}

func TestBadParams(t *testing.T) {
	h := newHarness(t, nil, Options{})
	many := func(name, format string, n int) string {
		v := url.Values{}
		for i := range n {
			v.Add(name, fmt.Sprintf(format, i))
		}
		return v.Encode()
	}
	for _, tc := range []struct {
		query, want string
	}{
		{"cursor=soon", "invalid cursor: soon"},
		{"wantedCollections=app.bsky", "invalid subscriber options: invalid collection: app.bsky"},
		{"wantedCollections=app.bsky.feed.po*", "invalid subscriber options: invalid collection: app.bsky.feed.po*"},
		{"wantedDids=alice", "invalid subscriber options: invalid DID: alice"},
		{many("wantedCollections", "com.example.c%d", MaxWantedCollections+1), "invalid subscriber options: too many wanted collections"},
		{many("wantedDids", "did:plc:%024d", MaxWantedDIDs+1), "invalid subscriber options: too many wanted DIDs"},
	} {
		// Bad parameters are refused before the upgrade, WebSocket or not.
		for _, upgrade := range []bool{false, true} {
			req, _ := http.NewRequestWithContext(testCtx(t), http.MethodGet, h.base+"/subscribe?"+tc.query, nil)
			if upgrade {
				req.Header.Set("Connection", "Upgrade")
				req.Header.Set("Upgrade", "websocket")
				req.Header.Set("Sec-WebSocket-Version", "13")
				req.Header.Set("Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ==")
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			var body []byte
			if resp.StatusCode != http.StatusSwitchingProtocols {
				body, _ = io.ReadAll(resp.Body)
			}
			resp.Body.Close()
			if resp.StatusCode != http.StatusBadRequest || strings.TrimSpace(string(body)) != tc.want {
				t.Errorf("%.60s: %d %q, want 400 %q", tc.query, resp.StatusCode, body, tc.want)
			}
		}
	}
	resp, err := http.Get(h.base + "/subscribe")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusUpgradeRequired {
		t.Errorf("a plain GET: %d, want 426", resp.StatusCode)
	}
}

func TestOptionsUpdate(t *testing.T) {
	h := newHarness(t, nil, Options{})
	r := newTestRepo(t, alice)
	c := h.dial(t, "wantedCollections=app.bsky.feed.post", nil)
	h.waitLive(t, 1)
	n := 0
	pair := func() (postJSON, likeJSON []byte) {
		n++
		f, _ := r.commit(t, put("app.bsky.feed.post", fmt.Sprintf("3l3qo2vutsw%02d", n), post(t, "p")),
			put("app.bsky.feed.like", fmt.Sprintf("3l3qo2vutsx%02d", n), post(t, "l")))
		evs := events(t, h.log.append(t, alice, f)...)
		return evs[0], evs[1]
	}
	likes, posts := map[string]bool{}, map[string]bool{}
	p, l := pair()
	posts[string(p)], likes[string(l)] = true, true
	c.expect(p)
	update := `{"type":"options_update","payload":{"wantedCollections":["app.bsky.feed.like"]}}`
	if err := c.ws.Write(testCtx(t), websocket.MessageText, []byte(update)); err != nil {
		t.Fatal(err)
	}
	// Unknown message types are ignored.
	if err := c.ws.Write(testCtx(t), websocket.MessageText, []byte(`{"type":"ping"}`)); err != nil {
		t.Fatal(err)
	}
	// The update takes effect at some point: until then posts come, from
	// then on likes only.
	deadline := time.Now().Add(testTimeout)
	for {
		p, l := pair()
		posts[string(p)], likes[string(l)] = true, true
		_, got := c.next()
		if likes[string(got)] {
			break
		}
		if !posts[string(got)] {
			t.Fatalf("got %s, want a post or a like just written", got)
		}
		if time.Now().After(deadline) {
			t.Fatal("the options_update never took effect")
		}
	}
	_, last := pair()
	for {
		_, got := c.next()
		if string(got) == string(last) {
			break
		}
		if posts[string(got)] || !likes[string(got)] {
			t.Fatalf("got %s after the update took effect, want likes only", got)
		}
	}

	// A malformed update ends the connection with the reason.
	if err := c.ws.Write(testCtx(t), websocket.MessageText, []byte(`{"type":"options_update","payload":{"wantedDids":["nobody"]}}`)); err != nil {
		t.Fatal(err)
	}
	err := c.closed()
	var ce websocket.CloseError
	if !errors.As(err, &ce) || ce.Code != websocket.StatusPolicyViolation || !strings.Contains(ce.Reason, "invalid DID: nobody") {
		t.Fatalf("after a malformed update: %v, want a close with status 1008 naming the DID", err)
	}
}

// TestRequireHello checks that the replay waits for the first
// options_update and follows its filter, not the query's.
func TestRequireHello(t *testing.T) {
	h := newHarness(t, nil, Options{})
	all := replayLog(t, h.log) // three commit events (two posts, a like), an identity, a delete
	c := h.dial(t, "cursor=0&requireHello=true&wantedCollections=app.bsky.feed.post", nil)
	hello := `{"type":"options_update","payload":{"wantedCollections":["app.bsky.feed.like"]}}`
	if err := c.ws.Write(testCtx(t), websocket.MessageText, []byte(hello)); err != nil {
		t.Fatal(err)
	}
	c.expect(all[2], all[3])
}

// TestSlowSubscriberDropped checks that a subscriber that does not read
// is dropped, and told so, while another one goes on.
func TestSlowSubscriberDropped(t *testing.T) {
	h := newHarness(t, nil, Options{Buffer: 1})
	slow := h.dial(t, "", nil)
	h.waitLive(t, 1)
	r := newTestRepo(t, alice)
	big := strings.Repeat("x", 60_000)
	deadline := time.Now().Add(testTimeout)
	for i := 0; h.srv.Dropped() == 0; i++ {
		if i > 1000 || time.Now().After(deadline) {
			t.Fatalf("the slow subscriber was not dropped after %d events", i)
		}
		f, _ := r.commit(t, put("app.bsky.feed.post", fmt.Sprintf("3l3qo2vu%05d", i), post(t, big)))
		h.log.append(t, alice, f)
	}
	err := slow.closed()
	if websocket.CloseStatus(err) != websocket.StatusPolicyViolation {
		t.Fatalf("the slow subscriber's connection ended with %v, want status 1008", err)
	}
	var ce websocket.CloseError
	if errors.As(err, &ce) && ce.Reason != reasonTooSlow {
		t.Fatalf("close reason %q, want %q", ce.Reason, reasonTooSlow)
	}
	// A new subscriber is served as usual.
	c := h.dial(t, "", nil)
	h.waitLive(t, 1)
	c.expect(events(t, h.log.append(t, bob, identityFrame(t, string(bob), "bob.test", 1))...)...)
}

// TestShutdown checks that Shutdown closes connections as going away,
// and refuses new ones.
func TestShutdown(t *testing.T) {
	h := newHarness(t, nil, Options{})
	c := h.dial(t, "", nil)
	h.waitLive(t, 1)
	// The client reads meanwhile, so that it answers the close handshake.
	closed := make(chan error, 1)
	go func() {
		for {
			if _, _, err := c.ws.Read(context.Background()); err != nil {
				closed <- err
				return
			}
		}
	}()
	if err := h.srv.Shutdown(testCtx(t)); err != nil {
		t.Fatal(err)
	}
	if err := <-closed; websocket.CloseStatus(err) != websocket.StatusGoingAway {
		t.Fatalf("after Shutdown: %v, want status 1001", err)
	}
	u := strings.Replace(h.base, "http://", "ws://", 1) + "/subscribe"
	if _, resp, err := websocket.Dial(testCtx(t), u, nil); err == nil || resp == nil || resp.StatusCode != http.StatusServiceUnavailable {
		t.Fatalf("dialing after Shutdown: %v, want 503", err)
	}
}
