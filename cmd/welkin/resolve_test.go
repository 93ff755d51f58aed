package main

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/welkin-atproto/welkin/atproto/crypto"
	"github.com/welkin-atproto/welkin/atproto/identity"
	"github.com/welkin-atproto/welkin/atproto/plc"
	"github.com/welkin-atproto/welkin/atproto/syntax"
)

// fakePLC is an httptest PLC directory serving the documents of DIDs
// created through add, and 404 for everything else.
type fakePLC struct {
	t    *testing.T
	srv  *httptest.Server
	docs map[string][]byte
}

func newFakePLC(t *testing.T) *fakePLC {
	t.Helper()
	f := &fakePLC{t: t, docs: map[string][]byte{}}
	f.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		doc, ok := f.docs[strings.TrimPrefix(r.URL.Path, "/")]
		if r.Method != http.MethodGet || !ok {
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusNotFound)
			w.Write([]byte(`{"message":"DID not registered"}`))
			return
		}
		w.Header().Set("Content-Type", "application/did+ld+json")
		w.Write(doc)
	}))
	t.Cleanup(f.srv.Close)
	return f
}

// add signs a genesis operation declaring handle and registers its
// document; it returns the new DID.
func (f *fakePLC) add(handle string) syntax.DID {
	f.t.Helper()
	rot, err := crypto.GenerateK256()
	if err != nil {
		f.t.Fatal(err)
	}
	sign, err := crypto.GenerateP256()
	if err != nil {
		f.t.Fatal(err)
	}
	op := &plc.Operation{
		RotationKeys:        []string{rot.Public().DIDKey()},
		VerificationMethods: map[string]string{"atproto": sign.Public().DIDKey()},
		AlsoKnownAs:         []string{"at://" + handle},
		Services: map[string]plc.Service{
			"atproto_pds": {Type: "AtprotoPersonalDataServer", Endpoint: "https://pds.example.com"},
		},
	}
	if err := op.Sign(rot); err != nil {
		f.t.Fatal(err)
	}
	did, err := plc.DIDForGenesis(op)
	if err != nil {
		f.t.Fatal(err)
	}
	data, err := plc.DataForOp(did, op)
	if err != nil {
		f.t.Fatal(err)
	}
	doc, err := json.Marshal(data.Document())
	if err != nil {
		f.t.Fatal(err)
	}
	f.docs[did.String()] = doc
	return did
}

// fakeTXT answers _atproto.<handle> TXT queries from a map.
type fakeTXT map[string]syntax.DID

func (m fakeTXT) LookupTXT(_ context.Context, name string) ([]string, error) {
	if did, ok := m[name]; ok {
		return []string{"did=" + did.String()}, nil
	}
	return nil, &net.DNSError{Err: "no such host", Name: name, IsNotFound: true}
}

// testOptions points every lookup at local fakes: the PLC directory, DNS
// from txt, and a handle well-known server that knows nothing.
func testOptions(t *testing.T, f *fakePLC, txt fakeTXT) identity.Options {
	t.Helper()
	wellKnown := httptest.NewServer(http.NotFoundHandler())
	t.Cleanup(wellKnown.Close)
	return identity.Options{
		PLCURL:               f.srv.URL,
		AllowPrivateNetworks: true,
		AllowReservedTLDs:    true,
		TXT:                  txt,
		HandleHTTPBase:       func(syntax.Handle) string { return wellKnown.URL },
	}
}

func TestResolveDIDCommand(t *testing.T) {
	f := newFakePLC(t)
	did := f.add("alice.test")
	var out, errOut bytes.Buffer
	// The flag after the positional argument is deliberate: both orders work.
	code := run([]string{"resolve", did.String(), "--plc-url", f.srv.URL, "--allow-private-networks"}, &out, &errOut)
	if code != 0 {
		t.Fatalf("exit %d, stderr %q", code, errOut.String())
	}
	// The output starts with the DID document as indented JSON.
	dec := json.NewDecoder(strings.NewReader(out.String()))
	var doc identity.DIDDocument
	if err := dec.Decode(&doc); err != nil {
		t.Fatalf("output does not start with a JSON document: %v\n%s", err, out.String())
	}
	if doc.ID != did.String() || len(doc.AlsoKnownAs) != 1 || doc.AlsoKnownAs[0] != "at://alice.test" {
		t.Fatalf("document id %q alsoKnownAs %v; want %s, [at://alice.test]", doc.ID, doc.AlsoKnownAs, did)
	}
	if !strings.Contains(out.String(), "\n  \"id\": ") {
		t.Errorf("document is not indented:\n%s", out.String())
	}
	// Without network access to a real resolver, the reserved .test handle
	// cannot be verified: the output says so and why.
	if !strings.Contains(out.String(), "handle: handle.invalid (declared handle alice.test does not resolve") {
		t.Errorf("output does not explain the invalid handle:\n%s", out.String())
	}
}

func TestResolveFlagsBeforeIdentifier(t *testing.T) {
	f := newFakePLC(t)
	did := f.add("bob.test")
	var out, errOut bytes.Buffer
	code := run([]string{"resolve", "--plc-url=" + f.srv.URL, "--allow-private-networks", did.String()}, &out, &errOut)
	if code != 0 {
		t.Fatalf("exit %d, stderr %q", code, errOut.String())
	}
	if !strings.Contains(out.String(), "did: "+did.String()) {
		t.Fatalf("output lacks the DID:\n%s", out.String())
	}
}

