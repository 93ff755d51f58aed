package sequencer

import (
	"bytes"
	"context"
	"errors"
	"net/http/httptest"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/welkin-atproto/welkin/api/atproto"
	"github.com/welkin-atproto/welkin/atproto/crypto"
	"github.com/welkin-atproto/welkin/atproto/data"
	"github.com/welkin-atproto/welkin/atproto/repo"
	"github.com/welkin-atproto/welkin/atproto/stream"
	"github.com/welkin-atproto/welkin/atproto/syntax"
	"github.com/welkin-atproto/welkin/pds/actorstore"
)

// realCommit writes one record to the account's repository with a real,
// signed commit, and stores it with its #commit event.
func realCommit(t *testing.T, st *actorstore.Store, key crypto.PrivateKey, clock *repo.RevClock, rkey string) *repo.CommitResult {
	t.Helper()
	ctx := t.Context()
	st.Lock()
	defer st.Unlock()
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
	rec, err := data.MarshalCBOR(map[string]any{"$type": "app.bsky.feed.post", "text": rkey, "createdAt": testTime})
	if err != nil {
		t.Fatal(err)
	}
	if err := r.Apply(ctx, []repo.RecordWrite{{Action: repo.ActionCreate, Collection: "app.bsky.feed.post", RKey: syntax.RecordKey(rkey), Value: rec}}); err != nil {
		t.Fatal(err)
	}
	res, err := r.Commit(ctx, key, clock)
	if err != nil {
		t.Fatal(err)
	}
	ev := &atproto.SyncSubscribeRepos_Commit{
		Repo: string(st.DID()), Commit: res.CID, Rev: string(res.Rev), Blocks: res.CAR,
		Blobs: []data.CID{}, PrevData: res.PrevData, Time: testTime,
	}
	if res.Since != "" {
		since := string(res.Since)
		ev.Since = &since
	}
	for _, op := range res.Ops {
		ev.Ops = append(ev.Ops, &atproto.SyncSubscribeRepos_RepoOp{Action: op.Action, Path: op.Path, Cid: op.CID, Prev: op.Prev})
	}
	body, err := data.MarshalCBOR(ev)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := st.ApplyCommit(ctx, res, body); err != nil {
		t.Fatal(err)
	}
	return res
}

func TestSequenceRealCommits(t *testing.T) {
	forEachBackend(t, func(t *testing.T, path string) {
		ctx := t.Context()
		e := newEnv(t, path)
		s := e.open(t)
		key, err := crypto.GenerateP256()
		if err != nil {
			t.Fatal(err)
		}
		clock := repo.NewRevClock(3)
		type written struct {
			did syntax.DID
			res *repo.CommitResult
		}
		var want []written
		for round := range 2 {
			for i := range 3 {
				did := testDID(i)
				res := realCommit(t, e.accts.store(t, did), key, clock, "rec"+string(rune('a'+round)))
				want = append(want, written{did, res})
				s.Notify(did)
				if err := s.Flush(ctx, did); err != nil {
					t.Fatal(err)
				}
			}
		}
		got := readLog(t, s)
		if len(got) != len(want) {
			t.Fatalf("log holds %d events, want %d", len(got), len(want))
		}
		checkGapless(t, got, 1)
		for i, w := range want {
			g := got[i]
			if g.typ != "#commit" || g.did != string(w.did) || g.rev != string(w.res.Rev) {
				t.Fatalf("event %d = %s %s %s, want #commit %s %s", i, g.typ, g.did, g.rev, w.did, w.res.Rev)
			}
			var c atproto.SyncSubscribeRepos_Commit
			if err := data.UnmarshalCBORInto(g.body, &c); err != nil {
				t.Fatal(err)
			}
			if c.Commit != w.res.CID || !bytes.Equal(c.Blocks, w.res.CAR) || len(c.Ops) != 1 || c.Ops[0].Path != "app.bsky.feed.post/rec"+string(rune('a'+i/3)) {
				t.Fatalf("event %d does not carry its commit: %+v", i, c)
			}
		}
		// Published in seq order, the same frames as logged.
		pub := e.rec.events()
		if len(pub) != len(got) {
			t.Fatalf("published %d events, logged %d", len(pub), len(got))
		}
		logEvs, err := s.Since(ctx, 0, 0)
		if err != nil {
			t.Fatal(err)
		}
		for i := range pub {
			if pub[i].Seq != logEvs[i].Seq || !bytes.Equal(pub[i].Frame, logEvs[i].Frame) {
				t.Fatalf("published event %d (seq %d) differs from the log's (seq %d)", i, pub[i].Seq, logEvs[i].Seq)
			}
		}
		if latest, _ := s.LatestSeq(ctx); latest != 6 {
			t.Fatalf("LatestSeq = %d, want 6", latest)
		}
		if oldest, _ := s.OldestSeq(ctx); oldest != 1 {
			t.Fatalf("OldestSeq = %d, want 1", oldest)
		}
		if st := s.Stats(); st.Events != 6 || st.Batches < 1 || st.LatestSeq != 6 || st.Skipped != 0 {
			t.Fatalf("Stats = %+v", st)
		}
		// Since honours cursor and limit.
		evs, err := s.Since(ctx, 4, 1)
		if err != nil || len(evs) != 1 || evs[0].Seq != 5 {
			t.Fatalf("Since(4, 1) = %v, %v", evs, err)
		}
		if evs, err := s.Since(ctx, 6, 10); err != nil || len(evs) != 0 {
			t.Fatalf("Since(6, 10) = %v, %v", evs, err)
		}
	})
}

