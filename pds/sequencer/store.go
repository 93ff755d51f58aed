package sequencer

import (
	"context"
	"database/sql"
	"errors"
	"fmt"

	"github.com/welkin-atproto/welkin/atproto/stream"
	"github.com/welkin-atproto/welkin/atproto/syntax"
	"github.com/welkin-atproto/welkin/internal/sqldb"
)

// Component is the name under which the log's migrations are recorded.
const Component = "sequencer"

const (
	// MaxSinceLimit bounds the events one Since call returns.
	MaxSinceLimit = 10_000
	// maxSeq is the largest seq handed out: the event-stream spec keeps
	// sequence numbers below 2^53 so that JavaScript can hold them.
	maxSeq = 1<<53 - 1
)

// The schema. seq_state is one row: the last seq handed out (kept when its
// event is pruned), the creation time of the newest event (created_at never
// decreases along seq, so the events older than a cutoff are a prefix of
// the log) and gen, bumped by every batch, so that a batch computed from a
// stale picture of the log is refused. seq_cursors holds, per account, the
// highest outbox ID sequenced; it is written in the same transaction as the
// events. Times are Unix milliseconds.
var migrations = []sqldb.Migration{
	{
		Version: 1,
		SQLite: `
CREATE TABLE seq_state (
	id        INTEGER PRIMARY KEY CHECK (id = 1),
	last_seq  INTEGER NOT NULL,
	last_time INTEGER NOT NULL,
	gen       INTEGER NOT NULL
);
INSERT INTO seq_state (id, last_seq, last_time, gen) VALUES (1, 0, 0, 0);
CREATE TABLE seq_events (
	seq        INTEGER PRIMARY KEY,
	did        TEXT NOT NULL,
	kind       TEXT NOT NULL,
	created_at INTEGER NOT NULL,
	frame      BLOB NOT NULL
);
CREATE TABLE seq_cursors (
	did       TEXT PRIMARY KEY,
	outbox_id INTEGER NOT NULL
) WITHOUT ROWID;
`,
		Postgres: `
CREATE TABLE seq_state (
	id        INTEGER PRIMARY KEY CHECK (id = 1),
	last_seq  BIGINT NOT NULL,
	last_time BIGINT NOT NULL,
	gen       BIGINT NOT NULL
);
INSERT INTO seq_state (id, last_seq, last_time, gen) VALUES (1, 0, 0, 0);
CREATE TABLE seq_events (
	seq        BIGINT PRIMARY KEY,
	did        TEXT NOT NULL,
	kind       TEXT NOT NULL,
	created_at BIGINT NOT NULL,
	frame      BYTEA NOT NULL
);
CREATE TABLE seq_cursors (
	did       TEXT PRIMARY KEY,
	outbox_id BIGINT NOT NULL
);
`,
	},
	{
		// Version 2: the durable mark (see SetDurableMark).
		Version: 2,
		SQLite: `
CREATE TABLE seq_marks (
	name TEXT PRIMARY KEY,
	seq  INTEGER NOT NULL
) WITHOUT ROWID;
`,
		Postgres: `
CREATE TABLE seq_marks (
	name TEXT PRIMARY KEY,
	seq  BIGINT NOT NULL
);
`,
	},
}

// errLogChanged: the log's generation is not the one the batch was built
// on; something else wrote to the log.
var errLogChanged = errors.New("sequencer: the log was changed by another writer")

// logState is the log's state as stored.
type logState struct {
	lastSeq  int64
	lastTime int64
	gen      int64
	cursors  map[syntax.DID]int64
}

