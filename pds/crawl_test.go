package pds

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"
)

func TestRelayURL(t *testing.T) {
	for in, want := range map[string]string{
		"bsky.network":            "https://bsky.network",
		"  bsky.network ":         "https://bsky.network",
		"https://bsky.network":    "https://bsky.network",
		"https://bsky.network/":   "https://bsky.network",
		"http://localhost:2470":   "http://localhost:2470",
		"relay.example.com:8443":  "https://relay.example.com:8443",
		"HTTPS://Relay.Example":   "https://Relay.Example",
		"http://127.0.0.1:9/":     "http://127.0.0.1:9",
		"https://[::1]:2470":      "https://[::1]:2470",
		"https://relay.example.a": "https://relay.example.a",
	} {
		got, err := relayURL(in)
		if err != nil || got != want {
			t.Errorf("relayURL(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	for _, in := range []string{
		"", "   ", "ftp://relay.example", "wss://relay.example", "https://", "https://relay.example/path",
		"https://user:pw@relay.example", "https://relay.example?x=1", "https://relay.example#f", "http://%zz",
	} {
		if got, err := relayURL(in); err == nil {
			t.Errorf("relayURL(%q) = %q, want an error", in, got)
		}
	}
}

// fakeRelay records the requestCrawl calls it receives.
type fakeRelay struct {
	*httptest.Server
	mu        sync.Mutex
	hostnames []string
	bad       []string // requests that were not a proper requestCrawl
	status    int      // answer; 200 when zero
}

func newFakeRelay(t *testing.T) *fakeRelay {
	f := &fakeRelay{}
	f.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var in struct {
			Hostname string `json:"hostname"`
		}
		body, _ := io.ReadAll(r.Body)
		err := json.Unmarshal(body, &in)
		f.mu.Lock()
		defer f.mu.Unlock()
		if r.Method != http.MethodPost || r.URL.Path != "/xrpc/com.atproto.sync.requestCrawl" ||
			!strings.HasPrefix(r.Header.Get("Content-Type"), "application/json") || err != nil || in.Hostname == "" {
			f.bad = append(f.bad, r.Method+" "+r.URL.Path+" "+string(body))
		}
		f.hostnames = append(f.hostnames, in.Hostname)
		if f.status != 0 {
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(f.status)
			w.Write([]byte(`{"error":"InternalServerError"}`))
		}
	}))
	t.Cleanup(f.Close)
	return f
}

func (f *fakeRelay) requests() ([]string, []string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]string(nil), f.hostnames...), append([]string(nil), f.bad...)
}

func (f *fakeRelay) setStatus(s int) {
	f.mu.Lock()
	f.status = s
	f.mu.Unlock()
}

// waitRequests waits until the relay has received n requests and checks
// that each was a well-formed requestCrawl for hostname.
func (f *fakeRelay) waitRequests(t *testing.T, n int, hostname string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		got, bad := f.requests()
		if len(bad) > 0 {
			t.Fatalf("malformed crawl requests: %q", bad)
		}
		if len(got) > n {
			t.Fatalf("relay got %d requests, want %d", len(got), n)
		}
		if len(got) == n {
			for _, h := range got {
				if h != hostname {
					t.Errorf("requestCrawl for %q, want %q", h, hostname)
				}
			}
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("relay got %d requests, want %d", len(got), n)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// fakeWait replaces a crawler's timer: each wait is announced on waits and
// ends when the test sends on fire.
type fakeWait struct {
	waits chan time.Duration
	fire  chan time.Time
}

func newFakeWait(c *crawler) *fakeWait {
	f := &fakeWait{waits: make(chan time.Duration, 1), fire: make(chan time.Time)}
	c.after = func(d time.Duration) <-chan time.Time {
		f.waits <- d
		return f.fire
	}
	return f
}

func (f *fakeWait) waiting(t *testing.T) time.Duration {
	t.Helper()
	select {
	case d := <-f.waits:
		return d
	case <-time.After(10 * time.Second):
		t.Fatal("the crawler is not waiting")
		return 0
	}
}

func discardLogger() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

func TestCrawlerCoalesces(t *testing.T) {
	t.Parallel()
	r1, r2 := newFakeRelay(t), newFakeRelay(t)
	c := newCrawler("pds.example", []string{r1.URL, r2.URL}, http.DefaultClient, discardLogger())
	c.interval = time.Hour
	fw := newFakeWait(c)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); c.run(ctx) }()
	defer func() { cancel(); <-done }()

	// The first kick is sent at once, to every relay.
	c.kick()
	r1.waitRequests(t, 1, "pds.example")
	r2.waitRequests(t, 1, "pds.example")

	// A burst within the interval waits for its end and is sent once.
	for range 10 {
		c.kick()
	}
	if d := fw.waiting(t); d <= 0 || d > time.Hour {
		t.Errorf("waits %v, want at most the interval", d)
	}
	for range 10 {
		c.kick() // during the wait: joins the pending round
	}
	if got, _ := r1.requests(); len(got) != 1 {
		t.Fatalf("%d requests before the interval ended, want 1", len(got))
	}
	fw.fire <- time.Now()
	r1.waitRequests(t, 2, "pds.example")
	r2.waitRequests(t, 2, "pds.example")
	if len(c.kicks) != 0 {
		t.Error("kicks made during the wait are still pending after the round")
	}

	// A later kick waits again.
	c.kick()
	fw.waiting(t)
	fw.fire <- time.Now()
	r1.waitRequests(t, 3, "pds.example")
}

