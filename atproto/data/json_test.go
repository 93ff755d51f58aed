package data

import (
	"encoding/json"
	"errors"
	"strconv"
	"strings"
	"testing"
)

const (
	testBlobCID = "bafkreiccldh766hwcnuxnf2wh6jgzepf2nlu2lvcllt63eww5p6chi4ity"
	testCBORCID = "bafyreidfayvfuwqa7qlnopdjiqrxzs6blmoeu4rujcjtnci5beludirz2a"
)

func TestParseJSONRejects(t *testing.T) {
	deep := strings.Repeat(`{"a":`, MaxDepth) + `{}` + strings.Repeat(`}`, MaxDepth)
	deepArr := `{"a":` + strings.Repeat(`[`, MaxDepth) + strings.Repeat(`]`, MaxDepth) + `}`
	longKey := `{"` + strings.Repeat("k", MaxKeyLen+1) + `":1}`
	bigArr := `{"a":[` + strings.Repeat("0,", MaxContainerLen) + `0]}`
	cases := []struct {
		name, in, path, frag string
	}{
		{"top-level string", `"blah"`, "$", "top-level value must be an object, not a string"},
		{"top-level array", `[1]`, "$", "top-level value must be an object, not an array"},
		{"empty input", ``, "$", "unexpected end of input"},
		{"top-level link", `{"$link":"` + testCBORCID + `"}`, "$", "top-level value must be a map, not a link"},
		{"float", `{"rcrd":{"a":123.456}}`, "$.rcrd.a", "number 123.456 is not an integer"},
		{"half", `{"a":123.5}`, "$.a", "not an integer"},
		{"negative exponent", `{"a":1e-2}`, "$.a", "not an integer"},
		{"fraction via exponent", `{"a":15e-1}`, "$.a", "not an integer"},
		{"int64 overflow", `{"a":9223372036854775808}`, "$.a", "outside the int64 range"},
		{"int64 underflow", `{"a":-9223372036854775809}`, "$.a", "outside the int64 range"},
		{"huge", `{"a":123456789012345678901234567890}`, "$.a", "outside the int64 range"},
		{"huge exponent", `{"a":1e999999999999999999}`, "$.a", "outside the int64 range"},
		{"exponent overflow", `{"a":1e19}`, "$.a", "outside the int64 range"},
		{"leading zero", `{"a":01}`, "$.a", "leading zero"},
		{"plus sign", `{"a":+1}`, "$.a", "expecting a value"},
		{"bare minus", `{"a":-}`, "$.a", "expecting a digit"},
		{"dot without digits", `{"a":1.}`, "$.a", "after '.'"},
		{"exponent without digits", `{"a":1e}`, "$.a", "in exponent"},
		{"NaN", `{"a":NaN}`, "$.a", "expecting a value"},
		{"$type null", `{"rcrd":{"$type":null,"a":1}}`, "$.rcrd", "$type must be a string, not null"},
		{"$type number", `{"rcrd":{"$type":123}}`, "$.rcrd", "$type must be a string, not an integer"},
		{"$type empty", `{"rcrd":{"$type":""}}`, "$.rcrd", "$type must not be empty"},
		{"blob string size", `{"blb":{"$type":"blob","ref":{"$link":"` + testBlobCID + `"},"mimeType":"image/jpeg","size":"10000"}}`, "$.blb", "blob: size must be an integer, not a string"},
		{"blob missing ref", `{"blb":{"$type":"blob","mimeType":"image/jpeg","size":10000}}`, "$.blb", "blob: ref must be a link, not null"},
		{"blob extra key", `{"blb":{"$type":"blob","ref":{"$link":"` + testBlobCID + `"},"mimeType":"image/jpeg","size":1,"x":1}}`, "$.blb", `blob: unexpected field "x"`},
		{"blob negative size", `{"blb":{"$type":"blob","ref":{"$link":"` + testBlobCID + `"},"mimeType":"image/jpeg","size":-1}}`, "$.blb", "negative"},
		{"bytes wrong type", `{"lnk":{"$bytes":[1,2,3]}}`, "$.lnk", "$bytes must be a string, not an array"},
		{"bytes extra key", `{"lnk":{"$bytes":"AAAA","other":"blah"}}`, "$.lnk", "$bytes object must have no other keys"},
		{"bytes bad base64", `{"lnk":{"$bytes":"!!!"}}`, "$.lnk", "$bytes: invalid base64"},
		{"bytes url alphabet", `{"lnk":{"$bytes":"-_8"}}`, "$.lnk", "$bytes: invalid base64"},
		{"bytes line break", `{"lnk":{"$bytes":"AA\nAA"}}`, "$.lnk", "line break"},
		{"link wrong type", `{"lnk":{"$link":1234}}`, "$.lnk", "$link must be a string, not an integer"},
		{"link bogus", `{"lnk":{"$link":"."}}`, "$.lnk", "$link: cid:"},
		{"link extra key", `{"lnk":{"$link":"` + testBlobCID + `","other":"blah"}}`, "$.lnk", "$link object must have no other keys"},
		{"link nested path", `{"embed":{"images":[{"image":{"$type":"blob","ref":{"$link":5},"mimeType":"a","size":1}}]}}`, "$.embed.images[0].image.ref", "$link must be a string"},
		{"duplicate key", `{"a":1,"b":2,"a":3}`, "$", `duplicate key "a"`},
		{"duplicate $link", `{"x":{"$link":"a","$link":"b"}}`, "$.x", `duplicate key "$link"`},
		{"invalid UTF-8", "{\"a\":\"\xff\"}", "$.a", "not valid UTF-8"},
		{"invalid UTF-8 after escape", "{\"a\":\"\\n\xc3\"}", "$.a", "not valid UTF-8"},
		{"invalid UTF-8 in key", "{\"\xfe\":1}", "$", "not valid UTF-8"},
		{"lone high surrogate", `{"a":"\ud83d"}`, "$.a", `lone high surrogate \ud83d`},
		{"high surrogate then text", `{"a":"\ud83dx"}`, "$.a", "lone high surrogate"},
		{"two high surrogates", `{"a":"\ud83d\ud83d"}`, "$.a", "lone high surrogate"},
		{"lone low surrogate", `{"a":"\ude00"}`, "$.a", `lone low surrogate \ude00`},
		{"bad escape", `{"a":"\x41"}`, "$.a", `invalid escape \x`},
		{"short unicode escape", `{"a":"\u12"}`, "$.a", `invalid \u escape`},
		{"control character", "{\"a\":\"\t\"}", "$.a", "control character 0x09"},
		{"unterminated string", `{"a":"abc`, "$.a", "unexpected end of input in string"},
		{"trailing data", `{"a":1} x`, "$", "unexpected character 'x' after the top-level value"},
		{"two values", `{}{}`, "$", "after the top-level value"},
		{"trailing comma object", `{"a":1,}`, "$", "expecting a string key"},
		{"trailing comma array", `{"a":[1,]}`, "$.a[1]", "expecting a value"},
		{"missing colon", `{"a" 1}`, "$", "expecting ':'"},
		{"unquoted key", `{a:1}`, "$", "expecting a string key"},
		{"single quotes", `{'a':1}`, "$", "expecting a string key"},
		{"bad literal", `{"a":tru}`, "$.a", "expecting true"},
		{"unclosed object", `{"a":1`, "$", "unexpected end of input in object"},
		{"unclosed array", `{"a":[1`, "$.a", "unexpected end of input in array"},
		{"too deep maps", deep, "$" + strings.Repeat(".a", MaxDepth), "nesting deeper than 32 levels"},
		{"too deep arrays", deepArr, "$.a" + strings.Repeat("[0]", MaxDepth-1), "nesting deeper than 32 levels"},
		{"key too long", longKey, "$", "key of 8193 bytes is longer than the 8192 allowed"},
		{"array too long", bigArr, "$.a", "array has more than 131072 elements"},
		{"odd key path", `{"a b":{"c":1.5}}`, `$["a b"].c`, "not an integer"},
		{"index path", `{"a":[0,1,{"b":[true,1.5]}]}`, "$.a[2].b[1]", "not an integer"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			m, err := ParseJSON([]byte(tc.in))
			if err == nil {
				t.Fatalf("accepted: %#v", m)
			}
			var je *JSONError
			if !errors.As(err, &je) {
				t.Fatalf("error %T is not a *JSONError: %v", err, err)
			}
			if je.Path != tc.path {
				t.Errorf("path %q, want %q (%v)", je.Path, tc.path, err)
			}
			if !strings.Contains(err.Error(), tc.frag) {
				t.Errorf("error %q does not contain %q", err, tc.frag)
			}
			if !strings.HasPrefix(err.Error(), "data: json at "+tc.path+": ") {
				t.Errorf("error %q lacks the prefix", err)
			}
		})
	}
}

