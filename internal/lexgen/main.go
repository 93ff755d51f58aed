// Command lexgen generates the Go packages under api/ from Lexicon schema
// documents: typed records and objects with DAG-CBOR and JSON marshalers,
// union sum types, XRPC parameter and body types, client functions,
// handler interfaces, and an embedded copy of the schemas (without their
// descriptions) for validation at run time.
//
// Usage, from api/:
//
//	go run ../internal/lexgen -lexicons ../../shared/lexicons -out .
package main

import (
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

func main() {
	lexDir := flag.String("lexicons", "", "directory holding the Lexicon JSON documents (searched recursively)")
	outDir := flag.String("out", ".", "output directory (the api/ directory of the module)")
	flag.Parse()
	if *lexDir == "" {
		fmt.Fprintln(os.Stderr, "lexgen: -lexicons is required")
		os.Exit(2)
	}
	files, skipped, err := Generate(*lexDir)
	if err != nil {
		fmt.Fprintln(os.Stderr, "lexgen:", err)
		os.Exit(1)
	}
	for _, s := range skipped {
		fmt.Fprintln(os.Stderr, "lexgen: skipped:", s)
	}
	if err := WriteFiles(*outDir, files); err != nil {
		fmt.Fprintln(os.Stderr, "lexgen:", err)
		os.Exit(1)
	}
}

// WriteFiles writes the generated files under dir and removes generated Go
// files there that are no longer produced.
func WriteFiles(dir string, files map[string][]byte) error {
	err := filepath.WalkDir(dir, func(p string, de os.DirEntry, err error) error {
		if err != nil || de.IsDir() || !strings.HasSuffix(p, ".go") {
			return err
		}
		rel, err := filepath.Rel(dir, p)
		if err != nil {
			return err
		}
		if _, ok := files[filepath.ToSlash(rel)]; ok {
			return nil
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		if strings.HasPrefix(string(b), generatedHeader) {
			return os.Remove(p)
		}
		return nil
	})
	if err != nil {
		return err
	}
	for _, name := range sortedKeys(files) {
		p := filepath.Join(dir, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			return err
		}
		if old, err := os.ReadFile(p); err == nil && string(old) == string(files[name]) {
			continue
		}
		if err := os.WriteFile(p, files[name], 0o644); err != nil {
			return err
		}
	}
	return nil
}
