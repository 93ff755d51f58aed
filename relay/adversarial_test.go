package relay_test

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/welkin-atproto/welkin/api/atproto"
	"github.com/welkin-atproto/welkin/atproto/car"
	"github.com/welkin-atproto/welkin/atproto/crypto"
	"github.com/welkin-atproto/welkin/atproto/data"
	"github.com/welkin-atproto/welkin/atproto/repo"
	"github.com/welkin-atproto/welkin/atproto/stream"
	"github.com/welkin-atproto/welkin/atproto/syntax"
	"github.com/welkin-atproto/welkin/relay"
)

// fakePDS is a hostile upstream: a subscribeRepos WebSocket server on a
// loopback port that sends the frames the test crafts. Logged frames are
// replayed after the cursor on every connection, as a PDS does; transient
// frames (garbage, oversize) are sent once, to the connection that reaches
// them, and are not replayed: a broken frame drops the relay's connection,
// and it resumes after the last seq it received.
type fakePDS struct {
	host  string
	conns atomic.Int64 // connections being served

	mu        sync.Mutex
	wake      chan struct{} // closed when something is added
	seq       int64
	logged    []loggedFrame
	transient []loggedFrame // seq: send once the connection has sent this seq
}

type loggedFrame struct {
	seq   int64
	frame []byte
}

func newFakePDS(t *testing.T) *fakePDS {
	t.Helper()
	p := &fakePDS{wake: make(chan struct{})}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /xrpc/com.atproto.sync.subscribeRepos", p.serve)
	ts := httptest.NewUnstartedServer(mux)
	ln, _ := listen(t)
	ts.Listener = ln
	ts.Start()
	t.Cleanup(ts.Close)
	p.host = strings.TrimPrefix(ts.URL, "http://")
	return p
}

func (p *fakePDS) notify() {
	close(p.wake)
	p.wake = make(chan struct{})
}

// send logs the frame build returns for the next seq and returns the seq.
func (p *fakePDS) send(build func(seq int64) []byte) int64 {
	f := build(p.seq + 1) // only the test goroutine sends
	p.mu.Lock()
	defer p.mu.Unlock()
	p.seq++
	p.logged = append(p.logged, loggedFrame{p.seq, f})
	p.notify()
	return p.seq
}

// sendTransient queues a frame sent once, after the current last seq.
func (p *fakePDS) sendTransient(f []byte) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.transient = append(p.transient, loggedFrame{p.seq, f})
	p.notify()
}

func (p *fakePDS) serve(w http.ResponseWriter, r *http.Request) {
	last, err := strconv.ParseInt(r.URL.Query().Get("cursor"), 10, 64)
	if err != nil {
		last = 0
	}
	conn, err := websocket.Accept(w, r, nil)
	if err != nil {
		return
	}
	defer conn.CloseNow()
	p.conns.Add(1)
	defer p.conns.Add(-1)
	ctx := conn.CloseRead(r.Context())
	for {
		var next []byte
		nseq := int64(-1)
		p.mu.Lock()
		if len(p.transient) > 0 && p.transient[0].seq <= last {
			next = p.transient[0].frame
			p.transient = p.transient[1:]
		} else {
			for _, e := range p.logged {
				if e.seq > last {
					next, nseq = e.frame, e.seq
					break
				}
			}
		}
		wake := p.wake
		p.mu.Unlock()
		if next == nil {
			select {
			case <-wake:
				continue
			case <-ctx.Done():
				return
			}
		}
		if err := conn.Write(ctx, websocket.MessageBinary, next); err != nil {
			return
		}
		if nseq > 0 {
			last = nseq
		}
	}
}

// startRelayConfig starts a relay with cfg completed with a loopback
// listener, dir, plcURL and test settings.
func startRelayConfig(t *testing.T, cfg relay.Config) *testRelay {
	t.Helper()
	ln, port := listen(t)
	cfg.Host, cfg.Port, cfg.AllowInsecureHosts, cfg.Logger = "127.0.0.1", port, true, quiet()
	srv, err := relay.New(context.Background(), cfg)
	if err != nil {
		ln.Close()
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ctx, ln) }()
	var once sync.Once
	r := &testRelay{srv: srv, url: fmt.Sprintf("http://127.0.0.1:%d", port)}
	r.stop = func() {
		once.Do(func() {
			cancel()
			if err := <-done; err != nil && !errors.Is(err, http.ErrServerClosed) {
				t.Errorf("relay serve: %v", err)
			}
			if err := srv.Close(); err != nil {
				t.Errorf("relay close: %v", err)
			}
		})
	}
	t.Cleanup(r.stop)
	return r
}

