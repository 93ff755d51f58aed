package data

import (
	"bytes"
	"encoding/json"
	"os"
	"testing"

	"github.com/welkin-atproto/welkin/internal/interoptest"
)

// jsonValueEqual compares two values of the generic data model. Nil and
// empty Bytes are the same value.
func jsonValueEqual(a, b any) bool {
	switch x := a.(type) {
	case map[string]any:
		y, ok := b.(map[string]any)
		if !ok || len(x) != len(y) {
			return false
		}
		for k, v := range x {
			w, ok := y[k]
			if !ok || !jsonValueEqual(v, w) {
				return false
			}
		}
		return true
	case []any:
		y, ok := b.([]any)
		if !ok || len(x) != len(y) {
			return false
		}
		for i := range x {
			if !jsonValueEqual(x[i], y[i]) {
				return false
			}
		}
		return true
	case Bytes:
		y, ok := b.(Bytes)
		return ok && bytes.Equal(x, y)
	case CID, Blob, string, int64, bool, nil:
		return a == b
	default:
		return false
	}
}

// jsonVector is one entry of the data-model vector files.
type jsonVector struct {
	Note       string          `json:"note"`
	JSON       json.RawMessage `json:"json"`
	CBORBase64 string          `json:"cbor_base64"`
	CID        string          `json:"cid"`
}

func loadJSONVectors(t testing.TB, name string) []jsonVector {
	t.Helper()
	raw, err := os.ReadFile(interoptest.File(t, "data-model/"+name))
	if err != nil {
		t.Fatal(err)
	}
	var vs []jsonVector
	if err := json.Unmarshal(raw, &vs); err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	if len(vs) == 0 {
		t.Fatalf("%s holds no vectors", name)
	}
	return vs
}

// mustParseJSON parses a document that a test expects to be valid.
func mustParseJSON(t testing.TB, s string) map[string]any {
	t.Helper()
	m, err := ParseJSON([]byte(s))
	if err != nil {
		t.Fatalf("ParseJSON(%s): %v", s, err)
	}
	return m
}
