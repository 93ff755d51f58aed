package lexicon

import (
	"encoding/json"
	"errors"
	"net/url"
	"os"
	"reflect"
	"strings"
	"testing"

	"github.com/welkin-atproto/welkin/atproto/data"
)

func TestCorpusRecords(t *testing.T) {
	c := sharedCatalog(t)
	b, err := os.ReadFile("testdata/corpus.json")
	if err != nil {
		t.Fatal(err)
	}
	var raws []json.RawMessage
	if err := json.Unmarshal(b, &raws); err != nil {
		t.Fatal(err)
	}
	seen := map[string]bool{}
	for i, raw := range raws {
		rec, err := data.ParseJSON(raw)
		if err != nil {
			t.Fatalf("record %d: %v", i, err)
		}
		typ := rec["$type"].(string)
		seen[typ] = true
		for _, f := range []Flags{0, Strict, Lenient} {
			if err := c.ValidateRecordFlags(typ, rec, f); err != nil {
				t.Errorf("record %d (%s, flags %d): %v", i, typ, f, err)
			}
		}
	}
	for _, want := range []string{"app.bsky.feed.post", "app.bsky.feed.like", "app.bsky.feed.repost",
		"app.bsky.graph.follow", "app.bsky.graph.block", "app.bsky.actor.profile", "app.bsky.graph.list",
		"app.bsky.graph.listitem", "app.bsky.graph.starterpack", "app.bsky.feed.threadgate",
		"app.bsky.feed.postgate", "app.bsky.feed.generator"} {
		if !seen[want] {
			t.Errorf("corpus lacks %s", want)
		}
	}
}

// testSchema is a schema exercising one constraint of each kind.
const testSchema = `{
  "lexicon": 1,
  "id": "com.example.test",
  "defs": {
    "main": {
      "type": "record",
      "key": "tid",
      "record": {
        "type": "object",
        "required": ["req", "reqNullable"],
        "nullable": ["reqNullable", "optNullable"],
        "properties": {
          "req": {"type": "string"},
          "reqNullable": {"type": "string"},
          "optNullable": {"type": "integer"},
          "graphemes": {"type": "string", "maxGraphemes": 2, "maxLength": 100},
          "minG": {"type": "string", "minGraphemes": 2},
          "bytes": {"type": "string", "maxLength": 4},
          "int": {"type": "integer", "minimum": -5, "maximum": 5},
          "intConst": {"type": "integer", "const": 7},
          "strConst": {"type": "string", "const": "x"},
          "strEnum": {"type": "string", "enum": ["a", "b"]},
          "known": {"type": "string", "knownValues": ["com.example.test#tok", "plain"]},
          "boolConst": {"type": "boolean", "const": true},
          "img": {"type": "blob", "accept": ["image/*", "video/mp4"], "maxSize": 1000},
          "anyBlob": {"type": "blob"},
          "raw": {"type": "bytes", "minLength": 1, "maxLength": 3},
          "link": {"type": "cid-link"},
          "open": {"type": "union", "refs": ["#a"]},
          "closed": {"type": "union", "refs": ["#a", "com.example.test#b"], "closed": true},
          "list": {"type": "array", "items": {"type": "ref", "ref": "#a"}, "maxLength": 2},
          "any": {"type": "unknown"},
          "self": {"type": "ref", "ref": "#node"},
          "dt": {"type": "string", "format": "datetime"},
          "did": {"type": "string", "format": "did"},
          "handle": {"type": "string", "format": "handle"},
          "atid": {"type": "string", "format": "at-identifier"},
          "aturi": {"type": "string", "format": "at-uri"},
          "nsid": {"type": "string", "format": "nsid"},
          "cid": {"type": "string", "format": "cid"},
          "tid": {"type": "string", "format": "tid"},
          "rkey": {"type": "string", "format": "record-key"},
          "uri": {"type": "string", "format": "uri"},
          "lang": {"type": "string", "format": "language"}
        }
      }
    },
    "a": {"type": "object", "required": ["n"], "properties": {"n": {"type": "integer"}}},
    "b": {"type": "object", "properties": {"s": {"type": "string"}}},
    "node": {"type": "object", "properties": {"next": {"type": "ref", "ref": "#node"}, "v": {"type": "integer"}}},
    "tok": {"type": "token", "description": "a token"}
  }
}`

