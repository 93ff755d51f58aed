package syntax

import (
	"strings"
	"testing"
	"time"
)

// seed adds a few hand-picked inputs to a fuzz corpus. (The interop vectors
// are covered by TestInteropVectors; seeds here stay self-contained so the
// fuzzers run without the vector folder.)
func seed(f *testing.F, in ...string) {
	for _, s := range in {
		f.Add(s)
	}
}

// checkRoundTrip asserts the properties every parser shares: an accepted
// value is the input itself, and it parses again; a rejection is a
// well-formed *Error.
func checkRoundTrip[T ~string](t *testing.T, in string, v T, err error, parse func(string) (T, error)) {
	t.Helper()
	if err != nil {
		if v != "" {
			t.Fatalf("%q: rejected but returned %q", in, v)
		}
		se, ok := err.(*Error)
		if !ok || se.Reason == "" || !strings.HasPrefix(in, strings.TrimSuffix(se.Input, "...")) {
			t.Fatalf("%q: malformed error %#v", in, err)
		}
		return
	}
	if string(v) != in {
		t.Fatalf("%q: accepted as different value %q", in, v)
	}
	if _, err := parse(string(v)); err != nil {
		t.Fatalf("%q: re-parse failed: %v", in, err)
	}
}

func FuzzParseDID(f *testing.F) {
	seed(f, "did:plc:z72i7hdynmk6r22z27h6tvur", "did:web:localhost%3A1234", "did:method:val:", "DID:m:v", "did:m:%")
	f.Fuzz(func(t *testing.T, s string) {
		d, err := ParseDID(s)
		checkRoundTrip(t, s, d, err, ParseDID)
		if err == nil && "did:"+d.Method()+":"+d.Identifier() != s {
			t.Fatalf("%q: method %q + identifier %q do not rebuild it", s, d.Method(), d.Identifier())
		}
	})
}

func FuzzParseHandle(f *testing.F) {
	seed(f, "alice.bsky.social", "XX.LCS.MIT.EDU", "john.0", "jo_hn.test", "a.b", "xn--ls8h.test", "handle.invalid")
	f.Fuzz(func(t *testing.T, s string) {
		h, err := ParseHandle(s)
		checkRoundTrip(t, s, h, err, ParseHandle)
		if err != nil {
			return
		}
		n := h.Normalize()
		if _, err := ParseHandle(n.String()); err != nil || strings.ToLower(s) != n.String() {
			t.Fatalf("%q: Normalize gave %q (%v)", s, n, err)
		}
		if !strings.HasSuffix(n.String(), "."+h.TLD()) {
			t.Fatalf("%q: TLD %q is not the last label", s, h.TLD())
		}
	})
}

func FuzzParseNSID(f *testing.F) {
	seed(f, "app.bsky.feed.post", "com.example.fooBar", "a.b.c", "com.example.*", "cn.8.lex.stuff", "a-0.b-1.c-3")
	f.Fuzz(func(t *testing.T, s string) {
		n, err := ParseNSID(s)
		checkRoundTrip(t, s, n, err, ParseNSID)
		if err != nil {
			return
		}
		norm := n.Normalize()
		if _, err := ParseNSID(norm.String()); err != nil || norm.Name() != n.Name() {
			t.Fatalf("%q: Normalize gave %q (%v)", s, norm, err)
		}
		// The authority is a domain name: reversing it back and adding the
		// name gives the normalized NSID.
		labels := strings.Split(n.Authority(), ".")
		for i, j := 0, len(labels)-1; i < j; i, j = i+1, j-1 {
			labels[i], labels[j] = labels[j], labels[i]
		}
		if strings.Join(labels, ".")+"."+n.Name() != norm.String() {
			t.Fatalf("%q: Authority %q does not match", s, n.Authority())
		}
	})
}

func FuzzParseATURI(f *testing.F) {
	seed(f, "at://did:plc:asdf123/app.bsky.feed.post/3jzfcijpj2z2a", "at://user.bsky.social", "at://did:plc:asdf123/", "at://a.b/c.d.e/f/g", "at://did:plc:x#frag")
	f.Fuzz(func(t *testing.T, s string) {
		u, err := ParseATURI(s)
		checkRoundTrip(t, s, u, err, ParseATURI)
		if err != nil {
			return
		}
		if _, err := ParseAtIdentifier(u.Authority().String()); err != nil {
			t.Fatalf("%q: authority: %v", s, err)
		}
		if c := u.Collection(); c != "" {
			if _, err := ParseNSID(c.String()); err != nil {
				t.Fatalf("%q: collection: %v", s, err)
			}
		}
		if k := u.RecordKey(); k != "" {
			if _, err := ParseRecordKey(k.String()); err != nil {
				t.Fatalf("%q: record key: %v", s, err)
			}
		}
		if "at://"+u.Authority().String()+u.Path() != s {
			t.Fatalf("%q: authority and path do not rebuild it", s)
		}
		if _, err := ParseATURI(u.Normalize().String()); err != nil {
			t.Fatalf("%q: Normalize gave %q: %v", s, u.Normalize(), err)
		}
	})
}

