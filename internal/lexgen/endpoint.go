package main

import (
	"fmt"
	"strings"

	"github.com/welkin-atproto/welkin/atproto/lexicon"
)

// body describes a request or response body as the Go API sees it.
type body struct {
	raw  bool   // not JSON with a schema: an io.Reader / io.Writer
	expr string // pointer type of a JSON body
}

func (g *generator) genBody(f *fileOut, owner string, bd *lexicon.Body, name string) (*body, error) {
	if bd == nil {
		return nil, nil
	}
	if bd.Encoding != "application/json" || bd.Schema == nil {
		return &body{raw: true}, nil
	}
	tn := owner + "_" + name
	if err := g.declare(f.pkg, tn, f.nsid+" "+name); err != nil {
		return nil, err
	}
	switch s := bd.Schema.(type) {
	case *lexicon.Object:
		if err := g.genStruct(f, tn, s, ""); err != nil {
			return nil, err
		}
	case *lexicon.Ref:
		t, err := g.resolve(s, f.nsid, tn)
		if err != nil {
			return nil, err
		}
		if t.kind != kStruct {
			return &body{raw: true}, nil
		}
		f.parts = append(f.parts, fmt.Sprintf("// %s is the %s body of %s.\ntype %s = %s\n", tn, strings.ToLower(name), f.nsid, tn, strings.TrimPrefix(g.expr(f, t), "*")))
	case *lexicon.Union:
		if _, err := g.resolve(s, f.nsid, tn); err != nil {
			return nil, err
		}
	default:
		return &body{raw: true}, nil
	}
	return &body{expr: "*" + tn}, nil
}

type param struct {
	key, goName, typ string
	elem             string // for arrays: "string", "int64", "bool"
	req              bool
	comment          string
}

func (g *generator) genParams(f *fileOut, owner string, ps *lexicon.Params) (bool, error) {
	if ps == nil || len(ps.PropertyNames) == 0 {
		return false, nil
	}
	tn := owner + "_Params"
	if err := g.declare(f.pkg, tn, f.nsid+" params"); err != nil {
		return false, err
	}
	var list []param
	used := map[string]bool{"Values": true, "SetValues": true}
	for _, key := range ps.PropertyNames {
		s := ps.Properties[key]
		p := param{key: key, goName: export(key)}
		for used[p.goName] {
			p.goName += "_"
		}
		used[p.goName] = true
		for _, r := range ps.Required {
			if r == key {
				p.req = true
			}
		}
		scalar := func(s lexicon.Schema) string {
			switch s.(type) {
			case *lexicon.Integer:
				return "int64"
			case *lexicon.Boolean:
				return "bool"
			}
			return "string"
		}
		if a, ok := s.(*lexicon.Array); ok {
			p.elem = scalar(a.Items)
			p.typ = "[]" + p.elem
			p.comment = strings.Join(append(constraints(a), constraints(a.Items)...), "; ")
		} else {
			p.typ = scalar(s)
			if !p.req && p.typ != "string" {
				p.typ = "*" + p.typ
			}
			p.comment = strings.Join(constraints(s), "; ")
		}
		if p.req {
			p.comment = strings.TrimSuffix("required; "+p.comment, "; ")
		}
		list = append(list, p)
	}
	f.imports["net/url"] = true
	for _, p := range list {
		if p.elem == "int64" || p.elem == "bool" || strings.TrimPrefix(p.typ, "*") != "string" && p.elem == "" {
			f.imports["strconv"] = true
		}
	}
	var b strings.Builder
	fmt.Fprintf(&b, "// %s are the query parameters of %s.\ntype %s struct {\n", tn, f.nsid, tn)
	for _, p := range list {
		omit := ""
		if !p.req {
			omit = ",omitempty"
		}
		c := ""
		if p.comment != "" {
			c = " // " + p.comment
		}
		fmt.Fprintf(&b, "\t%s %s `query:\"%s%s\"`%s\n", p.goName, p.typ, p.key, omit, c)
	}
	b.WriteString("}\n\n")
	format := func(t, v string) string {
		switch t {
		case "int64":
			return "strconv.FormatInt(" + v + ", 10)"
		case "bool":
			return "strconv.FormatBool(" + v + ")"
		}
		return v
	}
	fmt.Fprintf(&b, "// Values encodes p as URL query parameters.\nfunc (p *%s) Values() url.Values {\n\tq := url.Values{}\n\tif p == nil {\n\t\treturn q\n\t}\n", tn)
	for _, p := range list {
		v := "p." + p.goName
		switch {
		case p.elem != "":
			fmt.Fprintf(&b, "\tfor _, v := range %s {\n\t\tq.Add(%q, %s)\n\t}\n", v, p.key, format(p.elem, "v"))
		case strings.HasPrefix(p.typ, "*"):
			fmt.Fprintf(&b, "\tif %s != nil {\n\t\tq.Set(%q, %s)\n\t}\n", v, p.key, format(p.typ[1:], "*"+v))
		case p.typ == "string" && !p.req:
			fmt.Fprintf(&b, "\tif %s != \"\" {\n\t\tq.Set(%q, %s)\n\t}\n", v, p.key, v)
		default:
			fmt.Fprintf(&b, "\tq.Set(%q, %s)\n", p.key, format(p.typ, v))
		}
	}
	b.WriteString("\treturn q\n}\n\n")
	parse := func(t, v, dst string, ptr bool) string {
		amp := ""
		if ptr {
			amp = "&"
		}
		switch t {
		case "int64":
			return fmt.Sprintf("x, err := strconv.ParseInt(%s, 10, 64)\nif err != nil {\n\treturn err\n}\n%s = %sx\n", v, dst, amp)
		case "bool":
			return fmt.Sprintf("x, err := strconv.ParseBool(%s)\nif err != nil {\n\treturn err\n}\n%s = %sx\n", v, dst, amp)
		}
		if ptr {
			return fmt.Sprintf("x := %s\n%s = &x\n", v, dst)
		}
		return fmt.Sprintf("%s = %s\n", dst, v)
	}
	fmt.Fprintf(&b, "// SetValues reads p from URL query parameters; it checks types only, not\n// the schema's other constraints.\nfunc (p *%s) SetValues(q url.Values) error {\n\t*p = %s{}\n", tn, tn)
	for _, p := range list {
		dst := "p." + p.goName
		switch {
		case p.elem != "":
			fmt.Fprintf(&b, "\tfor _, v := range q[%q] {\n%s\t}\n", p.key, indent(parse(p.elem, "v", "var e "+p.elem+"\n"+"e", false)+dst+" = append("+dst+", e)\n", "\t\t"))
		default:
			t := strings.TrimPrefix(p.typ, "*")
			fmt.Fprintf(&b, "\tif v, ok := q[%q]; ok && len(v) > 0 {\n%s\t}\n", p.key, indent(parse(t, "v[0]", dst, strings.HasPrefix(p.typ, "*")), "\t\t"))
		}
	}
	b.WriteString("\treturn nil\n}\n\n")
	f.parts = append(f.parts, b.String())
	return true, nil
}

