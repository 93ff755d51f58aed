package blockstore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/welkin-atproto/welkin/atproto/data"
	"github.com/welkin-atproto/welkin/atproto/repo"
	"github.com/welkin-atproto/welkin/internal/sqldb"
)

// component is the name under which the schema version is recorded.
const component = "blockstore"

var migrations = []sqldb.Migration{
	{
		Version: 1,
		SQLite: `
CREATE TABLE repo_blocks (
	cid  BLOB PRIMARY KEY,
	data BLOB NOT NULL
) WITHOUT ROWID;
`,
		Postgres: `
CREATE TABLE repo_blocks (
	cid  BYTEA PRIMARY KEY,
	data BYTEA NOT NULL
);
`,
	},
}

// Store is a repo.BlockStore on an sqldb database. It is safe for
// concurrent use.
type Store struct {
	db    *sqldb.DB
	owned bool

	qGet, qHas, qPut string
}

var _ repo.BlockStore = (*Store)(nil)

// Open opens the database url names (see sqldb.Config.URL), brings its
// schema up to date and returns a store that closes the database on Close.
func Open(ctx context.Context, url string) (*Store, error) {
	db, err := sqldb.Open(ctx, sqldb.Config{URL: url})
	if err != nil {
		return nil, err
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
		return nil, fmt.Errorf("blockstore: migrate: %w", err)
	}
	return &Store{
		db:   db,
		qGet: db.Rebind(`SELECT data FROM repo_blocks WHERE cid = ?`),
		qHas: db.Rebind(`SELECT 1 FROM repo_blocks WHERE cid = ?`),
		qPut: db.Rebind(`INSERT INTO repo_blocks (cid, data) VALUES (?, ?) ON CONFLICT (cid) DO NOTHING`),
	}, nil
}

// Close closes the database if Open opened it.
func (s *Store) Close() error {
	if s.owned {
		return s.db.Close()
	}
	return nil
}

// GetBlock implements repo.BlockStore: it returns the block's bytes, or a
// *repo.MissingBlockError.
func (s *Store) GetBlock(ctx context.Context, c data.CID) ([]byte, error) {
	var b []byte
	err := s.db.Reader().QueryRowContext(ctx, s.qGet, c.Bytes()).Scan(&b)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, &repo.MissingBlockError{CID: c}
	}
	if err != nil {
		return nil, fmt.Errorf("blockstore: get %s: %w", c, err)
	}
	if b == nil {
		b = []byte{}
	}
	return b, nil
}

// HasBlock reports whether the store holds the block.
func (s *Store) HasBlock(ctx context.Context, c data.CID) (bool, error) {
	var one int
	err := s.db.Reader().QueryRowContext(ctx, s.qHas, c.Bytes()).Scan(&one)
	if errors.Is(err, sql.ErrNoRows) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("blockstore: has %s: %w", c, err)
	}
	return true, nil
}

// PutBlock implements repo.BlockStore. The caller vouches that c is the
// CID of b. Storing a block already present does nothing.
func (s *Store) PutBlock(ctx context.Context, c data.CID, b []byte) error {
	if !c.Defined() {
		return errors.New("blockstore: put with an undefined CID")
	}
	err := s.db.Tx(ctx, func(tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, s.qPut, c.Bytes(), nonNil(b))
		return err
	})
	if err != nil {
		return fmt.Errorf("blockstore: put %s: %w", c, err)
	}
	return nil
}

// PutBlocks stores a batch of blocks in one transaction: all of them or,
// on error, none. Blocks already present are left alone.
func (s *Store) PutBlocks(ctx context.Context, blocks map[data.CID][]byte) error {
	if len(blocks) == 0 {
		return nil
	}
	cids := make([]data.CID, 0, len(blocks))
	for c := range blocks {
		if !c.Defined() {
			return errors.New("blockstore: put with an undefined CID")
		}
		cids = append(cids, c)
	}
	slices.SortFunc(cids, func(a, b data.CID) int { return strings.Compare(a.KeyString(), b.KeyString()) })
	err := s.db.Tx(ctx, func(tx *sql.Tx) error {
		stmt, err := tx.PrepareContext(ctx, s.qPut)
		if err != nil {
			return err
		}
		defer stmt.Close()
		for _, c := range cids {
			if _, err := stmt.ExecContext(ctx, c.Bytes(), nonNil(blocks[c])); err != nil {
				return fmt.Errorf("block %s: %w", c, err)
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("blockstore: put %d blocks: %w", len(blocks), err)
	}
	return nil
}

// nonNil keeps an empty block from being stored as NULL.
func nonNil(b []byte) []byte {
	if b == nil {
		return []byte{}
	}
	return b
}
