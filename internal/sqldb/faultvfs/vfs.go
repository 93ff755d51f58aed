package faultvfs

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"

	"modernc.org/libc"
	sqlite3 "modernc.org/sqlite/lib"

	"github.com/welkin-atproto/welkin/internal/sqldb/vfsshim"
)

// shimIO holds the method tables of the VFS's files: a pass-through with
// the methods that journal changes replaced.
var shimIO = vfsshim.PassThrough()

func init() {
	for v := range shimIO {
		m := &shimIO[v]
		vfsshim.SetFn[vfsshim.FnReadWrite](&m.FxWrite, xWrite)
		vfsshim.SetFn[vfsshim.FnTruncate](&m.FxTruncate, xTruncate)
		vfsshim.SetFn[vfsshim.FnSync](&m.FxSync, xSync)
		vfsshim.SetFn[vfsshim.FnFileCtl](&m.FxFileControl, xFileControl)
	}
}

// shimVFS is one registered VFS.
type shimVFS struct {
	journal *Journal
	reg     *vfsshim.Registered
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
)

// Register registers with SQLite, for the life of the process, a VFS named
// name that wraps SQLite's default VFS (on Unix, "unix") and records in j
// what it takes to undo every write, truncation and delete that has not
// been synced. Open a database through it with the URI parameter vfs=name,
// or make it the default with MakeDefault.
func Register(name string, j *Journal) error {
	if j == nil {
		return errors.New("faultvfs: nil journal")
	}
	regMu.Lock()
	defer regMu.Unlock()
	if wrapped == 0 {
		tls := libc.NewTLS()
		wrapped = sqlite3.Xsqlite3_vfs_find(tls, 0)
		tls.Close()
		if wrapped == 0 {
			return errors.New("faultvfs: SQLite has no default VFS")
		}
	}
	v := &shimVFS{journal: j}
	reg, err := vfsshim.Register(name, wrapped, v, vfsOpen, vfsDelete)
	if err != nil {
		return fmt.Errorf("faultvfs: %w", err)
	}
	v.reg = reg
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
	if err := v.reg.MakeDefault(); err != nil {
		return fmt.Errorf("faultvfs: %w", err)
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
	v, _ := vfsshim.VFSValue(pVfs).(*shimVFS)
	if v == nil {
		vfsshim.Begin(pFile)
		return sqlite3.SQLITE_CANTOPEN
	}
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
	rc := v.reg.OpenBase(tls, zName, pFile, flags, pOutFlags)
	rf, rm := vfsshim.Real(pFile)
	if rm == nil {
		return rc
	}
	if rc == sqlite3.SQLITE_OK && create && !existed {
		if err := j.recordCreate(of.path); err != nil {
			vfsshim.Fn[vfsshim.FnClose](rm.FxClose)(tls, rf)
			(*vfsshim.CFile)(vfsshim.At(rf)).FpMethods = 0
			return sqlite3.SQLITE_IOERR
		}
	}
	vfsshim.SetFile(pFile, &shimIO, of)
	return rc
}

func vfsDelete(tls *libc.TLS, pVfs uintptr, zPath uintptr, dirSync int32) int32 {
	v, _ := vfsshim.VFSValue(pVfs).(*shimVFS)
	if v == nil {
		return sqlite3.SQLITE_IOERR_DELETE
	}
	path := ""
	if zPath != 0 {
		path = filepath.Clean(libc.GoString(zPath))
	}
	if path == "" || !filepath.IsAbs(path) {
		return v.reg.DeleteBase(tls, zPath, dirSync)
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
	rc := v.reg.DeleteBase(tls, zPath, dirSync)
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
	of, _ := vfsshim.File(pFile).(*openFile)
	return of
}

// sqliteFile reads a file through the wrapped VFS's methods, so that
// recording opens no second descriptor of it: closing one would drop the
// POSIX locks SQLite holds on the file.
type sqliteFile struct {
	tls *libc.TLS
	rf  uintptr
	m   *vfsshim.CIOMethods
}

func (f sqliteFile) size() (int64, error) {
	p := sqlite3.Xsqlite3_malloc64(f.tls, 8)
	if p == 0 {
		return 0, errors.New("faultvfs: out of memory")
	}
	defer sqlite3.Xsqlite3_free(f.tls, p)
	if rc := vfsshim.Fn[vfsshim.FnFileSize](f.m.FxFileSize)(f.tls, f.rf, p); rc != sqlite3.SQLITE_OK {
		return 0, fmt.Errorf("faultvfs: file size: SQLite error %d", rc)
	}
	return *(*int64)(vfsshim.At(p)), nil
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
		if rc := vfsshim.Fn[vfsshim.FnReadWrite](f.m.FxRead)(f.tls, f.rf, p, int32(m), off); rc != sqlite3.SQLITE_OK {
			return fmt.Errorf("faultvfs: read %d bytes at %d: SQLite error %d", m, off, rc)
		}
		copy(b, libc.GoBytes(p, m))
		b = b[m:]
		off += int64(m)
	}
	return nil
}

func xWrite(tls *libc.TLS, pFile, zBuf uintptr, iAmt int32, iOfst int64) int32 {
	rf, rm := vfsshim.Real(pFile)
	of := file(pFile)
	if of == nil || of.path == "" {
		return vfsshim.Fn[vfsshim.FnReadWrite](rm.FxWrite)(tls, rf, zBuf, iAmt, iOfst)
	}
	j := of.vfs.journal
	defer j.lockPath(of.path).Unlock()
	if err := j.recordWrite(of.path, sqliteFile{tls, rf, rm}, iOfst, int(iAmt)); err != nil {
		return sqlite3.SQLITE_IOERR_WRITE
	}
	return vfsshim.Fn[vfsshim.FnReadWrite](rm.FxWrite)(tls, rf, zBuf, iAmt, iOfst)
}

func xTruncate(tls *libc.TLS, pFile uintptr, size int64) int32 {
	rf, rm := vfsshim.Real(pFile)
	of := file(pFile)
	if of == nil || of.path == "" {
		return vfsshim.Fn[vfsshim.FnTruncate](rm.FxTruncate)(tls, rf, size)
	}
	j := of.vfs.journal
	defer j.lockPath(of.path).Unlock()
	if err := j.recordResize(of.path, sqliteFile{tls, rf, rm}, size); err != nil {
		return sqlite3.SQLITE_IOERR_TRUNCATE
	}
	return vfsshim.Fn[vfsshim.FnTruncate](rm.FxTruncate)(tls, rf, size)
}

func xSync(tls *libc.TLS, pFile uintptr, flags int32) int32 {
	rf, rm := vfsshim.Real(pFile)
	of := file(pFile)
	if of == nil || of.path == "" {
		return vfsshim.Fn[vfsshim.FnSync](rm.FxSync)(tls, rf, flags)
	}
	j := of.vfs.journal
	defer j.lockPath(of.path).Unlock()
	if of.dirSync {
		j.ns.Lock()
		defer j.ns.Unlock()
	}
	rc := vfsshim.Fn[vfsshim.FnSync](rm.FxSync)(tls, rf, flags)
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

// xFileControl passes every request through; a size hint, with which the
// unix VFS may extend the file outside xWrite, is journaled as a resize
// first.
func xFileControl(tls *libc.TLS, pFile uintptr, op int32, pArg uintptr) int32 {
	rf, rm := vfsshim.Real(pFile)
	of := file(pFile)
	if op == sqlite3.SQLITE_FCNTL_SIZE_HINT && of != nil && of.path != "" && pArg != 0 {
		j := of.vfs.journal
		defer j.lockPath(of.path).Unlock()
		f := sqliteFile{tls, rf, rm}
		size, err := f.size()
		if err != nil {
			return sqlite3.SQLITE_IOERR
		}
		if hint := *(*int64)(vfsshim.At(pArg)); hint > size {
			if err := j.recordResize(of.path, f, hint); err != nil {
				return sqlite3.SQLITE_IOERR
			}
		}
	}
	return vfsshim.Fn[vfsshim.FnFileCtl](rm.FxFileControl)(tls, rf, op, pArg)
}
