package bench

import (
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/bluesky-social/indigo/atproto/atdata"
	indigolexicon "github.com/bluesky-social/indigo/atproto/lexicon"

	"github.com/welkin-atproto/welkin/atproto/data"
	"github.com/welkin-atproto/welkin/atproto/lexicon"
)

// lexiconPostJSON is a typical app.bsky.feed.post to validate: a reply with
// a link and a mention facet, and an images embed holding a blob.
const lexiconPostJSON = `{
  "$type": "app.bsky.feed.post",
  "text": "Reading the repository spec again tonight with @alice.example.com: the MST layout is simple once you see the key heights. Notes: https://example.com/notes/mst",
  "createdAt": "2026-11-25T14:03:11.482Z",
  "langs": ["en"],
  "facets": [
    {
      "index": {"byteStart": 47, "byteEnd": 65},
      "features": [{"$type": "app.bsky.richtext.facet#mention", "did": "did:plc:ewvi7nxzyoun6zhxrhs64oiz"}]
    },
    {
      "index": {"byteStart": 129, "byteEnd": 158},
      "features": [{"$type": "app.bsky.richtext.facet#link", "uri": "https://example.com/notes/mst"}]
    }
  ],
  "reply": {
    "root": {"uri": "at://did:plc:ewvi7nxzyoun6zhxrhs64oiz/app.bsky.feed.post/3l3qo2vuowo2b", "cid": "bafyreidfayvfuwqa7qlnopdjiqrxzs6blmoeu4rujcjtnci5beludirz2a"},
    "parent": {"uri": "at://did:plc:ewvi7nxzyoun6zhxrhs64oiz/app.bsky.feed.post/3l3qo2vutsw2b", "cid": "bafyreidfayvfuwqa7qlnopdjiqrxzs6blmoeu4rujcjtnci5beludirz2a"}
  },
  "embed": {
    "$type": "app.bsky.embed.images",
    "images": [{
      "alt": "A hand-drawn Merkle Search Tree with four layers",
      "image": {"$type": "blob", "ref": {"$link": "bafkreid5r2qzxkyhk2w7oinv5nxvd2yoto2jgnuajlmpb5jcvryrul2a7e"}, "mimeType": "image/jpeg", "size": 482113},
      "aspectRatio": {"width": 1600, "height": 1200}
    }]
  }
}`

const lexiconCollection = "app.bsky.feed.post"

// lexiconsDir returns the lexicons shared by the Welkin projects
// (../shared/lexicons beside the repository root, or WELKIN_LEXICONS_DIR).
// It skips tb loudly when they are absent, and fails it when CI=true.
func lexiconsDir(tb testing.TB) string {
	tb.Helper()
	dir := os.Getenv("WELKIN_LEXICONS_DIR")
	if dir == "" {
		// Tests run in bench/, one level below the repository root.
		dir = filepath.Join("..", "..", "shared", "lexicons")
	}
	if st, err := os.Stat(dir); err != nil || !st.IsDir() {
		msg := "LEXICON SCHEMAS MISSING: " + dir + " not found; the lexicon benchmark and its agreement test did not run"
		if os.Getenv("CI") == "true" {
			tb.Fatal(msg)
		}
		tb.Skip(msg)
	}
	return dir
}

var (
	lexCatalogsOnce sync.Once
	welkinLexCat    *lexicon.Catalog
	indigoLexCat    *indigolexicon.BaseCatalog
	lexCatalogsErr  error
)

// lexCatalogs loads the shared lexicons into both implementations' catalogs,
// once per test binary.
func lexCatalogs(tb testing.TB) (*lexicon.Catalog, *indigolexicon.BaseCatalog) {
	tb.Helper()
	dir := lexiconsDir(tb)
	lexCatalogsOnce.Do(func() {
		welkinLexCat, lexCatalogsErr = lexicon.LoadCatalogDir(dir)
		if lexCatalogsErr != nil {
			return
		}
		indigoLexCat = indigolexicon.NewBaseCatalog()
		lexCatalogsErr = indigoLexCat.LoadDirectory(dir)
	})
	if lexCatalogsErr != nil {
		tb.Fatalf("loading %s: %v", dir, lexCatalogsErr)
	}
	return welkinLexCat, indigoLexCat
}

