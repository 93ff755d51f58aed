package syntax

import (
	"errors"
	"strings"
	"testing"

	"github.com/welkin-atproto/welkin/internal/interoptest"
)

// parsers maps the vector file prefix to the parser it exercises, returning
// the parsed value's String().
var parsers = map[string]func(string) (string, error){
	"did":          func(s string) (string, error) { v, err := ParseDID(s); return v.String(), err },
	"handle":       func(s string) (string, error) { v, err := ParseHandle(s); return v.String(), err },
	"nsid":         func(s string) (string, error) { v, err := ParseNSID(s); return v.String(), err },
	"aturi":        func(s string) (string, error) { v, err := ParseATURI(s); return v.String(), err },
	"tid":          func(s string) (string, error) { v, err := ParseTID(s); return v.String(), err },
	"recordkey":    func(s string) (string, error) { v, err := ParseRecordKey(s); return v.String(), err },
	"datetime":     func(s string) (string, error) { v, err := ParseDatetime(s); return v.String(), err },
	"language":     func(s string) (string, error) { v, err := ParseLanguage(s); return v.String(), err },
	"atidentifier": func(s string) (string, error) { v, err := ParseAtIdentifier(s); return v.String(), err },
	"uri":          func(s string) (string, error) { v, err := ParseURI(s); return v.String(), err },
	"cid":          func(s string) (string, error) { v, err := ParseCID(s); return v.String(), err },
}

// vectorFiles lists every interop vector file and whether it holds valid
// inputs.
var vectorFiles = []struct {
	kind  string
	file  string
	valid bool
}{
	{"did", "did_syntax_valid.txt", true},
	{"did", "did_syntax_invalid.txt", false},
	{"handle", "handle_syntax_valid.txt", true},
	{"handle", "handle_syntax_invalid.txt", false},
	{"nsid", "nsid_syntax_valid.txt", true},
	{"nsid", "nsid_syntax_invalid.txt", false},
	{"aturi", "aturi_syntax_valid.txt", true},
	{"aturi", "aturi_syntax_invalid.txt", false},
	{"tid", "tid_syntax_valid.txt", true},
	{"tid", "tid_syntax_invalid.txt", false},
	{"recordkey", "recordkey_syntax_valid.txt", true},
	{"recordkey", "recordkey_syntax_invalid.txt", false},
	{"datetime", "datetime_syntax_valid.txt", true},
	{"datetime", "datetime_syntax_invalid.txt", false},
	{"datetime", "datetime_parse_invalid.txt", false},
	{"language", "language_syntax_valid.txt", true},
	{"language", "language_syntax_invalid.txt", false},
	{"language", "language_parse_invalid.txt", false},
	{"atidentifier", "atidentifier_syntax_valid.txt", true},
	{"atidentifier", "atidentifier_syntax_invalid.txt", false},
	{"uri", "uri_syntax_valid.txt", true},
	{"uri", "uri_syntax_invalid.txt", false},
	{"cid", "cid_syntax_valid.txt", true},
	{"cid", "cid_syntax_invalid.txt", false},
}

func TestInteropVectors(t *testing.T) {
	for _, vf := range vectorFiles {
		t.Run(vf.file, func(t *testing.T) {
			parse := parsers[vf.kind]
			for _, line := range interoptest.Lines(t, "syntax/"+vf.file) {
				got, err := parse(line)
				if vf.valid {
					if err != nil {
						t.Errorf("%q rejected: %v", line, err)
					} else if got != line {
						t.Errorf("%q parsed to %q", line, got)
					}
					continue
				}
				if err == nil {
					t.Errorf("%q accepted, want an error", line)
					continue
				}
				checkError(t, err, line)
			}
		})
	}
}

// checkError verifies that err is a *Error that quotes the input and gives
// a reason.
func checkError(t *testing.T, err error, input string) {
	t.Helper()
	var se *Error
	if !errors.As(err, &se) {
		t.Errorf("%q: error %v (%T) is not a *syntax.Error", input, err, err)
		return
	}
	if se.Kind == "" || se.Reason == "" {
		t.Errorf("%q: error %#v lacks kind or reason", input, se)
	}
	if !strings.HasPrefix(input, strings.TrimSuffix(se.Input, "...")) {
		t.Errorf("%q: error input %q is not a prefix of the input", input, se.Input)
	}
	if !strings.HasPrefix(err.Error(), "invalid "+se.Kind+" ") {
		t.Errorf("%q: error message %q has the wrong shape", input, err.Error())
	}
}

// The lenient datetime parser must accept everything the strict one does,
// unchanged.
func TestDatetimeLenientAcceptsStrictVectors(t *testing.T) {
	for _, line := range interoptest.Lines(t, "syntax/datetime_syntax_valid.txt") {
		d, err := ParseDatetimeLenient(line)
		if err != nil {
			t.Errorf("%q: %v", line, err)
		} else if d.String() != line {
			t.Errorf("%q became %q", line, d)
		}
	}
	// Semantic errors stay errors in lenient mode.
	for _, line := range interoptest.Lines(t, "syntax/datetime_parse_invalid.txt") {
		if d, err := ParseDatetimeLenient(line); err == nil {
			t.Errorf("%q accepted as %q", line, d)
		}
	}
}

// Every AT-URI vector's components are themselves valid.
func TestATURIVectorComponents(t *testing.T) {
	for _, line := range interoptest.Lines(t, "syntax/aturi_syntax_valid.txt") {
		u, err := ParseATURI(line)
		if err != nil {
			t.Errorf("%q: %v", line, err)
			continue
		}
		if _, err := ParseAtIdentifier(u.Authority().String()); err != nil {
			t.Errorf("%q: authority: %v", line, err)
		}
		if c := u.Collection(); c != "" {
			if _, err := ParseNSID(c.String()); err != nil {
				t.Errorf("%q: collection: %v", line, err)
			}
		}
		if k := u.RecordKey(); k != "" {
			if _, err := ParseRecordKey(k.String()); err != nil {
				t.Errorf("%q: record key: %v", line, err)
			}
		}
		want := "at://" + u.Authority().String() + u.Path()
		if want != line {
			t.Errorf("%q: authority+path gives %q", line, want)
		}
	}
}
