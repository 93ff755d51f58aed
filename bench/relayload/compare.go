package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"runtime"
	"runtime/pprof"
	"slices"
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

// sample is the comparison's input: #commit frames as the hosts send
// them, each with the index of its host, and the DID documents of their
// accounts. Every account's frames are in its commit order.
type sample struct {
	Frames    [][]byte                   `json:"frames"`
	FrameHost []int                      `json:"frameHost"`
	Hosts     []string                   `json:"hosts"`
	Docs      map[string]json.RawMessage `json:"docs"`
}

func readSample(path string) (*sample, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var s sample
	if err := json.NewDecoder(bufio.NewReaderSize(f, 1<<20)).Decode(&s); err != nil {
		return nil, fmt.Errorf("reading the comparison sample: %w", err)
	}
	if len(s.Frames) != len(s.FrameHost) {
		return nil, errors.New("comparison sample: frames and hosts differ in number")
	}
	return &s, nil
}

// verifier checks every frame of a sample as one implementation's relay
// does for a #commit: frame decoding, the signature with the account's
// cached identity, and the sync 1.1 inversion, carrying each account's
// state from one event to the next.
type verifier interface {
	name() string
	reset() // forget the accounts' state
	verify(frame []byte, host string) error
}

// welkinVerifier is Welkin's path: stream.DecodeFrame, the seq read as
// its consumer reads it, then relay/verify's ParseCommit and VerifyCommit.
type welkinVerifier struct {
	ids   map[syntax.DID]*identity.Identity
	state map[syntax.DID]verify.AccountState
	opts  verify.Options
}

func newWelkinVerifier(s *sample) (*welkinVerifier, error) {
	v := &welkinVerifier{ids: map[syntax.DID]*identity.Identity{}}
	for did, raw := range s.Docs {
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
	v.reset()
	return v, nil
}

func (v *welkinVerifier) name() string { return "Welkin" }
func (v *welkinVerifier) reset()       { v.state = map[syntax.DID]verify.AccountState{} }

func (v *welkinVerifier) verify(frame []byte, host string) error {
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

// indigoVerifier is the path indigo's relay (cmd/relay) takes for each
// #commit, made of the same library calls in the same order: the header
// and event decoded with cbor-gen (its stream consumer), then, as its
// VerifyRepoCommit does, the commit loaded from the CAR slice, its
// structure, rev and signature checked with the key of the cached
// identity (parsed on each event, as the relay does), the event checked
// against the commit and the previous state, and the inversion run by
// atproto/repo.VerifyCommitMessage. The relay only logs a failed
// inversion; here any failure stops the run, so that both sides are seen
// to accept every event.
type indigoVerifier struct {
	ids   map[string]*iidentity.Identity
	state map[string]indigoState
}

type indigoState struct{ rev, data string }

func newIndigoVerifier(s *sample) (*indigoVerifier, error) {
	v := &indigoVerifier{ids: map[string]*iidentity.Identity{}}
	for did, raw := range s.Docs {
		var doc iidentity.DIDDocument
		if err := json.Unmarshal(raw, &doc); err != nil {
			return nil, fmt.Errorf("%s: %w", did, err)
		}
		id := iidentity.ParseIdentity(&doc)
		v.ids[did] = &id
	}
	v.reset()
	return v, nil
}

func (v *indigoVerifier) name() string { return "indigo" }
func (v *indigoVerifier) reset()       { v.state = map[string]indigoState{} }

// Limits of indigo's relay (cmd/relay/relay/verify.go).
const (
	indigoMaxBlocks   = 2_000_000
	indigoMaxOps      = 200
	indigoFutureSlack = 5 * time.Minute
)

func (v *indigoVerifier) verify(frame []byte, _ string) error {
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

// comparison is the outcome of the verification comparison.
type comparison struct {
	events int
	rounds int
	// Median spans of one pass over the sample, by implementation.
	welkin, indigo span
}

// compareVerifiers runs each implementation over the sample rounds times,
// alternating, and keeps the median pass of each. profile, when set,
// receives a CPU profile of Welkin's passes.
func compareVerifiers(s *sample, rounds int, profile string) (comparison, error) {
	w, err := newWelkinVerifier(s)
	if err != nil {
		return comparison{}, err
	}
	in, err := newIndigoVerifier(s)
	if err != nil {
		return comparison{}, err
	}
	var prof *os.File
	if profile != "" {
		if prof, err = os.Create(profile); err != nil {
			return comparison{}, err
		}
		defer prof.Close()
	}
	pass := func(v verifier) (span, error) {
		v.reset()
		runtime.GC()
		if prof != nil && v == verifier(w) {
			if err := pprof.StartCPUProfile(prof); err != nil {
				return span{}, err
			}
			defer pprof.StopCPUProfile()
		}
		m := startMeter()
		for i, f := range s.Frames {
			if err := v.verify(f, s.Hosts[s.FrameHost[i]]); err != nil {
				return span{}, fmt.Errorf("%s, event %d: %w", v.name(), i, err)
			}
		}
		return m.stop(), nil
	}
	var ws, is []span
	for r := range rounds {
		order := []verifier{w, in}
		if r%2 == 1 {
			order = []verifier{in, w}
		}
		for _, v := range order {
			sp, err := pass(v)
			if err != nil {
				return comparison{}, err
			}
			if v == verifier(w) {
				ws = append(ws, sp)
				prof = nil // one profiled pass is enough
			} else {
				is = append(is, sp)
			}
		}
	}
	return comparison{events: len(s.Frames), rounds: rounds, welkin: medianSpan(ws), indigo: medianSpan(is)}, nil
}

// medianSpan is the span of median CPU time.
func medianSpan(s []span) span {
	s = slices.Clone(s)
	slices.SortFunc(s, func(a, b span) int { return int(a.cpu - b.cpu) })
	return s[len(s)/2]
}
