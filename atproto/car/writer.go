package car

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"

	"github.com/welkin-atproto/welkin/atproto/data"
)

// Writer writes a CARv1 file block by block, through a buffer of fixed
// size (none when writing to a *bytes.Buffer): memory use does not grow
// with the file. Call Flush (or Close) at the end.
type Writer struct {
	bw  *bufio.Writer // nil when writing straight to buf
	buf *bytes.Buffer
	err error // sticky
	tmp [binary.MaxVarintLen64]byte
}

// NewWriter writes the header of a CARv1 file with the given roots (for
// atproto, the commit CID first) and returns a Writer for its blocks.
// The header is only buffered until the first Flush or until the buffer
// fills.
func NewWriter(w io.Writer, roots ...data.CID) (*Writer, error) {
	hdr, err := encodeHeader(roots)
	if err != nil {
		return nil, err
	}
	cw := &Writer{}
	if b, ok := w.(*bytes.Buffer); ok {
		// A bytes.Buffer gains nothing from another buffer in front.
		cw.buf = b
	} else {
		cw.bw = bufio.NewWriterSize(w, 64<<10)
	}
	cw.writeSection("", hdr)
	if cw.err != nil {
		return nil, cw.err
	}
	return cw, nil
}

// encodeHeader writes {"roots": [...], "version": 1} in DAG-CBOR.
func encodeHeader(roots []data.CID) ([]byte, error) {
	e := data.NewEncoder(make([]byte, 0, 16+40*len(roots)))
	if err := e.WriteMapHeader(2); err != nil {
		return nil, err
	}
	if err := e.WriteKey("roots"); err != nil {
		return nil, err
	}
	if err := e.WriteArrayHeader(len(roots)); err != nil {
		return nil, err
	}
	for i, c := range roots {
		if err := e.WriteCID(c); err != nil {
			return nil, fmt.Errorf("car: root %d: %w", i, err)
		}
	}
	if err := e.WriteKey("version"); err != nil {
		return nil, err
	}
	if err := e.WriteInt(1); err != nil {
		return nil, err
	}
	return e.Bytes(), nil
}

// WriteBlock appends a block. The caller vouches that c is the CID of b:
// the Writer does not hash blocks (a Reader will refuse a block that does
// not match). The Writer does not keep b.
func (cw *Writer) WriteBlock(c data.CID, b []byte) error {
	if cw.err != nil {
		return cw.err
	}
	if !c.Defined() {
		return errors.New("car: WriteBlock with an undefined CID")
	}
	cw.writeSection(c.KeyString(), b)
	return cw.err
}

// writeSection writes varint(len(a)+len(b)) a b.
func (cw *Writer) writeSection(a string, b []byte) {
	n := binary.PutUvarint(cw.tmp[:], uint64(len(a)+len(b)))
	if cw.buf != nil {
		cw.buf.Grow(n + len(a) + len(b))
		cw.buf.Write(cw.tmp[:n])
		cw.buf.WriteString(a)
		cw.buf.Write(b)
		return
	}
	if _, err := cw.bw.Write(cw.tmp[:n]); err != nil {
		cw.err = err
		return
	}
	if _, err := cw.bw.WriteString(a); err != nil {
		cw.err = err
		return
	}
	if _, err := cw.bw.Write(b); err != nil {
		cw.err = err
	}
}

// Flush writes any buffered data to the underlying writer.
func (cw *Writer) Flush() error {
	if cw.err != nil {
		return cw.err
	}
	if cw.bw != nil {
		cw.err = cw.bw.Flush()
	}
	return cw.err
}

// Close flushes the Writer. It does not close the underlying writer.
func (cw *Writer) Close() error { return cw.Flush() }

// ReadAll reads a whole CAR file into memory: its roots and its blocks by
// CID. A block that appears more than once is kept once (its copies are
// identical, since every block is checked against its CID). The limits
// bound the memory used.
func ReadAll(r io.Reader, lim Limits) (roots []data.CID, blocks map[data.CID][]byte, err error) {
	cr, err := NewReader(r, lim)
	if err != nil {
		return nil, nil, err
	}
	blocks = make(map[data.CID][]byte)
	for {
		c, b, err := cr.Next()
		if err == io.EOF {
			return cr.Roots(), blocks, nil
		}
		if err != nil {
			return nil, nil, err
		}
		if _, dup := blocks[c]; !dup {
			blocks[c] = b
		}
	}
}

// WriteAll writes a CAR file with the given roots and blocks: first the
// blocks of the roots, in the order of roots, then the others in the order
// of their binary CIDs, so that the same input always gives the same
// bytes. Roots need not be among the blocks.
func WriteAll(w io.Writer, roots []data.CID, blocks map[data.CID][]byte) error {
	cw, err := NewWriter(w, roots...)
	if err != nil {
		return err
	}
	written := make(map[data.CID]bool, len(roots))
	for _, c := range roots {
		b, ok := blocks[c]
		if !ok || written[c] {
			continue
		}
		if err := cw.WriteBlock(c, b); err != nil {
			return err
		}
		written[c] = true
	}
	rest := make([]data.CID, 0, len(blocks))
	for c := range blocks {
		if !written[c] {
			rest = append(rest, c)
		}
	}
	slices.SortFunc(rest, func(a, b data.CID) int { return strings.Compare(a.KeyString(), b.KeyString()) })
	for _, c := range rest {
		if err := cw.WriteBlock(c, blocks[c]); err != nil {
			return err
		}
	}
	return cw.Flush()
}
