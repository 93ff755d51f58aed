package interop

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"testing"

	"github.com/welkin-atproto/welkin/atproto/car"
	"github.com/welkin-atproto/welkin/atproto/crypto"
	"github.com/welkin-atproto/welkin/atproto/data"
	"github.com/welkin-atproto/welkin/atproto/repo"
	"github.com/welkin-atproto/welkin/atproto/syntax"
)

// These tests exchange repositories with the reference TypeScript library,
// @atproto/repo, driven by node/repo.js: whole repositories as CAR files
// both ways, and sync 1.1 #commit slices both ways.

const (
	interopRepoDID     = "did:plc:ewvi7nxzyoun6zhxrhs64oiz"
	interopRepoRecords = 300
)

var interopCollections = []string{"app.bsky.feed.post", "app.bsky.feed.like", "app.bsky.graph.follow"}

// tsRecord is one record as repo.js lists it.
type tsRecord struct {
	Path string `json:"path"`
	CID  string `json:"cid"`
}

// tsOp is one op of a #commit event, in the event's JSON form.
type tsOp struct {
	Action string `json:"action"`
	Path   string `json:"path"`
	CID    string `json:"cid,omitempty"`
	Prev   string `json:"prev,omitempty"`
}

// tsCommit is one #commit event with the repository it applies to.
type tsCommit struct {
	Action   string `json:"action,omitempty"`
	Before   []byte `json:"before"` // whole repository CAR before the commit
	Slice    []byte `json:"slice"`  // the event's CAR slice
	Commit   string `json:"commit,omitempty"`
	Rev      string `json:"rev,omitempty"`
	PrevData string `json:"prevData,omitempty"`
	Data     string `json:"data,omitempty"`
	Ops      []tsOp `json:"ops"`
}

// runRepoJS runs "node repo.js cmd" with input as JSON on stdin and decodes
// its JSON answer into out.
func runRepoJS(t *testing.T, cmd string, input, out any) {
	t.Helper()
	in, err := json.Marshal(input)
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := runNode(t, in, "repo.js", cmd)
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(stdout, out); err != nil {
		t.Fatalf("reading repo.js %s output: %v\n%.2000s", cmd, err, stdout)
	}
}

// welkinRepo is a repository kept by the test with Welkin's primitives: a
// block store holding every block of every version, the tree and the
// current commit.
type welkinRepo struct {
	store  *repo.MemBlockStore
	tree   *repo.Tree
	key    crypto.PrivateKey
	clock  *repo.RevClock
	commit data.CID
	rev    syntax.TID
}

// interopRecord makes record i of collection: its key and DAG-CBOR block.
func interopRecord(t *testing.T, collection string, i int) (string, []byte) {
	t.Helper()
	tid := syntax.NewTID(1_767_225_600_000_000+int64(i)*2_003, uint(i%16))
	createdAt := fmt.Sprintf("2026-01-01T00:%02d:%02d.000Z", (i/60)%60, i%60)
	var rec map[string]any
	switch collection {
	case "app.bsky.feed.post":
		rec = map[string]any{"$type": collection, "text": fmt.Sprintf("Welkin post %d", i), "createdAt": createdAt, "langs": []any{"en"}}
	case "app.bsky.feed.like":
		rec = map[string]any{"$type": collection, "createdAt": createdAt, "subject": map[string]any{
			"uri": fmt.Sprintf("at://%s/app.bsky.feed.post/3l3qo2vuowo%db", interopRepoDID, i%10),
			"cid": "bafyreidfayvfuwqa7qlnopdjiqrxzs6blmoeu4rujcjtnci5beludirz2a",
		}}
	default:
		rec = map[string]any{"$type": collection, "createdAt": createdAt, "subject": fmt.Sprintf("did:plc:follow%06d", i)}
	}
	b, err := data.MarshalCBOR(rec)
	if err != nil {
		t.Fatal(err)
	}
	return collection + "/" + string(tid), b
}

// newWelkinRepo builds a signed repository of interopRepoRecords records
// spread over three collections.
func newWelkinRepo(t *testing.T) *welkinRepo {
	t.Helper()
	ctx := context.Background()
	key, err := crypto.GenerateK256()
	if err != nil {
		t.Fatal(err)
	}
	r := &welkinRepo{store: repo.NewMemBlockStore(), key: key, clock: repo.NewRevClock(5)}
	m := map[string]data.CID{}
	for i := range interopRepoRecords {
		k, b := interopRecord(t, interopCollections[i%len(interopCollections)], i)
		c := data.CIDForCBOR(b)
		m[k] = c
		if err := r.store.PutBlock(ctx, c, b); err != nil {
			t.Fatal(err)
		}
	}
	r.tree, err = repo.BuildTree(m)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := r.tree.CommitSlice(); err != nil { // start an empty change set
		t.Fatal(err)
	}
	r.signCommit(t)
	return r
}

