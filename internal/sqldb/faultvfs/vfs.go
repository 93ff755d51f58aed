package faultvfs

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"unsafe"

	"modernc.org/libc"
	sqlite3 "modernc.org/sqlite/lib"
)

// The C structures of the VFS interface, as the transpiled SQLite lays
// them out. Function pointers in them are Go func values stored as
// uintptr, the convention of modernc.org's C-to-Go translation.
type (
	cVFS       = sqlite3.Tsqlite3_vfs
	cIOMethods = sqlite3.Tsqlite3_io_methods
	cFile      = sqlite3.Tsqlite3_file
)

// shimFile is the head of every sqlite3_file the VFS opens; the wrapped
// VFS's file follows at realOffset.
type shimFile struct {
	base   cFile   // pMethods: one of shimIO
	handle uintptr // key of the file's *openFile in files
}

// realOffset is where the wrapped VFS's file starts inside ours, rounded
// up so that it keeps the alignment of a malloc'ed block.
const realOffset = (unsafe.Sizeof(shimFile{}) + 15) &^ 15

// The function types of the methods this package calls or provides.
type (
	fnClose      = func(*libc.TLS, uintptr) int32
	fnReadWrite  = func(*libc.TLS, uintptr, uintptr, int32, int64) int32
	fnTruncate   = func(*libc.TLS, uintptr, int64) int32
	fnSync       = func(*libc.TLS, uintptr, int32) int32
	fnFileSize   = func(*libc.TLS, uintptr, uintptr) int32
	fnLock       = func(*libc.TLS, uintptr, int32) int32
	fnCheckLock  = func(*libc.TLS, uintptr, uintptr) int32
	fnFileCtl    = func(*libc.TLS, uintptr, int32, uintptr) int32
	fnInt        = func(*libc.TLS, uintptr) int32
	fnShmMap     = func(*libc.TLS, uintptr, int32, int32, int32, uintptr) int32
	fnShmLock    = func(*libc.TLS, uintptr, int32, int32, int32) int32
	fnShmBarrier = func(*libc.TLS, uintptr)
	fnShmUnmap   = func(*libc.TLS, uintptr, int32) int32
	fnFetch      = func(*libc.TLS, uintptr, int64, int32, uintptr) int32
	fnUnfetch    = func(*libc.TLS, uintptr, int64, uintptr) int32
	fnOpen       = func(*libc.TLS, uintptr, uintptr, uintptr, int32, uintptr) int32
	fnDelete     = func(*libc.TLS, uintptr, uintptr, int32) int32
)

// at turns an address in SQLite's memory (never Go's heap) into a pointer.
func at(a uintptr) unsafe.Pointer { return *(*unsafe.Pointer)(unsafe.Pointer(&a)) }

// fn turns a C function pointer into the Go function it is.
func fn[F any](p uintptr) F { return *(*F)(unsafe.Pointer(&p)) }

// setFn stores a Go function in a C function pointer slot.
func setFn[F any](slot *uintptr, f F) { *(*F)(unsafe.Pointer(slot)) = f }

// realFile returns the wrapped VFS's file inside ours and its methods.
func realFile(pFile uintptr) (uintptr, *cIOMethods) {
	p := pFile + realOffset
	return p, (*cIOMethods)(at((*cFile)(at(p)).FpMethods))
}

// shimIO holds the method tables of the VFS's files, one per iVersion of
// the wrapped VFS's tables (SQLite consults iVersion to decide, for one,
// whether WAL is possible), so that the wrapper claims no more than the
// wrapped file provides.
var shimIO [4]cIOMethods

func init() {
	for v := range shimIO {
		m := &shimIO[v]
		m.FiVersion = int32(v)
		setFn[fnClose](&m.FxClose, xClose)
		setFn[fnReadWrite](&m.FxRead, xRead)
		setFn[fnReadWrite](&m.FxWrite, xWrite)
		setFn[fnTruncate](&m.FxTruncate, xTruncate)
		setFn[fnSync](&m.FxSync, xSync)
		setFn[fnFileSize](&m.FxFileSize, xFileSize)
		setFn[fnLock](&m.FxLock, xLock)
		setFn[fnLock](&m.FxUnlock, xUnlock)
		setFn[fnCheckLock](&m.FxCheckReservedLock, xCheckReservedLock)
		setFn[fnFileCtl](&m.FxFileControl, xFileControl)
		setFn[fnInt](&m.FxSectorSize, xSectorSize)
		setFn[fnInt](&m.FxDeviceCharacteristics, xDeviceCharacteristics)
		if v >= 2 {
			setFn[fnShmMap](&m.FxShmMap, xShmMap)
			setFn[fnShmLock](&m.FxShmLock, xShmLock)
			setFn[fnShmBarrier](&m.FxShmBarrier, xShmBarrier)
			setFn[fnShmUnmap](&m.FxShmUnmap, xShmUnmap)
		}
		if v >= 3 {
			setFn[fnFetch](&m.FxFetch, xFetch)
			setFn[fnUnfetch](&m.FxUnfetch, xUnfetch)
		}
	}
}

