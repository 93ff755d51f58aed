package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/welkin-atproto/welkin/atproto/syntax"
)

// Status is the hosting status of an account. Deleted accounts are removed
// (DeleteAccount), so there is no status for them.
type Status string

// Account statuses, named as com.atproto.sync.getRepoStatus reports them.
const (
	StatusActive      Status = "active"
	StatusDeactivated Status = "deactivated"
	StatusTakendown   Status = "takendown"
)

// Valid reports whether st is one of the Status constants.
func (st Status) Valid() bool {
	switch st {
	case StatusActive, StatusDeactivated, StatusTakendown:
		return true
	}
	return false
}

// Listing limits of ListAccounts, from com.atproto.sync.listRepos
// ("limit": default 500, maximum 1000).
const (
	DefaultListLimit = 500
	MaxListLimit     = 1000
)

// Account is one account hosted by the PDS.
type Account struct {
	DID syntax.DID
	// Handle is stored and returned in lower case.
	Handle syntax.Handle
	// Email may be "" (an account without one, such as an imported one). It
	// is returned as given; uniqueness and lookups ignore letter case.
	Email            string
	EmailConfirmedAt *time.Time
	// PasswordHash is a string from HashPassword; "" for an account that
	// cannot log in with a password.
	PasswordHash string
	// SigningKey is the repository signing key's private bytes, opaque to
	// the store.
	SigningKey []byte
	// Status is StatusActive when left empty on CreateAccount.
	Status Status
	// CreatedAt is the current time when left zero on CreateAccount.
	CreatedAt     time.Time
	DeactivatedAt *time.Time
	// DeleteAfter is when a deactivated account may be deleted for good.
	DeleteAfter *time.Time
	TakedownRef string
}

const accountColumns = `did, handle, email, email_confirmed_at, password_hash, signing_key,
	status, created_at, deactivated_at, delete_after, takedown_ref`

type rowScanner interface {
	Scan(dest ...any) error
}

func scanAccount(row rowScanner, extra ...any) (*Account, error) {
	var (
		a                          Account
		did, handle, status        string
		confirmed, deact, delAfter sql.NullInt64
		created                    int64
	)
	dest := append(append([]any(nil), extra...), &did, &handle, &a.Email, &confirmed, &a.PasswordHash, &a.SigningKey,
		&status, &created, &deact, &delAfter, &a.TakedownRef)
	if err := row.Scan(dest...); err != nil {
		return nil, err
	}
	a.DID = syntax.DID(did)
	a.Handle = syntax.Handle(handle)
	a.Status = Status(status)
	a.CreatedAt = fromMicros(created)
	a.EmailConfirmedAt = timePtr(confirmed)
	a.DeactivatedAt = timePtr(deact)
	a.DeleteAfter = timePtr(delAfter)
	return &a, nil
}

// emailKey is the case-folded email the unique index holds; NULL for none,
// so that any number of accounts may have no email.
func emailKey(email string) sql.NullString {
	if email == "" {
		return sql.NullString{}
	}
	return sql.NullString{String: strings.ToLower(email), Valid: true}
}

func checkDID(did syntax.DID) error {
	if _, err := syntax.ParseDID(string(did)); err != nil {
		return fmt.Errorf("pds store: %w", err)
	}
	return nil
}

func checkHandle(h syntax.Handle) error {
	if _, err := syntax.ParseHandle(string(h)); err != nil {
		return fmt.Errorf("pds store: %w", err)
	}
	return nil
}

