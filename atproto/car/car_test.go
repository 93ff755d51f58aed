package car

import (
	"bytes"
	"crypto/sha512"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"strings"
	"testing"

	"github.com/welkin-atproto/welkin/atproto/data"
)

// testBlocks returns n small DAG-CBOR blocks and their CIDs, in order.
func testBlocks(t testing.TB, n int) ([]data.CID, [][]byte) {
	t.Helper()
	cids := make([]data.CID, n)
	blks := make([][]byte, n)
	for i := range n {
		b, err := data.MarshalCBOR(map[string]any{"$type": "test.record", "i": int64(i), "text": fmt.Sprintf("block number %d", i)})
		if err != nil {
			t.Fatal(err)
		}
		cids[i], blks[i] = data.CIDForCBOR(b), b
	}
	return cids, blks
}

func writeCAR(t testing.TB, roots []data.CID, cids []data.CID, blks [][]byte) []byte {
	t.Helper()
	var buf bytes.Buffer
	w, err := NewWriter(&buf, roots...)
	if err != nil {
		t.Fatal(err)
	}
	for i := range cids {
		if err := w.WriteBlock(cids[i], blks[i]); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func TestRoundTrip(t *testing.T) {
	cids, blks := testBlocks(t, 50)
	raw := []byte("a blob, raw codec")
	cids = append(cids, data.CIDForRaw(raw))
	blks = append(blks, raw)
	empty := []byte{}
	cids = append(cids, data.CIDForRaw(empty))
	blks = append(blks, empty)

	car := writeCAR(t, cids[:2], cids, blks)
	r, err := NewReader(bytes.NewReader(car), Limits{})
	if err != nil {
		t.Fatal(err)
	}
	if got := r.Roots(); len(got) != 2 || got[0] != cids[0] || got[1] != cids[1] {
		t.Fatalf("roots = %v", got)
	}
	for i := 0; ; i++ {
		c, b, err := r.Next()
		if err == io.EOF {
			if i != len(cids) {
				t.Fatalf("read %d blocks, want %d", i, len(cids))
			}
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		if c != cids[i] || !bytes.Equal(b, blks[i]) {
			t.Fatalf("block %d: got %s %x", i, c, b)
		}
	}
	// EOF is sticky.
	if _, _, err := r.Next(); err != io.EOF {
		t.Fatalf("second Next after the end: %v", err)
	}
	if r.Offset() != int64(len(car)) {
		t.Fatalf("Offset = %d, want %d", r.Offset(), len(car))
	}
}

// TestHeaderBytes checks the writer against a header and section built by
// hand from the CARv1 specification.
func TestHeaderBytes(t *testing.T) {
	blk := []byte{0xa1, 0x61, 0x61, 0x01} // {"a": 1}
	c := data.CIDForCBOR(blk)
	got := writeCAR(t, []data.CID{c}, []data.CID{c}, [][]byte{blk})

	var hdr []byte
	hdr = append(hdr, 0xa2)             // map(2)
	hdr = append(hdr, 0x65)             // text(5)
	hdr = append(hdr, "roots"...)       //
	hdr = append(hdr, 0x81, 0xd8, 0x2a) // array(1), tag(42)
	hdr = append(hdr, 0x58, 0x25, 0x00) // bytes(37), identity multibase prefix
	hdr = append(hdr, c.Bytes()...)     //
	hdr = append(hdr, 0x67)             // text(7)
	hdr = append(hdr, "version"...)     //
	hdr = append(hdr, 0x01)             // 1
	want := append([]byte{byte(len(hdr))}, hdr...)
	want = append(want, byte(36+len(blk)))
	want = append(want, c.Bytes()...)
	want = append(want, blk...)
	if !bytes.Equal(got, want) {
		t.Fatalf("got  %x\nwant %x", got, want)
	}
	if hdr[0] != 0xa2 || len(hdr) != 58 {
		t.Fatalf("header length %d", len(hdr))
	}
}

func TestReadAllDuplicatesAndExtras(t *testing.T) {
	cids, blks := testBlocks(t, 5)
	// Unordered, duplicated, and a root whose block is absent.
	order := []int{3, 0, 3, 4, 1, 0, 2}
	var oc []data.CID
	var ob [][]byte
	for _, i := range order {
		oc = append(oc, cids[i])
		ob = append(ob, blks[i])
	}
	missing := data.CIDForCBOR([]byte{0xf6})
	car := writeCAR(t, []data.CID{missing, cids[2]}, oc, ob)
	roots, blocks, err := ReadAll(bytes.NewReader(car), Limits{})
	if err != nil {
		t.Fatal(err)
	}
	if len(roots) != 2 || roots[0] != missing || roots[1] != cids[2] {
		t.Fatalf("roots = %v", roots)
	}
	if len(blocks) != 5 {
		t.Fatalf("%d blocks, want 5", len(blocks))
	}
	for i, c := range cids {
		if !bytes.Equal(blocks[c], blks[i]) {
			t.Fatalf("block %s differs", c)
		}
	}
}

func TestWriteAllDeterministic(t *testing.T) {
	cids, blks := testBlocks(t, 30)
	m := make(map[data.CID][]byte)
	for i := range cids {
		m[cids[i]] = blks[i]
	}
	roots := []data.CID{cids[17], cids[17], cids[3]}
	var a, b bytes.Buffer
	if err := WriteAll(&a, roots, m); err != nil {
		t.Fatal(err)
	}
	if err := WriteAll(&b, roots, m); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(a.Bytes(), b.Bytes()) {
		t.Fatal("WriteAll is not deterministic")
	}
	r, err := NewReader(bytes.NewReader(a.Bytes()), Limits{})
	if err != nil {
		t.Fatal(err)
	}
	var got []data.CID
	for {
		c, _, err := r.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, c)
	}
	if len(got) != 30 || got[0] != cids[17] || got[1] != cids[3] {
		t.Fatalf("root blocks not first, once each: %v", got[:3])
	}
	for i := 3; i < len(got); i++ {
		if got[i-1].KeyString() >= got[i].KeyString() {
			t.Fatalf("blocks %d and %d out of order", i-1, i)
		}
	}
}

func TestEmptyRoots(t *testing.T) {
	cids, blks := testBlocks(t, 1)
	car := writeCAR(t, nil, cids, blks)
	roots, blocks, err := ReadAll(bytes.NewReader(car), Limits{})
	if err != nil {
		t.Fatal(err)
	}
	if len(roots) != 0 || len(blocks) != 1 {
		t.Fatalf("roots %v, %d blocks", roots, len(blocks))
	}
}

// readErr reads a whole CAR and returns the error, which must be an *Error.
func readErr(t *testing.T, car []byte, lim Limits) *Error {
	t.Helper()
	_, _, err := ReadAll(bytes.NewReader(car), lim)
	if err == nil {
		t.Fatal("read succeeded, want an error")
	}
	var ce *Error
	if !errors.As(err, &ce) {
		t.Fatalf("error %v (%T) is not a *car.Error", err, err)
	}
	return ce
}

func TestHashMismatch(t *testing.T) {
	cids, blks := testBlocks(t, 3)
	car := writeCAR(t, cids[:1], cids, blks)
	// Flip the last byte of the file: it belongs to block 2.
	car[len(car)-1] ^= 1
	e := readErr(t, car, Limits{})
	if !errors.Is(e, ErrHashMismatch) || e.Block != 2 || e.CID != cids[2] {
		t.Fatalf("got %v", e)
	}
	wantOff := int64(len(car) - len(blks[2]) - 36 - 1)
	if e.Offset != wantOff {
		t.Fatalf("offset %d, want %d", e.Offset, wantOff)
	}
	if !strings.Contains(e.Error(), "block 2") || !strings.Contains(e.Error(), cids[2].String()) {
		t.Fatalf("message %q lacks the block index or CID", e.Error())
	}
}

func TestUnsupportedHash(t *testing.T) {
	blk := []byte{0xf6}
	sum := sha512.Sum512(blk)
	c := data.NewCIDv1(data.CodecDagCBOR, 0x13, sum[:]) // sha2-512
	car := writeCAR(t, []data.CID{c}, []data.CID{c}, [][]byte{blk})
	e := readErr(t, car, Limits{})
	if !errors.Is(e, ErrUnsupportedHash) || e.Block != 0 {
		t.Fatalf("got %v", e)
	}
}

func TestTruncated(t *testing.T) {
	cids, blks := testBlocks(t, 4)
	car := writeCAR(t, cids[:1], cids, blks)
	// Section boundaries: after the header and after each block.
	bounds := map[int]bool{}
	off := 0
	for {
		n, k := binary.Uvarint(car[off:])
		off += k + int(n)
		bounds[off] = true
		if off >= len(car) {
			break
		}
	}
	for cut := 0; cut < len(car); cut++ {
		_, blocks, err := ReadAll(bytes.NewReader(car[:cut]), Limits{})
		if bounds[cut] {
			if err != nil {
				t.Fatalf("cut at section boundary %d: %v", cut, err)
			}
			continue
		}
		var ce *Error
		if !errors.As(err, &ce) || !errors.Is(err, ErrTruncated) {
			t.Fatalf("cut at %d: got %v (%d blocks), want a truncation error", cut, err, len(blocks))
		}
		if ce.Offset > int64(cut) {
			t.Fatalf("cut at %d: error offset %d past the end", cut, ce.Offset)
		}
	}
	// The message names the block and the offset of its section.
	_, _, err := ReadAll(bytes.NewReader(car[:len(car)-2]), Limits{})
	start := len(car) - (36 + len(blks[3])) - 1
	want := fmt.Sprintf("car: block 3 at offset %d: truncated: length prefix promises %d bytes, input ends after %d", start, 36+len(blks[3]), 36+len(blks[3])-2)
	if err == nil || err.Error() != want {
		t.Fatalf("got  %v\nwant %s", err, want)
	}
}

func TestLimits(t *testing.T) {
	cids, blks := testBlocks(t, 10)
	car := writeCAR(t, cids[:1], cids, blks)
	big := 0
	for _, b := range blks {
		big = max(big, len(b))
	}
	for _, tc := range []struct {
		name string
		lim  Limits
	}{
		{"block size", Limits{MaxBlockSize: big - 1}},
		{"total size", Limits{MaxTotalSize: int64(len(car) - 1)}},
		{"blocks", Limits{MaxBlocks: 9}},
		{"header size", Limits{MaxHeaderSize: 10}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := readErr(t, car, tc.lim)
			if !errors.Is(e, ErrLimit) {
				t.Fatalf("got %v, want a limit error", e)
			}
		})
	}
	// Exactly at the limits is fine.
	lim := Limits{MaxBlockSize: big, MaxTotalSize: int64(len(car)), MaxBlocks: 10}
	if _, _, err := ReadAll(bytes.NewReader(car), lim); err != nil {
		t.Fatal(err)
	}
	if _, err := NewReader(bytes.NewReader(car), Limits{MaxBlocks: -1}); err == nil {
		t.Fatal("negative limit accepted")
	}
	c := CommitLimits()
	if c.MaxTotalSize != 2_000_000 || c.MaxBlockSize != 1_000_000 {
		t.Fatalf("CommitLimits = %+v", c)
	}
}

// TestHugeLengthPrefix checks that a length prefix promising far more than
// the input holds is refused before anything is allocated for it.
func TestHugeLengthPrefix(t *testing.T) {
	cids, blks := testBlocks(t, 1)
	car := writeCAR(t, cids, nil, nil)
	_ = blks
	huge := binary.AppendUvarint(append([]byte{}, car...), 1<<62)
	allocs := testing.AllocsPerRun(10, func() {
		_, _, err := ReadAll(bytes.NewReader(huge), Limits{})
		if !errors.Is(err, ErrLimit) {
			t.Fatalf("got %v", err)
		}
	})
	if allocs > 50 {
		t.Fatalf("%v allocations for a refused prefix", allocs)
	}
	// Within the limits but beyond the input: a truncation error.
	short := binary.AppendUvarint(append([]byte{}, car...), DefaultMaxBlockSize)
	short = append(short, cids[0].Bytes()...)
	e := readErr(t, short, Limits{})
	if !errors.Is(e, ErrTruncated) || e.Block != 0 {
		t.Fatalf("got %v", e)
	}
}

func TestMalformed(t *testing.T) {
	cids, blks := testBlocks(t, 1)
	c := cids[0]
	header := func(v map[string]any) []byte {
		b, err := data.MarshalCBOR(v)
		if err != nil {
			t.Fatal(err)
		}
		return append(binary.AppendUvarint(nil, uint64(len(b))), b...)
	}
	good := header(map[string]any{"roots": []any{c}, "version": int64(1)})
	for _, tc := range []struct {
		name, want string
		car        []byte
	}{
		{"empty input", "empty input", nil},
		{"zero header", "header length is zero", []byte{0}},
		{"carv2", "CARv2 is not supported", header(map[string]any{"version": int64(2)})},
		{"version 3", "unsupported CAR version 3", header(map[string]any{"roots": []any{c}, "version": int64(3)})},
		{"no version", `no "version"`, header(map[string]any{"roots": []any{c}})},
		{"no roots", `no "roots"`, header(map[string]any{"version": int64(1)})},
		{"roots not links", "not a CID link", header(map[string]any{"roots": []any{"x"}, "version": int64(1)})},
		{"not a map", "not a map", append([]byte{2}, 0x82, 0x01)},
		{"non-minimal varint", "not a minimal varint", append(append([]byte{}, good...), 0x80, 0x00)},
		{"overlong varint", "longer than 9 bytes", append(append([]byte{}, good...), bytes.Repeat([]byte{0x80}, 10)...)},
		{"zero section", "empty section", append(append([]byte{}, good...), 0)},
		{"bad cid", "section CID", append(append([]byte{}, good...), 3, 0x05, 0x71, 0x12)},
		{"trailing header bytes", "malformed", append([]byte{byte(len(good))}, append(good[1:], 0)...)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, _, err := ReadAll(bytes.NewReader(tc.car), Limits{})
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("got %v, want an error containing %q", err, tc.want)
			}
		})
	}
	// Unknown header keys are skipped.
	car := header(map[string]any{"roots": []any{c}, "version": int64(1), "zzz": "extra"})
	car = append(car, byte(36+len(blks[0])))
	car = append(car, c.Bytes()...)
	car = append(car, blks[0]...)
	if _, blocks, err := ReadAll(bytes.NewReader(car), Limits{}); err != nil || len(blocks) != 1 {
		t.Fatalf("extra header key: %v", err)
	}
}

