package car

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"

	"github.com/welkin-atproto/welkin/atproto/data"
)

// maxCIDLen bounds the binary CID at the start of a section. A sha-256
// CIDv1 takes 36 bytes; the data package refuses CIDs over 128.
const maxCIDLen = 128

// maxVarintLen is the longest unsigned varint multiformats allow.
const maxVarintLen = 9

// readChunk is the most a Reader allocates ahead of the bytes actually
// received: larger sections grow their buffer as input arrives, so a
// length prefix that promises more than the input holds costs little.
const readChunk = 64 << 10

// Reader reads a CARv1 file one block at a time, in constant memory apart
// from the block it returns. It checks every block against its CID.
type Reader struct {
	br    byteReader
	lim   Limits
	roots []data.CID
	off   int64 // bytes consumed so far
	block int   // index of the next section
	err   error // sticky: once set, Next returns it
	// arena is the rest of the chunk small blocks are cut from.
	arena []byte
	chunk int // size of the next chunk
}

// byteReader is what a Reader reads from: r itself when it reads bytes one
// at a time cheaply (a bytes.Reader, say), else a bufio.Reader over it.
type byteReader interface {
	io.Reader
	io.ByteReader
}

// Small blocks are cut from chunks of memory shared by consecutive
// blocks, which saves an allocation per block: chunks start at
// minChunk bytes and double up to maxChunk; blocks over maxSmallBlock get
// their own allocation.
const (
	minChunk      = 4 << 10
	maxChunk      = 64 << 10
	maxSmallBlock = 4 << 10
)

// NewReader reads the header of the CARv1 file r holds and returns a
// Reader positioned at its first block. Zero fields of lim take the
// DefaultLimits. The Reader buffers r (unless it is a *bytes.Reader or a
// *bytes.Buffer) and may read past the end of the CAR data.
func NewReader(r io.Reader, lim Limits) (*Reader, error) {
	lim, err := lim.withDefaults()
	if err != nil {
		return nil, err
	}
	cr := &Reader{lim: lim, chunk: minChunk}
	switch r := r.(type) {
	case *bytes.Reader:
		cr.br = r
	case *bytes.Buffer:
		cr.br = r
	default:
		cr.br = bufio.NewReaderSize(r, 32<<10)
	}
	if err := cr.readHeader(); err != nil {
		return nil, err
	}
	return cr, nil
}

// Roots returns the root CIDs of the header. atproto puts the commit first.
// The slice is shared; do not modify it.
func (cr *Reader) Roots() []data.CID { return cr.roots }

// Offset returns the number of bytes read so far: the offset of the next
// section.
func (cr *Reader) Offset() int64 { return cr.off }

func (cr *Reader) fail(block int, off int64, c data.CID, cause error, format string, args ...any) error {
	e := &Error{Offset: off, Block: block, CID: c, Err: cause}
	if format != "" {
		e.Detail = fmt.Sprintf(format, args...)
	}
	return e
}

func (cr *Reader) readHeader() error {
	n, vlen, err := cr.readUvarint()
	if err != nil {
		if err == io.EOF {
			return cr.fail(-1, 0, data.CID{}, ErrTruncated, "empty input")
		}
		return cr.lengthError(-1, 0, err)
	}
	switch {
	case n == 0:
		return cr.fail(-1, 0, data.CID{}, ErrMalformed, "header length is zero")
	case n > uint64(cr.lim.MaxHeaderSize):
		return cr.fail(-1, 0, data.CID{}, ErrLimit, "header of %d bytes, limit %d", n, cr.lim.MaxHeaderSize)
	case int64(vlen)+int64(n) > cr.lim.MaxTotalSize:
		return cr.fail(-1, 0, data.CID{}, ErrLimit, "header of %d bytes exceeds the total size limit %d", n, cr.lim.MaxTotalSize)
	}
	hdr, err := cr.readN(int(n))
	if err != nil {
		return cr.bodyError(-1, 0, data.CID{}, err, int(n), len(hdr))
	}
	cr.off = int64(vlen) + int64(n)
	roots, err := parseHeader(hdr)
	if err != nil {
		var ce *data.CBORError
		if errors.As(err, &ce) {
			return cr.fail(-1, 0, data.CID{}, fmt.Errorf("%w: %w", ErrMalformed, err), "header DAG-CBOR starts at offset %d", vlen)
		}
		return cr.fail(-1, 0, data.CID{}, ErrMalformed, "%s", err.Error())
	}
	cr.roots = roots
	return nil
}

