package repo

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"testing"

	"github.com/welkin-atproto/welkin/atproto/data"
)

// keysAtHeight returns n sorted keys of the given height.
func keysAtHeight(h, n int) []string {
	var out []string
	for i := 0; len(out) < n; i++ {
		k := fmt.Sprintf("com.example.record/k%07d", i)
		if KeyHeight(k) == h {
			out = append(out, k)
		}
	}
	return out
}

// handTree builds hand-made node blocks in a store.
type handTree struct {
	t     *testing.T
	store *MemBlockStore
}

// node stores a node with the given entries (keys in the order given) and
// returns its CID. Subtree CIDs may be undefined for null.
func (h *handTree) node(left data.CID, ents ...mstEntry) data.CID {
	n := &mstNode{left: link{cid: left}, entries: ents}
	b, err := n.encode(nil)
	if err != nil {
		h.t.Fatal(err)
	}
	c := data.CIDForCBOR(b)
	h.store.PutBlock(context.Background(), c, b)
	return c
}

func ent(key string, right data.CID) mstEntry {
	return mstEntry{key: key, val: leafCID, right: link{cid: right}}
}

func TestValidateTreeRejects(t *testing.T) {
	ctx := context.Background()
	k0 := keysAtHeight(0, 4)
	k1 := keysAtHeight(1, 3)
	k2 := keysAtHeight(2, 1)
	var none data.CID
	newH := func() *handTree { return &handTree{t: t, store: NewMemBlockStore()} }

	// A valid hand-made tree first, to show the helpers are right.
	h := newH()
	good := h.node(none, ent(k1[0], h.node(none, ent(k0[1], none))))
	ref := buildFromKeys(t, []string{k1[0], k0[1]}, leafCID)
	if mustRoot(t, ref) != good {
		t.Fatal("hand-made tree differs from BuildTree")
	}
	if err := ValidateTree(ctx, h.store, good); err != nil {
		t.Fatalf("valid tree refused: %v", err)
	}
	h2 := newH()
	emptyRoot := h2.node(none)
	if err := ValidateTree(ctx, h2.store, emptyRoot); err != nil {
		t.Fatalf("empty tree refused: %v", err)
	}

	cases := map[string]func(h *handTree) data.CID{
		"out of order in node": func(h *handTree) data.CID {
			return h.node(none, ent(k0[1], none), ent(k0[0], none))
		},
		"out of order across nodes": func(h *handTree) data.CID {
			// The left subtree of k1[0] holds a key after it.
			hi := keysAfter(k0, k1[0])
			return h.node(h.node(none, ent(hi, none)), ent(k1[0], none))
		},
		"wrong layer": func(h *handTree) data.CID {
			return h.node(none, ent(k1[0], h.node(none, ent(k1[1], none))))
		},
		"skipped layer": func(h *handTree) data.CID {
			return h.node(h.node(none, ent(k0[0], none)), ent(k2[0], none))
		},
		"empty bottom node": func(h *handTree) data.CID {
			return h.node(none, ent(k1[0], h.node(none)))
		},
		"untrimmed root": func(h *handTree) data.CID {
			return h.node(h.node(none, ent(k0[0], none)))
		},
		"subtree below layer 0": func(h *handTree) data.CID {
			return h.node(none, ent(k0[0], h.node(none, ent(k0[1], none))))
		},
		"missing block": func(h *handTree) data.CID {
			return h.node(data.CIDForCBOR([]byte{0xa0}), ent(k1[0], none))
		},
		"bad CID": func(h *handTree) data.CID {
			c := h.node(none, ent(k0[0], none))
			b, _ := h.store.GetBlock(ctx, c)
			wrong := data.CIDForCBOR([]byte{0xf6})
			h.store.PutBlock(ctx, wrong, b)
			return h.node(none, ent(k1[0], wrong))
		},
		"non-maximal prefix": func(h *handTree) data.CID {
			e := data.NewEncoder(nil)
			e.WriteMapHeader(2)
			e.WriteKey("e")
			e.WriteArrayHeader(2)
			for i, k := range []string{k0[0], k0[1]} {
				e.WriteMapHeader(4)
				e.WriteKey("k")
				e.WriteBytes([]byte(k))
				e.WriteKey("p")
				e.WriteInt(0)
				e.WriteKey("t")
				e.WriteNull()
				e.WriteKey("v")
				e.WriteCID(valCID(i))
			}
			e.WriteKey("l")
			e.WriteNull()
			b := e.Bytes()
			c := data.CIDForCBOR(b)
			h.store.PutBlock(ctx, c, b)
			return c
		},
		"invalid key": func(h *handTree) data.CID {
			for i := 0; ; i++ {
				k := fmt.Sprintf("bad key %d", i)
				if KeyHeight(k) == 0 {
					return h.node(none, ent(k, none))
				}
			}
		},
	}
	for name, mk := range cases {
		h := newH()
		root := mk(h)
		err := ValidateTree(ctx, h.store, root)
		if err == nil {
			t.Errorf("%s: accepted", name)
			continue
		}
		t.Logf("%s: %v", name, err)
		if name == "missing block" {
			var mb *MissingBlockError
			if !errors.As(err, &mb) {
				t.Errorf("%s: not a MissingBlockError: %v", name, err)
			}
		}
	}
}

