package data

import (
	"crypto/sha256"
	"encoding/base32"
	"errors"
	"fmt"
	"math/bits"

	"github.com/welkin-atproto/welkin/internal/base58"
)

// Multicodec and multihash codes used by atproto.
const (
	CodecDagCBOR = 0x71 // DAG-CBOR: records, MST nodes, commits
	CodecRaw     = 0x55 // raw bytes: blobs
	CodecDagPB   = 0x70 // only ever seen inside CIDv0
	HashSHA256   = 0x12 // sha2-256, 32-byte digest
)

// maxCIDBytes bounds a binary CID. A CID with a 64-byte digest and three
// varints fits with room to spare; anything longer is hostile input.
const maxCIDBytes = 128

// CID is a content identifier: a small, comparable value holding the binary
// form of a CID, usable as a map key. The zero value is the undefined CID.
//
// Any well-formed CIDv0 or CIDv1 is representable, so that links inside
// records can be kept exactly as they were received. IsBlessed reports
// whether a CID has the one form atproto writes: CIDv1, sha-256, and the
// dag-cbor or raw codec.
type CID struct {
	b string // binary CID; "" for the undefined CID
}

var base32Lower = base32.NewEncoding("abcdefghijklmnopqrstuvwxyz234567").WithPadding(base32.NoPadding)

// CIDForCBOR returns the CIDv1 (dag-cbor, sha-256) of DAG-CBOR bytes.
func CIDForCBOR(block []byte) CID { return sumCID(CodecDagCBOR, block) }

// CIDForRaw returns the CIDv1 (raw, sha-256) of a blob's bytes.
func CIDForRaw(blob []byte) CID { return sumCID(CodecRaw, blob) }

func sumCID(codec byte, content []byte) CID {
	var buf [4 + sha256.Size]byte
	buf[0] = 0x01 // CIDv1
	buf[1] = codec
	buf[2] = HashSHA256
	buf[3] = sha256.Size
	sum := sha256.Sum256(content)
	copy(buf[4:], sum[:])
	return CID{b: string(buf[:])}
}

// NewCIDv1 builds a CIDv1 from a codec, a multihash code and a digest.
func NewCIDv1(codec, hashCode uint64, digest []byte) CID {
	b := make([]byte, 0, 3*binaryMaxVarint+len(digest))
	b = appendUvarint(b, 1)
	b = appendUvarint(b, codec)
	b = appendUvarint(b, hashCode)
	b = appendUvarint(b, uint64(len(digest)))
	b = append(b, digest...)
	return CID{b: string(b)}
}

// CIDFromBytes parses a binary CID that fills b exactly.
func CIDFromBytes(b []byte) (CID, error) {
	c, n, err := ReadCID(b)
	if err != nil {
		return CID{}, err
	}
	if n != len(b) {
		return CID{}, fmt.Errorf("cid: %d trailing bytes after binary CID", len(b)-n)
	}
	return c, nil
}

// CIDFromKeyString parses a binary CID that fills s exactly, as KeyString
// returns it. The CID shares s: no copy is made.
func CIDFromKeyString(s string) (CID, error) {
	n, err := cidLen(s)
	if err != nil {
		return CID{}, err
	}
	if n != len(s) {
		return CID{}, fmt.Errorf("cid: %d trailing bytes after binary CID", len(s)-n)
	}
	return CID{b: s}, nil
}

// ReadCID parses the binary CID at the start of b and returns it with the
// number of bytes it took, as CAR files need.
func ReadCID(b []byte) (CID, int, error) {
	n, err := cidLen(b)
	if err != nil {
		return CID{}, 0, err
	}
	return CID{b: string(b[:n])}, n, nil
}

// cidLen checks the binary CID at the start of b and returns its length,
// without allocating; the CBOR decoder uses it to build CIDs that share
// the decoder's copy of the input.
func cidLen[T ~string | ~[]byte](b T) (int, error) {
	// CIDv0 is a bare sha-256 multihash: 0x12 0x20 and 32 bytes.
	if len(b) >= 2 && b[0] == HashSHA256 && b[1] == sha256.Size {
		if len(b) < 2+sha256.Size {
			return 0, errors.New("cid: truncated CIDv0")
		}
		return 2 + sha256.Size, nil
	}
	pos := 0
	version, n, err := readUvarint(b[pos:])
	if err != nil {
		return 0, fmt.Errorf("cid: version: %w", err)
	}
	pos += n
	if version != 1 {
		return 0, fmt.Errorf("cid: unsupported version %d", version)
	}
	if _, n, err = readUvarint(b[pos:]); err != nil {
		return 0, fmt.Errorf("cid: codec: %w", err)
	}
	pos += n
	if _, n, err = readUvarint(b[pos:]); err != nil {
		return 0, fmt.Errorf("cid: multihash code: %w", err)
	}
	pos += n
	size, n, err := readUvarint(b[pos:])
	if err != nil {
		return 0, fmt.Errorf("cid: multihash length: %w", err)
	}
	pos += n
	if size > maxCIDBytes || uint64(len(b)-pos) < size {
		return 0, fmt.Errorf("cid: multihash digest of %d bytes does not fit in %d remaining", size, len(b)-pos)
	}
	pos += int(size)
	if pos > maxCIDBytes {
		return 0, fmt.Errorf("cid: %d bytes is longer than the %d allowed", pos, maxCIDBytes)
	}
	return pos, nil
}