func TestAppend(t *testing.T) {
	forEachBackend(t, func(t *testing.T, path string) {
		ctx := t.Context()
		e := newEnv(t, path)
		s := e.open(t)
		a, gone := testDID(1), testDID(2)
		e.accts.setMissing(gone, true)

		seq, err := s.Append(ctx, a, KindIdentity, identityBody(t, a, "alice.test"))
		if err != nil || seq != 1 {
			t.Fatalf("Append identity = %d, %v", seq, err)
		}
		// An account without a store still gets its events.
		if seq, err = s.Append(ctx, gone, KindAccount, accountBody(t, gone, false, "deleted")); err != nil || seq != 2 {
			t.Fatalf("Append account = %d, %v", seq, err)
		}
		syncBody, err := data.MarshalCBOR(&atproto.SyncSubscribeRepos_Sync{Did: string(a), Rev: "3jzfcijpj2z2a", Blocks: []byte("car"), Time: testTime, LexiconTypeID: "com.atproto.sync.subscribeRepos#sync"})
		if err != nil {
			t.Fatal(err)
		}
		if seq, err = s.Append(ctx, a, KindSync, syncBody); err != nil || seq != 3 {
			t.Fatalf("Append sync = %d, %v", seq, err)
		}

		bad := []struct {
			name string
			did  syntax.DID
			kind string
			body []byte
		}{
			{"commit kind", a, KindCommit, identityBody(t, a, "")},
			{"unknown kind", a, "handle", identityBody(t, a, "")},
			{"not cbor", a, KindIdentity, []byte("not cbor")},
			{"trailing bytes", a, KindIdentity, append(identityBody(t, a, ""), 0)},
			{"empty body", a, KindIdentity, nil},
			{"other account", a, KindIdentity, identityBody(t, gone, "")},
			{"kind mismatch", a, KindAccount, syncBody},
			{"bad did", "did:nope", KindIdentity, identityBody(t, "did:nope", "")},
		}
		for _, tc := range bad {
			if seq, err := s.Append(ctx, tc.did, tc.kind, tc.body); !errors.Is(err, ErrInvalidEvent) {
				t.Errorf("Append %s = %d, %v; want ErrInvalidEvent", tc.name, seq, err)
			}
		}
		// The refused events used no seq.
		if seq, err = s.Append(ctx, a, KindAccount, accountBody(t, a, true, "")); err != nil || seq != 4 {
			t.Fatalf("Append after refusals = %d, %v", seq, err)
		}

		check := func(s *Sequencer) {
			t.Helper()
			got := readLog(t, s)
			checkGapless(t, got, 1)
			wantTypes := []string{"#identity", "#account", "#sync", "#account"}
			if len(got) != len(wantTypes) {
				t.Fatalf("log holds %d events, want %d", len(got), len(wantTypes))
			}
			for i, typ := range wantTypes {
				if got[i].typ != typ {
					t.Fatalf("event %d is %s, want %s", i, got[i].typ, typ)
				}
			}
			if h, ok, _ := stream.BodyString(got[0].body, "handle"); !ok || h != "alice.test" {
				t.Fatalf("identity event lost its handle: %q", h)
			}
		}
		check(s)
		// Durable: a new Sequencer on the log sees the same and goes on.
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}
		s = e.open(t)
		check(s)
		if latest, _ := s.LatestSeq(ctx); latest != 4 {
			t.Fatalf("LatestSeq after reopen = %d", latest)
		}
		if seq, err = s.Append(ctx, a, KindIdentity, identityBody(t, a, "")); err != nil || seq != 5 {
			t.Fatalf("Append after reopen = %d, %v", seq, err)
		}
	})
}

