package actorstore

import (
	"bytes"
	"errors"
	"testing"

	"github.com/welkin-atproto/welkin/atproto/repo"
)

// TestReplayCommit restores, on a store that lost its last commits, a
// commit taken from another copy: the record and head come back, no outbox
// row is written for it, and the next row's ID is above the floor.
func TestReplayCommit(t *testing.T) {
	ctx := t.Context()
	key := testKey(t)
	clock := repo.NewRevClock(1)
	full := openStore(t, t.TempDir(), testDID)
	c1 := write(t, full, key, clock, create(t, post, "3jzfcijpj2z2a", "one"))
	c2 := write(t, full, key, clock, create(t, post, "3jzfcijpj2z2b", "two"))

	// lost holds c1 only, as a store would after a power loss took c2.
	lost := openStore(t, t.TempDir(), testDID)
	id1, err := lost.ApplyCommit(ctx, c1, eventFor(c1))
	if err != nil {
		t.Fatal(err)
	}
	if err := lost.ReplayCommit(ctx, c1, 5); !errors.Is(err, ErrConcurrentWrite) {
		t.Fatalf("replaying the head commit again: %v, want ErrConcurrentWrite", err)
	}
	const floor = 7
	if err := lost.ReplayCommit(ctx, c2, floor); err != nil {
		t.Fatal(err)
	}
	head, rev, ok, err := lost.Head(ctx)
	if err != nil || !ok || head != c2.CID || rev != string(c2.Rev) {
		t.Fatalf("Head after replay = %v %q %v %v, want %v %q", head, rev, ok, err, c2.CID, c2.Rev)
	}
	_, b, err := lost.GetRecord(ctx, post, "3jzfcijpj2z2b")
	if err != nil || !bytes.Equal(b, record(t, post, "two")) {
		t.Fatalf("replayed record: %x, %v", b, err)
	}
	rows, err := lost.Outbox(ctx, 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	if len(rows) != 1 || rows[0].ID != id1 {
		t.Fatalf("outbox after replay = %+v, want only row %d", rows, id1)
	}
	// The repository at the replayed head is whole: a new commit builds
	// on it, and its outbox row comes after the floor.
	c3 := write(t, lost, key, clock, create(t, post, "3jzfcijpj2z2c", "three"))
	rows, err = lost.Outbox(ctx, id1, 0)
	if err != nil {
		t.Fatal(err)
	}
	if len(rows) != 1 || rows[0].ID != floor+1 || rows[0].Rev != string(c3.Rev) {
		t.Fatalf("outbox after the next commit = %+v, want one row with ID %d", rows, floor+1)
	}
	// A commit built on another head is refused.
	c4 := write(t, full, key, clock, create(t, post, "3jzfcijpj2z2d", "four"))
	if err := lost.ReplayCommit(ctx, c4, 1); !errors.Is(err, ErrConcurrentWrite) {
		t.Fatalf("replaying a commit built on another head: %v, want ErrConcurrentWrite", err)
	}
}
