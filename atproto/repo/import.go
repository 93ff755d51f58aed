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
	st := newStagedBlocks(sizeHint(r, opts.Limits))
	for {
		c, b, err := cr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("repo: import: %w", err)
		}
		st.add(c, b)
		if len(st.blocks)&1023 == 0 {
			if err := ctx.Err(); err != nil {
				return nil, err
			}
		}
	}
	res, err := checkRepoBlocks(ctx, st, commitCID, opts)
	if err != nil {
		return nil, err
	}
	if ms, ok := store.(*MemBlockStore); ok {
		ms.putStaged(st.blocks, res.Stored)
	} else {
		for i := range st.blocks {
			if sb := &st.blocks[i]; sb.needed {
				if err := store.PutBlock(ctx, sb.cid, sb.data); err != nil {
					return nil, fmt.Errorf("repo: import: writing block %s: %w", sb.cid, err)
				}
			}
		}
	}
	res.Dropped = len(st.blocks) - res.Stored
	rp, err := OpenRepo(ctx, store, commitCID)
	if err != nil {
		return nil, err
	}
	res.Repo = rp
	return res, nil
}

// sizeHint guesses the number of blocks the CAR file in r holds when r
// tells how many bytes it has left (a bytes.Reader, bytes.Buffer or
// strings.Reader does), so that the staging index is sized once.
func sizeHint(r io.Reader, lim car.Limits) int {
	lr, ok := r.(interface{ Len() int })
	if !ok {
		return 0
	}
	// A section of a small record takes about a hundred bytes.
	n := lr.Len() / 96
	if lim.MaxBlocks > 0 {
		n = min(n, lim.MaxBlocks)
	}
	return min(n, car.DefaultMaxBlocks)
}

// stagedBlocks holds the blocks of a CAR file, in file order and without
// repeats, until the repository is checked. It is the BlockStore the
// checks read the tree from; every block read through it is marked as
// needed.
//
// Blocks are indexed by the last eight bytes of their CIDs (digest bytes,
// for the sha-256 CIDs a car Reader accepts), which keeps the index small
// and its lookups cheap; CIDs whose eight bytes collide with an earlier
// block's go to a second index keyed by the whole CID. Lookups first try
// the block after the one found last: a file written in the order the
// checks walk the tree (as ExportCAR and other implementations write it)
// is then read without touching the index.
type stagedBlocks struct {
	index  map[uint64]int32
	over   map[data.CID]int32 // blocks whose index key collides
	blocks []stagedBlock
	next   int // the block after the one found last
	stored int // blocks marked needed
}

type stagedBlock struct {
	cid    data.CID
	data   []byte
	needed bool
}

func newStagedBlocks(hint int) *stagedBlocks {
	return &stagedBlocks{index: make(map[uint64]int32, hint), blocks: make([]stagedBlock, 0, hint)}
}

// indexKey returns the last eight bytes of a CID.
func indexKey(c data.CID) uint64 {
	k := c.KeyString()
	if len(k) < 8 {
		var v uint64
		for i := 0; i < len(k); i++ {
			v = v<<8 | uint64(k[i])
		}
		return v
	}
	k = k[len(k)-8:]
	return uint64(k[0]) | uint64(k[1])<<8 | uint64(k[2])<<16 | uint64(k[3])<<24 |
		uint64(k[4])<<32 | uint64(k[5])<<40 | uint64(k[6])<<48 | uint64(k[7])<<56
}

// add stages a block; a repeated block is kept once (its bytes are the
// same, since the car Reader checked both against the CID).
func (s *stagedBlocks) add(c data.CID, b []byte) {
	k := indexKey(c)
	n := int32(len(s.blocks))
	if j, ok := s.index[k]; !ok {
		s.index[k] = n
	} else {
		if s.blocks[j].cid == c {
			return
		}
		if _, dup := s.over[c]; dup {
			return
		}
		if s.over == nil {
			s.over = make(map[data.CID]int32)
		}
		s.over[c] = n
	}
	s.blocks = append(s.blocks, stagedBlock{cid: c, data: b})
}

// find returns the index of the block c.
func (s *stagedBlocks) find(c data.CID) (int, bool) {
	if s.next < len(s.blocks) && s.blocks[s.next].cid == c {
		return s.next, true
	}
	if j, ok := s.index[indexKey(c)]; ok && s.blocks[j].cid == c {
		return int(j), true
	}
	if j, ok := s.over[c]; ok {
		return int(j), true
	}
	return 0, false
}

// need marks the block c as referenced and reports whether it is staged.
func (s *stagedBlocks) need(c data.CID) ([]byte, bool) {
	i, ok := s.find(c)
	if !ok {
		return nil, false
	}
	s.next = i + 1
	sb := &s.blocks[i]
	if !sb.needed {
		sb.needed = true
		s.stored++
	}
	return sb.data, true
}

func (s *stagedBlocks) GetBlock(_ context.Context, c data.CID) ([]byte, error) {
	if b, ok := s.need(c); ok {
		return b, nil
	}
	return nil, &MissingBlockError{CID: c, Context: "MST node"}
}

func (s *stagedBlocks) PutBlock(context.Context, data.CID, []byte) error {
	return errors.New("repo: staged blocks are read-only")
}

// checkRepoBlocks checks the repository at commitCID held in st, marking
// the blocks it references (commit, nodes, records) as needed, in one walk
// of the tree.
func checkRepoBlocks(ctx context.Context, st *stagedBlocks, commitCID data.CID, opts ImportOptions) (*ImportResult, error) {
	cb, ok := st.need(commitCID)
	if !ok {
		return nil, fmt.Errorf("repo: import: %w", &MissingBlockError{CID: commitCID, Context: "commit (first root of the CAR file)"})
	}
	c, err := ParseCommit(cb)
	if err != nil {
		return nil, fmt.Errorf("repo: import: root block %s: %w", commitCID, err)
	}
	res := &ImportResult{Commit: c, CommitCID: commitCID}
	if opts.DID != "" && c.DID != opts.DID {
		return nil, fmt.Errorf("repo: import: commit is for %s, want %s", c.DID, opts.DID)
	}
	key := opts.PublicKey
	if key == nil && opts.KeyForDID != nil {
		if key, err = opts.KeyForDID(ctx, c.DID); err != nil {
			return nil, fmt.Errorf("repo: import: signing key of %s: %w", c.DID, err)
		}
	}
	if key != nil {
		if err := c.Verify(key); err != nil {
			return nil, fmt.Errorf("repo: import: %w", err)
		}
		res.SignatureChecked = true
	}
	if !c.Data.Defined() {
		return nil, errors.New("repo: import: commit has no data CID")
	}
	// The car Reader has checked every block against its CID. The
	// validator reads each node once, through st, which marks it needed;
	// each entry's record is looked up as the walk passes it, in key
	// order.
	var missing []MissingBlockError
	v := &validator{ctx: ctx, t: &Tree{ctx: ctx, store: st}}
	v.entry = func(e *mstEntry) {
		res.Records++
		if _, ok := st.need(e.val); !ok {
			missing = append(missing, MissingBlockError{CID: e.val, Context: "record " + e.key})
		}
	}
	if err := v.node(c.Data, -1, "", ""); err != nil {
		return nil, fmt.Errorf("repo: import: %w", err)
	}
	if len(missing) > 0 {
		return nil, &MissingRecordsError{Missing: missing}
	}
	res.Nodes = v.nodes
	res.Stored = st.stored
	return res, nil
}