func testCatalog(t testing.TB) *Catalog {
	t.Helper()
	sf, err := ParseSchemaFile([]byte(testSchema))
	if err != nil {
		t.Fatal(err)
	}
	c := NewCatalog()
	if err := c.Add(sf); err != nil {
		t.Fatal(err)
	}
	if err := c.Link(); err != nil {
		t.Fatal(err)
	}
	return c
}

var (
	testCID  = data.MustParseCID("bafyreiclp443lavogvhj3d2ob2cxbfuscni2k5jk7bebjzg7khl3esabwq")
	testBlob = data.Blob{Ref: data.MustParseCID("bafkreibme22gw2h7y2h7tg2fhqotaqjucnbc24deqo72b6mkl2egezxhvy"), MimeType: "image/png", Size: 100}
)

func rec(fields ...any) map[string]any {
	m := map[string]any{"$type": "com.example.test", "req": "r", "reqNullable": nil}
	for i := 0; i < len(fields); i += 2 {
		m[fields[i].(string)] = fields[i+1]
	}
	return m
}

func TestConstraints(t *testing.T) {
	c := testCatalog(t)
	family := "👨‍👩‍👧‍👦" // one grapheme cluster, 25 bytes
	withBlob := func(f func(*data.Blob)) data.Blob { b := testBlob; f(&b); return b }
	cases := []struct {
		name    string
		rec     map[string]any
		errPath string // "" means valid
	}{
		{"minimal", rec(), ""},
		{"missing required", func() map[string]any { m := rec(); delete(m, "req"); return m }(), "req"},
		{"required nullable may be null", rec(), ""},
		{"required nullable must be present", func() map[string]any { m := rec(); delete(m, "reqNullable"); return m }(), "reqNullable"},
		{"required not nullable", rec("req", nil), "req"},
		{"optional nullable null", rec("optNullable", nil), ""},
		{"optional not nullable null", rec("int", nil), "int"},
		{"ZWJ emoji is one grapheme", rec("graphemes", family+family), ""},
		{"three ZWJ emoji", rec("graphemes", family+family+family), "graphemes"},
		{"ascii graphemes", rec("graphemes", "abc"), "graphemes"},
		{"CRLF is one grapheme", rec("graphemes", "\r\n\r\n"), ""},
		{"minGraphemes with bytes enough", rec("minG", family), "minG"},
		{"minGraphemes ok", rec("minG", "ab"), ""},
		{"maxLength counts bytes", rec("bytes", "é€"), "bytes"},
		{"maxLength ok", rec("bytes", "éé"), ""},
		{"int in range", rec("int", int64(5)), ""},
		{"int below", rec("int", int64(-6)), "int"},
		{"int above", rec("int", int64(6)), "int"},
		{"int const", rec("intConst", int64(7)), ""},
		{"int const wrong", rec("intConst", int64(8)), "intConst"},
		{"string const wrong", rec("strConst", "y"), "strConst"},
		{"enum ok", rec("strEnum", "b"), ""},
		{"enum closed", rec("strEnum", "c"), "strEnum"},
		{"knownValues are open", rec("known", "something-else"), ""},
		{"bool const", rec("boolConst", false), "boolConst"},
		{"blob accept glob", rec("img", testBlob), ""},
		{"blob accept exact", rec("img", withBlob(func(b *data.Blob) { b.MimeType = "video/mp4" })), ""},
		{"blob accept refused", rec("img", withBlob(func(b *data.Blob) { b.MimeType = "text/plain" })), "img"},
		{"blob too big", rec("img", withBlob(func(b *data.Blob) { b.Size = 1001 })), "img"},
		{"blob any type", rec("anyBlob", withBlob(func(b *data.Blob) { b.MimeType = "application/x-thing" })), ""},
		{"legacy blob refused", rec("anyBlob", data.Blob{Ref: testCID, MimeType: "image/png", Legacy: true}), "anyBlob"},
		{"bytes ok", rec("raw", data.Bytes{1, 2}), ""},
		{"bytes too long", rec("raw", data.Bytes{1, 2, 3, 4}), "raw"},
		{"bytes too short", rec("raw", data.Bytes{}), "raw"},
		{"cid-link", rec("link", testCID), ""},
		{"cid-link as string", rec("link", testCID.String()), "link"},
		{"open union known", rec("open", map[string]any{"$type": "com.example.test#a", "n": int64(1)}), ""},
		{"open union known invalid", rec("open", map[string]any{"$type": "com.example.test#a"}), "open.n"},
		{"open union unknown type", rec("open", map[string]any{"$type": "com.other.thing", "x": true}), ""},
		{"open union unknown type with fragment", rec("open", map[string]any{"$type": "com.other.thing#view"}), ""},
		{"open union bad $type", rec("open", map[string]any{"$type": "not a nsid"}), "open.$type"},
		{"open union #main $type", rec("open", map[string]any{"$type": "com.other.thing#main"}), "open.$type"},
		{"open union unlisted but known type is validated", rec("open", map[string]any{"$type": "com.example.test#b", "s": int64(1)}), "open.s"},
		{"open union missing $type", rec("open", map[string]any{"n": int64(1)}), "open"},
		{"closed union", rec("closed", map[string]any{"$type": "com.example.test#b", "s": "x"}), ""},
		{"closed union unknown", rec("closed", map[string]any{"$type": "com.other.thing"}), "closed.$type"},
		{"array path", rec("list", []any{map[string]any{"n": int64(1)}, map[string]any{"n": "x"}}), "list[1].n"},
		{"array too long", rec("list", []any{map[string]any{"n": int64(1)}, map[string]any{"n": int64(1)}, map[string]any{"n": int64(1)}}), "list"},
		{"unknown object", rec("any", map[string]any{"anything": []any{int64(1), "x"}}), ""},
		{"unknown not object", rec("any", "str"), "any"},
		{"unknown blob", rec("any", testBlob), "any"},
		{"unknown float", rec("any", map[string]any{"f": 1.5}), "any.f"},
		{"recursive ref", rec("self", map[string]any{"next": map[string]any{"next": map[string]any{"v": "x"}}}), "self.next.next.v"},
		{"datetime", rec("dt", "2024-01-02T03:04:05.678Z"), ""},
		{"datetime no zone", rec("dt", "2024-01-02T03:04:05.678"), "dt"},
		{"did", rec("did", "did:method:val"), ""},
		{"did bad", rec("did", "did:x"), "did"},
		{"handle", rec("handle", "alice.example.com"), ""},
		{"handle bad", rec("handle", "alice"), "handle"},
		{"at-identifier did", rec("atid", "did:plc:abc"), ""},
		{"at-identifier handle", rec("atid", "alice.example.com"), ""},
		{"at-identifier bad", rec("atid", "@alice"), "atid"},
		{"at-uri", rec("aturi", "at://did:plc:abc/app.bsky.feed.post/3k43tv4rft22g"), ""},
		{"at-uri bad", rec("aturi", "https://example.com"), "aturi"},
		{"nsid", rec("nsid", "com.example.thing"), ""},
		{"nsid bad", rec("nsid", "com.example"), "nsid"},
		{"cid", rec("cid", testCID.String()), ""},
		{"cid bad", rec("cid", "bafy"), "cid"},
		{"tid", rec("tid", "3k43tv4rft22g"), ""},
		{"tid bad", rec("tid", "3k43tv4rft22"), "tid"},
		{"record-key", rec("rkey", "self"), ""},
		{"record-key bad", rec("rkey", "a/b"), "rkey"},
		{"uri", rec("uri", "https://example.com/x?y"), ""},
		{"uri bad", rec("uri", "no scheme"), "uri"},
		{"language", rec("lang", "pt-BR"), ""},
		{"language bad", rec("lang", "1234"), "lang"},
		{"unknown fields ignored by default", rec("zzz", 1.5), ""},
		{"wrong $type", func() map[string]any { m := rec(); m["$type"] = "com.example.other"; return m }(), "$type"},
		{"missing $type", func() map[string]any { m := rec(); delete(m, "$type"); return m }(), "$type"},
	}
	for _, tc := range cases {
		err := c.ValidateRecord("com.example.test", tc.rec)
		if tc.errPath == "" {
			if err != nil {
				t.Errorf("%s: %v", tc.name, err)
			}
			continue
		}
		var ve *ValidationError
		if !errors.As(err, &ve) {
			t.Errorf("%s: got %v, want a *ValidationError at %q", tc.name, err, tc.errPath)
			continue
		}
		if ve.Path != tc.errPath {
			t.Errorf("%s: error at %q (%v), want at %q", tc.name, ve.Path, err, tc.errPath)
		}
	}
}

