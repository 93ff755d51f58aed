package main

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/welkin-atproto/welkin/atproto/data"
	"github.com/welkin-atproto/welkin/atproto/stream"
)

var testRecordCID = data.CIDForCBOR([]byte{0xa0})

func commitBody(seq int64, repo, rev string, blocks []byte, ops ...[2]string) map[string]any {
	var list []any
	for _, op := range ops {
		m := map[string]any{"action": op[0], "path": op[1], "cid": nil}
		if op[0] != "delete" {
			m["cid"] = testRecordCID
		}
		list = append(list, m)
	}
	return map[string]any{
		"seq": seq, "repo": repo, "rev": rev, "since": nil,
		"ops": list, "blocks": data.Bytes(blocks), "blobs": []any{},
		"commit": testRecordCID, "tooBig": false, "rebase": false,
		"time": "2024-05-01T00:00:00.000Z",
	}
}

// testFirehoseEvents is a small repo stream: two commits, an identity
// and an account event.
func testFirehoseEvents() []struct {
	t    string
	body map[string]any
} {
	return []struct {
		t    string
		body map[string]any
	}{
		{"#commit", commitBody(1, "did:plc:alice", "3kaaaaaaaaa22", []byte("0123456789"),
			[2]string{"create", "app.bsky.feed.post/3kpost1"},
			[2]string{"update", "app.bsky.actor.profile/self"})},
		{"#identity", map[string]any{"seq": int64(2), "did": "did:plc:bob", "handle": "bob.test", "time": "2024-05-01T00:00:01.000Z"}},
		{"#account", map[string]any{"seq": int64(3), "did": "did:plc:carol", "active": false, "status": "takendown", "time": "2024-05-01T00:00:02.000Z"}},
		{"#commit", commitBody(4, "did:plc:alice", "3kaaaaaaaab22", []byte("abc"),
			[2]string{"delete", "app.bsky.feed.like/3klike1"})},
	}
}

var testFirehoseLines = []string{
	"seq 1 #commit did:plc:alice rev 3kaaaaaaaaa22 create app.bsky.feed.post/3kpost1, update app.bsky.actor.profile/self",
	"seq 2 #identity did:plc:bob handle bob.test",
	"seq 3 #account did:plc:carol active=false status=takendown",
	"seq 4 #commit did:plc:alice rev 3kaaaaaaaab22 delete app.bsky.feed.like/3klike1",
}

type testStream struct {
	url string // http://, as httptest gives it
	log *stream.MemLog
	srv *stream.Server
}

func (ts *testStream) add(t *testing.T, typ string, body map[string]any) {
	t.Helper()
	f, err := stream.EncodeFrame(typ, body)
	if err != nil {
		t.Fatal(err)
	}
	ev := stream.Event{Seq: body["seq"].(int64), Frame: f}
	if err := ts.log.Append(ev); err != nil {
		t.Fatal(err)
	}
	ts.srv.Publish(ev)
}

func newTestStream(t *testing.T) *testStream {
	t.Helper()
	ts := &testStream{log: stream.NewMemLog(100)}
	ts.srv = stream.NewServer(ts.log, nil)
	hs := httptest.NewServer(ts.srv)
	t.Cleanup(hs.Close)
	t.Cleanup(func() { ts.srv.Shutdown(context.Background()) })
	ts.url = hs.URL
	for _, ev := range testFirehoseEvents() {
		ts.add(t, ev.t, ev.body)
	}
	return ts
}

// runFirehoseCmd runs the verb and fails the test, instead of hanging it,
// if the verb has not returned by a generous deadline.
func runFirehoseCmd(t *testing.T, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var out, errOut bytes.Buffer
	done := make(chan struct{})
	go func() {
		defer close(done)
		code = run(append([]string{"firehose"}, args...), &out, &errOut)
	}()
	select {
	case <-done:
	case <-time.After(time.Minute):
		t.Fatalf("welkin firehose %q still running after a minute", args)
	}
	return code, out.String(), errOut.String()
}

func outputLines(s string) []string {
	return strings.Split(strings.TrimSuffix(s, "\n"), "\n")
}

