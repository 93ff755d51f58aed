package api_test

import (
	"reflect"
	"strings"
	"testing"

	"github.com/welkin-atproto/welkin/api/bsky"
	"github.com/welkin-atproto/welkin/api/lexutil"
	"github.com/welkin-atproto/welkin/atproto/data"
)

func cborOf(t *testing.T, js string) []byte {
	t.Helper()
	g, err := data.ParseJSON([]byte(js))
	if err != nil {
		t.Fatal(err)
	}
	cb, err := data.MarshalCBOR(g)
	if err != nil {
		t.Fatal(err)
	}
	return cb
}

// TestDecodeSharedAndCopied checks that decoding with strings sliced from
// one copy of the block and with strings copied one by one agree.
func TestDecodeSharedAndCopied(t *testing.T) {
	c := corpus()
	for _, name := range sortedNames(c) {
		cb := cborOf(t, expand(c[name]))
		g, _ := data.ParseJSON([]byte(expand(c[name])))
		mk := newRecord[g["$type"].(string)]
		shared, copied := mk(), mk()
		if err := lexutil.UnmarshalCBOR(cb, shared); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		d := data.NewDecoder(cb)
		if err := copied.UnmarshalDAGCBOR(d); err != nil || d.Finish() != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if !reflect.DeepEqual(shared, copied) {
			t.Errorf("%s: decodings differ:\n%+v\n%+v", name, shared, copied)
		}
	}
}

// TestDecodeUnionLongValueFirst checks a union variant whose key before
// "$type" holds a string too long for the quick $type scan.
func TestDecodeUnionLongValueFirst(t *testing.T) {
	uri := "https://example.com/" + strings.Repeat("a", data.MaxKeyLen+10)
	cb := cborOf(t, `{"$type":"app.bsky.feed.post","text":"x","createdAt":"`+now+`","facets":[{"index":{"byteStart":0,"byteEnd":1},"features":[{"$type":"app.bsky.richtext.facet#link","uri":"`+uri+`"}]}]}`)
	var p bsky.FeedPost
	if err := lexutil.UnmarshalCBOR(cb, &p); err != nil {
		t.Fatal(err)
	}
	if l := p.Facets[0].Features[0].RichtextFacet_Link; l == nil || l.Uri != uri {
		t.Fatalf("link not decoded: %+v", p.Facets[0].Features[0])
	}
}

// TestDecodeArrays checks arrays of structs allocated together: null
// elements, distinct elements and their parts, and that decoding again
// into a value leaves what it held before alone.
func TestDecodeArrays(t *testing.T) {
	cb := cborOf(t, `{"$type":"app.bsky.feed.post","text":"x","createdAt":"`+now+`","facets":[`+
		`null,{"index":{"byteStart":0,"byteEnd":1},"features":[{"$type":"app.bsky.richtext.facet#tag","tag":"a"},null]},`+
		`{"index":{"byteStart":2,"byteEnd":3},"features":[]}],`+
		`"reply":{"root":{"uri":"at://a","cid":"`+postCID+`"},"parent":{"uri":"at://b","cid":"`+postCID+`"}}}`)
	var p bsky.FeedPost
	if err := lexutil.UnmarshalCBOR(cb, &p); err != nil {
		t.Fatal(err)
	}
	f := p.Facets
	if len(f) != 3 || f[0] != nil || f[1] == nil || f[2] == nil || f[1] == f[2] || f[1].Index == f[2].Index {
		t.Fatalf("facets: %+v", f)
	}
	if f[1].Index.ByteStart != 0 || f[2].Index.ByteStart != 2 || f[2].Features == nil || len(f[2].Features) != 0 {
		t.Errorf("facets: %+v %+v", f[1], f[2])
	}
	if fe := f[1].Features; len(fe) != 2 || fe[1] != nil || fe[0].RichtextFacet_Tag == nil || fe[0].RichtextFacet_Tag.Tag != "a" {
		t.Errorf("features: %+v", fe)
	}
	if p.Reply.Root.Uri != "at://a" || p.Reply.Parent.Uri != "at://b" || p.Reply.Root == p.Reply.Parent {
		t.Errorf("reply: %+v %+v", p.Reply.Root, p.Reply.Parent)
	}
	root, index := p.Reply.Root, f[1].Index
	if err := lexutil.UnmarshalCBOR(cborOf(t, expand(corpus()["post-reply"])), &p); err != nil {
		t.Fatal(err)
	}
	if p.Facets != nil || root.Uri != "at://a" || index.ByteStart != 0 || p.Reply.Root == root {
		t.Errorf("decoding again changed the earlier value")
	}
}

// TestPeekTypeViewAllocs checks that finding a union's $type costs no
// allocation even when strings are copied, and leaves the decoder alone.
func TestPeekTypeViewAllocs(t *testing.T) {
	cb := cborOf(t, `{"uri":"https://example.com","$type":"app.bsky.richtext.facet#link"}`)
	allocs := testing.AllocsPerRun(100, func() {
		d := data.NewDecoder(cb)
		typ, err := lexutil.PeekTypeView(d)
		if err != nil || string(typ) != "app.bsky.richtext.facet#link" || d.Offset() != 0 {
			t.Fatalf("%q %v %d", typ, err, d.Offset())
		}
	})
	if allocs > 1 { // the Decoder itself
		t.Errorf("%v allocations", allocs)
	}
}
