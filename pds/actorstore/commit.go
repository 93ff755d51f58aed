package actorstore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"

	"github.com/welkin-atproto/welkin/atproto/data"
	"github.com/welkin-atproto/welkin/atproto/repo"
	"github.com/welkin-atproto/welkin/atproto/syntax"
)

// ApplyCommit stores a commit and its event in one write transaction: the
// blocks of res.Blocks (tagged with res.Rev), the record index changes of
// res.Ops, the new root (res.CID, res.Rev) and an outbox row (kind
// KindCommit) holding event, the encoded event body to be sequenced. It
// returns the outbox row's ID. The stored root's rev must equal res.Since
// (no root when Since is empty); otherwise the error matches
// ErrConcurrentWrite and nothing is written.
//
// The transaction is not fsynced: the commit becomes durable with the
// next Sync or durable write of the store, or, sooner, when the sequencer
// has made its event durable in the firehose log, from which ReplayCommit
// restores it after a power loss.
//
// The same transaction keeps the record index beyond the MST up to date:
// the blobs each created or updated record references (which are marked
// permanent, so the caller must have made their bytes permanent first) and
// its backlinks. Blobs that lose their last reference are queued for
// deletion (see BlobGarbage).
func (s *Store) ApplyCommit(ctx context.Context, res *repo.CommitResult, event []byte) (int64, error) {
	if event == nil {
		event = []byte{}
	}
	return s.applyCommit(ctx, res, event, 0)
}

// ReplayCommit stores a commit whose event is already in the firehose log,
// as ApplyCommit does but without an outbox row: the PDS calls it, on
// start, for commits that a power loss took from the store but not from
// the log. outboxFloor is the highest outbox ID the sequencer has taken
// from this store; the rows above the floor that the power loss took went
// with it, and later rows get IDs above the floor, so that the sequencer
// never mistakes a new row for one it has already sequenced.
func (s *Store) ReplayCommit(ctx context.Context, res *repo.CommitResult, outboxFloor int64) error {
	_, err := s.applyCommit(ctx, res, nil, outboxFloor)
	return err
}

// applyCommit is ApplyCommit, and ReplayCommit when event is nil.
func (s *Store) applyCommit(ctx context.Context, res *repo.CommitResult, event []byte, outboxFloor int64) (int64, error) {
	if err := s.applyFailed(); err != nil {
		return 0, err
	}
	p, err := prepareCommit(res)
	if err != nil {
		return 0, err
	}
	return s.storeCommit(ctx, p, event, 0, outboxFloor)
}

// preparedCommit is a commit checked and broken down into the rows it
// writes, ready for storeCommit.
type preparedCommit struct {
	res   *repo.CommitResult
	ops   []recOp
	index []indexOp
}

// recOp is one change to the records table.
type recOp struct {
	del             bool
	collection, key string
	cid             []byte
}

// prepareCommit checks res and works out the rows it writes, without
// touching the database: everything about a commit that can be refused is
// refused here, before its event can be on its way to the log.
func prepareCommit(res *repo.CommitResult) (*preparedCommit, error) {
	if res == nil || !res.CID.Defined() || res.Rev == "" {
		return nil, fmt.Errorf("actorstore: %w: missing commit CID or rev", ErrInvalidCommit)
	}
	p := &preparedCommit{res: res, ops: make([]recOp, 0, len(res.Ops))}
	for _, op := range res.Ops {
		col, rkey, err := repo.ParseRecordPath(op.Path)
		if err != nil {
			return nil, fmt.Errorf("actorstore: %w: op path %q: %v", ErrInvalidCommit, op.Path, err)
		}
		o := recOp{collection: string(col), key: string(rkey)}
		ix := indexOp{collection: o.collection, rkey: o.key}
		switch op.Action {
		case repo.ActionCreate, repo.ActionUpdate:
			if op.CID == nil || !op.CID.Defined() {
				return nil, fmt.Errorf("actorstore: %w: %s of %q without a CID", ErrInvalidCommit, op.Action, op.Path)
			}
			o.cid = op.CID.Bytes()
			b, ok := res.Blocks[*op.CID]
			if !ok {
				return nil, fmt.Errorf("actorstore: %w: %s of %q without its record block", ErrInvalidCommit, op.Action, op.Path)
			}
			ix.idx, err = indexRecord(o.collection, b)
			if err != nil {
				return nil, &RecordError{Path: op.Path, Err: err}
			}
			ix.replace = op.Action == repo.ActionUpdate
		case repo.ActionDelete:
			o.del = true
			ix.del, ix.replace = true, true
		default:
			return nil, fmt.Errorf("actorstore: %w: op action %q", ErrInvalidCommit, op.Action)
		}
		p.ops = append(p.ops, o)
		if ix.replace || len(ix.idx.blobs) > 0 || len(ix.idx.links) > 0 {
			p.index = append(p.index, ix)
		}
	}
	return p, nil
}