// countedReason reads one event counter of the relay.
func countedReason(t *testing.T, base, typ, outcome, reason string) float64 {
	t.Helper()
	resp, err := http.Get(base + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	want := fmt.Sprintf(`outcome=%q,reason=%q,type=%q}`, outcome, reason, typ)
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		line := sc.Text()
		if strings.HasPrefix(line, "welkin_relay_events_total{") && strings.Contains(line, want) {
			v, err := strconv.ParseFloat(line[strings.LastIndexByte(line, ' ')+1:], 64)
			if err != nil {
				t.Fatalf("metrics line %q: %v", line, err)
			}
			return v
		}
	}
	return 0
}

// recommitEvent changes the signed commit in ev's CAR slice: mutate edits
// it, then it is re-signed with key unless key is nil. The event's commit
// CID and the CAR root follow.
func recommitEvent(t *testing.T, ev *atproto.SyncSubscribeRepos_Commit, key crypto.PrivateKey, mutate func(*repo.Commit)) {
	t.Helper()
	roots, bs, err := car.ReadAll(bytes.NewReader(ev.Blocks), car.DefaultLimits())
	if err != nil {
		t.Fatal(err)
	}
	c, err := repo.ParseCommit(bs[roots[0]])
	if err != nil {
		t.Fatal(err)
	}
	mutate(c)
	if key != nil {
		if err := c.Sign(key); err != nil {
			t.Fatal(err)
		}
	}
	cb, err := c.Bytes()
	if err != nil {
		t.Fatal(err)
	}
	delete(bs, roots[0])
	nc := data.CIDForCBOR(cb)
	bs[nc] = cb
	var buf bytes.Buffer
	if err := car.WriteAll(&buf, []data.CID{nc}, bs); err != nil {
		t.Fatal(err)
	}
	ev.Blocks, ev.Commit = buf.Bytes(), nc
}

// commitKey identifies a #commit by its repository and rev.
func commitKey(ev *atproto.SyncSubscribeRepos_Commit) string { return ev.Repo + " " + ev.Rev }

func relayedKey(t *testing.T, m stream.Message) string {
	t.Helper()
	did, _, _ := stream.BodyString(m.Body, "repo")
	rev, _, _ := stream.BodyString(m.Body, "rev")
	return m.Header.T + " " + did + " " + rev
}

// oversizeFrame is a well-formed #commit frame above stream.MaxFrameSize,
// which EncodeFrame refuses to build.
func oversizeFrame(t *testing.T, seq int64) []byte {
	t.Helper()
	h, err := data.MarshalCBOR(map[string]any{"op": int64(1), "t": "#commit"})
	if err != nil {
		t.Fatal(err)
	}
	b, err := data.MarshalCBOR(map[string]any{"seq": seq, "repo": "did:plc:aaaaaaaaaaaaaaaaaaaaaaaa", "blocks": make([]byte, stream.MaxFrameSize+100)})
	if err != nil {
		t.Fatal(err)
	}
	f := append(h, b...)
	if len(f) <= 5_000_000 {
		t.Fatalf("oversize frame is only %d bytes", len(f))
	}
	return f
}

