package sequencer

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/welkin-atproto/welkin/atproto/stream"
	"github.com/welkin-atproto/welkin/atproto/syntax"
	"github.com/welkin-atproto/welkin/pds/actorstore"
)

// run is the sequencing loop, the only goroutine that writes the log.
func (s *Sequencer) run() {
	defer close(s.done)
	var (
		failures  int
		notBefore time.Time // no batch before this, after a failure
	)
	pruneT := time.NewTimer(0)
	defer pruneT.Stop()
	ackT := time.NewTimer(s.tune.ackIdle)
	defer ackT.Stop()
	for {
		select {
		case <-s.stop:
			s.shutdown()
			return
		default:
		}
		work := s.hasWork()
		if work && !time.Now().Before(notBefore) {
			if s.lastBatch > 1 && s.tune.linger > 0 {
				time.Sleep(s.tune.linger)
			}
			if err := s.batch(s.ctx); err != nil {
				failures++
				notBefore = time.Now().Add(backoff(s.tune, failures))
				s.lg.Error("sequencing batch failed; retrying", "attempt", failures, "err", err)
			} else {
				failures = 0
			}
			ackT.Reset(s.tune.ackIdle)
			continue
		}
		var backoffC, retryC <-chan time.Time
		if work {
			backoffC = time.After(time.Until(notBefore))
		}
		if at, ok := s.nextRetry(); ok {
			retryC = time.After(time.Until(at))
		}
		select {
		case <-s.stop:
		case <-s.wake:
		case <-backoffC:
		case <-retryC:
			s.promoteRetries()
		case <-pruneT.C:
			more := s.prune(s.ctx)
			if more {
				pruneT.Reset(0)
			} else {
				pruneT.Reset(s.tune.pruneEvery)
			}
		case <-ackT.C:
			s.ackAll()
		}
	}
}

func backoff(t tuning, attempt int) time.Duration {
	d := t.retryBase << min(attempt-1, 20)
	return min(d, t.retryMax)
}

func (s *Sequencer) hasWork() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.queue.len() > 0
}

