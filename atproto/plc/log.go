package plc

import (
	"encoding/json"
	"fmt"
	"time"

	"github.com/welkin-atproto/welkin/atproto/data"
	"github.com/welkin-atproto/welkin/atproto/syntax"
)

// RecoveryWindow is how long after an operation a rotation key of higher
// priority may still nullify it. An operation created exactly
// RecoveryWindow after the first operation it nullifies is accepted.
const RecoveryWindow = 72 * time.Hour

// createdAtLayout is the timestamp form the directory writes (JavaScript's
// Date.toISOString).
const createdAtLayout = "2006-01-02T15:04:05.000Z"

// AuditEntry is one entry of a DID's audit log (/:did/log/audit), or of the
// export stream.
type AuditEntry struct {
	DID       syntax.DID
	Operation Op
	// CID is the CID string of Operation as the directory reported it.
	CID       string
	Nullified bool
	CreatedAt time.Time
}

type entryJSON struct {
	DID       string          `json:"did"`
	Operation json.RawMessage `json:"operation"`
	CID       string          `json:"cid"`
	Nullified *bool           `json:"nullified,omitempty"`
	CreatedAt string          `json:"createdAt"`
	Type      string          `json:"type,omitempty"`
	Seq       *int64          `json:"seq,omitempty"`
}

func (w *entryJSON) toEntry() (AuditEntry, error) {
	var e AuditEntry
	did, err := syntax.ParseDID(w.DID)
	if err != nil {
		return e, fmt.Errorf("%w: log entry: %v", ErrBadResponse, err)
	}
	if len(w.Operation) == 0 {
		return e, errf(ErrMalformedOp, `log entry has no "operation"`)
	}
	op, err := ParseOperationJSON(w.Operation)
	if err != nil {
		return e, err
	}
	t, err := time.Parse(time.RFC3339Nano, w.CreatedAt)
	if err != nil {
		return e, fmt.Errorf("%w: log entry createdAt: %v", ErrBadResponse, err)
	}
	e = AuditEntry{DID: did, Operation: op, CID: w.CID, CreatedAt: t}
	if w.Nullified != nil {
		e.Nullified = *w.Nullified
	}
	return e, nil
}

// UnmarshalJSON reads an entry as the directory writes it; the operation is
// parsed with ParseOperationJSON.
func (e *AuditEntry) UnmarshalJSON(b []byte) error {
	var w entryJSON
	if err := json.Unmarshal(b, &w); err != nil {
		return fmt.Errorf("%w: log entry: %v", ErrBadResponse, err)
	}
	got, err := w.toEntry()
	if err != nil {
		return err
	}
	*e = got
	return nil
}

// MarshalJSON writes the entry as the directory does, with createdAt in
// millisecond precision UTC.
func (e AuditEntry) MarshalJSON() ([]byte, error) {
	if isNil(e.Operation) {
		return nil, errf(ErrMalformedOp, "log entry has no operation")
	}
	opJSON, err := e.Operation.MarshalJSON()
	if err != nil {
		return nil, err
	}
	n := e.Nullified
	return json.Marshal(entryJSON{
		DID:       string(e.DID),
		Operation: opJSON,
		CID:       e.CID,
		Nullified: &n,
		CreatedAt: e.CreatedAt.UTC().Format(createdAtLayout),
	})
}

// ExportEntry is one line of /export. Sequenced lines (after=<integer>)
// have Type "sequenced_op" and a Seq; legacy lines (after=<timestamp>) have
// neither but carry Nullified.
type ExportEntry struct {
	AuditEntry
	Type string
	Seq  int64
}

// MarshalJSON writes a sequenced line (with type and seq, without
// nullified) when Type is set, and a legacy line otherwise.
func (e ExportEntry) MarshalJSON() ([]byte, error) {
	if e.Type == "" {
		return e.AuditEntry.MarshalJSON()
	}
	if isNil(e.Operation) {
		return nil, errf(ErrMalformedOp, "export entry has no operation")
	}
	opJSON, err := e.Operation.MarshalJSON()
	if err != nil {
		return nil, err
	}
	seq := e.Seq
	return json.Marshal(entryJSON{
		DID:       string(e.DID),
		Operation: opJSON,
		CID:       e.CID,
		CreatedAt: e.CreatedAt.UTC().Format(createdAtLayout),
		Type:      e.Type,
		Seq:       &seq,
	})
}

