package sqldb

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"hash/fnv"
)

// Migration is one versioned step of a component's schema.
//
// SQL is run on both backends unless SQLite or Postgres overrides it for
// that backend; it may hold several statements separated by semicolons. Up,
// if set, runs after the SQL in the same transaction (for data migrations
// that are easier in Go). A migration must not contain statements that
// cannot run inside a transaction (such as CREATE INDEX CONCURRENTLY) nor
// manage transactions itself.
type Migration struct {
	Version  int
	SQL      string
	SQLite   string
	Postgres string
	Up       func(ctx context.Context, tx *sql.Tx, d Dialect) error
}

func (m Migration) sqlFor(d Dialect) string {
	switch {
	case d == SQLite && m.SQLite != "":
		return m.SQLite
	case d == Postgres && m.Postgres != "":
		return m.Postgres
	default:
		return m.SQL
	}
}

// SchemaTooNewError is returned by Migrate when the database was migrated by
// a newer Welkin than this one.
type SchemaTooNewError struct {
	Component string
	Version   int // recorded in the database
	Known     int // the newest this code knows
}

func (e *SchemaTooNewError) Error() string {
	return fmt.Sprintf("database schema of %s is at version %d, this Welkin knows up to %d; upgrade Welkin",
		e.Component, e.Version, e.Known)
}

const (
	migrationsTable = "schema_migrations"
	// lockNamespace keeps the advisory lock keys of migrations apart from
	// any other user of advisory locks.
	lockNamespace = "welkin/sqldb/migrate\x00"
)

// Migrate brings the schema of component up to date: every migration whose
// version is above the one recorded for component in schema_migrations is
// applied in ascending order, each in its own transaction together with the
// row that records it. Running it again does nothing. Versions must be
// positive and strictly ascending; they need not be contiguous, so old
// migrations can be squashed into a new baseline.
//
// If the database records a version above the last in migrations, Migrate
// changes nothing and returns a *SchemaTooNewError.
//
// Several processes may call Migrate at once on the same database: on
// PostgreSQL each step takes a transaction-scoped advisory lock keyed by the
// component, on SQLite the write lock, and rereads the recorded version
// under it, so each migration is applied exactly once.
func Migrate(ctx context.Context, db *DB, component string, migrations []Migration) error {
	if component == "" {
		return errors.New("sqldb: migrate: empty component name")
	}
	if err := validateMigrations(db.dialect, component, migrations); err != nil {
		return err
	}
	if err := ensureMigrationsTable(ctx, db); err != nil {
		return fmt.Errorf("sqldb: migrate %s: create %s: %w", component, migrationsTable, err)
	}
	known := 0
	if len(migrations) > 0 {
		known = migrations[len(migrations)-1].Version
	}
	current, err := SchemaVersion(ctx, db, component)
	if err != nil {
		return err
	}
	if current > known {
		return &SchemaTooNewError{Component: component, Version: current, Known: known}
	}
	for _, m := range migrations {
		if m.Version <= current {
			continue
		}
		err := db.Tx(ctx, func(tx *sql.Tx) error {
			if err := lockComponent(ctx, db, tx, component); err != nil {
				return err
			}
			cur, err := versionIn(ctx, db, tx, component)
			if err != nil {
				return err
			}
			if cur > known {
				return &SchemaTooNewError{Component: component, Version: cur, Known: known}
			}
			if cur >= m.Version {
				return nil // another process applied it meanwhile
			}
			if q := m.sqlFor(db.dialect); q != "" {
				if _, err := tx.ExecContext(ctx, q); err != nil {
					return err
				}
			}
			if m.Up != nil {
				if err := m.Up(ctx, tx, db.dialect); err != nil {
					return err
				}
			}
			_, err = tx.ExecContext(ctx, db.Rebind(
				"INSERT INTO "+migrationsTable+" (component, version) VALUES (?, ?)"),
				component, m.Version)
			return err
		})
		if err != nil {
			var tooNew *SchemaTooNewError
			if errors.As(err, &tooNew) {
				return err
			}
			return fmt.Errorf("sqldb: migrate %s to version %d: %w", component, m.Version, err)
		}
	}
	return nil
}

