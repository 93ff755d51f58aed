package store

import (
	"context"
	"crypto/subtle"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/welkin-atproto/welkin/atproto/syntax"
)

// TokenPurpose says what an email token authorizes. An account holds at
// most one token per purpose.
type TokenPurpose string

// Email token purposes, as the reference PDS names them.
const (
	PurposeConfirmEmail  TokenPurpose = "confirm_email"
	PurposeUpdateEmail   TokenPurpose = "update_email"
	PurposeResetPassword TokenPurpose = "reset_password"
	PurposeDeleteAccount TokenPurpose = "delete_account"
	PurposePLCOperation  TokenPurpose = "plc_operation"
)

// Valid reports whether p is one of the TokenPurpose constants.
func (p TokenPurpose) Valid() bool {
	switch p {
	case PurposeConfirmEmail, PurposeUpdateEmail, PurposeResetPassword, PurposeDeleteAccount, PurposePLCOperation:
		return true
	}
	return false
}

// normToken is the stored form of an email token: people type these codes,
// so surrounding space is dropped and letter case ignored (NewEmailToken's
// codes are upper case).
func normToken(t string) string { return strings.ToUpper(strings.TrimSpace(t)) }

// NewEmailToken returns a fresh random email token in the reference PDS's
// form, "XXXXX-XXXXX" in upper-case base32 (50 random bits), short enough
// to type from an email.
func NewEmailToken() string { return randomToken() }

// PutEmailToken records token as the account's email token for purpose,
// valid until expiresAt, replacing any earlier token for that purpose.
// ErrNotFound if did has no account; ErrTokenInUse if another account holds
// the same token for the purpose (generate a new one and retry).
func (s *Store) PutEmailToken(ctx context.Context, did syntax.DID, purpose TokenPurpose, token string, expiresAt time.Time) error {
	if !purpose.Valid() {
		return fmt.Errorf("pds store: unknown email token purpose %q", purpose)
	}
	token = normToken(token)
	if token == "" {
		return errors.New("pds store: empty email token")
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
			`INSERT INTO pds_email_tokens (did, purpose, token, expires_at) VALUES (?, ?, ?, ?)
			 ON CONFLICT (did, purpose) DO UPDATE SET token = excluded.token, expires_at = excluded.expires_at`),
			string(did), string(purpose), token, micros(expiresAt))
		if _, dup := violatedIndex(err); dup {
			return ErrTokenInUse
		}
		return err
	})
	return wrap("put email token", err)
}

// UseEmailToken checks token against the account's token for purpose and,
// if it matches and has not expired at now, deletes it: a token works once,
// also under concurrent use. ErrInvalidToken if there is no such token (or
// it was used), ErrExpiredToken if it matches but expiresAt is not after
// now (an expired token is left in place).
func (s *Store) UseEmailToken(ctx context.Context, did syntax.DID, purpose TokenPurpose, token string, now time.Time) error {
	token = normToken(token)
	if token == "" {
		return ErrInvalidToken
	}
	err := s.db.Tx(ctx, func(tx *sql.Tx) error {
		var (
			stored  string
			expires int64
		)
		err := tx.QueryRowContext(ctx, s.db.Rebind(
			`SELECT token, expires_at FROM pds_email_tokens WHERE did = ? AND purpose = ?`),
			string(did), string(purpose)).Scan(&stored, &expires)
		if errors.Is(err, sql.ErrNoRows) {
			return ErrInvalidToken
		} else if err != nil {
			return err
		}
		if subtle.ConstantTimeCompare([]byte(stored), []byte(token)) != 1 {
			return ErrInvalidToken
		}
		if !fromMicros(expires).After(now) {
			return ErrExpiredToken
		}
		// Conditional on the token, so that of two concurrent uses on
		// PostgreSQL only the one that deletes the row succeeds.
		err = mustAffect(tx.ExecContext(ctx, s.db.Rebind(
			`DELETE FROM pds_email_tokens WHERE did = ? AND purpose = ? AND token = ?`),
			string(did), string(purpose), token))
		if errors.Is(err, ErrNotFound) {
			return ErrInvalidToken
		}
		return err
	})
	return wrap("use email token", err)
}

// DIDForEmailToken returns the account holding token for purpose, without
// consuming it (com.atproto.server.resetPassword is given only the token;
// it then calls UseEmailToken). ErrInvalidToken if no account holds it,
// ErrExpiredToken if it is not valid after now.
func (s *Store) DIDForEmailToken(ctx context.Context, purpose TokenPurpose, token string, now time.Time) (syntax.DID, error) {
	token = normToken(token)
	if token == "" {
		return "", ErrInvalidToken
	}
	var (
		did     string
		expires int64
	)
	err := s.db.Reader().QueryRowContext(ctx, s.db.Rebind(
		`SELECT did, expires_at FROM pds_email_tokens WHERE purpose = ? AND token = ?`),
		string(purpose), token).Scan(&did, &expires)
	if errors.Is(err, sql.ErrNoRows) {
		return "", ErrInvalidToken
	}
	if err != nil {
		return "", wrap("email token", err)
	}
	if !fromMicros(expires).After(now) {
		return "", ErrExpiredToken
	}
	return syntax.DID(did), nil
}

// DeleteExpiredEmailTokens removes email tokens whose expiry is not after
// now.
func (s *Store) DeleteExpiredEmailTokens(ctx context.Context, now time.Time) error {
	return s.exec(ctx, "delete expired email tokens", `DELETE FROM pds_email_tokens WHERE expires_at <= ?`, micros(now))
}