func TestResolveEnvAllowsPrivateNetworks(t *testing.T) {
	f := newFakePLC(t)
	did := f.add("carol.test")
	t.Setenv(envAllowPrivate, "1")
	var out, errOut bytes.Buffer
	if code := run([]string{"resolve", did.String(), "--plc-url", f.srv.URL}, &out, &errOut); code != 0 {
		t.Fatalf("exit %d, stderr %q", code, errOut.String())
	}
}

func TestResolveRefusesLoopbackByDefault(t *testing.T) {
	f := newFakePLC(t)
	did := f.add("dave.test")
	t.Setenv(envAllowPrivate, "")
	var out, errOut bytes.Buffer
	code := run([]string{"resolve", did.String(), "--plc-url", f.srv.URL}, &out, &errOut)
	if code != 1 {
		t.Fatalf("exit %d, want 1; stdout %q", code, out.String())
	}
	if out.Len() != 0 {
		t.Errorf("failure printed to stdout: %q", out.String())
	}
	if !strings.Contains(errOut.String(), "welkin resolve: "+did.String()) {
		t.Errorf("stderr %q does not name the DID", errOut.String())
	}
}

func TestResolveUnknownDID(t *testing.T) {
	f := newFakePLC(t)
	var out, errOut bytes.Buffer
	const missing = "did:plc:aaaaaaaaaaaaaaaaaaaaaaaa"
	code := run([]string{"resolve", missing, "--plc-url", f.srv.URL, "--allow-private-networks"}, &out, &errOut)
	if code != 1 {
		t.Fatalf("exit %d, want 1", code)
	}
	if !strings.Contains(errOut.String(), missing) || !strings.Contains(strings.ToLower(errOut.String()), "not found") {
		t.Errorf("stderr %q does not say the DID was not found", errOut.String())
	}
}

func TestResolveUsageErrors(t *testing.T) {
	for _, args := range [][]string{
		{"resolve"},
		{"resolve", "not a handle"},
		{"resolve", "alice.test", "bob.test"},
		{"resolve", "--no-such-flag", "alice.test"},
	} {
		var out, errOut bytes.Buffer
		if code := run(args, &out, &errOut); code != 2 {
			t.Errorf("%q: exit %d, want 2", args, code)
		}
		if errOut.Len() == 0 {
			t.Errorf("%q: nothing on stderr", args)
		}
	}
}

func TestResolveVerifiedHandle(t *testing.T) {
	f := newFakePLC(t)
	did := f.add("alice.test")
	opts := testOptions(t, f, fakeTXT{"_atproto.alice.test": did})
	for _, id := range []string{did.String(), "alice.test", "ALICE.test"} {
		t.Run(id, func(t *testing.T) {
			var out, errOut bytes.Buffer
			code := resolveAndPrint(t.Context(), opts, syntax.AtIdentifier(id), &out, &errOut)
			if code != 0 {
				t.Fatalf("exit %d, stderr %q", code, errOut.String())
			}
			if !strings.Contains(out.String(), "did: "+did.String()+"\nhandle: alice.test (verified both ways)\n") {
				t.Fatalf("handle not verified:\n%s", out.String())
			}
		})
	}
}

func TestResolveHandleMismatch(t *testing.T) {
	f := newFakePLC(t)
	alice := f.add("alice.test")
	mallory := f.add("mallory.test")
	// alice.test's DNS names mallory's DID, whose document does not declare
	// alice.test; mallory.test names alice's DID.
	opts := testOptions(t, f, fakeTXT{"_atproto.alice.test": mallory, "_atproto.mallory.test": alice})

	var out, errOut bytes.Buffer
	if code := resolveAndPrint(t.Context(), opts, syntax.AtIdentifier("alice.test"), &out, &errOut); code != 1 {
		t.Fatalf("looking up alice.test: exit %d, want 1; stdout %q", code, out.String())
	}
	if !strings.Contains(errOut.String(), "alice.test") {
		t.Errorf("stderr %q does not name the handle", errOut.String())
	}

	out.Reset()
	errOut.Reset()
	if code := resolveAndPrint(t.Context(), opts, syntax.AtIdentifier(mallory.String()), &out, &errOut); code != 0 {
		t.Fatalf("looking up mallory's DID: exit %d, stderr %q", code, errOut.String())
	}
	want := "handle: handle.invalid (declared handle mallory.test resolves to " + alice.String() + ", not to this DID)"
	if !strings.Contains(out.String(), want) {
		t.Fatalf("output lacks %q:\n%s", want, out.String())
	}
}

func TestParseInterleaved(t *testing.T) {
	for _, tc := range []struct {
		args []string
		pos  []string
		url  string
	}{
		{[]string{"a"}, []string{"a"}, ""},
		{[]string{"a", "--plc-url", "u"}, []string{"a"}, "u"},
		{[]string{"--plc-url", "u", "a", "b"}, []string{"a", "b"}, "u"},
		{[]string{"a", "--", "--plc-url"}, []string{"a", "--plc-url"}, ""},
		{[]string{"--", "a"}, []string{"a"}, ""},
	} {
		fs := flag.NewFlagSet("t", flag.ContinueOnError)
		fs.SetOutput(io.Discard)
		url := fs.String("plc-url", "", "")
		pos, err := parseInterleaved(fs, tc.args)
		if err != nil {
			t.Errorf("%q: %v", tc.args, err)
			continue
		}
		if strings.Join(pos, "|") != strings.Join(tc.pos, "|") || *url != tc.url {
			t.Errorf("%q: positional %q url %q; want %q %q", tc.args, pos, *url, tc.pos, tc.url)
		}
	}
}
