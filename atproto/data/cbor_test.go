package data

import (
	"bytes"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"math"
	"os"
	"reflect"
	"runtime"
	"strings"
	"testing"

	"github.com/welkin-atproto/welkin/internal/base58"
	"github.com/welkin-atproto/welkin/internal/interoptest"
)

// cborHex turns hex with optional spaces into bytes.
func cborHex(t testing.TB, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(strings.ReplaceAll(s, " ", ""))
	if err != nil {
		t.Fatalf("bad hex %q: %v", s, err)
	}
	return b
}

// cborCat joins byte slices.
func cborCat(parts ...[]byte) []byte { return bytes.Join(parts, nil) }

// cborText encodes a text string header and bytes.
func cborText(s string) []byte { return append(appendHead(nil, majorText, uint64(len(s))), s...) }

var cborTestCID = CIDForCBOR([]byte("welkin"))

// cborLink encodes cborTestCID as a tag-42 link.
func cborLink() []byte {
	return cborCat([]byte{0xd8, 0x2a, 0x58, 37, 0x00}, cborTestCID.Bytes())
}

type cborFixture struct {
	JSON       json.RawMessage `json:"json"`
	CBORBase64 string          `json:"cbor_base64"`
	CID        string          `json:"cid"`
}

func loadCBORFixtures(t testing.TB) []cborFixture {
	raw, err := os.ReadFile(interoptest.File(t, "data-model/data-model-fixtures.json"))
	if err != nil {
		t.Fatal(err)
	}
	var fx []cborFixture
	if err := json.Unmarshal(raw, &fx); err != nil {
		t.Fatal(err)
	}
	if len(fx) == 0 {
		t.Fatal("no fixtures")
	}
	return fx
}

func cborB64(s string) ([]byte, error) {
	if strings.HasSuffix(s, "=") {
		return base64.StdEncoding.DecodeString(s)
	}
	return base64.RawStdEncoding.DecodeString(s)
}

func TestCBORInteropFixtures(t *testing.T) {
	for i, fx := range loadCBORFixtures(t) {
		b, err := cborB64(fx.CBORBase64)
		if err != nil {
			t.Fatalf("cborFixture %d: base64: %v", i, err)
		}
		m, err := UnmarshalCBOR(b)
		if err != nil {
			t.Fatalf("cborFixture %d: decode: %v", i, err)
		}
		out, err := MarshalCBOR(m)
		if err != nil {
			t.Fatalf("cborFixture %d: encode: %v", i, err)
		}
		if !bytes.Equal(out, b) {
			t.Errorf("cborFixture %d: re-encoding differs\n got %x\nwant %x", i, out, b)
		}
		if got := CIDForCBOR(out).String(); got != fx.CID {
			t.Errorf("cborFixture %d: CID %s, want %s", i, got, fx.CID)
		}
		// The generic decoder sees the same data.
		v, err := DecodeCBOR(b)
		if err != nil {
			t.Fatalf("cborFixture %d: DecodeCBOR: %v", i, err)
		}
		if !reflect.DeepEqual(v, any(m)) {
			t.Errorf("cborFixture %d: DecodeCBOR and UnmarshalCBOR disagree", i)
		}
	}
}

func TestCBORFixtureValues(t *testing.T) {
	fx := loadCBORFixtures(t)
	b, _ := cborB64(fx[1].CBORBase64)
	m, err := UnmarshalCBOR(b)
	if err != nil {
		t.Fatal(err)
	}
	if c, ok := m["a"].(CID); !ok || c.String() != "bafyreidfayvfuwqa7qlnopdjiqrxzs6blmoeu4rujcjtnci5beludirz2a" {
		t.Errorf("a = %#v", m["a"])
	}
	if bs, ok := m["b"].(Bytes); !ok || len(bs) != 32 {
		t.Errorf("b = %#v", m["b"])
	}
	blob, ok := m["c"].(Blob)
	if !ok {
		t.Fatalf("c = %#v, want a Blob", m["c"])
	}
	if blob.MimeType != "image/jpeg" || blob.Size != 10000 || blob.Legacy ||
		blob.Ref.String() != "bafkreiccldh766hwcnuxnf2wh6jgzepf2nlu2lvcllt63eww5p6chi4ity" {
		t.Errorf("blob = %+v", blob)
	}
}

