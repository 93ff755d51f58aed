package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"math"
	"strconv"
	"time"

	"github.com/welkin-atproto/welkin/atproto/syntax"
	"github.com/welkin-atproto/welkin/internal/sqldb"
)

// component is the name under which the schema version is recorded.
const component = "relay"

// migrations is the versioned schema. Times are Unix milliseconds.
var migrations = []sqldb.Migration{
	{
		Version: 1,
		SQLite: `
CREATE TABLE relay_hosts (
	id            INTEGER PRIMARY KEY AUTOINCREMENT,
	hostname      TEXT NOT NULL UNIQUE,
	no_tls        BOOLEAN NOT NULL DEFAULT FALSE,
	trusted       BOOLEAN NOT NULL DEFAULT FALSE,
	status        TEXT NOT NULL,
	cursor        BIGINT NOT NULL DEFAULT 0,
	accepted      BIGINT NOT NULL DEFAULT 0,
	rejected      BIGINT NOT NULL DEFAULT 0,
	account_limit BIGINT NOT NULL,
	created_at    BIGINT NOT NULL,
	updated_at    BIGINT NOT NULL
);
CREATE TABLE relay_accounts (
	did        TEXT PRIMARY KEY,
	host       TEXT NOT NULL,
	status     TEXT NOT NULL,
	rev        TEXT NOT NULL DEFAULT '',
	data_cid   TEXT NOT NULL DEFAULT '',
	commit_cid TEXT NOT NULL DEFAULT '',
	desync     BOOLEAN NOT NULL DEFAULT FALSE,
	updated_at BIGINT NOT NULL
);
CREATE INDEX relay_accounts_host ON relay_accounts (host);
`,
		Postgres: `
CREATE TABLE relay_hosts (
	id            BIGSERIAL PRIMARY KEY,
	hostname      TEXT NOT NULL UNIQUE,
	no_tls        BOOLEAN NOT NULL DEFAULT FALSE,
	trusted       BOOLEAN NOT NULL DEFAULT FALSE,
	status        TEXT NOT NULL,
	cursor        BIGINT NOT NULL DEFAULT 0,
	accepted      BIGINT NOT NULL DEFAULT 0,
	rejected      BIGINT NOT NULL DEFAULT 0,
	account_limit BIGINT NOT NULL,
	created_at    BIGINT NOT NULL,
	updated_at    BIGINT NOT NULL
);
CREATE TABLE relay_accounts (
	did        TEXT PRIMARY KEY,
	host       TEXT NOT NULL,
	status     TEXT NOT NULL,
	rev        TEXT NOT NULL DEFAULT '',
	data_cid   TEXT NOT NULL DEFAULT '',
	commit_cid TEXT NOT NULL DEFAULT '',
	desync     BOOLEAN NOT NULL DEFAULT FALSE,
	updated_at BIGINT NOT NULL
);
CREATE INDEX relay_accounts_host ON relay_accounts (host);
`,
	},
	{
		// Version 2: the relay's host policy. account_limit becomes the
		// operator's override (0: the policy decides); the values stored
		// before were the defaults of their time, not decisions, so they
		// are cleared. first_seen_at is when the host's first event was
		// accepted, approximated by when it was added for hosts that
		// already had accepted events. event_rate and event_burst are the
		// operator's event rate override (0: the policy decides).
		Version: 2,
		SQL: `
ALTER TABLE relay_hosts ADD COLUMN first_seen_at BIGINT NOT NULL DEFAULT 0;
ALTER TABLE relay_hosts ADD COLUMN event_rate DOUBLE PRECISION NOT NULL DEFAULT 0;
ALTER TABLE relay_hosts ADD COLUMN event_burst BIGINT NOT NULL DEFAULT 0;
UPDATE relay_hosts SET first_seen_at = created_at WHERE accepted > 0;
UPDATE relay_hosts SET account_limit = 0;
`,
	},
	{
		// Version 3: local takedowns, the seq up to which account state
		// matches the event log, and the desynchronized accounts found
		// quickly on start.
		Version: 3,
		SQL: `
ALTER TABLE relay_accounts ADD COLUMN takedown BOOLEAN NOT NULL DEFAULT FALSE;
CREATE INDEX relay_accounts_desync ON relay_accounts (did) WHERE desync;
CREATE TABLE relay_meta (
	name  TEXT PRIMARY KEY,
	value BIGINT NOT NULL
);
`,
	},
}

// Store is the relay's state on an sqldb database (SQLite or PostgreSQL).
// It is safe for concurrent use.
type Store struct {
	db    *sqldb.DB
	owned bool
	now   func() time.Time
}

