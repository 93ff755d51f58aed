package store_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"sync"
	"testing"
	"time"

	"github.com/welkin-atproto/welkin/atproto/syntax"
	"github.com/welkin-atproto/welkin/internal/sqldb"
	"github.com/welkin-atproto/welkin/internal/sqldb/sqldbtest"
	"github.com/welkin-atproto/welkin/pds/store"
)

func TestMain(m *testing.M) {
	// scrypt at N=16 keeps the tests fast; TestDefaultCost checks the real
	// cost.
	store.SetHashLogNForTest(4)
	os.Exit(m.Run())
}

// t0 is a fixed time with microsecond precision, the precision stored.
var t0 = time.Date(2025, 6, 1, 12, 0, 0, 123456000, time.UTC)

// testCtx bounds a test so that a deadlock fails it instead of hanging.
func testCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	t.Cleanup(cancel)
	return ctx
}

// forEach runs fn on a fresh, migrated store on each backend.
func forEach(t *testing.T, fn func(t *testing.T, s *store.Store)) {
	t.Helper()
	sqldbtest.ForEachBackend(t, func(t *testing.T, db *sqldb.DB) {
		s, err := store.New(testCtx(t), db)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { s.Close() })
		fn(t, s)
	})
}

func did(n int) syntax.DID { return syntax.DID(fmt.Sprintf("did:plc:test%020d", n)) }

// account returns a complete account numbered n.
func account(n int) store.Account {
	return store.Account{
		DID:          did(n),
		Handle:       syntax.Handle(fmt.Sprintf("user%d.test", n)),
		Email:        fmt.Sprintf("User%d@Example.com", n),
		PasswordHash: fmt.Sprintf("hash-%d", n),
		SigningKey:   []byte{byte(n), 1, 2, 3},
		Status:       store.StatusActive,
		CreatedAt:    t0.Add(time.Duration(n) * time.Second),
	}
}

func mustCreate(t *testing.T, s *store.Store, a store.Account) {
	t.Helper()
	if err := s.CreateAccount(testCtx(t), a, ""); err != nil {
		t.Fatalf("CreateAccount(%s): %v", a.DID, err)
	}
}

func ptr(t time.Time) *time.Time { return &t }

func TestOpenReopen(t *testing.T) {
	check := func(t *testing.T, url string) {
		ctx := testCtx(t)
		s, err := store.Open(ctx, url)
		if err != nil {
			t.Fatal(err)
		}
		mustCreate(t, s, account(1))
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}
		// Reopening runs the migrations again, which must change nothing.
		s, err = store.Open(ctx, url)
		if err != nil {
			t.Fatalf("reopen: %v", err)
		}
		defer s.Close()
		if err := s.Ping(ctx); err != nil {
			t.Fatal(err)
		}
		a, err := s.AccountByDID(ctx, did(1))
		if err != nil {
			t.Fatalf("account after reopen: %v", err)
		}
		if a.Handle != "user1.test" {
			t.Fatalf("handle after reopen = %q", a.Handle)
		}
		db, err := sqldb.Open(ctx, sqldb.Config{URL: url})
		if err != nil {
			t.Fatal(err)
		}
		defer db.Close()
		if v, err := sqldb.SchemaVersion(ctx, db, store.Component); err != nil || v != 1 {
			t.Fatalf("schema version = %d, %v; want 1", v, err)
		}
		// A store on a database migrated already works too.
		s2, err := store.New(ctx, db)
		if err != nil {
			t.Fatal(err)
		}
		if n, err := s2.CountAccounts(ctx); err != nil || n != 1 {
			t.Fatalf("CountAccounts = %d, %v", n, err)
		}
		if err := s2.Close(); err != nil {
			t.Fatal(err)
		}
		if err := db.SQL().PingContext(ctx); err != nil {
			// Close on a store from New must leave the database open.
			t.Fatalf("database closed by Store.Close: %v", err)
		}
	}
	t.Run("sqlite", func(t *testing.T) {
		path := filepath.Join(t.TempDir(), "data", "service.sqlite")
		check(t, path)
		fi, err := os.Stat(path)
		if err != nil {
			t.Fatal(err)
		}
		if m := fi.Mode().Perm(); m != 0o600 {
			t.Fatalf("database file mode %v, want 0600", m)
		}
	})
	t.Run("sqlite-url", func(t *testing.T) {
		check(t, "sqlite://"+filepath.Join(t.TempDir(), "service.sqlite"))
	})
	t.Run("postgres", func(t *testing.T) {
		check(t, sqldbtest.PostgresSchemaURL(t))
	})
}

func TestOpenBadURL(t *testing.T) {
	for _, u := range []string{"", "mysql://localhost/db"} {
		if s, err := store.Open(testCtx(t), u); err == nil {
			s.Close()
			t.Errorf("Open(%q) succeeded", u)
		}
	}
}

