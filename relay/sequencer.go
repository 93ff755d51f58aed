package relay

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/welkin-atproto/welkin/atproto/stream"
	"github.com/welkin-atproto/welkin/atproto/syntax"
	"github.com/welkin-atproto/welkin/relay/eventlog"
	"github.com/welkin-atproto/welkin/relay/store"
)

const (
	// maxSeqBatch bounds the events one AppendBatch writes.
	maxSeqBatch = 256
	// applyTimeout bounds one attempt at storing a batch's account
	// states; applyMaxBackoff is the longest pause between attempts.
	applyTimeout    = 30 * time.Second
	applyMaxBackoff = 5 * time.Second
)

// errSequencerClosed is returned by submit after close.
var errSequencerClosed = errors.New("relay: sequencer closed")

// encodeFunc returns an event's frame carrying seq.
type encodeFunc func(seq int64) ([]byte, error)

// applyFunc stores the account states a batch of logged events brought,
// with the batch's last seq (store.ApplyEvents).
type applyFunc func(ctx context.Context, accts []store.Account, last int64) error

type seqRequest struct {
	did    syntax.DID
	encode encodeFunc
	acct   *store.Account // the account's state after the event, or nil
	seq    int64
	err    error
	done   chan struct{}
}

// sequencer gives accepted events the relay's seqs: one goroutine takes
// the requests waiting, appends them to the log in one batch (one fsync
// for all), stores the account states they bring together with the
// batch's last seq (one transaction for all), then publishes them to the
// live stream in seq order, so that the stored states do not lag the live
// stream. A crash between the log and the store leaves events after the
// stored seq, which the relay replays into the account states on start
// (recover.go).
type sequencer struct {
	log    *eventlog.Log
	pub    func(stream.Event)
	apply  applyFunc // nil: no account states (tests)
	logger *slog.Logger
	reqs   chan *seqRequest

	stop     chan struct{}
	exited   chan struct{} // closed when run returns
	stopOnce sync.Once
	wg       sync.WaitGroup
}

func newSequencer(log *eventlog.Log, pub func(stream.Event), apply applyFunc, logger *slog.Logger) *sequencer {
	if logger == nil {
		logger = slog.Default()
	}
	s := &sequencer{log: log, pub: pub, apply: apply, logger: logger, reqs: make(chan *seqRequest, maxSeqBatch),
		stop: make(chan struct{}), exited: make(chan struct{})}
	s.wg.Add(1)
	go s.run()
	return s
}

// submit sequences one event and returns its seq once it is durable in the
// log, acct (unless nil) is stored, and the event is published. If ctx
// ends first, the event may still be written.
func (s *sequencer) submit(ctx context.Context, did syntax.DID, acct *store.Account, encode encodeFunc) (int64, error) {
	r := &seqRequest{did: did, encode: encode, acct: acct, done: make(chan struct{})}
	select {
	case <-s.stop:
		return 0, errSequencerClosed
	default:
	}
	select {
	case s.reqs <- r:
	case <-s.stop:
		return 0, errSequencerClosed
	case <-ctx.Done():
		return 0, ctx.Err()
	}
	select {
	case <-r.done:
		return r.seq, r.err
	case <-s.exited:
		// run may have handled r just before it returned.
		select {
		case <-r.done:
			return r.seq, r.err
		default:
			return 0, errSequencerClosed
		}
	case <-ctx.Done():
		return 0, ctx.Err()
	}
}

// close stops the goroutine after the requests already queued.
func (s *sequencer) close() {
	s.stopOnce.Do(func() { close(s.stop) })
	s.wg.Wait()
}

func (s *sequencer) run() {
	defer s.wg.Done()
	defer close(s.exited)
	batch := make([]*seqRequest, 0, maxSeqBatch)
	for {
		select {
		case r := <-s.reqs:
			batch = append(batch[:0], r)
		case <-s.stop:
			// Fail whoever is still queued.
			for {
				select {
				case r := <-s.reqs:
					r.err = errSequencerClosed
					close(r.done)
				default:
					return
				}
			}
		}
	fill:
		for len(batch) < maxSeqBatch {
			select {
			case r := <-s.reqs:
				batch = append(batch, r)
			default:
				break fill
			}
		}
		if err := s.append(batch); err != nil && len(batch) > 1 {
			// One bad event must not sink the others: retry one by one.
			for _, r := range batch {
				s.append([]*seqRequest{r})
			}
		}
		for _, r := range batch {
			close(r.done)
		}
	}
}

// append writes batch, publishes it and sets each request's seq, or, on
// failure, the error of each (for a batch of one) and returns it.
func (s *sequencer) append(batch []*seqRequest) error {
	frames := make([][]byte, len(batch))
	first, err := s.log.AppendBatch(len(batch), func(i int, seq int64) ([]byte, syntax.DID, error) {
		f, err := batch[i].encode(seq)
		if err != nil {
			return nil, "", fmt.Errorf("encoding the event of %s as seq %d: %w", batch[i].did, seq, err)
		}
		frames[i] = f
		return f, batch[i].did, nil
	})
	if err != nil {
		if len(batch) == 1 {
			batch[0].err = fmt.Errorf("relay: sequencing: %w", err)
		}
		return err
	}
	if !s.storeStates(batch, first+int64(len(batch))-1) {
		// Stopped before the states were stored: the events are in
		// the log, and the next start replays them into the states.
		for _, r := range batch {
			r.err = errSequencerClosed
		}
		return nil
	}
	for i, r := range batch {
		r.seq = first + int64(i)
		s.pub(stream.Event{Seq: r.seq, Frame: frames[i]})
	}
	return nil
}

// storeStates stores the account states of a logged batch ending at last,
// trying again until it succeeds: the events are durable already, and
// nothing may pass them. It gives up, returning false, only when the
// sequencer is stopped.
func (s *sequencer) storeStates(batch []*seqRequest, last int64) bool {
	if s.apply == nil {
		return true
	}
	var accts []store.Account
	for _, r := range batch {
		if r.acct != nil {
			accts = append(accts, *r.acct)
		}
	}
	delay := 50 * time.Millisecond
	for {
		ctx, cancel := context.WithTimeout(context.Background(), applyTimeout)
		err := s.apply(ctx, accts, last)
		cancel()
		if err == nil {
			return true
		}
		s.logger.Error("storing account states of logged events; trying again", "seq", last, "err", err, "delay", delay)
		t := time.NewTimer(delay)
		select {
		case <-s.stop:
			t.Stop()
			return false
		case <-t.C:
		}
		delay = min(2*delay, applyMaxBackoff)
	}
}
