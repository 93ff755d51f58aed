package eventlog

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
)

// indexStride is the distance, in records, between the index entries of a
// sealed segment: Since reads at most indexStride-1 records it does not
// return, and the index costs 12 bytes per indexStride records.
const indexStride = 64

const (
	segExt = ".seg"
	idxExt = ".idx"
	tmpExt = ".tmp"
)

// segName is the file name of the segment whose first seq is first: the
// seq zero-padded to 20 digits, so that names sort as numbers do.
func segName(first int64) string { return fmt.Sprintf("%020d", first) }

// parseSegName returns the first seq a segment or sidecar file name gives.
func parseSegName(name, ext string) (int64, bool) {
	base, ok := strings.CutSuffix(name, ext)
	if !ok || len(base) != 20 {
		return 0, false
	}
	n, err := strconv.ParseInt(base, 10, 64)
	if err != nil || n < 1 || n > MaxSeq {
		return 0, false
	}
	return n, true
}

// segment is one segment file and its in-memory index. first, path and r
// are fixed; the other fields are guarded by Log.mu and written only by
// the holder of Log.appendMu (or by Open).
type segment struct {
	first int64
	path  string
	r     *os.File     // read handle, shared by readers (ReadAt)
	refs  atomic.Int32 // one for the Log's list, one per reader in flight

	last                    int64 // seq of the last record written; first-1 when empty
	size                    int64 // bytes written, header included
	firstMicros, lastMicros int64

	// The sparse index: entry k is the record with seq first+k*indexStride.
	sparseOff    []uint32
	sparseMicros []int64

	// offs has every record's offset while the segment is the active one,
	// so that live readers start reading exactly where they left off. It
	// is dropped when the segment is sealed.
	offs   []uint32
	active bool
}

func newSegment(dir string, first int64) *segment {
	s := &segment{first: first, last: first - 1, size: segHeaderSize,
		path: filepath.Join(dir, segName(first)+segExt)}
	s.refs.Store(1)
	return s
}

func (s *segment) idxPath() string { return strings.TrimSuffix(s.path, segExt) + idxExt }

func (s *segment) empty() bool { return s.last < s.first }

func (s *segment) acquire() { s.refs.Add(1) }

// release drops a reference; the last one closes the read handle.
func (s *segment) release() {
	if s.refs.Add(-1) == 0 && s.r != nil {
		s.r.Close()
	}
}

// add indexes the record of seq written at off.
func (s *segment) add(off uint32, seq, micros int64) {
	if s.empty() {
		s.firstMicros = micros
	}
	if (seq-s.first)%indexStride == 0 {
		s.sparseOff = append(s.sparseOff, off)
		s.sparseMicros = append(s.sparseMicros, micros)
	}
	if s.active {
		s.offs = append(s.offs, off)
	}
	s.last, s.lastMicros = seq, micros
}

// startOf returns where to start reading to find seq: the offset of a
// record at or before it, and that record's seq.
func (s *segment) startOf(seq int64) (int64, int64) {
	if s.offs != nil {
		return int64(s.offs[seq-s.first]), seq
	}
	k := (seq - s.first) / indexStride
	return int64(s.sparseOff[k]), s.first + k*indexStride
}

// endOf returns an offset at or after the end of the record of seq, and
// not past the end of the segment.
func (s *segment) endOf(seq int64) int64 {
	if seq >= s.last {
		return s.size
	}
	if s.offs != nil {
		return int64(s.offs[seq+1-s.first])
	}
	k := (seq + 1 - s.first + indexStride - 1) / indexStride
	if k < int64(len(s.sparseOff)) {
		return int64(s.sparseOff[k])
	}
	return s.size
}

func (s *segment) sidecar() *sidecar {
	return &sidecar{first: s.first, last: s.last, size: s.size,
		firstMicros: s.firstMicros, lastMicros: s.lastMicros,
		offs: s.sparseOff, micros: s.sparseMicros}
}

func (s *segment) loadSidecar(sc *sidecar) {
	s.last, s.size = sc.last, sc.size
	s.firstMicros, s.lastMicros = sc.firstMicros, sc.lastMicros
	s.sparseOff, s.sparseMicros = sc.offs, sc.micros
}

// scanChunk is how much a scan reads at a time.
const scanChunk = 1 << 20

// scan reads a segment's records from the start, checking every checksum,
// that seqs run on from s.first and that times never decrease, and
// indexes them. It returns the offset after the last valid record and,
// when the file does not end there, why the next bytes are not a record.
func (s *segment) scan(r io.ReaderAt, size int64) (end int64, stop error) {
	hdr := make([]byte, segHeaderSize)
	if n, err := r.ReadAt(hdr, 0); n < segHeaderSize {
		if err == nil || errors.Is(err, io.EOF) {
			err = fmt.Errorf("header is %d bytes, want %d", n, segHeaderSize)
		}
		return 0, err
	}
	if err := checkSegHeader(hdr, s.first); err != nil {
		return 0, err
	}
	off := int64(segHeaderSize)
	buf := make([]byte, 0, scanChunk)
	bufOff := off // file offset of buf[0]
	for {
		p := buf[off-bufOff:]
		r0, n, err := decodeRecord(p)
		if errors.Is(err, errIncomplete) {
			if bufOff+int64(len(buf)) >= size {
				if len(p) == 0 {
					return off, nil
				}
				return off, fmt.Errorf("torn record at offset %d: %d bytes of %s", off, len(p), needString(n))
			}
			// Move the partial record to the front and read more.
			want := max(scanChunk, n)
			if int64(want) > size-off {
				want = int(size - off)
			}
			nb := buf[:0]
			if cap(nb) < want {
				nb = make([]byte, 0, want)
			}
			nb = append(nb[:0], p...) // copy within or into a new buffer; p is at or after nb's start
			m, rerr := r.ReadAt(nb[len(p):want], off+int64(len(p)))
			nb = nb[:len(p)+m]
			if m == 0 && rerr != nil {
				return off, fmt.Errorf("reading at offset %d: %w", off+int64(len(p)), rerr)
			}
			buf, bufOff = nb, off
			continue
		}
		if err != nil {
			return off, fmt.Errorf("invalid record at offset %d: %w", off, err)
		}
		want := s.last + 1
		switch {
		case r0.seq != want:
			return off, fmt.Errorf("record at offset %d has seq %d, want %d", off, r0.seq, want)
		case !s.empty() && r0.micros < s.lastMicros:
			return off, fmt.Errorf("record at offset %d has a time before its predecessor's", off)
		case off+int64(n) > maxFileOffset:
			return off, fmt.Errorf("record at offset %d ends past the largest segment offset", off)
		}
		s.add(uint32(off), r0.seq, r0.micros)
		off += int64(n)
		s.size = off
	}
}

func needString(n int) string {
	if n == 0 {
		return "a record header"
	}
	return strconv.Itoa(n)
}