func TestCreateAndGetAccount(t *testing.T) {
	forEach(t, func(t *testing.T, s *store.Store) {
		ctx := testCtx(t)
		full := account(1)
		full.Handle = "User1.TEST"
		full.EmailConfirmedAt = ptr(t0.Add(time.Minute))
		full.DeleteAfter = ptr(t0.Add(time.Hour))
		full.DeactivatedAt = ptr(t0.Add(2 * time.Minute))
		full.Status = store.StatusDeactivated
		full.TakedownRef = "ref-1"
		mustCreate(t, s, full)

		want := full
		want.Handle = "user1.test"
		for name, get := range map[string]func() (*store.Account, error){
			"by DID":              func() (*store.Account, error) { return s.AccountByDID(ctx, did(1)) },
			"by handle":           func() (*store.Account, error) { return s.AccountByHandle(ctx, "user1.test") },
			"by handle, any case": func() (*store.Account, error) { return s.AccountByHandle(ctx, "USER1.Test") },
			"by email":            func() (*store.Account, error) { return s.AccountByEmail(ctx, "User1@Example.com") },
			"by email, any case":  func() (*store.Account, error) { return s.AccountByEmail(ctx, "user1@EXAMPLE.COM") },
		} {
			got, err := get()
			if err != nil {
				t.Fatalf("%s: %v", name, err)
			}
			if !reflect.DeepEqual(*got, want) {
				t.Fatalf("%s:\n got %+v\nwant %+v", name, *got, want)
			}
		}

		// Defaults: status active, CreatedAt now; no email is allowed
		// for any number of accounts.
		for _, n := range []int{2, 3} {
			a := account(n)
			a.Email, a.Status, a.CreatedAt, a.SigningKey = "", "", time.Time{}, nil
			before := time.Now().Add(-time.Second)
			mustCreate(t, s, a)
			got, err := s.AccountByDID(ctx, a.DID)
			if err != nil {
				t.Fatal(err)
			}
			if got.Status != store.StatusActive || got.Email != "" || got.CreatedAt.Before(before) ||
				got.EmailConfirmedAt != nil || got.DeactivatedAt != nil || got.DeleteAfter != nil || len(got.SigningKey) != 0 {
				t.Fatalf("defaults: got %+v", got)
			}
		}

		for name, get := range map[string]func() (*store.Account, error){
			"unknown DID":    func() (*store.Account, error) { return s.AccountByDID(ctx, did(99)) },
			"unknown handle": func() (*store.Account, error) { return s.AccountByHandle(ctx, "nobody.test") },
			"unknown email":  func() (*store.Account, error) { return s.AccountByEmail(ctx, "nobody@example.com") },
			"empty email":    func() (*store.Account, error) { return s.AccountByEmail(ctx, "") },
		} {
			if a, err := get(); !errors.Is(err, store.ErrNotFound) {
				t.Errorf("%s: got %v, %v; want ErrNotFound", name, a, err)
			}
		}
	})
}

func TestCreateAccountErrors(t *testing.T) {
	forEach(t, func(t *testing.T, s *store.Store) {
		ctx := testCtx(t)
		mustCreate(t, s, account(1))
		for _, tc := range []struct {
			name   string
			mutate func(a *store.Account)
			want   error // nil: any error that is none of the sentinels
		}{
			{"same DID", func(a *store.Account) { a.DID = did(1) }, store.ErrDIDTaken},
			{"same handle", func(a *store.Account) { a.Handle = "user1.test" }, store.ErrHandleTaken},
			{"same handle, other case", func(a *store.Account) { a.Handle = "USER1.test" }, store.ErrHandleTaken},
			{"same email", func(a *store.Account) { a.Email = "User1@Example.com" }, store.ErrEmailTaken},
			{"same email, other case", func(a *store.Account) { a.Email = "user1@example.COM" }, store.ErrEmailTaken},
			{"bad DID", func(a *store.Account) { a.DID = "not a did" }, nil},
			{"empty DID", func(a *store.Account) { a.DID = "" }, nil},
			{"bad handle", func(a *store.Account) { a.Handle = "no_underscores.test" }, nil},
			{"empty handle", func(a *store.Account) { a.Handle = "" }, nil},
			{"bad status", func(a *store.Account) { a.Status = "deleted" }, nil},
		} {
			a := account(2)
			tc.mutate(&a)
			err := s.CreateAccount(ctx, a, "")
			switch {
			case err == nil:
				t.Errorf("%s: CreateAccount succeeded", tc.name)
			case tc.want != nil && !errors.Is(err, tc.want):
				t.Errorf("%s: got %v, want %v", tc.name, err, tc.want)
			case tc.want == nil && (errors.Is(err, store.ErrDIDTaken) || errors.Is(err, store.ErrHandleTaken)):
				t.Errorf("%s: got %v, want a validation error", tc.name, err)
			}
		}
		if n, err := s.CountAccounts(ctx); err != nil || n != 1 {
			t.Fatalf("CountAccounts = %d, %v; want 1 (failed creations wrote nothing)", n, err)
		}
	})
}

