package actorstore

import (
	"context"
	"fmt"

	"github.com/welkin-atproto/welkin/atproto/data"
	"github.com/welkin-atproto/welkin/atproto/repo"
	"github.com/welkin-atproto/welkin/atproto/syntax"
)

// RecordData is one entry of ListRecordData: a record with its bytes.
type RecordData struct {
	RKey  syntax.RecordKey
	CID   data.CID
	Value []byte // DAG-CBOR
}

// ListRecordData is ListRecords with each record's bytes, read in the same
// query. A record whose block is missing gives a *repo.MissingBlockError.
func (s *Store) ListRecordData(ctx context.Context, collection syntax.NSID, cursor string, limit int, reverse bool) ([]RecordData, string, error) {
	if err := s.WaitApplied(ctx); err != nil {
		return nil, "", err
	}
	if limit <= 0 {
		limit = DefaultListLimit
	}
	limit = min(limit, MaxListLimit)
	q := `SELECT r.rkey, r.cid, b.data FROM records r LEFT JOIN blocks b ON b.cid = r.cid WHERE r.collection = ?`
	args := []any{string(collection)}
	switch {
	case cursor != "" && reverse:
		q += ` AND r.rkey < ?`
		args = append(args, cursor)
	case cursor != "":
		q += ` AND r.rkey > ?`
		args = append(args, cursor)
	}
	if reverse {
		q += ` ORDER BY r.rkey DESC`
	} else {
		q += ` ORDER BY r.rkey`
	}
	q += ` LIMIT ?`
	args = append(args, limit)
	rows, err := s.db.Reader().QueryContext(ctx, q, args...)
	if err != nil {
		return nil, "", fmt.Errorf("actorstore: list records: %w", err)
	}
	defer rows.Close()
	var out []RecordData
	for rows.Next() {
		var k string
		var cb, b []byte
		if err := rows.Scan(&k, &cb, &b); err != nil {
			return nil, "", fmt.Errorf("actorstore: list records: %w", err)
		}
		c, err := data.CIDFromBytes(cb)
		if err != nil {
			return nil, "", fmt.Errorf("actorstore: list records: stored cid: %w", err)
		}
		if b == nil {
			return nil, "", &repo.MissingBlockError{CID: c, Context: "record " + repo.RecordPath(collection, syntax.RecordKey(k))}
		}
		out = append(out, RecordData{RKey: syntax.RecordKey(k), CID: c, Value: b})
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

// ListCollections returns the collections that hold at least one record,
// in order. It skips from one collection to the next through the index, so
// its cost grows with the number of collections, not of records.
func (s *Store) ListCollections(ctx context.Context) ([]syntax.NSID, error) {
	if err := s.WaitApplied(ctx); err != nil {
		return nil, err
	}
	rows, err := s.db.Reader().QueryContext(ctx, `
WITH RECURSIVE c(name) AS (
	SELECT MIN(collection) FROM records
	UNION ALL
	SELECT (SELECT MIN(collection) FROM records WHERE collection > c.name) FROM c WHERE c.name IS NOT NULL
)
SELECT name FROM c WHERE name IS NOT NULL`)
	if err != nil {
		return nil, fmt.Errorf("actorstore: list collections: %w", err)
	}
	defer rows.Close()
	var out []syntax.NSID
	for rows.Next() {
		var n string
		if err := rows.Scan(&n); err != nil {
			return nil, fmt.Errorf("actorstore: list collections: %w", err)
		}
		out = append(out, syntax.NSID(n))
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("actorstore: list collections: %w", err)
	}
	return out, nil
}

// Counts are the sizes com.atproto.server.checkAccountStatus reports.
type Counts struct {
	Records int64 // indexed records
	Blocks  int64 // repository blocks
	// ExpectedBlobs counts the distinct blobs records reference;
	// ImportedBlobs those of them the store holds as permanent.
	ExpectedBlobs int64
	ImportedBlobs int64
}

// Counts counts the account's records, blocks and blobs, in one read
// transaction.
func (s *Store) Counts(ctx context.Context) (Counts, error) {
	if err := s.WaitApplied(ctx); err != nil {
		return Counts{}, err
	}
	var c Counts
	err := s.db.Reader().QueryRowContext(ctx, `SELECT
		(SELECT COUNT(*) FROM records),
		(SELECT COUNT(*) FROM blocks),
		(SELECT COUNT(DISTINCT blob_cid) FROM record_blobs),
		(SELECT COUNT(*) FROM blobs b WHERE b.temp_key IS NULL
			AND EXISTS (SELECT 1 FROM record_blobs rb WHERE rb.blob_cid = b.cid))`).
		Scan(&c.Records, &c.Blocks, &c.ExpectedBlobs, &c.ImportedBlobs)
	if err != nil {
		return Counts{}, fmt.Errorf("actorstore: counts: %w", err)
	}
	return c, nil
}
