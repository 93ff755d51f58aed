package data

import (
	"bytes"
	"errors"
	"reflect"
	"strings"
	"testing"
)

type cborStrongRef struct {
	CID string `json:"cid"`
	URI string `json:"uri"`
}

type cborReplyRef struct {
	Parent cborStrongRef `json:"parent"`
	Root   cborStrongRef `json:"root"`
}

type cborFacetFeature struct {
	Type string `json:"$type"`
	URI  string `json:"uri,omitempty"`
	Did  string `json:"did,omitempty"`
	Tag  string `json:"tag,omitempty"`
}

type cborByteSlice struct {
	ByteStart int64 `json:"byteStart"`
	ByteEnd   int64 `json:"byteEnd"`
}

type cborFacet struct {
	Type     string             `json:"$type,omitempty"`
	Index    cborByteSlice      `json:"index"`
	Features []cborFacetFeature `json:"features"`
}

type cborSelfLabel struct {
	Val string `json:"val"`
}

type cborSelfLabels struct {
	Type   string          `json:"$type"`
	Values []cborSelfLabel `json:"values"`
}

// cborPost mirrors app.bsky.feed.post.
type cborPost struct {
	Type      string          `json:"$type"`
	Text      string          `json:"text"`
	CreatedAt string          `json:"createdAt"`
	Langs     []string        `json:"langs,omitempty"`
	Reply     *cborReplyRef   `json:"reply,omitempty"`
	Facets    []cborFacet     `json:"facets,omitempty"`
	Embed     any             `json:"embed,omitempty"`
	Labels    *cborSelfLabels `json:"labels,omitempty"`
	Tags      []string        `json:"tags,omitempty"`
}

const cborPostText = "Going through the atproto specs today and writing a DAG-CBOR codec from scratch; " +
	"the strictness rules are short but every one of them matters. https://atproto.com/specs"

func cborSamplePost() *cborPost {
	return &cborPost{
		Type:      "app.bsky.feed.post",
		Text:      cborPostText,
		CreatedAt: "2024-05-01T12:34:56.789Z",
		Langs:     []string{"en"},
		Reply: &cborReplyRef{
			Root: cborStrongRef{
				URI: "at://did:plc:ewvi7nxzyoun6zhxrhs64oiz/app.bsky.feed.post/3kq7ivo4tpc2a",
				CID: "bafyreidfayvfuwqa7qlnopdjiqrxzs6blmoeu4rujcjtnci5beludirz2a",
			},
			Parent: cborStrongRef{
				URI: "at://did:plc:ewvi7nxzyoun6zhxrhs64oiz/app.bsky.feed.post/3kq7j2ahq2s2b",
				CID: "bafyreihldkhcwijkde7gx4rpkkuw7pl6lbyu5gieunyc7ihactn5bkd2nm",
			},
		},
		Facets: []cborFacet{{
			Index:    cborByteSlice{ByteStart: 140, ByteEnd: 164},
			Features: []cborFacetFeature{{Type: "app.bsky.richtext.facet#link", URI: "https://atproto.com/specs"}},
		}},
	}
}

// cborSamplePostGeneric is the same post in the generic form.
func cborSamplePostGeneric() map[string]any {
	ref := func(uri, cid string) map[string]any { return map[string]any{"uri": uri, "cid": cid} }
	p := cborSamplePost()
	return map[string]any{
		"$type":     "app.bsky.feed.post",
		"text":      cborPostText,
		"createdAt": p.CreatedAt,
		"langs":     []any{"en"},
		"reply": map[string]any{
			"root":   ref(p.Reply.Root.URI, p.Reply.Root.CID),
			"parent": ref(p.Reply.Parent.URI, p.Reply.Parent.CID),
		},
		"facets": []any{map[string]any{
			"index":    map[string]any{"byteStart": int64(140), "byteEnd": int64(164)},
			"features": []any{map[string]any{"$type": "app.bsky.richtext.facet#link", "uri": "https://atproto.com/specs"}},
		}},
	}
}

