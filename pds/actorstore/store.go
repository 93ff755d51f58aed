package actorstore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/welkin-atproto/welkin/atproto/data"
	"github.com/welkin-atproto/welkin/atproto/repo"
	"github.com/welkin-atproto/welkin/atproto/syntax"
	"github.com/welkin-atproto/welkin/internal/sqldb"
)

// Component is the name under which the store's migrations are recorded.
const Component = "actorstore"

// FileName is the name of an account's database file inside its directory.
const FileName = "store.sqlite"

const (
	// DefaultListLimit is the page size of ListRecords when limit <= 0
	// (com.atproto.repo.listRecords: "limit ... default: 50").
	DefaultListLimit = 50
	// MaxListLimit bounds the page size of ListRecords
	// (com.atproto.repo.listRecords: "limit ... maximum: 100").
	MaxListLimit = 100
	// MaxOutboxBatch bounds the rows one Outbox call returns.
	MaxOutboxBatch = 1000
)

// Outbox kinds: the event an outbox row's body encodes.
const (
	// KindCommit is the outbox kind of a #commit event body.
	KindCommit = "commit"
	// KindSync is the outbox kind of a #sync event body, written by
	// ReplaceRepo.
	KindSync = "sync"
)

var (
	// ErrConcurrentWrite: the stored root is not the one a commit was built
	// on; another write landed first. Nothing was written.
	ErrConcurrentWrite = errors.New("concurrent write to repository")
	// ErrInvalidCommit: a CommitResult given to ApplyCommit is malformed.
	ErrInvalidCommit = errors.New("invalid commit result")
)

// ConcurrentWriteError is the error ApplyCommit returns when the stored
// root's rev is not the commit's Since. It matches ErrConcurrentWrite.
type ConcurrentWriteError struct {
	DID   syntax.DID
	Since syntax.TID // the rev the commit was built on ("" for the first)
	Head  string     // the stored rev ("" when there is no root)
}

func (e *ConcurrentWriteError) Error() string {
	return fmt.Sprintf("%v: %s: commit built on rev %q, stored head is rev %q",
		ErrConcurrentWrite, e.DID, e.Since, e.Head)
}

// Is reports whether target is ErrConcurrentWrite.
func (e *ConcurrentWriteError) Is(target error) bool { return target == ErrConcurrentWrite }

var migrations = []sqldb.Migration{
	{
		Version: 1,
		SQL: `
CREATE TABLE blocks (
	cid  BLOB PRIMARY KEY,
	data BLOB NOT NULL,
	rev  TEXT NOT NULL
);
CREATE TABLE records (
	collection TEXT NOT NULL,
	rkey       TEXT NOT NULL,
	cid        BLOB NOT NULL,
	rev        TEXT NOT NULL,
	PRIMARY KEY (collection, rkey)
);
CREATE TABLE repo_root (
	id  INTEGER PRIMARY KEY CHECK (id = 1),
	cid BLOB NOT NULL,
	rev TEXT NOT NULL
);
CREATE TABLE outbox (
	id   INTEGER PRIMARY KEY AUTOINCREMENT,
	rev  TEXT NOT NULL,
	kind TEXT NOT NULL,
	body BLOB NOT NULL
);`,
	},
	{
		// Version 2: blob metadata and the record index beyond the MST
		// (blob references, backlinks). See blobs.go and index.go.
		Version: 2,
		SQL: `
CREATE TABLE blobs (
	cid        BLOB PRIMARY KEY,
	mime       TEXT NOT NULL,
	size       INTEGER NOT NULL,
	temp_key   TEXT,
	created_at INTEGER NOT NULL
);
CREATE INDEX blobs_temp ON blobs (created_at) WHERE temp_key IS NOT NULL;
CREATE TABLE record_blobs (
	blob_cid   BLOB NOT NULL,
	collection TEXT NOT NULL,
	rkey       TEXT NOT NULL,
	PRIMARY KEY (blob_cid, collection, rkey)
);
CREATE INDEX record_blobs_record ON record_blobs (collection, rkey);
CREATE TABLE blob_gc (
	cid BLOB PRIMARY KEY
);
CREATE TABLE backlinks (
	collection TEXT NOT NULL,
	rkey       TEXT NOT NULL,
	path       TEXT NOT NULL,
	link_to    TEXT NOT NULL,
	PRIMARY KEY (collection, rkey, path)
);
CREATE INDEX backlinks_link ON backlinks (link_to, path, collection);`,
	},
	{
		// Version 3: the row Sync rewrites to make the store durable.
		Version: 3,
		SQLite: `
CREATE TABLE sync_mark (
	id INTEGER PRIMARY KEY CHECK (id = 1),
	n  INTEGER NOT NULL
);`,
	},
}

