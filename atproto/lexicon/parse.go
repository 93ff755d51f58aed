package lexicon

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"

	"github.com/welkin-atproto/welkin/atproto/syntax"
)

// maxSchemaDepth bounds the nesting of a schema document, so that hostile
// input cannot exhaust the stack. Real schemas nest fewer than 10 levels.
const maxSchemaDepth = 64

// SchemaError reports a schema document that is malformed or breaks a rule
// of the Lexicon specification. Path locates the fault inside the document,
// such as "defs.main.record.properties.text".
type SchemaError struct {
	// ID is the document's NSID when it could be read, else "".
	ID      string
	Path    string
	Message string
}

func (e *SchemaError) Error() string {
	var b strings.Builder
	b.WriteString("lexicon")
	if e.ID != "" {
		b.WriteString(" ")
		b.WriteString(e.ID)
	}
	b.WriteString(": ")
	if e.Path != "" {
		b.WriteString(e.Path)
		b.WriteString(": ")
	}
	b.WriteString(e.Message)
	return b.String()
}

// jsonObject is a JSON object that remembers its key order.
type jsonObject struct {
	keys []string
	vals map[string]any
}

// readJSON decodes a JSON document into jsonObject, []any, string,
// json.Number, bool and nil values. Duplicate keys are refused.
func readJSON(b []byte) (any, error) {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	v, err := readValue(dec, 0)
	if err != nil {
		return nil, err
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, errors.New("trailing data after JSON document")
	}
	return v, nil
}

func readValue(dec *json.Decoder, depth int) (any, error) {
	if depth > maxSchemaDepth {
		return nil, fmt.Errorf("JSON nested deeper than %d levels", maxSchemaDepth)
	}
	tok, err := dec.Token()
	if err != nil {
		if err == io.EOF {
			err = io.ErrUnexpectedEOF
		}
		return nil, err
	}
	switch t := tok.(type) {
	case json.Delim:
		switch t {
		case '{':
			obj := &jsonObject{vals: map[string]any{}}
			for dec.More() {
				kt, err := dec.Token()
				if err != nil {
					return nil, err
				}
				k, ok := kt.(string)
				if !ok {
					return nil, errors.New("object key is not a string")
				}
				if _, dup := obj.vals[k]; dup {
					return nil, fmt.Errorf("duplicate key %q", k)
				}
				v, err := readValue(dec, depth+1)
				if err != nil {
					return nil, err
				}
				obj.keys = append(obj.keys, k)
				obj.vals[k] = v
			}
			if _, err := dec.Token(); err != nil {
				return nil, err
			}
			return obj, nil
		case '[':
			arr := []any{}
			for dec.More() {
				v, err := readValue(dec, depth+1)
				if err != nil {
					return nil, err
				}
				arr = append(arr, v)
			}
			if _, err := dec.Token(); err != nil {
				return nil, err
			}
			return arr, nil
		default:
			return nil, fmt.Errorf("unexpected %q", t)
		}
	default:
		return tok, nil
	}
}

// ParseSchemaFile parses one Lexicon document and checks it against the
// rules of the specification that a single document can be checked for:
// field types, value ranges, which definition types may appear where, and
// the syntax of references. References to other documents are resolved
// later, by a Catalog.
func ParseSchemaFile(b []byte) (*SchemaFile, error) {
	root, err := readJSON(b)
	if err != nil {
		return nil, &SchemaError{Message: "invalid JSON: " + err.Error()}
	}
	p := &parser{}
	sf, err := p.file(root)
	if err != nil {
		var se *SchemaError
		if errors.As(err, &se) && se.ID == "" {
			se.ID = p.id
		}
		return nil, err
	}
	return sf, nil
}

type parser struct {
	id string
}

func perr(path, format string, args ...any) error {
	return &SchemaError{Path: path, Message: fmt.Sprintf(format, args...)}
}

func join(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}

func jsonKind(v any) string {
	switch v.(type) {
	case nil:
		return "null"
	case bool:
		return "boolean"
	case json.Number:
		return "number"
	case string:
		return "string"
	case []any:
		return "array"
	case *jsonObject:
		return "object"
	}
	return fmt.Sprintf("%T", v)
}

func asObject(v any, path string) (*jsonObject, error) {
	o, ok := v.(*jsonObject)
	if !ok {
		return nil, perr(path, "expected an object, found %s", jsonKind(v))
	}
	return o, nil
}

// fields reads the members of a schema object, refusing any member whose
// name is not listed in allowed. Lexicon documents in the wild do not carry
// extra members, and a misspelt constraint (say "maxLenght") silently
// ignored would weaken validation, so unknown members are errors.
func fields(o *jsonObject, path string, allowed ...string) error {
	for _, k := range o.keys {
		if !contains(allowed, k) {
			return perr(join(path, k), "unknown field for type %q", typeOf(o))
		}
	}
	return nil
}

