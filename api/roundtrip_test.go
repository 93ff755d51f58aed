package api_test

import (
	"bytes"
	"encoding/json"
	"strings"
	"sync"
	"testing"

	"github.com/welkin-atproto/welkin/api"
	"github.com/welkin-atproto/welkin/api/atproto"
	"github.com/welkin-atproto/welkin/api/bsky"
	"github.com/welkin-atproto/welkin/api/lexutil"
	"github.com/welkin-atproto/welkin/atproto/data"
	"github.com/welkin-atproto/welkin/atproto/lexicon"
)

type record interface {
	lexutil.Marshaler
	lexutil.Unmarshaler
}

// newRecord returns an empty typed value for each app.bsky record collection.
var newRecord = map[string]func() record{
	"app.bsky.feed.post":         func() record { return new(bsky.FeedPost) },
	"app.bsky.feed.like":         func() record { return new(bsky.FeedLike) },
	"app.bsky.feed.repost":       func() record { return new(bsky.FeedRepost) },
	"app.bsky.feed.threadgate":   func() record { return new(bsky.FeedThreadgate) },
	"app.bsky.feed.postgate":     func() record { return new(bsky.FeedPostgate) },
	"app.bsky.feed.generator":    func() record { return new(bsky.FeedGenerator) },
	"app.bsky.actor.profile":     func() record { return new(bsky.ActorProfile) },
	"app.bsky.graph.follow":      func() record { return new(bsky.GraphFollow) },
	"app.bsky.graph.block":       func() record { return new(bsky.GraphBlock) },
	"app.bsky.graph.list":        func() record { return new(bsky.GraphList) },
	"app.bsky.graph.listitem":    func() record { return new(bsky.GraphListitem) },
	"app.bsky.graph.listblock":   func() record { return new(bsky.GraphListblock) },
	"app.bsky.graph.starterpack": func() record { return new(bsky.GraphStarterpack) },
	"app.bsky.labeler.service":   func() record { return new(bsky.LabelerService) },
}

var (
	blobCID = data.CIDForRaw([]byte("an image")).String()
	blob2   = data.CIDForRaw([]byte("another image")).String()
	postCID = data.CIDForCBOR([]byte{0xa0}).String()
)

const (
	did     = "did:plc:ewvi7nxzyoun6zhxrhs64oiz"
	postURI = "at://did:plc:ewvi7nxzyoun6zhxrhs64oiz/app.bsky.feed.post/3l3qo2vuowo2b"
	listURI = "at://did:plc:ewvi7nxzyoun6zhxrhs64oiz/app.bsky.graph.list/3l3qo2vuowo2c"
	now     = "2024-09-01T12:34:56.789Z"
)

func expand(s string) string {
	return strings.NewReplacer("BLOB2", blob2, "BLOB", blobCID, "PCID", postCID, "POSTURI", postURI, "LISTURI", listURI, "DID", did, "NOW", now).Replace(s)
}

func strongRef() string { return `{"uri":"POSTURI","cid":"PCID"}` }

func image(alt string) string {
	return `{"alt":"` + alt + `","image":{"$type":"blob","ref":{"$link":"BLOB"},"mimeType":"image/jpeg","size":123456},"aspectRatio":{"width":1200,"height":800}}`
}

