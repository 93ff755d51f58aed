package sqldb_test

import (
	"context"
	"database/sql"
	"errors"
	"strings"
	"sync"
	"testing"

	"github.com/welkin-atproto/welkin/internal/sqldb"
	"github.com/welkin-atproto/welkin/internal/sqldb/sqldbtest"
)

// testMigrations creates tables that fail if created twice and logs every
// application in migration_log, so double application shows.
var testMigrations = []sqldb.Migration{
	{
		Version: 1,
		SQL: `CREATE TABLE migration_log (version INTEGER NOT NULL);
CREATE TABLE accounts (did TEXT PRIMARY KEY, handle TEXT NOT NULL);
INSERT INTO migration_log (version) VALUES (1)`,
	},
	{
		Version:  2,
		SQLite:   `CREATE TABLE blobs (cid TEXT PRIMARY KEY, data BLOB NOT NULL); INSERT INTO migration_log (version) VALUES (2)`,
		Postgres: `CREATE TABLE blobs (cid TEXT PRIMARY KEY, data BYTEA NOT NULL); INSERT INTO migration_log (version) VALUES (2)`,
	},
	{
		Version: 5, // versions need not be contiguous
		SQL:     `ALTER TABLE accounts ADD COLUMN email TEXT`,
		Up: func(ctx context.Context, tx *sql.Tx, d sqldb.Dialect) error {
			_, err := tx.ExecContext(ctx, sqldb.Rebind(d, "INSERT INTO migration_log (version) VALUES (?)"), 5)
			return err
		},
	},
}

