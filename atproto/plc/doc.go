// Package plc implements the client side of the did:plc DID method: the
// operation formats, their DAG-CBOR encoding, signing and CIDs, DID
// derivation, the rendering of DID documents, validation of operation and
// audit logs (including recovery by nullification), the rules a directory
// applies to newly submitted operations, and an HTTP client for a PLC
// directory such as https://plc.directory.
//
// # Operations
//
// There are three operation types, all implementing Op:
//
//   - *Operation ("plc_operation"): rotation keys, verification methods,
//     alsoKnownAs and services, with a prev pointing at the previous
//     operation (null for a genesis operation);
//   - *Tombstone ("plc_tombstone"): deactivates the DID for good;
//   - *LegacyCreate ("create"): the deprecated genesis format, still found
//     at the start of old logs.
//
// An operation is signed over its DAG-CBOR encoding without the sig field;
// the signature is the 64-byte compact ECDSA form, low-S, in base64url
// without padding. Its CID is the CIDv1 (dag-cbor, sha-256) of the DAG-CBOR
// encoding with the sig field, and the DID of a genesis operation is
// "did:plc:" followed by the first 24 characters of the lower-case base32
// SHA-256 of that same encoding.
//
// # Validation
//
// ValidateOperationLog checks a plain chain of operations. ValidateAuditLog
// checks a full audit log, nullified entries included, by replaying it
// through AssimilateOp, which is also what a directory calls to accept or
// refuse a new operation. Rotation keys are listed in decreasing authority:
// within RecoveryWindow (72 hours) a key listed earlier may fork history
// and nullify operations signed by a key listed later. CheckNewOpLimits
// holds the size and count limits that apply to newly submitted operations
// only, since older logs predate them.
//
// Errors match the package's sentinel errors (ErrMalformedOp,
// ErrInvalidSignature, ErrMisordered, ...) with errors.Is.
package plc
