package plc

import (
	"errors"
	"fmt"
)

// Sentinel errors. Every error this package returns for bad operations,
// logs or directory responses matches one of these with errors.Is; the
// message says what exactly was wrong.
var (
	// ErrMalformedOp: the operation does not have the shape of any PLC
	// operation type (bad JSON, unknown type, missing or extra fields,
	// fields of the wrong type, a prev that is not a CID).
	ErrMalformedOp = errors.New("plc: malformed operation")

	// ErrUnsigned: the operation has no signature where one is needed.
	ErrUnsigned = errors.New("plc: operation is not signed")

	// ErrInvalidSignature: the signature is badly encoded, or no allowed
	// rotation key verifies it.
	ErrInvalidSignature = errors.New("plc: invalid operation signature")

	// ErrMisordered: the operation does not fit where it is placed in the
	// log: its prev is missing, wrong or unknown, a genesis operation has a
	// prev, or a tombstone is not the last operation.
	ErrMisordered = errors.New("plc: operations not correctly ordered")

	// ErrTombstoned: the operation follows a tombstone, which ends a DID's
	// history.
	ErrTombstoned = errors.New("plc: DID is tombstoned")

	// ErrGenesisHash: the DID is not the hash of the genesis operation.
	ErrGenesisHash = errors.New("plc: genesis operation does not hash to the DID")

	// ErrLateRecovery: a nullifying operation arrived more than 72 hours
	// after the first operation it would nullify.
	ErrLateRecovery = errors.New("plc: recovery outside the 72 hour window")

	// ErrInvalidLog: an audit log is inconsistent in itself (wrong DID,
	// wrong CID, wrong nullified flag, timestamps out of order, empty).
	ErrInvalidLog = errors.New("plc: invalid operation log")

	// ErrLimit: a new operation breaks one of the limits the directory
	// enforces on newly submitted operations (see CheckNewOpLimits).
	ErrLimit = errors.New("plc: operation exceeds limits")

	// ErrNotFound: the directory does not know the DID, or the DID is
	// deactivated. *HTTPError values with status 404 match it.
	ErrNotFound = errors.New("plc: DID not found")

	// ErrBadResponse: the directory answered with something that could not
	// be understood.
	ErrBadResponse = errors.New("plc: bad response from directory")
)

// HTTPError is a non-success answer from a PLC directory. Message is the
// server's own explanation (the "message" field of its JSON error body) when
// it gave one, otherwise the start of the response body.
type HTTPError struct {
	StatusCode int
	Message    string
}

func (e *HTTPError) Error() string {
	if e.Message == "" {
		return fmt.Sprintf("plc: directory returned HTTP %d", e.StatusCode)
	}
	return fmt.Sprintf("plc: directory returned HTTP %d: %s", e.StatusCode, e.Message)
}

// Is makes a 404 answer match ErrNotFound.
func (e *HTTPError) Is(target error) bool {
	return target == ErrNotFound && e.StatusCode == 404
}

func errf(sentinel error, format string, args ...any) error {
	return fmt.Errorf("%w: %s", sentinel, fmt.Sprintf(format, args...))
}