func TestCBORDecodeRejects(t *testing.T) {
	deep := func(n int) []byte { // n nested arrays around an empty one
		return append(bytes.Repeat([]byte{0x81}, n-1), 0x80)
	}
	longKey := strings.Repeat("k", MaxKeyLen+1)
	okKey := strings.Repeat("k", MaxKeyLen)
	link := cborLink()
	cases := []struct {
		name string
		in   []byte
		off  int
		want string
	}{
		{"empty input", nil, 0, "unexpected end of input"},
		{"half float", cborHex(t, "f9 3c00"), 0, "floats are not allowed (16-bit"},
		{"single float", cborHex(t, "fa 3f800000"), 0, "floats are not allowed (32-bit"},
		{"double float", cborHex(t, "fb 3ff0000000000000"), 0, "floats are not allowed (64-bit"},
		{"float in map", cborCat(cborHex(t, "a1"), cborText("a"), cborHex(t, "fb 0000000000000000")), 3, "floats are not allowed"},
		{"undefined", cborHex(t, "f7"), 0, "undefined is not allowed"},
		{"simple 16", cborHex(t, "f0"), 0, "simple value 16 is not allowed"},
		{"simple one-byte", cborHex(t, "f8 20"), 0, "simple values are not allowed"},
		{"break", cborHex(t, "ff"), 0, "unexpected break code"},
		{"reserved info", cborHex(t, "1c"), 0, "reserved additional information 28"},
		{"indefinite map", cborHex(t, "bf ff"), 0, "indefinite-length map"},
		{"indefinite array", cborHex(t, "9f ff"), 0, "indefinite-length array"},
		{"indefinite string", cborHex(t, "7f ff"), 0, "indefinite-length string"},
		{"indefinite bytes", cborHex(t, "5f ff"), 0, "indefinite-length byte string"},
		{"non-minimal int 1 byte", cborHex(t, "18 17"), 0, "non-minimal encoding of integer 23"},
		{"non-minimal int 2 bytes", cborHex(t, "19 00ff"), 0, "non-minimal encoding of integer 255"},
		{"non-minimal int 4 bytes", cborHex(t, "1a 0000ffff"), 0, "non-minimal encoding of integer 65535"},
		{"non-minimal int 8 bytes", cborHex(t, "1b 00000000ffffffff"), 0, "non-minimal encoding of integer 4294967295"},
		{"non-minimal negative", cborHex(t, "38 00"), 0, "non-minimal encoding of negative integer 0"},
		{"non-minimal string length", cborHex(t, "78 03 616263"), 0, "non-minimal encoding of string 3"},
		{"non-minimal map length", cborHex(t, "b8 00"), 0, "non-minimal encoding of map 0"},
		{"non-minimal array in map", cborCat(cborHex(t, "a1"), cborText("a"), cborHex(t, "98 01 01")), 3, "non-minimal encoding of array 1"},
		{"int above int64", cborHex(t, "1b 8000000000000000"), 0, "above the int64 range"},
		{"int below int64", cborHex(t, "3b 8000000000000000"), 0, "below the int64 range"},
		{"tag 1", cborHex(t, "c1 00"), 0, "tag 1 is not allowed"},
		{"tag 43", cborHex(t, "d8 2b 40"), 0, "tag 43 is not allowed"},
		{"tag 42 non-minimal", cborCat(cborHex(t, "d9 002a"), link[2:]), 0, "non-minimal encoding of tag 42"},
		{"tag 42 over string", cborHex(t, "d8 2a 63 616263"), 2, "tag 42 must hold a byte string, not a string"},
		{"tag 42 no prefix", cborCat(cborHex(t, "d8 2a 58 24"), cborTestCID.Bytes()), 2, "0x00 multibase prefix"},
		{"tag 42 empty", cborHex(t, "d8 2a 40"), 2, "0x00 multibase prefix"},
		{"tag 42 bad version", cborHex(t, "d8 2a 43 00 02 71"), 4, "unsupported version 2"},
		{"tag 42 truncated cid", cborCat(cborHex(t, "d8 2a 58 24 00"), cborTestCID.Bytes()[:35]), 5, "invalid link"},
		{"tag 42 trailing", cborCat(cborHex(t, "d8 2a 58 26 00"), cborTestCID.Bytes(), cborHex(t, "00")), 2, "1 trailing bytes after the CID"},
		{"tag 42 at end", cborHex(t, "d8 2a"), 2, "unexpected end of input"},
		{"integer key", cborHex(t, "a1 01 02"), 1, "map key is an integer, not a string"},
		{"bytes key", cborHex(t, "a1 41 61 02"), 1, "map key is a byte string"},
		{"duplicate key", cborCat(cborHex(t, "a2"), cborText("a"), cborHex(t, "01"), cborText("a"), cborHex(t, "02")), 4, `duplicate map key "a"`},
		{"keys out of order", cborCat(cborHex(t, "a2"), cborText("b"), cborHex(t, "01"), cborText("a"), cborHex(t, "02")), 4, `map keys out of order ("a" after "b")`},
		{"longer key first", cborCat(cborHex(t, "a2"), cborText("bb"), cborHex(t, "01"), cborText("c"), cborHex(t, "02")), 5, `map keys out of order ("c" after "bb")`},
		{"invalid UTF-8 string", cborHex(t, "62 c328"), 0, "not valid UTF-8"},
		{"invalid UTF-8 key", cborHex(t, "a1 61 ff 01"), 1, "not valid UTF-8"},
		{"surrogate in string", cborHex(t, "63 eda080"), 0, "not valid UTF-8"},
		{"trailing bytes", cborHex(t, "01 02"), 1, "1 trailing bytes"},
		{"truncated string", cborHex(t, "62 61"), 0, "runs past the end of input"},
		{"truncated bytes", cborHex(t, "5a ffffffff 00"), 0, "runs past the end of input"},
		{"truncated header", cborHex(t, "19 01"), 0, "unexpected end of input in integer header"},
		{"truncated map", cborHex(t, "a2 61 61 01"), 0, "cannot fit"},
		{"missing map value", cborCat(cborHex(t, "a1"), cborText("abc")), 5, "unexpected end of input"},
		{"huge array claim", cborHex(t, "9a 00010000"), 0, "cannot fit in the 0 bytes left"},
		{"array over limit", cborHex(t, "9a 00020001"), 0, "exceeds the limit of 131072"},
		{"map over limit", cborHex(t, "ba 00020001"), 0, "exceeds the limit of 131072"},
		{"too deep", deep(MaxDepth + 1), MaxDepth, "nesting deeper than 32"},
		{"key too long", cborCat(cborHex(t, "a1"), cborText(longKey), cborHex(t, "01")), 1, "exceeds the limit of 8192"},
		{"$type integer", cborCat(cborHex(t, "a1"), cborText("$type"), cborHex(t, "01")), 0, "$type must be a string, not an integer"},
		{"$type empty", cborCat(cborHex(t, "a1"), cborText("$type"), cborHex(t, "60")), 0, "$type must not be empty"},
		{"$type null", cborCat(cborHex(t, "a1"), cborText("$type"), cborHex(t, "f6")), 0, "$type must be a string, not null"},
		{"blob without ref", cborCat(cborHex(t, "a3"), cborText("size"), cborHex(t, "01"), cborText("$type"), cborText("blob"),
			cborText("mimeType"), cborText("x")), 0, "blob: ref must be a link"},
		{"blob string size", cborCat(cborHex(t, "a4"), cborText("ref"), link, cborText("size"), cborText("1"), cborText("$type"),
			cborText("blob"), cborText("mimeType"), cborText("x")), 0, "blob: size must be an integer"},
		{"blob negative size", cborCat(cborHex(t, "a4"), cborText("ref"), link, cborText("size"), cborHex(t, "20"), cborText("$type"),
			cborText("blob"), cborText("mimeType"), cborText("x")), 0, "negative"},
		{"blob extra field", cborCat(cborHex(t, "a5"), cborText("ref"), link, cborText("size"), cborHex(t, "01"), cborText("$type"),
			cborText("blob"), cborText("extra1"), cborHex(t, "f6"), cborText("mimeType"), cborText("x")), 0, `unexpected field "extra1"`},
		{"nested error offset", cborCat(cborHex(t, "a1"), cborText("a"), cborHex(t, "82 01 f7")), 5, "undefined"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			v, err := DecodeCBOR(tc.in)
			if err == nil {
				t.Fatalf("accepted %x as %#v", tc.in, v)
			}
			var ce *CBORError
			if !errors.As(err, &ce) {
				t.Fatalf("error %v is not a *CBORError", err)
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %q does not mention %q", err, tc.want)
			}
			if ce.Offset != tc.off {
				t.Errorf("error %q at offset %d, want %d", err, ce.Offset, tc.off)
			}
			if !strings.HasPrefix(err.Error(), "data: cbor at byte ") {
				t.Errorf("error %q lacks the prefix", err)
			}
		})
	}

	// The limits themselves are allowed.
	if _, err := DecodeCBOR(deep(MaxDepth)); err != nil {
		t.Errorf("depth %d: %v", MaxDepth, err)
	}
	if _, err := DecodeCBOR(cborCat(cborHex(t, "a1"), cborText(okKey), cborHex(t, "01"))); err != nil {
		t.Errorf("key of %d bytes: %v", MaxKeyLen, err)
	}
	if v, err := DecodeCBOR(cborHex(t, "3b 7fffffffffffffff")); err != nil || v != int64(math.MinInt64) {
		t.Errorf("min int64: %v %v", v, err)
	}
	if v, err := DecodeCBOR(cborHex(t, "1b 7fffffffffffffff")); err != nil || v != int64(math.MaxInt64) {
		t.Errorf("max int64: %v %v", v, err)
	}
	long := cborCat(cborHex(t, "9a 00020000"), bytes.Repeat([]byte{0xf6}, MaxContainerLen))
	if v, err := DecodeCBOR(long); err != nil || len(v.([]any)) != MaxContainerLen {
		t.Errorf("array of %d: %v", MaxContainerLen, err)
	}
}

