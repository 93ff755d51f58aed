package sqldb_test

import (
	"context"
	"database/sql"
	"errors"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/welkin-atproto/welkin/internal/sqldb"
	"github.com/welkin-atproto/welkin/internal/sqldb/sqldbtest"
)

func TestTxCommitRollbackPanic(t *testing.T) {
	sqldbtest.ForEachBackend(t, func(t *testing.T, db *sqldb.DB) {
		ctx := testCtx(t)
		if _, err := db.SQL().ExecContext(ctx, "CREATE TABLE t (x INTEGER NOT NULL)"); err != nil {
			t.Fatal(err)
		}
		insert := func(tx *sql.Tx, x int) error {
			_, err := tx.ExecContext(ctx, db.Rebind("INSERT INTO t (x) VALUES (?)"), x)
			return err
		}
		if err := db.Tx(ctx, func(tx *sql.Tx) error { return insert(tx, 1) }); err != nil {
			t.Fatal(err)
		}

		// A non-retryable error is returned as is, after one attempt, and
		// rolls back.
		boom := errors.New("boom")
		calls := 0
		err := db.Tx(ctx, func(tx *sql.Tx) error {
			calls++
			if err := insert(tx, 2); err != nil {
				return err
			}
			return boom
		})
		if err != boom || calls != 1 {
			t.Fatalf("Tx = %v after %d calls, want boom after 1", err, calls)
		}

		// A panic rolls back and leaves the writer usable.
		func() {
			defer func() {
				if recover() == nil {
					t.Fatal("panic did not propagate")
				}
			}()
			_ = db.Tx(ctx, func(tx *sql.Tx) error {
				if err := insert(tx, 3); err != nil {
					return err
				}
				panic("in transaction")
			})
		}()
		if err := db.Tx(ctx, func(tx *sql.Tx) error { return insert(tx, 4) }); err != nil {
			t.Fatal(err)
		}

		var sum int
		if err := db.Reader().QueryRowContext(ctx, "SELECT SUM(x) FROM t").Scan(&sum); err != nil {
			t.Fatal(err)
		}
		if sum != 1+4 {
			t.Fatalf("SUM(x) = %d, want 5 (rows 2 and 3 rolled back)", sum)
		}
	})
}