func typeOf(o *jsonObject) string {
	s, _ := o.vals["type"].(string)
	return s
}

func optString(o *jsonObject, key, path string) (string, bool, error) {
	v, ok := o.vals[key]
	if !ok {
		return "", false, nil
	}
	s, isStr := v.(string)
	if !isStr {
		return "", false, perr(join(path, key), "expected a string, found %s", jsonKind(v))
	}
	return s, true, nil
}

func reqString(o *jsonObject, key, path string) (string, error) {
	s, ok, err := optString(o, key, path)
	if err != nil {
		return "", err
	}
	if !ok {
		return "", perr(path, "missing required field %q", key)
	}
	return s, nil
}

func optBool(o *jsonObject, key, path string) (*bool, error) {
	v, ok := o.vals[key]
	if !ok {
		return nil, nil
	}
	b, isBool := v.(bool)
	if !isBool {
		return nil, perr(join(path, key), "expected a boolean, found %s", jsonKind(v))
	}
	return &b, nil
}

func toInt(v any, path string) (int64, error) {
	n, ok := v.(json.Number)
	if !ok {
		return 0, perr(path, "expected an integer, found %s", jsonKind(v))
	}
	i, err := strconv.ParseInt(string(n), 10, 64)
	if err != nil {
		return 0, perr(path, "expected an integer, found %s", string(n))
	}
	return i, nil
}

func optInt(o *jsonObject, key, path string) (*int64, error) {
	v, ok := o.vals[key]
	if !ok {
		return nil, nil
	}
	i, err := toInt(v, join(path, key))
	if err != nil {
		return nil, err
	}
	return &i, nil
}

// optLen reads a non-negative length constraint.
func optLen(o *jsonObject, key, path string) (*int, error) {
	i, err := optInt(o, key, path)
	if err != nil || i == nil {
		return nil, err
	}
	if *i < 0 || *i > 1<<31-1 {
		return nil, perr(join(path, key), "must be between 0 and 2^31-1, found %d", *i)
	}
	n := int(*i)
	return &n, nil
}

func checkRange(path, minKey, maxKey string, lo, hi *int) error {
	if lo != nil && hi != nil && *lo > *hi {
		return perr(path, "%s (%d) is greater than %s (%d)", minKey, *lo, maxKey, *hi)
	}
	return nil
}

func optStrings(o *jsonObject, key, path string) ([]string, bool, error) {
	v, ok := o.vals[key]
	if !ok {
		return nil, false, nil
	}
	arr, isArr := v.([]any)
	if !isArr {
		return nil, false, perr(join(path, key), "expected an array of strings, found %s", jsonKind(v))
	}
	out := make([]string, len(arr))
	for i, e := range arr {
		s, isStr := e.(string)
		if !isStr {
			return nil, false, perr(fmt.Sprintf("%s[%d]", join(path, key), i), "expected a string, found %s", jsonKind(e))
		}
		out[i] = s
	}
	return out, true, nil
}

func optLangMap(o *jsonObject, key, path string) (map[string]string, error) {
	v, ok := o.vals[key]
	if !ok {
		return nil, nil
	}
	m, err := asObject(v, join(path, key))
	if err != nil {
		return nil, err
	}
	out := make(map[string]string, len(m.keys))
	for _, k := range m.keys {
		if _, err := syntax.ParseLanguage(k); err != nil {
			return nil, perr(join(path, key), "invalid language code %q", k)
		}
		s, isStr := m.vals[k].(string)
		if !isStr {
			return nil, perr(join(join(path, key), k), "expected a string")
		}
		out[k] = s
	}
	return out, nil
}

var primaryTypes = []string{"record", "query", "procedure", "subscription", "permission-set"}