func (e *ExportEntry) UnmarshalJSON(b []byte) error {
	var w entryJSON
	if err := json.Unmarshal(b, &w); err != nil {
		return fmt.Errorf("%w: export entry: %v", ErrBadResponse, err)
	}
	got, err := w.toEntry()
	if err != nil {
		return err
	}
	*e = ExportEntry{AuditEntry: got, Type: w.Type}
	if w.Seq != nil {
		e.Seq = *w.Seq
	}
	return nil
}

// ValidateOperationLog checks a plain chain of operations (the /:did/log
// form: no nullified entries, no timestamps) and returns the resulting
// state. The first operation must be a signed plc_operation or legacy
// create with a null prev, signed by one of its own rotation keys, hashing
// to did. Every later one must be a plc_operation or plc_tombstone whose
// prev is the CID of the operation before it, signed by one of that
// operation's rotation keys; a tombstone may only come last. For a valid
// log ending in a tombstone the result is nil data and a nil error.
func ValidateOperationLog(did syntax.DID, ops []Op) (*DocumentData, error) {
	if len(ops) == 0 {
		return nil, errf(ErrInvalidLog, "empty operation log")
	}
	if err := checkGenesis(did, ops[0]); err != nil {
		return nil, fmt.Errorf("operation 0: %w", err)
	}
	prev, err := ops[0].CID()
	if err != nil {
		return nil, fmt.Errorf("operation 0: %w", err)
	}
	last := ops[0]
	for i := 1; i < len(ops); i++ {
		op := ops[i]
		if isNil(op) {
			return nil, fmt.Errorf("operation %d: %w", i, errf(ErrMalformedOp, "nil operation"))
		}
		if last.Type() == TypeTombstone {
			return nil, fmt.Errorf("operation %d: %w", i, errf(ErrTombstoned, "operation follows a tombstone"))
		}
		if err := checkPrev(op, prev); err != nil {
			return nil, fmt.Errorf("operation %d: %w", i, err)
		}
		if _, err := VerifySigDIDKeys(op, rotationKeysOf(last)); err != nil {
			return nil, fmt.Errorf("operation %d: %w", i, err)
		}
		if prev, err = op.CID(); err != nil {
			return nil, fmt.Errorf("operation %d: %w", i, err)
		}
		last = op
	}
	if last.Type() == TypeTombstone {
		return nil, nil
	}
	return DataForOp(did, last)
}

func checkPrev(op Op, want data.CID) error {
	p := op.PrevCID()
	if p == nil {
		return errf(ErrMisordered, "%s has a null prev but is not the genesis operation", op.Type())
	}
	got, err := data.ParseCID(*p)
	if err != nil {
		return errf(ErrMalformedOp, "prev %q is not a CID: %v", *p, err)
	}
	if got != want {
		return errf(ErrMisordered, "prev %s does not match the previous operation %s", got, want)
	}
	return nil
}

// checkGenesis applies the genesis rules: not a tombstone, null prev, signed
// by one of its own rotation keys, hashing to did.
func checkGenesis(did syntax.DID, op Op) error {
	if isNil(op) {
		return errf(ErrMalformedOp, "nil operation")
	}
	if op.Type() == TypeTombstone {
		return errf(ErrMisordered, "the first operation cannot be a tombstone")
	}
	if op.PrevCID() != nil {
		return errf(ErrMisordered, "the genesis operation must have a null prev")
	}
	if op.Signature() == "" {
		return errf(ErrUnsigned, "genesis operation has no sig")
	}
	if _, err := VerifySigDIDKeys(op, rotationKeysOf(op)); err != nil {
		return err
	}
	got, err := DIDForGenesis(op)
	if err != nil {
		return err
	}
	if got != did {
		return errf(ErrGenesisHash, "genesis operation hashes to %s, not %s", got, did)
	}
	return nil
}