// keysAfter returns a key of keys sorting after k.
func keysAfter(keys []string, k string) string {
	for _, x := range keys {
		if x > k {
			return x
		}
	}
	panic("no key after " + k)
}

func TestValidateRandomTrees(t *testing.T) {
	ctx := context.Background()
	for n := range []int{0, 1, 2, 10, 100, 2000} {
		size := []int{0, 1, 2, 10, 100, 2000}[n]
		m := make(map[string]data.CID)
		for i := range size {
			m[fmt.Sprintf("app.bsky.feed.post/%08d", i*7919%100003)] = valCID(i)
		}
		tr, err := BuildTree(m)
		if err != nil {
			t.Fatal(err)
		}
		store := NewMemBlockStore()
		if err := tr.WriteBlocks(ctx, store); err != nil {
			t.Fatal(err)
		}
		root := mustRoot(t, tr)
		if err := ValidateTree(ctx, store, root); err != nil {
			t.Fatalf("size %d: %v", size, err)
		}
		// Dropping any one block breaks validation.
		blocks := store.Blocks()
		for c := range blocks {
			s2 := NewMemBlockStore()
			for c2, b := range blocks {
				if c2 != c {
					s2.PutBlock(ctx, c2, b)
				}
			}
			if err := ValidateTree(ctx, s2, root); err == nil {
				t.Fatalf("size %d: valid without block %s", size, c)
			}
			if size > 10 {
				break
			}
		}
	}
}

func TestDecodeNodeRoundTrip(t *testing.T) {
	tr := buildFromKeys(t, exampleKeys(t), leafCID)
	store := NewMemBlockStore()
	if err := tr.WriteBlocks(context.Background(), store); err != nil {
		t.Fatal(err)
	}
	for c, b := range store.Blocks() {
		n, err := decodeNode(c, b)
		if err != nil {
			t.Fatal(err)
		}
		b2, err := n.encode(nil)
		if err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(b, b2) {
			t.Fatalf("node %s re-encodes differently", c)
		}
	}
	// Unknown or missing fields are refused.
	for _, v := range []any{
		map[string]any{"e": []any{}},
		map[string]any{"e": []any{}, "l": nil, "x": int64(1)},
		map[string]any{"e": []any{map[string]any{"k": data.Bytes("a/b"), "p": int64(0), "v": leafCID}}, "l": nil},
		map[string]any{"e": []any{map[string]any{"k": data.Bytes("a/b"), "p": int64(1), "t": nil, "v": leafCID}}, "l": nil},
		map[string]any{"e": []any{map[string]any{"k": data.Bytes(""), "p": int64(0), "t": nil, "v": leafCID}}, "l": nil},
		map[string]any{"e": []any{}, "l": data.CIDForRaw([]byte("x"))},
	} {
		b, err := data.MarshalCBOR(v)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := decodeNode(data.CID{}, b); err == nil {
			t.Errorf("decoded %v", v)
		}
	}
}