func TestParseJSONErrorExample(t *testing.T) {
	_, err := ParseJSON([]byte(`{"embed":{"images":[{"image":{"$type":"blob","ref":{"$link":true},"mimeType":"image/png","size":3}}]}}`))
	const want = "data: json at $.embed.images[0].image.ref: $link must be a string, not a boolean"
	if err == nil || err.Error() != want {
		t.Fatalf("got %v, want %s", err, want)
	}
}

func TestParseJSONNumbers(t *testing.T) {
	cases := []struct {
		in   string
		want int64
	}{
		{"0", 0},
		{"-0", 0},
		{"-0.0", 0},
		{"7", 7},
		{"-7", -7},
		{"123", 123},
		{"123.0", 123},
		{"123.000", 123},
		{"1e2", 100},
		{"1E2", 100},
		{"1e+2", 100},
		{"1.5e1", 15},
		{"1500e-2", 15},
		{"0e5", 0},
		{"0.0e-999", 0},
		{"9007199254740991", MaxSafeInt},
		{"-9007199254740991", MinSafeInt},
		{"9007199254740993", 9007199254740993}, // beyond float64: kept exactly
		{"9223372036854775807", 9223372036854775807},
		{"-9223372036854775808", -9223372036854775808},
		{"9.223372036854775807e18", 9223372036854775807},
		{"-9.223372036854775808e18", -9223372036854775808},
		{"922337203685477580.7e1", 9223372036854775807},
		{"100000000000000000", 100000000000000000},
		{"999999999999999999", 999999999999999999},
		{"1000000000000000000", 1000000000000000000},
	}
	for _, tc := range cases {
		m, err := ParseJSON([]byte(`{"n":` + tc.in + `}`))
		if err != nil {
			t.Errorf("%s: %v", tc.in, err)
			continue
		}
		if got, ok := m["n"].(int64); !ok || got != tc.want {
			t.Errorf("%s: got %#v, want %d", tc.in, m["n"], tc.want)
		}
	}
	for _, bad := range []string{"123.5", "0.1", "1e-1", "-9223372036854775809", "9223372036854775808", "9.2233720368547758071e18", "1e19", "1e20", "-1e19"} {
		if _, err := ParseJSON([]byte(`{"n":` + bad + `}`)); err == nil {
			t.Errorf("%s: accepted", bad)
		}
	}
}