func (p *parser) file(root any) (*SchemaFile, error) {
	o, err := asObject(root, "")
	if err != nil {
		return nil, err
	}
	// The document's own fields are few; anything else (such as "$type" on
	// a com.atproto.lexicon.schema record) is tolerated.
	idv, ok := o.vals["id"]
	if !ok {
		return nil, perr("", "missing required field %q", "id")
	}
	ids, ok := idv.(string)
	if !ok {
		return nil, perr("id", "expected a string, found %s", jsonKind(idv))
	}
	nsid, err := syntax.ParseNSID(ids)
	if err != nil {
		return nil, perr("id", "%v", err)
	}
	p.id = string(nsid)
	lv, ok := o.vals["lexicon"]
	if !ok {
		return nil, perr("", "missing required field %q", "lexicon")
	}
	ver, err := toInt(lv, "lexicon")
	if err != nil {
		return nil, err
	}
	if ver != 1 {
		return nil, perr("lexicon", "unsupported Lexicon version %d (only 1 is defined)", ver)
	}
	sf := &SchemaFile{Lexicon: 1, ID: nsid, Defs: map[string]*Def{}}
	if sf.Revision, err = optInt(o, "revision", ""); err != nil {
		return nil, err
	}
	if sf.Revision != nil && *sf.Revision < 0 {
		return nil, perr("revision", "must not be negative")
	}
	if sf.Description, _, err = optString(o, "description", ""); err != nil {
		return nil, err
	}
	dv, ok := o.vals["defs"]
	if !ok {
		return nil, perr("", "missing required field %q", "defs")
	}
	defs, err := asObject(dv, "defs")
	if err != nil {
		return nil, err
	}
	if len(defs.keys) == 0 {
		return nil, perr("defs", "a lexicon must hold at least one definition")
	}
	for _, name := range defs.keys {
		path := "defs." + name
		if !validDefName(name) {
			return nil, perr(path, "invalid definition name %q", name)
		}
		d, err := asObject(defs.vals[name], path)
		if err != nil {
			return nil, err
		}
		t, err := reqString(d, "type", path)
		if err != nil {
			return nil, err
		}
		var s Schema
		switch {
		case contains(primaryTypes, t):
			if name != "main" {
				return nil, perr(path, "type %q may only be used by the main definition", t)
			}
			s, err = p.primary(d, t, path)
		case t == "object" || t == "token" || t == "string" || t == "integer" ||
			t == "boolean" || t == "bytes" || t == "cid-link" || t == "blob" || t == "array":
			s, err = p.field(d, path)
		default:
			return nil, perr(path, "type %q can not be a named definition", t)
		}
		if err != nil {
			return nil, err
		}
		sf.Defs[name] = &Def{NSID: nsid, Name: name, Schema: s}
		sf.DefNames = append(sf.DefNames, name)
	}
	return sf, nil
}

// validDefName accepts the short names used in refs: letters, digits and
// underscores (as an NSID name segment, with '_' allowed as schemas use it).
func validDefName(s string) bool {
	if s == "" || len(s) > 128 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '-') {
			return false
		}
	}
	return true
}

// qualify turns a reference as written into its fully qualified form and
// checks its syntax: "#name" (local), "nsid", or "nsid#name". "nsid#main"
// is normalized to "nsid".
func (p *parser) qualify(ref, path string) (string, error) {
	if ref == "" {
		return "", perr(path, "empty reference")
	}
	nsid, frag, hasFrag := strings.Cut(ref, "#")
	if nsid == "" {
		nsid = p.id
	} else if _, err := syntax.ParseNSID(nsid); err != nil {
		return "", perr(path, "invalid reference %q: %v", ref, err)
	}
	if hasFrag {
		if !validDefName(frag) {
			return "", perr(path, "invalid reference %q: bad definition name", ref)
		}
		if frag != "main" {
			return nsid + "#" + frag, nil
		}
	}
	return nsid, nil
}

