package pds

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/welkin-atproto/welkin/atproto/data"
	"github.com/welkin-atproto/welkin/atproto/syntax"
)

// TestActorsCloseIdle checks that stores idle since before the cutoff are
// closed, that a store in use is never closed, and that a closed store
// reopens on demand with its data.
func TestActorsCloseIdle(t *testing.T) {
	a := newActors(t.TempDir())
	t.Cleanup(a.closeAll)
	ctx := t.Context()
	did := func(i int) syntax.DID { return syntax.DID(fmt.Sprintf("did:plc:%024d", i)) }

	for i := range 3 {
		_, release, err := a.get(ctx, did(i))
		if err != nil {
			t.Fatal(err)
		}
		release()
	}
	// Store 3 stays borrowed.
	_, release3, err := a.get(ctx, did(3))
	if err != nil {
		t.Fatal(err)
	}
	if n := a.openCount(); n != 4 {
		t.Fatalf("%d stores open, want 4", n)
	}
	if n := a.closeIdle(time.Now().Add(-time.Hour)); n != 0 {
		t.Errorf("closeIdle with a cutoff an hour ago closed %d stores", n)
	}
	if n := a.closeIdle(time.Now().Add(time.Second)); n != 3 {
		t.Errorf("closeIdle closed %d stores, want the 3 idle ones", n)
	}
	if n := a.openCount(); n != 1 {
		t.Errorf("%d stores open after closeIdle, want the borrowed one", n)
	}
	st, release, err := a.get(ctx, did(0))
	if err != nil {
		t.Fatalf("reopening a closed store: %v", err)
	}
	if _, _, _, err := st.Head(ctx); err != nil {
		t.Errorf("reading a reopened store: %v", err)
	}
	release()
	release3()
	if n := a.closeIdle(time.Now().Add(time.Second)); n != 2 {
		t.Errorf("closeIdle after release closed %d stores, want 2", n)
	}
}

// TestActorsEvictOutsideLock checks that stores evicted beyond the limit
// are closed (synced) by the time waitCloses returns, and that the cache
// stays usable while they close.
func TestActorsEvictOutsideLock(t *testing.T) {
	a := newActors(t.TempDir())
	a.limit = 2
	t.Cleanup(a.closeAll)
	ctx := t.Context()
	did := func(i int) syntax.DID { return syntax.DID(fmt.Sprintf("did:plc:%024d", i)) }
	var first interface {
		Head(context.Context) (data.CID, string, bool, error)
	}
	for i := range 5 {
		st, release, err := a.get(ctx, did(i))
		if err != nil {
			t.Fatal(err)
		}
		if i == 0 {
			first = st
		}
		release()
	}
	a.waitCloses()
	if n := a.openCount(); n != 2 {
		t.Fatalf("%d stores open with a limit of 2", n)
	}
	if _, _, _, err := first.Head(ctx); err == nil {
		t.Fatal("the first store, evicted, still answers: it was not closed")
	}
	if failed := a.takeCloseFailed(); len(failed) != 0 {
		t.Fatalf("evicted stores failed to close: %v", failed)
	}
}