func TestParseJSONStrings(t *testing.T) {
	cases := []struct{ in, want string }{
		{`""`, ""},
		{`"plain"`, "plain"},
		{`"a~öñ©⽘☎𓋓😀👨‍👩‍👧‍👧"`, "a~öñ©⽘☎𓋓😀👨‍👩‍👧‍👧"},
		{`"\"\\\/\b\f\n\r\t"`, "\"\\/\b\f\n\r\t"},
		{`"\u0041\u00e9\u4e2d"`, "Aé中"},
		{`"\ud83d\ude00"`, "😀"},
		{`"x\uD83D\uDE00y"`, "x😀y"},
		{`"é\n中"`, "é\n中"},
		{`"\u0000"`, "\x00"},
		{`"<>&"`, "<>&"},
		{`"\u2028"`, "\u2028"},
	}
	for _, tc := range cases {
		v, err := DecodeJSON([]byte(tc.in))
		if err != nil {
			t.Errorf("%s: %v", tc.in, err)
			continue
		}
		if v != tc.want {
			t.Errorf("%s: got %q, want %q", tc.in, v, tc.want)
		}
	}
}

func TestParseJSONSpecialObjects(t *testing.T) {
	m := mustParseJSON(t, `{
		"link": {"$link": "`+testCBORCID+`"},
		"bytes": {"$bytes": "nFERjvLLiw9qm45JrqH9QTzyC2Lu1Xb4ne6+sBrCzI0"},
		"padded": {"$bytes": "AQI="},
		"unpadded": {"$bytes": "AQI"},
		"empty": {"$bytes": ""},
		"blob": {"$type": "blob", "ref": {"$link": "`+testBlobCID+`"}, "mimeType": "image/jpeg", "size": 10000},
		"legacy": {"cid": "`+testBlobCID+`", "mimeType": "image/png"},
		"notLegacy": {"cid": "not a cid", "mimeType": "image/png"},
		"typed": {"$type": "app.bsky.embed.images", "images": []},
		"otherDollar": {"$other": 1}
	}`)
	if c, ok := m["link"].(CID); !ok || c.String() != testCBORCID {
		t.Errorf("link: %#v", m["link"])
	}
	if b, ok := m["bytes"].(Bytes); !ok || len(b) != 32 || b[0] != 0x9c {
		t.Errorf("bytes: %#v", m["bytes"])
	}
	for _, k := range []string{"padded", "unpadded"} {
		if b, ok := m[k].(Bytes); !ok || string(b) != "\x01\x02" {
			t.Errorf("%s: %#v", k, m[k])
		}
	}
	if b, ok := m["empty"].(Bytes); !ok || len(b) != 0 {
		t.Errorf("empty: %#v", m["empty"])
	}
	wantBlob := Blob{Ref: MustParseCID(testBlobCID), MimeType: "image/jpeg", Size: 10000}
	if m["blob"] != wantBlob {
		t.Errorf("blob: %#v", m["blob"])
	}
	wantLegacy := Blob{Ref: MustParseCID(testBlobCID), MimeType: "image/png", Legacy: true}
	if m["legacy"] != wantLegacy {
		t.Errorf("legacy: %#v", m["legacy"])
	}
	if _, ok := m["notLegacy"].(map[string]any); !ok {
		t.Errorf("notLegacy: %#v", m["notLegacy"])
	}
	if _, ok := m["typed"].(map[string]any); !ok {
		t.Errorf("typed: %#v", m["typed"])
	}
	if _, ok := m["otherDollar"].(map[string]any); !ok {
		t.Errorf("otherDollar: %#v", m["otherDollar"])
	}
}