func TestAccountUpdates(t *testing.T) {
	forEach(t, func(t *testing.T, s *store.Store) {
		ctx := testCtx(t)
		a1 := account(1)
		a1.EmailConfirmedAt = ptr(t0)
		mustCreate(t, s, a1)
		mustCreate(t, s, account(2))
		get := func(d syntax.DID) *store.Account {
			t.Helper()
			a, err := s.AccountByDID(ctx, d)
			if err != nil {
				t.Fatal(err)
			}
			return a
		}

		// Handles.
		if err := s.UpdateHandle(ctx, did(1), "User2.Test"); !errors.Is(err, store.ErrHandleTaken) {
			t.Fatalf("UpdateHandle to a taken handle: %v", err)
		}
		if err := s.UpdateHandle(ctx, did(9), "free.test"); !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("UpdateHandle of unknown DID: %v", err)
		}
		if err := s.UpdateHandle(ctx, did(1), "bad handle"); err == nil {
			t.Fatal("UpdateHandle accepted an invalid handle")
		}
		if err := s.UpdateHandle(ctx, did(1), "New.Name.TEST"); err != nil {
			t.Fatal(err)
		}
		if h := get(did(1)).Handle; h != "new.name.test" {
			t.Fatalf("handle = %q, want new.name.test", h)
		}
		if a, err := s.AccountByHandle(ctx, "user1.test"); !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("old handle still finds %v, %v", a, err)
		}
		if err := s.UpdateHandle(ctx, did(2), "user1.test"); err != nil {
			t.Fatalf("reusing a released handle: %v", err)
		}

		// Email.
		if err := s.UpdateEmail(ctx, did(1), "USER2@example.com"); !errors.Is(err, store.ErrEmailTaken) {
			t.Fatalf("UpdateEmail to a taken address: %v", err)
		}
		if get(did(1)).EmailConfirmedAt == nil {
			t.Fatal("failed UpdateEmail cleared the confirmation")
		}
		if err := s.UpdateEmail(ctx, did(9), "x@example.com"); !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("UpdateEmail of unknown DID: %v", err)
		}
		if err := s.UpdateEmail(ctx, did(1), "New@Example.com"); err != nil {
			t.Fatal(err)
		}
		if a := get(did(1)); a.Email != "New@Example.com" || a.EmailConfirmedAt != nil {
			t.Fatalf("after UpdateEmail: email %q confirmed %v", a.Email, a.EmailConfirmedAt)
		}
		if a, err := s.AccountByEmail(ctx, "new@example.com"); err != nil || a.DID != did(1) {
			t.Fatalf("AccountByEmail(new) = %v, %v", a, err)
		}
		if err := s.ConfirmEmail(ctx, did(1), t0.Add(time.Hour)); err != nil {
			t.Fatal(err)
		}
		if c := get(did(1)).EmailConfirmedAt; c == nil || !c.Equal(t0.Add(time.Hour)) {
			t.Fatalf("EmailConfirmedAt = %v", c)
		}
		if err := s.ConfirmEmail(ctx, did(9), t0); !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("ConfirmEmail of unknown DID: %v", err)
		}
		if err := s.UpdateEmail(ctx, did(1), ""); err != nil {
			t.Fatal(err)
		}
		if err := s.UpdateEmail(ctx, did(2), ""); err != nil {
			t.Fatalf("second account without email: %v", err)
		}
		// The address is free again.
		mustCreate(t, s, func() store.Account { a := account(3); a.Email = "new@example.com"; return a }())

		// Password.
		if err := s.SetPasswordHash(ctx, did(1), "new-hash"); err != nil {
			t.Fatal(err)
		}
		if h := get(did(1)).PasswordHash; h != "new-hash" {
			t.Fatalf("PasswordHash = %q", h)
		}
		if err := s.SetPasswordHash(ctx, did(9), "x"); !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("SetPasswordHash of unknown DID: %v", err)
		}

		// Status.
		del := t0.Add(72 * time.Hour)
		if err := s.SetStatus(ctx, did(1), store.StatusDeactivated, t0, &del); err != nil {
			t.Fatal(err)
		}
		a := get(did(1))
		if a.Status != store.StatusDeactivated || a.DeactivatedAt == nil || !a.DeactivatedAt.Equal(t0) ||
			a.DeleteAfter == nil || !a.DeleteAfter.Equal(del) {
			t.Fatalf("deactivated: %+v", a)
		}
		if dids, err := s.AccountsToDelete(ctx, del.Add(-time.Second), 0); err != nil || len(dids) != 0 {
			t.Fatalf("AccountsToDelete before the deadline = %v, %v", dids, err)
		}
		if dids, err := s.AccountsToDelete(ctx, del, 0); err != nil || !reflect.DeepEqual(dids, []syntax.DID{did(1)}) {
			t.Fatalf("AccountsToDelete at the deadline = %v, %v", dids, err)
		}
		if err := s.SetTakedown(ctx, did(1), "mod-42"); err != nil {
			t.Fatal(err)
		}
		if a := get(did(1)); a.Status != store.StatusTakendown || a.TakedownRef != "mod-42" {
			t.Fatalf("taken down: %+v", a)
		}
		if dids, err := s.AccountsToDelete(ctx, del, 0); err != nil || len(dids) != 0 {
			t.Fatalf("AccountsToDelete lists a taken-down account: %v, %v", dids, err)
		}
		if err := s.SetStatus(ctx, did(1), store.StatusActive, t0, nil); err != nil {
			t.Fatal(err)
		}
		if a := get(did(1)); a.Status != store.StatusActive || a.TakedownRef != "" || a.DeactivatedAt != nil || a.DeleteAfter != nil {
			t.Fatalf("reactivated: %+v", a)
		}
		if err := s.SetStatus(ctx, did(2), store.StatusTakendown, t0, nil); err != nil {
			t.Fatal(err)
		}
		if a := get(did(2)); a.Status != store.StatusTakendown {
			t.Fatalf("SetStatus takendown: %+v", a)
		}
		if err := s.SetStatus(ctx, did(1), "deleted", t0, nil); err == nil {
			t.Fatal("SetStatus accepted an unknown status")
		}
		if err := s.SetStatus(ctx, did(9), store.StatusActive, t0, nil); !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("SetStatus of unknown DID: %v", err)
		}
		if err := s.SetTakedown(ctx, did(9), "x"); !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("SetTakedown of unknown DID: %v", err)
		}
	})
}

