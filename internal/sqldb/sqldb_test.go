package sqldb_test

import (
	"context"
	"database/sql"
	"errors"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"modernc.org/sqlite"

	"github.com/welkin-atproto/welkin/internal/sqldb"
	"github.com/welkin-atproto/welkin/internal/sqldb/sqldbtest"
)

// testCtx bounds a test so that a deadlock fails it instead of hanging.
func testCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	t.Cleanup(cancel)
	return ctx
}

func TestOpenBothBackends(t *testing.T) {
	sqldbtest.ForEachBackend(t, func(t *testing.T, db *sqldb.DB) {
		ctx := testCtx(t)
		want := sqldb.SQLite
		if t.Name() == "TestOpenBothBackends/postgres" {
			want = sqldb.Postgres
		}
		if db.Dialect() != want {
			t.Fatalf("Dialect() = %v, want %v", db.Dialect(), want)
		}
		if _, err := db.SQL().ExecContext(ctx, "CREATE TABLE kv (k TEXT PRIMARY KEY, v TEXT NOT NULL)"); err != nil {
			t.Fatal(err)
		}
		if _, err := db.SQL().ExecContext(ctx, db.Rebind("INSERT INTO kv (k, v) VALUES (?, ?)"), "a?", "x"); err != nil {
			t.Fatal(err)
		}
		// A ? inside a literal survives Rebind and reaches the database.
		var lit, v string
		err := db.Reader().QueryRowContext(ctx, db.Rebind("SELECT 'it''s ?', v FROM kv WHERE k = ?"), "a?").Scan(&lit, &v)
		if err != nil {
			t.Fatal(err)
		}
		if lit != "it's ?" || v != "x" {
			t.Fatalf("got %q, %q", lit, v)
		}
		// Unique violations are recognized on both backends.
		_, err = db.SQL().ExecContext(ctx, db.Rebind("INSERT INTO kv (k, v) VALUES (?, ?)"), "a?", "y")
		if !sqldb.IsUniqueViolation(err) {
			t.Fatalf("duplicate insert: got %v, want a unique violation", err)
		}
		if sqldb.IsRetryable(err) {
			t.Fatalf("unique violation reported retryable: %v", err)
		}
	})
}

func TestOpenErrors(t *testing.T) {
	ctx := testCtx(t)
	for _, u := range []string{"", ":memory:", "sqlite://", "mysql://x/y", "sqlite://x.db?bogus=1", "sqlite://x.db?busy_timeout=soon"} {
		if db, err := sqldb.Open(ctx, sqldb.Config{URL: u}); err == nil {
			db.Close()
			t.Errorf("Open(%q) succeeded, want an error", u)
		}
	}
	dir := t.TempDir()
	if db, err := sqldb.Open(ctx, sqldb.Config{URL: filepath.Join(dir, "x.db"), Synchronous: "SOMETIMES"}); err == nil {
		db.Close()
		t.Error("Open with synchronous=SOMETIMES succeeded")
	}
	// The password does not leak into errors.
	_, err := sqldb.Open(ctx, sqldb.Config{URL: "postgres://u:s3cret@127.0.0.1:1/db?connect_timeout=5"})
	if err == nil || strings.Contains(err.Error(), "s3cret") {
		t.Errorf("Open on a closed port: %v", err)
	}
}

func sqlitePragma(t *testing.T, db *sql.DB, name string) string {
	t.Helper()
	var v string
	if err := db.QueryRowContext(t.Context(), "PRAGMA "+name).Scan(&v); err != nil {
		t.Fatalf("PRAGMA %s: %v", name, err)
	}
	return v
}