// An Append comes after the commits its account wrote before it, even
// when they take more than one batch.
func TestAppendAfterOutbox(t *testing.T) {
	ctx := t.Context()
	e := newEnv(t, t.TempDir()+"/log.sqlite")
	s := e.open(t)
	a := testDID(1)
	st := e.accts.store(t, a)
	clock := repo.NewRevClock(1)
	var revs []syntax.TID
	for range 3*e.tune.accountRows + 2 {
		revs = append(revs, mustWrite(t, st, clock))
	}
	seq, err := s.Append(ctx, a, KindAccount, accountBody(t, a, false, "deactivated"))
	if err != nil {
		t.Fatal(err)
	}
	if want := int64(len(revs) + 1); seq != want {
		t.Fatalf("Append seq = %d, want %d", seq, want)
	}
	got := readLog(t, s)
	checkGapless(t, got, 1)
	for i, rev := range revs {
		if got[i].typ != "#commit" || got[i].rev != string(rev) {
			t.Fatalf("event %d = %s %s, want the commit of rev %s", i, got[i].typ, got[i].rev, rev)
		}
	}
	if got[len(revs)].typ != "#account" {
		t.Fatalf("last event is %s", got[len(revs)].typ)
	}
	if st := s.Stats(); st.Batches < 4 {
		t.Fatalf("%d batches for %d rows at %d per account and batch", st.Batches, len(revs), e.tune.accountRows)
	}
}

// fakeOutbox is an in-memory outbox for rows actorstore cannot write.
type fakeOutbox struct {
	mu   sync.Mutex
	rows []actorstore.OutboxRow
}

func (f *fakeOutbox) Outbox(_ context.Context, after int64, limit int) ([]actorstore.OutboxRow, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []actorstore.OutboxRow
	for _, r := range f.rows {
		if r.ID > after && len(out) < limit {
			out = append(out, r)
		}
	}
	return out, nil
}

func (f *fakeOutbox) AckOutbox(context.Context, int64) error { return nil }

