package plc

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/welkin-atproto/welkin/atproto/syntax"
)

type streamEvent struct {
	Seq  int64      `json:"seq"`
	Type string     `json:"type"`
	DID  syntax.DID `json:"did"`
	CID  string     `json:"cid"`
}

func dialStream(t *testing.T, d *testDir, query string) *websocket.Conn {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	u := "ws" + strings.TrimPrefix(d.ts.URL, "http") + "/export/stream" + query
	c, _, err := websocket.Dial(ctx, u, &websocket.DialOptions{HTTPClient: d.ts.Client()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.CloseNow() })
	return c
}

func readEvent(t *testing.T, c *websocket.Conn) streamEvent {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	typ, b, err := c.Read(ctx)
	if err != nil {
		t.Fatalf("read: %v", err)
	}
	var e streamEvent
	if typ != websocket.MessageText || json.Unmarshal(b, &e) != nil || e.Type != "sequenced_op" || e.Seq == 0 {
		t.Fatalf("stream message: %s", b)
	}
	return e
}

func closeReason(t *testing.T, c *websocket.Conn) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_, b, err := c.Read(ctx)
	var ce websocket.CloseError
	if !errors.As(err, &ce) {
		t.Fatalf("expected a close frame, got %q, %v", b, err)
	}
	return ce.Reason
}

func TestStream(t *testing.T) {
	d := newTestDir(t, Config{})
	genesis := func(seed byte) syntax.DID {
		k := key(t, seed)
		g := newOp(t, k, didKeys(k), nil, "stream.test")
		did := didOf(t, g)
		d.mustSubmit(did, g)
		d.clock.Advance(time.Second)
		return did
	}
	before := genesis(30) // seq 1, before any consumer

	live := dialStream(t, d, "")
	first := genesis(31) // seq 2
	if e := readEvent(t, live); e.DID != first || e.Seq != 2 {
		t.Fatalf("live event: %+v", e)
	}

	// Resume from cursor 0: the backlog, then live operations.
	resumed := dialStream(t, d, "?cursor=0")
	for i, want := range []syntax.DID{before, first} {
		if e := readEvent(t, resumed); e.DID != want || e.Seq != int64(i+1) {
			t.Fatalf("backfill %d: %+v", i, e)
		}
	}
	second := genesis(32) // seq 3
	for _, c := range []*websocket.Conn{live, resumed} {
		if e := readEvent(t, c); e.DID != second || e.Seq != 3 {
			t.Fatalf("live after backfill: %+v", e)
		}
	}
	// Resume from the middle.
	mid := dialStream(t, d, "?cursor=2")
	if e := readEvent(t, mid); e.Seq != 3 {
		t.Fatalf("cursor=2 starts at %d", e.Seq)
	}

	if r := closeReason(t, dialStream(t, d, "?cursor=99")); r != CloseFutureCursor {
		t.Fatalf("future cursor closed with %q", r)
	}
	d.clock.Advance(8 * 24 * time.Hour)
	if r := closeReason(t, dialStream(t, d, "?cursor=0")); r != CloseOutdatedCursor {
		t.Fatalf("outdated cursor closed with %q", r)
	}

	if code, _, body := d.get("/export/stream"); code != http.StatusUpgradeRequired || !strings.Contains(string(body), "message") {
		t.Fatalf("plain GET of the stream: %d %s", code, body)
	}
	if code, _, _ := d.get("/export/stream?cursor=-4"); code != http.StatusUpgradeRequired {
		t.Fatalf("plain GET with bad cursor: %d", code)
	}

	// Shutting the server down closes consumers with a close frame.
	d.srv.Close()
	if r := closeReason(t, live); r == "" {
		t.Fatal("no close reason on shutdown")
	}
}

// TestHubDropsSlowConsumer fills a subscriber's queue without reading it:
// the hub must drop it rather than wait.
func TestHubDropsSlowConsumer(t *testing.T) {
	d := newTestDir(t, Config{})
	h := newHub(d.st, slog.New(slog.DiscardHandler), 2, time.Hour)
	close(h.ready)
	sub, _, err := h.subscribe(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	fast, _, _ := h.subscribe(context.Background())
	for i := range 3 {
		k := key(t, byte(50+i))
		g := newOp(t, k, didKeys(k), nil, "slow.test")
		d.mustSubmit(didOf(t, g), g)
		d.clock.Advance(time.Second)
		h.pump(context.Background())
		if i < 2 {
			<-fast.ch // the fast consumer keeps up
		}
	}
	select {
	case <-sub.dropped:
	default:
		t.Fatal("slow consumer was not dropped")
	}
	select {
	case <-fast.dropped:
		t.Fatal("fast consumer was dropped")
	default:
	}
}