func TestCBORLegacyBlobNonCanonicalCID(t *testing.T) {
	// A legacy-looking map whose cid string is not in base32 stays a map,
	// so that re-encoding gives back the same bytes.
	z := "z" + base58.Encode(cborTestCID.Bytes())
	if _, err := ParseCID(z); err != nil {
		t.Fatal(err)
	}
	in := map[string]any{"b": map[string]any{"cid": z, "mimeType": "image/png"}}
	b, err := MarshalCBOR(in)
	if err != nil {
		t.Fatal(err)
	}
	v, err := DecodeCBOR(b)
	if err != nil || !reflect.DeepEqual(v, any(in)) {
		t.Fatalf("got %#v, %v", v, err)
	}
	// The canonical form is a legacy blob.
	in["b"] = map[string]any{"cid": cborTestCID.String(), "mimeType": "image/png"}
	b, _ = MarshalCBOR(in)
	m, err := UnmarshalCBOR(b)
	if err != nil {
		t.Fatal(err)
	}
	if blob, ok := m["b"].(Blob); !ok || !blob.Legacy || blob.Ref != cborTestCID {
		t.Errorf("legacy blob decoded as %#v", m["b"])
	}
}

func TestUnmarshalCBORTopLevel(t *testing.T) {
	_, err := UnmarshalCBOR(cborHex(t, "01"))
	if err == nil || !strings.Contains(err.Error(), "top-level item is an integer, not a map") {
		t.Errorf("integer at top level: %v", err)
	}
	_, err = UnmarshalCBOR(nil)
	if err == nil {
		t.Error("empty input accepted")
	}
	m, err := UnmarshalCBOR(cborHex(t, "a0"))
	if err != nil || m == nil || len(m) != 0 {
		t.Errorf("empty map: %v %v", m, err)
	}
	// A top-level blob stays a map.
	in := map[string]any{"$type": "blob", "ref": cborTestCID, "mimeType": "a/b", "size": int64(3)}
	b, err := MarshalCBOR(in)
	if err != nil {
		t.Fatal(err)
	}
	m, err = UnmarshalCBOR(b)
	if err != nil || !reflect.DeepEqual(m, in) {
		t.Errorf("top-level blob: %#v %v", m, err)
	}
}

