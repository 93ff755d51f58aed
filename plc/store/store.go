package store

import (
	"context"
	"encoding/json"
	"errors"
	"time"

	"github.com/welkin-atproto/welkin/atproto/data"
	"github.com/welkin-atproto/welkin/atproto/plc"
	"github.com/welkin-atproto/welkin/atproto/syntax"
)

// ErrNotFound: the store holds no operation for the DID.
var ErrNotFound = errors.New("plc store: DID not found")

// ErrConflict: the DID's log changed between the read the caller based its
// decision on and the Append; the caller should re-read and decide again.
var ErrConflict = errors.New("plc store: DID log changed concurrently")

// Entry is one stored operation as it appears in the export: the operation
// is kept as the JSON the directory serves, so that exporting needs no
// re-encoding.
type Entry struct {
	Seq       int64
	DID       syntax.DID
	CID       string
	Operation json.RawMessage
	Nullified bool
	CreatedAt time.Time
}

// Store is the storage behind a PLC directory. Implementations are safe for
// concurrent use.
type Store interface {
	// AuditLog returns every operation stored for did, nullified ones
	// included, in the order they were accepted. An unknown DID gives an
	// empty log and no error.
	AuditLog(ctx context.Context, did syntax.DID) ([]plc.AuditEntry, error)

	// LastOp returns the latest operation of did that is not nullified,
	// with the time it was accepted; ErrNotFound if there is none.
	LastOp(ctx context.Context, did syntax.DID) (plc.Op, time.Time, error)

	// Append stores entry (DID, Operation, CID and CreatedAt are used) as
	// the next operation of did and marks the operations whose CIDs are in
	// nullify as nullified, atomically. expectLen is the length of the
	// audit log the caller validated entry against; if the log has a
	// different length by now, nothing is written and the error matches
	// ErrConflict. It returns the sequence number given to the entry.
	Append(ctx context.Context, did syntax.DID, entry plc.AuditEntry, nullify []data.CID, expectLen int) (int64, error)

	// ExportSeq returns up to count entries with seq > after, in seq order.
	ExportSeq(ctx context.Context, after int64, count int) ([]Entry, error)

	// ExportLegacy returns up to count entries created strictly after
	// after (all entries when after is the zero time), ordered by
	// createdAt and then CID.
	ExportLegacy(ctx context.Context, after time.Time, count int) ([]Entry, error)

	// LastSeq returns the highest sequence number given out, 0 if none.
	LastSeq(ctx context.Context) (int64, error)

	// Ping checks that the database answers.
	Ping(ctx context.Context) error

	// Close releases the database.
	Close() error
}
