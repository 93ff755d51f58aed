package actorstore

import (
	"bytes"
	"context"
	"database/sql"
	"errors"
	"fmt"

	"github.com/welkin-atproto/welkin/atproto/data"
	"github.com/welkin-atproto/welkin/atproto/syntax"
)

// ErrInvalidRecord: a record block of a commit or import cannot be read as a
// record (DAG-CBOR map), so its blob references and backlinks cannot be
// indexed. Returned errors are *RecordError values matching it.
var ErrInvalidRecord = errors.New("invalid record")

// RecordError names the record a ErrInvalidRecord failure is about.
type RecordError struct {
	Path string // "<collection>/<rkey>"
	Err  error
}

func (e *RecordError) Error() string {
	return fmt.Sprintf("%v at %s: %v", ErrInvalidRecord, e.Path, e.Err)
}

// Is reports whether target is ErrInvalidRecord.
func (e *RecordError) Is(target error) bool { return target == ErrInvalidRecord }

// Unwrap returns the decoding error.
func (e *RecordError) Unwrap() error { return e.Err }

// Backlink is a link from a record to the subject it is about, indexed so
// that duplicates (two likes of one post, two follows of one account) can
// be found. Path is the field holding the link ("subject" or
// "subject.uri"), LinkTo its value (a DID or an AT-URI).
type Backlink struct {
	Path   string
	LinkTo string
}

// Collections whose records carry backlinks, as the reference PDS indexes
// them: follows and blocks link to a DID in "subject", likes and reposts to
// an AT-URI in "subject.uri".
const (
	followCollection = "app.bsky.graph.follow"
	blockCollection  = "app.bsky.graph.block"
	likeCollection   = "app.bsky.feed.like"
	repostCollection = "app.bsky.feed.repost"
)

// recordIndex is what the store indexes about one record beyond its CID.
type recordIndex struct {
	blobs []data.CID
	links []Backlink
}

// mimeTypeKey is how the map key "mimeType" starts in DAG-CBOR (a text
// string header of length 8, then the bytes). Every blob reference, in the
// current and the legacy form, has this key, so a record without these
// bytes references no blob and need not be decoded.
var mimeTypeKey = []byte("\x68mimeType")

// hasBacklinks reports whether records of collection carry backlinks.
func hasBacklinks(collection string) bool {
	switch collection {
	case followCollection, blockCollection, likeCollection, repostCollection:
		return true
	}
	return false
}

// indexRecord reads the blob references and backlinks of a record block.
// Records that can hold neither are not decoded.
func indexRecord(collection string, b []byte) (recordIndex, error) {
	var idx recordIndex
	wantBlobs := bytes.Contains(b, mimeTypeKey)
	if !wantBlobs && !hasBacklinks(collection) {
		return idx, nil
	}
	rec, err := data.UnmarshalCBOR(b)
	if err != nil {
		return idx, err
	}
	if wantBlobs {
		idx.blobs = BlobRefs(rec)
	}
	idx.links = Backlinks(collection, rec)
	return idx, nil
}

// BlobRefs returns the CIDs of the blobs a record (in the generic data
// model) references, in the current or the legacy form, each once, in the
// order first found.
func BlobRefs(rec map[string]any) []data.CID {
	var out []data.CID
	seen := map[data.CID]bool{}
	walkBlobs(rec, 0, func(b data.Blob) {
		if b.Ref.Defined() && !seen[b.Ref] {
			seen[b.Ref] = true
			out = append(out, b.Ref)
		}
	})
	return out
}

// WalkBlobs calls fn with every blob reference in v, a value of the generic
// data model, depth first.
func WalkBlobs(v any, fn func(data.Blob)) { walkBlobs(v, 0, fn) }

func walkBlobs(v any, depth int, fn func(data.Blob)) {
	if depth > data.MaxDepth {
		return
	}
	switch v := v.(type) {
	case data.Blob:
		fn(v)
	case *data.Blob:
		if v != nil {
			fn(*v)
		}
	case map[string]any:
		for _, x := range v {
			walkBlobs(x, depth+1, fn)
		}
	case []any:
		for _, x := range v {
			walkBlobs(x, depth+1, fn)
		}
	}
}

// Backlinks returns the backlinks of a record of collection (in the generic
// data model): the subject of a follow or block when it is a DID, of a like
// or repost when subject.uri is an AT-URI.
func Backlinks(collection string, rec map[string]any) []Backlink {
	switch collection {
	case followCollection, blockCollection:
		s, ok := rec["subject"].(string)
		if !ok {
			return nil
		}
		if _, err := syntax.ParseDID(s); err != nil {
			return nil
		}
		return []Backlink{{Path: "subject", LinkTo: s}}
	case likeCollection, repostCollection:
		sub, ok := rec["subject"].(map[string]any)
		if !ok {
			return nil
		}
		s, ok := sub["uri"].(string)
		if !ok {
			return nil
		}
		if _, err := syntax.ParseATURI(s); err != nil {
			return nil
		}
		return []Backlink{{Path: "subject.uri", LinkTo: s}}
	}
	return nil
}

// indexOp is one record change to apply to the index tables.
type indexOp struct {
	collection, rkey string
	// replace is set when a record may have been indexed at the path
	// before (an update or a delete): its rows are dropped first.
	replace bool
	del     bool
	idx     recordIndex
}

