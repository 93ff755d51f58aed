package sqldb

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"time"

	_ "modernc.org/sqlite" // registers the "sqlite" database/sql driver

	"github.com/welkin-atproto/welkin/internal/sqldb/walbatch"
)

// parseSQLiteURL takes the path and the options out of a sqlite: URL:
// sqlite:///abs/file.db, sqlite://rel/file.db or sqlite:rel/file.db, with
// optional ?synchronous=&busy_timeout=&readers= parameters that override cfg.
func parseSQLiteURL(u string, cfg *Config) (string, error) {
	rest := u[len("sqlite:"):]
	rest = strings.TrimPrefix(rest, "//")
	path, query, hasQuery := strings.Cut(rest, "?")
	if p, err := url.PathUnescape(path); err == nil {
		path = p
	}
	if !hasQuery {
		return path, nil
	}
	q, err := url.ParseQuery(query)
	if err != nil {
		return "", fmt.Errorf("sqldb: bad query in SQLite URL: %w", err)
	}
	for key, vals := range q {
		v := vals[len(vals)-1]
		switch key {
		case "synchronous":
			cfg.Synchronous = Synchronous(v)
		case "busy_timeout":
			d, err := time.ParseDuration(v)
			if err != nil {
				ms, err2 := strconv.Atoi(v)
				if err2 != nil {
					return "", fmt.Errorf("sqldb: bad busy_timeout %q in SQLite URL", v)
				}
				d = time.Duration(ms) * time.Millisecond
			}
			cfg.BusyTimeout = d
		case "readers":
			n, err := strconv.Atoi(v)
			if err != nil || n < 1 {
				return "", fmt.Errorf("sqldb: bad readers %q in SQLite URL", v)
			}
			cfg.MaxReaders = n
		default:
			return "", fmt.Errorf("sqldb: unknown parameter %q in SQLite URL (known: synchronous, busy_timeout, readers)", key)
		}
	}
	return path, nil
}

func openSQLite(ctx context.Context, cfg Config, path string) (*DB, error) {
	if path == "" || path == ":memory:" || strings.HasPrefix(path, "file:") {
		return nil, fmt.Errorf("sqldb: SQLite needs a file path, got %q", path)
	}
	sync := SyncFull
	if cfg.Synchronous != "" {
		sync = Synchronous(strings.ToUpper(string(cfg.Synchronous)))
	}
	switch sync {
	case SyncOff, SyncNormal, SyncFull, SyncExtra:
	default:
		return nil, fmt.Errorf("sqldb: unknown SQLite synchronous setting %q (want OFF, NORMAL, FULL or EXTRA)", cfg.Synchronous)
	}
	busy := cfg.BusyTimeout
	if busy <= 0 {
		busy = DefaultBusyTimeout
	}
	readers := cfg.MaxReaders
	if readers <= 0 {
		readers = max(minReaders, runtime.GOMAXPROCS(0))
	}

	abs, err := filepath.Abs(path)
	if err != nil {
		return nil, fmt.Errorf("sqldb: %w", err)
	}
	if err := os.MkdirAll(filepath.Dir(abs), 0o700); err != nil {
		return nil, fmt.Errorf("sqldb: create database directory: %w", err)
	}
	// Create the file ourselves so that it gets mode 0600; SQLite gives its
	// -wal and -shm files the mode of the database file.
	_, statErr := os.Stat(abs)
	f, err := os.OpenFile(abs, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("sqldb: open database file: %w", err)
	}
	if err := f.Close(); err != nil {
		return nil, fmt.Errorf("sqldb: open database file: %w", err)
	}
	if errors.Is(statErr, os.ErrNotExist) {
		// A new file is durable only once its directory entry is: sync
		// the directory, and its parent in case the directory is new too,
		// so that a power loss cannot take the file that later fsyncs
		// made durable.
		for _, d := range []string{filepath.Dir(abs), filepath.Dir(filepath.Dir(abs))} {
			if err := syncDir(d); err != nil {
				return nil, fmt.Errorf("sqldb: sync database directory: %w", err)
			}
		}
	}

	// Every connection goes through walbatch's VFS over the default one
	// (which a test may have made a fault-injecting VFS).
	vfs, err := walbatch.Register()
	if err != nil {
		return nil, fmt.Errorf("sqldb: %w", err)
	}
	common := []string{
		fmt.Sprintf("busy_timeout(%d)", busy.Milliseconds()),
		"foreign_keys(1)",
		"synchronous(" + string(sync) + ")",
	}
	if cfg.CacheKiB > 0 {
		common = append(common, fmt.Sprintf("cache_size(-%d)", cfg.CacheKiB))
	}
	writerPragmas := common
	if cfg.SpillPages > 0 {
		writerPragmas = append(slices.Clip(common), fmt.Sprintf("cache_spill(%d)", cfg.SpillPages))
	}
	writer, err := sql.Open("sqlite", sqliteDSN(abs, vfs, writerPragmas, "immediate"))
	if err != nil {
		return nil, fmt.Errorf("sqldb: open SQLite: %w", err)
	}
	writer.SetMaxOpenConns(1)
	writer.SetMaxIdleConns(1)
	writer.SetConnMaxLifetime(0)
	writer.SetConnMaxIdleTime(0)

	// WAL is a property of the file, set once through the writer. It can
	// silently fail (the pragma then reports another mode), so check.
	var mode string
	if err := writer.QueryRowContext(ctx, "PRAGMA journal_mode=WAL").Scan(&mode); err != nil {
		writer.Close()
		return nil, fmt.Errorf("sqldb: open SQLite %s: %w", abs, err)
	}
	if !strings.EqualFold(mode, "wal") {
		writer.Close()
		return nil, fmt.Errorf("sqldb: open SQLite %s: journal_mode is %q, WAL could not be enabled", abs, mode)
	}

	reader, err := sql.Open("sqlite", sqliteDSN(abs, vfs, append(common, "query_only(1)"), ""))
	if err != nil {
		writer.Close()
		return nil, fmt.Errorf("sqldb: open SQLite: %w", err)
	}
	reader.SetMaxOpenConns(readers)
	reader.SetMaxIdleConns(readers)
	idle := cfg.ReaderIdle
	if idle <= 0 {
		idle = 5 * time.Minute
	}
	reader.SetConnMaxIdleTime(idle)
	if err := reader.PingContext(ctx); err != nil {
		reader.Close()
		writer.Close()
		return nil, fmt.Errorf("sqldb: open SQLite %s: %w", abs, err)
	}

	return &DB{cfg: cfg, dialect: SQLite, writer: writer, reader: reader, path: abs, sync: sync, readers: readers,
		writerStmts: &stmtCache{pool: writer}, readerStmts: &stmtCache{pool: reader}}, nil
}

// syncDir fsyncs a directory.
func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	err = d.Sync()
	if cerr := d.Close(); err == nil {
		err = cerr
	}
	return err
}

// sqliteDSN builds a modernc.org/sqlite DSN: a file: URI (so that any
// character in the path is escaped) opened through the VFS vfs, with
// pragmas run on every new connection.
func sqliteDSN(abs, vfs string, pragmas []string, txlock string) string {
	p := filepath.ToSlash(abs)
	if !strings.HasPrefix(p, "/") {
		p = "/" + p // Windows drive letter
	}
	q := url.Values{}
	q.Set("vfs", vfs)
	for _, pr := range pragmas {
		q.Add("_pragma", pr)
	}
	if txlock != "" {
		q.Set("_txlock", txlock)
	}
	return "file://" + (&url.URL{Path: p}).EscapedPath() + "?" + q.Encode()
}
