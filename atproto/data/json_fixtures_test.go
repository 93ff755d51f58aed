package data

import (
	"bytes"
	"encoding/base64"
	"strings"
	"testing"
)

// TestJSONFixtures checks the JSON reader and writer against the DAG-CBOR
// fixtures: the JSON must encode to exactly the given CBOR, with the given
// CID, and must survive a JSON round trip.
func TestJSONFixtures(t *testing.T) {
	for i, v := range loadJSONVectors(t, "data-model-fixtures.json") {
		m, err := ParseJSON(v.JSON)
		if err != nil {
			t.Errorf("fixture %d: ParseJSON: %v", i, err)
			continue
		}
		want, err := base64.RawStdEncoding.DecodeString(strings.TrimRight(v.CBORBase64, "="))
		if err != nil {
			t.Fatalf("fixture %d: bad cbor_base64: %v", i, err)
		}
		got, err := MarshalCBOR(m)
		if err != nil {
			t.Errorf("fixture %d: MarshalCBOR: %v", i, err)
		} else if !bytes.Equal(got, want) {
			t.Errorf("fixture %d: CBOR\n got %x\nwant %x", i, got, want)
		} else if c := CIDForCBOR(got).String(); c != v.CID {
			t.Errorf("fixture %d: CID %s, want %s", i, c, v.CID)
		}

		out, err := MarshalJSON(m)
		if err != nil {
			t.Errorf("fixture %d: MarshalJSON: %v", i, err)
			continue
		}
		back, err := ParseJSON(out)
		if err != nil {
			t.Errorf("fixture %d: ParseJSON(MarshalJSON): %v\n%s", i, err, out)
			continue
		}
		orig, _ := ParseJSON(v.JSON)
		if !jsonValueEqual(orig, back) {
			t.Errorf("fixture %d: JSON round trip changed the value:\n%s\n%s", i, v.JSON, out)
		}
	}
}
