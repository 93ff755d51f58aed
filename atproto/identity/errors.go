package identity

import (
	"errors"
	"fmt"
)

// Sentinel errors. Every error returned by this package that belongs to one
// of these classes matches it with errors.Is; the concrete error usually
// carries more detail (the DID or handle concerned and the underlying cause).
var (
	// ErrInvalidDIDDocument: a DID document could not be parsed, or lacks
	// something every document needs (a valid "id").
	ErrInvalidDIDDocument = errors.New("identity: invalid DID document")

	// ErrDIDDocumentMismatch: the "id" of a fetched DID document is not the
	// DID that was resolved.
	ErrDIDDocumentMismatch = errors.New("identity: DID document id does not match the requested DID")

	// ErrDIDNotFound: the DID method's registry has no such DID (did:plc 404,
	// did:web 404).
	ErrDIDNotFound = errors.New("identity: DID not found")

	// ErrDIDDeactivated: the DID exists but has been deactivated or
	// tombstoned (did:plc 410 Gone).
	ErrDIDDeactivated = errors.New("identity: DID deactivated or tombstoned")

	// ErrUnsupportedDIDMethod: the DID uses a method other than plc or web,
	// or a did:web form atproto does not allow (path segments, ports on a
	// real hostname, localhost without opt-in).
	ErrUnsupportedDIDMethod = errors.New("identity: unsupported DID method or form")

	// ErrDIDResolutionFailed: resolution failed for another reason (network,
	// server error, bad response); retrying later may succeed.
	ErrDIDResolutionFailed = errors.New("identity: DID resolution failed")

	// ErrHandleNotFound: neither DNS nor HTTPS produced a DID for the handle.
	ErrHandleNotFound = errors.New("identity: handle not found")

	// ErrHandleAmbiguous: the handle's DNS TXT records name more than one
	// distinct DID; the handle specification says resolution must fail.
	ErrHandleAmbiguous = errors.New("identity: handle has conflicting DNS did= records")

	// ErrHandleResolutionFailed: handle resolution failed for a reason that
	// may be transient (DNS server failure, network error).
	ErrHandleResolutionFailed = errors.New("identity: handle resolution failed")

	// ErrHandleReservedTLD: the handle uses a top-level domain that must
	// never be resolved (.local, .onion, .invalid, ...).
	ErrHandleReservedTLD = errors.New("identity: handle top-level domain is reserved")

	// ErrHandleMismatch: bidirectional verification failed: the handle points
	// at a DID whose document does not claim that handle.
	ErrHandleMismatch = errors.New("identity: handle and DID document do not match")

	// ErrKeyNotFound: the identity has no usable verification key with the
	// requested id.
	ErrKeyNotFound = errors.New("identity: verification key not found")

	// ErrServiceNotFound: the identity has no service entry with the
	// requested id (and type).
	ErrServiceNotFound = errors.New("identity: service not found")

	// ErrInvalidServiceEndpoint: a service endpoint is not an acceptable
	// http(s) server URL.
	ErrInvalidServiceEndpoint = errors.New("identity: invalid service endpoint")

	// ErrForbiddenAddress: the safe HTTP client refused to connect to a
	// non-public network address.
	ErrForbiddenAddress = errors.New("identity: refusing to connect to non-public address")

	// ErrResponseTooLarge: a response body exceeded its size limit.
	ErrResponseTooLarge = errors.New("identity: response body too large")

	// ErrRedirectRefused: the safe HTTP client refused to follow a redirect
	// (too many hops, or a change of scheme).
	ErrRedirectRefused = errors.New("identity: redirect refused")
)

// DIDError reports a failure to resolve a DID. It matches its Kind (one of
// the sentinels above) and its Err with errors.Is.
type DIDError struct {
	DID  string
	Kind error // sentinel class, e.g. ErrDIDNotFound
	Err  error // underlying cause; may be nil
}

func (e *DIDError) Error() string {
	if e.Err != nil {
		return fmt.Sprintf("%v: %s: %v", e.Kind, e.DID, e.Err)
	}
	return fmt.Sprintf("%v: %s", e.Kind, e.DID)
}

// Unwrap returns the class and the cause.
func (e *DIDError) Unwrap() []error {
	if e.Err == nil {
		return []error{e.Kind}
	}
	return []error{e.Kind, e.Err}
}

func didErr(did string, kind, err error) error {
	return &DIDError{DID: did, Kind: kind, Err: err}
}

// HandleError reports a failure to resolve a handle to a DID. When both
// resolution methods ran, DNSErr and HTTPErr hold their separate outcomes.
// It matches its Kind with errors.Is (ErrHandleNotFound when both methods
// found nothing, ErrHandleResolutionFailed when at least one failed in a way
// that may be transient, ErrHandleAmbiguous, ErrHandleReservedTLD, ...).
type HandleError struct {
	Handle  string
	Kind    error
	DNSErr  error
	HTTPErr error
	Err     error // other cause, when the failure was not per-method
}

func (e *HandleError) Error() string {
	msg := fmt.Sprintf("%v: %s", e.Kind, e.Handle)
	if e.Err != nil {
		msg += ": " + e.Err.Error()
	}
	if e.DNSErr != nil {
		msg += "; dns: " + e.DNSErr.Error()
	}
	if e.HTTPErr != nil {
		msg += "; https: " + e.HTTPErr.Error()
	}
	return msg
}

// Unwrap returns the class and every recorded cause.
func (e *HandleError) Unwrap() []error {
	errs := []error{e.Kind}
	for _, err := range []error{e.Err, e.DNSErr, e.HTTPErr} {
		if err != nil {
			errs = append(errs, err)
		}
	}
	return errs
}

// DocumentError reports a problem found while parsing a DID document. It
// matches ErrInvalidDIDDocument.
type DocumentError struct {
	Reason string
	Err    error
}

func (e *DocumentError) Error() string {
	if e.Err != nil {
		return fmt.Sprintf("%v: %s: %v", ErrInvalidDIDDocument, e.Reason, e.Err)
	}
	return fmt.Sprintf("%v: %s", ErrInvalidDIDDocument, e.Reason)
}

// Unwrap returns ErrInvalidDIDDocument and the cause.
func (e *DocumentError) Unwrap() []error {
	if e.Err == nil {
		return []error{ErrInvalidDIDDocument}
	}
	return []error{ErrInvalidDIDDocument, e.Err}
}
