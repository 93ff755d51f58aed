package eventlog

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// recordOffsets scans a segment file and returns the offset of each of its
// records and the end of the last one.
func recordOffsets(t testing.TB, path string) ([]uint32, int64) {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	s := newSegment(filepath.Dir(path), mustSegFirst(t, path))
	s.active = true
	end, stop := s.scan(f, fileSize(t, path))
	if stop != nil {
		t.Fatalf("scanning %s: %v", path, stop)
	}
	return s.offs, end
}

// crashedLog writes 50 events over several segments, crashes, and returns
// the directory and the path of the last segment.
func crashedLog(t *testing.T) (string, string) {
	t.Helper()
	dir := t.TempDir()
	l := openLog(t, Options{Dir: dir, SegmentSize: 1 << 10})
	for range 10 {
		appendN(t, l, 5)
	}
	l.crash()
	segs := segFiles(t, dir)
	if len(segs) < 3 {
		t.Fatalf("%d segments, want several", len(segs))
	}
	return dir, segs[len(segs)-1]
}

func reopenAfterDamage(t *testing.T, dir string, wantLatest int64, wantRecovered int64) {
	t.Helper()
	l := openLog(t, Options{Dir: dir, SegmentSize: 1 << 10})
	if st := l.Stats(); st.LatestSeq != wantLatest || st.RecoveredBytes != wantRecovered {
		t.Fatalf("after reopening: latest %d, %d bytes recovered; want %d, %d",
			st.LatestSeq, st.RecoveredBytes, wantLatest, wantRecovered)
	}
	checkRange(t, l, 1, wantLatest)
	// Seqs go on from the last whole record: no gap, no reuse.
	if first := appendN(t, l, 2); first != wantLatest+1 {
		t.Fatalf("next seq %d, want %d", first, wantLatest+1)
	}
	checkRange(t, l, 1, wantLatest+2)
	l.Close()
	l = openLog(t, Options{Dir: dir})
	checkRange(t, l, 1, wantLatest+2)
}

func TestTornTail(t *testing.T) {
	_, path := crashedLog(t)
	offs, end := recordOffsets(t, path)
	lastOff := int64(offs[len(offs)-1])
	lastLen := end - lastOff
	for _, tc := range []struct {
		name string
		keep int64 // bytes of the last record left
	}{
		{"one byte", 1},
		{"part of the header", recHeaderSize / 2},
		{"header only", recHeaderSize},
		{"header and part of the DID", recHeaderSize + 3},
		{"all but one byte", lastLen - 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir, path := crashedLog(t)
			if err := os.Truncate(path, lastOff+tc.keep); err != nil {
				t.Fatal(err)
			}
			reopenAfterDamage(t, dir, 49, tc.keep)
			if got := fileSize(t, path); got <= lastOff {
				t.Fatalf("segment is %d bytes after recovery and a new append", got)
			}
		})
	}
}

func TestTornTailGarbage(t *testing.T) {
	for _, tc := range []struct {
		name  string
		extra []byte
	}{
		{"zeros", make([]byte, 4096)},
		{"random", bytes.Repeat([]byte{0x5a, 0x13, 0xff, 0x00, 0x81}, 300)},
		{"huge length", append([]byte{1, 2, 3, 4, 0xff, 0xff, 0xff, 0x7f}, make([]byte, 30)...)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir, path := crashedLog(t)
			f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND, 0)
			if err != nil {
				t.Fatal(err)
			}
			f.Write(tc.extra)
			f.Close()
			reopenAfterDamage(t, dir, 50, int64(len(tc.extra)))
		})
	}
}

func TestCorruptLastRecord(t *testing.T) {
	// A flipped bit in the last record (a torn sector) fails its checksum:
	// the record is dropped.
	dir, path := crashedLog(t)
	offs, end := recordOffsets(t, path)
	last := int64(offs[len(offs)-1])
	for _, at := range []int64{last + 1, last + 10, end - 1} {
		f, err := os.OpenFile(path, os.O_RDWR, 0)
		if err != nil {
			t.Fatal(err)
		}
		b := make([]byte, 1)
		f.ReadAt(b, at)
		b[0] ^= 0x04
		f.WriteAt(b, at)
		f.Close()
	}
	reopenAfterDamage(t, dir, 49, end-last)
}

func TestInterruptedSegmentCreation(t *testing.T) {
	for _, size := range []int{0, 5, segHeaderSize} {
		dir, _ := crashedLog(t)
		// A roll that created the next segment and crashed before (or
		// right after) writing its header.
		name := filepath.Join(dir, segName(51)+segExt)
		if err := os.WriteFile(name, segHeader(51)[:size], 0o644); err != nil {
			t.Fatal(err)
		}
		l := openLog(t, Options{Dir: dir, SegmentSize: 1 << 10})
		checkRange(t, l, 1, 50)
		if first := appendN(t, l, 1); first != 51 {
			t.Fatalf("header of %d bytes: next seq %d, want 51", size, first)
		}
		checkRange(t, l, 1, 51)
		l.Close()
		if got := fileSize(t, name); got <= segHeaderSize {
			t.Fatalf("new segment is %d bytes", got)
		}
	}
}

