package store_test

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/welkin-atproto/welkin/atproto/crypto"
	"github.com/welkin-atproto/welkin/atproto/data"
	"github.com/welkin-atproto/welkin/atproto/plc"
	"github.com/welkin-atproto/welkin/atproto/syntax"
	"github.com/welkin-atproto/welkin/internal/sqldb"
	"github.com/welkin-atproto/welkin/internal/sqldb/sqldbtest"
	"github.com/welkin-atproto/welkin/plc/store"
)

func key(t testing.TB, seed byte) crypto.PrivateKey {
	t.Helper()
	b := make([]byte, 32)
	for i := range b {
		b[i] = seed + byte(i)
	}
	k, err := crypto.ParsePrivateBytesK256(b)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// op builds a signed plc_operation; handle varies the content.
func op(t testing.TB, k crypto.PrivateKey, prev *string, handle string) *plc.Operation {
	t.Helper()
	o := &plc.Operation{
		RotationKeys:        []string{k.Public().DIDKey()},
		VerificationMethods: map[string]string{"atproto": k.Public().DIDKey()},
		AlsoKnownAs:         []string{"at://" + handle},
		Services:            map[string]plc.Service{"atproto_pds": {Type: "AtprotoPersonalDataServer", Endpoint: "https://pds.example.com"}},
		Prev:                prev,
	}
	if err := o.Sign(k); err != nil {
		t.Fatal(err)
	}
	return o
}

func entry(t testing.TB, did syntax.DID, o plc.Op, at time.Time) (plc.AuditEntry, data.CID) {
	t.Helper()
	c, err := o.CID()
	if err != nil {
		t.Fatal(err)
	}
	return plc.AuditEntry{DID: did, Operation: o, CID: c.String(), CreatedAt: at}, c
}

func genesis(t testing.TB, k crypto.PrivateKey, handle string) (syntax.DID, *plc.Operation) {
	t.Helper()
	g := op(t, k, nil, handle)
	did, err := plc.DIDForGenesis(g)
	if err != nil {
		t.Fatal(err)
	}
	return did, g
}

var t0 = time.Date(2025, 6, 1, 12, 0, 0, 0, time.UTC)

func TestStore(t *testing.T) {
	sqldbtest.ForEachBackend(t, func(t *testing.T, db *sqldb.DB) {
		ctx := context.Background()
		s, err := store.New(ctx, db)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { s.Close() })
		// Migrating twice is harmless.
		if _, err := store.New(ctx, db); err != nil {
			t.Fatalf("second New: %v", err)
		}
		t.Run("empty", func(t *testing.T) { testEmpty(t, s) })
		t.Run("append", func(t *testing.T) { testAppend(t, s) })
		t.Run("nullify", func(t *testing.T) { testNullify(t, s) })
		t.Run("export", func(t *testing.T) { testExport(t, s) })
		t.Run("race", func(t *testing.T) { testRace(t, s, db) })
	})
}

func testEmpty(t *testing.T, s store.Store) {
	ctx := context.Background()
	did := syntax.DID("did:plc:aaaaaaaaaaaaaaaaaaaaaaaa")
	log, err := s.AuditLog(ctx, did)
	if err != nil || len(log) != 0 {
		t.Fatalf("AuditLog = %v, %v", log, err)
	}
	if _, _, err := s.LastOp(ctx, did); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("LastOp = %v", err)
	}
	if err := s.Ping(ctx); err != nil {
		t.Fatal(err)
	}
}