func TestSkipInvalidRows(t *testing.T) {
	ctx := t.Context()
	dir := t.TempDir()
	did := testDID(7)
	good := func(rev string) []byte {
		return commitBody(t, did, syntax.TID(rev), "", data.CIDForCBOR([]byte(rev)))
	}
	ob := &fakeOutbox{rows: []actorstore.OutboxRow{
		{ID: 1, Rev: "a", Kind: KindCommit, Body: []byte("garbage")},
		{ID: 2, Rev: "b", Kind: KindCommit, Body: good("3jzfcijpj2z2b")},
		{ID: 3, Rev: "c", Kind: "mystery", Body: good("3jzfcijpj2z2c")},
		{ID: 5, Rev: "d", Kind: KindCommit, Body: commitBody(t, testDID(8), "3jzfcijpj2z2d", "", data.CIDForCBOR([]byte("d")))},
		{ID: 6, Rev: "e", Kind: KindCommit, Body: good("3jzfcijpj2z2e")},
		{ID: 7, Rev: "f", Kind: KindCommit, Body: bytes.Repeat([]byte{0xff}, 3)},
		{ID: 9, Rev: "g", Kind: KindIdentity, Body: identityBody(t, did, "x.test")},
	}}
	opts := Options{
		Path: dir + "/log.sqlite",
		Open: func(context.Context, syntax.DID) (Outbox, func(), error) { return ob, func() {}, nil },
	}
	s, err := open(ctx, opts, testTuning())
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if err := s.Flush(ctx, did); err != nil {
		t.Fatal(err)
	}
	got := readLog(t, s)
	checkGapless(t, got, 1)
	if len(got) != 3 || got[0].rev != "3jzfcijpj2z2b" || got[1].rev != "3jzfcijpj2z2e" || got[2].typ != "#identity" {
		t.Fatalf("log = %+v", got)
	}
	if st := s.Stats(); st.Skipped != 4 {
		t.Fatalf("Skipped = %d, want 4", st.Skipped)
	}
	// The cursor moved past the skipped rows: a restart reads nothing again.
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s, err = open(ctx, opts, testTuning())
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if err := s.Recover(ctx, []syntax.DID{did}); err != nil {
		t.Fatal(err)
	}
	if st := s.Stats(); st.Skipped != 0 || st.Events != 0 {
		t.Fatalf("after restart: %+v", st)
	}

	// An outbox that goes backwards is an error for Flush, not a hang.
	ob.mu.Lock()
	ob.rows = append(ob.rows, actorstore.OutboxRow{ID: 12, Kind: KindCommit, Body: good("3jzfcijpj2z2h")}, actorstore.OutboxRow{ID: 11, Kind: KindCommit, Body: good("3jzfcijpj2z2i")})
	ob.mu.Unlock()
	if err := s.Flush(ctx, did); err == nil || !strings.Contains(err.Error(), "returned row 11 after row 12") {
		t.Fatalf("Flush over a disordered outbox: %v", err)
	}
}

func TestRetention(t *testing.T) {
	forEachBackend(t, func(t *testing.T, path string) {
		ctx := t.Context()
		e := newEnv(t, path)
		e.opts.Retention = time.Hour
		e.tune.pruneChunk = 2
		e.tune.pruneEvery = time.Millisecond
		s := e.open(t)
		a := testDID(1)
		appendN := func(n int) {
			for range n {
				if _, err := s.Append(ctx, a, KindIdentity, identityBody(t, a, "")); err != nil {
					t.Fatal(err)
				}
			}
		}
		oldest := func() int64 {
			o, err := s.OldestSeq(ctx)
			if err != nil {
				t.Fatal(err)
			}
			return o
		}
		appendN(5)
		e.advance(30 * time.Minute)
		appendN(3)
		e.advance(45 * time.Minute) // the first 5 are now 75 minutes old
		eventually(t, "the first five events are pruned", func() bool { return oldest() == 6 })
		got := readLog(t, s)
		checkGapless(t, got, 6)
		if len(got) != 3 {
			t.Fatalf("retained %d events, want 3", len(got))
		}

		// A clock that steps back does not make a newer event look older
		// than the ones before it.
		e.advance(-2 * time.Hour)
		appendN(1)
		e.advance(2 * time.Hour)
		created := func(seq int64) int64 {
			var ms int64
			if err := s.db.Reader().QueryRowContext(ctx, s.db.Rebind(`SELECT created_at FROM seq_events WHERE seq = ?`), seq).Scan(&ms); err != nil {
				t.Fatal(err)
			}
			return ms
		}
		if c8, c9 := created(8), created(9); c9 != c8 {
			t.Fatalf("event 9 created at %d, event 8 at %d", c9, c8)
		}

		e.advance(2 * time.Hour)
		eventually(t, "every event is pruned", func() bool { return oldest() == 0 })
		if latest, _ := s.LatestSeq(ctx); latest != 9 {
			t.Fatalf("LatestSeq after pruning all = %d, want 9", latest)
		}
		eventually(t, "Stats counts the pruned events", func() bool { return s.Stats().Pruned == 9 })
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}
		s = e.open(t)
		if latest, _ := s.LatestSeq(ctx); latest != 9 {
			t.Fatalf("LatestSeq of an empty log after reopen = %d, want 9", latest)
		}
		if seq, err := s.Append(ctx, a, KindIdentity, identityBody(t, a, "")); err != nil || seq != 10 {
			t.Fatalf("Append after pruning all = %d, %v", seq, err)
		}
	})
}

