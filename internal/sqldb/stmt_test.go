package sqldb_test

import (
	"database/sql"
	"fmt"
	"testing"

	"github.com/welkin-atproto/welkin/internal/sqldb"
	"github.com/welkin-atproto/welkin/internal/sqldb/sqldbtest"
)

func TestStatementCache(t *testing.T) {
	db := sqldbtest.OpenSQLite(t, sqldb.Config{})
	ctx := t.Context()
	if _, err := db.SQL().ExecContext(ctx, `CREATE TABLE kv (k TEXT PRIMARY KEY, v INTEGER)`); err != nil {
		t.Fatal(err)
	}
	const ins = `INSERT INTO kv (k, v) VALUES (?, ?)`
	for i := range 3 {
		err := db.Tx(ctx, func(tx *sql.Tx) error {
			st, err := db.TxStmt(ctx, tx, ins)
			if err != nil {
				return err
			}
			_, err = st.ExecContext(ctx, fmt.Sprint("k", i), i)
			return err
		})
		if err != nil {
			t.Fatalf("insert %d: %v", i, err)
		}
	}
	// A rolled-back transaction leaves nothing behind, and the cached
	// statement still works afterwards.
	err := db.Tx(ctx, func(tx *sql.Tx) error {
		st, err := db.TxStmt(ctx, tx, ins)
		if err != nil {
			return err
		}
		if _, err := st.ExecContext(ctx, "gone", 9); err != nil {
			return err
		}
		return fmt.Errorf("roll back")
	})
	if err == nil {
		t.Fatal("the failing transaction reported no error")
	}
	st, err := db.ReaderStmt(ctx, `SELECT COUNT(*), COALESCE(SUM(v), 0) FROM kv`)
	if err != nil {
		t.Fatal(err)
	}
	var n, sum int
	if err := st.QueryRowContext(ctx).Scan(&n, &sum); err != nil {
		t.Fatal(err)
	}
	if n != 3 || sum != 3 {
		t.Errorf("rows %d, sum %d; want 3 and 3", n, sum)
	}
	st2, err := db.ReaderStmt(ctx, `SELECT COUNT(*), COALESCE(SUM(v), 0) FROM kv`)
	if err != nil || st2 != st {
		t.Errorf("the same query was prepared twice (%v)", err)
	}
	// A bad query is an error, not a cached statement.
	if _, err := db.ReaderStmt(ctx, `SELECT nope FROM kv`); err == nil {
		t.Error("a query naming a missing column was prepared")
	}
	// Queries built at run time fill the cache and are refused.
	var full error
	for i := 0; i < 1000 && full == nil; i++ {
		_, full = db.ReaderStmt(ctx, fmt.Sprintf(`SELECT %d`, i))
	}
	if full == nil {
		t.Error("the statement cache grew without bound")
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := db.ReaderStmt(ctx, `SELECT 1`); err == nil {
		t.Error("a closed database prepared a statement")
	}
}