func TestFlags(t *testing.T) {
	c := testCatalog(t)
	legacy := rec("anyBlob", data.Blob{Ref: testCID, MimeType: "image/png", Legacy: true})
	if err := c.ValidateRecordFlags("com.example.test", legacy, Lenient); err != nil {
		t.Errorf("lenient legacy blob: %v", err)
	}
	loose := rec("dt", "2024-01-02 03:04:05")
	if err := c.ValidateRecordFlags("com.example.test", loose, 0); err == nil {
		t.Error("default mode accepted a loose datetime")
	}
	if err := c.ValidateRecordFlags("com.example.test", loose, Lenient); err != nil {
		t.Errorf("lenient datetime: %v", err)
	}
	extra := rec("zzz", "x")
	err := c.ValidateRecordFlags("com.example.test", extra, Strict)
	if err == nil || err.Error() != "zzz: field is not declared by the schema" {
		t.Errorf("strict unknown field: %v", err)
	}
	unknownVariant := rec("open", map[string]any{"$type": "com.other.thing"})
	if err := c.ValidateRecordFlags("com.example.test", unknownVariant, Strict); !errors.Is(err, ErrNotFound) {
		t.Errorf("strict unknown union variant: %v", err)
	}
	c.Flags = Strict
	if err := c.ValidateRecord("com.example.test", extra); err == nil {
		t.Error("Catalog.Flags not applied")
	}
}

