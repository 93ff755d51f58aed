package actorstore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"

	"github.com/welkin-atproto/welkin/atproto/data"
	"github.com/welkin-atproto/welkin/atproto/repo"
)

// maxExistsBatch bounds the CIDs of one query in MissingBlocks, well under
// SQLite's limit on bound parameters.
const maxExistsBatch = 500

// BlockPageSize is how many blocks one read of BlocksSince fetches. Each page
// is its own short read transaction, so a slow consumer of the blocks never
// holds a snapshot of the database open.
const BlockPageSize = 500

// BlocksSince calls fn with every stored block whose rev is greater than
// since, or with every block when since is "". It reads BlockPageSize blocks
// at a time, in storage order, and calls fn outside any transaction. Blocks
// stored while the walk is under way may or may not be visited. An error
// from fn stops the walk and is returned as it is.
//
// The store keeps the blocks of records since deleted and of MST nodes
// replaced by later batches (not those a later commit of the same batch
// replaced), and a block's rev is that of the first commit that stored it.
// So this is a walk over storage, not a repository diff: CommitAtRev and
// repo.Diff give the latter.
func (s *Store) BlocksSince(ctx context.Context, since string, fn func(c data.CID, b []byte) error) error {
	if err := s.WaitApplied(ctx); err != nil {
		return err
	}
	// Pages follow the table's rowid, which orders blocks by insertion and
	// makes each page a range read of the table's own b-tree.
	q := `SELECT rowid, cid, data FROM blocks WHERE rowid > ?`
	if since != "" {
		q += ` AND rev > ?`
	}
	q += ` ORDER BY rowid LIMIT ?`
	type row struct {
		cid data.CID
		b   []byte
	}
	var after int64
	page := make([]row, 0, BlockPageSize)
	for {
		args := []any{after}
		if since != "" {
			args = append(args, since)
		}
		args = append(args, BlockPageSize)
		page = page[:0]
		n := 0
		err := func() error {
			rows, err := s.db.Reader().QueryContext(ctx, q, args...)
			if err != nil {
				return err
			}
			defer rows.Close()
			for rows.Next() {
				var (
					id     int64
					cb, bb []byte
				)
				if err := rows.Scan(&id, &cb, &bb); err != nil {
					return err
				}
				n++
				after = id
				c, err := data.CIDFromBytes(cb)
				if err != nil {
					return fmt.Errorf("stored cid: %w", err)
				}
				page = append(page, row{c, bb})
			}
			return rows.Err()
		}()
		if err != nil {
			return fmt.Errorf("actorstore: blocks since %q: %w", since, err)
		}
		for _, r := range page {
			if err := fn(r.cid, r.b); err != nil {
				return err
			}
		}
		if n < BlockPageSize {
			return nil
		}
	}
}

// CommitAtRev returns the CID of the account's commit whose rev is rev, if
// the store holds it with its whole tree, as com.atproto.sync.getRepo's
// since needs to work out a diff. Every commit block stays in the store,
// but a batch of commits leaves out the MST nodes that a later commit of
// the batch replaced (see replacedNodes), so only the last commit of each
// batch keeps its tree; for the others ok is false. Each stored node's
// subtree is stored too, so the tree is whole when its root is there.
func (s *Store) CommitAtRev(ctx context.Context, rev string) (data.CID, bool, error) {
	if err := s.WaitApplied(ctx); err != nil {
		return data.CID{}, false, err
	}
	if rev == "" {
		return data.CID{}, false, nil
	}
	c, root, found, err := s.commitBlockAtRev(ctx, rev)
	if err != nil || !found {
		return data.CID{}, false, err
	}
	missing, err := s.MissingBlocks(ctx, []data.CID{root})
	if err != nil {
		return data.CID{}, false, fmt.Errorf("actorstore: commit at rev %s: %w", rev, err)
	}
	if len(missing) > 0 {
		return data.CID{}, false, nil
	}
	return c, true, nil
}

// commitBlockAtRev finds the commit block whose rev is rev, and the MST
// root it names.
func (s *Store) commitBlockAtRev(ctx context.Context, rev string) (c, root data.CID, found bool, err error) {
	// A commit's block is stored by the commit itself, so it carries its
	// own rev; the other blocks of that commit are records and nodes.
	rows, err := s.db.Reader().QueryContext(ctx, `SELECT cid, data FROM blocks WHERE rev = ?`, rev)
	if err != nil {
		return c, root, false, fmt.Errorf("actorstore: commit at rev %s: %w", rev, err)
	}
	defer rows.Close()
	for rows.Next() {
		var cb, b []byte
		if err := rows.Scan(&cb, &b); err != nil {
			return c, root, false, fmt.Errorf("actorstore: commit at rev %s: %w", rev, err)
		}
		cid, err := data.CIDFromBytes(cb)
		if err != nil || cid.Codec() != dagCBORCodec {
			continue
		}
		cm, err := repo.ParseCommit(b)
		if err != nil || string(cm.Rev) != rev || cm.DID != s.did {
			continue
		}
		return cid, cm.Data, true, nil
	}
	if err := rows.Err(); err != nil {
		return c, root, false, fmt.Errorf("actorstore: commit at rev %s: %w", rev, err)
	}
	return c, root, false, nil
}

