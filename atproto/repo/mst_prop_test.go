package repo

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/welkin-atproto/welkin/atproto/data"
)

func valCID(i int) data.CID {
	return data.CIDForCBOR([]byte(fmt.Sprintf("\x61%c", 'a'+i%26)))
}

func randKey(r *rand.Rand, space int) string {
	cols := []string{"app.bsky.feed.like", "app.bsky.feed.post", "app.bsky.graph.follow"}
	return fmt.Sprintf("%s/%06d", cols[r.IntN(len(cols))], r.IntN(space))
}

// checkSame fails unless tr holds exactly m, in order, with the root that
// BuildTree gives for m.
func checkSame(t *testing.T, tr *Tree, m map[string]data.CID) data.CID {
	t.Helper()
	ref, err := BuildTree(m)
	if err != nil {
		t.Fatal(err)
	}
	want := mustRoot(t, ref)
	if got := mustRoot(t, tr); got != want {
		t.Fatalf("root %s, BuildTree gives %s", got, want)
	}
	var keys []string
	err = tr.Walk(context.Background(), func(k string, v data.CID) error {
		if m[k] != v {
			return fmt.Errorf("key %q has %s, want %s", k, v, m[k])
		}
		keys = append(keys, k)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(keys) != len(m) || !slices.IsSorted(keys) {
		t.Fatalf("walk gave %d keys (sorted %v), want %d", len(keys), slices.IsSorted(keys), len(m))
	}
	return want
}

func TestRandomOpsInvert(t *testing.T) {
	seeds := 40
	if testing.Short() {
		seeds = 8
	}
	for seed := range uint64(seeds) {
		r := rand.New(rand.NewPCG(seed, 7))
		space := 50 + r.IntN(3000)
		m := make(map[string]data.CID)
		for range r.IntN(2 * space) {
			m[randKey(r, space)] = valCID(r.IntN(100))
		}
		tr, err := BuildTree(m)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := tr.CommitSlice(); err != nil {
			t.Fatal(err)
		}
		for batch := range 30 {
			before := mustRoot(t, tr)
			var ops []Op
			nops := 1 + r.IntN(8)
			if batch%10 == 9 {
				nops = 200
			}
			for range nops {
				k := randKey(r, space)
				old, had := m[k]
				if r.IntN(3) == 0 {
					if err := tr.Delete(k); err != nil {
						t.Fatal(err)
					}
					if had {
						delete(m, k)
						ops = append(ops, Op{Action: "delete", Path: k, Prev: &old})
					}
					continue
				}
				v := valCID(r.IntN(100))
				if err := tr.Put(k, v); err != nil {
					t.Fatal(err)
				}
				m[k] = v
				switch {
				case !had:
					ops = append(ops, Op{Action: "create", Path: k, CID: &v})
				case old != v:
					ops = append(ops, Op{Action: "update", Path: k, CID: &v, Prev: &old})
				}
			}
			after := checkSame(t, tr, m)
			slice, err := tr.CommitSlice()
			if err != nil {
				t.Fatal(err)
			}
			got, err := InvertOps(slice, after, ops)
			if err != nil {
				t.Fatalf("seed %d batch %d: %v", seed, batch, err)
			}
			if got != before {
				t.Fatalf("seed %d batch %d: inverted to %s, want %s", seed, batch, got, before)
			}
		}
		// Delete everything, in random order.
		keys := slices.Collect(func(yield func(string) bool) {
			for k := range m {
				if !yield(k) {
					return
				}
			}
		})
		r.Shuffle(len(keys), func(i, j int) { keys[i], keys[j] = keys[j], keys[i] })
		for _, k := range keys {
			if err := tr.Delete(k); err != nil {
				t.Fatal(err)
			}
		}
		if got := mustRoot(t, tr).String(); got != "bafyreie5737gdxlw5i64vzichcalba3z2v5n6icifvx5xytvske7mr3hpm" {
			t.Fatalf("seed %d: empty tree root %s", seed, got)
		}
	}
}

func TestInsertionOrderIndependent(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 3))
	m := make(map[string]data.CID)
	for range 4000 {
		m[randKey(r, 100000)] = valCID(r.IntN(10))
	}
	keys := slices.Sorted(func(yield func(string) bool) {
		for k := range m {
			if !yield(k) {
				return
			}
		}
	})
	var want data.CID
	for i := range 4 {
		order := slices.Clone(keys)
		switch i {
		case 1:
			slices.Reverse(order)
		case 2, 3:
			r.Shuffle(len(order), func(a, b int) { order[a], order[b] = order[b], order[a] })
		}
		tr := NewTree()
		for _, k := range order {
			if err := tr.Put(k, m[k]); err != nil {
				t.Fatal(err)
			}
		}
		got := checkSame(t, tr, m)
		if i == 0 {
			want = got
		} else if got != want {
			t.Fatalf("order %d: root %s, want %s", i, got, want)
		}
	}
}