// TestCBORSmallInputsAllocateLittle checks that a short input claiming huge
// lengths is refused before anything is allocated for it.
func TestCBORSmallInputsAllocateLittle(t *testing.T) {
	inputs := [][]byte{
		cborHex(t, "9a 00020000 f6"),
		cborHex(t, "ba 00020000 60 f6"),
		cborHex(t, "5b 7fffffffffffffff"),
		cborHex(t, "7a 7fffffff 61"),
		cborHex(t, "a1 7a 00001fff 61"),
	}
	for _, in := range inputs {
		var before, after runtime.MemStats
		runtime.ReadMemStats(&before)
		for i := 0; i < 100; i++ {
			if _, err := DecodeCBOR(in); err == nil {
				t.Fatalf("%x accepted", in)
			}
		}
		runtime.ReadMemStats(&after)
		// The input copy, the decoder and the error: a few hundred bytes
		// a run, nothing like the lengths claimed.
		if n := after.TotalAlloc - before.TotalAlloc; n > 100*4096 {
			t.Errorf("%x: %d bytes allocated in 100 runs", in, n)
		}
	}
}

func TestCBORGenericRoundTrip(t *testing.T) {
	values := []any{
		nil, true, false, int64(0), int64(23), int64(24), int64(255), int64(256), int64(65535), int64(65536),
		int64(MaxSafeInt), int64(MinSafeInt), int64(-1), int64(-24), int64(-25), int64(-256), int64(-257),
		"", "hello", "ünïcødé 🎉", strings.Repeat("x", 300), strings.Repeat("y", 70000),
		Bytes{}, Bytes{1, 2, 3}, Bytes(bytes.Repeat([]byte{7}, 1000)),
		cborTestCID, MustParseCID("QmY7Yh4UquoXHLPFo2XbhXkhBvFoPwmQUSa92pxnxjQuPU"),
		[]any{}, []any{int64(1), "two", nil, []any{true}},
		map[string]any{},
		map[string]any{"a": int64(1), "b": []any{"x"}, "aa": map[string]any{"": "empty key"}, "$type": "com.example.thing"},
		Blob{Ref: CIDForRaw([]byte("img")), MimeType: "image/png", Size: 1234},
		Blob{Ref: CIDForRaw([]byte("img")), MimeType: "image/png", Legacy: true},
		map[string]any{"img": Blob{Ref: CIDForRaw([]byte("img")), MimeType: "image/png", Size: 0}},
	}
	for _, v := range values {
		b, err := MarshalCBOR(v)
		if err != nil {
			t.Fatalf("encode %#v: %v", v, err)
		}
		got, err := DecodeCBOR(b)
		if err != nil {
			t.Fatalf("decode %#v (%x): %v", v, b, err)
		}
		if !reflect.DeepEqual(got, v) {
			t.Errorf("round trip of %#v gave %#v", v, got)
		}
		again, err := MarshalCBOR(got)
		if err != nil || !bytes.Equal(again, b) {
			t.Errorf("re-encoding %#v: %x, want %x (%v)", v, again, b, err)
		}
	}
}

