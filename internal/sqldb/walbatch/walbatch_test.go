package walbatch_test

import (
	"bytes"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"path/filepath"
	"sync"
	"testing"

	"github.com/welkin-atproto/welkin/internal/sqldb"
	"github.com/welkin-atproto/welkin/internal/sqldb/walbatch"
)

func open(t *testing.T, cacheKiB int) *sqldb.DB {
	t.Helper()
	db, err := sqldb.Open(context.Background(), sqldb.Config{
		URL: filepath.Join(t.TempDir(), "db.sqlite"), Synchronous: sqldb.SyncNormal, CacheKiB: cacheKiB})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	if _, err := db.SQL().Exec(`CREATE TABLE t (id INTEGER PRIMARY KEY, k BLOB NOT NULL UNIQUE, body BLOB NOT NULL)`); err != nil {
		t.Fatal(err)
	}
	return db
}

// body is row id's body, its length depending on id.
func body(id int) []byte { return bytes.Repeat([]byte{byte(id), byte(id >> 8)}, 50+id*37%900) }

// key is row id's key, spread over the index as CIDs are.
func key(id int) []byte { return []byte(fmt.Sprintf("%08x", uint32(id)*2654435761)) }

func insert(ctx context.Context, db *sqldb.DB, from, to int) error {
	return db.Tx(ctx, func(tx *sql.Tx) error {
		for id := from; id < to; id++ {
			if _, err := tx.ExecContext(ctx, `INSERT INTO t (id, k, body) VALUES (?, ?, ?)`, id, key(id), body(id)); err != nil {
				return err
			}
		}
		return nil
	})
}

// check reads every row back through a reader and the integrity check.
func check(t *testing.T, db *sqldb.DB, n int) {
	t.Helper()
	var ok string
	if err := db.Reader().QueryRow(`PRAGMA integrity_check`).Scan(&ok); err != nil || ok != "ok" {
		t.Fatalf("integrity_check = %q, %v", ok, err)
	}
	rows, err := db.Reader().Query(`SELECT id, k, body FROM t ORDER BY id`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	want := 0
	for rows.Next() {
		var id int
		var k, b []byte
		if err := rows.Scan(&id, &k, &b); err != nil {
			t.Fatal(err)
		}
		if id != want || !bytes.Equal(k, key(id)) || !bytes.Equal(b, body(id)) {
			t.Fatalf("row %d (want %d) does not hold what was written", id, want)
		}
		want++
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	if want != n {
		t.Fatalf("%d rows, want %d", want, n)
	}
}

func TestCommitsAreOneWrite(t *testing.T) {
	ctx := context.Background()
	db := open(t, 0)
	if err := insert(ctx, db, 0, 200); err != nil {
		t.Fatal(err)
	}
	// A commit touching a few pages: SQLite writes a header and a page per
	// frame; one write carries them all.
	w0, p0 := walbatch.Counts()
	for i := range 20 {
		if err := insert(ctx, db, 200+i*3, 200+i*3+3); err != nil {
			t.Fatal(err)
		}
	}
	w1, p1 := walbatch.Counts()
	writes, passed := w1-w0, p1-p0
	if writes < 20*4 {
		t.Fatalf("SQLite made %d WAL writes for 20 commits; want at least two frames each", writes)
	}
	if passed > 20 {
		t.Errorf("%d writes passed on for 20 commits (of %d SQLite made); want one per commit", passed, writes)
	}
	check(t, db, 260)
}

func TestLargeAndSpilledTransactions(t *testing.T) {
	ctx := context.Background()
	// A 64 KiB cache makes SQLite spill pages to the WAL mid-transaction,
	// and rewrite frames it spilled; 5,000 rows are well over the largest
	// write the unix VFS takes at once.
	db := open(t, 64)
	if err := insert(ctx, db, 0, 5000); err != nil {
		t.Fatal(err)
	}
	check(t, db, 5000)
	// A failed transaction leaves no trace, and the next one lands.
	err := db.Tx(ctx, func(tx *sql.Tx) error {
		for id := 5000; id < 8000; id++ {
			if _, err := tx.ExecContext(ctx, `INSERT INTO t (id, k, body) VALUES (?, ?, ?)`, id, key(id), body(id)); err != nil {
				return err
			}
		}
		return errors.New("roll back")
	})
	if err == nil {
		t.Fatal("rolled back transaction reported success")
	}
	check(t, db, 5000)
	if err := insert(ctx, db, 5000, 5100); err != nil {
		t.Fatal(err)
	}
	if _, err := db.SQL().Exec(`PRAGMA wal_checkpoint(TRUNCATE)`); err != nil {
		t.Fatal(err)
	}
	if err := insert(ctx, db, 5100, 5200); err != nil {
		t.Fatal(err)
	}
	check(t, db, 5200)
}

// TestReadersSeeWholeCommits runs readers beside a writer: every snapshot a
// reader takes must hold whole commits, each commit adding 10 rows whose
// keys and bodies are right.
func TestReadersSeeWholeCommits(t *testing.T) {
	ctx := context.Background()
	db := open(t, 128)
	const commits = 300
	done := make(chan struct{})
	var wg sync.WaitGroup
	errs := make(chan error, 4)
	for range 3 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-done:
					return
				default:
				}
				var n, bad int
				err := db.Reader().QueryRowContext(ctx, `SELECT count(*), coalesce(sum(length(body) != 2*(50+id*37%900)), 0) FROM t`).Scan(&n, &bad)
				if err != nil {
					errs <- err
					return
				}
				if n%10 != 0 || bad != 0 {
					errs <- fmt.Errorf("a reader saw %d rows, %d of them wrong", n, bad)
					return
				}
			}
		}()
	}
	for i := range commits {
		if err := insert(ctx, db, i*10, i*10+10); err != nil {
			t.Fatal(err)
		}
	}
	close(done)
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	check(t, db, commits*10)
}
