package walbatch_test

import (
	"context"
	"database/sql"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"

	"modernc.org/libc"
	sqlite3 "modernc.org/sqlite/lib"

	"github.com/welkin-atproto/welkin/internal/sqldb"
	"github.com/welkin-atproto/welkin/internal/sqldb/vfsshim"
	"github.com/welkin-atproto/welkin/internal/sqldb/walbatch"
)

// onDisk copies db's file and WAL as they are on disk now, which is what a
// process killed at this moment would leave, and counts the rows a new
// connection recovers from the copy.
func onDisk(t *testing.T, db *sqldb.DB) int {
	t.Helper()
	dir := t.TempDir()
	for _, suffix := range []string{"", "-wal"} {
		in, err := os.Open(db.Path() + suffix)
		if err != nil {
			t.Fatal(err)
		}
		out, err := os.Create(filepath.Join(dir, "copy.sqlite"+suffix))
		if err == nil {
			_, err = io.Copy(out, in)
			err = errors.Join(err, out.Close())
		}
		in.Close()
		if err != nil {
			t.Fatal(err)
		}
	}
	c, err := sql.Open("sqlite", "file:"+filepath.Join(dir, "copy.sqlite"))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	var n int
	if err := c.QueryRow(`SELECT count(*) FROM t`).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

// TestSpilledCommitIsOnDisk: a transaction larger than the cache spills
// pages to the WAL and rewrites some of them, and SQLite then rewrites
// the checksums of the frames after them, the commit frame's last. All of
// it must be in the file once the commit has returned, without a sync.
func TestSpilledCommitIsOnDisk(t *testing.T) {
	ctx := context.Background()
	db := open(t, 64)
	if _, err := db.SQL().Exec(`PRAGMA wal_autocheckpoint=8192`); err != nil {
		t.Fatal(err)
	}
	if err := insert(ctx, db, 0, 100); err != nil {
		t.Fatal(err)
	}
	if err := insert(ctx, db, 100, 5000); err != nil {
		t.Fatal(err)
	}
	if got := onDisk(t, db); got != 5000 {
		t.Fatalf("5,000 rows committed, the files on disk hold %d", got)
	}
}

// A VFS under walbatch whose WAL writes fail while failWAL is set.
var (
	failWAL    atomic.Bool
	failTables = vfsshim.PassThrough()
	failReg    *vfsshim.Registered
)

func init() {
	for v := range failTables {
		vfsshim.SetFn[vfsshim.FnReadWrite](&failTables[v].FxWrite, func(tls *libc.TLS, pFile, zBuf uintptr, iAmt int32, iOfst int64) int32 {
			if wal, _ := vfsshim.File(pFile).(bool); wal && failWAL.Load() {
				return sqlite3.SQLITE_IOERR_WRITE
			}
			rf, rm := vfsshim.Real(pFile)
			return vfsshim.Fn[vfsshim.FnReadWrite](rm.FxWrite)(tls, rf, zBuf, iAmt, iOfst)
		})
	}
}

func failOpen(tls *libc.TLS, pVfs, zName, pFile uintptr, flags int32, pOutFlags uintptr) int32 {
	rc := failReg.OpenBase(tls, zName, pFile, flags, pOutFlags)
	if _, rm := vfsshim.Real(pFile); rm != nil {
		wal := zName != 0 && flags&sqlite3.SQLITE_OPEN_WAL != 0 && strings.HasSuffix(libc.GoString(zName), "-wal")
		vfsshim.SetFile(pFile, &failTables, wal)
	}
	return rc
}

// TestFailedCommitStaysFailed: a commit whose frames could not be written
// reports an error, and no later write brings it back.
func TestFailedCommitStaysFailed(t *testing.T) {
	ctx := context.Background()
	if failReg == nil {
		var err error
		if failReg, err = vfsshim.Register("walbatch-test-fail", 0, nil, failOpen, nil); err != nil {
			t.Fatal(err)
		}
	}
	// sqldb opens through walbatch over the default VFS: make it ours
	// for this test's database.
	tls := libc.NewTLS()
	prev := sqlite3.Xsqlite3_vfs_find(tls, 0)
	tls.Close()
	if err := failReg.MakeDefault(); err != nil {
		t.Fatal(err)
	}
	db := open(t, 0)
	tls = libc.NewTLS()
	sqlite3.Xsqlite3_vfs_register(tls, prev, 1)
	tls.Close()

	if err := insert(ctx, db, 0, 100); err != nil {
		t.Fatal(err)
	}
	failWAL.Store(true)
	if err := insert(ctx, db, 100, 110); err == nil {
		t.Fatal("a commit whose WAL writes failed reported success")
	}
	failWAL.Store(false)
	// The writer reads, and a transaction that rolls back writes frames
	// it never commits: neither may put the failed commit on disk.
	var n int
	if err := db.SQL().QueryRow(`SELECT count(*) FROM t`).Scan(&n); err != nil || n != 100 {
		t.Fatalf("after the failed commit the writer sees %d rows (%v), want 100", n, err)
	}
	if err := db.Tx(ctx, func(tx *sql.Tx) error {
		if _, err := tx.ExecContext(ctx, `INSERT INTO t (id, k, body) VALUES (1000, x'00', x'00')`); err != nil {
			return err
		}
		return errors.New("roll back")
	}); err == nil {
		t.Fatal("rolled back transaction reported success")
	}
	if got := onDisk(t, db); got != 100 {
		t.Fatalf("the files on disk hold %d rows, want the 100 committed", got)
	}
	if err := insert(ctx, db, 100, 120); err != nil {
		t.Fatal(err)
	}
	check(t, db, 120)
}

// TestPaddedCommitsAreWhole: with synchronous=FULL on a file without
// powersafe overwrite, SQLite pads a commit to a sector boundary and
// splits the last frame at the point it syncs. Another connection must
// read every commit whole.
func TestPaddedCommitsAreWhole(t *testing.T) {
	name, err := walbatch.Register()
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "padded.sqlite")
	open := func(pragmas string) *sql.DB {
		d, err := sql.Open("sqlite", "file:"+path+"?vfs="+name+"&psow=0"+pragmas)
		if err != nil {
			t.Fatal(err)
		}
		d.SetMaxOpenConns(1)
		t.Cleanup(func() { d.Close() })
		return d
	}
	w := open("&_pragma=journal_mode(WAL)&_pragma=synchronous(FULL)")
	if _, err := w.Exec(`CREATE TABLE t (id INTEGER PRIMARY KEY, b BLOB)`); err != nil {
		t.Fatal(err)
	}
	r := open("")
	for i := range 50 {
		if _, err := w.Exec(`INSERT INTO t (id, b) VALUES (?, randomblob(300))`, i); err != nil {
			t.Fatal(err)
		}
		var n int
		var ok string
		if err := r.QueryRow(`SELECT count(*) FROM t`).Scan(&n); err != nil || n != i+1 {
			t.Fatalf("after commit %d the reader sees %d rows (%v)", i, n, err)
		}
		if err := r.QueryRow(`PRAGMA integrity_check`).Scan(&ok); err != nil || ok != "ok" {
			t.Fatalf("after commit %d: integrity_check %q (%v)", i, ok, err)
		}
	}
}
