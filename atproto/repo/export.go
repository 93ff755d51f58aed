package repo

import (
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"strconv"

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
	if !c.Data.Defined() {
		return errors.New("repo: export: commit has no data CID")
	}
	ex := exporter{ctx: ctx, store: store, cw: cw}
	ex.mem, _ = store.(*MemBlockStore)
	if err := ex.node(c.Data, nil, 0); err != nil {
		return fmt.Errorf("repo: export: %w", err)
	}
	return cw.Close()
}

type exporter struct {
	ctx   context.Context
	store BlockStore
	mem   *MemBlockStore // store, when it is one: blocks are fetched in batches
	cw    *car.Writer
	n     int
	// levels[d] is reused for the node at depth d.
	levels []*exportLevel
}

// exportLevel holds the links of a node and the blocks they point to.
type exportLevel struct {
	links  []nodeLink
	cids   []data.CID // left subtree (if any), then each entry's record and subtree
	blocks [][]byte   // the blocks of cids, nil where not fetched
}

// get returns the block c from the store, naming what needed it in a
// *MissingBlockError.
func (ex *exporter) get(c data.CID, what string) ([]byte, error) {
	b, err := ex.store.GetBlock(ex.ctx, c)
	if err != nil {
		var mb *MissingBlockError
		if errors.As(err, &mb) {
			if mb.Context == "" || what != "MST node" {
				return nil, &MissingBlockError{CID: c, Context: what}
			}
			return nil, err
		}
		return nil, fmt.Errorf("repo: reading %s %s: %w", what, c, err)
	}
	return b, nil
}

// node writes the subtree at c, whose block is b (nil when not fetched
// yet), depth links below the root. The store is trusted, as OpenRepo
// trusts it: a node is read for its links only (scanNodeLinks), without
// rebuilding its keys or recomputing their heights; the depth bound stops
// a store that returns blocks not matching their CIDs from leading the
// walk on forever.
func (ex *exporter) node(c data.CID, b []byte, depth int) error {
	ex.n++
	if ex.n&255 == 0 {
		if err := ex.ctx.Err(); err != nil {
			return err
		}
	}
	if depth > maxLayer {
		return nodeErr(c, "more than %d layers of subtrees", maxLayer)
	}
	if b == nil {
		var err error
		if b, err = ex.get(c, "MST node"); err != nil {
			return err
		}
	}
	if depth == len(ex.levels) {
		ex.levels = append(ex.levels, &exportLevel{})
	}
	lv := ex.levels[depth]
	left, links, err := scanNodeLinks(c, b, lv.links[:0])
	if err != nil {
		return err
	}
	lv.links = links
	if err := ex.cw.WriteBlock(c, b); err != nil {
		return err
	}
	// Fetch every block the node links to at once.
	lv.cids = lv.cids[:0]
	if left.Defined() {
		lv.cids = append(lv.cids, left)
	}
	for _, l := range links {
		lv.cids = append(lv.cids, l.val)
		if l.right.Defined() {
			lv.cids = append(lv.cids, l.right)
		}
	}
	lv.blocks = slices.Grow(lv.blocks[:0], len(lv.cids))[:len(lv.cids)]
	if ex.mem != nil {
		ex.mem.getBlocks(lv.cids, lv.blocks)
	} else {
		clear(lv.blocks)
	}
	next := 0
	if left.Defined() {
		if err := ex.node(left, lv.blocks[next], depth+1); err != nil {
			return err
		}
		next++
	}
	for i, l := range links {
		rb := lv.blocks[next]
		next++
		if rb == nil {
			if rb, err = ex.get(l.val, "record "+ex.entryKey(c, b, i)); err != nil {
				return err
			}
		}
		if err := ex.cw.WriteBlock(l.val, rb); err != nil {
			return err
		}
		if l.right.Defined() {
			if err := ex.node(l.right, lv.blocks[next], depth+1); err != nil {
				return err
			}
			next++
		}
	}
	return nil
}

// entryKey returns the key of entry i of the node block b, for an error
// message.
func (ex *exporter) entryKey(c data.CID, b []byte, i int) string {
	if n, err := decodeNode(c, b); err == nil && i < len(n.entries) {
		return n.entries[i].key
	}
	return "#" + strconv.Itoa(i)
}

// nodeLink holds the links of one entry of an MST node.
type nodeLink struct {
	val   data.CID // the record
	right data.CID // the subtree after the entry; undefined if none
}