func TestErrorMessage(t *testing.T) {
	c := sharedCatalog(t)
	post := map[string]any{
		"$type": "app.bsky.feed.post", "text": "hi", "createdAt": "2024-11-05T12:34:56.789Z",
		"reply": map[string]any{
			"root":   map[string]any{"uri": "https://nope", "cid": testCID.String()},
			"parent": map[string]any{"uri": "at://did:plc:abc/app.bsky.feed.post/3k43tv4rft22g", "cid": testCID.String()},
		},
	}
	err := c.ValidateRecord("app.bsky.feed.post", post)
	var ve *ValidationError
	if !errors.As(err, &ve) || ve.Path != "reply.root.uri" || !strings.HasPrefix(err.Error(), "reply.root.uri: invalid AT-URI: ") {
		t.Errorf("got %v", err)
	}
	if err := c.ValidateRecord("com.example.nothing", post); !errors.Is(err, ErrNotFound) {
		t.Errorf("unknown collection: %v", err)
	}
	if err := c.ValidateRecord("app.bsky.actor.defs", post); err == nil {
		t.Error("non-record accepted as collection")
	}
}

func TestRecordKey(t *testing.T) {
	c := sharedCatalog(t)
	for _, tc := range []struct {
		coll, rkey string
		ok         bool
	}{
		{"app.bsky.feed.post", "3k43tv4rft22g", true},
		{"app.bsky.feed.post", "self", false},
		{"app.bsky.actor.profile", "self", true},
		{"app.bsky.actor.profile", "3k43tv4rft22g", false},
		{"app.bsky.feed.generator", "any-key", true},
		{"app.bsky.feed.generator", "..", false},
	} {
		err := c.ValidateRecordKey(tc.coll, tc.rkey)
		if (err == nil) != tc.ok {
			t.Errorf("%s/%s: %v", tc.coll, tc.rkey, err)
		}
	}
}