// TestHostileHost runs a relay against a hostile fake PDS and a
// well-behaved, trusted one at the same time. Every bad event of the
// hostile host is rejected and counted by reason (a since gap also flags
// the repository desynchronized), none reaches the relay's stream, and
// every event of the well-behaved host arrives, in order.
func TestHostileHost(t *testing.T) {
	plcURL := startPLC(t)
	bad := newFakePDS(t)
	good := newUpstream(t)

	g1, g2 := newFakeAccount(t, plcURL, good.host), newFakeAccount(t, plcURL, good.host)
	var goodSent []*atproto.SyncSubscribeRepos_Commit
	sendGood := func(n int) {
		for i := range n {
			a := g1
			if i%2 == 1 {
				a = g2
			}
			c := a.commit(t)
			good.send(t, commitFrame(t, c))
			goodSent = append(goodSent, c)
		}
	}
	// wantRelayed are the commits the relay must pass on.
	var wantRelayed []*atproto.SyncSubscribeRepos_Commit
	sendBad := func(c *atproto.SyncSubscribeRepos_Commit, relayed bool) int64 {
		if relayed {
			wantRelayed = append(wantRelayed, c)
		}
		return bad.send(commitFrame(t, c))
	}

	// Phase 1: logged events, replayed from the start when the relay
	// subscribes.
	sendGood(6)

	// A signature no key can verify (r = 0).
	badSig := newFakeAccount(t, plcURL, bad.host)
	ev := badSig.commit(t)
	recommitEvent(t, ev, nil, func(c *repo.Commit) { c.Sig = make([]byte, 64) })
	sendBad(ev, false)

	// Signed by a key that is not the DID document's.
	wrongKey := newFakeAccount(t, plcURL, bad.host)
	other, err := crypto.GenerateK256()
	if err != nil {
		t.Fatal(err)
	}
	wrongKey.key = other
	sendBad(wrongKey.commit(t), false)

	// An account whose DID document names the good host.
	elsewhere := newFakeAccount(t, plcURL, good.host)
	sendBad(elsewhere.commit(t), false)

	// A broken inversion: the op names a path the tree does not hold.
	inv := newFakeAccount(t, plcURL, bad.host)
	sendBad(inv.commit(t), true)
	ev = inv.commit(t)
	ev.Ops[0].Path = "app.bsky.feed.post/zzzzzzzz"
	sendBad(ev, false)

	// A rev rollback: the first commit again after the second.
	rb := newFakeAccount(t, plcURL, bad.host)
	rb1, rb2 := rb.commit(t), rb.commit(t)
	sendBad(rb1, true)
	sendBad(rb2, true)
	sendBad(rb1, false)

	// A rev a day ahead of the clock, properly signed.
	fut := newFakeAccount(t, plcURL, bad.host)
	ev = fut.commit(t)
	futureRev := syntax.NewTID(time.Now().Add(24*time.Hour).UnixMicro(), 1)
	recommitEvent(t, ev, fut.key, func(c *repo.Commit) { c.Rev = futureRev })
	ev.Rev = string(futureRev)
	sendBad(ev, false)

	// A since gap: the second commit is never sent. The third is
	// dropped and the repository flagged desynchronized (this host has
	// no getRepo to re-synchronize it from).
	gap := newFakeAccount(t, plcURL, bad.host)
	gapFirst := gap.commit(t)
	sendBad(gapFirst, true)
	gap.commit(t)
	sendBad(gap.commit(t), false)

	// A well-framed #commit whose body is CBOR of the wrong shape.
	bad.send(func(seq int64) []byte {
		return frame(t, "#commit", map[string]any{"seq": seq, "repo": int64(7), "blocks": "not bytes", "ops": "x"})
	})
	phase1 := bad.seq

	r := startRelayConfig(t, relay.Config{
		DataDir: t.TempDir(), PLCURL: plcURL,
		Hosts: []string{bad.host}, TrustedHosts: []string{good.host},
		// A rate that does not refill during the test: the hostile host
		// may send burst events, the trusted one far more.
		HostEventRate: 1e-6, HostEventBurst: int(phase1) + 2 + 3,
		TrustedHostEventRate: 1e-6, TrustedHostEventBurst: 1000,
	})
	waitFor(t, "the hostile host's logged events", func() bool { return hostSeq(t, r.url, bad.host) == phase1 })

	// Phase 2: frames that break the connection, each followed by a good
	// event that shows the relay resumed.
	marker := newFakeAccount(t, plcURL, bad.host)
	for _, tc := range []struct {
		reason string
		frame  []byte
	}{
		{"bad-frame", []byte{0xff, 0x00, 0x13, 0x37, 0xde, 0xad, 0xbe, 0xef}},
		{"frame-too-large", oversizeFrame(t, bad.seq+1)},
	} {
		waitFor(t, "one connection to the hostile host", func() bool { return bad.conns.Load() == 1 })
		bad.sendTransient(tc.frame)
		waitFor(t, tc.reason+" counted", func() bool { return countedReason(t, r.url, "frame", "rejected", tc.reason) == 1 })
		seq := sendBad(marker.commit(t), true)
		sendGood(3)
		waitFor(t, "the relay to resume after "+tc.reason, func() bool { return hostSeq(t, r.url, bad.host) == seq })
	}

	// Phase 3: a flood. The hostile host has 3 tokens left.
	flood := newFakeAccount(t, plcURL, bad.host)
	for i := range 10 {
		sendBad(flood.commit(t), i < 3)
	}
	sendGood(14)
	waitFor(t, "both hosts handled", func() bool {
		return hostSeq(t, r.url, bad.host) == bad.seq && hostSeq(t, r.url, good.host) == good.seq
	})

	// Counted by reason.
	for _, c := range []struct {
		typ, outcome, reason string
		want                 float64
	}{
		{"#commit", "rejected", "bad-signature", 1},
		{"#commit", "rejected", "wrong-key", 1},
		{"#commit", "rejected", "not-authoritative-host", 1},
		{"#commit", "rejected", "inversion-mismatch", 1},
		{"#commit", "rejected", "rev-rollback", 1},
		{"#commit", "rejected", "future-rev", 1},
		{"#commit", "rejected", "bad-cbor", 1},
		{"#commit", "rejected", "rate-limited", 7},
		{"frame", "rejected", "bad-frame", 1},
		{"frame", "rejected", "frame-too-large", 1},
		{"#commit", "rejected", "since-gap", 1},
	} {
		if got := countedReason(t, r.url, c.typ, c.outcome, c.reason); got != c.want {
			t.Errorf("%s %s %q = %v, want %v", c.typ, c.outcome, c.reason, got, c.want)
		}
	}
	wantN := len(wantRelayed) + len(goodSent)
	if got := counted(t, r.url, "rejected", "#commit"); got != 15 {
		t.Errorf("rejected commits = %v, want 15", got)
	}
	if got := counted(t, r.url, "accepted", "#commit"); got != float64(wantN) {
		t.Errorf("accepted commits = %v, want %d", got, wantN)
	}

	// The relay's stream, from the start, holds exactly the good events.
	relayed := follow(t, r.url, 0)
	waitFor(t, "the relay's stream", func() bool { return len(relayed.snapshot()) >= wantN })
	got := relayed.snapshot()
	if len(got) != wantN {
		t.Fatalf("relayed %d events, want %d", len(got), wantN)
	}
	want := map[string]bool{}
	for _, c := range append(append([]*atproto.SyncSubscribeRepos_Commit(nil), wantRelayed...), goodSent...) {
		want["#commit "+commitKey(c)] = true
	}
	perDID := map[string][]string{}
	for i, m := range got {
		k := relayedKey(t, m)
		if m.Seq != int64(i+1) {
			t.Errorf("event %d has seq %d", i, m.Seq)
		}
		if !want[k] {
			t.Errorf("relayed %s, which should have been rejected", k)
		}
		delete(want, k)
		did, _, _ := stream.BodyString(m.Body, "repo")
		rev, _, _ := stream.BodyString(m.Body, "rev")
		perDID[did] = append(perDID[did], rev)
	}
	for k := range want {
		t.Errorf("%s was not relayed", k)
	}
	// The well-behaved host's events, per account, in the order sent.
	for _, a := range []*fakeAccount{g1, g2} {
		var sent []string
		for _, c := range goodSent {
			if c.Repo == string(a.did) {
				sent = append(sent, c.Rev)
			}
		}
		if fmt.Sprint(perDID[string(a.did)]) != fmt.Sprint(sent) {
			t.Errorf("%s: relayed %v, sent %v", a.did, perDID[string(a.did)], sent)
		}
	}

	var rs atproto.SyncGetRepoStatus_Output
	getJSON(t, r.url+"/xrpc/com.atproto.sync.getRepoStatus?did="+string(gap.did), &rs)
	if rs.Rev == nil || *rs.Rev != gapFirst.Rev || rs.Status == nil || *rs.Status != "desynchronized" {
		t.Errorf("getRepoStatus of the gapped repository = %+v", rs)
	}
}