type cborCustom struct{ A, B int64 }

// The custom form is a two-item array.
func (c cborCustom) MarshalDAGCBOR(e *Encoder) error {
	if err := e.WriteArrayHeader(2); err != nil {
		return err
	}
	if err := e.WriteInt(c.A); err != nil {
		return err
	}
	return e.WriteInt(c.B)
}

func (c *cborCustom) UnmarshalDAGCBOR(d *Decoder) error {
	n, err := d.ReadArrayHeader()
	if err != nil {
		return err
	}
	if n != 2 {
		return errors.New("custom: want two items")
	}
	if c.A, err = d.ReadInt(); err != nil {
		return err
	}
	c.B, err = d.ReadInt()
	return err
}

type cborKitchen struct {
	Link    CID              `cbor:"link"`
	Maybe   *CID             `cbor:"maybe"`
	Opt     *CID             `cbor:"opt,omitempty"`
	Blob    Blob             `cbor:"blob"`
	OptBlob *Blob            `cbor:"optBlob,omitempty"`
	Legacy  Blob             `cbor:"legacy"`
	Data    Bytes            `cbor:"data"`
	Raw     []byte           `cbor:"raw,omitempty"`
	Counts  map[string]int64 `cbor:"counts"`
	Small   int8             `cbor:"small"`
	U       uint32           `cbor:"u"`
	Int     int              `json:"int"`
	Flag    bool             `cbor:"flag"`
	Skip    string           `cbor:"-"`
	hidden  string
	Any     map[string]any `cbor:"any"`
	List    []any          `cbor:"list"`
	Self    *cborKitchen   `cbor:"self,omitempty"`
	Custom  cborCustom     `cbor:"custom"`
	PCustom *cborCustom    `cbor:"pcustom,omitempty"`
	Nums    []int32        `cbor:"nums"`
	Nested  [][]string     `cbor:"nested"`
	Plain   string
}

func TestTypedPostRoundTrip(t *testing.T) {
	p := cborSamplePost()
	typed, err := MarshalCBOR(p)
	if err != nil {
		t.Fatal(err)
	}
	generic, err := MarshalCBOR(cborSamplePostGeneric())
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(typed, generic) {
		t.Fatalf("typed and generic encodings differ\ntyped   %x\ngeneric %x", typed, generic)
	}
	byValue, err := MarshalCBOR(*p)
	if err != nil || !bytes.Equal(byValue, typed) {
		t.Errorf("encoding by value: %v", err)
	}
	var got cborPost
	if err := UnmarshalCBORInto(typed, &got); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(&got, p) {
		t.Errorf("round trip:\n got %+v\nwant %+v", got, *p)
	}

	// Embed (any), labels and tags.
	p.Embed = map[string]any{"$type": "app.bsky.embed.images", "images": []any{map[string]any{
		"alt":   "a cat",
		"image": Blob{Ref: CIDForRaw([]byte("cat")), MimeType: "image/jpeg", Size: 4096},
	}}}
	p.Labels = &cborSelfLabels{Type: "com.atproto.label.defs#selfLabels", Values: []cborSelfLabel{{Val: "nudity"}}}
	p.Tags = []string{"cats", "go"}
	b, err := MarshalCBOR(p)
	if err != nil {
		t.Fatal(err)
	}
	got = cborPost{Text: "stale", Tags: []string{"stale"}}
	if err := UnmarshalCBORInto(b, &got); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(&got, p) {
		t.Errorf("round trip with embed:\n got %+v\nwant %+v", got, *p)
	}
	// Decoding the typed bytes generically and re-encoding gives them back.
	m, err := UnmarshalCBOR(b)
	if err != nil {
		t.Fatal(err)
	}
	again, _ := MarshalCBOR(m)
	if !bytes.Equal(again, b) {
		t.Error("generic re-encoding of typed output differs")
	}
}

