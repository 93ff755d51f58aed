// Package walbatch is a SQLite VFS that hands the frames a transaction
// appends to its write-ahead log to the operating system in one write
// instead of two per page.
//
// SQLite writes each WAL frame with two calls of the file's xWrite, its
// 24-byte header and then the page, one system call each. A commit that
// changes fourteen pages makes 28 system calls, which on a virtual machine
// cost more than the rest of the commit. This VFS wraps another (SQLite's
// default one when the database is opened) and, for WAL files only,
// gathers the frames a transaction appends (each a 24-byte header and then
// its page; any other write goes straight through) in a buffer that it
// passes on to the wrapped file in one xWrite:
//
//   - when the frame just buffered is a commit frame (its header gives the
//     database's size after the commit; other frames give 0), inside that
//     frame's own xWrite, so that a failure fails the commit;
//   - before any other operation on the WAL file (a read, a sync, a
//     truncation, its size, a file control, a lock, its close, or a write
//     that is not such an appended frame).
//
// A commit becomes visible to readers, in this process or another, only
// after its commit frame has been written (SQLite then updates the WAL
// index), so no reader ever looks for a frame still in a buffer. Frames
// written ahead of a commit, when SQLite spills pages from a full cache,
// wait in the buffer until the commit frame, a read or a sync. A process
// killed with frames in its buffer leaves a WAL without the commit those
// frames belong to, as a process killed before writing them would. Syncs
// reach the disk in order: the buffer is written before a sync is passed
// on. A failed write keeps the buffer, and every later operation on the
// file retries it first and fails while it fails, except a failed commit,
// whose frames are dropped as SQLite rolls the transaction back.
package walbatch

import (
	"encoding/binary"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"unsafe"

	"modernc.org/libc"
	sqlite3 "modernc.org/sqlite/lib"

	"github.com/welkin-atproto/welkin/internal/sqldb/vfsshim"
)

// namePrefix starts the name of each VFS Register registers.
const namePrefix = "welkin-walbatch-"

const (
	// frameHeader is the size of a WAL frame's header, which SQLite
	// writes on its own; the WAL file's header is 32 bytes and pages are
	// at least 512.
	frameHeader = 24
	// initialBuffer is the size of a WAL file's first buffer: enough
	// for a commit of fifteen 4 KiB pages.
	initialBuffer = 64 << 10
	// maxBuffer bounds a buffer; a write that would grow one beyond it
	// passes the buffer on first. The unix VFS writes at most 128 KiB - 1
	// bytes in one call (seekAndWriteFd masks the length with 0x1ffff),
	// and reports the rest of a longer write as a full disk.
	maxBuffer = 1<<17 - 1
)

var (
	// regs holds the VFSs registered so far, by the VFS they wrap.
	regMu sync.Mutex
	regs  = map[uintptr]*vfsshim.Registered{}

	// passThrough serves every file but WAL files; walTables serve WAL
	// files.
	passThrough = vfsshim.PassThrough()
	walTables   = vfsshim.PassThrough()

	// sqliteWrites counts the xWrite calls SQLite made on WAL files;
	// passedOn counts the xWrite calls passed on for them.
	sqliteWrites, passedOn atomic.Int64
)

func init() {
	for v := range walTables {
		m := &walTables[v]
		vfsshim.SetFn[vfsshim.FnClose](&m.FxClose, xClose)
		vfsshim.SetFn[vfsshim.FnReadWrite](&m.FxRead, xRead)
		vfsshim.SetFn[vfsshim.FnReadWrite](&m.FxWrite, xWrite)
		vfsshim.SetFn[vfsshim.FnTruncate](&m.FxTruncate, xTruncate)
		vfsshim.SetFn[vfsshim.FnSync](&m.FxSync, xSync)
		vfsshim.SetFn[vfsshim.FnFileSize](&m.FxFileSize, xFileSize)
		vfsshim.SetFn[vfsshim.FnLock](&m.FxLock, xLock)
		vfsshim.SetFn[vfsshim.FnLock](&m.FxUnlock, xUnlock)
		vfsshim.SetFn[vfsshim.FnFileCtl](&m.FxFileControl, xFileControl)
	}
}

// Register returns the name of a VFS that wraps SQLite's current default
// VFS, registering it on the first call for that default. Open databases
// through it with the URI parameter vfs=name. Asking at each open keeps
// a default installed later (a fault-injecting VFS in a test, say) under
// the databases opened after it.
func Register() (name string, err error) {
	regMu.Lock()
	defer regMu.Unlock()
	tls := libc.NewTLS()
	base := sqlite3.Xsqlite3_vfs_find(tls, 0)
	tls.Close()
	if base == 0 {
		return "", errors.New("walbatch: SQLite has no default VFS")
	}
	if r := regs[base]; r != nil {
		return r.Name, nil
	}
	for _, r := range regs {
		if r.CVFS == base {
			return r.Name, nil // one of ours is the default
		}
	}
	baseName := libc.GoString((*vfsshim.CVFS)(vfsshim.At(base)).FzName)
	slot := new(*vfsshim.Registered)
	r, err := vfsshim.Register(namePrefix+baseName, base, slot, vfsOpen, nil)
	if err != nil {
		return "", fmt.Errorf("walbatch: %w", err)
	}
	*slot = r
	regs[base] = r
	return r.Name, nil
}