// SchemaVersion returns the schema version recorded for component, 0 if
// none (or if no component was ever migrated in this database).
func SchemaVersion(ctx context.Context, db *DB, component string) (int, error) {
	var v sql.NullInt64
	err := db.writer.QueryRowContext(ctx, db.Rebind(
		"SELECT MAX(version) FROM "+migrationsTable+" WHERE component = ?"), component).Scan(&v)
	if err != nil {
		if !migrationsTableExists(ctx, db) {
			return 0, nil
		}
		return 0, fmt.Errorf("sqldb: read schema version of %s: %w", component, err)
	}
	return int(v.Int64), nil
}

func migrationsTableExists(ctx context.Context, db *DB) bool {
	var q string
	if db.dialect == Postgres {
		q = "SELECT 1 FROM information_schema.tables WHERE table_schema = current_schema() AND table_name = '" + migrationsTable + "'"
	} else {
		q = "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = '" + migrationsTable + "'"
	}
	var one int
	return db.writer.QueryRowContext(ctx, q).Scan(&one) == nil
}

func versionIn(ctx context.Context, db *DB, tx *sql.Tx, component string) (int, error) {
	var v sql.NullInt64
	err := tx.QueryRowContext(ctx, db.Rebind(
		"SELECT MAX(version) FROM "+migrationsTable+" WHERE component = ?"), component).Scan(&v)
	return int(v.Int64), err
}

func validateMigrations(d Dialect, component string, migrations []Migration) error {
	prev := 0
	for i, m := range migrations {
		if m.Version <= prev {
			return fmt.Errorf("sqldb: migrate %s: migration %d has version %d, want above %d (versions must be positive and strictly ascending)",
				component, i, m.Version, prev)
		}
		if m.sqlFor(d) == "" && m.Up == nil {
			return fmt.Errorf("sqldb: migrate %s: migration %d has nothing to run on %s", component, m.Version, d)
		}
		prev = m.Version
	}
	return nil
}

func ensureMigrationsTable(ctx context.Context, db *DB) error {
	var ddl string
	if db.dialect == Postgres {
		ddl = `CREATE TABLE IF NOT EXISTS ` + migrationsTable + ` (
	component  TEXT        NOT NULL,
	version    INTEGER     NOT NULL,
	applied_at TIMESTAMPTZ NOT NULL DEFAULT now(),
	PRIMARY KEY (component, version)
)`
	} else {
		ddl = `CREATE TABLE IF NOT EXISTS ` + migrationsTable + ` (
	component  TEXT    NOT NULL,
	version    INTEGER NOT NULL,
	applied_at TEXT    NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')),
	PRIMARY KEY (component, version)
)`
	}
	if migrationsTableExists(ctx, db) {
		return nil
	}
	return db.Tx(ctx, func(tx *sql.Tx) error {
		// Concurrent CREATE TABLE IF NOT EXISTS can fail on PostgreSQL
		// (a unique violation in its catalog), so serialize it.
		if err := lockComponent(ctx, db, tx, ""); err != nil {
			return err
		}
		_, err := tx.ExecContext(ctx, ddl)
		return err
	})
}

// lockComponent takes, on PostgreSQL, an advisory lock keyed by component
// that is released when tx ends. On SQLite the transaction already holds
// the database's write lock (BEGIN IMMEDIATE).
func lockComponent(ctx context.Context, db *DB, tx *sql.Tx, component string) error {
	if db.dialect != Postgres {
		return nil
	}
	h := fnv.New64a()
	h.Write([]byte(lockNamespace))
	h.Write([]byte(component))
	_, err := tx.ExecContext(ctx, "SELECT pg_advisory_xact_lock($1)", int64(h.Sum64()))
	return err
}
