package identity

import (
	"context"
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/welkin-atproto/welkin/atproto/syntax"
)

func TestResolvePLC(t *testing.T) {
	ctx := context.Background()
	e := newTestEnv(t)
	key := newK256(t)
	e.plc.set(testDID1, docJSON(t, testDID1, "alice.test", key, "https://pds.example.com"))
	e.plc.set(testDID2, docJSON(t, testDID3, "mallory.test", key, "https://pds.example.com"))
	e.plc.gone[string(testDID3)] = true

	ident, err := e.res.ResolveDID(ctx, testDID1)
	if err != nil {
		t.Fatal(err)
	}
	if k, err := ident.SigningKey(); err != nil || !k.Equal(key) {
		t.Errorf("key: %v", err)
	}
	if ident.Handle != "alice.test" {
		t.Errorf("handle %q", ident.Handle)
	}

	_, err = e.res.ResolveDID(ctx, "did:plc:zzzzzzzzzzzzzzzzzzzzzzzz")
	var de *DIDError
	if !errors.Is(err, ErrDIDNotFound) || !errors.As(err, &de) || de.DID != "did:plc:zzzzzzzzzzzzzzzzzzzzzzzz" {
		t.Errorf("not found: %v", err)
	}
	if _, err := e.res.ResolveDID(ctx, testDID3); !errors.Is(err, ErrDIDDeactivated) {
		t.Errorf("gone: %v", err)
	}
	// The directory returned a document for another DID.
	if _, err := e.res.ResolveDID(ctx, testDID2); !errors.Is(err, ErrDIDDocumentMismatch) {
		t.Errorf("mismatch: %v", err)
	}
	// Malformed identifiers never reach the directory.
	before := e.plc.requests.Load()
	for _, did := range []syntax.DID{"did:plc:short", "did:plc:AAAAAAAAAAAAAAAAAAAAAAAA", "did:plc:aaaaaaaaaaaaaaaaaaaaaa%2F", "did:key:zQ3shXjHeiBuRCKmM36cuYnm7YEMzhGnCmCyW92sRJ9pribSF"} {
		if _, err := e.res.ResolveDID(ctx, did); !errors.Is(err, ErrUnsupportedDIDMethod) {
			t.Errorf("%s: %v", did, err)
		}
	}
	if n := e.plc.requests.Load(); n != before {
		t.Errorf("%d requests for malformed DIDs", n-before)
	}
}

func TestResolvePLCBadResponses(t *testing.T) {
	ctx := context.Background()
	cases := map[string]http.HandlerFunc{
		"server error": func(w http.ResponseWriter, r *http.Request) { http.Error(w, "boom", 500) },
		"not json":     func(w http.ResponseWriter, r *http.Request) { _, _ = w.Write([]byte("<html>")) },
		"oversize": func(w http.ResponseWriter, r *http.Request) {
			_, _ = w.Write([]byte(`{"id":"` + string(testDID1) + `","x":"`))
			_, _ = w.Write([]byte(strings.Repeat("a", MaxDIDDocumentSize)))
			_, _ = w.Write([]byte(`"}`))
		},
		"oversize chunked": func(w http.ResponseWriter, r *http.Request) {
			chunk := []byte(strings.Repeat(" ", 4096))
			for range 2 * MaxDIDDocumentSize / len(chunk) {
				if _, err := w.Write(chunk); err != nil {
					return
				}
				w.(http.Flusher).Flush()
			}
		},
	}
	for name, h := range cases {
		t.Run(name, func(t *testing.T) {
			srv := httptest.NewServer(h)
			defer srv.Close()
			r := NewResolver(Options{PLCURL: srv.URL, AllowPrivateNetworks: true})
			_, err := r.ResolveDID(ctx, testDID1)
			if !errors.Is(err, ErrDIDResolutionFailed) {
				t.Errorf("err = %v", err)
			}
			if strings.HasPrefix(name, "oversize") && !errors.Is(err, ErrResponseTooLarge) {
				t.Errorf("want ErrResponseTooLarge, got %v", err)
			}
		})
	}
}

