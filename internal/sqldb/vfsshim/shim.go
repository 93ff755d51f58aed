// Package vfsshim holds what a SQLite VFS written in Go over the
// transpiled SQLite of modernc.org/sqlite needs in order to wrap another
// VFS: the C structures' names, the conversions between C function
// pointers and Go functions, the layout of a wrapping file object, a
// registry that maps C-side handles to Go values, method tables that pass
// every call through to the wrapped file, and the registration itself.
//
// A wrapping VFS registers with Register, giving its own xOpen (which
// opens the wrapped file with Registered.OpenBase and then calls SetFile)
// and, optionally, its own xDelete; its file methods start as
// PassThrough's and replace the ones they change.
package vfsshim

import (
	"errors"
	"fmt"
	"sync"
	"unsafe"

	"modernc.org/libc"
	sqlite3 "modernc.org/sqlite/lib"
)

// The C structures of the VFS interface, as the transpiled SQLite lays
// them out. Function pointers in them are Go func values stored as
// uintptr, the convention of modernc.org's C-to-Go translation.
type (
	CVFS       = sqlite3.Tsqlite3_vfs
	CIOMethods = sqlite3.Tsqlite3_io_methods
	CFile      = sqlite3.Tsqlite3_file
)

// The function types of the VFS and file methods.
type (
	FnClose      = func(*libc.TLS, uintptr) int32
	FnReadWrite  = func(*libc.TLS, uintptr, uintptr, int32, int64) int32
	FnTruncate   = func(*libc.TLS, uintptr, int64) int32
	FnSync       = func(*libc.TLS, uintptr, int32) int32
	FnFileSize   = func(*libc.TLS, uintptr, uintptr) int32
	FnLock       = func(*libc.TLS, uintptr, int32) int32
	FnCheckLock  = func(*libc.TLS, uintptr, uintptr) int32
	FnFileCtl    = func(*libc.TLS, uintptr, int32, uintptr) int32
	FnInt        = func(*libc.TLS, uintptr) int32
	FnShmMap     = func(*libc.TLS, uintptr, int32, int32, int32, uintptr) int32
	FnShmLock    = func(*libc.TLS, uintptr, int32, int32, int32) int32
	FnShmBarrier = func(*libc.TLS, uintptr)
	FnShmUnmap   = func(*libc.TLS, uintptr, int32) int32
	FnFetch      = func(*libc.TLS, uintptr, int64, int32, uintptr) int32
	FnUnfetch    = func(*libc.TLS, uintptr, int64, uintptr) int32
	FnOpen       = func(*libc.TLS, uintptr, uintptr, uintptr, int32, uintptr) int32
	FnDelete     = func(*libc.TLS, uintptr, uintptr, int32) int32
)

// At turns an address in SQLite's memory (never Go's heap) into a pointer.
func At(a uintptr) unsafe.Pointer { return *(*unsafe.Pointer)(unsafe.Pointer(&a)) }

// Fn turns a C function pointer into the Go function it is.
func Fn[F any](p uintptr) F { return *(*F)(unsafe.Pointer(&p)) }

// SetFn stores a Go function in a C function pointer slot.
func SetFn[F any](slot *uintptr, f F) { *(*F)(unsafe.Pointer(slot)) = f }

// head is the start of every file object a shim opens; the wrapped VFS's
// file object follows at realOffset.
type head struct {
	base   CFile   // pMethods: the shim's method table
	handle uintptr // key of the file's Go value in the registry
}

// realOffset is where the wrapped VFS's file starts inside ours, rounded
// up so that it keeps the alignment of a malloc'ed block.
const realOffset = (unsafe.Sizeof(head{}) + 15) &^ 15

// Real returns the wrapped VFS's file object inside the shim's, and its
// methods (nil before the wrapped open succeeded).
func Real(pFile uintptr) (uintptr, *CIOMethods) {
	p := pFile + realOffset
	m := (*CFile)(At(p)).FpMethods
	if m == 0 {
		return p, nil
	}
	return p, (*CIOMethods)(At(m))
}