func TestResetAccount(t *testing.T) {
	ctx := t.Context()
	e := newEnv(t, t.TempDir()+"/log.sqlite")
	e.tune.ackRows = 1 // acknowledge at once, to race with the reset
	s := e.open(t)
	a := testDID(1)
	clock := repo.NewRevClock(1)
	for range 3 {
		mustWrite(t, e.accts.store(t, a), clock)
	}
	if err := s.Flush(ctx, a); err != nil {
		t.Fatal(err)
	}
	// The account is deleted, and later created again from scratch: its
	// new outbox starts at ID 1.
	e.accts.setMissing(a, true)
	e.accts.drop(a)
	if err := os.RemoveAll(actorstore.Dir(e.accts.dir, a)); err != nil {
		t.Fatal(err)
	}
	if err := s.ResetAccount(ctx, a); err != nil {
		t.Fatal(err)
	}
	e.accts.setMissing(a, false)
	fresh := repo.NewRevClock(2)
	var revs []syntax.TID
	for range 2 {
		revs = append(revs, mustWrite(t, e.accts.store(t, a), fresh))
	}
	if err := s.Flush(ctx, a); err != nil {
		t.Fatal(err)
	}
	got := readLog(t, s)
	checkGapless(t, got, 1)
	if len(got) != 5 || got[3].rev != string(revs[0]) || got[4].rev != string(revs[1]) {
		t.Fatalf("log after reset holds %d events: %+v", len(got), got)
	}
	// The new cursor is durable: a restart sequences nothing twice.
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s = e.open(t)
	if err := s.Recover(ctx, []syntax.DID{a}); err != nil {
		t.Fatal(err)
	}
	if n := len(readLog(t, s)); n != 5 {
		t.Fatalf("log after restart holds %d events, want 5", n)
	}
}

func TestAcknowledge(t *testing.T) {
	ctx := t.Context()
	clock := repo.NewRevClock(1)
	t.Run("threshold", func(t *testing.T) {
		e := newEnv(t, t.TempDir()+"/log.sqlite")
		e.tune.ackRows = 5
		e.tune.ackIdle = time.Hour
		s := e.open(t)
		a := testDID(1)
		st := e.accts.store(t, a)
		for range 12 {
			mustWrite(t, st, clock)
		}
		if err := s.Flush(ctx, a); err != nil {
			t.Fatal(err)
		}
		eventually(t, "the outbox is acknowledged", func() bool { return e.accts.outboxLen(t, a) == 0 })
		if n := len(readLog(t, s)); n != 12 {
			t.Fatalf("log holds %d events", n)
		}
	})
	t.Run("idle", func(t *testing.T) {
		e := newEnv(t, t.TempDir()+"/log.sqlite")
		e.tune.ackRows = 1000
		e.tune.ackIdle = time.Millisecond
		s := e.open(t)
		a := testDID(1)
		st := e.accts.store(t, a)
		for range 2 {
			mustWrite(t, st, clock)
		}
		if err := s.Flush(ctx, a); err != nil {
			t.Fatal(err)
		}
		eventually(t, "the outbox is acknowledged when idle", func() bool { return e.accts.outboxLen(t, a) == 0 })
		eventually(t, "Stats counts the acknowledgement", func() bool { return s.Stats().Acks >= 1 })
	})
}

