package sqldb

import (
	"context"
	"path/filepath"
	"testing"
	"time"
)

// A statement being prepared on the writer pool waits for the pool's one
// connection; the transaction holding that connection must still be able
// to use the cache (TxStmt) so that it can finish and give the connection
// back. This was a deadlock when the cache held its lock while preparing.
func TestStmtCachePrepareWhileTxHoldsWriter(t *testing.T) {
	ctx := context.Background()
	db, err := Open(ctx, Config{URL: filepath.Join(t.TempDir(), "t.db")})
	if err != nil {
		t.Fatal(err)
	}
	// Closed only on success: after a deadlock, Close would hang too.
	tx, err := db.SQL().BeginTx(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	prepared := make(chan error, 1)
	go func() {
		_, err := db.writerStmts.get(ctx, "SELECT 1")
		prepared <- err
	}()
	// Wait until the prepare is queued for the connection tx holds.
	deadline := time.Now().Add(10 * time.Second)
	for db.SQL().Stats().WaitCount == 0 {
		if time.Now().After(deadline) {
			t.Fatal("the prepare never waited for the writer's connection")
		}
		time.Sleep(time.Millisecond)
	}
	used := make(chan error, 1)
	go func() {
		st, err := db.TxStmt(ctx, tx, "SELECT 2")
		if err == nil {
			var n int
			err = st.QueryRowContext(ctx).Scan(&n)
		}
		used <- err
	}()
	select {
	case err := <-used:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("TxStmt blocked behind a prepare waiting for the transaction's own connection")
	}
	if err := tx.Commit(); err != nil {
		t.Fatal(err)
	}
	if err := <-prepared; err != nil {
		t.Fatal(err)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
}
