package sqldb

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
)

// maxCachedStmts bounds a DB's statement cache. The cache is meant for the
// fixed queries written in the code; a caller that builds queries at run
// time (a variable number of placeholders) must prepare them itself.
const maxCachedStmts = 512

// errStmtCacheFull reports a query the cache refused; it means a caller
// passes queries built at run time.
var errStmtCacheFull = errors.New("sqldb: statement cache full (cache only fixed queries)")

// stmtCache keeps the statements of one pool, prepared once. database/sql
// re-prepares a statement on each pooled connection the first time it is
// used there and keeps it, so a hot query is parsed once per connection
// instead of once per call: with SQLite that parse is a tenth of a small
// write's CPU.
type stmtCache struct {
	pool *sql.DB

	mu     sync.Mutex
	stmts  map[string]*sql.Stmt
	closed bool
	// pending holds queries first met inside a transaction. They cannot be
	// prepared on the pool then: on SQLite the transaction holds the
	// writer's only connection, and the prepare would wait for it forever.
	// They are prepared once the transaction is over (preparePending).
	pending    map[string]struct{}
	hasPending atomic.Bool
}

func (c *stmtCache) get(ctx context.Context, query string) (*sql.Stmt, error) {
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return nil, errors.New("sqldb: database is closed")
	}
	if st, ok := c.stmts[query]; ok {
		c.mu.Unlock()
		return st, nil
	}
	full := len(c.stmts) >= maxCachedStmts
	c.mu.Unlock()
	if full {
		return nil, errStmtCacheFull
	}
	// Prepare without holding mu: on SQLite the prepare waits for the
	// writer's only connection, and the transaction holding it may need
	// mu (txStmt) before it can give the connection back.
	st, err := c.pool.PrepareContext(ctx, query)
	if err != nil {
		return nil, fmt.Errorf("sqldb: prepare: %w", err)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		st.Close()
		return nil, errors.New("sqldb: database is closed")
	}
	if prev, ok := c.stmts[query]; ok {
		// Prepared meanwhile by another caller.
		st.Close()
		return prev, nil
	}
	if c.stmts == nil {
		c.stmts = map[string]*sql.Stmt{}
	}
	c.stmts[query] = st
	return st, nil
}

// txStmt returns query prepared for tx: the cached statement bound to tx,
// or, the first time, a statement prepared in tx alone, with the query
// noted for preparePending.
func (c *stmtCache) txStmt(ctx context.Context, tx *sql.Tx, query string) (*sql.Stmt, error) {
	c.mu.Lock()
	st, ok := c.stmts[query]
	if !ok && !c.closed && len(c.stmts)+len(c.pending) < maxCachedStmts {
		if c.pending == nil {
			c.pending = map[string]struct{}{}
		}
		c.pending[query] = struct{}{}
		c.hasPending.Store(true)
	}
	c.mu.Unlock()
	if ok {
		return tx.StmtContext(ctx, st), nil
	}
	st, err := tx.PrepareContext(ctx, query)
	if err != nil {
		return nil, fmt.Errorf("sqldb: prepare: %w", err)
	}
	return st, nil
}

// preparePending prepares, on the pool, the queries txStmt met inside
// transactions. The caller must hold no connection of the pool.
func (c *stmtCache) preparePending(ctx context.Context) {
	if !c.hasPending.Load() || ctx.Err() != nil {
		return
	}
	c.mu.Lock()
	queries := make([]string, 0, len(c.pending))
	for q := range c.pending {
		queries = append(queries, q)
	}
	clear(c.pending)
	c.hasPending.Store(false)
	c.mu.Unlock()
	for _, q := range queries {
		// A query that fails to prepare here failed in its transaction
		// too; it is simply left out of the cache.
		_, _ = c.get(ctx, q)
	}
}

func (c *stmtCache) close() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.closed = true
	var errs []error
	for q, st := range c.stmts {
		errs = append(errs, st.Close())
		delete(c.stmts, q)
	}
	return errors.Join(errs...)
}

// TxStmt returns query prepared for tx: a statement prepared once on the
// writer pool and bound to the transaction, closed with it. query must be
// a fixed string of the code (already rebound for the dialect), not one
// built at run time.
//
// tx must be a read-write transaction of db. The first time a query is
// seen it is prepared in tx alone and put in the cache when the
// transaction is over, if it ran through Tx or TxWith.
func (db *DB) TxStmt(ctx context.Context, tx *sql.Tx, query string) (*sql.Stmt, error) {
	return db.writerStmts.txStmt(ctx, tx, query)
}

// ReaderStmt returns query prepared once on the reader pool, for reads
// outside a transaction. The statement belongs to the cache: do not close
// it. query must be a fixed string of the code.
func (db *DB) ReaderStmt(ctx context.Context, query string) (*sql.Stmt, error) {
	return db.readerStmts.get(ctx, query)
}
