package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// Small schemas for a catalog written by the tests: a post-like record that
// refers to a reply reference in a second document.
const (
	testPostSchema = `{
  "lexicon": 1,
  "id": "com.example.post",
  "defs": {
    "main": {
      "type": "record",
      "key": "tid",
      "record": {
        "type": "object",
        "required": ["text", "createdAt"],
        "properties": {
          "text": {"type": "string", "maxLength": 300, "maxGraphemes": 10},
          "createdAt": {"type": "string", "format": "datetime"},
          "reply": {"type": "ref", "ref": "com.example.defs#replyRef"}
        }
      }
    }
  }
}`
	testDefsSchema = `{
  "lexicon": 1,
  "id": "com.example.defs",
  "defs": {
    "replyRef": {
      "type": "object",
      "required": ["uri"],
      "properties": {
        "uri": {"type": "string", "format": "at-uri"}
      }
    }
  }
}`
	// A constraint of the wrong type: maxLength must be an integer.
	testBadSchema = `{
  "lexicon": 1,
  "id": "com.example.bad",
  "defs": {
    "main": {
      "type": "object",
      "properties": {
        "name": {"type": "string", "maxLength": "ten"}
      }
    }
  }
}`
	// A reference to a schema file no catalog holds.
	testDanglingSchema = `{
  "lexicon": 1,
  "id": "com.example.dangling",
  "defs": {
    "main": {
      "type": "object",
      "properties": {
        "other": {"type": "ref", "ref": "com.example.nowhere#thing"}
      }
    }
  }
}`

	testValidPost   = `{"$type": "com.example.post", "text": "hello", "createdAt": "2026-11-25T14:03:11.482Z", "reply": {"uri": "at://did:plc:ewvi7nxzyoun6zhxrhs64oiz/com.example.post/3l3qo2vuowo2b"}}`
	testBadURIPost  = `{"$type": "com.example.post", "text": "hello", "createdAt": "2026-11-25T14:03:11.482Z", "reply": {"uri": "not an at-uri"}}`
	testExtraPost   = `{"$type": "com.example.post", "text": "hello", "createdAt": "2026-11-25T14:03:11.482Z", "mood": "fine"}`
	testLoosePost   = `{"$type": "com.example.post", "text": "hello", "createdAt": "2026-11-25 14:03:11"}`
	testLongTextDoc = `{"$type": "com.example.post", "text": "more than ten graphemes", "createdAt": "2026-11-25T14:03:11.482Z"}`
)

func writeFile(t *testing.T, dir, name, content string) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// testCatalog writes the two good schemas into a new directory.
func testCatalog(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	writeFile(t, dir, "com/example/post.json", testPostSchema)
	writeFile(t, dir, "com/example/defs.json", testDefsSchema)
	return dir
}

func runLexArgs(args ...string) (code int, stdout, stderr string) {
	var out, errOut bytes.Buffer
	code = run(append([]string{"lex"}, args...), &out, &errOut)
	return code, out.String(), errOut.String()
}

