package lexicon

import (
	"fmt"
	"net/url"
	"strconv"
	"strings"

	"github.com/welkin-atproto/welkin/atproto/syntax"
)

func notFound(what, ref string) error {
	return &ValidationError{Message: fmt.Sprintf("%s %q is not in the catalog", what, ref), Err: ErrNotFound}
}

// ValidateRecord checks a record (in the generic form data.ParseJSON and
// data.UnmarshalCBOR produce) against the record schema of collection,
// using c.Flags. The record's "$type" must equal collection. Errors are
// *ValidationError values; the error wraps ErrNotFound when the catalog
// has no record schema for collection.
func (c *Catalog) ValidateRecord(collection string, record map[string]any) error {
	return c.ValidateRecordFlags(collection, record, c.Flags)
}

// ValidateRecordFlags is ValidateRecord with explicit flags.
func (c *Catalog) ValidateRecordFlags(collection string, record map[string]any, f Flags) error {
	l, err := c.linked()
	if err != nil {
		return err
	}
	v := l.defs[collection]
	rv, ok := v.(*recordV)
	if !ok {
		if v == nil {
			return notFound("record schema", collection)
		}
		return &ValidationError{Message: fmt.Sprintf("%q is not a record type", collection)}
	}
	if record == nil {
		return &ValidationError{Message: "record is null"}
	}
	if e := rv.validate(record, f, l); e != nil {
		return e
	}
	return nil
}

// ValidateRecordKey checks a record key against the key type of the
// collection's record schema ("tid", "nsid", "any" or "literal:<key>").
func (c *Catalog) ValidateRecordKey(collection, rkey string) error {
	d, err := c.Resolve(collection)
	if err != nil {
		return err
	}
	r, ok := d.Schema.(*Record)
	if !ok {
		return &ValidationError{Message: fmt.Sprintf("%q is not a record type", collection)}
	}
	if _, err := syntax.ParseRecordKey(rkey); err != nil {
		return &ValidationError{Message: "invalid record key: " + err.Error(), Err: err}
	}
	switch {
	case r.Key == "tid":
		if _, err := syntax.ParseTID(rkey); err != nil {
			return &ValidationError{Message: "record key must be a TID: " + err.Error(), Err: err}
		}
	case r.Key == "nsid":
		if _, err := syntax.ParseNSID(rkey); err != nil {
			return &ValidationError{Message: "record key must be an NSID: " + err.Error(), Err: err}
		}
	case strings.HasPrefix(r.Key, "literal:"):
		if want := strings.TrimPrefix(r.Key, "literal:"); rkey != want {
			return &ValidationError{Message: fmt.Sprintf("record key must be %q", want)}
		}
	}
	return nil
}

// Validate checks value against the data definition ref names ("nsid" or
// "nsid#name"), using c.Flags. For a record definition the value must be a
// record (with "$type"); for an object, an object without required $type;
// for the other kinds, a value of that kind.
func (c *Catalog) Validate(ref string, value any) error {
	return c.ValidateFlags(ref, value, c.Flags)
}

// ValidateFlags is Validate with explicit flags.
func (c *Catalog) ValidateFlags(ref string, value any, f Flags) error {
	l, err := c.linked()
	if err != nil {
		return err
	}
	v := l.defs[normalizeRef(ref)]
	if v == nil {
		if d, _ := c.Resolve(ref); d != nil {
			return &ValidationError{Message: fmt.Sprintf("%q is a %s, which has no data form", ref, d.Type())}
		}
		return notFound("definition", ref)
	}
	if value == nil {
		return &ValidationError{Message: "null is not allowed"}
	}
	if e := v.validate(value, f, l); e != nil {
		return e
	}
	return nil
}

// endpoint finds the query, procedure or subscription named nsid.
func (c *Catalog) endpoint(nsid string) (*linked, *Def, error) {
	l, err := c.linked()
	if err != nil {
		return nil, nil, err
	}
	d, err := c.Resolve(nsid)
	if err != nil {
		return nil, nil, notFound("endpoint", nsid)
	}
	return l, d, nil
}

// ValidateInput checks the request body of the procedure nsid: encoding is
// the request's MIME type (parameters such as "; charset=utf-8" are
// ignored) and body the decoded JSON body in generic form, or nil. A body
// without a schema in the lexicon (a blob upload, say) is not inspected.
func (c *Catalog) ValidateInput(nsid, encoding string, body any) error {
	l, d, err := c.endpoint(nsid)
	if err != nil {
		return err
	}
	p, ok := d.Schema.(*Procedure)
	if !ok {
		return &ValidationError{Message: fmt.Sprintf("%q is a %s, not a procedure", nsid, d.Type())}
	}
	return c.checkBody(l, "input", p.Input, encoding, body)
}