func TestCBOREncodeExactBytes(t *testing.T) {
	cases := []struct {
		v    any
		want string
	}{
		{int64(0), "00"},
		{int64(23), "17"},
		{int64(24), "1818"},
		{int64(256), "190100"},
		{int64(65536), "1a00010000"},
		{int64(4294967296), "1b0000000100000000"},
		{int64(-1), "20"},
		{int64(-25), "3818"},
		{int(-500), "3901f3"},
		{uint8(200), "18c8"},
		{nil, "f6"},
		{true, "f5"},
		{false, "f4"},
		{"a", "6161"},
		{Bytes{1}, "4101"},
		{[]byte{}, "40"},
		{[]string{"a"}, "816161"},
		{map[string]string{"b": "x", "a": "y"}, "a26161617961626178"},
		{map[string]any{"bb": int64(1), "c": int64(2), "a": int64(3)}, "a3616103616302626262" + "01"},
		{(*CID)(nil), "f6"},
		{Blob{Ref: cborTestCID, MimeType: "m", Size: 5, Legacy: false},
			"a4" + "63726566" + hex.EncodeToString(cborLink()) + "6473697a6505" + "652474797065" + "64626c6f62" + "686d696d6554797065" + "616d"},
	}
	for _, tc := range cases {
		b, err := MarshalCBOR(tc.v)
		if err != nil {
			t.Errorf("%#v: %v", tc.v, err)
			continue
		}
		if got := hex.EncodeToString(b); got != tc.want {
			t.Errorf("%#v: got %s, want %s", tc.v, got, tc.want)
		}
	}
	legacy, err := MarshalCBOR(Blob{Ref: cborTestCID, MimeType: "m", Legacy: true})
	if err != nil {
		t.Fatal(err)
	}
	want := cborCat(cborHex(t, "a2"), cborText("cid"), cborText(cborTestCID.String()), cborText("mimeType"), cborText("m"))
	if !bytes.Equal(legacy, want) {
		t.Errorf("legacy blob: %x, want %x", legacy, want)
	}
}

