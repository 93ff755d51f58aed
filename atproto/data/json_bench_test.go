package data

import (
	"encoding/json"
	"testing"
)

// benchPostJSON is a typical app.bsky.feed.post as a client sends it.
var benchPostJSON = []byte(`{
  "$type": "app.bsky.feed.post",
  "text": "Just shipped a new release of the atproto toolkit! Faster JSON parsing, stricter validation and better errors. Details here: https://example.com/blog/release",
  "createdAt": "2024-11-25T15:18:42.123Z",
  "langs": ["en"],
  "facets": [
    {
      "index": {"byteStart": 125, "byteEnd": 157},
      "features": [
        {"$type": "app.bsky.richtext.facet#link", "uri": "https://example.com/blog/release"}
      ]
    }
  ],
  "reply": {
    "root": {
      "uri": "at://did:plc:z72i7hdynmk6r22z27h6tvur/app.bsky.feed.post/3kgcsgz3dqa2p",
      "cid": "bafyreidfayvfuwqa7qlnopdjiqrxzs6blmoeu4rujcjtnci5beludirz2a"
    },
    "parent": {
      "uri": "at://did:plc:ewvi7nxzyoun6zhxrhs64oiz/app.bsky.feed.post/3kgcu2nwa7s2o",
      "cid": "bafyreihldkhcwijkde7gx4rpkkuw7pl6lbyu5gieunyc7ihactn5bkd2nm"
    }
  }
}`)

func BenchmarkParseJSONPost(b *testing.B) {
	b.ReportAllocs()
	b.SetBytes(int64(len(benchPostJSON)))
	for b.Loop() {
		if _, err := ParseJSON(benchPostJSON); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkMarshalJSONPost(b *testing.B) {
	m, err := ParseJSON(benchPostJSON)
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := MarshalJSON(m); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkParseJSONPostStdlib is the baseline: encoding/json into
// map[string]any, without even the data-model conversion.
func BenchmarkParseJSONPostStdlib(b *testing.B) {
	b.ReportAllocs()
	b.SetBytes(int64(len(benchPostJSON)))
	for b.Loop() {
		var m map[string]any
		if err := json.Unmarshal(benchPostJSON, &m); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkMarshalJSONPostStdlib(b *testing.B) {
	var m map[string]any
	if err := json.Unmarshal(benchPostJSON, &m); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := json.Marshal(m); err != nil {
			b.Fatal(err)
		}
	}
}