// Begin readies a shim's file object for the wrapped VFS's open: it
// clears both method pointers, so that a failed open leaves nothing for
// SQLite to close, and returns the address to open the wrapped file at.
func Begin(pFile uintptr) uintptr {
	h := (*head)(At(pFile))
	h.base.FpMethods = 0
	h.handle = 0
	rf := pFile + realOffset
	(*CFile)(At(rf)).FpMethods = 0
	return rf
}

// SetFile finishes an open: it registers v as the file's Go value and
// installs the method table of tables whose version is the wrapped
// file's, so that the shim claims no more than the wrapped file provides
// (SQLite consults iVersion to decide, for one, whether WAL is possible).
// It returns the wrapped file's version.
func SetFile(pFile uintptr, tables *[4]CIOMethods, v any) int32 {
	_, rm := Real(pFile)
	version := max(1, min(rm.FiVersion, int32(len(tables)-1)))
	h := (*head)(At(pFile))
	h.handle = addHandle(v)
	h.base.FpMethods = uintptr(unsafe.Pointer(&tables[version]))
	return version
}

// File returns the Go value SetFile registered for a file, or nil.
func File(pFile uintptr) any {
	return getHandle((*head)(At(pFile)).handle)
}

// sizeOf is the size of a shim's file object over a wrapped VFS whose
// file objects take base bytes.
func sizeOf(base int32) int32 { return int32(realOffset) + base }

var (
	handleMu sync.RWMutex
	handles  = map[uintptr]any{}
	next     uintptr
)

// addHandle registers a Go value and returns the nonzero handle under
// which C memory can refer to it.
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
	handleMu.RLock()
	defer handleMu.RUnlock()
	return handles[h]
}

// dropHandle forgets a handle.
func dropHandle(h uintptr) {
	handleMu.Lock()
	delete(handles, h)
	handleMu.Unlock()
}

// Close is a file's xClose: it closes the wrapped file and forgets the
// file's Go value. A shim that keeps state per file closes it first and
// then calls Close.
func Close(tls *libc.TLS, pFile uintptr) int32 {
	h := (*head)(At(pFile))
	rf, rm := Real(pFile)
	rc := int32(sqlite3.SQLITE_OK)
	if rm != nil && rm.FxClose != 0 {
		rc = Fn[FnClose](rm.FxClose)(tls, rf)
	}
	if h.handle != 0 {
		dropHandle(h.handle)
		h.handle = 0
	}
	return rc
}

// PassThrough returns method tables, one per iVersion, whose every method
// calls the wrapped file's (xClose through Close).
func PassThrough() (t [4]CIOMethods) {
	for v := range t {
		m := &t[v]
		m.FiVersion = int32(v)
		SetFn[FnClose](&m.FxClose, Close)
		SetFn[FnReadWrite](&m.FxRead, read)
		SetFn[FnReadWrite](&m.FxWrite, write)
		SetFn[FnTruncate](&m.FxTruncate, truncate)
		SetFn[FnSync](&m.FxSync, fsync)
		SetFn[FnFileSize](&m.FxFileSize, fileSize)
		SetFn[FnLock](&m.FxLock, lock)
		SetFn[FnLock](&m.FxUnlock, unlock)
		SetFn[FnCheckLock](&m.FxCheckReservedLock, checkReservedLock)
		SetFn[FnFileCtl](&m.FxFileControl, fileControl)
		SetFn[FnInt](&m.FxSectorSize, sectorSize)
		SetFn[FnInt](&m.FxDeviceCharacteristics, deviceCharacteristics)
		if v >= 2 {
			SetFn[FnShmMap](&m.FxShmMap, shmMap)
			SetFn[FnShmLock](&m.FxShmLock, shmLock)
			SetFn[FnShmBarrier](&m.FxShmBarrier, shmBarrier)
			SetFn[FnShmUnmap](&m.FxShmUnmap, shmUnmap)
		}
		if v >= 3 {
			SetFn[FnFetch](&m.FxFetch, fetch)
			SetFn[FnUnfetch](&m.FxUnfetch, unfetch)
		}
	}
	return t
}

func read(tls *libc.TLS, pFile, zBuf uintptr, iAmt int32, iOfst int64) int32 {
	rf, rm := Real(pFile)
	return Fn[FnReadWrite](rm.FxRead)(tls, rf, zBuf, iAmt, iOfst)
}