func loadState(ctx context.Context, db *sqldb.DB) (*logState, error) {
	st := &logState{cursors: make(map[syntax.DID]int64)}
	err := db.TxWith(ctx, &sql.TxOptions{ReadOnly: true, Isolation: sql.LevelRepeatableRead}, func(tx *sql.Tx) error {
		clear(st.cursors)
		if err := tx.QueryRowContext(ctx, `SELECT last_seq, last_time, gen FROM seq_state WHERE id = 1`).
			Scan(&st.lastSeq, &st.lastTime, &st.gen); err != nil {
			return fmt.Errorf("read state: %w", err)
		}
		var maxSeq sql.NullInt64
		if err := tx.QueryRowContext(ctx, `SELECT MAX(seq) FROM seq_events`).Scan(&maxSeq); err != nil {
			return fmt.Errorf("read latest event: %w", err)
		}
		if maxSeq.Valid && maxSeq.Int64 > st.lastSeq {
			return fmt.Errorf("log holds seq %d above the recorded last seq %d", maxSeq.Int64, st.lastSeq)
		}
		rows, err := tx.QueryContext(ctx, `SELECT did, outbox_id FROM seq_cursors`)
		if err != nil {
			return fmt.Errorf("read cursors: %w", err)
		}
		defer rows.Close()
		for rows.Next() {
			var (
				did string
				id  int64
			)
			if err := rows.Scan(&did, &id); err != nil {
				return fmt.Errorf("read cursors: %w", err)
			}
			st.cursors[syntax.DID(did)] = id
		}
		return rows.Err()
	})
	if err != nil {
		return nil, fmt.Errorf("sequencer: %w", err)
	}
	return st, nil
}

// logEvent is one event of a batch.
type logEvent struct {
	seq   int64
	did   syntax.DID
	kind  string
	frame []byte
}

// insertChunk is how many events one INSERT statement carries: one
// round trip per chunk on PostgreSQL, one statement per chunk on SQLite.
const insertChunk = 64

func insertEventsSQL(db *sqldb.DB, n int) string {
	q := make([]byte, 0, 64+n*16)
	q = append(q, "INSERT INTO seq_events (seq, did, kind, created_at, frame) VALUES "...)
	for i := range n {
		if i > 0 {
			q = append(q, ',')
		}
		q = append(q, "(?, ?, ?, ?, ?)"...)
	}
	return db.Rebind(string(q))
}

// cachedInserts is how many events the insert statements that writeBatch
// keeps prepared hold at most, beside the full chunk: small batches, as
// light load makes them, then skip parsing their SQL.
const cachedInserts = 4

// batchSQL holds the statements of writeBatch for one log database,
// rebound for its dialect, so that the statement cache can keep them.
type batchSQL struct {
	state, upsert, reset, full string
	small                      [cachedInserts + 1]string // by event count
}

func newBatchSQL(db *sqldb.DB) *batchSQL {
	b := &batchSQL{
		state: db.Rebind(`UPDATE seq_state SET last_seq = ?, last_time = ?, gen = gen + 1 WHERE id = 1 AND gen = ?`),
		upsert: db.Rebind(`INSERT INTO seq_cursors (did, outbox_id) VALUES (?, ?)
		ON CONFLICT (did) DO UPDATE SET outbox_id = excluded.outbox_id`),
		reset: db.Rebind(`DELETE FROM seq_cursors WHERE did = ?`),
		full:  insertEventsSQL(db, insertChunk),
	}
	for n := 1; n <= cachedInserts; n++ {
		b.small[n] = insertEventsSQL(db, n)
	}
	return b
}

