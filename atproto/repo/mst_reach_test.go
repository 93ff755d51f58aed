package repo

import (
	"context"
	"fmt"
	"maps"
	"testing"

	"github.com/welkin-atproto/welkin/atproto/data"
)

// TestNodesInTree stores a run of commits the way a batch does: the blocks
// from before the run, the run's record and commit blocks, and only the
// run's MST nodes that NodesInTree finds in the last tree. That last tree
// must read back whole, and the nodes left out must be ones it lacks.
func TestNodesInTree(t *testing.T) {
	ctx := context.Background()
	tr := newTestRepo(t)
	for i := range 40 {
		tr.commit(t, create(t, testCollections[i%3], fmt.Sprintf("3k%011d", i), "before"))
	}
	tr.store.mu.RLock()
	before := maps.Clone(tr.store.blocks)
	tr.store.mu.RUnlock()

	notNodes := map[data.CID][]byte{}
	nodes := map[data.CID][]byte{}
	var last *CommitResult
	for i := 40; i < 56; i++ {
		last = tr.commit(t, create(t, testCollections[i%3], fmt.Sprintf("3k%011d", i), "in the run"))
		notNodes[last.CID] = last.Blocks[last.CID]
		for _, op := range last.Ops {
			notNodes[*op.CID] = last.Blocks[*op.CID]
		}
		for c, b := range last.Blocks {
			if _, ok := notNodes[c]; !ok {
				nodes[c] = b
			}
		}
	}
	live, err := NodesInTree(last.Commit.Data, nodes)
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := live[last.Commit.Data]; !ok {
		t.Error("the last tree's root is not among its nodes")
	}
	if len(live) >= len(nodes) {
		t.Fatalf("%d of the run's %d nodes kept: none left out", len(live), len(nodes))
	}

	st := NewMemBlockStore()
	for c, b := range before {
		st.PutBlock(ctx, c, b)
	}
	for c, b := range notNodes {
		st.PutBlock(ctx, c, b)
	}
	for c := range live {
		st.PutBlock(ctx, c, nodes[c])
	}
	if err := ValidateTree(ctx, st, last.Commit.Data); err != nil {
		t.Fatalf("the last tree from what was kept: %v", err)
	}
	r, err := OpenRepo(ctx, st, last.CID)
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	if err := r.Walk(ctx, func(string, data.CID) error { n++; return nil }); err != nil || n != 56 {
		t.Errorf("walk of the last tree: %d records, %v; want 56", n, err)
	}
	// Every node left out is one the last tree does not have.
	inTree := map[data.CID]bool{}
	if err := treeNodes(r.tree, r.tree.root, inTree); err != nil {
		t.Fatal(err)
	}
	for c := range nodes {
		if _, kept := live[c]; !kept && inTree[c] {
			t.Errorf("node %s of the last tree was left out", c)
		}
	}

	// A block that does not decode as a node, reached from the root, is
	// an error, not a guess.
	if _, err := NodesInTree(last.Commit.Data, map[data.CID][]byte{last.Commit.Data: []byte("not cbor")}); err == nil {
		t.Error("an undecodable root gave no error")
	}
}

// treeNodes adds the CIDs of n and every node below it, loaded from the
// tree's store, to out.
func treeNodes(t *Tree, n *mstNode, out map[data.CID]bool) error {
	out[n.cid] = true
	links := []*link{&n.left}
	for i := range n.entries {
		links = append(links, &n.entries[i].right)
	}
	for _, l := range links {
		if l.isNull() {
			continue
		}
		c, err := t.load(l, n.layer-1)
		if err != nil {
			return err
		}
		if err := treeNodes(t, c, out); err != nil {
			return err
		}
	}
	return nil
}
