package repo

import (
	"github.com/welkin-atproto/welkin/atproto/data"
)

// CommitSlice returns the MST node blocks that a sync 1.1 #commit event must
// carry for the changes made since the tree was built or loaded, or since
// the previous CommitSlice call, and starts a new change set. (Root does not
// start one.)
//
// The slice holds the root node, every node that is new or changed, and also the unchanged
// nodes a receiver needs to invert the changes (to undo them on a tree
// loaded from the slice alone, as InvertOps does). For each changed key,
// that is every node on its search path taken all the way down the tree:
//
//   - for a key now absent (undoing its deletion re-inserts it, which splits
//     every node whose range holds the key), the nodes down through the
//     subtree gaps the key falls into, until a gap is empty. An unchanged
//     subtree sitting next to the key is on that path: only its contents
//     show whether it lies wholly on one side of the key or must be split;
//   - for a key now present (undoing its creation deletes it, which merges
//     the subtrees on either side of it), the path to its node, and then the
//     right-most spine of the subtree before it and the left-most spine of
//     the subtree after it, down to the bottom: the nodes the merge may join,
//     or, when the key is alone at the top, the nodes the trimming of the
//     tree top must look at.
//
// Inverting several operations in any order only ever reads nodes of these
// paths or nodes it made itself: an unchanged subtree met while undoing one
// operation is bounded, on the side facing that key, either by the key
// itself or by another changed key, so it lies on one of those keys' paths.
func (t *Tree) CommitSlice() (map[data.CID][]byte, error) {
	if err := t.hash(t.root); err != nil {
		return nil, err
	}
	out := make(map[data.CID][]byte)
	// The root is always carried, even when nothing changed: it is the
	// commit's data and where inversion starts.
	out[t.root.cid] = t.root.block
	t.collectChanged(t.root, out)
	for key := range t.touched {
		if err := t.collectPath(key, out); err != nil {
			return nil, err
		}
	}
	t.gen++
	clear(t.touched)
	return out, nil
}

// collectChanged adds n and every node below it that changed in the
// current generation.
func (t *Tree) collectChanged(n *mstNode, out map[data.CID][]byte) {
	if n.gen != t.gen {
		return
	}
	out[n.cid] = n.block
	if n.left.n != nil {
		t.collectChanged(n.left.n, out)
	}
	for i := range n.entries {
		if c := n.entries[i].right.n; c != nil {
			t.collectChanged(c, out)
		}
	}
}

// collectPath adds the nodes on the full search path of key (see
// CommitSlice).
func (t *Tree) collectPath(key string, out map[data.CID][]byte) error {
	n := t.root
	for {
		if err := t.addNode(n, out); err != nil {
			return err
		}
		i, found := n.search(key)
		if found {
			if err := t.collectSpine(n.gap(i), n.layer-1, true, out); err != nil {
				return err
			}
			return t.collectSpine(&n.entries[i].right, n.layer-1, false, out)
		}
		g := n.gap(i)
		if g.isNull() {
			return nil
		}
		c, err := t.load(g, n.layer-1)
		if err != nil {
			return err
		}
		n = c
	}
}

// collectSpine adds the right-most (toRight) or left-most spine of the
// subtree l.
func (t *Tree) collectSpine(l *link, layer int, toRight bool, out map[data.CID][]byte) error {
	for !l.isNull() {
		n, err := t.load(l, layer)
		if err != nil {
			return err
		}
		if err := t.addNode(n, out); err != nil {
			return err
		}
		if toRight {
			l = n.gap(len(n.entries))
		} else {
			l = &n.left
		}
		layer--
	}
	return nil
}

func (t *Tree) addNode(n *mstNode, out map[data.CID][]byte) error {
	if !n.cid.Defined() {
		if err := t.hash(n); err != nil {
			return err
		}
	}
	out[n.cid] = n.block
	return nil
}
