package faultvfs

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
)

// Result says what Rollback did.
type Result struct {
	// Records is the number of journal records read.
	Records int
	// Torn reports that the journal ended in a record cut short: the
	// process died while appending it, before the operation it describes.
	Torn bool
	// Undone is the number of unsynced writes and size changes undone.
	Undone int
	// Removed is the number of files removed because their creation never
	// became durable (no sync of their directory followed it).
	Removed int
	// Restored is the number of deleted files brought back because their
	// deletion never became durable.
	Restored int
	// Paths lists, sorted, every file the journal recorded a change of.
	Paths []string
}

// Rollback brings the files a journal describes to the state a power loss
// at this moment would leave on a disk that kept nothing unsynced: every
// file holds its contents and size as of its last sync, a file created
// since its directory was last synced is gone, and a file deleted since
// then is back, as of its last sync. It then removes the journal, so that
// the next process starts a new one.
//
// Run Rollback only when no process has the journal or the files open (in
// a test, after the process that wrote them was killed). A missing journal
// is not an error: nothing was written. If Rollback fails, the files are in
// an unknown state and the journal is left in place.
func Rollback(journalPath string) (Result, error) {
	var res Result
	f, err := os.Open(journalPath)
	if errors.Is(err, os.ErrNotExist) {
		return res, nil
	}
	if err != nil {
		return res, fmt.Errorf("faultvfs: open journal: %w", err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return res, fmt.Errorf("faultvfs: open journal: %w", err)
	}
	recs, torn, err := decodeJournal(f, st.Size())
	if err != nil {
		return res, err
	}
	res.Records, res.Torn = len(recs), torn
	acts, err := planRollback(recs)
	if err != nil {
		return res, err
	}
	backup := journalPath + backupSuffix
	for _, a := range acts {
		res.Paths = append(res.Paths, a.path)
	}
	for _, a := range acts {
		if err := a.apply(f, backup, recs, &res); err != nil {
			return res, fmt.Errorf("faultvfs: roll back %s: %w", a.path, err)
		}
	}
	f.Close()
	return res, Discard(journalPath)
}

// Discard removes a journal and the files it kept, without touching the
// files it describes: everything the journal recorded is taken as having
// reached the disk (as after a clean shutdown and a sync(1)).
func Discard(journalPath string) error {
	if err := os.RemoveAll(journalPath + backupSuffix); err != nil {
		return fmt.Errorf("faultvfs: remove journal backups: %w", err)
	}
	if err := os.Remove(journalPath); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("faultvfs: remove journal: %w", err)
	}
	return nil
}

// record is one decoded journal record. The old bytes of a write or resize
// stay in the journal file, at dataOff.
type record struct {
	kind    byte
	path    string // the file, or the directory of a kindDirSync
	a, b    int64  // write: offset, old size; resize: new size, old size
	dataOff int64
	dataLen int64
	backup  string // kindDelete
}

// errCorrupt wraps every decoding and planning failure.
var errCorrupt = errors.New("faultvfs: corrupt journal")

// decodeJournal reads every record of a journal of the given size. A last
// record cut short is reported as torn, not as an error: the writer died
// while appending it.
func decodeJournal(r io.ReaderAt, size int64) (recs []record, torn bool, err error) {
	recs, _, torn, err = decodeJournalEnd(r, size)
	return recs, torn, err
}

// decodeJournalEnd is decodeJournal that also returns where the last whole
// record ends (after the header when there is none).
func decodeJournalEnd(r io.ReaderAt, size int64) (recs []record, end int64, torn bool, err error) {
	head := make([]byte, len(journalMagic))
	n, err := r.ReadAt(head, 0)
	if n < len(head) {
		if err != nil && !errors.Is(err, io.EOF) {
			return nil, 0, false, fmt.Errorf("faultvfs: read journal: %w", err)
		}
		if strings.HasPrefix(journalMagic, string(head[:n])) {
			return nil, 0, n > 0, nil
		}
		return nil, 0, false, fmt.Errorf("%w: bad header", errCorrupt)
	}
	if string(head) != journalMagic {
		return nil, 0, false, fmt.Errorf("%w: bad header", errCorrupt)
	}
	off := int64(len(journalMagic))
	var frame [8]byte
	var payload []byte
	for off < size {
		if size-off < int64(len(frame)) {
			return recs, off, true, nil
		}
		if _, err := r.ReadAt(frame[:], off); err != nil {
			return nil, 0, false, fmt.Errorf("faultvfs: read journal: %w", err)
		}
		plen := int64(binary.LittleEndian.Uint32(frame[0:4]))
		if plen == 0 || plen > maxRecord {
			return nil, 0, false, fmt.Errorf("%w: record at %d has length %d", errCorrupt, off, plen)
		}
		start := off + int64(len(frame))
		if size-start < plen {
			return recs, off, true, nil
		}
		if int64(cap(payload)) < plen {
			payload = make([]byte, plen)
		}
		payload = payload[:plen]
		if _, err := r.ReadAt(payload, start); err != nil {
			return nil, 0, false, fmt.Errorf("faultvfs: read journal: %w", err)
		}
		if crc32.Checksum(payload, castagnoli) != binary.LittleEndian.Uint32(frame[4:8]) {
			return nil, 0, false, fmt.Errorf("%w: record at %d fails its checksum", errCorrupt, off)
		}
		rec, err := parseRecord(payload, start)
		if err != nil {
			return nil, 0, false, fmt.Errorf("%w: record at %d: %v", errCorrupt, off, err)
		}
		recs = append(recs, rec)
		off = start + plen
	}
	return recs, off, false, nil
}

