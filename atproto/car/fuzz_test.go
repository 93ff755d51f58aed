package car

import (
	"bytes"
	"testing"

	"github.com/welkin-atproto/welkin/atproto/data"
)

// FuzzReader checks that the Reader never panics, and that whatever it
// reads successfully is written back by WriteAll to a file that reads to
// the same roots and blocks.
func FuzzReader(f *testing.F) {
	cids, blks := testBlocks(f, 3)
	f.Add(writeCAR(f, cids[:1], cids, blks))
	f.Add(writeCAR(f, nil, cids[:1], blks[:1]))
	f.Add(writeCAR(f, cids, []data.CID{cids[1], cids[1]}, [][]byte{blks[1], blks[1]}))
	f.Add([]byte{})
	f.Add([]byte{0x0a, 0xa1, 0x67, 'v', 'e', 'r', 's', 'i', 'o', 'n', 0x02})
	lim := Limits{MaxBlockSize: 1 << 16, MaxTotalSize: 1 << 20, MaxBlocks: 1 << 12, MaxHeaderSize: 1 << 12}
	f.Fuzz(func(t *testing.T, in []byte) {
		roots, blocks, err := ReadAll(bytes.NewReader(in), lim)
		if err != nil {
			return
		}
		var buf bytes.Buffer
		if err := WriteAll(&buf, roots, blocks); err != nil {
			t.Fatalf("rewrite: %v", err)
		}
		roots2, blocks2, err := ReadAll(bytes.NewReader(buf.Bytes()), Limits{})
		if err != nil {
			t.Fatalf("reading the rewritten file: %v", err)
		}
		if len(roots2) != len(roots) {
			t.Fatalf("roots %v became %v", roots, roots2)
		}
		for i := range roots {
			if roots[i] != roots2[i] {
				t.Fatalf("roots %v became %v", roots, roots2)
			}
		}
		if len(blocks2) != len(blocks) {
			t.Fatalf("%d blocks became %d", len(blocks), len(blocks2))
		}
		for c, b := range blocks {
			if !bytes.Equal(blocks2[c], b) {
				t.Fatalf("block %s changed", c)
			}
		}
	})
}
