package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/welkin-atproto/welkin/atproto/data"
	"github.com/welkin-atproto/welkin/atproto/plc"
	"github.com/welkin-atproto/welkin/atproto/syntax"
	"github.com/welkin-atproto/welkin/internal/sqldb"
)

// component is the name under which the schema version is recorded.
const component = "plc"

// migrations is the versioned schema. Times are Unix milliseconds, the
// precision of createdAt in the directory's JSON.
var migrations = []sqldb.Migration{
	{
		Version: 1,
		SQL: `
CREATE TABLE plc_seq (
	id       INTEGER PRIMARY KEY,
	last_seq BIGINT NOT NULL
);
INSERT INTO plc_seq (id, last_seq) VALUES (1, 0);
CREATE TABLE plc_dids (
	did      TEXT PRIMARY KEY,
	op_count BIGINT NOT NULL
);
CREATE TABLE plc_operations (
	seq        BIGINT PRIMARY KEY,
	did        TEXT NOT NULL,
	cid        TEXT NOT NULL,
	operation  TEXT NOT NULL,
	nullified  BOOLEAN NOT NULL DEFAULT FALSE,
	created_at BIGINT NOT NULL,
	UNIQUE (did, cid)
);
CREATE INDEX plc_operations_did ON plc_operations (did, seq);
CREATE INDEX plc_operations_created ON plc_operations (created_at, cid);
`,
	},
}

// SQL is the Store on an sqldb database (SQLite or PostgreSQL).
type SQL struct {
	db    *sqldb.DB
	owned bool
}

var _ Store = (*SQL)(nil)

// Open opens the database url names (see sqldb.Config.URL), brings its
// schema up to date and returns a store that closes the database on Close.
func Open(ctx context.Context, url string) (*SQL, error) {
	db, err := sqldb.Open(ctx, sqldb.Config{URL: url})
	if err != nil {
		return nil, err
	}
	s, err := New(ctx, db)
	if err != nil {
		db.Close()
		return nil, err
	}
	s.owned = true
	return s, nil
}

// New migrates db and returns a store on it. Close leaves db open; the
// caller owns it.
func New(ctx context.Context, db *sqldb.DB) (*SQL, error) {
	if err := sqldb.Migrate(ctx, db, component, migrations); err != nil {
		return nil, fmt.Errorf("plc store: migrate: %w", err)
	}
	return &SQL{db: db}, nil
}

// Close closes the database if Open opened it.
func (s *SQL) Close() error {
	if s.owned {
		return s.db.Close()
	}
	return nil
}

// Ping checks that the database answers.
func (s *SQL) Ping(ctx context.Context) error {
	return s.db.SQL().PingContext(ctx)
}

func (s *SQL) AuditLog(ctx context.Context, did syntax.DID) ([]plc.AuditEntry, error) {
	rows, err := s.db.Reader().QueryContext(ctx, s.db.Rebind(
		`SELECT cid, operation, nullified, created_at FROM plc_operations WHERE did = ? ORDER BY seq`),
		string(did))
	if err != nil {
		return nil, fmt.Errorf("plc store: audit log: %w", err)
	}
	defer rows.Close()
	var out []plc.AuditEntry
	for rows.Next() {
		var (
			cid, opJSON string
			nullified   bool
			ms          int64
		)
		if err := rows.Scan(&cid, &opJSON, &nullified, &ms); err != nil {
			return nil, fmt.Errorf("plc store: audit log: %w", err)
		}
		op, err := plc.ParseOperationJSON([]byte(opJSON))
		if err != nil {
			return nil, fmt.Errorf("plc store: stored operation %s of %s: %w", cid, did, err)
		}
		out = append(out, plc.AuditEntry{DID: did, Operation: op, CID: cid, Nullified: nullified, CreatedAt: time.UnixMilli(ms).UTC()})
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("plc store: audit log: %w", err)
	}
	return out, nil
}

func (s *SQL) LastOp(ctx context.Context, did syntax.DID) (plc.Op, time.Time, error) {
	var (
		opJSON string
		ms     int64
	)
	err := s.db.Reader().QueryRowContext(ctx, s.db.Rebind(
		`SELECT operation, created_at FROM plc_operations WHERE did = ? AND nullified = FALSE ORDER BY seq DESC LIMIT 1`),
		string(did)).Scan(&opJSON, &ms)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, time.Time{}, ErrNotFound
	}
	if err != nil {
		return nil, time.Time{}, fmt.Errorf("plc store: last op: %w", err)
	}
	op, err := plc.ParseOperationJSON([]byte(opJSON))
	if err != nil {
		return nil, time.Time{}, fmt.Errorf("plc store: stored operation of %s: %w", did, err)
	}
	return op, time.UnixMilli(ms).UTC(), nil
}

