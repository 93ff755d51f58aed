package data

import (
	"encoding/json"
	"strings"
	"testing"
)

type testImage struct {
	Alt   string `json:"alt"`
	Image Blob   `json:"image"`
}

type testRecord struct {
	Type    string      `json:"$type"`
	Link    CID         `json:"link"`
	MaybeID *CID        `json:"maybe,omitempty"`
	Data    Bytes       `json:"data"`
	Images  []testImage `json:"images"`
	Avatar  *Blob       `json:"avatar,omitempty"`
}

func TestJSONMethodsStruct(t *testing.T) {
	in := `{"$type":"com.example.rec","link":{"$link":"` + testCBORCID + `"},"data":{"$bytes":"AQID"},` +
		`"images":[{"alt":"x","image":{"$type":"blob","ref":{"$link":"` + testBlobCID + `"},"mimeType":"image/png","size":9}},` +
		`{"alt":"old","image":{"cid":"` + testBlobCID + `","mimeType":"image/gif"}}],"avatar":null}`
	var r testRecord
	if err := json.Unmarshal([]byte(in), &r); err != nil {
		t.Fatal(err)
	}
	if r.Link.String() != testCBORCID || string(r.Data) != "\x01\x02\x03" || r.MaybeID != nil || r.Avatar != nil {
		t.Fatalf("decoded %#v", r)
	}
	want0 := Blob{Ref: MustParseCID(testBlobCID), MimeType: "image/png", Size: 9}
	want1 := Blob{Ref: MustParseCID(testBlobCID), MimeType: "image/gif", Legacy: true}
	if r.Images[0].Image != want0 || r.Images[1].Image != want1 {
		t.Fatalf("images %#v", r.Images)
	}
	out, err := json.Marshal(r)
	if err != nil {
		t.Fatal(err)
	}
	// Each form is written as it was read, and the whole reads back as the
	// generic model would read the input.
	a, err := ParseJSON([]byte(strings.Replace(in, `,"avatar":null`, "", 1)))
	if err != nil {
		t.Fatal(err)
	}
	b, err := ParseJSON(out)
	if err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	if !jsonValueEqual(a, b) {
		t.Errorf("struct round trip:\n in %s\nout %s", in, out)
	}
}

func TestJSONMethodsReject(t *testing.T) {
	var c CID
	for _, bad := range []string{`"` + testCBORCID + `"`, `{"$link":5}`, `{"$bytes":"AA"}`, `{"$link":"x","y":1}`} {
		if err := json.Unmarshal([]byte(bad), &c); err == nil {
			t.Errorf("CID accepted %s", bad)
		}
	}
	var by Bytes
	for _, bad := range []string{`"AQID"`, `{"$bytes":1}`, `{"$link":"` + testCBORCID + `"}`} {
		if err := json.Unmarshal([]byte(bad), &by); err == nil {
			t.Errorf("Bytes accepted %s", bad)
		}
	}
	var bl Blob
	for _, bad := range []string{`{}`, `{"$type":"blob"}`, `{"cid":"nope","mimeType":"a/b"}`, `[]`} {
		if err := json.Unmarshal([]byte(bad), &bl); err == nil {
			t.Errorf("Blob accepted %s", bad)
		}
	}
	if err := json.Unmarshal([]byte(`"x"`), &bl); err == nil || !strings.Contains(err.Error(), "expected a blob, found a string") {
		t.Errorf("Blob wrong kind: %v", err)
	}
	if _, err := json.Marshal(CID{}); err == nil {
		t.Error("undefined CID written")
	}
	if _, err := json.Marshal(Blob{}); err == nil {
		t.Error("blob with undefined ref written")
	}
}

func TestJSONMethodsNull(t *testing.T) {
	c := MustParseCID(testCBORCID)
	if err := c.UnmarshalJSON([]byte(" null ")); err != nil || c.String() != testCBORCID {
		t.Errorf("null changed CID: %v %v", c, err)
	}
	b := Bytes("x")
	if err := b.UnmarshalJSON([]byte("null")); err != nil || string(b) != "x" {
		t.Errorf("null changed Bytes: %v %v", b, err)
	}
}

func TestJSONMethodsOutput(t *testing.T) {
	out, err := json.Marshal(map[string]any{
		"c": MustParseCID(testCBORCID),
		"b": Bytes{0xff},
		"l": Blob{Ref: MustParseCID(testBlobCID), MimeType: "a/b", Legacy: true},
	})
	if err != nil {
		t.Fatal(err)
	}
	want := `{"b":{"$bytes":"/w"},"c":{"$link":"` + testCBORCID + `"},"l":{"cid":"` + testBlobCID + `","mimeType":"a/b"}}`
	if string(out) != want {
		t.Errorf("got  %s\nwant %s", out, want)
	}
}