type cborBadMarshaler struct{}

func (cborBadMarshaler) MarshalDAGCBOR(e *Encoder) error { return errors.New("refused by marshaler") }

func TestCBOREncodeRejects(t *testing.T) {
	deep := any("leaf")
	for i := 0; i < MaxDepth+1; i++ {
		deep = []any{deep}
	}
	cases := []struct {
		name string
		v    any
		want string
	}{
		{"float64", 1.5, "floats are not allowed"},
		{"float32 in map", map[string]any{"f": float32(1)}, "floats are not allowed"},
		{"int above safe", int64(MaxSafeInt + 1), "outside ±2^53-1"},
		{"int below safe", int64(MinSafeInt - 1), "outside ±2^53-1"},
		{"uint64 huge", uint64(math.MaxUint64), "outside ±2^53-1"},
		{"invalid UTF-8", "a\xffb", "not valid UTF-8"},
		{"invalid UTF-8 key", map[string]any{"\xff": int64(1)}, "not valid UTF-8"},
		{"long key", map[string]any{strings.Repeat("k", MaxKeyLen+1): int64(1)}, "map key of 8193 bytes"},
		{"undefined CID", CID{}, "undefined CID"},
		{"$type int", map[string]any{"$type": int64(1)}, "$type must be a string"},
		{"$type empty", map[string]any{"$type": ""}, "$type must not be empty"},
		{"blob map without ref", map[string]any{"$type": "blob", "mimeType": "a", "size": int64(1)}, "blob: ref must be a link"},
		{"blob negative size", Blob{Ref: cborTestCID, MimeType: "a", Size: -1}, "negative"},
		{"blob undefined ref", Blob{MimeType: "a"}, "undefined ref"},
		{"too deep", deep, "nesting deeper than 32"},
		{"channel", make(chan int), "not supported"},
		{"marshaler error", cborBadMarshaler{}, "refused by marshaler"},
		{"array too long", make([]any, MaxContainerLen+1), "array of 131073 items"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			b, err := MarshalCBOR(tc.v)
			if err == nil {
				t.Fatalf("encoded as %x", b)
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %q does not mention %q", err, tc.want)
			}
		})
	}
	// The full int64 range is allowed when re-encoding decoded data.
	b, err := marshalCBOR(int64(math.MinInt64), true)
	if err != nil || hex.EncodeToString(b) != "3b7fffffffffffffff" {
		t.Errorf("full-range encode: %x %v", b, err)
	}
}