func TestValidateRef(t *testing.T) {
	c := sharedCatalog(t)
	ref := map[string]any{"uri": "at://did:plc:abc/app.bsky.feed.post/3k43tv4rft22g", "cid": testCID.String()}
	if err := c.Validate("com.atproto.repo.strongRef", ref); err != nil {
		t.Error(err)
	}
	if err := c.Validate("com.atproto.repo.strongRef#main", ref); err != nil {
		t.Error(err)
	}
	if err := c.Validate("com.atproto.repo.strongRef", map[string]any{"uri": "x"}); err == nil {
		t.Error("bad strongRef accepted")
	}
	if err := c.Validate("app.bsky.feed.getTimeline", ref); err == nil {
		t.Error("query accepted as data definition")
	}
	if err := c.Validate("no.such.thing#x", ref); !errors.Is(err, ErrNotFound) {
		t.Errorf("unknown ref: %v", err)
	}
	d, err := c.Resolve("app.bsky.feed.post")
	if err != nil {
		t.Fatal(err)
	}
	r := d.Schema.(*Record)
	if r.Key != "tid" || r.Record.PropertyNames[0] != "text" || !r.Record.IsRequired("createdAt") {
		t.Errorf("post schema: key %q, properties %v", r.Key, r.Record.PropertyNames)
	}
}

func TestQueryParams(t *testing.T) {
	c := sharedCatalog(t)
	got, err := c.ValidateQueryParams("app.bsky.feed.getAuthorFeed", url.Values{"actor": {"alice.example.com"}, "limit": {"30"}})
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]any{"actor": "alice.example.com", "limit": int64(30), "filter": "posts_with_replies", "includePins": false}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("got %#v, want %#v", got, want)
	}
	for _, tc := range []struct {
		q    map[string][]string
		path string
	}{
		{map[string][]string{}, "actor"},
		{map[string][]string{"actor": {"alice.example.com"}, "limit": {"101"}}, "limit"},
		{map[string][]string{"actor": {"alice.example.com"}, "limit": {"ten"}}, "limit"},
		{map[string][]string{"actor": {"@nope"}}, "actor"},
		{map[string][]string{"actor": {"a.example.com", "b.example.com"}}, "actor"},
		{map[string][]string{"actor": {"alice.example.com"}, "includePins": {"yes"}}, "includePins"},
	} {
		_, err := c.ValidateQueryParams("app.bsky.feed.getAuthorFeed", tc.q)
		var ve *ValidationError
		if !errors.As(err, &ve) || ve.Path != tc.path {
			t.Errorf("%v: got %v, want error at %s", tc.q, err, tc.path)
		}
	}
	got, err = c.ValidateQueryParams("app.bsky.actor.getProfiles", url.Values{"actors": {"did:plc:abc", "bob.example.com"}})
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got["actors"], []string{"did:plc:abc", "bob.example.com"}) {
		t.Errorf("actors = %#v", got["actors"])
	}
	_, err = c.ValidateQueryParams("app.bsky.actor.getProfiles", url.Values{"actors": {"did:plc:abc", "nope"}})
	if err == nil || !strings.HasPrefix(err.Error(), "actors[1]: ") {
		t.Errorf("array element error: %v", err)
	}
	// Undeclared parameters are ignored unless strict.
	if _, err := c.ValidateQueryParams("app.bsky.actor.getProfiles", url.Values{"actors": {"did:plc:abc"}, "x": {"1"}}); err != nil {
		t.Error(err)
	}
}

