package actorstore

import (
	"github.com/welkin-atproto/welkin/atproto/data"
	"github.com/welkin-atproto/welkin/atproto/repo"
)

// replacedNodes returns the MST nodes that the commits of a batch wrote
// and a later commit of the same batch replaced: nodes that the last
// commit's tree no longer has. A batch of commits to one part of the tree
// (new posts all go to its right edge) rewrites the same path once per
// commit, so most of the nodes it is handed are replaced before the batch
// is stored, and storing them would only grow the block index.
//
// Leaving them out means the tree of a commit that is not the last of its
// batch is not kept whole. Nothing reads such a tree but getRepo with a
// since of that commit's rev, which then answers with the whole repository
// (see CommitAtRev). Commit and record blocks are always stored. The
// result is nil, and every block stored, when the batch has one commit or
// its last tree cannot be worked out.
func replacedNodes(cs []commitWrite) map[data.CID]struct{} {
	if len(cs) < 2 {
		return nil
	}
	root, ok := treeRoot(cs[len(cs)-1].p.res)
	if !ok {
		return nil
	}
	notNodes := make(map[data.CID]struct{})
	for _, c := range cs {
		res := c.p.res
		notNodes[res.CID] = struct{}{}
		for _, op := range res.Ops {
			if op.CID != nil {
				notNodes[*op.CID] = struct{}{}
			}
		}
	}
	nodes := make(map[data.CID][]byte)
	for _, c := range cs {
		for cid, b := range c.p.res.Blocks {
			if _, ok := notNodes[cid]; !ok {
				nodes[cid] = b
			}
		}
	}
	live, err := repo.NodesInTree(root, nodes)
	if err != nil {
		return nil
	}
	var out map[data.CID]struct{}
	for cid := range nodes {
		if _, ok := live[cid]; !ok {
			if out == nil {
				out = make(map[data.CID]struct{})
			}
			out[cid] = struct{}{}
		}
	}
	return out
}

// treeRoot returns the MST root of the commit res describes.
func treeRoot(res *repo.CommitResult) (data.CID, bool) {
	if res.Commit != nil {
		return res.Commit.Data, true
	}
	b, ok := res.Blocks[res.CID]
	if !ok {
		return data.CID{}, false
	}
	c, err := repo.ParseCommit(b)
	if err != nil {
		return data.CID{}, false
	}
	return c.Data, true
}