// corpus holds realistic records of every app.bsky collection.
func corpus() map[string]string {
	images := `{"$type":"app.bsky.embed.images","images":[` + image("a cat") + `,` + image("") + `]}`
	external := `{"$type":"app.bsky.embed.external","external":{"uri":"https://example.com/article","title":"An article","description":"About things","thumb":{"$type":"blob","ref":{"$link":"BLOB2"},"mimeType":"image/png","size":4096}}}`
	video := `{"$type":"app.bsky.embed.video","video":{"$type":"blob","ref":{"$link":"BLOB"},"mimeType":"video/mp4","size":1048576},"alt":"a clip","aspectRatio":{"width":16,"height":9},"captions":[{"lang":"en","file":{"$type":"blob","ref":{"$link":"BLOB2"},"mimeType":"text/vtt","size":300}}]}`
	rec := `{"$type":"app.bsky.embed.record","record":` + strongRef() + `}`
	facets := `[{"index":{"byteStart":0,"byteEnd":6},"features":[{"$type":"app.bsky.richtext.facet#mention","did":"DID"}]},` +
		`{"index":{"byteStart":7,"byteEnd":26},"features":[{"$type":"app.bsky.richtext.facet#link","uri":"https://example.com"}]},` +
		`{"index":{"byteStart":27,"byteEnd":33},"features":[{"$type":"app.bsky.richtext.facet#tag","tag":"golang"}]}]`
	post := func(extra string) string {
		return `{"$type":"app.bsky.feed.post","text":"@alice https://example.com #golang","createdAt":"NOW","langs":["en","fr"]` + extra + `}`
	}
	selfLabels := `"labels":{"$type":"com.atproto.label.defs#selfLabels","values":[{"val":"nudity"}]}`
	return map[string]string{
		"post-facets":          post(`,"facets":` + facets + `,"tags":["a","b"]`),
		"post-reply":           post(`,"reply":{"root":` + strongRef() + `,"parent":` + strongRef() + `}`),
		"post-images":          post(`,"embed":` + images + `,` + selfLabels),
		"post-external":        post(`,"embed":` + external),
		"post-video":           post(`,"embed":` + video),
		"post-record":          post(`,"embed":` + rec),
		"post-recordwithmedia": post(`,"embed":{"$type":"app.bsky.embed.recordWithMedia","record":` + rec + `,"media":` + images + `}`),
		"post-rwm-video":       post(`,"embed":{"$type":"app.bsky.embed.recordWithMedia","record":` + rec + `,"media":` + video + `}`),
		"post-rwm-external":    post(`,"embed":{"$type":"app.bsky.embed.recordWithMedia","record":` + rec + `,"media":` + external + `}`),
		"profile": `{"$type":"app.bsky.actor.profile","displayName":"Alice","description":"Hello, world","avatar":{"$type":"blob","ref":{"$link":"BLOB"},"mimeType":"image/jpeg","size":2000},` +
			`"banner":{"$type":"blob","ref":{"$link":"BLOB2"},"mimeType":"image/png","size":3000},"pinnedPost":` + strongRef() + `,"joinedViaStarterPack":` + strongRef() + `,"createdAt":"NOW",` + selfLabels + `}`,
		"like":        `{"$type":"app.bsky.feed.like","subject":` + strongRef() + `,"createdAt":"NOW","via":` + strongRef() + `}`,
		"repost":      `{"$type":"app.bsky.feed.repost","subject":` + strongRef() + `,"createdAt":"NOW"}`,
		"follow":      `{"$type":"app.bsky.graph.follow","subject":"DID","createdAt":"NOW"}`,
		"block":       `{"$type":"app.bsky.graph.block","subject":"DID","createdAt":"NOW"}`,
		"list":        `{"$type":"app.bsky.graph.list","purpose":"app.bsky.graph.defs#curatelist","name":"Friends","description":"My friends","descriptionFacets":` + facets + `,"avatar":{"$type":"blob","ref":{"$link":"BLOB"},"mimeType":"image/jpeg","size":10},"createdAt":"NOW"}`,
		"listitem":    `{"$type":"app.bsky.graph.listitem","subject":"DID","list":"LISTURI","createdAt":"NOW"}`,
		"listblock":   `{"$type":"app.bsky.graph.listblock","subject":"LISTURI","createdAt":"NOW"}`,
		"starterpack": `{"$type":"app.bsky.graph.starterpack","name":"Go people","description":"Gophers","list":"LISTURI","feeds":[{"uri":"at://DID/app.bsky.feed.generator/gophers"}],"createdAt":"NOW"}`,
		"threadgate": `{"$type":"app.bsky.feed.threadgate","post":"POSTURI","allow":[{"$type":"app.bsky.feed.threadgate#mentionRule"},{"$type":"app.bsky.feed.threadgate#followerRule"},` +
			`{"$type":"app.bsky.feed.threadgate#followingRule"},{"$type":"app.bsky.feed.threadgate#listRule","list":"LISTURI"}],"hiddenReplies":["POSTURI"],"createdAt":"NOW"}`,
		"threadgate-empty": `{"$type":"app.bsky.feed.threadgate","post":"POSTURI","allow":[],"createdAt":"NOW"}`,
		"postgate":         `{"$type":"app.bsky.feed.postgate","post":"POSTURI","detachedEmbeddingUris":["POSTURI"],"embeddingRules":[{"$type":"app.bsky.feed.postgate#disableRule"}],"createdAt":"NOW"}`,
		"generator": `{"$type":"app.bsky.feed.generator","did":"did:web:feeds.example.com","displayName":"Cats","description":"Only cats","avatar":{"$type":"blob","ref":{"$link":"BLOB"},"mimeType":"image/png","size":99},` +
			`"acceptsInteractions":true,"contentMode":"app.bsky.feed.defs#contentModeVideo","createdAt":"NOW"}`,
		"labeler": `{"$type":"app.bsky.labeler.service","policies":{"labelValues":["spam","rude"],"labelValueDefinitions":[{"identifier":"rude","severity":"alert","blurs":"content","defaultSetting":"warn","adultOnly":false,` +
			`"locales":[{"lang":"en","name":"Rude","description":"Not nice"}]}]},"reasonTypes":["com.atproto.moderation.defs#reasonSpam"],"subjectTypes":["account","record"],"subjectCollections":["app.bsky.feed.post"],"createdAt":"NOW",` + selfLabels + `}`,
	}
}