func TestSQLitePragmas(t *testing.T) {
	db := sqldbtest.OpenSQLite(t, sqldb.Config{})
	for _, h := range []struct {
		name string
		db   *sql.DB
	}{{"writer", db.SQL()}, {"reader", db.Reader()}} {
		for pragma, want := range map[string]string{
			"journal_mode": "wal",
			"synchronous":  "2", // FULL
			"foreign_keys": "1",
			"busy_timeout": "5000",
		} {
			if got := sqlitePragma(t, h.db, pragma); got != want {
				t.Errorf("%s: PRAGMA %s = %s, want %s", h.name, pragma, got, want)
			}
		}
	}
	if got := sqlitePragma(t, db.Reader(), "query_only"); got != "1" {
		t.Errorf("reader: PRAGMA query_only = %s, want 1", got)
	}
	if got := sqlitePragma(t, db.SQL(), "query_only"); got != "0" {
		t.Errorf("writer: PRAGMA query_only = %s, want 0", got)
	}
	if _, err := db.Reader().ExecContext(t.Context(), "CREATE TABLE nope (x)"); err == nil {
		t.Error("a write through Reader() succeeded")
	}

	// Settings from Config and from the URL.
	db2 := sqldbtest.OpenSQLite(t, sqldb.Config{Synchronous: sqldb.SyncNormal, BusyTimeout: 250 * time.Millisecond})
	if got := sqlitePragma(t, db2.SQL(), "synchronous"); got != "1" {
		t.Errorf("Synchronous: NORMAL: PRAGMA synchronous = %s, want 1", got)
	}
	if got := sqlitePragma(t, db2.SQL(), "busy_timeout"); got != "250" {
		t.Errorf("BusyTimeout: 250ms: PRAGMA busy_timeout = %s, want 250", got)
	}
	// CacheKiB bounds the page cache of both kinds of connection; the
	// default is SQLite's own.
	db3 := sqldbtest.OpenSQLite(t, sqldb.Config{CacheKiB: 512})
	for name, c := range map[string]*sql.DB{"writer": db3.SQL(), "reader": db3.Reader()} {
		if got := sqlitePragma(t, c, "cache_size"); got != "-512" {
			t.Errorf("CacheKiB: 512: %s: PRAGMA cache_size = %s, want -512", name, got)
		}
	}
	if got := sqlitePragma(t, db.SQL(), "cache_size"); got != "-2000" {
		t.Errorf("default: PRAGMA cache_size = %s, want -2000", got)
	}
	// SpillPages sets the writer's spill threshold only.
	db4 := sqldbtest.OpenSQLite(t, sqldb.Config{CacheKiB: 512, SpillPages: 3000})
	if got := sqlitePragma(t, db4.SQL(), "cache_spill"); got != "3000" {
		t.Errorf("SpillPages: 3000: writer: PRAGMA cache_spill = %s, want 3000", got)
	}
	if got, def := sqlitePragma(t, db4.Reader(), "cache_spill"), sqlitePragma(t, db3.Reader(), "cache_spill"); got != def {
		t.Errorf("SpillPages: 300: reader: PRAGMA cache_spill = %s, want the default %s", got, def)
	}
	// A URL-escaped ? in the path, a space in a directory name.
	dir := filepath.Join(t.TempDir(), "dir with space")
	path := filepath.Join(dir, "u?.db")
	db3, err := sqldb.Open(t.Context(), sqldb.Config{URL: "sqlite://" + dir + "/u%3F.db?synchronous=extra&busy_timeout=2s&readers=2"})
	if err != nil {
		t.Fatal(err)
	}
	defer db3.Close()
	if db3.Path() != path {
		t.Errorf("Path() = %q, want %q", db3.Path(), path)
	}
	if _, err := os.Stat(path); err != nil {
		t.Errorf("database file not where expected: %v", err)
	}
	if got := sqlitePragma(t, db3.SQL(), "synchronous"); got != "3" {
		t.Errorf("URL synchronous=extra: PRAGMA synchronous = %s, want 3", got)
	}
	if got := sqlitePragma(t, db3.Reader(), "busy_timeout"); got != "2000" {
		t.Errorf("URL busy_timeout=2s: PRAGMA busy_timeout = %s, want 2000", got)
	}
	if got := db3.Reader().Stats().MaxOpenConnections; got != 2 {
		t.Errorf("URL readers=2: reader pool max = %d", got)
	}
	if got := db3.SQL().Stats().MaxOpenConnections; got != 1 {
		t.Errorf("writer pool max = %d, want 1", got)
	}
}