func appliedLog(t *testing.T, db *sqldb.DB) []int {
	t.Helper()
	rows, err := db.Reader().QueryContext(t.Context(), "SELECT version FROM migration_log ORDER BY version")
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var vs []int
	for rows.Next() {
		var v int
		if err := rows.Scan(&v); err != nil {
			t.Fatal(err)
		}
		vs = append(vs, v)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return vs
}

func checkApplied(t *testing.T, db *sqldb.DB, component string, want ...int) {
	t.Helper()
	got := appliedLog(t, db)
	if len(got) != len(want) {
		t.Fatalf("migrations applied: %v, want %v", got, want)
	}
	for i := range got {
		if got[i] != want[i] {
			t.Fatalf("migrations applied: %v, want %v", got, want)
		}
	}
	var n int
	if err := db.Reader().QueryRowContext(t.Context(), db.Rebind("SELECT COUNT(*) FROM schema_migrations WHERE component = ?"), component).Scan(&n); err != nil {
		t.Fatal(err)
	}
	if n != len(want) {
		t.Fatalf("schema_migrations has %d rows for %s, want %d", n, component, len(want))
	}
	v, err := sqldb.SchemaVersion(t.Context(), db, component)
	if err != nil {
		t.Fatal(err)
	}
	if v != want[len(want)-1] {
		t.Fatalf("SchemaVersion = %d, want %d", v, want[len(want)-1])
	}
}

func TestMigrate(t *testing.T) {
	sqldbtest.ForEachBackend(t, func(t *testing.T, db *sqldb.DB) {
		ctx := testCtx(t)
		if v, err := sqldb.SchemaVersion(ctx, db, "pds"); err != nil || v != 0 {
			t.Fatalf("SchemaVersion of a new database = %d, %v", v, err)
		}
		// An older Welkin knew only the first migration.
		if err := sqldb.Migrate(ctx, db, "pds", testMigrations[:1]); err != nil {
			t.Fatal(err)
		}
		checkApplied(t, db, "pds", 1)
		// A newer one applies the rest, once.
		for range 3 {
			if err := sqldb.Migrate(ctx, db, "pds", testMigrations); err != nil {
				t.Fatal(err)
			}
			checkApplied(t, db, "pds", 1, 2, 5)
		}
		var applied string
		if err := db.Reader().QueryRowContext(ctx, "SELECT CAST(applied_at AS TEXT) FROM schema_migrations WHERE version = 5").Scan(&applied); err != nil || !strings.HasPrefix(applied, "20") {
			t.Errorf("applied_at = %q, %v", applied, err)
		}
		if _, err := db.SQL().ExecContext(ctx, db.Rebind("INSERT INTO accounts (did, handle, email) VALUES (?, ?, ?)"), "did:plc:x", "x.test", "x@x.test"); err != nil {
			t.Fatalf("schema after migrations: %v", err)
		}

		// Another component in the same database has its own version.
		other := []sqldb.Migration{{Version: 1, SQL: "CREATE TABLE relay_cursor (host TEXT PRIMARY KEY, seq BIGINT NOT NULL)"}}
		if err := sqldb.Migrate(ctx, db, "relay", other); err != nil {
			t.Fatal(err)
		}
		if v, err := sqldb.SchemaVersion(ctx, db, "relay"); err != nil || v != 1 {
			t.Fatalf("SchemaVersion(relay) = %d, %v; want 1", v, err)
		}
		if v, err := sqldb.SchemaVersion(ctx, db, "pds"); err != nil || v != 5 {
			t.Fatalf("SchemaVersion(pds) = %d, %v; want 5", v, err)
		}
	})
}

func TestMigrateRefusesNewerSchema(t *testing.T) {
	sqldbtest.ForEachBackend(t, func(t *testing.T, db *sqldb.DB) {
		ctx := testCtx(t)
		if err := sqldb.Migrate(ctx, db, "pds", testMigrations); err != nil {
			t.Fatal(err)
		}
		err := sqldb.Migrate(ctx, db, "pds", testMigrations[:2])
		var tooNew *sqldb.SchemaTooNewError
		if !errors.As(err, &tooNew) {
			t.Fatalf("Migrate with older code: %v, want a *SchemaTooNewError", err)
		}
		want := "database schema of pds is at version 5, this Welkin knows up to 2; upgrade Welkin"
		if err.Error() != want {
			t.Fatalf("error %q, want %q", err, want)
		}
		if tooNew.Component != "pds" || tooNew.Version != 5 || tooNew.Known != 2 {
			t.Fatalf("error fields %+v", tooNew)
		}
		checkApplied(t, db, "pds", 1, 2, 5)
	})
}

func TestMigrateFailureRollsBack(t *testing.T) {
	sqldbtest.ForEachBackend(t, func(t *testing.T, db *sqldb.DB) {
		ctx := testCtx(t)
		bad := append(append([]sqldb.Migration{}, testMigrations[:2]...), sqldb.Migration{
			Version: 3,
			SQL:     "CREATE TABLE half_done (x INTEGER); INSERT INTO migration_log (version) VALUES (3); SELECT * FROM no_such_table",
		})
		err := sqldb.Migrate(ctx, db, "pds", bad)
		if err == nil || !strings.Contains(err.Error(), "migrate pds to version 3") {
			t.Fatalf("Migrate with a broken migration: %v", err)
		}
		checkApplied(t, db, "pds", 1, 2)
		var n int
		if err := db.Reader().QueryRowContext(ctx, "SELECT COUNT(*) FROM half_done").Scan(&n); err == nil {
			t.Fatal("the failed migration's table exists")
		}
		// Fixed code goes on from version 2.
		if err := sqldb.Migrate(ctx, db, "pds", testMigrations); err != nil {
			t.Fatal(err)
		}
		checkApplied(t, db, "pds", 1, 2, 5)
	})
}

func TestMigrateValidation(t *testing.T) {
	db := sqldbtest.OpenSQLite(t, sqldb.Config{})
	ctx := testCtx(t)
	for name, ms := range map[string][]sqldb.Migration{
		"zero version":             {{Version: 0, SQL: "SELECT 1"}},
		"descending":               {{Version: 2, SQL: "SELECT 1"}, {Version: 1, SQL: "SELECT 1"}},
		"duplicate":                {{Version: 1, SQL: "SELECT 1"}, {Version: 1, SQL: "SELECT 1"}},
		"nothing to run on sqlite": {{Version: 1, Postgres: "SELECT 1"}},
	} {
		if err := sqldb.Migrate(ctx, db, "x", ms); err == nil {
			t.Errorf("%s: Migrate succeeded", name)
		}
	}
	if err := sqldb.Migrate(ctx, db, "", testMigrations); err == nil {
		t.Error("Migrate with an empty component succeeded")
	}
	// Validation happens before anything is written.
	if v, err := sqldb.SchemaVersion(ctx, db, "x"); err != nil || v != 0 {
		t.Errorf("SchemaVersion after failed validation = %d, %v", v, err)
	}
}

// Several processes starting at once each run Migrate on their own handle;
// every migration must be applied exactly once and none may fail.
func TestMigrateConcurrent(t *testing.T) {
	sqldbtest.ForEachBackend(t, func(t *testing.T, db *sqldb.DB) {
		ctx := testCtx(t)
		const procs = 6
		handles := []*sqldb.DB{db}
		for range procs - 1 {
			h, err := sqldb.Open(ctx, db.Config())
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { h.Close() })
			handles = append(handles, h)
		}
		// Two components race too, so that schema_migrations itself is
		// created concurrently by different components.
		other := []sqldb.Migration{
			{Version: 1, SQL: "CREATE TABLE other_log (x INTEGER)"},
			{Version: 2, SQL: "INSERT INTO other_log (x) VALUES (2)"},
		}
		var wg sync.WaitGroup
		errs := make(chan error, 2*procs)
		start := make(chan struct{})
		for _, h := range handles {
			wg.Go(func() {
				<-start
				errs <- sqldb.Migrate(ctx, h, "pds", testMigrations)
			})
			wg.Go(func() {
				<-start
				errs <- sqldb.Migrate(ctx, h, "other", other)
			})
		}
		close(start)
		wg.Wait()
		close(errs)
		for err := range errs {
			if err != nil {
				t.Error(err)
			}
		}
		checkApplied(t, db, "pds", 1, 2, 5)
		var n int
		if err := db.Reader().QueryRowContext(ctx, "SELECT COUNT(*) FROM other_log").Scan(&n); err != nil || n != 1 {
			t.Fatalf("other_log has %d rows (%v), want 1", n, err)
		}
	})
}
