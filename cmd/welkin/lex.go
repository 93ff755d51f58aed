package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/welkin-atproto/welkin/api"
	"github.com/welkin-atproto/welkin/atproto/data"
	"github.com/welkin-atproto/welkin/atproto/lexicon"
	"github.com/welkin-atproto/welkin/atproto/syntax"
)

// lexiconsEnv names the environment variable "welkin lex validate" reads
// its catalog directory from when --catalog is not given. With neither, it
// uses the schemas embedded in the api package.
const lexiconsEnv = "WELKIN_LEXICONS"

// lexStdin is what "welkin lex validate -" reads; tests replace it.
var lexStdin io.Reader = os.Stdin

func lexUsage(w io.Writer) {
	fmt.Fprintln(w, "usage: welkin lex <verb> ...")
	fmt.Fprintln(w)
	fmt.Fprintln(w, "Checks Lexicon schema documents and validates records against them.")
	fmt.Fprintln(w)
	fmt.Fprintln(w, "  check [--catalog DIR] <schema.json>...")
	fmt.Fprintln(w, "        parse and check each schema; with --catalog, also resolve its")
	fmt.Fprintln(w, "        references against the schemas under DIR")
	fmt.Fprintln(w, "  validate --collection NSID [--catalog DIR] [--strict|--lenient] <record.json|->")
	fmt.Fprintln(w, "        validate a record (JSON) against its collection's schema; the")
	fmt.Fprintln(w, "        catalog is DIR, else the directory in $"+lexiconsEnv+", else the")
	fmt.Fprintln(w, "        schemas built into welkin")
}

func runLex(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		lexUsage(stderr)
		return 2
	}
	switch args[0] {
	case "-h", "--help", "help":
		lexUsage(stdout)
		return 0
	case "check":
		return runLexCheck(args[1:], stdout, stderr)
	case "validate":
		return runLexValidate(args[1:], stdout, stderr)
	default:
		fmt.Fprintf(stderr, "welkin lex: unknown verb %q\n", args[0])
		lexUsage(stderr)
		return 2
	}
}

// checkedFile is one schema named on the "welkin lex check" command line.
type checkedFile struct {
	name   string
	raw    []byte
	sf     *lexicon.SchemaFile
	failed bool
}

func runLexCheck(args []string, stdout, stderr io.Writer) int {
	fset := flag.NewFlagSet("lex check", flag.ContinueOnError)
	fset.SetOutput(stderr)
	catalogDir := fset.String("catalog", "", "directory of schemas to resolve references against")
	fset.Usage = func() {
		fmt.Fprintln(stderr, "usage: welkin lex check [--catalog DIR] <schema.json>...")
		fset.PrintDefaults()
	}
	pos, err := parseInterleaved(fset, args)
	if err != nil {
		return flagExitCode(err)
	}
	if len(pos) == 0 {
		fmt.Fprintln(stderr, "welkin lex check: no schema files given")
		fset.Usage()
		return 2
	}

	// Parse and check each document on its own.
	files := make([]*checkedFile, 0, len(pos))
	byID := map[syntax.NSID]*checkedFile{}
	for _, name := range pos {
		f := &checkedFile{name: name}
		files = append(files, f)
		f.raw, err = os.ReadFile(name)
		if err != nil {
			fmt.Fprintf(stderr, "%v\n", err)
			f.failed = true
			continue
		}
		f.sf, err = lexicon.ParseSchemaFile(f.raw)
		if err != nil {
			fmt.Fprintf(stderr, "%s: %v\n", name, err)
			f.failed = true
			continue
		}
		if other, dup := byID[f.sf.ID]; dup {
			fmt.Fprintf(stderr, "%s: lexicon %s: also defined by %s\n", name, f.sf.ID, other.name)
			f.failed = true
			continue
		}
		byID[f.sf.ID] = f
	}

	// Link the documents together (with the catalog's, when there is one),
	// which resolves every reference between them.
	cat := lexicon.NewCatalog()
	catalogOK := true
	if *catalogDir != "" {
		if err := addCatalogDir(cat, *catalogDir, byID); err != nil {
			fmt.Fprintf(stderr, "welkin lex check: catalog: %v\n", err)
			catalogOK = false
		}
	}
	for _, f := range files {
		if f.failed {
			continue
		}
		if err := cat.Add(f.sf); err != nil {
			fmt.Fprintf(stderr, "%s: %v\n", f.name, err)
			f.failed = true
		}
	}
	if catalogOK {
		if err := cat.Link(); err != nil {
			var se *lexicon.SchemaError
			if errors.As(err, &se) && byID[syntax.NSID(se.ID)] != nil {
				f := byID[syntax.NSID(se.ID)]
				fmt.Fprintf(stderr, "%s: %v\n", f.name, err)
				f.failed = true
			} else {
				fmt.Fprintf(stderr, "welkin lex check: catalog: %v\n", err)
			}
			catalogOK = false
		}
	}

	// With a catalog, every reference a checked document makes must
	// resolve: a reference to a schema file neither the catalog nor the
	// command line holds is reported against the document that makes it.
	if catalogOK && *catalogDir != "" {
		missing, err := cat.Unresolved()
		if err != nil {
			fmt.Fprintf(stderr, "welkin lex check: catalog: %v\n", err)
			catalogOK = false
		}
		missingSet := map[string]bool{}
		for _, ref := range missing {
			missingSet[ref] = true
		}
		for _, f := range files {
			if f.failed || len(missingSet) == 0 {
				continue
			}
			refs, err := externalRefs(f.raw)
			if err != nil {
				fmt.Fprintf(stderr, "%s: %v\n", f.name, err)
				f.failed = true
				continue
			}
			for _, ref := range refs {
				if missingSet[ref] {
					fmt.Fprintf(stderr, "%s: unresolved reference %s: no such schema in %s or on the command line\n", f.name, ref, *catalogDir)
					f.failed = true
				}
			}
		}
	}

	code := 0
	if !catalogOK {
		code = 1
	}
	for _, f := range files {
		if f.failed {
			code = 1
			continue
		}
		fmt.Fprintf(stdout, "ok %s\n", f.sf.ID)
	}
	return code
}