func testAppend(t *testing.T, s store.Store) {
	ctx := context.Background()
	k := key(t, 1)
	did, g := genesis(t, k, "append.test")
	e0, c0 := entry(t, did, g, t0)
	before, err := s.LastSeq(ctx)
	if err != nil {
		t.Fatal(err)
	}
	seq0, err := s.Append(ctx, did, e0, nil, 0)
	if err != nil {
		t.Fatal(err)
	}
	if seq0 != before+1 {
		t.Fatalf("seq %d after %d", seq0, before)
	}
	// A second genesis for the same DID conflicts.
	if _, err := s.Append(ctx, did, e0, nil, 0); !errors.Is(err, store.ErrConflict) {
		t.Fatalf("duplicate genesis: %v", err)
	}
	p := c0.String()
	u := op(t, k, &p, "append2.test")
	e1, _ := entry(t, did, u, t0.Add(time.Minute))
	// Stale length conflicts and writes nothing.
	if _, err := s.Append(ctx, did, e1, nil, 5); !errors.Is(err, store.ErrConflict) {
		t.Fatalf("stale append: %v", err)
	}
	seq1, err := s.Append(ctx, did, e1, nil, 1)
	if err != nil {
		t.Fatal(err)
	}
	if seq1 <= seq0 {
		t.Fatalf("seq did not increase: %d then %d", seq0, seq1)
	}
	log, err := s.AuditLog(ctx, did)
	if err != nil || len(log) != 2 {
		t.Fatalf("AuditLog: %d entries, %v", len(log), err)
	}
	if log[0].CID != e0.CID || log[1].CID != e1.CID || !log[1].CreatedAt.Equal(e1.CreatedAt) || log[0].DID != did {
		t.Fatalf("log = %+v", log)
	}
	if err := plc.ValidateAuditLog(did, log); err != nil {
		t.Fatalf("stored log does not validate: %v", err)
	}
	last, at, err := s.LastOp(ctx, did)
	if err != nil {
		t.Fatal(err)
	}
	if c, _ := last.CID(); c.String() != e1.CID || !at.Equal(e1.CreatedAt) {
		t.Fatalf("LastOp = %s at %v", c, at)
	}
	if got, _ := s.LastSeq(ctx); got != seq1 {
		t.Fatalf("LastSeq = %d, want %d", got, seq1)
	}
}

func testNullify(t *testing.T, s store.Store) {
	ctx := context.Background()
	k := key(t, 2)
	did, g := genesis(t, k, "nullify.test")
	e0, c0 := entry(t, did, g, t0)
	if _, err := s.Append(ctx, did, e0, nil, 0); err != nil {
		t.Fatal(err)
	}
	p := c0.String()
	e1, c1 := entry(t, did, op(t, k, &p, "one.test"), t0.Add(time.Minute))
	if _, err := s.Append(ctx, did, e1, nil, 1); err != nil {
		t.Fatal(err)
	}
	e2, _ := entry(t, did, op(t, k, &p, "two.test"), t0.Add(2*time.Minute))
	// Nullifying an unknown CID rolls the whole append back.
	if _, err := s.Append(ctx, did, e2, []data.CID{c0, data.CIDForCBOR([]byte{0xa0})}, 2); !errors.Is(err, store.ErrConflict) {
		t.Fatalf("bad nullify: %v", err)
	}
	if log, _ := s.AuditLog(ctx, did); len(log) != 2 || log[0].Nullified || log[1].Nullified {
		t.Fatalf("rolled back append left traces: %+v", log)
	}
	if _, err := s.Append(ctx, did, e2, []data.CID{c1}, 2); err != nil {
		t.Fatal(err)
	}
	log, err := s.AuditLog(ctx, did)
	if err != nil || len(log) != 3 {
		t.Fatalf("AuditLog: %d, %v", len(log), err)
	}
	if log[0].Nullified || !log[1].Nullified || log[2].Nullified {
		t.Fatalf("nullified flags: %v %v %v", log[0].Nullified, log[1].Nullified, log[2].Nullified)
	}
	last, _, err := s.LastOp(ctx, did)
	if err != nil {
		t.Fatal(err)
	}
	if c, _ := last.CID(); c.String() != e2.CID {
		t.Fatalf("LastOp = %s, want %s", c, e2.CID)
	}
}

