package pds

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/welkin-atproto/welkin/atproto/syntax"
	"github.com/welkin-atproto/welkin/atproto/xrpc"
)

func handleTestServer() *Server {
	return &Server{cfg: Config{HandleDomains: []string{".test", ".pds.example.com"}}}
}

func TestNormalizeHandle(t *testing.T) {
	s := handleTestServer()
	ctx := context.Background()
	cases := []struct {
		in    string
		rules handleRules
		want  string // the handle, or the error name
	}{
		{"alice.test", handleRules{}, "alice.test"},
		{"Alice.TEST", handleRules{}, "alice.test"},
		{"alice.pds.example.com", handleRules{}, "alice.pds.example.com"},
		{"abc.test", handleRules{}, "abc.test"},
		{"ab.test", handleRules{}, "InvalidHandle"},
		{"abcdefghijklmnopqr.test", handleRules{}, "abcdefghijklmnopqr.test"},
		{"abcdefghijklmnopqrs.test", handleRules{}, "InvalidHandle"},
		{"a.bcd.test", handleRules{}, "InvalidHandle"},
		{"admin.test", handleRules{}, "HandleNotAvailable"},
		{"admin.test", handleRules{admin: true}, "admin.test"},
		{"alice.example.com", handleRules{}, "UnsupportedDomain"},
		{"alice.onion", handleRules{}, "InvalidHandle"},
		{"alice.localhost", handleRules{}, "InvalidHandle"},
		{"bad_handle.test", handleRules{}, "InvalidHandle"},
		{"", handleRules{}, "InvalidHandle"},
	}
	for _, tc := range cases {
		h, err := s.normalizeHandle(ctx, tc.in, tc.rules)
		got := string(h)
		if err != nil {
			var xe *xrpc.Error
			if !errors.As(err, &xe) || xe.Status != 400 {
				t.Errorf("normalizeHandle(%q): %v is not a 400 XRPC error", tc.in, err)
				continue
			}
			got = xe.Name
		}
		if got != tc.want {
			t.Errorf("normalizeHandle(%q, %+v) = %s, want %s", tc.in, tc.rules, got, tc.want)
		}
	}
}

func FuzzNormalizeHandle(f *testing.F) {
	for _, s := range []string{"alice.test", "ADMIN.test", "a.b.test", "x.example.com", "", "-.test", "alice.pds.example.com"} {
		f.Add(s)
	}
	s := handleTestServer()
	f.Fuzz(func(t *testing.T, in string) {
		h, err := s.normalizeHandle(context.Background(), in, handleRules{})
		if err != nil {
			var xe *xrpc.Error
			if !errors.As(err, &xe) || xe.Status != 400 {
				t.Fatalf("%q: %v", in, err)
			}
			return
		}
		if _, perr := syntax.ParseHandle(string(h)); perr != nil || h != h.Normalize() {
			t.Fatalf("%q gave %q, not a normalized handle", in, h)
		}
		if !s.isHostedHandle(h) {
			t.Fatalf("%q accepted outside the PDS's domains", h)
		}
		front := strings.TrimSuffix(strings.TrimSuffix(string(h), ".test"), ".pds.example.com")
		if len(front) < minHostedHandleLabel || len(front) > maxHostedHandleLabel || strings.Contains(front, ".") || reservedHandleLabels[front] {
			t.Fatalf("%q accepted", h)
		}
	})
}
