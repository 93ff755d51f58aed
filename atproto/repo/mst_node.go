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
	var sum [sha256.Size]byte
	if len(key) <= 128 {
		// Copy short keys to the stack: []byte(key) would allocate for
		// keys longer than 32 bytes.
		var kb [128]byte
		sum = sha256.Sum256(kb[:copy(kb[:], key)])
	} else {
		sum = sha256.Sum256([]byte(key))
	}
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
//
// The keys (rebuilt from their prefix compression) and the CIDs of a node
// are gathered in one scratch buffer, copied into one string and cut from
// it, so that a node costs three allocations: the node, its entries and
// that string. Blocks of the usual shape are read by lexNode; anything
// else, and every malformed block, goes through the general decoder,
// which names the fault.
func decodeNode(c data.CID, b []byte) (*mstNode, error) {
	var (
		spanArr [32]nodeSpan
		bufArr  [2048]byte
	)
	nb := nodeBuilder{spans: spanArr[:0], buf: bufArr[:0]}
	var rawArr [32]rawEntry
	raw, left, ok := lexNode(b, rawArr[:0])
	if !ok {
		return decodeNodeSlow(c, b)
	}
	for i := range raw {
		r := &raw[i]
		var err error
		if nb, err = nb.add(c, i, r.suffix, int64(r.plen), r.right, r.val); err != nil {
			return nil, err
		}
	}
	return nb.finish(c, b, left)
}

// nodeBuilder gathers the keys and links of a node being decoded.
type nodeBuilder struct {
	// spans[i] holds where entry i's key, value and subtree CID end in
	// buf (each starts where the one before ends); a subtree span of
	// length zero is a null link.
	spans              []nodeSpan
	buf                []byte
	prevStart, prevEnd int
}

type nodeSpan struct{ key, val, right int32 }

// add checks entry i's prefix compression and key order and records it.
// It works on a copy and returns it, so that the builder's scratch space
// can stay on the caller's stack.
func (nb nodeBuilder) add(c data.CID, i int, suffix []byte, plen int64, right, val []byte) (nodeBuilder, error) {
	buf := nb.buf
	prevStart, prevEnd := nb.prevStart, nb.prevEnd
	prevLen := prevEnd - prevStart
	if plen < 0 || plen > int64(prevLen) {
		return nb, nodeErr(c, "entry %d: prefix length %d out of range 0..%d", i, plen, prevLen)
	}
	p := int(plen)
	if p < prevLen && len(suffix) > 0 && buf[prevStart+p] == suffix[0] {
		return nb, nodeErr(c, "entry %d: prefix length %d is not maximal", i, p)
	}
	keyLen := p + len(suffix)
	if keyLen == 0 {
		return nb, nodeErr(c, "entry %d: empty key", i)
	}
	if keyLen > MaxMSTKeyLen {
		return nb, nodeErr(c, "entry %d: key of %d bytes exceeds %d", i, keyLen, MaxMSTKeyLen)
	}
	start := len(buf)
	buf = append(buf, buf[prevStart:prevStart+p]...)
	buf = append(buf, suffix...)
	if i > 0 {
		// The shared prefix is equal, so order is decided by the rest.
		if string(buf[start+p:]) <= string(buf[prevStart+p:prevEnd]) {
			return nb, nodeErr(c, "entry %d: key %q does not sort after the previous key %q", i, string(buf[start:]), string(buf[prevStart:prevEnd]))
		}
	}
	nb.prevStart, nb.prevEnd = start, len(buf)
	var sp nodeSpan
	sp.key = int32(len(buf))
	buf = append(buf, val...)
	sp.val = int32(len(buf))
	buf = append(buf, right...)
	sp.right = int32(len(buf))
	nb.spans = append(nb.spans, sp)
	nb.buf = buf
	return nb, nil
}

