package repo

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"slices"

	"github.com/welkin-atproto/welkin/atproto/data"
)

// Tree is a Merkle Search Tree: the ordered map from repo paths to record
// CIDs at the heart of a repository (see the repository spec, "MST
// Structure").
//
// Nodes are kept decoded in memory once read; changes touch only the nodes
// on the path to the key, and nodes are re-encoded and hashed only when a
// CID is asked for. A tree loaded with LoadTree reads nodes from its
// BlockStore as they are needed.
//
// The tree remembers which keys changed since it was built or loaded, or
// since the last CommitSlice, so that CommitSlice can return the blocks a
// sync 1.1 #commit event must carry.
//
// A Tree is not safe for concurrent use, not even for concurrent reads,
// since reading may load and cache nodes.
type Tree struct {
	ctx   context.Context
	store BlockStore // may be nil for a tree built in memory
	root  *mstNode
	// gen is the current generation: nodes whose gen equals it changed
	// since the last mark.
	gen uint64
	// touched holds the keys put or deleted since the last mark.
	touched map[string]struct{}
	// verify makes loads check each block against its CID.
	verify bool
}

func newEmptyNode() *mstNode { return &mstNode{layer: 0} }

// NewTree returns an empty tree held in memory.
func NewTree() *Tree {
	return &Tree{ctx: context.Background(), root: newEmptyNode(), gen: 1}
}

// BuildTree builds the tree holding exactly the given map, bottom-up from
// the sorted keys. Every key must satisfy ValidMSTKey and every value be a
// defined CID.
func BuildTree(m map[string]data.CID) (*Tree, error) {
	t := NewTree()
	if len(m) == 0 {
		return t, nil
	}
	keys := make([]string, 0, len(m))
	for k, v := range m {
		if !ValidMSTKey(k) {
			return nil, fmt.Errorf("repo: BuildTree: invalid MST key %q", k)
		}
		if !v.Defined() {
			return nil, fmt.Errorf("repo: BuildTree: key %q has an undefined CID", k)
		}
		keys = append(keys, k)
	}
	slices.Sort(keys)
	heights := make([]uint8, len(keys))
	top := 0
	for i, k := range keys {
		h := KeyHeight(k)
		heights[i] = uint8(h)
		top = max(top, h)
	}
	b := builder{keys: keys, heights: heights, m: m}
	// Entries of all nodes are cut from one backing array.
	b.entries = make([]mstEntry, 0, len(keys))
	root := b.build(0, len(keys), top)
	t.root = root.n
	return t, nil
}

type builder struct {
	keys    []string
	heights []uint8
	m       map[string]data.CID
	entries []mstEntry
}

// build returns the subtree at layer holding keys[lo:hi], all of whose
// heights are at most layer.
func (b *builder) build(lo, hi, layer int) link {
	if lo >= hi {
		return link{}
	}
	n := &mstNode{layer: layer}
	if layer == 0 {
		start := len(b.entries)
		for i := lo; i < hi; i++ {
			b.entries = append(b.entries, mstEntry{key: b.keys[i], val: b.m[b.keys[i]]})
		}
		n.entries = b.entries[start:len(b.entries):len(b.entries)]
		return link{n: n}
	}
	h := uint8(layer)
	// Find the keys at this layer; the runs between them form subtrees.
	count := 0
	for i := lo; i < hi; i++ {
		if b.heights[i] == h {
			count++
		}
	}
	if count == 0 {
		n.left = b.build(lo, hi, layer-1)
		return link{n: n}
	}
	ents := make([]mstEntry, 0, count)
	prev := lo
	for i := lo; i < hi; i++ {
		if b.heights[i] != h {
			continue
		}
		sub := b.build(prev, i, layer-1)
		if len(ents) == 0 {
			n.left = sub
		} else {
			ents[len(ents)-1].right = sub
		}
		ents = append(ents, mstEntry{key: b.keys[i], val: b.m[b.keys[i]]})
		prev = i + 1
	}
	ents[len(ents)-1].right = b.build(prev, hi, layer-1)
	n.entries = ents
	return link{n: n}
}

// LoadTree opens the tree whose root node has the given CID. Nodes are read
// from the store only when an operation needs them; the root is read now.
// ctx is used for every later read.
func LoadTree(ctx context.Context, store BlockStore, root data.CID) (*Tree, error) {
	t := &Tree{ctx: ctx, store: store, gen: 1}
	if err := t.loadRoot(root); err != nil {
		return nil, err
	}
	return t, nil
}