// ParseCID parses the string form of a CID: multibase base32 ("b...") for
// CIDv1, as atproto writes them, and base58btc ("Qm..." for CIDv0, "z..."
// for CIDv1), which older data holds.
func ParseCID(s string) (CID, error) {
	if len(s) < 2 {
		return CID{}, fmt.Errorf("cid: %q is too short", s)
	}
	if len(s) > 2*maxCIDBytes {
		return CID{}, fmt.Errorf("cid: string of %d characters is too long", len(s))
	}
	var rawBuf [2 * maxCIDBytes]byte
	var raw []byte
	var err error
	switch {
	case len(s) == 46 && s[0] == 'Q' && s[1] == 'm':
		raw, err = base58.Decode(s)
		if err == nil && (len(raw) != 34 || raw[0] != HashSHA256 || raw[1] != sha256.Size) {
			err = errors.New("not a sha-256 multihash")
		}
	case s[0] == 'b':
		raw, err = decodeBase32(rawBuf[:0], s[1:])
	case s[0] == 'z':
		raw, err = base58.Decode(s[1:])
	default:
		return CID{}, fmt.Errorf("cid: %q: unsupported multibase prefix %q", s, s[0])
	}
	if err != nil {
		return CID{}, fmt.Errorf("cid: %q: %w", s, err)
	}
	if s[0] != 'Q' && len(raw) > 0 && raw[0] != 0x01 {
		return CID{}, fmt.Errorf("cid: %q: multibase CID must be version 1", s)
	}
	c, err := CIDFromBytes(raw)
	if err != nil {
		return CID{}, fmt.Errorf("%w (in %q)", err, s)
	}
	// Non-canonical encodings would give two strings for one CID; accept
	// only the one. decodeBase32 already refuses every non-canonical base32
	// text (stray final bits, a dangling character), and a base58 CIDv0
	// string has a fixed length, so only base58 CIDv1 needs a re-encoding.
	if s[0] == 'z' && "z"+base58.Encode(raw) != s {
		return CID{}, fmt.Errorf("cid: %q is not in canonical form", s)
	}
	return c, nil
}

// MustParseCID is ParseCID for constants in tests and examples; it panics
// on error.
func MustParseCID(s string) CID {
	c, err := ParseCID(s)
	if err != nil {
		panic(err)
	}
	return c
}

// Defined reports whether c holds a CID (the zero value does not).
func (c CID) Defined() bool { return c.b != "" }

// Bytes returns the binary form of the CID.
func (c CID) Bytes() []byte { return []byte(c.b) }

// KeyString returns the binary form as a string, for use in maps and
// comparisons without allocating.
func (c CID) KeyString() string { return c.b }

// String returns the canonical string form: base32 multibase for CIDv1,
// base58btc for CIDv0, and "" for the undefined CID.
func (c CID) String() string {
	var buf [1 + 2*maxCIDBytes]byte
	return string(c.appendString(buf[:0]))
}

// appendString appends the canonical string form to dst.
func (c CID) appendString(dst []byte) []byte {
	if c.b == "" {
		return dst
	}
	if c.Version() == 0 {
		return append(dst, base58.Encode([]byte(c.b))...)
	}
	return appendBase32(append(dst, 'b'), c.b)
}

const base32Alphabet = "abcdefghijklmnopqrstuvwxyz234567"

// appendBase32 appends the unpadded lower-case base32 form of s.
func appendBase32(dst []byte, s string) []byte {
	var acc uint
	bits := 0
	for i := 0; i < len(s); i++ {
		acc = acc<<8 | uint(s[i])
		bits += 8
		for bits >= 5 {
			bits -= 5
			dst = append(dst, base32Alphabet[(acc>>bits)&31])
		}
	}
	if bits > 0 {
		dst = append(dst, base32Alphabet[(acc<<(5-bits))&31])
	}
	return dst
}

