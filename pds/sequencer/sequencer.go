package sequencer

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/welkin-atproto/welkin/atproto/stream"
	"github.com/welkin-atproto/welkin/atproto/syntax"
	"github.com/welkin-atproto/welkin/internal/sqldb"
	"github.com/welkin-atproto/welkin/pds/actorstore"
)

// DefaultRetention is how long events stay in the log when
// Options.Retention is zero: the reference PDS keeps 72 hours of backfill.
const DefaultRetention = 72 * time.Hour

// ErrClosed is returned by calls on a closed Sequencer, and to callers
// still waiting when it closes.
var ErrClosed = errors.New("sequencer: closed")

// Outbox is an account's queue of events written with its commits.
// *actorstore.Store implements it.
type Outbox interface {
	// Outbox returns, in ID order, the rows with IDs above afterID: limit
	// of them when that many exist, fewer only when no more exist.
	Outbox(ctx context.Context, afterID int64, limit int) ([]actorstore.OutboxRow, error)
	// AckOutbox deletes the rows with IDs up to uptoID. It need not be
	// durable: the sequencer never reads a row twice either way.
	AckOutbox(ctx context.Context, uptoID int64) error
}

var _ Outbox = (*actorstore.Store)(nil)

// Options configure a Sequencer. Path and Open are required.
type Options struct {
	// Path is the log's database: an SQLite file (created if missing), or
	// any URL sqldb.Open accepts, PostgreSQL included.
	Path string
	// Open borrows the outbox of an account; the sequencer calls the
	// returned function when done with it. A nil Outbox with a nil error
	// says the account has no store (its pending Append events are still
	// sequenced). Open is called to drain an account that was notified,
	// flushed or recovered, before an Append (so that the account's earlier
	// commits get lower seqs), and from a background goroutine to
	// acknowledge sequenced rows. It should not create the store of an
	// account whose database is being deleted (see ResetAccount).
	Open func(ctx context.Context, did syntax.DID) (Outbox, func(), error)
	// Publish, if set, is called for each event once it is durable, in seq
	// order, from one goroutine. It must not block for long: the next
	// batch waits for it. Frames are shared and must not be modified.
	Publish func(stream.Event)
	// Retention is how long events stay in the log; zero means
	// DefaultRetention and a negative value keeps them forever. The latest
	// seq is remembered even when its event has been pruned.
	Retention time.Duration
	// Now is the clock of event creation times and retention; nil means
	// time.Now.
	Now func() time.Time
	// Logger receives diagnostics; nil means slog.Default().
	Logger *slog.Logger
}

// tuning holds the limits of the batch loop; tests shrink them.
type tuning struct {
	accountRows   int           // outbox rows taken from one account per batch
	outboxChunk   int           // rows read per Outbox call
	batchEvents   int           // events per batch
	batchBytes    int           // frame bytes per batch, checked between reads
	batchAccounts int           // accounts per batch
	ackRows       int           // sequenced rows left in an outbox before they are acknowledged at once
	ackIdle       time.Duration // idle time after which every sequenced row is acknowledged
	pruneEvery    time.Duration // how often retention is applied
	pruneChunk    int           // events deleted per pruning transaction
	drainRetries  int           // attempts to drain an account whose outbox cannot be read
	retryBase     time.Duration // first delay before such a retry, and after a failed batch
	retryMax      time.Duration // longest such delay
	closeTimeout  time.Duration // how long Close keeps draining
	recoverChunk  int           // accounts Recover queues at a time
	noAck         bool          // tests: never acknowledge
	// linger is how long the loop waits before a batch when the previous
	// one carried more than one event: under concurrent writes, a short
	// wait lets more writers join the batch and share its fsync.
	linger time.Duration
}

var defaultTuning = tuning{
	accountRows:   500,
	outboxChunk:   100,
	batchEvents:   4000,
	batchBytes:    32 << 20,
	batchAccounts: 1000,
	ackRows:       1,
	ackIdle:       2 * time.Second,
	pruneEvery:    time.Minute,
	pruneChunk:    1000,
	drainRetries:  8,
	retryBase:     50 * time.Millisecond,
	retryMax:      10 * time.Second,
	closeTimeout:  10 * time.Second,
	recoverChunk:  1024,
	linger:        500 * time.Microsecond,
}

// Stats are counters of a Sequencer since it was opened, for metrics.
type Stats struct {
	Batches         int64 // write transactions committed
	Events          int64 // events appended to the log
	Skipped         int64 // outbox rows skipped because they are not valid events
	FailedBatches   int64 // write transactions that failed (their work was retried)
	DrainErrors     int64 // failures to open or read an account's outbox
	Handed          int64 // rows sequenced as Submit handed them over, without reading the outbox
	Acks            int64 // AckOutbox calls that succeeded
	Pruned          int64 // events removed by retention
	PendingAccounts int   // accounts waiting to be drained now
	LatestSeq       int64
}

