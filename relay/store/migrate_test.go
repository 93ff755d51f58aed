package store

import (
	"context"
	"testing"
	"time"

	"github.com/welkin-atproto/welkin/internal/sqldb"
	"github.com/welkin-atproto/welkin/internal/sqldb/sqldbtest"
)

// TestMigrateHostPolicy opens a database written by the version 1 schema
// and checks what version 2 makes of its hosts: the default account
// limits of the time are cleared (the policy decides now), hosts that had
// accepted events count as seen since they were added, and the others as
// not seen yet.
func TestMigrateHostPolicy(t *testing.T) {
	sqldbtest.ForEachBackend(t, func(t *testing.T, db *sqldb.DB) {
		ctx := context.Background()
		if err := sqldb.Migrate(ctx, db, component, migrations[:1]); err != nil {
			t.Fatal(err)
		}
		added := time.UnixMilli(1_650_000_000_000).UTC()
		for _, row := range []struct {
			name     string
			trusted  bool
			accepted int64
			limit    int64
		}{
			{"old.example.com", false, 42, 1000},
			{"quiet.example.com", false, 0, 1000},
			{"big.example.com", true, 7, 1 << 40},
		} {
			if _, err := db.SQL().ExecContext(ctx, db.Rebind(
				`INSERT INTO relay_hosts (hostname, trusted, status, accepted, account_limit, created_at, updated_at) VALUES (?, ?, 'active', ?, ?, ?, ?)`),
				row.name, row.trusted, row.accepted, row.limit, added.UnixMilli(), added.UnixMilli()); err != nil {
				t.Fatal(err)
			}
		}
		s, err := New(ctx, db)
		if err != nil {
			t.Fatalf("migrating a version 1 database: %v", err)
		}
		for name, seen := range map[string]bool{"old.example.com": true, "quiet.example.com": false, "big.example.com": true} {
			h, err := s.Host(ctx, name)
			if err != nil {
				t.Fatal(err)
			}
			if h.AccountLimit != 0 || h.EventRate != 0 || h.EventBurst != 0 {
				t.Errorf("%s: limits after migration = %d, %v, %d; want none", name, h.AccountLimit, h.EventRate, h.EventBurst)
			}
			if seen && !h.FirstSeen.Equal(added) {
				t.Errorf("%s: FirstSeen = %v, want %v", name, h.FirstSeen, added)
			}
			if !seen && !h.FirstSeen.IsZero() {
				t.Errorf("%s: FirstSeen = %v, want none", name, h.FirstSeen)
			}
		}
		if h, _ := s.Host(ctx, "big.example.com"); !h.Trusted {
			t.Error("the trusted flag was lost")
		}
	})
}

// TestMigrateFromVersion1 opens a database written by the first schema,
// which had neither takedowns nor the applied seq: its accounts keep
// their state and are not taken down.
func TestMigrateFromVersion1(t *testing.T) {
	sqldbtest.ForEachBackend(t, func(t *testing.T, db *sqldb.DB) {
		ctx := context.Background()
		if err := sqldb.Migrate(ctx, db, component, migrations[:1]); err != nil {
			t.Fatal(err)
		}
		_, err := db.SQL().ExecContext(ctx, db.Rebind(`INSERT INTO relay_accounts (did, host, status, rev, desync, updated_at) VALUES (?, ?, ?, ?, ?, ?)`),
			"did:plc:aaaaaaaaaaaaaaaaaaaaaaaa", "pds.example.com", StatusActive, "3l3qo2vutsw2b", true, 1)
		if err != nil {
			t.Fatal(err)
		}
		s, err := New(ctx, db)
		if err != nil {
			t.Fatal(err)
		}
		a, err := s.Account(ctx, "did:plc:aaaaaaaaaaaaaaaaaaaaaaaa")
		if err != nil {
			t.Fatal(err)
		}
		if a.TakenDown || !a.Active() || a.Rev != "3l3qo2vutsw2b" || !a.Desync || a.Host != "pds.example.com" {
			t.Fatalf("account after the migration = %+v", a)
		}
		if seq, err := s.AppliedSeq(ctx); err != nil || seq != 0 {
			t.Fatalf("AppliedSeq after the migration = %d, %v", seq, err)
		}
		page, _, err := s.ListDesynchronized(ctx, "", 10)
		if err != nil || len(page) != 1 {
			t.Fatalf("ListDesynchronized = %v, %v", page, err)
		}
	})
}
