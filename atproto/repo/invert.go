package repo

import (
	"context"
	"fmt"

	"github.com/welkin-atproto/welkin/atproto/data"
)

// Op is one record operation of a commit, as a sync 1.1 #commit event lists
// it. CID is the record's new CID (nil for a delete); Prev is its CID before
// the commit (nil for a create).
type Op struct {
	Action string // "create", "update" or "delete"
	Path   string // the MST key, "<collection>/<rkey>"
	CID    *data.CID
	Prev   *data.CID
}

// blockMap is a read-only BlockStore over a map of blocks.
type blockMap map[data.CID][]byte

func (m blockMap) GetBlock(_ context.Context, c data.CID) ([]byte, error) {
	if b, ok := m[c]; ok {
		return b, nil
	}
	return nil, &MissingBlockError{CID: c, Context: "MST node"}
}

func (m blockMap) PutBlock(context.Context, data.CID, []byte) error {
	return fmt.Errorf("repo: block map is read-only")
}

// InvertOps loads the tree at root from the given blocks alone (checking
// each block against its CID), undoes ops in reverse order and returns the
// root CID of the result, which for a valid commit is the previous data
// root (prevData). Each op is checked against the tree: a create's key must
// hold CID (it is then deleted), an update's key must hold CID (Prev is put
// back), and a delete's key must be absent (Prev is put back). Errors name
// the op; a block the inversion needed and the map lacks is reported as a
// *MissingBlockError.
func InvertOps(blocks map[data.CID][]byte, root data.CID, ops []Op) (data.CID, error) {
	t := &Tree{ctx: context.Background(), store: blockMap(blocks), gen: 1, verify: true}
	if err := t.loadRoot(root); err != nil {
		return data.CID{}, fmt.Errorf("repo: invert: loading root: %w", err)
	}
	for i := len(ops) - 1; i >= 0; i-- {
		if err := t.invertOp(&ops[i]); err != nil {
			return data.CID{}, fmt.Errorf("repo: invert op %d (%s %s): %w", i, ops[i].Action, ops[i].Path, err)
		}
	}
	return t.Root()
}

func (t *Tree) invertOp(op *Op) error {
	if !ValidMSTKey(op.Path) {
		return fmt.Errorf("invalid MST key")
	}
	h := KeyHeight(op.Path)
	cur, ok, err := t.get(op.Path, h)
	if err != nil {
		return err
	}
	switch op.Action {
	case "create":
		if op.CID == nil {
			return fmt.Errorf("create without a CID")
		}
		if !ok {
			return fmt.Errorf("created key is not in the tree")
		}
		if cur != *op.CID {
			return fmt.Errorf("tree holds %s, op says %s", cur, *op.CID)
		}
		_, err = t.del(op.Path, h)
	case "update":
		if op.CID == nil || op.Prev == nil {
			return fmt.Errorf("update needs both CID and prev")
		}
		if !op.Prev.Defined() {
			return fmt.Errorf("undefined prev")
		}
		if !ok {
			return fmt.Errorf("updated key is not in the tree")
		}
		if cur != *op.CID {
			return fmt.Errorf("tree holds %s, op says %s", cur, *op.CID)
		}
		_, err = t.put(op.Path, *op.Prev, h)
	case "delete":
		if op.Prev == nil {
			return fmt.Errorf("delete without prev")
		}
		if op.CID != nil {
			return fmt.Errorf("delete with a CID")
		}
		if !op.Prev.Defined() {
			return fmt.Errorf("undefined prev")
		}
		if ok {
			return fmt.Errorf("deleted key is still in the tree")
		}
		_, err = t.put(op.Path, *op.Prev, h)
	default:
		return fmt.Errorf("unknown action %q", op.Action)
	}
	return err
}