func TestCorruptionRefused(t *testing.T) {
	for _, tc := range []struct {
		name   string
		damage func(t *testing.T, dir string, segs []string)
		want   string
	}{
		{"flipped byte in a sealed segment", func(t *testing.T, dir string, segs []string) {
			os.Remove(strings.TrimSuffix(segs[0], segExt) + idxExt)
			flipByte(t, segs[0], 40)
		}, filepath.Base(segNameOf(1))},
		{"truncated sealed segment", func(t *testing.T, dir string, segs []string) {
			os.Remove(strings.TrimSuffix(segs[1], segExt) + idxExt)
			os.Truncate(segs[1], fileSize(t, segs[1])-3)
		}, "torn record"},
		{"sealed segment cut to its header, with a stale sidecar", func(t *testing.T, dir string, segs []string) {
			os.Truncate(segs[0], segHeaderSize)
		}, "no records"},
		{"missing middle segment", func(t *testing.T, dir string, segs []string) {
			os.Remove(segs[1])
		}, "but the next one starts"},
		{"bad magic in the active segment", func(t *testing.T, dir string, segs []string) {
			flipByte(t, segs[len(segs)-1], 2)
		}, "bad magic"},
		{"header of the wrong segment", func(t *testing.T, dir string, segs []string) {
			last := segs[len(segs)-1]
			f, _ := os.OpenFile(last, os.O_RDWR, 0)
			f.WriteAt(segHeader(7), 0)
			f.Close()
		}, "file name says"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir, _ := crashedLog(t)
			tc.damage(t, dir, segFiles(t, dir))
			l, err := Open(Options{Dir: dir, Logger: quietLogger(), Retention: -1})
			if err == nil {
				l.Close()
				t.Fatal("Open accepted a damaged log")
			}
			if !errors.Is(err, ErrCorrupt) || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Open = %v; want ErrCorrupt mentioning %q", err, tc.want)
			}
		})
	}
}

func segNameOf(first int64) string { return segName(first) + segExt }

func flipByte(t testing.TB, path string, at int64) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	b := make([]byte, 1)
	if _, err := f.ReadAt(b, at); err != nil {
		t.Fatal(err)
	}
	b[0] ^= 0x10
	if _, err := f.WriteAt(b, at); err != nil {
		t.Fatal(err)
	}
}

func TestCorruptionWhileOpen(t *testing.T) {
	// Damage after Open is found by readers, reported with the file and
	// offset, and never panics.
	dir := t.TempDir()
	l := openLog(t, Options{Dir: dir, SegmentSize: 1 << 10})
	for range 10 {
		appendN(t, l, 5)
	}
	segs := segFiles(t, dir)
	offs, _ := recordOffsets(t, segs[0])
	flipByte(t, segs[0], int64(offs[2])+recHeaderSize+2)
	ctx := testCtx(t)
	_, err := l.Get(ctx, 3)
	if !errors.Is(err, ErrCorrupt) || !strings.Contains(err.Error(), filepath.Base(segs[0])) {
		t.Fatalf("Get of a damaged record = %v", err)
	}
	// Other segments still read.
	if r, err := l.Get(ctx, 50); err != nil {
		t.Fatal(err)
	} else {
		checkRecord(t, r, 50)
	}
	// A segment cut short under the reader.
	os.Truncate(segs[1], segHeaderSize+4)
	first := mustSegFirst(t, segs[1])
	if _, err := l.Get(ctx, first+1); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("Get from a truncated segment = %v", err)
	}
}

func TestLeftoverFilesRemoved(t *testing.T) {
	dir, _ := crashedLog(t)
	tmp := filepath.Join(dir, segName(1)+idxExt+tmpExt)
	orphan := filepath.Join(dir, segName(MaxSeq-5)+idxExt)
	other := filepath.Join(dir, "README")
	for _, p := range []string{tmp, orphan, other} {
		os.WriteFile(p, []byte("x"), 0o644)
	}
	l := openLog(t, Options{Dir: dir})
	checkRange(t, l, 1, 50)
	for _, p := range []string{tmp, orphan} {
		if _, err := os.Stat(p); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("%s left in place: %v", filepath.Base(p), err)
		}
	}
	if _, err := os.Stat(other); err != nil {
		t.Errorf("unrelated file removed: %v", err)
	}
}
