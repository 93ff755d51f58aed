package relay_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/welkin-atproto/welkin/api/atproto"
	"github.com/welkin-atproto/welkin/atproto/identity"
	"github.com/welkin-atproto/welkin/atproto/stream"
	"github.com/welkin-atproto/welkin/atproto/syntax"
	"github.com/welkin-atproto/welkin/atproto/xrpc"
	"github.com/welkin-atproto/welkin/internal/sqldb"
	"github.com/welkin-atproto/welkin/internal/sqldb/sqldbtest"
	"github.com/welkin-atproto/welkin/pds"
	"github.com/welkin-atproto/welkin/plc"
	plcstore "github.com/welkin-atproto/welkin/plc/store"
	"github.com/welkin-atproto/welkin/relay"
	"github.com/welkin-atproto/welkin/relay/verify"
)

// quiet is a logger that drops everything.
func quiet() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

// listen binds a free loopback port.
func listen(t *testing.T) (net.Listener, int) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	return ln, ln.Addr().(*net.TCPAddr).Port
}

func startPLC(t *testing.T) string {
	t.Helper()
	db := sqldbtest.OpenSQLite(t, sqldb.Config{})
	st, err := plcstore.New(context.Background(), db)
	if err != nil {
		t.Fatal(err)
	}
	srv := plc.NewServer(plc.Config{Logger: quiet()}, st)
	ts := httptest.NewServer(srv.Handler())
	t.Cleanup(func() {
		ts.Close()
		srv.Close()
	})
	return ts.URL
}

// startPDS starts a PDS named localhost on a free loopback port and
// returns its URL and its "localhost:PORT" host.
func startPDS(t *testing.T, plcURL string) (string, string) {
	t.Helper()
	ln, port := listen(t)
	srv, err := pds.New(context.Background(), pds.Config{
		Hostname:             "localhost",
		Host:                 "127.0.0.1",
		Port:                 port,
		DataDir:              t.TempDir(),
		PLCURL:               plcURL,
		HandleDomains:        []string{".test"},
		AdminPassword:        "admin-secret",
		AllowPrivateNetworks: true,
		Logger:               quiet(),
	})
	if err != nil {
		ln.Close()
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ctx, ln) }()
	t.Cleanup(func() {
		cancel()
		<-done
		srv.Close()
	})
	return fmt.Sprintf("http://localhost:%d", port), fmt.Sprintf("localhost:%d", port)
}

// testRelay is a relay serving on a loopback port.
type testRelay struct {
	srv  *relay.Server
	url  string
	stop func()
}

func startRelay(t *testing.T, dir, plcURL string, hosts ...string) *testRelay {
	t.Helper()
	return startRelayDB(t, dir, "", plcURL, hosts...)
}

// startRelayDB starts a relay keeping its state at dbURL (a postgres://
// URL, or "" for SQLite in dir).
func startRelayDB(t *testing.T, dir, dbURL, plcURL string, hosts ...string) *testRelay {
	t.Helper()
	ln, port := listen(t)
	srv, err := relay.New(context.Background(), relay.Config{
		Host:               "127.0.0.1",
		Port:               port,
		DataDir:            dir,
		DatabaseURL:        dbURL,
		PLCURL:             plcURL,
		Hosts:              hosts,
		AdminPassword:      "relay-secret",
		AllowInsecureHosts: true,
		Logger:             quiet(),
	})
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

// collector records the messages of a stream.
type collector struct {
	mu   sync.Mutex
	msgs []stream.Message
}

func (c *collector) handle(_ context.Context, m stream.Message) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	m.Body = append([]byte(nil), m.Body...)
	c.msgs = append(c.msgs, m)
	return nil
}

func (c *collector) snapshot() []stream.Message {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]stream.Message(nil), c.msgs...)
}

// follow subscribes to the stream at base until the test ends.
func follow(t *testing.T, base string, cursor int64) *collector {
	t.Helper()
	c := &collector{}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	u := "ws" + base[len("http"):] + "/xrpc/com.atproto.sync.subscribeRepos"
	go func() {
		defer close(done)
		stream.Subscribe(ctx, u, cursor, c.handle, &stream.SubscribeOptions{MinBackoff: 20 * time.Millisecond, MaxBackoff: 200 * time.Millisecond})
	}()
	t.Cleanup(func() {
		cancel()
		<-done
	})
	return c
}

