package data_test

import (
	"context"
	"fmt"
	"sync"
	"testing"

	"github.com/welkin-atproto/welkin/atproto/crypto"
	"github.com/welkin-atproto/welkin/atproto/data"
	"github.com/welkin-atproto/welkin/atproto/repo"
	"github.com/welkin-atproto/welkin/atproto/syntax"
)

var (
	commitBodyOnce sync.Once
	commitBody     []byte
	commitBodyErr  error
)

// realCommitBody returns the body of the #commit event that creates one
// post in a repository of 2,000 records, as a PDS would emit it: the
// event a relay's frame check walks most often.
func realCommitBody(tb testing.TB) []byte {
	tb.Helper()
	commitBodyOnce.Do(func() { commitBody, commitBodyErr = buildCommitBody() })
	if commitBodyErr != nil {
		tb.Fatal(commitBodyErr)
	}
	return commitBody
}

func buildCommitBody() ([]byte, error) {
	ctx := context.Background()
	key, err := crypto.GenerateK256()
	if err != nil {
		return nil, err
	}
	r, err := repo.NewRepo("did:plc:ewvi7nxzyoun6zhxrhs64oiz", repo.NewMemBlockStore())
	if err != nil {
		return nil, err
	}
	clock := repo.NewRevClock(3)
	commit := func(prefix string, n int) (*repo.CommitResult, error) {
		ws := make([]repo.RecordWrite, n)
		for i := range ws {
			rec, err := data.MarshalCBOR(map[string]any{
				"$type":     "app.bsky.feed.post",
				"text":      fmt.Sprintf("post %d", i),
				"createdAt": "2026-03-01T12:00:00.000Z",
			})
			if err != nil {
				return nil, err
			}
			ws[i] = repo.RecordWrite{
				Action: repo.ActionCreate, Collection: "app.bsky.feed.post",
				RKey: syntax.RecordKey(fmt.Sprintf("%s%04d", prefix, i)), Value: rec,
			}
		}
		if err := r.Apply(ctx, ws); err != nil {
			return nil, err
		}
		return r.Commit(ctx, key, clock)
	}
	for i := 0; i < 10; i++ {
		if _, err := commit(fmt.Sprintf("old%d-", i), 200); err != nil {
			return nil, err
		}
	}
	res, err := commit("new", 1)
	if err != nil {
		return nil, err
	}
	ops := make([]any, len(res.Ops))
	for i, op := range res.Ops {
		m := map[string]any{"action": op.Action, "path": op.Path, "cid": nil, "prev": nil}
		if op.CID != nil {
			m["cid"] = *op.CID
		}
		if op.Prev != nil {
			m["prev"] = *op.Prev
		}
		ops[i] = m
	}
	ev := map[string]any{
		"seq":    int64(8431256710),
		"rebase": false,
		"tooBig": false,
		"repo":   string(res.Commit.DID),
		"commit": res.CID,
		"rev":    string(res.Rev),
		"since":  string(res.Since),
		"blocks": data.Bytes(res.CAR),
		"ops":    ops,
		"blobs":  []any{},
		"time":   "2026-03-01T12:00:01.000Z",
	}
	if res.PrevData != nil {
		ev["prevData"] = *res.PrevData
	}
	return data.MarshalCBOR(ev)
}

// BenchmarkSkipCommit compares walking a #commit body with Skip, as the
// frame check does, against decoding it with ReadAny.
func BenchmarkSkipCommit(b *testing.B) {
	body := realCommitBody(b)
	b.Run("ReadAny", func(b *testing.B) {
		b.SetBytes(int64(len(body)))
		b.ReportAllocs()
		for b.Loop() {
			d := data.NewDecoder(body)
			if _, err := d.ReadAny(); err != nil {
				b.Fatal(err)
			}
			if err := d.Finish(); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("Skip", func(b *testing.B) {
		b.SetBytes(int64(len(body)))
		b.ReportAllocs()
		for b.Loop() {
			d := data.NewDecoder(body)
			if err := d.Skip(); err != nil {
				b.Fatal(err)
			}
			if err := d.Finish(); err != nil {
				b.Fatal(err)
			}
		}
	})
}

func TestSkipCommitAllocatesNothing(t *testing.T) {
	body := realCommitBody(t)
	allocs := testing.AllocsPerRun(100, func() {
		d := data.NewDecoder(body)
		if err := d.Skip(); err != nil {
			t.Fatal(err)
		}
		if err := d.Finish(); err != nil {
			t.Fatal(err)
		}
	})
	if allocs != 0 {
		t.Errorf("Skip over a #commit body makes %v allocations", allocs)
	}
}
