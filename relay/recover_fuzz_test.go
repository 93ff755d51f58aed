package relay

import (
	"bytes"
	"context"
	"testing"

	"github.com/welkin-atproto/welkin/api/atproto"
	"github.com/welkin-atproto/welkin/atproto/car"
	"github.com/welkin-atproto/welkin/atproto/crypto"
	"github.com/welkin-atproto/welkin/atproto/data"
	"github.com/welkin-atproto/welkin/atproto/repo"
	"github.com/welkin-atproto/welkin/atproto/stream"
	"github.com/welkin-atproto/welkin/atproto/syntax"
)

// seedFrames returns a #commit and a #sync frame of one small repository.
func seedFrames(tb testing.TB) (commit, sync []byte) {
	tb.Helper()
	ctx := context.Background()
	key, err := crypto.GenerateK256()
	if err != nil {
		tb.Fatal(err)
	}
	did := syntax.DID("did:plc:aaaaaaaaaaaaaaaaaaaaaaaa")
	r, err := repo.NewRepo(did, repo.NewMemBlockStore())
	if err != nil {
		tb.Fatal(err)
	}
	rec, err := data.MarshalCBOR(map[string]any{"$type": "app.bsky.feed.post", "text": "hi", "createdAt": "2026-03-01T12:00:00.000Z"})
	if err != nil {
		tb.Fatal(err)
	}
	if err := r.Apply(ctx, []repo.RecordWrite{{Action: repo.ActionCreate, Collection: "app.bsky.feed.post", RKey: "a", Value: rec}}); err != nil {
		tb.Fatal(err)
	}
	res, err := r.Commit(ctx, key, repo.NewRevClock(1))
	if err != nil {
		tb.Fatal(err)
	}
	ev := &atproto.SyncSubscribeRepos_Commit{Seq: 1, Repo: string(did), Commit: res.CID, Rev: string(res.Rev), Blocks: res.CAR,
		Blobs: []data.CID{}, Time: "2026-03-01T12:00:00.000Z"}
	for _, op := range res.Ops {
		ev.Ops = append(ev.Ops, &atproto.SyncSubscribeRepos_RepoOp{Action: op.Action, Path: op.Path, Cid: op.CID, Prev: op.Prev})
	}
	if commit, err = stream.EncodeFrame("#commit", ev); err != nil {
		tb.Fatal(err)
	}
	cb, err := r.Store().GetBlock(ctx, res.CID)
	if err != nil {
		tb.Fatal(err)
	}
	var buf bytes.Buffer
	if err := car.WriteAll(&buf, []data.CID{res.CID}, map[data.CID][]byte{res.CID: cb}); err != nil {
		tb.Fatal(err)
	}
	sy := &atproto.SyncSubscribeRepos_Sync{Seq: 2, Did: string(did), Rev: string(res.Rev), Blocks: buf.Bytes(), Time: "2026-03-01T12:00:00.000Z"}
	if sync, err = stream.EncodeFrame("#sync", sy); err != nil {
		tb.Fatal(err)
	}
	return commit, sync
}

// FuzzParseLogState feeds arbitrary bytes as frames of the relay's log to
// the recovery's parser: it never panics, and what it accepts names an
// account and a rev.
func FuzzParseLogState(f *testing.F) {
	commit, sync := seedFrames(f)
	f.Add(commit)
	f.Add(sync)
	f.Add(commit[:len(commit)/2])
	if acc, err := stream.EncodeFrame("#account", map[string]any{"seq": int64(3), "did": "did:plc:aaaaaaaaaaaaaaaaaaaaaaaa", "active": false, "status": "takendown", "time": "2026-03-01T12:00:00.000Z"}); err == nil {
		f.Add(acc)
	}
	f.Add([]byte{0xa2, 0x61, 0x74, 0x65, 0x23, 0x69, 0x6e, 0x66, 0x6f, 0x62, 0x6f, 0x70, 0x01, 0xa0})
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, b []byte) {
		st, ok, err := parseLogState(b)
		if err != nil && ok {
			t.Fatal("ok with an error")
		}
		if ok && (st.did == "" || st.status == "" && (st.rev == "" || !st.data.Defined() || !st.commit.Defined())) {
			t.Fatalf("accepted without an account state: %+v", st)
		}
	})
}

func TestParseLogState(t *testing.T) {
	commit, sync := seedFrames(t)
	for _, f := range [][]byte{commit, sync} {
		st, ok, err := parseLogState(f)
		if err != nil || !ok || st.did != "did:plc:aaaaaaaaaaaaaaaaaaaaaaaa" || st.rev == "" {
			t.Fatalf("parseLogState = %+v, %v, %v", st, ok, err)
		}
	}
	info, err := stream.EncodeFrame("#info", map[string]any{"name": "OutdatedCursor"})
	if err != nil {
		t.Fatal(err)
	}
	if _, ok, err := parseLogState(info); ok || err != nil {
		t.Fatalf("an #info frame: ok %v, err %v", ok, err)
	}
	for _, c := range []struct {
		body map[string]any
		want string
	}{
		{map[string]any{"seq": int64(3), "did": "did:plc:aaaaaaaaaaaaaaaaaaaaaaaa", "active": true, "time": "2026-03-01T12:00:00.000Z"}, "active"},
		{map[string]any{"seq": int64(3), "did": "did:plc:aaaaaaaaaaaaaaaaaaaaaaaa", "active": false, "status": "takendown", "time": "2026-03-01T12:00:00.000Z"}, "takendown"},
		{map[string]any{"seq": int64(3), "did": "did:plc:aaaaaaaaaaaaaaaaaaaaaaaa", "active": false, "time": "2026-03-01T12:00:00.000Z"}, "deactivated"},
	} {
		f, err := stream.EncodeFrame("#account", c.body)
		if err != nil {
			t.Fatal(err)
		}
		if st, ok, err := parseLogState(f); !ok || err != nil || st.status != c.want || st.rev != "" {
			t.Errorf("#account %v: %+v, %v, %v; want status %s", c.body, st, ok, err, c.want)
		}
	}
	if _, ok, err := parseLogState([]byte{0xff}); ok || err == nil {
		t.Fatalf("garbage: ok %v, err %v", ok, err)
	}
}