// externalRefs lists the references one schema document makes to other
// schema files: those its own catalog, holding it alone, can not resolve.
func externalRefs(raw []byte) ([]string, error) {
	sf, err := lexicon.ParseSchemaFile(raw)
	if err != nil {
		return nil, err
	}
	c := lexicon.NewCatalog()
	if err := c.Add(sf); err != nil {
		return nil, err
	}
	return c.Unresolved()
}

// addCatalogDir adds every *.json schema under dir to cat, except those
// whose id is in skip (the command line's version of a schema replaces the
// directory's).
func addCatalogDir(cat *lexicon.Catalog, dir string, skip map[syntax.NSID]*checkedFile) error {
	var problems []string
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() || !strings.HasSuffix(p, ".json") {
			return nil
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		sf, err := lexicon.ParseSchemaFile(b)
		if err != nil {
			problems = append(problems, fmt.Sprintf("%s: %v", p, err))
			return nil
		}
		if skip[sf.ID] != nil {
			return nil
		}
		if err := cat.Add(sf); err != nil {
			problems = append(problems, fmt.Sprintf("%s: %v", p, err))
		}
		return nil
	})
	if err != nil {
		return err
	}
	if len(problems) > 0 {
		sort.Strings(problems)
		return errors.New(strings.Join(problems, "\n"))
	}
	return nil
}

func runLexValidate(args []string, stdout, stderr io.Writer) int {
	fset := flag.NewFlagSet("lex validate", flag.ContinueOnError)
	fset.SetOutput(stderr)
	collection := fset.String("collection", "", "the record's collection (NSID), whose schema it must match")
	catalogDir := fset.String("catalog", "", "directory of schemas (default $"+lexiconsEnv+", else the built-in schemas)")
	strict := fset.Bool("strict", false, "also refuse undeclared fields and unknown open-union variants")
	lenient := fset.Bool("lenient", false, "accept legacy blobs and loose datetimes (old data)")
	fset.Usage = func() {
		fmt.Fprintln(stderr, "usage: welkin lex validate --collection NSID [--catalog DIR] [--strict|--lenient] <record.json|->")
		fset.PrintDefaults()
	}
	pos, err := parseInterleaved(fset, args)
	if err != nil {
		return flagExitCode(err)
	}
	if len(pos) != 1 {
		fmt.Fprintln(stderr, "welkin lex validate: want exactly one record file (or - for stdin)")
		fset.Usage()
		return 2
	}
	if *collection == "" {
		fmt.Fprintln(stderr, "welkin lex validate: --collection is required")
		fset.Usage()
		return 2
	}
	if _, err := syntax.ParseNSID(*collection); err != nil {
		fmt.Fprintf(stderr, "welkin lex validate: --collection: %v\n", err)
		return 2
	}
	if *strict && *lenient {
		fmt.Fprintln(stderr, "welkin lex validate: --strict and --lenient exclude each other")
		return 2
	}
	var flags lexicon.Flags
	switch {
	case *strict:
		flags = lexicon.Strict
	case *lenient:
		flags = lexicon.Lenient
	}
	dir := *catalogDir
	if dir == "" {
		dir = os.Getenv(lexiconsEnv)
	}
	var cat *lexicon.Catalog
	catName := dir
	if dir == "" {
		catName = "(built-in)"
		cat, err = api.Catalog()
		if err == nil {
			err = cat.Link()
		}
	} else {
		cat, err = lexicon.LoadCatalogDir(dir)
	}
	if err != nil {
		fmt.Fprintf(stderr, "welkin lex validate: catalog %s: %v\n", catName, err)
		return 1
	}
	if cat.SchemaFile(syntax.NSID(*collection)) == nil {
		fmt.Fprintf(stderr, "welkin lex validate: catalog %s has no schema for %s\n", catName, *collection)
		return 1
	}

	name := pos[0]
	var raw []byte
	if name == "-" {
		name = "stdin"
		raw, err = io.ReadAll(lexStdin)
	} else {
		raw, err = os.ReadFile(name)
	}
	if err != nil {
		fmt.Fprintf(stderr, "welkin lex validate: %v\n", err)
		return 1
	}
	record, err := data.ParseJSON(raw)
	if err != nil {
		fmt.Fprintf(stderr, "%s: %v\n", name, err)
		return 1
	}
	if err := cat.ValidateRecordFlags(*collection, record, flags); err != nil {
		fmt.Fprintln(stderr, err)
		return 1
	}
	fmt.Fprintln(stdout, "valid")
	return 0
}
