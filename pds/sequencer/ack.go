package sequencer

import (
	"context"
	"sync"
	"sync/atomic"
	"time"

	"github.com/welkin-atproto/welkin/atproto/syntax"
)

// ackTimeout bounds one acknowledgement.
const ackTimeout = 30 * time.Second

// acker deletes sequenced outbox rows in the background, one account at a
// time, so that a write never pays for a second fsync in its account's
// file. Requests for one account coalesce to the highest ID.
type acker struct {
	s *Sequencer

	mu    sync.Mutex
	cond  *sync.Cond // signaled when busy changes
	queue map[syntax.DID]int64
	busy  syntax.DID // the account being acknowledged, "" if none

	ctx  context.Context
	stop context.CancelFunc
	wake chan struct{}
	done chan struct{}

	acks atomic.Int64
}

func newAcker(s *Sequencer) *acker {
	a := &acker{s: s, queue: make(map[syntax.DID]int64), wake: make(chan struct{}, 1), done: make(chan struct{})}
	a.cond = sync.NewCond(&a.mu)
	a.ctx, a.stop = context.WithCancel(context.Background())
	return a
}

// enqueue asks for the rows of did up to uptoID to be deleted.
func (a *acker) enqueue(did syntax.DID, uptoID int64) {
	a.mu.Lock()
	if uptoID > a.queue[did] {
		a.queue[did] = uptoID
	}
	a.mu.Unlock()
	select {
	case a.wake <- struct{}{}:
	default:
	}
}

// cancel drops the queued acknowledgement of did and waits for a running
// one to end, so that none reaches a database created after the call.
func (a *acker) cancel(did syntax.DID) {
	a.mu.Lock()
	defer a.mu.Unlock()
	delete(a.queue, did)
	for a.busy == did {
		a.cond.Wait()
	}
}

func (a *acker) run() {
	defer close(a.done)
	for {
		select {
		case <-a.wake:
		case <-a.ctx.Done():
			return
		}
		for a.ctx.Err() == nil {
			a.mu.Lock()
			var (
				did  syntax.DID
				upto int64
			)
			for d, id := range a.queue {
				did, upto = d, id
				break
			}
			if did == "" {
				a.mu.Unlock()
				break
			}
			delete(a.queue, did)
			a.busy = did
			a.mu.Unlock()

			a.ackOne(did, upto)

			a.mu.Lock()
			a.busy = ""
			a.cond.Broadcast()
			a.mu.Unlock()
		}
	}
}

func (a *acker) ackOne(did syntax.DID, upto int64) {
	ctx, cancel := context.WithTimeout(a.ctx, ackTimeout)
	defer cancel()
	ob, release, err := a.s.opts.Open(ctx, did)
	if err != nil {
		a.s.lg.Debug("acknowledge outbox: open account", "did", did, "err", err)
		return
	}
	if release != nil {
		defer release()
	}
	if ob == nil {
		return
	}
	if err := ob.AckOutbox(ctx, upto); err != nil {
		// The rows stay; they are never read again, and a later
		// acknowledgement deletes them.
		a.s.lg.Debug("acknowledge outbox", "did", did, "upto", upto, "err", err)
		return
	}
	a.acks.Add(1)
}

// close stops the acker after the acknowledgement in progress.
func (a *acker) close() {
	a.stop()
	<-a.done
}
