package actorstore

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"testing"

	"github.com/welkin-atproto/welkin/atproto/crypto"
	"github.com/welkin-atproto/welkin/atproto/data"
	"github.com/welkin-atproto/welkin/atproto/repo"
	"github.com/welkin-atproto/welkin/atproto/syntax"
)

// syncCommit applies n record creations (keys prefix-0..n-1) to the stored
// repository of st as one commit and stores it.
func syncCommit(t *testing.T, st *Store, key crypto.PrivateKey, clock *repo.RevClock, prefix string, n int) *repo.CommitResult {
	t.Helper()
	ctx := context.Background()
	head, _, ok, err := st.Head(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var r *repo.Repo
	if ok {
		r, err = repo.OpenRepo(ctx, st.CommitStore(), head)
	} else {
		r, err = repo.NewRepo(st.DID(), st.CommitStore())
	}
	if err != nil {
		t.Fatal(err)
	}
	writes := make([]repo.RecordWrite, n)
	for i := range writes {
		v, err := data.MarshalCBOR(map[string]any{"$type": "app.bsky.feed.post", "text": fmt.Sprintf("%s %d", prefix, i), "createdAt": "2024-01-02T03:04:05.000Z"})
		if err != nil {
			t.Fatal(err)
		}
		writes[i] = repo.RecordWrite{Action: repo.ActionCreate, Collection: "app.bsky.feed.post",
			RKey: syntax.RecordKey(fmt.Sprintf("%s-%04d", prefix, i)), Value: v}
	}
	if n > 0 {
		if err := r.Apply(ctx, writes); err != nil {
			t.Fatal(err)
		}
	}
	res, err := r.Commit(ctx, key, clock)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := st.ApplyCommit(ctx, res, []byte("event")); err != nil {
		t.Fatal(err)
	}
	return res
}

func collectSince(t *testing.T, st *Store, since string) map[data.CID][]byte {
	t.Helper()
	got := map[data.CID][]byte{}
	err := st.BlocksSince(context.Background(), since, func(c data.CID, b []byte) error {
		if _, dup := got[c]; dup {
			t.Errorf("block %s visited twice", c)
		}
		got[c] = b
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return got
}

func TestBlocksSince(t *testing.T) {
	st, err := Open(t.Context(), t.TempDir(), "did:plc:blockssincetest0000000000")
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	key, err := crypto.GenerateK256()
	if err != nil {
		t.Fatal(err)
	}
	clock := repo.NewRevClock(0)
	// Three commits of 200 records each: more than one page per walk.
	var results []*repo.CommitResult
	for i := range 3 {
		results = append(results, syncCommit(t, st, key, clock, fmt.Sprintf("c%d", i), 200))
	}
	// A block's rev is the first commit that stored it.
	first := map[data.CID]syntax.TID{}
	all := map[data.CID][]byte{}
	for _, res := range results {
		for c, b := range res.Blocks {
			if _, ok := first[c]; !ok {
				first[c] = res.Rev
			}
			all[c] = b
		}
	}
	if len(all) <= BlockPageSize {
		t.Fatalf("test needs more than one page, has %d blocks", len(all))
	}

	got := collectSince(t, st, "")
	if len(got) != len(all) {
		t.Fatalf("BlocksSince(\"\") = %d blocks, want %d", len(got), len(all))
	}
	for c, b := range all {
		if !bytes.Equal(got[c], b) {
			t.Fatalf("block %s differs or is missing", c)
		}
	}

	for i, res := range results {
		since := string(res.Rev)
		got := collectSince(t, st, since)
		want := 0
		for c, rev := range first {
			if string(rev) > since {
				want++
				if _, ok := got[c]; !ok {
					t.Errorf("since commit %d: block %s of rev %s missing", i, c, rev)
				}
			}
		}
		if len(got) != want {
			t.Errorf("since commit %d: %d blocks, want %d", i, len(got), want)
		}
		for c := range got {
			if string(first[c]) <= since {
				t.Errorf("since commit %d: block %s of rev %s is not newer", i, c, first[c])
			}
		}
	}
	// The head's own blocks include its commit.
	if _, ok := collectSince(t, st, string(results[1].Rev))[results[2].CID]; !ok {
		t.Error("the latest commit block is not among the blocks since the commit before it")
	}

	// An error from fn stops the walk and comes back unchanged.
	stop := errors.New("stop")
	calls := 0
	err = st.BlocksSince(t.Context(), "", func(data.CID, []byte) error {
		calls++
		if calls == 3 {
			return stop
		}
		return nil
	})
	if !errors.Is(err, stop) || calls != 3 {
		t.Errorf("fn error: err %v after %d calls, want stop after 3", err, calls)
	}

	// A cancelled context fails the walk.
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	if err := st.BlocksSince(ctx, "", func(data.CID, []byte) error { return nil }); err == nil {
		t.Error("BlocksSince with a cancelled context succeeded")
	}
}

func TestBlocksSinceEmpty(t *testing.T) {
	st, err := Open(t.Context(), t.TempDir(), "did:plc:blockssinceempty000000000")
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	if got := collectSince(t, st, ""); len(got) != 0 {
		t.Errorf("empty store: %d blocks", len(got))
	}
}

func TestMissingBlocks(t *testing.T) {
	st, err := Open(t.Context(), t.TempDir(), "did:plc:missingblockstest000000000")
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	key, err := crypto.GenerateK256()
	if err != nil {
		t.Fatal(err)
	}
	res := syncCommit(t, st, key, repo.NewRevClock(0), "m", 150)
	var have []data.CID
	for c := range res.Blocks {
		have = append(have, c)
	}
	// Interleave more absent CIDs than one query batch holds.
	var query, wantMissing []data.CID
	for i := range maxExistsBatch + 100 {
		absent := data.CIDForCBOR(fmt.Appendf(nil, "absent %d", i))
		query = append(query, absent)
		wantMissing = append(wantMissing, absent)
		if i < len(have) {
			query = append(query, have[i])
		}
	}
	got, err := st.MissingBlocks(t.Context(), query)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != len(wantMissing) {
		t.Fatalf("MissingBlocks: %d missing, want %d", len(got), len(wantMissing))
	}
	for i := range got {
		if got[i] != wantMissing[i] {
			t.Fatalf("MissingBlocks[%d] = %s, want %s", i, got[i], wantMissing[i])
		}
	}
	if got, err := st.MissingBlocks(t.Context(), have); err != nil || len(got) != 0 {
		t.Errorf("MissingBlocks(stored) = %v, %v; want none", got, err)
	}
	if got, err := st.MissingBlocks(t.Context(), nil); err != nil || len(got) != 0 {
		t.Errorf("MissingBlocks(nil) = %v, %v; want none", got, err)
	}
}

func TestCommitAtRev(t *testing.T) {
	st, err := Open(t.Context(), t.TempDir(), "did:plc:commitatrevtest00000000000")
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	key, err := crypto.GenerateK256()
	if err != nil {
		t.Fatal(err)
	}
	clock := repo.NewRevClock(0)
	var results []*repo.CommitResult
	for i := range 4 {
		results = append(results, syncCommit(t, st, key, clock, fmt.Sprintf("r%d", i), i))
	}
	for i, res := range results {
		c, ok, err := st.CommitAtRev(t.Context(), string(res.Rev))
		if err != nil || !ok || c != res.CID {
			t.Errorf("commit %d: CommitAtRev = %s, %v, %v; want %s", i, c, ok, err, res.CID)
		}
	}
	for _, rev := range []string{"", "2222222222222", "not a rev"} {
		if c, ok, err := st.CommitAtRev(t.Context(), rev); err != nil || ok {
			t.Errorf("CommitAtRev(%q) = %s, %v, %v; want not found", rev, c, ok, err)
		}
	}
}

func TestBlockReader(t *testing.T) {
	st, err := Open(t.Context(), t.TempDir(), "did:plc:blockreadertest00000000000")
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	key, err := crypto.GenerateK256()
	if err != nil {
		t.Fatal(err)
	}
	res := syncCommit(t, st, key, repo.NewRevClock(0), "b", 150)
	br := st.BlockReader()
	defer br.Close()
	// More reads than one read transaction makes, twice over, with a Close
	// in the middle.
	for round := range 2 {
		for c, want := range res.Blocks {
			got, err := br.GetBlock(t.Context(), c)
			if err != nil || !bytes.Equal(got, want) {
				t.Fatalf("round %d: GetBlock(%s) = %d bytes, %v", round, c, len(got), err)
			}
		}
		if err := br.Close(); err != nil {
			t.Fatal(err)
		}
	}
	var mb *repo.MissingBlockError
	if _, err := br.GetBlock(t.Context(), data.CIDForCBOR([]byte{0xa0})); !errors.As(err, &mb) {
		t.Errorf("missing block: %v, want a *repo.MissingBlockError", err)
	}
	if err := br.PutBlock(t.Context(), data.CIDForCBOR([]byte{0xa0}), []byte{0xa0}); err == nil {
		t.Error("PutBlock on a BlockReader succeeded")
	}
	// A whole export through the reader matches one through the store.
	var viaReader, viaStore bytes.Buffer
	if err := repo.ExportCAR(t.Context(), br, res.CID, &viaReader); err != nil {
		t.Fatal(err)
	}
	if err := repo.ExportCAR(t.Context(), st, res.CID, &viaStore); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(viaReader.Bytes(), viaStore.Bytes()) {
		t.Error("exports through the BlockReader and the Store differ")
	}
	// A reader whose reads fail (cancelled context) recovers on the next.
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	if _, err := br.GetBlock(ctx, res.CID); err == nil {
		t.Error("GetBlock with a cancelled context succeeded")
	}
	if _, err := br.GetBlock(t.Context(), res.CID); err != nil {
		t.Errorf("GetBlock after a failed read: %v", err)
	}
}