// Sequencer assigns seqs to the PDS's events and keeps them in a durable
// log. See the package documentation.
type Sequencer struct {
	opts Options
	tune tuning
	db   *sqldb.DB
	sql  *batchSQL // writeBatch's statements for db
	lg   *slog.Logger

	ctx    context.Context // the loop's; canceled when Close stops waiting
	cancel context.CancelFunc

	mu      sync.Mutex
	pending map[syntax.DID]*request
	queue   didQueue
	closing bool

	wake chan struct{} // buffered; a send means pending may have grown
	stop chan struct{} // closed by Close
	done chan struct{} // closed when the loop has exited

	// Owned by the loop goroutine.
	accts     map[syntax.DID]*acctState
	unacked   map[syntax.DID]struct{}
	delayed   map[syntax.DID]retry
	next      int64 // the next seq
	lastTime  int64 // creation time of the newest event, Unix ms
	gen       int64
	stale     bool // the in-memory state must be reloaded before the next batch
	lastBatch int  // events in the last batch written

	ack *acker

	latest        atomic.Int64
	batches       atomic.Int64
	events        atomic.Int64
	skipped       atomic.Int64
	failedBatches atomic.Int64
	drainErrors   atomic.Int64
	handed        atomic.Int64
	pruned        atomic.Int64

	closeOnce sync.Once
	closeErr  error
}

// acctState is what the loop knows of one account.
type acctState struct {
	cursor int64 // highest outbox ID sequenced
	acked  int64 // highest outbox ID handed to the acker (0: unknown)
}

// request is the pending work for one account.
type request struct {
	drain   bool                   // read the outbox
	offered []actorstore.OutboxRow // rows handed over by Submit, in ID order
	reset   bool                   // forget the cursor first
	attempt int                    // earlier failed drains, for retries
	waiters []*waiter              // Flush and Recover: finished once the outbox is drained
	resets  []*waiter              // ResetAccount: finished once the reset is durable
	appends []*appendReq
}

type waiter struct {
	done chan struct{}
	err  error
}

