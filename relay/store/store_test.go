package store_test

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/welkin-atproto/welkin/atproto/syntax"
	"github.com/welkin-atproto/welkin/internal/sqldb"
	"github.com/welkin-atproto/welkin/internal/sqldb/sqldbtest"
	"github.com/welkin-atproto/welkin/relay/store"
)

func TestHosts(t *testing.T) {
	sqldbtest.ForEachBackend(t, func(t *testing.T, db *sqldb.DB) {
		ctx := context.Background()
		s, err := store.New(ctx, db)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := store.New(ctx, db); err != nil {
			t.Fatalf("second New: %v", err)
		}
		if _, err := s.Host(ctx, "nope.example.com"); !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("unknown host: %v, want ErrNotFound", err)
		}
		h, added, err := s.AddHost(ctx, store.Host{Hostname: "pds.example.com", AccountLimit: 10})
		if err != nil || !added {
			t.Fatalf("AddHost: %v, added %v", err, added)
		}
		if h.Status != store.HostActive || h.AccountLimit != 10 || h.Cursor != 0 || h.Trusted {
			t.Fatalf("new host = %+v", h)
		}
		if _, added, err := s.AddHost(ctx, store.Host{Hostname: "pds.example.com", AccountLimit: 99}); err != nil || added {
			t.Fatalf("AddHost again: %v, added %v", err, added)
		}
		h2, added, err := s.AddHost(ctx, store.Host{Hostname: "pds.example.com", Trusted: true, AccountLimit: 1000})
		if err != nil || added || !h2.Trusted || h2.AccountLimit != 10 {
			t.Fatalf("AddHost trusted: %+v, %v, %v", h2, added, err)
		}
		if err := s.SetHostStatus(ctx, "pds.example.com", store.HostBlocked); err != nil {
			t.Fatal(err)
		}
		if err := s.SetHostStatus(ctx, "pds.example.com", "bogus"); err == nil {
			t.Fatal("bogus status accepted")
		}
		if err := s.SetHostStatus(ctx, "nope.example.com", store.HostActive); !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("status of unknown host: %v", err)
		}
		if err := s.SaveHostProgress(ctx, "pds.example.com", 42, 3, 1); err != nil {
			t.Fatal(err)
		}
		if err := s.SaveHostProgress(ctx, "pds.example.com", 40, 1, 0); err != nil {
			t.Fatal(err)
		}
		h, err = s.Host(ctx, "pds.example.com")
		if err != nil {
			t.Fatal(err)
		}
		if h.Cursor != 42 || h.Accepted != 4 || h.Rejected != 1 || h.Status != store.HostBlocked {
			t.Fatalf("after progress: %+v", h)
		}
		if err := s.ResetHostCursor(ctx, "pds.example.com", 5); err != nil {
			t.Fatal(err)
		}
		if h, _ = s.Host(ctx, "pds.example.com"); h.Cursor != 5 {
			t.Fatalf("cursor after reset = %d", h.Cursor)
		}

		for i := range 4 {
			if _, _, err := s.AddHost(ctx, store.Host{Hostname: fmt.Sprintf("h%d.example.com", i), NoTLS: i == 0}); err != nil {
				t.Fatal(err)
			}
		}
		var all []store.Host
		cursor := ""
		for {
			page, next, err := s.ListHosts(ctx, cursor, 2)
			if err != nil {
				t.Fatal(err)
			}
			all = append(all, page...)
			if next == "" {
				break
			}
			cursor = next
		}
		if len(all) != 5 || all[0].Hostname != "pds.example.com" || !all[1].NoTLS || all[4].Hostname != "h3.example.com" {
			t.Fatalf("ListHosts = %+v", all)
		}
		if _, _, err := s.ListHosts(ctx, "x", 2); !errors.Is(err, store.ErrInvalidCursor) {
			t.Fatalf("bad cursor: %v", err)
		}
	})
}