// CreateAccount inserts a and, when inviteCode is not "", consumes one use
// of that invite code, in one transaction. It fails with ErrDIDTaken,
// ErrHandleTaken or ErrEmailTaken if another account holds the DID, the
// handle or the email (compared case-insensitively), and with
// ErrInvalidInvite if the code is unknown, disabled or used up; in every
// case nothing is written. The uniqueness checks are the database's unique
// indexes, so of concurrent creations with the same handle exactly one
// succeeds.
func (s *Store) CreateAccount(ctx context.Context, a Account, inviteCode string) error {
	if err := checkDID(a.DID); err != nil {
		return err
	}
	if err := checkHandle(a.Handle); err != nil {
		return err
	}
	if a.Status == "" {
		a.Status = StatusActive
	}
	if !a.Status.Valid() {
		return fmt.Errorf("pds store: unknown account status %q", a.Status)
	}
	if a.CreatedAt.IsZero() {
		a.CreatedAt = time.Now()
	}
	if a.SigningKey == nil {
		a.SigningKey = []byte{}
	}
	defer s.cache.invalidate(a.DID)
	err := s.db.Tx(ctx, func(tx *sql.Tx) error {
		if inviteCode != "" {
			// The conditional update is the use counter: concurrent
			// creations with one code queue on its row, and each sees the
			// count the previous one left.
			res, err := tx.ExecContext(ctx, s.db.Rebind(
				`UPDATE pds_invite_codes SET used = used + 1
				 WHERE code = ? AND disabled = FALSE AND used < available_uses`), inviteCode)
			if err := mustAffect(res, err); errors.Is(err, ErrNotFound) {
				return ErrInvalidInvite
			} else if err != nil {
				return err
			}
		}
		_, err := tx.ExecContext(ctx, s.db.Rebind(
			`INSERT INTO pds_accounts (did, handle, email, email_lower, email_confirmed_at, password_hash,
				signing_key, status, created_at, deactivated_at, delete_after, takedown_ref)
			 VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`),
			string(a.DID), string(a.Handle.Normalize()), a.Email, emailKey(a.Email),
			nullMicros(a.EmailConfirmedAt), a.PasswordHash, a.SigningKey, string(a.Status),
			micros(a.CreatedAt), nullMicros(a.DeactivatedAt), nullMicros(a.DeleteAfter), a.TakedownRef)
		if err != nil {
			if c := accountConflict(err); c != nil {
				return c
			}
			return err
		}
		if inviteCode != "" {
			if _, err := tx.ExecContext(ctx, s.db.Rebind(
				`INSERT INTO pds_invite_code_uses (code, used_by, used_at) VALUES (?, ?, ?)`),
				inviteCode, string(a.DID), micros(a.CreatedAt)); err != nil {
				return err
			}
		}
		return nil
	})
	return wrap("create account", err)
}

// wrap prefixes err for context unless it is nil or one of the sentinels
// (which already say what happened).
func wrap(op string, err error) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, ErrNotFound), errors.Is(err, ErrHandleTaken), errors.Is(err, ErrEmailTaken),
		errors.Is(err, ErrDIDTaken), errors.Is(err, ErrInvalidInvite), errors.Is(err, ErrDuplicateName),
		errors.Is(err, ErrDuplicateInviteCode), errors.Is(err, ErrInvalidToken),
		errors.Is(err, ErrExpiredToken), errors.Is(err, ErrTokenInUse):
		return err
	}
	return fmt.Errorf("pds store: %s: %w", op, err)
}

func (s *Store) accountWhere(ctx context.Context, op, where string, arg any) (*Account, error) {
	st, err := s.db.ReaderStmt(ctx, s.db.Rebind(`SELECT `+accountColumns+` FROM pds_accounts WHERE `+where))
	if err != nil {
		return nil, wrap(op, err)
	}
	a, err := scanAccount(st.QueryRowContext(ctx, arg))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, ErrNotFound
	}
	if err != nil {
		return nil, wrap(op, err)
	}
	return a, nil
}

// AccountByDID returns the account of did, or ErrNotFound.
func (s *Store) AccountByDID(ctx context.Context, did syntax.DID) (*Account, error) {
	if a, ok := s.cache.get(did); ok {
		return a, nil
	}
	gen := s.cache.gen.Load()
	a, err := s.accountWhere(ctx, "account by DID", `did = ?`, string(did))
	if err == nil {
		s.cache.put(gen, a)
	}
	return a, err
}

// AccountByHandle returns the account with handle h (in any letter case),
// or ErrNotFound.
func (s *Store) AccountByHandle(ctx context.Context, h syntax.Handle) (*Account, error) {
	return s.accountWhere(ctx, "account by handle", `handle = ?`, string(h.Normalize()))
}