func (s *SQL) Append(ctx context.Context, did syntax.DID, entry plc.AuditEntry, nullify []data.CID, expectLen int) (int64, error) {
	if entry.Operation == nil || entry.CID == "" {
		return 0, errors.New("plc store: append: entry needs an operation and its CID")
	}
	if entry.DID != "" && entry.DID != did {
		return 0, fmt.Errorf("plc store: append: entry is for %s, not %s", entry.DID, did)
	}
	opJSON, err := entry.Operation.MarshalJSON()
	if err != nil {
		return 0, fmt.Errorf("plc store: append: %w", err)
	}
	var seq int64
	err = s.db.Tx(ctx, func(tx *sql.Tx) error {
		// The per-DID row is the guard: its count must still be the one
		// the caller saw. On PostgreSQL a concurrent writer for the same DID
		// waits on this row and then finds the count changed (or, for a
		// genesis, the key taken).
		if expectLen == 0 {
			_, err := tx.ExecContext(ctx, s.db.Rebind(`INSERT INTO plc_dids (did, op_count) VALUES (?, 1)`), string(did))
			if sqldb.IsUniqueViolation(err) {
				return fmt.Errorf("%w: %s already has operations", ErrConflict, did)
			}
			if err != nil {
				return err
			}
		} else {
			res, err := tx.ExecContext(ctx, s.db.Rebind(
				`UPDATE plc_dids SET op_count = op_count + 1 WHERE did = ? AND op_count = ?`), string(did), expectLen)
			if err != nil {
				return err
			}
			n, err := res.RowsAffected()
			if err != nil {
				return err
			}
			if n != 1 {
				return fmt.Errorf("%w: %s no longer has %d operations", ErrConflict, did, expectLen)
			}
		}
		// The counter row is taken last, by every writer, and held to
		// commit: sequence numbers are therefore handed out in commit
		// order.
		if err := tx.QueryRowContext(ctx,
			`UPDATE plc_seq SET last_seq = last_seq + 1 WHERE id = 1 RETURNING last_seq`).Scan(&seq); err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, s.db.Rebind(
			`INSERT INTO plc_operations (seq, did, cid, operation, nullified, created_at) VALUES (?, ?, ?, ?, FALSE, ?)`),
			seq, string(did), entry.CID, string(opJSON), entry.CreatedAt.UnixMilli()); err != nil {
			if sqldb.IsUniqueViolation(err) {
				return fmt.Errorf("%w: %s already has operation %s", ErrConflict, did, entry.CID)
			}
			return err
		}
		for _, c := range nullify {
			res, err := tx.ExecContext(ctx, s.db.Rebind(
				`UPDATE plc_operations SET nullified = TRUE WHERE did = ? AND cid = ? AND nullified = FALSE`), string(did), c.String())
			if err != nil {
				return err
			}
			if n, err := res.RowsAffected(); err != nil {
				return err
			} else if n != 1 {
				return fmt.Errorf("%w: %s has no active operation %s to nullify", ErrConflict, did, c)
			}
		}
		return nil
	})
	if err != nil {
		if errors.Is(err, ErrConflict) {
			return 0, err
		}
		return 0, fmt.Errorf("plc store: append: %w", err)
	}
	return seq, nil
}

func (s *SQL) ExportSeq(ctx context.Context, after int64, count int) ([]Entry, error) {
	return s.export(ctx,
		`SELECT seq, did, cid, operation, nullified, created_at FROM plc_operations WHERE seq > ? ORDER BY seq LIMIT ?`,
		after, count)
}

func (s *SQL) ExportLegacy(ctx context.Context, after time.Time, count int) ([]Entry, error) {
	ms := int64(-1 << 62)
	if !after.IsZero() {
		ms = after.UnixMilli()
	}
	return s.export(ctx,
		`SELECT seq, did, cid, operation, nullified, created_at FROM plc_operations WHERE created_at > ? ORDER BY created_at, cid LIMIT ?`,
		ms, count)
}

func (s *SQL) export(ctx context.Context, q string, after int64, count int) ([]Entry, error) {
	if count <= 0 {
		return nil, nil
	}
	rows, err := s.db.Reader().QueryContext(ctx, s.db.Rebind(q), after, count)
	if err != nil {
		return nil, fmt.Errorf("plc store: export: %w", err)
	}
	defer rows.Close()
	out := make([]Entry, 0, min(count, 1000))
	for rows.Next() {
		var (
			e      Entry
			did    string
			opJSON string
			ms     int64
		)
		if err := rows.Scan(&e.Seq, &did, &e.CID, &opJSON, &e.Nullified, &ms); err != nil {
			return nil, fmt.Errorf("plc store: export: %w", err)
		}
		e.DID = syntax.DID(did)
		e.Operation = []byte(opJSON)
		e.CreatedAt = time.UnixMilli(ms).UTC()
		out = append(out, e)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("plc store: export: %w", err)
	}
	return out, nil
}

func (s *SQL) LastSeq(ctx context.Context) (int64, error) {
	var seq int64
	if err := s.db.Reader().QueryRowContext(ctx, `SELECT last_seq FROM plc_seq WHERE id = 1`).Scan(&seq); err != nil {
		return 0, fmt.Errorf("plc store: last seq: %w", err)
	}
	return seq, nil
}
