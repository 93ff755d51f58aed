package lexicon

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"sort"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/welkin-atproto/welkin/atproto/syntax"
)

// Catalog holds a set of schema files and validates data against them.
//
// Schemas are added with Add (or loaded by LoadCatalogDir and
// LoadCatalogFS); the first validation after a change links the catalog:
// every reference is resolved and every definition compiled once into a
// tree of validators that point at each other directly. Link can be called
// to do this eagerly and see its errors.
//
// A Catalog is safe for concurrent validation. Add may run concurrently
// with validation too; validations started before Add completes use the
// schemas as they were.
type Catalog struct {
	// Flags are the validation flags used by the methods that take none.
	// Set them before the catalog is shared.
	Flags Flags

	mu    sync.Mutex
	files map[syntax.NSID]*SchemaFile
	defs  map[string]*Def // by fully qualified ref
	state atomic.Pointer[linked]
}

// NewCatalog returns an empty catalog.
func NewCatalog() *Catalog {
	return &Catalog{files: map[syntax.NSID]*SchemaFile{}, defs: map[string]*Def{}}
}

// Add puts a schema file in the catalog. A file with an ID already present
// is refused.
func (c *Catalog) Add(sf *SchemaFile) error {
	if sf == nil {
		return errors.New("lexicon: nil schema file")
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.files == nil {
		c.files, c.defs = map[syntax.NSID]*SchemaFile{}, map[string]*Def{}
	}
	if _, dup := c.files[sf.ID]; dup {
		return fmt.Errorf("lexicon: duplicate schema id %s", sf.ID)
	}
	c.files[sf.ID] = sf
	for _, d := range sf.Defs {
		c.defs[d.Ref()] = d
	}
	c.state.Store(nil)
	return nil
}

// Schemas returns the IDs of every schema file in the catalog, sorted.
func (c *Catalog) Schemas() []syntax.NSID {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := make([]syntax.NSID, 0, len(c.files))
	for id := range c.files {
		out = append(out, id)
	}
	sort.Slice(out, func(i, j int) bool { return out[i] < out[j] })
	return out
}

// SchemaFile returns the schema file with the given ID, or nil.
func (c *Catalog) SchemaFile(id syntax.NSID) *SchemaFile {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.files[id]
}

// normalizeRef turns "nsid#main" into "nsid".
func normalizeRef(ref string) string {
	return strings.TrimSuffix(ref, "#main")
}

// Resolve returns the definition a fully qualified reference ("nsid",
// "nsid#main" or "nsid#name") names. The error wraps ErrNotFound when the
// catalog does not hold it.
func (c *Catalog) Resolve(ref string) (*Def, error) {
	c.mu.Lock()
	d := c.defs[normalizeRef(ref)]
	c.mu.Unlock()
	if d == nil {
		if strings.HasPrefix(ref, "#") {
			return nil, fmt.Errorf("lexicon: reference %q is local; a catalog needs \"nsid#name\"", ref)
		}
		return nil, fmt.Errorf("lexicon: %q: %w", ref, ErrNotFound)
	}
	return d, nil
}

// LoadCatalogDir reads every *.json file under dir (recursively) as a
// schema file into a new catalog, and links it. Any malformed schema,
// duplicate id, or reference that can not be resolved within a loaded
// schema file is an error naming the file and the path inside it.
//
// References to schema files absent from the directory are not load
// errors, so that a partial catalog (say, one application's schemas that
// refer to com.atproto types) can be loaded; data that reaches such a
// reference fails validation with ErrNotFound. Unresolved lists them.
func LoadCatalogDir(dir string) (*Catalog, error) {
	return LoadCatalogFS(os.DirFS(dir), ".")
}

// LoadCatalogFS is LoadCatalogDir for a file system, such as an embed.FS,
// starting at root ("." for all of it).
func LoadCatalogFS(fsys fs.FS, root string) (*Catalog, error) {
	c := NewCatalog()
	if err := c.AddFS(fsys, root); err != nil {
		return nil, err
	}
	if err := c.Link(); err != nil {
		return nil, err
	}
	return c, nil
}

// AddFS adds every *.json file under root in fsys, without linking.
func (c *Catalog) AddFS(fsys fs.FS, root string) error {
	return fs.WalkDir(fsys, root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return fmt.Errorf("lexicon: %s: %w", p, err)
		}
		if d.IsDir() || path.Ext(p) != ".json" {
			return nil
		}
		b, err := fs.ReadFile(fsys, p)
		if err != nil {
			return fmt.Errorf("lexicon: %s: %w", p, err)
		}
		sf, err := ParseSchemaFile(b)
		if err != nil {
			return fmt.Errorf("%s: %w", p, err)
		}
		if err := c.Add(sf); err != nil {
			return fmt.Errorf("%s: %w", p, err)
		}
		return nil
	})
}

