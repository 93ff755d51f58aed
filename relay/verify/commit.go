package verify

import (
	"errors"
	"fmt"
	"time"

	"github.com/welkin-atproto/welkin/api/atproto"
	"github.com/welkin-atproto/welkin/api/lexutil"
	"github.com/welkin-atproto/welkin/atproto/data"
	"github.com/welkin-atproto/welkin/atproto/repo"
	"github.com/welkin-atproto/welkin/atproto/syntax"
)

// Commit is a #commit event parsed once by ParseCommit: the event, the
// signed commit from its CAR slice and the slice's blocks, which the
// signature check and the inversion both use and which the caller may read
// (record blocks for indexing, say). Nothing in it may be modified.
type Commit struct {
	// Event is the decoded event.
	Event *atproto.SyncSubscribeRepos_Commit
	// Commit is the signed commit, the CAR slice's first root.
	Commit *repo.Commit
	// Blocks holds the CAR slice's blocks by CID, each checked against
	// its CID.
	Blocks map[data.CID][]byte

	did         syntax.DID
	rev         syntax.TID
	commitBlock []byte
	ops         []repo.Op
}

// DID returns the repository's DID, checked and equal to the commit's.
func (c *Commit) DID() syntax.DID { return c.did }

// Rev returns the commit's rev, checked and equal to the event's.
func (c *Commit) Rev() syntax.TID { return c.rev }

// Ops returns the event's ops in the form repo.InvertOps takes. The slice
// is shared; do not modify it.
func (c *Commit) Ops() []repo.Op { return c.ops }

// ParseCommit decodes the body of a #commit event (the frame's payload,
// after stream.DecodeFrame) and its CAR slice, and checks everything that
// needs neither the account's identity nor its state: the size limits,
// the event's fields (DID, rev, time, commit CID, ops), the CAR slice
// (format, every block against its CID, the commit block as its first
// root), the signed commit's form and its agreement with the event (DID,
// rev), and the presence and form of the record block of each create and
// update. On failure the Commit is nil and the Reason says why.
func ParseCommit(body []byte, o *Options) (*Commit, Reason, error) {
	l := o.limits()
	if len(body) > l.maxFrame {
		return nil, ReasonFrameTooLarge, fmt.Errorf("event body is %d bytes, more than %d", len(body), l.maxFrame)
	}
	ev := new(atproto.SyncSubscribeRepos_Commit)
	if err := lexutil.UnmarshalCBOR(body, ev); err != nil {
		return nil, ReasonBadCBOR, fmt.Errorf("decoding #commit: %w", err)
	}
	if len(ev.Blocks) > l.maxBlocks {
		return nil, ReasonBlocksTooLarge, fmt.Errorf("blocks field is %d bytes, more than %d", len(ev.Blocks), l.maxBlocks)
	}
	if len(ev.Ops) > l.maxOps {
		return nil, ReasonTooManyOps, fmt.Errorf("%d ops, more than %d", len(ev.Ops), l.maxOps)
	}
	did, err := syntax.ParseDID(ev.Repo)
	if err != nil {
		return nil, ReasonBadDID, fmt.Errorf("repo: %w", err)
	}
	rev, err := syntax.ParseTID(ev.Rev)
	if err != nil {
		return nil, ReasonBadEvent, fmt.Errorf("rev: %w", err)
	}
	if ev.Since != nil {
		if _, err := syntax.ParseTID(*ev.Since); err != nil {
			return nil, ReasonBadEvent, fmt.Errorf("since: %w", err)
		}
	}
	if _, err := syntax.ParseDatetime(ev.Time); err != nil {
		return nil, ReasonBadEvent, fmt.Errorf("time: %w", err)
	}
	if !ev.Commit.Defined() {
		return nil, ReasonBadEvent, errors.New("no commit CID")
	}
	if ev.PrevData != nil && !ev.PrevData.Defined() {
		return nil, ReasonBadEvent, errors.New("undefined prevData CID")
	}
	if len(ev.Blocks) == 0 {
		return nil, ReasonBadEvent, errors.New("empty blocks field")
	}
	ops, reason, err := convertOps(ev.Ops)
	if err != nil {
		return nil, reason, err
	}

	root, blocks, err := readCAR(ev.Blocks, l.maxRecord)
	if err != nil {
		var ce *carError
		if errors.As(err, &ce) {
			return nil, ce.reason, err
		}
		return nil, ReasonBadCAR, err
	}
	if root != ev.Commit {
		return nil, ReasonCommitMismatch, fmt.Errorf("event commit %s is not the CAR slice's first root %s", ev.Commit, root)
	}
	cb, ok := blocks[root]
	if !ok {
		return nil, ReasonMissingBlock, fmt.Errorf("commit block %s is not in the CAR slice", root)
	}
	cm, err := repo.ParseCommit(cb)
	if err != nil {
		return nil, ReasonBadCommit, fmt.Errorf("commit %s: %w", root, err)
	}
	if cm.DID != did {
		return nil, ReasonCommitMismatch, fmt.Errorf("event repo %s, signed commit's did %s", did, cm.DID)
	}
	if cm.Rev != rev {
		return nil, ReasonCommitMismatch, fmt.Errorf("event rev %s, signed commit's rev %s", rev, cm.Rev)
	}
	for i := range ops {
		op := &ops[i]
		if op.CID == nil {
			continue
		}
		b, ok := blocks[*op.CID]
		if !ok {
			return nil, ReasonMissingBlock, fmt.Errorf("op %d (%s %s): record block %s is not in the CAR slice", i, op.Action, op.Path, *op.CID)
		}
		if err := checkRecord(b); err != nil {
			return nil, ReasonBadRecord, fmt.Errorf("op %d (%s %s): record %s: %w", i, op.Action, op.Path, *op.CID, err)
		}
	}
	return &Commit{Event: ev, Commit: cm, Blocks: blocks, did: did, rev: rev, commitBlock: cb, ops: ops}, ReasonNone, nil
}

