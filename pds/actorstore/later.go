package actorstore

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"time"

	"github.com/welkin-atproto/welkin/atproto/data"
	"github.com/welkin-atproto/welkin/atproto/repo"
)

// Commits stored in the background, in batches.
//
// A commit is durable once its event is in the firehose log, which
// restores it into the account's database after a crash (see ReplayCommit
// and package pds). So the account's own transaction need not be over
// before the write is acknowledged, only before anything reads the
// account again: ApplyCommitLater checks a commit, reserves its outbox ID,
// queues it and returns, while the caller hands the event to the
// sequencer.
//
// The queue is stored by a goroutine of the store's own, in one
// transaction for all the commits queued (at most batchMax), once the
// first of them has waited batchWait or as soon as anything needs them
// stored: Lock, Head, Sync, Close, WaitApplied and every read of records,
// blobs and blocks wait until every commit handed over before them is
// stored, and cut the wait short, as a full batch does. A transaction
// costs much the same for one commit as for several (the pages every
// commit changes, the database header, the root, the outbox, are written
// once), so under many writes an account's commits share their
// transactions. The writer of the next commit does not wait
// (LockForCommit, CommitHead), and reads the queued commits' blocks from
// the queue (CommitStore).
//
// At most storeSlots batches of all stores are written at once, so that
// the transactions, which need the CPU longest but are waited for least,
// leave the processors to requests.
//
// A transaction that fails is tried again, with growing pauses, until it
// succeeds or the store is closed: the events may already be in the log
// and published, so the commits cannot be dropped. If the store is closed
// first the failure sticks: every later write, Head, Sync and WaitApplied
// returns it, and the commits are restored from the log when the PDS
// starts again.

// laterFirstPause and laterMaxPause bound the pause between two attempts
// at storing a batch.
const (
	laterFirstPause = 10 * time.Millisecond
	laterMaxPause   = 2 * time.Second
)

// batchWait is how long a queued commit waits for others of its account
// to share its transaction, unless something needs it stored first;
// batchMax bounds the commits of one transaction. At 64 clients writing
// on 2 cores, waits of 250 ms to 1 s gave the most writes a second (250
// ms gathered about 25 commits an account), 100 ms some 7% fewer, and 20
// ms, about 1.6 commits a transaction, little more than none.
const (
	batchWait = 250 * time.Millisecond
	batchMax  = 64
)

// storeSlots bounds the batches being written at once, over all stores of
// the process: one per two CPUs.
var storeSlots = make(chan struct{}, max(1, runtime.NumCPU()/2))

// LaterHooks are the callbacks of ApplyCommitLater, called from the
// store's background goroutines.
type LaterHooks struct {
	// Retry, if set, is called with the error of each failed attempt that
	// will be tried again.
	Retry func(err error)
	// Done, if set, is called once the commit is stored (err nil), or,
	// when the store was closed before it could be, with the failure.
	// The Done hooks run in the order of the commits, in goroutines
	// other than the one storing the queue, so a hook may take the
	// account's lock.
	Done func(err error)
}

// laterApply is a commit being stored in the background.
type laterApply struct {
	done chan struct{}
	err  error // set before done is closed
}

// queuedCommit is a commit in the queue.
type queuedCommit struct {
	p     *preparedCommit
	event []byte
	id    int64
	la    *laterApply
	hooks LaterHooks
}