func (t *Tree) loadRoot(root data.CID) error {
	if !root.Defined() {
		return errors.New("repo: MST root CID is undefined")
	}
	l := link{cid: root}
	n, err := t.load(&l, -1)
	if err != nil {
		return err
	}
	t.root = n
	return nil
}

// load returns the node a non-null link points to, reading and decoding it
// when it is not in memory. layer is the layer the node must have, or -1 for
// the root, whose layer is taken from its keys.
func (t *Tree) load(l *link, layer int) (*mstNode, error) {
	if l.n != nil {
		return l.n, nil
	}
	if t.store == nil {
		return nil, &MissingBlockError{CID: l.cid, Context: "MST node"}
	}
	b, err := t.store.GetBlock(t.ctx, l.cid)
	if err != nil {
		var mb *MissingBlockError
		if errors.As(err, &mb) {
			if mb.Context == "" {
				return nil, &MissingBlockError{CID: l.cid, Context: "MST node"}
			}
			return nil, err
		}
		return nil, fmt.Errorf("repo: reading MST node %s: %w", l.cid, err)
	}
	if t.verify && !matchesCBORCID(l.cid, b) {
		return nil, nodeErr(l.cid, "block bytes do not match the CID")
	}
	n, err := decodeNode(l.cid, b)
	if err != nil {
		return nil, err
	}
	if layer < 0 {
		switch {
		case len(n.entries) > 0:
			layer = KeyHeight(n.entries[0].key)
		case n.left.isNull():
			layer = 0 // the empty tree
		default:
			return nil, nodeErr(l.cid, "root node has no entries, only a subtree: the tree top is not trimmed")
		}
	}
	if layer == 0 && len(n.entries) == 0 && !n.left.isNull() {
		return nil, nodeErr(l.cid, "node at layer 0 has a subtree")
	}
	for i := range n.entries {
		if h := KeyHeight(n.entries[i].key); h != layer {
			return nil, nodeErr(l.cid, "key %q has height %d but sits in a node at layer %d", n.entries[i].key, h, layer)
		}
		if layer == 0 && !n.entries[i].right.isNull() {
			return nil, nodeErr(l.cid, "node at layer 0 has a subtree")
		}
	}
	if layer == 0 && !n.left.isNull() {
		return nil, nodeErr(l.cid, "node at layer 0 has a subtree")
	}
	n.layer = layer
	n.stored = true
	l.n = n
	return n, nil
}

// matchesCBORCID reports whether c is the DAG-CBOR SHA-256 CIDv1 of b,
// as data.CIDForCBOR(b) == c would, without allocating.
func matchesCBORCID(c data.CID, b []byte) bool {
	k := c.KeyString()
	if !blessedCBORLink(k) {
		return false
	}
	sum := sha256.Sum256(b)
	return k[4:] == string(sum[:])
}

// touch marks a node as changed: its cached encoding is dropped.
func (t *Tree) touch(n *mstNode) {
	n.cid = data.CID{}
	n.block = nil
	n.gen = t.gen
	n.stored = false
}

func (t *Tree) newNode(layer int) *mstNode {
	return &mstNode{layer: layer, gen: t.gen}
}

// Get returns the value stored under key.
func (t *Tree) Get(key string) (data.CID, bool, error) {
	return t.get(key, KeyHeight(key))
}

func (t *Tree) get(key string, h int) (data.CID, bool, error) {
	n := t.root
	for {
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
		c, err := t.load(g, n.layer-1)
		if err != nil {
			return data.CID{}, false, err
		}
		n = c
	}
}

// Put sets key to val, inserting the key if it is absent.
func (t *Tree) Put(key string, val data.CID) error {
	if !ValidMSTKey(key) {
		return fmt.Errorf("repo: Put: invalid MST key %q", key)
	}
	if !val.Defined() {
		return fmt.Errorf("repo: Put %q: undefined CID", key)
	}
	changed, err := t.put(key, val, KeyHeight(key))
	if err != nil {
		return fmt.Errorf("repo: Put %q: %w", key, err)
	}
	if changed {
		t.markTouched(key)
	}
	return nil
}

func (t *Tree) markTouched(key string) {
	if t.touched == nil {
		t.touched = make(map[string]struct{})
	}
	t.touched[key] = struct{}{}
}

