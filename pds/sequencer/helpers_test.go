package sequencer

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/welkin-atproto/welkin/api/atproto"
	"github.com/welkin-atproto/welkin/atproto/data"
	"github.com/welkin-atproto/welkin/atproto/repo"
	"github.com/welkin-atproto/welkin/atproto/stream"
	"github.com/welkin-atproto/welkin/atproto/syntax"
	"github.com/welkin-atproto/welkin/internal/sqldb/sqldbtest"
	"github.com/welkin-atproto/welkin/pds/actorstore"
)

const testTime = "2024-01-02T03:04:05.000Z"

// forEachBackend runs fn with the location of a new, empty log on SQLite
// and on PostgreSQL.
func forEachBackend(t *testing.T, fn func(t *testing.T, path string)) {
	t.Helper()
	t.Run("sqlite", func(t *testing.T) {
		fn(t, filepath.Join(t.TempDir(), "sequencer.sqlite"))
	})
	t.Run("postgres", func(t *testing.T) {
		fn(t, sqldbtest.PostgresSchemaURL(t))
	})
}

// accounts opens and caches actor stores in a directory, as the PDS does.
type accounts struct {
	dir string

	mu     sync.Mutex
	stores map[syntax.DID]*actorstore.Store
	// fail, when set, makes Open fail for the accounts it returns an
	// error for.
	fail func(did syntax.DID) error
	// missing lists accounts Open reports as having no store.
	missing map[syntax.DID]bool

	opens atomic.Int64
	acks  atomic.Int64
}

func newAccounts(t testing.TB) *accounts {
	a := &accounts{dir: t.TempDir(), stores: make(map[syntax.DID]*actorstore.Store), missing: make(map[syntax.DID]bool)}
	t.Cleanup(a.closeAll)
	return a
}

func (a *accounts) store(t testing.TB, did syntax.DID) *actorstore.Store {
	t.Helper()
	st, err := a.get(context.Background(), did)
	if err != nil {
		t.Fatal(err)
	}
	return st
}

func (a *accounts) get(ctx context.Context, did syntax.DID) (*actorstore.Store, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if st, ok := a.stores[did]; ok {
		return st, nil
	}
	st, err := actorstore.Open(ctx, a.dir, did)
	if err != nil {
		return nil, err
	}
	a.stores[did] = st
	return st, nil
}

// drop closes and forgets the store of did.
func (a *accounts) drop(did syntax.DID) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if st, ok := a.stores[did]; ok {
		st.Close()
		delete(a.stores, did)
	}
}

func (a *accounts) closeAll() {
	a.mu.Lock()
	defer a.mu.Unlock()
	for did, st := range a.stores {
		st.Close()
		delete(a.stores, did)
	}
}

// open is Options.Open. An account marked missing is reported as having
// no store, atomically with the lookup, so that a store being deleted is
// never created again behind the test's back.
func (a *accounts) open(ctx context.Context, did syntax.DID) (Outbox, func(), error) {
	a.opens.Add(1)
	a.mu.Lock()
	fail := a.fail
	a.mu.Unlock()
	if fail != nil {
		if err := fail(did); err != nil {
			return nil, nil, err
		}
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.missing[did] {
		return nil, nil, nil
	}
	st, ok := a.stores[did]
	if !ok {
		var err error
		if st, err = actorstore.Open(ctx, a.dir, did); err != nil {
			return nil, nil, err
		}
		a.stores[did] = st
	}
	return countingOutbox{st, &a.acks}, func() {}, nil
}

// setMissing marks did as having no store, or clears the mark.
func (a *accounts) setMissing(did syntax.DID, missing bool) {
	a.mu.Lock()
	a.missing[did] = missing
	a.mu.Unlock()
}

type countingOutbox struct {
	*actorstore.Store
	acks *atomic.Int64
}

func (c countingOutbox) AckOutbox(ctx context.Context, upto int64) error {
	c.acks.Add(1)
	return c.Store.AckOutbox(ctx, upto)
}

// outboxLen counts the rows left in did's outbox once acknowledged rows
// are deleted, which the store's next write transaction (here a Sync)
// does.
func (a *accounts) outboxLen(t testing.TB, did syntax.DID) int {
	t.Helper()
	st := a.store(t, did)
	if err := st.Sync(context.Background()); err != nil {
		t.Fatal(err)
	}
	rows, err := st.Outbox(context.Background(), 0, actorstore.MaxOutboxBatch)
	if err != nil {
		t.Fatal(err)
	}
	return len(rows)
}

// recorder collects published events.
type recorder struct {
	mu  sync.Mutex
	evs []stream.Event
}

func (r *recorder) publish(ev stream.Event) {
	r.mu.Lock()
	r.evs = append(r.evs, ev)
	r.mu.Unlock()
}

func (r *recorder) events() []stream.Event {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.evs)
}