// shutdown makes the final drain attempt and fails whoever still waits.
func (s *Sequencer) shutdown() {
	for s.hasWork() && s.ctx.Err() == nil {
		if err := s.batch(s.ctx); err != nil {
			s.lg.Error("final sequencing batch failed; pending rows stay in the outboxes", "err", err)
			break
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, r := range s.pending {
		for _, w := range r.waiters {
			w.finish(ErrClosed)
		}
		for _, w := range r.resets {
			w.finish(ErrClosed)
		}
		for _, a := range r.appends {
			a.finish(0, ErrClosed)
		}
	}
	clear(s.pending)
	s.queue = didQueue{}
}

// taken is a request the loop removed from pending.
type taken struct {
	did syntax.DID
	r   *request
}

// batch is what one write transaction carries.
type batch struct {
	next     int64 // the seq of the next event
	events   []logEvent
	bytes    int
	skipped  int64
	cursors  map[syntax.DID]int64
	resets   []syntax.DID
	seen     map[syntax.DID]bool
	taken    []taken // as popped, for a retry if the write fails
	setAside []taken // popped again after being taken: for the next batch
	deferred []taken // the rest of accounts not fully drained: for the next batch
	waiters  []*waiter
	resetWs  []*waiter
	appends  []*appendReq // with seq set
	badApps  []*appendReq // with err set
}

// batch takes pending accounts until the batch is full or nothing is
// pending, reads their outboxes, and writes the events and cursors in one
// transaction; then publishes and wakes the waiters.
func (s *Sequencer) batch(ctx context.Context) error {
	if s.stale {
		st, err := loadState(ctx, s.db)
		if err != nil {
			return err
		}
		s.adopt(st)
	}
	b := &batch{
		next:    s.next,
		cursors: make(map[syntax.DID]int64),
		seen:    make(map[syntax.DID]bool),
	}
	t := s.tune
	for len(b.events) < t.batchEvents && b.bytes < t.batchBytes && len(b.taken) < t.batchAccounts {
		s.mu.Lock()
		did, ok := s.queue.pop()
		var r *request
		if ok {
			r = s.pending[did]
			delete(s.pending, did)
			for _, a := range r.appends {
				a.taken = true
			}
		}
		s.mu.Unlock()
		if !ok {
			break
		}
		if b.seen[did] {
			b.setAside = append(b.setAside, taken{did, r})
			continue
		}
		b.seen[did] = true
		b.taken = append(b.taken, taken{did, r})
		s.collect(ctx, b, did, r)
	}

	last := b.next - 1
	if len(b.events) > 0 || len(b.cursors) > 0 || len(b.resets) > 0 {
		if last > maxSeq {
			s.requeue(append(b.taken, b.setAside...))
			return fmt.Errorf("sequencer: seq %d would exceed 2^53-1", last)
		}
		created := max(s.opts.Now().UnixMilli(), s.lastTime)
		if err := writeBatch(ctx, s.db, s.sql, s.gen, b.events, created, b.cursors, b.resets, last); err != nil {
			// The transaction may or may not have committed (a lost
			// connection can hide a commit): reload the state before the
			// next batch, which redoes this work from it.
			s.stale = true
			s.failedBatches.Add(1)
			s.requeue(append(b.taken, b.setAside...))
			if errors.Is(err, errLogChanged) {
				return err
			}
			return fmt.Errorf("sequencer: write batch: %w", err)
		}
		s.next, s.lastTime = b.next, created
		s.lastBatch = len(b.events)
		s.gen++
		s.latest.Store(last)
		s.batches.Add(1)
		s.events.Add(int64(len(b.events)))
		s.skipped.Add(b.skipped)
	}
	s.applyCursors(b)
	if s.opts.Publish != nil {
		for _, ev := range b.events {
			s.opts.Publish(stream.Event{Seq: ev.seq, Frame: ev.frame})
		}
	}
	for _, w := range b.waiters {
		w.finish(nil)
	}
	for _, w := range b.resetWs {
		w.finish(nil)
	}
	for _, a := range b.appends {
		a.finish(a.seq, nil)
	}
	for _, a := range b.badApps {
		a.finish(0, a.err)
	}
	s.requeue(append(b.deferred, b.setAside...))
	return nil
}

// collect adds the work of one account to b.
func (s *Sequencer) collect(ctx context.Context, b *batch, did syntax.DID, r *request) {
	var cursor int64
	if st := s.accts[did]; st != nil {
		cursor = st.cursor
	}
	if r.reset {
		s.ack.cancel(did)
		b.resets = append(b.resets, did)
		cursor = 0
		// Rows handed over before the reset belong to the old database;
		// only the new one's outbox counts now.
		r.offered = nil
		r.drain = true
	}
	b.resetWs = append(b.resetWs, r.resets...)
	if !r.drain && len(r.offered) > 0 && !s.takeOffered(b, did, cursor, r.offered) {
		r.drain = true
	}
	if r.drain {
		done, drained, read := s.drain(ctx, b, did, cursor, r)
		if !done {
			// The outbox holds more than this batch takes: the account's
			// waiters, appends and handed-over rows wait for the rest.
			b.deferred = append(b.deferred, taken{did, &request{drain: true, offered: r.offered, waiters: r.waiters, appends: r.appends}})
			return
		}
		// A row handed over may not be in the outbox yet: the writer
		// stores it in the background (actorstore.ApplyCommitLater),
		// after the rows before it. So the handed-over rows above what
		// the outbox held follow it. When the outbox could not be read,
		// they wait for the retry, which reads them from it.
		if read && len(r.offered) > 0 && !s.takeOffered(b, did, drained, r.offered) {
			s.drainFailed(did, r, fmt.Errorf("sequencer: rows handed over for %s do not follow its outbox, which ends at %d", did, drained))
		}
	}
	b.waiters = append(b.waiters, r.waiters...)
	for _, a := range r.appends {
		if a.canceled {
			continue
		}
		f, err := frame(a.ev, b.next)
		if err != nil {
			a.err = err
			b.badApps = append(b.badApps, a)
			continue
		}
		a.seq = b.next
		b.events = append(b.events, logEvent{seq: b.next, did: did, kind: a.kind, frame: f})
		b.bytes += len(f)
		b.appends = append(b.appends, a)
		b.next++
	}
}

// takeOffered adds to b the rows Submit handed over for did, if they are
// exactly the rows that follow cursor (those at or below it are already
// sequenced), and reports whether it did. Otherwise it adds nothing and the
// outbox must be read.
func (s *Sequencer) takeOffered(b *batch, did syntax.DID, cursor int64, rows []actorstore.OutboxRow) bool {
	for len(rows) > 0 && rows[0].ID <= cursor {
		rows = rows[1:]
	}
	for i, row := range rows {
		if row.ID != cursor+int64(i)+1 {
			return false
		}
	}
	if len(rows) == 0 {
		return true
	}
	for _, row := range rows {
		s.addRow(b, did, row)
	}
	b.cursors[did] = rows[len(rows)-1].ID
	s.handed.Add(int64(len(rows)))
	return true
}

// addRow adds the event of one outbox row of did to b, at the next seq,
// or counts the row as skipped when it is not a valid event.
func (s *Sequencer) addRow(b *batch, did syntax.DID, row actorstore.OutboxRow) {
	f, err := encodeEvent(did, row.Kind, row.Body, b.next)
	if err != nil {
		b.skipped++
		s.lg.Error("skipping an outbox row that is not a valid event", "did", did, "id", row.ID, "rev", row.Rev, "err", err)
		return
	}
	b.events = append(b.events, logEvent{seq: b.next, did: did, kind: row.Kind, frame: f})
	b.bytes += len(f)
	b.next++
}

// drain reads did's outbox rows above cursor into b and reports whether it
// read all of them, the ID of the last row read (cursor if none) and
// whether it could read the outbox (false also when the account has none).
// A failure to open or read the outbox fails the request's waiters,
// schedules a retry and counts as done, so that the account's appends
// still go out.
func (s *Sequencer) drain(ctx context.Context, b *batch, did syntax.DID, cursor int64, r *request) (done bool, last int64, read bool) {
	ob, release, err := s.opts.Open(ctx, did)
	if err != nil {
		s.drainFailed(did, r, fmt.Errorf("sequencer: open outbox of %s: %w", did, err))
		return true, cursor, false
	}
	if release != nil {
		defer release()
	}
	if ob == nil {
		return true, cursor, false
	}
	t := s.tune
	start, n := cursor, 0
	defer func() {
		if cursor != start {
			b.cursors[did] = cursor
		}
	}()
	for {
		want := min(t.outboxChunk, t.accountRows-n, t.batchEvents-len(b.events))
		if want <= 0 {
			return false, cursor, true
		}
		rows, err := ob.Outbox(ctx, cursor, want)
		if err != nil {
			s.drainFailed(did, r, fmt.Errorf("sequencer: read outbox of %s: %w", did, err))
			return true, cursor, false
		}
		for _, row := range rows {
			if row.ID <= cursor {
				s.drainFailed(did, r, fmt.Errorf("sequencer: outbox of %s returned row %d after row %d", did, row.ID, cursor))
				return true, cursor, false
			}
			cursor = row.ID
			n++
			s.addRow(b, did, row)
		}
		if len(rows) < want {
			delete(s.delayed, did)
			return true, cursor, true
		}
		if b.bytes >= t.batchBytes {
			return false, cursor, true
		}
	}
}

// drainFailed fails the request's waiters with err and schedules a retry.
func (s *Sequencer) drainFailed(did syntax.DID, r *request, err error) {
	s.drainErrors.Add(1)
	for _, w := range r.waiters {
		w.finish(err)
	}
	r.waiters = nil
	attempt := r.attempt + 1
	if attempt > s.tune.drainRetries {
		s.lg.Error("cannot drain an account's outbox; waiting for its next write", "did", did, "attempts", attempt, "err", err)
		return
	}
	s.lg.Warn("cannot drain an account's outbox; will retry", "did", did, "attempt", attempt, "err", err)
	s.delayed[did] = retry{at: time.Now().Add(backoff(s.tune, attempt)), attempt: attempt}
}

// applyCursors records the committed cursors and resets of b, and hands
// acknowledgements to the acker: at once when many rows are waiting, the
// rest when the loop is idle.
func (s *Sequencer) applyCursors(b *batch) {
	for _, did := range b.resets {
		delete(s.accts, did)
		delete(s.unacked, did)
	}
	for did, c := range b.cursors {
		st := s.accts[did]
		if st == nil {
			st = &acctState{}
			s.accts[did] = st
		}
		st.cursor = c
		if s.tune.noAck {
			continue
		}
		if c-st.acked >= int64(s.tune.ackRows) {
			s.ack.enqueue(did, c)
			st.acked = c
			delete(s.unacked, did)
		} else {
			s.unacked[did] = struct{}{}
		}
	}
}

// ackAll hands every sequenced, unacknowledged row to the acker.
func (s *Sequencer) ackAll() {
	for did := range s.unacked {
		if st := s.accts[did]; st != nil && st.cursor > st.acked {
			s.ack.enqueue(did, st.cursor)
			st.acked = st.cursor
		}
	}
	clear(s.unacked)
}

// requeue puts requests taken from pending back in front of the queue,
// merged with whatever arrived for the same accounts since. items are in
// the order they were taken.
func (s *Sequencer) requeue(items []taken) {
	if len(items) == 0 {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	var front []syntax.DID
	for _, t := range slices.Backward(items) {
		cur := s.pending[t.did]
		if cur == nil {
			s.pending[t.did] = t.r
			front = append(front, t.did)
			continue
		}
		// t.r is older than cur: its work comes first.
		cur.drain = cur.drain || t.r.drain
		cur.offered = append(t.r.offered, cur.offered...)
		cur.reset = cur.reset || t.r.reset
		cur.attempt = max(cur.attempt, t.r.attempt)
		cur.waiters = append(t.r.waiters, cur.waiters...)
		cur.resets = append(t.r.resets, cur.resets...)
		cur.appends = append(t.r.appends, cur.appends...)
	}
	slices.Reverse(front)
	s.queue.pushFront(front)
}

// nextRetry returns when the earliest delayed drain is due.
func (s *Sequencer) nextRetry() (time.Time, bool) {
	var (
		at time.Time
		ok bool
	)
	for _, rt := range s.delayed {
		if !ok || rt.at.Before(at) {
			at, ok = rt.at, true
		}
	}
	return at, ok
}

// promoteRetries queues the delayed drains that are due.
func (s *Sequencer) promoteRetries() {
	now := time.Now()
	s.mu.Lock()
	for did, rt := range s.delayed {
		if now.Before(rt.at) {
			continue
		}
		delete(s.delayed, did)
		r := s.pendingLocked(did)
		r.drain = true
		r.attempt = max(r.attempt, rt.attempt)
	}
	s.mu.Unlock()
}

// prune deletes events older than the retention, a bounded number per
// transaction, and stops early when work is waiting. It reports whether
// more may be left to prune.
func (s *Sequencer) prune(ctx context.Context) bool {
	if s.opts.Retention < 0 {
		return false
	}
	cutoff := s.opts.Now().Add(-s.opts.Retention).UnixMilli()
	for {
		n, err := pruneChunk(ctx, s.db, cutoff, s.tune.pruneChunk)
		s.pruned.Add(n)
		if err != nil {
			s.lg.Error("pruning the event log failed", "err", err)
			return false
		}
		if n < int64(s.tune.pruneChunk) {
			return false
		}
		select {
		case <-s.stop:
			return true
		default:
		}
		if s.hasWork() {
			return true
		}
	}
}
