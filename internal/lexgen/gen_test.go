package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// lexDir is the schema directory as seen from this package's directory.
const lexDir = "../../../shared/lexicons"

func requireLexicons(t *testing.T) {
	t.Helper()
	if _, err := os.Stat(lexDir); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("Lexicon schemas missing at %s (required under CI): %v", lexDir, err)
		}
		t.Skipf("SKIPPING: Lexicon schemas not found at %s; regeneration is not checked", lexDir)
	}
}

// TestRegenerationIsIdentical regenerates api/ in memory and compares it
// byte for byte with the committed files, and checks that no stale
// generated file remains.
func TestRegenerationIsIdentical(t *testing.T) {
	requireLexicons(t)
	files, _, err := Generate(lexDir)
	if err != nil {
		t.Fatal(err)
	}
	apiDir := "../../api"
	for name, want := range files {
		got, err := os.ReadFile(filepath.Join(apiDir, filepath.FromSlash(name)))
		if err != nil {
			t.Errorf("%s: %v (run go generate ./api/...)", name, err)
			continue
		}
		if !bytes.Equal(got, want) {
			t.Errorf("api/%s differs from the generator's output (run go generate ./api/...)", name)
		}
	}
	err = filepath.WalkDir(apiDir, func(p string, de os.DirEntry, err error) error {
		if err != nil || de.IsDir() || !strings.HasSuffix(p, ".go") {
			return err
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(apiDir, p)
		if strings.HasPrefix(string(b), generatedHeader) {
			if _, ok := files[filepath.ToSlash(rel)]; !ok {
				t.Errorf("stale generated file api/%s", rel)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// TestDeterministic generates twice and into a directory, and checks the
// outputs agree.
func TestDeterministic(t *testing.T) {
	requireLexicons(t)
	a, _, err := Generate(lexDir)
	if err != nil {
		t.Fatal(err)
	}
	b, _, err := Generate(lexDir)
	if err != nil {
		t.Fatal(err)
	}
	if len(a) != len(b) {
		t.Fatalf("file counts differ: %d vs %d", len(a), len(b))
	}
	for k := range a {
		if !bytes.Equal(a[k], b[k]) {
			t.Errorf("%s differs between runs", k)
		}
	}
	dir := t.TempDir()
	if err := WriteFiles(dir, a); err != nil {
		t.Fatal(err)
	}
	for k, v := range a {
		got, err := os.ReadFile(filepath.Join(dir, filepath.FromSlash(k)))
		if err != nil || !bytes.Equal(got, v) {
			t.Errorf("%s not written as generated: %v", k, err)
		}
	}
}

func TestNoDescriptionProse(t *testing.T) {
	requireLexicons(t)
	files, _, err := Generate(lexDir)
	if err != nil {
		t.Fatal(err)
	}
	// A distinctive sentence from app.bsky.feed.post's schema.
	const prose = "The primary post content"
	for name, b := range files {
		if bytes.Contains(b, []byte(prose)) {
			t.Errorf("%s carries description prose", name)
		}
	}
	if !bytes.Contains(files["bsky/feed_post.go"], []byte("maxGraphemes=300")) {
		t.Error("constraints missing from the post type")
	}
}

func TestNaming(t *testing.T) {
	for _, c := range []struct{ nsid, pkg, base string }{
		{"app.bsky.feed.post", "bsky", "FeedPost"},
		{"com.atproto.repo.strongRef", "atproto", "RepoStrongRef"},
		{"chat.bsky.convo.defs", "chat", "ConvoDefs"},
		{"tools.ozone.moderation.emitEvent", "ozone", "ModerationEmitEvent"},
		{"site.standard.document", "standard", "Document"},
	} {
		if p := pkgOf(c.nsid); p != c.pkg {
			t.Errorf("pkgOf(%s) = %s, want %s", c.nsid, p, c.pkg)
		}
		if b := baseName(c.nsid); b != c.base {
			t.Errorf("baseName(%s) = %s, want %s", c.nsid, b, c.base)
		}
	}
	if k := cborKey("text"); k != "dtext" {
		t.Errorf("cborKey = %q", k)
	}
}
