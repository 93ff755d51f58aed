package repo

import (
	"bytes"
	"context"
	"fmt"
	"testing"

	"github.com/welkin-atproto/welkin/atproto/data"
)

func FuzzDecodeNode(f *testing.F) {
	for _, size := range []int{0, 1, 5, 40} {
		m := make(map[string]data.CID)
		for i := range size {
			m[fmt.Sprintf("app.bsky.feed.post/%05d", i*37)] = valCID(i)
		}
		tr, err := BuildTree(m)
		if err != nil {
			f.Fatal(err)
		}
		blocks, err := tr.UnstoredBlocks()
		if err != nil {
			f.Fatal(err)
		}
		for _, b := range blocks {
			f.Add(b)
		}
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		n, err := decodeNode(data.CID{}, b)
		if err != nil {
			return
		}
		b2, err := n.encode(nil)
		if err != nil {
			t.Fatalf("decoded node does not encode: %v", err)
		}
		if !bytes.Equal(b, b2) {
			t.Fatalf("re-encoding differs:\n%x\n%x", b, b2)
		}
	})
}

// fuzzBlocks packs a block set as length-prefixed blocks, the first being
// the root.
func packBlocks(root data.CID, blocks map[data.CID][]byte) []byte {
	var out []byte
	add := func(b []byte) {
		out = append(out, byte(len(b)>>8), byte(len(b)))
		out = append(out, b...)
	}
	add(blocks[root])
	for c, b := range blocks {
		if c != root {
			add(b)
		}
	}
	return out
}

func FuzzValidateTree(f *testing.F) {
	for _, size := range []int{0, 3, 30, 200} {
		m := make(map[string]data.CID)
		for i := range size {
			m[fmt.Sprintf("app.bsky.feed.like/%04d", i*13)] = valCID(i)
		}
		tr, err := BuildTree(m)
		if err != nil {
			f.Fatal(err)
		}
		root := mustRoot(f, tr)
		blocks, err := tr.UnstoredBlocks()
		if err != nil {
			f.Fatal(err)
		}
		f.Add(packBlocks(root, blocks))
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		store := NewMemBlockStore()
		var root data.CID
		for len(in) >= 2 {
			n := int(in[0])<<8 | int(in[1])
			in = in[2:]
			if n > len(in) {
				n = len(in)
			}
			b := in[:n]
			in = in[n:]
			c := data.CIDForCBOR(b)
			if !root.Defined() {
				root = c
			}
			store.PutBlock(context.Background(), c, b)
		}
		if !root.Defined() {
			return
		}
		if ValidateTree(context.Background(), store, root) != nil {
			return
		}
		// A tree that validates can be walked, and rebuilds to the same root.
		tr, err := LoadTree(context.Background(), store, root)
		if err != nil {
			t.Fatalf("valid tree does not load: %v", err)
		}
		m := make(map[string]data.CID)
		if err := tr.Walk(context.Background(), func(k string, v data.CID) error { m[k] = v; return nil }); err != nil {
			t.Fatal(err)
		}
		ref, err := BuildTree(m)
		if err != nil {
			t.Fatal(err)
		}
		if mustRoot(t, ref) != root {
			t.Fatal("valid tree does not rebuild to its root")
		}
	})
}

// FuzzTreeOps reads the input as ops on a small key space: each byte's top
// bit chooses delete or put, the rest the key; a zero byte ends a batch.
func FuzzTreeOps(f *testing.F) {
	f.Add([]byte{1, 2, 3, 0, 0x81, 4, 5})
	f.Add([]byte{10, 20, 30, 40, 50, 60, 70, 0, 0x8a, 0x94, 0x9e, 0, 5, 6, 7})
	f.Add(bytes.Repeat([]byte{9, 0x89, 17, 0}, 8))
	f.Fuzz(func(t *testing.T, in []byte) {
		tr := NewTree()
		m := make(map[string]data.CID)
		var ops []Op
		before := mustRoot(t, tr)
		flush := func() {
			after := mustRoot(t, tr)
			ref, err := BuildTree(m)
			if err != nil {
				t.Fatal(err)
			}
			if mustRoot(t, ref) != after {
				t.Fatal("root differs from BuildTree")
			}
			slice, err := tr.CommitSlice()
			if err != nil {
				t.Fatal(err)
			}
			got, err := InvertOps(slice, after, ops)
			if err != nil {
				t.Fatal(err)
			}
			if got != before {
				t.Fatal("slice does not invert")
			}
			ops = ops[:0]
			before = after
		}
		for i, c := range in {
			if c == 0 {
				flush()
				continue
			}
			k := fmt.Sprintf("com.example.record/%03d", c&0x7f)
			old, had := m[k]
			if c&0x80 != 0 {
				if err := tr.Delete(k); err != nil {
					t.Fatal(err)
				}
				if had {
					delete(m, k)
					ops = append(ops, Op{Action: "delete", Path: k, Prev: &old})
				}
				continue
			}
			v := valCID(i % 3)
			if err := tr.Put(k, v); err != nil {
				t.Fatal(err)
			}
			m[k] = v
			if !had {
				ops = append(ops, Op{Action: "create", Path: k, CID: &v})
			} else if old != v {
				ops = append(ops, Op{Action: "update", Path: k, CID: &v, Prev: &old})
			}
		}
		flush()
	})
}
