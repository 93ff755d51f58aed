package repo

import "github.com/welkin-atproto/welkin/atproto/data"

// NodesInTree returns the CIDs of the MST nodes held in blocks that are
// part of the tree whose root node has the CID root. It walks down from
// root through nodes found in blocks and does not follow a link to any
// other block, so it reads nothing else: blocks is typically what a run of
// consecutive commits wrote, and the nodes it returns are those of the run
// that the last commit's tree still uses, the others having been replaced
// by a later commit of the run. Record and commit blocks are never reached.
func NodesInTree(root data.CID, blocks map[data.CID][]byte) (map[data.CID]struct{}, error) {
	out := make(map[data.CID]struct{})
	stack := []data.CID{root}
	for len(stack) > 0 {
		c := stack[len(stack)-1]
		stack = stack[:len(stack)-1]
		if _, seen := out[c]; seen {
			continue
		}
		b, ok := blocks[c]
		if !ok {
			continue
		}
		n, err := decodeNode(c, b)
		if err != nil {
			return nil, err
		}
		out[c] = struct{}{}
		if n.left.cid.Defined() {
			stack = append(stack, n.left.cid)
		}
		for i := range n.entries {
			if r := n.entries[i].right.cid; r.Defined() {
				stack = append(stack, r)
			}
		}
	}
	return out, nil
}