func (p *parser) primary(o *jsonObject, t, path string) (Schema, error) {
	desc, _, err := optString(o, "description", path)
	if err != nil {
		return nil, err
	}
	switch t {
	case "record":
		if err := fields(o, path, "type", "description", "key", "record"); err != nil {
			return nil, err
		}
		key, err := reqString(o, "key", path)
		if err != nil {
			return nil, err
		}
		if err := checkRecordKeyType(key); err != nil {
			return nil, perr(join(path, "key"), "%v", err)
		}
		rv, ok := o.vals["record"]
		if !ok {
			return nil, perr(path, "missing required field %q", "record")
		}
		ro, err := asObject(rv, join(path, "record"))
		if err != nil {
			return nil, err
		}
		if typeOf(ro) != "object" {
			return nil, perr(join(path, "record"), "a record's schema must have type \"object\"")
		}
		obj, err := p.field(ro, join(path, "record"))
		if err != nil {
			return nil, err
		}
		return &Record{Description: desc, Key: key, Record: obj.(*Object)}, nil
	case "query", "procedure":
		allowed := []string{"type", "description", "parameters", "output", "errors"}
		if t == "procedure" {
			allowed = append(allowed, "input")
		}
		if err := fields(o, path, allowed...); err != nil {
			return nil, err
		}
		params, err := p.params(o, path)
		if err != nil {
			return nil, err
		}
		out, err := p.body(o, "output", path)
		if err != nil {
			return nil, err
		}
		errs, err := p.errorDefs(o, path)
		if err != nil {
			return nil, err
		}
		if t == "query" {
			return &Query{Description: desc, Parameters: params, Output: out, Errors: errs}, nil
		}
		in, err := p.body(o, "input", path)
		if err != nil {
			return nil, err
		}
		return &Procedure{Description: desc, Parameters: params, Input: in, Output: out, Errors: errs}, nil
	case "subscription":
		if err := fields(o, path, "type", "description", "parameters", "message", "errors"); err != nil {
			return nil, err
		}
		params, err := p.params(o, path)
		if err != nil {
			return nil, err
		}
		errs, err := p.errorDefs(o, path)
		if err != nil {
			return nil, err
		}
		mv, ok := o.vals["message"]
		if !ok {
			return nil, perr(path, "missing required field %q", "message")
		}
		mpath := join(path, "message")
		mo, err := asObject(mv, mpath)
		if err != nil {
			return nil, err
		}
		if err := fields(mo, mpath, "description", "schema"); err != nil {
			return nil, err
		}
		mdesc, _, err := optString(mo, "description", mpath)
		if err != nil {
			return nil, err
		}
		sv, ok := mo.vals["schema"]
		if !ok {
			return nil, perr(mpath, "missing required field %q", "schema")
		}
		so, err := asObject(sv, join(mpath, "schema"))
		if err != nil {
			return nil, err
		}
		if typeOf(so) != "union" {
			return nil, perr(join(mpath, "schema"), "a subscription message schema must be a union")
		}
		u, err := p.field(so, join(mpath, "schema"))
		if err != nil {
			return nil, err
		}
		return &Subscription{Description: desc, Parameters: params, Errors: errs,
			Message: Message{Description: mdesc, Schema: u.(*Union)}}, nil
	case "permission-set":
		return p.permissionSet(o, desc, path)
	}
	return nil, perr(path, "unknown type %q", t)
}

func checkRecordKeyType(key string) error {
	switch key {
	case "tid", "nsid", "any":
		return nil
	}
	if lit, ok := strings.CutPrefix(key, "literal:"); ok {
		if _, err := syntax.ParseRecordKey(lit); err != nil {
			return fmt.Errorf("invalid literal record key: %v", err)
		}
		return nil
	}
	return fmt.Errorf("unknown record key type %q (want tid, nsid, any or literal:<key>)", key)
}

func (p *parser) errorDefs(o *jsonObject, path string) ([]ErrorDef, error) {
	v, ok := o.vals["errors"]
	if !ok {
		return nil, nil
	}
	arr, ok := v.([]any)
	if !ok {
		return nil, perr(join(path, "errors"), "expected an array, found %s", jsonKind(v))
	}
	out := make([]ErrorDef, 0, len(arr))
	for i, e := range arr {
		epath := fmt.Sprintf("%s[%d]", join(path, "errors"), i)
		eo, err := asObject(e, epath)
		if err != nil {
			return nil, err
		}
		if err := fields(eo, epath, "name", "description"); err != nil {
			return nil, err
		}
		name, err := reqString(eo, "name", epath)
		if err != nil {
			return nil, err
		}
		if name == "" || strings.ContainsAny(name, " \t\r\n") {
			return nil, perr(join(epath, "name"), "error name must be non-empty with no whitespace")
		}
		desc, _, err := optString(eo, "description", epath)
		if err != nil {
			return nil, err
		}
		out = append(out, ErrorDef{Name: name, Description: desc})
	}
	return out, nil
}

func (p *parser) body(o *jsonObject, key, path string) (*Body, error) {
	v, ok := o.vals[key]
	if !ok {
		return nil, nil
	}
	bpath := join(path, key)
	bo, err := asObject(v, bpath)
	if err != nil {
		return nil, err
	}
	if err := fields(bo, bpath, "description", "encoding", "schema"); err != nil {
		return nil, err
	}
	b := &Body{}
	if b.Description, _, err = optString(bo, "description", bpath); err != nil {
		return nil, err
	}
	if b.Encoding, err = reqString(bo, "encoding", bpath); err != nil {
		return nil, err
	}
	if !validMIME(b.Encoding) {
		return nil, perr(join(bpath, "encoding"), "invalid MIME type %q", b.Encoding)
	}
	if sv, ok := bo.vals["schema"]; ok {
		spath := join(bpath, "schema")
		so, err := asObject(sv, spath)
		if err != nil {
			return nil, err
		}
		switch typeOf(so) {
		case "object", "ref", "union":
		default:
			return nil, perr(spath, "a body schema must be an object, ref or union, found %q", typeOf(so))
		}
		if b.Schema, err = p.field(so, spath); err != nil {
			return nil, err
		}
	}
	return b, nil
}