// lexRecords parses a record's JSON into each implementation's generic form.
func lexRecords(tb testing.TB, js string) (map[string]any, any) {
	tb.Helper()
	w, err := data.ParseJSON([]byte(js))
	if err != nil {
		tb.Fatalf("welkin data.ParseJSON: %v", err)
	}
	i, err := atdata.UnmarshalJSON([]byte(js))
	if err != nil {
		tb.Fatalf("indigo atdata.UnmarshalJSON: %v", err)
	}
	return w, i
}

// TestLexiconAgreement checks both validators accept the benchmark post and
// reject the same broken variants of it.
func TestLexiconAgreement(t *testing.T) {
	wcat, icat := lexCatalogs(t)
	w, i := lexRecords(t, lexiconPostJSON)
	if err := wcat.ValidateRecord(lexiconCollection, w); err != nil {
		t.Fatalf("welkin rejects the benchmark post: %v", err)
	}
	if err := indigolexicon.ValidateRecord(icat, i, lexiconCollection, 0); err != nil {
		t.Fatalf("indigo rejects the benchmark post: %v", err)
	}

	for _, tc := range []struct {
		name     string
		json     string
		wantPath string // where Welkin's error must point
	}{
		{
			// 301 graphemes in 301 bytes: under maxLength (3000), over
			// maxGraphemes (300).
			name:     "text over maxGraphemes",
			json:     replaceOnce(t, lexiconPostJSON, `"text": "Reading`, `"text": "`+strings.Repeat("a", 301)+`Reading`),
			wantPath: "text",
		},
		{
			name:     "bad datetime",
			json:     replaceOnce(t, lexiconPostJSON, `"2026-11-25T14:03:11.482Z"`, `"25 November 2026"`),
			wantPath: "createdAt",
		},
		{
			name:     "missing createdAt",
			json:     replaceOnce(t, lexiconPostJSON, `"createdAt": "2026-11-25T14:03:11.482Z",`, ``),
			wantPath: "createdAt",
		},
		{
			name:     "reply root not an AT-URI",
			json:     replaceOnce(t, lexiconPostJSON, `"at://did:plc:ewvi7nxzyoun6zhxrhs64oiz/app.bsky.feed.post/3l3qo2vuowo2b"`, `"https://example.com/post/1"`),
			wantPath: "reply.root.uri",
		},
		{
			name:     "image embed holding a video",
			json:     replaceOnce(t, lexiconPostJSON, `"image/jpeg"`, `"video/mp4"`),
			wantPath: "embed.images[0].image",
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			w, i := lexRecords(t, tc.json)
			werr := wcat.ValidateRecord(lexiconCollection, w)
			ierr := indigolexicon.ValidateRecord(icat, i, lexiconCollection, 0)
			if werr == nil {
				t.Errorf("welkin accepts it")
			} else if !strings.HasPrefix(werr.Error(), tc.wantPath+": ") {
				t.Errorf("welkin's error %q does not point at %s", werr, tc.wantPath)
			}
			if ierr == nil {
				t.Errorf("indigo accepts it")
			}
		})
	}
}

func replaceOnce(tb testing.TB, s, old, repl string) string {
	tb.Helper()
	if strings.Count(s, old) != 1 {
		tb.Fatalf("%q does not occur exactly once", old)
	}
	return strings.Replace(s, old, repl, 1)
}

func BenchmarkLexiconValidatePost(b *testing.B) {
	wcat, icat := lexCatalogs(b)
	w, i := lexRecords(b, lexiconPostJSON)
	b.Run("impl=welkin", func(b *testing.B) {
		// The first validation links the catalog; keep it out of the timing.
		if err := wcat.ValidateRecord(lexiconCollection, w); err != nil {
			b.Fatal(err)
		}
		b.ReportAllocs()
		for b.Loop() {
			if err := wcat.ValidateRecord(lexiconCollection, w); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("impl=indigo", func(b *testing.B) {
		if err := indigolexicon.ValidateRecord(icat, i, lexiconCollection, 0); err != nil {
			b.Fatal(err)
		}
		b.ReportAllocs()
		for b.Loop() {
			if err := indigolexicon.ValidateRecord(icat, i, lexiconCollection, 0); err != nil {
				b.Fatal(err)
			}
		}
	})
}