func TestSQLiteFilePermissions(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "data", "pds")
	path := filepath.Join(dir, "pds.db")
	db, err := sqldb.Open(t.Context(), sqldb.Config{URL: "sqlite://" + path})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if _, err := db.SQL().ExecContext(t.Context(), "CREATE TABLE t (x INTEGER)"); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{filepath.Dir(dir), dir} {
		st, err := os.Stat(p)
		if err != nil {
			t.Fatal(err)
		}
		if got := st.Mode().Perm(); got != 0o700 {
			t.Errorf("%s: mode %o, want 700", p, got)
		}
	}
	for _, p := range []string{path, path + "-wal", path + "-shm"} {
		st, err := os.Stat(p)
		if err != nil {
			t.Fatal(err)
		}
		if got := st.Mode().Perm(); got != 0o600 {
			t.Errorf("%s: mode %o, want 600", filepath.Base(p), got)
		}
	}
}

func TestSQLiteReopenKeepsData(t *testing.T) {
	path := filepath.Join(t.TempDir(), "w.db")
	for i := range 2 {
		db, err := sqldb.Open(t.Context(), sqldb.Config{URL: path})
		if err != nil {
			t.Fatal(err)
		}
		if i == 0 {
			_, err = db.SQL().ExecContext(t.Context(), "CREATE TABLE t (x INTEGER); INSERT INTO t VALUES (42)")
		} else {
			var x int
			err = db.Reader().QueryRowContext(t.Context(), "SELECT x FROM t").Scan(&x)
			if err == nil && x != 42 {
				t.Errorf("got %d after reopening, want 42", x)
			}
		}
		if err != nil {
			t.Fatal(err)
		}
		if err := db.Close(); err != nil {
			t.Fatal(err)
		}
	}
}

// While a write transaction is open, readers neither wait for it nor see
// its uncommitted rows.
func TestReadersProceedDuringWrite(t *testing.T) {
	sqldbtest.ForEachBackend(t, func(t *testing.T, db *sqldb.DB) {
		ctx := testCtx(t)
		if _, err := db.SQL().ExecContext(ctx, "CREATE TABLE t (x INTEGER NOT NULL)"); err != nil {
			t.Fatal(err)
		}
		if _, err := db.SQL().ExecContext(ctx, "INSERT INTO t (x) VALUES (1)"); err != nil {
			t.Fatal(err)
		}
		count := func() (int, error) {
			var n int
			err := db.Reader().QueryRowContext(ctx, "SELECT COUNT(*) FROM t").Scan(&n)
			return n, err
		}
		err := db.Tx(ctx, func(tx *sql.Tx) error {
			if _, err := tx.ExecContext(ctx, "INSERT INTO t (x) VALUES (2)"); err != nil {
				return err
			}
			// Several readers at once, while the write lock is held.
			errs := make(chan error, 4)
			for range 4 {
				go func() {
					n, err := count()
					if err == nil && n != 1 {
						err = errors.New("a reader saw an uncommitted row")
					}
					errs <- err
				}()
			}
			for range 4 {
				if err := <-errs; err != nil {
					return err
				}
			}
			return db.ReadTx(ctx, func(rtx *sql.Tx) error {
				var n int
				if err := rtx.QueryRowContext(ctx, "SELECT COUNT(*) FROM t").Scan(&n); err != nil {
					return err
				}
				if n != 1 {
					return errors.New("a read transaction saw an uncommitted row")
				}
				return nil
			})
		})
		if err != nil {
			t.Fatal(err)
		}
		if n, err := count(); err != nil || n != 2 {
			t.Fatalf("after commit: count = %d, %v; want 2", n, err)
		}
	})
}

func TestSQLiteCommitsWithFdatasync(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skipf("fdatasync is only switched on where SQLite can use it; this is %s", runtime.GOOS)
	}
	if !sqlite.FdatasyncEnabled() {
		t.Fatal("SQLite commits with fsync; importing sqldb should have switched it to fdatasync")
	}
}