// finish makes the node, its keys and CIDs cut from one string.
func (nb nodeBuilder) finish(c data.CID, b []byte, left []byte) (*mstNode, error) {
	leftStart := len(nb.buf)
	all := string(append(nb.buf, left...))
	n := &mstNode{layer: -1, cid: c, block: b, entries: make([]mstEntry, len(nb.spans))}
	start := 0
	var err error
	for i := range n.entries {
		ent, sp := &n.entries[i], nb.spans[i]
		ent.key = all[start:sp.key]
		if ent.val, err = data.CIDFromKeyString(all[sp.key:sp.val]); err != nil {
			return nil, nodeErr(c, "entry %d field v: %v", i, err)
		}
		if sp.right > sp.val {
			if ent.right.cid, err = data.CIDFromKeyString(all[sp.val:sp.right]); err != nil {
				return nil, nodeErr(c, "entry %d field t: %v", i, err)
			}
		}
		start = int(sp.right)
	}
	if len(all) > leftStart {
		if n.left.cid, err = data.CIDFromKeyString(all[leftStart:]); err != nil {
			return nil, nodeErr(c, "field l: %v", err)
		}
	}
	return n, nil
}

// rawEntry is an entry of a node block as lexNode finds it; the slices
// alias the block.
type rawEntry struct {
	suffix, right, val []byte // right is nil for a null link
	plen               int
}

// lexNode reads a node block of the usual shape: canonical DAG-CBOR
// headers, links of 36-byte CIDv1s with a sha-256 digest (DAG-CBOR ones
// for subtrees), key suffixes of at most 1024 bytes. It appends the
// entries to raw and returns them with the left link; ok is false for any
// block of another shape, valid or not, which the general decoder must
// then read. It checks nothing of the keys and prefix lengths.
func lexNode(b []byte, raw []rawEntry) (_ []rawEntry, left []byte, ok bool) {
	// {"e": [...], "l": ...}: a2 61 65 <array header>
	if len(b) < 4 || b[0] != 0xa2 || b[1] != 0x61 || b[2] != 'e' {
		return nil, nil, false
	}
	ne, i, ok := lexHead(b, 3, 4)
	if !ok || ne > uint64(len(b)) {
		return nil, nil, false
	}
	for range ne {
		// a4 61 6b <bytes header> suffix
		if i+3 > len(b) || b[i] != 0xa4 || b[i+1] != 0x61 || b[i+2] != 'k' {
			return nil, nil, false
		}
		var n uint64
		if n, i, ok = lexHead(b, i+3, 2); !ok || n > MaxMSTKeyLen || uint64(len(b)-i) < n {
			return nil, nil, false
		}
		var e rawEntry
		e.suffix = b[i : i+int(n) : i+int(n)]
		i += int(n)
		// 61 70 <unsigned int>
		if i+2 > len(b) || b[i] != 0x61 || b[i+1] != 'p' {
			return nil, nil, false
		}
		if n, i, ok = lexHead(b, i+2, 0); !ok || n > MaxMSTKeyLen {
			return nil, nil, false
		}
		e.plen = int(n)
		// 61 74 <null or link>
		if i+2 > len(b) || b[i] != 0x61 || b[i+1] != 't' {
			return nil, nil, false
		}
		if e.right, i, ok = lexLink(b, i+2, true); !ok {
			return nil, nil, false
		}
		// 61 76 <link>
		if i+2 > len(b) || b[i] != 0x61 || b[i+1] != 'v' {
			return nil, nil, false
		}
		if e.val, i, ok = lexLink(b, i+2, false); !ok || e.val == nil {
			return nil, nil, false
		}
		raw = append(raw, e)
	}
	// 61 6c <null or link>, then the end of the block.
	if i+2 > len(b) || b[i] != 0x61 || b[i+1] != 'l' {
		return nil, nil, false
	}
	if left, i, ok = lexLink(b, i+2, true); !ok || i != len(b) {
		return nil, nil, false
	}
	return raw, left, true
}

// lexHead reads a minimal CBOR head of the given major type at b[i] with an
// argument below 65536, and returns the argument and the offset after it.
func lexHead(b []byte, i int, major byte) (uint64, int, bool) {
	if i >= len(b) || b[i]>>5 != major {
		return 0, 0, false
	}
	switch info := b[i] & 0x1f; {
	case info < 24:
		return uint64(info), i + 1, true
	case info == 24:
		if i+2 > len(b) || b[i+1] < 24 {
			return 0, 0, false
		}
		return uint64(b[i+1]), i + 2, true
	case info == 25:
		if i+3 > len(b) {
			return 0, 0, false
		}
		v := uint64(b[i+1])<<8 | uint64(b[i+2])
		if v < 256 {
			return 0, 0, false
		}
		return v, i + 3, true
	}
	return 0, 0, false
}

