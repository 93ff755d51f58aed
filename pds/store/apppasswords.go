package store

import (
	"context"
	"database/sql"
	"errors"
	"time"

	"github.com/welkin-atproto/welkin/atproto/syntax"
)

// AppPassword is one app password of an account
// (com.atproto.server.createAppPassword).
type AppPassword struct {
	// Name is unique per account.
	Name string
	// Hash is the password's hash (such as from HashPassword), opaque to
	// the store.
	Hash       string
	Privileged bool
	// CreatedAt is the current time when left zero on CreateAppPassword.
	CreatedAt time.Time
}

// CreateAppPassword adds ap to the account did: ErrDuplicateName if the
// account already has one by that name, ErrNotFound if did has no account.
func (s *Store) CreateAppPassword(ctx context.Context, did syntax.DID, ap AppPassword) error {
	if ap.Name == "" {
		return errors.New("pds store: app password without a name")
	}
	if ap.CreatedAt.IsZero() {
		ap.CreatedAt = time.Now()
	}
	err := s.db.Tx(ctx, func(tx *sql.Tx) error {
		var one int
		err := tx.QueryRowContext(ctx, s.db.Rebind(`SELECT 1 FROM pds_accounts WHERE did = ?`), string(did)).Scan(&one)
		if errors.Is(err, sql.ErrNoRows) {
			return ErrNotFound
		} else if err != nil {
			return err
		}
		_, err = tx.ExecContext(ctx, s.db.Rebind(
			`INSERT INTO pds_app_passwords (did, name, password_hash, privileged, created_at) VALUES (?, ?, ?, ?, ?)`),
			string(did), ap.Name, ap.Hash, ap.Privileged, micros(ap.CreatedAt))
		if _, dup := violatedIndex(err); dup {
			return ErrDuplicateName
		}
		return err
	})
	return wrap("create app password", err)
}

// ListAppPasswords returns the app passwords of did, oldest first (ties by
// name). An account without any, or an unknown DID, gives none.
func (s *Store) ListAppPasswords(ctx context.Context, did syntax.DID) ([]AppPassword, error) {
	rows, err := s.db.Reader().QueryContext(ctx, s.db.Rebind(
		`SELECT name, password_hash, privileged, created_at FROM pds_app_passwords
		 WHERE did = ? ORDER BY created_at, name`), string(did))
	if err != nil {
		return nil, wrap("list app passwords", err)
	}
	defer rows.Close()
	var out []AppPassword
	for rows.Next() {
		var (
			ap AppPassword
			us int64
		)
		if err := rows.Scan(&ap.Name, &ap.Hash, &ap.Privileged, &us); err != nil {
			return nil, wrap("list app passwords", err)
		}
		ap.CreatedAt = fromMicros(us)
		out = append(out, ap)
	}
	return out, wrap("list app passwords", rows.Err())
}

// DeleteAppPassword removes the app password name of did; ErrNotFound if
// there is none.
func (s *Store) DeleteAppPassword(ctx context.Context, did syntax.DID, name string) error {
	err := s.db.Tx(ctx, func(tx *sql.Tx) error {
		return mustAffect(tx.ExecContext(ctx, s.db.Rebind(
			`DELETE FROM pds_app_passwords WHERE did = ? AND name = ?`), string(did), name))
	})
	return wrap("delete app password", err)
}