// scanNodeLinks reads the links of an MST node block: its left subtree
// and, entry by entry, the record and the subtree to the right, appended
// to links. It checks the node's shape (the fields and their types) but
// not its keys. The CIDs share one string, the only allocation.
func scanNodeLinks(c data.CID, b []byte, links []nodeLink) (data.CID, []nodeLink, error) {
	var rawArr [32]rawEntry
	raw, left, ok := lexNode(b, rawArr[:0])
	if !ok {
		return scanNodeLinksSlow(c, b, links)
	}
	// Each link is 36 bytes.
	var bufArr [2048]byte
	buf := bufArr[:0]
	for i := range raw {
		buf = append(buf, raw[i].val...)
		buf = append(buf, raw[i].right...)
	}
	buf = append(buf, left...)
	all := string(buf)
	off := 0
	cut := func() data.CID {
		c, _ := data.CIDFromKeyString(all[off : off+36])
		off += 36
		return c
	}
	for i := range raw {
		var l nodeLink
		l.val = cut()
		if raw[i].right != nil {
			l.right = cut()
		}
		links = append(links, l)
	}
	var lc data.CID
	if left != nil {
		lc = cut()
	}
	return lc, links, nil
}

// scanNodeLinksSlow is scanNodeLinks through the general DAG-CBOR decoder,
// for blocks lexNode does not take.
func scanNodeLinksSlow(c data.CID, b []byte, links []nodeLink) (data.CID, []nodeLink, error) {
	d := data.NewDecoder(b)
	if nm, err := d.ReadMapHeader(); err != nil || nm != 2 {
		return data.CID{}, nil, nodeErr(c, "node is not a map of \"e\" and \"l\"")
	}
	k, err := d.ReadMapKey(nil)
	if err != nil || string(k) != "e" {
		return data.CID{}, nil, nodeErr(c, "node has no field \"e\"")
	}
	ne, err := d.ReadArrayHeader()
	if err != nil {
		return data.CID{}, nil, nodeErr(c, "field e: %v", err)
	}
	// ends[i] holds where entry i's record and subtree CIDs end in buf.
	type span struct{ val, right int32 }
	var endArr [32]span
	ends := endArr[:0]
	if ne > len(endArr) {
		ends = make([]span, 0, ne)
	}
	var bufArr [1024]byte
	buf := bufArr[:0]
	for i := 0; i < ne; i++ {
		if fm, err := d.ReadMapHeader(); err != nil || fm != 4 {
			return data.CID{}, nil, nodeErr(c, "entry %d is not a map of \"k\", \"p\", \"t\" and \"v\"", i)
		}
		var prevKey, right, val []byte
		for j, want := range [4]string{"k", "p", "t", "v"} {
			fk, err := d.ReadMapKey(prevKey)
			if err != nil || string(fk) != want {
				return data.CID{}, nil, nodeErr(c, "entry %d: field %q missing", i, want)
			}
			prevKey = fk
			switch j {
			case 0:
				_, err = d.ReadBytesView()
			case 1:
				_, err = d.ReadInt()
			case 2:
				right, err = readLinkBytes(d)
			case 3:
				val, err = d.ReadCIDBytes()
			}
			if err != nil {
				return data.CID{}, nil, nodeErr(c, "entry %d field %s: %v", i, want, err)
			}
		}
		buf = append(buf, val...)
		vEnd := int32(len(buf))
		buf = append(buf, right...)
		ends = append(ends, span{val: vEnd, right: int32(len(buf))})
	}
	k2, err := d.ReadMapKey(k)
	if err != nil || string(k2) != "l" {
		return data.CID{}, nil, nodeErr(c, "node has no field \"l\"")
	}
	left, err := readLinkBytes(d)
	if err != nil {
		return data.CID{}, nil, nodeErr(c, "field l: %v", err)
	}
	if err := d.Finish(); err != nil {
		return data.CID{}, nil, nodeErr(c, "%v", err)
	}
	leftStart := len(buf)
	buf = append(buf, left...)
	all := string(buf)
	start := 0
	for _, e := range ends {
		var l nodeLink
		if l.val, err = data.CIDFromKeyString(all[start:e.val]); err != nil {
			return data.CID{}, nil, nodeErr(c, "record link: %v", err)
		}
		if e.right > e.val {
			if l.right, err = data.CIDFromKeyString(all[e.val:e.right]); err != nil {
				return data.CID{}, nil, nodeErr(c, "subtree link: %v", err)
			}
		}
		links = append(links, l)
		start = int(e.right)
	}
	var lc data.CID
	if len(all) > leftStart {
		if lc, err = data.CIDFromKeyString(all[leftStart:]); err != nil {
			return data.CID{}, nil, nodeErr(c, "field l: %v", err)
		}
	}
	return lc, links, nil
}