type failWriter struct{ n int }

func (w *failWriter) Write(p []byte) (int, error) {
	if w.n -= len(p); w.n < 0 {
		return 0, errors.New("disk full")
	}
	return len(p), nil
}

func TestWriterErrors(t *testing.T) {
	cids, blks := testBlocks(t, 2000)
	w, err := NewWriter(&failWriter{n: 1000}, cids[0])
	if err != nil {
		t.Fatal(err)
	}
	for i := range cids {
		if err = w.WriteBlock(cids[i], blks[i]); err != nil {
			break
		}
	}
	if err == nil {
		err = w.Close()
	}
	if err == nil || !strings.Contains(err.Error(), "disk full") {
		t.Fatalf("got %v", err)
	}
	if err2 := w.WriteBlock(cids[0], blks[0]); err2 == nil {
		t.Fatal("write after failure succeeded")
	}
	if _, err := NewWriter(io.Discard, data.CID{}); err == nil {
		t.Fatal("undefined root accepted")
	}
	w, _ = NewWriter(io.Discard)
	if err := w.WriteBlock(data.CID{}, nil); err == nil {
		t.Fatal("undefined block CID accepted")
	}
}

func TestErrorString(t *testing.T) {
	e := &Error{Offset: 7, Block: -1, Err: ErrMalformed, Detail: "header length is zero"}
	if got := e.Error(); got != "car: header at offset 7: malformed: header length is zero" {
		t.Fatal(got)
	}
}