// parseHeader decodes the header map {"roots": [CID...], "version": 1}.
// Keys other than these two are skipped. An empty roots list is accepted,
// as the IPLD maintainers advise new implementations to do; a missing one
// is not.
func parseHeader(b []byte) ([]data.CID, error) {
	d := data.NewDecoder(b)
	if d.PeekKind() != data.KindMap {
		return nil, errors.New("header is not a map")
	}
	n, err := d.ReadMapHeader()
	if err != nil {
		return nil, err
	}
	var (
		prev        []byte
		roots       []data.CID
		haveRoots   bool
		version     int64
		haveVersion bool
	)
	for range n {
		key, err := d.ReadMapKey(prev)
		if err != nil {
			return nil, err
		}
		prev = key
		switch string(key) {
		case "roots":
			if d.PeekKind() != data.KindArray {
				return nil, errors.New(`header "roots" is not an array`)
			}
			cnt, err := d.ReadArrayHeader()
			if err != nil {
				return nil, err
			}
			// cnt was checked against the remaining input by the decoder.
			roots = make([]data.CID, 0, cnt)
			for range cnt {
				if d.PeekKind() != data.KindLink {
					return nil, fmt.Errorf(`header root %d is not a CID link`, len(roots))
				}
				c, err := d.ReadCID()
				if err != nil {
					return nil, err
				}
				roots = append(roots, c)
			}
			haveRoots = true
		case "version":
			if d.PeekKind() != data.KindInt {
				return nil, errors.New(`header "version" is not an integer`)
			}
			if version, err = d.ReadInt(); err != nil {
				return nil, err
			}
			haveVersion = true
		default:
			if err := d.Skip(); err != nil {
				return nil, err
			}
		}
	}
	if err := d.Finish(); err != nil {
		return nil, err
	}
	switch {
	case !haveVersion:
		return nil, errors.New(`header has no "version"`)
	case version == 2:
		return nil, errors.New("CARv2 is not supported (atproto uses CARv1)")
	case version != 1:
		return nil, fmt.Errorf("unsupported CAR version %d", version)
	case !haveRoots:
		return nil, errors.New(`header has no "roots"`)
	}
	return roots, nil
}

// Next returns the next block and its CID, after checking that the block's
// sha-256 digest matches the CID. At the end of the file it returns
// io.EOF. Every other error is an *Error; after an error Next keeps
// returning it. The returned slice is the caller's to keep; small blocks
// share a chunk of memory of at most 64 KiB with the blocks read before
// and after them, which stays alive as long as any of them is kept.
func (cr *Reader) Next() (data.CID, []byte, error) {
	if cr.err != nil {
		return data.CID{}, nil, cr.err
	}
	c, b, err := cr.next()
	if err != nil {
		cr.err = err
	}
	return c, b, err
}

func (cr *Reader) next() (data.CID, []byte, error) {
	start, idx := cr.off, cr.block
	n, vlen, err := cr.readUvarint()
	if err != nil {
		if err == io.EOF {
			return data.CID{}, nil, io.EOF
		}
		return data.CID{}, nil, cr.lengthError(idx, start, err)
	}
	switch {
	case idx >= cr.lim.MaxBlocks:
		return data.CID{}, nil, cr.fail(idx, start, data.CID{}, ErrLimit, "more than %d blocks", cr.lim.MaxBlocks)
	case n == 0:
		return data.CID{}, nil, cr.fail(idx, start, data.CID{}, ErrMalformed, "empty section")
	case n > uint64(cr.lim.MaxBlockSize)+maxCIDLen:
		return data.CID{}, nil, cr.fail(idx, start, data.CID{}, ErrLimit, "section of %d bytes, blocks are limited to %d", n, cr.lim.MaxBlockSize)
	case start+int64(vlen)+int64(n) > cr.lim.MaxTotalSize:
		return data.CID{}, nil, cr.fail(idx, start, data.CID{}, ErrLimit, "section of %d bytes takes the file past the total size limit %d", n, cr.lim.MaxTotalSize)
	}
	sec, err := cr.readN(int(n))
	if err != nil {
		return data.CID{}, nil, cr.bodyError(idx, start, data.CID{}, err, int(n), len(sec))
	}
	cr.off = start + int64(vlen) + int64(n)
	cr.block++

	c, clen, err := data.ReadCID(sec)
	if err != nil {
		return data.CID{}, nil, cr.fail(idx, start, data.CID{}, ErrMalformed, "section CID: %v", err)
	}
	blk := sec[clen:]
	if len(blk) > cr.lim.MaxBlockSize {
		return data.CID{}, nil, cr.fail(idx, start, c, ErrLimit, "block of %d bytes, limit %d", len(blk), cr.lim.MaxBlockSize)
	}
	if err := verifyBlock(c, blk); err != nil {
		return data.CID{}, nil, cr.fail(idx, start, c, err, "")
	}
	return c, blk, nil
}

