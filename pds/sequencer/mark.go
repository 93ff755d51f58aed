package sequencer

import (
	"context"
	"database/sql"
	"errors"
	"fmt"

	"github.com/welkin-atproto/welkin/atproto/syntax"
)

// durableMarkName is the seq_marks row of the durable mark.
const durableMarkName = "durable"

// SetDurableMark records that every commit of the events up to seq is
// durable in its account's own database, so that after a power loss only
// the events above it may have to be replayed into those databases (see
// DurableMark). The mark never moves back; it is written in its own
// transaction.
func (s *Sequencer) SetDurableMark(ctx context.Context, seq int64) error {
	err := s.db.Tx(ctx, func(tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, s.db.Rebind(`INSERT INTO seq_marks (name, seq) VALUES (?, ?)
			ON CONFLICT (name) DO UPDATE SET seq = excluded.seq WHERE seq_marks.seq < excluded.seq`),
			durableMarkName, seq)
		return err
	})
	if err != nil {
		return fmt.Errorf("sequencer: set durable mark: %w", err)
	}
	return nil
}

// DurableMark returns the seq last given to SetDurableMark, 0 if none.
func (s *Sequencer) DurableMark(ctx context.Context) (int64, error) {
	var seq int64
	err := s.db.SQL().QueryRowContext(ctx, s.db.Rebind(`SELECT seq FROM seq_marks WHERE name = ?`), durableMarkName).Scan(&seq)
	if errors.Is(err, sql.ErrNoRows) {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("sequencer: read durable mark: %w", err)
	}
	return seq, nil
}

// Cursor returns the highest outbox ID of did that the log holds events
// of (0 if none), as stored.
func (s *Sequencer) Cursor(ctx context.Context, did syntax.DID) (int64, error) {
	var id int64
	err := s.db.SQL().QueryRowContext(ctx, s.db.Rebind(`SELECT outbox_id FROM seq_cursors WHERE did = ?`), string(did)).Scan(&id)
	if errors.Is(err, sql.ErrNoRows) {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("sequencer: read cursor of %s: %w", did, err)
	}
	return id, nil
}