func TestResolveDIDWebLocalhostPort(t *testing.T) {
	ctx := context.Background()
	key := newK256(t)
	var did syntax.DID
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/.well-known/did.json" {
			http.NotFound(w, r)
			return
		}
		_, _ = w.Write(docJSON(t, did, "web.test", key, "https://pds.example.com"))
	}))
	defer srv.Close()
	_, port, err := net.SplitHostPort(strings.TrimPrefix(srv.URL, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	did = syntax.DID("did:web:localhost%3A" + port)

	r := NewResolver(Options{AllowPrivateNetworks: true, AllowLocalhost: true})
	ident, err := r.ResolveDID(ctx, did)
	if err != nil {
		t.Fatal(err)
	}
	if ident.DID != did || ident.Handle != "web.test" {
		t.Errorf("got %s %s", ident.DID, ident.Handle)
	}

	// Without the localhost opt-in the DID is refused outright.
	if _, err := NewResolver(Options{AllowPrivateNetworks: true}).ResolveDID(ctx, did); !errors.Is(err, ErrUnsupportedDIDMethod) {
		t.Errorf("no AllowLocalhost: %v", err)
	}
	// With it, but with the default safe client, loopback is still refused.
	if _, err := NewResolver(Options{AllowLocalhost: true}).ResolveDID(ctx, did); !errors.Is(err, ErrForbiddenAddress) {
		t.Errorf("safe client: %v", err)
	}
}

func TestDIDWebURL(t *testing.T) {
	r := NewResolver(Options{})
	ok := map[syntax.DID]string{
		"did:web:example.com":     "https://example.com/.well-known/did.json",
		"did:web:Sub.Example.com": "https://sub.example.com/.well-known/did.json",
	}
	for did, want := range ok {
		got, err := r.didWebURL(did)
		if err != nil || got != want {
			t.Errorf("%s: %q, %v", did, got, err)
		}
	}
	bad := []syntax.DID{
		"did:web:example.com:user:alice", // path-based
		"did:web:example.com%3A8443",     // port on a real host
		"did:web:localhost%3A8080",       // localhost without opt-in
		"did:web:localhost",
		"did:web:example.com%2Fpath",
		"did:web:127.0.0.1",
		"did:web:printer.local",
		"did:web:example.com%3A",
		"did:web:example.com%3Ahttp",
		"did:web:nodots",
	}
	for _, did := range bad {
		if got, err := r.didWebURL(did); err == nil {
			t.Errorf("%s: accepted as %q", did, got)
		}
	}
	lr := NewResolver(Options{AllowLocalhost: true})
	if got, err := lr.didWebURL("did:web:localhost%3a8080"); err != nil || got != "http://localhost:8080/.well-known/did.json" {
		t.Errorf("localhost: %q, %v", got, err)
	}
}

func TestResolveHandle(t *testing.T) {
	ctx := context.Background()
	e := newTestEnv(t)

	// DNS only.
	e.txt.set("dns.test", "v=spf1 -all", "did="+string(testDID1))
	// HTTPS only, with surrounding whitespace.
	e.web.set("web.test", "  "+string(testDID2)+"\n")
	// Both, agreeing; the TXT records repeat the same DID.
	e.txt.set("both.test", "did="+string(testDID1), "did="+string(testDID1))
	e.web.set("both.test", string(testDID1))
	// Both, disagreeing: DNS wins.
	e.txt.set("split.test", "did="+string(testDID1))
	e.web.set("split.test", string(testDID2))
	// Invalid did= record in DNS, valid HTTPS.
	e.txt.set("baddns.test", "did=not-a-did")
	e.web.set("baddns.test", string(testDID3))

	want := map[syntax.Handle]syntax.DID{
		"dns.test":    testDID1,
		"web.test":    testDID2,
		"both.test":   testDID1,
		"split.test":  testDID1,
		"SPLIT.test":  testDID1,
		"baddns.test": testDID3,
	}
	for h, did := range want {
		got, err := e.res.ResolveHandle(ctx, h)
		if err != nil || got != did {
			t.Errorf("%s: %q, %v; want %s", h, got, err, did)
		}
	}
}

func TestResolveHandleFailures(t *testing.T) {
	ctx := context.Background()
	e := newTestEnv(t)

	// Conflicting DNS records fail, whatever HTTPS says.
	e.txt.set("ambiguous.test", "did="+string(testDID1), "did="+string(testDID2))
	e.web.set("ambiguous.test", string(testDID1))
	_, err := e.res.ResolveHandle(ctx, "ambiguous.test")
	if !errors.Is(err, ErrHandleAmbiguous) {
		t.Errorf("ambiguous: %v", err)
	}

	// Nothing anywhere: not found, with both causes recorded.
	_, err = e.res.ResolveHandle(ctx, "nobody.test")
	var he *HandleError
	if !errors.Is(err, ErrHandleNotFound) || errors.Is(err, ErrHandleResolutionFailed) || !errors.As(err, &he) {
		t.Fatalf("nobody: %v", err)
	}
	if he.DNSErr == nil || he.HTTPErr == nil || he.Handle != "nobody.test" {
		t.Errorf("nobody: %+v", he)
	}

	// A DNS server failure makes it a (possibly transient) resolution failure.
	e.txt.fail("flaky.test", &net.DNSError{Err: "server misbehaving", Name: "_atproto.flaky.test", IsTemporary: true})
	if _, err := e.res.ResolveHandle(ctx, "flaky.test"); !errors.Is(err, ErrHandleResolutionFailed) {
		t.Errorf("flaky: %v", err)
	}

	// HTTPS body that is not a DID.
	e.web.set("garbage.test", "<html>hello</html>")
	if _, err := e.res.ResolveHandle(ctx, "garbage.test"); !errors.Is(err, ErrHandleNotFound) {
		t.Errorf("garbage: %v", err)
	}

	// Oversized HTTPS body.
	e.web.set("big.test", string(testDID1)+strings.Repeat(" ", MaxHandleResponseSize))
	_, err = e.res.ResolveHandle(ctx, "big.test")
	if !errors.Is(err, ErrHandleNotFound) || !errors.Is(err, ErrResponseTooLarge) {
		t.Errorf("big: %v", err)
	}

	// Reserved TLDs are refused before any lookup.
	dnsBefore, webBefore := e.txt.calls.Load(), e.web.requests.Load()
	for _, h := range []syntax.Handle{"laptop.local", "handle.invalid", "blah.arpa", "x.onion", "a.example", "bad_handle.test"} {
		_, err := e.res.ResolveHandle(ctx, h)
		if !errors.Is(err, ErrHandleReservedTLD) && !(h == "bad_handle.test" && errors.Is(err, ErrHandleNotFound)) {
			t.Errorf("%s: %v", h, err)
		}
	}
	if e.txt.calls.Load() != dnsBefore || e.web.requests.Load() != webBefore {
		t.Error("reserved handles were looked up")
	}

	// Opt-in for tests.
	e.txt.set("printer.local", "did="+string(testDID1))
	r := NewResolver(Options{TXT: e.txt, AllowReservedTLDs: true, AllowPrivateNetworks: true, HandleHTTPBase: e.web.base()})
	if did, err := r.ResolveHandle(ctx, "printer.local"); err != nil || did != testDID1 {
		t.Errorf("opt-in: %q, %v", did, err)
	}
}

func TestResolveHandleCancelled(t *testing.T) {
	e := newTestEnv(t)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err := e.res.ResolveHandle(ctx, "any.test")
	if !errors.Is(err, context.Canceled) {
		t.Errorf("err = %v", err)
	}
}

func TestLookupBidirectional(t *testing.T) {
	ctx := context.Background()
	e := newTestEnv(t)
	key := newK256(t)

	// alice: consistent both ways.
	e.plc.set(testDID1, docJSON(t, testDID1, "alice.test", key, "https://pds.example.com"))
	e.txt.set("alice.test", "did="+string(testDID1))
	// bob's document claims alice's handle, which points elsewhere.
	e.plc.set(testDID2, docJSON(t, testDID2, "alice.test", key, "https://pds.example.com"))
	// carol's handle points at alice's DID, whose document does not claim it.
	e.txt.set("carol.test", "did="+string(testDID1))
	// dave has no handle at all.
	e.plc.set(testDID3, docJSON(t, testDID3, "", key, "https://pds.example.com"))

	ident, err := e.res.Lookup(ctx, "alice.test")
	if err != nil || ident.DID != testDID1 || ident.Handle != "alice.test" {
		t.Fatalf("alice by handle: %+v, %v", ident, err)
	}
	ident, err = e.res.Lookup(ctx, "ALICE.test")
	if err != nil || ident.Handle != "alice.test" {
		t.Fatalf("alice by upper-case handle: %+v, %v", ident, err)
	}
	ident, err = e.res.Lookup(ctx, testDID1.AtIdentifier())
	if err != nil || ident.Handle != "alice.test" {
		t.Fatalf("alice by DID: %+v, %v", ident, err)
	}

	ident, err = e.res.Lookup(ctx, testDID2.AtIdentifier())
	if err != nil {
		t.Fatal(err)
	}
	if ident.Handle != syntax.HandleInvalid || ident.DeclaredHandle() != "alice.test" {
		t.Errorf("bob: handle %q declared %q", ident.Handle, ident.DeclaredHandle())
	}

	_, err = e.res.Lookup(ctx, "carol.test")
	if !errors.Is(err, ErrHandleMismatch) {
		t.Errorf("carol: %v", err)
	}

	ident, err = e.res.Lookup(ctx, testDID3.AtIdentifier())
	if err != nil || ident.Handle != syntax.HandleInvalid {
		t.Errorf("dave: %+v, %v", ident, err)
	}

	if _, err := e.res.Lookup(ctx, "nobody.test"); !errors.Is(err, ErrHandleNotFound) {
		t.Errorf("nobody: %v", err)
	}
	if _, err := e.res.Lookup(ctx, "did:plc:zzzzzzzzzzzzzzzzzzzzzzzz"); !errors.Is(err, ErrDIDNotFound) {
		t.Errorf("missing DID: %v", err)
	}
}