func (p *parser) params(o *jsonObject, path string) (*Params, error) {
	v, ok := o.vals["parameters"]
	if !ok {
		return nil, nil
	}
	ppath := join(path, "parameters")
	po, err := asObject(v, ppath)
	if err != nil {
		return nil, err
	}
	if typeOf(po) != "params" {
		return nil, perr(ppath, "parameters must have type \"params\"")
	}
	if err := fields(po, ppath, "type", "description", "required", "properties"); err != nil {
		return nil, err
	}
	ps := &Params{Properties: map[string]Schema{}}
	if ps.Description, _, err = optString(po, "description", ppath); err != nil {
		return nil, err
	}
	if ps.Required, _, err = optStrings(po, "required", ppath); err != nil {
		return nil, err
	}
	if pv, ok := po.vals["properties"]; ok {
		props, err := asObject(pv, join(ppath, "properties"))
		if err != nil {
			return nil, err
		}
		for _, name := range props.keys {
			fpath := join(join(ppath, "properties"), name)
			fo, err := asObject(props.vals[name], fpath)
			if err != nil {
				return nil, err
			}
			t := typeOf(fo)
			switch t {
			case "boolean", "integer", "string":
			case "array":
				if io, ok := fo.vals["items"].(*jsonObject); ok {
					switch typeOf(io) {
					case "boolean", "integer", "string":
					default:
						return nil, perr(join(fpath, "items"), "a parameter array may only hold booleans, integers or strings, found %q", typeOf(io))
					}
				}
			default:
				return nil, perr(fpath, "a parameter must be a boolean, integer, string or array of those, found %q", t)
			}
			s, err := p.field(fo, fpath)
			if err != nil {
				return nil, err
			}
			ps.Properties[name] = s
			ps.PropertyNames = append(ps.PropertyNames, name)
		}
	}
	for _, r := range ps.Required {
		if _, ok := ps.Properties[r]; !ok {
			return nil, perr(join(ppath, "required"), "required parameter %q is not defined in properties", r)
		}
	}
	return ps, nil
}

func (p *parser) permissionSet(o *jsonObject, desc, path string) (Schema, error) {
	if err := fields(o, path, "type", "description", "title", "title:lang", "detail", "detail:lang", "permissions"); err != nil {
		return nil, err
	}
	ps := &PermissionSet{Description: desc}
	var err error
	if ps.Title, _, err = optString(o, "title", path); err != nil {
		return nil, err
	}
	if ps.Detail, _, err = optString(o, "detail", path); err != nil {
		return nil, err
	}
	if ps.TitleLang, err = optLangMap(o, "title:lang", path); err != nil {
		return nil, err
	}
	if ps.DetailLang, err = optLangMap(o, "detail:lang", path); err != nil {
		return nil, err
	}
	pv, ok := o.vals["permissions"]
	if !ok {
		return nil, perr(path, "missing required field %q", "permissions")
	}
	arr, ok := pv.([]any)
	if !ok {
		return nil, perr(join(path, "permissions"), "expected an array, found %s", jsonKind(pv))
	}
	for i, e := range arr {
		epath := fmt.Sprintf("%s[%d]", join(path, "permissions"), i)
		eo, err := asObject(e, epath)
		if err != nil {
			return nil, err
		}
		perm, err := p.permission(eo, epath)
		if err != nil {
			return nil, err
		}
		ps.Permissions = append(ps.Permissions, perm)
	}
	return ps, nil
}