func TestFirehoseTextLines(t *testing.T) {
	ts := newTestStream(t)
	code, out, errOut := runFirehoseCmd(t, ts.url, "--cursor", "0", "--limit", "4")
	if code != 0 {
		t.Fatalf("exit %d, stderr %q", code, errOut)
	}
	got := outputLines(out)
	if strings.Join(got, "\n") != strings.Join(testFirehoseLines, "\n") {
		t.Fatalf("got lines\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(testFirehoseLines, "\n"))
	}
}

func TestFirehoseLimitStopsEarly(t *testing.T) {
	ts := newTestStream(t)
	code, out, errOut := runFirehoseCmd(t, "--limit", "2", ts.url, "--cursor", "1")
	if code != 0 {
		t.Fatalf("exit %d, stderr %q", code, errOut)
	}
	got := outputLines(out)
	if len(got) != 2 || got[0] != testFirehoseLines[1] || got[1] != testFirehoseLines[2] {
		t.Fatalf("got %q, want seq 2 and 3 only", got)
	}
}

func TestFirehoseJSON(t *testing.T) {
	ts := newTestStream(t)
	code, out, errOut := runFirehoseCmd(t, ts.url, "--cursor", "0", "--limit", "4", "--json")
	if code != 0 {
		t.Fatalf("exit %d, stderr %q", code, errOut)
	}
	lines := outputLines(out)
	if len(lines) != 4 {
		t.Fatalf("got %d lines, want 4:\n%s", len(lines), out)
	}
	type event struct {
		Seq  int64          `json:"seq"`
		Type string         `json:"type"`
		Body map[string]any `json:"body"`
	}
	var evs []event
	for _, l := range lines {
		var ev event
		if err := json.Unmarshal([]byte(l), &ev); err != nil {
			t.Fatalf("line %q is not JSON: %v", l, err)
		}
		evs = append(evs, ev)
	}
	wantTypes := []string{"#commit", "#identity", "#account", "#commit"}
	for i, ev := range evs {
		if ev.Seq != int64(i+1) || ev.Type != wantTypes[i] {
			t.Errorf("event %d: seq %d type %q, want %d %q", i, ev.Seq, ev.Type, i+1, wantTypes[i])
		}
	}
	c := evs[0].Body
	if c["blocks"] != float64(10) {
		t.Errorf("blocks = %v, want its length 10", c["blocks"])
	}
	if c["repo"] != "did:plc:alice" || c["rev"] != "3kaaaaaaaaa22" {
		t.Errorf("commit body %v lacks repo or rev", c)
	}
	ops, _ := c["ops"].([]any)
	if len(ops) != 2 {
		t.Fatalf("ops = %v, want 2", c["ops"])
	}
	op, _ := ops[0].(map[string]any)
	link, _ := op["cid"].(map[string]any)
	if op["path"] != "app.bsky.feed.post/3kpost1" || link["$link"] != testRecordCID.String() {
		t.Errorf("first op %v, want the post path and a $link to %s", op, testRecordCID)
	}
	if evs[3].Body["blocks"] != float64(3) {
		t.Errorf("second commit blocks = %v, want 3", evs[3].Body["blocks"])
	}
	if evs[1].Body["handle"] != "bob.test" || evs[2].Body["status"] != "takendown" {
		t.Errorf("identity/account bodies: %v, %v", evs[1].Body, evs[2].Body)
	}
}

func TestFirehoseFutureCursor(t *testing.T) {
	ts := newTestStream(t)
	code, out, errOut := runFirehoseCmd(t, ts.url, "--cursor", "100")
	if code != 1 {
		t.Fatalf("exit %d, want 1; stderr %q", code, errOut)
	}
	if out != "" {
		t.Errorf("stdout %q, want nothing", out)
	}
	if !strings.HasPrefix(errOut, "error: FutureCursor: ") {
		t.Fatalf("stderr %q, want error: FutureCursor: ...", errOut)
	}
}

// An error frame other than FutureCursor, after which Subscribe would
// reconnect, also ends the command with the error.
func TestFirehoseErrorFrame(t *testing.T) {
	hs := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, err := websocket.Accept(w, r, nil)
		if err != nil {
			return
		}
		defer c.CloseNow()
		f, err := stream.EncodeErrorFrame(stream.ErrNameConsumerTooSlow, "Stream consumer too slow.")
		if err != nil {
			return
		}
		c.Write(r.Context(), websocket.MessageBinary, f)
		c.Close(websocket.StatusNormalClosure, "")
	}))
	defer hs.Close()
	code, _, errOut := runFirehoseCmd(t, strings.Replace(hs.URL, "http://", "ws://", 1)+"/xrpc/com.atproto.sync.subscribeRepos")
	if code != 1 {
		t.Fatalf("exit %d, want 1; stderr %q", code, errOut)
	}
	if !strings.Contains(errOut, "error: ConsumerTooSlow: Stream consumer too slow.\n") {
		t.Fatalf("stderr %q lacks the error", errOut)
	}
}

// lineWriter collects output and reports each write.
type lineWriter struct {
	mu    sync.Mutex
	buf   bytes.Buffer
	wrote chan struct{}
}

func (w *lineWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	n, err := w.buf.Write(p)
	select {
	case w.wrote <- struct{}{}:
	default:
	}
	return n, err
}