// Open opens the database url names (see sqldb.Config.URL), brings its
// schema up to date and returns a store that closes the database on Close.
func Open(ctx context.Context, url string) (*Store, error) {
	db, err := sqldb.Open(ctx, sqldb.Config{URL: url})
	if err != nil {
		return nil, fmt.Errorf("relay store: open: %w", err)
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
func New(ctx context.Context, db *sqldb.DB) (*Store, error) {
	if err := sqldb.Migrate(ctx, db, component, migrations); err != nil {
		return nil, fmt.Errorf("relay store: migrate: %w", err)
	}
	return &Store{db: db, now: time.Now}, nil
}

// SetClock replaces the clock that stamps updates (for tests).
func (s *Store) SetClock(now func() time.Time) { s.now = now }

// Close closes the database if Open opened it.
func (s *Store) Close() error {
	if s.owned {
		return s.db.Close()
	}
	return nil
}

// Ping checks that the database answers.
func (s *Store) Ping(ctx context.Context) error { return s.db.SQL().PingContext(ctx) }

const hostCols = `id, hostname, no_tls, trusted, status, cursor, accepted, rejected, account_limit, event_rate, event_burst, first_seen_at, created_at, updated_at`

func scanHost(sc interface{ Scan(...any) error }) (Host, error) {
	var (
		h             Host
		fms, cms, ums int64
	)
	if err := sc.Scan(&h.ID, &h.Hostname, &h.NoTLS, &h.Trusted, &h.Status, &h.Cursor, &h.Accepted, &h.Rejected,
		&h.AccountLimit, &h.EventRate, &h.EventBurst, &fms, &cms, &ums); err != nil {
		return Host{}, err
	}
	if fms != 0 {
		h.FirstSeen = time.UnixMilli(fms).UTC()
	}
	h.CreatedAt, h.UpdatedAt = time.UnixMilli(cms).UTC(), time.UnixMilli(ums).UTC()
	return h, nil
}

// AddHost stores h (Hostname, NoTLS, Trusted, Status, AccountLimit,
// EventRate, EventBurst) unless its hostname is stored already, and
// returns the stored host and whether it was added. Adding a known host as
// Trusted marks it trusted; nothing else of a known host changes (a
// blocked host stays blocked, its limits stay).
func (s *Store) AddHost(ctx context.Context, h Host) (Host, bool, error) {
	if h.Hostname == "" {
		return Host{}, false, errors.New("relay store: add host: empty hostname")
	}
	if h.Status == "" {
		h.Status = HostActive
	}
	if !ValidHostStatus(h.Status) {
		return Host{}, false, fmt.Errorf("relay store: add host %s: invalid status %q", h.Hostname, h.Status)
	}
	if err := checkLimits(h.AccountLimit, h.EventRate, h.EventBurst); err != nil {
		return Host{}, false, fmt.Errorf("relay store: add host %s: %w", h.Hostname, err)
	}
	now := s.now().UnixMilli()
	var added bool
	err := s.db.Tx(ctx, func(tx *sql.Tx) error {
		added = false
		old, err := scanHost(tx.QueryRowContext(ctx, s.db.Rebind(`SELECT `+hostCols+` FROM relay_hosts WHERE hostname = ?`), h.Hostname))
		if err == nil {
			if h.Trusted && !old.Trusted {
				_, err = tx.ExecContext(ctx, s.db.Rebind(
					`UPDATE relay_hosts SET trusted = TRUE, updated_at = ? WHERE id = ?`), now, old.ID)
			}
			return err
		}
		if !errors.Is(err, sql.ErrNoRows) {
			return err
		}
		added = true
		_, err = tx.ExecContext(ctx, s.db.Rebind(
			`INSERT INTO relay_hosts (hostname, no_tls, trusted, status, account_limit, event_rate, event_burst, created_at, updated_at)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`),
			h.Hostname, h.NoTLS, h.Trusted, h.Status, h.AccountLimit, h.EventRate, h.EventBurst, now, now)
		return err
	})
	if err != nil {
		return Host{}, false, fmt.Errorf("relay store: add host %s: %w", h.Hostname, err)
	}
	got, err := s.Host(ctx, h.Hostname)
	return got, added, err
}

// Host returns the stored host named hostname, or ErrNotFound.
func (s *Store) Host(ctx context.Context, hostname string) (Host, error) {
	h, err := scanHost(s.db.Reader().QueryRowContext(ctx, s.db.Rebind(`SELECT `+hostCols+` FROM relay_hosts WHERE hostname = ?`), hostname))
	if errors.Is(err, sql.ErrNoRows) {
		return Host{}, fmt.Errorf("%w: host %s", ErrNotFound, hostname)
	}
	if err != nil {
		return Host{}, fmt.Errorf("relay store: host %s: %w", hostname, err)
	}
	return h, nil
}

// ListHosts returns up to limit hosts in the order they were added, after
// the position cursor names ("" for the start), and the cursor of the next
// page ("" after the last).
func (s *Store) ListHosts(ctx context.Context, cursor string, limit int) ([]Host, string, error) {
	after, err := parseIDCursor(cursor)
	if err != nil {
		return nil, "", err
	}
	limit = clampLimit(limit)
	rows, err := s.db.Reader().QueryContext(ctx, s.db.Rebind(`SELECT `+hostCols+` FROM relay_hosts WHERE id > ? ORDER BY id LIMIT ?`), after, limit)
	if err != nil {
		return nil, "", fmt.Errorf("relay store: list hosts: %w", err)
	}
	defer rows.Close()
	var out []Host
	for rows.Next() {
		h, err := scanHost(rows)
		if err != nil {
			return nil, "", fmt.Errorf("relay store: list hosts: %w", err)
		}
		out = append(out, h)
	}
	if err := rows.Err(); err != nil {
		return nil, "", fmt.Errorf("relay store: list hosts: %w", err)
	}
	next := ""
	if len(out) == limit {
		next = strconv.FormatInt(out[len(out)-1].ID, 10)
	}
	return out, next, nil
}

// SetHostStatus changes a host's status; ErrNotFound for an unknown host.
func (s *Store) SetHostStatus(ctx context.Context, hostname, status string) error {
	if !ValidHostStatus(status) {
		return fmt.Errorf("relay store: set status of %s: invalid status %q", hostname, status)
	}
	return s.updateHost(ctx, "set status", hostname, `UPDATE relay_hosts SET status = ?, updated_at = ? WHERE hostname = ?`,
		status, s.now().UnixMilli(), hostname)
}

// SaveHostProgress records that the host's events up to upstream seq
// cursor are handled, and adds to its counts of accepted and rejected
// events. The cursor never moves back.
func (s *Store) SaveHostProgress(ctx context.Context, hostname string, cursor, accepted, rejected int64) error {
	return s.updateHost(ctx, "save progress", hostname,
		`UPDATE relay_hosts SET cursor = CASE WHEN cursor > ? THEN cursor ELSE ? END, accepted = accepted + ?, rejected = rejected + ?, updated_at = ? WHERE hostname = ?`,
		cursor, cursor, accepted, rejected, s.now().UnixMilli(), hostname)
}

// SetHostLimits sets the operator's limits of a host: its account limit,
// event rate (events a second) and burst. 0 leaves a limit to the relay's
// host policy; negative values are refused. ErrNotFound for an unknown
// host.
func (s *Store) SetHostLimits(ctx context.Context, hostname string, accountLimit int64, eventRate float64, eventBurst int64) error {
	if err := checkLimits(accountLimit, eventRate, eventBurst); err != nil {
		return fmt.Errorf("relay store: set limits of %s: %w", hostname, err)
	}
	return s.updateHost(ctx, "set limits", hostname,
		`UPDATE relay_hosts SET account_limit = ?, event_rate = ?, event_burst = ?, updated_at = ? WHERE hostname = ?`,
		accountLimit, eventRate, eventBurst, s.now().UnixMilli(), hostname)
}

func checkLimits(accountLimit int64, eventRate float64, eventBurst int64) error {
	if accountLimit < 0 || eventBurst < 0 || !(eventRate >= 0) || math.IsInf(eventRate, 0) {
		return fmt.Errorf("limits must be finite and not negative (accounts %d, rate %v, burst %d)", accountLimit, eventRate, eventBurst)
	}
	return nil
}

// MarkHostSeen records t as the time the host's first event was accepted,
// unless one is recorded already. ErrNotFound for an unknown host.
func (s *Store) MarkHostSeen(ctx context.Context, hostname string, t time.Time) error {
	res, err := s.db.SQL().ExecContext(ctx, s.db.Rebind(
		`UPDATE relay_hosts SET first_seen_at = ?, updated_at = ? WHERE hostname = ? AND first_seen_at = 0`),
		max(t.UnixMilli(), 1), s.now().UnixMilli(), hostname)
	if err != nil {
		return fmt.Errorf("relay store: mark %s seen: %w", hostname, err)
	}
	if n, err := res.RowsAffected(); err != nil || n > 0 {
		return err
	}
	_, err = s.Host(ctx, hostname) // ErrNotFound, or seen before
	return err
}

// ResetHostCursor sets a host's cursor, backwards too (for an upstream
// whose sequence restarted).
func (s *Store) ResetHostCursor(ctx context.Context, hostname string, cursor int64) error {
	return s.updateHost(ctx, "reset cursor", hostname, `UPDATE relay_hosts SET cursor = ?, updated_at = ? WHERE hostname = ?`,
		cursor, s.now().UnixMilli(), hostname)
}

func (s *Store) updateHost(ctx context.Context, what, hostname, q string, args ...any) error {
	res, err := s.db.SQL().ExecContext(ctx, s.db.Rebind(q), args...)
	if err != nil {
		return fmt.Errorf("relay store: %s of host %s: %w", what, hostname, err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return fmt.Errorf("relay store: %s of host %s: %w", what, hostname, err)
	}
	if n == 0 {
		return fmt.Errorf("%w: host %s", ErrNotFound, hostname)
	}
	return nil
}

// AccountCount returns how many accounts the relay has seen on hostname.
func (s *Store) AccountCount(ctx context.Context, hostname string) (int64, error) {
	var n int64
	if err := s.db.Reader().QueryRowContext(ctx, s.db.Rebind(`SELECT COUNT(*) FROM relay_accounts WHERE host = ?`), hostname).Scan(&n); err != nil {
		return 0, fmt.Errorf("relay store: count accounts of %s: %w", hostname, err)
	}
	return n, nil
}

const accountCols = `did, host, status, rev, data_cid, commit_cid, desync, takedown, updated_at`

func scanAccount(sc interface{ Scan(...any) error }) (Account, error) {
	var (
		a   Account
		did string
		ms  int64
	)
	if err := sc.Scan(&did, &a.Host, &a.Status, &a.Rev, &a.Data, &a.Commit, &a.Desync, &a.TakenDown, &ms); err != nil {
		return Account{}, err
	}
	a.DID = syntax.DID(did)
	a.UpdatedAt = time.UnixMilli(ms).UTC()
	return a, nil
}

// Account returns the stored account of did, or ErrNotFound.
func (s *Store) Account(ctx context.Context, did syntax.DID) (Account, error) {
	a, err := scanAccount(s.db.Reader().QueryRowContext(ctx, s.db.Rebind(`SELECT `+accountCols+` FROM relay_accounts WHERE did = ?`), string(did)))
	if errors.Is(err, sql.ErrNoRows) {
		return Account{}, fmt.Errorf("%w: account %s", ErrNotFound, did)
	}
	if err != nil {
		return Account{}, fmt.Errorf("relay store: account %s: %w", did, err)
	}
	return a, nil
}

// PutAccount stores a, replacing what was stored for its DID. An empty
// Status is stored as StatusActive.
func (s *Store) PutAccount(ctx context.Context, a Account) error {
	if err := putAccount(ctx, s.db, s.db.SQL(), a, s.now().UnixMilli()); err != nil {
		return fmt.Errorf("relay store: put account %s: %w", a.DID, err)
	}
	return nil
}

// execer is a *sql.DB or a *sql.Tx.
type execer interface {
	ExecContext(ctx context.Context, q string, args ...any) (sql.Result, error)
}

const putAccountSQL = `
INSERT INTO relay_accounts (` + accountCols + `) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)
ON CONFLICT (did) DO UPDATE SET host = excluded.host, status = excluded.status, rev = excluded.rev,
	data_cid = excluded.data_cid, commit_cid = excluded.commit_cid, desync = excluded.desync,
	takedown = excluded.takedown, updated_at = excluded.updated_at`

func putAccount(ctx context.Context, db *sqldb.DB, ex execer, a Account, now int64) error {
	if a.DID == "" {
		return errors.New("empty DID")
	}
	if a.Status == "" {
		a.Status = StatusActive
	}
	_, err := ex.ExecContext(ctx, db.Rebind(putAccountSQL),
		string(a.DID), a.Host, a.Status, a.Rev, a.Data, a.Commit, a.Desync, a.TakenDown, now)
	return err
}

// ListAccounts returns up to limit accounts in DID order after the DID
// cursor names ("" for the start), and the cursor of the next page (""
// after the last).
func (s *Store) ListAccounts(ctx context.Context, cursor string, limit int) ([]Account, string, error) {
	return s.listAccounts(ctx, "", cursor, limit)
}

func parseIDCursor(c string) (int64, error) {
	if c == "" {
		return 0, nil
	}
	n, err := strconv.ParseInt(c, 10, 64)
	if err != nil || n < 0 {
		return 0, fmt.Errorf("%w: %q", ErrInvalidCursor, c)
	}
	return n, nil
}

func clampLimit(n int) int {
	if n <= 0 {
		return DefaultListLimit
	}
	return min(n, MaxListLimit)
}
