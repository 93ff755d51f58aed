package repo

import (
	"fmt"
	"reflect"
	"testing"

	"github.com/welkin-atproto/welkin/atproto/data"
)

// FuzzLexNode checks the fast node reader (lexNode, behind decodeNode and
// scanNodeLinks) against the general decoder: the same block must give the
// same node, or the same error.
func FuzzLexNode(f *testing.F) {
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
		fast, ferr := decodeNode(data.CID{}, b)
		slow, serr := decodeNodeSlow(data.CID{}, b)
		if (ferr == nil) != (serr == nil) || (ferr != nil && ferr.Error() != serr.Error()) {
			t.Fatalf("decodeNode: %v; general decoder: %v", ferr, serr)
		}
		if ferr == nil {
			if fast.left != slow.left || !reflect.DeepEqual(fast.entries, slow.entries) {
				t.Fatalf("decodeNode and the general decoder disagree:\n%+v\n%+v", fast, slow)
			}
		}
		fl, flinks, ferr := scanNodeLinks(data.CID{}, b, nil)
		sl, slinks, serr := scanNodeLinksSlow(data.CID{}, b, nil)
		if _, _, ok := lexNode(b, nil); ok {
			if ferr != nil || serr != nil {
				t.Fatalf("lexNode takes the block, scanNodeLinks: %v, general: %v", ferr, serr)
			}
			if fl != sl || !reflect.DeepEqual(flinks, slinks) {
				t.Fatalf("scanNodeLinks and the general decoder disagree:\n%v %+v\n%v %+v", fl, flinks, sl, slinks)
			}
		}
		if ferr == nil && serr != nil {
			t.Fatalf("scanNodeLinks takes a block the general decoder refuses: %v", serr)
		}
	})
}
