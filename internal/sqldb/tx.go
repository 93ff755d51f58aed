package sqldb

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"fmt"
	"math/rand/v2"
	"time"
)

const (
	retryBaseDelay = 5 * time.Millisecond
	retryMaxDelay  = 250 * time.Millisecond
)

// Tx runs fn in a read-write transaction on SQL(), committing if fn returns
// nil and rolling back otherwise. If the transaction fails with a retryable
// error (see IsRetryable), from BEGIN, from fn or from COMMIT, it is rolled
// back and run again, at most Config.TxAttempts times in all, with a short
// randomized backoff. fn may thus run more than once and must only act
// through tx. On SQLite the transaction begins with BEGIN IMMEDIATE, taking
// the write lock up front.
func (db *DB) Tx(ctx context.Context, fn func(*sql.Tx) error) error {
	return db.TxWith(ctx, nil, fn)
}

// ReadTx runs fn in a read-only transaction on Reader(), for reads that need
// one consistent snapshot. It retries like Tx.
func (db *DB) ReadTx(ctx context.Context, fn func(*sql.Tx) error) error {
	return db.TxWith(ctx, &sql.TxOptions{ReadOnly: true}, fn)
}

// TxWith is Tx with options. A read-only transaction runs on Reader(). The
// isolation level is passed to PostgreSQL (whose default is READ COMMITTED;
// ask for sql.LevelSerializable or sql.LevelRepeatableRead where a store
// needs it) and ignored on SQLite, whose transactions are always
// serializable.
func (db *DB) TxWith(ctx context.Context, opts *sql.TxOptions, fn func(*sql.Tx) error) error {
	pool := db.writer
	if opts != nil && opts.ReadOnly {
		pool = db.reader
	}
	if db.dialect == SQLite && opts != nil && opts.Isolation != sql.LevelDefault {
		o := *opts
		o.Isolation = sql.LevelDefault
		opts = &o
	}
	if pool == db.writer && db.writerStmts != nil {
		// Runs once the transaction has given its connection back.
		defer db.writerStmts.preparePending(ctx)
	}
	return db.retry(ctx, func() error { return runTx(ctx, pool, opts, fn) })
}

// DurableTx is Tx for a write that must be durable when it returns, on a
// database opened with a weaker SQLite synchronous setting (NORMAL or
// OFF), whose plain transactions are durable only from a later checkpoint
// or durable transaction on. It runs the transaction with synchronous=FULL
// on the single writer connection, so that its commit fsyncs the WAL, which
// also makes every transaction committed before it durable, and then puts
// the connection's setting back. On PostgreSQL, and on SQLite opened with
// FULL or EXTRA, it is Tx.
func (db *DB) DurableTx(ctx context.Context, fn func(*sql.Tx) error) error {
	if db.dialect != SQLite || db.sync == SyncFull || db.sync == SyncExtra {
		return db.Tx(ctx, fn)
	}
	if db.writerStmts != nil {
		defer db.writerStmts.preparePending(ctx)
	}
	return db.retry(ctx, func() error {
		conn, err := db.writer.Conn(ctx)
		if err != nil {
			return err
		}
		defer conn.Close()
		if _, err := conn.ExecContext(ctx, "PRAGMA synchronous=FULL"); err != nil {
			return fmt.Errorf("sqldb: durable transaction: %w", err)
		}
		txErr := runTx(ctx, conn, nil, fn)
		// Put the setting back even when ctx has ended; a connection left
		// at FULL would only be slower, but discard it rather than keep a
		// setting nobody asked for.
		if _, err := conn.ExecContext(context.WithoutCancel(ctx), "PRAGMA synchronous="+string(db.sync)); err != nil {
			_ = conn.Raw(func(any) error { return driver.ErrBadConn })
		}
		return txErr
	})
}

// retry runs one transaction attempt until it succeeds, fails with an
// error that is not retryable, or has been tried Config.TxAttempts times.
func (db *DB) retry(ctx context.Context, attemptTx func() error) error {
	attempts := db.cfg.TxAttempts
	if attempts <= 0 {
		attempts = DefaultTxAttempts
	}
	for attempt := 1; ; attempt++ {
		err := attemptTx()
		if err == nil {
			return nil
		}
		if !IsRetryable(err) || ctx.Err() != nil {
			return err
		}
		if attempt >= attempts {
			return fmt.Errorf("sqldb: transaction failed %d times: %w", attempt, err)
		}
		if db.cfg.OnRetry != nil {
			db.cfg.OnRetry(attempt, err)
		}
		if err := sleep(ctx, backoff(attempt)); err != nil {
			return err
		}
	}
}

// beginner is what a transaction starts on: a pool or one connection.
type beginner interface {
	BeginTx(ctx context.Context, opts *sql.TxOptions) (*sql.Tx, error)
}

func runTx(ctx context.Context, pool beginner, opts *sql.TxOptions, fn func(*sql.Tx) error) (err error) {
	tx, err := pool.BeginTx(ctx, opts)
	if err != nil {
		return err
	}
	done := false
	defer func() {
		if !done {
			_ = tx.Rollback() // also when fn panics
		}
	}()
	if err := fn(tx); err != nil {
		return err
	}
	done = true
	return tx.Commit()
}

// backoff returns the delay before retry number attempt (from 1):
// exponential with full jitter in its upper half.
func backoff(attempt int) time.Duration {
	d := retryBaseDelay << min(attempt-1, 10)
	d = min(d, retryMaxDelay)
	return d/2 + rand.N(d/2+1)
}

func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}