func TestDecoderLowLevel(t *testing.T) {
	e := NewEncoder(nil)
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(e.WriteMapHeader(6))
	must(e.WriteKey("a"))
	must(e.WriteInt(-7))
	must(e.WriteKey("b"))
	e.WriteBool(true)
	must(e.WriteKey("c"))
	e.WriteNull()
	must(e.WriteKey("d"))
	e.WriteBytes([]byte{9})
	must(e.WriteKey("e"))
	must(e.WriteCID(cborTestCID))
	must(e.WriteKey("list"))
	must(e.WriteArrayHeader(1))
	must(e.WriteString("x"))

	d := NewDecoder(e.Bytes())
	n, err := d.ReadMapHeader()
	if err != nil || n != 6 {
		t.Fatalf("map header %d %v", n, err)
	}
	var prev []byte
	key := func(want string) {
		t.Helper()
		k, err := d.ReadMapKey(prev)
		if err != nil || string(k) != want {
			t.Fatalf("key %q %v, want %q", k, err, want)
		}
		prev = k
	}
	key("a")
	if d.PeekKind() != KindInt {
		t.Error("kind of -7")
	}
	if v, err := d.ReadInt(); err != nil || v != -7 {
		t.Errorf("int %d %v", v, err)
	}
	key("b")
	if v, err := d.ReadBool(); err != nil || !v {
		t.Errorf("bool %v %v", v, err)
	}
	key("c")
	if !d.PeekNull() || d.ReadNull() != nil {
		t.Error("null")
	}
	key("d")
	if v, err := d.ReadBytes(); err != nil || !bytes.Equal(v, []byte{9}) {
		t.Errorf("bytes %v %v", v, err)
	}
	key("e")
	if d.PeekKind() != KindLink {
		t.Error("kind of link")
	}
	if v, err := d.ReadCID(); err != nil || v != cborTestCID {
		t.Errorf("cid %v %v", v, err)
	}
	key("list")
	if v, err := d.ReadAny(); err != nil || !reflect.DeepEqual(v, []any{"x"}) {
		t.Errorf("list %v %v", v, err)
	}
	if err := d.Finish(); err != nil {
		t.Error(err)
	}
	if d.Offset() != len(e.Bytes()) || d.Remaining() != 0 {
		t.Errorf("offset %d of %d", d.Offset(), len(e.Bytes()))
	}

	// Type mismatches name what was expected and found.
	d = NewDecoder(cborHex(t, "61 61"))
	if _, err := d.ReadInt(); err == nil || !strings.Contains(err.Error(), "expected an integer, found a string") {
		t.Errorf("ReadInt on a string: %v", err)
	}
	d = NewDecoder(cborHex(t, "01"))
	if _, err := d.ReadString(); err == nil || !strings.Contains(err.Error(), "expected a string, found an integer") {
		t.Errorf("ReadString on an int: %v", err)
	}
	d = NewDecoder(cborHex(t, "f6"))
	if _, err := d.ReadBool(); err == nil || !strings.Contains(err.Error(), "expected a boolean, found null") {
		t.Errorf("ReadBool on null: %v", err)
	}
	d = NewDecoder(cborHex(t, "a0"))
	if _, err := d.ReadBlob(); err == nil || !strings.Contains(err.Error(), "map is not a blob") {
		t.Errorf("ReadBlob on {}: %v", err)
	}
	// Empty keys sort first and are told apart from "no previous key".
	d = NewDecoder(cborCat(cborHex(t, "a2"), cborText(""), cborHex(t, "01"), cborText("a"), cborHex(t, "02")))
	d.ReadMapHeader()
	k, err := d.ReadMapKey(nil)
	if err != nil || k == nil || len(k) != 0 {
		t.Fatalf("empty key: %v %v", k, err)
	}
	d.ReadInt()
	if _, err := d.ReadMapKey(k); err != nil {
		t.Errorf("key after the empty key: %v", err)
	}
}