func TestCrawlerFailures(t *testing.T) {
	t.Parallel()
	down, up := newFakeRelay(t), newFakeRelay(t)
	down.setStatus(http.StatusInternalServerError)
	// A relay that does not answer at all.
	ln := httptest.NewServer(http.NotFoundHandler())
	gone := ln.URL
	ln.Close()

	c := newCrawler("pds.example", []string{gone, down.URL, up.URL}, http.DefaultClient, discardLogger())
	c.interval = time.Hour
	fw := newFakeWait(c)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); c.run(ctx) }()
	defer func() { cancel(); <-done }()

	// Failing relays neither stop the others nor the crawler.
	c.kick()
	up.waitRequests(t, 1, "pds.example")
	down.waitRequests(t, 1, "pds.example")
	down.setStatus(0)
	c.kick()
	fw.waiting(t)
	fw.fire <- time.Now()
	up.waitRequests(t, 2, "pds.example")
	down.waitRequests(t, 2, "pds.example")
}

func TestCrawlerStops(t *testing.T) {
	t.Parallel()
	relay := newFakeRelay(t)
	c := newCrawler("pds.example", []string{relay.URL}, http.DefaultClient, discardLogger())
	fw := newFakeWait(c)
	c.interval = time.Hour
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); c.run(ctx) }()
	c.kick()
	relay.waitRequests(t, 1, "pds.example")
	// Stop while waiting for the interval to end.
	c.kick()
	fw.waiting(t)
	cancel()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("the crawler did not stop with its context")
	}
}

// TestServerCrawl checks that a serving PDS asks its relays to crawl it,
// skipping relay hosts that do not parse, and that requestCrawlSoon is safe
// to call at any time.
func TestServerCrawl(t *testing.T) {
	t.Parallel()
	relay := newFakeRelay(t)
	p := newTestPDS(t, func(c *Config) {
		c.RelayHosts = []string{"ftp://nonsense", relay.URL}
	})
	// Serve started the crawler; starting it again is a no-op.
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	host := strings.TrimPrefix(p.url, "http://")
	relay.waitRequests(t, 1, host)
	p.srv.startCrawler(ctx)
	p.srv.requestCrawlSoon()

	// Without relays, nothing runs and requestCrawlSoon does nothing.
	q := newTestPDS(t, nil)
	q.srv.startCrawler(ctx)
	q.srv.requestCrawlSoon()
	q.srv.crawlMu.Lock()
	running := q.srv.crawler != nil
	q.srv.crawlMu.Unlock()
	if running {
		t.Error("a crawler runs without relays")
	}
}

func TestCrawlHostname(t *testing.T) {
	s := &Server{cfg: Config{Hostname: "pds.example.com", PublicURL: "https://pds.example.com"}}
	if got := s.crawlHostname(); got != "pds.example.com" {
		t.Errorf("crawlHostname = %q", got)
	}
	s = &Server{cfg: Config{Hostname: "localhost", PublicURL: "http://localhost:2583"}}
	if got := s.crawlHostname(); got != "localhost:2583" {
		t.Errorf("crawlHostname on localhost = %q", got)
	}
}

// FuzzRelayURL checks that relayURL never panics and that what it accepts
// is a base URL it accepts again unchanged.
func FuzzRelayURL(f *testing.F) {
	for _, s := range []string{"bsky.network", "https://bsky.network/", "http://localhost:2470", "ftp://x", "https://[::1]:1", "http://%zz", ""} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, in string) {
		u, err := relayURL(in)
		if err != nil {
			return
		}
		again, err := relayURL(u)
		if err != nil || again != u {
			t.Errorf("relayURL(%q) = %q, which gives %q, %v", in, u, again, err)
		}
	})
}