// ApplyCommitLater is ApplyCommit with the transaction run in the
// background. It checks res as ApplyCommit does, reserves the ID of the
// outbox row that will hold event, queues the commit and returns the ID;
// the caller may hand the row to the sequencer at once. The caller holds
// the account's write lock (Lock or LockForCommit), and built res on
// CommitHead, the head the commits queued before it leave.
func (s *Store) ApplyCommitLater(res *repo.CommitResult, event []byte, hooks LaterHooks) (int64, error) {
	if err := s.applyFailed(); err != nil {
		return 0, err
	}
	p, err := prepareCommit(res)
	if err != nil {
		return 0, err
	}
	if event == nil {
		event = []byte{}
	}
	id := s.outboxTop.Add(1)
	la := &laterApply{done: make(chan struct{})}
	s.laterMu.Lock()
	s.queue = append(s.queue, &queuedCommit{p: p, event: event, id: id, la: la, hooks: hooks})
	s.later = la
	start := !s.storing
	s.storing = true
	if len(s.queue) >= batchMax {
		// A full batch waits: no reason to wait longer.
		select {
		case s.kick <- struct{}{}:
		default:
		}
	}
	s.laterMu.Unlock()
	if start {
		go s.storeQueue()
	}
	return id, nil
}

// storeQueue stores the queue in batches until it is empty.
func (s *Store) storeQueue() {
	wait := time.NewTimer(batchWait)
	defer wait.Stop()
	for {
		select {
		case <-wait.C:
		case <-s.kick:
		case <-s.stop:
		}
		s.laterMu.Lock()
		n := min(len(s.queue), batchMax)
		batch := make([]*queuedCommit, n)
		copy(batch, s.queue)
		// Shift the rest down and drop the references past it, so that
		// the queue's array holds no stored commit.
		rest := copy(s.queue, s.queue[n:])
		clear(s.queue[rest:])
		s.queue = s.queue[:rest]
		if n == 0 {
			s.storing = false
			s.laterMu.Unlock()
			return
		}
		s.storingNow = batch
		failed := s.laterErr
		s.laterMu.Unlock()

		err := failed
		if err == nil {
			err = s.storeBatch(batch)
		}
		if err != nil && failed == nil {
			last := batch[len(batch)-1].p.res
			err = fmt.Errorf("actorstore: commits of %s up to %s not stored (the firehose log restores them on the next start): %w", s.did, last.Rev, err)
		}
		s.laterMu.Lock()
		s.storingNow = nil
		if err != nil {
			s.laterErr = err
		}
		s.laterMu.Unlock()
		for _, c := range batch {
			c.la.err = err
			close(c.la.done)
		}
		// The hooks run in order, batch after batch, each batch's after
		// the one before it.
		prev, hooksDone := s.hooksDone, make(chan struct{})
		s.hooksDone = hooksDone
		go func() {
			defer close(hooksDone)
			if prev != nil {
				<-prev
			}
			for _, c := range batch {
				if c.hooks.Done != nil {
					c.hooks.Done(err)
				}
			}
		}()
		// What was queued meanwhile gets its own wait, unless it is
		// needed sooner or fills a batch (both send a kick).
		wait.Reset(batchWait)
	}
}

// storeBatch stores batch in one transaction, trying again until it
// succeeds, cannot succeed, or the store is closed.
func (s *Store) storeBatch(batch []*queuedCommit) error {
	ctx := context.Background()
	cs := make([]commitWrite, len(batch))
	for i, c := range batch {
		cs[i] = commitWrite{p: c.p, event: c.event, outboxID: c.id}
	}
	last := batch[len(batch)-1].p.res
	pause := laterFirstPause
	for attempt := 0; ; attempt++ {
		var err error
		if s.laterFault != nil {
			err = s.laterFault(attempt)
		}
		if err == nil {
			storeSlots <- struct{}{}
			_, err = s.storeCommits(ctx, cs)
			<-storeSlots
			if err == nil {
				return nil
			}
		}
		if attempt > 0 && errors.Is(err, ErrConcurrentWrite) && s.storedRevIs(ctx, string(last.Rev)) {
			// An earlier attempt committed although it reported a
			// failure.
			return nil
		}
		if errors.Is(err, ErrConcurrentWrite) || errors.Is(err, ErrInvalidCommit) {
			return err // trying again cannot help
		}
		for _, c := range batch {
			if c.hooks.Retry != nil {
				c.hooks.Retry(err)
				break
			}
		}
		select {
		case <-s.stop:
			return fmt.Errorf("store closed first: %w", err)
		case <-time.After(pause):
			pause = min(2*pause, laterMaxPause)
		}
	}
}

