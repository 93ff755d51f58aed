package sqldb

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/stdlib"
)

func openPostgres(ctx context.Context, cfg Config, u string) (*DB, error) {
	pcfg, err := pgx.ParseConfig(u)
	if err != nil {
		return nil, fmt.Errorf("sqldb: parse PostgreSQL URL %s: %w", redact(u), err)
	}
	conns := cfg.MaxConns
	if conns <= 0 {
		conns = DefaultMaxConns
	}
	db := stdlib.OpenDB(*pcfg)
	db.SetMaxOpenConns(conns)
	db.SetMaxIdleConns(conns)
	db.SetConnMaxIdleTime(5 * time.Minute)
	db.SetConnMaxLifetime(time.Hour)
	if err := db.PingContext(ctx); err != nil {
		db.Close()
		return nil, fmt.Errorf("sqldb: connect to PostgreSQL %s: %w", redact(u), err)
	}
	stmts := &stmtCache{pool: db}
	return &DB{cfg: cfg, dialect: Postgres, writer: db, reader: db, writerStmts: stmts, readerStmts: stmts}, nil
}
