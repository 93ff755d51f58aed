package verify

// Reason names why an event was rejected, or, for an accepted event, the
// notable condition it carried (a broken chain, or an inversion failure let
// through in lenient mode). The values are short, stable and made of
// lower-case letters and dashes, so that they can be used as metric labels
// and log fields as they are.
type Reason string

// Reasons. Each is a kind of fault, not a message: Verdict.Err says what
// exactly was wrong.
const (
	// ReasonNone: nothing to report.
	ReasonNone Reason = ""

	// Size limits (ParseCommit, ParseSync).

	// ReasonFrameTooLarge: the event body is larger than Options.MaxFrameSize.
	ReasonFrameTooLarge Reason = "frame-too-large"
	// ReasonBlocksTooLarge: the "blocks" CAR slice is larger than
	// Options.MaxBlocksSize (Options.MaxSyncBlocksSize for #sync).
	ReasonBlocksTooLarge Reason = "blocks-too-large"
	// ReasonRecordTooLarge: a block of the CAR slice is larger than
	// Options.MaxRecordSize.
	ReasonRecordTooLarge Reason = "record-too-large"
	// ReasonTooManyOps: the event lists more than Options.MaxOps ops.
	ReasonTooManyOps Reason = "too-many-ops"

	// Structure (ParseCommit, ParseSync).

	// ReasonBadCBOR: the event body is not a DAG-CBOR map of the right
	// shape.
	ReasonBadCBOR Reason = "bad-cbor"
	// ReasonBadDID: the event's "repo" (#commit) or "did" (#sync) is not
	// a DID.
	ReasonBadDID Reason = "bad-did"
	// ReasonBadEvent: a required event field is missing or malformed (rev,
	// commit, time, an empty blocks field, an undefined CID).
	ReasonBadEvent Reason = "bad-event"
	// ReasonBadOp: an op is malformed: unknown action, invalid path, a
	// create or update without a CID, a delete with one, a create with a
	// prev.
	ReasonBadOp Reason = "bad-op"
	// ReasonBadCAR: the CAR slice is malformed, a block does not hash to
	// its CID, or it uses a hash other than sha-256.
	ReasonBadCAR Reason = "bad-car"
	// ReasonMissingBlock: the commit block, or the record block of a
	// create or update, is not in the CAR slice.
	ReasonMissingBlock Reason = "missing-block"
	// ReasonBadCommit: the commit block is not a valid signed version 3
	// commit.
	ReasonBadCommit Reason = "bad-commit"
	// ReasonCommitMismatch: the event's fields disagree with the signed
	// commit: the event's commit CID is not the CAR's first root, or its
	// DID or rev differ from the commit's.
	ReasonCommitMismatch Reason = "commit-mismatch"
	// ReasonBadRecord: a record block of a create or update is not a
	// DAG-CBOR map with a string "$type".
	ReasonBadRecord Reason = "bad-record"

	// Identity and account (VerifyCommit, VerifySync).

	// ReasonNoIdentity: no identity was given (resolution failed).
	ReasonNoIdentity Reason = "no-identity"
	// ReasonNoSigningKey: the identity has no usable #atproto key.
	ReasonNoSigningKey Reason = "no-signing-key"
	// ReasonNoPDS: the identity has no usable #atproto_pds endpoint.
	ReasonNoPDS Reason = "no-pds-endpoint"
	// ReasonNotAuthoritativeHost: the event came from a host other than
	// the PDS the identity names.
	ReasonNotAuthoritativeHost Reason = "not-authoritative-host"
	// ReasonInactiveAccount: the account's hosting status is not active.
	ReasonInactiveAccount Reason = "inactive-account"

	// Revisions (VerifyCommit, VerifySync).

	// ReasonRevRollback: the rev is lower than the last accepted one.
	ReasonRevRollback Reason = "rev-rollback"
	// ReasonDuplicateRev: the rev equals the last accepted one. The sync
	// specification asks for such events to be ignored; they are usually
	// replays, not faults.
	ReasonDuplicateRev Reason = "duplicate-rev"
	// ReasonFutureRev: the rev's timestamp is further ahead of the clock
	// than Options.MaxFutureRev.
	ReasonFutureRev Reason = "future-rev"

	// Signature (VerifyCommit, VerifySync).

	// ReasonBadSignature: the signature is malformed (not 64 bytes, a
	// scalar out of range, or high-S): no key can verify it, so refreshing
	// the identity cannot help.
	ReasonBadSignature Reason = "bad-signature"
	// ReasonWrongKey: the signature is well-formed but the identity's
	// current key does not verify it. Either the account rotated its key
	// and the identity is stale, or the commit is forged or damaged; the
	// caller refreshes the identity once and verifies again.
	ReasonWrongKey Reason = "wrong-key"

	// Sync 1.1 checks (VerifyCommit).

	// ReasonInversionMismatch: undoing the ops on the slice's tree does
	// not give the event's prevData (or fails). Rejected, unless
	// Options.Lenient.
	ReasonInversionMismatch Reason = "inversion-mismatch"
	// ReasonMissingPrevData: the event has no prevData though it is not
	// the repository's first commit, so the ops cannot be checked.
	// Rejected, unless Options.Lenient.
	ReasonMissingPrevData Reason = "missing-prev-data"
	// ReasonSinceGap: the event's since is not the last accepted rev: the
	// chain of commits is broken. The event is accepted and the repository
	// marked out of sync (Verdict.Resync).
	ReasonSinceGap Reason = "since-gap"
	// ReasonPrevDataMismatch: the event's prevData is not the data root of
	// the last accepted commit: the chain is broken. Accepted, with
	// Verdict.Resync, as for ReasonSinceGap.
	ReasonPrevDataMismatch Reason = "prev-data-mismatch"
)

// Reasons lists every Reason but ReasonNone, for pre-registering metric
// label values.
func Reasons() []Reason {
	return []Reason{
		ReasonFrameTooLarge, ReasonBlocksTooLarge, ReasonRecordTooLarge, ReasonTooManyOps,
		ReasonBadCBOR, ReasonBadDID, ReasonBadEvent, ReasonBadOp, ReasonBadCAR,
		ReasonMissingBlock, ReasonBadCommit, ReasonCommitMismatch, ReasonBadRecord,
		ReasonNoIdentity, ReasonNoSigningKey, ReasonNoPDS, ReasonNotAuthoritativeHost,
		ReasonInactiveAccount, ReasonRevRollback, ReasonDuplicateRev, ReasonFutureRev,
		ReasonBadSignature, ReasonWrongKey, ReasonInversionMismatch, ReasonMissingPrevData,
		ReasonSinceGap, ReasonPrevDataMismatch,
	}
}

// String returns r itself, or "ok" for ReasonNone.
func (r Reason) String() string {
	if r == ReasonNone {
		return "ok"
	}
	return string(r)
}

// RefreshIdentity reports whether the outcome may change with freshly
// resolved identity data: a signature that the cached key does not verify,
// an event from a host the cached document does not name (the account may
// have migrated), or an identity that lacked a key or PDS. The sync
// specification asks for one refresh and one retry before such an event
// is rejected for good.
func (r Reason) RefreshIdentity() bool {
	switch r {
	case ReasonWrongKey, ReasonNotAuthoritativeHost, ReasonNoIdentity, ReasonNoSigningKey, ReasonNoPDS:
		return true
	}
	return false
}

// Ignorable reports whether a rejection is the expected fate of a replayed
// or duplicated event rather than a fault of the sender: a rev equal to the
// last accepted one. Callers may skip logging and penalties for it.
func (r Reason) Ignorable() bool { return r == ReasonDuplicateRev }
