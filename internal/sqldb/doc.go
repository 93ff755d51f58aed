// Package sqldb is the storage foundation shared by every Welkin service
// store.
//
// A store is written once against database/sql and runs on two backends:
//
//   - SQLite, the embedded default: one file per store in the data
//     directory, opened through the pure-Go driver modernc.org/sqlite so that
//     Welkin builds without cgo. The file is opened in WAL mode with
//     synchronous=FULL (every acknowledged write is durable), foreign keys on
//     and a busy timeout. A DB holds one writer connection (SQL) and a pool of
//     read-only connections (Reader); in WAL mode readers never wait for the
//     writer.
//     Every connection goes through the VFS of the subpackage walbatch,
//     which passes a commit's WAL frames to the kernel in one write, and
//     SQLite syncs with fdatasync where the system has it (fdatasync.go).
//   - PostgreSQL, for scale-out, through github.com/jackc/pgx/v5 and its
//     database/sql adapter. SQL and Reader return the same pool.
//
// Open picks the backend from Config.URL: postgres:// or postgresql:// select
// PostgreSQL; sqlite:///path/to/file.db or a plain file path select SQLite.
//
// Queries are written with ? placeholders and passed through Rebind, which
// turns them into $1..$n for PostgreSQL. Rebind leaves ? alone inside string
// literals, quoted identifiers, comments and dollar-quoted strings; ?? stands
// for a literal ? operator (such as jsonb's) in PostgreSQL-only queries.
//
// Writes go through Tx (or TxWith), which retries the whole transaction a
// bounded number of times when SQLite reports the database busy or locked or
// PostgreSQL reports a serialization failure or deadlock. The function given
// to Tx may therefore run more than once and must not have side effects
// outside the transaction. Inside it, use only the *sql.Tx: on SQLite the
// writer has a single connection, which the transaction holds.
//
// Migrate brings the schema of one component (a store; several may share one
// database) up to date from an ordered list of versioned migrations, recorded
// in the schema_migrations table. Each migration runs in its own transaction,
// serialized between processes (an advisory lock on PostgreSQL, the write
// lock on SQLite), so concurrent starts apply each migration exactly once. A
// database whose recorded version is newer than the code knows is refused
// with a *SchemaTooNewError.
//
// The subpackage sqldbtest runs a test against both backends.
package sqldb