// waitFor polls cond until it holds or the deadline passes.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// eventKey identifies an upstream event independently of its seq.
func eventKey(t *testing.T, m stream.Message) string {
	t.Helper()
	switch m.Header.T {
	case "#commit":
		rev, _, _ := stream.BodyString(m.Body, "rev")
		return "#commit " + rev
	case "#sync":
		rev, _, _ := stream.BodyString(m.Body, "rev")
		return "#sync " + rev
	default:
		did, _, _ := stream.BodyString(m.Body, "did")
		return m.Header.T + " " + did
	}
}

func writePost(t *testing.T, c *xrpc.Client, did, text string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	_, err := atproto.RepoCreateRecord(ctx, c, &atproto.RepoCreateRecord_Input{
		Repo: did, Collection: "app.bsky.feed.post",
		Record: map[string]any{"$type": "app.bsky.feed.post", "text": text, "createdAt": time.Now().UTC().Format("2006-01-02T15:04:05.000Z")},
	})
	if err != nil {
		t.Fatalf("createRecord: %v", err)
	}
}

// expected is what a relay passes on of one account's upstream events:
// all but the #commit and #sync events whose rev is not above the last
// one's (a PDS sends a #sync with the rev of the account's first commit,
// which the sync specification asks relays to ignore).
func expected(up []stream.Message) []stream.Message {
	var out []stream.Message
	last := ""
	for _, m := range up {
		if m.Header.T == "#commit" || m.Header.T == "#sync" {
			rev, _, _ := stream.BodyString(m.Body, "rev")
			if rev <= last {
				continue
			}
			last = rev
		}
		out = append(out, m)
	}
	return out
}

// checkRelayed checks that the relay's messages are the upstream's, in
// order, each once, re-sequenced from firstSeq without a gap, and that
// every commit verifies with the account's key.
func checkRelayed(t *testing.T, up, got []stream.Message, firstSeq int64, id *identity.Identity) {
	t.Helper()
	if len(got) != len(up) {
		t.Fatalf("relay sent %d events, upstream %d", len(got), len(up))
	}
	key, err := id.SigningKey()
	if err != nil {
		t.Fatal(err)
	}
	for i, m := range got {
		if m.Seq != firstSeq+int64(i) {
			t.Fatalf("event %d has seq %d, want %d", i, m.Seq, firstSeq+int64(i))
		}
		if eventKey(t, m) != eventKey(t, up[i]) {
			t.Fatalf("event %d is %s, upstream %s", i, eventKey(t, m), eventKey(t, up[i]))
		}
		if m.Header.T == "#commit" {
			c, reason, err := verify.ParseCommit(m.Body, nil)
			if err != nil {
				t.Fatalf("relayed commit %d: %s: %v", m.Seq, reason, err)
			}
			if err := c.Commit.Verify(key); err != nil {
				t.Fatalf("relayed commit %d does not verify: %v", m.Seq, err)
			}
		}
	}
}

func TestRelayEndToEnd(t *testing.T) {
	t.Run("sqlite", func(t *testing.T) { testEndToEnd(t, "") })
	t.Run("postgres", func(t *testing.T) { testEndToEnd(t, sqldbtest.PostgresSchemaURL(t)) })
}