// ValidateOutput checks the response body of the query or procedure nsid,
// as ValidateInput does for requests.
func (c *Catalog) ValidateOutput(nsid, encoding string, body any) error {
	l, d, err := c.endpoint(nsid)
	if err != nil {
		return err
	}
	var out *Body
	switch s := d.Schema.(type) {
	case *Query:
		out = s.Output
	case *Procedure:
		out = s.Output
	default:
		return &ValidationError{Message: fmt.Sprintf("%q is a %s, not a query or procedure", nsid, d.Type())}
	}
	return c.checkBody(l, "output", out, encoding, body)
}

func (c *Catalog) checkBody(l *linked, what string, b *Body, encoding string, body any) error {
	if b == nil {
		if encoding != "" || body != nil {
			return &ValidationError{Message: fmt.Sprintf("endpoint has no %s, but one was given", what)}
		}
		return nil
	}
	if encoding == "" {
		return &ValidationError{Message: fmt.Sprintf("%s encoding is required (want %s)", what, b.Encoding)}
	}
	if !mimeMatch(b.Encoding, encoding) {
		return &ValidationError{Message: fmt.Sprintf("%s encoding %q does not match %q", what, encoding, b.Encoding)}
	}
	v := l.bodies[b]
	if v == nil {
		return nil
	}
	if body == nil {
		return &ValidationError{Message: fmt.Sprintf("%s body is required", what)}
	}
	if e := v.validate(body, c.Flags, l); e != nil {
		return e
	}
	return nil
}

// mimeMatch reports whether the MIME type got satisfies the pattern want
// ("type/subtype", "type/*" or "*/*"), ignoring parameters and case.
func mimeMatch(want, got string) bool {
	want, _, _ = strings.Cut(want, ";")
	got, _, _ = strings.Cut(got, ";")
	want, got = strings.TrimSpace(want), strings.TrimSpace(got)
	if want == "*/*" {
		return true
	}
	if prefix, ok := strings.CutSuffix(want, "*"); ok {
		return hasPrefixFold(got, prefix)
	}
	return strings.EqualFold(want, got)
}

// ValidateMessage checks one message of the subscription nsid. msgType is
// the message's type as an event-stream frame header carries it ("#commit")
// or fully qualified ("com.atproto.sync.subscribeRepos#commit"); when it is
// "", body must carry "$type" itself. An unknown message type is an error
// wrapping ErrNotFound, which clients may choose to ignore as the
// event-stream spec suggests.
func (c *Catalog) ValidateMessage(nsid, msgType string, body any) error {
	l, d, err := c.endpoint(nsid)
	if err != nil {
		return err
	}
	if _, ok := d.Schema.(*Subscription); !ok {
		return &ValidationError{Message: fmt.Sprintf("%q is a %s, not a subscription", nsid, d.Type())}
	}
	u := l.msgs[string(d.NSID)]
	m, ok := body.(map[string]any)
	if !ok {
		return wrongKind("an object (message)", body)
	}
	if msgType == "" {
		if e := u.validate(m, c.Flags, l); e != nil {
			return e
		}
		return nil
	}
	t := msgType
	if strings.HasPrefix(t, "#") {
		t = string(d.NSID) + t
	}
	t = normalizeRef(t)
	for i := range u.variants {
		if u.variants[i].typ == t {
			if u.variants[i].obj == nil {
				return notFound("message schema", t)
			}
			if e := u.variants[i].obj.validateMap(m, c.Flags, l); e != nil {
				return e
			}
			return nil
		}
	}
	return notFound("message type", msgType)
}

// paramsV is the compiled form of a params schema.
type paramsV struct {
	props []paramV
	names map[string]struct{}
}

type paramV struct {
	name     string
	required bool
	array    bool
	kind     string // "boolean", "integer" or "string" (of the element for arrays)
	elem     validator
	arr      *arrayV // for arrays: length bounds
	def      any     // default value, or nil
}

func (lk *linker) params(nsid syntax.NSID, p *Params, path string) (*paramsV, error) {
	pv := &paramsV{names: map[string]struct{}{}}
	for _, name := range p.PropertyNames {
		s := p.Properties[name]
		pp := paramV{name: name, required: contains(p.Required, name)}
		elem := s
		if a, ok := s.(*Array); ok {
			pp.array = true
			elem = a.Items
			pp.arr = &arrayV{minLen: optOr(a.MinLength), maxLen: optOr(a.MaxLength)}
		}
		pp.kind = elem.Type()
		v, err := lk.node(nsid, elem, path+".properties."+name)
		if err != nil {
			return nil, err
		}
		pp.elem = v
		if !pp.array {
			switch x := s.(type) {
			case *Boolean:
				if x.Default != nil {
					pp.def = *x.Default
				}
			case *Integer:
				if x.Default != nil {
					pp.def = *x.Default
				}
			case *String:
				if x.Default != nil {
					pp.def = *x.Default
				}
			}
		}
		pv.props = append(pv.props, pp)
		pv.names[name] = struct{}{}
	}
	return pv, nil
}

