package relay

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"net/url"
	"os"
	"strconv"
	"strings"

	"github.com/welkin-atproto/welkin/atproto/identity"
	"github.com/welkin-atproto/welkin/atproto/syntax"
)

// errBadHostname is wrapped by every hostname validation error.
var errBadHostname = errors.New("invalid hostname")

// hostAddr is a validated upstream host.
type hostAddr struct {
	// Name is the stored form: the lower-case hostname, with ":port" when
	// one was given.
	Name string
	// NoTLS selects http and ws instead of https and wss.
	NoTLS bool
}

// httpURL is the host's base URL.
func (h hostAddr) httpURL() string {
	if h.NoTLS {
		return "http://" + h.Name
	}
	return "https://" + h.Name
}

// streamURL is the URL of the host's subscribeRepos stream.
func (h hostAddr) streamURL() string {
	s := "wss://"
	if h.NoTLS {
		s = "ws://"
	}
	return s + h.Name + "/xrpc/com.atproto.sync.subscribeRepos"
}

// parseHostname validates a host given as "hostname", "hostname:port" or a
// URL with nothing but a scheme (http, https, ws, wss), a host and a port.
// Unless insecure, it must be a public DNS name (a valid handle-like
// hostname, not an IP address or localhost), without a port, over TLS;
// addresses are checked again when dialled, by the SSRF-safe HTTP client.
// With insecure, IP addresses, localhost, ports and plain http/ws are
// allowed, and a loopback host without a scheme is reached without TLS.
func parseHostname(s string, insecure bool) (hostAddr, error) {
	raw := strings.TrimSpace(s)
	if raw == "" {
		return hostAddr{}, fmt.Errorf("%w: empty", errBadHostname)
	}
	if len(raw) > 512 {
		return hostAddr{}, fmt.Errorf("%w: too long", errBadHostname)
	}
	hostport, scheme := raw, ""
	if strings.Contains(raw, "://") {
		u, err := url.Parse(raw)
		if err != nil {
			return hostAddr{}, fmt.Errorf("%w: %q: %v", errBadHostname, raw, err)
		}
		if u.User != nil || (u.Path != "" && u.Path != "/") || u.RawQuery != "" || u.Fragment != "" || u.Opaque != "" {
			return hostAddr{}, fmt.Errorf("%w: %q: only a scheme, host and port are allowed", errBadHostname, raw)
		}
		scheme, hostport = strings.ToLower(u.Scheme), u.Host
	} else if strings.ContainsAny(raw, "/?#@ ") {
		return hostAddr{}, fmt.Errorf("%w: %q", errBadHostname, raw)
	}
	var h hostAddr
	switch scheme {
	case "", "https", "wss":
	case "http", "ws":
		h.NoTLS = true
	default:
		return hostAddr{}, fmt.Errorf("%w: %q: scheme %q is not http(s) or ws(s)", errBadHostname, raw, scheme)
	}
	name, port := hostport, ""
	if strings.HasPrefix(hostport, "[") || strings.Count(hostport, ":") == 1 {
		if n, p, err := net.SplitHostPort(hostport); err == nil {
			name, port = n, p
		} else if strings.HasPrefix(hostport, "[") {
			name = strings.TrimSuffix(strings.TrimPrefix(hostport, "["), "]")
		}
	}
	name = strings.TrimSuffix(strings.ToLower(name), ".")
	if port != "" {
		n, err := strconv.Atoi(port)
		if err != nil || n < 1 || n > 65535 {
			return hostAddr{}, fmt.Errorf("%w: %q: bad port %q", errBadHostname, raw, port)
		}
		port = strconv.Itoa(n)
	}
	ip, ipErr := netip.ParseAddr(name)
	isIP := ipErr == nil
	if !insecure {
		switch {
		case h.NoTLS:
			return hostAddr{}, fmt.Errorf("%w: %q: plain http/ws hosts need --allow-insecure-hosts", errBadHostname, raw)
		case port != "":
			return hostAddr{}, fmt.Errorf("%w: %q: ports need --allow-insecure-hosts", errBadHostname, raw)
		case isIP:
			return hostAddr{}, fmt.Errorf("%w: %q: IP addresses need --allow-insecure-hosts", errBadHostname, raw)
		case name == "localhost" || strings.HasSuffix(name, ".localhost"):
			return hostAddr{}, fmt.Errorf("%w: %q: localhost needs --allow-insecure-hosts", errBadHostname, raw)
		}
		hd, err := syntax.ParseHandle(name)
		if err != nil {
			return hostAddr{}, fmt.Errorf("%w: %q: %v", errBadHostname, raw, err)
		}
		if !hd.AllowedTLD() {
			return hostAddr{}, fmt.Errorf("%w: %q: reserved top-level domain", errBadHostname, raw)
		}
		h.Name = name
		return h, nil
	}
	loopback := name == "localhost" || (isIP && ip.IsLoopback())
	if !isIP && name != "localhost" {
		if _, err := syntax.ParseHandle(name); err != nil {
			return hostAddr{}, fmt.Errorf("%w: %q: %v", errBadHostname, raw, err)
		}
	}
	if scheme == "" && (loopback || (isIP && !identity.IsPublicAddress(ip))) {
		h.NoTLS = true
	}
	h.Name = name
	if isIP && ip.Is6() {
		h.Name = "[" + name + "]"
	}
	if port != "" {
		h.Name = net.JoinHostPort(name, port)
	}
	return h, nil
}

// mkdirAll creates the data directory.
func mkdirAll(dir string) error {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("relay: creating the data directory: %w", err)
	}
	return nil
}