// testEndToEnd runs a PLC directory, a PDS with one account and a relay
// (its state at dbURL) following the PDS, checks the relay's stream and
// endpoints, and restarts the relay on the same data.
func testEndToEnd(t *testing.T, dbURL string) {
	// Calls to the PDS are bounded so that a stuck PDS fails the test
	// with a message instead of hanging it.
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	plcURL := startPLC(t)
	pdsURL, pdsHost := startPDS(t, plcURL)

	anon := &xrpc.Client{Host: pdsURL}
	email, password := "alice@example.com", "alice-password"
	acct, err := atproto.ServerCreateAccount(ctx, anon, &atproto.ServerCreateAccount_Input{Handle: "alice.test", Email: &email, Password: &password})
	if err != nil {
		t.Fatalf("createAccount: %v", err)
	}
	alice := &xrpc.Client{Host: pdsURL, Auth: xrpc.NewSessionAuth(acct.AccessJwt, acct.RefreshJwt)}
	for i := range 3 {
		writePost(t, alice, acct.Did, fmt.Sprintf("post %d", i))
	}
	res := identity.NewResolver(identity.Options{PLCURL: plcURL, AllowPrivateNetworks: true})
	id, err := res.ResolveDID(ctx, syntax.DID(acct.Did))
	if err != nil {
		t.Fatal(err)
	}

	upstream := follow(t, pdsURL, 0)
	waitFor(t, "the PDS's events", func() bool { return len(upstream.snapshot()) >= 5 })

	dir := t.TempDir()
	r1 := startRelayDB(t, dir, dbURL, plcURL, pdsHost)
	relayed := follow(t, r1.url, 0)
	waitFor(t, "the relay to pass on every event", func() bool {
		return len(relayed.snapshot()) >= len(expected(upstream.snapshot()))
	})
	up := expected(upstream.snapshot())
	first := relayed.snapshot()
	checkRelayed(t, up, first, 1, id)

	// The sync endpoints answer from the relay's state.
	var latest atproto.SyncGetLatestCommit_Output
	getJSON(t, r1.url+"/xrpc/com.atproto.sync.getLatestCommit?did="+acct.Did, &latest)
	lastRev, _, _ := stream.BodyString(up[len(up)-1].Body, "rev")
	if latest.Rev != lastRev {
		t.Fatalf("getLatestCommit rev = %s, want %s", latest.Rev, lastRev)
	}
	var hs atproto.SyncGetHostStatus_Output
	getJSON(t, r1.url+"/xrpc/com.atproto.sync.getHostStatus?hostname="+pdsHost, &hs)
	if hs.AccountCount == nil || *hs.AccountCount != 1 || hs.Status == nil || *hs.Status != "active" {
		t.Fatalf("getHostStatus = %+v", hs)
	}
	var repos atproto.SyncListRepos_Output
	getJSON(t, r1.url+"/xrpc/com.atproto.sync.listRepos", &repos)
	if len(repos.Repos) != 1 || repos.Repos[0].Did != acct.Did || repos.Repos[0].Rev != lastRev {
		t.Fatalf("listRepos = %+v", repos.Repos)
	}
	var rs atproto.SyncGetRepoStatus_Output
	getJSON(t, r1.url+"/xrpc/com.atproto.sync.getRepoStatus?did="+acct.Did, &rs)
	if !rs.Active || rs.Rev == nil || *rs.Rev != lastRev {
		t.Fatalf("getRepoStatus = %+v", rs)
	}
	checkRedirects(t, r1.url, pdsHost, acct.Did)

	// Restart on the same data: the relay resumes its upstream after the
	// last event it logged, and its own seqs continue.
	r1.stop()
	for i := range 2 {
		writePost(t, alice, acct.Did, fmt.Sprintf("after restart %d", i))
	}
	waitFor(t, "the PDS's new events", func() bool { return len(expected(upstream.snapshot())) >= len(up)+2 })
	r2 := startRelayDB(t, dir, dbURL, plcURL)
	last := first[len(first)-1].Seq
	resumed := follow(t, r2.url, last)
	up2 := expected(upstream.snapshot())
	waitFor(t, "the restarted relay to pass on the new events", func() bool {
		return len(resumed.snapshot()) >= len(up2)-len(up)
	})
	checkRelayed(t, up2[len(up):], resumed.snapshot(), last+1, id)

	// A full replay from the restarted relay has every event once.
	all := follow(t, r2.url, 0)
	waitFor(t, "a full replay", func() bool { return len(all.snapshot()) >= len(up2) })
	checkRelayed(t, up2, all.snapshot(), 1, id)
}

func getJSON(t *testing.T, u string, out any) {
	t.Helper()
	resp, err := http.Get(u)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %d %s", u, resp.StatusCode, b)
	}
	if err := json.Unmarshal(b, out); err != nil {
		t.Fatalf("GET %s: %v", u, err)
	}
}