// Another process holds the SQLite write lock: the transaction's BEGIN
// IMMEDIATE times out with SQLITE_BUSY, and once the lock is released the
// retry succeeds.
func TestTxRetriesSQLiteBusy(t *testing.T) {
	ctx := testCtx(t)
	base := sqldbtest.OpenSQLite(t, sqldb.Config{})
	if _, err := base.SQL().ExecContext(ctx, "CREATE TABLE t (x INTEGER NOT NULL)"); err != nil {
		t.Fatal(err)
	}

	// The other process: a connection holding the write lock.
	blocker, err := base.SQL().Conn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer blocker.Close()
	if _, err := blocker.ExecContext(ctx, "BEGIN IMMEDIATE"); err != nil {
		t.Fatal(err)
	}
	if _, err := blocker.ExecContext(ctx, "INSERT INTO t (x) VALUES (1)"); err != nil {
		t.Fatal(err)
	}

	var retries []error
	cfg := base.Config()
	cfg.BusyTimeout = 20 * time.Millisecond
	cfg.OnRetry = func(attempt int, err error) {
		retries = append(retries, err)
		if attempt == 1 {
			if _, err := blocker.ExecContext(ctx, "COMMIT"); err != nil {
				t.Errorf("releasing the lock: %v", err)
			}
		}
	}
	db, err := sqldb.Open(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()

	calls := 0
	err = db.Tx(ctx, func(tx *sql.Tx) error {
		calls++
		_, err := tx.ExecContext(ctx, "INSERT INTO t (x) VALUES (2)")
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(retries) != 1 || !sqldb.IsRetryable(retries[0]) {
		t.Fatalf("retries: %v, want one SQLITE_BUSY", retries)
	}
	if calls != 1 {
		t.Fatalf("fn ran %d times, want 1 (BEGIN IMMEDIATE failed first)", calls)
	}
	var n int
	if err := db.Reader().QueryRowContext(ctx, "SELECT COUNT(*) FROM t").Scan(&n); err != nil || n != 2 {
		t.Fatalf("COUNT = %d, %v; want 2", n, err)
	}
}

func TestTxGivesUpAfterAttempts(t *testing.T) {
	ctx := testCtx(t)
	base := sqldbtest.OpenSQLite(t, sqldb.Config{})
	blocker, err := base.SQL().Conn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer blocker.Close()
	if _, err := blocker.ExecContext(ctx, "BEGIN IMMEDIATE"); err != nil {
		t.Fatal(err)
	}
	defer blocker.ExecContext(context.Background(), "ROLLBACK")

	cfg := base.Config()
	cfg.BusyTimeout = 10 * time.Millisecond
	cfg.TxAttempts = 3
	var retries atomic.Int32
	cfg.OnRetry = func(int, error) { retries.Add(1) }
	db, err := sqldb.Open(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	err = db.Tx(ctx, func(tx *sql.Tx) error {
		t.Error("fn ran without the write lock")
		return nil
	})
	if !sqldb.IsRetryable(err) || !strings.Contains(err.Error(), "failed 3 times") {
		t.Fatalf("Tx = %v, want SQLITE_BUSY after 3 attempts", err)
	}
	if retries.Load() != 2 {
		t.Fatalf("%d retries, want 2", retries.Load())
	}
}

// A SERIALIZABLE transaction on PostgreSQL whose row is updated by another
// session after its snapshot fails with serialization_failure; Tx runs it
// again, and the second run succeeds.
func TestTxRetriesPostgresSerializationFailure(t *testing.T) {
	ctx := testCtx(t)
	var retries []error
	db := sqldbtest.OpenPostgres(t, sqldb.Config{OnRetry: func(_ int, err error) { retries = append(retries, err) }})
	if _, err := db.SQL().ExecContext(ctx, "CREATE TABLE counter (id INTEGER PRIMARY KEY, n INTEGER NOT NULL); INSERT INTO counter VALUES (1, 0)"); err != nil {
		t.Fatal(err)
	}
	calls := 0
	err := db.TxWith(ctx, &sql.TxOptions{Isolation: sql.LevelSerializable}, func(tx *sql.Tx) error {
		calls++
		var n int
		if err := tx.QueryRowContext(ctx, "SELECT n FROM counter WHERE id = 1").Scan(&n); err != nil {
			return err
		}
		if calls == 1 {
			// Another session commits a change after our snapshot.
			if _, err := db.SQL().ExecContext(ctx, "UPDATE counter SET n = n + 100 WHERE id = 1"); err != nil {
				return err
			}
		}
		_, err := tx.ExecContext(ctx, "UPDATE counter SET n = $1 WHERE id = 1", n+1)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	if calls != 2 || len(retries) != 1 || !sqldb.IsRetryable(retries[0]) {
		t.Fatalf("fn ran %d times with retries %v; want 2 runs after one serialization failure", calls, retries)
	}
	var n int
	if err := db.Reader().QueryRowContext(ctx, "SELECT n FROM counter WHERE id = 1").Scan(&n); err != nil || n != 101 {
		t.Fatalf("n = %d, %v; want 101", n, err)
	}
}

// Concurrent increments through Tx all land, whatever conflicts arise.
func TestTxConcurrentWriters(t *testing.T) {
	sqldbtest.ForEachBackend(t, func(t *testing.T, db *sqldb.DB) {
		ctx := testCtx(t)
		if _, err := db.SQL().ExecContext(ctx, "CREATE TABLE counter (id INTEGER PRIMARY KEY, n INTEGER NOT NULL)"); err != nil {
			t.Fatal(err)
		}
		if _, err := db.SQL().ExecContext(ctx, "INSERT INTO counter (id, n) VALUES (1, 0)"); err != nil {
			t.Fatal(err)
		}
		const workers, each = 8, 20
		errs := make(chan error, workers)
		for range workers {
			go func() {
				var err error
				for range each {
					if err = db.Tx(ctx, func(tx *sql.Tx) error {
						_, err := tx.ExecContext(ctx, "UPDATE counter SET n = n + 1 WHERE id = 1")
						return err
					}); err != nil {
						break
					}
				}
				errs <- err
			}()
		}
		for range workers {
			if err := <-errs; err != nil {
				t.Fatal(err)
			}
		}
		var n int
		if err := db.Reader().QueryRowContext(ctx, "SELECT n FROM counter WHERE id = 1").Scan(&n); err != nil || n != workers*each {
			t.Fatalf("n = %d, %v; want %d", n, err, workers*each)
		}
	})
}
