package relay

import (
	"errors"
	"sync"
	"time"

	"github.com/coder/websocket"

	"github.com/welkin-atproto/welkin/atproto/stream"
	"github.com/welkin-atproto/welkin/relay/verify"
)

// Default per-host event rate limits (Config.HostEventRate and the rest):
// the base values of the host policy (hostpolicy.go), which a host's
// steps multiply. The reference relay allows 50 events a second to a host
// that asked to be crawled; trusted hosts (large PDS operators) get a
// hundred times more.
const (
	DefaultHostEventRate         = 50
	DefaultHostEventBurst        = 500
	DefaultTrustedHostEventRate  = 5000
	DefaultTrustedHostEventBurst = 50000
)

// tokenBucket is a token-bucket rate limiter: it holds at most burst
// tokens, gains rate tokens a second, and each allowed event takes one. It
// is safe for concurrent use.
type tokenBucket struct {
	rate, burst float64

	mu     sync.Mutex
	tokens float64
	last   time.Time
	primed bool // tokens were filled once
}

func newTokenBucket(rate float64, burst int, now time.Time) *tokenBucket {
	return &tokenBucket{rate: rate, burst: float64(burst), tokens: float64(burst), last: now, primed: true}
}

// set changes the rate and the burst; the tokens held stay, up to the new
// burst. A bucket made empty (the zero value but last) fills on its first
// set.
func (b *tokenBucket) set(rate float64, burst int) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.rate, b.burst = rate, float64(burst)
	if !b.primed {
		b.tokens, b.primed = b.burst, true
	}
	b.tokens = min(b.tokens, b.burst)
}

// allow takes a token if there is one.
func (b *tokenBucket) allow(now time.Time) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	if d := now.Sub(b.last); d > 0 {
		b.tokens = min(b.burst, b.tokens+d.Seconds()*b.rate)
		b.last = now
	}
	if b.tokens < 1 {
		return false
	}
	b.tokens--
	return true
}

// frameFault names the rejection reason of an upstream connection failure
// caused by a frame the host sent, or "" for any other failure (network,
// closed connection). Such a frame cannot be handled: the connection is
// dropped and the subscriber resumes from the last seq it received.
func frameFault(err error) string {
	var fe *stream.FrameError
	switch {
	case errors.Is(err, websocket.ErrMessageTooBig):
		return string(verify.ReasonFrameTooLarge)
	case errors.As(err, &fe):
		return reasonBadFrame
	}
	return ""
}
