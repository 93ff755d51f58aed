package repo

import (
	"context"
	"fmt"
	"testing"

	"github.com/welkin-atproto/welkin/atproto/data"
)

// loadedNodes counts the decoded nodes held in memory under n.
func loadedNodes(n *mstNode) int {
	if n == nil {
		return 0
	}
	c := 1 + loadedNodes(n.left.n)
	for i := range n.entries {
		c += loadedNodes(n.entries[i].right.n)
	}
	return c
}

// TestShedKeepsRecentPaths writes a repository for many commits, as the PDS
// does with the Repo it keeps per account: the nodes held in memory must
// stay those of recent writes, and what was shed must read back the same.
func TestShedKeepsRecentPaths(t *testing.T) {
	ctx := context.Background()
	tr := newTestRepo(t)
	const n = 1000
	for i := range n {
		tr.commit(t, create(t, testCollections[0], fmt.Sprintf("3k%011d", i), fmt.Sprintf("post %d", i)))
	}
	// A walk loads every node; the commits after it shed the old ones.
	seen := 0
	if err := tr.Walk(ctx, func(string, data.CID) error { seen++; return nil }); err != nil {
		t.Fatal(err)
	}
	all := loadedNodes(tr.tree.root)
	for i := n; i < n+2*shedAfter; i++ {
		tr.commit(t, create(t, testCollections[0], fmt.Sprintf("3k%011d", i), fmt.Sprintf("post %d", i)))
	}
	kept := loadedNodes(tr.tree.root)
	if seen != n || all < 200 {
		t.Fatalf("walk saw %d keys over %d nodes; want %d keys over at least 200 nodes", seen, all, n)
	}
	if kept > all/4 {
		t.Errorf("after %d more commits, %d of the tree's %d nodes are still in memory", 2*shedAfter, kept, all)
	}

	// The shed nodes read back: every key, and the same root as a tree
	// built in memory from the same entries.
	want := NewTree()
	got := 0
	if err := tr.Walk(ctx, func(k string, v data.CID) error {
		got++
		return want.Put(k, v)
	}); err != nil {
		t.Fatal(err)
	}
	wantRoot, err := want.Root()
	if err != nil {
		t.Fatal(err)
	}
	if got != n+2*shedAfter {
		t.Errorf("walk after shedding: %d keys, want %d", got, n+2*shedAfter)
	}
	if tr.Repo.commit.Data != wantRoot {
		t.Errorf("MST root %v, want %v", tr.Repo.commit.Data, wantRoot)
	}
}
