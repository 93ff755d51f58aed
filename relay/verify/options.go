package verify

import (
	"time"

	"github.com/welkin-atproto/welkin/atproto/crypto"
	"github.com/welkin-atproto/welkin/atproto/data"
	"github.com/welkin-atproto/welkin/atproto/syntax"
)

// Default limits. Each applies where Options leaves the field zero.
const (
	// DefaultMaxFrameSize bounds an event body: "Firehose event stream
	// messages have a hard maximum size limit of 5 MBytes, measured as
	// WebSocket frames" (sync specification, "Repository Event Stream").
	DefaultMaxFrameSize = 5_000_000
	// DefaultMaxBlocksSize bounds the CAR slice of a #commit: "the blocks
	// bytes field has a hard size limit of 2 million bytes" (sync
	// specification, "#commit Events").
	DefaultMaxBlocksSize = 2_000_000
	// DefaultMaxSyncBlocksSize bounds the CAR of a #sync, which holds only
	// the commit block: "blocks ... maxLength: 10000" in the
	// com.atproto.sync.subscribeRepos #sync schema.
	DefaultMaxSyncBlocksSize = 10_000
	// DefaultMaxRecordSize bounds each block of a CAR slice: "individual
	// record blocks within the blocks field have a hard limit of one
	// million bytes" (sync specification, "#commit Events"); commit and
	// MST node blocks are far smaller.
	DefaultMaxRecordSize = 1_000_000
	// DefaultMaxOps bounds the ops of a #commit: "at most 200 record
	// operations can be included in a commit" (sync specification,
	// "#commit Events").
	DefaultMaxOps = 200
	// DefaultMaxFutureRev is how far a rev's timestamp may run ahead of
	// the clock: the specification asks to reject revs "beyond a clock
	// drift window of a few minutes"; the reference relay allows five.
	DefaultMaxFutureRev = 5 * time.Minute
)

// Options tune the checks. The zero value (and a nil *Options) is strict
// verification with the specification's limits and the system clock.
// Options are only read, so one value may be shared by any number of
// goroutines.
type Options struct {
	// Lenient accepts a #commit whose ops fail the sync 1.1 inversion
	// check (or that lacks prevData), reporting the failure in the
	// Verdict's Reason and Err instead of rejecting the event. It exists
	// for hosts that do not yet emit inversion-ready slices; it is never
	// on by default.
	Lenient bool
	// MaxFutureRev is how far ahead of Now a rev's timestamp may be; zero
	// or negative means DefaultMaxFutureRev.
	MaxFutureRev time.Duration
	// Now returns the current time; nil means time.Now.
	Now func() time.Time

	// Limits; zero or negative means the Default value.
	MaxFrameSize      int
	MaxBlocksSize     int
	MaxSyncBlocksSize int
	MaxRecordSize     int
	MaxOps            int
}

// limits is Options with every default filled in.
type limits struct {
	lenient       bool
	maxFuture     time.Duration
	now           func() time.Time
	maxFrame      int
	maxBlocks     int
	maxSyncBlocks int
	maxRecord     int
	maxOps        int
}

func pick[T int | time.Duration](v, def T) T {
	if v <= 0 {
		return def
	}
	return v
}

func (o *Options) limits() limits {
	if o == nil {
		o = &Options{}
	}
	l := limits{
		lenient:       o.Lenient,
		maxFuture:     pick(o.MaxFutureRev, DefaultMaxFutureRev),
		now:           o.Now,
		maxFrame:      pick(o.MaxFrameSize, DefaultMaxFrameSize),
		maxBlocks:     pick(o.MaxBlocksSize, DefaultMaxBlocksSize),
		maxSyncBlocks: pick(o.MaxSyncBlocksSize, DefaultMaxSyncBlocksSize),
		maxRecord:     pick(o.MaxRecordSize, DefaultMaxRecordSize),
		maxOps:        pick(o.MaxOps, DefaultMaxOps),
	}
	if l.now == nil {
		l.now = time.Now
	}
	return l
}

// Account hosting statuses (account specification; the "status" of
// #account events). AccountState.Status holds one of them, or "" for an
// account the relay has not been told about, which counts as active.
const (
	StatusActive         = "active"
	StatusDeactivated    = "deactivated"
	StatusTakendown      = "takendown"
	StatusSuspended      = "suspended"
	StatusDeleted        = "deleted"
	StatusDesynchronized = "desynchronized"
	StatusThrottled      = "throttled"
)

// AccountState is what a relay remembers about one repository between
// events: the last accepted commit and the account's hosting status.
type AccountState struct {
	// Rev is the rev of the last accepted commit; "" if none.
	Rev syntax.TID
	// Data is the MST root of the last accepted commit, the prevData the
	// next #commit must carry; nil if unknown.
	Data *data.CID
	// Commit is the CID of the last accepted commit; nil if unknown.
	Commit *data.CID
	// Status is the hosting status (StatusActive, ...); "" counts as
	// active.
	Status string
	// Desync records that the chain of commits was seen to break (a
	// since or prevData mismatch) and the repository has not been
	// re-synchronized since. VerifyCommit carries it forward and sets it
	// on a break; an accepted #sync, which re-anchors the chain, clears
	// it, as does the caller once it has re-synchronized the repository.
	Desync bool
}

// Active reports whether events of the account may be passed on.
func (s *AccountState) Active() bool { return s.Status == "" || s.Status == StatusActive }

// Identity is what the checks need of an account's resolved identity.
// *identity.Identity satisfies it. The key should be parsed once, when
// the identity is resolved, not on each call.
type Identity interface {
	// SigningKey returns the account's #atproto signing key.
	SigningKey() (crypto.PublicKey, error)
	// PDSEndpoint returns the URL of the account's PDS.
	PDSEndpoint() (string, error)
}
