package verify

import (
	"errors"
	"fmt"

	"github.com/welkin-atproto/welkin/api/atproto"
	"github.com/welkin-atproto/welkin/api/lexutil"
	"github.com/welkin-atproto/welkin/atproto/data"
	"github.com/welkin-atproto/welkin/atproto/repo"
	"github.com/welkin-atproto/welkin/atproto/syntax"
)

// Sync is a #sync event parsed once by ParseSync: the event and the signed
// commit its CAR slice carries. Nothing in it may be modified.
type Sync struct {
	// Event is the decoded event.
	Event *atproto.SyncSubscribeRepos_Sync
	// Commit is the signed commit, the CAR slice's first root.
	Commit *repo.Commit
	// CID is the commit's CID.
	CID data.CID

	did         syntax.DID
	rev         syntax.TID
	commitBlock []byte
}

// DID returns the repository's DID, checked and equal to the commit's.
func (s *Sync) DID() syntax.DID { return s.did }

// Rev returns the commit's rev, checked and equal to the event's.
func (s *Sync) Rev() syntax.TID { return s.rev }

// ParseSync decodes the body of a #sync event and checks what needs
// neither the account's identity nor its state: the size limits
// (Options.MaxSyncBlocksSize for the CAR slice), the event's fields (DID,
// rev, time), the CAR slice (format, every block against its CID, the
// commit block as its first root), and the signed commit's form and its
// agreement with the event (DID, rev). Blocks other than the commit are
// allowed (within the size limit) and ignored. On failure the Sync is nil
// and the Reason says why.
func ParseSync(body []byte, o *Options) (*Sync, Reason, error) {
	l := o.limits()
	if len(body) > l.maxFrame {
		return nil, ReasonFrameTooLarge, fmt.Errorf("event body is %d bytes, more than %d", len(body), l.maxFrame)
	}
	ev := new(atproto.SyncSubscribeRepos_Sync)
	if err := lexutil.UnmarshalCBOR(body, ev); err != nil {
		return nil, ReasonBadCBOR, fmt.Errorf("decoding #sync: %w", err)
	}
	if len(ev.Blocks) > l.maxSyncBlocks {
		return nil, ReasonBlocksTooLarge, fmt.Errorf("blocks field is %d bytes, more than %d", len(ev.Blocks), l.maxSyncBlocks)
	}
	did, err := syntax.ParseDID(ev.Did)
	if err != nil {
		return nil, ReasonBadDID, fmt.Errorf("did: %w", err)
	}
	rev, err := syntax.ParseTID(ev.Rev)
	if err != nil {
		return nil, ReasonBadEvent, fmt.Errorf("rev: %w", err)
	}
	if _, err := syntax.ParseDatetime(ev.Time); err != nil {
		return nil, ReasonBadEvent, fmt.Errorf("time: %w", err)
	}
	if len(ev.Blocks) == 0 {
		return nil, ReasonBadEvent, errors.New("empty blocks field")
	}
	root, blocks, err := readCAR(ev.Blocks, l.maxRecord)
	if err != nil {
		var ce *carError
		if errors.As(err, &ce) {
			return nil, ce.reason, err
		}
		return nil, ReasonBadCAR, err
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
		return nil, ReasonCommitMismatch, fmt.Errorf("event did %s, signed commit's did %s", did, cm.DID)
	}
	if cm.Rev != rev {
		return nil, ReasonCommitMismatch, fmt.Errorf("event rev %s, signed commit's rev %s", rev, cm.Rev)
	}
	return &Sync{Event: ev, Commit: cm, CID: root, did: did, rev: rev, commitBlock: cb}, ReasonNone, nil
}

// VerifySync checks a parsed #sync event, from host, against the account's
// identity and state, in order: the host is the account's PDS; the account
// is active; the rev is not in the future and is above the last accepted
// one; and the signature. An accepted #sync re-anchors the chain of
// commits: NewState takes its rev, data and commit, and Desync is cleared.
// A relay keeps no records, so it has nothing to fetch: Resync stays false,
// and consumers downstream, which see the #sync, resynchronize themselves.
// s must come from ParseSync.
func VerifySync(s *Sync, host string, id Identity, st AccountState, o *Options) Verdict {
	if s == nil || s.Event == nil || s.Commit == nil {
		return reject(st, ReasonBadEvent, errors.New("sync was not parsed by ParseSync"))
	}
	l := o.limits()
	if r, err := checkAccount(host, id, &st); r != ReasonNone {
		return reject(st, r, err)
	}
	if r, err := checkRev(s.rev, &st, &l); r != ReasonNone {
		return reject(st, r, err)
	}
	if r, err := verifySig(id, s.commitBlock, s.Commit.Sig); r != ReasonNone {
		return reject(st, r, err)
	}
	data, commit := s.Commit.Data, s.CID
	return Verdict{
		OK: true,
		NewState: AccountState{
			Rev:    s.rev,
			Data:   &data,
			Commit: &commit,
			Status: st.Status,
		},
	}
}
