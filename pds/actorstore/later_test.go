package actorstore

import (
	"bytes"
	"context"
	"errors"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/welkin-atproto/welkin/atproto/crypto"
	"github.com/welkin-atproto/welkin/atproto/data"
	"github.com/welkin-atproto/welkin/atproto/repo"
	"github.com/welkin-atproto/welkin/atproto/syntax"
)

var errFault = errors.New("injected fault")

// commitLater builds a commit of writes on the stored head and hands it to
// ApplyCommitLater, with the write lock held as a writer holds it.
func commitLater(t *testing.T, s *Store, key crypto.PrivateKey, clock *repo.RevClock, hooks LaterHooks, writes ...repo.RecordWrite) (*repo.CommitResult, int64) {
	t.Helper()
	s.Lock()
	defer s.Unlock()
	return commitAndQueue(t, s, openRepo(t, s), key, clock, hooks, writes...)
}

// commitAndQueue applies writes to r, commits and hands the commit to
// ApplyCommitLater; the caller holds the store's write lock.
func commitAndQueue(t testing.TB, s *Store, r *repo.Repo, key crypto.PrivateKey, clock *repo.RevClock, hooks LaterHooks, writes ...repo.RecordWrite) (*repo.CommitResult, int64) {
	t.Helper()
	ctx := t.Context()
	if err := r.Apply(ctx, writes); err != nil {
		t.Fatal(err)
	}
	res, err := r.Commit(ctx, key, clock)
	if err != nil {
		t.Fatal(err)
	}
	id, err := s.ApplyCommitLater(res, eventFor(res), hooks)
	if err != nil {
		t.Fatal(err)
	}
	return res, id
}

