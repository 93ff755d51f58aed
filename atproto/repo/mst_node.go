package repo

import (
	"crypto/sha256"
	"fmt"
	"math/bits"

	"github.com/welkin-atproto/welkin/atproto/data"
)

// MaxMSTKeyLen is the longest key, in bytes, that the tree accepts. The
// repository spec bounds the parts of a repo path (an NSID of at most 317
// bytes and a record key of at most 512) but not MST keys as such; this
// bound admits every valid path.
const MaxMSTKeyLen = 1024

// maxLayer is the highest layer a key can have: SHA-256 yields 256 bits,
// counted two at a time.
const maxLayer = 128

// KeyHeight returns the MST layer of a key: the number of leading zero bits
// of SHA-256(key), counted in pairs (so the tree has a fanout of 4).
func KeyHeight(key string) int {
	sum := sha256.Sum256([]byte(key))
	zeros := 0
	for i := 0; i < len(sum); i += 8 {
		w := uint64(sum[i])<<56 | uint64(sum[i+1])<<48 | uint64(sum[i+2])<<40 | uint64(sum[i+3])<<32 |
			uint64(sum[i+4])<<24 | uint64(sum[i+5])<<16 | uint64(sum[i+6])<<8 | uint64(sum[i+7])
		if w != 0 {
			zeros += bits.LeadingZeros64(w)
			return zeros / 2
		}
		zeros += 64
	}
	return zeros / 2
}

// commonPrefixLen returns the number of leading bytes a and b share.
func commonPrefixLen(a, b string) int {
	n := min(len(a), len(b))
	for i := 0; i < n; i++ {
		if a[i] != b[i] {
			return i
		}
	}
	return n
}

// ValidMSTKey reports whether key is acceptable as an MST key: a non-empty
// collection and record part joined by exactly one '/', using only the
// characters the repository spec allows in repo paths (letters, digits and
// "-._~:"), at most MaxMSTKeyLen bytes. Whether the parts are a valid NSID
// and record key is checked by the layer above.
func ValidMSTKey(key string) bool {
	if len(key) == 0 || len(key) > MaxMSTKeyLen {
		return false
	}
	slash := -1
	for i := 0; i < len(key); i++ {
		c := key[i]
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9':
		case c == '-', c == '.', c == '_', c == '~', c == ':':
		case c == '/':
			if slash >= 0 {
				return false
			}
			slash = i
		default:
			return false
		}
	}
	return slash > 0 && slash < len(key)-1
}

// link is a pointer from a node to a subtree: the subtree's CID, its
// decoded node, or both. Both empty means null. When n is set it is
// authoritative and cid may be stale until the node is hashed.
type link struct {
	cid data.CID
	n   *mstNode
}

func (l link) isNull() bool { return l.n == nil && !l.cid.Defined() }

// mstEntry is one key of a node with its value and the subtree to its right.
type mstEntry struct {
	key   string
	val   data.CID
	right link
}

// mstNode is a decoded tree node at a known layer.
type mstNode struct {
	layer   int
	left    link
	entries []mstEntry

	// cid and block cache the node's encoding; cid is undefined while the
	// node has changes not yet hashed.
	cid   data.CID
	block []byte
	// gen is the tree generation in which the node last changed.
	gen uint64
	// stored is set when the block is known to be in the tree's store.
	stored bool
}

// isEmpty reports a node with no entries and no subtree.
func (n *mstNode) isEmpty() bool { return len(n.entries) == 0 && n.left.isNull() }

// search returns the index of the first entry whose key is >= key, and
// whether that entry's key equals key.
func (n *mstNode) search(key string) (int, bool) {
	lo, hi := 0, len(n.entries)
	for lo < hi {
		m := int(uint(lo+hi) >> 1)
		if n.entries[m].key < key {
			lo = m + 1
		} else {
			hi = m
		}
	}
	return lo, lo < len(n.entries) && n.entries[lo].key == key
}

// gap returns the subtree pointer left of entry i (i == len(entries) is the
// right-most gap).
func (n *mstNode) gap(i int) *link {
	if i == 0 {
		return &n.left
	}
	return &n.entries[i-1].right
}

