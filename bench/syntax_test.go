package bench

import (
	"testing"

	indigosyntax "github.com/bluesky-social/indigo/atproto/syntax"

	"github.com/welkin-atproto/welkin/atproto/syntax"
)

const (
	sampleHandle = "alice-example.bsky.social"
	sampleNSID   = "app.bsky.feed.post"
	sampleATURI  = "at://did:plc:ewvi7nxzyoun6zhxrhs64oiz/app.bsky.feed.post/3l3qo2vuowo2b"
	sampleDID    = "did:plc:ewvi7nxzyoun6zhxrhs64oiz"
)

// TestSyntaxAgreement checks both parsers read the benchmark inputs the
// same way.
func TestSyntaxAgreement(t *testing.T) {
	wu, err := syntax.ParseATURI(sampleATURI)
	if err != nil {
		t.Fatal(err)
	}
	iu, err := indigosyntax.ParseATURI(sampleATURI)
	if err != nil {
		t.Fatal(err)
	}
	if wu.Authority().String() != iu.Authority().String() ||
		wu.Collection().String() != iu.Collection().String() ||
		wu.RecordKey().String() != iu.RecordKey().String() {
		t.Fatalf("AT-URI parts differ: welkin %v %v %v, indigo %v %v %v",
			wu.Authority(), wu.Collection(), wu.RecordKey(), iu.Authority(), iu.Collection(), iu.RecordKey())
	}
	wn, err := syntax.ParseNSID(sampleNSID)
	if err != nil {
		t.Fatal(err)
	}
	in, err := indigosyntax.ParseNSID(sampleNSID)
	if err != nil {
		t.Fatal(err)
	}
	if wn.Authority() != in.Authority() || wn.Name() != in.Name() {
		t.Fatalf("NSID parts differ: welkin %s %s, indigo %s %s", wn.Authority(), wn.Name(), in.Authority(), in.Name())
	}
	wt := syntax.NewTIDClock(7).Next()
	it, err := indigosyntax.ParseTID(wt.String())
	if err != nil {
		t.Fatalf("indigo rejects welkin's TID %s: %v", wt, err)
	}
	if it.ClockID() != 7 || it.Time().UnixMicro() != wt.Time().UnixMicro() {
		t.Fatalf("TID %s read differently: clock %d time %v, want 7 and %v", wt, it.ClockID(), it.Time(), wt.Time())
	}
}

func BenchmarkParseHandle(b *testing.B) {
	b.Run("impl=welkin", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			h, err := syntax.ParseHandle(sampleHandle)
			if err != nil {
				b.Fatal(err)
			}
			sink = h
		}
	})
	b.Run("impl=indigo", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			h, err := indigosyntax.ParseHandle(sampleHandle)
			if err != nil {
				b.Fatal(err)
			}
			sink = h
		}
	})
}

func BenchmarkParseDID(b *testing.B) {
	b.Run("impl=welkin", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			d, err := syntax.ParseDID(sampleDID)
			if err != nil {
				b.Fatal(err)
			}
			sink = d
		}
	})
	b.Run("impl=indigo", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			d, err := indigosyntax.ParseDID(sampleDID)
			if err != nil {
				b.Fatal(err)
			}
			sink = d
		}
	})
}

func BenchmarkParseNSID(b *testing.B) {
	b.Run("impl=welkin", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			n, err := syntax.ParseNSID(sampleNSID)
			if err != nil {
				b.Fatal(err)
			}
			sink = n
		}
	})
	b.Run("impl=indigo", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			n, err := indigosyntax.ParseNSID(sampleNSID)
			if err != nil {
				b.Fatal(err)
			}
			sink = n
		}
	})
}

func BenchmarkParseATURI(b *testing.B) {
	b.Run("impl=welkin", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			u, err := syntax.ParseATURI(sampleATURI)
			if err != nil {
				b.Fatal(err)
			}
			sink = u
		}
	})
	b.Run("impl=indigo", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			u, err := indigosyntax.ParseATURI(sampleATURI)
			if err != nil {
				b.Fatal(err)
			}
			sink = u
		}
	})
}

func BenchmarkTIDNext(b *testing.B) {
	b.Run("impl=welkin", func(b *testing.B) {
		c := syntax.NewTIDClock(1)
		b.ReportAllocs()
		for b.Loop() {
			sink = c.Next()
		}
	})
	b.Run("impl=indigo", func(b *testing.B) {
		c := indigosyntax.NewTIDClock(1)
		b.ReportAllocs()
		for b.Loop() {
			sink = c.Next()
		}
	})
}