func TestTypedKitchenSink(t *testing.T) {
	legacy := Blob{Ref: CIDForRaw([]byte("old")), MimeType: "image/gif", Legacy: true}
	k := &cborKitchen{
		Link:    cborTestCID,
		Blob:    Blob{Ref: CIDForRaw([]byte("x")), MimeType: "text/plain", Size: 1},
		Legacy:  legacy,
		Data:    Bytes{1, 2},
		Counts:  map[string]int64{"b": 2, "a": 1, "$type": 3},
		Small:   -128,
		U:       4000000000,
		Int:     -5,
		Flag:    true,
		Skip:    "not written",
		hidden:  "not written either",
		Any:     map[string]any{"x": []any{int64(1)}},
		List:    []any{"a", nil},
		Self:    &cborKitchen{Link: cborTestCID, Blob: Blob{Ref: cborTestCID, MimeType: "a"}, Legacy: legacy, Plain: "inner"},
		Custom:  cborCustom{A: 1, B: -2},
		PCustom: &cborCustom{A: 3},
		Nums:    []int32{-1, 0, 1 << 30},
		Nested:  [][]string{{"a"}, {}},
		Plain:   "outer",
	}
	// "$type" in a typed map must be a string: an integer is refused.
	if _, err := MarshalCBOR(k); err == nil || !strings.Contains(err.Error(), "$type must be a string") {
		t.Errorf("integer $type in a map: %v", err)
	}
	delete(k.Counts, "$type")
	b, err := MarshalCBOR(k)
	if err != nil {
		t.Fatal(err)
	}
	g, err := UnmarshalCBOR(b)
	if err != nil {
		t.Fatalf("typed output is not valid DAG-CBOR: %v", err)
	}
	if g["maybe"] != nil || g["custom"] == nil || g["Plain"] != "outer" || g["int"] != int64(-5) {
		t.Errorf("generic view: %#v", g)
	}
	if _, ok := g["Skip"]; ok {
		t.Error("skipped field written")
	}
	if g["legacy"] != legacy {
		t.Errorf("legacy blob decoded as %#v", g["legacy"])
	}
	var got cborKitchen
	if err := UnmarshalCBORInto(b, &got); err != nil {
		t.Fatal(err)
	}
	k.Skip, k.hidden = "", ""
	k.Nested[1] = nil // empty arrays decode to nil typed slices
	// nil byte strings, maps and generic lists were written empty and
	// come back empty but not nil.
	k.Self.Data, k.Self.Counts, k.Self.Any, k.Self.List = Bytes{}, map[string]int64{}, map[string]any{}, []any{}
	if !reflect.DeepEqual(&got, k) {
		t.Errorf("round trip:\n got %+v\nwant %+v", got, *k)
	}
	again, err := MarshalCBOR(&got)
	if err != nil || !bytes.Equal(again, b) {
		t.Errorf("second encoding differs: %v", err)
	}
}