func TestLexCheck(t *testing.T) {
	cat := testCatalog(t)
	post := filepath.Join(cat, "com/example/post.json")
	defs := filepath.Join(cat, "com/example/defs.json")

	code, out, errOut := runLexArgs("check", post, defs)
	if code != 0 {
		t.Fatalf("exit %d, stderr %q", code, errOut)
	}
	if out != "ok com.example.post\nok com.example.defs\n" {
		t.Fatalf("stdout %q", out)
	}

	// The catalog resolves the post's reference, even to the directory
	// the post itself sits in.
	code, out, errOut = runLexArgs("check", "--catalog", cat, post)
	if code != 0 || out != "ok com.example.post\n" {
		t.Fatalf("with catalog: exit %d, stdout %q, stderr %q", code, out, errOut)
	}

	dir := t.TempDir()
	bad := writeFile(t, dir, "bad.json", testBadSchema)
	code, out, errOut = runLexArgs("check", post, bad)
	if code != 1 {
		t.Fatalf("bad schema: exit %d, want 1", code)
	}
	if out != "ok com.example.post\n" {
		t.Errorf("bad schema: stdout %q, want only the good file", out)
	}
	if !strings.Contains(errOut, bad+": ") || !strings.Contains(errOut, "defs.main.properties.name.maxLength") {
		t.Errorf("bad schema: stderr %q does not name the file and the path inside it", errOut)
	}

	// A reference to a definition a document lacks fails even without a
	// catalog: the named documents are linked together.
	missingDef := writeFile(t, dir, "missingdef.json", strings.Replace(testPostSchema, "#replyRef", "#nope", 1))
	code, _, errOut = runLexArgs("check", missingDef, defs)
	if code != 1 || !strings.Contains(errOut, missingDef+": ") || !strings.Contains(errOut, "com.example.defs#nope") {
		t.Errorf("missing definition: exit %d, stderr %q", code, errOut)
	}

	// An unresolved reference to another schema file is reported only
	// against a catalog, and against the document that makes it.
	dangling := writeFile(t, dir, "dangling.json", testDanglingSchema)
	if code, out, errOut = runLexArgs("check", dangling); code != 0 || out != "ok com.example.dangling\n" {
		t.Errorf("dangling without catalog: exit %d, stdout %q, stderr %q", code, out, errOut)
	}
	code, out, errOut = runLexArgs("check", "--catalog", cat, dangling, post)
	if code != 1 {
		t.Errorf("dangling with catalog: exit %d, want 1", code)
	}
	if out != "ok com.example.post\n" {
		t.Errorf("dangling with catalog: stdout %q", out)
	}
	if !strings.Contains(errOut, dangling+": unresolved reference com.example.nowhere#thing") {
		t.Errorf("dangling with catalog: stderr %q", errOut)
	}

	if code, _, _ = runLexArgs("check"); code != 2 {
		t.Errorf("no files: exit %d, want 2", code)
	}
	if code, _, _ = runLexArgs("check", filepath.Join(dir, "absent.json")); code != 1 {
		t.Errorf("absent file: exit %d, want 1", code)
	}
}

