package sequencer

import (
	"context"
	"testing"

	"github.com/welkin-atproto/welkin/atproto/repo"
	"github.com/welkin-atproto/welkin/atproto/syntax"
	"github.com/welkin-atproto/welkin/pds/actorstore"
)

// lastRow writes a commit to did's store and returns its outbox row.
func lastRow(t *testing.T, st *actorstore.Store, clock *repo.RevClock) actorstore.OutboxRow {
	t.Helper()
	rev := mustWrite(t, st, clock)
	rows, err := st.Outbox(context.Background(), 0, actorstore.MaxOutboxBatch)
	if err != nil {
		t.Fatal(err)
	}
	row := rows[len(rows)-1]
	if row.Rev != string(rev) {
		t.Fatalf("last outbox row has rev %s, want %s", row.Rev, rev)
	}
	return row
}

func TestSubmit(t *testing.T) {
	forEachBackend(t, func(t *testing.T, path string) {
		ctx := t.Context()
		e := newEnv(t, path)
		e.tune.noAck = true
		s := e.open(t)
		clock := repo.NewRevClock(5)
		var want []syntax.TID

		// Rows handed over in order are sequenced as they are.
		for round := range 3 {
			for i := range 3 {
				did := testDID(i)
				row := lastRow(t, e.accts.store(t, did), clock)
				want = append(want, syntax.TID(row.Rev))
				if err := s.Submit(did, row)(ctx); err != nil {
					t.Fatalf("round %d, account %d: %v", round, i, err)
				}
			}
		}
		if got := s.Stats().Handed; got != 9 {
			t.Fatalf("Stats.Handed = %d after 9 handed rows, want 9", got)
		}

		// A row handed over after one that was not: the loop reads the
		// outbox and sequences both, in order.
		did := testDID(0)
		st := e.accts.store(t, did)
		skipped := lastRow(t, st, clock)
		row := lastRow(t, st, clock)
		want = append(want, syntax.TID(skipped.Rev), syntax.TID(row.Rev))
		if err := s.Submit(did, row)(ctx); err != nil {
			t.Fatal(err)
		}
		if got := s.Stats().Handed; got != 9 {
			t.Fatalf("Stats.Handed = %d after a row out of order, want it unchanged (9)", got)
		}
		// Handing over a row already sequenced adds nothing.
		if err := s.Submit(did, skipped)(ctx); err != nil {
			t.Fatal(err)
		}

		got := readLog(t, s)
		checkGapless(t, got, 1)
		if len(got) != len(want) {
			t.Fatalf("log holds %d events, want %d", len(got), len(want))
		}
		for i, g := range got {
			if g.rev != string(want[i]) {
				t.Fatalf("event %d has rev %s, want %s", i, g.rev, want[i])
			}
		}
		if c, err := s.Cursor(ctx, did); err != nil || c != row.ID {
			t.Fatalf("Cursor = %d, %v; want %d", c, err, row.ID)
		}
		if c, err := s.Cursor(ctx, testDID(99)); err != nil || c != 0 {
			t.Fatalf("Cursor of an unknown account = %d, %v; want 0", c, err)
		}
	})
}

func TestSubmitAfterClose(t *testing.T) {
	e := newEnv(t, t.TempDir()+"/log.db")
	s := e.open(t)
	s.Close()
	st := e.accts.store(t, testDID(1))
	row := lastRow(t, st, repo.NewRevClock(5))
	if err := s.Submit(testDID(1), row)(t.Context()); err != ErrClosed {
		t.Fatalf("Submit after Close: %v, want ErrClosed", err)
	}
}

func TestDurableMark(t *testing.T) {
	forEachBackend(t, func(t *testing.T, path string) {
		ctx := t.Context()
		e := newEnv(t, path)
		s := e.open(t)
		if m, err := s.DurableMark(ctx); err != nil || m != 0 {
			t.Fatalf("DurableMark of a new log = %d, %v; want 0", m, err)
		}
		for _, set := range []int64{5, 3, 9} {
			if err := s.SetDurableMark(ctx, set); err != nil {
				t.Fatal(err)
			}
		}
		if m, err := s.DurableMark(ctx); err != nil || m != 9 {
			t.Fatalf("DurableMark = %d, %v; want 9", m, err)
		}
		if err := s.SetDurableMark(ctx, 4); err != nil {
			t.Fatal(err)
		}
		s.Close()
		s = e.open(t)
		if m, err := s.DurableMark(ctx); err != nil || m != 9 {
			t.Fatalf("DurableMark after moving it back and reopening = %d, %v; want 9", m, err)
		}
	})
}
