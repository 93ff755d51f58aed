package lexicon

import (
	"encoding/json"
	"os"
	"path/filepath"
	"runtime"
	"sync"
	"testing"

	"github.com/welkin-atproto/welkin/atproto/data"
	"github.com/welkin-atproto/welkin/internal/interoptest"
)

// lexiconsDir returns ../shared/lexicons relative to the module root (or
// WELKIN_LEXICONS_DIR). It skips t loudly when the folder is absent, and
// fails it when CI=true.
func lexiconsDir(t testing.TB) string {
	t.Helper()
	dir := os.Getenv("WELKIN_LEXICONS_DIR")
	if dir == "" {
		_, file, _, _ := runtime.Caller(0)
		// This file is atproto/lexicon/interop_test.go under the module root.
		dir = filepath.Join(filepath.Dir(file), "..", "..", "..", "shared", "lexicons")
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

var (
	sharedOnce sync.Once
	sharedCat  *Catalog
	sharedErr  error
)

// sharedCatalog loads ../shared/lexicons once per test binary.
func sharedCatalog(t testing.TB) *Catalog {
	t.Helper()
	dir := lexiconsDir(t)
	sharedOnce.Do(func() { sharedCat, sharedErr = LoadCatalogDir(dir) })
	if sharedErr != nil {
		t.Fatalf("loading %s: %v", dir, sharedErr)
	}
	return sharedCat
}

type schemaVector struct {
	Name    string          `json:"name"`
	Lexicon json.RawMessage `json:"lexicon"`
}

func readVectors[T any](t *testing.T, rel string) []T {
	t.Helper()
	b, err := os.ReadFile(interoptest.File(t, rel))
	if err != nil {
		t.Fatal(err)
	}
	var out []T
	if err := json.Unmarshal(b, &out); err != nil {
		t.Fatal(err)
	}
	if len(out) == 0 {
		t.Fatalf("%s holds no vectors", rel)
	}
	return out
}

func TestInteropLexiconValid(t *testing.T) {
	for _, v := range readVectors[schemaVector](t, "lexicon/lexicon-valid.json") {
		sf, err := ParseSchemaFile(v.Lexicon)
		if err != nil {
			t.Errorf("%s: %v", v.Name, err)
			continue
		}
		c := NewCatalog()
		if err := c.Add(sf); err != nil {
			t.Errorf("%s: add: %v", v.Name, err)
		}
		if err := c.Link(); err != nil {
			t.Errorf("%s: link: %v", v.Name, err)
		}
	}
}

func TestInteropLexiconInvalid(t *testing.T) {
	for _, v := range readVectors[schemaVector](t, "lexicon/lexicon-invalid.json") {
		_, err := ParseSchemaFile(v.Lexicon)
		if err == nil {
			t.Errorf("%s: accepted", v.Name)
			continue
		}
		t.Logf("%s: %v", v.Name, err)
	}
}

type recordVector struct {
	Name string          `json:"name"`
	RKey string          `json:"rkey"`
	Data json.RawMessage `json:"data"`
}

func interopCatalog(t *testing.T) *Catalog {
	t.Helper()
	c, err := LoadCatalogDir(interoptest.Dir(t, "lexicon/catalog"))
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestInteropCatalogLoads(t *testing.T) {
	c := interopCatalog(t)
	if len(c.Schemas()) != 5 {
		t.Errorf("catalog holds %d schemas, want 5", len(c.Schemas()))
	}
	// The procedure refers to app.bsky.actor.defs, which this catalog does
	// not hold; it is reported, and resolves once those schemas are added.
	missing, err := c.Unresolved()
	if err != nil || len(missing) != 1 || missing[0] != "app.bsky.actor.defs#preferences" {
		t.Errorf("Unresolved() = %v, %v", missing, err)
	}
	err = c.ValidateInput("example.lexicon.procedure", "application/json", map[string]any{"preferences": []any{}})
	if err == nil {
		t.Error("input through an unresolved ref validated")
	}
}

func TestInteropRecordData(t *testing.T) {
	c := interopCatalog(t)
	for _, v := range readVectors[recordVector](t, "lexicon/record-data-valid.json") {
		rec, err := data.ParseJSON(v.Data)
		if err != nil {
			t.Errorf("%s: parse: %v", v.Name, err)
			continue
		}
		typ, _ := rec["$type"].(string)
		if err := c.ValidateRecord(typ, rec); err != nil {
			t.Errorf("%s: %v", v.Name, err)
		}
		if err := c.ValidateRecordKey(typ, v.RKey); err != nil {
			t.Errorf("%s: rkey: %v", v.Name, err)
		}
	}
	for _, v := range readVectors[recordVector](t, "lexicon/record-data-invalid.json") {
		rec, err := data.ParseJSON(v.Data)
		if err != nil {
			// Data the data model itself refuses can not be a valid record.
			t.Logf("%s: refused by data.ParseJSON: %v", v.Name, err)
			continue
		}
		typ, _ := rec["$type"].(string)
		err = c.ValidateRecord(typ, rec)
		if err == nil {
			t.Errorf("%s: accepted", v.Name)
			continue
		}
		t.Logf("%s: %v", v.Name, err)
	}
}

func TestSharedLexiconsLoad(t *testing.T) {
	dir := lexiconsDir(t)
	n := 0
	err := filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() || filepath.Ext(p) != ".json" {
			return err
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		if _, err := ParseSchemaFile(b); err != nil {
			t.Errorf("%s: %v", p, err)
		}
		n++
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	c := sharedCatalog(t)
	if got := len(c.Schemas()); got != n {
		t.Errorf("catalog holds %d schemas, %d files found", got, n)
	}
	missing, err := c.Unresolved()
	if err != nil {
		t.Fatal(err)
	}
	if len(missing) != 0 {
		t.Errorf("unresolved references: %v", missing)
	}
}

// TestInteropWithSharedLexicons adds the interop catalog to the full set of
// schemas, which resolves its one outside reference.
func TestInteropWithSharedLexicons(t *testing.T) {
	c := NewCatalog()
	if err := c.AddFS(os.DirFS(lexiconsDir(t)), "."); err != nil {
		t.Fatal(err)
	}
	if err := c.AddFS(os.DirFS(interoptest.Dir(t, "lexicon/catalog")), "."); err != nil {
		t.Fatal(err)
	}
	if err := c.Link(); err != nil {
		t.Fatal(err)
	}
	if m, _ := c.Unresolved(); len(m) != 0 {
		t.Fatalf("unresolved: %v", m)
	}
	in := map[string]any{"preferences": []any{
		map[string]any{"$type": "app.bsky.actor.defs#adultContentPref", "enabled": true},
	}}
	if err := c.ValidateInput("example.lexicon.procedure", "application/json", in); err != nil {
		t.Error(err)
	}
	bad := map[string]any{"preferences": []any{
		map[string]any{"$type": "app.bsky.actor.defs#adultContentPref", "enabled": "yes"},
	}}
	err := c.ValidateInput("example.lexicon.procedure", "application/json", bad)
	if err == nil || err.Error() != "preferences[0].enabled: expected a boolean, found string" {
		t.Errorf("got %v", err)
	}
}