func TestListAccounts(t *testing.T) {
	forEach(t, func(t *testing.T, s *store.Store) {
		ctx := testCtx(t)
		if page, next, err := s.ListAccounts(ctx, "", 10); err != nil || len(page) != 0 || next != "" {
			t.Fatalf("empty store: %v %q %v", page, next, err)
		}
		// Created out of CreatedAt order: the listing follows creation.
		order := []int{5, 1, 7, 3, 2, 6, 4}
		for _, n := range order {
			mustCreate(t, s, account(n))
		}
		if err := s.SetStatus(ctx, did(3), store.StatusDeactivated, t0, nil); err != nil {
			t.Fatal(err)
		}
		var got []syntax.DID
		cursor, pages := "", 0
		for {
			page, next, err := s.ListAccounts(ctx, cursor, 3)
			if err != nil {
				t.Fatal(err)
			}
			if len(page) > 3 {
				t.Fatalf("page of %d, limit 3", len(page))
			}
			pages++
			for _, a := range page {
				got = append(got, a.DID)
			}
			if pages == 1 {
				// An account deleted and one created mid-listing: the
				// rest of the listing stays consistent.
				if err := s.DeleteAccount(ctx, did(3)); err != nil {
					t.Fatal(err)
				}
				mustCreate(t, s, account(8))
			}
			if next == "" {
				break
			}
			cursor = next
		}
		// did(3) was fourth, after the first page, so it is not listed;
		// did(8) comes last.
		var want []syntax.DID
		for _, n := range append(order, 8) {
			if n != 3 {
				want = append(want, did(n))
			}
		}
		if !reflect.DeepEqual(got, want) {
			t.Fatalf("listing:\n got %v\nwant %v", got, want)
		}
		if pages != 3 {
			t.Fatalf("%d pages, want 3", pages)
		}
		// An exact multiple of the limit ends with an empty cursor on
		// the last full page.
		page, next, err := s.ListAccounts(ctx, "", 7)
		if err != nil || len(page) != 7 || next != "" {
			t.Fatalf("ListAccounts(limit 7) = %d accounts, next %q, %v", len(page), next, err)
		}
		page, _, err = s.ListAccounts(ctx, "", 0)
		if err != nil || len(page) != 7 {
			t.Fatalf("ListAccounts(default limit) = %d, %v", len(page), err)
		}
		if page[0].PasswordHash != "hash-5" || !bytes.Equal(page[0].SigningKey, []byte{5, 1, 2, 3}) {
			t.Fatalf("listed account not complete: %+v", page[0])
		}
		for _, c := range []string{"x", "-1", "1.5", "99999999999999999999"} {
			if _, _, err := s.ListAccounts(ctx, c, 3); !errors.Is(err, store.ErrInvalidCursor) {
				t.Errorf("cursor %q: %v, want ErrInvalidCursor", c, err)
			}
		}
		if n, err := s.CountAccounts(ctx); err != nil || n != 7 {
			t.Fatalf("CountAccounts = %d, %v", n, err)
		}
	})
}

// TestCreateAccountRace creates accounts with one handle (and, separately,
// one email) concurrently: exactly one creation wins.
func TestCreateAccountRace(t *testing.T) {
	forEach(t, func(t *testing.T, s *store.Store) {
		ctx := testCtx(t)
		const n = 12
		for _, tc := range []struct {
			name   string
			mutate func(a *store.Account, round int)
			want   error
		}{
			{"handle", func(a *store.Account, round int) { a.Handle = syntax.Handle(fmt.Sprintf("Same%d.test", round)) }, store.ErrHandleTaken},
			{"email", func(a *store.Account, round int) { a.Email = fmt.Sprintf("same%d@EXAMPLE.com", round) }, store.ErrEmailTaken},
			{"did", func(a *store.Account, round int) { a.DID = did(1000 + round) }, store.ErrDIDTaken},
		} {
			for round := range 3 {
				errs := make([]error, n)
				var wg sync.WaitGroup
				for i := range n {
					wg.Go(func() {
						a := account(10000 + round*100 + i + len(tc.name)*1000)
						tc.mutate(&a, round)
						errs[i] = s.CreateAccount(ctx, a, "")
					})
				}
				wg.Wait()
				won := 0
				for _, err := range errs {
					switch {
					case err == nil:
						won++
					case !errors.Is(err, tc.want):
						t.Fatalf("%s: creation failed with %v, want %v", tc.name, err, tc.want)
					}
				}
				if won != 1 {
					t.Fatalf("%s round %d: %d creations succeeded, want exactly 1", tc.name, round, won)
				}
			}
		}
	})
}

