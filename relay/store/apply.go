package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"

	"github.com/welkin-atproto/welkin/atproto/syntax"
)

// metaAppliedSeq names the relay_meta row holding the applied seq.
const metaAppliedSeq = "applied_seq"

// ApplyEvents stores the account states that a batch of events of the
// relay's own log brought, and records seq, the batch's last seq, as the
// applied seq, in one transaction: after a crash, the account states match
// the log up to AppliedSeq, and only the events after it need replaying
// into them. Each account replaces what was stored for its DID, as with
// PutAccount.
func (s *Store) ApplyEvents(ctx context.Context, accts []Account, seq int64) error {
	now := s.now().UnixMilli()
	err := s.db.Tx(ctx, func(tx *sql.Tx) error {
		for _, a := range accts {
			if err := putAccount(ctx, s.db, tx, a, now); err != nil {
				return fmt.Errorf("account %s: %w", a.DID, err)
			}
		}
		return setMeta(ctx, s, tx, metaAppliedSeq, seq)
	})
	if err != nil {
		return fmt.Errorf("relay store: apply events up to seq %d: %w", seq, err)
	}
	return nil
}

// AppliedSeq returns the seq recorded by the last ApplyEvents or
// SetAppliedSeq, 0 if none.
func (s *Store) AppliedSeq(ctx context.Context) (int64, error) {
	var v int64
	err := s.db.SQL().QueryRowContext(ctx, s.db.Rebind(`SELECT value FROM relay_meta WHERE name = ?`), metaAppliedSeq).Scan(&v)
	if errors.Is(err, sql.ErrNoRows) {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("relay store: applied seq: %w", err)
	}
	return v, nil
}

// SetAppliedSeq records seq as the applied seq, backwards too (for a log
// that was started afresh).
func (s *Store) SetAppliedSeq(ctx context.Context, seq int64) error {
	if err := setMeta(ctx, s, s.db.SQL(), metaAppliedSeq, seq); err != nil {
		return fmt.Errorf("relay store: set applied seq: %w", err)
	}
	return nil
}

func setMeta(ctx context.Context, s *Store, ex execer, name string, v int64) error {
	_, err := ex.ExecContext(ctx, s.db.Rebind(
		`INSERT INTO relay_meta (name, value) VALUES (?, ?) ON CONFLICT (name) DO UPDATE SET value = excluded.value`), name, v)
	return err
}

// ListDesynchronized returns up to limit accounts marked desynchronized,
// in DID order after the DID cursor names ("" for the start), and the
// cursor of the next page ("" after the last).
func (s *Store) ListDesynchronized(ctx context.Context, cursor string, limit int) ([]Account, string, error) {
	return s.listAccounts(ctx, "desync AND ", cursor, limit)
}

// listAccounts pages through the accounts matching cond, a condition
// ending in AND (or "").
func (s *Store) listAccounts(ctx context.Context, cond, cursor string, limit int) ([]Account, string, error) {
	if cursor != "" {
		if _, err := syntax.ParseDID(cursor); err != nil {
			return nil, "", fmt.Errorf("%w: %q", ErrInvalidCursor, cursor)
		}
	}
	limit = clampLimit(limit)
	rows, err := s.db.Reader().QueryContext(ctx, s.db.Rebind(`SELECT `+accountCols+` FROM relay_accounts WHERE `+cond+`did > ? ORDER BY did LIMIT ?`), cursor, limit)
	if err != nil {
		return nil, "", fmt.Errorf("relay store: list accounts: %w", err)
	}
	defer rows.Close()
	var out []Account
	for rows.Next() {
		a, err := scanAccount(rows)
		if err != nil {
			return nil, "", fmt.Errorf("relay store: list accounts: %w", err)
		}
		out = append(out, a)
	}
	if err := rows.Err(); err != nil {
		return nil, "", fmt.Errorf("relay store: list accounts: %w", err)
	}
	next := ""
	if len(out) == limit {
		next = string(out[len(out)-1].DID)
	}
	return out, next, nil
}
