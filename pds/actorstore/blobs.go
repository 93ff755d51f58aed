package actorstore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/welkin-atproto/welkin/atproto/data"
	"github.com/welkin-atproto/welkin/atproto/syntax"
)

// ErrBlobNotFound: the store has no metadata for the blob.
var ErrBlobNotFound = errors.New("blob not found")

// Listing limits of blob listings.
const (
	// DefaultBlobListLimit is the page size when limit <= 0
	// (com.atproto.repo.listMissingBlobs and com.atproto.sync.listBlobs:
	// "limit ... default: 500").
	DefaultBlobListLimit = 500
	// MaxBlobListLimit bounds the page size ("maximum: 1000").
	MaxBlobListLimit = 1000
	// MaxGarbageBatch bounds the CIDs one BlobGarbage call returns.
	MaxGarbageBatch = 500
)

// BlobMeta is what the store knows of an uploaded blob; its bytes are in
// the PDS's blob store.
type BlobMeta struct {
	CID      data.CID
	MimeType string
	Size     int64
	// TempKey is the blob store's temporary key while no record references
	// the blob, "" once it is permanent.
	TempKey   string
	CreatedAt time.Time
}

// Permanent reports whether the blob's bytes were made permanent.
func (m BlobMeta) Permanent() bool { return m.TempKey == "" }

// PutTempBlob records an upload held under m.TempKey. A blob the store
// already holds as permanent stays permanent (the new upload's temporary
// bytes are then redundant); an earlier temporary upload of the same blob
// is replaced by this one. It returns the metadata as stored.
func (s *Store) PutTempBlob(ctx context.Context, m BlobMeta) (BlobMeta, error) {
	if !m.CID.Defined() || m.TempKey == "" || m.Size < 0 || m.MimeType == "" {
		return BlobMeta{}, fmt.Errorf("actorstore: put temporary blob: incomplete metadata")
	}
	if m.CreatedAt.IsZero() {
		m.CreatedAt = time.Now()
	}
	var out BlobMeta
	err := s.db.DurableTx(ctx, func(tx *sql.Tx) error {
		if _, err := tx.ExecContext(ctx,
			`INSERT INTO blobs (cid, mime, size, temp_key, created_at) VALUES (?, ?, ?, ?, ?)
			 ON CONFLICT (cid) DO UPDATE SET mime = excluded.mime, size = excluded.size,
			   temp_key = excluded.temp_key, created_at = excluded.created_at
			 WHERE blobs.temp_key IS NOT NULL`,
			m.CID.Bytes(), m.MimeType, m.Size, m.TempKey, m.CreatedAt.UnixMicro()); err != nil {
			return fmt.Errorf("actorstore: put temporary blob %s: %w", m.CID, err)
		}
		var err error
		out, err = scanBlob(tx.QueryRowContext(ctx, blobQuery, m.CID.Bytes()))
		return err
	})
	return out, err
}

const blobQuery = `SELECT cid, mime, size, temp_key, created_at FROM blobs WHERE cid = ?`

func scanBlob(row *sql.Row) (BlobMeta, error) {
	var cb []byte
	var m BlobMeta
	var temp sql.NullString
	var created int64
	err := row.Scan(&cb, &m.MimeType, &m.Size, &temp, &created)
	if errors.Is(err, sql.ErrNoRows) {
		return BlobMeta{}, ErrBlobNotFound
	}
	if err != nil {
		return BlobMeta{}, fmt.Errorf("actorstore: blob: %w", err)
	}
	if m.CID, err = data.CIDFromBytes(cb); err != nil {
		return BlobMeta{}, fmt.Errorf("actorstore: blob: stored cid: %w", err)
	}
	m.TempKey = temp.String
	m.CreatedAt = time.UnixMicro(created).UTC()
	return m, nil
}

// Blob returns the metadata of a blob, or an error matching
// ErrBlobNotFound.
func (s *Store) Blob(ctx context.Context, c data.CID) (BlobMeta, error) {
	// A queued commit may have made it permanent.
	if err := s.WaitApplied(ctx); err != nil {
		return BlobMeta{}, err
	}
	m, err := scanBlob(s.db.Reader().QueryRowContext(ctx, blobQuery, c.Bytes()))
	if errors.Is(err, ErrBlobNotFound) {
		return BlobMeta{}, fmt.Errorf("actorstore: %s: %w", c, ErrBlobNotFound)
	}
	return m, err
}

// MarkBlobPermanent records that a blob's bytes were made permanent.
func (s *Store) MarkBlobPermanent(ctx context.Context, c data.CID) error {
	return s.db.DurableTx(ctx, func(tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, `UPDATE blobs SET temp_key = NULL WHERE cid = ?`, c.Bytes())
		if err != nil {
			return fmt.Errorf("actorstore: mark blob %s permanent: %w", c, err)
		}
		return nil
	})
}