func TestDrainFailure(t *testing.T) {
	ctx := t.Context()
	e := newEnv(t, t.TempDir()+"/log.sqlite")
	e.tune.drainRetries = 1 << 20
	s := e.open(t)
	a, b := testDID(1), testDID(2)
	clock := repo.NewRevClock(1)
	var revs []syntax.TID
	for range 3 {
		revs = append(revs, mustWrite(t, e.accts.store(t, a), clock))
	}
	mustWrite(t, e.accts.store(t, b), clock)
	var failing atomic.Bool
	failing.Store(true)
	e.accts.mu.Lock()
	e.accts.fail = func(did syntax.DID) error {
		if did == a && failing.Load() {
			return errInjected
		}
		return nil
	}
	e.accts.mu.Unlock()
	if err := s.Flush(ctx, a); !errors.Is(err, errInjected) {
		t.Fatalf("Flush of an account that cannot be opened: %v", err)
	}
	// The other account is not held up, and an Append for the failing
	// account still goes out.
	if err := s.Flush(ctx, b); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Append(ctx, a, KindIdentity, identityBody(t, a, "")); err != nil {
		t.Fatal(err)
	}
	if n := len(readLog(t, s)); n != 2 {
		t.Fatalf("log holds %d events while the account fails, want 2", n)
	}
	// Once it can be opened, the account is drained by a retry, without
	// another notification.
	failing.Store(false)
	eventually(t, "the failed account is drained by a retry", func() bool { return len(readLog(t, s)) == 5 })
	got := readLog(t, s)
	checkGapless(t, got, 1)
	for i, rev := range revs {
		if g := got[2+i]; g.did != string(a) || g.rev != string(rev) {
			t.Fatalf("event %d = %s %s, want %s %s", 2+i, g.did, g.rev, a, rev)
		}
	}
	if st := s.Stats(); st.DrainErrors < 1 {
		t.Fatalf("DrainErrors = %d", st.DrainErrors)
	}
}

func TestClose(t *testing.T) {
	ctx := t.Context()
	e := newEnv(t, t.TempDir()+"/log.sqlite")
	s := e.open(t)
	a := testDID(1)
	clock := repo.NewRevClock(1)
	for range 20 {
		mustWrite(t, e.accts.store(t, a), clock)
	}
	s.Notify(a)
	// Close drains what was notified.
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	if _, err := s.Append(ctx, a, KindIdentity, identityBody(t, a, "")); !errors.Is(err, ErrClosed) {
		t.Fatalf("Append after Close: %v", err)
	}
	if err := s.Flush(ctx, a); !errors.Is(err, ErrClosed) {
		t.Fatalf("Flush after Close: %v", err)
	}
	if err := s.ResetAccount(ctx, a); !errors.Is(err, ErrClosed) {
		t.Fatalf("ResetAccount after Close: %v", err)
	}
	if err := s.Recover(ctx, []syntax.DID{a}); !errors.Is(err, ErrClosed) {
		t.Fatalf("Recover after Close: %v", err)
	}
	s.Notify(a)

	s = e.open(t)
	got := readLog(t, s)
	checkGapless(t, got, 1)
	if len(got) != 20 {
		t.Fatalf("log holds %d events after Close, want 20", len(got))
	}
}

func TestCanceledAppend(t *testing.T) {
	e := newEnv(t, t.TempDir()+"/log.sqlite")
	s := e.open(t)
	a := testDID(1)
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	if _, err := s.Append(ctx, a, KindIdentity, identityBody(t, a, "")); !errors.Is(err, context.Canceled) {
		t.Fatalf("Append with a canceled context: %v", err)
	}
	seq, err := s.Append(t.Context(), a, KindIdentity, identityBody(t, a, ""))
	if err != nil {
		t.Fatal(err)
	}
	// The canceled event either was dropped or took seq 1; nothing else.
	got := readLog(t, s)
	checkGapless(t, got, 1)
	if int64(len(got)) != seq || (seq != 1 && seq != 2) {
		t.Fatalf("seq %d with %d events logged", seq, len(got))
	}
}

func TestOpenErrors(t *testing.T) {
	ctx := t.Context()
	okOpen := func(context.Context, syntax.DID) (Outbox, func(), error) { return nil, nil, nil }
	if _, err := Open(ctx, Options{Open: okOpen}); err == nil {
		t.Error("Open without a path succeeded")
	}
	if _, err := Open(ctx, Options{Path: t.TempDir() + "/log.sqlite"}); err == nil {
		t.Error("Open without Options.Open succeeded")
	}
	if _, err := Open(ctx, Options{Path: "mysql://db", Open: okOpen}); err == nil {
		t.Error("Open with an unsupported URL succeeded")
	}
	s, err := Open(ctx, Options{Path: t.TempDir() + "/log.sqlite", Open: okOpen})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if s.opts.Retention != DefaultRetention {
		t.Fatalf("default retention %v", s.opts.Retention)
	}
	if latest, err := s.LatestSeq(ctx); err != nil || latest != 0 {
		t.Fatalf("LatestSeq of a new log = %d, %v", latest, err)
	}
	if oldest, err := s.OldestSeq(ctx); err != nil || oldest != 0 {
		t.Fatalf("OldestSeq of a new log = %d, %v", oldest, err)
	}
}