func testExport(t *testing.T, s store.Store) {
	ctx := context.Background()
	start, err := s.LastSeq(ctx)
	if err != nil {
		t.Fatal(err)
	}
	base := t0.Add(24 * time.Hour)
	var want []string
	for i := range 7 {
		did, g := genesis(t, key(t, byte(10+i)), "export.test")
		e, _ := entry(t, did, g, base.Add(time.Duration(i)*time.Second))
		if _, err := s.Append(ctx, did, e, nil, 0); err != nil {
			t.Fatal(err)
		}
		want = append(want, e.CID)
	}
	var got []string
	after := start
	for {
		page, err := s.ExportSeq(ctx, after, 3)
		if err != nil {
			t.Fatal(err)
		}
		if len(page) == 0 {
			break
		}
		if len(page) > 3 {
			t.Fatalf("page of %d", len(page))
		}
		for _, e := range page {
			if e.Seq <= after {
				t.Fatalf("seq %d not after %d", e.Seq, after)
			}
			after = e.Seq
			got = append(got, e.CID)
		}
	}
	if len(got) != len(want) {
		t.Fatalf("sequenced export: %d entries, want %d", len(got), len(want))
	}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("sequenced export order differs at %d", i)
		}
	}

	got = got[:0]
	cursor := base.Add(-time.Millisecond)
	for {
		page, err := s.ExportLegacy(ctx, cursor, 2)
		if err != nil {
			t.Fatal(err)
		}
		if len(page) == 0 {
			break
		}
		for _, e := range page {
			if !e.CreatedAt.After(cursor) {
				t.Fatalf("createdAt %v not after %v", e.CreatedAt, cursor)
			}
			cursor = e.CreatedAt
			got = append(got, e.CID)
			if _, err := plc.ParseOperationJSON(e.Operation); err != nil {
				t.Fatalf("exported operation: %v", err)
			}
		}
	}
	if len(got) != len(want) {
		t.Fatalf("legacy export: %d entries, want %d", len(got), len(want))
	}
	all, err := s.ExportLegacy(ctx, time.Time{}, 1000)
	if err != nil || len(all) < len(want) {
		t.Fatalf("legacy export from start: %d, %v", len(all), err)
	}
}

// testRace has two independent handles (as two processes would) append
// competing operations for one DID; exactly one must win.
func testRace(t *testing.T, s store.Store, db *sqldb.DB) {
	ctx := context.Background()
	db2, err := sqldb.Open(ctx, db.Config())
	if err != nil {
		t.Fatal(err)
	}
	defer db2.Close()
	s2, err := store.New(ctx, db2)
	if err != nil {
		t.Fatal(err)
	}
	stores := []store.Store{s, s2}

	k := key(t, 40)
	did, g := genesis(t, k, "race.test")
	e0, c0 := entry(t, did, g, t0)
	p := c0.String()

	const n = 8
	var (
		wg       sync.WaitGroup
		mu       sync.Mutex
		wins     int
		conflict int
	)
	// Half the goroutines race on the genesis, half on an update that
	// only fits after it; run the genesis race first.
	for round := range 2 {
		for i := range n {
			wg.Add(1)
			go func() {
				defer wg.Done()
				e := e0
				expect := 0
				if round == 1 {
					e, _ = entry(t, did, op(t, k, &p, "racer"+string(rune('a'+i))+".test"), t0.Add(time.Minute))
					expect = 1
				}
				_, err := stores[i%2].Append(ctx, did, e, nil, expect)
				mu.Lock()
				defer mu.Unlock()
				switch {
				case err == nil:
					wins++
				case errors.Is(err, store.ErrConflict):
					conflict++
				default:
					t.Errorf("append: %v", err)
				}
			}()
		}
		wg.Wait()
		if wins != 1 || conflict != n-1 {
			t.Fatalf("round %d: %d wins, %d conflicts", round, wins, conflict)
		}
		wins, conflict = 0, 0
	}
	log, err := s.AuditLog(ctx, did)
	if err != nil || len(log) != 2 {
		t.Fatalf("log after race: %d, %v", len(log), err)
	}
	if err := plc.ValidateAuditLog(did, log); err != nil {
		t.Fatal(err)
	}
}