// dagCBORCodec is the multicodec of DAG-CBOR blocks, such as commits.
const dagCBORCodec = 0x71

// MissingBlocks returns those of cids the store does not hold, in the order
// given, without reading the blocks themselves.
func (s *Store) MissingBlocks(ctx context.Context, cids []data.CID) ([]data.CID, error) {
	if err := s.WaitApplied(ctx); err != nil {
		return nil, err
	}
	var missing []data.CID
	for start := 0; start < len(cids); start += maxExistsBatch {
		batch := cids[start:min(start+maxExistsBatch, len(cids))]
		args := make([]any, len(batch))
		for i, c := range batch {
			args[i] = c.Bytes()
		}
		q := `SELECT cid FROM blocks WHERE cid IN (?` + strings.Repeat(`, ?`, len(batch)-1) + `)`
		have := make(map[data.CID]struct{}, len(batch))
		err := func() error {
			rows, err := s.db.Reader().QueryContext(ctx, q, args...)
			if err != nil {
				return err
			}
			defer rows.Close()
			for rows.Next() {
				var cb []byte
				if err := rows.Scan(&cb); err != nil {
					return err
				}
				c, err := data.CIDFromBytes(cb)
				if err != nil {
					return fmt.Errorf("stored cid: %w", err)
				}
				have[c] = struct{}{}
			}
			return rows.Err()
		}()
		if err != nil {
			return nil, fmt.Errorf("actorstore: missing blocks: %w", err)
		}
		for _, c := range batch {
			if _, ok := have[c]; !ok {
				missing = append(missing, c)
			}
		}
	}
	return missing, nil
}

// blockReaderTxReads is how many reads a BlockReader makes in one read
// transaction before starting the next, so that a long walk (an export to a
// slow client) never keeps one snapshot of the database, which would stop
// WAL checkpoints, open for long.
const blockReaderTxReads = 256

// BlockReader reads the blocks of a store one at a time, faster than
// GetBlock, for walks that read many (repository exports, proofs): it reads
// with one prepared statement inside a read transaction that it renews every
// blockReaderTxReads reads. Blocks are immutable, so a walk that spans
// transactions sees consistent data. It implements repo.BlockStore for
// reading; PutBlock fails. A BlockReader is not safe for concurrent use.
// Close it when done.
type BlockReader struct {
	s     *Store
	tx    *sql.Tx
	stmt  *sql.Stmt
	reads int
}

// BlockReader returns a BlockReader on the read-only pool.
func (s *Store) BlockReader() *BlockReader { return &BlockReader{s: s} }

func (r *BlockReader) begin(ctx context.Context) error {
	tx, err := r.s.db.Reader().BeginTx(ctx, &sql.TxOptions{ReadOnly: true})
	if err != nil {
		return err
	}
	st, err := tx.PrepareContext(ctx, `SELECT data FROM blocks WHERE cid = ?`)
	if err != nil {
		tx.Rollback()
		return err
	}
	r.tx, r.stmt, r.reads = tx, st, 0
	return nil
}

// GetBlock implements repo.BlockStore.
func (r *BlockReader) GetBlock(ctx context.Context, c data.CID) ([]byte, error) {
	if r.tx != nil && r.reads >= blockReaderTxReads {
		r.Close()
	}
	if r.tx == nil {
		if err := r.begin(ctx); err != nil {
			return nil, fmt.Errorf("actorstore: get block %s: %w", c, err)
		}
	}
	r.reads++
	var b []byte
	err := r.stmt.QueryRowContext(ctx, c.Bytes()).Scan(&b)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, &repo.MissingBlockError{CID: c, Context: "actor store " + string(r.s.did)}
	}
	if err != nil {
		r.Close()
		return nil, fmt.Errorf("actorstore: get block %s: %w", c, err)
	}
	return b, nil
}

// PutBlock implements repo.BlockStore by refusing: a BlockReader only reads.
func (r *BlockReader) PutBlock(context.Context, data.CID, []byte) error {
	return errors.New("actorstore: block reader is read-only")
}

// Close ends the current read transaction. The BlockReader may be used
// again afterwards; it then starts a new one.
func (r *BlockReader) Close() error {
	if r.tx == nil {
		return nil
	}
	r.stmt.Close()
	err := r.tx.Rollback()
	r.tx, r.stmt = nil, nil
	return err
}
