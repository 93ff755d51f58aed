package jetstream

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/welkin-atproto/welkin/api/atproto"
	"github.com/welkin-atproto/welkin/atproto/crypto"
	"github.com/welkin-atproto/welkin/atproto/data"
	"github.com/welkin-atproto/welkin/atproto/repo"
	"github.com/welkin-atproto/welkin/atproto/stream"
	"github.com/welkin-atproto/welkin/atproto/syntax"
	"github.com/welkin-atproto/welkin/relay/eventlog"
)

const testTimeout = 30 * time.Second

func testCtx(t testing.TB) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	t.Cleanup(cancel)
	return ctx
}

func quietLogger() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

// clock is a test clock that moves only when told.
type clock struct {
	mu  sync.Mutex
	now time.Time
}

func newClock() *clock { return &clock{now: time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)} }

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.mu.Unlock()
}

// testRepo is an account whose commits become #commit frames.
type testRepo struct {
	did   syntax.DID
	repo  *repo.Repo
	key   crypto.PrivateKey
	clock *repo.RevClock
}

func newTestRepo(t testing.TB, did syntax.DID) *testRepo {
	t.Helper()
	key, err := crypto.GenerateK256()
	if err != nil {
		t.Fatal(err)
	}
	r, err := repo.NewRepo(did, repo.NewMemBlockStore())
	if err != nil {
		t.Fatal(err)
	}
	return &testRepo{did: did, repo: r, key: key, clock: repo.NewRevClock(7)}
}

// recordFromJSON is the DAG-CBOR of a record written in atproto JSON.
func recordFromJSON(t testing.TB, js string) []byte {
	t.Helper()
	m, err := data.ParseJSON([]byte(js))
	if err != nil {
		t.Fatal(err)
	}
	b, err := data.MarshalCBOR(m)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func post(t testing.TB, text string) []byte {
	return recordFromJSON(t, `{"$type":"app.bsky.feed.post","text":`+jsonString(text)+`,"createdAt":"2026-03-01T12:00:00.000Z"}`)
}

func jsonString(s string) string {
	b, err := data.MarshalJSON(s)
	if err != nil {
		panic(err)
	}
	return string(b)
}

func put(collection, rkey string, rec []byte) repo.RecordWrite {
	return repo.RecordWrite{Action: repo.ActionCreate, Collection: syntax.NSID(collection), RKey: syntax.RecordKey(rkey), Value: rec}
}

func update(collection, rkey string, rec []byte) repo.RecordWrite {
	return repo.RecordWrite{Action: repo.ActionUpdate, Collection: syntax.NSID(collection), RKey: syntax.RecordKey(rkey), Value: rec}
}

func del(collection, rkey string) repo.RecordWrite {
	return repo.RecordWrite{Action: repo.ActionDelete, Collection: syntax.NSID(collection), RKey: syntax.RecordKey(rkey)}
}

// commit applies writes and returns the #commit frame and its rev.
func (r *testRepo) commit(t testing.TB, writes ...repo.RecordWrite) ([]byte, string) {
	t.Helper()
	ctx := context.Background()
	if err := r.repo.Apply(ctx, writes); err != nil {
		t.Fatal(err)
	}
	res, err := r.repo.Commit(ctx, r.key, r.clock)
	if err != nil {
		t.Fatal(err)
	}
	ev := &atproto.SyncSubscribeRepos_Commit{
		Seq:    1,
		Repo:   string(r.did),
		Commit: res.CID,
		Rev:    string(res.Rev),
		Blocks: bytes.Clone(res.CAR),
		Ops:    make([]*atproto.SyncSubscribeRepos_RepoOp, len(res.Ops)),
		Blobs:  []data.CID{},
		Time:   "2026-03-01T12:00:00.000Z",
	}
	if res.PrevData != nil {
		p := *res.PrevData
		ev.PrevData = &p
	}
	if res.Since != "" {
		s := string(res.Since)
		ev.Since = &s
	}
	for i, op := range res.Ops {
		ev.Ops[i] = &atproto.SyncSubscribeRepos_RepoOp{Action: op.Action, Path: op.Path, Cid: op.CID, Prev: op.Prev}
	}
	return encodeFrame(t, "#commit", ev), string(res.Rev)
}

func encodeFrame(t testing.TB, typ string, body any) []byte {
	t.Helper()
	f, err := stream.EncodeFrame(typ, body)
	if err != nil {
		t.Fatal(err)
	}
	return f
}

func identityFrame(t testing.TB, did, handle string, seq int64) []byte {
	ev := &atproto.SyncSubscribeRepos_Identity{Seq: seq, Did: did, Time: "2026-03-01T12:00:01.000Z"}
	if handle != "" {
		ev.Handle = &handle
	}
	return encodeFrame(t, "#identity", ev)
}

func accountFrame(t testing.TB, did string, active bool, status string, seq int64) []byte {
	ev := &atproto.SyncSubscribeRepos_Account{Seq: seq, Did: did, Active: active, Time: "2026-03-01T12:00:02.000Z"}
	if status != "" {
		ev.Status = &status
	}
	return encodeFrame(t, "#account", ev)
}

// testLog is an event log in a temporary directory, timed by a test
// clock, with the spans the relay gives it.
type testLog struct {
	*eventlog.Log
	clock *clock
}

func openTestLog(t testing.TB) *testLog {
	t.Helper()
	c := newClock()
	l, err := eventlog.Open(eventlog.Options{Dir: t.TempDir(), Now: c.Now, Span: Span,
		Retention: -1, PruneInterval: -1, Logger: quietLogger()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	return &testLog{Log: l, clock: c}
}

// append logs frames, of did, in one batch and returns the records.
func (l *testLog) append(t testing.TB, did syntax.DID, frames ...[]byte) []eventlog.Record {
	t.Helper()
	first, err := l.AppendBatch(len(frames), func(i int, seq int64) ([]byte, syntax.DID, error) {
		return frames[i], did, nil
	})
	if err != nil {
		t.Fatal(err)
	}
	rs, err := l.Read(testCtx(t), first-1, len(frames))
	if err != nil || len(rs) != len(frames) {
		t.Fatalf("reading back seqs from %d: %d records, %v", first, len(rs), err)
	}
	return rs
}
