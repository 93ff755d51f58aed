package data

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/welkin-atproto/welkin/internal/base58"
)

// skipDisagreement decodes b with ReadAny and with Skip, each from a fresh
// Decoder that has already entered depth containers, and describes how
// the two differ: in accepting, in where they stop, or in the error. It
// returns "" when they agree, and ReadAny's error.
//
// When a "$type": "blob" map has several unexpected fields, ReadAny names
// whichever its map iteration meets first, so only the start of that
// error is compared.
func skipDisagreement(b []byte, depth int) (string, error) {
	r := NewDecoder(b)
	r.depth = depth
	_, rerr := r.ReadAny()
	s := NewDecoder(b)
	s.depth = depth
	serr := s.Skip()
	if (rerr == nil) != (serr == nil) {
		return fmt.Sprintf("ReadAny: %v; Skip: %v", rerr, serr), rerr
	}
	if rerr == nil {
		if r.off != s.off || r.depth != s.depth {
			return fmt.Sprintf("ReadAny stops at %d (depth %d), Skip at %d (depth %d)", r.off, r.depth, s.off, s.depth), nil
		}
		return "", nil
	}
	re, ok1 := rerr.(*CBORError)
	se, ok2 := serr.(*CBORError)
	if !ok1 || !ok2 {
		return fmt.Sprintf("errors of type %T and %T", rerr, serr), rerr
	}
	const unexpected = "blob: unexpected field "
	sameReason := re.Reason == se.Reason ||
		strings.HasPrefix(re.Reason, unexpected) && strings.HasPrefix(se.Reason, unexpected)
	if re.Offset != se.Offset || !sameReason {
		return fmt.Sprintf("ReadAny: %v; Skip: %v", rerr, serr), rerr
	}
	return "", rerr
}