// signCommit stores the tree's new nodes and a new signed commit, and
// returns the commit block.
func (r *welkinRepo) signCommit(t *testing.T) []byte {
	t.Helper()
	ctx := context.Background()
	if err := r.tree.WriteBlocks(ctx, r.store); err != nil {
		t.Fatal(err)
	}
	root, err := r.tree.Root()
	if err != nil {
		t.Fatal(err)
	}
	rev, err := r.clock.Next(r.rev)
	if err != nil {
		t.Fatal(err)
	}
	c := repo.NewCommit(syntax.DID(interopRepoDID), root, rev)
	if err := c.Sign(r.key); err != nil {
		t.Fatal(err)
	}
	b, err := c.Bytes()
	if err != nil {
		t.Fatal(err)
	}
	r.commit = data.CIDForCBOR(b)
	r.rev = rev
	if err := r.store.PutBlock(ctx, r.commit, b); err != nil {
		t.Fatal(err)
	}
	return b
}

// mstNode is the stored form of an MST node, read to walk the tree's
// blocks for an export.
type mstNode struct {
	L *data.CID     `cbor:"l"`
	E []mstNodeItem `cbor:"e"`
}

type mstNodeItem struct {
	P int64      `cbor:"p"`
	K data.Bytes `cbor:"k"`
	V data.CID   `cbor:"v"`
	T *data.CID  `cbor:"t"`
}