func TestTypedDecodeRules(t *testing.T) {
	base := cborSamplePostGeneric()
	enc := func(m map[string]any) []byte {
		t.Helper()
		b, err := MarshalCBOR(m)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	// Unknown fields are skipped.
	base["zzzUnknown"] = map[string]any{"deep": []any{Bytes{1}, cborTestCID}}
	var p cborPost
	if err := UnmarshalCBORInto(enc(base), &p); err != nil || p.Text != cborPostText {
		t.Errorf("unknown field: %v", err)
	}
	// ... but still validated.
	bad := enc(base)
	i := bytes.Index(bad, []byte{0x41, 0x01}) // the Bytes{1} item
	bad[i] = 0x5f                             // indefinite-length bytes
	if err := UnmarshalCBORInto(bad, &p); err == nil || !strings.Contains(err.Error(), "indefinite-length") {
		t.Errorf("invalid unknown field: %v", err)
	}
	delete(base, "zzzUnknown")

	cases := []struct {
		name string
		v    any
		in   []byte
		want string
	}{
		{"string as int", &cborByteSlice{}, enc(map[string]any{"byteEnd": "x"}), "expected an integer, found a string"},
		{"null for string", &cborStrongRef{}, cborCat(cborHex(t, "a1"), cborText("cid"), cborHex(t, "f6")), "expected a string, found null"},
		{"int8 overflow", &struct {
			N int8 `cbor:"n"`
		}{}, enc(map[string]any{"n": int64(128)}), "does not fit in int8"},
		{"uint negative", &struct {
			N uint16 `cbor:"n"`
		}{}, enc(map[string]any{"n": int64(-1)}), "does not fit in uint16"},
		{"$type int unknown", &cborStrongRef{}, cborCat(cborHex(t, "a1"), cborText("$type"), cborHex(t, "01")), "$type must be a string"},
		{"$type empty known", &cborFacetFeature{}, cborCat(cborHex(t, "a1"), cborText("$type"), cborHex(t, "60")), "$type must not be empty"},
		{"out of order", &cborStrongRef{}, cborCat(cborHex(t, "a2"), cborText("uri"), cborText("a"), cborText("cid"), cborText("b")), "out of order"},
		{"duplicate", &cborStrongRef{}, cborCat(cborHex(t, "a2"), cborText("cid"), cborText("a"), cborText("cid"), cborText("b")), "duplicate"},
		{"not a map", &cborStrongRef{}, cborHex(t, "80"), "expected a map, found an array"},
		{"trailing", &cborStrongRef{}, cborHex(t, "a0 00"), "trailing"},
		{"blob wrong", &struct {
			B Blob `cbor:"b"`
		}{}, enc(map[string]any{"b": map[string]any{"x": int64(1)}}), "not a blob"},
		{"custom", &cborCustom{}, cborHex(t, "81 01"), "want two items"},
		{"non-pointer", cborStrongRef{}, cborHex(t, "a0"), "non-nil pointer"},
		{"float field", &struct {
			F float64 `cbor:"f"`
		}{}, cborHex(t, "a0"), "floats are not allowed"},
		{"interface field", &struct {
			E error `cbor:"e"`
		}{}, cborCat(cborHex(t, "a1"), cborText("e"), cborHex(t, "f6")), "cannot decode into interface"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			err := UnmarshalCBORInto(tc.in, tc.v)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("got %v, want an error mentioning %q", err, tc.want)
			}
		})
	}

	// Null leaves a pointer nil; absent fields are zero.
	var k cborKitchen
	in := cborCat(cborHex(t, "a2"), cborText("maybe"), cborHex(t, "f6"), cborText("small"), cborHex(t, "20"))
	if err := UnmarshalCBORInto(in, &k); err != nil || k.Maybe != nil || k.Small != -1 {
		t.Errorf("null pointer: %v %+v", err, k)
	}
	// Decoding into the generic forms.
	var m map[string]any
	if err := UnmarshalCBORInto(enc(base), &m); err != nil || m["text"] != cborPostText {
		t.Errorf("into map: %v", err)
	}
	var v any
	if err := UnmarshalCBORInto(cborHex(t, "82 01 f5"), &v); err != nil || !reflect.DeepEqual(v, []any{int64(1), true}) {
		t.Errorf("into any: %v %v", v, err)
	}
}