// The connection settings of one account's database. A PDS keeps many of
// them open at once, so each is kept small: two readers that close when
// idle and a 256 KiB page cache per connection (the file's pages stay in
// the operating system's cache).
const (
	storeReaders    = 2
	storeReaderIdle = 30 * time.Second
	storeCacheKiB   = 256
	// storeSpillPages is how large (in 4 KiB pages) a transaction may grow
	// before its dirty pages go to the WAL before it commits. A batch of
	// commits (see later.go) changes pages all over the block index, far
	// more than the 256 KiB cache holds; spilled pages are changed again
	// and rewritten, and SQLite then rewrites every later frame's checksum.
	// At 64 clients this made each batch write several times its size, and
	// the rate fell as the repositories grew. 8 MiB holds any batch; only
	// a large import spills.
	storeSpillPages = 2048
	// walAutocheckpoint is the WAL size, in pages, at which a commit
	// copies the WAL into the database file itself. Sync does that about
	// every second (see package pds), but a round of syncs over many
	// busy accounts takes longer than that, and at 8,192 pages the WALs
	// grew to 30 MB each within 25 s of load at 64 clients, until
	// checkpoints of that size stalled every write. Commits are stored in
	// background batches, so the checkpoint a batch's commit runs at
	// SQLite's default of 1,000 pages delays no request.
	walAutocheckpoint = 1000
)

// Store is the database of one account.
type Store struct {
	did syntax.DID
	db  *sqldb.DB
	mu  sync.Mutex // the account's write lock; see Lock
	// gcPending is set when blob_gc may hold rows: blobs that lost their
	// last reference (see BlobGarbage).
	gcPending atomic.Bool

	// acked is the highest outbox ID the sequencer has acknowledged; the
	// rows up to it are deleted by the store's next write transaction
	// (see AckOutbox). deleted is the highest ID deleted so far.
	acked, deleted atomic.Int64
	// outboxTop is the highest outbox ID this store has seen: the
	// highest ever inserted when it opened, then each row it appends. An
	// acknowledgement goes no higher, so that one meant for an account's
	// earlier database (deleted and created again meanwhile) cannot take
	// rows of the new one.
	outboxTop atomic.Int64

	// The commits handed to ApplyCommitLater and not yet stored (see
	// later.go), guarded by laterMu: queue holds those waiting, storingNow
	// the batch being stored; later is the last commit handed over;
	// storing is set while a goroutine stores the queue, which kick asks
	// to store it now; laterErr is the failure of a batch the store gave
	// up. stop is closed by Close, to end the attempts.
	laterMu    sync.Mutex
	queue      []*queuedCommit
	storingNow []*queuedCommit
	later      *laterApply
	storing    bool
	laterErr   error
	kick       chan struct{}
	// hooksDone is closed once the Done hooks of the last batch stored
	// have run; only the goroutine storing the queue uses it.
	hooksDone chan struct{}
	stop      chan struct{}
	stopOnce  sync.Once
	// laterFault, set by tests, fails an attempt at storing a commit in
	// the background when it returns an error.
	laterFault func(attempt int) error

	// head caches the stored root, read once and then kept up to date by
	// the writes that change it, so that a write need not read it back.
	headMu sync.Mutex
	head   *headState // nil until read
}

// headState is a stored root, or its absence.
type headState struct {
	cid data.CID
	rev string
	ok  bool
}

// forgetHead drops the cached root after a failed write, whose outcome the
// next Head reads back from the database.
func (s *Store) forgetHead() {
	s.headMu.Lock()
	s.head = nil
	s.headMu.Unlock()
}