// convertOps checks the event's ops and returns them as repo.Ops, which
// share the event's CIDs. A missing prev on an update or delete is left
// for the inversion to report: it is how hosts from before sync 1.1 write
// ops, which Options.Lenient lets through.
func convertOps(in []*atproto.SyncSubscribeRepos_RepoOp) ([]repo.Op, Reason, error) {
	ops := make([]repo.Op, len(in))
	for i, op := range in {
		if op == nil {
			return nil, ReasonBadOp, fmt.Errorf("op %d is null", i)
		}
		if !repo.ValidMSTKey(op.Path) {
			return nil, ReasonBadOp, fmt.Errorf("op %d: invalid path %q", i, op.Path)
		}
		if op.Cid != nil && !op.Cid.Defined() || op.Prev != nil && !op.Prev.Defined() {
			return nil, ReasonBadOp, fmt.Errorf("op %d (%s): undefined CID", i, op.Path)
		}
		switch op.Action {
		case repo.ActionCreate:
			if op.Cid == nil {
				return nil, ReasonBadOp, fmt.Errorf("op %d: create of %s without a cid", i, op.Path)
			}
			if op.Prev != nil {
				return nil, ReasonBadOp, fmt.Errorf("op %d: create of %s with a prev", i, op.Path)
			}
		case repo.ActionUpdate:
			if op.Cid == nil {
				return nil, ReasonBadOp, fmt.Errorf("op %d: update of %s without a cid", i, op.Path)
			}
		case repo.ActionDelete:
			if op.Cid != nil {
				return nil, ReasonBadOp, fmt.Errorf("op %d: delete of %s with a cid", i, op.Path)
			}
		default:
			return nil, ReasonBadOp, fmt.Errorf("op %d: unknown action %q", i, op.Action)
		}
		ops[i] = repo.Op{Action: op.Action, Path: op.Path, CID: op.Cid, Prev: op.Prev}
	}
	return ops, ReasonNone, nil
}

// checkRecord is the relay's light check of a record block: a DAG-CBOR
// map whose "$type" is a non-empty string. It reads only the keys up to
// "$type" and allocates nothing; full validation of record contents is
// left to the services that index them, as the sync specification asks of
// relays.
func checkRecord(b []byte) error {
	d := data.NewDecoder(b)
	if d.PeekKind() != data.KindMap {
		return errors.New("not a DAG-CBOR map")
	}
	t, err := lexutil.PeekTypeView(d)
	if err != nil {
		return fmt.Errorf("not a DAG-CBOR map: %w", err)
	}
	if len(t) == 0 {
		return errors.New(`no "$type" string`)
	}
	return nil
}

// Verdict is the outcome of checking one event.
type Verdict struct {
	// OK is true when the event may be passed on.
	OK bool
	// Reason is why the event was rejected, or, when OK, the notable
	// condition it was accepted with (ReasonSinceGap,
	// ReasonPrevDataMismatch, or in lenient mode ReasonInversionMismatch
	// and ReasonMissingPrevData); ReasonNone otherwise.
	Reason Reason
	// Err describes the fault Reason names; nil when Reason is ReasonNone.
	Err error
	// NewState is the account's state after the event: the event's rev,
	// data and commit when OK, the state given otherwise.
	NewState AccountState
	// Resync is set when the event showed the chain of commits broken
	// (since or prevData not those of the last accepted commit): the
	// relay should re-synchronize the repository (getRepo, or a #sync
	// from its host). NewState.Desync is then set too.
	Resync bool
}

func reject(st AccountState, r Reason, err error) Verdict {
	return Verdict{Reason: r, Err: err, NewState: st}
}

// checkAccount applies the checks shared by #commit and #sync that need
// the identity and the account state but not the commit: the event came
// from the account's PDS and the account is active.
func checkAccount(host string, id Identity, st *AccountState) (Reason, error) {
	if r, err := CheckHost(host, id); r != ReasonNone {
		return r, err
	}
	if !st.Active() {
		return ReasonInactiveAccount, fmt.Errorf("account status is %q", st.Status)
	}
	return ReasonNone, nil
}

