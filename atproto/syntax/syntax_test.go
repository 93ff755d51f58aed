package syntax

import (
	"errors"
	"strings"
	"testing"
)

func TestErrorMessage(t *testing.T) {
	_, err := ParseHandle("jo_hn.test")
	want := `invalid handle "jo_hn.test": label "jo_hn" contains '_' at offset 2`
	if err == nil || err.Error() != want {
		t.Fatalf("got %v, want %s", err, want)
	}
	var se *Error
	if !errors.As(err, &se) || se.Kind != "handle" || se.Input != "jo_hn.test" {
		t.Fatalf("unexpected error value %#v", err)
	}

	long := strings.Repeat("a", 5000)
	_, err = ParseDID(long)
	if !errors.As(err, &se) {
		t.Fatalf("got %v", err)
	}
	if len(se.Input) > maxErrorInput+3 || !strings.HasSuffix(se.Input, "...") {
		t.Errorf("long input not truncated: %d bytes", len(se.Input))
	}
}

func TestDIDAccessors(t *testing.T) {
	tests := []struct{ in, method, id string }{
		{"did:plc:z72i7hdynmk6r22z27h6tvur", "plc", "z72i7hdynmk6r22z27h6tvur"},
		{"did:web:example.com", "web", "example.com"},
		{"did:method::::val", "method", ":::val"},
		{"did:m:v", "m", "v"},
	}
	for _, tt := range tests {
		d, err := ParseDID(tt.in)
		if err != nil {
			t.Fatalf("%q: %v", tt.in, err)
		}
		if d.Method() != tt.method || d.Identifier() != tt.id || d.String() != tt.in {
			t.Errorf("%q: got method %q id %q", tt.in, d.Method(), d.Identifier())
		}
		if a := d.AtIdentifier(); !a.IsDID() {
			t.Errorf("%q: AtIdentifier not a DID", tt.in)
		}
	}
}

func TestHandleAccessors(t *testing.T) {
	h, err := ParseHandle("Alice.Bsky.SOCIAL")
	if err != nil {
		t.Fatal(err)
	}
	if h.Normalize() != "alice.bsky.social" {
		t.Errorf("Normalize = %q", h.Normalize())
	}
	if h.TLD() != "social" {
		t.Errorf("TLD = %q", h.TLD())
	}
	if !h.AllowedTLD() {
		t.Error("social should be allowed")
	}
	if h.String() != "Alice.Bsky.SOCIAL" {
		t.Errorf("String = %q", h.String())
	}
	lower := Handle("already.lower")
	if lower.Normalize() != lower {
		t.Error("Normalize changed a lower-case handle")
	}

	for _, tld := range []string{"local", "arpa", "invalid", "localhost", "internal", "example", "onion", "alt", "ONION"} {
		h, err := ParseHandle("name." + tld)
		if err != nil {
			t.Errorf("%s: reserved TLDs must pass syntax: %v", tld, err)
			continue
		}
		if h.AllowedTLD() {
			t.Errorf("%s: AllowedTLD = true", tld)
		}
	}
	for _, ok := range []string{"name.test", "name.com", "name.locals", "name.xn--p1ai"} {
		if !Handle(ok).AllowedTLD() {
			t.Errorf("%s: AllowedTLD = false", ok)
		}
	}

	if !HandleInvalid.IsInvalidHandle() || !Handle("Handle.INVALID").IsInvalidHandle() {
		t.Error("IsInvalidHandle misses handle.invalid")
	}
	if Handle("other.invalid").IsInvalidHandle() {
		t.Error("IsInvalidHandle too broad")
	}
	if _, err := ParseHandle(string(HandleInvalid)); err != nil {
		t.Errorf("handle.invalid must parse: %v", err)
	}
	if HandleInvalid.AllowedTLD() {
		t.Error("handle.invalid has an allowed TLD")
	}
}