// shimVFS is one registered VFS.
type shimVFS struct {
	name    string
	journal *Journal
	base    uintptr // the wrapped sqlite3_vfs
	cvfs    uintptr // ours
}

// openFile is one file open through a shimVFS.
type openFile struct {
	vfs *shimVFS
	// path is the file's name; empty for files the journal ignores
	// (temporary files, files deleted on close).
	path string
	// dirSync mirrors the unix VFS's UNIXFILE_DIRSYNC: set for a
	// journal, WAL or super-journal opened with SQLITE_OPEN_CREATE, whose
	// first successful sync also syncs its directory.
	dirSync bool
}

var (
	regMu      sync.Mutex
	wrapped    uintptr // the VFS every shim wraps: the default before the first Register
	registered = map[string]*shimVFS{}
	handleMu   sync.Mutex
	handles    = map[uintptr]any{}
	next       uintptr
)

func addHandle(o any) uintptr {
	handleMu.Lock()
	defer handleMu.Unlock()
	for {
		next++
		if _, busy := handles[next]; next != 0 && !busy {
			handles[next] = o
			return next
		}
	}
}

func getHandle(h uintptr) any {
	handleMu.Lock()
	defer handleMu.Unlock()
	return handles[h]
}

func dropHandle(h uintptr) {
	handleMu.Lock()
	delete(handles, h)
	handleMu.Unlock()
}

// Register registers with SQLite, for the life of the process, a VFS named
// name that wraps SQLite's default VFS (on Unix, "unix") and records in j
// what it takes to undo every write, truncation and delete that has not
// been synced. Open a database through it with the URI parameter vfs=name,
// or make it the default with MakeDefault.
func Register(name string, j *Journal) error {
	if name == "" {
		return errors.New("faultvfs: empty VFS name")
	}
	if j == nil {
		return errors.New("faultvfs: nil journal")
	}
	regMu.Lock()
	defer regMu.Unlock()
	tls := libc.NewTLS()
	defer tls.Close()

	cname, err := libc.CString(name)
	if err != nil {
		return fmt.Errorf("faultvfs: %w", err)
	}
	if sqlite3.Xsqlite3_vfs_find(tls, cname) != 0 {
		libc.Xfree(tls, cname)
		return fmt.Errorf("faultvfs: a VFS named %q is already registered", name)
	}
	if wrapped == 0 {
		wrapped = sqlite3.Xsqlite3_vfs_find(tls, 0)
		if wrapped == 0 {
			libc.Xfree(tls, cname)
			return errors.New("faultvfs: SQLite has no default VFS")
		}
	}
	base := (*cVFS)(at(wrapped))

	v := &shimVFS{name: name, journal: j, base: wrapped}
	cvfs := sqlite3.Xsqlite3_malloc64(tls, uint64(unsafe.Sizeof(cVFS{})))
	if cvfs == 0 {
		libc.Xfree(tls, cname)
		return errors.New("faultvfs: out of memory")
	}
	c := (*cVFS)(at(cvfs))
	*c = *base
	c.FpNext = 0
	c.FszOsFile = int32(realOffset) + base.FszOsFile
	c.FzName = cname
	c.FpAppData = addHandle(v)
	setFn[fnOpen](&c.FxOpen, vfsOpen)
	setFn[fnDelete](&c.FxDelete, vfsDelete)
	v.cvfs = cvfs
	if rc := sqlite3.Xsqlite3_vfs_register(tls, cvfs, 0); rc != sqlite3.SQLITE_OK {
		dropHandle(c.FpAppData)
		sqlite3.Xsqlite3_free(tls, cvfs)
		libc.Xfree(tls, cname)
		return fmt.Errorf("faultvfs: register VFS %q: SQLite error %d", name, rc)
	}
	registered[name] = v
	return nil
}