// checkRev checks a new rev against the clock and the last accepted rev.
func checkRev(rev syntax.TID, st *AccountState, l *limits) (Reason, error) {
	ts := int64(rev.Integer() >> 10) // microseconds since the epoch
	if limit := l.now().Add(l.maxFuture).UnixMicro(); ts > limit {
		return ReasonFutureRev, fmt.Errorf("rev %s is at %s, more than %s ahead of the clock",
			rev, rev.Time().Format(time.RFC3339Nano), l.maxFuture)
	}
	if st.Rev != "" {
		// TIDs of the same length sort as the integers they encode.
		switch {
		case rev == st.Rev:
			return ReasonDuplicateRev, fmt.Errorf("rev %s is the last accepted rev", rev)
		case rev < st.Rev:
			return ReasonRevRollback, fmt.Errorf("rev %s is lower than the last accepted rev %s", rev, st.Rev)
		}
	}
	return ReasonNone, nil
}

// verifySig checks the commit's signature with the identity's key.
func verifySig(id Identity, block []byte, sig []byte) (Reason, error) {
	key, err := id.SigningKey()
	if err != nil {
		return ReasonNoSigningKey, fmt.Errorf("identity has no signing key: %w", err)
	}
	if key == nil {
		return ReasonNoSigningKey, errors.New("identity has no signing key")
	}
	var buf [256]byte
	msg, err := unsignedCommit(block, buf[:])
	if err != nil {
		return ReasonBadCommit, err
	}
	return checkSignature(key, msg, sig)
}

// VerifyCommit checks a parsed #commit event, from host, against the
// account's identity and its state, in order: the host is the account's
// PDS; the account is active; the rev is not in the future and is above
// the last accepted one; since is the last accepted rev; the signature;
// and the sync 1.1 inversion (the ops undone on the slice's tree give the
// event's prevData, which must be the last accepted data root). The event
// is rejected at the first fault, except that a broken chain (since or
// prevData mismatch) is accepted with Resync, and in lenient mode an
// inversion failure is accepted with its Reason. host is where the event
// came from, as "hostname[:port]" or a URL. c must come from ParseCommit.
func VerifyCommit(c *Commit, host string, id Identity, st AccountState, o *Options) Verdict {
	if c == nil || c.Event == nil || c.Commit == nil {
		return reject(st, ReasonBadEvent, errors.New("commit was not parsed by ParseCommit"))
	}
	l := o.limits()
	if r, err := checkAccount(host, id, &st); r != ReasonNone {
		return reject(st, r, err)
	}
	if r, err := checkRev(c.rev, &st, &l); r != ReasonNone {
		return reject(st, r, err)
	}
	ev := c.Event

	// The chain: since must be the last accepted rev. A break is noted,
	// and the event still checked in full.
	var (
		note    Reason
		noteErr error
		resync  bool
	)
	if st.Rev != "" && (ev.Since == nil || syntax.TID(*ev.Since) != st.Rev) {
		since := "null"
		if ev.Since != nil {
			since = *ev.Since
		}
		note, noteErr, resync = ReasonSinceGap, fmt.Errorf("since %s, but the last accepted rev is %s", since, st.Rev), true
	}

	if r, err := verifySig(id, c.commitBlock, c.Commit.Sig); r != ReasonNone {
		return reject(st, r, err)
	}

	if r, err := c.invert(&st); r != ReasonNone {
		if !l.lenient {
			return reject(st, r, err)
		}
		note, noteErr = r, err
	}
	if ev.PrevData != nil && st.Data != nil && *ev.PrevData != *st.Data {
		if note == ReasonNone {
			note, noteErr = ReasonPrevDataMismatch, fmt.Errorf("prevData %s, but the last accepted data is %s", *ev.PrevData, *st.Data)
		}
		resync = true
	}

	data, commit := c.Commit.Data, ev.Commit
	return Verdict{
		OK:     true,
		Reason: note,
		Err:    noteErr,
		Resync: resync,
		NewState: AccountState{
			Rev:    c.rev,
			Data:   &data,
			Commit: &commit,
			Status: st.Status,
			Desync: st.Desync || resync,
		},
	}
}

// invert runs the sync 1.1 check: the ops, undone on the tree the slice
// holds, must give back prevData. An event without prevData passes only
// as the repository's first commit (no since, no known state), whose ops
// must then undo to the empty tree.
func (c *Commit) invert(st *AccountState) (Reason, error) {
	ev := c.Event
	want := ev.PrevData
	if want == nil {
		if ev.Since != nil || st.Rev != "" || st.Data != nil {
			return ReasonMissingPrevData, errors.New("no prevData: the ops cannot be checked against the previous tree")
		}
		if len(c.ops) == 0 {
			return ReasonNone, nil
		}
		empty, err := repo.NewTree().Root()
		if err != nil {
			return ReasonInversionMismatch, err
		}
		want = &empty
	}
	got, err := repo.InvertOps(c.Blocks, c.Commit.Data, c.ops)
	if err != nil {
		return ReasonInversionMismatch, err
	}
	if got != *want {
		return ReasonInversionMismatch, fmt.Errorf("the ops undone give data %s, but prevData is %s", got, *want)
	}
	return ReasonNone, nil
}
