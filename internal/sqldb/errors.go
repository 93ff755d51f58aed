package sqldb

import (
	"errors"

	"github.com/jackc/pgx/v5/pgconn"
	"modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"
)

// PostgreSQL SQLSTATE codes.
const (
	pgSerializationFailure = "40001"
	pgDeadlockDetected     = "40P01"
	pgUniqueViolation      = "23505"
)

// IsRetryable reports whether err (or an error it wraps) means that the
// transaction lost a race and may succeed if run again: SQLITE_BUSY or
// SQLITE_LOCKED on SQLite, serialization_failure or deadlock_detected on
// PostgreSQL.
func IsRetryable(err error) bool {
	if code, ok := sqliteCode(err); ok {
		primary := code & 0xff
		return primary == sqlite3.SQLITE_BUSY || primary == sqlite3.SQLITE_LOCKED
	}
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		return pgErr.Code == pgSerializationFailure || pgErr.Code == pgDeadlockDetected
	}
	return false
}

// IsUniqueViolation reports whether err (or an error it wraps) is a
// violation of a UNIQUE or PRIMARY KEY constraint, on either backend.
func IsUniqueViolation(err error) bool {
	if code, ok := sqliteCode(err); ok {
		return code == sqlite3.SQLITE_CONSTRAINT_UNIQUE || code == sqlite3.SQLITE_CONSTRAINT_PRIMARYKEY
	}
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		return pgErr.Code == pgUniqueViolation
	}
	return false
}

func sqliteCode(err error) (int, bool) {
	var sErr *sqlite.Error
	if errors.As(err, &sErr) {
		return sErr.Code(), true
	}
	return 0, false
}
