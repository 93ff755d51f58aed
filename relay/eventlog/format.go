package eventlog

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"slices"

	"github.com/welkin-atproto/welkin/atproto/stream"
	"github.com/welkin-atproto/welkin/atproto/syntax"
)

// On-disk layout. All integers are little-endian.
//
// A segment file starts with a 16-byte header, segMagic then the seq of its
// first record (which is also the file's name), followed by records:
//
//	off  size
//	 0    4   CRC-32C (Castagnoli) of bytes 4 .. end of record
//	 4    4   frame length
//	 8    8   seq
//	16    8   time, Unix microseconds
//	24    2   DID length
//	26    -   DID bytes, then frame bytes
//
// The checksum covers the lengths, so a torn or corrupted length is caught
// as surely as a torn frame.
const (
	segMagic      = "WKEVSEG1"
	segHeaderSize = 16
	recHeaderSize = 26

	// maxFileOffset bounds a record's end offset in a segment file, so that
	// offsets fit the uint32 index entries. Open never makes a segment
	// larger than MaxSegmentSize plus one batch (MaxBatchBytes).
	maxFileOffset = 1<<32 - 1
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// errIncomplete says that a buffer ends inside a record: at the end of a
// file it is a torn write, in the middle of a read it means "read more".
var errIncomplete = errors.New("incomplete record")

// recordError says why bytes are not a valid record.
type recordError struct{ reason string }

func (e *recordError) Error() string { return e.reason }

// rec is a decoded record; did and frame alias the buffer it came from.
type rec struct {
	seq    int64
	micros int64
	did    []byte
	frame  []byte
}

// recordSize is the encoded size of a record.
func recordSize(didLen, frameLen int) int { return recHeaderSize + didLen + frameLen }

// appendRecord appends the encoding of one record to b.
func appendRecord(b []byte, seq, micros int64, did string, frame []byte) []byte {
	start := len(b)
	b = slices.Grow(b, recordSize(len(did), len(frame)))
	b = b[:start+recHeaderSize]
	h := b[start:]
	binary.LittleEndian.PutUint32(h[4:], uint32(len(frame)))
	binary.LittleEndian.PutUint64(h[8:], uint64(seq))
	binary.LittleEndian.PutUint64(h[16:], uint64(micros))
	binary.LittleEndian.PutUint16(h[24:], uint16(len(did)))
	b = append(b, did...)
	b = append(b, frame...)
	binary.LittleEndian.PutUint32(b[start:], crc32.Checksum(b[start+4:], castagnoli))
	return b
}

// recordNeed returns the total size of the record whose header starts b,
// or an error when the header's lengths are out of bounds. b must hold at
// least recHeaderSize bytes.
func recordNeed(b []byte) (int, error) {
	frameLen := binary.LittleEndian.Uint32(b[4:])
	didLen := binary.LittleEndian.Uint16(b[24:])
	if frameLen > stream.MaxFrameSize {
		return 0, &recordError{fmt.Sprintf("frame length %d exceeds the maximum of %d", frameLen, stream.MaxFrameSize)}
	}
	if int(didLen) > syntax.DIDMaxLength {
		return 0, &recordError{fmt.Sprintf("DID length %d exceeds the maximum of %d", didLen, syntax.DIDMaxLength)}
	}
	return recordSize(int(didLen), int(frameLen)), nil
}

// decodeRecord decodes the record at the start of b and returns it with
// its encoded length. A b that ends inside a record gives errIncomplete
// (with the record's full length as n when the header is complete); bytes
// that cannot be a record give a *recordError.
func decodeRecord(b []byte) (r rec, n int, err error) {
	if len(b) < recHeaderSize {
		return rec{}, 0, errIncomplete
	}
	n, err = recordNeed(b)
	if err != nil {
		return rec{}, 0, err
	}
	if len(b) < n {
		return rec{}, n, errIncomplete
	}
	if crc32.Checksum(b[4:n], castagnoli) != binary.LittleEndian.Uint32(b) {
		return rec{}, 0, &recordError{"checksum mismatch"}
	}
	didLen := int(binary.LittleEndian.Uint16(b[24:]))
	r.seq = int64(binary.LittleEndian.Uint64(b[8:]))
	r.micros = int64(binary.LittleEndian.Uint64(b[16:]))
	r.did = b[recHeaderSize : recHeaderSize+didLen : recHeaderSize+didLen]
	r.frame = b[recHeaderSize+didLen : n : n]
	return r, n, nil
}

// segHeader returns the header of the segment whose first seq is first.
func segHeader(first int64) []byte {
	b := make([]byte, segHeaderSize)
	copy(b, segMagic)
	binary.LittleEndian.PutUint64(b[8:], uint64(first))
	return b
}

// checkSegHeader checks a segment header against the first seq its file
// name gives.
func checkSegHeader(b []byte, first int64) error {
	if len(b) < segHeaderSize {
		return fmt.Errorf("header is %d bytes, want %d", len(b), segHeaderSize)
	}
	if string(b[:8]) != segMagic {
		return fmt.Errorf("bad magic %q", b[:8])
	}
	if got := int64(binary.LittleEndian.Uint64(b[8:])); got != first {
		return fmt.Errorf("header says first seq %d, file name says %d", got, first)
	}
	return nil
}

// A sidecar index file (NAME.idx beside NAME.seg) is written when a segment
// is sealed, so that Open need not scan closed segments:
//
//	idxMagic, first, last, size, firstMicros, lastMicros (8 bytes each),
//	count (4), count entries of {offset uint32, micros int64},
//	CRC-32C of everything before it (4).
//
// Entry k describes the record with seq first+k*indexStride. A sidecar that
// does not check out is ignored and the segment is scanned instead.
const (
	idxMagic      = "WKEVIDX1"
	idxHeaderSize = 52
	idxEntrySize  = 12
)

// sidecar is the index of a sealed segment.
type sidecar struct {
	first, last             int64
	size                    int64 // the segment file's size
	firstMicros, lastMicros int64
	offs                    []uint32
	micros                  []int64
}

func encodeSidecar(s *sidecar) []byte {
	b := make([]byte, idxHeaderSize, idxHeaderSize+idxEntrySize*len(s.offs)+4)
	copy(b, idxMagic)
	le := binary.LittleEndian
	le.PutUint64(b[8:], uint64(s.first))
	le.PutUint64(b[16:], uint64(s.last))
	le.PutUint64(b[24:], uint64(s.size))
	le.PutUint64(b[32:], uint64(s.firstMicros))
	le.PutUint64(b[40:], uint64(s.lastMicros))
	le.PutUint32(b[48:], uint32(len(s.offs)))
	for i, off := range s.offs {
		b = le.AppendUint32(b, off)
		b = le.AppendUint64(b, uint64(s.micros[i]))
	}
	return le.AppendUint32(b, crc32.Checksum(b, castagnoli))
}

// sparseCount is how many index entries a segment holding the seqs
// first..last has.
func sparseCount(first, last int64) int64 {
	if last < first {
		return 0
	}
	return (last-first)/indexStride + 1
}

// decodeSidecar parses and checks a sidecar for the segment whose first seq
// is first.
func decodeSidecar(b []byte, first int64) (*sidecar, error) {
	if len(b) < idxHeaderSize+4 {
		return nil, errors.New("sidecar too short")
	}
	le := binary.LittleEndian
	if crc32.Checksum(b[:len(b)-4], castagnoli) != le.Uint32(b[len(b)-4:]) {
		return nil, errors.New("sidecar checksum mismatch")
	}
	if string(b[:8]) != idxMagic {
		return nil, errors.New("sidecar has a bad magic")
	}
	s := &sidecar{
		first:       int64(le.Uint64(b[8:])),
		last:        int64(le.Uint64(b[16:])),
		size:        int64(le.Uint64(b[24:])),
		firstMicros: int64(le.Uint64(b[32:])),
		lastMicros:  int64(le.Uint64(b[40:])),
	}
	count := int64(le.Uint32(b[48:]))
	switch {
	case s.first != first:
		return nil, fmt.Errorf("sidecar is for first seq %d, not %d", s.first, first)
	case s.last < s.first || s.last > MaxSeq:
		return nil, fmt.Errorf("sidecar has last seq %d for first seq %d", s.last, s.first)
	case s.size <= segHeaderSize || s.size > maxFileOffset:
		return nil, fmt.Errorf("sidecar has segment size %d", s.size)
	case s.firstMicros > s.lastMicros:
		return nil, errors.New("sidecar times go backwards")
	case count != sparseCount(s.first, s.last):
		return nil, fmt.Errorf("sidecar has %d entries for seqs %d..%d", count, s.first, s.last)
	case int64(len(b)) != idxHeaderSize+idxEntrySize*count+4:
		return nil, fmt.Errorf("sidecar is %d bytes for %d entries", len(b), count)
	}
	s.offs = make([]uint32, count)
	s.micros = make([]int64, count)
	prevOff, prevMicros := int64(segHeaderSize)-1, s.firstMicros
	for i := range count {
		e := b[idxHeaderSize+idxEntrySize*i:]
		off, micros := le.Uint32(e), int64(le.Uint64(e[4:]))
		if int64(off) <= prevOff || int64(off) >= s.size || micros < prevMicros || micros > s.lastMicros {
			return nil, fmt.Errorf("sidecar entry %d is out of order", i)
		}
		if i == 0 && (off != segHeaderSize || micros != s.firstMicros) {
			return nil, errors.New("sidecar's first entry is not the first record")
		}
		s.offs[i], s.micros[i] = off, micros
		prevOff, prevMicros = int64(off), micros
	}
	return s, nil
}