func (g *generator) genEndpoint(f *fileOut, d *lexicon.Def, params *lexicon.Params, input, output *lexicon.Body, proc bool) error {
	base := typeName(d)
	if err := g.declareAll(f.pkg, d.Ref(), base, base+"NSID", base+"_Handler"); err != nil {
		return err
	}
	kindWord, kindConst := "query", "lexutil.Query"
	if proc {
		kindWord, kindConst = "procedure", "lexutil.Procedure"
	}
	f.parts = append(f.parts, fmt.Sprintf("// %sNSID is the %s %s.\nconst %sNSID = %q\n", base, kindWord, d.NSID, base, string(d.NSID)))
	hasParams, err := g.genParams(f, base, params)
	if err != nil {
		return err
	}
	in, err := g.genBody(f, base, input, "Input")
	if err != nil {
		return err
	}
	out, err := g.genBody(f, base, output, "Output")
	if err != nil {
		return err
	}
	f.imports["context"] = true
	f.imports[lexutilPath] = true
	args := []string{"ctx context.Context"}
	if hasParams {
		args = append(args, "params *"+base+"_Params")
	}
	var inArg string
	switch {
	case in == nil:
		inArg = "nil"
	case in.raw:
		f.imports["io"] = true
		args = append(args, "input io.Reader", "encoding string")
		inArg = "&lexutil.RawBody{Encoding: encoding, Body: input}"
	default:
		args = append(args, "input "+in.expr)
		inArg = "in"
	}
	hargs := cloneStrings(args)
	if in != nil && in.raw {
		hargs = hargs[:len(hargs)-1]
	}
	results := "error"
	switch {
	case out == nil:
	case out.raw:
		f.imports["io"] = true
		args = append(args, "out io.Writer")
		hargs = append(hargs, "out io.Writer")
	default:
		results = "(" + out.expr + ", error)"
	}
	var b strings.Builder
	clientArgs := append([]string{args[0], "c lexutil.Client"}, args[1:]...)
	fmt.Fprintf(&b, "// %s calls the %s %s.\nfunc %s(%s) %s {\n", base, kindWord, d.NSID, base, strings.Join(clientArgs, ", "), results)
	pv := "nil"
	if hasParams {
		pv = "params.Values()"
	}
	if in != nil && !in.raw {
		b.WriteString("\tvar in any\n\tif input != nil {\n\t\tin = input\n\t}\n")
	}
	switch {
	case out == nil:
		fmt.Fprintf(&b, "\treturn c.Do(ctx, %s, %sNSID, %s, %s, nil)\n}\n\n", kindConst, base, pv, inArg)
	case out.raw:
		fmt.Fprintf(&b, "\treturn c.Do(ctx, %s, %sNSID, %s, %s, out)\n}\n\n", kindConst, base, pv, inArg)
	default:
		fmt.Fprintf(&b, "\tvar out %s\n\tif err := c.Do(ctx, %s, %sNSID, %s, %s, &out); err != nil {\n\t\treturn nil, err\n\t}\n\treturn &out, nil\n}\n\n",
			strings.TrimPrefix(out.expr, "*"), kindConst, base, pv, inArg)
	}
	fmt.Fprintf(&b, "// %s_Handler serves the %s %s.\ntype %s_Handler interface {\n\t%s(%s) %s\n}\n", base, kindWord, d.NSID, base, base, strings.Join(hargs, ", "), results)
	f.parts = append(f.parts, b.String())
	return nil
}

func cloneStrings(s []string) []string { return append([]string(nil), s...) }

func (g *generator) genSubscription(f *fileOut, d *lexicon.Def, s *lexicon.Subscription) error {
	base := typeName(d)
	if err := g.declareAll(f.pkg, d.Ref(), base+"NSID"); err != nil {
		return err
	}
	f.parts = append(f.parts, fmt.Sprintf("// %sNSID is the subscription %s.\nconst %sNSID = %q\n", base, d.NSID, base, string(d.NSID)))
	if _, err := g.genParams(f, base, s.Parameters); err != nil {
		return err
	}
	if s.Message.Schema != nil {
		if _, err := g.resolve(s.Message.Schema, f.nsid, base+"_Message"); err != nil {
			return err
		}
	}
	return nil
}