// storeCommit writes a prepared commit in one transaction. event is the
// outbox row's body, stored under outboxID when that is above zero and
// under the next automatic ID otherwise; with a nil event there is no row,
// and the outbox IDs are raised above outboxFloor instead (ReplayCommit).
func (s *Store) storeCommit(ctx context.Context, p *preparedCommit, event []byte, outboxID, outboxFloor int64) (int64, error) {
	ids, err := s.storeCommits(ctx, []commitWrite{{p: p, event: event, outboxID: outboxID, outboxFloor: outboxFloor}})
	if err != nil {
		return 0, err
	}
	return ids[0], nil
}

// commitWrite is one commit for storeCommits, with its outbox row as
// storeCommit describes.
type commitWrite struct {
	p                     *preparedCommit
	event                 []byte
	outboxID, outboxFloor int64
}

// storeCommits writes prepared commits, each built on the one before it,
// in one transaction, and returns their outbox row IDs. Either all of them
// are stored or none.
func (s *Store) storeCommits(ctx context.Context, cs []commitWrite) ([]int64, error) {
	ids := make([]int64, len(cs))
	skip := replacedNodes(cs)
	var (
		queued  bool
		deleted int64
	)
	err := s.db.Tx(ctx, func(tx *sql.Tx) error {
		queued = false
		var err error
		if deleted, err = s.deleteAcked(ctx, tx); err != nil {
			return err
		}
		// The event of a commit whose reserved outbox row is already
		// acknowledged is durable in the firehose log: its row would only
		// be deleted again, so it is not written (writeCommit), and the
		// outbox's counter is raised past it once for the batch.
		acked := s.acked.Load()
		var unwritten int64
		for i, c := range cs {
			q, id, err := s.writeCommit(ctx, tx, c, skip, acked)
			if err != nil {
				return err
			}
			if c.event != nil && c.outboxID > 0 && c.outboxID <= acked {
				unwritten = c.outboxID
			}
			queued = queued || q
			ids[i] = id
		}
		if unwritten > 0 {
			if err := s.raiseOutboxIDs(ctx, tx, unwritten); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		s.forgetHead()
		return nil, err
	}
	last := cs[len(cs)-1].p.res
	s.setHead(last.CID, string(last.Rev))
	s.noteDeleted(deleted)
	if queued {
		s.gcPending.Store(true)
	}
	return ids, nil
}

// writeCommit writes one commit of storeCommits in tx, leaving out the
// blocks in skip (see replacedNodes) and an outbox row reserved under an ID
// up to acked, which the sequencer has acknowledged. It reports whether a
// blob was queued for deletion, and the outbox row's ID.
func (s *Store) writeCommit(ctx context.Context, tx *sql.Tx, c commitWrite, skip map[data.CID]struct{}, acked int64) (queued bool, id int64, err error) {
	res := c.p.res
	rev := string(res.Rev)
	if len(res.Blocks) > 0 {
		st, err := s.db.TxStmt(ctx, tx,
			`INSERT INTO blocks (cid, data, rev) VALUES (?, ?, ?) ON CONFLICT (cid) DO NOTHING`)
		if err != nil {
			return false, 0, err
		}
		for cid, b := range res.Blocks {
			if _, ok := skip[cid]; ok {
				continue
			}
			if _, err := st.ExecContext(ctx, cid.Bytes(), b, rev); err != nil {
				return false, 0, fmt.Errorf("actorstore: put block %s: %w", cid, err)
			}
		}
	}
	for _, o := range c.p.ops {
		var err error
		if o.del {
			err = s.exec(ctx, tx, `DELETE FROM records WHERE collection = ? AND rkey = ?`, o.collection, o.key)
		} else {
			err = s.exec(ctx, tx,
				`INSERT INTO records (collection, rkey, cid, rev) VALUES (?, ?, ?, ?)
				 ON CONFLICT (collection, rkey) DO UPDATE SET cid = excluded.cid, rev = excluded.rev`,
				o.collection, o.key, o.cid, rev)
		}
		if err != nil {
			return false, 0, fmt.Errorf("actorstore: index %s/%s: %w", o.collection, o.key, err)
		}
	}
	if len(c.p.index) > 0 {
		if queued, err = applyIndex(ctx, tx, c.p.index, true); err != nil {
			return false, 0, err
		}
	}
	// The root moves only from the head res was built on; otherwise
	// nothing of this transaction stays.
	if err := s.swapRoot(ctx, tx, res.Since, res.CID, rev); err != nil {
		return false, 0, err
	}
	if c.event == nil {
		return queued, 0, s.raiseOutboxIDs(ctx, tx, c.outboxFloor)
	}
	if c.outboxID > 0 {
		if c.outboxID <= acked {
			return queued, c.outboxID, nil
		}
		return queued, c.outboxID, s.putOutbox(ctx, tx, c.outboxID, rev, KindCommit, c.event)
	}
	id, err = s.appendOutbox(ctx, tx, rev, KindCommit, c.event)
	return queued, id, err
}

// RaiseOutboxIDs makes the next outbox row's ID higher than floor, the
// highest ID the sequencer has taken from this store: after a power loss
// took rows it had taken, new rows must not reuse their IDs.
func (s *Store) RaiseOutboxIDs(ctx context.Context, floor int64) error {
	return s.db.Tx(ctx, func(tx *sql.Tx) error { return s.raiseOutboxIDs(ctx, tx, floor) })
}

// raiseOutboxIDs makes the next outbox row's ID higher than floor.
func (s *Store) raiseOutboxIDs(ctx context.Context, tx *sql.Tx, floor int64) error {
	// sqlite_sequence holds the highest ID an AUTOINCREMENT table has
	// handed out; it has no row for the outbox before the first insert.
	err := s.exec(ctx, tx, `UPDATE sqlite_sequence SET seq = ? WHERE name = 'outbox' AND seq < ?`, floor, floor)
	if err == nil {
		err = s.exec(ctx, tx, `INSERT INTO sqlite_sequence (name, seq)
			SELECT 'outbox', ? WHERE NOT EXISTS (SELECT 1 FROM sqlite_sequence WHERE name = 'outbox')`, floor)
	}
	if err != nil {
		return fmt.Errorf("actorstore: raise outbox IDs: %w", err)
	}
	// Rows stored under a reserved ID (ApplyCommitLater) take theirs
	// from outboxTop, so it must not stay below the floor either. Raising
	// it before the transaction commits only ever skips IDs.
	raise(&s.outboxTop, floor)
	return nil
}

// exec runs a fixed query in tx through the store's statement cache.
func (s *Store) exec(ctx context.Context, tx *sql.Tx, query string, args ...any) error {
	st, err := s.db.TxStmt(ctx, tx, query)
	if err != nil {
		return err
	}
	_, err = st.ExecContext(ctx, args...)
	return err
}

// checkSince makes sure the stored root's rev is since (no root when since
// is empty), the head a new commit was built on.
func (s *Store) checkSince(ctx context.Context, tx *sql.Tx, since syntax.TID) error {
	did := s.did
	st, err := s.db.TxStmt(ctx, tx, `SELECT rev FROM repo_root WHERE id = 1`)
	if err != nil {
		return fmt.Errorf("actorstore: read root: %w", err)
	}
	var head string
	err = st.QueryRowContext(ctx).Scan(&head)
	hasRoot := err == nil
	if err != nil && !errors.Is(err, sql.ErrNoRows) {
		return fmt.Errorf("actorstore: read root: %w", err)
	}
	if hasRoot != (since != "") || head != string(since) {
		return &ConcurrentWriteError{DID: did, Since: since, Head: head}
	}
	return nil
}

// swapRoot sets the stored root to c and rev if the stored rev is since
// (no root when since is empty), the head a new commit was built on, and
// returns a ConcurrentWriteError otherwise. It is checkSince and setRoot
// in one statement: no read of the root, and so none of the goroutines
// database/sql starts to watch a query inside a transaction.
func (s *Store) swapRoot(ctx context.Context, tx *sql.Tx, since syntax.TID, c data.CID, rev string) error {
	q := `UPDATE repo_root SET cid = ?, rev = ? WHERE id = 1 AND rev = ?`
	args := []any{c.Bytes(), rev, string(since)}
	if since == "" {
		q = `INSERT INTO repo_root (id, cid, rev) VALUES (1, ?, ?) ON CONFLICT (id) DO NOTHING`
		args = args[:2]
	}
	st, err := s.db.TxStmt(ctx, tx, q)
	if err != nil {
		return fmt.Errorf("actorstore: set root: %w", err)
	}
	r, err := st.ExecContext(ctx, args...)
	if err != nil {
		return fmt.Errorf("actorstore: set root: %w", err)
	}
	n, err := r.RowsAffected()
	if err != nil {
		return fmt.Errorf("actorstore: set root: %w", err)
	}
	if n == 1 {
		return nil
	}
	// Name the stored head in the error.
	if err := s.checkSince(ctx, tx, since); err != nil {
		return err
	}
	return fmt.Errorf("actorstore: set root: %d rows changed", n)
}

func (s *Store) setRoot(ctx context.Context, tx *sql.Tx, c data.CID, rev string) error {
	if err := s.exec(ctx, tx,
		`INSERT INTO repo_root (id, cid, rev) VALUES (1, ?, ?)
		 ON CONFLICT (id) DO UPDATE SET cid = excluded.cid, rev = excluded.rev`,
		c.Bytes(), rev); err != nil {
		return fmt.Errorf("actorstore: set root: %w", err)
	}
	return nil
}