func (p *parser) permission(o *jsonObject, path string) (*Permission, error) {
	if typeOf(o) != "permission" {
		return nil, perr(path, "expected type \"permission\", found %q", typeOf(o))
	}
	perm := &Permission{Fields: map[string]any{}}
	var err error
	if perm.Resource, err = reqString(o, "resource", path); err != nil {
		return nil, err
	}
	if perm.Description, _, err = optString(o, "description", path); err != nil {
		return nil, err
	}
	for _, k := range o.keys {
		if k != "type" {
			perm.Fields[k] = genericJSON(o.vals[k])
		}
	}
	// Resource-specific fields. Unknown resources are kept as they are: the
	// permission spec says they must be ignored, not refused.
	switch perm.Resource {
	case "repo":
		coll, ok, err := optStrings(o, "collection", path)
		if err != nil {
			return nil, err
		}
		if !ok || len(coll) == 0 {
			return nil, perr(join(path, "collection"), "a repo permission needs at least one collection")
		}
		for i, c := range coll {
			if _, err := syntax.ParseNSID(c); err != nil {
				return nil, perr(fmt.Sprintf("%s[%d]", join(path, "collection"), i), "%v", err)
			}
		}
		if err := unique(coll, join(path, "collection")); err != nil {
			return nil, err
		}
		perm.Collection = coll
		act, _, err := optStrings(o, "action", path)
		if err != nil {
			return nil, err
		}
		for i, a := range act {
			if a != "create" && a != "update" && a != "delete" {
				return nil, perr(fmt.Sprintf("%s[%d]", join(path, "action"), i), "unknown action %q (want create, update or delete)", a)
			}
		}
		if err := unique(act, join(path, "action")); err != nil {
			return nil, err
		}
		perm.Action = act
	case "rpc":
		lxm, ok, err := optStrings(o, "lxm", path)
		if err != nil {
			return nil, err
		}
		if !ok || len(lxm) == 0 {
			return nil, perr(join(path, "lxm"), "an rpc permission needs at least one lxm")
		}
		for i, l := range lxm {
			if l == "*" {
				continue
			}
			if _, err := syntax.ParseNSID(l); err != nil {
				return nil, perr(fmt.Sprintf("%s[%d]", join(path, "lxm"), i), "%v", err)
			}
		}
		perm.Lxm = lxm
		if perm.Aud, _, err = optString(o, "aud", path); err != nil {
			return nil, err
		}
		inh, err := optBool(o, "inheritAud", path)
		if err != nil {
			return nil, err
		}
		perm.InheritAud = inh != nil && *inh
		if perm.Aud == "" && !perm.InheritAud {
			return nil, perr(path, "an rpc permission needs \"aud\" unless \"inheritAud\" is true")
		}
		if perm.Aud == "*" && contains(lxm, "*") {
			return nil, perr(path, "\"aud\" and \"lxm\" can not both be wildcards")
		}
	}
	return perm, nil
}

func unique(list []string, path string) error {
	for i := range list {
		for j := 0; j < i; j++ {
			if list[i] == list[j] {
				return perr(path, "duplicate value %q", list[i])
			}
		}
	}
	return nil
}

// genericJSON converts a parsed schema value to the generic data form.
func genericJSON(v any) any {
	switch t := v.(type) {
	case *jsonObject:
		m := make(map[string]any, len(t.keys))
		for _, k := range t.keys {
			m[k] = genericJSON(t.vals[k])
		}
		return m
	case []any:
		out := make([]any, len(t))
		for i, e := range t {
			out[i] = genericJSON(e)
		}
		return out
	case json.Number:
		if i, err := strconv.ParseInt(string(t), 10, 64); err == nil {
			return i
		}
		return string(t)
	}
	return v
}