func TestHostLimitsAndFirstSeen(t *testing.T) {
	sqldbtest.ForEachBackend(t, func(t *testing.T, db *sqldb.DB) {
		ctx := context.Background()
		s, err := store.New(ctx, db)
		if err != nil {
			t.Fatal(err)
		}
		h, _, err := s.AddHost(ctx, store.Host{Hostname: "pds.example.com", EventRate: 7.5, EventBurst: 30})
		if err != nil {
			t.Fatal(err)
		}
		if h.AccountLimit != 0 || h.EventRate != 7.5 || h.EventBurst != 30 || !h.FirstSeen.IsZero() {
			t.Fatalf("new host = %+v", h)
		}
		if err := s.SetHostLimits(ctx, "pds.example.com", 250, 12.25, 0); err != nil {
			t.Fatal(err)
		}
		if h, _ = s.Host(ctx, "pds.example.com"); h.AccountLimit != 250 || h.EventRate != 12.25 || h.EventBurst != 0 {
			t.Fatalf("after SetHostLimits = %+v", h)
		}
		if err := s.SetHostLimits(ctx, "pds.example.com", -1, 0, 0); err == nil {
			t.Fatal("a negative account limit was accepted")
		}
		if err := s.SetHostLimits(ctx, "nope.example.com", 1, 0, 0); !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("limits of an unknown host: %v", err)
		}
		if _, _, err := s.AddHost(ctx, store.Host{Hostname: "bad.example.com", EventBurst: -5}); err == nil {
			t.Fatal("a negative burst was accepted")
		}

		first := time.UnixMilli(1_700_000_000_000).UTC()
		if err := s.MarkHostSeen(ctx, "pds.example.com", first); err != nil {
			t.Fatal(err)
		}
		if err := s.MarkHostSeen(ctx, "pds.example.com", first.Add(time.Hour)); err != nil {
			t.Fatal(err)
		}
		if h, _ = s.Host(ctx, "pds.example.com"); !h.FirstSeen.Equal(first) {
			t.Fatalf("FirstSeen = %v, want the first mark %v", h.FirstSeen, first)
		}
		if err := s.MarkHostSeen(ctx, "nope.example.com", first); !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("marking an unknown host: %v", err)
		}
	})
}

func TestAccounts(t *testing.T) {
	sqldbtest.ForEachBackend(t, func(t *testing.T, db *sqldb.DB) {
		ctx := context.Background()
		s, err := store.New(ctx, db)
		if err != nil {
			t.Fatal(err)
		}
		did := syntax.DID("did:plc:aaaaaaaaaaaaaaaaaaaaaaaa")
		if _, err := s.Account(ctx, did); !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("unknown account: %v", err)
		}
		a := store.Account{DID: did, Host: "pds.example.com", Rev: "3l3qo2vutsw2b", Data: "bafydata", Commit: "bafycommit"}
		if err := s.PutAccount(ctx, a); err != nil {
			t.Fatal(err)
		}
		got, err := s.Account(ctx, did)
		if err != nil {
			t.Fatal(err)
		}
		if got.Status != store.StatusActive || !got.Active() || got.Rev != a.Rev || got.Data != a.Data || got.Commit != a.Commit || got.Host != a.Host {
			t.Fatalf("Account = %+v", got)
		}
		a.Status, a.Desync = store.StatusTakendown, true
		if err := s.PutAccount(ctx, a); err != nil {
			t.Fatal(err)
		}
		if got, _ = s.Account(ctx, did); got.Active() || !got.Desync {
			t.Fatalf("after update = %+v", got)
		}
		for i := range 5 {
			d := syntax.DID(fmt.Sprintf("did:plc:b%023d", i))
			if err := s.PutAccount(ctx, store.Account{DID: d, Host: "other.example.com"}); err != nil {
				t.Fatal(err)
			}
		}
		n, err := s.AccountCount(ctx, "other.example.com")
		if err != nil || n != 5 {
			t.Fatalf("AccountCount = %d, %v", n, err)
		}
		var all []store.Account
		cursor := ""
		for {
			page, next, err := s.ListAccounts(ctx, cursor, 4)
			if err != nil {
				t.Fatal(err)
			}
			all = append(all, page...)
			if next == "" {
				break
			}
			cursor = next
		}
		if len(all) != 6 || all[0].DID != did {
			t.Fatalf("ListAccounts = %d accounts, first %v", len(all), all[0].DID)
		}
		if _, _, err := s.ListAccounts(ctx, "not a did", 4); !errors.Is(err, store.ErrInvalidCursor) {
			t.Fatalf("bad cursor: %v", err)
		}
		if err := s.PutAccount(ctx, store.Account{}); err == nil {
			t.Fatal("empty DID accepted")
		}
	})
}