func write(tls *libc.TLS, pFile, zBuf uintptr, iAmt int32, iOfst int64) int32 {
	rf, rm := Real(pFile)
	return Fn[FnReadWrite](rm.FxWrite)(tls, rf, zBuf, iAmt, iOfst)
}

func truncate(tls *libc.TLS, pFile uintptr, size int64) int32 {
	rf, rm := Real(pFile)
	return Fn[FnTruncate](rm.FxTruncate)(tls, rf, size)
}

func fsync(tls *libc.TLS, pFile uintptr, flags int32) int32 {
	rf, rm := Real(pFile)
	return Fn[FnSync](rm.FxSync)(tls, rf, flags)
}

func fileSize(tls *libc.TLS, pFile, pSize uintptr) int32 {
	rf, rm := Real(pFile)
	return Fn[FnFileSize](rm.FxFileSize)(tls, rf, pSize)
}

func lock(tls *libc.TLS, pFile uintptr, l int32) int32 {
	rf, rm := Real(pFile)
	return Fn[FnLock](rm.FxLock)(tls, rf, l)
}

func unlock(tls *libc.TLS, pFile uintptr, l int32) int32 {
	rf, rm := Real(pFile)
	return Fn[FnLock](rm.FxUnlock)(tls, rf, l)
}

func checkReservedLock(tls *libc.TLS, pFile, pResOut uintptr) int32 {
	rf, rm := Real(pFile)
	return Fn[FnCheckLock](rm.FxCheckReservedLock)(tls, rf, pResOut)
}

func fileControl(tls *libc.TLS, pFile uintptr, op int32, pArg uintptr) int32 {
	rf, rm := Real(pFile)
	return Fn[FnFileCtl](rm.FxFileControl)(tls, rf, op, pArg)
}

func sectorSize(tls *libc.TLS, pFile uintptr) int32 {
	rf, rm := Real(pFile)
	return Fn[FnInt](rm.FxSectorSize)(tls, rf)
}

func deviceCharacteristics(tls *libc.TLS, pFile uintptr) int32 {
	rf, rm := Real(pFile)
	return Fn[FnInt](rm.FxDeviceCharacteristics)(tls, rf)
}

func shmMap(tls *libc.TLS, pFile uintptr, iPg, pgsz, bExtend int32, pp uintptr) int32 {
	rf, rm := Real(pFile)
	return Fn[FnShmMap](rm.FxShmMap)(tls, rf, iPg, pgsz, bExtend, pp)
}

func shmLock(tls *libc.TLS, pFile uintptr, offset, n, flags int32) int32 {
	rf, rm := Real(pFile)
	return Fn[FnShmLock](rm.FxShmLock)(tls, rf, offset, n, flags)
}

func shmBarrier(tls *libc.TLS, pFile uintptr) {
	rf, rm := Real(pFile)
	Fn[FnShmBarrier](rm.FxShmBarrier)(tls, rf)
}

func shmUnmap(tls *libc.TLS, pFile uintptr, deleteFlag int32) int32 {
	rf, rm := Real(pFile)
	return Fn[FnShmUnmap](rm.FxShmUnmap)(tls, rf, deleteFlag)
}

func fetch(tls *libc.TLS, pFile uintptr, iOfst int64, iAmt int32, pp uintptr) int32 {
	rf, rm := Real(pFile)
	return Fn[FnFetch](rm.FxFetch)(tls, rf, iOfst, iAmt, pp)
}

func unfetch(tls *libc.TLS, pFile uintptr, iOfst int64, p uintptr) int32 {
	rf, rm := Real(pFile)
	return Fn[FnUnfetch](rm.FxUnfetch)(tls, rf, iOfst, p)
}

// Registered is a VFS registered with Register.
type Registered struct {
	Name string
	Base uintptr // the wrapped sqlite3_vfs
	CVFS uintptr // the shim's sqlite3_vfs
}

// vfsEntry is what a registered VFS's pAppData refers to.
type vfsEntry struct {
	base  uintptr
	value any
}