func FuzzParseTID(f *testing.F) {
	seed(f, "3jzfcijpj2z2a", "2222222222222", "jzzzzzzzzzzzz", "kzzzzzzzzzzzz", "3JZFCIJPJ2Z2A")
	f.Fuzz(func(t *testing.T, s string) {
		tid, err := ParseTID(s)
		checkRoundTrip(t, s, tid, err, ParseTID)
		if err != nil {
			return
		}
		// Decoding and re-encoding gives the same string.
		if got := tidFromInteger(tid.Integer()); got != tid {
			t.Fatalf("%q: integer %d re-encodes as %q", s, tid.Integer(), got)
		}
	})
}

func FuzzParseRecordKey(f *testing.F) {
	seed(f, "self", "3jzfcijpj2z2a", ".", "..", "...", "a/b", "pre:fix", "~1.2-3_")
	f.Fuzz(func(t *testing.T, s string) {
		k, err := ParseRecordKey(s)
		checkRoundTrip(t, s, k, err, ParseRecordKey)
		if err == nil && strings.ContainsAny(s, "/ ?#") {
			t.Fatalf("%q: accepted a key with a URI delimiter", s)
		}
	})
}

func FuzzParseDatetime(f *testing.F) {
	seed(f, "1985-04-12T23:20:50.123Z", "1985-04-12T23:20:50.123-07:00", "0000-01-01T00:00:00+01:00",
		"2024-02-29T00:00:00Z", "1985-04-12t23:20:50z", "1985-04-12 23:20:50", "1985-04-12T23:20:50.123+0530")
	f.Fuzz(func(t *testing.T, s string) {
		d, err := ParseDatetime(s)
		checkRoundTrip(t, s, d, err, ParseDatetime)
		if err == nil {
			tm := d.Time()
			if tm.Year() < 0 {
				t.Fatalf("%q: accepted a time before year 0: %v", s, tm)
			}
			// Cross-check against the standard library, which reads the
			// same layout when the fraction has at most nine digits.
			if frac := fracDigits(s); frac <= 9 {
				ref, rerr := time.Parse(time.RFC3339Nano, s)
				if rerr != nil {
					t.Fatalf("%q: accepted, but time.Parse rejects it: %v", s, rerr)
				}
				if !ref.Equal(tm) {
					t.Fatalf("%q: Time() = %v, time.Parse = %v", s, tm, ref)
				}
			}
		}
		// Lenient parsing accepts a superset and always yields strict output.
		l, lerr := ParseDatetimeLenient(s)
		if err == nil && lerr != nil {
			t.Fatalf("%q: strict accepts but lenient rejects: %v", s, lerr)
		}
		if lerr == nil {
			if _, err := ParseDatetime(l.String()); err != nil {
				t.Fatalf("%q: lenient output %q is not strict: %v", s, l, err)
			}
		}
	})
}

// fracDigits counts the fractional-second digits of a datetime string.
func fracDigits(s string) int {
	i := strings.IndexByte(s, '.')
	if i < 0 {
		return 0
	}
	n := 0
	for i++; i < len(s) && s[i] >= '0' && s[i] <= '9'; i++ {
		n++
	}
	return n
}

func FuzzParseLanguage(f *testing.F) {
	seed(f, "en", "pt-BR", "hy-Latn-IT-arevela", "i-default", "x-private", "en-a-foo-a-bar", "de-DE-1901-1901", "JA", "zh-yue-HK")
	f.Fuzz(func(t *testing.T, s string) {
		l, err := ParseLanguage(s)
		checkRoundTrip(t, s, l, err, ParseLanguage)
		if err == nil && (strings.HasPrefix(s, "-") || strings.HasSuffix(s, "-") || strings.Contains(s, "--")) {
			t.Fatalf("%q: accepted an empty subtag", s)
		}
	})
}

func FuzzParseAtIdentifier(f *testing.F) {
	seed(f, "did:plc:asdf123", "alice.bsky.social", "did:thing", "@handle", "DID:method:val")
	f.Fuzz(func(t *testing.T, s string) {
		a, err := ParseAtIdentifier(s)
		checkRoundTrip(t, s, a, err, ParseAtIdentifier)
		if err != nil {
			return
		}
		_, derr := a.AsDID()
		_, herr := a.AsHandle()
		if a.IsDID() == a.IsHandle() || (derr == nil) != a.IsDID() || (herr == nil) != a.IsHandle() {
			t.Fatalf("%q: inconsistent DID/handle classification", s)
		}
	})
}

func FuzzParseURI(f *testing.F) {
	seed(f, "https://example.com/path?q=1#f", "dns:example.com", "go://?Mercedes%20Benz", "http:", "//example.com", "a b:c")
	f.Fuzz(func(t *testing.T, s string) {
		u, err := ParseURI(s)
		checkRoundTrip(t, s, u, err, ParseURI)
		if err == nil && (u.Scheme() == "" || strings.ContainsAny(s, " \t\r\n")) {
			t.Fatalf("%q: accepted without a scheme or with whitespace", s)
		}
	})
}

func FuzzParseCID(f *testing.F) {
	seed(f, "bafyreie5737gdxlw5i64vzichcalba3z2v5n6icifvx5xytvske7mr3hpm", "QmbWqxBEKC3P8tqsKc98xmWNzrzDtRLMiMPL8wBuTGsMnR", "noop", "mBcDxtdWx0aWhhc2g+")
	f.Fuzz(func(t *testing.T, s string) {
		c, err := ParseCID(s)
		checkRoundTrip(t, s, c, err, ParseCID)
		if err == nil && (len(s) < CIDMinLength || len(s) > CIDMaxLength) {
			t.Fatalf("%q: accepted with length %d", s, len(s))
		}
	})
}