// lexLink reads, at b[i], null (when nullable; returned as nil) or a link
// to a 36-byte CIDv1 with a sha-256 digest: d8 2a 58 25 00 01 <codec> 12 20
// <digest>. A subtree link (nullable) must be DAG-CBOR; a record link may
// have any one-byte codec.
func lexLink(b []byte, i int, subtree bool) ([]byte, int, bool) {
	if subtree && i < len(b) && b[i] == 0xf6 {
		return nil, i + 1, true
	}
	const n = 5 + 36
	if i+n > len(b) || b[i] != 0xd8 || b[i+1] != 0x2a || b[i+2] != 0x58 || b[i+3] != 37 || b[i+4] != 0 {
		return nil, 0, false
	}
	c := b[i+5 : i+n : i+n]
	if c[0] != 0x01 || c[1] >= 0x80 || c[2] != data.HashSHA256 || c[3] != sha256.Size {
		return nil, 0, false
	}
	if subtree && c[1] != data.CodecDagCBOR {
		return nil, 0, false
	}
	return c, i + n, true
}

// decodeNodeSlow is decodeNode through the general DAG-CBOR decoder, for
// blocks lexNode does not take.
func decodeNodeSlow(c data.CID, b []byte) (*mstNode, error) {
	d := data.NewDecoder(b)
	nm, err := d.ReadMapHeader()
	if err != nil {
		return nil, nodeErr(c, "%v", err)
	}
	if nm != 2 {
		return nil, nodeErr(c, "node map has %d fields, want exactly \"e\" and \"l\"", nm)
	}
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
	var (
		spanArr [32]nodeSpan
		bufArr  [2048]byte
	)
	nb := nodeBuilder{spans: spanArr[:0], buf: bufArr[:0]}
	for i := 0; i < ne; i++ {
		fm, err := d.ReadMapHeader()
		if err != nil {
			return nil, nodeErr(c, "entry %d: %v", i, err)
		}
		if fm != 4 {
			return nil, nodeErr(c, "entry %d has %d fields, want exactly \"k\", \"p\", \"t\" and \"v\"", i, fm)
		}
		var prevKey []byte
		var suffix, right, val []byte
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
				if suffix, err = d.ReadBytesView(); err != nil {
					return nil, nodeErr(c, "entry %d field k: %v", i, err)
				}
			case 1:
				if plen, err = d.ReadInt(); err != nil {
					return nil, nodeErr(c, "entry %d field p: %v", i, err)
				}
			case 2:
				if right, err = readLinkBytes(d); err != nil {
					return nil, nodeErr(c, "entry %d field t: %v", i, err)
				}
			case 3:
				if val, err = d.ReadCIDBytes(); err != nil {
					return nil, nodeErr(c, "entry %d field v: %v", i, err)
				}
			}
		}
		if nb, err = nb.add(c, i, suffix, plen, right, val); err != nil {
			return nil, err
		}
	}
	k2, err := d.ReadMapKey(k)
	if err != nil {
		return nil, nodeErr(c, "%v", err)
	}
	if string(k2) != "l" {
		return nil, nodeErr(c, "unexpected field %q, want \"l\"", k2)
	}
	left, err := readLinkBytes(d)
	if err != nil {
		return nil, nodeErr(c, "field l: %v", err)
	}
	if err := d.Finish(); err != nil {
		return nil, nodeErr(c, "%v", err)
	}
	return nb.finish(c, b, left)
}

// readLinkBytes reads a subtree pointer: null (returned as nil), or a link
// to another MST node, which must be a DAG-CBOR SHA-256 CIDv1. The binary
// CID returned aliases the decoder's input.
func readLinkBytes(d *data.Decoder) ([]byte, error) {
	if d.PeekNull() {
		return nil, d.ReadNull()
	}
	b, err := d.ReadCIDBytes()
	if err != nil {
		return nil, err
	}
	if !blessedCBORLink(b) {
		c, _ := data.CIDFromBytes(b)
		return nil, fmt.Errorf("subtree link %s is not a DAG-CBOR SHA-256 CIDv1", c)
	}
	return b, nil
}

// blessedCBORLink reports whether a binary CID is a DAG-CBOR SHA-256 CIDv1
// with a 32-byte digest.
func blessedCBORLink[T ~string | ~[]byte](b T) bool {
	return len(b) == 36 && b[0] == 0x01 && b[1] == data.CodecDagCBOR && b[2] == data.HashSHA256 && b[3] == sha256.Size
}