func TestParseJSONDepthLimit(t *testing.T) {
	// MaxDepth nested maps are accepted, and so is a link or a blob (whose
	// ref is one level deeper in JSON) at the deepest level.
	for _, inner := range []string{
		`{}`,
		`[]`,
		`{"$link":"` + testCBORCID + `"}`,
		`{"$bytes":"AQI"}`,
		`{"$type":"blob","ref":{"$link":"` + testBlobCID + `"},"mimeType":"a/b","size":1}`,
	} {
		doc := strings.Repeat(`{"a":`, MaxDepth-1) + inner + strings.Repeat(`}`, MaxDepth-1)
		if _, err := ParseJSON([]byte(doc)); err != nil {
			t.Errorf("depth %d with %s: %v", MaxDepth, inner, err)
		}
	}
	for _, inner := range []string{`{"x":{}}`, `{"x":[]}`, `{"$link":{"a":1}}`} {
		doc := strings.Repeat(`{"a":`, MaxDepth-1) + inner + strings.Repeat(`}`, MaxDepth-1)
		if _, err := ParseJSON([]byte(doc)); err == nil || !strings.Contains(err.Error(), "nesting deeper") {
			t.Errorf("depth %d+1 with %s: %v", MaxDepth, inner, err)
		}
	}
	// Very deep input fails fast, without recursing through all of it.
	huge := strings.Repeat("[", 1_000_000)
	if _, err := DecodeJSON([]byte(huge)); err == nil || !strings.Contains(err.Error(), "nesting deeper") {
		t.Errorf("huge nesting: %v", err)
	}
}