func TestTypedEncodeRules(t *testing.T) {
	cases := []struct {
		name string
		v    any
		want string
	}{
		{"empty $type", &cborFacetFeature{}, "$type must not be empty"},
		{"undefined CID", &struct {
			C CID `cbor:"c"`
		}{}, "undefined CID"},
		{"big int", &struct {
			N int64 `cbor:"n"`
		}{N: MaxSafeInt + 1}, "outside ±2^53-1"},
		{"big uint", &struct {
			N uint64 `cbor:"n"`
		}{N: 1 << 60}, "outside ±2^53-1"},
		{"bad utf8", &cborStrongRef{CID: "\xff"}, "not valid UTF-8"},
		{"float field", &struct {
			F float32 `cbor:"f"`
		}{}, "floats are not allowed"},
		{"duplicate names", &struct {
			A string `cbor:"a"`
			B string `json:"a"`
		}{}, `two fields named "a"`},
		{"embedded", &struct{ cborStrongRef }{}, "embedded field"},
		{"int map keys", map[int]string{1: "a"}, "map keys must be strings"},
		{"array type", [2]int{}, "not supported"},
		{"$type not string", &struct {
			T int `cbor:"$type"`
		}{}, "$type field must be a string"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			b, err := MarshalCBOR(tc.v)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("got %x, %v; want an error mentioning %q", b, err, tc.want)
			}
		})
	}

	// nil pointers are null unless omitempty; nil slices and maps are empty.
	type opt struct {
		P *string         `cbor:"p"`
		Q *string         `cbor:"q,omitempty"`
		S []string        `cbor:"s"`
		M map[string]bool `cbor:"m"`
		Z int             `cbor:"z,omitempty"`
	}
	b, err := MarshalCBOR(opt{})
	if err != nil {
		t.Fatal(err)
	}
	want := cborCat(cborHex(t, "a3"), cborText("m"), cborHex(t, "a0"), cborText("p"), cborHex(t, "f6"), cborText("s"), cborHex(t, "80"))
	if !bytes.Equal(b, want) {
		t.Errorf("zero struct: %x, want %x", b, want)
	}
	if b, err := MarshalCBOR((*opt)(nil)); err != nil || !bytes.Equal(b, []byte{0xf6}) {
		t.Errorf("nil pointer: %x %v", b, err)
	}

	// Recursive types are bounded by the depth limit.
	var deep *cborKitchen
	for i := 0; i < MaxDepth+2; i++ {
		deep = &cborKitchen{Link: cborTestCID, Blob: Blob{Ref: cborTestCID}, Legacy: Blob{Ref: cborTestCID}, Self: deep}
	}
	if _, err := MarshalCBOR(deep); err == nil || !strings.Contains(err.Error(), "nesting deeper") {
		t.Errorf("deep recursion: %v", err)
	}
}

// cborGenRef is written the way generated code would write it: fixed key
// bytes, no reflection.
type cborGenRef struct {
	URI string
	CID CID
}

var (
	cborGenKeyCID = []byte("\x63cid")
	cborGenKeyURI = []byte("\x63uri")
)

func (r *cborGenRef) MarshalDAGCBOR(e *Encoder) error {
	if err := e.WriteMapHeader(2); err != nil {
		return err
	}
	e.WriteRaw(cborGenKeyCID)
	if err := e.WriteCID(r.CID); err != nil {
		return err
	}
	e.WriteRaw(cborGenKeyURI)
	return e.WriteString(r.URI)
}

func (r *cborGenRef) UnmarshalDAGCBOR(d *Decoder) error {
	n, err := d.ReadMapHeader()
	if err != nil {
		return err
	}
	if err := d.Enter(); err != nil {
		return err
	}
	defer d.Leave()
	*r = cborGenRef{}
	var prev []byte
	for i := 0; i < n; i++ {
		k, err := d.ReadMapKey(prev)
		if err != nil {
			return err
		}
		prev = k
		switch string(k) {
		case "cid":
			r.CID, err = d.ReadCID()
		case "uri":
			r.URI, err = d.ReadString()
		default:
			err = d.Skip()
		}
		if err != nil {
			return err
		}
	}
	return nil
}

