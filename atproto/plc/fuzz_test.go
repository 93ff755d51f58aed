package plc

import (
	"bytes"
	"reflect"
	"testing"
)

func FuzzParseOperationJSON(f *testing.F) {
	for _, v := range []vecLog{vecLegacyDholms(), vecNullificationAt72h(), vecTombstone(), vecEmptyRotationKeys()} {
		for _, e := range v.entries {
			js, err := e.op.MarshalJSON()
			if err != nil {
				f.Fatal(err)
			}
			f.Add(js)
		}
	}
	f.Add([]byte(`{"type":"plc_operation","rotationKeys":[],"verificationMethods":{},"alsoKnownAs":[],"services":{"a":{"type":"t","endpoint":"<&>"}},"prev":null}`))
	f.Add([]byte(`{"type":"create","signingKey":"","recoveryKey":"","handle":"\u0000","service":"","prev":null,"sig":"x"}`))
	f.Add([]byte(`{"type":"plc_tombstone","prev":"bafyreifafe44xylxagcom47xb3lrya5pysu3b7zfjmmmitiuimhmgmerze"}`))
	f.Fuzz(func(t *testing.T, in []byte) {
		op, err := ParseOperationJSON(in)
		if err != nil {
			if op != nil {
				t.Fatal("non-nil op with error")
			}
			return
		}
		out, err := op.MarshalJSON()
		if err != nil {
			t.Fatalf("parsed op does not serialize: %v", err)
		}
		again, err := ParseOperationJSON(out)
		if err != nil {
			t.Fatalf("re-parse of %s: %v", out, err)
		}
		if !reflect.DeepEqual(op, again) {
			t.Fatalf("round trip differs:\n%#v\n%#v", op, again)
		}
		out2, err := again.MarshalJSON()
		if err != nil || !bytes.Equal(out, out2) {
			t.Fatalf("JSON not stable: %s vs %s (%v)", out, out2, err)
		}
		u1, err1 := op.UnsignedBytes()
		u2, err2 := again.UnsignedBytes()
		if (err1 == nil) != (err2 == nil) || !bytes.Equal(u1, u2) {
			t.Fatalf("CBOR differs: %v %v", err1, err2)
		}
		// Validation must not panic either.
		_, _ = VerifySigDIDKeys(op, rotationKeysOf(op))
		_ = CheckNewOpLimits(op)
		_, _ = DIDForGenesis(op)
	})
}