// setHead records the root a committed transaction stored.
func (s *Store) setHead(c data.CID, rev string) {
	s.headMu.Lock()
	s.head = &headState{cid: c, rev: rev, ok: true}
	s.headMu.Unlock()
}

var _ repo.BlockStore = (*Store)(nil)

// Dir returns the directory, under dir, that holds the database of did.
func Dir(dir string, did syntax.DID) string {
	return filepath.Join(dir, strings.ReplaceAll(string(did), ":", "_"))
}

// Open opens, creating it if needed, the database of did under dir
// (Dir(dir, did)/FileName, mode 0600) and brings its schema up to date.
func Open(ctx context.Context, dir string, did syntax.DID) (*Store, error) {
	if _, err := syntax.ParseDID(string(did)); err != nil {
		return nil, fmt.Errorf("actorstore: %w", err)
	}
	if dir == "" {
		return nil, errors.New("actorstore: empty data directory")
	}
	path := filepath.Join(Dir(dir, did), FileName)
	db, err := sqldb.Open(ctx, sqldb.Config{URL: path, Synchronous: sqldb.SyncNormal,
		MaxReaders: storeReaders, ReaderIdle: storeReaderIdle, CacheKiB: storeCacheKiB,
		SpillPages: storeSpillPages})
	if err != nil {
		return nil, fmt.Errorf("actorstore: open %s: %w", did, err)
	}
	if err := sqldb.Migrate(ctx, db, Component, migrations); err != nil {
		db.Close()
		return nil, fmt.Errorf("actorstore: migrate %s: %w", did, err)
	}
	s := &Store{did: did, db: db, stop: make(chan struct{}), kick: make(chan struct{}, 1)}
	var n int
	if err := db.Reader().QueryRowContext(ctx, `SELECT COUNT(*) FROM (SELECT 1 FROM blob_gc LIMIT 1)`).Scan(&n); err != nil {
		db.Close()
		return nil, fmt.Errorf("actorstore: open %s: %w", did, err)
	}
	s.gcPending.Store(n > 0)
	var top int64
	if err := db.Reader().QueryRowContext(ctx,
		`SELECT coalesce((SELECT seq FROM sqlite_sequence WHERE name = 'outbox'), 0)`).Scan(&top); err != nil {
		db.Close()
		return nil, fmt.Errorf("actorstore: open %s: %w", did, err)
	}
	s.outboxTop.Store(top)
	if _, err := db.SQL().ExecContext(ctx, fmt.Sprintf("PRAGMA wal_autocheckpoint=%d", walAutocheckpoint)); err != nil {
		db.Close()
		return nil, fmt.Errorf("actorstore: open %s: %w", did, err)
	}
	return s, nil
}

// Close makes everything written durable (see Sync) and closes the
// database. A commit being stored in the background is waited for, and
// given up if it is between two failed attempts.
func (s *Store) Close() error {
	s.stopOnce.Do(func() { close(s.stop) })
	err := s.Sync(context.Background())
	return errors.Join(err, s.db.Close())
}

// Sync makes every transaction committed so far durable. Commits stored
// with ApplyCommit are not durable by themselves (see the package
// documentation); the PDS calls Sync before it may forget that their
// events in the firehose log are needed to restore them.
func (s *Store) Sync(ctx context.Context) error {
	if err := s.waitLater(); err != nil {
		return err
	}
	var deleted int64
	err := s.db.DurableTx(ctx, func(tx *sql.Tx) error {
		var err error
		if deleted, err = s.deleteAcked(ctx, tx); err != nil {
			return err
		}
		return s.exec(ctx, tx, `INSERT INTO sync_mark (id, n) VALUES (1, 1)
			ON CONFLICT (id) DO UPDATE SET n = sync_mark.n + 1`)
	})
	if err != nil {
		return fmt.Errorf("actorstore: sync %s: %w", s.did, err)
	}
	s.noteDeleted(deleted)
	// Everything is durable in the WAL; copy it into the database file
	// here, off the write path (see walAutocheckpoint). A reader still on
	// an older snapshot may hold part of it back until the next time.
	if _, err := s.db.SQL().ExecContext(ctx, "PRAGMA wal_checkpoint(PASSIVE)"); err != nil {
		return fmt.Errorf("actorstore: checkpoint %s: %w", s.did, err)
	}
	return nil
}