func TestDeleteAccount(t *testing.T) {
	forEach(t, func(t *testing.T, s *store.Store) {
		ctx := testCtx(t)
		if err := s.CreateInviteCodes(ctx, []store.InviteCode{
			{Code: "admin-code", Available: 5, ForAccount: "admin", CreatedBy: "admin", CreatedAt: t0},
			{Code: "code-of-1", Available: 2, ForAccount: string(did(1)), CreatedBy: "admin", CreatedAt: t0},
		}); err != nil {
			t.Fatal(err)
		}
		if err := s.CreateAccount(ctx, account(1), "admin-code"); err != nil {
			t.Fatal(err)
		}
		if err := s.CreateAccount(ctx, account(2), "code-of-1"); err != nil {
			t.Fatal(err)
		}
		if err := s.CreateAppPassword(ctx, did(1), store.AppPassword{Name: "app", Hash: "h", CreatedAt: t0}); err != nil {
			t.Fatal(err)
		}
		if err := s.PutEmailToken(ctx, did(1), store.PurposeDeleteAccount, "AAAAA-BBBBB", t0.Add(time.Hour)); err != nil {
			t.Fatal(err)
		}
		rs := s.RefreshStore()
		putRefresh(t, rs, "jti-1", did(1), t0.Add(time.Hour))
		putRefresh(t, rs, "jti-2", did(2), t0.Add(time.Hour))

		if err := s.DeleteAccount(ctx, did(1)); err != nil {
			t.Fatal(err)
		}
		if _, err := s.AccountByDID(ctx, did(1)); !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("AccountByDID after delete: %v", err)
		}
		if aps, err := s.ListAppPasswords(ctx, did(1)); err != nil || len(aps) != 0 {
			t.Fatalf("app passwords after delete: %v, %v", aps, err)
		}
		if _, err := s.DIDForEmailToken(ctx, store.PurposeDeleteAccount, "AAAAA-BBBBB", t0); !errors.Is(err, store.ErrInvalidToken) {
			t.Fatalf("email token after delete: %v", err)
		}
		if _, err := rs.Get(ctx, "jti-1"); err == nil {
			t.Fatal("refresh token survived account deletion")
		}
		if _, err := rs.Get(ctx, "jti-2"); err != nil {
			t.Fatalf("another account's refresh token: %v", err)
		}
		// The account's own code is disabled but kept with its use; the
		// use of the admin code stays counted.
		c, err := s.GetInviteCode(ctx, "code-of-1")
		if err != nil {
			t.Fatal(err)
		}
		if !c.Disabled || len(c.Uses) != 1 || c.Uses[0].UsedBy != did(2) {
			t.Fatalf("code of the deleted account: %+v", c)
		}
		c, err = s.GetInviteCode(ctx, "admin-code")
		if err != nil {
			t.Fatal(err)
		}
		if c.Disabled || len(c.Uses) != 1 || c.Uses[0].UsedBy != did(1) {
			t.Fatalf("code used by the deleted account: %+v", c)
		}
		if err := s.DeleteAccount(ctx, did(1)); !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("second DeleteAccount: %v", err)
		}
		// DID, handle and email are free again, also with the same code.
		if err := s.CreateAccount(ctx, account(1), "admin-code"); err != nil {
			t.Fatalf("re-creating the deleted account: %v", err)
		}
		if c, err := s.GetInviteCode(ctx, "admin-code"); err != nil || len(c.Uses) != 2 {
			t.Fatalf("admin code after re-creation: %+v, %v", c, err)
		}
	})
}