func (t *Tree) put(key string, val data.CID, h int) (bool, error) {
	root := t.root
	if root.isEmpty() {
		n := t.newNode(h)
		n.entries = []mstEntry{{key: key, val: val}}
		t.root = n
		return true, nil
	}
	if h > root.layer {
		l, r, err := t.split(link{n: root}, key, root.layer)
		if err != nil {
			return false, err
		}
		for layer := root.layer + 1; layer < h; layer++ {
			l = t.wrap(l, layer)
			r = t.wrap(r, layer)
		}
		n := t.newNode(h)
		n.left = l
		n.entries = []mstEntry{{key: key, val: val, right: r}}
		t.root = n
		return true, nil
	}
	return t.insert(root, key, val, h)
}

// wrap puts a non-null subtree under an empty node one layer up.
func (t *Tree) wrap(l link, layer int) link {
	if l.isNull() {
		return l
	}
	n := t.newNode(layer)
	n.left = l
	return link{n: n}
}

// insert puts key (of height h <= n.layer) into the subtree at n.
func (t *Tree) insert(n *mstNode, key string, val data.CID, h int) (bool, error) {
	i, found := n.search(key)
	if h == n.layer {
		if found {
			if n.entries[i].val == val {
				return false, nil
			}
			n.entries[i].val = val
			t.touch(n)
			return true, nil
		}
		g := n.gap(i)
		l, r, err := t.split(*g, key, n.layer-1)
		if err != nil {
			return false, err
		}
		*g = l
		n.entries = slices.Insert(n.entries, i, mstEntry{key: key, val: val, right: r})
		t.touch(n)
		return true, nil
	}
	if found {
		return false, nodeErr(n.cid, "key %q found at layer %d, above its height %d", key, n.layer, h)
	}
	g := n.gap(i)
	if g.isNull() {
		// A new leaf, padded with empty nodes up to this layer.
		leaf := t.newNode(h)
		leaf.entries = []mstEntry{{key: key, val: val}}
		l := link{n: leaf}
		for layer := h + 1; layer < n.layer; layer++ {
			l = t.wrap(l, layer)
		}
		*g = l
		t.touch(n)
		return true, nil
	}
	c, err := t.load(g, n.layer-1)
	if err != nil {
		return false, err
	}
	changed, err := t.insert(c, key, val, h)
	if changed {
		t.touch(n)
	}
	return changed, err
}

// split cuts the subtree l (at layer) at key, which it does not hold, into
// the part before key and the part after it. A part that is empty is null;
// a part that is the whole subtree is l itself, unchanged.
func (t *Tree) split(l link, key string, layer int) (link, link, error) {
	if l.isNull() {
		return link{}, link{}, nil
	}
	if layer < 0 {
		return link{}, link{}, errors.New("subtree below layer 0")
	}
	n, err := t.load(&l, layer)
	if err != nil {
		return link{}, link{}, err
	}
	i, found := n.search(key)
	if found {
		return link{}, link{}, nodeErr(n.cid, "key %q found at layer %d, below its height", key, layer)
	}
	g := n.gap(i)
	cl, cr, err := t.split(*g, key, layer-1)
	if err != nil {
		return link{}, link{}, err
	}
	if i == 0 && cl.isNull() {
		return link{}, l, nil // all of n is after key
	}
	if i == len(n.entries) && cr.isNull() {
		return l, link{}, nil // all of n is before key
	}
	right := t.newNode(layer)
	right.left = cr
	right.entries = slices.Clone(n.entries[i:])
	*g = cl
	n.entries = n.entries[:i:i]
	t.touch(n)
	var lo, hi link
	if !n.isEmpty() {
		lo = link{n: n}
	}
	if !right.isEmpty() {
		hi = link{n: right}
	}
	return lo, hi, nil
}

// Delete removes key from the tree. Deleting an absent key does nothing.
func (t *Tree) Delete(key string) error {
	removed, err := t.del(key, KeyHeight(key))
	if err != nil {
		return fmt.Errorf("repo: Delete %q: %w", key, err)
	}
	if removed {
		t.markTouched(key)
	}
	return nil
}

func (t *Tree) del(key string, h int) (bool, error) {
	root := t.root
	if h > root.layer {
		return false, nil
	}
	removed, err := t.remove(root, key, h)
	if err != nil || !removed {
		return removed, err
	}
	// Trim the top: the root may not be an empty node over a subtree.
	for len(t.root.entries) == 0 {
		if t.root.left.isNull() {
			t.root = t.newNode(0)
			break
		}
		c, err := t.load(&t.root.left, t.root.layer-1)
		if err != nil {
			return false, err
		}
		t.root = c
	}
	return true, nil
}