// ValidateQueryParams decodes and checks the HTTP query parameters of the
// query, procedure or subscription nsid. The result maps each parameter
// present (or having a default) to its typed value: bool, int64 or string,
// or []bool, []int64 or []string for arrays. Undeclared parameters are
// ignored, or refused under RejectUnknownFields. A plain map[string][]string
// may be passed too.
func (c *Catalog) ValidateQueryParams(nsid string, q url.Values) (map[string]any, error) {
	l, d, err := c.endpoint(nsid)
	if err != nil {
		return nil, err
	}
	switch d.Schema.(type) {
	case *Query, *Procedure, *Subscription:
	default:
		return nil, &ValidationError{Message: fmt.Sprintf("%q is a %s, not an endpoint", nsid, d.Type())}
	}
	out := map[string]any{}
	pv := l.params[string(d.NSID)]
	if pv == nil {
		if c.Flags&RejectUnknownFields != 0 {
			for k := range q {
				return nil, &ValidationError{Path: k, Message: "parameter is not declared by the schema"}
			}
		}
		return out, nil
	}
	if c.Flags&RejectUnknownFields != 0 {
		for k := range q {
			if _, ok := pv.names[k]; !ok {
				return nil, &ValidationError{Path: k, Message: "parameter is not declared by the schema"}
			}
		}
	}
	for i := range pv.props {
		p := &pv.props[i]
		vals, present := q[p.name]
		if !present || len(vals) == 0 {
			if p.def != nil {
				out[p.name] = p.def
			} else if p.required {
				return nil, &ValidationError{Path: p.name, Message: "required parameter is missing"}
			}
			continue
		}
		if !p.array {
			if len(vals) > 1 {
				return nil, &ValidationError{Path: p.name, Message: fmt.Sprintf("parameter given %d times; it takes one value", len(vals))}
			}
			v, e := p.decode(vals[0], l, c.Flags)
			if e != nil {
				return nil, e.under(p.name)
			}
			out[p.name] = v
			continue
		}
		if p.arr.minLen >= 0 && len(vals) < p.arr.minLen {
			return nil, &ValidationError{Path: p.name, Message: fmt.Sprintf("%d values given, fewer than the minimum %d", len(vals), p.arr.minLen)}
		}
		if p.arr.maxLen >= 0 && len(vals) > p.arr.maxLen {
			return nil, &ValidationError{Path: p.name, Message: fmt.Sprintf("%d values given, more than the maximum %d", len(vals), p.arr.maxLen)}
		}
		switch p.kind {
		case "boolean":
			arr := make([]bool, len(vals))
			for j, s := range vals {
				v, e := p.decode(s, l, c.Flags)
				if e != nil {
					return nil, e.under("[" + strconv.Itoa(j) + "]").under(p.name)
				}
				arr[j] = v.(bool)
			}
			out[p.name] = arr
		case "integer":
			arr := make([]int64, len(vals))
			for j, s := range vals {
				v, e := p.decode(s, l, c.Flags)
				if e != nil {
					return nil, e.under("[" + strconv.Itoa(j) + "]").under(p.name)
				}
				arr[j] = v.(int64)
			}
			out[p.name] = arr
		default:
			arr := make([]string, len(vals))
			for j, s := range vals {
				v, e := p.decode(s, l, c.Flags)
				if e != nil {
					return nil, e.under("[" + strconv.Itoa(j) + "]").under(p.name)
				}
				arr[j] = v.(string)
			}
			out[p.name] = arr
		}
	}
	return out, nil
}

// decode turns one query-string value into the parameter's type and
// checks it.
func (p *paramV) decode(s string, l *linked, f Flags) (any, *ValidationError) {
	var v any
	switch p.kind {
	case "boolean":
		switch s {
		case "true":
			v = true
		case "false":
			v = false
		default:
			return nil, verr("expected true or false, found %q", clip(s))
		}
	case "integer":
		n, err := strconv.ParseInt(s, 10, 64)
		if err != nil {
			return nil, verr("expected an integer, found %q", clip(s))
		}
		v = n
	default:
		v = s
	}
	if e := p.elem.validate(v, f, l); e != nil {
		return nil, e
	}
	return v, nil
}
