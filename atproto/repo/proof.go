package repo

import (
	"bytes"
	"context"
	"errors"
	"fmt"

	"github.com/welkin-atproto/welkin/atproto/car"
	"github.com/welkin-atproto/welkin/atproto/crypto"
	"github.com/welkin-atproto/welkin/atproto/data"
	"github.com/welkin-atproto/welkin/atproto/syntax"
)

// RecordProof returns the CAR file com.atproto.sync.getRecord serves for a
// record at the repository's last commit: the commit block (the root), the
// MST nodes on the search path of the record's key and, when the record
// exists, its block. When it does not, the nodes show its absence.
func (r *Repo) RecordProof(ctx context.Context, collection syntax.NSID, rkey syntax.RecordKey) ([]byte, error) {
	r.mu.Lock()
	cc := r.commitCID
	r.mu.Unlock()
	if !cc.Defined() {
		return nil, fmt.Errorf("repo: record proof: %w", ErrNoCommit)
	}
	return RecordProof(ctx, r.store, cc, collection, rkey)
}

// RecordProof is Repo.RecordProof for the commit commitCID in store.
func RecordProof(ctx context.Context, store BlockStore, commitCID data.CID, collection syntax.NSID, rkey syntax.RecordKey) ([]byte, error) {
	path, err := checkPath(collection, rkey)
	if err != nil {
		return nil, fmt.Errorf("repo: record proof: %w", err)
	}
	c, err := readCommit(ctx, store, commitCID)
	if err != nil {
		return nil, fmt.Errorf("repo: record proof: %w", err)
	}
	cb, err := store.GetBlock(ctx, commitCID)
	if err != nil {
		return nil, fmt.Errorf("repo: record proof: %w", err)
	}
	var buf bytes.Buffer
	cw, err := car.NewWriter(&buf, commitCID)
	if err != nil {
		return nil, err
	}
	if err := cw.WriteBlock(commitCID, cb); err != nil {
		return nil, err
	}
	t := &Tree{ctx: ctx, store: store}
	val, found, err := t.pathBlocks(c.Data, path, func(nc data.CID, b []byte) error {
		return cw.WriteBlock(nc, b)
	})
	if err != nil {
		return nil, fmt.Errorf("repo: record proof for %s: %w", path, err)
	}
	if found {
		b, err := store.GetBlock(ctx, val)
		if err != nil {
			var mb *MissingBlockError
			if errors.As(err, &mb) {
				return nil, &MissingBlockError{CID: val, Context: "record " + path}
			}
			return nil, fmt.Errorf("repo: record proof: reading record %s: %w", path, err)
		}
		if err := cw.WriteBlock(val, b); err != nil {
			return nil, err
		}
	}
	if err := cw.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// pathBlocks follows the search path of key from the node root, calling
// fn with each node's CID and block, and returns the key's value if the
// tree holds it. Nodes are not kept in the tree.
func (t *Tree) pathBlocks(root data.CID, key string, fn func(data.CID, []byte) error) (data.CID, bool, error) {
	h := KeyHeight(key)
	l := link{cid: root}
	layer := -1
	for {
		n, err := t.load(&l, layer)
		if err != nil {
			return data.CID{}, false, err
		}
		if fn != nil {
			if err := fn(l.cid, n.block); err != nil {
				return data.CID{}, false, err
			}
		}
		if h > n.layer {
			return data.CID{}, false, nil
		}
		i, found := n.search(key)
		if h == n.layer {
			if found {
				return n.entries[i].val, true, nil
			}
			return data.CID{}, false, nil
		}
		g := n.gap(i)
		if g.isNull() {
			return data.CID{}, false, nil
		}
		l, layer = link{cid: g.cid}, n.layer-1
	}
}

// MaxProofSize bounds the CAR file VerifyRecordProof reads: a record
// (MaxRecordSize) and a path of MST nodes fit in it easily.
const MaxProofSize = 2 * MaxRecordSize

// VerifyRecordProof checks a record proof (the CAR file of
// com.atproto.sync.getRecord) and returns the record's CID and bytes, or a
// nil CID when the proof shows the record absent. It checks every block
// against its CID, that the root is a version 3 commit of did (when not
// empty) signed by key (when not nil), and that the MST path from the
// commit's data root to the record's key is complete and well formed. A
// node or the record missing from the file is a *MissingBlockError.
func VerifyRecordProof(proof []byte, did syntax.DID, key crypto.PublicKey, collection syntax.NSID, rkey syntax.RecordKey) (*data.CID, []byte, error) {
	path, err := checkPath(collection, rkey)
	if err != nil {
		return nil, nil, fmt.Errorf("repo: verify proof: %w", err)
	}
	lim := car.CommitLimits()
	lim.MaxTotalSize = MaxProofSize
	roots, blocks, err := car.ReadAll(bytes.NewReader(proof), lim)
	if err != nil {
		return nil, nil, fmt.Errorf("repo: verify proof: %w", err)
	}
	if len(roots) == 0 {
		return nil, nil, errors.New("repo: verify proof: no root in the CAR file (want the commit CID)")
	}
	cb, ok := blocks[roots[0]]
	if !ok {
		return nil, nil, fmt.Errorf("repo: verify proof: %w", &MissingBlockError{CID: roots[0], Context: "commit"})
	}
	c, err := ParseCommit(cb)
	if err != nil {
		return nil, nil, fmt.Errorf("repo: verify proof: %w", err)
	}
	if did != "" && c.DID != did {
		return nil, nil, fmt.Errorf("repo: verify proof: commit is for %s, want %s", c.DID, did)
	}
	if key != nil {
		if err := c.Verify(key); err != nil {
			return nil, nil, fmt.Errorf("repo: verify proof: %w", err)
		}
	}
	t := &Tree{ctx: context.Background(), store: blockMap(blocks), verify: true}
	val, found, err := t.pathBlocks(c.Data, path, nil)
	if err != nil {
		return nil, nil, fmt.Errorf("repo: verify proof for %s: %w", path, err)
	}
	if !found {
		return nil, nil, nil
	}
	b, ok := blocks[val]
	if !ok {
		return nil, nil, fmt.Errorf("repo: verify proof: %w", &MissingBlockError{CID: val, Context: "record " + path})
	}
	return &val, b, nil
}