func TestNSIDAccessors(t *testing.T) {
	tests := []struct{ in, authority, name, norm string }{
		{"app.bsky.feed.post", "feed.bsky.app", "post", "app.bsky.feed.post"},
		{"com.atproto.sync.getHead", "sync.atproto.com", "getHead", "com.atproto.sync.getHead"},
		{"COM.Example.fooBar", "example.com", "fooBar", "com.example.fooBar"},
		{"a.b.c", "b.a", "c", "a.b.c"},
		{"one.two.three.four-and.FiVe", "four-and.three.two.one", "FiVe", "one.two.three.four-and.FiVe"},
	}
	for _, tt := range tests {
		n, err := ParseNSID(tt.in)
		if err != nil {
			t.Fatalf("%q: %v", tt.in, err)
		}
		if n.Authority() != tt.authority {
			t.Errorf("%q: Authority = %q, want %q", tt.in, n.Authority(), tt.authority)
		}
		if n.Name() != tt.name {
			t.Errorf("%q: Name = %q, want %q", tt.in, n.Name(), tt.name)
		}
		if n.Normalize() != NSID(tt.norm) {
			t.Errorf("%q: Normalize = %q, want %q", tt.in, n.Normalize(), tt.norm)
		}
	}
}

func TestATURIAccessors(t *testing.T) {
	tests := []struct {
		in, auth, coll, rkey, path string
	}{
		{"at://did:plc:asdf123", "did:plc:asdf123", "", "", ""},
		{"at://user.bsky.social/app.bsky.feed.post", "user.bsky.social", "app.bsky.feed.post", "", "/app.bsky.feed.post"},
		{"at://did:plc:asdf123/app.bsky.feed.post/3jzfcijpj2z2a", "did:plc:asdf123", "app.bsky.feed.post", "3jzfcijpj2z2a", "/app.bsky.feed.post/3jzfcijpj2z2a"},
		{"at://did:abc:123/io.nsid.someFunc/self.", "did:abc:123", "io.nsid.someFunc", "self.", "/io.nsid.someFunc/self."},
	}
	for _, tt := range tests {
		u, err := ParseATURI(tt.in)
		if err != nil {
			t.Fatalf("%q: %v", tt.in, err)
		}
		if string(u.Authority()) != tt.auth || string(u.Collection()) != tt.coll ||
			string(u.RecordKey()) != tt.rkey || u.Path() != tt.path {
			t.Errorf("%q: got %q %q %q %q", tt.in, u.Authority(), u.Collection(), u.RecordKey(), u.Path())
		}
	}

	u, err := ParseATURI("at://Alice.Example.COM/COM.Example.fooBar/AbC")
	if err != nil {
		t.Fatal(err)
	}
	if got := u.Normalize(); got != "at://alice.example.com/com.example.fooBar/AbC" {
		t.Errorf("Normalize = %q", got)
	}
	d := ATURI("at://did:plc:ABC/com.example.foo/x")
	if d.Normalize() != d {
		t.Errorf("Normalize changed a DID authority: %q", d.Normalize())
	}

	_, err = ParseATURI("at://did:plc:asdf123/com.atproto.feed.post#frag")
	if err == nil || !strings.Contains(err.Error(), "fragments are not allowed") {
		t.Errorf("fragment error = %v", err)
	}
}

func TestAtIdentifier(t *testing.T) {
	a, err := ParseAtIdentifier("did:plc:asdf123")
	if err != nil {
		t.Fatal(err)
	}
	if !a.IsDID() || a.IsHandle() {
		t.Error("DID misclassified")
	}
	if d, err := a.AsDID(); err != nil || d != "did:plc:asdf123" {
		t.Errorf("AsDID = %q, %v", d, err)
	}
	if _, err := a.AsHandle(); err == nil {
		t.Error("AsHandle on a DID succeeded")
	}

	a, err = ParseAtIdentifier("John.Test")
	if err != nil {
		t.Fatal(err)
	}
	if a.IsDID() || !a.IsHandle() {
		t.Error("handle misclassified")
	}
	if h, err := a.AsHandle(); err != nil || h != "John.Test" {
		t.Errorf("AsHandle = %q, %v", h, err)
	}
	if _, err := a.AsDID(); err == nil {
		t.Error("AsDID on a handle succeeded")
	}
	if a.Normalize() != "john.test" || a.String() != "John.Test" {
		t.Errorf("Normalize = %q", a.Normalize())
	}
}

