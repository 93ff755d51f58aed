package actorstore

import (
	"bytes"
	"context"
	"errors"
	"testing"

	"github.com/welkin-atproto/welkin/atproto/crypto"
	"github.com/welkin-atproto/welkin/atproto/repo"
)

var errFault = errors.New("injected fault")

// commitLater builds a commit of writes on the stored head and hands it to
// ApplyCommitLater, with the write lock held as a writer holds it.
func commitLater(t *testing.T, s *Store, key crypto.PrivateKey, clock *repo.RevClock, hooks LaterHooks, writes ...repo.RecordWrite) (*repo.CommitResult, int64) {
	t.Helper()
	ctx := t.Context()
	s.Lock()
	defer s.Unlock()
	r := openRepo(t, s)
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