// writeBatch appends events, moves cursors, forgets the cursors of resets
// and records the new state, in one transaction. It fails with
// errLogChanged unless the stored generation is gen.
func writeBatch(ctx context.Context, db *sqldb.DB, q *batchSQL, gen int64, events []logEvent, created int64,
	cursors map[syntax.DID]int64, resets []syntax.DID, lastSeq int64) error {
	return db.Tx(ctx, func(tx *sql.Tx) error {
		st, err := db.TxStmt(ctx, tx, q.state)
		if err != nil {
			return fmt.Errorf("update state: %w", err)
		}
		res, err := st.ExecContext(ctx, lastSeq, created, gen)
		if err != nil {
			return fmt.Errorf("update state: %w", err)
		}
		if n, err := res.RowsAffected(); err != nil {
			return fmt.Errorf("update state: %w", err)
		} else if n != 1 {
			return errLogChanged
		}
		// insert inserts evs with query, through the statement cache
		// when cached (a one-off statement, as a batch of an odd size
		// needs, is not for the cache).
		insert := func(query string, evs []logEvent, cached bool) error {
			args := make([]any, 0, 5*len(evs))
			for _, ev := range evs {
				args = append(args, ev.seq, string(ev.did), ev.kind, created, ev.frame)
			}
			var err error
			if cached {
				var st *sql.Stmt
				if st, err = db.TxStmt(ctx, tx, query); err == nil {
					_, err = st.ExecContext(ctx, args...)
				}
			} else {
				_, err = tx.ExecContext(ctx, query, args...)
			}
			if err != nil {
				return fmt.Errorf("insert events: %w", err)
			}
			return nil
		}
		for len(events) >= insertChunk {
			if err := insert(q.full, events[:insertChunk], true); err != nil {
				return err
			}
			events = events[insertChunk:]
		}
		if n := len(events); n > cachedInserts {
			if err := insert(insertEventsSQL(db, n), events, false); err != nil {
				return err
			}
		} else if n > 0 {
			if err := insert(q.small[n], events, true); err != nil {
				return err
			}
		}
		for _, did := range resets {
			st, err := db.TxStmt(ctx, tx, q.reset)
			if err == nil {
				_, err = st.ExecContext(ctx, string(did))
			}
			if err != nil {
				return fmt.Errorf("reset cursor: %w", err)
			}
		}
		if len(cursors) > 0 {
			st, err := db.TxStmt(ctx, tx, q.upsert)
			if err != nil {
				return fmt.Errorf("prepare cursor: %w", err)
			}
			for did, id := range cursors {
				if _, err := st.ExecContext(ctx, string(did), id); err != nil {
					return fmt.Errorf("move cursor: %w", err)
				}
			}
		}
		return nil
	})
}

// pruneChunk deletes up to limit of the oldest events created before
// cutoff and reports how many it deleted.
func pruneChunk(ctx context.Context, db *sqldb.DB, cutoff int64, limit int) (int64, error) {
	var n int64
	err := db.Tx(ctx, func(tx *sql.Tx) error {
		var oldest sql.NullInt64
		if err := tx.QueryRowContext(ctx, `SELECT MIN(seq) FROM seq_events`).Scan(&oldest); err != nil {
			return err
		}
		if !oldest.Valid {
			n = 0
			return nil
		}
		// created_at does not decrease along seq, so the rows matched are
		// a prefix of the log: the retained window stays without holes.
		res, err := tx.ExecContext(ctx, db.Rebind(`DELETE FROM seq_events WHERE seq < ? AND created_at < ?`),
			oldest.Int64+int64(limit), cutoff)
		if err != nil {
			return err
		}
		n, err = res.RowsAffected()
		return err
	})
	if err != nil {
		return 0, fmt.Errorf("sequencer: prune: %w", err)
	}
	return n, nil
}

// Since implements stream.Log: up to limit events with seq above cursor, in
// seq order. limit <= 0 or above MaxSinceLimit means MaxSinceLimit.
func (s *Sequencer) Since(ctx context.Context, cursor int64, limit int) ([]stream.Event, error) {
	if limit <= 0 || limit > MaxSinceLimit {
		limit = MaxSinceLimit
	}
	rows, err := s.db.Reader().QueryContext(ctx, s.db.Rebind(
		`SELECT seq, frame FROM seq_events WHERE seq > ? ORDER BY seq LIMIT ?`), cursor, limit)
	if err != nil {
		return nil, fmt.Errorf("sequencer: since: %w", err)
	}
	defer rows.Close()
	var out []stream.Event
	for rows.Next() {
		var ev stream.Event
		if err := rows.Scan(&ev.Seq, &ev.Frame); err != nil {
			return nil, fmt.Errorf("sequencer: since: %w", err)
		}
		out = append(out, ev)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("sequencer: since: %w", err)
	}
	return out, nil
}

// OldestSeq implements stream.Log: the seq of the oldest retained event, 0
// when the log holds none.
func (s *Sequencer) OldestSeq(ctx context.Context) (int64, error) {
	var oldest sql.NullInt64
	if err := s.db.Reader().QueryRowContext(ctx, `SELECT MIN(seq) FROM seq_events`).Scan(&oldest); err != nil {
		return 0, fmt.Errorf("sequencer: oldest seq: %w", err)
	}
	return oldest.Int64, nil
}

// LatestSeq implements stream.Log: the highest seq ever appended, 0 if
// none, whether or not that event is still retained.
func (s *Sequencer) LatestSeq(context.Context) (int64, error) {
	return s.latest.Load(), nil
}