func TestBodiesAndMessages(t *testing.T) {
	c := sharedCatalog(t)
	in := map[string]any{"repo": "did:plc:abc", "collection": "app.bsky.feed.like", "record": map[string]any{"anything": true}}
	if err := c.ValidateInput("com.atproto.repo.createRecord", "application/json; charset=utf-8", in); err != nil {
		t.Error(err)
	}
	if err := c.ValidateInput("com.atproto.repo.createRecord", "text/plain", in); err == nil {
		t.Error("wrong encoding accepted")
	}
	delete(in, "repo")
	if err := c.ValidateInput("com.atproto.repo.createRecord", "application/json", in); err == nil {
		t.Error("missing repo accepted")
	}
	if err := c.ValidateInput("com.atproto.repo.uploadBlob", "image/png", nil); err != nil {
		t.Errorf("uploadBlob: %v", err)
	}
	if err := c.ValidateInput("app.bsky.feed.getTimeline", "application/json", nil); err == nil {
		t.Error("input to a query accepted")
	}
	out := map[string]any{"did": "did:plc:abc", "handle": "alice.example.com"}
	if err := c.ValidateOutput("com.atproto.identity.resolveHandle", "application/json", map[string]any{"did": "did:plc:abc"}); err != nil {
		t.Error(err)
	}
	if err := c.ValidateOutput("com.atproto.identity.resolveHandle", "application/json", map[string]any{"did": "x"}); err == nil {
		t.Error("bad output accepted")
	}
	_ = out
	acct := map[string]any{"seq": int64(1), "did": "did:plc:abc", "time": "2024-11-05T12:34:56.789Z", "active": true}
	if err := c.ValidateMessage("com.atproto.sync.subscribeRepos", "#account", acct); err != nil {
		t.Error(err)
	}
	acct["$type"] = "com.atproto.sync.subscribeRepos#account"
	if err := c.ValidateMessage("com.atproto.sync.subscribeRepos", "", acct); err != nil {
		t.Error(err)
	}
	delete(acct, "seq")
	if err := c.ValidateMessage("com.atproto.sync.subscribeRepos", "#account", acct); err == nil {
		t.Error("message without seq accepted")
	}
	if err := c.ValidateMessage("com.atproto.sync.subscribeRepos", "#nope", acct); !errors.Is(err, ErrNotFound) {
		t.Errorf("unknown message type: %v", err)
	}
}