var catalog = sync.OnceValues(api.Catalog)

// roundTrip checks JSON -> typed -> DAG-CBOR -> typed -> JSON, against the
// generic encoders, and returns the typed value read back from CBOR.
func roundTrip(t *testing.T, js string, validate bool) record {
	t.Helper()
	generic, err := data.ParseJSON([]byte(js))
	if err != nil {
		t.Fatalf("ParseJSON: %v", err)
	}
	coll := generic["$type"].(string)
	if validate {
		cat, err := catalog()
		if err != nil {
			t.Fatal(err)
		}
		if err := cat.ValidateRecordFlags(coll, generic, lexicon.RejectUnknownFields); err != nil {
			t.Fatalf("validate: %v", err)
		}
	}
	mk := newRecord[coll]
	if mk == nil {
		t.Fatalf("no typed record for %s", coll)
	}
	typed := mk()
	if err := json.Unmarshal([]byte(js), typed); err != nil {
		t.Fatalf("typed UnmarshalJSON: %v", err)
	}
	cb, err := lexutil.MarshalCBOR(typed)
	if err != nil {
		t.Fatalf("typed MarshalDAGCBOR: %v", err)
	}
	want, err := data.MarshalCBOR(generic)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(cb, want) {
		t.Fatalf("typed CBOR differs from the generic encoder:\n typed %x\n want  %x", cb, want)
	}
	back := mk()
	if err := lexutil.UnmarshalCBOR(cb, back); err != nil {
		t.Fatalf("typed UnmarshalDAGCBOR: %v", err)
	}
	js2, err := json.Marshal(back)
	if err != nil {
		t.Fatalf("typed MarshalJSON: %v", err)
	}
	wantJS, err := data.MarshalJSON(generic)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(js2, wantJS) {
		t.Fatalf("JSON changed in the round trip:\n got  %s\n want %s", js2, wantJS)
	}
	return back
}

func TestRecordRoundTrip(t *testing.T) {
	seen := map[string]bool{}
	c := corpus()
	for _, name := range sortedNames(c) {
		t.Run(name, func(t *testing.T) {
			js := expand(c[name])
			rec := roundTrip(t, js, true)
			g, _ := data.ParseJSON([]byte(js))
			seen[g["$type"].(string)] = true
			// Everything the corpus holds is declared: nothing may fall into Extra.
			if extra := extraOf(rec); len(extra) > 0 {
				t.Errorf("undeclared fields at the top level: %v", extra)
			}
		})
	}
	for coll := range newRecord {
		if !seen[coll] {
			t.Errorf("no corpus record for %s", coll)
		}
	}
}

func extraOf(r record) map[string]any {
	switch v := r.(type) {
	case *bsky.FeedPost:
		return v.Extra
	case *bsky.ActorProfile:
		return v.Extra
	case *bsky.LabelerService:
		return v.Extra
	case *bsky.FeedThreadgate:
		return v.Extra
	}
	return nil
}

func sortedNames(m map[string]string) []string {
	var names []string
	for k := range m {
		names = append(names, k)
	}
	for i := range names {
		for j := i + 1; j < len(names); j++ {
			if names[j] < names[i] {
				names[i], names[j] = names[j], names[i]
			}
		}
	}
	return names
}