// MakeDefault makes the VFS registered as name SQLite's default, so that
// every database the process opens afterwards without naming a VFS (as
// package sqldb opens them) goes through it.
func MakeDefault(name string) error {
	regMu.Lock()
	defer regMu.Unlock()
	v := registered[name]
	if v == nil {
		return fmt.Errorf("faultvfs: no faultvfs VFS named %q", name)
	}
	tls := libc.NewTLS()
	defer tls.Close()
	if rc := sqlite3.Xsqlite3_vfs_register(tls, v.cvfs, 1); rc != sqlite3.SQLITE_OK {
		return fmt.Errorf("faultvfs: make %q the default VFS: SQLite error %d", name, rc)
	}
	return nil
}

// The SQLite open flags that say what a file is.
const (
	trackedTypes = sqlite3.SQLITE_OPEN_MAIN_DB | sqlite3.SQLITE_OPEN_MAIN_JOURNAL |
		sqlite3.SQLITE_OPEN_WAL | sqlite3.SQLITE_OPEN_SUPER_JOURNAL
	dirSyncTypes = sqlite3.SQLITE_OPEN_MAIN_JOURNAL | sqlite3.SQLITE_OPEN_WAL | sqlite3.SQLITE_OPEN_SUPER_JOURNAL
)

func vfsOpen(tls *libc.TLS, pVfs uintptr, zName uintptr, pFile uintptr, flags int32, pOutFlags uintptr) int32 {
	v, _ := getHandle((*cVFS)(at(pVfs)).FpAppData).(*shimVFS)
	head := (*shimFile)(at(pFile))
	head.base.FpMethods = 0
	head.handle = 0
	if v == nil {
		return sqlite3.SQLITE_CANTOPEN
	}
	rf := pFile + realOffset
	(*cFile)(at(rf)).FpMethods = 0

	of := &openFile{vfs: v}
	if zName != 0 && flags&sqlite3.SQLITE_OPEN_DELETEONCLOSE == 0 && flags&trackedTypes != 0 {
		of.path = filepath.Clean(libc.GoString(zName))
		of.dirSync = flags&sqlite3.SQLITE_OPEN_CREATE != 0 && flags&dirSyncTypes != 0
	}
	j := v.journal
	create := of.path != "" && flags&sqlite3.SQLITE_OPEN_CREATE != 0
	existed := true
	if create {
		j.ns.Lock()
		defer j.ns.Unlock()
		_, err := os.Lstat(of.path)
		existed = err == nil
	}
	base := (*cVFS)(at(v.base))
	rc := fn[fnOpen](base.FxOpen)(tls, v.base, zName, rf, flags, pOutFlags)
	rm := (*cFile)(at(rf)).FpMethods
	if rm == 0 {
		return rc
	}
	if rc == sqlite3.SQLITE_OK && create && !existed {
		if err := j.recordCreate(of.path); err != nil {
			fn[fnClose]((*cIOMethods)(at(rm)).FxClose)(tls, rf)
			(*cFile)(at(rf)).FpMethods = 0
			return sqlite3.SQLITE_IOERR
		}
	}
	version := (*cIOMethods)(at(rm)).FiVersion
	version = max(1, min(version, int32(len(shimIO)-1)))
	head.handle = addHandle(of)
	head.base.FpMethods = uintptr(unsafe.Pointer(&shimIO[version]))
	return rc
}

func vfsDelete(tls *libc.TLS, pVfs uintptr, zPath uintptr, dirSync int32) int32 {
	v, _ := getHandle((*cVFS)(at(pVfs)).FpAppData).(*shimVFS)
	if v == nil {
		return sqlite3.SQLITE_IOERR_DELETE
	}
	base := (*cVFS)(at(v.base))
	path := ""
	if zPath != 0 {
		path = filepath.Clean(libc.GoString(zPath))
	}
	if path == "" || !filepath.IsAbs(path) {
		return fn[fnDelete](base.FxDelete)(tls, v.base, zPath, dirSync)
	}
	j := v.journal
	j.ns.Lock()
	defer j.ns.Unlock()
	recorded := false
	if _, err := os.Lstat(path); err == nil {
		if err := j.recordDelete(path); err != nil {
			return sqlite3.SQLITE_IOERR_DELETE
		}
		recorded = true
	}
	rc := fn[fnDelete](base.FxDelete)(tls, v.base, zPath, dirSync)
	if rc != sqlite3.SQLITE_OK {
		if recorded {
			if _, err := os.Lstat(path); err == nil {
				if err := j.recordUndelete(path); err != nil {
					return sqlite3.SQLITE_IOERR_DELETE
				}
			}
		}
		return rc
	}
	if dirSync&1 != 0 {
		if err := j.recordDirSync(filepath.Dir(path)); err != nil {
			return sqlite3.SQLITE_IOERR_DELETE
		}
	}
	return rc
}

