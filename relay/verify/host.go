package verify

import (
	"fmt"
	"strings"
)

// hostPort splits a host given as "hostname[:port]" or as a URL
// "scheme://hostname[:port][/...]" into its lower-cased hostname and its
// port, with the port made explicit from the scheme's default when absent
// (http and ws: 80; https and wss: 443). A bare host without a port stands
// for either default, reported as port "". It allocates nothing unless the
// hostname has upper-case letters.
func hostPort(s string) (host, port string) {
	scheme, rest, ok := strings.Cut(s, "://")
	if !ok {
		scheme, rest = "", s
	}
	if i := strings.IndexAny(rest, "/?#"); i >= 0 {
		rest = rest[:i]
	}
	if i := strings.LastIndexByte(rest, '@'); i >= 0 {
		rest = rest[i+1:]
	}
	host = rest
	// A port follows the last colon, unless that colon is inside the
	// brackets of an IPv6 literal.
	if i := strings.LastIndexByte(rest, ':'); i >= 0 && !strings.Contains(rest[i:], "]") {
		host, port = rest[:i], rest[i+1:]
	}
	def := ""
	switch strings.ToLower(scheme) {
	case "http", "ws":
		def = "80"
	case "https", "wss":
		def = "443"
	case "":
		if port == "80" || port == "443" {
			port = ""
		}
	}
	if port == "" {
		port = def
	}
	host = strings.TrimSuffix(host, ".")
	if strings.ContainsFunc(host, func(r rune) bool { return r >= 'A' && r <= 'Z' }) {
		host = strings.ToLower(host)
	}
	return host, port
}

// sameHost reports whether the host an event arrived from (a bare
// "hostname[:port]" or a URL) is the host of the PDS endpoint URL.
// Hostnames compare without regard to case; ports must be equal, a bare
// host without a port matching an endpoint on its scheme's default port.
func sameHost(from, endpoint string) bool {
	fh, fp := hostPort(from)
	eh, ep := hostPort(endpoint)
	if fh == "" || fh != eh {
		return false
	}
	if fp == "" || ep == "" {
		return (fp == "" || fp == "80" || fp == "443") && (ep == "" || ep == "80" || ep == "443")
	}
	return fp == ep
}

// CheckHost checks that the account's identity names host as its PDS: the
// sync specification's rule that #commit, #sync (and, at a relay, #account)
// events are accepted only from the stream of the account's current host.
// host is where the event came from, as "hostname[:port]" or a URL.
func CheckHost(host string, id Identity) (Reason, error) {
	if id == nil {
		return ReasonNoIdentity, fmt.Errorf("no identity to check host %q against", host)
	}
	ep, err := id.PDSEndpoint()
	if err != nil {
		return ReasonNoPDS, fmt.Errorf("identity has no PDS endpoint: %w", err)
	}
	if !sameHost(host, ep) {
		return ReasonNotAuthoritativeHost, fmt.Errorf("event came from %q, but the account's PDS is %s", host, ep)
	}
	return ReasonNone, nil
}
