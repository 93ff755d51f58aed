package api_test

import (
	"context"
	"encoding/json"
	"net/url"
	"testing"

	"github.com/welkin-atproto/welkin/api/bsky"
	"github.com/welkin-atproto/welkin/api/lexutil"
	"github.com/welkin-atproto/welkin/atproto/data"
)

func benchPost(b *testing.B) []byte {
	b.Helper()
	g, err := data.ParseJSON([]byte(expand(corpus()["post-recordwithmedia"])))
	if err != nil {
		b.Fatal(err)
	}
	cb, err := data.MarshalCBOR(g)
	if err != nil {
		b.Fatal(err)
	}
	return cb
}

func BenchmarkDecodePostTyped(b *testing.B) {
	cb := benchPost(b)
	b.SetBytes(int64(len(cb)))
	b.ReportAllocs()
	for b.Loop() {
		var p bsky.FeedPost
		if err := lexutil.UnmarshalCBOR(cb, &p); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkDecodePostGeneric(b *testing.B) {
	cb := benchPost(b)
	b.SetBytes(int64(len(cb)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := data.UnmarshalCBOR(cb); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkEncodePostTyped(b *testing.B) {
	cb := benchPost(b)
	var p bsky.FeedPost
	if err := lexutil.UnmarshalCBOR(cb, &p); err != nil {
		b.Fatal(err)
	}
	e := data.NewEncoder(make([]byte, 0, 4096))
	b.SetBytes(int64(len(cb)))
	b.ReportAllocs()
	for b.Loop() {
		e.Reset()
		if err := p.MarshalDAGCBOR(e); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkEncodePostGeneric(b *testing.B) {
	cb := benchPost(b)
	g, err := data.UnmarshalCBOR(cb)
	if err != nil {
		b.Fatal(err)
	}
	e := data.NewEncoder(make([]byte, 0, 4096))
	b.SetBytes(int64(len(cb)))
	b.ReportAllocs()
	for b.Loop() {
		e.Reset()
		if err := e.WriteValue(g); err != nil {
			b.Fatal(err)
		}
	}
}

// fakeClient records one call and answers with a canned JSON body.
type fakeClient struct {
	kind   lexutil.Kind
	nsid   string
	params url.Values
	input  any
	reply  string
}

func (c *fakeClient) Do(ctx context.Context, kind lexutil.Kind, nsid string, params url.Values, input, output any) error {
	c.kind, c.nsid, c.params, c.input = kind, nsid, params, input
	if output != nil {
		return json.Unmarshal([]byte(c.reply), output)
	}
	return nil
}

func TestClientFunctions(t *testing.T) {
	limit := int64(30)
	c := &fakeClient{reply: `{"feed":[],"cursor":"abc"}`}
	out, err := bsky.FeedGetTimeline(context.Background(), c, &bsky.FeedGetTimeline_Params{Limit: &limit, Cursor: "x"})
	if err != nil {
		t.Fatal(err)
	}
	if c.kind != lexutil.Query || c.nsid != "app.bsky.feed.getTimeline" || c.params.Get("limit") != "30" || c.params.Get("cursor") != "x" || c.input != nil {
		t.Errorf("call: %+v", c)
	}
	if out.Cursor == nil || *out.Cursor != "abc" || out.Feed == nil {
		t.Errorf("output: %+v", out)
	}
	var p bsky.FeedGetTimeline_Params
	if err := p.SetValues(c.params); err != nil || p.Limit == nil || *p.Limit != 30 || p.Cursor != "x" {
		t.Errorf("SetValues: %+v %v", p, err)
	}
}

// replyPostJSON is the post of bench/post_test.go: a reply with two strong
// refs, one link facet and langs.
const replyPostJSON = `{
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

func replyPost(b *testing.B) []byte {
	b.Helper()
	g, err := data.ParseJSON([]byte(replyPostJSON))
	if err != nil {
		b.Fatal(err)
	}
	cb, err := data.MarshalCBOR(g)
	if err != nil {
		b.Fatal(err)
	}
	return cb
}

// The same post as a hand-written struct, decoded by data's reflection path,
// for comparison with the generated code.
type reflStrongRef struct {
	URI string `cbor:"uri"`
	CID string `cbor:"cid"`
}

type reflPost struct {
	Type      string   `cbor:"$type"`
	Text      string   `cbor:"text"`
	CreatedAt string   `cbor:"createdAt"`
	Langs     []string `cbor:"langs,omitempty"`
	Facets    []struct {
		Index struct {
			ByteStart int64 `cbor:"byteStart"`
			ByteEnd   int64 `cbor:"byteEnd"`
		} `cbor:"index"`
		Features []struct {
			Type string `cbor:"$type"`
			URI  string `cbor:"uri"`
		} `cbor:"features"`
	} `cbor:"facets,omitempty"`
	Reply *struct {
		Root   reflStrongRef `cbor:"root"`
		Parent reflStrongRef `cbor:"parent"`
	} `cbor:"reply,omitempty"`
}

var benchSink any

func BenchmarkDecodeReplyPost(b *testing.B) {
	cb := replyPost(b)
	b.Run("path=generated", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			var p bsky.FeedPost
			if err := data.UnmarshalCBORInto(cb, &p); err != nil {
				b.Fatal(err)
			}
			benchSink = &p
		}
	})
	b.Run("path=generated-decoder", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			var p bsky.FeedPost
			if err := lexutil.UnmarshalCBOR(cb, &p); err != nil {
				b.Fatal(err)
			}
			benchSink = &p
		}
	})
	b.Run("path=reflection", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			var p reflPost
			if err := data.UnmarshalCBORInto(cb, &p); err != nil {
				b.Fatal(err)
			}
			benchSink = &p
		}
	})
}
