package relay

import (
	"errors"
	"testing"
)

func TestParseHostname(t *testing.T) {
	tests := []struct {
		in       string
		insecure bool
		want     string
		noTLS    bool
		bad      bool
	}{
		{in: "pds.example.com", want: "pds.example.com"},
		{in: " PDS.Example.COM. ", want: "pds.example.com"},
		{in: "https://pds.example.com", want: "pds.example.com"},
		{in: "wss://pds.example.com/", want: "pds.example.com"},
		{in: "http://pds.example.com", bad: true},
		{in: "pds.example.com:8080", bad: true},
		{in: "127.0.0.1", bad: true},
		{in: "localhost", bad: true},
		{in: "foo.localhost", bad: true},
		{in: "pds.example", bad: true}, // reserved TLD
		{in: "nodot", bad: true},
		{in: "", bad: true},
		{in: "https://user@pds.example.com", bad: true},
		{in: "https://pds.example.com/path", bad: true},
		{in: "https://pds.example.com?x=1", bad: true},
		{in: "ftp://pds.example.com", bad: true},
		{in: "pds.example.com/xrpc", bad: true},
		{in: "-bad-.example.com", bad: true},

		{in: "localhost:2583", insecure: true, want: "localhost:2583", noTLS: true},
		{in: "http://localhost:2583", insecure: true, want: "localhost:2583", noTLS: true},
		{in: "127.0.0.1:2583", insecure: true, want: "127.0.0.1:2583", noTLS: true},
		{in: "[::1]:2583", insecure: true, want: "[::1]:2583", noTLS: true},
		{in: "https://localhost:2583", insecure: true, want: "localhost:2583"},
		{in: "pds.example.com:8443", insecure: true, want: "pds.example.com:8443"},
		{in: "pds.example.com", insecure: true, want: "pds.example.com"},
		{in: "localhost:0", insecure: true, bad: true},
		{in: "localhost:99999", insecure: true, bad: true},
		{in: "localhost:x", insecure: true, bad: true},
	}
	for _, tt := range tests {
		h, err := parseHostname(tt.in, tt.insecure)
		if tt.bad {
			if err == nil {
				t.Errorf("parseHostname(%q, %v) = %+v, want an error", tt.in, tt.insecure, h)
			} else if !errors.Is(err, errBadHostname) {
				t.Errorf("parseHostname(%q): error %v does not wrap errBadHostname", tt.in, err)
			}
			continue
		}
		if err != nil {
			t.Errorf("parseHostname(%q, %v): %v", tt.in, tt.insecure, err)
			continue
		}
		if h.Name != tt.want || h.NoTLS != tt.noTLS {
			t.Errorf("parseHostname(%q, %v) = %+v, want %q noTLS=%v", tt.in, tt.insecure, h, tt.want, tt.noTLS)
		}
	}
}

func TestHostURLs(t *testing.T) {
	h := hostAddr{Name: "localhost:2583", NoTLS: true}
	if h.httpURL() != "http://localhost:2583" || h.streamURL() != "ws://localhost:2583/xrpc/com.atproto.sync.subscribeRepos" {
		t.Errorf("insecure URLs: %s %s", h.httpURL(), h.streamURL())
	}
	h = hostAddr{Name: "pds.example.com"}
	if h.httpURL() != "https://pds.example.com" || h.streamURL() != "wss://pds.example.com/xrpc/com.atproto.sync.subscribeRepos" {
		t.Errorf("URLs: %s %s", h.httpURL(), h.streamURL())
	}
}

func FuzzParseHostname(f *testing.F) {
	for _, s := range []string{"pds.example.com", "http://localhost:2583", "[::1]:1", "https://a.b/", "::::", "[", "http://[::1"} {
		f.Add(s, false)
		f.Add(s, true)
	}
	f.Fuzz(func(t *testing.T, s string, insecure bool) {
		h, err := parseHostname(s, insecure)
		if err != nil {
			return
		}
		// What was accepted is accepted again, unchanged.
		h2, err := parseHostname(h.Name, insecure)
		if err != nil {
			t.Fatalf("%q accepted as %q, which is then refused: %v", s, h.Name, err)
		}
		if h2.Name != h.Name {
			t.Fatalf("%q -> %q -> %q", s, h.Name, h2.Name)
		}
	})
}
