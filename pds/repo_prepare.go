package pds

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"net/http"

	"github.com/welkin-atproto/welkin/atproto/data"
	"github.com/welkin-atproto/welkin/atproto/lexicon"
	"github.com/welkin-atproto/welkin/atproto/repo"
	"github.com/welkin-atproto/welkin/atproto/syntax"
	"github.com/welkin-atproto/welkin/atproto/xrpc"
	"github.com/welkin-atproto/welkin/pds/actorstore"
)

// MaxWrites bounds the writes of one applyWrites call: one commit holds at
// most 200 operations (com.atproto.sync.subscribeRepos#commit "ops ...
// maxLength: 200"; the reference PDS answers "Too many writes. Max: 200").
const MaxWrites = repo.MaxCommitOps

// MaxRecordSize bounds the DAG-CBOR encoding of one record (sync
// specification: "individual record blocks ... have a hard limit of one
// million bytes").
const MaxRecordSize = repo.MaxRecordSize

// Validation statuses of a written record, as the write methods report
// them (validationStatus).
const (
	validationValid   = "valid"
	validationUnknown = "unknown"
)

// preparedWrite is one record write, checked and encoded, ready for
// commitWrites.
type preparedWrite struct {
	action     string // repo.ActionCreate, ActionUpdate or ActionDelete
	collection syntax.NSID
	rkey       syntax.RecordKey
	record     map[string]any // the record with its $type; nil for a delete
	value      []byte         // its DAG-CBOR; nil for a delete
	cid        data.CID
	blobs      []data.Blob // the blobs it references, each once
	// status is validationValid, validationUnknown, or "" when validation
	// was turned off.
	status string
}

func (w *preparedWrite) recordWrite() repo.RecordWrite {
	return repo.RecordWrite{Action: w.action, Collection: w.collection, RKey: w.rkey, Value: w.value}
}

func (w *preparedWrite) uri(did syntax.DID) string { return recordURI(did, w.collection, w.rkey) }

// newRecordKey returns a fresh TID record key.
func (s *Server) newRecordKey() (syntax.RecordKey, error) {
	tid, err := s.clock.Next("")
	if err != nil {
		return "", err
	}
	return syntax.RecordKey(tid), nil
}

// prepareDelete checks a delete.
func prepareDelete(collection, rkey string) (*preparedWrite, error) {
	col, err := syntax.ParseNSID(collection)
	if err != nil {
		return nil, xrpc.InvalidRequest("Invalid collection: " + err.Error())
	}
	k, err := syntax.ParseRecordKey(rkey)
	if err != nil {
		return nil, xrpc.InvalidRequest("Invalid record key: " + err.Error())
	}
	return &preparedWrite{action: repo.ActionDelete, collection: col, rkey: k}, nil
}