// exportCAR writes the current repository as a CAR file with car.Writer:
// the commit, then every node of the tree depth first, each followed by
// the records and subtrees it points to.
func (r *welkinRepo) exportCAR(t *testing.T) []byte {
	t.Helper()
	ctx := context.Background()
	var buf bytes.Buffer
	w, err := car.NewWriter(&buf, r.commit)
	if err != nil {
		t.Fatal(err)
	}
	put := func(c data.CID) []byte {
		b, err := r.store.GetBlock(ctx, c)
		if err != nil {
			t.Fatal(err)
		}
		if err := w.WriteBlock(c, b); err != nil {
			t.Fatal(err)
		}
		return b
	}
	put(r.commit)
	root, err := r.tree.Root()
	if err != nil {
		t.Fatal(err)
	}
	var walk func(c data.CID)
	walk = func(c data.CID) {
		var n mstNode
		if err := data.UnmarshalCBORInto(put(c), &n); err != nil {
			t.Fatalf("node %s: %v", c, err)
		}
		if n.L != nil {
			walk(*n.L)
		}
		for _, e := range n.E {
			put(e.V)
			if e.T != nil {
				walk(*e.T)
			}
		}
	}
	walk(root)
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// records lists the tree's records in key order, as repo.js does.
func (r *welkinRepo) records(t *testing.T) []tsRecord {
	t.Helper()
	return treeRecords(t, r.tree)
}

func treeRecords(t *testing.T, tree *repo.Tree) []tsRecord {
	t.Helper()
	var out []tsRecord
	err := tree.Walk(context.Background(), func(k string, v data.CID) error {
		out = append(out, tsRecord{Path: k, CID: v.String()})
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// applyOp makes a one-op commit and returns it as a #commit event, with
// the whole repository before it. rec is the new record block of a
// create or update.
func (r *welkinRepo) applyOp(t *testing.T, action, path string, rec []byte) tsCommit {
	t.Helper()
	ctx := context.Background()
	before := r.exportCAR(t)
	prevData, err := r.tree.Root()
	if err != nil {
		t.Fatal(err)
	}
	old, had, err := r.tree.Get(path)
	if err != nil {
		t.Fatal(err)
	}
	op := tsOp{Action: action, Path: path}
	if had {
		op.Prev = old.String()
	}
	var recCID data.CID
	if action == "delete" {
		err = r.tree.Delete(path)
	} else {
		recCID = data.CIDForCBOR(rec)
		op.CID = recCID.String()
		if err := r.store.PutBlock(ctx, recCID, rec); err != nil {
			t.Fatal(err)
		}
		err = r.tree.Put(path, recCID)
	}
	if err != nil {
		t.Fatal(err)
	}
	// The blocks of this commit's change set; CommitSlice also starts the
	// next one.
	blocks, err := r.tree.CommitSlice()
	if err != nil {
		t.Fatal(err)
	}
	cb := r.signCommit(t)
	blocks[r.commit] = cb
	if action != "delete" {
		blocks[recCID] = rec
	}
	var slice bytes.Buffer
	if err := car.WriteAll(&slice, []data.CID{r.commit}, blocks); err != nil {
		t.Fatal(err)
	}
	newData, _ := r.tree.Root()
	return tsCommit{
		Action: action, Before: before, Slice: slice.Bytes(), Commit: r.commit.String(),
		Rev: string(r.rev), PrevData: prevData.String(), Data: newData.String(), Ops: []tsOp{op},
	}
}

// tsRead is what "repo.js read" reports about a repository CAR.
type tsRead struct {
	Commit           string     `json:"commit"`
	DID              string     `json:"did"`
	Rev              string     `json:"rev"`
	Version          int        `json:"version"`
	Data             string     `json:"data"`
	MSTRoot          string     `json:"mstRoot"`
	SigValid         bool       `json:"sigValid"`
	WrongKeySigValid bool       `json:"wrongKeySigValid"`
	VerifiedCreates  int        `json:"verifiedCreates"`
	LeafCount        int        `json:"leafCount"`
	Records          []tsRecord `json:"records"`
}

// TestRepoWelkinToTS has the TypeScript library load and verify a
// repository Welkin built, signed and exported.
func TestRepoWelkinToTS(t *testing.T) {
	requireNode(t)
	r := newWelkinRepo(t)
	carBytes := r.exportCAR(t)
	var got tsRead
	runRepoJS(t, "read", map[string]any{"car": carBytes, "did": interopRepoDID, "didKey": r.key.Public().DIDKey()}, &got)

	root, err := r.tree.Root()
	if err != nil {
		t.Fatal(err)
	}
	if got.Commit != r.commit.String() {
		t.Errorf("commit: library read %s, Welkin wrote %s", got.Commit, r.commit)
	}
	if got.DID != interopRepoDID || got.Rev != string(r.rev) || got.Version != 3 {
		t.Errorf("commit fields: library read did %q rev %q version %d, Welkin wrote %q %q 3", got.DID, got.Rev, got.Version, interopRepoDID, r.rev)
	}
	if got.Data != root.String() || got.MSTRoot != root.String() {
		t.Errorf("data root: library read commit.data %s and computed MST root %s, Welkin's is %s", got.Data, got.MSTRoot, root)
	}
	if !got.SigValid {
		t.Error("the library refuses Welkin's commit signature")
	}
	if got.WrongKeySigValid {
		t.Error("the library accepted Welkin's commit signature with another key")
	}
	if got.VerifiedCreates != interopRepoRecords || got.LeafCount != interopRepoRecords {
		t.Errorf("verifyRepoCar found %d creates and %d leaves, want %d", got.VerifiedCreates, got.LeafCount, interopRepoRecords)
	}
	if want := r.records(t); !slices.Equal(got.Records, want) {
		t.Errorf("records differ: library listed %d, Welkin holds %d\n%s", len(got.Records), len(want), firstRecordDiff(got.Records, want))
	}
}

// tsCreated is what "repo.js create" reports.
type tsCreated struct {
	DID     string     `json:"did"`
	DIDKey  string     `json:"didKey"`
	Commit  string     `json:"commit"`
	Rev     string     `json:"rev"`
	Data    string     `json:"data"`
	CAR     []byte     `json:"car"`
	Records []tsRecord `json:"records"`
	Commits []tsCommit `json:"commits"`
}

// TestRepoTSToWelkin reads a repository the TypeScript library made, and
// checks its #commit slices (a create, an update and a delete made with
// formatCommit) with Welkin's inversion.
func TestRepoTSToWelkin(t *testing.T) {
	requireNode(t)
	ctx := context.Background()
	var ts tsCreated
	runRepoJS(t, "create", map[string]any{"did": interopRepoDID, "count": interopRepoRecords}, &ts)
	if len(ts.Records) != interopRepoRecords || len(ts.Commits) != 3 {
		t.Fatalf("repo.js made %d records and %d commits", len(ts.Records), len(ts.Commits))
	}
	pub, err := crypto.ParsePublicDIDKey(ts.DIDKey)
	if err != nil {
		t.Fatalf("the library's did:key %q: %v", ts.DIDKey, err)
	}

	roots, blocks, err := car.ReadAll(bytes.NewReader(ts.CAR), car.DefaultLimits())
	if err != nil {
		t.Fatalf("reading the library's CAR: %v", err)
	}
	if len(roots) != 1 || roots[0].String() != ts.Commit {
		t.Fatalf("CAR roots %v, library's commit %s", roots, ts.Commit)
	}
	c, err := repo.ParseCommit(blocks[roots[0]])
	if err != nil {
		t.Fatalf("parsing the library's commit: %v", err)
	}
	if err := c.Verify(pub); err != nil {
		t.Errorf("Welkin refuses the library's commit signature: %v", err)
	}
	if string(c.DID) != interopRepoDID || string(c.Rev) != ts.Rev || c.Data.String() != ts.Data {
		t.Errorf("commit: Welkin read did %s rev %s data %s; library wrote %s %s %s", c.DID, c.Rev, c.Data, ts.DID, ts.Rev, ts.Data)
	}
	store := repo.NewMemBlockStore()
	for cid, b := range blocks {
		if err := store.PutBlock(ctx, cid, b); err != nil {
			t.Fatal(err)
		}
	}
	if err := repo.ValidateTree(ctx, store, c.Data); err != nil {
		t.Errorf("Welkin refuses the library's tree: %v", err)
	}
	tree, err := repo.LoadTree(ctx, store, c.Data)
	if err != nil {
		t.Fatal(err)
	}
	got := treeRecords(t, tree)
	if !slices.Equal(got, ts.Records) {
		t.Errorf("records differ: Welkin read %d, library listed %d\n%s", len(got), len(ts.Records), firstRecordDiff(got, ts.Records))
	}
	m := map[string]data.CID{}
	for _, rec := range got {
		cid := data.MustParseCID(rec.CID)
		if _, ok := blocks[cid]; !ok {
			t.Errorf("record %s: block %s missing from the CAR", rec.Path, cid)
		}
		m[rec.Path] = cid
	}
	rebuilt, err := repo.BuildTree(m)
	if err != nil {
		t.Fatal(err)
	}
	if root, _ := rebuilt.Root(); root != c.Data {
		t.Errorf("Welkin builds root %s from the library's records, library's is %s", root, c.Data)
	}

	for _, ev := range ts.Commits {
		t.Run(ev.Action, func(t *testing.T) {
			checkSliceInWelkin(t, ev, pub)
		})
	}
}

// checkSliceInWelkin checks a #commit event the library made: the slice's
// commit, its signature, and that inverting the ops on the slice's blocks
// alone gives prevData; and that applying the ops to the whole previous
// repository gives the new data root.
func checkSliceInWelkin(t *testing.T, ev tsCommit, pub crypto.PublicKey) {
	t.Helper()
	ctx := context.Background()
	roots, blocks, err := car.ReadAll(bytes.NewReader(ev.Slice), car.CommitLimits())
	if err != nil {
		t.Fatalf("reading the slice: %v", err)
	}
	if len(roots) != 1 || roots[0].String() != ev.Commit {
		t.Fatalf("slice roots %v, library's commit %s", roots, ev.Commit)
	}
	c, err := repo.ParseCommit(blocks[roots[0]])
	if err != nil {
		t.Fatalf("parsing the slice's commit: %v", err)
	}
	if err := c.Verify(pub); err != nil {
		t.Errorf("Welkin refuses the slice's commit signature: %v", err)
	}
	if c.Data.String() != ev.Data || string(c.Rev) != ev.Rev {
		t.Errorf("slice commit data %s rev %s, library reports %s %s", c.Data, c.Rev, ev.Data, ev.Rev)
	}
	ops := make([]repo.Op, len(ev.Ops))
	for i, o := range ev.Ops {
		ops[i] = repo.Op{Action: o.Action, Path: o.Path}
		if o.CID != "" {
			cid := data.MustParseCID(o.CID)
			ops[i].CID = &cid
			if _, ok := blocks[cid]; !ok {
				t.Errorf("op %s %s: record block missing from the slice", o.Action, o.Path)
			}
		}
		if o.Prev != "" {
			prev := data.MustParseCID(o.Prev)
			ops[i].Prev = &prev
		}
	}
	inv, err := repo.InvertOps(blocks, c.Data, ops)
	if err != nil {
		t.Errorf("Welkin cannot invert the library's slice: %v", err)
	} else if inv.String() != ev.PrevData {
		t.Errorf("Welkin inverts the library's slice to %s, prevData is %s", inv, ev.PrevData)
	}

	// The same op on the whole previous repository.
	_, full, err := car.ReadAll(bytes.NewReader(ev.Before), car.DefaultLimits())
	if err != nil {
		t.Fatal(err)
	}
	store := repo.NewMemBlockStore()
	for cid, b := range full {
		if err := store.PutBlock(ctx, cid, b); err != nil {
			t.Fatal(err)
		}
	}
	tree, err := repo.LoadTree(ctx, store, data.MustParseCID(ev.PrevData))
	if err != nil {
		t.Fatal(err)
	}
	for _, op := range ops {
		if op.CID != nil {
			err = tree.Put(op.Path, *op.CID)
		} else {
			err = tree.Delete(op.Path)
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	if root, _ := tree.Root(); root.String() != ev.Data {
		t.Errorf("Welkin applies the ops to root %s, the library to %s", root, ev.Data)
	}
}

// tsDiffResult is what "repo.js diff" reports for one slice.
type tsDiffResult struct {
	Writes      []tsOp `json:"writes"`
	Commit      string `json:"commit"`
	DiffError   string `json:"diffError"`
	SliceCommit string `json:"sliceCommit"`
	SliceData   string `json:"sliceData"`
	SigValid    bool   `json:"sigValid"`
	Inverted    string `json:"inverted"`
	InvertError string `json:"invertError"`
}

// TestRepoCommitSlicesWelkinToTS has the TypeScript library check the
// #commit slices of three one-op commits Welkin made in turn (a create, an
// update, a delete): with verifyDiffCar against the repository before the
// commit, and by inverting the ops with its MST on the slice's blocks
// alone.
func TestRepoCommitSlicesWelkinToTS(t *testing.T) {
	requireNode(t)
	r := newWelkinRepo(t)
	recs := r.records(t)
	newKey, newRec := interopRecord(t, "app.bsky.feed.post", 100_000)
	_, updRec := interopRecord(t, "app.bsky.feed.like", 100_001)
	events := []tsCommit{
		r.applyOp(t, "create", newKey, newRec),
		r.applyOp(t, "update", recs[7].Path, updRec),
		r.applyOp(t, "delete", recs[11].Path, nil),
	}
	var got []tsDiffResult
	runRepoJS(t, "diff", map[string]any{"did": interopRepoDID, "didKey": r.key.Public().DIDKey(), "commits": events}, &got)
	if len(got) != len(events) {
		t.Fatalf("repo.js checked %d slices, want %d", len(got), len(events))
	}
	for i, ev := range events {
		res := got[i]
		t.Run(ev.Action, func(t *testing.T) {
			if res.DiffError != "" {
				t.Errorf("verifyDiffCar refuses Welkin's slice: %s", res.DiffError)
			} else {
				if res.Commit != ev.Commit {
					t.Errorf("verifyDiffCar commit %s, Welkin's %s", res.Commit, ev.Commit)
				}
				want := ev.Ops[0]
				if want.Action == "delete" {
					// The library names a deletion's old record as "cid".
					want.CID, want.Prev = want.Prev, ""
				}
				if len(res.Writes) != 1 || res.Writes[0] != want {
					t.Errorf("verifyDiffCar derives writes %+v, Welkin made %+v", res.Writes, want)
				}
			}
			if res.SliceCommit != ev.Commit || res.SliceData != ev.Data {
				t.Errorf("slice commit %s data %s, Welkin's %s %s", res.SliceCommit, res.SliceData, ev.Commit, ev.Data)
			}
			if !res.SigValid {
				t.Error("the library refuses the slice's commit signature")
			}
			if res.InvertError != "" {
				t.Errorf("the library cannot invert the op on Welkin's slice alone: %s", res.InvertError)
			} else if res.Inverted != ev.PrevData {
				t.Errorf("the library inverts Welkin's slice to %s, prevData is %s", res.Inverted, ev.PrevData)
			}
		})
	}
}

// firstRecordDiff describes the first difference of two record lists.
func firstRecordDiff(a, b []tsRecord) string {
	for i := range min(len(a), len(b)) {
		if a[i] != b[i] {
			return fmt.Sprintf("first difference at %d: %+v vs %+v", i, a[i], b[i])
		}
	}
	return fmt.Sprintf("lengths %d and %d", len(a), len(b))
}
