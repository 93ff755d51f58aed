package store_test

import (
	"errors"
	"fmt"
	"path/filepath"
	"reflect"
	"sync"
	"testing"
	"time"

	"github.com/welkin-atproto/welkin/atproto/auth"
	"github.com/welkin-atproto/welkin/atproto/syntax"
	"github.com/welkin-atproto/welkin/pds/store"
)

func putRefresh(t *testing.T, rs auth.RefreshStore, jti string, d syntax.DID, exp time.Time) {
	t.Helper()
	if err := rs.Put(testCtx(t), auth.RefreshRecord{JTI: jti, DID: d, Scope: auth.ScopeAccess, ExpiresAt: exp}); err != nil {
		t.Fatal(err)
	}
}

func pair(n int) auth.TokenPair {
	return auth.TokenPair{
		Access:           fmt.Sprintf("access-%d", n),
		Refresh:          fmt.Sprintf("refresh-%d", n),
		RefreshJTI:       fmt.Sprintf("next-%d", n),
		AccessExpiresAt:  t0.Add(2 * time.Hour),
		RefreshExpiresAt: t0.Add(90 * 24 * time.Hour),
	}
}

// testRefreshStore is the behaviour auth.RefreshStore promises. It runs
// against auth.MemoryRefreshStore (the reference for the semantics) and the
// store on both backends.
func testRefreshStore(t *testing.T, rs auth.RefreshStore) {
	ctx := testCtx(t)
	exp := t0.Add(90 * 24 * time.Hour)

	if err := rs.Put(ctx, auth.RefreshRecord{DID: did(1), ExpiresAt: exp}); err == nil {
		t.Fatal("Put without jti succeeded")
	}
	rec := auth.RefreshRecord{JTI: "jti-a", DID: did(1), Scope: auth.ScopeAppPassPrivileged, ExpiresAt: exp}
	if err := rs.Put(ctx, rec); err != nil {
		t.Fatal(err)
	}
	got, err := rs.Get(ctx, "jti-a")
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(*got, rec) {
		t.Fatalf("Get:\n got %+v\nwant %+v", *got, rec)
	}
	// Put keeps an existing record.
	if err := rs.Put(ctx, auth.RefreshRecord{JTI: "jti-a", DID: did(2), Scope: auth.ScopeAccess, ExpiresAt: t0}); err != nil {
		t.Fatal(err)
	}
	if got, err := rs.Get(ctx, "jti-a"); err != nil || !reflect.DeepEqual(*got, rec) {
		t.Fatalf("Put replaced a record: %+v, %v", got, err)
	}
	if _, err := rs.Get(ctx, "unknown"); !errors.Is(err, auth.ErrRefreshNotFound) {
		t.Fatalf("Get(unknown): %v", err)
	}

	// Rotation records the first successor; later calls return it.
	grace := t0.Add(2 * time.Hour)
	w, err := rs.MarkRotated(ctx, "jti-a", pair(1), grace)
	if err != nil || w != pair(1) {
		t.Fatalf("MarkRotated = %+v, %v", w, err)
	}
	w, err = rs.MarkRotated(ctx, "jti-a", pair(2), grace.Add(time.Hour))
	if err != nil || w != pair(1) {
		t.Fatalf("second MarkRotated = %+v, %v; want the first successor", w, err)
	}
	got, err = rs.Get(ctx, "jti-a")
	if err != nil {
		t.Fatal(err)
	}
	if got.Next == nil || *got.Next != pair(1) || !got.ExpiresAt.Equal(grace) {
		t.Fatalf("rotated record: %+v (next %+v)", got, got.Next)
	}
	if _, err := rs.MarkRotated(ctx, "unknown", pair(3), grace); !errors.Is(err, auth.ErrRefreshNotFound) {
		t.Fatalf("MarkRotated(unknown): %v", err)
	}
	// A record can be put already rotated.
	rotated := auth.RefreshRecord{JTI: "jti-r", DID: did(1), Scope: auth.ScopeAccess, ExpiresAt: grace, Next: &auth.TokenPair{}}
	*rotated.Next = pair(4)
	if err := rs.Put(ctx, rotated); err != nil {
		t.Fatal(err)
	}
	if got, err := rs.Get(ctx, "jti-r"); err != nil || !reflect.DeepEqual(*got, rotated) {
		t.Fatalf("Get(rotated) = %+v, %v", got, err)
	}

	// Revocation.
	if err := rs.Revoke(ctx, "jti-a"); err != nil {
		t.Fatal(err)
	}
	if _, err := rs.Get(ctx, "jti-a"); !errors.Is(err, auth.ErrRefreshNotFound) {
		t.Fatalf("Get after Revoke: %v", err)
	}
	if err := rs.Revoke(ctx, "jti-a"); err != nil {
		t.Fatalf("revoking twice: %v", err)
	}
	for i, d := range []syntax.DID{did(1), did(1), did(2)} {
		putRefresh(t, rs, fmt.Sprintf("jti-%d", i), d, exp)
	}
	if err := rs.RevokeDID(ctx, did(1)); err != nil {
		t.Fatal(err)
	}
	for _, jti := range []string{"jti-0", "jti-1", "jti-r"} {
		if _, err := rs.Get(ctx, jti); !errors.Is(err, auth.ErrRefreshNotFound) {
			t.Fatalf("%s after RevokeDID: %v", jti, err)
		}
	}
	if _, err := rs.Get(ctx, "jti-2"); err != nil {
		t.Fatalf("another DID's token after RevokeDID: %v", err)
	}
}