// storedRevIs reports whether the stored root's rev is rev.
func (s *Store) storedRevIs(ctx context.Context, rev string) bool {
	_, got, ok, err := s.readHead(ctx)
	return err == nil && ok && got == rev
}

// pendingLater returns the last commit handed to ApplyCommitLater, or nil,
// and asks for the queue to be stored now.
func (s *Store) pendingLater() *laterApply {
	s.laterMu.Lock()
	defer s.laterMu.Unlock()
	if s.storing {
		select {
		case s.kick <- struct{}{}:
		default:
		}
	}
	return s.later
}

// WaitApplied waits until every commit handed to ApplyCommitLater is
// stored, and returns the failure if the store gave up on one. Reads that
// must see every acknowledged write call it first.
func (s *Store) WaitApplied(ctx context.Context) error {
	la := s.pendingLater()
	if la == nil {
		return nil
	}
	select {
	case <-la.done:
		return la.err
	default:
	}
	select {
	case <-la.done:
		return la.err
	case <-ctx.Done():
		return ctx.Err()
	}
}

// waitLater is WaitApplied without a context.
func (s *Store) waitLater() error {
	if la := s.pendingLater(); la != nil {
		<-la.done
		return la.err
	}
	return nil
}

// applyFailed returns the failure of a commit the store gave up storing,
// which bars every later write.
func (s *Store) applyFailed() error {
	s.laterMu.Lock()
	defer s.laterMu.Unlock()
	return s.laterErr
}

// LockForCommit takes the account's write lock, as Lock does, without
// waiting for the queued commits to be stored, unless two full batches of
// them (2*batchMax) or more wait: for the writer of the next commit, which
// builds on CommitHead and reads blocks through CommitStore, and which
// must call WaitApplied before anything else it reads from the store. The
// bound holds the queue's memory when commits come faster than they can
// be stored: the writer then waits for the queue, as every writer did
// before commits were batched.
func (s *Store) LockForCommit() {
	s.mu.Lock()
	s.laterMu.Lock()
	full := len(s.queue) >= 2*batchMax
	s.laterMu.Unlock()
	if full {
		s.waitLater() // a failure comes back from CommitHead and the write
	}
}

// CommitHead is Head for the holder of LockForCommit: the head the last
// queued commit leaves, without waiting for it to be stored.
func (s *Store) CommitHead(ctx context.Context) (commitCID data.CID, rev string, ok bool, err error) {
	s.laterMu.Lock()
	var last *repo.CommitResult
	if n := len(s.queue); n > 0 {
		last = s.queue[n-1].p.res
	} else if n := len(s.storingNow); n > 0 {
		last = s.storingNow[n-1].p.res
	}
	err = s.laterErr
	s.laterMu.Unlock()
	if err != nil {
		return data.CID{}, "", false, err
	}
	if last != nil {
		return last.CID, string(last.Rev), true, nil
	}
	// All stored: the stored head is the one to build on, also after a
	// writer under Lock (ReplaceRepo, ApplyCommit) moved it.
	return s.Head(ctx)
}

// queuedBlock returns the block c of a queued commit, if one has it.
func (s *Store) queuedBlock(c data.CID) ([]byte, bool) {
	s.laterMu.Lock()
	defer s.laterMu.Unlock()
	for i := len(s.queue) - 1; i >= 0; i-- {
		if b, ok := s.queue[i].p.res.Blocks[c]; ok {
			return b, true
		}
	}
	for i := len(s.storingNow) - 1; i >= 0; i-- {
		if b, ok := s.storingNow[i].p.res.Blocks[c]; ok {
			return b, true
		}
	}
	return nil, false
}