func TestRecordKeyAndTIDOverlap(t *testing.T) {
	// Every TID is a valid record key.
	tid := NewTID(1700000000000000, 42)
	if _, err := ParseRecordKey(tid.String()); err != nil {
		t.Errorf("TID %q is not a record key: %v", tid, err)
	}
	for _, bad := range []string{"", ".", "..", "a/b", "a b", strings.Repeat("k", RecordKeyMaxLength+1)} {
		if _, err := ParseRecordKey(bad); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}

func TestURIScheme(t *testing.T) {
	u, err := ParseURI("https://example.com/a?b#c")
	if err != nil {
		t.Fatal(err)
	}
	if u.Scheme() != "https" {
		t.Errorf("Scheme = %q", u.Scheme())
	}
	for _, bad := range []string{"", "h t:x", "http:", "1http:x", "http://a b", "http://caf\xc3\xa9"} {
		if _, err := ParseURI(bad); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}

func TestLanguageExtra(t *testing.T) {
	good := []string{
		"en", "en-US", "zh-Hans-CN", "zh-yue-HK", "sr-Latn-RS", "x-whatever", "en-GB-oed",
		"i-klingon", "art-lojban", "de-1996", "en-a-bbb-x-a-ccc", "abcde",
		// Many distinct variants exercise the set-based duplicate check.
		"en-" + distinctVariants(40),
	}
	for _, s := range good {
		if _, err := ParseLanguage(s); err != nil {
			t.Errorf("%q rejected: %v", s, err)
		}
	}
	bad := []string{
		"", "en-", "-en", "en--US", "en-US-", "x", "x-", "x-toolongsubtag", "en-a", "en-a-b",
		"abcdefghi", "en-Latn-Latn", "en-US-US", "I-klingon", "en-" + distinctVariants(40) + "-v0000",
		"en-x-" + strings.Repeat("a", 9), "en_US",
	}
	for _, s := range bad {
		if _, err := ParseLanguage(s); err == nil {
			t.Errorf("%q accepted", s)
		}
	}
}

// distinctVariants returns n distinct 5-character variant subtags joined by
// '-', the first of them being "v0000".
func distinctVariants(n int) string {
	var b strings.Builder
	for i := 0; i < n; i++ {
		if i > 0 {
			b.WriteByte('-')
		}
		b.WriteString("v")
		b.WriteByte(byte('0' + i/1000%10))
		b.WriteByte(byte('0' + i/100%10))
		b.WriteByte(byte('0' + i/10%10))
		b.WriteByte(byte('0' + i%10))
	}
	return b.String()
}

func TestCID(t *testing.T) {
	c, err := ParseCID("bafyreie5737gdxlw5i64vzichcalba3z2v5n6icifvx5xytvske7mr3hpm")
	if err != nil || c.String() != "bafyreie5737gdxlw5i64vzichcalba3z2v5n6icifvx5xytvske7mr3hpm" {
		t.Fatalf("got %q, %v", c, err)
	}
	if _, err := ParseCID(strings.Repeat("b", CIDMaxLength+1)); err == nil {
		t.Error("over-long CID accepted")
	}
}

// Successful parses must not allocate.
func TestParseAllocs(t *testing.T) {
	cases := map[string]func(){
		"DID":       func() { _, _ = ParseDID("did:plc:z72i7hdynmk6r22z27h6tvur") },
		"Handle":    func() { _, _ = ParseHandle("alice.bsky.social") },
		"NSID":      func() { _, _ = ParseNSID("app.bsky.feed.post") },
		"ATURI":     func() { _, _ = ParseATURI("at://did:plc:z72i7hdynmk6r22z27h6tvur/app.bsky.feed.post/3jzfcijpj2z2a") },
		"TID":       func() { _, _ = ParseTID("3jzfcijpj2z2a") },
		"RecordKey": func() { _, _ = ParseRecordKey("self") },
		"Datetime":  func() { _, _ = ParseDatetime("1985-04-12T23:20:50.123+07:00") },
		"Language":  func() { _, _ = ParseLanguage("hy-Latn-IT-arevela") },
		"AtIdent":   func() { _, _ = ParseAtIdentifier("alice.bsky.social") },
		"URI":       func() { _, _ = ParseURI("https://example.com/path?q=1") },
		"CID":       func() { _, _ = ParseCID("bafyreie5737gdxlw5i64vzichcalba3z2v5n6icifvx5xytvske7mr3hpm") },
	}
	for name, f := range cases {
		if n := testing.AllocsPerRun(100, f); n != 0 {
			t.Errorf("%s: %v allocations per successful parse", name, n)
		}
	}
}