// remove deletes key (of height h <= n.layer) from the subtree at n.
func (t *Tree) remove(n *mstNode, key string, h int) (bool, error) {
	i, found := n.search(key)
	if h == n.layer {
		if !found {
			return false, nil
		}
		g := n.gap(i)
		m, err := t.merge(*g, n.entries[i].right, n.layer-1)
		if err != nil {
			return false, err
		}
		*g = m
		n.entries = slices.Delete(n.entries, i, i+1)
		t.touch(n)
		return true, nil
	}
	g := n.gap(i)
	if found || g.isNull() {
		return false, nil
	}
	c, err := t.load(g, n.layer-1)
	if err != nil {
		return false, err
	}
	removed, err := t.remove(c, key, h)
	if err != nil || !removed {
		return removed, err
	}
	if c.isEmpty() {
		*g = link{}
	}
	t.touch(n)
	return true, nil
}

// merge joins two adjacent subtrees at the same layer, a before b.
func (t *Tree) merge(a, b link, layer int) (link, error) {
	if a.isNull() {
		return b, nil
	}
	if b.isNull() {
		return a, nil
	}
	if layer < 0 {
		return link{}, errors.New("subtree below layer 0")
	}
	an, err := t.load(&a, layer)
	if err != nil {
		return link{}, err
	}
	bn, err := t.load(&b, layer)
	if err != nil {
		return link{}, err
	}
	seam := an.gap(len(an.entries))
	m, err := t.merge(*seam, bn.left, layer-1)
	if err != nil {
		return link{}, err
	}
	*seam = m
	an.entries = append(an.entries, bn.entries...)
	t.touch(an)
	return link{n: an}, nil
}

// Root returns the CID of the root node, hashing whatever changed.
func (t *Tree) Root() (data.CID, error) {
	if err := t.hash(t.root); err != nil {
		return data.CID{}, err
	}
	return t.root.cid, nil
}

// hash computes the encoding and CID of n and of every changed node below.
func (t *Tree) hash(n *mstNode) error {
	if n.cid.Defined() {
		return nil
	}
	if err := t.hashLink(&n.left); err != nil {
		return err
	}
	for i := range n.entries {
		if err := t.hashLink(&n.entries[i].right); err != nil {
			return err
		}
	}
	// An entry takes its key suffix, two links of 41 bytes and at most
	// 17 bytes of headers and field names.
	size := 48
	for i := range n.entries {
		size += 100 + len(n.entries[i].key)
	}
	b, err := n.encode(make([]byte, 0, size))
	if err != nil {
		return err
	}
	n.block = b
	n.cid = data.CIDForCBOR(b)
	return nil
}

func (t *Tree) hashLink(l *link) error {
	if l.n == nil {
		return nil
	}
	if err := t.hash(l.n); err != nil {
		return err
	}
	l.cid = l.n.cid
	return nil
}

// Walk calls fn for every key and value in key order, stopping at the first
// error fn returns, which Walk returns.
func (t *Tree) Walk(ctx context.Context, fn func(key string, val data.CID) error) error {
	return t.walkRange(ctx, t.root, "", "", false, fn)
}

// errStopWalk ends a walk early without error.
var errStopWalk = errors.New("stop")

// walkRange visits, in order (or reverse order), the keys k of the subtree
// at n with lo < k < hi; an empty bound is no bound.
func (t *Tree) walkRange(ctx context.Context, n *mstNode, lo, hi string, reverse bool, fn func(string, data.CID) error) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	// Gap i lies between entries i-1 and i.
	visitGap := func(i int) error {
		if i > 0 && hi != "" && n.entries[i-1].key >= hi {
			return nil
		}
		if i < len(n.entries) && lo != "" && n.entries[i].key <= lo {
			return nil
		}
		g := n.gap(i)
		if g.isNull() {
			return nil
		}
		c, err := t.load(g, n.layer-1)
		if err != nil {
			return err
		}
		return t.walkRange(ctx, c, lo, hi, reverse, fn)
	}
	visitEntry := func(i int) error {
		k := n.entries[i].key
		if (lo != "" && k <= lo) || (hi != "" && k >= hi) {
			return nil
		}
		return fn(k, n.entries[i].val)
	}
	ne := len(n.entries)
	if !reverse {
		for i := 0; i < ne; i++ {
			if err := visitGap(i); err != nil {
				return err
			}
			if err := visitEntry(i); err != nil {
				return err
			}
		}
		return visitGap(ne)
	}
	if err := visitGap(ne); err != nil {
		return err
	}
	for i := ne - 1; i >= 0; i-- {
		if err := visitEntry(i); err != nil {
			return err
		}
		if err := visitGap(i); err != nil {
			return err
		}
	}
	return nil
}