// Register registers with SQLite, for the life of the process, a VFS
// named name that wraps the VFS base (0: the current default), with open
// as its xOpen and del, when not nil, as its xDelete (otherwise base's,
// called with base's own sqlite3_vfs, as a Go shim under us looks itself
// up there); every other VFS method is base's. appData is the Go value
// that VFSValue returns for it.
func Register(name string, base uintptr, appData any, open FnOpen, del FnDelete) (*Registered, error) {
	if name == "" {
		return nil, errors.New("vfsshim: empty VFS name")
	}
	tls := libc.NewTLS()
	defer tls.Close()
	cname, err := libc.CString(name)
	if err != nil {
		return nil, fmt.Errorf("vfsshim: %w", err)
	}
	if sqlite3.Xsqlite3_vfs_find(tls, cname) != 0 {
		libc.Xfree(tls, cname)
		return nil, fmt.Errorf("vfsshim: a VFS named %q is already registered", name)
	}
	if base == 0 {
		if base = sqlite3.Xsqlite3_vfs_find(tls, 0); base == 0 {
			libc.Xfree(tls, cname)
			return nil, errors.New("vfsshim: SQLite has no default VFS")
		}
	}
	cvfs := sqlite3.Xsqlite3_malloc64(tls, uint64(unsafe.Sizeof(CVFS{})))
	if cvfs == 0 {
		libc.Xfree(tls, cname)
		return nil, errors.New("vfsshim: out of memory")
	}
	c := (*CVFS)(At(cvfs))
	*c = *(*CVFS)(At(base))
	c.FpNext = 0
	c.FszOsFile = sizeOf(c.FszOsFile)
	c.FzName = cname
	c.FpAppData = addHandle(&vfsEntry{base: base, value: appData})
	SetFn[FnOpen](&c.FxOpen, open)
	if del == nil {
		del = deleteBase
	}
	SetFn[FnDelete](&c.FxDelete, del)
	if rc := sqlite3.Xsqlite3_vfs_register(tls, cvfs, 0); rc != sqlite3.SQLITE_OK {
		dropHandle(c.FpAppData)
		sqlite3.Xsqlite3_free(tls, cvfs)
		libc.Xfree(tls, cname)
		return nil, fmt.Errorf("vfsshim: register VFS %q: SQLite error %d", name, rc)
	}
	return &Registered{Name: name, Base: base, CVFS: cvfs}, nil
}

// MakeDefault makes a registered VFS SQLite's default.
func (r *Registered) MakeDefault() error {
	tls := libc.NewTLS()
	defer tls.Close()
	if rc := sqlite3.Xsqlite3_vfs_register(tls, r.CVFS, 1); rc != sqlite3.SQLITE_OK {
		return fmt.Errorf("vfsshim: make %q the default VFS: SQLite error %d", r.Name, rc)
	}
	return nil
}

// VFSValue returns the Go value given to Register for the VFS pVfs, or
// nil.
func VFSValue(pVfs uintptr) any {
	if e, ok := getHandle((*CVFS)(At(pVfs)).FpAppData).(*vfsEntry); ok {
		return e.value
	}
	return nil
}

// deleteBase is the xDelete of a shim that keeps base's.
func deleteBase(tls *libc.TLS, pVfs, zPath uintptr, dirSync int32) int32 {
	e, ok := getHandle((*CVFS)(At(pVfs)).FpAppData).(*vfsEntry)
	if !ok {
		return sqlite3.SQLITE_IOERR_DELETE
	}
	base := (*CVFS)(At(e.base))
	return Fn[FnDelete](base.FxDelete)(tls, e.base, zPath, dirSync)
}

// OpenBase calls the wrapped VFS's xOpen for the shim file pFile.
func (r *Registered) OpenBase(tls *libc.TLS, zName, pFile uintptr, flags int32, pOutFlags uintptr) int32 {
	base := (*CVFS)(At(r.Base))
	return Fn[FnOpen](base.FxOpen)(tls, r.Base, zName, Begin(pFile), flags, pOutFlags)
}

// DeleteBase calls the wrapped VFS's xDelete.
func (r *Registered) DeleteBase(tls *libc.TLS, zPath uintptr, dirSync int32) int32 {
	base := (*CVFS)(At(r.Base))
	return Fn[FnDelete](base.FxDelete)(tls, r.Base, zPath, dirSync)
}