func TestLexValidate(t *testing.T) {
	t.Setenv(lexiconsEnv, "")
	cat := testCatalog(t)
	dir := t.TempDir()
	rec := func(name, content string) string { return writeFile(t, dir, name, content) }
	for _, tc := range []struct {
		name     string
		flags    []string
		record   string
		code     int
		wantErr  string // a fragment of stderr
		wantPath string // the ValidationError path the message starts with
	}{
		{name: "valid", record: testValidPost, code: 0},
		{name: "valid strict", flags: []string{"--strict"}, record: testValidPost, code: 0},
		{name: "bad reply uri", record: testBadURIPost, code: 1, wantPath: "reply.uri: "},
		{name: "too many graphemes", record: testLongTextDoc, code: 1, wantPath: "text: "},
		{name: "extra field", record: testExtraPost, code: 0},
		{name: "extra field strict", flags: []string{"--strict"}, record: testExtraPost, code: 1, wantPath: "mood: "},
		{name: "loose datetime", record: testLoosePost, code: 1, wantPath: "createdAt: "},
		{name: "loose datetime lenient", flags: []string{"--lenient"}, record: testLoosePost, code: 0},
		{name: "not json", record: `{"text": `, code: 1, wantErr: "not_json.json: "},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := rec(strings.ReplaceAll(tc.name, " ", "_")+".json", tc.record)
			args := append([]string{"validate", "--collection", "com.example.post", "--catalog", cat}, tc.flags...)
			code, out, errOut := runLexArgs(append(args, p)...)
			if code != tc.code {
				t.Fatalf("exit %d, want %d; stderr %q", code, tc.code, errOut)
			}
			if code == 0 {
				if out != "valid\n" {
					t.Errorf("stdout %q, want valid", out)
				}
				return
			}
			if out != "" {
				t.Errorf("stdout %q on failure", out)
			}
			if tc.wantPath != "" && !strings.HasPrefix(errOut, tc.wantPath) {
				t.Errorf("stderr %q does not start with the path %q", errOut, tc.wantPath)
			}
			if !strings.Contains(errOut, tc.wantErr) {
				t.Errorf("stderr %q lacks %q", errOut, tc.wantErr)
			}
		})
	}

	// Flags may follow the file, and "-" reads stdin.
	p := rec("valid.json", testValidPost)
	if code, out, errOut := runLexArgs("validate", p, "--catalog", cat, "--collection", "com.example.post"); code != 0 || out != "valid\n" {
		t.Errorf("flags after the file: exit %d, stdout %q, stderr %q", code, out, errOut)
	}
	old := lexStdin
	t.Cleanup(func() { lexStdin = old })
	lexStdin = strings.NewReader(testBadURIPost)
	if code, _, errOut := runLexArgs("validate", "--collection", "com.example.post", "--catalog", cat, "-"); code != 1 || !strings.HasPrefix(errOut, "reply.uri: ") {
		t.Errorf("stdin: exit %d, stderr %q", code, errOut)
	}

	// The catalog may come from the environment.
	t.Setenv(lexiconsEnv, cat)
	if code, out, errOut := runLexArgs("validate", "--collection", "com.example.post", p); code != 0 || out != "valid\n" {
		t.Errorf("catalog from %s: exit %d, stdout %q, stderr %q", lexiconsEnv, code, out, errOut)
	}
	// A collection the catalog lacks is a failure, not a usage error.
	if code, _, errOut := runLexArgs("validate", "--collection", "com.example.other", p); code != 1 || !strings.Contains(errOut, "no schema for com.example.other") {
		t.Errorf("unknown collection: exit %d, stderr %q", code, errOut)
	}
	t.Setenv(lexiconsEnv, "")

	// With neither, the schemas built in are used.
	bsky := rec("bsky_post.json", `{"$type":"app.bsky.feed.post","text":"hello","createdAt":"2024-09-01T12:34:56.789Z","langs":["en"]}`)
	if code, out, errOut := runLexArgs("validate", "--collection", "app.bsky.feed.post", "--strict", bsky); code != 0 || out != "valid\n" {
		t.Errorf("built-in catalog: exit %d, stdout %q, stderr %q", code, out, errOut)
	}
	badBsky := rec("bsky_bad.json", `{"$type":"app.bsky.feed.post","text":"hello","createdAt":"yesterday"}`)
	if code, _, errOut := runLexArgs("validate", "--collection", "app.bsky.feed.post", badBsky); code != 1 || !strings.HasPrefix(errOut, "createdAt: ") {
		t.Errorf("built-in catalog, bad record: exit %d, stderr %q", code, errOut)
	}
	if code, _, errOut := runLexArgs("validate", "--collection", "com.example.post", p); code != 1 || !strings.Contains(errOut, "catalog (built-in) has no schema for com.example.post") {
		t.Errorf("built-in catalog, unknown collection: exit %d, stderr %q", code, errOut)
	}

	for _, tc := range []struct {
		name    string
		args    []string
		wantErr string
	}{
		{"no collection", []string{"--catalog", cat, p}, "--collection is required"},
		{"bad collection", []string{"--catalog", cat, "--collection", "not an nsid", p}, "--collection"},
		{"no file", []string{"--catalog", cat, "--collection", "com.example.post"}, "exactly one record file"},
		{"two files", []string{"--catalog", cat, "--collection", "com.example.post", p, p}, "exactly one record file"},
		{"strict and lenient", []string{"--catalog", cat, "--collection", "com.example.post", "--strict", "--lenient", p}, "exclude each other"},
	} {
		code, _, errOut := runLexArgs(append([]string{"validate"}, tc.args...)...)
		if code != 2 || !strings.Contains(errOut, tc.wantErr) {
			t.Errorf("%s: exit %d (want 2), stderr %q (want %q)", tc.name, code, errOut, tc.wantErr)
		}
	}
}

// sharedLexicons returns the lexicons shared by the Welkin projects
// (../shared/lexicons beside the module root, or WELKIN_LEXICONS_DIR). It
// skips t loudly when they are absent, and fails it when CI=true.
func sharedLexicons(t *testing.T) string {
	t.Helper()
	dir := os.Getenv("WELKIN_LEXICONS_DIR")
	if dir == "" {
		// Tests run in cmd/welkin under the module root.
		dir = filepath.Join("..", "..", "..", "shared", "lexicons")
	}
	if st, err := os.Stat(dir); err != nil || !st.IsDir() {
		msg := "LEXICON SCHEMAS MISSING: " + dir + " not found; these tests did not run"
		if os.Getenv("CI") == "true" {
			t.Fatal(msg)
		}
		t.Skip(msg)
	}
	return dir
}

