package repo

import (
	"context"
	"errors"
	"fmt"

	"github.com/welkin-atproto/welkin/atproto/data"
)

// MaxValidateNodes bounds the number of nodes ValidateTree reads, so that a
// hostile block set cannot make it work without end. A repository of ten
// million records has about four million nodes.
const MaxValidateNodes = 16 << 20

// TreeError reports a structural fault found by ValidateTree, with the node
// it was found in.
type TreeError struct {
	CID    data.CID // the node at fault
	Layer  int      // the layer the node sits at
	Reason string
}

func (e *TreeError) Error() string {
	return fmt.Sprintf("repo: invalid MST: node %s (layer %d): %s", e.CID, e.Layer, e.Reason)
}

// ValidateTree checks the whole tree at root, read from store, against the
// repository spec, as untrusted input must be checked. It checks that:
//
//   - every node block is present, its bytes hash to its CID, and subtree
//     links are DAG-CBOR SHA-256 CIDv1s ("CID Formats");
//   - every node has the exact node format, with maximal prefix compression
//     and the first prefix length 0 ("MST Structure": the compaction scheme
//     is mandatory, for determinism);
//   - every key is a valid MST key (ValidMSTKey; "Repo paths"), and keys are
//     strictly increasing across the whole tree, each subtree holding only
//     keys between the entries around its link;
//   - every key sits in a node at the layer equal to its height, and each
//     subtree link of a node at layer L leads to a node at layer L-1, so that
//     no layer is skipped (empty intermediate nodes must be present);
//   - the root is not an empty node over a subtree, and no node other than
//     the root of the empty tree is empty ("empty nodes must be pruned from
//     the top and bottom of the tree");
//   - at most MaxValidateNodes nodes are read.
func ValidateTree(ctx context.Context, store BlockStore, root data.CID) error {
	v := &validator{ctx: ctx, t: &Tree{ctx: ctx, store: store, verify: true}}
	if !root.Defined() {
		return errors.New("repo: invalid MST: undefined root CID")
	}
	return v.node(root, -1, "", "")
}

type validator struct {
	ctx   context.Context
	t     *Tree
	nodes int
	// entry, when set, is called with every entry of the tree in key
	// order, once the node holding it has passed its checks.
	entry func(e *mstEntry)
}

// node checks the subtree c at layer (-1 for the root), whose keys must lie
// strictly between lo and hi (empty for no bound).
func (v *validator) node(c data.CID, layer int, lo, hi string) error {
	v.nodes++
	if v.nodes > MaxValidateNodes {
		return fmt.Errorf("repo: invalid MST: more than %d nodes", MaxValidateNodes)
	}
	if v.nodes&1023 == 0 {
		if err := v.ctx.Err(); err != nil {
			return err
		}
	}
	if !c.IsBlessed() || c.Codec() != data.CodecDagCBOR {
		return &TreeError{CID: c, Layer: layer, Reason: "node link is not a DAG-CBOR SHA-256 CIDv1"}
	}
	// load checks the CID, the node format and every key's height.
	l := link{cid: c}
	n, err := v.t.load(&l, layer)
	if err != nil {
		return err
	}
	fail := func(format string, args ...any) error {
		return &TreeError{CID: c, Layer: n.layer, Reason: fmt.Sprintf(format, args...)}
	}
	if n.isEmpty() && layer >= 0 {
		return fail("empty node below the root")
	}
	if n.layer > maxLayer {
		return fail("layer above %d", maxLayer)
	}
	for i := range n.entries {
		k := n.entries[i].key
		if !ValidMSTKey(k) {
			return fail("invalid MST key %q", k)
		}
		if (lo != "" && k <= lo) || (hi != "" && k >= hi) {
			return fail("key %q out of order: outside the range of the link to this node", k)
		}
	}
	for i := 0; i <= len(n.entries); i++ {
		if g := n.gap(i); !g.isNull() {
			if n.layer == 0 {
				return fail("subtree link below layer 0")
			}
			glo, ghi := lo, hi
			if i > 0 {
				glo = n.entries[i-1].key
			}
			if i < len(n.entries) {
				ghi = n.entries[i].key
			}
			if err := v.node(g.cid, n.layer-1, glo, ghi); err != nil {
				return err
			}
		}
		if v.entry != nil && i < len(n.entries) {
			v.entry(&n.entries[i])
		}
	}
	return nil
}
