package repo

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/welkin-atproto/welkin/atproto/car"
	"github.com/welkin-atproto/welkin/atproto/crypto"
	"github.com/welkin-atproto/welkin/atproto/data"
	"github.com/welkin-atproto/welkin/atproto/syntax"
)

var testCollections = []syntax.NSID{"app.bsky.feed.post", "app.bsky.feed.like", "app.bsky.graph.follow"}

func testKey(t testing.TB) crypto.PrivateKey {
	t.Helper()
	k, err := crypto.GenerateP256()
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func testRecord(t testing.TB, typ syntax.NSID, text string) []byte {
	t.Helper()
	b, err := data.MarshalCBOR(map[string]any{
		"$type":     string(typ),
		"text":      text,
		"createdAt": "2024-01-02T03:04:05.000Z",
	})
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func create(t testing.TB, col syntax.NSID, rkey, text string) RecordWrite {
	return RecordWrite{Action: ActionCreate, Collection: col, RKey: syntax.RecordKey(rkey), Value: testRecord(t, col, text)}
}

// testRepo is a repository with its key and clock.
type testRepo struct {
	*Repo
	store *MemBlockStore
	key   crypto.PrivateKey
	clock *RevClock
}

func newTestRepo(t testing.TB) *testRepo {
	t.Helper()
	st := NewMemBlockStore()
	r, err := NewRepo(testDID, st)
	if err != nil {
		t.Fatal(err)
	}
	return &testRepo{Repo: r, store: st, key: testKey(t), clock: NewRevClock(1)}
}

func (tr *testRepo) commit(t testing.TB, writes ...RecordWrite) *CommitResult {
	t.Helper()
	ctx := context.Background()
	if err := tr.Apply(ctx, writes); err != nil {
		t.Fatal(err)
	}
	res, err := tr.Commit(ctx, tr.key, tr.clock)
	if err != nil {
		t.Fatal(err)
	}
	return res
}

func TestRepoWriteReadCommit(t *testing.T) {
	ctx := context.Background()
	tr := newTestRepo(t)
	post := syntax.NSID("app.bsky.feed.post")
	res1 := tr.commit(t, create(t, post, "3k2a", "one"), create(t, post, "3k2b", "two"), create(t, "app.bsky.feed.like", "3k2c", "like"))
	if res1.Since != "" || res1.PrevData != nil {
		t.Errorf("first commit: since %q prevData %v, want empty", res1.Since, res1.PrevData)
	}
	if len(res1.Ops) != 3 || res1.Ops[0].Action != ActionCreate || res1.Ops[0].Path != "app.bsky.feed.post/3k2a" || res1.Ops[0].Prev != nil {
		t.Fatalf("ops %+v", res1.Ops)
	}
	if c, cc := tr.Head(); c != res1.Commit || cc != res1.CID {
		t.Errorf("Head does not return the new commit")
	}
	if err := res1.Commit.Verify(tr.key.Public()); err != nil {
		t.Fatal(err)
	}
	// Every block of the result is in the store under its CID.
	for c, b := range res1.Blocks {
		got, err := tr.store.GetBlock(ctx, c)
		if err != nil || !bytes.Equal(got, b) || data.CIDForCBOR(b) != c {
			t.Fatalf("block %s not stored correctly: %v", c, err)
		}
	}
	c, b, err := tr.GetRecord(ctx, post, "3k2b")
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(b, testRecord(t, post, "two")) || c != data.CIDForCBOR(b) {
		t.Errorf("GetRecord returned the wrong record")
	}
	if _, _, err := tr.GetRecord(ctx, post, "nope"); !errors.Is(err, ErrRecordNotFound) {
		t.Errorf("GetRecord of a missing record: %v, want ErrRecordNotFound", err)
	}
	ents, err := tr.ListRecords(ctx, post, "", 0, false)
	if err != nil || len(ents) != 2 || ents[0].Key != "app.bsky.feed.post/3k2a" {
		t.Fatalf("ListRecords: %v %v", ents, err)
	}

	// Update and delete in one commit.
	res2 := tr.commit(t,
		RecordWrite{Action: ActionUpdate, Collection: post, RKey: "3k2a", Value: testRecord(t, post, "one, edited")},
		RecordWrite{Action: ActionDelete, Collection: post, RKey: "3k2b"})
	if res2.Since != res1.Rev || res2.PrevData == nil || *res2.PrevData != res1.Commit.Data {
		t.Errorf("since %q prevData %v; want %q %s", res2.Since, res2.PrevData, res1.Rev, res1.Commit.Data)
	}
	if res2.Rev <= res1.Rev {
		t.Errorf("rev %s not after %s", res2.Rev, res1.Rev)
	}
	if len(res2.Ops) != 2 || res2.Ops[0].Action != ActionUpdate || res2.Ops[0].Prev == nil || res2.Ops[1].Action != ActionDelete || res2.Ops[1].CID != nil {
		t.Fatalf("ops %+v", res2.Ops)
	}
	checkSlice(t, res2)

	// The repository reopens from the store.
	r2, err := OpenRepo(ctx, tr.store, res2.CID)
	if err != nil {
		t.Fatal(err)
	}
	if r2.Rev() != res2.Rev || r2.DID() != testDID {
		t.Errorf("reopened rev %s did %s", r2.Rev(), r2.DID())
	}
	if _, b, err := r2.GetRecord(ctx, post, "3k2a"); err != nil || !bytes.Equal(b, testRecord(t, post, "one, edited")) {
		t.Errorf("reopened record: %v", err)
	}
	if _, _, err := r2.GetRecord(ctx, post, "3k2b"); !errors.Is(err, ErrRecordNotFound) {
		t.Errorf("deleted record still present: %v", err)
	}
}

// checkSlice checks a commit's CAR slice as a relay would: within the
// limits, rooted at the commit, holding the new records, and inverting to
// prevData.
func checkSlice(t testing.TB, res *CommitResult) {
	t.Helper()
	if len(res.CAR) > MaxCommitCARSize {
		t.Fatalf("slice is %d bytes", len(res.CAR))
	}
	roots, blocks, err := car.ReadAll(bytes.NewReader(res.CAR), car.CommitLimits())
	if err != nil {
		t.Fatal(err)
	}
	if len(roots) != 1 || roots[0] != res.CID {
		t.Fatalf("roots %v, want [%s]", roots, res.CID)
	}
	c, err := ParseCommit(blocks[res.CID])
	if err != nil {
		t.Fatal(err)
	}
	for _, op := range res.Ops {
		if op.CID != nil {
			if _, ok := blocks[*op.CID]; !ok {
				t.Fatalf("slice lacks the record of %s %s", op.Action, op.Path)
			}
		}
	}
	prev, err := InvertOps(blocks, c.Data, res.Ops)
	if err != nil {
		t.Fatalf("inverting the slice: %v", err)
	}
	want := emptyRoot(t)
	if res.PrevData != nil {
		want = *res.PrevData
	}
	if prev != want {
		t.Fatalf("inversion gives %s, want prevData %s", prev, want)
	}
}

func emptyRoot(t testing.TB) data.CID {
	c, err := NewTree().Root()
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestRepoWriteValidation(t *testing.T) {
	ctx := context.Background()
	tr := newTestRepo(t)
	post := syntax.NSID("app.bsky.feed.post")
	tr.commit(t, create(t, post, "exists", "x"))
	noType, _ := data.MarshalCBOR(map[string]any{"text": "x"})
	notCanonical := []byte{0xa1, 0x61, 0x61, 0x18, 0x01} // {"a": 1} with a non-minimal integer
	big := testRecord(t, post, strings.Repeat("x", MaxRecordSize))
	cases := []struct {
		name string
		w    RecordWrite
		want error
		msg  string
	}{
		{"bad collection", RecordWrite{Action: ActionCreate, Collection: "not an nsid", RKey: "a", Value: testRecord(t, post, "x")}, ErrInvalidWrite, "collection"},
		{"bad rkey", RecordWrite{Action: ActionCreate, Collection: post, RKey: "..", Value: testRecord(t, post, "x")}, ErrInvalidWrite, "record key"},
		{"rkey with slash", RecordWrite{Action: ActionCreate, Collection: post, RKey: "a/b", Value: testRecord(t, post, "x")}, ErrInvalidWrite, "record key"},
		{"create existing", create(t, post, "exists", "y"), ErrRecordExists, "exists"},
		{"update absent", RecordWrite{Action: ActionUpdate, Collection: post, RKey: "absent", Value: testRecord(t, post, "x")}, ErrRecordNotFound, "absent"},
		{"delete absent", RecordWrite{Action: ActionDelete, Collection: post, RKey: "absent"}, ErrRecordNotFound, "absent"},
		{"no $type", RecordWrite{Action: ActionCreate, Collection: post, RKey: "a", Value: noType}, ErrInvalidWrite, "$type"},
		{"not DAG-CBOR", RecordWrite{Action: ActionCreate, Collection: post, RKey: "a", Value: notCanonical}, ErrInvalidWrite, "DAG-CBOR"},
		{"empty value", RecordWrite{Action: ActionCreate, Collection: post, RKey: "a"}, ErrInvalidWrite, "DAG-CBOR"},
		{"too big", RecordWrite{Action: ActionCreate, Collection: post, RKey: "a", Value: big}, ErrInvalidWrite, "bytes"},
		{"unknown action", RecordWrite{Action: "upsert", Collection: post, RKey: "a", Value: testRecord(t, post, "x")}, ErrInvalidWrite, "upsert"},
		{"delete with value", RecordWrite{Action: ActionDelete, Collection: post, RKey: "exists", Value: testRecord(t, post, "x")}, ErrInvalidWrite, "no value"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			// A valid write first: the batch must fail as a whole.
			err := tr.Apply(ctx, []RecordWrite{create(t, post, "fresh", "ok"), tc.w})
			if !errors.Is(err, tc.want) || !strings.Contains(err.Error(), tc.msg) || !strings.Contains(err.Error(), "write 1") {
				t.Fatalf("error %v, want %v mentioning %q and the write's index", err, tc.want, tc.msg)
			}
			if tr.HasPending() {
				t.Fatal("a failed batch left pending writes")
			}
		})
	}
	// Within a batch, later writes see earlier ones.
	if err := tr.Apply(ctx, []RecordWrite{create(t, post, "n", "1"), {Action: ActionUpdate, Collection: post, RKey: "n", Value: testRecord(t, post, "2")}, {Action: ActionDelete, Collection: post, RKey: "exists"}, create(t, post, "exists", "again")}); err != nil {
		t.Fatal(err)
	}
	res, err := tr.Commit(ctx, tr.key, tr.clock)
	if err != nil {
		t.Fatal(err)
	}
	// One op per path: a create of the final value, an update of "exists".
	if len(res.Ops) != 2 || res.Ops[0].Action != ActionCreate || *res.Ops[0].CID != data.CIDForCBOR(testRecord(t, post, "2")) || res.Ops[1].Action != ActionUpdate {
		t.Fatalf("ops %+v", res.Ops)
	}
	checkSlice(t, res)
}

func TestRepoOpsLimitAndDiscard(t *testing.T) {
	ctx := context.Background()
	tr := newTestRepo(t)
	base := tr.commit(t, create(t, "app.bsky.feed.post", "keep", "k"))
	writes := make([]RecordWrite, 0, MaxCommitOps+1)
	for i := range MaxCommitOps + 1 {
		writes = append(writes, create(t, "app.bsky.feed.post", fmt.Sprintf("r%04d", i), "x"))
	}
	if err := tr.Apply(ctx, writes); !errors.Is(err, ErrCommitTooLarge) {
		t.Fatalf("201 creates: %v, want ErrCommitTooLarge", err)
	}
	if err := tr.Apply(ctx, writes[:MaxCommitOps]); err != nil {
		t.Fatal(err)
	}
	if err := tr.Apply(ctx, writes[MaxCommitOps:]); !errors.Is(err, ErrCommitTooLarge) {
		t.Fatalf("the 201st path: %v, want ErrCommitTooLarge", err)
	}
	if err := tr.Discard(ctx); err != nil {
		t.Fatal(err)
	}
	if tr.HasPending() {
		t.Fatal("pending writes after Discard")
	}
	if _, _, err := tr.GetRecord(ctx, "app.bsky.feed.post", "r0000"); !errors.Is(err, ErrRecordNotFound) {
		t.Fatalf("discarded record visible: %v", err)
	}
	res := tr.commit(t)
	if res.Commit.Data != base.Commit.Data || len(res.Ops) != 0 {
		t.Fatalf("empty commit changed the data")
	}
	checkSlice(t, res)
}

func TestRepoCommitTooLargeSlice(t *testing.T) {
	ctx := context.Background()
	tr := newTestRepo(t)
	// Three records of ~900 kB exceed the 2 MB slice.
	var writes []RecordWrite
	for i := range 3 {
		writes = append(writes, create(t, "app.bsky.feed.post", fmt.Sprintf("big%d", i), strings.Repeat(string(rune('a'+i)), 900_000)))
	}
	if err := tr.Apply(ctx, writes); err != nil {
		t.Fatal(err)
	}
	if _, err := tr.Commit(ctx, tr.key, tr.clock); !errors.Is(err, ErrCommitTooLarge) {
		t.Fatalf("got %v, want ErrCommitTooLarge", err)
	}
	if tr.HasPending() || tr.store.Len() != 0 {
		t.Fatalf("a failed commit left pending writes or stored %d blocks", tr.store.Len())
	}
	tr.commit(t, writes[0])
}

func TestParseRecordPath(t *testing.T) {
	c, k, err := ParseRecordPath("app.bsky.feed.post/3k2a")
	if err != nil || c != "app.bsky.feed.post" || k != "3k2a" {
		t.Fatalf("%q %q %v", c, k, err)
	}
	for _, bad := range []string{"", "app.bsky.feed.post", "nsid/", "/rkey", "a/b/c", "app.bsky.feed.post/.."} {
		if _, _, err := ParseRecordPath(bad); err == nil {
			t.Errorf("ParseRecordPath(%q) succeeded", bad)
		}
	}
}

// randomWrites returns a batch of 1..maxOps valid writes against the
// current contents (live, updated in place).
func randomWrites(t testing.TB, rng *rand.Rand, live map[string]bool, maxOps int) []RecordWrite {
	n := 1 + rng.IntN(maxOps)
	var ws []RecordWrite
	touched := map[string]bool{}
	for range n {
		keys := make([]string, 0, len(live))
		for k := range live {
			if !touched[k] {
				keys = append(keys, k)
			}
		}
		if len(keys) > 0 && rng.IntN(3) == 0 {
			k := keys[rng.IntN(len(keys))]
			col, rk, _ := ParseRecordPath(k)
			touched[k] = true
			if rng.IntN(2) == 0 {
				ws = append(ws, RecordWrite{Action: ActionDelete, Collection: col, RKey: rk})
				delete(live, k)
			} else {
				ws = append(ws, RecordWrite{Action: ActionUpdate, Collection: col, RKey: rk, Value: testRecord(t, col, fmt.Sprint(rng.Int()))})
			}
			continue
		}
		col := testCollections[rng.IntN(len(testCollections))]
		rk := syntax.NewTID(int64(rng.Uint64()>>12), 0).String()
		k := RecordPath(col, syntax.RecordKey(rk))
		if live[k] || touched[k] {
			continue
		}
		touched[k] = true
		live[k] = true
		ws = append(ws, RecordWrite{Action: ActionCreate, Collection: col, RKey: syntax.RecordKey(rk), Value: testRecord(t, col, fmt.Sprint(rng.Int()))})
	}
	return ws
}
