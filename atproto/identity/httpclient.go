package identity

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"syscall"
	"time"
)

// SafeHTTPOptions configures NewSafeHTTPClient. The zero value gives the
// defaults, with private networks refused.
type SafeHTTPOptions struct {
	// AllowPrivateNetworks turns off the address filter, so that loopback,
	// private and other non-public addresses may be dialled. Only for
	// development networks and tests.
	AllowPrivateNetworks bool

	// Timeout bounds a whole request, including reading the body
	// (default 10s).
	Timeout time.Duration
	// DialTimeout bounds establishing a TCP connection (default 5s).
	DialTimeout time.Duration
	// TLSHandshakeTimeout bounds the TLS handshake (default 5s).
	TLSHandshakeTimeout time.Duration
	// ResponseHeaderTimeout bounds the wait for response headers after the
	// request is written (default 10s).
	ResponseHeaderTimeout time.Duration
	// MaxRedirects is the number of redirect hops followed (default 3). A
	// negative value refuses all redirects.
	MaxRedirects int

	// allowAddr, when set, is consulted before the address filter: returning
	// true lets the address through. Test hook only.
	allowAddr func(netip.AddrPort) bool
}

// Defaults used by NewSafeHTTPClient.
const (
	DefaultHTTPTimeout     = 10 * time.Second
	DefaultDialTimeout     = 5 * time.Second
	DefaultTLSTimeout      = 5 * time.Second
	DefaultMaxRedirects    = 3
	maxResponseHeaderBytes = 64 << 10
)

// NewSafeHTTPClient returns an HTTP client for fetching URLs chosen by
// untrusted parties (DID documents, handles, service endpoints). Unless
// AllowPrivateNetworks is set, it refuses to connect to any address that is
// not public unicast (see IsPublicAddress). The check runs on the address
// actually being dialled, after DNS resolution, so a hostname that resolves
// (or re-resolves) to an internal address is refused too, on the first
// request and on every redirect hop. It ignores proxy environment variables,
// follows at most MaxRedirects redirects, never to a scheme other than
// http/https and never from https down to http, and has strict timeouts.
// Callers should still bound how much of a response body they read.
func NewSafeHTTPClient(opts SafeHTTPOptions) *http.Client {
	if opts.Timeout <= 0 {
		opts.Timeout = DefaultHTTPTimeout
	}
	if opts.DialTimeout <= 0 {
		opts.DialTimeout = DefaultDialTimeout
	}
	if opts.TLSHandshakeTimeout <= 0 {
		opts.TLSHandshakeTimeout = DefaultTLSTimeout
	}
	if opts.ResponseHeaderTimeout <= 0 {
		opts.ResponseHeaderTimeout = opts.Timeout
	}
	maxRedirects := opts.MaxRedirects
	if maxRedirects == 0 {
		maxRedirects = DefaultMaxRedirects
	}

	dialer := &net.Dialer{
		Timeout:   opts.DialTimeout,
		KeepAlive: 30 * time.Second,
	}
	if !opts.AllowPrivateNetworks {
		dialer.ControlContext = addressFilter(opts.allowAddr)
	}
	transport := &http.Transport{
		Proxy:                  nil,
		DialContext:            dialer.DialContext,
		ForceAttemptHTTP2:      true,
		TLSHandshakeTimeout:    opts.TLSHandshakeTimeout,
		ResponseHeaderTimeout:  opts.ResponseHeaderTimeout,
		ExpectContinueTimeout:  time.Second,
		MaxResponseHeaderBytes: maxResponseHeaderBytes,
		MaxIdleConns:           100,
		MaxIdleConnsPerHost:    4,
		IdleConnTimeout:        90 * time.Second,
	}
	return &http.Client{
		Transport:     transport,
		Timeout:       opts.Timeout,
		CheckRedirect: redirectPolicy(maxRedirects),
	}
}

func redirectPolicy(maxRedirects int) func(*http.Request, []*http.Request) error {
	return func(req *http.Request, via []*http.Request) error {
		if maxRedirects < 0 || len(via) > maxRedirects {
			return fmt.Errorf("%w: more than %d redirects", ErrRedirectRefused, max(maxRedirects, 0))
		}
		to := req.URL.Scheme
		if to != "http" && to != "https" {
			return fmt.Errorf("%w: redirect to scheme %q", ErrRedirectRefused, to)
		}
		if len(via) > 0 && via[len(via)-1].URL.Scheme == "https" && to != "https" {
			return fmt.Errorf("%w: redirect from https to %s", ErrRedirectRefused, to)
		}
		return nil
	}
}

