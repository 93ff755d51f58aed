package data

import (
	"bytes"
	"reflect"
	"testing"

	"github.com/welkin-atproto/welkin/internal/base58"
)

func FuzzDecodeCBOR(f *testing.F) {
	for _, fx := range loadCBORFixtures(f) {
		if b, err := cborB64(fx.CBORBase64); err == nil {
			f.Add(b)
		}
	}
	post, _ := MarshalCBOR(cborSamplePost())
	f.Add(post)
	legacy, _ := MarshalCBOR(map[string]any{"img": Blob{Ref: CIDForRaw([]byte("i")), MimeType: "a/b", Legacy: true}})
	f.Add(legacy)
	zLegacy, _ := MarshalCBOR(map[string]any{"cid": "z" + base58.Encode(CIDForRaw([]byte("i")).Bytes()), "mimeType": "a/b"})
	f.Add(zLegacy)
	for _, s := range []string{
		"a0", "80", "f6", "f5", "00", "3b7fffffffffffffff", "1b7fffffffffffffff", "60", "40",
		"a2616101616202", "a1652474797065626f6b", "8181818180", "d82a4100", "f93c00", "bf61610100ff",
	} {
		f.Add(cborHex(f, s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		v, err := DecodeCBOR(b)
		if err != nil {
			if _, ok := err.(*CBORError); !ok {
				t.Fatalf("error %v is not a *CBORError", err)
			}
			return
		}
		out, err := marshalCBOR(v, true)
		if err != nil {
			t.Fatalf("%x decoded as %#v but does not encode: %v", b, v, err)
		}
		if !bytes.Equal(out, b) {
			t.Fatalf("%x decoded as %#v re-encodes as %x", b, v, out)
		}
		// The copying decoder and the typed path into any agree.
		d := NewDecoder(b)
		v2, err := d.ReadAny()
		if err != nil || d.Finish() != nil || !reflect.DeepEqual(v, v2) {
			t.Fatalf("%x: NewDecoder disagrees: %v", b, err)
		}
		var v3 any
		if err := UnmarshalCBORInto(b, &v3); err != nil || !reflect.DeepEqual(v, v3) {
			t.Fatalf("%x: UnmarshalCBORInto disagrees: %v", b, err)
		}
		if m, ok := v.(map[string]any); ok {
			if _, err := UnmarshalCBOR(b); err != nil {
				t.Fatalf("%x: DecodeCBOR gave a map but UnmarshalCBOR fails: %v", b, err)
			}
			var p cborPost
			_ = UnmarshalCBORInto(b, &p) // must not panic
			_ = m
		}
	})
}