func TestInviteCodes(t *testing.T) {
	forEach(t, func(t *testing.T, s *store.Store) {
		ctx := testCtx(t)
		mustCreate(t, s, account(1))
		codes := []store.InviteCode{
			{Code: "b-code", Available: 1, ForAccount: string(did(1)), CreatedBy: "admin", CreatedAt: t0.Add(time.Second)},
			{Code: "a-code", Available: 2, ForAccount: string(did(1)), CreatedBy: string(did(1)), CreatedAt: t0},
			{Code: "admin-1", Available: 3, ForAccount: "admin", CreatedBy: "admin", CreatedAt: t0},
			{Code: "off", Available: 3, Disabled: true, ForAccount: "admin", CreatedBy: "admin", CreatedAt: t0},
		}
		if err := s.CreateInviteCodes(ctx, codes); err != nil {
			t.Fatal(err)
		}
		if err := s.CreateInviteCodes(ctx, nil); err != nil {
			t.Fatalf("no codes: %v", err)
		}
		for _, tc := range []struct {
			name  string
			codes []store.InviteCode
			dup   bool
		}{
			{"duplicate", []store.InviteCode{{Code: "new-1", Available: 1}, {Code: "a-code", Available: 1}}, true},
			{"duplicate in batch", []store.InviteCode{{Code: "new-2", Available: 1}, {Code: "new-2", Available: 1}}, true},
			{"empty code", []store.InviteCode{{Code: "", Available: 1}}, false},
			{"negative", []store.InviteCode{{Code: "neg", Available: -1}}, false},
			{"too many uses", []store.InviteCode{{Code: "over", Available: 1, Uses: []store.InviteUse{{UsedBy: did(5)}, {UsedBy: did(6)}}}}, false},
		} {
			err := s.CreateInviteCodes(ctx, tc.codes)
			if err == nil || errors.Is(err, store.ErrDuplicateInviteCode) != tc.dup {
				t.Errorf("%s: got %v", tc.name, err)
			}
		}
		if _, err := s.GetInviteCode(ctx, "new-1"); !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("a failed batch stored part of itself: %v", err)
		}

		// Using codes.
		for _, tc := range []struct {
			n    int
			code string
			want error
		}{
			{10, "nope", store.ErrInvalidInvite},
			{11, "off", store.ErrInvalidInvite},
			{12, "b-code", nil},
			{13, "b-code", store.ErrInvalidInvite}, // used up
			{14, "a-code", nil},
		} {
			n := tc.n
			err := s.CreateAccount(ctx, account(n), tc.code)
			if !errors.Is(err, tc.want) {
				t.Fatalf("CreateAccount with %q: %v, want %v", tc.code, err, tc.want)
			}
			if tc.want != nil {
				if _, err := s.AccountByDID(ctx, did(n)); !errors.Is(err, store.ErrNotFound) {
					t.Fatalf("account created despite invalid invite: %v", err)
				}
			}
		}
		// A creation that fails for another reason consumes no use.
		taken := account(50)
		taken.Handle = "user1.test"
		if err := s.CreateAccount(ctx, taken, "a-code"); !errors.Is(err, store.ErrHandleTaken) {
			t.Fatalf("got %v, want ErrHandleTaken", err)
		}
		if err := s.CreateAccount(ctx, account(51), "a-code"); err != nil {
			t.Fatalf("second use of a-code: %v", err)
		}
		if err := s.CreateAccount(ctx, account(52), "a-code"); !errors.Is(err, store.ErrInvalidInvite) {
			t.Fatalf("third use of a-code: %v", err)
		}

		got, err := s.InviteCodesFor(ctx, string(did(1)))
		if err != nil {
			t.Fatal(err)
		}
		if len(got) != 2 || got[0].Code != "a-code" || got[1].Code != "b-code" {
			t.Fatalf("InviteCodesFor = %+v", got)
		}
		if a := got[0]; a.Available != 2 || a.CreatedBy != string(did(1)) || !a.CreatedAt.Equal(t0) || len(a.Uses) != 2 ||
			a.Uses[0].UsedBy != did(14) || a.Uses[1].UsedBy != did(51) || a.Uses[1].UsedAt != account(51).CreatedAt {
			t.Fatalf("a-code = %+v", a)
		}
		if b := got[1]; len(b.Uses) != 1 || b.Uses[0].UsedBy != did(12) {
			t.Fatalf("b-code = %+v", b)
		}
		if none, err := s.InviteCodesFor(ctx, string(did(99))); err != nil || len(none) != 0 {
			t.Fatalf("InviteCodesFor(unknown) = %v, %v", none, err)
		}
		if _, err := s.GetInviteCode(ctx, "nope"); !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("GetInviteCode(unknown): %v", err)
		}

		// Imported uses count.
		if err := s.CreateInviteCodes(ctx, []store.InviteCode{{Code: "imported", Available: 2, ForAccount: "admin",
			Uses: []store.InviteUse{{UsedBy: did(77), UsedAt: t0}}}}); err != nil {
			t.Fatal(err)
		}
		if err := s.CreateAccount(ctx, account(60), "imported"); err != nil {
			t.Fatal(err)
		}
		if err := s.CreateAccount(ctx, account(61), "imported"); !errors.Is(err, store.ErrInvalidInvite) {
			t.Fatalf("imported code used beyond its uses: %v", err)
		}

		// Disabling by code and by account.
		mustCreate(t, s, account(2))
		if err := s.CreateInviteCodes(ctx, []store.InviteCode{
			{Code: "c2-a", Available: 5, ForAccount: string(did(2))},
			{Code: "c2-b", Available: 5, ForAccount: string(did(2))},
		}); err != nil {
			t.Fatal(err)
		}
		if err := s.DisableInviteCodes(ctx, []string{"admin-1", "unknown"}, []string{string(did(2)), "did:plc:unknown"}); err != nil {
			t.Fatal(err)
		}
		if err := s.DisableInviteCodes(ctx, nil, nil); err != nil {
			t.Fatal(err)
		}
		for code, want := range map[string]bool{"admin-1": true, "c2-a": true, "c2-b": true, "a-code": false, "imported": false} {
			c, err := s.GetInviteCode(ctx, code)
			if err != nil {
				t.Fatal(err)
			}
			if c.Disabled != want {
				t.Errorf("%s: Disabled = %v, want %v", code, c.Disabled, want)
			}
		}
		if err := s.CreateAccount(ctx, account(70), "admin-1"); !errors.Is(err, store.ErrInvalidInvite) {
			t.Fatalf("disabled code: %v", err)
		}
	})
}

func TestDisableManyInviteCodes(t *testing.T) {
	forEach(t, func(t *testing.T, s *store.Store) {
		ctx := testCtx(t)
		var codes []store.InviteCode
		var names []string
		for i := range 1203 {
			c := fmt.Sprintf("code-%04d", i)
			codes = append(codes, store.InviteCode{Code: c, Available: 1, ForAccount: "admin"})
			names = append(names, c)
		}
		if err := s.CreateInviteCodes(ctx, codes); err != nil {
			t.Fatal(err)
		}
		if err := s.DisableInviteCodes(ctx, names, nil); err != nil {
			t.Fatal(err)
		}
		got, err := s.InviteCodesFor(ctx, "admin")
		if err != nil {
			t.Fatal(err)
		}
		if len(got) != len(codes) {
			t.Fatalf("%d codes, want %d", len(got), len(codes))
		}
		for _, c := range got {
			if !c.Disabled {
				t.Fatalf("%s not disabled", c.Code)
			}
		}
	})
}

// TestInviteUseRace uses one code with 3 uses from many creations at once:
// exactly 3 succeed.
func TestInviteUseRace(t *testing.T) {
	forEach(t, func(t *testing.T, s *store.Store) {
		ctx := testCtx(t)
		if err := s.CreateInviteCodes(ctx, []store.InviteCode{{Code: "three", Available: 3, ForAccount: "admin"}}); err != nil {
			t.Fatal(err)
		}
		const n = 12
		errs := make([]error, n)
		var wg sync.WaitGroup
		for i := range n {
			wg.Go(func() { errs[i] = s.CreateAccount(ctx, account(100+i), "three") })
		}
		wg.Wait()
		var winners []syntax.DID
		for i, err := range errs {
			switch {
			case err == nil:
				winners = append(winners, did(100+i))
			case !errors.Is(err, store.ErrInvalidInvite):
				t.Fatalf("creation failed with %v, want ErrInvalidInvite", err)
			}
		}
		if len(winners) != 3 {
			t.Fatalf("%d creations succeeded, want 3", len(winners))
		}
		c, err := s.GetInviteCode(ctx, "three")
		if err != nil {
			t.Fatal(err)
		}
		if len(c.Uses) != 3 {
			t.Fatalf("%d uses recorded, want 3", len(c.Uses))
		}
		for _, u := range c.Uses {
			if !slicesContains(winners, u.UsedBy) {
				t.Fatalf("use by %s, who did not get an account", u.UsedBy)
			}
		}
		if n, err := s.CountAccounts(ctx); err != nil || n != 3 {
			t.Fatalf("CountAccounts = %d, %v", n, err)
		}
	})
}