// HasBlobRefs reports whether any record references the blob.
func (s *Store) HasBlobRefs(ctx context.Context, c data.CID) (bool, error) {
	if err := s.WaitApplied(ctx); err != nil {
		return false, err
	}
	var n int
	err := s.db.Reader().QueryRowContext(ctx,
		`SELECT COUNT(*) FROM (SELECT 1 FROM record_blobs WHERE blob_cid = ? LIMIT 1)`, c.Bytes()).Scan(&n)
	if err != nil {
		return false, fmt.Errorf("actorstore: blob references: %w", err)
	}
	return n > 0, nil
}

// DeleteStaleTempBlobs forgets temporary uploads made before before, whose
// bytes the blob store's clean-up removes. It returns how many it forgot.
func (s *Store) DeleteStaleTempBlobs(ctx context.Context, before time.Time) (int64, error) {
	var n int64
	err := s.db.DurableTx(ctx, func(tx *sql.Tx) error {
		r, err := tx.ExecContext(ctx,
			`DELETE FROM blobs WHERE temp_key IS NOT NULL AND created_at < ?`, before.UnixMicro())
		if err != nil {
			return fmt.Errorf("actorstore: delete stale temporary blobs: %w", err)
		}
		n, _ = r.RowsAffected()
		return nil
	})
	return n, err
}

func blobLimit(limit int) int {
	if limit <= 0 {
		return DefaultBlobListLimit
	}
	return min(limit, MaxBlobListLimit)
}

// ListBlobs lists the CIDs of the blobs that records reference, each once,
// in binary CID order, starting after cursor (the zero CID for the start).
// When since is not empty only blobs of records written in a commit after
// rev since count. Whether the blob's bytes are present is not checked.
func (s *Store) ListBlobs(ctx context.Context, since string, cursor data.CID, limit int) ([]data.CID, error) {
	if err := s.WaitApplied(ctx); err != nil {
		return nil, err
	}
	limit = blobLimit(limit)
	q := `SELECT DISTINCT rb.blob_cid FROM record_blobs rb`
	var args []any
	var where []string
	if since != "" {
		q += ` JOIN records r ON r.collection = rb.collection AND r.rkey = rb.rkey`
		where = append(where, `r.rev > ?`)
		args = append(args, since)
	}
	if cursor.Defined() {
		where = append(where, `rb.blob_cid > ?`)
		args = append(args, cursor.Bytes())
	}
	for i, w := range where {
		if i == 0 {
			q += ` WHERE ` + w
		} else {
			q += ` AND ` + w
		}
	}
	q += ` ORDER BY rb.blob_cid LIMIT ?`
	args = append(args, limit)
	rows, err := s.db.Reader().QueryContext(ctx, q, args...)
	if err != nil {
		return nil, fmt.Errorf("actorstore: list blobs: %w", err)
	}
	defer rows.Close()
	var out []data.CID
	for rows.Next() {
		var cb []byte
		if err := rows.Scan(&cb); err != nil {
			return nil, fmt.Errorf("actorstore: list blobs: %w", err)
		}
		c, err := data.CIDFromBytes(cb)
		if err != nil {
			return nil, fmt.Errorf("actorstore: list blobs: stored cid: %w", err)
		}
		out = append(out, c)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("actorstore: list blobs: %w", err)
	}
	return out, nil
}

// MissingBlob is a blob that a record references and the store does not
// hold as permanent, with one of the records.
type MissingBlob struct {
	CID        data.CID
	Collection syntax.NSID
	RKey       syntax.RecordKey
}

