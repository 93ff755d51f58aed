package pds

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/welkin-atproto/welkin/atproto/syntax"
	"github.com/welkin-atproto/welkin/pds/actorstore"
)

// syncStores makes the written account databases durable and moves the
// durable mark to the end of the log; after a store fails to close, it
// leaves the mark where it is.
func TestSyncStoresMovesDurableMark(t *testing.T) {
	ctx := context.Background()
	p := newTestPDS(t, nil)
	did, _ := seedAccount(t, p, "marked.test")
	s := p.srv
	if _, ok := s.unsynced.take()[did]; !ok {
		t.Fatalf("the account's first commit did not mark its database as unsynced")
	}
	s.unsynced.add(did)
	if err := s.syncStores(ctx); err != nil {
		t.Fatal(err)
	}
	latest, err := s.seq.LatestSeq(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if mark, err := s.seq.DurableMark(ctx); err != nil || mark != latest || latest == 0 {
		t.Fatalf("durable mark %d (%v) after syncStores, want the latest seq %d", mark, err, latest)
	}
	if left := s.unsynced.take(); len(left) != 0 {
		t.Fatalf("accounts still unsynced after syncStores: %v", left)
	}

	// A new event, then a store that failed to close and cannot be
	// reopened: the mark stays. Once it can be, the mark moves.
	if err := s.emitIdentity(ctx, did, "marked.test"); err != nil {
		t.Fatal(err)
	}
	ghost := syntax.DID("did:plc:aaaaaaaaaaaaaaaaaaaaaaaa")
	if err := os.MkdirAll(actorstore.Dir(s.actors.dir, ghost), 0o700); err != nil {
		t.Fatal(err)
	}
	// A directory where the database file should be: opening fails.
	if err := os.MkdirAll(filepath.Join(actorstore.Dir(s.actors.dir, ghost), actorstore.FileName), 0o700); err != nil {
		t.Fatal(err)
	}
	s.actors.noteCloseFailed(ghost)
	if err := s.syncStores(ctx); err == nil {
		t.Fatal("syncStores with a store that failed to close and cannot be reopened succeeded")
	}
	if mark, err := s.seq.DurableMark(ctx); err != nil || mark != latest {
		t.Fatalf("durable mark %d (%v) after a failed close, want it kept at %d", mark, err, latest)
	}
	if err := os.RemoveAll(actorstore.Dir(s.actors.dir, ghost)); err != nil {
		t.Fatal(err)
	}
	if err := s.syncStores(ctx); err != nil {
		t.Fatal(err)
	}
	if mark, err := s.seq.DurableMark(ctx); err != nil || mark <= latest {
		t.Fatalf("durable mark %d (%v) once the failed store is gone, want it past %d", mark, err, latest)
	}
}

// An account whose database gave up storing an acknowledged commit is
// unavailable, and the durable mark stays below the commit's event, until
// the next start restores it from the log.
func TestUnstoredCommitHoldsDurableMark(t *testing.T) {
	ctx := context.Background()
	p := newTestPDS(t, nil)
	did, _ := seedAccount(t, p, "unstored.test")
	other, _ := seedAccount(t, p, "stored.test")
	s := p.srv
	if err := s.syncStores(ctx); err != nil {
		t.Fatal(err)
	}
	mark, err := s.seq.DurableMark(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.emitIdentity(ctx, other, "stored.test"); err != nil {
		t.Fatal(err)
	}
	s.actors.noteUnstored(did, errors.New("injected: commit not stored"))
	if _, _, err := s.actors.get(ctx, did); err == nil {
		t.Fatal("the account of an unstored commit can still be opened")
	}
	if _, release, err := s.actors.get(ctx, other); err != nil {
		t.Fatalf("another account: %v", err)
	} else {
		release()
	}
	if err := s.syncStores(ctx); err == nil {
		t.Fatal("syncStores with an unstored commit succeeded")
	}
	if got, err := s.seq.DurableMark(ctx); err != nil || got != mark {
		t.Fatalf("durable mark %d (%v) with an unstored commit, want it kept at %d", got, err, mark)
	}
}