func TestTakedownAndAppliedSeq(t *testing.T) {
	sqldbtest.ForEachBackend(t, func(t *testing.T, db *sqldb.DB) {
		ctx := context.Background()
		s, err := store.New(ctx, db)
		if err != nil {
			t.Fatal(err)
		}
		if seq, err := s.AppliedSeq(ctx); err != nil || seq != 0 {
			t.Fatalf("AppliedSeq of a new store = %d, %v", seq, err)
		}
		did := syntax.DID("did:plc:cccccccccccccccccccccccc")
		a := store.Account{DID: did, Host: "pds.example.com", Status: store.StatusDeactivated, TakenDown: true, Rev: "3l3qo2vutsw2b"}
		other := store.Account{DID: "did:plc:dddddddddddddddddddddddd", Host: "pds.example.com", Desync: true}
		if err := s.ApplyEvents(ctx, []store.Account{a, other}, 42); err != nil {
			t.Fatal(err)
		}
		if seq, err := s.AppliedSeq(ctx); err != nil || seq != 42 {
			t.Fatalf("AppliedSeq = %d, %v; want 42", seq, err)
		}
		got, err := s.Account(ctx, did)
		if err != nil {
			t.Fatal(err)
		}
		if !got.TakenDown || got.Active() || got.HostingStatus() != store.StatusTakendown || got.Status != store.StatusDeactivated {
			t.Fatalf("taken-down account = %+v (status %s)", got, got.HostingStatus())
		}
		// Lifting the takedown leaves the host's status.
		got.TakenDown = false
		if err := s.PutAccount(ctx, got); err != nil {
			t.Fatal(err)
		}
		if got, _ = s.Account(ctx, did); got.TakenDown || got.Active() || got.HostingStatus() != store.StatusDeactivated {
			t.Fatalf("restored account = %+v", got)
		}
		// A failing batch stores nothing, the seq included.
		if err := s.ApplyEvents(ctx, []store.Account{{DID: "did:plc:eeeeeeeeeeeeeeeeeeeeeeee"}, {}}, 50); err == nil {
			t.Fatal("a batch with an empty DID was stored")
		}
		if seq, _ := s.AppliedSeq(ctx); seq != 42 {
			t.Fatalf("AppliedSeq after a failed batch = %d", seq)
		}
		if _, err := s.Account(ctx, "did:plc:eeeeeeeeeeeeeeeeeeeeeeee"); !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("account of a failed batch: %v", err)
		}
		if err := s.SetAppliedSeq(ctx, 7); err != nil {
			t.Fatal(err)
		}
		if seq, _ := s.AppliedSeq(ctx); seq != 7 {
			t.Fatalf("AppliedSeq after SetAppliedSeq(7) = %d", seq)
		}

		for i := range 5 {
			d := syntax.DID(fmt.Sprintf("did:plc:f%023d", i))
			if err := s.PutAccount(ctx, store.Account{DID: d, Host: "h.example.com", Desync: i%2 == 0}); err != nil {
				t.Fatal(err)
			}
		}
		var desync []syntax.DID
		cursor := ""
		for {
			page, next, err := s.ListDesynchronized(ctx, cursor, 2)
			if err != nil {
				t.Fatal(err)
			}
			for _, a := range page {
				desync = append(desync, a.DID)
			}
			if next == "" {
				break
			}
			cursor = next
		}
		if fmt.Sprint(desync) != "[did:plc:dddddddddddddddddddddddd did:plc:f00000000000000000000000 did:plc:f00000000000000000000002 did:plc:f00000000000000000000004]" {
			t.Fatalf("ListDesynchronized = %v", desync)
		}
	})
}