// DID returns the account the store belongs to.
func (s *Store) DID() syntax.DID { return s.did }

// Path returns the database file's path.
func (s *Store) Path() string { return s.db.Path() }

// Lock takes the account's write lock, once every commit handed to
// ApplyCommitLater is stored. A writer holds it from reading Head (and
// opening the repository there) until ApplyCommit or ApplyCommitLater
// returns, so that writes of one account never race; the Since check
// still refuses a commit built on a stale head. The writer of commits
// for ApplyCommitLater may take it with LockForCommit instead.
func (s *Store) Lock() {
	s.mu.Lock()
	s.waitLater() // a failure comes back from Head and every write
}

// Unlock releases the account's write lock.
func (s *Store) Unlock() { s.mu.Unlock() }

// GetBlock implements repo.BlockStore, reading through the read-only pool
// once the queued commits are stored.
func (s *Store) GetBlock(ctx context.Context, c data.CID) ([]byte, error) {
	if err := s.WaitApplied(ctx); err != nil {
		return nil, err
	}
	return s.getBlock(ctx, c)
}

// getBlock is GetBlock without waiting for queued commits.
func (s *Store) getBlock(ctx context.Context, c data.CID) ([]byte, error) {
	st, err := s.db.ReaderStmt(ctx, `SELECT data FROM blocks WHERE cid = ?`)
	if err != nil {
		return nil, fmt.Errorf("actorstore: get block %s: %w", c, err)
	}
	var b []byte
	err = st.QueryRowContext(ctx, c.Bytes()).Scan(&b)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, &repo.MissingBlockError{CID: c, Context: "actor store " + string(s.did)}
	}
	if err != nil {
		return nil, fmt.Errorf("actorstore: get block %s: %w", c, err)
	}
	return b, nil
}

// PutBlock implements repo.BlockStore: it stores one block in its own
// transaction, with an empty rev. Commits are written with ApplyCommit
// instead, which stores all of a commit's blocks in one transaction.
func (s *Store) PutBlock(ctx context.Context, c data.CID, b []byte) error {
	return s.db.DurableTx(ctx, func(tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx,
			`INSERT INTO blocks (cid, data, rev) VALUES (?, ?, '') ON CONFLICT (cid) DO NOTHING`,
			c.Bytes(), b)
		return err
	})
}

// CommitStore returns the view of the store a repo.Repo is built on when its
// commits are stored with ApplyCommit or ApplyCommitLater: it reads the
// blocks of queued commits and then the database, and its PutBlock keeps
// nothing, since the commit's transaction writes CommitResult.Blocks.
// After a commit that ApplyCommit refused, the repository must be reopened
// at Head.
func (s *Store) CommitStore() repo.BlockStore { return commitStore{s} }

type commitStore struct{ s *Store }

func (c commitStore) GetBlock(ctx context.Context, cid data.CID) ([]byte, error) {
	if b, ok := c.s.queuedBlock(cid); ok {
		return b, nil
	}
	return c.s.getBlock(ctx, cid)
}

func (commitStore) PutBlock(context.Context, data.CID, []byte) error { return nil }

// Head returns the CID and rev of the current commit; ok is false when the
// repository has no commit yet. Commits queued by ApplyCommitLater are
// waited for.
func (s *Store) Head(ctx context.Context) (commitCID data.CID, rev string, ok bool, err error) {
	if err := s.WaitApplied(ctx); err != nil {
		return data.CID{}, "", false, err
	}
	return s.readHead(ctx)
}

// readHead is Head without the wait.
func (s *Store) readHead(ctx context.Context) (commitCID data.CID, rev string, ok bool, err error) {
	s.headMu.Lock()
	defer s.headMu.Unlock()
	if h := s.head; h != nil {
		return h.cid, h.rev, h.ok, nil
	}
	// Read under headMu: a write that commits meanwhile sets the head
	// after this, so the newer root wins.
	st, err := s.db.ReaderStmt(ctx, `SELECT cid, rev FROM repo_root WHERE id = 1`)
	if err != nil {
		return data.CID{}, "", false, fmt.Errorf("actorstore: head: %w", err)
	}
	var cb []byte
	err = st.QueryRowContext(ctx).Scan(&cb, &rev)
	if errors.Is(err, sql.ErrNoRows) {
		s.head = &headState{}
		return data.CID{}, "", false, nil
	}
	if err != nil {
		return data.CID{}, "", false, fmt.Errorf("actorstore: head: %w", err)
	}
	commitCID, err = data.CIDFromBytes(cb)
	if err != nil {
		return data.CID{}, "", false, fmt.Errorf("actorstore: head: stored cid: %w", err)
	}
	s.head = &headState{cid: commitCID, rev: rev, ok: true}
	return commitCID, rev, true, nil
}