// TestApplyCommitLater stores commits in the background: the outbox row
// gets the reserved ID, which follows the automatic ones and stays above a
// raised floor, and Head, reads and the next writer see the commit once
// WaitApplied or Lock returns.
func TestApplyCommitLater(t *testing.T) {
	ctx := t.Context()
	key := testKey(t)
	clock := repo.NewRevClock(1)
	s := openStore(t, t.TempDir(), testDID)
	c1 := write(t, s, key, clock, create(t, post, "3jzfcijpj2z2a", "one"))
	rows, err := s.Outbox(ctx, 0, 0)
	if err != nil || len(rows) != 1 {
		t.Fatalf("outbox = %+v, %v", rows, err)
	}

	// The first attempt is held until the test has taken the write lock,
	// so that Lock has a commit in flight to wait for.
	hold := make(chan struct{})
	s.laterFault = func(attempt int) error {
		if attempt == 0 {
			<-hold
		}
		return nil
	}
	done := make(chan error, 1)
	c2, id2 := commitLater(t, s, key, clock, LaterHooks{Done: func(err error) { done <- err }},
		create(t, post, "3jzfcijpj2z2b", "two"))
	if id2 != rows[0].ID+1 {
		t.Fatalf("reserved outbox ID %d, want %d", id2, rows[0].ID+1)
	}
	locked := make(chan struct{})
	go func() {
		s.Lock()
		close(locked)
	}()
	close(hold)
	<-locked
	// Lock returned: the commit in flight is stored.
	_, rev, ok, err := s.readHead(ctx)
	s.Unlock()
	if err != nil || !ok || rev != string(c2.Rev) {
		t.Fatalf("stored head once Lock returned: %q %v %v, want %q (after %q)", rev, ok, err, c2.Rev, c1.Rev)
	}
	if err := <-done; err != nil {
		t.Fatalf("Done: %v", err)
	}
	s.laterFault = nil

	if err := s.RaiseOutboxIDs(ctx, 40); err != nil {
		t.Fatal(err)
	}
	c3, id3 := commitLater(t, s, key, clock, LaterHooks{}, create(t, post, "3jzfcijpj2z2c", "three"))
	if id3 != 41 {
		t.Fatalf("reserved outbox ID after raising the floor to 40: %d, want 41", id3)
	}
	if err := s.WaitApplied(ctx); err != nil {
		t.Fatal(err)
	}
	head, rev, ok, err := s.Head(ctx)
	if err != nil || !ok || head != c3.CID || rev != string(c3.Rev) {
		t.Fatalf("Head = %v %q %v %v, want %v %q", head, rev, ok, err, c3.CID, c3.Rev)
	}
	if _, b, err := s.GetRecord(ctx, post, "3jzfcijpj2z2c"); err != nil || !bytes.Equal(b, record(t, post, "three")) {
		t.Fatalf("record of the later commit: %x, %v", b, err)
	}
	rows, err = s.Outbox(ctx, 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	var ids []int64
	for _, r := range rows {
		ids = append(ids, r.ID)
	}
	if len(rows) != 3 || rows[1].ID != id2 || rows[2].ID != id3 ||
		!bytes.Equal(rows[1].Body, eventFor(c2)) || rows[2].Rev != string(c3.Rev) {
		t.Fatalf("outbox IDs %v, want [%d %d %d] with the commits' events", ids, rows[0].ID, id2, id3)
	}
	// An automatic ID (a #sync row) follows the reserved ones.
	c4 := write(t, s, key, clock, create(t, post, "3jzfcijpj2z2d", "four"))
	rows, err = s.Outbox(ctx, id3, 0)
	if err != nil || len(rows) != 1 || rows[0].ID != id3+1 || rows[0].Rev != string(c4.Rev) {
		t.Fatalf("outbox after an automatic ID: %+v, %v; want ID %d", rows, err, id3+1)
	}
}

// TestApplyCommitLaterRefuses checks that what can be refused is refused
// before anything runs in the background.
func TestApplyCommitLaterRefuses(t *testing.T) {
	ctx := t.Context()
	s := openStore(t, t.TempDir(), testDID)
	if _, err := s.ApplyCommitLater(&repo.CommitResult{}, nil, LaterHooks{}); !errors.Is(err, ErrInvalidCommit) {
		t.Fatalf("malformed commit: %v, want ErrInvalidCommit", err)
	}
	if err := s.WaitApplied(ctx); err != nil {
		t.Fatalf("WaitApplied after a refused commit: %v", err)
	}
	if _, _, ok, err := s.Head(ctx); err != nil || ok {
		t.Fatalf("Head after a refused commit: %v %v", ok, err)
	}
}

// TestApplyCommitLaterRetries stores a commit whose first attempts fail.
func TestApplyCommitLaterRetries(t *testing.T) {
	ctx := t.Context()
	key := testKey(t)
	clock := repo.NewRevClock(1)
	s := openStore(t, t.TempDir(), testDID)
	s.laterFault = func(attempt int) error {
		if attempt < 2 {
			return errFault
		}
		return nil
	}
	var retried []error // written by the background goroutine before Done
	done := make(chan error, 1)
	c, _ := commitLater(t, s, key, clock, LaterHooks{
		Retry: func(err error) { retried = append(retried, err) },
		Done:  func(err error) { done <- err },
	}, create(t, post, "3jzfcijpj2z2a", "one"))
	if err := <-done; err != nil {
		t.Fatalf("Done after two failed attempts: %v", err)
	}
	if len(retried) != 2 || !errors.Is(retried[0], errFault) {
		t.Fatalf("Retry saw %v, want two injected faults", retried)
	}
	if _, rev, _, err := s.Head(ctx); err != nil || rev != string(c.Rev) {
		t.Fatalf("Head = %q, %v; want %q", rev, err, c.Rev)
	}
}

// TestApplyCommitLaterGivesUp closes a store while its commit keeps
// failing: Close reports it, and the failure sticks to the store until it
// is reopened without the commit.
func TestApplyCommitLaterGivesUp(t *testing.T) {
	ctx := t.Context()
	key := testKey(t)
	clock := repo.NewRevClock(1)
	dir := t.TempDir()
	s, err := Open(ctx, dir, testDID)
	if err != nil {
		t.Fatal(err)
	}
	c1 := write(t, s, key, clock, create(t, post, "3jzfcijpj2z2a", "one"))
	s.laterFault = func(int) error { return errFault }
	failing := make(chan struct{})
	var once bool
	done := make(chan error, 1)
	commitLater(t, s, key, clock, LaterHooks{
		Retry: func(error) {
			if !once {
				once = true
				close(failing)
			}
		},
		Done: func(err error) { done <- err },
	}, create(t, post, "3jzfcijpj2z2b", "two"))
	<-failing
	if err := s.Close(); !errors.Is(err, errFault) {
		t.Fatalf("Close with a commit that cannot be stored: %v, want the fault", err)
	}
	if err := <-done; !errors.Is(err, errFault) {
		t.Fatalf("Done: %v, want the fault", err)
	}
	for what, err := range map[string]error{
		"WaitApplied": s.WaitApplied(ctx),
		"Sync":        s.Sync(ctx),
	} {
		if !errors.Is(err, errFault) {
			t.Errorf("%s after giving up: %v, want the fault", what, err)
		}
	}
	if _, _, _, err := s.Head(ctx); !errors.Is(err, errFault) {
		t.Errorf("Head after giving up: %v, want the fault", err)
	}

	s = openStore(t, dir, testDID)
	if _, rev, _, err := s.Head(ctx); err != nil || rev != string(c1.Rev) {
		t.Fatalf("Head after reopening = %q, %v; want %q, the last commit stored", rev, err, c1.Rev)
	}
}

// TestApplyCommitLaterStaleHead hands over a commit built on a head that
// is not the stored one (a caller without the lock): it is not stored, and
// the store refuses writes from then on.
func TestApplyCommitLaterStaleHead(t *testing.T) {
	ctx := context.Background()
	key := testKey(t)
	clock := repo.NewRevClock(1)
	s := openStore(t, t.TempDir(), testDID)
	write(t, s, key, clock, create(t, post, "3jzfcijpj2z2a", "one"))
	stale := openRepo(t, s)
	write(t, s, key, clock, create(t, post, "3jzfcijpj2z2b", "two"))
	if err := stale.Apply(ctx, []repo.RecordWrite{create(t, post, "3jzfcijpj2z2c", "three")}); err != nil {
		t.Fatal(err)
	}
	res, err := stale.Commit(ctx, key, clock)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.ApplyCommitLater(res, eventFor(res), LaterHooks{}); err != nil {
		t.Fatal(err)
	}
	if err := s.WaitApplied(ctx); !errors.Is(err, ErrConcurrentWrite) {
		t.Fatalf("WaitApplied: %v, want ErrConcurrentWrite", err)
	}
	if _, err := writeErr(s, key, clock, create(t, post, "3jzfcijpj2z2d", "four")); !errors.Is(err, ErrConcurrentWrite) {
		t.Fatalf("a write after the failure: %v, want the failure", err)
	}
}

// TestApplyCommitLaterBatches queues commits behind one being stored: the
// writer builds each on CommitHead without waiting, reading the blocks of
// the commits being stored or queued through CommitStore, and the queue is
// then stored in one transaction as soon as WaitApplied asks for it.
func TestApplyCommitLaterBatches(t *testing.T) {
	ctx := t.Context()
	key := testKey(t)
	clock := repo.NewRevClock(1)
	s := openStore(t, t.TempDir(), testDID)
	c0 := write(t, s, key, clock, create(t, post, "3jzfcijpj2z2a", "zero"))

	// Every attempt at storing a batch passes here; the first is held
	// until the other commits are queued.
	hold, entered := make(chan struct{}), make(chan struct{})
	var attempts int // written by the storing goroutine before Done
	s.laterFault = func(attempt int) error {
		attempts++
		if attempts == 1 {
			close(entered)
			<-hold
		}
		return nil
	}
	var (
		order []int // written by Done hooks, in one goroutine per batch
		mu    sync.Mutex
		done  = make(chan struct{}, 8)
	)
	hooks := func(i int) LaterHooks {
		return LaterHooks{Done: func(err error) {
			if err != nil {
				t.Errorf("Done of commit %d: %v", i, err)
			}
			mu.Lock()
			order = append(order, i)
			mu.Unlock()
			done <- struct{}{}
		}}
	}
	var want []string
	for i, rkey := range []string{"3jzfcijpj2z2b", "3jzfcijpj2z2c", "3jzfcijpj2z2d", "3jzfcijpj2z2e", "3jzfcijpj2z2f"} {
		// queueCommit reopens the repository at the queued head each
		// time, so that the tree is read from the queue, not memory.
		res := queueCommit(t, s, key, clock, hooks(i), create(t, post, rkey, "post "+rkey))
		want = append(want, string(res.Rev))
		if i == 0 {
			// Asked for, the first is stored alone, and held there while
			// the others queue; the store's head does not move meanwhile.
			s.pendingLater()
			<-entered
			if _, rev, _, err := s.readHead(ctx); err != nil || rev != string(c0.Rev) {
				t.Fatalf("stored head while held: %q %v, want %q", rev, err, c0.Rev)
			}
		}
	}
	close(hold)
	if err := s.WaitApplied(ctx); err != nil {
		t.Fatal(err)
	}
	for range want {
		<-done
	}
	if attempts != 2 {
		t.Errorf("%d transactions for 5 commits queued behind a held one, want 2", attempts)
	}
	mu.Lock()
	if !slices.Equal(order, []int{0, 1, 2, 3, 4}) {
		t.Errorf("Done hooks ran for commits %v, want them in order", order)
	}
	mu.Unlock()
	if _, rev, _, err := s.Head(ctx); err != nil || rev != want[len(want)-1] {
		t.Fatalf("Head = %q, %v; want %q", rev, err, want[len(want)-1])
	}
	for _, rkey := range []string{"3jzfcijpj2z2b", "3jzfcijpj2z2f"} {
		if _, b, err := s.GetRecord(ctx, post, syntax.RecordKey(rkey)); err != nil || !bytes.Equal(b, record(t, post, "post "+rkey)) {
			t.Errorf("record %s: %x, %v", rkey, b, err)
		}
	}
	// The second transaction left out the MST nodes that a later commit of
	// its batch replaced. The first and the last commit keep their whole
	// tree, which reads back; at least one commit between them does not,
	// and CommitAtRev does not offer it.
	br := s.BlockReader()
	defer br.Close()
	kept := 0
	for i, rev := range want {
		c, ok, err := s.CommitAtRev(ctx, rev)
		if err != nil {
			t.Fatal(err)
		}
		if (i == 0 || i == len(want)-1) && !ok {
			t.Errorf("commit %d (rev %s): tree not kept", i, rev)
		}
		if !ok {
			continue
		}
		kept++
		r, err := repo.OpenRepo(ctx, br, c)
		if err != nil {
			t.Fatalf("commit %d: %v", i, err)
		}
		n := 0
		if err := r.Walk(ctx, func(string, data.CID) error { n++; return nil }); err != nil || n != i+2 {
			t.Errorf("commit %d: walk found %d records, %v; want %d", i, n, err, i+2)
		}
	}
	if kept == len(want) {
		t.Error("every commit of the batch kept its tree: no replaced node was left out")
	}

	rows, err := s.Outbox(ctx, 0, 0)
	if err != nil || len(rows) != 6 {
		t.Fatalf("outbox: %d rows, %v; want 6", len(rows), err)
	}
	for i, r := range rows[1:] {
		if r.ID != rows[0].ID+int64(i)+1 || r.Rev != want[i] {
			t.Errorf("outbox row %d: ID %d rev %s, want ID %d rev %s", i+1, r.ID, r.Rev, rows[0].ID+int64(i)+1, want[i])
		}
	}
}

// queueCommit builds a commit of writes on CommitHead and queues it, as the
// PDS's writer does, without waiting for the commits queued before it.
func queueCommit(t testing.TB, s *Store, key crypto.PrivateKey, clock *repo.RevClock, hooks LaterHooks, writes ...repo.RecordWrite) *repo.CommitResult {
	t.Helper()
	res, _ := queueCommitID(t, s, key, clock, hooks, writes...)
	return res
}

// queueCommitID is queueCommit that also returns the outbox ID reserved
// for the commit's event.
func queueCommitID(t testing.TB, s *Store, key crypto.PrivateKey, clock *repo.RevClock, hooks LaterHooks, writes ...repo.RecordWrite) (*repo.CommitResult, int64) {
	t.Helper()
	ctx := t.Context()
	s.LockForCommit()
	defer s.Unlock()
	head, _, ok, err := s.CommitHead(ctx)
	if err != nil || !ok {
		t.Fatalf("CommitHead: %v %v", ok, err)
	}
	r, err := repo.OpenRepo(ctx, s.CommitStore(), head)
	if err != nil {
		t.Fatalf("open at the queued head %v: %v", head, err)
	}
	return commitAndQueue(t, s, r, key, clock, hooks, writes...)
}

// TestAckedRowsNotWritten acknowledges the outbox rows of queued commits
// before their batch is stored, as the sequencer does once their events
// are in the firehose log: the batch does not write those rows, and the
// IDs they had stay taken.
func TestAckedRowsNotWritten(t *testing.T) {
	ctx := t.Context()
	key, clock := testKey(t), repo.NewRevClock(3)
	s := openStore(t, t.TempDir(), testDID)
	write(t, s, key, clock, create(t, post, "3jzfcijpj2z2a", "stored at once"))

	hold, entered := make(chan struct{}), make(chan struct{})
	attempts := 0 // written by the storing goroutine only
	s.laterFault = func(int) error {
		attempts++
		if attempts == 1 {
			close(entered)
			<-hold
		}
		return nil
	}
	var ids []int64
	for i, rkey := range []string{"3jzfcijpj2z2b", "3jzfcijpj2z2c", "3jzfcijpj2z2d"} {
		_, id := queueCommitID(t, s, key, clock, LaterHooks{}, create(t, post, rkey, "queued "+rkey))
		ids = append(ids, id)
		if i == 0 {
			s.pendingLater() // the first batch, held alone
			<-entered
		}
	}
	// Every queued commit's event is in the log.
	if err := s.AckOutbox(ctx, ids[len(ids)-1]); err != nil {
		t.Fatal(err)
	}
	close(hold)
	if err := s.WaitApplied(ctx); err != nil {
		t.Fatal(err)
	}
	for _, rkey := range []string{"3jzfcijpj2z2b", "3jzfcijpj2z2d"} {
		if _, _, err := s.GetRecord(ctx, post, syntax.RecordKey(rkey)); err != nil {
			t.Errorf("record %s: %v", rkey, err)
		}
	}
	if rows, err := s.Outbox(ctx, 0, 0); err != nil || len(rows) != 0 {
		t.Fatalf("outbox after acknowledging every row: %d rows, %v; want none", len(rows), err)
	}
	// A row written now takes an ID above the unwritten ones.
	write(t, s, key, clock, create(t, post, "3jzfcijpj2z2e", "stored at once, after"))
	rows, err := s.Outbox(ctx, 0, 0)
	if err != nil || len(rows) != 1 || rows[0].ID <= ids[len(ids)-1] {
		t.Fatalf("outbox: %+v, %v; want one row above ID %d", rows, err, ids[len(ids)-1])
	}
}

// TestQueuedCommitsSeenByChecks reads, right after queueing commits, what
// a writer's checks read of the store: backlinks and blob metadata wait for
// the queue, so they see the queued commits.
func TestQueuedCommitsSeenByChecks(t *testing.T) {
	ctx := t.Context()
	s := openStore(t, t.TempDir(), testDID)
	key, clock := testKey(t), repo.NewRevClock(7)
	write(t, s, key, clock) // the first, empty commit
	a := blobCID("a")
	putTemp(t, s, a, "tempkeya", time.Now())
	const subj = "at://did:plc:z72i7hdynmk6r22z27h6tvur/app.bsky.feed.post/3k2a"
	queueCommit(t, s, key, clock, LaterHooks{}, put(like, "l1", likeRecord(t, subj)))
	last := queueCommit(t, s, key, clock, LaterHooks{}, put(profile, "self", withBlobs(t, profile, a)))

	if got, err := s.BacklinkConflicts(ctx, like, "subject.uri", subj); err != nil || !slices.Equal(got, []syntax.RecordKey{"l1"}) {
		t.Errorf("BacklinkConflicts right after queueing = %v, %v; want [l1]", got, err)
	}
	if m, err := s.Blob(ctx, a); err != nil || !m.Permanent() {
		t.Errorf("Blob right after queueing its reference: %+v, %v; want permanent", m, err)
	}
	if ok, err := s.HasBlobRefs(ctx, a); err != nil || !ok {
		t.Errorf("HasBlobRefs right after queueing = %v, %v", ok, err)
	}
	if _, rev, _, err := s.readHead(ctx); err != nil || rev != string(last.Rev) {
		t.Errorf("stored head = %q, %v; want %q", rev, err, last.Rev)
	}
}