func TestBadSchemas(t *testing.T) {
	for _, tc := range []struct{ name, doc, want string }{
		{"not json", `{`, "invalid JSON"},
		{"no defs", `{"lexicon":1,"id":"com.example.x","defs":{}}`, "at least one definition"},
		{"version", `{"lexicon":2,"id":"com.example.x","defs":{"a":{"type":"token"}}}`, "version"},
		{"closed empty union", `{"lexicon":1,"id":"com.example.x","defs":{"a":{"type":"object","properties":{"u":{"type":"union","refs":[],"closed":true}}}}}`, "defs.a.properties.u"},
		{"bad ref", `{"lexicon":1,"id":"com.example.x","defs":{"a":{"type":"object","properties":{"u":{"type":"ref","ref":"nope"}}}}}`, "defs.a.properties.u.ref"},
		{"min > max", `{"lexicon":1,"id":"com.example.x","defs":{"a":{"type":"string","minLength":3,"maxLength":2}}}`, "defs.a"},
		{"bad format", `{"lexicon":1,"id":"com.example.x","defs":{"a":{"type":"string","format":"email"}}}`, "defs.a.format"},
		{"const and default", `{"lexicon":1,"id":"com.example.x","defs":{"a":{"type":"integer","const":1,"default":1}}}`, "mutually exclusive"},
		{"bad accept", `{"lexicon":1,"id":"com.example.x","defs":{"a":{"type":"blob","accept":["text/ht*"]}}}`, "defs.a.accept[0]"},
		{"bad key", `{"lexicon":1,"id":"com.example.x","defs":{"main":{"type":"record","key":"uuid","record":{"type":"object","properties":{}}}}}`, "defs.main.key"},
		{"token property", `{"lexicon":1,"id":"com.example.x","defs":{"a":{"type":"object","properties":{"t":{"type":"token"}}}}}`, "defs.a.properties.t"},
		{"object param", `{"lexicon":1,"id":"com.example.x","defs":{"main":{"type":"query","parameters":{"type":"params","properties":{"o":{"type":"object","properties":{}}}}}}}`, "defs.main.parameters.properties.o"},
		{"subscription object", `{"lexicon":1,"id":"com.example.x","defs":{"main":{"type":"subscription","message":{"schema":{"type":"object","properties":{}}}}}}`, "defs.main.message.schema"},
		{"misspelt field", `{"lexicon":1,"id":"com.example.x","defs":{"a":{"type":"string","maxLenght":3}}}`, "defs.a.maxLenght"},
		{"required undefined", `{"lexicon":1,"id":"com.example.x","defs":{"a":{"type":"object","required":["b"],"properties":{}}}}`, "defs.a.required"},
		{"duplicate key", `{"lexicon":1,"id":"com.example.x","defs":{"a":{"type":"token"},"a":{"type":"token"}}}`, "duplicate key"},
		{"bad default", `{"lexicon":1,"id":"com.example.x","defs":{"a":{"type":"string","maxLength":1,"default":"long"}}}`, "defs.a.default"},
	} {
		_, err := ParseSchemaFile([]byte(tc.doc))
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: got %v, want an error mentioning %q", tc.name, err, tc.want)
		}
	}
}

func TestLinkErrors(t *testing.T) {
	for _, tc := range []struct{ name, doc, want string }{
		{"missing local def", `{"lexicon":1,"id":"com.example.x","defs":{"a":{"type":"object","properties":{"r":{"type":"ref","ref":"#nope"}}}}}`,
			`lexicon com.example.x: defs.a.properties.r.ref: reference "com.example.x#nope" not found`},
		{"ref to token", `{"lexicon":1,"id":"com.example.x","defs":{"t":{"type":"token"},"a":{"type":"object","properties":{"r":{"type":"ref","ref":"#t"}}}}}`,
			"defs.a.properties.r.ref"},
		{"union of string", `{"lexicon":1,"id":"com.example.x","defs":{"s":{"type":"string"},"a":{"type":"object","properties":{"u":{"type":"union","refs":["#s"]}}}}}`,
			"defs.a.properties.u.refs[0]"},
	} {
		sf, err := ParseSchemaFile([]byte(tc.doc))
		if err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		c := NewCatalog()
		if err := c.Add(sf); err != nil {
			t.Fatal(err)
		}
		err = c.Link()
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: got %v, want %q", tc.name, err, tc.want)
		}
		if err := c.ValidateRecord("com.example.x", map[string]any{}); err == nil {
			t.Errorf("%s: validation on a broken catalog succeeded", tc.name)
		}
	}
	c := NewCatalog()
	sf, _ := ParseSchemaFile([]byte(`{"lexicon":1,"id":"com.example.x","defs":{"a":{"type":"token"}}}`))
	if err := c.Add(sf); err != nil {
		t.Fatal(err)
	}
	if err := c.Add(sf); err == nil {
		t.Error("duplicate id accepted")
	}
}