// encode appends the DAG-CBOR form of the node to buf. Every subtree link
// must already carry its CID.
func (n *mstNode) encode(buf []byte) ([]byte, error) {
	e := data.NewEncoder(buf)
	if err := e.WriteMapHeader(2); err != nil {
		return nil, err
	}
	e.WriteRaw(cborKeyE)
	if err := e.WriteArrayHeader(len(n.entries)); err != nil {
		return nil, err
	}
	prev := ""
	for i := range n.entries {
		ent := &n.entries[i]
		p := commonPrefixLen(prev, ent.key)
		if err := e.WriteMapHeader(4); err != nil {
			return nil, err
		}
		e.WriteRaw(cborKeyK)
		e.WriteBytes([]byte(ent.key[p:]))
		e.WriteRaw(cborKeyP)
		if err := e.WriteInt(int64(p)); err != nil {
			return nil, err
		}
		e.WriteRaw(cborKeyT)
		if err := writeLink(e, ent.right); err != nil {
			return nil, err
		}
		e.WriteRaw(cborKeyV)
		if err := e.WriteCID(ent.val); err != nil {
			return nil, fmt.Errorf("repo: MST entry %q: %w", ent.key, err)
		}
		prev = ent.key
	}
	e.WriteRaw(cborKeyL)
	if err := writeLink(e, n.left); err != nil {
		return nil, err
	}
	return e.Bytes(), nil
}

func writeLink(e *data.Encoder, l link) error {
	if l.isNull() {
		e.WriteNull()
		return nil
	}
	return e.WriteCID(l.cid)
}

// Single-character text-string keys, pre-encoded (major type 3, length 1).
var (
	cborKeyE = []byte{0x61, 'e'}
	cborKeyL = []byte{0x61, 'l'}
	cborKeyK = []byte{0x61, 'k'}
	cborKeyP = []byte{0x61, 'p'}
	cborKeyT = []byte{0x61, 't'}
	cborKeyV = []byte{0x61, 'v'}
)

// NodeFormatError reports an MST node block that does not have the exact
// form the repository spec defines.
type NodeFormatError struct {
	CID    data.CID // the node's CID, when known
	Reason string
}

func (e *NodeFormatError) Error() string {
	if e.CID.Defined() {
		return fmt.Sprintf("repo: MST node %s: %s", e.CID, e.Reason)
	}
	return "repo: MST node: " + e.Reason
}

func nodeErr(c data.CID, format string, args ...any) error {
	return &NodeFormatError{CID: c, Reason: fmt.Sprintf(format, args...)}
}