// Counts returns how many writes SQLite made to WAL files opened through
// the VFS, and how many writes the VFS passed on for them.
func Counts() (writes, passed int64) { return sqliteWrites.Load(), passedOn.Load() }

// walFile is an open WAL file and its buffer of writes not yet passed on.
type walFile struct {
	pFile uintptr // our file object
	mu    sync.Mutex
	buf   uintptr // SQLite memory of capacity cap; 0 when none
	cap   int
	n     int   // bytes buffered
	off   int64 // file offset of the first buffered byte
	// high is the end of what this handle has written or buffered since
	// the WAL last restarted (a write at offset 0): a write at or above
	// it appends, one below rewrites.
	high int64
	// expectPage is set when the last write buffered was a frame header,
	// whose page comes next; commit when that header was a commit
	// frame's, so that the page completes the commit.
	expectPage, commit bool
}

func vfsOpen(tls *libc.TLS, pVfs uintptr, zName uintptr, pFile uintptr, flags int32, pOutFlags uintptr) int32 {
	slot, _ := vfsshim.VFSValue(pVfs).(**vfsshim.Registered)
	if slot == nil || *slot == nil {
		vfsshim.Begin(pFile)
		return sqlite3.SQLITE_CANTOPEN
	}
	rc := (*slot).OpenBase(tls, zName, pFile, flags, pOutFlags)
	if _, rm := vfsshim.Real(pFile); rm == nil {
		return rc
	}
	if flags&sqlite3.SQLITE_OPEN_WAL != 0 {
		vfsshim.SetFile(pFile, &walTables, &walFile{pFile: pFile})
	} else {
		vfsshim.SetFile(pFile, &passThrough, nil)
	}
	return rc
}

func walOf(pFile uintptr) *walFile {
	w, _ := vfsshim.File(pFile).(*walFile)
	return w
}

// flushLocked passes the buffer on to the wrapped file. On failure the
// buffer is kept, to be retried by the next operation.
func (w *walFile) flushLocked(tls *libc.TLS) int32 {
	if w.n == 0 {
		return sqlite3.SQLITE_OK
	}
	rf, rm := vfsshim.Real(w.pFile)
	passedOn.Add(1)
	rc := vfsshim.Fn[vfsshim.FnReadWrite](rm.FxWrite)(tls, rf, w.buf, int32(w.n), w.off)
	if rc == sqlite3.SQLITE_OK {
		w.n = 0
	}
	return rc
}

// noteWritten moves high past a write of [off, end).
func (w *walFile) noteWritten(off, end int64) {
	if off == 0 {
		w.high = end
	} else {
		w.high = max(w.high, end)
	}
}

