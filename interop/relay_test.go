package interop

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/welkin-atproto/welkin/api/atproto"
	"github.com/welkin-atproto/welkin/atproto/xrpc"
	"github.com/welkin-atproto/welkin/relay"
	relaystore "github.com/welkin-atproto/welkin/relay/store"
)

// testRelay is a Welkin relay on a loopback port, served in this
// process.
type testRelay struct {
	url string // http://127.0.0.1:PORT
	ws  string // ws://127.0.0.1:PORT
	dir string // its data directory

	close    func() error
	stopOnce sync.Once
}

// newTestRelay describes a relay already serving at url (http://IP:PORT)
// with its data in dir; closeFn stops it and saves its state. It is
// stopped when the test ends.
func newTestRelay(t *testing.T, url, dir string, closeFn func() error) *testRelay {
	r := &testRelay{url: url, ws: "ws" + strings.TrimPrefix(url, "http"), dir: dir, close: closeFn}
	t.Cleanup(func() { r.stop(t) })
	return r
}

// startTestRelay starts a relay that resolves DIDs through plcURL and
// follows the given hosts (trusted ones without an account limit) from
// their first event. The hosts are on loopback over plain HTTP, so it runs
// with AllowInsecureHosts. It stops when the test ends, and its logs are
// printed if the test failed.
func startTestRelay(t *testing.T, plcURL string, trusted, hosts []string) *testRelay {
	t.Helper()
	dir, logs := t.TempDir(), &lockedBuffer{}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := ln.Addr().(*net.TCPAddr).Port
	srv, err := relay.New(t.Context(), relay.Config{
		Host:               "127.0.0.1",
		Port:               port,
		DataDir:            dir,
		PLCURL:             plcURL,
		TrustedHosts:       trusted,
		Hosts:              hosts,
		AllowInsecureHosts: true,
		Logger:             slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelInfo})),
	})
	if err != nil {
		ln.Close()
		t.Fatalf("starting the relay: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ctx, ln) }()
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("relay logs:\n%s", pdsTail(logs.String(), 12000))
		}
	})
	return newTestRelay(t, "http://127.0.0.1:"+strconv.Itoa(port), dir, func() error {
		cancel()
		err := <-done
		if errors.Is(err, http.ErrServerClosed) {
			err = nil
		}
		return errors.Join(err, srv.Close())
	})
}

// stop stops the relay, which saves every host's cursor and counts;
// later calls do nothing.
func (r *testRelay) stop(t *testing.T) {
	r.stopOnce.Do(func() {
		if err := r.close(); err != nil {
			t.Errorf("stopping the relay: %v", err)
		}
	})
}

// relayHost is what the relay recorded of one upstream host.
type relayHost struct {
	accepted, rejected int64
	accounts           map[string]string // DID -> status
}

// stopAndRead stops the relay and reads its store: the hosts by hostname
// (host:port), with their counts and accounts.
func (r *testRelay) stopAndRead(t *testing.T) map[string]*relayHost {
	t.Helper()
	r.stop(t)
	ctx := t.Context()
	st, err := relaystore.Open(ctx, filepath.Join(r.dir, relay.DBFileName))
	if err != nil {
		t.Fatalf("opening the relay's store: %v", err)
	}
	defer st.Close()
	out := map[string]*relayHost{}
	for cursor := ""; ; {
		hosts, next, err := st.ListHosts(ctx, cursor, relaystore.MaxListLimit)
		if err != nil {
			t.Fatalf("listing the relay's hosts: %v", err)
		}
		for _, h := range hosts {
			out[h.Hostname] = &relayHost{accepted: h.Accepted, rejected: h.Rejected, accounts: map[string]string{}}
		}
		if cursor = next; cursor == "" {
			break
		}
	}
	for cursor := ""; ; {
		accts, next, err := st.ListAccounts(ctx, cursor, relaystore.MaxListLimit)
		if err != nil {
			t.Fatalf("listing the relay's accounts: %v", err)
		}
		for _, a := range accts {
			h := out[a.Host]
			if h == nil {
				t.Errorf("the relay records %s on %q, which is not one of its hosts", a.DID, a.Host)
				continue
			}
			status := a.Status
			if status == "" {
				status = relaystore.StatusActive
			}
			h.accounts[string(a.DID)] = status
		}
		if cursor = next; cursor == "" {
			break
		}
	}
	return out
}

// listRepos reads com.atproto.sync.listRepos of the relay to its end.
func (r *testRelay) listRepos(t *testing.T) map[string]*atproto.SyncListRepos_Repo {
	t.Helper()
	c := &xrpc.Client{Host: r.url, HTTPClient: &http.Client{Timeout: 10 * time.Second}}
	out := map[string]*atproto.SyncListRepos_Repo{}
	for cursor := ""; ; {
		page, err := atproto.SyncListRepos(t.Context(), c, &atproto.SyncListRepos_Params{Cursor: cursor})
		if err != nil {
			t.Fatalf("the relay's listRepos: %v", err)
		}
		for _, repo := range page.Repos {
			out[repo.Did] = repo
		}
		if page.Cursor == nil || *page.Cursor == "" || len(page.Repos) == 0 {
			return out
		}
		cursor = *page.Cursor
	}
}

// eventCounts reads the relay's /metrics and returns its counts of
// upstream events with the given outcome (accepted, rejected, ignored)
// by "type reason".
func (r *testRelay) eventCounts(t *testing.T, outcome string) map[string]float64 {
	t.Helper()
	resp, err := (&http.Client{Timeout: 10 * time.Second}).Get(r.url + "/metrics")
	if err != nil {
		t.Fatalf("the relay's metrics: %v", err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("the relay's metrics: %s %v", resp.Status, err)
	}
	label := func(line, name string) string {
		_, rest, ok := strings.Cut(line, name+`="`)
		if !ok {
			return ""
		}
		v, _, _ := strings.Cut(rest, `"`)
		return v
	}
	out := map[string]float64{}
	for line := range strings.Lines(string(body)) {
		if !strings.HasPrefix(line, "welkin_relay_events_total{") || label(line, "outcome") != outcome {
			continue
		}
		fields := strings.Fields(line)
		n, err := strconv.ParseFloat(fields[len(fields)-1], 64)
		if err != nil {
			t.Fatalf("the relay's metrics: %q: %v", line, err)
		}
		if n != 0 {
			out[label(line, "type")+" "+label(line, "reason")] += n
		}
	}
	return out
}

// requestCrawl asks the relay, through com.atproto.sync.requestCrawl, to
// follow the host as a PDS does when it starts.
func (r *testRelay) requestCrawl(t *testing.T, hostname string) {
	t.Helper()
	c := &xrpc.Client{Host: r.url, HTTPClient: &http.Client{Timeout: 30 * time.Second}}
	if err := atproto.SyncRequestCrawl(t.Context(), c, &atproto.SyncRequestCrawl_Input{Hostname: hostname}); err != nil {
		t.Fatalf("requestCrawl %s at the relay: %v", hostname, err)
	}
}