// histEntry is an operation already in a DID's history, with its CID
// computed.
type histEntry struct {
	op        Op
	cid       data.CID
	createdAt time.Time
	nullified bool
}

// AssimilateResult is what accepting a new operation does to a DID.
type AssimilateResult struct {
	// CID of the new operation.
	CID data.CID
	// Nullified lists the CIDs of the previously active operations the new
	// one nullifies, oldest first; empty unless it is a recovery.
	Nullified []data.CID
	// Data is the DID's new state; nil if the new operation is a tombstone.
	Data *DocumentData
}

// AssimilateOp decides whether a directory should accept newOp for did,
// given the DID's audit log so far (existing, in createdAt order; nullified
// entries may be included and are ignored; the CID and DID fields of the
// entries are not consulted, the CIDs are recomputed) and the time the
// operation is received (now). The rules, from the reference
// implementation's assureValidNextOp:
//
//   - With no active history, newOp must be a genesis operation: a
//     plc_operation or legacy create with a null prev, signed by one of its
//     own rotation keys, hashing to did.
//   - Otherwise newOp needs a prev naming an active (not nullified)
//     operation, which must not be a tombstone. now must be strictly after
//     the createdAt of the latest active operation.
//   - If prev is the latest active operation, newOp must be signed by one
//     of prev's rotation keys.
//   - If not, newOp forks history and nullifies every active operation
//     after prev. It must then be signed by a rotation key of prev listed
//     strictly before the key that signed the first operation it
//     nullifies, and now may be at most RecoveryWindow after that
//     operation's createdAt.
//
// Size and field limits are a separate check, CheckNewOpLimits; historical
// operations are not subject to them.
func AssimilateOp(did syntax.DID, existing []AuditEntry, newOp Op, now time.Time) (*AssimilateResult, error) {
	hist := make([]histEntry, len(existing))
	for i, e := range existing {
		if isNil(e.Operation) {
			return nil, fmt.Errorf("existing entry %d: %w", i, errf(ErrMalformedOp, "nil operation"))
		}
		c, err := e.Operation.CID()
		if err != nil {
			return nil, fmt.Errorf("existing entry %d: %w", i, err)
		}
		hist[i] = histEntry{op: e.Operation, cid: c, createdAt: e.CreatedAt, nullified: e.Nullified}
	}
	cid, nullIdx, err := assimilate(did, hist, newOp, now)
	if err != nil {
		return nil, err
	}
	res := &AssimilateResult{CID: cid, Nullified: make([]data.CID, len(nullIdx))}
	for i, n := range nullIdx {
		res.Nullified[i] = hist[n].cid
	}
	if newOp.Type() != TypeTombstone {
		if res.Data, err = DataForOp(did, newOp); err != nil {
			return nil, err
		}
	}
	return res, nil
}

