package actorstore

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/welkin-atproto/welkin/atproto/repo"
)

// Commits stored in the background.
//
// A commit is durable once its event is in the firehose log, which
// restores it into the account's database after a crash (see ReplayCommit
// and package pds). So the account's own transaction need not be over
// before the write is acknowledged, only before anything reads the
// account again: ApplyCommitLater checks a commit, reserves its outbox ID
// and returns, and the transaction runs in the background while the
// caller hands the event to the sequencer. Until it is over, Lock, Head,
// Sync, Close and WaitApplied wait for it, so that no write builds on an
// older head and no read, and no Sync that lets the log forget the event,
// misses it.
//
// A transaction that fails is tried again, with growing pauses, until it
// succeeds or the store is closed: the event may already be in the log and
// published, so the commit cannot be dropped. If the store is closed first
// the failure sticks: every later write, Head, Sync and WaitApplied
// returns it, and the commit is restored from the log when the PDS starts
// again.

// laterFirstPause and laterMaxPause bound the pause between two attempts
// at storing a commit in the background.
const (
	laterFirstPause = 10 * time.Millisecond
	laterMaxPause   = 2 * time.Second
)

// LaterHooks are the callbacks of ApplyCommitLater, both called from the
// background goroutine.
type LaterHooks struct {
	// Retry, if set, is called with the error of each failed attempt that
	// will be tried again.
	Retry func(err error)
	// Done, if set, is called once the commit is stored (err nil), or,
	// when the store was closed before it could be, with the failure.
	Done func(err error)
}

// laterApply is a commit being stored in the background.
type laterApply struct {
	done chan struct{}
	err  error // set before done is closed
}

// ApplyCommitLater is ApplyCommit with the transaction run in the
// background. It checks res as ApplyCommit does, reserves the ID of the
// outbox row that will hold event and returns it; the caller may hand the
// row to the sequencer at once. The caller holds the account's write lock,
// which (with Lock's wait) guarantees that res was built on the head the
// previous commit left.
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
	s.later = la
	s.laterMu.Unlock()
	go s.runLater(p, event, id, la, hooks)
	return id, nil
}

// runLater stores a commit for ApplyCommitLater.
func (s *Store) runLater(p *preparedCommit, event []byte, id int64, la *laterApply, hooks LaterHooks) {
	ctx := context.Background()
	pause := laterFirstPause
	var err error
	for attempt := 0; ; attempt++ {
		if s.laterFault != nil {
			err = s.laterFault(attempt)
		}
		if err == nil {
			if _, err = s.storeCommit(ctx, p, event, id, 0); err == nil {
				break
			}
		}
		if attempt > 0 && errors.Is(err, ErrConcurrentWrite) && s.storedRevIs(ctx, string(p.res.Rev)) {
			// An earlier attempt committed although it reported a
			// failure.
			err = nil
			break
		}
		if errors.Is(err, ErrConcurrentWrite) || errors.Is(err, ErrInvalidCommit) {
			break // trying again cannot help
		}
		if hooks.Retry != nil {
			hooks.Retry(err)
		}
		select {
		case <-s.stop:
		case <-time.After(pause):
			pause = min(2*pause, laterMaxPause)
			continue
		}
		err = fmt.Errorf("store closed first: %w", err)
		break
	}
	if err != nil {
		err = fmt.Errorf("actorstore: commit %s of %s not stored (the firehose log restores it on the next start): %w", p.res.Rev, s.did, err)
	}
	la.err = err
	close(la.done)
	if hooks.Done != nil {
		hooks.Done(err)
	}
}

// storedRevIs reports whether the stored root's rev is rev.
func (s *Store) storedRevIs(ctx context.Context, rev string) bool {
	_, got, ok, err := s.readHead(ctx)
	return err == nil && ok && got == rev
}

// pendingLater returns the last commit handed to ApplyCommitLater, or nil.
func (s *Store) pendingLater() *laterApply {
	s.laterMu.Lock()
	defer s.laterMu.Unlock()
	return s.later
}

// WaitApplied waits until the commit last handed to ApplyCommitLater is
// stored, and returns its failure if the store gave up on it. Reads that
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
// which bars every later write. The caller holds the write lock, so the
// last commit handed over is done.
func (s *Store) applyFailed() error {
	if la := s.pendingLater(); la != nil {
		select {
		case <-la.done:
			return la.err
		default:
			return errors.New("actorstore: write without the account's write lock while a commit is being stored")
		}
	}
	return nil
}
