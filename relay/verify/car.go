package verify

import (
	"crypto/sha256"
	"errors"
	"fmt"

	"github.com/welkin-atproto/welkin/atproto/data"
)

// carError is a fault in a CAR slice, with the Reason it maps to.
type carError struct {
	reason Reason
	msg    string
}

func (e *carError) Error() string { return "car: " + e.msg }

func carFail(r Reason, format string, args ...any) *carError {
	return &carError{reason: r, msg: fmt.Sprintf(format, args...)}
}

// maxVarintLen is the longest unsigned varint multiformats allow.
const maxVarintLen = 9

// uvarint reads a minimal unsigned varint at b[i:], returning the value
// and the index after it.
func uvarint(b []byte, i int) (uint64, int, error) {
	var v uint64
	for n := 0; n < maxVarintLen; n++ {
		if i+n >= len(b) {
			return 0, 0, errors.New("input ends inside a varint")
		}
		c := b[i+n]
		v |= uint64(c&0x7f) << (7 * n)
		if c < 0x80 {
			if c == 0 && n > 0 {
				return 0, 0, errors.New("varint is not minimal")
			}
			return v, i + n + 1, nil
		}
	}
	return 0, 0, errors.New("varint is longer than 9 bytes")
}

// readCAR reads a CARv1 slice held in memory. It returns the first root
// and the blocks by CID; the block slices alias b, and the CIDs share one
// string copy of b, so the whole read costs a few allocations whatever the
// number of blocks. Every block is checked against its CID (sha-256 only)
// and against maxBlock. A repeated block is kept once.
func readCAR(b []byte, maxBlock int) (data.CID, map[data.CID][]byte, error) {
	hlen, p, err := uvarint(b, 0)
	if err != nil {
		return data.CID{}, nil, carFail(ReasonBadCAR, "header length: %v", err)
	}
	if hlen == 0 || hlen > uint64(len(b)-p) {
		return data.CID{}, nil, carFail(ReasonBadCAR, "header length %d does not fit in %d bytes", hlen, len(b)-p)
	}
	root, err := carRoot(b[p : p+int(hlen)])
	if err != nil {
		return data.CID{}, nil, carFail(ReasonBadCAR, "header: %v", err)
	}
	p += int(hlen)

	// One string copy of the sections: the CIDs are cut from it.
	s := string(b[p:])
	base := p
	// A one-op commit on a large tree carries a dozen or so blocks; the
	// map grows past that when it must.
	blocks := make(map[data.CID][]byte, 16)
	for idx := 0; p < len(b); idx++ {
		n, q, err := uvarint(b, p)
		if err != nil {
			return data.CID{}, nil, carFail(ReasonBadCAR, "block %d at offset %d: length: %v", idx, p, err)
		}
		if n == 0 || n > uint64(len(b)-q) {
			return data.CID{}, nil, carFail(ReasonBadCAR, "block %d at offset %d: section of %d bytes does not fit in the %d left", idx, p, n, len(b)-q)
		}
		end := q + int(n)
		clen, digest, err := cidDigest(b[q:end])
		if err != nil {
			return data.CID{}, nil, carFail(ReasonBadCAR, "block %d at offset %d: %v", idx, p, err)
		}
		c, err := data.CIDFromKeyString(s[q-base : q-base+clen])
		if err != nil {
			return data.CID{}, nil, carFail(ReasonBadCAR, "block %d at offset %d: %v", idx, p, err)
		}
		blk := b[q+clen : end : end]
		if len(blk) > maxBlock {
			return data.CID{}, nil, carFail(ReasonRecordTooLarge, "block %s is %d bytes, more than %d", c, len(blk), maxBlock)
		}
		if sum := sha256.Sum256(blk); string(sum[:]) != string(digest) {
			return data.CID{}, nil, carFail(ReasonBadCAR, "block %d at offset %d: bytes do not match CID %s", idx, p, c)
		}
		if _, dup := blocks[c]; !dup {
			blocks[c] = blk
		}
		p = end
	}
	return root, blocks, nil
}