// parseRecord decodes one payload that starts at offset base in the journal.
func parseRecord(p []byte, base int64) (record, error) {
	d := decoder{p: p}
	rec := record{kind: d.byte()}
	rec.path = d.string()
	switch rec.kind {
	case kindWrite, kindResize:
		rec.a, rec.b = d.int(), d.int()
		rec.dataLen = d.int()
		rec.dataOff = base + int64(d.i)
		d.skip(rec.dataLen)
	case kindDelete:
		rec.backup = d.string()
	case kindSync, kindCreate, kindUndelete, kindDirSync:
	default:
		return rec, fmt.Errorf("unknown kind %q", rec.kind)
	}
	if d.err != nil {
		return rec, d.err
	}
	if d.i != len(p) {
		return rec, fmt.Errorf("%d bytes left over", len(p)-d.i)
	}
	return rec, nil
}

type decoder struct {
	p   []byte
	i   int
	err error
}

func (d *decoder) fail(msg string) {
	if d.err == nil {
		d.err = errors.New(msg)
	}
}

func (d *decoder) byte() byte {
	if d.err != nil || d.i >= len(d.p) {
		d.fail("short record")
		return 0
	}
	d.i++
	return d.p[d.i-1]
}

func (d *decoder) int() int64 {
	if d.err != nil {
		return 0
	}
	v, n := binary.Uvarint(d.p[d.i:])
	if n <= 0 || v > math.MaxInt64 {
		d.fail("bad number")
		return 0
	}
	d.i += n
	return int64(v)
}

func (d *decoder) skip(n int64) {
	if d.err != nil {
		return
	}
	if n > int64(len(d.p)-d.i) {
		d.fail("short record")
		return
	}
	d.i += int(n)
}

func (d *decoder) string() string {
	n := d.int()
	start := d.i
	d.skip(n)
	if d.err != nil {
		return ""
	}
	return string(d.p[start:d.i])
}

// action is what Rollback does to one path.
type action struct {
	path string
	// keep is false when no file may be at path after the power loss.
	keep bool
	// from names the backup that becomes the file at path; empty when the
	// file now at path is the one to keep.
	from string
	// undo lists the records to undo, newest first.
	undo []int
}

// incarnation is one file that lived at a path: paths are reused (SQLite
// deletes and recreates its WAL and journal files).
type incarnation struct {
	created  int // record index of its creation; -1: before the journal began
	deleted  int // record index of its deletion; -1: not deleted
	lastSync int // record index of its last sync; -1: none
	backup   string
	ops      []int
}

// liveAt reports whether the file was in its directory just after record t
// (t = -1: when the journal began).
func (in *incarnation) liveAt(t int) bool {
	return (in.created < 0 || in.created < t) && (in.deleted < 0 || in.deleted > t)
}

type history struct {
	incs []*incarnation
	live *incarnation
}

// current returns the file at the path at record i, taking one that
// appears without a recorded creation as created there (or, for the first
// file of the path, as there from the start).
func (h *history) current(i int) *incarnation {
	if h.live == nil {
		created := i
		if len(h.incs) == 0 {
			created = -1
		}
		h.live = &incarnation{created: created, deleted: -1, lastSync: -1}
		h.incs = append(h.incs, h.live)
	}
	return h.live
}

