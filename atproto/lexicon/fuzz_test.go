package lexicon

import (
	"os"
	"testing"

	"github.com/welkin-atproto/welkin/atproto/data"
)

func FuzzParseSchemaFile(f *testing.F) {
	f.Add([]byte(testSchema))
	f.Add([]byte(`{"lexicon":1,"id":"com.example.x","defs":{"a":{"type":"token"}}}`))
	f.Add([]byte(`{"lexicon":1,"id":"com.example.x","defs":{"main":{"type":"query","parameters":{"type":"params","properties":{"a":{"type":"array","items":{"type":"integer"}}}}}}}`))
	if b, err := os.ReadFile("testdata/corpus.json"); err == nil {
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		sf, err := ParseSchemaFile(b)
		if err != nil {
			if sf != nil {
				t.Fatal("schema returned with an error")
			}
			return
		}
		// A parsed schema must link (or fail to) and validate without
		// panicking.
		c := NewCatalog()
		if err := c.Add(sf); err != nil {
			t.Fatal(err)
		}
		_ = c.Link()
		for _, name := range sf.DefNames {
			d := sf.Defs[name]
			_ = c.Validate(d.Ref(), map[string]any{"$type": d.Ref(), "a": int64(1), "b": []any{"x"}})
			_, _ = c.ValidateQueryParams(d.Ref(), map[string][]string{"a": {"1"}})
		}
	})
}

func FuzzValidateRecord(f *testing.F) {
	f.Add([]byte(benchPostJSON))
	f.Add([]byte(`{"$type":"app.bsky.feed.post","text":"x","createdAt":"2024-01-01T00:00:00Z","embed":{"$type":"app.bsky.embed.recordWithMedia"}}`))
	f.Add([]byte(`{"$type":"app.bsky.feed.post","facets":[{"features":[{"$type":"x.y.z"}]}]}`))
	c := sharedCatalog(f)
	f.Fuzz(func(t *testing.T, b []byte) {
		rec, err := data.ParseJSON(b)
		if err != nil {
			return
		}
		for _, flags := range []Flags{0, Strict, Lenient} {
			_ = c.ValidateRecordFlags("app.bsky.feed.post", rec, flags)
		}
	})
}
