package sequencer

import (
	"testing"

	"github.com/welkin-atproto/welkin/api/atproto"
	"github.com/welkin-atproto/welkin/atproto/data"
	"github.com/welkin-atproto/welkin/atproto/stream"
	"github.com/welkin-atproto/welkin/atproto/syntax"
)

// FuzzEncodeEvent feeds arbitrary outbox rows to the decoder that turns
// them into frames: it must return an error or a valid frame carrying the
// seq, never panic.
func FuzzEncodeEvent(f *testing.F) {
	did := testDID(1)
	c := data.CIDForCBOR([]byte("commit"))
	f.Add(KindCommit, commitBody(f, did, "3jzfcijpj2z2a", "", c))
	f.Add(KindCommit, commitBody(f, did, "3jzfcijpj2z2b", "3jzfcijpj2z2a", c))
	f.Add(KindIdentity, identityBody(f, did, "alice.test"))
	f.Add(KindAccount, accountBody(f, did, false, "takendown"))
	sync, err := data.MarshalCBOR(&atproto.SyncSubscribeRepos_Sync{Did: string(did), Rev: "3jzfcijpj2z2a", Blocks: []byte{1, 2}, Time: testTime})
	if err != nil {
		f.Fatal(err)
	}
	f.Add(KindSync, sync)
	f.Add(KindCommit, []byte{0xa0})
	f.Add("other", []byte("x"))
	f.Fuzz(func(t *testing.T, kind string, body []byte) {
		const seq = 12345
		fr, err := encodeEvent(did, kind, body, seq)
		if err != nil {
			return
		}
		h, payload, err := stream.DecodeFrame(fr)
		if err != nil {
			t.Fatalf("encodeEvent made an invalid frame: %v", err)
		}
		if h.Op != stream.OpMessage || h.T != "#"+kind {
			t.Fatalf("header %+v for kind %q", h, kind)
		}
		if got, ok, err := stream.BodyInt(payload, "seq"); err != nil || !ok || got != seq {
			t.Fatalf("frame seq = %d, %v, %v", got, ok, err)
		}
		owner := "did"
		if kind == KindCommit {
			owner = "repo"
		}
		if got, _, _ := stream.BodyString(payload, owner); syntax.DID(got) != did {
			t.Fatalf("frame %s = %q", owner, got)
		}
	})
}
