package actorstore

import (
	"context"
	"database/sql"
	"fmt"
	"sync/atomic"
)

func (s *Store) appendOutbox(ctx context.Context, tx *sql.Tx, rev, kind string, event []byte) (int64, error) {
	st, err := s.db.TxStmt(ctx, tx, `INSERT INTO outbox (rev, kind, body) VALUES (?, ?, ?)`)
	if err == nil {
		var r sql.Result
		if r, err = st.ExecContext(ctx, rev, kind, event); err == nil {
			var id int64
			if id, err = r.LastInsertId(); err == nil {
				raise(&s.outboxTop, id)
				return id, nil
			}
		}
	}
	return 0, fmt.Errorf("actorstore: outbox: %w", err)
}

// putOutbox stores an outbox row under an ID reserved for it
// (ApplyCommitLater takes it from outboxTop). SQLite's AUTOINCREMENT
// counter follows an explicit ID, so later automatic IDs stay above it.
func (s *Store) putOutbox(ctx context.Context, tx *sql.Tx, id int64, rev, kind string, event []byte) error {
	if err := s.exec(ctx, tx, `INSERT INTO outbox (id, rev, kind, body) VALUES (?, ?, ?, ?)`, id, rev, kind, event); err != nil {
		return fmt.Errorf("actorstore: outbox row %d: %w", id, err)
	}
	return nil
}

// OutboxRow is an event stored with its commit and not yet sequenced.
type OutboxRow struct {
	ID   int64 // increasing in the order the commits were written
	Rev  string
	Kind string // KindCommit or KindSync
	Body []byte
}

// Outbox returns up to limit (at most MaxOutboxBatch; limit <= 0 means
// MaxOutboxBatch) outbox rows with IDs above afterID, in ID order.
func (s *Store) Outbox(ctx context.Context, afterID int64, limit int) ([]OutboxRow, error) {
	if limit <= 0 || limit > MaxOutboxBatch {
		limit = MaxOutboxBatch
	}
	st, err := s.db.ReaderStmt(ctx, `SELECT id, rev, kind, body FROM outbox WHERE id > ? ORDER BY id LIMIT ?`)
	if err != nil {
		return nil, fmt.Errorf("actorstore: outbox: %w", err)
	}
	rows, err := st.QueryContext(ctx, afterID, limit)
	if err != nil {
		return nil, fmt.Errorf("actorstore: outbox: %w", err)
	}
	defer rows.Close()
	var out []OutboxRow
	for rows.Next() {
		var r OutboxRow
		if err := rows.Scan(&r.ID, &r.Rev, &r.Kind, &r.Body); err != nil {
			return nil, fmt.Errorf("actorstore: outbox: %w", err)
		}
		out = append(out, r)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("actorstore: outbox: %w", err)
	}
	return out, nil
}

// AckOutbox records that the outbox rows with IDs up to uptoID have been
// sequenced. They are deleted by the store's next write transaction (a
// commit, a Sync, or the Sync of Close) rather than by a transaction of
// their own, which would take the account's only write connection from
// its next write.
func (s *Store) AckOutbox(ctx context.Context, uptoID int64) error {
	raise(&s.acked, min(uptoID, s.outboxTop.Load()))
	return nil
}

// raise sets v to x if x is higher.
func raise(v *atomic.Int64, x int64) {
	for {
		cur := v.Load()
		if x <= cur || v.CompareAndSwap(cur, x) {
			return
		}
	}
}

// deleteAcked deletes, in tx, the outbox rows acknowledged and not yet
// deleted. It returns the ID up to which tx deleted them, for
// noteDeleted once tx has committed (0: nothing to note).
func (s *Store) deleteAcked(ctx context.Context, tx *sql.Tx) (int64, error) {
	upto := s.acked.Load()
	if upto <= s.deleted.Load() {
		return 0, nil
	}
	if err := s.exec(ctx, tx, `DELETE FROM outbox WHERE id <= ?`, upto); err != nil {
		return 0, fmt.Errorf("actorstore: delete acknowledged outbox rows: %w", err)
	}
	return upto, nil
}

// noteDeleted records that a committed transaction deleted the
// acknowledged rows up to upto.
func (s *Store) noteDeleted(upto int64) { raise(&s.deleted, upto) }