// cidDigest reads the binary CID at the start of sec and returns its length
// and its sha-256 digest. CIDs with another hash function are refused: the
// block could not be checked.
func cidDigest(sec []byte) (int, []byte, error) {
	const sha256Code, sha256Len = data.HashSHA256, sha256.Size
	// CIDv0: a bare sha-256 multihash.
	if len(sec) >= 2 && sec[0] == sha256Code && sec[1] == sha256Len {
		if len(sec) < 2+sha256Len {
			return 0, nil, errors.New("truncated CIDv0")
		}
		return 2 + sha256Len, sec[2 : 2+sha256Len], nil
	}
	v, i, err := uvarint(sec, 0)
	if err != nil {
		return 0, nil, fmt.Errorf("CID version: %v", err)
	}
	if v != 1 {
		return 0, nil, fmt.Errorf("unsupported CID version %d", v)
	}
	if _, i, err = uvarint(sec, i); err != nil {
		return 0, nil, fmt.Errorf("CID codec: %v", err)
	}
	code, i, err := uvarint(sec, i)
	if err != nil {
		return 0, nil, fmt.Errorf("CID hash code: %v", err)
	}
	size, i, err := uvarint(sec, i)
	if err != nil {
		return 0, nil, fmt.Errorf("CID digest length: %v", err)
	}
	if code != sha256Code || size != sha256Len {
		return 0, nil, fmt.Errorf("CID hash 0x%x of %d bytes: only sha-256 is accepted", code, size)
	}
	if len(sec)-i < sha256Len {
		return 0, nil, errors.New("truncated CID digest")
	}
	return i + sha256Len, sec[i : i+sha256Len], nil
}

// carRoot decodes a CARv1 header, {"roots": [CID, ...], "version": 1},
// and returns its first root. Other keys are skipped, as CAR readers must.
func carRoot(h []byte) (data.CID, error) {
	d := data.NewDecoder(h)
	if d.PeekKind() != data.KindMap {
		return data.CID{}, errors.New("not a map")
	}
	n, err := d.ReadMapHeader()
	if err != nil {
		return data.CID{}, err
	}
	var (
		prev               []byte
		root               data.CID
		haveRoots, haveVer bool
		version            int64
	)
	for range n {
		k, err := d.ReadMapKey(prev)
		if err != nil {
			return data.CID{}, err
		}
		prev = k
		switch string(k) {
		case "roots":
			if d.PeekKind() != data.KindArray {
				return data.CID{}, errors.New(`"roots" is not an array`)
			}
			cnt, err := d.ReadArrayHeader()
			if err != nil {
				return data.CID{}, err
			}
			for i := range cnt {
				if d.PeekKind() != data.KindLink {
					return data.CID{}, fmt.Errorf("root %d is not a link", i)
				}
				if i == 0 {
					if root, err = d.ReadCID(); err != nil {
						return data.CID{}, err
					}
				} else if _, err := d.ReadCIDBytes(); err != nil {
					return data.CID{}, err
				}
			}
			haveRoots = true
		case "version":
			if d.PeekKind() != data.KindInt {
				return data.CID{}, errors.New(`"version" is not an integer`)
			}
			if version, err = d.ReadInt(); err != nil {
				return data.CID{}, err
			}
			haveVer = true
		default:
			if err := d.Skip(); err != nil {
				return data.CID{}, err
			}
		}
	}
	if err := d.Finish(); err != nil {
		return data.CID{}, err
	}
	switch {
	case !haveVer:
		return data.CID{}, errors.New(`no "version"`)
	case version != 1:
		return data.CID{}, fmt.Errorf("CAR version %d, want 1", version)
	case !haveRoots:
		return data.CID{}, errors.New(`no "roots"`)
	case !root.Defined():
		return data.CID{}, errors.New("no root: the commit must be the first root")
	}
	return root, nil
}
