// Package relayverify runs #commit frames through the checks a relay
// makes of each, as Welkin's relay does and as indigo's relay does, so
// that the benchmarks of this module and bench/relayload time the same
// work on both sides.
package relayverify

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	icomatproto "github.com/bluesky-social/indigo/api/atproto"
	iidentity "github.com/bluesky-social/indigo/atproto/identity"
	irepo "github.com/bluesky-social/indigo/atproto/repo"
	isyntax "github.com/bluesky-social/indigo/atproto/syntax"
	istream "github.com/bluesky-social/indigo/cmd/relay/stream"

	"github.com/welkin-atproto/welkin/atproto/identity"
	"github.com/welkin-atproto/welkin/atproto/stream"
	"github.com/welkin-atproto/welkin/atproto/syntax"
	"github.com/welkin-atproto/welkin/relay/verify"
)

// Verifier checks #commit frames as one implementation's relay does:
// frame decoding, the signature with the account's cached identity, and
// the sync 1.1 inversion, carrying each account's state from one event to
// the next. host is where the frame came from.
type Verifier interface {
	Name() string
	Reset() // forget the accounts' state
	Verify(frame []byte, host string) error
}

// Welkin is Welkin's path: stream.DecodeFrame, the seq read as
// its consumer reads it, then relay/verify's ParseCommit and VerifyCommit.
type Welkin struct {
	ids   map[syntax.DID]*identity.Identity
	state map[syntax.DID]verify.AccountState
	opts  verify.Options
}

// NewWelkin returns Welkin's path with the identities of the DID
// documents in docs (JSON, by DID).
func NewWelkin(docs map[string]json.RawMessage) (*Welkin, error) {
	v := &Welkin{ids: map[syntax.DID]*identity.Identity{}}
	for did, raw := range docs {
		doc, err := identity.ParseDIDDocument(raw)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", did, err)
		}
		id, err := identity.NewIdentity(doc)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", did, err)
		}
		v.ids[syntax.DID(did)] = id
	}
	v.Reset()
	return v, nil
}

// Name implements Verifier.
func (v *Welkin) Name() string { return "Welkin" }

// Reset implements Verifier.
func (v *Welkin) Reset() { v.state = map[syntax.DID]verify.AccountState{} }

// Verify implements Verifier.
func (v *Welkin) Verify(frame []byte, host string) error {
	h, body, err := stream.DecodeFrame(frame)
	if err != nil {
		return err
	}
	if h.T != "#commit" {
		return fmt.Errorf("frame of type %q", h.T)
	}
	if _, _, err := stream.BodyInt(body, "seq"); err != nil {
		return err
	}
	c, _, err := verify.ParseCommit(body, &v.opts)
	if err != nil {
		return err
	}
	id, ok := v.ids[c.DID()]
	if !ok {
		return fmt.Errorf("no identity for %s", c.DID())
	}
	res := verify.VerifyCommit(c, host, id, v.state[c.DID()], &v.opts)
	if !res.OK || res.Reason != verify.ReasonNone {
		return fmt.Errorf("%s rev %s: %s: %v", c.DID(), c.Rev(), res.Reason, res.Err)
	}
	v.state[c.DID()] = res.NewState
	return nil
}

// Indigo is the path indigo's relay (cmd/relay) takes for each
// #commit, made of the same library calls in the same order: the header
// and event decoded with cbor-gen (its stream consumer), then, as its
// VerifyRepoCommit does, the commit loaded from the CAR slice, its
// structure, rev and signature checked with the key of the cached
// identity (parsed on each event, as the relay does), the event checked
// against the commit and the previous state, and the inversion run by
// atproto/repo.VerifyCommitMessage. The relay only logs a failed
// inversion; here any failure stops the run, so that both sides are seen
// to accept every event.
type Indigo struct {
	ids   map[string]*iidentity.Identity
	state map[string]indigoState
}

type indigoState struct{ rev, data string }

// NewIndigo returns indigo's path with the identities of the DID
// documents in docs (JSON, by DID).
func NewIndigo(docs map[string]json.RawMessage) (*Indigo, error) {
	v := &Indigo{ids: map[string]*iidentity.Identity{}}
	for did, raw := range docs {
		var doc iidentity.DIDDocument
		if err := json.Unmarshal(raw, &doc); err != nil {
			return nil, fmt.Errorf("%s: %w", did, err)
		}
		id := iidentity.ParseIdentity(&doc)
		v.ids[did] = &id
	}
	v.Reset()
	return v, nil
}

// Name implements Verifier.
func (v *Indigo) Name() string { return "indigo" }

// Reset implements Verifier.
func (v *Indigo) Reset() { v.state = map[string]indigoState{} }

// Limits of indigo's relay (cmd/relay/relay/verify.go).
const (
	indigoMaxBlocks   = 2_000_000
	indigoMaxOps      = 200
	indigoFutureSlack = 5 * time.Minute
)

// Verify implements Verifier.
func (v *Indigo) Verify(frame []byte, _ string) error {
	ctx := context.Background()
	r := bytes.NewReader(frame)
	var h istream.EventHeader
	if err := h.UnmarshalCBOR(r); err != nil {
		return err
	}
	if h.Op != istream.EvtKindMessage || h.MsgType != "#commit" {
		return fmt.Errorf("frame op %d type %q", h.Op, h.MsgType)
	}
	var evt icomatproto.SyncSubscribeRepos_Commit
	if err := evt.UnmarshalCBOR(r); err != nil {
		return err
	}
	ident, ok := v.ids[evt.Repo]
	if !ok {
		return fmt.Errorf("no identity for %s", evt.Repo)
	}
	if len(evt.Blocks) > indigoMaxBlocks || len(evt.Ops) > indigoMaxOps {
		return errors.New("event over the limits")
	}
	commit, commitCID, err := irepo.LoadCommitFromCAR(ctx, bytes.NewReader(evt.Blocks))
	if err != nil {
		return err
	}
	if err := commit.VerifyStructure(); err != nil {
		return err
	}
	rev, err := isyntax.ParseTID(commit.Rev)
	if err != nil {
		return err
	}
	if rev.Time().After(time.Now().Add(indigoFutureSlack)) {
		return errors.New("rev in the future")
	}
	key, err := ident.PublicKey()
	if err != nil {
		return err
	}
	if err := commit.VerifySignature(key); err != nil {
		return err
	}
	if evt.Repo != commit.DID || evt.Rev != commit.Rev {
		return errors.New("event and commit differ")
	}
	if len(evt.Blocks) == 0 || evt.TooBig || evt.PrevData == nil {
		return errors.New("event cannot be inverted")
	}
	if prev, ok := v.state[evt.Repo]; ok {
		if evt.PrevData.String() != prev.data || evt.Since == nil || *evt.Since != prev.rev {
			return errors.New("event does not follow the previous commit")
		}
		if evt.Rev <= prev.rev {
			return errors.New("rev out of order")
		}
	}
	if _, err := irepo.VerifyCommitMessage(ctx, &evt); err != nil {
		return err
	}
	if evt.Rebase {
		return errors.New("rebase flag set")
	}
	if _, err := isyntax.ParseDatetime(evt.Time); err != nil {
		return err
	}
	v.state[evt.Repo] = indigoState{rev: commit.Rev, data: commit.Data.String()}
	_ = commitCID.String() // the relay keeps it as a string
	return nil
}
