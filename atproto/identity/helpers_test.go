package identity

import (
	"context"
	"encoding/json"
	"fmt"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/welkin-atproto/welkin/atproto/crypto"
	"github.com/welkin-atproto/welkin/atproto/syntax"
)

// Key from the DID specification's example: the same secp256k1 key in the
// legacy and the Multikey encodings.
const (
	specLegacyK256   = "zQYEBzXeuTM9UR3rfvNag6L3RNAs5pQZyYPsomTsgQhsxLdEgCrPTLgFna8yqCnxPpNT7DBk6Ym3dgPKNu86vt9GR"
	specMultikeyK256 = "zQ3shXjHeiBuRCKmM36cuYnm7YEMzhGnCmCyW92sRJ9pribSF"
)

const (
	testDID1 = syntax.DID("did:plc:aaaaaaaaaaaaaaaaaaaaaaaa")
	testDID2 = syntax.DID("did:plc:bbbbbbbbbbbbbbbbbbbbbbbb")
	testDID3 = syntax.DID("did:plc:cccccccccccccccccccccccc")
)

// testBase58 encodes b as base58btc, for building legacy key strings.
func testBase58(b []byte) string {
	const alphabet = "123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz"
	n := new(big.Int).SetBytes(b)
	base := big.NewInt(58)
	mod := new(big.Int)
	var out []byte
	for n.Sign() > 0 {
		n.DivMod(n, base, mod)
		out = append(out, alphabet[mod.Int64()])
	}
	for _, c := range b {
		if c != 0 {
			break
		}
		out = append(out, '1')
	}
	for i, j := 0, len(out)-1; i < j; i, j = i+1, j-1 {
		out[i], out[j] = out[j], out[i]
	}
	return string(out)
}

// docJSON builds a DID document with a Multikey #atproto key and a PDS.
func docJSON(t testing.TB, did syntax.DID, handle string, key crypto.PublicKey, pds string) []byte {
	t.Helper()
	doc := DIDDocument{
		Context: json.RawMessage(`["https://www.w3.org/ns/did/v1","https://w3id.org/security/multikey/v1"]`),
		ID:      string(did),
	}
	if handle != "" {
		doc.AlsoKnownAs = []string{"at://" + handle}
	}
	if key != nil {
		doc.VerificationMethod = []VerificationMethod{{
			ID: string(did) + "#atproto", Type: "Multikey", Controller: string(did), PublicKeyMultibase: key.Multibase(),
		}}
	}
	if pds != "" {
		doc.Service = []Service{{ID: "#atproto_pds", Type: ServiceTypePDS, ServiceEndpoint: pds}}
	}
	b, err := json.Marshal(doc)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func newK256(t testing.TB) crypto.PublicKey {
	t.Helper()
	k, err := crypto.GenerateK256()
	if err != nil {
		t.Fatal(err)
	}
	return k.Public()
}

// plcServer is a fake PLC directory.
type plcServer struct {
	*httptest.Server
	mu       sync.Mutex
	docs     map[string][]byte
	gone     map[string]bool
	requests atomic.Int64
}

func newPLCServer(t testing.TB) *plcServer {
	t.Helper()
	p := &plcServer{docs: map[string][]byte{}, gone: map[string]bool{}}
	p.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p.requests.Add(1)
		did := strings.TrimPrefix(r.URL.Path, "/")
		p.mu.Lock()
		doc, ok := p.docs[did]
		gone := p.gone[did]
		p.mu.Unlock()
		switch {
		case gone:
			http.Error(w, `{"message":"DID not available"}`, http.StatusGone)
		case !ok:
			http.Error(w, `{"message":"DID not registered"}`, http.StatusNotFound)
		default:
			w.Header().Set("Content-Type", "application/did+ld+json")
			_, _ = w.Write(doc)
		}
	}))
	t.Cleanup(p.Close)
	return p
}

func (p *plcServer) set(did syntax.DID, doc []byte) {
	p.mu.Lock()
	p.docs[string(did)] = doc
	p.mu.Unlock()
}

// fakeTXT is an injectable DNS TXT resolver.
type fakeTXT struct {
	mu      sync.Mutex
	records map[string][]string
	errs    map[string]error
	calls   atomic.Int64
}

func (f *fakeTXT) LookupTXT(ctx context.Context, name string) ([]string, error) {
	f.calls.Add(1)
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if err, ok := f.errs[name]; ok {
		return nil, err
	}
	if recs, ok := f.records[name]; ok {
		return append([]string(nil), recs...), nil
	}
	return nil, &net.DNSError{Err: "no such host", Name: name, IsNotFound: true}
}

func (f *fakeTXT) set(handle string, recs ...string) {
	f.mu.Lock()
	if f.records == nil {
		f.records = map[string][]string{}
	}
	f.records["_atproto."+handle] = recs
	f.mu.Unlock()
}

func (f *fakeTXT) fail(handle string, err error) {
	f.mu.Lock()
	if f.errs == nil {
		f.errs = map[string]error{}
	}
	f.errs["_atproto."+handle] = err
	f.mu.Unlock()
}

// wellKnownServer serves /<handle>/.well-known/atproto-did bodies; use
// base() as Options.HandleHTTPBase.
type wellKnownServer struct {
	*httptest.Server
	mu       sync.Mutex
	bodies   map[string]string
	requests atomic.Int64
}

func newWellKnownServer(t testing.TB) *wellKnownServer {
	t.Helper()
	s := &wellKnownServer{bodies: map[string]string{}}
	s.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.requests.Add(1)
		h, ok := strings.CutSuffix(strings.TrimPrefix(r.URL.Path, "/"), "/.well-known/atproto-did")
		s.mu.Lock()
		body, found := s.bodies[h]
		s.mu.Unlock()
		if !ok || !found {
			http.NotFound(w, r)
			return
		}
		w.Header().Set("Content-Type", "text/plain")
		_, _ = fmt.Fprint(w, body)
	}))
	t.Cleanup(s.Close)
	return s
}

func (s *wellKnownServer) set(handle, body string) {
	s.mu.Lock()
	s.bodies[handle] = body
	s.mu.Unlock()
}

func (s *wellKnownServer) base() func(syntax.Handle) string {
	return func(h syntax.Handle) string { return s.URL + "/" + string(h) }
}

// testEnv is a resolver wired to fake PLC, DNS and HTTPS services.
type testEnv struct {
	plc *plcServer
	txt *fakeTXT
	web *wellKnownServer
	res *BaseResolver
}

func newTestEnv(t testing.TB) *testEnv {
	t.Helper()
	e := &testEnv{plc: newPLCServer(t), txt: &fakeTXT{}, web: newWellKnownServer(t)}
	e.res = NewResolver(Options{
		PLCURL:               e.plc.URL,
		AllowPrivateNetworks: true,
		TXT:                  e.txt,
		HandleHTTPBase:       e.web.base(),
	})
	return e
}

// fakeClock is an injectable clock.
type fakeClock struct {
	mu  sync.Mutex
	now time.Time
}

func newFakeClock() *fakeClock {
	return &fakeClock{now: time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)}
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.mu.Unlock()
}

// waitFor polls cond until it holds or the deadline passes.
func waitFor(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(time.Millisecond)
	}
}