// Link resolves every reference and compiles every definition. It reports
// references that point into a loaded schema file but name no definition
// there, and references to definitions of a kind they may not point to
// (a ref to a token, a union variant that is not an object or record).
func (c *Catalog) Link() error {
	_, err := c.linked()
	return err
}

// Unresolved lists the fully qualified references the catalog's schemas
// make to schema files the catalog does not hold, sorted.
func (c *Catalog) Unresolved() ([]string, error) {
	l, err := c.linked()
	if err != nil {
		return nil, err
	}
	return append([]string(nil), l.missing...), nil
}

func (c *Catalog) linked() (*linked, error) {
	if l := c.state.Load(); l != nil {
		return l, nil
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if l := c.state.Load(); l != nil {
		return l, nil
	}
	lk := &linker{c: c, memo: map[*Def]validator{}, missing: map[string]bool{}, l: &linked{
		defs:    map[string]validator{},
		objects: map[string]*objectV{},
		params:  map[string]*paramsV{},
		bodies:  map[*Body]validator{},
		msgs:    map[string]*unionV{},
	}}
	if err := lk.run(); err != nil {
		return nil, err
	}
	for m := range lk.missing {
		lk.l.missing = append(lk.l.missing, m)
	}
	sort.Strings(lk.l.missing)
	c.state.Store(lk.l)
	return lk.l, nil
}

// linked is the compiled form of a catalog.
type linked struct {
	defs    map[string]validator // data definitions by ref
	objects map[string]*objectV  // object and record definitions by ref, for open unions
	params  map[string]*paramsV  // by endpoint NSID
	bodies  map[*Body]validator
	msgs    map[string]*unionV // subscription messages by NSID
	missing []string
}

type linker struct {
	c       *Catalog
	memo    map[*Def]validator
	missing map[string]bool
	l       *linked
}

func (lk *linker) run() error {
	ids := make([]string, 0, len(lk.c.files))
	for id := range lk.c.files {
		ids = append(ids, string(id))
	}
	sort.Strings(ids)
	for _, id := range ids {
		sf := lk.c.files[syntax.NSID(id)]
		for _, name := range sf.DefNames {
			d := sf.Defs[name]
			path := "defs." + name
			if err := lk.top(d, path); err != nil {
				var se *SchemaError
				if errors.As(err, &se) && se.ID == "" {
					se.ID = id
				}
				return err
			}
		}
	}
	return nil
}

func (lk *linker) top(d *Def, path string) error {
	switch s := d.Schema.(type) {
	case *Query:
		return lk.endpoint(d, path, s.Parameters, nil, s.Output)
	case *Procedure:
		return lk.endpoint(d, path, s.Parameters, s.Input, s.Output)
	case *Subscription:
		if err := lk.endpoint(d, path, s.Parameters, nil, nil); err != nil {
			return err
		}
		u, err := lk.union(d.NSID, s.Message.Schema, path+".message.schema")
		if err != nil {
			return err
		}
		lk.l.msgs[string(d.NSID)] = u
		return nil
	case *PermissionSet, *Token:
		return nil
	}
	v, err := lk.def(d, path)
	if err != nil {
		return err
	}
	lk.l.defs[d.Ref()] = v
	switch x := v.(type) {
	case *objectV:
		lk.l.objects[d.Ref()] = x
	case *recordV:
		lk.l.objects[d.Ref()] = x.obj
	}
	return nil
}

func (lk *linker) endpoint(d *Def, path string, params *Params, in, out *Body) error {
	if params != nil {
		pv, err := lk.params(d.NSID, params, path+".parameters")
		if err != nil {
			return err
		}
		lk.l.params[string(d.NSID)] = pv
	}
	for _, b := range []struct {
		name string
		body *Body
	}{{"input", in}, {"output", out}} {
		if b.body == nil || b.body.Schema == nil {
			continue
		}
		v, err := lk.node(d.NSID, b.body.Schema, path+"."+b.name+".schema")
		if err != nil {
			return err
		}
		lk.l.bodies[b.body] = v
	}
	return nil
}

// def compiles a named data definition once.
func (lk *linker) def(d *Def, path string) (validator, error) {
	if v, ok := lk.memo[d]; ok {
		return v, nil
	}
	switch s := d.Schema.(type) {
	case *Record:
		ov := &objectV{}
		rv := &recordV{nsid: string(d.NSID), key: s.Key, obj: ov}
		lk.memo[d] = rv
		return rv, lk.fillObject(ov, d.NSID, s.Record, path+".record")
	case *Object:
		ov := &objectV{}
		lk.memo[d] = ov
		return ov, lk.fillObject(ov, d.NSID, s, path)
	case *Array:
		av := &arrayV{minLen: optOr(s.MinLength), maxLen: optOr(s.MaxLength)}
		lk.memo[d] = av
		items, err := lk.node(d.NSID, s.Items, path+".items")
		av.items = items
		return av, err
	}
	v, err := lk.node(d.NSID, d.Schema, path)
	if err == nil {
		lk.memo[d] = v
	}
	return v, err
}

// target finds the definition a fully qualified ref names. It returns
// (nil, nil) for a ref into a schema file the catalog does not hold.
func (lk *linker) target(ref, path string) (*Def, error) {
	if d := lk.c.defs[ref]; d != nil {
		return d, nil
	}
	nsid, _, _ := strings.Cut(ref, "#")
	if _, ok := lk.c.files[syntax.NSID(nsid)]; ok {
		return nil, perr(path, "reference %q not found: schema %s has no such definition", ref, nsid)
	}
	lk.missing[ref] = true
	return nil, nil
}

func (lk *linker) node(nsid syntax.NSID, s Schema, path string) (validator, error) {
	switch s := s.(type) {
	case *Boolean:
		bv := &boolV{}
		if s.Const != nil {
			bv.hasConst, bv.constV = true, *s.Const
		}
		return bv, nil
	case *Integer:
		return &intV{s: s}, nil
	case *String:
		return compileString(s), nil
	case *Bytes:
		return &bytesV{minLen: optOr(s.MinLength), maxLen: optOr(s.MaxLength)}, nil
	case *CIDLink:
		return cidV{}, nil
	case *Blob:
		return compileBlob(s), nil
	case *Unknown:
		return unknownV{}, nil
	case *Array:
		items, err := lk.node(nsid, s.Items, path+".items")
		if err != nil {
			return nil, err
		}
		return &arrayV{minLen: optOr(s.MinLength), maxLen: optOr(s.MaxLength), items: items}, nil
	case *Object:
		ov := &objectV{}
		return ov, lk.fillObject(ov, nsid, s, path)
	case *Ref:
		d, err := lk.target(s.Target, path+".ref")
		if err != nil {
			return nil, err
		}
		if d == nil {
			return &unresolvedV{ref: s.Target}, nil
		}
		switch d.Schema.(type) {
		case *Token:
			return nil, perr(path+".ref", "reference %q points to a token, which has no data form", s.Target)
		case *Query, *Procedure, *Subscription, *PermissionSet:
			return nil, perr(path+".ref", "reference %q points to a %s, which has no data form", s.Target, d.Type())
		}
		v, err := lk.def(d, "defs."+d.Name)
		return v, tagID(err, d.NSID)
	case *Union:
		return lk.union(nsid, s, path)
	}
	return nil, perr(path, "type %q is not allowed here", s.Type())
}

func (lk *linker) union(_ syntax.NSID, s *Union, path string) (*unionV, error) {
	uv := &unionV{closed: s.Closed, refs: s.Targets}
	for i, t := range s.Targets {
		rpath := fmt.Sprintf("%s.refs[%d]", path, i)
		d, err := lk.target(t, rpath)
		if err != nil {
			return nil, err
		}
		if d == nil {
			// The variant's schema is not in the catalog: data of this
			// type is accepted as an open variant would be, unless the
			// flags demand known types. Keep it listed so a closed union
			// still admits it.
			uv.variants = append(uv.variants, variant{typ: t, obj: nil})
			continue
		}
		v, err := lk.def(d, "defs."+d.Name)
		if err != nil {
			return nil, tagID(err, d.NSID)
		}
		var obj *objectV
		switch x := v.(type) {
		case *objectV:
			obj = x
		case *recordV:
			obj = x.obj
		default:
			return nil, perr(rpath, "union variant %q is a %s; variants must be objects or records", t, d.Type())
		}
		uv.variants = append(uv.variants, variant{typ: t, obj: obj})
	}
	return uv, nil
}

func (lk *linker) fillObject(ov *objectV, nsid syntax.NSID, s *Object, path string) error {
	ov.byName = make(map[string]struct{}, len(s.PropertyNames))
	ov.props = make([]propV, 0, len(s.PropertyNames))
	for _, name := range s.PropertyNames {
		v, err := lk.node(nsid, s.Properties[name], path+".properties."+name)
		if err != nil {
			return err
		}
		ov.props = append(ov.props, propV{name: name, v: v, required: s.IsRequired(name), nullable: s.IsNullable(name)})
		ov.byName[name] = struct{}{}
	}
	return nil
}

// tagID names the schema a SchemaError arose in, when not yet named.
func tagID(err error, id syntax.NSID) error {
	var se *SchemaError
	if errors.As(err, &se) && se.ID == "" {
		se.ID = string(id)
	}
	return err
}