// field parses a schema node that is not a primary definition.
func (p *parser) field(o *jsonObject, path string) (Schema, error) {
	t, err := reqString(o, "type", path)
	if err != nil {
		return nil, err
	}
	desc, _, err := optString(o, "description", path)
	if err != nil {
		return nil, err
	}
	switch t {
	case "boolean":
		if err := fields(o, path, "type", "description", "default", "const"); err != nil {
			return nil, err
		}
		s := &Boolean{Description: desc}
		if s.Default, err = optBool(o, "default", path); err != nil {
			return nil, err
		}
		if s.Const, err = optBool(o, "const", path); err != nil {
			return nil, err
		}
		if s.Default != nil && s.Const != nil {
			return nil, perr(path, "\"const\" and \"default\" are mutually exclusive")
		}
		return s, nil
	case "integer":
		return p.integer(o, desc, path)
	case "string":
		return p.str(o, desc, path)
	case "bytes":
		if err := fields(o, path, "type", "description", "minLength", "maxLength"); err != nil {
			return nil, err
		}
		s := &Bytes{Description: desc}
		if s.MinLength, err = optLen(o, "minLength", path); err != nil {
			return nil, err
		}
		if s.MaxLength, err = optLen(o, "maxLength", path); err != nil {
			return nil, err
		}
		return s, checkRange(path, "minLength", "maxLength", s.MinLength, s.MaxLength)
	case "cid-link":
		if err := fields(o, path, "type", "description"); err != nil {
			return nil, err
		}
		return &CIDLink{Description: desc}, nil
	case "blob":
		if err := fields(o, path, "type", "description", "accept", "maxSize"); err != nil {
			return nil, err
		}
		s := &Blob{Description: desc}
		if s.Accept, _, err = optStrings(o, "accept", path); err != nil {
			return nil, err
		}
		for i, a := range s.Accept {
			if !validAccept(a) {
				return nil, perr(fmt.Sprintf("%s[%d]", join(path, "accept"), i), "invalid MIME pattern %q (want type/subtype, type/* or */*)", a)
			}
		}
		if s.MaxSize, err = optInt(o, "maxSize", path); err != nil {
			return nil, err
		}
		if s.MaxSize != nil && *s.MaxSize < 0 {
			return nil, perr(join(path, "maxSize"), "must not be negative")
		}
		return s, nil
	case "array":
		if err := fields(o, path, "type", "description", "items", "minLength", "maxLength"); err != nil {
			return nil, err
		}
		s := &Array{Description: desc}
		iv, ok := o.vals["items"]
		if !ok {
			return nil, perr(path, "missing required field %q", "items")
		}
		io, err := asObject(iv, join(path, "items"))
		if err != nil {
			return nil, err
		}
		if !isFieldType(typeOf(io)) {
			return nil, perr(join(path, "items"), "type %q can not be an array element", typeOf(io))
		}
		if s.Items, err = p.field(io, join(path, "items")); err != nil {
			return nil, err
		}
		if s.MinLength, err = optLen(o, "minLength", path); err != nil {
			return nil, err
		}
		if s.MaxLength, err = optLen(o, "maxLength", path); err != nil {
			return nil, err
		}
		return s, checkRange(path, "minLength", "maxLength", s.MinLength, s.MaxLength)
	case "object":
		return p.object(o, desc, path)
	case "token":
		if err := fields(o, path, "type", "description"); err != nil {
			return nil, err
		}
		return &Token{Description: desc}, nil
	case "ref":
		if err := fields(o, path, "type", "description", "ref"); err != nil {
			return nil, err
		}
		r, err := reqString(o, "ref", path)
		if err != nil {
			return nil, err
		}
		target, err := p.qualify(r, join(path, "ref"))
		if err != nil {
			return nil, err
		}
		return &Ref{Description: desc, Ref: r, Target: target}, nil
	case "union":
		if err := fields(o, path, "type", "description", "refs", "closed"); err != nil {
			return nil, err
		}
		refs, ok, err := optStrings(o, "refs", path)
		if err != nil {
			return nil, err
		}
		if !ok {
			return nil, perr(path, "missing required field %q", "refs")
		}
		closed, err := optBool(o, "closed", path)
		if err != nil {
			return nil, err
		}
		u := &Union{Description: desc, Refs: refs, Closed: closed != nil && *closed}
		if u.Closed && len(refs) == 0 {
			return nil, perr(path, "a closed union must list at least one ref")
		}
		for i, r := range refs {
			target, err := p.qualify(r, fmt.Sprintf("%s[%d]", join(path, "refs"), i))
			if err != nil {
				return nil, err
			}
			if contains(u.Targets, target) {
				return nil, perr(join(path, "refs"), "duplicate ref %q", r)
			}
			u.Targets = append(u.Targets, target)
		}
		return u, nil
	case "unknown":
		if err := fields(o, path, "type", "description"); err != nil {
			return nil, err
		}
		return &Unknown{Description: desc}, nil
	}
	return nil, perr(path, "type %q is not allowed here", t)
}

// isFieldType reports whether t may be an object property or array element.
func isFieldType(t string) bool {
	switch t {
	case "boolean", "integer", "string", "bytes", "cid-link", "blob", "array", "object", "ref", "union", "unknown":
		return true
	}
	return false
}

func (p *parser) object(o *jsonObject, desc, path string) (Schema, error) {
	if err := fields(o, path, "type", "description", "required", "nullable", "properties"); err != nil {
		return nil, err
	}
	s := &Object{Description: desc, Properties: map[string]Schema{}}
	var err error
	if s.Required, _, err = optStrings(o, "required", path); err != nil {
		return nil, err
	}
	if s.Nullable, _, err = optStrings(o, "nullable", path); err != nil {
		return nil, err
	}
	pv, ok := o.vals["properties"]
	if !ok {
		return nil, perr(path, "missing required field %q", "properties")
	}
	props, err := asObject(pv, join(path, "properties"))
	if err != nil {
		return nil, err
	}
	for _, name := range props.keys {
		fpath := join(join(path, "properties"), name)
		if name == "" {
			return nil, perr(join(path, "properties"), "empty property name")
		}
		fo, err := asObject(props.vals[name], fpath)
		if err != nil {
			return nil, err
		}
		if !isFieldType(typeOf(fo)) {
			return nil, perr(fpath, "type %q can not be an object property", typeOf(fo))
		}
		f, err := p.field(fo, fpath)
		if err != nil {
			return nil, err
		}
		s.Properties[name] = f
		s.PropertyNames = append(s.PropertyNames, name)
	}
	for _, r := range s.Required {
		if _, ok := s.Properties[r]; !ok {
			return nil, perr(join(path, "required"), "required property %q is not defined in properties", r)
		}
	}
	for _, r := range s.Nullable {
		if _, ok := s.Properties[r]; !ok {
			return nil, perr(join(path, "nullable"), "nullable property %q is not defined in properties", r)
		}
	}
	return s, nil
}