func slicesContains(s []syntax.DID, d syntax.DID) bool {
	for _, x := range s {
		if x == d {
			return true
		}
	}
	return false
}

func TestNewInviteCode(t *testing.T) {
	re := regexp.MustCompile(`^pds-example-com-[a-z2-7]{5}-[a-z2-7]{5}$`)
	seen := map[string]bool{}
	for range 100 {
		c := store.NewInviteCode("pds.example.com")
		if !re.MatchString(c) {
			t.Fatalf("invite code %q does not match %v", c, re)
		}
		if seen[c] {
			t.Fatalf("invite code %q repeated", c)
		}
		seen[c] = true
	}
	if c := store.NewInviteCode(""); !regexp.MustCompile(`^[a-z2-7]{5}-[a-z2-7]{5}$`).MatchString(c) {
		t.Fatalf("NewInviteCode(\"\") = %q", c)
	}
}

func TestAppPasswords(t *testing.T) {
	forEach(t, func(t *testing.T, s *store.Store) {
		ctx := testCtx(t)
		mustCreate(t, s, account(1))
		mustCreate(t, s, account(2))
		aps := []store.AppPassword{
			{Name: "later", Hash: "h2", Privileged: true, CreatedAt: t0.Add(time.Minute)},
			{Name: "first", Hash: "h1", CreatedAt: t0},
		}
		for _, ap := range aps {
			if err := s.CreateAppPassword(ctx, did(1), ap); err != nil {
				t.Fatal(err)
			}
		}
		for _, tc := range []struct {
			name string
			did  syntax.DID
			ap   store.AppPassword
			want error
		}{
			{"duplicate name", did(1), store.AppPassword{Name: "first", Hash: "x"}, store.ErrDuplicateName},
			{"unknown account", did(9), store.AppPassword{Name: "x", Hash: "x"}, store.ErrNotFound},
			{"empty name", did(1), store.AppPassword{Name: "", Hash: "x"}, nil},
		} {
			err := s.CreateAppPassword(ctx, tc.did, tc.ap)
			if err == nil || (tc.want != nil && !errors.Is(err, tc.want)) {
				t.Errorf("%s: got %v, want %v", tc.name, err, tc.want)
			}
		}
		// Same name on another account is fine.
		if err := s.CreateAppPassword(ctx, did(2), store.AppPassword{Name: "first", Hash: "o"}); err != nil {
			t.Fatal(err)
		}
		got, err := s.ListAppPasswords(ctx, did(1))
		if err != nil {
			t.Fatal(err)
		}
		want := []store.AppPassword{aps[1], aps[0]}
		if !reflect.DeepEqual(got, want) {
			t.Fatalf("ListAppPasswords:\n got %+v\nwant %+v", got, want)
		}
		if err := s.DeleteAppPassword(ctx, did(1), "first"); err != nil {
			t.Fatal(err)
		}
		if err := s.DeleteAppPassword(ctx, did(1), "first"); !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("deleting twice: %v", err)
		}
		got, err = s.ListAppPasswords(ctx, did(1))
		if err != nil || len(got) != 1 || got[0].Name != "later" {
			t.Fatalf("after delete: %+v, %v", got, err)
		}
		if got, err := s.ListAppPasswords(ctx, did(2)); err != nil || len(got) != 1 || got[0].Hash != "o" {
			t.Fatalf("other account: %+v, %v", got, err)
		}
	})
}

