package sqldb_test

import (
	"testing"

	"github.com/welkin-atproto/welkin/internal/sqldb"
)

func TestRebind(t *testing.T) {
	cases := []struct{ in, want string }{
		{"SELECT 1", "SELECT 1"},
		{"SELECT * FROM t WHERE a = ?", "SELECT * FROM t WHERE a = $1"},
		{"INSERT INTO t (a, b, c) VALUES (?, ?,?)", "INSERT INTO t (a, b, c) VALUES ($1, $2,$3)"},
		{"SELECT '?' , ?", "SELECT '?' , $1"},
		{"SELECT 'it''s ?', ? FROM t", "SELECT 'it''s ?', $1 FROM t"},
		{"SELECT '', ?", "SELECT '', $1"},
		{`SELECT "we?rd" FROM t WHERE x = ?`, `SELECT "we?rd" FROM t WHERE x = $1`},
		{`SELECT "a""?" , ?`, `SELECT "a""?" , $1`},
		{"SELECT E'\\'?', ?", "SELECT E'\\'?', $1"},
		{"SELECT e'a\\\\', ?", "SELECT e'a\\\\', $1"},
		{"SELECT 'a\\', ?", "SELECT 'a\\', $1"}, // standard strings: no backslash escapes
		{"SELECT ? -- what?\n, ?", "SELECT $1 -- what?\n, $2"},
		{"SELECT ? -- trailing?", "SELECT $1 -- trailing?"},
		{"SELECT /* a? /* nested? */ b? */ ?", "SELECT /* a? /* nested? */ b? */ $1"},
		{"SELECT $$ ? $$, ?", "SELECT $$ ? $$, $1"},
		{"SELECT $tag$ ? $x$ ? $tag$, ?", "SELECT $tag$ ? $x$ ? $tag$, $1"},
		{"SELECT data ?? 'k', ?", "SELECT data ? 'k', $1"},
		{"SELECT a$b, ?", "SELECT a$b, $1"},
		{"SELECT '?", "SELECT '?"}, // unterminated: left alone
		{"?", "$1"},
		{"?,?,?,?,?,?,?,?,?,?,?", "$1,$2,$3,$4,$5,$6,$7,$8,$9,$10,$11"},
		{"SELECT 'é?', ?", "SELECT 'é?', $1"},
	}
	for _, c := range cases {
		if got := sqldb.Rebind(sqldb.Postgres, c.in); got != c.want {
			t.Errorf("Rebind(Postgres, %q) = %q, want %q", c.in, got, c.want)
		}
		if got := sqldb.Rebind(sqldb.SQLite, c.in); got != c.in {
			t.Errorf("Rebind(SQLite, %q) = %q, want it unchanged", c.in, got)
		}
	}
}

func BenchmarkRebind(b *testing.B) {
	q := "INSERT INTO records (did, collection, rkey, cid, value) VALUES (?, ?, ?, ?, ?) ON CONFLICT (did, collection, rkey) DO UPDATE SET cid = excluded.cid"
	for b.Loop() {
		sqldb.Rebind(sqldb.Postgres, q)
	}
}