// testRotateRace rotates one token concurrently with different successors:
// all callers get the same one, the one recorded.
func testRotateRace(t *testing.T, rs auth.RefreshStore) {
	ctx := testCtx(t)
	putRefresh(t, rs, "race", did(1), t0.Add(time.Hour))
	const n = 12
	got := make([]auth.TokenPair, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() { got[i], errs[i] = rs.MarkRotated(ctx, "race", pair(100+i), t0.Add(time.Minute)) })
	}
	wg.Wait()
	for i := range n {
		if errs[i] != nil {
			t.Fatal(errs[i])
		}
		if got[i] != got[0] {
			t.Fatalf("rotations disagree: %+v and %+v", got[0], got[i])
		}
	}
	rec, err := rs.Get(ctx, "race")
	if err != nil {
		t.Fatal(err)
	}
	if rec.Next == nil || *rec.Next != got[0] {
		t.Fatalf("recorded successor %+v, returned %+v", rec.Next, got[0])
	}
}

func TestRefreshStore(t *testing.T) {
	t.Run("memory", func(t *testing.T) {
		testRefreshStore(t, auth.NewMemoryRefreshStore())
		testRotateRace(t, auth.NewMemoryRefreshStore())
	})
	forEach(t, func(t *testing.T, s *store.Store) {
		testRefreshStore(t, s.RefreshStore())
		testRotateRace(t, s.RefreshStore())
	})
}

func TestDeleteExpiredRefreshTokens(t *testing.T) {
	forEach(t, func(t *testing.T, s *store.Store) {
		ctx := testCtx(t)
		rs := s.RefreshStore()
		putRefresh(t, rs, "old", did(1), t0)
		putRefresh(t, rs, "new", did(1), t0.Add(time.Microsecond))
		putRefresh(t, rs, "rotated", did(1), t0.Add(time.Hour))
		if _, err := rs.MarkRotated(ctx, "rotated", pair(1), t0.Add(-time.Second)); err != nil {
			t.Fatal(err)
		}
		if err := s.DeleteExpiredRefreshTokens(ctx, t0); err != nil {
			t.Fatal(err)
		}
		for jti, kept := range map[string]bool{"old": false, "new": true, "rotated": false} {
			_, err := rs.Get(ctx, jti)
			if kept != (err == nil) {
				t.Errorf("%s: Get = %v, want kept=%v", jti, err, kept)
			}
		}
	})
}

// TestSessionIssuer runs auth.SessionIssuer on the store, across a restart.
func TestSessionIssuer(t *testing.T) {
	ctx := testCtx(t)
	path := filepath.Join(t.TempDir(), "service.sqlite")
	now := time.Now()
	issuer := func(s *store.Store) *auth.SessionIssuer {
		return &auth.SessionIssuer{
			Secret:     []byte("0123456789abcdef0123456789abcdef"),
			ServiceDID: "did:web:pds.example.com",
			Now:        func() time.Time { return now },
			Store:      s.RefreshStore(),
		}
	}
	s, err := store.Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	first, err := issuer(s).CreateSession(ctx, did(1), auth.ScopeAccess)
	if err != nil {
		t.Fatal(err)
	}
	second, err := issuer(s).Rotate(ctx, first.Refresh)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}

	s, err = store.Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	again, err := issuer(s).Rotate(ctx, first.Refresh)
	if err != nil {
		t.Fatal(err)
	}
	if !samePair(*again, *second) {
		t.Fatalf("rotating again within the grace period gave a new pair:\n%+v\n%+v", again, second)
	}
	if _, err := issuer(s).Rotate(ctx, second.Refresh); err != nil {
		t.Fatalf("rotating the new token: %v", err)
	}
	now = now.Add(auth.DefaultRefreshGrace + time.Second)
	if _, err := issuer(s).Rotate(ctx, first.Refresh); !errors.Is(err, auth.ErrTokenRevoked) && !errors.Is(err, auth.ErrExpiredToken) {
		t.Fatalf("rotating after the grace period: %v, want revoked", err)
	}
}

func samePair(a, b auth.TokenPair) bool {
	return a.Access == b.Access && a.Refresh == b.Refresh && a.RefreshJTI == b.RefreshJTI &&
		a.AccessExpiresAt.Equal(b.AccessExpiresAt) && a.RefreshExpiresAt.Equal(b.RefreshExpiresAt)
}