// file returns the openFile of one of our files.
func file(pFile uintptr) *openFile {
	of, _ := getHandle((*shimFile)(at(pFile)).handle).(*openFile)
	return of
}

func xClose(tls *libc.TLS, pFile uintptr) int32 {
	head := (*shimFile)(at(pFile))
	rf, rm := realFile(pFile)
	rc := int32(sqlite3.SQLITE_OK)
	if rm != nil && rm.FxClose != 0 {
		rc = fn[fnClose](rm.FxClose)(tls, rf)
	}
	if head.handle != 0 {
		dropHandle(head.handle)
		head.handle = 0
	}
	return rc
}

func xRead(tls *libc.TLS, pFile, zBuf uintptr, iAmt int32, iOfst int64) int32 {
	rf, rm := realFile(pFile)
	return fn[fnReadWrite](rm.FxRead)(tls, rf, zBuf, iAmt, iOfst)
}

// sqliteFile reads a file through the wrapped VFS's methods, so that
// recording opens no second descriptor of it: closing one would drop the
// POSIX locks SQLite holds on the file.
type sqliteFile struct {
	tls *libc.TLS
	rf  uintptr
	m   *cIOMethods
}

func (f sqliteFile) size() (int64, error) {
	p := sqlite3.Xsqlite3_malloc64(f.tls, 8)
	if p == 0 {
		return 0, errors.New("faultvfs: out of memory")
	}
	defer sqlite3.Xsqlite3_free(f.tls, p)
	if rc := fn[fnFileSize](f.m.FxFileSize)(f.tls, f.rf, p); rc != sqlite3.SQLITE_OK {
		return 0, fmt.Errorf("faultvfs: file size: SQLite error %d", rc)
	}
	return *(*int64)(at(p)), nil
}

func (f sqliteFile) readAt(b []byte, off int64) error {
	const chunk = 1 << 20
	n := min(len(b), chunk)
	if n == 0 {
		return nil
	}
	p := sqlite3.Xsqlite3_malloc64(f.tls, uint64(n))
	if p == 0 {
		return errors.New("faultvfs: out of memory")
	}
	defer sqlite3.Xsqlite3_free(f.tls, p)
	for len(b) > 0 {
		m := min(len(b), chunk)
		if rc := fn[fnReadWrite](f.m.FxRead)(f.tls, f.rf, p, int32(m), off); rc != sqlite3.SQLITE_OK {
			return fmt.Errorf("faultvfs: read %d bytes at %d: SQLite error %d", m, off, rc)
		}
		copy(b, libc.GoBytes(p, m))
		b = b[m:]
		off += int64(m)
	}
	return nil
}

func xWrite(tls *libc.TLS, pFile, zBuf uintptr, iAmt int32, iOfst int64) int32 {
	rf, rm := realFile(pFile)
	of := file(pFile)
	if of == nil || of.path == "" {
		return fn[fnReadWrite](rm.FxWrite)(tls, rf, zBuf, iAmt, iOfst)
	}
	j := of.vfs.journal
	defer j.lockPath(of.path).Unlock()
	if err := j.recordWrite(of.path, sqliteFile{tls, rf, rm}, iOfst, int(iAmt)); err != nil {
		return sqlite3.SQLITE_IOERR_WRITE
	}
	return fn[fnReadWrite](rm.FxWrite)(tls, rf, zBuf, iAmt, iOfst)
}

func xTruncate(tls *libc.TLS, pFile uintptr, size int64) int32 {
	rf, rm := realFile(pFile)
	of := file(pFile)
	if of == nil || of.path == "" {
		return fn[fnTruncate](rm.FxTruncate)(tls, rf, size)
	}
	j := of.vfs.journal
	defer j.lockPath(of.path).Unlock()
	if err := j.recordResize(of.path, sqliteFile{tls, rf, rm}, size); err != nil {
		return sqlite3.SQLITE_IOERR_TRUNCATE
	}
	return fn[fnTruncate](rm.FxTruncate)(tls, rf, size)
}