// planRollback works out, from the records alone, what Rollback does.
//
// The directory state that survives is the one at the directory's last
// sync (or, without one, when the journal began): the surviving file at a
// path is the incarnation that lived there then. Its contents are those of
// its last sync: every write and resize after that is undone, newest first.
func planRollback(recs []record) ([]action, error) {
	hists := map[string]*history{}
	dirSync := map[string]int{}
	hist := func(p string) *history {
		h := hists[p]
		if h == nil {
			h = &history{}
			hists[p] = h
		}
		return h
	}
	for i, r := range recs {
		if !filepath.IsAbs(r.path) || filepath.Clean(r.path) != r.path || strings.IndexByte(r.path, 0) >= 0 {
			return nil, fmt.Errorf("%w: record %d: bad path %q", errCorrupt, i, r.path)
		}
		switch r.kind {
		case kindWrite:
			want := int64(0)
			if r.a < r.b {
				want = r.b - r.a
			}
			if r.dataLen > want || (r.a >= r.b && r.dataLen != 0) {
				return nil, fmt.Errorf("%w: record %d: write at %d of a %d-byte file keeps %d old bytes", errCorrupt, i, r.a, r.b, r.dataLen)
			}
			in := hist(r.path).current(i)
			in.ops = append(in.ops, i)
		case kindResize:
			want := int64(0)
			if r.a < r.b {
				want = r.b - r.a
			}
			if r.dataLen != want {
				return nil, fmt.Errorf("%w: record %d: resize from %d to %d keeps %d old bytes", errCorrupt, i, r.b, r.a, r.dataLen)
			}
			in := hist(r.path).current(i)
			in.ops = append(in.ops, i)
		case kindSync:
			hist(r.path).current(i).lastSync = i
		case kindCreate:
			h := hist(r.path)
			if h.live != nil {
				// Removed behind the VFS's back: there is nothing to
				// bring it back from.
				h.live.deleted = i
				h.live = nil
			}
			h.live = &incarnation{created: i, deleted: -1, lastSync: -1}
			h.incs = append(h.incs, h.live)
		case kindDelete:
			if r.backup == "" || r.backup != filepath.Base(r.backup) || r.backup == "." || r.backup == ".." {
				return nil, fmt.Errorf("%w: record %d: bad backup name %q", errCorrupt, i, r.backup)
			}
			h := hist(r.path)
			in := h.current(i)
			in.deleted = i
			in.backup = r.backup
			h.live = nil
		case kindUndelete:
			h := hist(r.path)
			if h.live != nil || len(h.incs) == 0 || h.incs[len(h.incs)-1].backup == "" {
				return nil, fmt.Errorf("%w: record %d: undelete of %s without a delete", errCorrupt, i, r.path)
			}
			h.live = h.incs[len(h.incs)-1]
			h.live.deleted = -1
		case kindDirSync:
			dirSync[r.path] = i
		}
	}

	paths := make([]string, 0, len(hists))
	for p := range hists {
		paths = append(paths, p)
	}
	slices.Sort(paths)
	var acts []action
	for _, p := range paths {
		h := hists[p]
		t, ok := dirSync[filepath.Dir(p)]
		if !ok {
			t = -1
		}
		var keep *incarnation
		for _, in := range h.incs {
			if in.liveAt(t) {
				keep = in
			}
		}
		a := action{path: p}
		if keep != nil {
			a.keep = true
			if keep != h.live {
				if keep.backup == "" {
					return nil, fmt.Errorf("faultvfs: %s was deleted outside the VFS and cannot be restored", p)
				}
				a.from = keep.backup
			}
			for k := len(keep.ops) - 1; k >= 0 && keep.ops[k] > keep.lastSync; k-- {
				a.undo = append(a.undo, keep.ops[k])
			}
		}
		acts = append(acts, a)
	}
	return acts, nil
}

// apply carries out one action; journal holds the old bytes.
func (a *action) apply(journal io.ReaderAt, backupDir string, recs []record, res *Result) error {
	if !a.keep {
		err := os.Remove(a.path)
		if err == nil {
			res.Removed++
			return nil
		}
		if errors.Is(err, os.ErrNotExist) {
			return nil
		}
		return err
	}
	target := a.path
	if a.from != "" {
		target = filepath.Join(backupDir, a.from)
	}
	if len(a.undo) > 0 {
		f, err := os.OpenFile(target, os.O_RDWR, 0)
		if err != nil {
			return err
		}
		for _, i := range a.undo {
			if err := undo(f, journal, recs[i]); err != nil {
				f.Close()
				return err
			}
			res.Undone++
		}
		if err := f.Close(); err != nil {
			return err
		}
	}
	if a.from != "" {
		if err := os.Remove(a.path); err != nil && !errors.Is(err, os.ErrNotExist) {
			return err
		}
		if err := os.Rename(target, a.path); err != nil {
			return err
		}
		res.Restored++
	}
	return nil
}

// undo reverses one write or resize.
func undo(f *os.File, journal io.ReaderAt, r record) error {
	oldSize := r.b
	if r.dataLen > 0 {
		old := make([]byte, r.dataLen)
		if _, err := journal.ReadAt(old, r.dataOff); err != nil {
			return fmt.Errorf("read journal: %w", err)
		}
		at := r.a // a write's offset, or a shrink's new size: where the old bytes were
		if _, err := f.WriteAt(old, at); err != nil {
			return err
		}
	}
	return f.Truncate(oldSize)
}