// Entry is one key and value of the tree.
type Entry struct {
	Key   string
	Value data.CID
}

// List returns up to limit entries of one collection (keys
// "<collection>/<rkey>"), in key order or, with reverse, in reverse order.
// When after is not empty only record keys after it (before it, with
// reverse) are listed. A limit of zero or less means no limit.
func (t *Tree) List(ctx context.Context, collection, after string, limit int, reverse bool) ([]Entry, error) {
	prefix := collection + "/"
	// Keys of the collection lie strictly between prefix and prefix with
	// the slash replaced by the next byte ('0').
	lo, hi := prefix, collection+"0"
	if after != "" {
		if reverse {
			hi = prefix + after
		} else {
			lo = prefix + after
		}
	}
	var out []Entry
	err := t.walkRange(ctx, t.root, lo, hi, reverse, func(k string, v data.CID) error {
		out = append(out, Entry{Key: k, Value: v})
		if limit > 0 && len(out) >= limit {
			return errStopWalk
		}
		return nil
	})
	if err != nil && err != errStopWalk {
		return nil, err
	}
	return out, nil
}

// Shed drops from memory the decoded nodes that are in the tree's store
// and did not change in the last keep generations (a generation ends with
// each CommitSlice), keeping their CIDs: they are read again from the store
// when a write or a read reaches them. A tree kept across many commits then
// holds the paths its recent writes went through, not every node it ever
// loaded or built, whose number grows with the repository. Nodes not yet
// stored are always kept, and so is every node of a tree without a store.
func (t *Tree) Shed(keep uint64) {
	if t.store == nil || t.root == nil {
		return
	}
	var cutoff uint64
	if t.gen > keep {
		cutoff = t.gen - keep
	}
	t.shed(t.root, cutoff)
}

func (t *Tree) shed(n *mstNode, cutoff uint64) {
	t.shedLink(&n.left, cutoff)
	for i := range n.entries {
		t.shedLink(&n.entries[i].right, cutoff)
	}
}

func (t *Tree) shedLink(l *link, cutoff uint64) {
	c := l.n
	if c == nil {
		return
	}
	// A stored node's whole subtree is stored (see writeNode), so the CID
	// is all that is needed to read it back.
	if c.stored && c.gen < cutoff && c.cid.Defined() && c.cid == l.cid {
		l.n = nil
		return
	}
	t.shed(c, cutoff)
}

// WriteBlocks hashes the tree and writes to store every node not yet
// known to be stored there (all nodes of a tree built in memory, the
// changed nodes of a loaded one).
func (t *Tree) WriteBlocks(ctx context.Context, store BlockStore) error {
	if err := t.hash(t.root); err != nil {
		return err
	}
	return t.writeNode(ctx, store, t.root)
}

func (t *Tree) writeNode(ctx context.Context, store BlockStore, n *mstNode) error {
	if n.stored {
		return nil
	}
	if err := store.PutBlock(ctx, n.cid, n.block); err != nil {
		return err
	}
	n.stored = true
	if n.left.n != nil {
		if err := t.writeNode(ctx, store, n.left.n); err != nil {
			return err
		}
	}
	for i := range n.entries {
		if c := n.entries[i].right.n; c != nil {
			if err := t.writeNode(ctx, store, c); err != nil {
				return err
			}
		}
	}
	return nil
}

// UnstoredBlocks hashes the tree and returns the blocks WriteBlocks would
// write, without marking them stored.
func (t *Tree) UnstoredBlocks() (map[data.CID][]byte, error) {
	if err := t.hash(t.root); err != nil {
		return nil, err
	}
	out := make(map[data.CID][]byte)
	var visit func(n *mstNode)
	visit = func(n *mstNode) {
		if n.stored {
			return
		}
		out[n.cid] = n.block
		if n.left.n != nil {
			visit(n.left.n)
		}
		for i := range n.entries {
			if c := n.entries[i].right.n; c != nil {
				visit(c)
			}
		}
	}
	visit(t.root)
	return out, nil
}
