package relay_test

import (
	"bufio"
	"context"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/welkin-atproto/welkin/api/atproto"
	"github.com/welkin-atproto/welkin/atproto/stream"
	"github.com/welkin-atproto/welkin/atproto/syntax"
	"github.com/welkin-atproto/welkin/relay"
	"github.com/welkin-atproto/welkin/relay/store"
)

// upstream is a fake PDS stream: frames are appended and published as
// the test sends them. It answers getRepo with what serveRepo set (404
// for other accounts).
type upstream struct {
	host string
	log  *stream.MemLog
	srv  *stream.Server
	seq  int64

	mu      sync.Mutex
	repos   map[string]repoAnswer
	getRepo map[string]int // getRepo calls by DID
}

// repoAnswer is what getRepo answers for one account.
type repoAnswer struct {
	status int
	car    []byte
}

func newUpstream(t *testing.T) *upstream {
	t.Helper()
	u := &upstream{log: stream.NewMemLog(100), repos: map[string]repoAnswer{}, getRepo: map[string]int{}}
	u.srv = stream.NewServer(u.log, nil)
	mux := http.NewServeMux()
	mux.Handle("GET /xrpc/com.atproto.sync.subscribeRepos", u.srv)
	mux.HandleFunc("GET /xrpc/com.atproto.sync.getRepo", u.serveGetRepo)
	ts := httptest.NewServer(mux)
	t.Cleanup(ts.Close)
	u.host = strings.TrimPrefix(ts.URL, "http://")
	return u
}

// serveRepo sets what getRepo answers for did: status, and the CAR file
// when it is 200.
func (u *upstream) serveRepo(did syntax.DID, status int, car []byte) {
	u.mu.Lock()
	defer u.mu.Unlock()
	u.repos[string(did)] = repoAnswer{status, car}
}

// getRepoCalls reports how many times getRepo was asked for did.
func (u *upstream) getRepoCalls(did syntax.DID) int {
	u.mu.Lock()
	defer u.mu.Unlock()
	return u.getRepo[string(did)]
}

func (u *upstream) serveGetRepo(w http.ResponseWriter, r *http.Request) {
	did := r.URL.Query().Get("did")
	u.mu.Lock()
	a, ok := u.repos[did]
	u.getRepo[did]++
	u.mu.Unlock()
	switch {
	case !ok:
		http.Error(w, `{"error":"RepoNotFound"}`, http.StatusBadRequest)
	case a.status != http.StatusOK:
		http.Error(w, `{"error":"InternalServerError"}`, a.status)
	default:
		w.Header().Set("Content-Type", "application/vnd.ipld.car")
		w.Write(a.car)
	}
}

// send appends and publishes the frame of an event with the next seq;
// build returns it.
func (u *upstream) send(t *testing.T, build func(seq int64) []byte) {
	t.Helper()
	u.seq++
	ev := stream.Event{Seq: u.seq, Frame: build(u.seq)}
	if err := u.log.Append(ev); err != nil {
		t.Fatal(err)
	}
	u.srv.Publish(ev)
}

// fakeUpstream serves a subscribeRepos stream of the frames given.
func fakeUpstream(t *testing.T, frames ...[]byte) string {
	t.Helper()
	u := newUpstream(t)
	for _, f := range frames {
		u.send(t, func(int64) []byte { return f })
	}
	return u.host
}

func frame(t *testing.T, typ string, body map[string]any) []byte {
	t.Helper()
	f, err := stream.EncodeFrame(typ, body)
	if err != nil {
		t.Fatal(err)
	}
	return f
}

// counted sums the relay's event counters of one outcome and event type.
func counted(t *testing.T, base, outcome, typ string) float64 {
	t.Helper()
	resp, err := http.Get(base + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var sum float64
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		line := sc.Text()
		if !strings.HasPrefix(line, "welkin_relay_events_total{") || !strings.Contains(line, `outcome="`+outcome+`"`) ||
			!strings.Contains(line, `type="`+typ+`"`) {
			continue
		}
		v, err := strconv.ParseFloat(line[strings.LastIndexByte(line, ' ')+1:], 64)
		if err != nil {
			t.Fatalf("metrics line %q: %v", line, err)
		}
		sum += v
	}
	return sum
}

// TestIngestRejects feeds the relay bad and unverifiable events: each is
// counted as rejected, none reaches the relay's stream, and the host's
// cursor still moves past them.
func TestIngestRejects(t *testing.T) {
	plcURL := startPLC(t)
	unknown := "did:plc:aaaaaaaaaaaaaaaaaaaaaaaa"
	host := fakeUpstream(t,
		frame(t, "#commit", map[string]any{"seq": int64(1), "repo": "not a did"}),
		frame(t, "#identity", map[string]any{"seq": int64(2), "did": unknown, "time": "2025-01-01T00:00:00.000Z"}),
		frame(t, "#account", map[string]any{"seq": int64(3), "did": unknown, "time": "2025-01-01T00:00:00.000Z", "active": true}),
		frame(t, "#sync", map[string]any{"seq": int64(4), "did": unknown, "blocks": []byte{1, 2, 3}}),
		frame(t, "#future", map[string]any{"seq": int64(5)}),
		frame(t, "#account", map[string]any{"seq": int64(6), "did": 42}),
	)
	r := startRelay(t, t.TempDir(), plcURL, host)
	waitFor(t, "the host's cursor to pass every event", func() bool {
		var hs atproto.SyncGetHostStatus_Output
		getJSON(t, r.url+"/xrpc/com.atproto.sync.getHostStatus?hostname="+host, &hs)
		return hs.Seq != nil && *hs.Seq == 6
	})
	for typ, want := range map[string]float64{"#commit": 1, "#identity": 1, "#account": 2, "#sync": 1} {
		if got := counted(t, r.url, "rejected", typ); got != want {
			t.Errorf("%s rejections = %v, want %v", typ, got, want)
		}
		if got := counted(t, r.url, "accepted", typ); got != 0 {
			t.Errorf("%s accepted = %v, want 0", typ, got)
		}
	}
	var repos atproto.SyncListRepos_Output
	getJSON(t, r.url+"/xrpc/com.atproto.sync.listRepos", &repos)
	if len(repos.Repos) != 0 {
		t.Errorf("listRepos = %+v, want none", repos.Repos)
	}
}

// TestFutureCursor: an upstream whose sequence went back (its saved cursor
// is in its future) is read again from its start.
func TestFutureCursor(t *testing.T) {
	plcURL := startPLC(t)
	host := fakeUpstream(t,
		frame(t, "#future", map[string]any{"seq": int64(1)}),
		frame(t, "#future", map[string]any{"seq": int64(2)}),
	)
	dir := t.TempDir()
	ctx := context.Background()
	st, err := store.Open(ctx, filepath.Join(dir, relay.DBFileName))
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := st.AddHost(ctx, store.Host{Hostname: host, NoTLS: true, AccountLimit: 10}); err != nil {
		t.Fatal(err)
	}
	if err := st.SaveHostProgress(ctx, host, 100, 0, 0); err != nil {
		t.Fatal(err)
	}
	st.Close()

	r := startRelay(t, dir, plcURL)
	waitFor(t, "the cursor to restart from the upstream's start", func() bool {
		var hs atproto.SyncGetHostStatus_Output
		getJSON(t, r.url+"/xrpc/com.atproto.sync.getHostStatus?hostname="+host, &hs)
		return hs.Seq != nil && *hs.Seq == 2
	})
}
