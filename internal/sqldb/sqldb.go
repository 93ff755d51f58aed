package sqldb

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"time"
)

// Dialect identifies the SQL backend behind a DB.
type Dialect int

const (
	// SQLite is the embedded backend (modernc.org/sqlite).
	SQLite Dialect = iota + 1
	// Postgres is the PostgreSQL backend (pgx).
	Postgres
)

// String returns "sqlite" or "postgres".
func (d Dialect) String() string {
	switch d {
	case SQLite:
		return "sqlite"
	case Postgres:
		return "postgres"
	default:
		return fmt.Sprintf("Dialect(%d)", int(d))
	}
}

// Synchronous is an SQLite synchronous setting.
type Synchronous string

// The SQLite synchronous settings. SyncFull, the default, makes every
// committed transaction durable before the commit returns.
const (
	SyncOff    Synchronous = "OFF"
	SyncNormal Synchronous = "NORMAL"
	SyncFull   Synchronous = "FULL"
	SyncExtra  Synchronous = "EXTRA"
)

// Defaults used when the corresponding Config field is zero.
const (
	DefaultBusyTimeout = 5 * time.Second
	DefaultTxAttempts  = 5
	DefaultMaxConns    = 16
	minReaders         = 4
)

// Config says which database to open and how.
type Config struct {
	// URL selects the backend. postgres://... or postgresql://... open
	// PostgreSQL (any parameter pgx understands may be given, including
	// run-time parameters such as search_path). sqlite:///abs/path.db,
	// sqlite://rel/path.db or a plain file path open SQLite. The sqlite: form
	// accepts the query parameters synchronous, busy_timeout (a Go duration
	// or milliseconds) and readers, which override the fields below.
	URL string

	// Synchronous is the SQLite synchronous setting; empty means SyncFull.
	Synchronous Synchronous
	// BusyTimeout is how long an SQLite connection waits for a lock held by
	// another connection or process before failing with SQLITE_BUSY; zero
	// means DefaultBusyTimeout.
	BusyTimeout time.Duration
	// MaxReaders is the size of the SQLite read-only connection pool; zero
	// means max(4, GOMAXPROCS).
	MaxReaders int
	// CacheKiB bounds the page cache of each SQLite connection, in KiB;
	// zero leaves SQLite's default (2,048 KiB). A service that keeps many
	// small databases open at once (the PDS's one per account) sets it
	// low: the operating system's page cache still holds the file.
	CacheKiB int
	// SpillPages, if set, lets the writer connection's dirty pages grow to
	// this many pages before SQLite writes them into the WAL in the middle
	// of a transaction (PRAGMA cache_spill). Below it, a transaction larger
	// than CacheKiB keeps its changes in memory until it commits; above
	// it, each spilled page that changes again is written again.
	SpillPages int
	// ReaderIdle closes an SQLite reader connection after it has been idle
	// this long; zero means 5 minutes.
	ReaderIdle time.Duration

	// MaxConns bounds the PostgreSQL connection pool; zero means
	// DefaultMaxConns.
	MaxConns int

	// TxAttempts bounds how many times Tx runs a transaction that keeps
	// failing with a retryable error; zero means DefaultTxAttempts.
	TxAttempts int
	// OnRetry, if set, is called before a transaction is retried, with the
	// number of the attempt that failed (from 1) and its error.
	OnRetry func(attempt int, err error)
}

// DB is an open database: on SQLite a writer connection and a pool of
// readers, on PostgreSQL one pool.
type DB struct {
	cfg     Config
	dialect Dialect
	writer  *sql.DB
	reader  *sql.DB
	path    string      // SQLite file, absolute
	sync    Synchronous // SQLite: the writer's synchronous setting
	readers int         // SQLite: the size of the reader pool

	writerStmts, readerStmts *stmtCache
}

// Open opens the database cfg.URL names, creating an SQLite file (and its
// directory) if missing, and checks that it can be reached.
func Open(ctx context.Context, cfg Config) (*DB, error) {
	u := strings.TrimSpace(cfg.URL)
	if u == "" {
		return nil, errors.New("sqldb: empty database URL")
	}
	lower := strings.ToLower(u)
	switch {
	case strings.HasPrefix(lower, "postgres://"), strings.HasPrefix(lower, "postgresql://"):
		return openPostgres(ctx, cfg, u)
	case strings.HasPrefix(lower, "sqlite:"):
		path, err := parseSQLiteURL(u, &cfg)
		if err != nil {
			return nil, err
		}
		return openSQLite(ctx, cfg, path)
	case strings.Contains(u, "://"):
		return nil, fmt.Errorf("sqldb: unsupported database URL scheme in %q (want postgres://, postgresql://, sqlite:// or a file path)", redact(u))
	default:
		return openSQLite(ctx, cfg, u)
	}
}

// Dialect reports the backend.
func (db *DB) Dialect() Dialect { return db.dialect }

// SQL returns the handle for writes (and reads that must see the latest
// committed state). On SQLite it has a single connection.
func (db *DB) SQL() *sql.DB { return db.writer }

// Reader returns the handle for reads. On SQLite it is a pool of read-only
// connections that in WAL mode never wait for the writer; on PostgreSQL it
// is the same pool as SQL.
func (db *DB) Reader() *sql.DB { return db.reader }

// Path returns the absolute path of the SQLite file, or "" on PostgreSQL.
func (db *DB) Path() string { return db.path }

// Config returns the configuration the DB was opened with, so that a second,
// independent handle to the same database can be opened (as another process
// would).
func (db *DB) Config() Config { return db.cfg }

// Rebind rewrites a query written with ? placeholders for the DB's dialect.
func (db *DB) Rebind(query string) string { return Rebind(db.dialect, query) }

// Close closes all connections.
func (db *DB) Close() error {
	var errs []error
	if db.readerStmts != nil {
		errs = append(errs, db.readerStmts.close())
	}
	if db.writerStmts != nil && db.writerStmts != db.readerStmts {
		errs = append(errs, db.writerStmts.close())
	}
	if db.reader != nil && db.reader != db.writer {
		errs = append(errs, db.reader.Close())
	}
	if db.writer != nil {
		if db.dialect == SQLite {
			// Let SQLite refresh its query planner statistics; harmless
			// if it fails.
			ctx, cancel := context.WithTimeout(context.Background(), time.Second)
			_, _ = db.writer.ExecContext(ctx, "PRAGMA optimize")
			cancel()
		}
		errs = append(errs, db.writer.Close())
	}
	return errors.Join(errs...)
}

// redact hides a password in a URL for error messages.
func redact(u string) string {
	scheme, rest, ok := strings.Cut(u, "://")
	if !ok {
		return u
	}
	authority, path := rest, ""
	if i := strings.IndexAny(rest, "/?"); i >= 0 {
		authority, path = rest[:i], rest[i:]
	}
	at := strings.LastIndex(authority, "@")
	if at < 0 {
		return u
	}
	user, _, hasPass := strings.Cut(authority[:at], ":")
	if !hasPass {
		return u
	}
	return scheme + "://" + user + ":xxxxx" + authority[at:] + path
}