// AccountByEmail returns the account with the email address (in any letter
// case), or ErrNotFound; "" finds nothing.
func (s *Store) AccountByEmail(ctx context.Context, email string) (*Account, error) {
	key := emailKey(email)
	if !key.Valid {
		return nil, ErrNotFound
	}
	return s.accountWhere(ctx, "account by email", `email_lower = ?`, key.String)
}

// ListAccounts returns up to limit accounts (DefaultListLimit when limit <=
// 0, at most MaxListLimit) of every status, after cursor ("" to start), in
// the order they were created, and the cursor of the next page, "" at the
// end. The order is that of an internal insertion counter, so pages stay
// stable while accounts are created and deleted; an account created during
// a listing appears at its end. A cursor this store did not produce gives
// ErrInvalidCursor.
func (s *Store) ListAccounts(ctx context.Context, cursor string, limit int) ([]Account, string, error) {
	if limit <= 0 {
		limit = DefaultListLimit
	}
	limit = min(limit, MaxListLimit)
	var after int64
	if cursor != "" {
		n, err := strconv.ParseInt(cursor, 10, 64)
		if err != nil || n < 0 {
			return nil, "", fmt.Errorf("%w: %q", ErrInvalidCursor, cursor)
		}
		after = n
	}
	rows, err := s.db.Reader().QueryContext(ctx, s.db.Rebind(
		`SELECT id, `+accountColumns+` FROM pds_accounts WHERE id > ? ORDER BY id LIMIT ?`),
		after, limit+1)
	if err != nil {
		return nil, "", wrap("list accounts", err)
	}
	defer rows.Close()
	var (
		out  []Account
		last int64
		more bool
	)
	for rows.Next() {
		if len(out) == limit {
			more = true
			break
		}
		var id int64
		a, err := scanAccount(rows, &id)
		if err != nil {
			return nil, "", wrap("list accounts", err)
		}
		out = append(out, *a)
		last = id
	}
	if err := rows.Err(); err != nil {
		return nil, "", wrap("list accounts", err)
	}
	if !more {
		return out, "", nil
	}
	return out, strconv.FormatInt(last, 10), nil
}

// CountAccounts returns the number of accounts of every status.
func (s *Store) CountAccounts(ctx context.Context) (int, error) {
	var n int
	if err := s.db.Reader().QueryRowContext(ctx, `SELECT COUNT(*) FROM pds_accounts`).Scan(&n); err != nil {
		return 0, wrap("count accounts", err)
	}
	return n, nil
}

// update runs one UPDATE of the account did in a transaction, mapping "no
// row" to ErrNotFound and unique violations to their sentinels.
func (s *Store) update(ctx context.Context, op string, did syntax.DID, set string, args ...any) error {
	defer s.cache.invalidate(did)
	args = append(args, string(did))
	err := s.db.Tx(ctx, func(tx *sql.Tx) error {
		err := mustAffect(tx.ExecContext(ctx, s.db.Rebind(
			`UPDATE pds_accounts SET `+set+` WHERE did = ?`), args...))
		if c := accountConflict(err); c != nil {
			return c
		}
		return err
	})
	return wrap(op, err)
}

// UpdateHandle gives the account did the handle h (stored in lower case);
// ErrHandleTaken if another account has it, ErrNotFound if did has no
// account.
func (s *Store) UpdateHandle(ctx context.Context, did syntax.DID, h syntax.Handle) error {
	if err := checkHandle(h); err != nil {
		return err
	}
	return s.update(ctx, "update handle", did, `handle = ?`, string(h.Normalize()))
}

// UpdateEmail sets the account's email ("" removes it) and clears
// EmailConfirmedAt; ErrEmailTaken if another account has the address
// (compared case-insensitively), ErrNotFound if did has no account.
func (s *Store) UpdateEmail(ctx context.Context, did syntax.DID, email string) error {
	return s.update(ctx, "update email", did,
		`email = ?, email_lower = ?, email_confirmed_at = NULL`, email, emailKey(email))
}

// ConfirmEmail records that the account's email was confirmed at at.
func (s *Store) ConfirmEmail(ctx context.Context, did syntax.DID, at time.Time) error {
	return s.update(ctx, "confirm email", did, `email_confirmed_at = ?`, micros(at))
}