var base32Index = func() (t [256]int8) {
	for i := range t {
		t[i] = -1
	}
	for i := 0; i < len(base32Alphabet); i++ {
		t[base32Alphabet[i]] = int8(i)
	}
	return t
}()

// decodeBase32 appends the bytes of unpadded lower-case base32 text to
// dst. Only the canonical form is accepted: no padding, no trailing
// character without data, and unused final bits zero.
func decodeBase32(dst []byte, s string) ([]byte, error) {
	var acc uint
	bits := 0
	for i := 0; i < len(s); i++ {
		v := base32Index[s[i]]
		if v < 0 {
			return nil, fmt.Errorf("illegal base32 data at input byte %d", i)
		}
		acc = acc<<5 | uint(v)
		bits += 5
		if bits >= 8 {
			bits -= 8
			dst = append(dst, byte(acc>>bits))
		}
	}
	if bits >= 5 || acc&(1<<bits-1) != 0 {
		return nil, errors.New("base32 text is not in canonical form")
	}
	return dst, nil
}

// Version returns 0 or 1.
func (c CID) Version() int {
	if len(c.b) == 34 && c.b[0] == HashSHA256 {
		return 0
	}
	return 1
}

// Codec returns the multicodec of the content (dag-pb for CIDv0).
func (c CID) Codec() uint64 {
	if c.b == "" {
		return 0
	}
	if c.Version() == 0 {
		return CodecDagPB
	}
	_, n, _ := readUvarint(c.b)
	codec, _, _ := readUvarint(c.b[n:])
	return codec
}

// multihash returns the multihash part of c, sharing its string.
func (c CID) multihash() string {
	if c.b == "" || c.Version() == 0 {
		return c.b
	}
	_, n1, _ := readUvarint(c.b)
	_, n2, _ := readUvarint(c.b[n1:])
	return c.b[n1+n2:]
}

// Multihash returns the multihash part: hash code, length and digest.
func (c CID) Multihash() []byte {
	if c.b == "" {
		return nil
	}
	return []byte(c.multihash())
}

// HashCode returns the multihash function code.
func (c CID) HashCode() uint64 {
	code, _, _ := readUvarint(c.multihash())
	return code
}

// Digest returns the hash digest.
func (c CID) Digest() []byte {
	mh := c.Multihash()
	_, n1, err := readUvarint(mh)
	if err != nil {
		return nil
	}
	_, n2, err := readUvarint(mh[n1:])
	if err != nil {
		return nil
	}
	return mh[n1+n2:]
}

// IsBlessed reports whether c has the form the repository spec requires of
// links atproto writes: CIDv1, sha-256 with a 32-byte digest, and the
// dag-cbor or raw codec.
func (c CID) IsBlessed() bool {
	return len(c.b) == 36 && c.b[0] == 0x01 && (c.b[1] == CodecDagCBOR || c.b[1] == CodecRaw) &&
		c.b[2] == HashSHA256 && c.b[3] == sha256.Size
}

// MarshalText implements encoding.TextMarshaler (the string form).
func (c CID) MarshalText() ([]byte, error) { return []byte(c.String()), nil }

// UnmarshalText implements encoding.TextUnmarshaler.
func (c *CID) UnmarshalText(b []byte) error {
	p, err := ParseCID(string(b))
	if err != nil {
		return err
	}
	*c = p
	return nil
}

const binaryMaxVarint = 10

func appendUvarint(b []byte, v uint64) []byte {
	for v >= 0x80 {
		b = append(b, byte(v)|0x80)
		v >>= 7
	}
	return append(b, byte(v))
}

// readUvarint reads an unsigned varint as multiformats define it: at most
// nine bytes, and minimally encoded.
func readUvarint[T ~string | ~[]byte](b T) (uint64, int, error) {
	var v uint64
	for i := 0; i < len(b) && i < 9; i++ {
		c := b[i]
		v |= uint64(c&0x7f) << (7 * i)
		if c < 0x80 {
			if c == 0 && i > 0 {
				return 0, 0, errors.New("varint is not minimally encoded")
			}
			return v, i + 1, nil
		}
	}
	if len(b) < 9 {
		return 0, 0, errors.New("truncated varint")
	}
	return 0, 0, errors.New("varint longer than 9 bytes")
}

// uvarintLen returns the encoded length of v as a varint.
func uvarintLen(v uint64) int { return (bits.Len64(v|1) + 6) / 7 }
