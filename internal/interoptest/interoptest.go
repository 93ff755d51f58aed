// Package interoptest locates the public atproto interop test vectors for
// tests. The vectors live outside the repository, in ../shared/interop
// relative to the module root, or wherever WELKIN_INTEROP_DIR points.
//
// When the folder is missing a test is skipped with a loud message, except
// when CI=true, where a missing folder fails the test: CI must never pass
// without having checked the vectors.
package interoptest

import (
	"os"
	"path/filepath"
	"runtime"
	"testing"
)

// Dir returns the path of one subfolder of the interop vectors (for example
// "syntax" or "data-model"). It skips or fails t when the folder is absent.
func Dir(t testing.TB, sub string) string {
	t.Helper()
	root := os.Getenv("WELKIN_INTEROP_DIR")
	if root == "" {
		root = filepath.Join(moduleRoot(), "..", "shared", "interop")
	}
	dir := filepath.Join(root, sub)
	if st, err := os.Stat(dir); err != nil || !st.IsDir() {
		msg := "INTEROP VECTORS MISSING: " + dir + " not found; these tests did not run"
		if os.Getenv("CI") == "true" {
			t.Fatal(msg)
		}
		t.Skip(msg)
	}
	return dir
}

// File returns the path of one file in the interop vectors, such as
// "syntax/did_syntax_valid.txt".
func File(t testing.TB, rel string) string {
	t.Helper()
	dir := Dir(t, filepath.Dir(rel))
	p := filepath.Join(dir, filepath.Base(rel))
	if _, err := os.Stat(p); err != nil {
		t.Fatalf("interop vector file %s: %v", p, err)
	}
	return p
}

// Lines reads a line-oriented vector file: blank lines and lines starting
// with '#' are dropped; every other line is returned exactly as written,
// including leading and trailing spaces, which some vectors rely on.
func Lines(t testing.TB, rel string) []string {
	t.Helper()
	raw, err := os.ReadFile(File(t, rel))
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	start := 0
	for i := 0; i <= len(raw); i++ {
		if i < len(raw) && raw[i] != '\n' {
			continue
		}
		line := string(raw[start:i])
		start = i + 1
		if len(line) > 0 && line[len(line)-1] == '\r' {
			line = line[:len(line)-1]
		}
		if line == "" || line[0] == '#' {
			continue
		}
		out = append(out, line)
	}
	if len(out) == 0 {
		t.Fatalf("interop vector file %s holds no vectors", rel)
	}
	return out
}

// moduleRoot finds the directory holding go.mod, starting from this source
// file, so tests work from any package directory.
func moduleRoot() string {
	_, file, _, ok := runtime.Caller(0)
	if !ok {
		return "."
	}
	dir := filepath.Dir(file)
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "."
		}
		dir = parent
	}
}