func TestLoadTreeRoundTrip(t *testing.T) {
	ctx := context.Background()
	r := rand.New(rand.NewPCG(5, 5))
	m := make(map[string]data.CID)
	for range 3000 {
		m[randKey(r, 100000)] = valCID(r.IntN(10))
	}
	tr, err := BuildTree(m)
	if err != nil {
		t.Fatal(err)
	}
	root := mustRoot(t, tr)
	store := NewMemBlockStore()
	if err := tr.WriteBlocks(ctx, store); err != nil {
		t.Fatal(err)
	}
	if un, _ := tr.UnstoredBlocks(); len(un) != 0 {
		t.Fatalf("%d blocks unstored after WriteBlocks", len(un))
	}
	if err := ValidateTree(ctx, store, root); err != nil {
		t.Fatal(err)
	}
	lt, err := LoadTree(ctx, store, root)
	if err != nil {
		t.Fatal(err)
	}
	checkSame(t, lt, m)
	for k, v := range m {
		got, ok, err := lt.Get(k)
		if err != nil || !ok || got != v {
			t.Fatalf("Get(%q) = %s %v %v", k, got, ok, err)
		}
	}
	if _, ok, _ := lt.Get("app.bsky.feed.post/zzz"); ok {
		t.Fatal("absent key found")
	}

	// Changes to a loaded tree: only the changed nodes are unstored, and
	// writing them gives a store from which the new tree validates.
	lt2, err := LoadTree(ctx, store, root)
	if err != nil {
		t.Fatal(err)
	}
	for i := range 50 {
		k := randKey(r, 100000)
		if i%2 == 0 {
			m[k] = valCID(i)
			err = lt2.Put(k, m[k])
		} else {
			delete(m, k)
			err = lt2.Delete(k)
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	un, err := lt2.UnstoredBlocks()
	if err != nil {
		t.Fatal(err)
	}
	if len(un) == 0 || len(un) > 50*10 {
		t.Fatalf("%d unstored blocks after 50 ops", len(un))
	}
	if err := lt2.WriteBlocks(ctx, store); err != nil {
		t.Fatal(err)
	}
	root2 := checkSame(t, lt2, m)
	if err := ValidateTree(ctx, store, root2); err != nil {
		t.Fatal(err)
	}

	// A missing block is reported as such.
	empty := NewMemBlockStore()
	if _, err := LoadTree(ctx, empty, root); !isMissing(err) {
		t.Fatalf("LoadTree on empty store: %v", err)
	}
}

func isMissing(err error) bool {
	var mb *MissingBlockError
	return errors.As(err, &mb)
}

func TestList(t *testing.T) {
	ctx := context.Background()
	m := make(map[string]data.CID)
	for i := range 500 {
		m[fmt.Sprintf("app.bsky.feed.like/%04d", i)] = valCID(i)
		m[fmt.Sprintf("app.bsky.feed.post/%04d", i)] = valCID(i)
		m[fmt.Sprintf("app.bsky.feed.postgate/%04d", i)] = valCID(i)
	}
	tr, err := BuildTree(m)
	if err != nil {
		t.Fatal(err)
	}
	keysOf := func(es []Entry) []string {
		var out []string
		for _, e := range es {
			out = append(out, e.Key)
		}
		return out
	}
	all, err := tr.List(ctx, "app.bsky.feed.post", "", 0, false)
	if err != nil {
		t.Fatal(err)
	}
	if len(all) != 500 || all[0].Key != "app.bsky.feed.post/0000" || all[499].Key != "app.bsky.feed.post/0499" || !slices.IsSorted(keysOf(all)) {
		t.Fatalf("List all: %d entries", len(all))
	}
	page, _ := tr.List(ctx, "app.bsky.feed.post", "0100", 3, false)
	if got := keysOf(page); !slices.Equal(got, []string{"app.bsky.feed.post/0101", "app.bsky.feed.post/0102", "app.bsky.feed.post/0103"}) {
		t.Fatalf("List after: %v", got)
	}
	page, _ = tr.List(ctx, "app.bsky.feed.post", "0100", 3, true)
	if got := keysOf(page); !slices.Equal(got, []string{"app.bsky.feed.post/0099", "app.bsky.feed.post/0098", "app.bsky.feed.post/0097"}) {
		t.Fatalf("List reverse: %v", got)
	}
	page, _ = tr.List(ctx, "app.bsky.feed.post", "", 2, true)
	if got := keysOf(page); !slices.Equal(got, []string{"app.bsky.feed.post/0499", "app.bsky.feed.post/0498"}) {
		t.Fatalf("List reverse from end: %v", got)
	}
	if page, _ = tr.List(ctx, "app.bsky.feed.nope", "", 0, false); len(page) != 0 {
		t.Fatalf("List of absent collection: %v", keysOf(page))
	}
}

func TestInvertOpsErrors(t *testing.T) {
	keys := exampleKeys(t)
	tr := buildFromKeys(t, keys, leafCID)
	if _, err := tr.CommitSlice(); err != nil {
		t.Fatal(err)
	}
	other := valCID(1)
	k := "app.bsky.feed.post/3lon5dzeaihj2"
	if err := tr.Put(k, leafCID); err != nil {
		t.Fatal(err)
	}
	root := mustRoot(t, tr)
	slice, err := tr.CommitSlice()
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name string
		ops  []Op
	}{
		{"wrong cid", []Op{{Action: "create", Path: k, CID: &other}}},
		{"absent create", []Op{{Action: "create", Path: "app.bsky.feed.post/zzz", CID: &leafCID}}},
		{"delete present", []Op{{Action: "delete", Path: k, Prev: &leafCID}}},
		{"update wrong", []Op{{Action: "update", Path: k, CID: &other, Prev: &leafCID}}},
		{"bad action", []Op{{Action: "frob", Path: k}}},
		{"bad key", []Op{{Action: "create", Path: "nope", CID: &leafCID}}},
	}
	for _, c := range cases {
		if _, err := InvertOps(slice, root, c.ops); err == nil {
			t.Errorf("%s: no error", c.name)
		} else {
			t.Logf("%s: %v", c.name, err)
		}
	}
	// Deleting a key far from the change needs blocks the slice lacks.
	_, err = InvertOps(slice, root, []Op{{Action: "delete", Path: "A0/000000", Prev: &leafCID}, {Action: "create", Path: k, CID: &leafCID}})
	if !isMissing(err) {
		t.Errorf("expected a missing block, got %v", err)
	} else {
		t.Logf("missing: %v", err)
	}
	// A corrupted block is refused.
	bad := make(map[data.CID][]byte)
	for c, b := range slice {
		bad[c] = append(slices.Clone(b), 0)
	}
	if _, err := InvertOps(bad, root, []Op{{Action: "create", Path: k, CID: &leafCID}}); err == nil {
		t.Error("corrupted blocks accepted")
	}
}
