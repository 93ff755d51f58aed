package sqldb_test

import (
	"context"
	"database/sql"
	"testing"

	"github.com/welkin-atproto/welkin/internal/sqldb"
	"github.com/welkin-atproto/welkin/internal/sqldb/sqldbtest"
)

func TestReleaseMemory(t *testing.T) {
	ctx := context.Background()
	db := sqldbtest.OpenSQLite(t, sqldb.Config{MaxReaders: 3})
	if _, err := db.SQL().ExecContext(ctx, `CREATE TABLE t (k INTEGER PRIMARY KEY, v TEXT)`); err != nil {
		t.Fatal(err)
	}
	if _, err := db.SQL().ExecContext(ctx, `INSERT INTO t (v) VALUES ('a'), ('b'), ('c')`); err != nil {
		t.Fatal(err)
	}
	// Three reader connections: two go back idle, one stays in use.
	var conns [3]*sql.Conn
	for i := range conns {
		c, err := db.Reader().Conn(ctx)
		if err != nil {
			t.Fatal(err)
		}
		var n int
		if err := c.QueryRowContext(ctx, `SELECT count(*) FROM t`).Scan(&n); err != nil || n != 3 {
			t.Fatalf("reader %d: count = %d, %v", i, n, err)
		}
		conns[i] = c
	}
	conns[0].Close()
	conns[1].Close()
	if st := db.Reader().Stats(); st.Idle != 2 || st.InUse != 1 {
		t.Fatalf("before: reader pool %+v, want 2 idle and 1 in use", st)
	}

	if err := db.ReleaseMemory(ctx); err != nil {
		t.Fatal(err)
	}
	if st := db.Reader().Stats(); st.Idle != 0 || st.InUse != 1 || st.OpenConnections != 1 {
		t.Fatalf("after: reader pool %+v, want only the connection in use", st)
	}
	// The connection in use still works and, returned, is kept idle again.
	conns[2].Close()
	if st := db.Reader().Stats(); st.Idle != 1 {
		t.Fatalf("after returning the busy reader: pool %+v, want it idle", st)
	}
	var v string
	if err := db.Reader().QueryRowContext(ctx, `SELECT v FROM t WHERE k = 2`).Scan(&v); err != nil || v != "b" {
		t.Fatalf("read after release: %q, %v", v, err)
	}
	if _, err := db.SQL().ExecContext(ctx, `INSERT INTO t (v) VALUES ('d')`); err != nil {
		t.Fatalf("write after release: %v", err)
	}
}

func TestReleaseMemoryClosed(t *testing.T) {
	db := sqldbtest.OpenSQLite(t, sqldb.Config{})
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	if err := db.ReleaseMemory(context.Background()); err == nil {
		t.Fatal("ReleaseMemory on a closed database: no error")
	}
}

func TestReleaseMemoryPostgres(t *testing.T) {
	db := sqldbtest.OpenPostgres(t, sqldb.Config{})
	if err := db.ReleaseMemory(context.Background()); err != nil {
		t.Fatal(err)
	}
	var one int
	if err := db.Reader().QueryRowContext(context.Background(), `SELECT 1`).Scan(&one); err != nil || one != 1 {
		t.Fatalf("query after release: %d, %v", one, err)
	}
}