// TestTypedFields checks that decoding fills typed fields, not Extra.
func TestTypedFields(t *testing.T) {
	c := corpus()
	var p bsky.FeedPost
	if err := json.Unmarshal([]byte(expand(c["post-recordwithmedia"])), &p); err != nil {
		t.Fatal(err)
	}
	rwm := p.Embed.EmbedRecordWithMedia
	if rwm == nil || rwm.Media == nil || rwm.Media.EmbedImages == nil || len(rwm.Media.EmbedImages.Images) != 2 {
		t.Fatalf("recordWithMedia not decoded into typed fields: %+v", p.Embed)
	}
	img := rwm.Media.EmbedImages.Images[0]
	if img.Alt != "a cat" || img.AspectRatio == nil || img.AspectRatio.Width != 1200 || img.Image.Ref.String() != blobCID {
		t.Errorf("image: %+v", img)
	}
	if rwm.Record.Record.Uri != postURI {
		t.Errorf("record uri %q", rwm.Record.Record.Uri)
	}
	var _ *atproto.RepoStrongRef = rwm.Record.Record

	if err := json.Unmarshal([]byte(expand(c["post-facets"])), &p); err != nil {
		t.Fatal(err)
	}
	if len(p.Facets) != 3 || p.Facets[0].Features[0].RichtextFacet_Mention == nil || p.Facets[0].Features[0].RichtextFacet_Mention.Did != did {
		t.Errorf("facets: %+v", p.Facets)
	}
	var prof bsky.ActorProfile
	if err := json.Unmarshal([]byte(expand(c["profile"])), &prof); err != nil {
		t.Fatal(err)
	}
	if prof.Avatar == nil || prof.Banner == nil || prof.PinnedPost == nil || *prof.DisplayName != "Alice" || prof.Labels.LabelDefs_SelfLabels == nil {
		t.Errorf("profile: %+v", prof)
	}
	var tg bsky.FeedThreadgate
	if err := json.Unmarshal([]byte(expand(c["threadgate"])), &tg); err != nil {
		t.Fatal(err)
	}
	if len(tg.Allow) != 4 || tg.Allow[3].FeedThreadgate_ListRule == nil || tg.Allow[0].FeedThreadgate_MentionRule == nil {
		t.Errorf("threadgate allow: %+v", tg.Allow)
	}
}

// TestUnknownSurvive checks that undeclared fields (at several depths) and
// open-union variants of unknown $type survive a round trip.
func TestUnknownSurvive(t *testing.T) {
	js := expand(`{"$type":"app.bsky.feed.post","text":"hi","createdAt":"NOW","zzFuture":{"a":[1,2,{"$link":"PCID"}]},"a":1,"$z":"x",` +
		`"embed":{"$type":"com.example.fancy.embed","payload":{"$bytes":"AQID"},"n":-5},` +
		`"facets":[{"index":{"byteStart":0,"byteEnd":2,"extraIndex":true},"features":[{"$type":"com.example.facet#sparkle","level":9}],"note":null}],` +
		`"reply":{"root":{"uri":"POSTURI","cid":"PCID","x":"y"},"parent":{"uri":"POSTURI","cid":"PCID"}}}`)
	back := roundTrip(t, js, false)
	p := back.(*bsky.FeedPost)
	if p.Embed == nil || p.Embed.Unknown == nil || p.Embed.Unknown["$type"] != "com.example.fancy.embed" {
		t.Fatalf("unknown embed not kept: %+v", p.Embed)
	}
	if p.Extra["zzFuture"] == nil || p.Extra["a"] != int64(1) {
		t.Errorf("extra: %v", p.Extra)
	}
	if p.Reply.Root.Extra["x"] != "y" {
		t.Errorf("nested extra: %v", p.Reply.Root.Extra)
	}
	if p.Facets[0].Features[0].Unknown == nil {
		t.Errorf("unknown facet feature not kept")
	}
}

// TestEmptyUnion checks that a union with no variant set is not encoded.
func TestEmptyUnion(t *testing.T) {
	p := bsky.FeedPost{Text: "x", CreatedAt: now, Embed: &bsky.FeedPost_Embed{}}
	if _, err := lexutil.MarshalCBOR(&p); err == nil {
		t.Fatal("empty union encoded")
	}
}

// TestNullKept checks that a null given for an optional field survives.
func TestNullKept(t *testing.T) {
	roundTrip(t, expand(`{"$type":"app.bsky.actor.profile","displayName":null,"pinnedPost":null}`), false)
}

func TestCatalog(t *testing.T) {
	cat, err := catalog()
	if err != nil {
		t.Fatal(err)
	}
	if err := cat.Link(); err != nil {
		t.Fatal(err)
	}
	if len(cat.Schemas()) < 300 {
		t.Fatalf("only %d schemas embedded", len(cat.Schemas()))
	}
}