// assimilate implements AssimilateOp over precomputed history and returns
// the new operation's CID and the indices (into hist) it nullifies.
func assimilate(did syntax.DID, hist []histEntry, newOp Op, now time.Time) (data.CID, []int, error) {
	if isNil(newOp) {
		return data.CID{}, nil, errf(ErrMalformedOp, "nil operation")
	}
	cid, err := newOp.CID()
	if err != nil {
		return data.CID{}, nil, err
	}
	var active []int
	for i := range hist {
		if !hist[i].nullified {
			active = append(active, i)
		}
	}
	if len(active) == 0 {
		if len(hist) > 0 {
			return data.CID{}, nil, errf(ErrInvalidLog, "every existing operation is nullified")
		}
		if err := checkGenesis(did, newOp); err != nil {
			return data.CID{}, nil, err
		}
		return cid, nil, nil
	}

	p := newOp.PrevCID()
	if p == nil {
		return data.CID{}, nil, errf(ErrMisordered, "%s already exists; a %s with a null prev cannot be added", did, newOp.Type())
	}
	prev, err := data.ParseCID(*p)
	if err != nil {
		return data.CID{}, nil, errf(ErrMalformedOp, "prev %q is not a CID: %v", *p, err)
	}
	pos := -1
	for j, i := range active {
		if hist[i].cid == prev {
			pos = j
			break
		}
	}
	if pos < 0 {
		return data.CID{}, nil, errf(ErrMisordered, "prev %s is not an active operation of %s", prev, did)
	}
	base := hist[active[pos]]
	if base.op.Type() == TypeTombstone {
		return data.CID{}, nil, errf(ErrTombstoned, "prev %s is a tombstone", prev)
	}
	head := hist[active[len(active)-1]]
	if !now.After(head.createdAt) {
		return data.CID{}, nil, errf(ErrMisordered, "timestamp %s is not after the latest operation's %s",
			now.UTC().Format(createdAtLayout), head.createdAt.UTC().Format(createdAtLayout))
	}
	keys := ParseDIDKeys(rotationKeysOf(base.op))
	toNullify := active[pos+1:]
	if len(toNullify) == 0 {
		if _, err := newOp.VerifySig(keys); err != nil {
			return data.CID{}, nil, err
		}
		return cid, nil, nil
	}

	first := hist[toNullify[0]]
	disputed, err := first.op.VerifySig(keys)
	if err != nil {
		return data.CID{}, nil, fmt.Errorf("%w: operation %s in the history does not verify: %v", ErrInvalidLog, first.cid, err)
	}
	if _, err := newOp.VerifySig(keys[:disputed]); err != nil {
		return data.CID{}, nil, fmt.Errorf("%w: nullifying %s needs a rotation key of higher priority than the one that signed it (index %d)",
			err, first.cid, disputed)
	}
	if elapsed := now.Sub(first.createdAt); elapsed > RecoveryWindow {
		return data.CID{}, nil, errf(ErrLateRecovery, "%s after operation %s (limit %s)", elapsed, first.cid, RecoveryWindow)
	}
	return cid, toNullify, nil
}

// ValidateAuditLog checks a complete audit log (/:did/log/audit: every
// operation ever accepted for did, nullified ones included, in createdAt
// order). Each entry is replayed through the rules of AssimilateOp at its
// createdAt time, and the log must agree with the outcome: every entry's
// DID is did, its CID is the CID of its operation, timestamps never go
// backwards, and exactly the operations that the replay nullifies are
// marked nullified.
func ValidateAuditLog(did syntax.DID, entries []AuditEntry) error {
	if len(entries) == 0 {
		return errf(ErrInvalidLog, "empty audit log")
	}
	hist := make([]histEntry, 0, len(entries))
	for i, e := range entries {
		if e.DID != did {
			return fmt.Errorf("entry %d: %w", i, errf(ErrInvalidLog, "DID %q, expected %s", e.DID, did))
		}
		if i > 0 && e.CreatedAt.Before(entries[i-1].CreatedAt) {
			return fmt.Errorf("entry %d: %w", i, errf(ErrInvalidLog, "createdAt goes backwards"))
		}
		cid, nullIdx, err := assimilate(did, hist, e.Operation, e.CreatedAt)
		if err != nil {
			return fmt.Errorf("entry %d: %w", i, err)
		}
		claimed, err := data.ParseCID(e.CID)
		if err != nil {
			return fmt.Errorf("entry %d: %w", i, errf(ErrInvalidLog, "cid %q: %v", e.CID, err))
		}
		if claimed != cid {
			return fmt.Errorf("entry %d: %w", i, errf(ErrInvalidLog, "cid %s, but the operation's CID is %s", claimed, cid))
		}
		for _, n := range nullIdx {
			hist[n].nullified = true
		}
		hist = append(hist, histEntry{op: e.Operation, cid: cid, createdAt: e.CreatedAt})
	}
	for i, e := range entries {
		if e.Nullified != hist[i].nullified {
			return fmt.Errorf("entry %d: %w", i, errf(ErrInvalidLog, "marked nullified=%t, but replay gives %t", e.Nullified, hist[i].nullified))
		}
	}
	return nil
}
