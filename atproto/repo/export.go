package repo

import (
	"context"
	"errors"
	"fmt"
	"io"

	"github.com/welkin-atproto/welkin/atproto/car"
	"github.com/welkin-atproto/welkin/atproto/data"
)

// ExportCAR writes the repository at its last commit as a CAR file, as
// com.atproto.sync.getRepo serves it. Writes not committed yet are not
// included. See the package function ExportCAR.
func (r *Repo) ExportCAR(ctx context.Context, w io.Writer) error {
	r.mu.Lock()
	cc := r.commitCID
	r.mu.Unlock()
	if !cc.Defined() {
		return fmt.Errorf("repo: export: %w", ErrNoCommit)
	}
	return ExportCAR(ctx, r.store, cc, w)
}

// ExportCAR writes the full repository whose commit is commitCID as a CARv1
// file with the commit as its root: the commit block first, then the MST
// in depth-first pre-order, each node followed by its left subtree and then,
// for each entry, the entry's record and the subtree to its right. Memory
// use is bounded by the tree's height, not its size: nothing is kept
// once written. A record present under several keys is written once per
// key (readers must tolerate repeated blocks). A block missing from the
// store gives a *MissingBlockError naming it and what needed it.
func ExportCAR(ctx context.Context, store BlockStore, commitCID data.CID, w io.Writer) error {
	c, err := readCommit(ctx, store, commitCID)
	if err != nil {
		return fmt.Errorf("repo: export: %w", err)
	}
	cb, err := store.GetBlock(ctx, commitCID)
	if err != nil {
		return fmt.Errorf("repo: export: %w", err)
	}
	cw, err := car.NewWriter(w, commitCID)
	if err != nil {
		return err
	}
	if err := cw.WriteBlock(commitCID, cb); err != nil {
		return err
	}
	ex := exporter{ctx: ctx, store: store, cw: cw, t: &Tree{ctx: ctx, store: store}}
	if err := ex.node(c.Data, -1); err != nil {
		return fmt.Errorf("repo: export: %w", err)
	}
	return cw.Close()
}

type exporter struct {
	ctx   context.Context
	store BlockStore
	cw    *car.Writer
	t     *Tree // reads nodes without keeping them
	n     int
}

func (ex *exporter) node(c data.CID, layer int) error {
	ex.n++
	if ex.n&255 == 0 {
		if err := ex.ctx.Err(); err != nil {
			return err
		}
	}
	l := link{cid: c}
	n, err := ex.t.load(&l, layer)
	if err != nil {
		return err
	}
	if err := ex.cw.WriteBlock(c, n.block); err != nil {
		return err
	}
	if n.left.cid.Defined() {
		if err := ex.node(n.left.cid, n.layer-1); err != nil {
			return err
		}
	}
	for i := range n.entries {
		e := &n.entries[i]
		b, err := ex.store.GetBlock(ex.ctx, e.val)
		if err != nil {
			var mb *MissingBlockError
			if errors.As(err, &mb) {
				return &MissingBlockError{CID: e.val, Context: "record " + e.key}
			}
			return fmt.Errorf("reading record %s: %w", e.key, err)
		}
		if err := ex.cw.WriteBlock(e.val, b); err != nil {
			return err
		}
		if e.right.cid.Defined() {
			if err := ex.node(e.right.cid, n.layer-1); err != nil {
				return err
			}
		}
	}
	return nil
}
