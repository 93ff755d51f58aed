package actorstore

import (
	"context"
	"database/sql"
	"fmt"
	"time"

	"github.com/welkin-atproto/welkin/atproto/data"
	"github.com/welkin-atproto/welkin/atproto/repo"
	"github.com/welkin-atproto/welkin/atproto/syntax"
)

// Replacement is a whole repository to store in place of the account's
// current one (com.atproto.repo.importRepo).
type Replacement struct {
	// Since is the rev of the stored head the replacement was prepared
	// against, "" when the account had no repository.
	Since syntax.TID
	// CommitCID and Rev are the new head.
	CommitCID data.CID
	Rev       syntax.TID
	// Blocks holds every block of the new repository: the commit, the MST
	// nodes and the records. Nothing else is kept.
	Blocks map[data.CID][]byte
	// Records lists each record path ("<collection>/<rkey>") of the new
	// repository with its CID.
	Records []repo.Entry
	// Event is the encoded #sync event announcing the new head, stored in
	// the outbox (kind KindSync).
	Event []byte
}

// ReplaceRepo stores a whole repository in place of the current one, in
// one write transaction: every block, record and index row of the old
// repository goes, the new ones come with the new root, and an outbox row
// (kind KindSync) holds r.Event. The stored root's rev must be r.Since, as
// for ApplyCommit.
//
// Blobs the new records reference are indexed but not marked permanent:
// the caller makes the bytes of those still temporary permanent afterwards
// (TempBlobsReferenced, MarkBlobPermanent). Blobs no longer referenced are
// queued for deletion. A record block that is not a DAG-CBOR map gives a
// *RecordError (ErrInvalidRecord) and nothing is written.
func (s *Store) ReplaceRepo(ctx context.Context, r *Replacement) error {
	if err := s.applyFailed(); err != nil {
		return err
	}
	if r == nil || !r.CommitCID.Defined() || r.Rev == "" {
		return fmt.Errorf("actorstore: %w: missing commit CID or rev", ErrInvalidCommit)
	}
	if _, ok := r.Blocks[r.CommitCID]; !ok {
		return fmt.Errorf("actorstore: %w: the commit block is missing", ErrInvalidCommit)
	}
	type rec struct {
		collection, rkey string
		cid              []byte
	}
	recs := make([]rec, 0, len(r.Records))
	var index []indexOp
	for _, e := range r.Records {
		col, rkey, err := repo.ParseRecordPath(e.Key)
		if err != nil {
			return fmt.Errorf("actorstore: %w: record path %q: %v", ErrInvalidCommit, e.Key, err)
		}
		b, ok := r.Blocks[e.Value]
		if !ok {
			return &repo.MissingBlockError{CID: e.Value, Context: "record " + e.Key}
		}
		idx, err := indexRecord(string(col), b)
		if err != nil {
			return &RecordError{Path: e.Key, Err: err}
		}
		recs = append(recs, rec{collection: string(col), rkey: string(rkey), cid: e.Value.Bytes()})
		if len(idx.blobs) > 0 || len(idx.links) > 0 {
			index = append(index, indexOp{collection: string(col), rkey: string(rkey), idx: idx})
		}
	}
	event := r.Event
	if event == nil {
		event = []byte{}
	}
	rev := string(r.Rev)
	var queued bool
	err := s.db.DurableTx(ctx, func(tx *sql.Tx) error {
		queued = false
		if err := s.checkSince(ctx, tx, r.Since); err != nil {
			return err
		}
		old, err := referencedBlobs(ctx, tx)
		if err != nil {
			return err
		}
		for _, q := range []string{`DELETE FROM blocks`, `DELETE FROM records`, `DELETE FROM record_blobs`, `DELETE FROM backlinks`} {
			if _, err := tx.ExecContext(ctx, q); err != nil {
				return fmt.Errorf("actorstore: replace repository: %w", err)
			}
		}
		putBlock, err := tx.PrepareContext(ctx, `INSERT INTO blocks (cid, data, rev) VALUES (?, ?, ?) ON CONFLICT (cid) DO NOTHING`)
		if err != nil {
			return err
		}
		defer putBlock.Close()
		for c, b := range r.Blocks {
			if _, err := putBlock.ExecContext(ctx, c.Bytes(), b, rev); err != nil {
				return fmt.Errorf("actorstore: put block %s: %w", c, err)
			}
		}
		putRec, err := tx.PrepareContext(ctx, `INSERT INTO records (collection, rkey, cid, rev) VALUES (?, ?, ?, ?)
			ON CONFLICT (collection, rkey) DO UPDATE SET cid = excluded.cid, rev = excluded.rev`)
		if err != nil {
			return err
		}
		defer putRec.Close()
		for _, o := range recs {
			if _, err := putRec.ExecContext(ctx, o.collection, o.rkey, o.cid, rev); err != nil {
				return fmt.Errorf("actorstore: index %s/%s: %w", o.collection, o.rkey, err)
			}
		}
		if _, err := applyIndex(ctx, tx, index, false); err != nil {
			return err
		}
		if queued, err = queueGarbage(ctx, tx, old); err != nil {
			return err
		}
		if err := s.setRoot(ctx, tx, r.CommitCID, rev); err != nil {
			return err
		}
		_, err = s.appendOutbox(ctx, tx, rev, KindSync, event)
		return err
	})
	if err != nil {
		s.forgetHead()
		return err
	}
	s.setHead(r.CommitCID, rev)
	if queued {
		s.gcPending.Store(true)
	}
	return nil
}