// prepareRecord checks and encodes a create or update of collection/rkey
// (rkey "" for a create makes a new TID key) holding raw, as the reference
// PDS does: the record's $type is set to the collection when absent and
// must equal it otherwise; with validate unset the record is validated
// when the collection's schema is known ("valid") and passed as it is
// otherwise ("unknown"); with validate true an unknown schema is an error;
// with validate false nothing is validated. Validation covers the record
// key's type. Legacy blob references are refused whatever validate says.
// where names the record in error messages ("record", "writes[3].value").
func (s *Server) prepareRecord(action, collection, rkey string, raw any, validate *bool, where string) (*preparedWrite, error) {
	col, err := syntax.ParseNSID(collection)
	if err != nil {
		return nil, xrpc.InvalidRequest("Invalid collection: " + err.Error())
	}
	w := &preparedWrite{action: action, collection: col}
	if rkey == "" {
		if action != repo.ActionCreate {
			return nil, xrpc.InvalidRequest("A record key is required")
		}
		if w.rkey, err = s.newRecordKey(); err != nil {
			return nil, err
		}
	} else if w.rkey, err = syntax.ParseRecordKey(rkey); err != nil {
		return nil, xrpc.InvalidRequest("Invalid record key: " + err.Error())
	}

	rec, ok := raw.(map[string]any)
	if !ok {
		return nil, xrpc.InvalidRequest(fmt.Sprintf("Invalid %s: a record must be an object", where))
	}
	switch t, present := rec["$type"]; {
	case !present:
		rec = maps.Clone(rec)
		rec["$type"] = collection
	case t != collection:
		return nil, xrpc.InvalidRequest(fmt.Sprintf("Invalid $type: expected %s, got %v", collection, t))
	}
	w.record = rec

	if validate == nil || *validate {
		known, err := s.recordSchemaKnown(col)
		if err != nil {
			return nil, err
		}
		switch {
		case known:
			if err := s.xrpc.Catalog.ValidateRecordKey(collection, string(w.rkey)); err != nil {
				return nil, xrpc.InvalidRequest(fmt.Sprintf("Invalid record key for %s: %v", collection, err))
			}
			if err := s.xrpc.Catalog.ValidateRecord(collection, rec); err != nil {
				return nil, xrpc.InvalidRequest(fmt.Sprintf("Invalid %s record: %s: %v", collection, where, err))
			}
			w.status = validationValid
		case validate != nil:
			return nil, xrpc.InvalidRequest("Unknown lexicon type: " + collection)
		default:
			w.status = validationUnknown
		}
	}

	var legacy *data.Blob
	seen := map[data.CID]bool{}
	actorstore.WalkBlobs(rec, func(b data.Blob) {
		if b.Legacy {
			if legacy == nil {
				legacy = &b
			}
			return
		}
		if !seen[b.Ref] {
			seen[b.Ref] = true
			w.blobs = append(w.blobs, b)
		}
	})
	if legacy != nil {
		return nil, xrpc.InvalidRequest(fmt.Sprintf("Legacy blobs are not allowed (%s)", legacy.Ref))
	}

	if w.value, err = data.MarshalCBOR(rec); err != nil {
		return nil, xrpc.InvalidRequest(fmt.Sprintf("Invalid %s: %v", where, err))
	}
	if len(w.value) > MaxRecordSize {
		return nil, xrpc.InvalidRequest(fmt.Sprintf("Record is too large: %d bytes of DAG-CBOR, at most %d", len(w.value), MaxRecordSize))
	}
	w.cid = data.CIDForCBOR(w.value)
	return w, nil
}

// recordSchemaKnown reports whether the lexicon catalog holds a record
// schema for collection.
func (s *Server) recordSchemaKnown(collection syntax.NSID) (bool, error) {
	cat := s.xrpc.Catalog
	if cat == nil {
		return false, nil
	}
	def, err := cat.Resolve(string(collection))
	if errors.Is(err, lexicon.ErrNotFound) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	_, ok := def.Schema.(*lexicon.Record)
	return ok, nil
}

// commitBlobs checks the blobs the records of writes reference and makes
// the bytes of those still temporary permanent, before the commit that
// references them is stored (which marks them permanent in st). It runs
// with the account's write lock held. A blob never uploaded is a 400
// BlobNotFound; an upload whose MIME type or size differs from what the
// record declares is InvalidMimeType or InvalidSize, as the reference PDS
// answers.
func (s *Server) commitBlobs(ctx context.Context, st *actorstore.Store, writes []*preparedWrite) error {
	seen := map[data.CID]bool{}
	for _, w := range writes {
		for _, b := range w.blobs {
			if seen[b.Ref] {
				continue
			}
			seen[b.Ref] = true
			m, err := st.Blob(ctx, b.Ref)
			if errors.Is(err, actorstore.ErrBlobNotFound) {
				return blobNotFoundForRecord(b.Ref)
			}
			if err != nil {
				return err
			}
			if m.Permanent() {
				continue
			}
			if b.MimeType != m.MimeType {
				return xrpc.Errorf(http.StatusBadRequest, "InvalidMimeType",
					"Referenced Mimetype does not match stored blob. Expected: %s, Got: %s", m.MimeType, b.MimeType)
			}
			if b.Size != m.Size {
				return xrpc.Errorf(http.StatusBadRequest, "InvalidSize",
					"Referenced Size does not match stored blob. Expected: %d, Got: %d", m.Size, b.Size)
			}
			if err := s.makeBlobPermanent(ctx, st.DID(), m); err != nil {
				return err
			}
		}
	}
	return nil
}

func blobNotFoundForRecord(c data.CID) error {
	return xrpc.Errorf(http.StatusBadRequest, "BlobNotFound", "Could not find blob: %s", c)
}