// testTuning is the default tuning with small batches, so that tests go
// through the paths that split work between batches.
func testTuning() tuning {
	t := defaultTuning
	t.accountRows = 7
	t.outboxChunk = 3
	t.batchEvents = 50
	t.batchAccounts = 5
	t.retryBase = time.Millisecond
	t.retryMax = 20 * time.Millisecond
	t.recoverChunk = 4
	return t
}

type env struct {
	path  string
	accts *accounts
	rec   *recorder
	now   atomic.Pointer[time.Time]
	tune  tuning
	opts  Options // applied over the defaults of openSeq
}

func newEnv(t testing.TB, path string) *env {
	e := &env{path: path, accts: newAccounts(t), rec: &recorder{}, tune: testTuning()}
	now := time.Date(2024, 1, 2, 3, 4, 5, 0, time.UTC)
	e.now.Store(&now)
	return e
}

func (e *env) advance(d time.Duration) {
	now := e.now.Load().Add(d)
	e.now.Store(&now)
}

// open opens a Sequencer on the env's log; it is closed when the test
// ends (closing twice is harmless).
func (e *env) open(t testing.TB) *Sequencer {
	t.Helper()
	opts := e.opts
	opts.Path = e.path
	if opts.Open == nil {
		opts.Open = e.accts.open
	}
	if opts.Publish == nil {
		opts.Publish = e.rec.publish
	}
	opts.Now = func() time.Time { return *e.now.Load() }
	s, err := open(context.Background(), opts, e.tune)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func testDID(i int) syntax.DID {
	return syntax.DID(fmt.Sprintf("did:plc:sequencertest%011d", i))
}

// commitBody is the #commit event body of a commit, with seq 0.
func commitBody(t testing.TB, did syntax.DID, rev, since syntax.TID, c data.CID) []byte {
	t.Helper()
	ev := &atproto.SyncSubscribeRepos_Commit{
		Repo: string(did), Commit: c, Rev: string(rev),
		Blocks: []byte("car slice of " + string(rev)),
		Ops:    []*atproto.SyncSubscribeRepos_RepoOp{}, Blobs: []data.CID{}, Time: testTime,
	}
	if since != "" {
		s := string(since)
		ev.Since = &s
	}
	b, err := data.MarshalCBOR(ev)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// writeCommit stores a synthetic commit on top of did's head, with its
// #commit event (or body, when given) in the outbox, and returns its rev.
func writeCommit(ctx context.Context, st *actorstore.Store, clock *repo.RevClock, body []byte) (syntax.TID, error) {
	st.Lock()
	defer st.Unlock()
	_, head, _, err := st.Head(ctx)
	if err != nil {
		return "", err
	}
	rev, err := clock.Next(syntax.TID(head))
	if err != nil {
		return "", err
	}
	c := data.CIDForCBOR([]byte(rev))
	if body == nil {
		ev := &atproto.SyncSubscribeRepos_Commit{
			Repo: string(st.DID()), Commit: c, Rev: string(rev),
			Blocks: []byte("car slice of " + string(rev)),
			Ops:    []*atproto.SyncSubscribeRepos_RepoOp{}, Blobs: []data.CID{}, Time: testTime,
		}
		if head != "" {
			ev.Since = &head
		}
		if body, err = data.MarshalCBOR(ev); err != nil {
			return "", err
		}
	}
	res := &repo.CommitResult{CID: c, Rev: rev, Since: syntax.TID(head)}
	if _, err := st.ApplyCommit(ctx, res, body); err != nil {
		return "", err
	}
	return rev, nil
}

func mustWrite(t testing.TB, st *actorstore.Store, clock *repo.RevClock) syntax.TID {
	t.Helper()
	rev, err := writeCommit(context.Background(), st, clock, nil)
	if err != nil {
		t.Fatal(err)
	}
	return rev
}

// logged is one event read back from the log.
type logged struct {
	seq  int64
	typ  string
	did  string
	rev  string // #commit and #sync
	body []byte
}

// decodeFrame checks a frame and reads what the tests compare.
func decodeFrame(t testing.TB, ev stream.Event) logged {
	t.Helper()
	h, body, err := stream.DecodeFrame(ev.Frame)
	if err != nil {
		t.Fatalf("seq %d: %v", ev.Seq, err)
	}
	l := logged{typ: h.T, body: body}
	switch h.T {
	case "#commit":
		var c atproto.SyncSubscribeRepos_Commit
		err = data.UnmarshalCBORInto(body, &c)
		l.seq, l.did, l.rev = c.Seq, c.Repo, c.Rev
	case "#sync":
		var c atproto.SyncSubscribeRepos_Sync
		err = data.UnmarshalCBORInto(body, &c)
		l.seq, l.did, l.rev = c.Seq, c.Did, c.Rev
	case "#identity":
		var c atproto.SyncSubscribeRepos_Identity
		err = data.UnmarshalCBORInto(body, &c)
		l.seq, l.did = c.Seq, c.Did
	case "#account":
		var c atproto.SyncSubscribeRepos_Account
		err = data.UnmarshalCBORInto(body, &c)
		l.seq, l.did = c.Seq, c.Did
	default:
		t.Fatalf("seq %d: frame type %q", ev.Seq, h.T)
	}
	if err != nil {
		t.Fatalf("seq %d: %s body: %v", ev.Seq, h.T, err)
	}
	if l.seq != ev.Seq {
		t.Fatalf("event %d carries seq %d", ev.Seq, l.seq)
	}
	if _, ok, _ := stream.BodyString(body, "$type"); ok {
		t.Fatalf("seq %d: payload carries $type", ev.Seq)
	}
	return l
}

// readLog reads the whole retained log, page by page.
func readLog(t testing.TB, s *Sequencer) []logged {
	t.Helper()
	var (
		out    []logged
		cursor int64
	)
	for {
		evs, err := s.Since(context.Background(), cursor, 17)
		if err != nil {
			t.Fatal(err)
		}
		for _, ev := range evs {
			if ev.Seq <= cursor {
				t.Fatalf("Since(%d) returned seq %d", cursor, ev.Seq)
			}
			out = append(out, decodeFrame(t, ev))
			cursor = ev.Seq
		}
		if len(evs) < 17 {
			return out
		}
	}
}

// checkGapless fails unless the seqs of evs are first, first+1, ...
func checkGapless(t testing.TB, evs []logged, first int64) {
	t.Helper()
	for i, ev := range evs {
		if want := first + int64(i); ev.seq != want {
			t.Fatalf("event %d has seq %d, want %d", i, ev.seq, want)
		}
	}
}

// eventually polls cond until it holds or a deadline passes.
func eventually(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting until %s", what)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

func identityBody(t testing.TB, did syntax.DID, handle string) []byte {
	t.Helper()
	ev := &atproto.SyncSubscribeRepos_Identity{Did: string(did), Time: testTime}
	if handle != "" {
		ev.Handle = &handle
	}
	b, err := data.MarshalCBOR(ev)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func accountBody(t testing.TB, did syntax.DID, active bool, status string) []byte {
	t.Helper()
	ev := &atproto.SyncSubscribeRepos_Account{Did: string(did), Time: testTime, Active: active}
	if status != "" {
		ev.Status = &status
	}
	b, err := data.MarshalCBOR(ev)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

var errInjected = errors.New("injected failure")