// referencedBlobs returns every blob CID records reference.
func referencedBlobs(ctx context.Context, tx *sql.Tx) ([]data.CID, error) {
	rows, err := tx.QueryContext(ctx, `SELECT DISTINCT blob_cid FROM record_blobs`)
	if err != nil {
		return nil, fmt.Errorf("actorstore: referenced blobs: %w", err)
	}
	defer rows.Close()
	var out []data.CID
	for rows.Next() {
		var cb []byte
		if err := rows.Scan(&cb); err != nil {
			return nil, fmt.Errorf("actorstore: referenced blobs: %w", err)
		}
		if c, err := data.CIDFromBytes(cb); err == nil {
			out = append(out, c)
		}
	}
	return out, rows.Err()
}

// TempBlobsReferenced returns the blobs that records reference while their
// bytes are still temporary: after ReplaceRepo, those the caller must make
// permanent.
func (s *Store) TempBlobsReferenced(ctx context.Context) ([]BlobMeta, error) {
	if err := s.WaitApplied(ctx); err != nil {
		return nil, err
	}
	rows, err := s.db.Reader().QueryContext(ctx,
		`SELECT cid, mime, size, temp_key, created_at FROM blobs b WHERE b.temp_key IS NOT NULL
		 AND EXISTS (SELECT 1 FROM record_blobs rb WHERE rb.blob_cid = b.cid) ORDER BY cid`)
	if err != nil {
		return nil, fmt.Errorf("actorstore: temporary blobs: %w", err)
	}
	defer rows.Close()
	var out []BlobMeta
	for rows.Next() {
		var cb []byte
		var m BlobMeta
		var temp sql.NullString
		var created int64
		if err := rows.Scan(&cb, &m.MimeType, &m.Size, &temp, &created); err != nil {
			return nil, fmt.Errorf("actorstore: temporary blobs: %w", err)
		}
		c, err := data.CIDFromBytes(cb)
		if err != nil {
			return nil, fmt.Errorf("actorstore: temporary blobs: stored cid: %w", err)
		}
		m.CID, m.TempKey, m.CreatedAt = c, temp.String, time.UnixMicro(created).UTC()
		out = append(out, m)
	}
	return out, rows.Err()
}
