package repo

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/welkin-atproto/welkin/atproto/car"
	"github.com/welkin-atproto/welkin/atproto/crypto"
	"github.com/welkin-atproto/welkin/atproto/data"
	"github.com/welkin-atproto/welkin/atproto/syntax"
)

// ImportOptions says what ImportCAR checks beyond the structure.
type ImportOptions struct {
	// DID, when set, must be the commit's DID.
	DID syntax.DID
	// PublicKey, when set, must verify the commit's signature.
	PublicKey crypto.PublicKey
	// KeyForDID, when set and PublicKey is nil, is asked for the signing
	// key of the commit's DID (for example from a DID document), which
	// must then verify the signature.
	KeyForDID func(ctx context.Context, did syntax.DID) (crypto.PublicKey, error)
	// Limits bound the CAR file; zero fields take car.DefaultLimits.
	Limits car.Limits
}

// ImportResult describes an imported repository.
type ImportResult struct {
	Repo      *Repo
	Commit    *Commit
	CommitCID data.CID
	// SignatureChecked is set when a key verified the commit.
	SignatureChecked bool
	Records          int // records in the tree
	Nodes            int // MST nodes
	Stored           int // distinct blocks written to the store
	Dropped          int // distinct blocks of the file not referenced by the commit
}

// MissingRecordsError lists record blocks that the tree references and a
// CAR file lacks.
type MissingRecordsError struct {
	Missing []MissingBlockError // CID and "record <path>"
}

func (e *MissingRecordsError) Error() string {
	var sb strings.Builder
	fmt.Fprintf(&sb, "repo: %d record block(s) missing:", len(e.Missing))
	for i, m := range e.Missing {
		if i == 10 {
			fmt.Fprintf(&sb, " and %d more", len(e.Missing)-i)
			break
		}
		fmt.Fprintf(&sb, " %s (%s);", m.CID, strings.TrimPrefix(m.Context, "record "))
	}
	return strings.TrimSuffix(sb.String(), ";")
}

// ImportCAR reads a full repository export, checks it and writes the
// blocks the commit references to store. The checks: every block's bytes
// match its CID (the car Reader checks this), the first root is a valid
// version 3 commit present in the file, its DID and signature match opts,
// the MST is valid (ValidateTree's rules) and complete, and every record the
// tree references is present (else a *MissingRecordsError naming each
// missing CID and its path). As the repository specification asks,
// blocks may come in any order or repeated, and blocks the commit does not
// reference are ignored and not stored. Blocks are staged in memory (up to
// opts.Limits) until every check has passed; nothing is written on error.
func ImportCAR(ctx context.Context, r io.Reader, store BlockStore, opts ImportOptions) (*ImportResult, error) {
	cr, err := car.NewReader(r, opts.Limits)
	if err != nil {
		return nil, fmt.Errorf("repo: import: %w", err)
	}
	roots := cr.Roots()
	if len(roots) == 0 {
		return nil, errors.New("repo: import: the CAR file has no root (want the commit CID)")
	}
	commitCID := roots[0]
	blocks := make(map[data.CID][]byte)
	for {
		c, b, err := cr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("repo: import: %w", err)
		}
		blocks[c] = b
		if len(blocks)&1023 == 0 {
			if err := ctx.Err(); err != nil {
				return nil, err
			}
		}
	}
	res, needed, err := checkRepoBlocks(ctx, blocks, commitCID, opts)
	if err != nil {
		return nil, err
	}
	for _, c := range needed {
		if err := store.PutBlock(ctx, c, blocks[c]); err != nil {
			return nil, fmt.Errorf("repo: import: writing block %s: %w", c, err)
		}
	}
	res.Stored = len(needed)
	res.Dropped = len(blocks) - len(needed)
	rp, err := OpenRepo(ctx, store, commitCID)
	if err != nil {
		return nil, err
	}
	res.Repo = rp
	return res, nil
}

// checkRepoBlocks checks the repository at commitCID held in blocks and
// returns the CIDs of the blocks it references (commit, nodes, records).
func checkRepoBlocks(ctx context.Context, blocks map[data.CID][]byte, commitCID data.CID, opts ImportOptions) (*ImportResult, []data.CID, error) {
	cb, ok := blocks[commitCID]
	if !ok {
		return nil, nil, fmt.Errorf("repo: import: %w", &MissingBlockError{CID: commitCID, Context: "commit (first root of the CAR file)"})
	}
	c, err := ParseCommit(cb)
	if err != nil {
		return nil, nil, fmt.Errorf("repo: import: root block %s: %w", commitCID, err)
	}
	res := &ImportResult{Commit: c, CommitCID: commitCID}
	if opts.DID != "" && c.DID != opts.DID {
		return nil, nil, fmt.Errorf("repo: import: commit is for %s, want %s", c.DID, opts.DID)
	}
	key := opts.PublicKey
	if key == nil && opts.KeyForDID != nil {
		if key, err = opts.KeyForDID(ctx, c.DID); err != nil {
			return nil, nil, fmt.Errorf("repo: import: signing key of %s: %w", c.DID, err)
		}
	}
	if key != nil {
		if err := c.Verify(key); err != nil {
			return nil, nil, fmt.Errorf("repo: import: %w", err)
		}
		res.SignatureChecked = true
	}
	// The car Reader has checked every block against its CID.
	v := &validator{ctx: ctx, t: &Tree{ctx: ctx, store: blockMap(blocks)}}
	if !c.Data.Defined() {
		return nil, nil, errors.New("repo: import: commit has no data CID")
	}
	if err := v.node(c.Data, -1, "", ""); err != nil {
		return nil, nil, fmt.Errorf("repo: import: %w", err)
	}
	// The tree is valid and complete; list its nodes and records.
	needed := []data.CID{commitCID}
	seen := map[data.CID]struct{}{commitCID: {}}
	var missing []MissingBlockError
	t := &Tree{ctx: ctx, store: blockMap(blocks)}
	var visit func(nc data.CID, layer int) error
	visit = func(nc data.CID, layer int) error {
		l := link{cid: nc}
		n, err := t.load(&l, layer)
		if err != nil {
			return err
		}
		res.Nodes++
		if _, ok := seen[nc]; !ok {
			seen[nc] = struct{}{}
			needed = append(needed, nc)
		}
		for i := 0; i <= len(n.entries); i++ {
			if g := n.gap(i); g.cid.Defined() {
				if err := visit(g.cid, n.layer-1); err != nil {
					return err
				}
			}
			if i == len(n.entries) {
				break
			}
			e := &n.entries[i]
			res.Records++
			if _, ok := seen[e.val]; ok {
				continue
			}
			if _, ok := blocks[e.val]; !ok {
				missing = append(missing, MissingBlockError{CID: e.val, Context: "record " + e.key})
				continue
			}
			seen[e.val] = struct{}{}
			needed = append(needed, e.val)
		}
		return nil
	}
	if err := visit(c.Data, -1); err != nil {
		return nil, nil, fmt.Errorf("repo: import: %w", err)
	}
	if len(missing) > 0 {
		return nil, nil, &MissingRecordsError{Missing: missing}
	}
	return res, needed, nil
}