// skipCommitBody is shaped like the body of a #commit event: scalars,
// links, a byte string holding the CAR slice and an array of op maps.
func skipCommitBody(t testing.TB) []byte {
	t.Helper()
	blocks := make([]byte, 1800)
	for i := range blocks {
		blocks[i] = byte(i * 7)
	}
	b, err := MarshalCBOR(map[string]any{
		"seq":    int64(8431256710),
		"rebase": false,
		"tooBig": false,
		"repo":   "did:plc:ewvi7nxzyoun6zhxrhs64oiz",
		"commit": cborTestCID,
		"rev":    "3lbmnqkzvkc2s",
		"since":  "3lbmnqjx2ck2s",
		"blocks": Bytes(blocks),
		"ops": []any{map[string]any{
			"action": "create",
			"path":   "app.bsky.feed.post/3lbmnqkzu7s2s",
			"cid":    CIDForRaw([]byte("record")),
			"prev":   nil,
		}},
		"blobs":    []any{},
		"prevData": CIDForRaw([]byte("prev data")),
		"time":     "2024-11-29T10:15:42.118Z",
	})
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// skipMap encodes a map of the given keys and values, in the order given.
func skipMap(entries ...[]byte) []byte {
	if len(entries)%2 != 0 {
		panic("odd number of map entries")
	}
	return cborCat(append([][]byte{appendHead(nil, majorMap, uint64(len(entries)/2))}, entries...)...)
}

// skipCases are inputs whose fate is known, for TestSkipMatchesReadAny
// and as fuzz seeds.
func skipCases(t testing.TB) []struct {
	name string
	in   []byte
	ok   bool
} {
	h := func(s string) []byte { return cborHex(t, s) }
	tx := cborText
	link := cborLink()
	cidV0 := cborCat(h("d8 2a 58 23 00 12 20"), bytes.Repeat([]byte{0xab}, 32))
	arrays := func(n int) []byte { return append(bytes.Repeat([]byte{0x81}, n-1), 0x80) }
	maps := func(n int) []byte {
		var b []byte
		for i := 1; i < n; i++ {
			b = append(b, 0xa1, 0x61, 'k')
		}
		return append(b, 0xa0)
	}
	blob := func(size []byte) []byte { // keys in canonical order: ref, size, $type, mimeType
		return skipMap(tx("ref"), link, tx("size"), size, tx("$type"), tx("blob"), tx("mimeType"), tx("image/png"))
	}
	legacy := skipMap(tx("cid"), tx(cborTestCID.String()), tx("mimeType"), tx("image/png"))
	legacyZ := skipMap(tx("cid"), tx("z"+base58.Encode(cborTestCID.Bytes())), tx("mimeType"), tx("image/png"))
	post, err := MarshalCBOR(cborSamplePost())
	if err != nil {
		t.Fatal(err)
	}
	return []struct {
		name string
		in   []byte
		ok   bool
	}{
		// Scalars at the edges of their encodings.
		{"small int", h("17"), true},
		{"one-byte int", h("18 18"), true},
		{"two-byte int", h("19 0100"), true},
		{"four-byte int", h("1a 00010000"), true},
		{"eight-byte int", h("1b 0000000100000000"), true},
		{"max int64", h("1b 7fffffffffffffff"), true},
		{"min int64", h("3b 7fffffffffffffff"), true},
		{"small negative", h("37"), true},
		{"one-byte negative", h("38 18"), true},
		{"false", h("f4"), true},
		{"true", h("f5"), true},
		{"null", h("f6"), true},
		{"empty string", h("60"), true},
		{"empty bytes", h("40"), true},
		{"empty array", h("80"), true},
		{"empty map", h("a0"), true},
		{"unicode string", tx("ünïcødé 🎉"), true},
		{"bytes", h("43 000102"), true},
		{"link", link, true},
		{"CIDv0 link", cidV0, true},
		{"trailing bytes left unread", h("01 02"), true},
		{"empty key first", skipMap(tx(""), h("01"), tx("a"), h("02")), true},
		{"shorter key first", skipMap(tx("b"), h("01"), tx("aa"), h("02")), true},
		{"unicode key", skipMap(tx("é"), h("01")), true},
		{"longest key", skipMap(tx(strings.Repeat("k", MaxKeyLen)), h("01")), true},
		{"deepest arrays", arrays(MaxDepth), true},
		{"deepest maps", maps(MaxDepth), true},
		{"longest array", cborCat(h("9a 00020000"), bytes.Repeat([]byte{0xf6}, MaxContainerLen)), true},
		{"sample post", post, true},
		{"commit body", skipCommitBody(t), true},

		// Shapes that are, or look like, blobs.
		{"blob", blob(h("19 2710")), true},
		{"blob of size 0", blob(h("00")), true},
		{"blob of max size", blob(h("1b 7fffffffffffffff")), true},
		{"blob in a map", skipMap(tx("img"), blob(h("01"))), true},
		{"blob in an array", cborCat(h("82"), blob(h("01")), blob(h("02"))), true},
		{"legacy blob", legacy, true},
		{"legacy blob with base58 cid stays a map", legacyZ, true},
		{"legacy blob with bad cid stays a map", skipMap(tx("cid"), tx("nope"), tx("mimeType"), tx("a")), true},
		{"legacy blob with integer cid stays a map", skipMap(tx("cid"), h("01"), tx("mimeType"), tx("a")), true},
		{"legacy blob with a link stays a map", skipMap(tx("cid"), link, tx("mimeType"), tx("a")), true},
		{"legacy blob with a third key stays a map", skipMap(tx("a"), h("01"), tx("cid"), tx(cborTestCID.String()), tx("mimeType"), tx("a")), true},
		{"other $type with blob keys", skipMap(tx("ref"), h("01"), tx("$type"), tx("blobs")), true},
		{"$type Blob is not blob", skipMap(tx("$type"), tx("Blob")), true},
		{"$type blob with a long header is not blob", skipMap(tx("$type"), tx("blob!")), true},
		{"$type string", skipMap(tx("$type"), tx("app.bsky.feed.post")), true},
		{"$type-like key", skipMap(tx("$typ"), h("01"), tx("$types"), h("f6")), true},

		// Items DAG-CBOR does not have.
		{"empty input", nil, false},
		{"half float", h("f9 3c00"), false},
		{"single float", h("fa 3f800000"), false},
		{"double float", h("fb 3ff0000000000000"), false},
		{"truncated float", h("fb 3ff0"), false},
		{"float in a map", skipMap(tx("a"), h("fb 0000000000000000")), false},
		{"float in an array", h("82 01 f9 0000"), false},
		{"undefined", h("f7"), false},
		{"simple 0", h("e0"), false},
		{"simple 16", h("f0"), false},
		{"simple one-byte", h("f8 20"), false},
		{"simple one-byte false", h("f8 14"), false},
		{"break", h("ff"), false},
		{"break in array", h("81 ff"), false},
		{"reserved info 28", h("1c"), false},
		{"reserved info 29 string", h("7d"), false},
		{"reserved info 30 simple", h("fe"), false},
		{"indefinite map", h("bf ff"), false},
		{"indefinite array", h("9f ff"), false},
		{"indefinite string", h("7f ff"), false},
		{"indefinite bytes", h("5f ff"), false},
		{"indefinite int", h("1f"), false},

		// Non-minimal headers.
		{"non-minimal int 1 byte", h("18 17"), false},
		{"non-minimal int 2 bytes", h("19 00ff"), false},
		{"non-minimal int 4 bytes", h("1a 0000ffff"), false},
		{"non-minimal int 8 bytes", h("1b 00000000ffffffff"), false},
		{"non-minimal negative", h("38 00"), false},
		{"non-minimal negative 8 bytes", h("3b 0000000000000001"), false},
		{"non-minimal string length", h("78 03 616263"), false},
		{"non-minimal bytes length", h("58 01 00"), false},
		{"non-minimal map length", h("b8 00"), false},
		{"non-minimal array length", h("98 01 01"), false},
		{"non-minimal array in map", skipMap(tx("a"), h("98 01 01")), false},
		{"non-minimal key length", cborCat(h("a1 78 01 61"), h("01")), false},
		{"non-minimal tag 42", cborCat(h("d9 002a"), link[2:]), false},
		{"non-minimal link length", cborCat(h("d8 2a 59 0025 00"), cborTestCID.Bytes()), false},

		// Integers outside int64.
		{"int above int64", h("1b 8000000000000000"), false},
		{"int far above int64", h("1b ffffffffffffffff"), false},
		{"int below int64", h("3b 8000000000000000"), false},
		{"int out of range in array", h("82 00 3b ffffffffffffffff"), false},

		// Tags and links.
		{"tag 0", h("c0 60"), false},
		{"tag 1", h("c1 00"), false},
		{"tag 41", h("d8 29 40"), false},
		{"tag 43", h("d8 2b 40"), false},
		{"tag 42 over a string", h("d8 2a 63 616263"), false},
		{"tag 42 over an int", h("d8 2a 01"), false},
		{"tag 42 over a tag", cborCat(h("d8 2a"), link), false},
		{"tag 42 over indefinite bytes", h("d8 2a 5f ff"), false},
		{"tag 42 over a float", h("d8 2a f9 0000"), false},
		{"tag 42 empty", h("d8 2a 40"), false},
		{"tag 42 without the 0x00 prefix", cborCat(h("d8 2a 58 25 01"), cborTestCID.Bytes()), false},
		{"tag 42 of the prefix alone", h("d8 2a 41 00"), false},
		{"tag 42 bad version", h("d8 2a 43 00 02 71"), false},
		{"tag 42 truncated CID", cborCat(h("d8 2a 58 24 00"), cborTestCID.Bytes()[:35]), false},
		{"tag 42 trailing byte", cborCat(h("d8 2a 58 26 00"), cborTestCID.Bytes(), h("00")), false},
		{"tag 42 truncated CIDv0", cborCat(h("d8 2a 58 22 00 12 20"), bytes.Repeat([]byte{0xab}, 31)), false},
		{"tag 42 runs past the end", h("d8 2a 58 25 00 01"), false},
		{"tag 42 at the end", h("d8 2a"), false},
		{"tag 42 huge length", h("d8 2a 5b 7fffffffffffffff"), false},
		{"link with an overlong varint", h("d8 2a 4c 00 01 71 12 80808080808080808080"), false},

		// Map keys.
		{"integer key", h("a1 01 02"), false},
		{"bytes key", h("a1 41 61 02"), false},
		{"null key", h("a1 f6 02"), false},
		{"array key", h("a1 80 02"), false},
		{"indefinite key", h("a1 7f 61 61 ff 01"), false},
		{"duplicate key", skipMap(tx("a"), h("01"), tx("a"), h("02")), false},
		{"duplicate empty key", skipMap(tx(""), h("01"), tx(""), h("02")), false},
		{"keys out of order", skipMap(tx("b"), h("01"), tx("a"), h("02")), false},
		{"longer key first", skipMap(tx("bb"), h("01"), tx("c"), h("02")), false},
		{"keys in byte order, not length first", skipMap(tx("aa"), h("01"), tx("b"), h("02")), false},
		{"invalid UTF-8 key", h("a1 61 ff 01"), false},
		{"key too long", skipMap(tx(strings.Repeat("k", MaxKeyLen+1)), h("01")), false},
		{"key runs past the end", h("a1 65 6162"), false},
		{"key of a huge length", h("a1 7b 7fffffffffffffff 00"), false},
		{"missing map value", cborCat(h("a1"), tx("abc")), false},

		// Strings.
		{"invalid UTF-8", h("62 c328"), false},
		{"surrogate", h("63 eda080"), false},
		{"overlong NUL", h("62 c080"), false},
		{"above U+10FFFF", h("64 f4908080"), false},
		{"truncated UTF-8", h("62 61 e2"), false},
		{"invalid UTF-8 in a nested value", skipMap(tx("a"), h("81 61 80")), false},

		// Lengths the input cannot hold.
		{"truncated string", h("62 61"), false},
		{"truncated bytes", h("5a ffffffff 00"), false},
		{"huge bytes", h("5b ffffffffffffffff"), false},
		{"huge string", h("7b 7fffffffffffffff 61"), false},
		{"truncated header", h("19 01"), false},
		{"truncated 8-byte header", h("1b 0000"), false},
		{"truncated map", h("a2 61 61 01"), false},
		{"truncated array", h("83 01 02"), false},
		{"huge array claim", h("9a 00010000"), false},
		{"huge array claim, 8 bytes", h("9b ffffffffffffffff"), false},
		{"huge map claim, 8 bytes", h("bb 0000000100000000"), false},
		{"array over the limit", h("9a 00020001"), false},
		{"map over the limit", h("ba 00020001"), false},
		{"map needing two bytes an entry", h("a2 60 01 61"), false},

		// Nesting.
		{"arrays too deep", arrays(MaxDepth + 1), false},
		{"maps too deep", maps(MaxDepth + 1), false},
		{"mixed too deep", append(bytes.Repeat([]byte{0x81, 0xa1, 0x61, 'k'}, MaxDepth/2), 0x80), false},

		// "$type".
		{"$type integer", skipMap(tx("$type"), h("01")), false},
		{"$type empty", skipMap(tx("$type"), h("60")), false},
		{"$type null", skipMap(tx("$type"), h("f6")), false},
		{"$type bytes", skipMap(tx("$type"), h("41 61")), false},
		{"$type link", skipMap(tx("$type"), link), false},
		{"$type array", skipMap(tx("$type"), h("81 61 61")), false},
		{"$type map", skipMap(tx("$type"), h("a0")), false},
		{"$type blob", skipMap(tx("$type"), blob(h("01"))), false},
		{"$type legacy blob", skipMap(tx("$type"), legacy), false},
		{"$type empty in a nested map", skipMap(tx("a"), skipMap(tx("$type"), h("60"))), false},
		{"error after an empty $type", skipMap(tx("$type"), h("60"), tx("zzzzzz"), h("f7")), false},

		// Broken blobs.
		{"blob alone", skipMap(tx("$type"), tx("blob")), false},
		{"blob without ref", skipMap(tx("size"), h("01"), tx("$type"), tx("blob"), tx("mimeType"), tx("x")), false},
		{"blob with null ref", skipMap(tx("ref"), h("f6"), tx("size"), h("01"), tx("$type"), tx("blob"), tx("mimeType"), tx("x")), false},
		{"blob with string ref", skipMap(tx("ref"), tx(cborTestCID.String()), tx("size"), h("01"), tx("$type"), tx("blob"), tx("mimeType"), tx("x")), false},
		{"blob with bytes ref", skipMap(tx("ref"), h("41 00"), tx("size"), h("01"), tx("$type"), tx("blob"), tx("mimeType"), tx("x")), false},
		{"blob with blob ref", skipMap(tx("ref"), blob(h("01")), tx("size"), h("01"), tx("$type"), tx("blob"), tx("mimeType"), tx("x")), false},
		{"blob with legacy blob ref", skipMap(tx("ref"), legacy, tx("size"), h("01"), tx("$type"), tx("blob"), tx("mimeType"), tx("x")), false},
		{"blob with map ref", skipMap(tx("ref"), legacyZ, tx("size"), h("01"), tx("$type"), tx("blob"), tx("mimeType"), tx("x")), false},
		{"blob without mimeType", skipMap(tx("ref"), link, tx("size"), h("01"), tx("$type"), tx("blob")), false},
		{"blob with integer mimeType", skipMap(tx("ref"), link, tx("size"), h("01"), tx("$type"), tx("blob"), tx("mimeType"), h("01")), false},
		{"blob with bad UTF-8 mimeType", skipMap(tx("ref"), link, tx("size"), h("01"), tx("$type"), tx("blob"), tx("mimeType"), h("61 ff")), false},
		{"blob without size", skipMap(tx("ref"), link, tx("$type"), tx("blob"), tx("mimeType"), tx("x")), false},
		{"blob with string size", skipMap(tx("ref"), link, tx("size"), tx("1"), tx("$type"), tx("blob"), tx("mimeType"), tx("x")), false},
		{"blob with null size", skipMap(tx("ref"), link, tx("size"), h("f6"), tx("$type"), tx("blob"), tx("mimeType"), tx("x")), false},
		{"blob with negative size", blob(h("20")), false},
		{"blob with min int64 size", blob(h("3b 7fffffffffffffff")), false},
		{"blob with size above int64", blob(h("1b 8000000000000000")), false},
		{"blob with non-minimal size", blob(h("18 01")), false},
		{"blob with float size", blob(h("f9 3c00")), false},
		{"blob with bad link", skipMap(tx("ref"), h("d8 2a 41 00"), tx("size"), h("01"), tx("$type"), tx("blob"), tx("mimeType"), tx("x")), false},
		{"blob with extra field", skipMap(tx("ref"), link, tx("size"), h("01"), tx("$type"), tx("blob"), tx("extra1"), h("f6"), tx("mimeType"), tx("x")), false},
		{"blob with two extra fields", skipMap(tx("a"), h("01"), tx("b"), h("02"), tx("ref"), link, tx("size"), h("01"), tx("$type"), tx("blob"), tx("mimeType"), tx("x")), false},
		{"blob with cid field", skipMap(tx("cid"), tx(cborTestCID.String()), tx("ref"), link, tx("size"), h("01"), tx("$type"), tx("blob"), tx("mimeType"), tx("x")), false},
		{"blob with extra field and no ref", skipMap(tx("a"), h("01"), tx("size"), h("01"), tx("$type"), tx("blob"), tx("mimeType"), tx("x")), false},
		{"broken blob in an array", cborCat(h("82"), blob(h("01")), blob(h("20"))), false},
		{"broken blob deep down", skipMap(tx("a"), skipMap(tx("b"), cborCat(h("81"), blob(h("20"))))), false},
	}
}

func TestSkipMatchesReadAny(t *testing.T) {
	for _, tc := range skipCases(t) {
		t.Run(tc.name, func(t *testing.T) {
			diff, err := skipDisagreement(tc.in, 0)
			if diff != "" {
				t.Fatalf("%x: %s", tc.in, diff)
			}
			if (err == nil) != tc.ok {
				t.Fatalf("%x: ReadAny and Skip give %v; want ok=%v", tc.in, err, tc.ok)
			}
			// Containers already entered count towards the depth limit.
			for _, depth := range []int{1, MaxDepth - 1, MaxDepth} {
				if diff, _ := skipDisagreement(tc.in, depth); diff != "" {
					t.Errorf("%x at depth %d: %s", tc.in, depth, diff)
				}
			}
		})
	}
}

func TestSkipErrors(t *testing.T) {
	// Skip's errors say what and where, as ReadAny's do.
	link := cborLink()
	cases := []struct {
		in   []byte
		off  int
		want string
	}{
		{cborHex(t, "82 01 f9 0000"), 2, "floats are not allowed (16-bit float)"},
		{skipMap(cborText("$type"), skipMap(cborText("cid"), cborText(cborTestCID.String()), cborText("mimeType"), cborText("a"))), 0, "$type must be a string, not a blob"},
		{skipMap(cborText("ref"), cborHex(t, "a0"), cborText("size"), cborHex(t, "01"), cborText("$type"), cborText("blob"), cborText("mimeType"), cborText("x")), 0, "blob: ref must be a link, not a map"},
		{skipMap(cborText("ref"), link, cborText("size"), cborHex(t, "01"), cborText("$type"), cborText("blob")), 0, "blob: mimeType must be a string, not null"},
		{skipMap(cborText("ref"), link, cborText("size"), cborHex(t, "41 00"), cborText("$type"), cborText("blob"), cborText("mimeType"), cborText("x")), 0, "blob: size must be an integer, not bytes"},
		{skipMap(cborText("ref"), link, cborText("size"), cborHex(t, "38 63"), cborText("$type"), cborText("blob"), cborText("mimeType"), cborText("x")), 0, "blob: size -100 is negative"},
		{skipMap(cborText("a"), cborHex(t, "01"), cborText("b"), cborHex(t, "01"), cborText("ref"), link, cborText("size"), cborHex(t, "01"), cborText("$type"), cborText("blob"), cborText("mimeType"), cborText("x")), 0, `blob: unexpected field "a"`},
		{skipMap(cborText("x"), skipMap(cborText("$type"), cborHex(t, "60"))), 3, "$type must not be empty"},
	}
	for _, tc := range cases {
		err := NewDecoder(tc.in).Skip()
		ce, ok := err.(*CBORError)
		if !ok || ce.Offset != tc.off || !strings.Contains(ce.Reason, tc.want) {
			t.Errorf("%x: Skip gives %v; want %q at byte %d", tc.in, err, tc.want, tc.off)
		}
	}
}

func TestSkipAllocatesNothing(t *testing.T) {
	post, err := MarshalCBOR(cborSamplePost())
	if err != nil {
		t.Fatal(err)
	}
	blobs, err := MarshalCBOR(map[string]any{
		"a": Blob{Ref: cborTestCID, MimeType: "image/png", Size: 1234},
		"b": Blob{Ref: cborTestCID, MimeType: "image/png", Legacy: true},
	})
	if err != nil {
		t.Fatal(err)
	}
	for name, in := range map[string][]byte{"commit body": skipCommitBody(t), "post": post, "blobs": blobs} {
		d := NewDecoder(in)
		allocs := testing.AllocsPerRun(100, func() {
			d.off, d.depth = 0, 0
			if err := d.Skip(); err != nil {
				t.Fatal(err)
			}
		})
		if allocs != 0 {
			t.Errorf("%s: Skip makes %v allocations", name, allocs)
		}
		if d.Finish() != nil {
			t.Errorf("%s: Skip stopped at %d of %d", name, d.off, len(in))
		}
	}
}

// skipFuzzSeeds returns the DAG-CBOR of the data-model vectors, when the
// vector folder is there (the fuzz target must not be skipped without it):
// the fixtures' own bytes, and the valid JSON documents encoded.
func skipFuzzSeeds() [][]byte {
	root := os.Getenv("WELKIN_INTEROP_DIR")
	if root == "" {
		root = filepath.Join("..", "..", "..", "shared", "interop")
	}
	var seeds [][]byte
	if raw, err := os.ReadFile(filepath.Join(root, "data-model", "data-model-fixtures.json")); err == nil {
		var fx []cborFixture
		if json.Unmarshal(raw, &fx) == nil {
			for _, f := range fx {
				if b, err := cborB64(f.CBORBase64); err == nil {
					seeds = append(seeds, b)
				}
			}
		}
	}
	docs := jsonFuzzSeeds()
	for _, s := range realisticRecords {
		docs = append(docs, []byte(s))
	}
	for _, doc := range docs {
		if m, err := ParseJSON(doc); err == nil {
			if b, err := MarshalCBOR(m); err == nil {
				seeds = append(seeds, b)
			}
		}
	}
	return seeds
}

// FuzzSkipMatchesReadAny checks that Skip accepts exactly what ReadAny
// accepts, stops where it stops and fails with the same error, at the top
// level and with containers already entered.
func FuzzSkipMatchesReadAny(f *testing.F) {
	for _, b := range skipFuzzSeeds() {
		f.Add(b)
	}
	for _, tc := range skipCases(f) {
		// The inputs at the length limits are left out: a fuzzer that
		// mutates and minimizes 100 KB inputs gets little else done.
		if len(tc.in) <= 4096 {
			f.Add(tc.in)
		}
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		for _, depth := range []int{0, MaxDepth - 2} {
			if diff, _ := skipDisagreement(b, depth); diff != "" {
				t.Fatalf("%s at depth %d: %s", base64.StdEncoding.EncodeToString(b), depth, diff)
			}
		}
	})
}
