package sequencer

import (
	"testing"

	"github.com/welkin-atproto/welkin/atproto/data"
	"github.com/welkin-atproto/welkin/atproto/repo"
	"github.com/welkin-atproto/welkin/atproto/syntax"
	"github.com/welkin-atproto/welkin/pds/actorstore"
)

// TestSubmitBeforeStored hands over a row that is not in the outbox yet,
// as a writer using actorstore.ApplyCommitLater does, while older rows the
// sequencer has not seen are: the loop reads those from the outbox and
// takes the handed-over row after them. A handed-over row that does not
// follow the outbox is not logged, and its wait fails.
func TestSubmitBeforeStored(t *testing.T) {
	ctx := t.Context()
	forEachBackend(t, func(t *testing.T, path string) {
		e := newEnv(t, path)
		s := e.open(t)
		did := testDID(1)
		st := e.accts.store(t, did)
		clock := repo.NewRevClock(1)
		revs := []syntax.TID{mustWrite(t, st, clock), mustWrite(t, st, clock)}
		rows, err := st.Outbox(ctx, 0, 0)
		if err != nil || len(rows) != 2 {
			t.Fatalf("outbox = %d rows, %v; want 2", len(rows), err)
		}

		rev, err := clock.Next(revs[1])
		if err != nil {
			t.Fatal(err)
		}
		body := commitBody(t, did, rev, revs[1], data.CIDForCBOR([]byte(rev)))
		wait := s.Submit(did, actorstore.OutboxRow{ID: rows[1].ID + 1, Rev: string(rev), Kind: actorstore.KindCommit, Body: body})
		if err := wait(ctx); err != nil {
			t.Fatalf("wait for a row handed over before it is stored: %v", err)
		}
		got := readLog(t, s)
		checkGapless(t, got, 1)
		want := append(revs, rev)
		if len(got) != len(want) {
			t.Fatalf("log holds %d events, want %d", len(got), len(want))
		}
		for i, r := range want {
			if got[i].rev != string(r) {
				t.Fatalf("event %d has rev %s, want %s", i+1, got[i].rev, r)
			}
		}

		// A row two IDs above the last one sequenced: the one between is
		// neither handed over nor stored.
		s.Notify(did)
		rev2, err := clock.Next(rev)
		if err != nil {
			t.Fatal(err)
		}
		body = commitBody(t, did, rev2, rev, data.CIDForCBOR([]byte(rev2)))
		wait = s.Submit(did, actorstore.OutboxRow{ID: rows[1].ID + 3, Rev: string(rev2), Kind: actorstore.KindCommit, Body: body})
		if err := wait(ctx); err == nil {
			t.Fatal("wait for a row that does not follow the outbox succeeded")
		}
		if n := len(readLog(t, s)); n != len(want) {
			t.Fatalf("log holds %d events after a row that does not follow, want %d", n, len(want))
		}
	})
}