func TestParseJSONLimitsAtEdge(t *testing.T) {
	okKey := `{"` + strings.Repeat("k", MaxKeyLen) + `":1}`
	if _, err := ParseJSON([]byte(okKey)); err != nil {
		t.Errorf("key of MaxKeyLen: %v", err)
	}
	okArr := `{"a":[` + strings.Repeat("0,", MaxContainerLen-1) + `0]}`
	m, err := ParseJSON([]byte(okArr))
	if err != nil {
		t.Fatalf("array of MaxContainerLen: %v", err)
	}
	if n := len(m["a"].([]any)); n != MaxContainerLen {
		t.Errorf("array length %d", n)
	}
	var sb strings.Builder
	sb.WriteString(`{`)
	for i := 0; i <= MaxContainerLen; i++ {
		if i > 0 {
			sb.WriteByte(',')
		}
		sb.WriteString(`"k`)
		sb.WriteString(strconv.Itoa(i))
		sb.WriteString(`":0`)
	}
	sb.WriteString(`}`)
	if _, err := ParseJSON([]byte(sb.String())); err == nil || !strings.Contains(err.Error(), "map has more than 131072 entries") {
		t.Errorf("big map: %v", err)
	}
}

func TestDecodeJSONScalars(t *testing.T) {
	cases := map[string]any{
		`null`:                            nil,
		` true `:                          true,
		`false`:                           false,
		`-12`:                             int64(-12),
		`"s"`:                             "s",
		`[1,"a"]`:                         []any{int64(1), "a"},
		`{"$link":"` + testCBORCID + `"}`: MustParseCID(testCBORCID),
	}
	for in, want := range cases {
		got, err := DecodeJSON([]byte(in))
		if err != nil || !jsonValueEqual(got, want) {
			t.Errorf("%s: got %#v, %v; want %#v", in, got, err, want)
		}
	}
}

// Realistic records, written as MarshalJSON writes them: sorted keys, no
// spaces. Parsing and writing each back must give the same bytes.
var realisticRecords = map[string]string{
	"post with facets and reply": `{"$type":"app.bsky.feed.post","createdAt":"2024-05-01T12:34:56.789Z",` +
		`"facets":[{"features":[{"$type":"app.bsky.richtext.facet#link","uri":"https://example.com/a?b=c&d=e"}],"index":{"byteEnd":42,"byteStart":20}}],` +
		`"langs":["en","pt-BR"],` +
		`"reply":{"parent":{"cid":"` + testCBORCID + `","uri":"at://did:plc:abc/app.bsky.feed.post/3k2"},"root":{"cid":"` + testCBORCID + `","uri":"at://did:plc:abc/app.bsky.feed.post/3k1"}},` +
		`"text":"Hello <world> & \"friends\" — see https://example.com/a?b=c&d=e 😀\nline two\ttab"}`,
	"post with images": `{"$type":"app.bsky.feed.post","createdAt":"2024-05-01T12:34:56Z",` +
		`"embed":{"$type":"app.bsky.embed.images","images":[` +
		`{"alt":"a cat","aspectRatio":{"height":600,"width":800},"image":{"$type":"blob","mimeType":"image/jpeg","ref":{"$link":"` + testBlobCID + `"},"size":123456}},` +
		`{"alt":"","image":{"$type":"blob","mimeType":"image/png","ref":{"$link":"` + testBlobCID + `"},"size":1}}]},` +
		`"text":""}`,
	"profile": `{"$type":"app.bsky.actor.profile","avatar":{"$type":"blob","mimeType":"image/jpeg","ref":{"$link":"` + testBlobCID + `"},"size":50000},` +
		`"banner":{"cid":"` + testBlobCID + `","mimeType":"image/jpeg"},"description":"ünïcödé\u2028bio","displayName":"Alice"}`,
	"numbers and bytes": `{"big":9223372036854775807,"bytes":{"$bytes":"AAEC/w"},"neg":-9223372036854775808,"null":null,"safe":9007199254740991,"zero":0}`,
	"escapes":           `{"ctl":"\u0000\u0001\u001f\b\f\n\r\t","quote":"\"\\","uni":"𓋓😀👨‍👩‍👧‍👧"}`,
}

