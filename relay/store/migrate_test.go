package store

import (
	"context"
	"testing"

	"github.com/welkin-atproto/welkin/internal/sqldb"
	"github.com/welkin-atproto/welkin/internal/sqldb/sqldbtest"
)

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