func xSync(tls *libc.TLS, pFile uintptr, flags int32) int32 {
	rf, rm := realFile(pFile)
	of := file(pFile)
	if of == nil || of.path == "" {
		return fn[fnSync](rm.FxSync)(tls, rf, flags)
	}
	j := of.vfs.journal
	defer j.lockPath(of.path).Unlock()
	if of.dirSync {
		j.ns.Lock()
		defer j.ns.Unlock()
	}
	rc := fn[fnSync](rm.FxSync)(tls, rf, flags)
	if rc != sqlite3.SQLITE_OK {
		return rc
	}
	if err := j.recordSync(of.path); err != nil {
		return sqlite3.SQLITE_IOERR_FSYNC
	}
	if of.dirSync {
		of.dirSync = false
		if err := j.recordDirSync(filepath.Dir(of.path)); err != nil {
			return sqlite3.SQLITE_IOERR_FSYNC
		}
	}
	return rc
}

func xFileSize(tls *libc.TLS, pFile, pSize uintptr) int32 {
	rf, rm := realFile(pFile)
	return fn[fnFileSize](rm.FxFileSize)(tls, rf, pSize)
}

func xLock(tls *libc.TLS, pFile uintptr, lock int32) int32 {
	rf, rm := realFile(pFile)
	return fn[fnLock](rm.FxLock)(tls, rf, lock)
}

func xUnlock(tls *libc.TLS, pFile uintptr, lock int32) int32 {
	rf, rm := realFile(pFile)
	return fn[fnLock](rm.FxUnlock)(tls, rf, lock)
}

func xCheckReservedLock(tls *libc.TLS, pFile, pResOut uintptr) int32 {
	rf, rm := realFile(pFile)
	return fn[fnCheckLock](rm.FxCheckReservedLock)(tls, rf, pResOut)
}

// xFileControl passes every request through; a size hint, with which the
// unix VFS may extend the file outside xWrite, is journaled as a resize
// first.
func xFileControl(tls *libc.TLS, pFile uintptr, op int32, pArg uintptr) int32 {
	rf, rm := realFile(pFile)
	of := file(pFile)
	if op == sqlite3.SQLITE_FCNTL_SIZE_HINT && of != nil && of.path != "" && pArg != 0 {
		j := of.vfs.journal
		defer j.lockPath(of.path).Unlock()
		f := sqliteFile{tls, rf, rm}
		size, err := f.size()
		if err != nil {
			return sqlite3.SQLITE_IOERR
		}
		if hint := *(*int64)(at(pArg)); hint > size {
			if err := j.recordResize(of.path, f, hint); err != nil {
				return sqlite3.SQLITE_IOERR
			}
		}
	}
	return fn[fnFileCtl](rm.FxFileControl)(tls, rf, op, pArg)
}

func xSectorSize(tls *libc.TLS, pFile uintptr) int32 {
	rf, rm := realFile(pFile)
	return fn[fnInt](rm.FxSectorSize)(tls, rf)
}

func xDeviceCharacteristics(tls *libc.TLS, pFile uintptr) int32 {
	rf, rm := realFile(pFile)
	return fn[fnInt](rm.FxDeviceCharacteristics)(tls, rf)
}

func xShmMap(tls *libc.TLS, pFile uintptr, iPg, pgsz, bExtend int32, pp uintptr) int32 {
	rf, rm := realFile(pFile)
	return fn[fnShmMap](rm.FxShmMap)(tls, rf, iPg, pgsz, bExtend, pp)
}

func xShmLock(tls *libc.TLS, pFile uintptr, offset, n, flags int32) int32 {
	rf, rm := realFile(pFile)
	return fn[fnShmLock](rm.FxShmLock)(tls, rf, offset, n, flags)
}

func xShmBarrier(tls *libc.TLS, pFile uintptr) {
	rf, rm := realFile(pFile)
	fn[fnShmBarrier](rm.FxShmBarrier)(tls, rf)
}

func xShmUnmap(tls *libc.TLS, pFile uintptr, deleteFlag int32) int32 {
	rf, rm := realFile(pFile)
	return fn[fnShmUnmap](rm.FxShmUnmap)(tls, rf, deleteFlag)
}

func xFetch(tls *libc.TLS, pFile uintptr, iOfst int64, iAmt int32, pp uintptr) int32 {
	rf, rm := realFile(pFile)
	return fn[fnFetch](rm.FxFetch)(tls, rf, iOfst, iAmt, pp)
}

func xUnfetch(tls *libc.TLS, pFile uintptr, iOfst int64, p uintptr) int32 {
	rf, rm := realFile(pFile)
	return fn[fnUnfetch](rm.FxUnfetch)(tls, rf, iOfst, p)
}