func (p *parser) integer(o *jsonObject, desc, path string) (Schema, error) {
	if err := fields(o, path, "type", "description", "minimum", "maximum", "enum", "const", "default"); err != nil {
		return nil, err
	}
	s := &Integer{Description: desc}
	var err error
	if s.Minimum, err = optInt(o, "minimum", path); err != nil {
		return nil, err
	}
	if s.Maximum, err = optInt(o, "maximum", path); err != nil {
		return nil, err
	}
	if s.Const, err = optInt(o, "const", path); err != nil {
		return nil, err
	}
	if s.Default, err = optInt(o, "default", path); err != nil {
		return nil, err
	}
	if ev, ok := o.vals["enum"]; ok {
		arr, ok := ev.([]any)
		if !ok {
			return nil, perr(join(path, "enum"), "expected an array of integers, found %s", jsonKind(ev))
		}
		for i, e := range arr {
			n, err := toInt(e, fmt.Sprintf("%s[%d]", join(path, "enum"), i))
			if err != nil {
				return nil, err
			}
			s.Enum = append(s.Enum, n)
		}
	}
	if s.Minimum != nil && s.Maximum != nil && *s.Minimum > *s.Maximum {
		return nil, perr(path, "minimum (%d) is greater than maximum (%d)", *s.Minimum, *s.Maximum)
	}
	if s.Const != nil && s.Default != nil {
		return nil, perr(path, "\"const\" and \"default\" are mutually exclusive")
	}
	if s.Default != nil {
		if msg := checkInt(s, *s.Default); msg != "" {
			return nil, perr(join(path, "default"), "default value %d is not allowed: %s", *s.Default, msg)
		}
	}
	return s, nil
}

func (p *parser) str(o *jsonObject, desc, path string) (Schema, error) {
	if err := fields(o, path, "type", "description", "format", "minLength", "maxLength",
		"minGraphemes", "maxGraphemes", "knownValues", "enum", "const", "default"); err != nil {
		return nil, err
	}
	s := &String{Description: desc}
	var err error
	if s.Format, _, err = optString(o, "format", path); err != nil {
		return nil, err
	}
	if _, ok := o.vals["format"]; ok {
		if _, known := formats[s.Format]; !known {
			return nil, perr(join(path, "format"), "unknown string format %q", s.Format)
		}
	}
	if s.MinLength, err = optLen(o, "minLength", path); err != nil {
		return nil, err
	}
	if s.MaxLength, err = optLen(o, "maxLength", path); err != nil {
		return nil, err
	}
	if s.MinGraphemes, err = optLen(o, "minGraphemes", path); err != nil {
		return nil, err
	}
	if s.MaxGraphemes, err = optLen(o, "maxGraphemes", path); err != nil {
		return nil, err
	}
	if err := checkRange(path, "minLength", "maxLength", s.MinLength, s.MaxLength); err != nil {
		return nil, err
	}
	if err := checkRange(path, "minGraphemes", "maxGraphemes", s.MinGraphemes, s.MaxGraphemes); err != nil {
		return nil, err
	}
	if s.KnownValues, _, err = optStrings(o, "knownValues", path); err != nil {
		return nil, err
	}
	var hasEnum bool
	if s.Enum, hasEnum, err = optStrings(o, "enum", path); err != nil {
		return nil, err
	}
	if hasEnum && s.Enum == nil {
		s.Enum = []string{}
	}
	if v, ok, err := optString(o, "const", path); err != nil {
		return nil, err
	} else if ok {
		s.Const = &v
	}
	if v, ok, err := optString(o, "default", path); err != nil {
		return nil, err
	} else if ok {
		s.Default = &v
	}
	if s.Const != nil && s.Default != nil {
		return nil, perr(path, "\"const\" and \"default\" are mutually exclusive")
	}
	if s.Default != nil {
		sv := compileString(s)
		if e := sv.validate(*s.Default, 0, nil); e != nil {
			return nil, perr(join(path, "default"), "default value %q is not allowed: %s", *s.Default, e.Message)
		}
	}
	return s, nil
}

// validMIME accepts a MIME type or pattern as used in body encodings:
// "type/subtype", "type/*" or "*/*", optionally with parameters.
func validMIME(s string) bool {
	s, _, _ = strings.Cut(s, ";")
	return validAccept(strings.TrimSpace(s))
}

// validAccept accepts "type/subtype", "type/*" and "*/*".
func validAccept(s string) bool {
	typ, sub, ok := strings.Cut(s, "/")
	if !ok || typ == "" || sub == "" || strings.Contains(sub, "/") {
		return false
	}
	if typ == "*" {
		return sub == "*"
	}
	if strings.Contains(typ, "*") {
		return false
	}
	if sub == "*" {
		return true
	}
	return !strings.Contains(sub, "*") && !strings.ContainsAny(s, " \t")
}
