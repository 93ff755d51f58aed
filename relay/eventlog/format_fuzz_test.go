package eventlog

import (
	"bytes"
	"errors"
	"testing"
)

func seedRecords() [][]byte {
	var seeds [][]byte
	for _, seq := range []int64{1, 2, 64, MaxSeq} {
		seeds = append(seeds, appendRecord(nil, seq, 1_700_000_000_000_000, string(didFor(seq)), frameFor(seq)))
	}
	two := appendRecord(nil, 7, 1, "did:plc:x", []byte("a"))
	two = appendRecord(two, 8, 2, "", nil)
	return append(seeds, two, two[:len(two)-1], two[:recHeaderSize-1], make([]byte, recHeaderSize))
}

// FuzzDecodeRecord: decodeRecord never panics, never reads past its input,
// and what it accepts re-encodes to the same bytes.
func FuzzDecodeRecord(f *testing.F) {
	for _, s := range seedRecords() {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		r, n, err := decodeRecord(b)
		if err != nil {
			var re *recordError
			if !errors.Is(err, errIncomplete) && !errors.As(err, &re) {
				t.Fatalf("unexpected error type %T: %v", err, err)
			}
			if errors.Is(err, errIncomplete) && n != 0 && n <= len(b) {
				t.Fatalf("incomplete, yet the record's %d bytes are all there in %d", n, len(b))
			}
			return
		}
		if n < recHeaderSize || n > len(b) {
			t.Fatalf("record length %d for %d bytes", n, len(b))
		}
		again := appendRecord(nil, r.seq, r.micros, string(r.did), r.frame)
		if !bytes.Equal(again, b[:n]) {
			t.Fatalf("re-encoding differs:\n got %x\nwant %x", again, b[:n])
		}
	})
}

// FuzzScanSegment: scanning any file never panics, stops at a record
// boundary inside the file, and indexes exactly the records before it.
func FuzzScanSegment(f *testing.F) {
	hdr := segHeader(7)
	f.Add(hdr)
	f.Add(hdr[:9])
	body := append([]byte(nil), hdr...)
	for seq := int64(7); seq < 12; seq++ {
		body = appendRecord(body, seq, seq*10, string(didFor(seq)), frameFor(seq))
	}
	f.Add(body)
	f.Add(body[:len(body)-3])
	f.Add(append(append([]byte(nil), body...), 0, 0, 0))
	f.Add(appendRecord(append([]byte(nil), hdr...), 8, 0, "", nil)) // seq out of order
	f.Fuzz(func(t *testing.T, b []byte) {
		s := newSegment("", 7)
		s.active = true
		end, stop := s.scan(bytes.NewReader(b), int64(len(b)))
		if end > int64(len(b)) {
			t.Fatalf("end %d past the %d bytes", end, len(b))
		}
		if end == 0 {
			if stop == nil {
				t.Fatal("no header, and no error")
			}
			return
		}
		if (stop == nil) != (end == int64(len(b))) {
			t.Fatalf("stopped at %d of %d with error %v", end, len(b), stop)
		}
		if s.size != end || int64(len(s.offs)) != s.last-s.first+1 {
			t.Fatalf("size %d, end %d, %d offsets for seqs %d..%d", s.size, end, len(s.offs), s.first, s.last)
		}
		for i, off := range s.offs {
			r, _, err := decodeRecord(b[off:end])
			if err != nil || r.seq != s.first+int64(i) {
				t.Fatalf("indexed record %d at %d: seq %d, %v", i, off, r.seq, err)
			}
		}
	})
}

// FuzzDecodeSidecar: a sidecar that decodes describes a consistent segment
// and re-encodes to the same bytes.
func FuzzDecodeSidecar(f *testing.F) {
	s := newSegment("", 1)
	off := int64(segHeaderSize)
	for seq := int64(1); seq <= 200; seq++ {
		s.add(uint32(off), seq, 1000+seq)
		off += int64(recordSize(10, 20))
		s.size = off
	}
	good := encodeSidecar(s.sidecar())
	f.Add(good, int64(1))
	f.Add(good[:len(good)-1], int64(1))
	f.Add(good, int64(2))
	f.Fuzz(func(t *testing.T, b []byte, first int64) {
		sc, err := decodeSidecar(b, first)
		if err != nil {
			return
		}
		if sc.first != first || sc.last < sc.first || len(sc.offs) != len(sc.micros) ||
			int64(len(sc.offs)) != sparseCount(sc.first, sc.last) {
			t.Fatalf("inconsistent sidecar %+v", sc)
		}
		for i := 1; i < len(sc.offs); i++ {
			if sc.offs[i] <= sc.offs[i-1] || int64(sc.offs[i]) >= sc.size {
				t.Fatalf("offsets out of order: %v", sc.offs)
			}
		}
		if !bytes.Equal(encodeSidecar(sc), b) {
			t.Fatal("re-encoding differs")
		}
	})
}