// sharedPost is an app.bsky.feed.post with a reply, a link facet and an
// image embed.
const sharedPost = `{
  "$type": "app.bsky.feed.post",
  "text": "Notes on the MST: https://example.com/notes",
  "createdAt": "2026-11-25T14:03:11.482Z",
  "langs": ["en"],
  "facets": [{
    "index": {"byteStart": 18, "byteEnd": 43},
    "features": [{"$type": "app.bsky.richtext.facet#link", "uri": "https://example.com/notes"}]
  }],
  "reply": {
    "root": {"uri": "at://did:plc:ewvi7nxzyoun6zhxrhs64oiz/app.bsky.feed.post/3l3qo2vuowo2b", "cid": "bafyreidfayvfuwqa7qlnopdjiqrxzs6blmoeu4rujcjtnci5beludirz2a"},
    "parent": {"uri": "at://did:plc:ewvi7nxzyoun6zhxrhs64oiz/app.bsky.feed.post/3l3qo2vutsw2b", "cid": "bafyreidfayvfuwqa7qlnopdjiqrxzs6blmoeu4rujcjtnci5beludirz2a"}
  },
  "embed": {
    "$type": "app.bsky.embed.images",
    "images": [{
      "alt": "a diagram of a tree",
      "image": {"$type": "blob", "ref": {"$link": "bafkreid5r2qzxkyhk2w7oinv5nxvd2yoto2jgnuajlmpb5jcvryrul2a7e"}, "mimeType": "image/png", "size": 48213},
      "aspectRatio": {"width": 1200, "height": 800}
    }]
  }
}`

func TestLexSharedLexicons(t *testing.T) {
	lex := sharedLexicons(t)
	dir := t.TempDir()

	good := writeFile(t, dir, "post.json", sharedPost)
	code, out, errOut := runLexArgs("validate", "--catalog", lex, "--collection", "app.bsky.feed.post", good)
	if code != 0 || out != "valid\n" {
		t.Fatalf("valid post: exit %d, stdout %q, stderr %q", code, out, errOut)
	}

	badImage := writeFile(t, dir, "bad-image.json", strings.Replace(sharedPost, `"image/png"`, `"video/mp4"`, 1))
	code, _, errOut = runLexArgs("validate", "--catalog", lex, "--collection", "app.bsky.feed.post", badImage)
	if code != 1 || !strings.HasPrefix(errOut, "embed.images[0].image: ") {
		t.Errorf("video in an image embed: exit %d, stderr %q", code, errOut)
	}
	badRoot := writeFile(t, dir, "bad-root.json", strings.Replace(sharedPost, "at://did:plc:ewvi7nxzyoun6zhxrhs64oiz/app.bsky.feed.post/3l3qo2vuowo2b", "https://example.com/", 1))
	code, _, errOut = runLexArgs("validate", "--catalog", lex, "--collection", "app.bsky.feed.post", badRoot)
	if code != 1 || !strings.HasPrefix(errOut, "reply.root.uri: ") {
		t.Errorf("reply root not an AT-URI: exit %d, stderr %q", code, errOut)
	}

	// The shared post schema checks, and its references resolve.
	postSchema := filepath.Join(lex, "app", "bsky", "feed", "post.json")
	code, out, errOut = runLexArgs("check", "--catalog", lex, postSchema)
	if code != 0 || out != "ok app.bsky.feed.post\n" {
		t.Errorf("check post schema: exit %d, stdout %q, stderr %q", code, out, errOut)
	}
	// A broken copy of it fails with the path of the fault.
	broken := writeFile(t, dir, "broken-post.json", strings.Replace(readFile(t, postSchema), `"maxGraphemes": 300`, `"maxGraphemes": -1`, 1))
	code, _, errOut = runLexArgs("check", "--catalog", lex, broken)
	if code != 1 || !strings.Contains(errOut, broken+": ") || !strings.Contains(errOut, "defs.main.record.properties.text") {
		t.Errorf("broken post schema: exit %d, stderr %q", code, errOut)
	}
}

func readFile(t *testing.T, p string) string {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}