// flush passes on the buffer of the WAL file pFile.
func flush(tls *libc.TLS, pFile uintptr) int32 {
	w := walOf(pFile)
	if w == nil {
		return sqlite3.SQLITE_OK
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.flushLocked(tls)
}

// writeThrough passes one write on, unbuffered.
func writeThrough(tls *libc.TLS, pFile, zBuf uintptr, iAmt int32, iOfst int64) int32 {
	rf, rm := vfsshim.Real(pFile)
	passedOn.Add(1)
	return vfsshim.Fn[vfsshim.FnReadWrite](rm.FxWrite)(tls, rf, zBuf, iAmt, iOfst)
}

func xWrite(tls *libc.TLS, pFile, zBuf uintptr, iAmt int32, iOfst int64) int32 {
	w := walOf(pFile)
	if w == nil {
		return writeThrough(tls, pFile, zBuf, iAmt, iOfst)
	}
	sqliteWrites.Add(1)
	w.mu.Lock()
	defer w.mu.Unlock()
	n := int(iAmt)
	end := iOfst + int64(n)
	// Only frames appended whole are buffered: a 24-byte frame header and
	// then, right after it, its page (a power of two of at least 512
	// bytes). Everything else (the WAL's own header, frames rewritten in
	// place, checksums rewritten after a spill, the pieces of a frame
	// split at a sync point) goes straight through, after the buffer.
	appends := iOfst >= w.high && (w.n == 0 || iOfst == w.off+int64(w.n))
	header := appends && n == frameHeader
	page := appends && w.expectPage && n >= 512 && n&(n-1) == 0
	w.expectPage = false
	if !header && !page {
		if rc := w.flushLocked(tls); rc != sqlite3.SQLITE_OK {
			return rc
		}
		w.noteWritten(iOfst, end)
		return writeThrough(tls, pFile, zBuf, iAmt, iOfst)
	}
	if w.n+n > maxBuffer {
		if rc := w.flushLocked(tls); rc != sqlite3.SQLITE_OK {
			return rc
		}
	}
	if w.n+n > w.cap {
		c := max(initialBuffer, w.cap)
		for c < w.n+n {
			c *= 2
		}
		nb := sqlite3.Xsqlite3_realloc64(tls, w.buf, uint64(c))
		if nb == 0 {
			// Out of memory: write through instead.
			if rc := w.flushLocked(tls); rc != sqlite3.SQLITE_OK {
				return rc
			}
			w.noteWritten(iOfst, end)
			return writeThrough(tls, pFile, zBuf, iAmt, iOfst)
		}
		w.buf, w.cap = nb, c
	}
	if w.n == 0 {
		w.off = iOfst
	}
	copy(unsafe.Slice((*byte)(vfsshim.At(w.buf+uintptr(w.n))), n), unsafe.Slice((*byte)(vfsshim.At(zBuf)), n))
	w.n += n
	w.noteWritten(iOfst, end)
	if header {
		w.expectPage = true
		w.commit = binary.BigEndian.Uint32(unsafe.Slice((*byte)(vfsshim.At(zBuf)), frameHeader)[4:8]) != 0
		return sqlite3.SQLITE_OK
	}
	if !w.commit {
		return sqlite3.SQLITE_OK
	}
	// The commit frame is complete: pass the transaction's frames on
	// now, so that a failure fails the commit. Frames that failed to go
	// out are dropped: SQLite rolls the transaction back, and keeping
	// them could write a commit it reported failed on a later retry.
	w.commit = false
	rc := w.flushLocked(tls)
	w.n = 0
	return rc
}

func xClose(tls *libc.TLS, pFile uintptr) int32 {
	rc := int32(sqlite3.SQLITE_OK)
	if w := walOf(pFile); w != nil {
		w.mu.Lock()
		rc = w.flushLocked(tls)
		if w.buf != 0 {
			sqlite3.Xsqlite3_free(tls, w.buf)
			w.buf, w.cap, w.n = 0, 0, 0
		}
		w.mu.Unlock()
	}
	if r := vfsshim.Close(tls, pFile); rc == sqlite3.SQLITE_OK {
		rc = r
	}
	return rc
}

func xRead(tls *libc.TLS, pFile, zBuf uintptr, iAmt int32, iOfst int64) int32 {
	if rc := flush(tls, pFile); rc != sqlite3.SQLITE_OK {
		return sqlite3.SQLITE_IOERR_READ
	}
	rf, rm := vfsshim.Real(pFile)
	return vfsshim.Fn[vfsshim.FnReadWrite](rm.FxRead)(tls, rf, zBuf, iAmt, iOfst)
}

func xTruncate(tls *libc.TLS, pFile uintptr, size int64) int32 {
	if rc := flush(tls, pFile); rc != sqlite3.SQLITE_OK {
		return rc
	}
	rf, rm := vfsshim.Real(pFile)
	return vfsshim.Fn[vfsshim.FnTruncate](rm.FxTruncate)(tls, rf, size)
}

func xSync(tls *libc.TLS, pFile uintptr, flags int32) int32 {
	if rc := flush(tls, pFile); rc != sqlite3.SQLITE_OK {
		return rc
	}
	rf, rm := vfsshim.Real(pFile)
	return vfsshim.Fn[vfsshim.FnSync](rm.FxSync)(tls, rf, flags)
}

func xFileSize(tls *libc.TLS, pFile, pSize uintptr) int32 {
	if rc := flush(tls, pFile); rc != sqlite3.SQLITE_OK {
		return rc
	}
	rf, rm := vfsshim.Real(pFile)
	return vfsshim.Fn[vfsshim.FnFileSize](rm.FxFileSize)(tls, rf, pSize)
}

func xLock(tls *libc.TLS, pFile uintptr, lock int32) int32 {
	if rc := flush(tls, pFile); rc != sqlite3.SQLITE_OK {
		return rc
	}
	rf, rm := vfsshim.Real(pFile)
	return vfsshim.Fn[vfsshim.FnLock](rm.FxLock)(tls, rf, lock)
}

func xUnlock(tls *libc.TLS, pFile uintptr, lock int32) int32 {
	if rc := flush(tls, pFile); rc != sqlite3.SQLITE_OK {
		return rc
	}
	rf, rm := vfsshim.Real(pFile)
	return vfsshim.Fn[vfsshim.FnLock](rm.FxUnlock)(tls, rf, lock)
}

func xFileControl(tls *libc.TLS, pFile uintptr, op int32, pArg uintptr) int32 {
	if rc := flush(tls, pFile); rc != sqlite3.SQLITE_OK {
		return rc
	}
	rf, rm := vfsshim.Real(pFile)
	return vfsshim.Fn[vfsshim.FnFileCtl](rm.FxFileControl)(tls, rf, op, pArg)
}