// wait returns the waiter's outcome once it is finished, or ctx's error
// if ctx ends first.
func (w *waiter) wait(ctx context.Context) error {
	select {
	case <-w.done:
		return w.err
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (w *waiter) finish(err error) {
	w.err = err
	close(w.done)
}

type appendReq struct {
	kind     string
	ev       event
	taken    bool // by the loop; guarded by Sequencer.mu
	canceled bool // guarded by Sequencer.mu
	seq      int64
	err      error
	done     chan struct{}
}

func (a *appendReq) finish(seq int64, err error) {
	a.seq, a.err = seq, err
	close(a.done)
}

type retry struct {
	at      time.Time
	attempt int
}

// Open opens (creating it if needed) the log at opts.Path, brings its
// schema up to date and starts sequencing. The caller should then call
// Recover with every account, to sequence what a previous run left in the
// outboxes.
func Open(ctx context.Context, opts Options) (*Sequencer, error) {
	return open(ctx, opts, defaultTuning)
}

func open(ctx context.Context, opts Options, tune tuning) (*Sequencer, error) {
	if opts.Path == "" {
		return nil, errors.New("sequencer: Options.Path is empty")
	}
	if opts.Open == nil {
		return nil, errors.New("sequencer: Options.Open is nil")
	}
	if opts.Retention == 0 {
		opts.Retention = DefaultRetention
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	db, err := sqldb.Open(ctx, sqldb.Config{URL: opts.Path})
	if err != nil {
		return nil, fmt.Errorf("sequencer: open log: %w", err)
	}
	if err := sqldb.Migrate(ctx, db, Component, migrations); err != nil {
		db.Close()
		return nil, fmt.Errorf("sequencer: migrate: %w", err)
	}
	st, err := loadState(ctx, db)
	if err != nil {
		db.Close()
		return nil, err
	}
	s := &Sequencer{
		opts:    opts,
		tune:    tune,
		db:      db,
		sql:     newBatchSQL(db),
		lg:      opts.Logger.With("component", "sequencer"),
		pending: make(map[syntax.DID]*request),
		wake:    make(chan struct{}, 1),
		stop:    make(chan struct{}),
		done:    make(chan struct{}),
		unacked: make(map[syntax.DID]struct{}),
		delayed: make(map[syntax.DID]retry),
	}
	s.adopt(st)
	s.ctx, s.cancel = context.WithCancel(context.Background())
	s.ack = newAcker(s)
	go s.ack.run()
	go s.run()
	return s, nil
}

// adopt makes st the in-memory state.
func (s *Sequencer) adopt(st *logState) {
	s.accts = make(map[syntax.DID]*acctState, len(st.cursors))
	for did, id := range st.cursors {
		s.accts[did] = &acctState{cursor: id}
	}
	s.next = st.lastSeq + 1
	s.lastTime = st.lastTime
	s.gen = st.gen
	s.latest.Store(st.lastSeq)
	s.stale = false
}

// Close drains what is pending (for a bounded time), stops the loop and
// the background acknowledgements, and closes the log. Callers still
// waiting get ErrClosed. Outbox rows not sequenced by then are picked up
// by Recover on the next start.
func (s *Sequencer) Close() error {
	s.closeOnce.Do(func() {
		s.mu.Lock()
		s.closing = true
		s.mu.Unlock()
		close(s.stop)
		t := time.AfterFunc(s.tune.closeTimeout, s.cancel)
		<-s.done
		t.Stop()
		s.cancel()
		s.ack.close()
		s.closeErr = s.db.Close()
	})
	return s.closeErr
}

// signal wakes the loop.
func (s *Sequencer) signal() {
	select {
	case s.wake <- struct{}{}:
	default:
	}
}

// pendingLocked returns did's pending request, queueing a new one. s.mu is
// held.
func (s *Sequencer) pendingLocked(did syntax.DID) *request {
	r := s.pending[did]
	if r == nil {
		r = &request{}
		s.pending[did] = r
		s.queue.push(did)
	}
	return r
}

// Notify tells the sequencer that did has new outbox rows. It only marks
// the account pending and never waits for I/O; notifications of one
// account coalesce until the loop drains it. After Close it does nothing.
func (s *Sequencer) Notify(did syntax.DID) {
	s.mu.Lock()
	if s.closing {
		s.mu.Unlock()
		return
	}
	s.pendingLocked(did).drain = true
	s.mu.Unlock()
	s.signal()
}

// addWaiter queues a drain of did with a waiter.
func (s *Sequencer) addWaiter(did syntax.DID) (*waiter, error) {
	w := &waiter{done: make(chan struct{})}
	s.mu.Lock()
	if s.closing {
		s.mu.Unlock()
		return nil, ErrClosed
	}
	r := s.pendingLocked(did)
	r.drain = true
	r.waiters = append(r.waiters, w)
	s.mu.Unlock()
	s.signal()
	return w, nil
}

// Submit hands the sequencer an outbox row that was just written, so that
// the loop can sequence it without reading it back from the account's
// outbox, and returns a function that waits until the row is in the log
// (durable) or was skipped as invalid. The writer calls Submit with the
// account's write lock held, so that the rows of one account arrive in ID
// order. The outbox stays the source of truth: a row handed over out of
// order, or after rows the sequencer has not seen, makes the loop read the
// outbox instead, as Notify does. After Close the wait fails with
// ErrClosed.
func (s *Sequencer) Submit(did syntax.DID, row actorstore.OutboxRow) func(context.Context) error {
	w := &waiter{done: make(chan struct{})}
	s.mu.Lock()
	if s.closing {
		s.mu.Unlock()
		return func(context.Context) error { return ErrClosed }
	}
	r := s.pendingLocked(did)
	r.offered = append(r.offered, row)
	r.waiters = append(r.waiters, w)
	s.mu.Unlock()
	s.signal()
	return w.wait
}

// Flush waits until every outbox row of did written before the call is in
// the log (or was skipped as invalid). It fails if the account's outbox
// cannot be opened or read, or ctx ends first.
func (s *Sequencer) Flush(ctx context.Context, did syntax.DID) error {
	w, err := s.addWaiter(did)
	if err != nil {
		return err
	}
	return w.wait(ctx)
}

// Recover sequences what is pending in the outboxes of dids: on start, the
// PDS passes all its accounts. It is Flush for each account (a bounded
// number at a time, batched together), may run while new writes arrive,
// and returns an error naming the accounts whose outbox could not be read.
func (s *Sequencer) Recover(ctx context.Context, dids []syntax.DID) error {
	var (
		failed   int
		firstErr error
	)
	chunk := max(s.tune.recoverChunk, 1)
	for len(dids) > 0 {
		n := min(chunk, len(dids))
		ws := make([]*waiter, 0, n)
		for _, did := range dids[:n] {
			w, err := s.addWaiter(did)
			if err != nil {
				return err
			}
			ws = append(ws, w)
		}
		for i, w := range ws {
			select {
			case <-w.done:
			case <-ctx.Done():
				return ctx.Err()
			}
			if w.err != nil {
				if errors.Is(w.err, ErrClosed) {
					return w.err
				}
				failed++
				if firstErr == nil {
					firstErr = fmt.Errorf("%s: %w", dids[i], w.err)
				}
			}
		}
		dids = dids[n:]
	}
	if failed > 0 {
		return fmt.Errorf("sequencer: recover: %d accounts failed, first: %w", failed, firstErr)
	}
	return nil
}

// Append sequences an event that no repository commit carries: kind is
// KindIdentity, KindAccount or KindSync and body the DAG-CBOR of the
// matching subscribeRepos message (its seq is ignored) for account did,
// with the fields the lexicon requires. The account's outbox rows written
// before the call are sequenced first, unless its outbox cannot be opened
// or read: the event then goes out without waiting for them. Append
// returns the event's seq once the event is durable; the write shares a
// transaction with concurrent work. If ctx ends before the event was taken
// into a batch it is dropped, otherwise it is still sequenced.
func (s *Sequencer) Append(ctx context.Context, did syntax.DID, kind string, body []byte) (int64, error) {
	if _, err := syntax.ParseDID(string(did)); err != nil {
		return 0, fmt.Errorf("%w: %v", ErrInvalidEvent, err)
	}
	if kind == KindCommit {
		return 0, fmt.Errorf("%w: #commit events are sequenced from the account's outbox", ErrInvalidEvent)
	}
	ev, err := decodeEvent(did, kind, body)
	if err != nil {
		return 0, err
	}
	a := &appendReq{kind: kind, ev: ev, done: make(chan struct{})}
	s.mu.Lock()
	if s.closing {
		s.mu.Unlock()
		return 0, ErrClosed
	}
	r := s.pendingLocked(did)
	r.drain = true
	r.appends = append(r.appends, a)
	s.mu.Unlock()
	s.signal()
	select {
	case <-a.done:
		return a.seq, a.err
	case <-ctx.Done():
		s.mu.Lock()
		if !a.taken {
			a.canceled = true
		}
		s.mu.Unlock()
		return 0, ctx.Err()
	}
}

// ResetAccount forgets the outbox cursor of did, whose database was
// deleted, so that a new database of the same account is read from its
// first row. Call it after the old database is gone; it returns once the
// cursor is forgotten durably and no acknowledgement for the old database
// is queued or running.
func (s *Sequencer) ResetAccount(ctx context.Context, did syntax.DID) error {
	w := &waiter{done: make(chan struct{})}
	s.mu.Lock()
	if s.closing {
		s.mu.Unlock()
		return ErrClosed
	}
	r := s.pendingLocked(did)
	r.reset = true
	r.resets = append(r.resets, w)
	s.mu.Unlock()
	s.signal()
	select {
	case <-w.done:
		return w.err
	case <-ctx.Done():
		return ctx.Err()
	}
}

// ReleaseMemory hands back the log database's caches while the PDS is
// quiet (see sqldb.DB.ReleaseMemory). It waits for a batch being written.
func (s *Sequencer) ReleaseMemory(ctx context.Context) error { return s.db.ReleaseMemory(ctx) }

// Stats returns the counters.
func (s *Sequencer) Stats() Stats {
	s.mu.Lock()
	pending := s.queue.len()
	s.mu.Unlock()
	return Stats{
		Batches:         s.batches.Load(),
		Events:          s.events.Load(),
		Skipped:         s.skipped.Load(),
		FailedBatches:   s.failedBatches.Load(),
		DrainErrors:     s.drainErrors.Load(),
		Handed:          s.handed.Load(),
		Acks:            s.ack.acks.Load(),
		Pruned:          s.pruned.Load(),
		PendingAccounts: pending,
		LatestSeq:       s.latest.Load(),
	}
}

var _ stream.Log = (*Sequencer)(nil)

// didQueue is a FIFO of DIDs.
type didQueue struct {
	items []syntax.DID
	head  int
}

func (q *didQueue) len() int { return len(q.items) - q.head }

func (q *didQueue) push(did syntax.DID) { q.items = append(q.items, did) }

func (q *didQueue) pop() (syntax.DID, bool) {
	if q.head == len(q.items) {
		return "", false
	}
	did := q.items[q.head]
	q.items[q.head] = ""
	q.head++
	if q.head == len(q.items) {
		q.items, q.head = q.items[:0], 0
	} else if q.head > 1024 && q.head*2 > len(q.items) {
		n := copy(q.items, q.items[q.head:])
		clear(q.items[n:])
		q.items, q.head = q.items[:n], 0
	}
	return did, true
}

// pushFront puts dids, in order, before everything queued.
func (q *didQueue) pushFront(dids []syntax.DID) {
	if len(dids) == 0 {
		return
	}
	rest := q.items[q.head:]
	items := make([]syntax.DID, 0, len(dids)+len(rest))
	items = append(items, dids...)
	items = append(items, rest...)
	q.items, q.head = items, 0
}