// decodeNode parses an MST node block. It accepts exactly the canonical
// encoding: a map of "e" and "l" only, entries of "k", "p", "t" and "v"
// only, null or a DAG-CBOR SHA-256 CIDv1 for subtree links, the first
// prefix length 0, every prefix length maximal and keys strictly increasing.
// Layers are not checked here. The node's layer is left at -1.
func decodeNode(c data.CID, b []byte) (*mstNode, error) {
	d := data.NewDecoder(b)
	nm, err := d.ReadMapHeader()
	if err != nil {
		return nil, nodeErr(c, "%v", err)
	}
	if nm != 2 {
		return nil, nodeErr(c, "node map has %d fields, want exactly \"e\" and \"l\"", nm)
	}
	n := &mstNode{layer: -1, cid: c, block: b}
	k, err := d.ReadMapKey(nil)
	if err != nil {
		return nil, nodeErr(c, "%v", err)
	}
	if string(k) != "e" {
		return nil, nodeErr(c, "unexpected field %q, want \"e\"", k)
	}
	ne, err := d.ReadArrayHeader()
	if err != nil {
		return nil, nodeErr(c, "field e: %v", err)
	}
	n.entries = make([]mstEntry, ne)
	// Keys are rebuilt in one buffer, then cut into strings that share it.
	var keybuf []byte
	ends := make([]int, ne)
	prevStart, prevEnd := 0, 0
	for i := 0; i < ne; i++ {
		ent := &n.entries[i]
		fm, err := d.ReadMapHeader()
		if err != nil {
			return nil, nodeErr(c, "entry %d: %v", i, err)
		}
		if fm != 4 {
			return nil, nodeErr(c, "entry %d has %d fields, want exactly \"k\", \"p\", \"t\" and \"v\"", i, fm)
		}
		var prevKey []byte
		var suffix []byte
		var plen int64
		for j, want := range [4]string{"k", "p", "t", "v"} {
			fk, err := d.ReadMapKey(prevKey)
			if err != nil {
				return nil, nodeErr(c, "entry %d: %v", i, err)
			}
			if string(fk) != want {
				return nil, nodeErr(c, "entry %d: unexpected field %q, want %q", i, fk, want)
			}
			prevKey = fk
			switch j {
			case 0:
				if suffix, err = d.ReadBytes(); err != nil {
					return nil, nodeErr(c, "entry %d field k: %v", i, err)
				}
			case 1:
				if plen, err = d.ReadInt(); err != nil {
					return nil, nodeErr(c, "entry %d field p: %v", i, err)
				}
			case 2:
				if ent.right, err = readLink(d); err != nil {
					return nil, nodeErr(c, "entry %d field t: %v", i, err)
				}
			case 3:
				if ent.val, err = d.ReadCID(); err != nil {
					return nil, nodeErr(c, "entry %d field v: %v", i, err)
				}
			}
		}
		prevLen := prevEnd - prevStart
		if plen < 0 || plen > int64(prevLen) {
			return nil, nodeErr(c, "entry %d: prefix length %d out of range 0..%d", i, plen, prevLen)
		}
		p := int(plen)
		if p < prevLen && len(suffix) > 0 && keybuf[prevStart+p] == suffix[0] {
			return nil, nodeErr(c, "entry %d: prefix length %d is not maximal", i, p)
		}
		keyLen := p + len(suffix)
		if keyLen == 0 {
			return nil, nodeErr(c, "entry %d: empty key", i)
		}
		if keyLen > MaxMSTKeyLen {
			return nil, nodeErr(c, "entry %d: key of %d bytes exceeds %d", i, keyLen, MaxMSTKeyLen)
		}
		start := len(keybuf)
		keybuf = append(keybuf, keybuf[prevStart:prevStart+p]...)
		keybuf = append(keybuf, suffix...)
		if i > 0 {
			// The shared prefix is equal, so order is decided by the rest.
			if string(keybuf[start+p:]) <= string(keybuf[prevStart+p:prevEnd]) {
				return nil, nodeErr(c, "entry %d: key %q does not sort after the previous key %q", i, keybuf[start:], keybuf[prevStart:prevEnd])
			}
		}
		prevStart, prevEnd = start, len(keybuf)
		ends[i] = prevEnd
	}
	k2, err := d.ReadMapKey(k)
	if err != nil {
		return nil, nodeErr(c, "%v", err)
	}
	if string(k2) != "l" {
		return nil, nodeErr(c, "unexpected field %q, want \"l\"", k2)
	}
	if n.left, err = readLink(d); err != nil {
		return nil, nodeErr(c, "field l: %v", err)
	}
	if err := d.Finish(); err != nil {
		return nil, nodeErr(c, "%v", err)
	}
	all := string(keybuf)
	start := 0
	for i := range n.entries {
		n.entries[i].key = all[start:ends[i]]
		start = ends[i]
	}
	return n, nil
}

// readLink reads a subtree pointer: null, or a link to another MST node,
// which must be a DAG-CBOR SHA-256 CIDv1.
func readLink(d *data.Decoder) (link, error) {
	if d.PeekNull() {
		return link{}, d.ReadNull()
	}
	c, err := d.ReadCID()
	if err != nil {
		return link{}, err
	}
	if !c.IsBlessed() || c.Codec() != data.CodecDagCBOR {
		return link{}, fmt.Errorf("subtree link %s is not a DAG-CBOR SHA-256 CIDv1", c)
	}
	return link{cid: c}, nil
}
