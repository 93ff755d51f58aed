package data

import (
	"encoding/json"
	"os"
	"path/filepath"
	"testing"
)

// jsonFuzzSeeds returns the JSON of the data-model vectors, when the
// vector folder is there; the fuzz target must not be skipped without it.
func jsonFuzzSeeds() [][]byte {
	root := os.Getenv("WELKIN_INTEROP_DIR")
	if root == "" {
		root = filepath.Join("..", "..", "..", "shared", "interop")
	}
	var seeds [][]byte
	for _, name := range []string{"data-model-valid.json", "data-model-invalid.json", "data-model-fixtures.json"} {
		raw, err := os.ReadFile(filepath.Join(root, "data-model", name))
		if err != nil {
			continue
		}
		var vs []jsonVector
		if json.Unmarshal(raw, &vs) != nil {
			continue
		}
		for _, v := range vs {
			seeds = append(seeds, v.JSON)
		}
	}
	return seeds
}

func FuzzParseJSON(f *testing.F) {
	for _, s := range jsonFuzzSeeds() {
		f.Add(s)
	}
	for _, s := range realisticRecords {
		f.Add([]byte(s))
	}
	for _, s := range []string{
		`{"a":1e2,"b":-0.0,"c":"\ud83d\ude00","d":[[],{}],"e":{"$bytes":"AQI="}}`,
		`{"x":{"cid":"` + testBlobCID + `","mimeType":"a"}}`,
		`{"$type":"x","y":{"$link":"` + testCBORCID + `"}}`,
		`{"a":"\u2028<&>"}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		m, err := ParseJSON(in)
		if err != nil {
			if _, ok := err.(*JSONError); !ok {
				t.Fatalf("error of type %T: %v", err, err)
			}
			return
		}
		out, err := MarshalJSON(m)
		if err != nil {
			t.Fatalf("MarshalJSON of accepted input failed: %v\ninput %q", err, in)
		}
		back, err := ParseJSON(out)
		if err != nil {
			t.Fatalf("output does not read back: %v\ninput  %q\noutput %q", err, in, out)
		}
		if !jsonValueEqual(m, back) {
			t.Fatalf("round trip changed the value\ninput  %q\noutput %q", in, out)
		}
		out2, err := MarshalJSON(back)
		if err != nil || string(out2) != string(out) {
			t.Fatalf("output not stable: %v\n%q\n%q", err, out, out2)
		}
		if !json.Valid(out) {
			t.Fatalf("output is not valid JSON: %q", out)
		}
	})
}
