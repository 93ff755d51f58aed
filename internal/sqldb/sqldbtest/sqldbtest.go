// Package sqldbtest runs store tests against every sqldb backend.
//
// SQLite always runs, on a file in a temporary directory. PostgreSQL runs
// when WELKIN_TEST_POSTGRES holds a connection URL (for example
// postgres://postgres@127.0.0.1:5432/test?sslmode=disable); each test gets a
// fresh schema, dropped when the test ends. Without the variable the
// PostgreSQL subtests are skipped with a message, except under CI=true,
// where they fail.
package sqldbtest

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	_ "github.com/jackc/pgx/v5/stdlib" // registers the "pgx" driver

	"github.com/welkin-atproto/welkin/internal/sqldb"
)

// EnvPostgres names the environment variable with the PostgreSQL URL.
const EnvPostgres = "WELKIN_TEST_POSTGRES"

// ForEachBackend runs fn as the subtests "sqlite" and "postgres", each with
// a freshly opened, empty database that is closed (and on PostgreSQL
// dropped) when the subtest ends.
func ForEachBackend(t *testing.T, fn func(t *testing.T, db *sqldb.DB)) {
	t.Helper()
	t.Run("sqlite", func(t *testing.T) {
		fn(t, OpenSQLite(t, sqldb.Config{}))
	})
	t.Run("postgres", func(t *testing.T) {
		fn(t, OpenPostgres(t, sqldb.Config{}))
	})
}

// OpenSQLite opens a new SQLite database in a temporary directory, with cfg
// apart from its URL, and closes it when the test ends.
func OpenSQLite(t testing.TB, cfg sqldb.Config) *sqldb.DB {
	t.Helper()
	cfg.URL = filepath.Join(t.TempDir(), "welkin.db")
	return open(t, cfg)
}

// OpenPostgres opens a new, empty PostgreSQL schema with cfg apart from its
// URL, and closes and drops it when the test ends. It skips or fails the
// test as the package comment says when WELKIN_TEST_POSTGRES is unset.
func OpenPostgres(t testing.TB, cfg sqldb.Config) *sqldb.DB {
	t.Helper()
	cfg.URL = PostgresSchemaURL(t)
	return open(t, cfg)
}

func open(t testing.TB, cfg sqldb.Config) *sqldb.DB {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	db, err := sqldb.Open(ctx, cfg)
	if err != nil {
		t.Fatalf("sqldbtest: open %s: %v", cfg.URL, err)
	}
	t.Cleanup(func() {
		if err := db.Close(); err != nil {
			t.Errorf("sqldbtest: close: %v", err)
		}
	})
	return db
}

var skipNotice sync.Once

// PostgresURL returns the PostgreSQL URL from WELKIN_TEST_POSTGRES, or skips
// the test (fails it under CI=true) when the variable is unset.
func PostgresURL(t testing.TB) string {
	t.Helper()
	u := strings.TrimSpace(os.Getenv(EnvPostgres))
	if u != "" {
		return u
	}
	msg := EnvPostgres + " is not set, so the PostgreSQL backend is NOT tested; set it to a URL such as postgres://postgres@127.0.0.1:5432/test?sslmode=disable"
	if os.Getenv("CI") == "true" {
		t.Fatalf("sqldbtest: %s (required under CI=true)", msg)
	}
	skipNotice.Do(func() {
		fmt.Fprintf(os.Stderr, "\n*** sqldbtest: %s ***\n\n", msg)
	})
	t.Skip("sqldbtest: " + msg)
	return ""
}

// PostgresSchemaURL creates a schema welkin_test_<random> in the database
// WELKIN_TEST_POSTGRES names, registers its removal (DROP SCHEMA ...
// CASCADE) with t.Cleanup, and returns a URL whose connections use it as
// search_path. Several handles opened on the URL share the schema.
func PostgresSchemaURL(t testing.TB) string {
	t.Helper()
	base := PostgresURL(t)
	pu, err := url.Parse(base)
	if err != nil || (pu.Scheme != "postgres" && pu.Scheme != "postgresql") {
		t.Fatalf("sqldbtest: %s must be a postgres:// URL", EnvPostgres)
	}
	var rnd [8]byte
	if _, err := rand.Read(rnd[:]); err != nil {
		t.Fatal(err)
	}
	schema := "welkin_test_" + hex.EncodeToString(rnd[:])

	admin, err := sql.Open("pgx", base)
	if err != nil {
		t.Fatalf("sqldbtest: %v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if _, err := admin.ExecContext(ctx, "CREATE SCHEMA "+schema); err != nil {
		admin.Close()
		t.Fatalf("sqldbtest: create schema in %s database: %v", EnvPostgres, err)
	}
	t.Cleanup(func() {
		defer admin.Close()
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		if _, err := admin.ExecContext(ctx, "DROP SCHEMA "+schema+" CASCADE"); err != nil {
			t.Errorf("sqldbtest: drop schema %s: %v", schema, err)
		}
	})

	q := pu.Query()
	q.Set("search_path", schema)
	pu.RawQuery = q.Encode()
	return pu.String()
}
