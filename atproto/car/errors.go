package car

import (
	"errors"
	"fmt"

	"github.com/welkin-atproto/welkin/atproto/data"
)

// Causes of an *Error, for use with errors.Is.
var (
	// ErrTruncated: the input ended inside the header or a section.
	ErrTruncated = errors.New("truncated")
	// ErrLimit: a size or count exceeded the Reader's Limits.
	ErrLimit = errors.New("limit exceeded")
	// ErrHashMismatch: a block's bytes do not hash to its CID.
	ErrHashMismatch = errors.New("block does not match its CID")
	// ErrUnsupportedHash: a block's CID uses a hash function other than
	// sha-256, the only one atproto uses.
	ErrUnsupportedHash = errors.New("unsupported hash function")
	// ErrMalformed: the bytes do not follow the CARv1 format.
	ErrMalformed = errors.New("malformed")
)

// Error reports a fault in a CAR file: where it is and what is wrong.
type Error struct {
	// Offset is the byte offset in the file of the start of the header or
	// section at fault (its length prefix).
	Offset int64
	// Block is the index of the section at fault, from 0, or -1 for the
	// header.
	Block int
	// CID is the CID of the block at fault, when it could be read.
	CID data.CID
	// Err is the cause: one of the Err* values above, an I/O error of the
	// underlying reader, or a CBOR error in the header.
	Err error
	// Detail says more about the fault, if there is more to say.
	Detail string
}

func (e *Error) Error() string {
	where := "header"
	if e.Block >= 0 {
		where = fmt.Sprintf("block %d", e.Block)
	}
	s := fmt.Sprintf("car: %s at offset %d", where, e.Offset)
	if e.CID.Defined() {
		s += " (" + e.CID.String() + ")"
	}
	s += ": " + e.Err.Error()
	if e.Detail != "" {
		s += ": " + e.Detail
	}
	return s
}

// Unwrap returns the cause.
func (e *Error) Unwrap() error { return e.Err }