func TestCBORMarshalerInterfaces(t *testing.T) {
	ref := cborGenRef{URI: "at://did:plc:x/app.bsky.feed.post/1", CID: cborTestCID}
	b, err := MarshalCBOR(&ref)
	if err != nil {
		t.Fatal(err)
	}
	generic, _ := MarshalCBOR(map[string]any{"uri": ref.URI, "cid": ref.CID})
	if !bytes.Equal(b, generic) {
		t.Fatalf("hand-written %x, generic %x", b, generic)
	}
	var got cborGenRef
	if err := UnmarshalCBORInto(b, &got); err != nil || got != ref {
		t.Fatalf("round trip: %+v %v", got, err)
	}
	// Unknown keys are skipped; order is still enforced.
	withExtra, _ := MarshalCBOR(map[string]any{"uri": ref.URI, "cid": ref.CID, "zz": []any{int64(1)}})
	if err := UnmarshalCBORInto(withExtra, &got); err != nil || got != ref {
		t.Errorf("extra key: %+v %v", got, err)
	}
	bad := cborCat(cborHex(t, "a2"), cborText("uri"), cborText("x"), cborText("cid"), cborLink())
	if err := UnmarshalCBORInto(bad, &got); err == nil || !strings.Contains(err.Error(), "out of order") {
		t.Errorf("out of order: %v", err)
	}

	// As fields of a reflected struct, by value and by pointer, and inside
	// generic values.
	type holder struct {
		Ref  cborGenRef   `cbor:"ref"`
		PRef *cborGenRef  `cbor:"pref"`
		Refs []cborGenRef `cbor:"refs"`
		Any  any          `cbor:"any"`
	}
	h := holder{Ref: ref, PRef: &ref, Refs: []cborGenRef{ref, ref}, Any: []any{&ref}}
	hb, err := MarshalCBOR(&h)
	if err != nil {
		t.Fatal(err)
	}
	var h2 holder
	if err := UnmarshalCBORInto(hb, &h2); err != nil {
		t.Fatal(err)
	}
	if h2.Ref != ref || *h2.PRef != ref || len(h2.Refs) != 2 || h2.Refs[1] != ref {
		t.Errorf("holder: %+v", h2)
	}
	if a, ok := h2.Any.([]any); !ok || len(a) != 1 || a[0].(map[string]any)["cid"] != cborTestCID {
		t.Errorf("holder.Any: %#v", h2.Any)
	}

	// The low-level decoder can hand an item to the typed path.
	d := NewDecoder(cborCat(cborHex(t, "82"), b, b))
	if n, err := d.ReadArrayHeader(); err != nil || n != 2 {
		t.Fatal(n, err)
	}
	var r1 cborGenRef
	var r2 struct {
		CID CID    `cbor:"cid"`
		URI string `cbor:"uri"`
	}
	if err := d.DecodeValue(&r1); err != nil || r1 != ref {
		t.Errorf("DecodeValue into a marshaler: %+v %v", r1, err)
	}
	if err := d.DecodeValue(&r2); err != nil || r2.URI != ref.URI || r2.CID != ref.CID {
		t.Errorf("DecodeValue into a struct: %+v %v", r2, err)
	}
	if err := d.Finish(); err != nil {
		t.Error(err)
	}
}

func TestTypedConcurrentFirstUse(t *testing.T) {
	type fresh struct {
		A string   `cbor:"a"`
		B []string `cbor:"b"`
		C *fresh   `cbor:"c,omitempty"`
	}
	want, err := MarshalCBOR(map[string]any{"a": "x", "b": []any{"y"}})
	if err != nil {
		t.Fatal(err)
	}
	errs := make(chan error, 8)
	for i := 0; i < 8; i++ {
		go func() {
			b, err := MarshalCBOR(&fresh{A: "x", B: []string{"y"}})
			if err == nil && !bytes.Equal(b, want) {
				err = errors.New("different bytes")
			}
			var f fresh
			if err == nil {
				err = UnmarshalCBORInto(b, &f)
			}
			errs <- err
		}()
	}
	for i := 0; i < 8; i++ {
		if err := <-errs; err != nil {
			t.Error(err)
		}
	}
}