// The Sequencer serves a subscribeRepos stream: replay from the log, then
// live events, read by the stream package's consumer.
func TestStreamServer(t *testing.T) {
	e := newEnv(t, t.TempDir()+"/log.sqlite")
	var live atomic.Pointer[stream.Server]
	e.opts.Publish = func(ev stream.Event) {
		if p := live.Load(); p != nil {
			p.Publish(ev)
		}
	}
	s := e.open(t)
	srv := stream.NewServer(s, &stream.ServerOptions{PingInterval: -1})
	live.Store(srv)
	hs := httptest.NewServer(srv)
	defer hs.Close()
	defer srv.Shutdown(context.Background())

	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
	defer cancel()
	a := testDID(1)
	clock := repo.NewRevClock(1)
	for range 3 {
		mustWrite(t, e.accts.store(t, a), clock)
	}
	if err := s.Flush(ctx, a); err != nil {
		t.Fatal(err)
	}
	var (
		mu   sync.Mutex
		seqs []int64
	)
	got := make(chan struct{})
	handler := func(_ context.Context, m stream.Message) error {
		mu.Lock()
		defer mu.Unlock()
		seqs = append(seqs, m.Seq)
		if len(seqs) == 6 {
			close(got)
		}
		return nil
	}
	subCtx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() {
		done <- stream.Subscribe(subCtx, "ws"+strings.TrimPrefix(hs.URL, "http"), 0, handler, &stream.SubscribeOptions{MinBackoff: time.Millisecond})
	}()
	for range 3 {
		mustWrite(t, e.accts.store(t, a), clock)
		s.Notify(a)
	}
	select {
	case <-got:
	case <-ctx.Done():
		mu.Lock()
		t.Fatalf("received seqs %v before the deadline", seqs)
	}
	stop()
	<-done
	mu.Lock()
	defer mu.Unlock()
	for i, seq := range seqs {
		if seq != int64(i+1) {
			t.Fatalf("received seqs %v", seqs)
		}
	}
}

// Accounts notified while a batch is being built join it: many accounts'
// events go into one transaction.
func TestGroupCommit(t *testing.T) {
	ctx := t.Context()
	e := newEnv(t, t.TempDir()+"/log.sqlite")
	e.tune.batchAccounts = 100
	e.tune.batchEvents = 1000
	e.tune.accountRows = 100
	gate := testDID(99)
	entered, release := make(chan struct{}), make(chan struct{})
	var once sync.Once
	e.opts.Open = func(ctx context.Context, did syntax.DID) (Outbox, func(), error) {
		if did == gate {
			once.Do(func() {
				close(entered)
				<-release
			})
		}
		return e.accts.open(ctx, did)
	}
	s := e.open(t)
	dids := testDIDs(10)
	clock := repo.NewRevClock(1)
	for _, did := range append(dids, gate) {
		for range 3 {
			mustWrite(t, e.accts.store(t, did), clock)
		}
	}
	// The loop is held inside its first batch while the others notify.
	s.Notify(gate)
	<-entered
	for _, did := range dids {
		s.Notify(did)
	}
	if n := s.Stats().PendingAccounts; n != len(dids) {
		t.Fatalf("PendingAccounts = %d, want %d", n, len(dids))
	}
	close(release)
	if err := s.Recover(ctx, append(dids, gate)); err != nil {
		t.Fatal(err)
	}
	st := s.Stats()
	if st.Events != 33 || st.Batches != 1 {
		t.Fatalf("%d events in %d batches, want 33 in 1", st.Events, st.Batches)
	}
	checkGapless(t, readLog(t, s), 1)
}