// GetRecord returns the CID and bytes of the current record at
// collection/rkey, or an error matching repo.ErrRecordNotFound.
func (s *Store) GetRecord(ctx context.Context, collection syntax.NSID, rkey syntax.RecordKey) (data.CID, []byte, error) {
	if err := s.WaitApplied(ctx); err != nil {
		return data.CID{}, nil, err
	}
	var cb, b []byte
	err := s.db.Reader().QueryRowContext(ctx,
		`SELECT r.cid, b.data FROM records r LEFT JOIN blocks b ON b.cid = r.cid
		 WHERE r.collection = ? AND r.rkey = ?`, string(collection), string(rkey)).Scan(&cb, &b)
	if errors.Is(err, sql.ErrNoRows) {
		return data.CID{}, nil, fmt.Errorf("actorstore: %s/%s: %w", collection, rkey, repo.ErrRecordNotFound)
	}
	if err != nil {
		return data.CID{}, nil, fmt.Errorf("actorstore: get record: %w", err)
	}
	c, err := data.CIDFromBytes(cb)
	if err != nil {
		return data.CID{}, nil, fmt.Errorf("actorstore: get record: stored cid: %w", err)
	}
	if b == nil {
		return data.CID{}, nil, &repo.MissingBlockError{CID: c, Context: "record " + repo.RecordPath(collection, rkey)}
	}
	return c, b, nil
}

// RecordRef is one entry of ListRecords.
type RecordRef struct {
	RKey syntax.RecordKey
	CID  data.CID
}

// ListRecords lists up to limit records of collection (DefaultListLimit
// when limit <= 0, at most MaxListLimit) in record key order, or reverse
// order, starting after the record key cursor ("" for the start). The
// returned cursor is the last key listed when the page is full, "" when the
// listing is complete.
func (s *Store) ListRecords(ctx context.Context, collection syntax.NSID, cursor string, limit int, reverse bool) ([]RecordRef, string, error) {
	if err := s.WaitApplied(ctx); err != nil {
		return nil, "", err
	}
	if limit <= 0 {
		limit = DefaultListLimit
	}
	limit = min(limit, MaxListLimit)
	q := `SELECT rkey, cid FROM records WHERE collection = ?`
	args := []any{string(collection)}
	switch {
	case cursor != "" && reverse:
		q += ` AND rkey < ?`
		args = append(args, cursor)
	case cursor != "":
		q += ` AND rkey > ?`
		args = append(args, cursor)
	}
	if reverse {
		q += ` ORDER BY rkey DESC`
	} else {
		q += ` ORDER BY rkey`
	}
	q += ` LIMIT ?`
	args = append(args, limit)
	rows, err := s.db.Reader().QueryContext(ctx, q, args...)
	if err != nil {
		return nil, "", fmt.Errorf("actorstore: list records: %w", err)
	}
	defer rows.Close()
	var out []RecordRef
	for rows.Next() {
		var k string
		var cb []byte
		if err := rows.Scan(&k, &cb); err != nil {
			return nil, "", fmt.Errorf("actorstore: list records: %w", err)
		}
		c, err := data.CIDFromBytes(cb)
		if err != nil {
			return nil, "", fmt.Errorf("actorstore: list records: stored cid: %w", err)
		}
		out = append(out, RecordRef{RKey: syntax.RecordKey(k), CID: c})
	}
	if err := rows.Err(); err != nil {
		return nil, "", fmt.Errorf("actorstore: list records: %w", err)
	}
	next := ""
	if len(out) == limit {
		next = string(out[len(out)-1].RKey)
	}
	return out, next, nil
}
