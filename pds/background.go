package pds

import (
	"context"
	"time"

	"github.com/welkin-atproto/welkin/atproto/syntax"
	"github.com/welkin-atproto/welkin/internal/memtrim"
)

// tempBlobTTL is how long an uploaded blob waits to be referenced by a
// record before it is deleted (the reference PDS keeps them an hour).
const tempBlobTTL = time.Hour

// startBackground starts the PDS's background work: sequencing the events
// a crash left in account outboxes, and periodic clean-up.
func (s *Server) startBackground(ctx context.Context) {
	s.goBackground(func() {
		if err := s.recoverOutboxes(ctx); err != nil && ctx.Err() == nil {
			s.log.Error("pds: recovering unsequenced events", "err", err)
		}
	})
	s.goBackground(func() {
		every(ctx, actorIdle/4, func() { s.actors.closeIdle(time.Now().Add(-actorIdle)) })
	})
	s.goBackground(func() { s.trim.Run(ctx, memtrim.DefaultQuiet) })
	s.goBackground(func() {
		every(ctx, storeSyncEvery, func() {
			if err := s.syncStores(ctx); err != nil && ctx.Err() == nil {
				s.log.Error("pds: making account databases durable", "err", err)
			}
		})
	})
	s.goBackground(func() {
		every(ctx, 10*time.Minute, func() {
			now := s.cfg.Now()
			if err := s.blobs.CleanTemp(ctx, now.Add(-tempBlobTTL)); err != nil && ctx.Err() == nil {
				s.log.Warn("pds: cleaning temporary blobs", "err", err)
			}
			if err := s.accounts.DeleteExpiredRefreshTokens(ctx, now); err != nil && ctx.Err() == nil {
				s.log.Warn("pds: deleting expired refresh tokens", "err", err)
			}
		})
	})
}

// releaseMemory hands back the caches of the shared databases once the PDS
// has gone quiet (memtrim calls it before releasing the Go heap). The
// account databases need nothing: they close when idle.
func (s *Server) releaseMemory() {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for name, db := range map[string]interface{ ReleaseMemory(context.Context) error }{
		"accounts": s.accounts, "firehose log": s.seq,
	} {
		if err := db.ReleaseMemory(ctx); err != nil {
			s.log.Warn("pds: releasing a database's memory", "db", name, "err", err)
		}
	}
}

// every runs fn every d until ctx ends.
func every(ctx context.Context, d time.Duration, fn func()) {
	t := time.NewTicker(d)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			fn()
		}
	}
}

// recoverOutboxes hands every account to the sequencer, which sequences
// whatever events a crash left unsequenced in their outboxes.
func (s *Server) recoverOutboxes(ctx context.Context) error {
	var dids []syntax.DID
	cursor := ""
	for {
		page, next, err := s.accounts.ListAccounts(ctx, cursor, 1000)
		if err != nil {
			return err
		}
		for _, a := range page {
			dids = append(dids, a.DID)
		}
		if next == "" {
			break
		}
		cursor = next
	}
	return s.seq.Recover(ctx, dids)
}