func TestJSONRoundTripRecords(t *testing.T) {
	for name, rec := range realisticRecords {
		m, err := ParseJSON([]byte(rec))
		if err != nil {
			t.Errorf("%s: ParseJSON: %v", name, err)
			continue
		}
		out, err := MarshalJSON(m)
		if err != nil {
			t.Errorf("%s: MarshalJSON: %v", name, err)
			continue
		}
		if want := rec; string(out) != want {
			t.Errorf("%s:\n got %s\nwant %s", name, out, want)
		}
		// And encoding/json agrees that it is the same JSON document.
		var a, b any
		if err := json.Unmarshal([]byte(rec), &a); err != nil {
			t.Fatal(err)
		}
		if err := json.Unmarshal(out, &b); err != nil {
			t.Fatalf("%s: output is not JSON: %v", name, err)
		}
	}
	m := mustParseJSON(t, realisticRecords["post with images"])
	img := m["embed"].(map[string]any)["images"].([]any)[0].(map[string]any)["image"]
	if b, ok := img.(Blob); !ok || b.Size != 123456 || b.MimeType != "image/jpeg" {
		t.Errorf("image blob: %#v", img)
	}
}

func TestJSONRoundTripReformatted(t *testing.T) {
	// Whitespace, key order and spelling of numbers and escapes may vary;
	// the value may not.
	in := "{ \"b\" : [ 1.0 , 2e0 , -3 ] ,\n\t\"a\" : { \"$bytes\" : \"AQI=\" }, \"c\": \"\\u00e9\\ud83d\\ude00\" }"
	m := mustParseJSON(t, in)
	out, err := MarshalJSON(m)
	if err != nil {
		t.Fatal(err)
	}
	const want = `{"a":{"$bytes":"AQI"},"b":[1,2,-3],"c":"é😀"}`
	if string(out) != want {
		t.Errorf("got %s, want %s", out, want)
	}
}

func TestMarshalJSONGoValues(t *testing.T) {
	type name string
	c := MustParseCID(testCBORCID)
	n := 5
	cases := []struct {
		in   any
		want string
	}{
		{nil, `null`},
		{map[string]any{}, `{}`},
		{[]any{}, `[]`},
		{map[string]any{"b": 1, "a": int8(-2), "c": uint32(3), "d": uint64(1 << 62)}, `{"a":-2,"b":1,"c":3,"d":4611686018427387904}`},
		{[]string{"x", "<y>"}, `["x","<y>"]`},
		{map[string]string{"z": "1", "a": "&"}, `{"a":"&","z":"1"}`},
		{map[string]int{"b": 2, "a": 1}, `{"a":1,"b":2}`},
		{[]int{1, 2}, `[1,2]`},
		{[2]bool{true, false}, `[true,false]`},
		{[]byte{1, 2, 255}, `{"$bytes":"AQL/"}`},
		{Bytes(nil), `{"$bytes":""}`},
		{[3]byte{1, 2, 3}, `{"$bytes":"AQID"}`},
		{c, `{"$link":"` + testCBORCID + `"}`},
		{&c, `{"$link":"` + testCBORCID + `"}`},
		{&n, `5`},
		{(*int)(nil), `null`},
		{name("x"), `"x"`},
		{[]map[string]any{{"k": []any{nil}}}, `[{"k":[null]}]`},
		{Blob{Ref: MustParseCID(testBlobCID), MimeType: "image/png", Size: 7}, `{"$type":"blob","mimeType":"image/png","ref":{"$link":"` + testBlobCID + `"},"size":7}`},
		{Blob{Ref: MustParseCID(testBlobCID), MimeType: "image/png", Legacy: true}, `{"cid":"` + testBlobCID + `","mimeType":"image/png"}`},
		{"\u2028\u2029\x7f<>&é", `"\u2028\u2029` + "\x7f" + `<>&é"`},
		{map[string]any{"$type": "blob", "ref": MustParseCID(testBlobCID), "mimeType": "a/b", "size": int64(3)}, `{"$type":"blob","mimeType":"a/b","ref":{"$link":"` + testBlobCID + `"},"size":3}`},
	}
	for _, tc := range cases {
		got, err := MarshalJSON(tc.in)
		if err != nil {
			t.Errorf("%#v: %v", tc.in, err)
			continue
		}
		if string(got) != tc.want {
			t.Errorf("%#v:\n got %s\nwant %s", tc.in, got, tc.want)
		}
	}
}

