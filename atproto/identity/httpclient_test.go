package identity

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/welkin-atproto/welkin/atproto/syntax"
)

func TestIsPublicAddress(t *testing.T) {
	public := []string{
		"8.8.8.8", "1.1.1.1", "93.184.216.34", "2606:4700:4700::1111", "2001:4860:4860::8888",
		"::ffff:8.8.8.8", "64:ff9b::808:808", "2002:808:808::1",
	}
	private := []string{
		"127.0.0.1", "127.1.2.3", "::1", "0.0.0.0", "::", "0.1.2.3",
		"10.0.0.1", "172.16.5.4", "172.31.255.255", "192.168.1.1",
		"fc00::1", "fd12:3456::1",
		"169.254.169.254", "fe80::1", "fe80::1%eth0",
		"224.0.0.1", "239.255.255.250", "ff02::1", "ff0e::1",
		"100.64.0.1", "100.127.255.254",
		"192.0.0.8", "192.0.2.1", "198.18.0.1", "198.51.100.2", "203.0.113.9",
		"240.0.0.1", "255.255.255.255",
		"::ffff:127.0.0.1", "::ffff:10.0.0.1", "::ffff:169.254.169.254",
		"64:ff9b::7f00:1", "64:ff9b::a00:1", "64:ff9b:1::1",
		"2002:7f00:1::1", "2002:c0a8:101::1",
		"2001:db8::1", "2001::1", "100::1", "fec0::1",
	}
	for _, s := range public {
		if !IsPublicAddress(netip.MustParseAddr(s)) {
			t.Errorf("%s should be public", s)
		}
	}
	for _, s := range private {
		if IsPublicAddress(netip.MustParseAddr(s)) {
			t.Errorf("%s should not be public", s)
		}
	}
	if IsPublicAddress(netip.Addr{}) {
		t.Error("zero Addr should not be public")
	}
}

func TestAddressFilter(t *testing.T) {
	ctrl := addressFilter(nil)
	ctx := context.Background()
	for _, a := range []string{"127.0.0.1:80", "[::1]:443", "10.1.2.3:8080", "169.254.169.254:80", "[fe80::1%25eth0]:80", "garbage"} {
		if err := ctrl(ctx, "tcp4", a, nil); !errors.Is(err, ErrForbiddenAddress) {
			t.Errorf("%s: %v", a, err)
		}
	}
	if err := ctrl(ctx, "tcp4", "8.8.8.8:443", nil); err != nil {
		t.Errorf("public: %v", err)
	}
	if err := ctrl(ctx, "udp", "8.8.8.8:53", nil); !errors.Is(err, ErrForbiddenAddress) {
		t.Errorf("udp: %v", err)
	}
}

func TestRedirectPolicy(t *testing.T) {
	mk := func(s string) *http.Request {
		u, err := url.Parse(s)
		if err != nil {
			t.Fatal(err)
		}
		return &http.Request{URL: u}
	}
	pol := redirectPolicy(3)
	https := []*http.Request{mk("https://a.example/")}
	if err := pol(mk("https://b.example/"), https); err != nil {
		t.Errorf("https->https: %v", err)
	}
	if err := pol(mk("http://b.example/"), https); !errors.Is(err, ErrRedirectRefused) {
		t.Errorf("https->http: %v", err)
	}
	if err := pol(mk("https://b.example/"), []*http.Request{mk("http://a.example/")}); err != nil {
		t.Errorf("http->https: %v", err)
	}
	for _, to := range []string{"ftp://b.example/", "file:///etc/passwd", "gopher://b.example/"} {
		if err := pol(mk(to), https); !errors.Is(err, ErrRedirectRefused) {
			t.Errorf("%s: %v", to, err)
		}
	}
	four := []*http.Request{mk("https://a/"), mk("https://b/"), mk("https://c/"), mk("https://d/")}
	if err := pol(mk("https://e/"), four); !errors.Is(err, ErrRedirectRefused) {
		t.Errorf("4 hops: %v", err)
	}
	if err := pol(mk("https://e/"), four[:3]); err != nil {
		t.Errorf("3 hops: %v", err)
	}
	if err := redirectPolicy(-1)(mk("https://b/"), https); !errors.Is(err, ErrRedirectRefused) {
		t.Errorf("no redirects: %v", err)
	}
}

// countingServer counts requests and answers with the DID text.
func countingServer(t *testing.T, body string) (*httptest.Server, *atomic.Int64) {
	t.Helper()
	var n atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n.Add(1)
		_, _ = io.WriteString(w, body)
	}))
	t.Cleanup(srv.Close)
	return srv, &n
}