func TestSchemaOrder(t *testing.T) {
	sf, err := ParseSchemaFile([]byte(testSchema))
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"main", "a", "b", "node", "tok"}; !reflect.DeepEqual(sf.DefNames, want) {
		t.Errorf("DefNames = %v", sf.DefNames)
	}
	obj := sf.Defs["main"].Schema.(*Record).Record
	if obj.PropertyNames[0] != "req" || obj.PropertyNames[len(obj.PropertyNames)-1] != "lang" || len(obj.PropertyNames) != len(obj.Properties) {
		t.Errorf("PropertyNames = %v", obj.PropertyNames)
	}
	u := obj.Properties["closed"].(*Union)
	if !u.Closed || !reflect.DeepEqual(u.Targets, []string{"com.example.test#a", "com.example.test#b"}) {
		t.Errorf("union = %+v", u)
	}
	s := obj.Properties["graphemes"].(*String)
	if s.MaxGraphemes == nil || *s.MaxGraphemes != 2 || s.MinGraphemes != nil {
		t.Errorf("string = %+v", s)
	}
}

func TestNoAllocs(t *testing.T) {
	c := sharedCatalog(t)
	post := benchPost(t)
	if err := c.ValidateRecord("app.bsky.feed.post", post); err != nil {
		t.Fatal(err)
	}
	if n := testing.AllocsPerRun(50, func() { _ = c.ValidateRecord("app.bsky.feed.post", post) }); n != 0 {
		t.Errorf("ValidateRecord allocates %v times per call", n)
	}
}

const benchPostJSON = `{"$type": "app.bsky.feed.post",
 "text": "replying to @alice.example.com about https://example.com #atproto 🏳️‍🌈 and more words to make this a typical length post",
 "langs": ["en"],
 "createdAt": "2024-11-05T12:34:56.789Z",
 "reply": {
   "root": {"uri": "at://did:plc:ewvi7nxzyoun6zhxrhs64oiz/app.bsky.feed.post/3k43tv4rft22g", "cid": "bafyreiclp443lavogvhj3d2ob2cxbfuscni2k5jk7bebjzg7khl3esabwq"},
   "parent": {"uri": "at://did:plc:ewvi7nxzyoun6zhxrhs64oiz/app.bsky.feed.post/3k43tv4rft22h", "cid": "bafyreiclp443lavogvhj3d2ob2cxbfuscni2k5jk7bebjzg7khl3esabwq"}
 },
 "facets": [
   {"index": {"byteStart": 12, "byteEnd": 30}, "features": [{"$type": "app.bsky.richtext.facet#mention", "did": "did:plc:ewvi7nxzyoun6zhxrhs64oiz"}]},
   {"index": {"byteStart": 37, "byteEnd": 56}, "features": [{"$type": "app.bsky.richtext.facet#link", "uri": "https://example.com"}]},
   {"index": {"byteStart": 57, "byteEnd": 65}, "features": [{"$type": "app.bsky.richtext.facet#tag", "tag": "atproto"}]}
 ],
 "embed": {"$type": "app.bsky.embed.images", "images": [
   {"alt": "a cat", "image": {"$type": "blob", "ref": {"$link": "bafkreibme22gw2h7y2h7tg2fhqotaqjucnbc24deqo72b6mkl2egezxhvy"}, "mimeType": "image/jpeg", "size": 345678}, "aspectRatio": {"width": 1000, "height": 750}}
 ]}
}`

func benchPost(t testing.TB) map[string]any {
	t.Helper()
	m, err := data.ParseJSON([]byte(benchPostJSON))
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func BenchmarkValidatePost(b *testing.B) {
	c := sharedCatalog(b)
	post := benchPost(b)
	b.ReportAllocs()
	for b.Loop() {
		if err := c.ValidateRecord("app.bsky.feed.post", post); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkLoadCatalog(b *testing.B) {
	dir := lexiconsDir(b)
	for b.Loop() {
		if _, err := LoadCatalogDir(dir); err != nil {
			b.Fatal(err)
		}
	}
}