func TestMarshalJSONRejects(t *testing.T) {
	deep := any(map[string]any{})
	for i := 0; i < MaxDepth; i++ {
		deep = map[string]any{"a": deep}
	}
	var cyclic any
	cyclic = &cyclic
	cases := []struct {
		name string
		in   any
		path string
		frag string
	}{
		{"float", map[string]any{"a": []any{1.5}}, "$.a[0]", "floats are not allowed"},
		{"integral float", map[string]any{"a": float64(2)}, "$.a", "floats are not allowed"},
		{"uint64 overflow", map[string]any{"a": uint64(1 << 63)}, "$.a", "outside the int64 range"},
		{"invalid UTF-8 value", map[string]any{"a": "\xff"}, "$.a", "not valid UTF-8"},
		{"invalid UTF-8 key", map[string]any{"\xff": 1}, "$", "not valid UTF-8"},
		{"undefined CID", map[string]any{"a": CID{}}, "$.a", "undefined CID"},
		{"blob without ref", map[string]any{"b": Blob{MimeType: "a/b"}}, "$.b", "undefined ref"},
		{"blob negative size", map[string]any{"b": Blob{Ref: MustParseCID(testBlobCID), Size: -1}}, "$.b", "negative"},
		{"$link key", map[string]any{"x": map[string]any{"$link": testCBORCID}}, "$.x", "reserved"},
		{"$bytes key", map[string]any{"$bytes": "AA", "x": 1}, "$", "reserved"},
		{"$type empty", map[string]any{"$type": ""}, "$", "$type must not be empty"},
		{"$type int", map[string]string{"a": "b", "$type": ""}, "$", "$type must not be empty"},
		{"$type wrong kind", map[string]any{"$type": 3}, "$", "$type must be a string"},
		{"bad blob map", map[string]any{"$type": "blob", "size": int64(1)}, "$", "blob: ref must be a link"},
		{"too deep", deep, "$" + strings.Repeat(".a", MaxDepth), "nesting deeper than 32"},
		{"struct", struct{}{}, "$", "unsupported Go type"},
		{"int keys", map[int]int{1: 1}, "$", "map keys must be strings"},
		{"pointer cycle", cyclic, "$", "pointers followed"},
		{"chan", make(chan int), "$", "unsupported Go type"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			out, err := MarshalJSON(tc.in)
			if err == nil {
				t.Fatalf("accepted: %s", out)
			}
			var je *JSONError
			if !errors.As(err, &je) {
				t.Fatalf("error %T: %v", err, err)
			}
			if je.Path != tc.path || !strings.Contains(err.Error(), tc.frag) {
				t.Errorf("got %q (path %q), want path %q and %q", err, je.Path, tc.path, tc.frag)
			}
			if !strings.HasPrefix(err.Error(), "data: json encode at ") {
				t.Errorf("error %q lacks the prefix", err)
			}
		})
	}
}

func TestMarshalJSONMatchesEncodingJSON(t *testing.T) {
	// For plain strings the escaping is encoding/json's without HTML escapes.
	var all []rune
	for r := rune(0); r < 0x300; r++ {
		all = append(all, r)
	}
	all = append(all, 0x2027, 0x2028, 0x2029, 0x202a, 0xfffd, 0x1f600)
	s := string(all)
	got, err := MarshalJSON(s)
	if err != nil {
		t.Fatal(err)
	}
	var sb strings.Builder
	enc := json.NewEncoder(&sb)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(s); err != nil {
		t.Fatal(err)
	}
	if want := strings.TrimSuffix(sb.String(), "\n"); string(got) != want {
		t.Errorf("got  %s\nwant %s", got, want)
	}
}

func TestJSONErrorOffset(t *testing.T) {
	_, err := ParseJSON([]byte(`{"a": [1, 2, x]}`))
	var je *JSONError
	if !errors.As(err, &je) || je.Offset != 13 || je.Path != "$.a[2]" {
		t.Fatalf("got %#v", err)
	}
	if !strings.Contains(err.Error(), "(at byte 13)") {
		t.Errorf("error %q lacks the offset", err)
	}
}
