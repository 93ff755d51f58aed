package bench

import (
	"encoding/json"
	"testing"

	"github.com/welkin-atproto/welkin/api/atproto"
	"github.com/welkin-atproto/welkin/atproto/crypto"
	"github.com/welkin-atproto/welkin/atproto/data"
	"github.com/welkin-atproto/welkin/atproto/repo"
	"github.com/welkin-atproto/welkin/atproto/stream"
	"github.com/welkin-atproto/welkin/atproto/syntax"
	"github.com/welkin-atproto/welkin/bench/internal/relayverify"
)

// relayHost is the PDS the relay benchmarks' events come from.
const relayHost = "pds.example.com"

// relayEvent is a #commit frame creating one record on a 10,000-record
// repository (the event of BenchmarkRepoInvertOneOp, as a frame), signed
// with K-256, and the DID document of its account.
func relayEvent(tb testing.TB) ([]byte, map[string]json.RawMessage) {
	tb.Helper()
	recs := repoRecords(tb, repoSmall)
	keys := repoKeys(tb)
	t, err := repo.BuildTree(welkinMap(recs))
	if err != nil {
		tb.Fatal(err)
	}
	if _, err := t.CommitSlice(); err != nil {
		tb.Fatal(err)
	}
	fresh := repoRecordN(tb, repoSmall)
	ev := makeCommitSlice(tb, t, keys.welkin, "create", fresh.key, &fresh, syntax.NewTID(repoTIDStart+int64(repoSmall+5)*repoTIDStep, 7))
	return relayFrame(tb, ev, 1), relayDocs(tb, keys.welkin.Public())
}

// relayFrame is the #commit frame of a commit slice.
func relayFrame(tb testing.TB, ev commitSlice, seq int64) []byte {
	tb.Helper()
	prev := ev.prevData
	c := &atproto.SyncSubscribeRepos_Commit{
		Seq: seq, Repo: repoDID, Commit: ev.commit, Rev: string(ev.rev), Blocks: ev.car,
		Blobs: []data.CID{}, PrevData: &prev, Time: "2026-01-01T00:00:00.000Z",
	}
	for _, op := range ev.ops {
		c.Ops = append(c.Ops, &atproto.SyncSubscribeRepos_RepoOp{Action: op.Action, Path: op.Path, Cid: op.CID, Prev: op.Prev})
	}
	f, err := stream.EncodeFrame("#commit", c)
	if err != nil {
		tb.Fatal(err)
	}
	return f
}

// relayDocs is the DID document of the benchmarks' account, whose
// #atproto key is key.
func relayDocs(tb testing.TB, key crypto.PublicKey) map[string]json.RawMessage {
	tb.Helper()
	doc, err := json.Marshal(map[string]any{
		"id": repoDID,
		"verificationMethod": []map[string]string{{
			"id": repoDID + "#atproto", "type": "Multikey", "controller": repoDID, "publicKeyMultibase": key.Multibase(),
		}},
		"service": []map[string]string{{
			"id": "#atproto_pds", "type": "AtprotoPersonalDataServer", "serviceEndpoint": "https://" + relayHost,
		}},
	})
	if err != nil {
		tb.Fatal(err)
	}
	return map[string]json.RawMessage{repoDID: doc}
}

func relayVerifiers(tb testing.TB, docs map[string]json.RawMessage) []relayverify.Verifier {
	tb.Helper()
	w, err := relayverify.NewWelkin(docs)
	if err != nil {
		tb.Fatal(err)
	}
	in, err := relayverify.NewIndigo(docs)
	if err != nil {
		tb.Fatal(err)
	}
	return []relayverify.Verifier{w, in}
}

// BenchmarkRelayVerifyCommit checks that #commit frame as each relay does
// (the frame decoded, the signature verified with the account's cached
// key, the op inverted on the slice and the result compared with
// prevData; see bench/internal/relayverify), for an account the relay
// has no state for yet.
func BenchmarkRelayVerifyCommit(b *testing.B) {
	frame, docs := relayEvent(b)
	for _, v := range relayVerifiers(b, docs) {
		name := "impl=welkin"
		if v.Name() == "indigo" {
			name = "impl=indigo"
		}
		b.Run(name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				v.Reset()
				if err := v.Verify(frame, relayHost); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// TestRelayVerifyAgreement checks that both relays' checks accept the
// benchmark's frame, and both refuse it with a broken signature or a
// prevData that is not the one the op undoes to.
func TestRelayVerifyAgreement(t *testing.T) {
	frame, docs := relayEvent(t)
	vs := relayVerifiers(t, docs)
	for _, v := range vs {
		if err := v.Verify(frame, relayHost); err != nil {
			t.Errorf("%s refuses the frame: %v", v.Name(), err)
		}
	}
	other, err := crypto.GenerateK256()
	if err != nil {
		t.Fatal(err)
	}
	for _, v := range relayVerifiers(t, relayDocs(t, other.Public())) {
		if err := v.Verify(frame, relayHost); err == nil {
			t.Errorf("%s accepts the frame signed by another key", v.Name())
		}
	}
	// The event of another create: its prevData is not the tree the
	// first event's op undoes to.
	recs := repoRecords(t, repoSmall)
	tree, err := repo.BuildTree(welkinMap(recs[:repoSmall-1]))
	if err != nil {
		t.Fatal(err)
	}
	fresh := repoRecordN(t, repoSmall)
	ev := makeCommitSlice(t, tree, repoKeys(t).welkin, "create", fresh.key, &fresh, syntax.NewTID(repoTIDStart+int64(repoSmall+5)*repoTIDStep, 7))
	ev.prevData = data.CIDForCBOR([]byte{0xa0})
	bad := relayFrame(t, ev, 1)
	for _, v := range vs {
		v.Reset()
		if err := v.Verify(bad, relayHost); err == nil {
			t.Errorf("%s accepts a prevData the op does not undo to", v.Name())
		}
	}
}
