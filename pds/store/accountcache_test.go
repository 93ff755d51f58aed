package store_test

import (
	"errors"
	"fmt"
	"sync"
	"testing"

	"github.com/welkin-atproto/welkin/atproto/syntax"
	"github.com/welkin-atproto/welkin/pds/store"
)

// TestAccountReadsFollowChanges checks that reads by DID, which are served
// from memory, see every change the store makes, and that callers cannot
// change what later readers get.
func TestAccountReadsFollowChanges(t *testing.T) {
	forEach(t, func(t *testing.T, s *store.Store) {
		ctx := testCtx(t)
		mustCreate(t, s, account(1))
		a, err := s.AccountByDID(ctx, did(1))
		if err != nil {
			t.Fatal(err)
		}
		a.Handle = "mutated.test"
		a.SigningKey[0] ^= 0xff
		b, err := s.AccountByDID(ctx, did(1))
		if err != nil {
			t.Fatal(err)
		}
		if b.Handle == "mutated.test" || b.SigningKey[0] == a.SigningKey[0] {
			t.Fatal("a caller's change to a returned account reached the next reader")
		}

		// Concurrent readers while the handle changes: once UpdateHandle
		// has returned, every read sees the last handle.
		var wg sync.WaitGroup
		stop := make(chan struct{})
		for range 4 {
			wg.Go(func() {
				for {
					select {
					case <-stop:
						return
					default:
					}
					if _, err := s.AccountByDID(ctx, did(1)); err != nil {
						t.Error(err)
						return
					}
				}
			})
		}
		for i := range 20 {
			h := syntax.Handle(fmt.Sprintf("name%d.test", i))
			if err := s.UpdateHandle(ctx, did(1), h); err != nil {
				t.Fatal(err)
			}
			got, err := s.AccountByDID(ctx, did(1))
			if err != nil {
				t.Fatal(err)
			}
			if got.Handle != h {
				t.Fatalf("after UpdateHandle to %s a read returned %s", h, got.Handle)
			}
		}
		close(stop)
		wg.Wait()

		if err := s.DeleteAccount(ctx, did(1)); err != nil {
			t.Fatal(err)
		}
		if _, err := s.AccountByDID(ctx, did(1)); !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("a deleted account still reads: %v", err)
		}
	})
}
