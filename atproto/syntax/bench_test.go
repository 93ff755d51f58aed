package syntax

import "testing"

// sink keeps benchmark results alive without boxing them.
var sink string

func BenchmarkParseHandle(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		h, err := ParseHandle("jay.mome-johnber123456.bsky.social")
		if err != nil {
			b.Fatal(err)
		}
		sink = string(h)
	}
}

func BenchmarkParseNSID(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		n, err := ParseNSID("app.bsky.feed.post")
		if err != nil {
			b.Fatal(err)
		}
		sink = string(n)
	}
}

func BenchmarkParseATURI(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		u, err := ParseATURI("at://did:plc:z72i7hdynmk6r22z27h6tvur/app.bsky.feed.post/3jzfcijpj2z2a")
		if err != nil {
			b.Fatal(err)
		}
		sink = string(u)
	}
}

func BenchmarkParseDID(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		d, err := ParseDID("did:plc:z72i7hdynmk6r22z27h6tvur")
		if err != nil {
			b.Fatal(err)
		}
		sink = string(d)
	}
}

func BenchmarkParseTID(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		t, err := ParseTID("3jzfcijpj2z2a")
		if err != nil {
			b.Fatal(err)
		}
		sink = string(t)
	}
}

func BenchmarkTIDClockNext(b *testing.B) {
	c := NewTIDClock(42)
	b.ReportAllocs()
	for b.Loop() {
		sink = string(c.Next())
	}
}

func BenchmarkParseDatetime(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		d, err := ParseDatetime("1985-04-12T23:20:50.123Z")
		if err != nil {
			b.Fatal(err)
		}
		sink = string(d)
	}
}

func BenchmarkParseRecordKey(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		k, err := ParseRecordKey("3jzfcijpj2z2a")
		if err != nil {
			b.Fatal(err)
		}
		sink = string(k)
	}
}

func BenchmarkParseLanguage(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		l, err := ParseLanguage("hy-Latn-IT-arevela")
		if err != nil {
			b.Fatal(err)
		}
		sink = string(l)
	}
}

func BenchmarkParseCID(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		c, err := ParseCID("bafyreie5737gdxlw5i64vzichcalba3z2v5n6icifvx5xytvske7mr3hpm")
		if err != nil {
			b.Fatal(err)
		}
		sink = string(c)
	}
}

func BenchmarkParseURI(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		u, err := ParseURI("https://example.com/some/path?query=1#frag")
		if err != nil {
			b.Fatal(err)
		}
		sink = string(u)
	}
}
