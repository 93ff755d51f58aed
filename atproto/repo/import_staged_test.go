package repo

import (
	"bytes"
	"testing"

	"github.com/welkin-atproto/welkin/atproto/data"
)

// TestStagedBlocksIndexCollision checks the staging index with CIDs whose
// last eight bytes are equal, which honest files never hold but a crafted
// one may: each block must still be found by its own CID, and repeats of
// either must be kept once.
func TestStagedBlocksIndexCollision(t *testing.T) {
	d1 := bytes.Repeat([]byte{0xaa}, 32)
	d2 := bytes.Repeat([]byte{0xaa}, 32)
	d2[0] = 0xbb
	d3 := bytes.Repeat([]byte{0xaa}, 32)
	d3[1] = 0xcc
	c1 := data.NewCIDv1(data.CodecDagCBOR, data.HashSHA256, d1)
	c2 := data.NewCIDv1(data.CodecDagCBOR, data.HashSHA256, d2)
	c3 := data.NewCIDv1(data.CodecRaw, data.HashSHA256, d3)
	if indexKey(c1) != indexKey(c2) || indexKey(c1) != indexKey(c3) {
		t.Fatal("test CIDs do not collide")
	}
	st := newStagedBlocks(0)
	st.add(c1, []byte("one"))
	st.add(c2, []byte("two"))
	st.add(c1, []byte("one"))
	st.add(c3, []byte("three"))
	st.add(c2, []byte("two"))
	if len(st.blocks) != 3 {
		t.Fatalf("%d blocks staged, want 3", len(st.blocks))
	}
	// Ask out of file order so that lookups go through the index.
	for _, tc := range []struct {
		c    data.CID
		want string
	}{{c3, "three"}, {c1, "one"}, {c2, "two"}, {c3, "three"}} {
		b, ok := st.need(tc.c)
		if !ok || string(b) != tc.want {
			t.Fatalf("need(%s) = %q, %v; want %q", tc.c, b, ok, tc.want)
		}
	}
	if st.stored != 3 {
		t.Fatalf("%d blocks marked needed, want 3", st.stored)
	}
	other := data.NewCIDv1(data.CodecDagCBOR, data.HashSHA256, bytes.Repeat([]byte{0x11}, 32))
	if _, ok := st.need(other); ok {
		t.Fatal("found a block never staged")
	}
}