// applyIndex updates record_blobs and backlinks for ops, inside tx. With
// markPermanent, blobs a record now references are marked permanent (their
// temp_key cleared): the caller made their bytes permanent before the
// commit. Blobs that lost their last reference are queued in blob_gc; it
// reports whether any was.
func applyIndex(ctx context.Context, tx *sql.Tx, ops []indexOp, markPermanent bool) (queued bool, err error) {
	var dropped []data.CID
	var addBlob, permanent, addLink *sql.Stmt
	prepare := func(st **sql.Stmt, q string) error {
		if *st != nil {
			return nil
		}
		var err error
		*st, err = tx.PrepareContext(ctx, q)
		return err
	}
	defer func() {
		for _, st := range []*sql.Stmt{addBlob, permanent, addLink} {
			if st != nil {
				st.Close()
			}
		}
	}()
	for _, o := range ops {
		if o.replace {
			rows, err := tx.QueryContext(ctx,
				`DELETE FROM record_blobs WHERE collection = ? AND rkey = ? RETURNING blob_cid`, o.collection, o.rkey)
			if err != nil {
				return false, fmt.Errorf("actorstore: unindex blobs of %s/%s: %w", o.collection, o.rkey, err)
			}
			for rows.Next() {
				var cb []byte
				if err := rows.Scan(&cb); err != nil {
					rows.Close()
					return false, err
				}
				if c, err := data.CIDFromBytes(cb); err == nil {
					dropped = append(dropped, c)
				}
			}
			if err := rows.Close(); err != nil {
				return false, err
			}
			if err := rows.Err(); err != nil {
				return false, err
			}
			if _, err := tx.ExecContext(ctx,
				`DELETE FROM backlinks WHERE collection = ? AND rkey = ?`, o.collection, o.rkey); err != nil {
				return false, fmt.Errorf("actorstore: unindex backlinks of %s/%s: %w", o.collection, o.rkey, err)
			}
		}
		if o.del {
			continue
		}
		for _, c := range o.idx.blobs {
			if err := prepare(&addBlob, `INSERT INTO record_blobs (blob_cid, collection, rkey) VALUES (?, ?, ?) ON CONFLICT DO NOTHING`); err != nil {
				return false, err
			}
			if err := prepare(&permanent, `UPDATE blobs SET temp_key = NULL WHERE cid = ? AND temp_key IS NOT NULL`); err != nil {
				return false, err
			}
			if _, err := addBlob.ExecContext(ctx, c.Bytes(), o.collection, o.rkey); err != nil {
				return false, fmt.Errorf("actorstore: index blob %s of %s/%s: %w", c, o.collection, o.rkey, err)
			}
			if !markPermanent {
				continue
			}
			if _, err := permanent.ExecContext(ctx, c.Bytes()); err != nil {
				return false, fmt.Errorf("actorstore: blob %s: %w", c, err)
			}
		}
		for _, l := range o.idx.links {
			if err := prepare(&addLink, `INSERT INTO backlinks (collection, rkey, path, link_to) VALUES (?, ?, ?, ?)
				ON CONFLICT (collection, rkey, path) DO UPDATE SET link_to = excluded.link_to`); err != nil {
				return false, err
			}
			if _, err := addLink.ExecContext(ctx, o.collection, o.rkey, l.Path, l.LinkTo); err != nil {
				return false, fmt.Errorf("actorstore: index backlink of %s/%s: %w", o.collection, o.rkey, err)
			}
		}
	}
	q, err := queueGarbage(ctx, tx, dropped)
	return queued || q, err
}

// queueGarbage queues in blob_gc those of cids that no record references;
// it reports whether any was.
func queueGarbage(ctx context.Context, tx *sql.Tx, cids []data.CID) (queued bool, err error) {
	for _, c := range cids {
		r, err := tx.ExecContext(ctx,
			`INSERT INTO blob_gc (cid) SELECT ? WHERE NOT EXISTS (SELECT 1 FROM record_blobs WHERE blob_cid = ?)
			 ON CONFLICT DO NOTHING`, c.Bytes(), c.Bytes())
		if err != nil {
			return false, fmt.Errorf("actorstore: queue blob %s: %w", c, err)
		}
		if n, _ := r.RowsAffected(); n > 0 {
			queued = true
		}
	}
	return queued, nil
}

// BacklinkConflicts returns the record keys of collection whose backlink at
// path points to linkTo: the records a new one with the same subject would
// duplicate.
func (s *Store) BacklinkConflicts(ctx context.Context, collection syntax.NSID, path, linkTo string) ([]syntax.RecordKey, error) {
	if err := s.WaitApplied(ctx); err != nil {
		return nil, err
	}
	rows, err := s.db.Reader().QueryContext(ctx,
		`SELECT rkey FROM backlinks WHERE link_to = ? AND path = ? AND collection = ? ORDER BY rkey`,
		linkTo, path, string(collection))
	if err != nil {
		return nil, fmt.Errorf("actorstore: backlinks: %w", err)
	}
	defer rows.Close()
	var out []syntax.RecordKey
	for rows.Next() {
		var k string
		if err := rows.Scan(&k); err != nil {
			return nil, fmt.Errorf("actorstore: backlinks: %w", err)
		}
		out = append(out, syntax.RecordKey(k))
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("actorstore: backlinks: %w", err)
	}
	return out, nil
}
