package repo

import (
	"context"
	"errors"
	"fmt"

	"github.com/welkin-atproto/welkin/atproto/data"
)

// Diff returns the record operations that turn the repository at
// oldCommit into the one at newCommit, in path order, and the blocks a
// holder of the old repository lacks to hold the new one: the new commit,
// every MST node of the new tree that is not an unchanged subtree of the
// old one, and the records created or updated. oldCommit may be the zero
// CID, for a diff from the empty repository. Both commits and their trees
// are read from store; subtrees with the same CID on both sides are
// skipped without being read.
func Diff(ctx context.Context, store BlockStore, oldCommit, newCommit data.CID) ([]Op, map[data.CID][]byte, error) {
	nc, err := readCommit(ctx, store, newCommit)
	if err != nil {
		return nil, nil, fmt.Errorf("repo: diff: new: %w", err)
	}
	blocks := make(map[data.CID][]byte)
	cb, err := store.GetBlock(ctx, newCommit)
	if err != nil {
		return nil, nil, fmt.Errorf("repo: diff: %w", err)
	}
	blocks[newCommit] = cb
	var oldRoot data.CID
	if oldCommit.Defined() {
		oc, err := readCommit(ctx, store, oldCommit)
		if err != nil {
			return nil, nil, fmt.Errorf("repo: diff: old: %w", err)
		}
		if oc.DID != nc.DID {
			return nil, nil, fmt.Errorf("repo: diff: commits of different repositories (%s, %s)", oc.DID, nc.DID)
		}
		oldRoot = oc.Data
	}
	ops, err := DiffTrees(ctx, store, oldRoot, nc.Data, blocks)
	if err != nil {
		return nil, nil, err
	}
	for _, op := range ops {
		if op.CID == nil {
			continue
		}
		b, err := store.GetBlock(ctx, *op.CID)
		if err != nil {
			var mb *MissingBlockError
			if errors.As(err, &mb) {
				return nil, nil, &MissingBlockError{CID: *op.CID, Context: "record " + op.Path}
			}
			return nil, nil, fmt.Errorf("repo: diff: reading record %s: %w", op.Path, err)
		}
		blocks[*op.CID] = b
	}
	return ops, blocks, nil
}

// DiffTrees returns the record operations between the MSTs with roots
// oldRoot (the zero CID for the empty tree) and newRoot, in path order.
// When nodes is not nil, the blocks of the new tree's nodes that were read
// (those not inside a subtree shared with the old tree) are added to it.
func DiffTrees(ctx context.Context, store BlockStore, oldRoot, newRoot data.CID, nodes map[data.CID][]byte) ([]Op, error) {
	t := &Tree{ctx: ctx, store: store}
	oldC := &diffCursor{t: t}
	newC := &diffCursor{t: t, record: nodes}
	if oldRoot.Defined() {
		oldC.pushRoot(oldRoot)
	}
	newC.pushRoot(newRoot)
	var ops []Op
	steps := 0
	for {
		steps++
		if steps&1023 == 0 {
			if err := ctx.Err(); err != nil {
				return nil, err
			}
		}
		if err := oldC.settle(); err != nil {
			return nil, fmt.Errorf("repo: diff: old tree: %w", err)
		}
		if err := newC.settle(); err != nil {
			return nil, fmt.Errorf("repo: diff: new tree: %w", err)
		}
		oi, ni := oldC.peek(), newC.peek()
		switch {
		case oi == nil && ni == nil:
			return ops, nil
		case oi != nil && ni != nil && oi.isTree && ni.isTree && oi.cid == ni.cid:
			// The same subtree on both sides: no changes inside.
			oldC.pop()
			newC.pop()
			continue
		}
		// Expand subtrees until both sides show an entry; when both show
		// a subtree, the higher one first, so that equal subtrees line up.
		if oi != nil && oi.isTree && (ni == nil || !ni.isTree || oi.layer >= ni.layer) {
			if err := oldC.expand(); err != nil {
				return nil, fmt.Errorf("repo: diff: old tree: %w", err)
			}
			continue
		}
		if ni != nil && ni.isTree {
			if err := newC.expand(); err != nil {
				return nil, fmt.Errorf("repo: diff: new tree: %w", err)
			}
			continue
		}
		switch {
		case ni == nil || (oi != nil && oi.key < ni.key):
			prev := oi.cid
			ops = append(ops, Op{Action: ActionDelete, Path: oi.key, Prev: &prev})
			oldC.pop()
		case oi == nil || ni.key < oi.key:
			cur := ni.cid
			ops = append(ops, Op{Action: ActionCreate, Path: ni.key, CID: &cur})
			newC.pop()
		default:
			if oi.cid != ni.cid {
				prev, cur := oi.cid, ni.cid
				ops = append(ops, Op{Action: ActionUpdate, Path: ni.key, CID: &cur, Prev: &prev})
			}
			oldC.pop()
			newC.pop()
		}
	}
}

const unknownRootLayer = 1 << 30

// diffItem is the next thing a cursor shows: a subtree or an entry.
type diffItem struct {
	isTree bool
	cid    data.CID // subtree node, or entry value
	layer  int      // of the subtree
	key    string   // of the entry
}

// diffFrame is a node being walked: pos counts items, even positions
// being gaps and odd ones entries.
type diffFrame struct {
	n   *mstNode
	pos int
}

// diffCursor walks a tree in key order as a sequence of subtrees and
// entries, loading a node only when its subtree is expanded.
type diffCursor struct {
	t      *Tree
	stack  []diffFrame
	root   *diffItem // the unexpanded root
	record map[data.CID][]byte
}

func (c *diffCursor) pushRoot(root data.CID) {
	// The root's layer is not known until it is read; it is expanded
	// before anything else.
	c.root = &diffItem{isTree: true, cid: root, layer: unknownRootLayer}
}

// settle moves past null gaps and finished nodes.
func (c *diffCursor) settle() error {
	for len(c.stack) > 0 {
		f := &c.stack[len(c.stack)-1]
		if f.pos > 2*len(f.n.entries) {
			c.stack = c.stack[:len(c.stack)-1]
			continue
		}
		if f.pos%2 == 0 && f.n.gap(f.pos/2).isNull() {
			f.pos++
			continue
		}
		return nil
	}
	return nil
}

// peek returns the current item, or nil at the end. settle must have run.
func (c *diffCursor) peek() *diffItem {
	if c.root != nil {
		return c.root
	}
	if len(c.stack) == 0 {
		return nil
	}
	f := &c.stack[len(c.stack)-1]
	if f.pos%2 == 0 {
		return &diffItem{isTree: true, cid: f.n.gap(f.pos / 2).cid, layer: f.n.layer - 1}
	}
	e := &f.n.entries[f.pos/2]
	return &diffItem{cid: e.val, key: e.key}
}

// pop moves past the current item.
func (c *diffCursor) pop() {
	if c.root != nil {
		c.root = nil
		return
	}
	c.stack[len(c.stack)-1].pos++
}

// expand replaces the current subtree item with the items of its node.
func (c *diffCursor) expand() error {
	var l link
	layer := -1
	if c.root != nil {
		l = link{cid: c.root.cid}
		c.root = nil
	} else {
		f := &c.stack[len(c.stack)-1]
		l = link{cid: f.n.gap(f.pos / 2).cid}
		layer = f.n.layer - 1
		f.pos++
	}
	n, err := c.t.load(&l, layer)
	if err != nil {
		return err
	}
	if c.record != nil {
		c.record[l.cid] = n.block
	}
	c.stack = append(c.stack, diffFrame{n: n})
	return nil
}
