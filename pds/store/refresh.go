package store

import (
	"context"
	"database/sql"
	"errors"
	"time"

	"github.com/welkin-atproto/welkin/atproto/auth"
	"github.com/welkin-atproto/welkin/atproto/syntax"
)

// RefreshStore returns the store's persistent auth.RefreshStore, for
// auth.SessionIssuer. Its records survive restarts and are shared by every
// process on the same database.
func (s *Store) RefreshStore() auth.RefreshStore { return refreshStore{s} }

// DeleteExpiredRefreshTokens removes refresh token records whose expiry
// (shortened to the end of the grace period once rotated) is not after now.
func (s *Store) DeleteExpiredRefreshTokens(ctx context.Context, now time.Time) error {
	return s.exec(ctx, "delete expired refresh tokens", `DELETE FROM pds_refresh_tokens WHERE expires_at <= ?`, micros(now))
}

// refreshStore implements auth.RefreshStore on the pds_refresh_tokens
// table. A record's successor pair (Next) is kept in the next_* columns,
// NULL before rotation.
type refreshStore struct{ s *Store }

var _ auth.RefreshStore = refreshStore{}

// Put implements auth.RefreshStore: an existing record with the same jti is
// kept.
func (r refreshStore) Put(ctx context.Context, rec auth.RefreshRecord) error {
	if rec.JTI == "" {
		return errors.New("pds store: refresh record without jti")
	}
	var next [5]any
	if rec.Next != nil {
		next = [5]any{rec.Next.RefreshJTI, rec.Next.Access, rec.Next.Refresh,
			micros(rec.Next.AccessExpiresAt), micros(rec.Next.RefreshExpiresAt)}
	}
	return r.s.exec(ctx, "put refresh token",
		`INSERT INTO pds_refresh_tokens (jti, did, scope, expires_at,
			next_jti, next_access, next_refresh, next_access_expires_at, next_refresh_expires_at)
		 VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (jti) DO NOTHING`,
		rec.JTI, string(rec.DID), string(rec.Scope), micros(rec.ExpiresAt),
		next[0], next[1], next[2], next[3], next[4])
}

const refreshColumns = `jti, did, scope, expires_at,
	next_jti, next_access, next_refresh, next_access_expires_at, next_refresh_expires_at`

func scanRefresh(row rowScanner) (*auth.RefreshRecord, error) {
	var (
		rec                     auth.RefreshRecord
		did, scope              string
		expires                 int64
		nJTI, nAccess, nRefresh sql.NullString
		nAccessExp, nRefreshExp sql.NullInt64
	)
	if err := row.Scan(&rec.JTI, &did, &scope, &expires,
		&nJTI, &nAccess, &nRefresh, &nAccessExp, &nRefreshExp); err != nil {
		return nil, err
	}
	rec.DID = syntax.DID(did)
	rec.Scope = auth.Scope(scope)
	rec.ExpiresAt = fromMicros(expires)
	if nJTI.Valid {
		rec.Next = &auth.TokenPair{
			RefreshJTI:       nJTI.String,
			Access:           nAccess.String,
			Refresh:          nRefresh.String,
			AccessExpiresAt:  fromMicros(nAccessExp.Int64),
			RefreshExpiresAt: fromMicros(nRefreshExp.Int64),
		}
	}
	return &rec, nil
}

// Get implements auth.RefreshStore.
func (r refreshStore) Get(ctx context.Context, jti string) (*auth.RefreshRecord, error) {
	rec, err := scanRefresh(r.s.db.Reader().QueryRowContext(ctx, r.s.db.Rebind(
		`SELECT `+refreshColumns+` FROM pds_refresh_tokens WHERE jti = ?`), jti))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, auth.ErrRefreshNotFound
	}
	if err != nil {
		return nil, wrap("get refresh token", err)
	}
	return rec, nil
}

// MarkRotated implements auth.RefreshStore. The successor is recorded by an
// UPDATE conditional on there being none yet, so of concurrent rotations of
// one token exactly one records its pair (on PostgreSQL the others wait for
// the row and then find the condition false) and all of them return that
// pair.
func (r refreshStore) MarkRotated(ctx context.Context, jti string, next auth.TokenPair, expiresAt time.Time) (auth.TokenPair, error) {
	var winner auth.TokenPair
	err := r.s.db.Tx(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, r.s.db.Rebind(
			`UPDATE pds_refresh_tokens SET expires_at = ?,
				next_jti = ?, next_access = ?, next_refresh = ?,
				next_access_expires_at = ?, next_refresh_expires_at = ?
			 WHERE jti = ? AND next_jti IS NULL`),
			micros(expiresAt), next.RefreshJTI, next.Access, next.Refresh,
			micros(next.AccessExpiresAt), micros(next.RefreshExpiresAt), jti)
		if err := mustAffect(res, err); err == nil {
			winner = next
			return nil
		} else if !errors.Is(err, ErrNotFound) {
			return err
		}
		rec, err := scanRefresh(tx.QueryRowContext(ctx, r.s.db.Rebind(
			`SELECT `+refreshColumns+` FROM pds_refresh_tokens WHERE jti = ?`), jti))
		if errors.Is(err, sql.ErrNoRows) {
			return auth.ErrRefreshNotFound
		}
		if err != nil {
			return err
		}
		if rec.Next == nil {
			// Unreachable: the row exists and was not updated, so it
			// has a successor.
			return errors.New("refresh token neither rotated nor rotatable")
		}
		winner = *rec.Next
		return nil
	})
	if errors.Is(err, auth.ErrRefreshNotFound) {
		return auth.TokenPair{}, err
	}
	if err != nil {
		return auth.TokenPair{}, wrap("rotate refresh token", err)
	}
	return winner, nil
}

// Revoke implements auth.RefreshStore.
func (r refreshStore) Revoke(ctx context.Context, jti string) error {
	return r.s.exec(ctx, "revoke refresh token", `DELETE FROM pds_refresh_tokens WHERE jti = ?`, jti)
}

// RevokeDID implements auth.RefreshStore.
func (r refreshStore) RevokeDID(ctx context.Context, did syntax.DID) error {
	return r.s.exec(ctx, "revoke refresh tokens", `DELETE FROM pds_refresh_tokens WHERE did = ?`, string(did))
}
