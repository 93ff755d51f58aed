package bench

import (
	"bytes"
	"encoding/json"
	"testing"

	indigobsky "github.com/bluesky-social/indigo/api/bsky"
	"github.com/bluesky-social/indigo/atproto/atdata"

	welkinbsky "github.com/welkin-atproto/welkin/api/bsky"
	"github.com/welkin-atproto/welkin/atproto/data"
)

// postJSON is a typical app.bsky.feed.post: a reply with a link facet.
const postJSON = `{
  "$type": "app.bsky.feed.post",
  "text": "Reading the repository spec again tonight: the MST layout is simple once you see the key heights. Notes here: https://example.com/notes/mst-walkthrough",
  "createdAt": "2026-11-25T14:03:11.482Z",
  "langs": ["en"],
  "facets": [{
    "index": {"byteStart": 113, "byteEnd": 153},
    "features": [{"$type": "app.bsky.richtext.facet#link", "uri": "https://example.com/notes/mst-walkthrough"}]
  }],
  "reply": {
    "root": {"uri": "at://did:plc:ewvi7nxzyoun6zhxrhs64oiz/app.bsky.feed.post/3l3qo2vuowo2b", "cid": "bafyreidfayvfuwqa7qlnopdjiqrxzs6blmoeu4rujcjtnci5beludirz2a"},
    "parent": {"uri": "at://did:plc:ewvi7nxzyoun6zhxrhs64oiz/app.bsky.feed.post/3l3qo2vutsw2b", "cid": "bafyreidfayvfuwqa7qlnopdjiqrxzs6blmoeu4rujcjtnci5beludirz2a"}
  }
}`

// fixture holds the post in every form the benchmarks start from.
type fixture struct {
	cbor       []byte
	generic    map[string]any
	indigoGen  map[string]any
	indigoPost *indigobsky.FeedPost
	welkinPost *welkinbsky.FeedPost // Welkin's generated type
}

func loadPost(tb testing.TB) fixture {
	tb.Helper()
	var ip indigobsky.FeedPost
	if err := json.Unmarshal([]byte(postJSON), &ip); err != nil {
		tb.Fatal(err)
	}
	var buf bytes.Buffer
	if err := ip.MarshalCBOR(&buf); err != nil {
		tb.Fatal(err)
	}
	raw := buf.Bytes()
	gen, err := data.UnmarshalCBOR(raw)
	if err != nil {
		tb.Fatal(err)
	}
	igen, err := atdata.UnmarshalCBOR(raw)
	if err != nil {
		tb.Fatal(err)
	}
	var wp welkinbsky.FeedPost
	if err := data.UnmarshalCBORInto(raw, &wp); err != nil {
		tb.Fatal(err)
	}
	return fixture{cbor: raw, generic: gen, indigoGen: igen, indigoPost: &ip, welkinPost: &wp}
}

// TestPostAgreement checks that both libraries read and write the post to
// the same bytes and CID, by every path the benchmarks time.
func TestPostAgreement(t *testing.T) {
	f := loadPost(t)
	generic, err := data.MarshalCBOR(f.generic)
	if err != nil {
		t.Fatal(err)
	}
	typed, err := data.MarshalCBOR(f.welkinPost)
	if err != nil {
		t.Fatal(err)
	}
	igen, err := atdata.MarshalCBOR(f.indigoGen)
	if err != nil {
		t.Fatal(err)
	}
	// The generated type read from the post's JSON writes the same bytes.
	var fromJSONPost welkinbsky.FeedPost
	if err := json.Unmarshal([]byte(postJSON), &fromJSONPost); err != nil {
		t.Fatal(err)
	}
	typedJSON, err := data.MarshalCBOR(&fromJSONPost)
	if err != nil {
		t.Fatal(err)
	}
	for name, b := range map[string][]byte{"welkin generic": generic, "welkin typed": typed, "welkin typed from JSON": typedJSON, "indigo generic": igen} {
		if !bytes.Equal(b, f.cbor) {
			t.Errorf("%s encoding differs from cbor-gen's:\n got %x\nwant %x", name, b, f.cbor)
		}
	}
	parsed, err := data.ParseJSON([]byte(postJSON))
	if err != nil {
		t.Fatal(err)
	}
	fromJSON, err := data.MarshalCBOR(parsed)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(fromJSON, f.cbor) {
		t.Errorf("JSON -> CBOR differs from cbor-gen's:\n got %x\nwant %x", fromJSON, f.cbor)
	}
	if got, want := data.CIDForCBOR(f.cbor).String(), indigoCID(t, f.cbor); got != want {
		t.Errorf("CID %s, indigo's %s", got, want)
	}
}

var sink any

func BenchmarkCBORDecodePostGeneric(b *testing.B) {
	f := loadPost(b)
	b.Run("impl=welkin", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			m, err := data.UnmarshalCBOR(f.cbor)
			if err != nil {
				b.Fatal(err)
			}
			sink = m
		}
	})
	b.Run("impl=indigo", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			m, err := atdata.UnmarshalCBOR(f.cbor)
			if err != nil {
				b.Fatal(err)
			}
			sink = m
		}
	})
}

func BenchmarkCBOREncodePostGeneric(b *testing.B) {
	f := loadPost(b)
	b.Run("impl=welkin", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			out, err := data.MarshalCBOR(f.generic)
			if err != nil {
				b.Fatal(err)
			}
			sink = out
		}
	})
	b.Run("impl=indigo", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			out, err := atdata.MarshalCBOR(f.indigoGen)
			if err != nil {
				b.Fatal(err)
			}
			sink = out
		}
	})
}

func BenchmarkCBORDecodePostTyped(b *testing.B) {
	f := loadPost(b)
	b.Run("impl=welkin", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			var p welkinbsky.FeedPost
			if err := data.UnmarshalCBORInto(f.cbor, &p); err != nil {
				b.Fatal(err)
			}
			sink = &p
		}
	})
	b.Run("impl=indigo", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			var p indigobsky.FeedPost
			if err := p.UnmarshalCBOR(bytes.NewReader(f.cbor)); err != nil {
				b.Fatal(err)
			}
			sink = &p
		}
	})
}

func BenchmarkCBOREncodePostTyped(b *testing.B) {
	f := loadPost(b)
	b.Run("impl=welkin", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			out, err := data.MarshalCBOR(f.welkinPost)
			if err != nil {
				b.Fatal(err)
			}
			sink = out
		}
	})
	b.Run("impl=indigo", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			var buf bytes.Buffer
			if err := f.indigoPost.MarshalCBOR(&buf); err != nil {
				b.Fatal(err)
			}
			sink = buf.Bytes()
		}
	})
}

func BenchmarkJSONParsePost(b *testing.B) {
	raw := []byte(postJSON)
	b.Run("impl=welkin", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			m, err := data.ParseJSON(raw)
			if err != nil {
				b.Fatal(err)
			}
			sink = m
		}
	})
	b.Run("impl=indigo", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			m, err := atdata.UnmarshalJSON(raw)
			if err != nil {
				b.Fatal(err)
			}
			sink = m
		}
	})
}