func (w *lineWriter) lines() []string {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.buf.Len() == 0 {
		return nil
	}
	return outputLines(w.buf.String())
}

// waitLines waits until w holds n lines.
func (w *lineWriter) waitLines(t *testing.T, n int, done <-chan int) {
	t.Helper()
	for len(w.lines()) < n {
		select {
		case <-w.wrote:
		case code := <-done:
			t.Fatalf("firehose exited %d before printing %d lines", code, n)
		}
	}
}

// Live events follow the replay, and cancelling (as Ctrl-C does) exits 0.
func TestFirehoseLiveThenCancel(t *testing.T) {
	ts := newTestStream(t)
	u, err := streamURL(ts.url, repoStreamPath)
	if err != nil {
		t.Fatal(err)
	}
	out := &lineWriter{wrote: make(chan struct{}, 1)}
	var errOut bytes.Buffer
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	done := make(chan int, 1)
	go func() {
		done <- firehose(ctx, firehoseOptions{url: u, cursor: 2}, out, &errOut)
	}()
	out.waitLines(t, 2, done)
	ts.add(t, "#identity", map[string]any{"seq": int64(5), "did": "did:plc:dave", "time": "2024-05-01T00:00:05.000Z"})
	out.waitLines(t, 3, done)
	cancel()
	if code := <-done; code != 0 {
		t.Fatalf("exit %d after cancel, want 0; stderr %q", code, errOut.String())
	}
	want := []string{testFirehoseLines[2], testFirehoseLines[3], "seq 5 #identity did:plc:dave no handle"}
	if got := out.lines(); strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Fatalf("got %q, want %q", got, want)
	}
}

func TestFirehoseLabelsLine(t *testing.T) {
	body, err := data.MarshalCBOR(map[string]any{
		"seq": int64(7),
		"labels": []any{
			map[string]any{"ver": int64(1), "src": "did:plc:labeler", "uri": "at://did:plc:alice/app.bsky.feed.post/3kpost1", "val": "spam", "cts": "2024-05-01T00:00:00.000Z"},
			map[string]any{"src": "did:plc:labeler", "uri": "did:plc:bob", "val": "porn", "neg": true, "cts": "2024-05-01T00:00:00.000Z"},
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	got := eventLine(stream.Message{Header: stream.Header{Op: stream.OpMessage, T: "#labels"}, Body: body, Seq: 7})
	want := "seq 7 #labels did:plc:labeler at://did:plc:alice/app.bsky.feed.post/3kpost1 spam, did:plc:labeler did:plc:bob -porn"
	if got != want {
		t.Fatalf("got  %q\nwant %q", got, want)
	}
}

func TestFirehoseStreamURL(t *testing.T) {
	for _, c := range []struct{ arg, path, want string }{
		{"bsky.network", repoStreamPath, "wss://bsky.network/xrpc/com.atproto.sync.subscribeRepos"},
		{"mod.example.com", labelStreamPath, "wss://mod.example.com/xrpc/com.atproto.label.subscribeLabels"},
		{"https://relay.example.com", repoStreamPath, "wss://relay.example.com/xrpc/com.atproto.sync.subscribeRepos"},
		{"http://localhost:2470/", repoStreamPath, "ws://localhost:2470/xrpc/com.atproto.sync.subscribeRepos"},
		{"wss://relay.example.com/xrpc/com.atproto.sync.subscribeRepos?x=1", labelStreamPath, "wss://relay.example.com/xrpc/com.atproto.sync.subscribeRepos?x=1"},
		{"ws://127.0.0.1:9/custom", repoStreamPath, "ws://127.0.0.1:9/custom"},
	} {
		got, err := streamURL(c.arg, c.path)
		if err != nil || got != c.want {
			t.Errorf("streamURL(%q) = %q, %v; want %q", c.arg, got, err, c.want)
		}
	}
	for _, bad := range []string{"ftp://example.com", "wss://", "http://"} {
		if got, err := streamURL(bad, repoStreamPath); err == nil {
			t.Errorf("streamURL(%q) = %q, want an error", bad, got)
		}
	}
}

func TestFirehoseUsage(t *testing.T) {
	if code, _, _ := runFirehoseCmd(t); code != 2 {
		t.Errorf("no URL: exit %d, want 2", code)
	}
	if code, _, _ := runFirehoseCmd(t, "a.example", "b.example"); code != 2 {
		t.Errorf("two URLs: exit %d, want 2", code)
	}
	if code, _, _ := runFirehoseCmd(t, "ftp://a.example"); code != 2 {
		t.Errorf("ftp URL: exit %d, want 2", code)
	}
}
