package pds

import (
	"context"
	"testing"
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

	// A new event, then a failed close: the mark stays.
	if err := s.emitIdentity(ctx, did, "marked.test"); err != nil {
		t.Fatal(err)
	}
	s.actors.closeFailed.Store(true)
	if err := s.syncStores(ctx); err == nil {
		t.Fatal("syncStores after a failed close succeeded")
	}
	if mark, err := s.seq.DurableMark(ctx); err != nil || mark != latest {
		t.Fatalf("durable mark %d (%v) after a failed close, want it kept at %d", mark, err, latest)
	}
}