// verifyBlock checks that blk hashes to c. Only sha-256 is accepted.
func verifyBlock(c data.CID, blk []byte) error {
	if c.HashCode() != data.HashSHA256 {
		return fmt.Errorf("%w: multihash code 0x%x, only sha-256 (0x12) is accepted", ErrUnsupportedHash, c.HashCode())
	}
	digest, ok := sha256Digest(c.KeyString())
	if !ok {
		return fmt.Errorf("%w: sha-256 multihash without a %d-byte digest", ErrMalformed, sha256.Size)
	}
	sum := sha256.Sum256(blk)
	if string(sum[:]) != digest {
		return ErrHashMismatch
	}
	return nil
}

// sha256Digest returns the digest of a binary CID (well-formed, as ReadCID
// checked) whose multihash is sha-256, if the digest has the full 32
// bytes. It reads the CID in place, without allocating.
func sha256Digest(key string) (string, bool) {
	i := 0
	if len(key) > 0 && key[0] == 0x01 { // CIDv1: skip the version and codec
		i = 1
		for i < len(key) && key[i]&0x80 != 0 {
			i++
		}
		i++
	}
	// Multihash: code 0x12 (one byte), length 0x20 (one byte), digest.
	if i+2 > len(key) || key[i] != data.HashSHA256 || key[i+1] != sha256.Size || len(key)-(i+2) != sha256.Size {
		return "", false
	}
	return key[i+2:], true
}

// readUvarint reads an unsigned varint (minimal, at most nine bytes). It
// returns io.EOF only when the input ends before its first byte.
func (cr *Reader) readUvarint() (uint64, int, error) {
	var v uint64
	for i := 0; i < maxVarintLen; i++ {
		c, err := cr.br.ReadByte()
		if err != nil {
			if err == io.EOF && i > 0 {
				return 0, i, io.ErrUnexpectedEOF
			}
			return 0, i, err
		}
		v |= uint64(c&0x7f) << (7 * i)
		if c < 0x80 {
			if c == 0 && i > 0 {
				return 0, i + 1, errNotMinimal
			}
			return v, i + 1, nil
		}
	}
	return 0, maxVarintLen, errVarintTooLong
}

var (
	errNotMinimal    = errors.New("length prefix is not a minimal varint")
	errVarintTooLong = errors.New("length prefix is longer than 9 bytes")
)

func (cr *Reader) lengthError(block int, off int64, err error) error {
	switch {
	case err == io.ErrUnexpectedEOF:
		return cr.fail(block, off, data.CID{}, ErrTruncated, "input ends inside the length prefix")
	case err == errNotMinimal || err == errVarintTooLong:
		return cr.fail(block, off, data.CID{}, ErrMalformed, "%s", err.Error())
	}
	return cr.fail(block, off, data.CID{}, err, "reading the length prefix")
}

func (cr *Reader) bodyError(block int, off int64, c data.CID, err error, want, got int) error {
	if err == io.EOF || err == io.ErrUnexpectedEOF {
		return cr.fail(block, off, c, ErrTruncated, "length prefix promises %d bytes, input ends after %d", want, got)
	}
	return cr.fail(block, off, c, err, "after %d of %d bytes", got, want)
}

// readN reads exactly n bytes into a new slice (cut from the arena for
// small sections). Beyond readChunk the buffer grows as bytes arrive, so
// the allocation never runs far ahead of the input actually present.
func (cr *Reader) readN(n int) ([]byte, error) {
	if n <= maxSmallBlock+maxCIDLen {
		if len(cr.arena) < n {
			cr.arena = make([]byte, max(cr.chunk, n))
			cr.chunk = min(2*cr.chunk, maxChunk)
		}
		buf := cr.arena[:n:n]
		m, err := io.ReadFull(cr.br, buf)
		cr.arena = cr.arena[n:]
		return buf[:m], err
	}
	buf := make([]byte, 0, min(n, readChunk))
	for len(buf) < n {
		if len(buf) == cap(buf) {
			grown := make([]byte, len(buf), min(n, 2*cap(buf)))
			copy(grown, buf)
			buf = grown
		}
		m, err := io.ReadFull(cr.br, buf[len(buf):cap(buf)])
		buf = buf[:len(buf)+m]
		if err != nil {
			return buf, err
		}
	}
	return buf, nil
}