func TestEmailTokens(t *testing.T) {
	forEach(t, func(t *testing.T, s *store.Store) {
		ctx := testCtx(t)
		mustCreate(t, s, account(1))
		mustCreate(t, s, account(2))
		exp := t0.Add(15 * time.Minute)
		put := func(d syntax.DID, p store.TokenPurpose, tok string) {
			t.Helper()
			if err := s.PutEmailToken(ctx, d, p, tok, exp); err != nil {
				t.Fatal(err)
			}
		}

		put(did(1), store.PurposeConfirmEmail, "AAAAA-11111")
		for _, tc := range []struct {
			name    string
			did     syntax.DID
			purpose store.TokenPurpose
			token   string
			now     time.Time
			want    error
		}{
			{"wrong token", did(1), store.PurposeConfirmEmail, "AAAAA-22222", t0, store.ErrInvalidToken},
			{"wrong purpose", did(1), store.PurposeResetPassword, "AAAAA-11111", t0, store.ErrInvalidToken},
			{"wrong account", did(2), store.PurposeConfirmEmail, "AAAAA-11111", t0, store.ErrInvalidToken},
			{"empty", did(1), store.PurposeConfirmEmail, "  ", t0, store.ErrInvalidToken},
			{"expired", did(1), store.PurposeConfirmEmail, "AAAAA-11111", exp, store.ErrExpiredToken},
			{"ok, typed in lower case", did(1), store.PurposeConfirmEmail, " aaaaa-11111\n", exp.Add(-time.Microsecond), nil},
			{"used", did(1), store.PurposeConfirmEmail, "AAAAA-11111", t0, store.ErrInvalidToken},
		} {
			err := s.UseEmailToken(ctx, tc.did, tc.purpose, tc.token, tc.now)
			if !errors.Is(err, tc.want) || (tc.want == nil) != (err == nil) {
				t.Errorf("%s: got %v, want %v", tc.name, err, tc.want)
			}
		}

		// A new token replaces the old one of the same purpose only.
		put(did(1), store.PurposeUpdateEmail, "OLD00-00000")
		put(did(1), store.PurposeDeleteAccount, "DEL00-00000")
		put(did(1), store.PurposeUpdateEmail, "NEW00-00000")
		if err := s.UseEmailToken(ctx, did(1), store.PurposeUpdateEmail, "OLD00-00000", t0); !errors.Is(err, store.ErrInvalidToken) {
			t.Fatalf("replaced token: %v", err)
		}
		if err := s.UseEmailToken(ctx, did(1), store.PurposeUpdateEmail, "NEW00-00000", t0); err != nil {
			t.Fatalf("replacing token: %v", err)
		}
		if err := s.UseEmailToken(ctx, did(1), store.PurposeDeleteAccount, "del00-00000", t0); err != nil {
			t.Fatalf("token of another purpose: %v", err)
		}

		// Lookup by token alone does not consume it.
		put(did(2), store.PurposeResetPassword, "RESET-22222")
		for range 2 {
			if d, err := s.DIDForEmailToken(ctx, store.PurposeResetPassword, "reset-22222", t0); err != nil || d != did(2) {
				t.Fatalf("DIDForEmailToken = %q, %v", d, err)
			}
		}
		for _, tc := range []struct {
			name    string
			purpose store.TokenPurpose
			token   string
			now     time.Time
			want    error
		}{
			{"expired", store.PurposeResetPassword, "RESET-22222", exp.Add(time.Hour), store.ErrExpiredToken},
			{"other purpose", store.PurposeConfirmEmail, "RESET-22222", t0, store.ErrInvalidToken},
			{"unknown", store.PurposeResetPassword, "RESET-33333", t0, store.ErrInvalidToken},
			{"empty", store.PurposeResetPassword, "", t0, store.ErrInvalidToken},
		} {
			if d, err := s.DIDForEmailToken(ctx, tc.purpose, tc.token, tc.now); !errors.Is(err, tc.want) {
				t.Errorf("DIDForEmailToken %s: %q, %v; want %v", tc.name, d, err, tc.want)
			}
		}

		// The same token for one purpose on two accounts is refused.
		if err := s.PutEmailToken(ctx, did(1), store.PurposeResetPassword, "RESET-22222", exp); !errors.Is(err, store.ErrTokenInUse) {
			t.Fatalf("token held by another account: %v", err)
		}
		if err := s.PutEmailToken(ctx, did(1), store.PurposeConfirmEmail, "RESET-22222", exp); err != nil {
			t.Fatalf("same token, other purpose: %v", err)
		}
		if err := s.PutEmailToken(ctx, did(9), store.PurposeConfirmEmail, "X", exp); !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("unknown account: %v", err)
		}
		if err := s.PutEmailToken(ctx, did(1), "other", "X", exp); err == nil {
			t.Fatal("unknown purpose accepted")
		}
		if err := s.PutEmailToken(ctx, did(1), store.PurposePLCOperation, " ", exp); err == nil {
			t.Fatal("empty token accepted")
		}

		// Expired tokens are swept.
		put(did(2), store.PurposePLCOperation, "PLC00-00000")
		if err := s.DeleteExpiredEmailTokens(ctx, exp); err != nil {
			t.Fatal(err)
		}
		if err := s.UseEmailToken(ctx, did(2), store.PurposePLCOperation, "PLC00-00000", t0); !errors.Is(err, store.ErrInvalidToken) {
			t.Fatalf("expired token not deleted: %v", err)
		}
	})
}

// TestEmailTokenSingleUse uses one token from many goroutines at once:
// exactly one succeeds.
func TestEmailTokenSingleUse(t *testing.T) {
	forEach(t, func(t *testing.T, s *store.Store) {
		ctx := testCtx(t)
		mustCreate(t, s, account(1))
		if err := s.PutEmailToken(ctx, did(1), store.PurposePLCOperation, "ONCE0-00000", t0.Add(time.Hour)); err != nil {
			t.Fatal(err)
		}
		const n = 10
		errs := make([]error, n)
		var wg sync.WaitGroup
		for i := range n {
			wg.Go(func() { errs[i] = s.UseEmailToken(ctx, did(1), store.PurposePLCOperation, "ONCE0-00000", t0) })
		}
		wg.Wait()
		ok := 0
		for _, err := range errs {
			switch {
			case err == nil:
				ok++
			case !errors.Is(err, store.ErrInvalidToken):
				t.Fatalf("use failed with %v", err)
			}
		}
		if ok != 1 {
			t.Fatalf("%d uses succeeded, want 1", ok)
		}
	})
}

func TestNewEmailToken(t *testing.T) {
	re := regexp.MustCompile(`^[A-Z2-7]{5}-[A-Z2-7]{5}$`)
	a, b := store.NewEmailToken(), store.NewEmailToken()
	if !re.MatchString(a) || !re.MatchString(b) || a == b {
		t.Fatalf("NewEmailToken = %q, %q", a, b)
	}
}