// ListMissingBlobs lists the blobs records reference that were never
// uploaded (or only uploaded and not made permanent), each once with the
// first referencing record, in binary CID order after cursor (the zero CID
// for the start). An imported repository lists here until its blobs are
// uploaded again.
func (s *Store) ListMissingBlobs(ctx context.Context, cursor data.CID, limit int) ([]MissingBlob, error) {
	if err := s.WaitApplied(ctx); err != nil {
		return nil, err
	}
	limit = blobLimit(limit)
	q := `SELECT rb.blob_cid, MIN(rb.collection || '/' || rb.rkey) FROM record_blobs rb
		WHERE NOT EXISTS (SELECT 1 FROM blobs b WHERE b.cid = rb.blob_cid AND b.temp_key IS NULL)`
	args := []any{}
	if cursor.Defined() {
		q += ` AND rb.blob_cid > ?`
		args = append(args, cursor.Bytes())
	}
	q += ` GROUP BY rb.blob_cid ORDER BY rb.blob_cid LIMIT ?`
	args = append(args, limit)
	rows, err := s.db.Reader().QueryContext(ctx, q, args...)
	if err != nil {
		return nil, fmt.Errorf("actorstore: list missing blobs: %w", err)
	}
	defer rows.Close()
	var out []MissingBlob
	for rows.Next() {
		var cb []byte
		var path string
		if err := rows.Scan(&cb, &path); err != nil {
			return nil, fmt.Errorf("actorstore: list missing blobs: %w", err)
		}
		c, err := data.CIDFromBytes(cb)
		if err != nil {
			return nil, fmt.Errorf("actorstore: list missing blobs: stored cid: %w", err)
		}
		col, rkey, ok := splitPath(path)
		if !ok {
			return nil, fmt.Errorf("actorstore: list missing blobs: stored path %q", path)
		}
		out = append(out, MissingBlob{CID: c, Collection: col, RKey: rkey})
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("actorstore: list missing blobs: %w", err)
	}
	return out, nil
}

// splitPath splits a stored "<collection>/<rkey>" (a collection never
// holds a '/').
func splitPath(p string) (syntax.NSID, syntax.RecordKey, bool) {
	for i := 0; i < len(p); i++ {
		if p[i] == '/' {
			return syntax.NSID(p[:i]), syntax.RecordKey(p[i+1:]), i > 0 && i < len(p)-1
		}
	}
	return "", "", false
}

// BlobGCPending reports whether blobs may be waiting for deletion
// (BlobGarbage): it is cheap, for deciding whether to look.
func (s *Store) BlobGCPending() bool { return s.gcPending.Load() }

// BlobGarbage returns up to limit (at most MaxGarbageBatch) blobs that lost
// their last reference and are still unreferenced. The caller deletes
// their bytes and then calls DeleteBlobs; both under the account's write
// lock, so that no commit references them again meanwhile.
func (s *Store) BlobGarbage(ctx context.Context, limit int) ([]data.CID, error) {
	if limit <= 0 || limit > MaxGarbageBatch {
		limit = MaxGarbageBatch
	}
	rows, err := s.db.Reader().QueryContext(ctx, `SELECT cid FROM blob_gc ORDER BY cid LIMIT ?`, limit)
	if err != nil {
		return nil, fmt.Errorf("actorstore: blob garbage: %w", err)
	}
	defer rows.Close()
	var all []data.CID
	for rows.Next() {
		var cb []byte
		if err := rows.Scan(&cb); err != nil {
			return nil, fmt.Errorf("actorstore: blob garbage: %w", err)
		}
		c, err := data.CIDFromBytes(cb)
		if err != nil {
			return nil, fmt.Errorf("actorstore: blob garbage: stored cid: %w", err)
		}
		all = append(all, c)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("actorstore: blob garbage: %w", err)
	}
	rows.Close()
	if len(all) == 0 {
		s.gcPending.Store(false)
		return nil, nil
	}
	// Blobs referenced again since they were queued are not garbage:
	// forget them here.
	var out, again []data.CID
	for _, c := range all {
		ref, err := s.HasBlobRefs(ctx, c)
		if err != nil {
			return nil, err
		}
		if ref {
			again = append(again, c)
		} else {
			out = append(out, c)
		}
	}
	if len(again) > 0 {
		if err := s.DeleteBlobs(ctx, again); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// DeleteBlobs forgets the blobs cids that no record references (their
// metadata and their place in the deletion queue) and takes the others
// off the deletion queue.
func (s *Store) DeleteBlobs(ctx context.Context, cids []data.CID) error {
	if len(cids) == 0 {
		return nil
	}
	err := s.db.DurableTx(ctx, func(tx *sql.Tx) error {
		for _, c := range cids {
			if _, err := tx.ExecContext(ctx,
				`DELETE FROM blobs WHERE cid = ? AND NOT EXISTS (SELECT 1 FROM record_blobs WHERE blob_cid = ?)`,
				c.Bytes(), c.Bytes()); err != nil {
				return fmt.Errorf("actorstore: delete blob %s: %w", c, err)
			}
			if _, err := tx.ExecContext(ctx, `DELETE FROM blob_gc WHERE cid = ?`, c.Bytes()); err != nil {
				return fmt.Errorf("actorstore: delete blob %s: %w", c, err)
			}
		}
		return nil
	})
	if err != nil {
		return err
	}
	var n int
	if err := s.db.Reader().QueryRowContext(ctx, `SELECT COUNT(*) FROM (SELECT 1 FROM blob_gc LIMIT 1)`).Scan(&n); err == nil {
		s.gcPending.Store(n > 0)
	}
	return nil
}