// addressFilter returns a net.Dialer ControlContext hook refusing
// non-public addresses. allow may let specific addresses through (tests).
func addressFilter(allow func(netip.AddrPort) bool) func(context.Context, string, string, syscall.RawConn) error {
	return func(_ context.Context, network, address string, _ syscall.RawConn) error {
		switch network {
		case "tcp", "tcp4", "tcp6":
		default:
			return fmt.Errorf("%w: network %q", ErrForbiddenAddress, network)
		}
		ap, err := netip.ParseAddrPort(address)
		if err != nil {
			return fmt.Errorf("%w: unparseable address %q", ErrForbiddenAddress, address)
		}
		if allow != nil && allow(ap) {
			return nil
		}
		if !IsPublicAddress(ap.Addr()) {
			return fmt.Errorf("%w: %s", ErrForbiddenAddress, ap.Addr())
		}
		return nil
	}
}

// nonPublicPrefixes lists address ranges that are not public unicast but
// are not caught by the netip.Addr predicates used in IsPublicAddress. It is
// a function rather than a package variable so the table cannot be changed.
func nonPublicPrefixes() [16]netip.Prefix {
	return [16]netip.Prefix{
		netip.MustParsePrefix("0.0.0.0/8"),       // "this network"
		netip.MustParsePrefix("100.64.0.0/10"),   // carrier-grade NAT
		netip.MustParsePrefix("192.0.0.0/24"),    // IETF protocol assignments
		netip.MustParsePrefix("192.0.2.0/24"),    // TEST-NET-1
		netip.MustParsePrefix("192.88.99.0/24"),  // 6to4 relay anycast (deprecated)
		netip.MustParsePrefix("198.18.0.0/15"),   // benchmarking
		netip.MustParsePrefix("198.51.100.0/24"), // TEST-NET-2
		netip.MustParsePrefix("203.0.113.0/24"),  // TEST-NET-3
		netip.MustParsePrefix("240.0.0.0/4"),     // reserved, and broadcast
		netip.MustParsePrefix("64:ff9b:1::/48"),  // local-use NAT64
		netip.MustParsePrefix("100::/64"),        // discard-only
		netip.MustParsePrefix("2001::/23"),       // IETF protocol assignments, incl. Teredo
		netip.MustParsePrefix("2001:db8::/32"),   // documentation
		netip.MustParsePrefix("3fff::/20"),       // documentation
		netip.MustParsePrefix("5f00::/16"),       // segment routing SIDs
		netip.MustParsePrefix("fec0::/10"),       // site-local (deprecated)
	}
}

// IsPublicAddress reports whether addr is a globally routable unicast
// address that is safe to dial on behalf of an untrusted party. It is false
// for loopback, private (RFC 1918, fc00::/7), link-local, multicast,
// unspecified, carrier-grade NAT (100.64.0.0/10), documentation, benchmark
// and other reserved ranges, and for IPv6 forms that embed such an IPv4
// address (IPv4-mapped, NAT64 64:ff9b::/96, 6to4 2002::/16).
func IsPublicAddress(addr netip.Addr) bool {
	if !addr.IsValid() {
		return false
	}
	addr = addr.Unmap()
	if addr.Zone() != "" {
		return false
	}
	if !addr.IsGlobalUnicast() || addr.IsPrivate() {
		return false
	}
	for _, p := range nonPublicPrefixes() {
		if p.Contains(addr) {
			return false
		}
	}
	if addr.Is6() {
		b := addr.As16()
		switch {
		case netip.MustParsePrefix("64:ff9b::/96").Contains(addr): // NAT64
			return IsPublicAddress(netip.AddrFrom4([4]byte(b[12:16])))
		case netip.MustParsePrefix("2002::/16").Contains(addr): // 6to4
			return IsPublicAddress(netip.AddrFrom4([4]byte(b[2:6])))
		}
	}
	return true
}

// readLimited reads a response body of at most limit bytes, failing with
// ErrResponseTooLarge (without reading further) when it is longer.
func readLimited(resp *http.Response, limit int64) ([]byte, error) {
	if resp.ContentLength > limit {
		return nil, fmt.Errorf("%w: Content-Length %d exceeds %d", ErrResponseTooLarge, resp.ContentLength, limit)
	}
	b, err := io.ReadAll(io.LimitReader(resp.Body, limit+1))
	if err != nil {
		return nil, err
	}
	if int64(len(b)) > limit {
		return nil, fmt.Errorf("%w: more than %d bytes", ErrResponseTooLarge, limit)
	}
	return b, nil
}

// drainClose discards a little of what is left of a body, so the
// connection can be reused, and closes it.
func drainClose(body io.ReadCloser) {
	_, _ = io.Copy(io.Discard, io.LimitReader(body, 4<<10))
	_ = body.Close()
}