// SetPasswordHash replaces the account's password hash (from HashPassword).
// It does not revoke sessions; see RefreshStore().RevokeDID.
func (s *Store) SetPasswordHash(ctx context.Context, did syntax.DID, hash string) error {
	return s.update(ctx, "set password", did, `password_hash = ?`, hash)
}

// SetStatus changes the account's status:
//
//   - StatusActive clears DeactivatedAt, DeleteAfter and TakedownRef;
//   - StatusDeactivated sets DeactivatedAt to at and DeleteAfter to
//     deleteAfter (nil for none);
//   - StatusTakendown changes only the status (SetTakedown also records a
//     reference).
//
// The store does not judge transitions (whether an account owner may
// reactivate a taken-down account is the caller's decision).
func (s *Store) SetStatus(ctx context.Context, did syntax.DID, st Status, at time.Time, deleteAfter *time.Time) error {
	switch st {
	case StatusActive:
		return s.update(ctx, "set status", did,
			`status = ?, deactivated_at = NULL, delete_after = NULL, takedown_ref = ''`, string(st))
	case StatusDeactivated:
		return s.update(ctx, "set status", did,
			`status = ?, deactivated_at = ?, delete_after = ?`, string(st), micros(at), nullMicros(deleteAfter))
	case StatusTakendown:
		return s.update(ctx, "set status", did, `status = ?`, string(st))
	}
	return fmt.Errorf("pds store: unknown account status %q", st)
}

// SetTakedown sets the account's status to StatusTakendown and records ref
// (the moderation reference of com.atproto.admin.updateSubjectStatus).
func (s *Store) SetTakedown(ctx context.Context, did syntax.DID, ref string) error {
	return s.update(ctx, "take down", did, `status = ?, takedown_ref = ?`, string(StatusTakendown), ref)
}

// AccountsToDelete returns the DIDs of deactivated accounts whose
// DeleteAfter is not after now, oldest deadline first, at most limit of
// them (MaxListLimit when limit <= 0).
func (s *Store) AccountsToDelete(ctx context.Context, now time.Time, limit int) ([]syntax.DID, error) {
	if limit <= 0 {
		limit = MaxListLimit
	}
	rows, err := s.db.Reader().QueryContext(ctx, s.db.Rebind(
		`SELECT did FROM pds_accounts WHERE status = ? AND delete_after IS NOT NULL AND delete_after <= ?
		 ORDER BY delete_after, id LIMIT ?`), string(StatusDeactivated), micros(now), limit)
	if err != nil {
		return nil, wrap("accounts to delete", err)
	}
	defer rows.Close()
	var out []syntax.DID
	for rows.Next() {
		var did string
		if err := rows.Scan(&did); err != nil {
			return nil, wrap("accounts to delete", err)
		}
		out = append(out, syntax.DID(did))
	}
	return out, wrap("accounts to delete", rows.Err())
}

// DeleteAccount removes the account did and everything keyed by it, in one
// transaction: its app passwords, email tokens and refresh tokens. Invite
// codes created for the account are kept but disabled, so the record of who
// invited whom survives and the codes cannot be used any more; the record
// that the account used an invite code is kept too, so the code's use count
// stays right. ErrNotFound if did has no account.
func (s *Store) DeleteAccount(ctx context.Context, did syntax.DID) error {
	defer s.cache.invalidate(did)
	err := s.db.Tx(ctx, func(tx *sql.Tx) error {
		// App passwords and email tokens reference the account and go
		// with it (ON DELETE CASCADE); refresh tokens do not, as
		// auth.RefreshStore does not require an account.
		for _, q := range []string{
			`DELETE FROM pds_refresh_tokens WHERE did = ?`,
			`UPDATE pds_invite_codes SET disabled = TRUE WHERE for_account = ?`,
		} {
			if _, err := tx.ExecContext(ctx, s.db.Rebind(q), string(did)); err != nil {
				return err
			}
		}
		return mustAffect(tx.ExecContext(ctx, s.db.Rebind(`DELETE FROM pds_accounts WHERE did = ?`), string(did)))
	})
	return wrap("delete account", err)
}