func TestSafeClientRefusesLoopback(t *testing.T) {
	ctx := context.Background()
	srv, hits := countingServer(t, string(testDID1))

	// A handle whose HTTPS endpoint is on 127.0.0.1, with the default client.
	r := NewResolver(Options{TXT: &fakeTXT{}, HandleHTTPBase: func(syntax.Handle) string { return srv.URL }})
	_, err := r.ResolveHandle(ctx, "victim.test")
	var he *HandleError
	if !errors.Is(err, ErrForbiddenAddress) || !errors.As(err, &he) || !errors.Is(he.HTTPErr, ErrForbiddenAddress) {
		t.Errorf("handle: %v", err)
	}

	// A hostname that resolves to loopback is refused after resolution.
	host := strings.Replace(srv.URL, "127.0.0.1", "localhost", 1)
	client := NewSafeHTTPClient(SafeHTTPOptions{})
	for _, u := range []string{srv.URL, host, strings.Replace(srv.URL, "127.0.0.1", "[::ffff:127.0.0.1]", 1)} {
		resp, err := client.Get(u)
		if err == nil {
			resp.Body.Close()
		}
		if !errors.Is(err, ErrForbiddenAddress) {
			t.Errorf("%s: %v", u, err)
		}
	}

	// A PLC directory on loopback, with the default client.
	pr := NewResolver(Options{PLCURL: srv.URL})
	if _, err := pr.ResolveDID(ctx, testDID1); !errors.Is(err, ErrForbiddenAddress) || !errors.Is(err, ErrDIDResolutionFailed) {
		t.Errorf("plc: %v", err)
	}
	if n := hits.Load(); n != 0 {
		t.Errorf("server got %d requests", n)
	}
}

func TestSafeClientRefusesRedirectToPrivate(t *testing.T) {
	ctx := context.Background()
	internal, internalHits := countingServer(t, string(testDID2))
	// The "public" server, let through by a test-only exception for its
	// exact address, redirects to an internal one.
	var publicHits atomic.Int64
	public := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		publicHits.Add(1)
		switch r.URL.Path {
		case "/to-ip/.well-known/atproto-did":
			http.Redirect(w, r, internal.URL+"/.well-known/atproto-did", http.StatusFound)
		case "/to-name/.well-known/atproto-did":
			http.Redirect(w, r, strings.Replace(internal.URL, "127.0.0.1", "localhost", 1)+"/.well-known/atproto-did", http.StatusMovedPermanently)
		default:
			http.NotFound(w, r)
		}
	}))
	defer public.Close()
	publicAddr := netip.MustParseAddrPort(strings.TrimPrefix(public.URL, "http://"))

	client := NewSafeHTTPClient(SafeHTTPOptions{allowAddr: func(ap netip.AddrPort) bool { return ap == publicAddr }})
	r := NewResolver(Options{
		HTTPClient:     client,
		TXT:            &fakeTXT{},
		HandleHTTPBase: func(h syntax.Handle) string { return public.URL + "/" + strings.TrimSuffix(string(h), ".test") },
	})
	for _, h := range []syntax.Handle{"to-ip.test", "to-name.test"} {
		_, err := r.ResolveHandle(ctx, h)
		if !errors.Is(err, ErrForbiddenAddress) {
			t.Errorf("%s: %v", h, err)
		}
	}
	if n := internalHits.Load(); n != 0 {
		t.Errorf("internal server got %d requests", n)
	}
	if n := publicHits.Load(); n != 2 {
		t.Errorf("public server got %d requests, want 2 (first hop allowed)", n)
	}
}

func TestSafeClientRedirectLimit(t *testing.T) {
	var hits atomic.Int64
	var srv *httptest.Server
	srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		http.Redirect(w, r, srv.URL+"/again", http.StatusFound)
	}))
	defer srv.Close()
	client := NewSafeHTTPClient(SafeHTTPOptions{AllowPrivateNetworks: true})
	resp, err := client.Get(srv.URL)
	if err == nil {
		resp.Body.Close()
	}
	if !errors.Is(err, ErrRedirectRefused) {
		t.Errorf("err = %v", err)
	}
	if n := hits.Load(); n != DefaultMaxRedirects+1 {
		t.Errorf("%d requests, want %d", n, DefaultMaxRedirects+1)
	}
}

func TestSafeClientSlowBody(t *testing.T) {
	release := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Length", "1000")
		_, _ = w.Write([]byte(`{"id":`))
		w.(http.Flusher).Flush()
		select {
		case <-release:
		case <-r.Context().Done():
		}
	}))
	t.Cleanup(srv.Close)
	t.Cleanup(func() { close(release) }) // runs before srv.Close
	client := NewSafeHTTPClient(SafeHTTPOptions{AllowPrivateNetworks: true, Timeout: 200 * time.Millisecond})
	r := NewResolver(Options{PLCURL: srv.URL, HTTPClient: client})
	_, err := r.ResolveDID(context.Background(), testDID1)
	if !errors.Is(err, ErrDIDResolutionFailed) {
		t.Errorf("err = %v", err)
	}

	// A caller's context ends a stalled request too, and is reported as such.
	ctx, cancel := context.WithCancel(context.Background())
	slow := NewResolver(Options{PLCURL: srv.URL, AllowPrivateNetworks: true})
	done := make(chan error, 1)
	go func() {
		_, err := slow.ResolveDID(ctx, testDID1)
		done <- err
	}()
	cancel()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled: %v", err)
	}
}

func TestReadLimited(t *testing.T) {
	mk := func(body string, cl int64) *http.Response {
		return &http.Response{Body: io.NopCloser(strings.NewReader(body)), ContentLength: cl}
	}
	if b, err := readLimited(mk("12345", -1), 5); err != nil || string(b) != "12345" {
		t.Errorf("exact: %q %v", b, err)
	}
	if _, err := readLimited(mk("123456", -1), 5); !errors.Is(err, ErrResponseTooLarge) {
		t.Errorf("over: %v", err)
	}
	if _, err := readLimited(mk("1", 1<<40), 5); !errors.Is(err, ErrResponseTooLarge) {
		t.Errorf("declared: %v", err)
	}
}
