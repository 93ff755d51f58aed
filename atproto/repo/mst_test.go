package repo

import (
	"bufio"
	"encoding/json"
	"math/rand/v2"
	"os"
	"slices"
	"strings"
	"testing"

	"github.com/welkin-atproto/welkin/atproto/data"
	"github.com/welkin-atproto/welkin/internal/interoptest"
)

const leafCIDStr = "bafyreie5cvv4h45feadgeuwhbcutmh6t2ceseocckahdoe6uat64zmz454"

var leafCID = data.MustParseCID(leafCIDStr)

func readJSON(t *testing.T, rel string, v any) {
	t.Helper()
	b, err := os.ReadFile(interoptest.File(t, rel))
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, v); err != nil {
		t.Fatal(err)
	}
}

func exampleKeys(t *testing.T) []string {
	t.Helper()
	f, err := os.Open(interoptest.File(t, "mst/example_keys.txt"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var keys []string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if k := strings.TrimSpace(sc.Text()); k != "" {
			keys = append(keys, k)
		}
	}
	return keys
}

func mustRoot(t testing.TB, tr *Tree) data.CID {
	t.Helper()
	c, err := tr.Root()
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func buildFromKeys(t testing.TB, keys []string, v data.CID) *Tree {
	t.Helper()
	m := make(map[string]data.CID, len(keys))
	for _, k := range keys {
		m[k] = v
	}
	tr, err := BuildTree(m)
	if err != nil {
		t.Fatal(err)
	}
	return tr
}

func TestKeyHeightVectors(t *testing.T) {
	var vecs []struct {
		Key    string `json:"key"`
		Height int    `json:"height"`
	}
	readJSON(t, "mst/key_heights.json", &vecs)
	if len(vecs) == 0 {
		t.Fatal("no vectors")
	}
	for _, v := range vecs {
		if got := KeyHeight(v.Key); got != v.Height {
			t.Errorf("KeyHeight(%q) = %d, want %d", v.Key, got, v.Height)
		}
	}
}

func TestCommonPrefixVectors(t *testing.T) {
	var vecs []struct {
		Left  string `json:"left"`
		Right string `json:"right"`
		Len   int    `json:"len"`
	}
	readJSON(t, "mst/common_prefix.json", &vecs)
	if len(vecs) == 0 {
		t.Fatal("no vectors")
	}
	for _, v := range vecs {
		if got := commonPrefixLen(v.Left, v.Right); got != v.Len {
			t.Errorf("commonPrefixLen(%q, %q) = %d, want %d", v.Left, v.Right, got, v.Len)
		}
	}
}

func TestValidMSTKey(t *testing.T) {
	good := []string{"app.bsky.feed.post/3jqfcqzm3fo2j", "a/b", "A0/374913", "com.example/a:b~c_d-e.f", "x/" + strings.Repeat("a", 1000)}
	bad := []string{"", "/", "a/", "/b", "ab", "a/b/c", "a b/c", "a/b\x00", "jalapeño/x", "a/" + strings.Repeat("a", MaxMSTKeyLen), "a/b#"}
	for _, k := range good {
		if !ValidMSTKey(k) {
			t.Errorf("ValidMSTKey(%q) = false", k)
		}
	}
	for _, k := range bad {
		if ValidMSTKey(k) {
			t.Errorf("ValidMSTKey(%q) = true", k)
		}
	}
}

// Known roots, shared by the reference implementations' interop tests.
func TestKnownRoots(t *testing.T) {
	cases := []struct {
		keys []string
		root string
	}{
		{nil, "bafyreie5737gdxlw5i64vzichcalba3z2v5n6icifvx5xytvske7mr3hpm"},
		{[]string{"com.example.record/3jqfcqzm3fo2j"}, "bafyreibj4lsc3aqnrvphp5xmrnfoorvru4wynt6lwidqbm2623a6tatzdu"},
		{[]string{"com.example.record/3jqfcqzm3fx2j"}, "bafyreih7wfei65pxzhauoibu3ls7jgmkju4bspy4t2ha2qdjnzqvoy33ai"},
		{[]string{
			"com.example.record/3jqfcqzm3fp2j", "com.example.record/3jqfcqzm3fr2j", "com.example.record/3jqfcqzm3fs2j",
			"com.example.record/3jqfcqzm3ft2j", "com.example.record/3jqfcqzm4fc2j",
		}, "bafyreicmahysq4n6wfuxo522m6dpiy7z7qzym3dzs756t5n7nfdgccwq7m"},
	}
	for _, c := range cases {
		tr := buildFromKeys(t, c.keys, leafCID)
		if got := mustRoot(t, tr).String(); got != c.root {
			t.Errorf("BuildTree(%v) root = %s, want %s", c.keys, got, c.root)
		}
		inc := NewTree()
		for _, k := range c.keys {
			if err := inc.Put(k, leafCID); err != nil {
				t.Fatal(err)
			}
		}
		if got := mustRoot(t, inc).String(); got != c.root {
			t.Errorf("Put(%v) root = %s, want %s", c.keys, got, c.root)
		}
	}
}

func TestEdgeCases(t *testing.T) {
	p := func(s string) string { return "com.example.record/" + s }
	// Trimming the top after a delete.
	tr := buildFromKeys(t, []string{p("3jqfcqzm3fn2j"), p("3jqfcqzm3fo2j"), p("3jqfcqzm3fp2j"), p("3jqfcqzm3fs2j"), p("3jqfcqzm3ft2j"), p("3jqfcqzm3fu2j")}, leafCID)
	if got := mustRoot(t, tr).String(); got != "bafyreifnqrwbk6ffmyaz5qtujqrzf5qmxf7cbxvgzktl4e3gabuxbtatv4" {
		t.Fatalf("trim before: %s", got)
	}
	if err := tr.Delete(p("3jqfcqzm3fs2j")); err != nil {
		t.Fatal(err)
	}
	if got := mustRoot(t, tr).String(); got != "bafyreie4kjuxbwkhzg2i5dljaswcroeih4dgiqq6pazcmunwt2byd725vi" {
		t.Fatalf("trim after: %s", got)
	}
	if tr.root.layer != 0 {
		t.Fatalf("root layer %d after trim", tr.root.layer)
	}

	// An insertion that splits two layers down, and its removal.
	keys := []string{p("3jqfcqzm3fo2j"), p("3jqfcqzm3fp2j"), p("3jqfcqzm3fr2j"), p("3jqfcqzm3fs2j"), p("3jqfcqzm3ft2j"), p("3jqfcqzm3fz2j"),
		p("3jqfcqzm4fc2j"), p("3jqfcqzm4fd2j"), p("3jqfcqzm4ff2j"), p("3jqfcqzm4fg2j"), p("3jqfcqzm4fh2j")}
	tr = buildFromKeys(t, keys, leafCID)
	const l1 = "bafyreiettyludka6fpgp33stwxfuwhkzlur6chs4d2v4nkmq2j3ogpdjem"
	if got := mustRoot(t, tr).String(); got != l1 {
		t.Fatalf("insertion before: %s", got)
	}
	if err := tr.Put(p("3jqfcqzm3fx2j"), leafCID); err != nil {
		t.Fatal(err)
	}
	if got := mustRoot(t, tr).String(); got != "bafyreid2x5eqs4w4qxvc5jiwda4cien3gw2q6cshofxwnvv7iucrmfohpm" {
		t.Fatalf("insertion after: %s", got)
	}
	if err := tr.Delete(p("3jqfcqzm3fx2j")); err != nil {
		t.Fatal(err)
	}
	if got := mustRoot(t, tr).String(); got != l1 {
		t.Fatalf("insertion undone: %s", got)
	}

	// New layers two above the existing top.
	tr = buildFromKeys(t, []string{p("3jqfcqzm3ft2j"), p("3jqfcqzm3fz2j")}, leafCID)
	if got := mustRoot(t, tr).String(); got != "bafyreidfcktqnfmykz2ps3dbul35pepleq7kvv526g47xahuz3rqtptmky" {
		t.Fatalf("higher before: %s", got)
	}
	if err := tr.Put(p("3jqfcqzm3fx2j"), leafCID); err != nil {
		t.Fatal(err)
	}
	if got := mustRoot(t, tr).String(); got != "bafyreiavxaxdz7o7rbvr3zg2liox2yww46t7g6hkehx4i4h3lwudly7dhy" {
		t.Fatalf("higher after: %s", got)
	}
	if err := tr.Delete(p("3jqfcqzm3fx2j")); err != nil {
		t.Fatal(err)
	}
	if got := mustRoot(t, tr).String(); got != "bafyreidfcktqnfmykz2ps3dbul35pepleq7kvv526g47xahuz3rqtptmky" || tr.root.layer != 0 {
		t.Fatalf("higher removed: %s", got)
	}
	for _, k := range []string{p("3jqfcqzm3fx2j"), p("3jqfcqzm4fd2j")} {
		if err := tr.Put(k, leafCID); err != nil {
			t.Fatal(err)
		}
	}
	if got := mustRoot(t, tr).String(); got != "bafyreig4jv3vuajbsybhyvb7gggvpwh2zszwfyttjrj6qwvcsp24h6popu" || tr.root.layer != 2 {
		t.Fatalf("higher after second: %s", got)
	}
}

type proofFixture struct {
	Comment          string   `json:"comment"`
	LeafValue        string   `json:"leafValue"`
	Keys             []string `json:"keys"`
	Adds             []string `json:"adds"`
	Dels             []string `json:"dels"`
	RootBeforeCommit string   `json:"rootBeforeCommit"`
	RootAfterCommit  string   `json:"rootAfterCommit"`
	BlocksInProof    []string `json:"blocksInProof"`
}

func TestCommitProofFixtures(t *testing.T) {
	var fixtures []proofFixture
	readJSON(t, "firehose/commit-proof-fixtures.json", &fixtures)
	if len(fixtures) == 0 {
		t.Fatal("no fixtures")
	}
	for _, f := range fixtures {
		t.Run(f.Comment, func(t *testing.T) {
			leaf := data.MustParseCID(f.LeafValue)
			tr := buildFromKeys(t, f.Keys, leaf)
			if got := mustRoot(t, tr).String(); got != f.RootBeforeCommit {
				t.Fatalf("root before = %s, want %s", got, f.RootBeforeCommit)
			}
			var ops []Op
			for _, k := range f.Adds {
				if err := tr.Put(k, leaf); err != nil {
					t.Fatal(err)
				}
				ops = append(ops, Op{Action: "create", Path: k, CID: &leaf})
			}
			for _, k := range f.Dels {
				if err := tr.Delete(k); err != nil {
					t.Fatal(err)
				}
				ops = append(ops, Op{Action: "delete", Path: k, Prev: &leaf})
			}
			after := mustRoot(t, tr)
			if after.String() != f.RootAfterCommit {
				t.Fatalf("root after = %s, want %s", after, f.RootAfterCommit)
			}
			slice, err := tr.CommitSlice()
			if err != nil {
				t.Fatal(err)
			}
			for _, s := range f.BlocksInProof {
				if _, ok := slice[data.MustParseCID(s)]; !ok {
					t.Errorf("slice lacks proof block %s", s)
				}
			}
			t.Logf("slice has %d blocks, fixture lists %d", len(slice), len(f.BlocksInProof))
			got, err := InvertOps(slice, after, ops)
			if err != nil {
				t.Fatal(err)
			}
			if got.String() != f.RootBeforeCommit {
				t.Fatalf("inverted root = %s, want %s", got, f.RootBeforeCommit)
			}
			// Any order of the ops inverts too.
			slices.Reverse(ops)
			got, err = InvertOps(slice, after, ops)
			if err != nil {
				t.Fatal(err)
			}
			if got.String() != f.RootBeforeCommit {
				t.Fatalf("inverted root (ops reversed) = %s, want %s", got, f.RootBeforeCommit)
			}
			// Only the fixture's own blocks also suffice.
			only := make(map[data.CID][]byte)
			for _, s := range f.BlocksInProof {
				c := data.MustParseCID(s)
				only[c] = slice[c]
			}
			if got, err := InvertOps(only, after, ops); err != nil || got.String() != f.RootBeforeCommit {
				t.Errorf("inverting from the fixture's blocks alone: %v %v", got, err)
			}
		})
	}
}

func TestExampleKeys(t *testing.T) {
	keys := exampleKeys(t)
	if len(keys) != 156 {
		t.Fatalf("%d example keys", len(keys))
	}
	want := mustRoot(t, buildFromKeys(t, keys, leafCID))
	for seed := range uint64(5) {
		r := rand.New(rand.NewPCG(seed, 1))
		perm := slices.Clone(keys)
		r.Shuffle(len(perm), func(i, j int) { perm[i], perm[j] = perm[j], perm[i] })
		tr := NewTree()
		for _, k := range perm {
			if err := tr.Put(k, leafCID); err != nil {
				t.Fatal(err)
			}
		}
		if got := mustRoot(t, tr); got != want {
			t.Fatalf("seed %d: root %s, want %s", seed, got, want)
		}
	}
	t.Logf("example keys root: %s", want)
}
