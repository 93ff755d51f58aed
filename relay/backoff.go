package relay

import (
	"math/rand/v2"
	"net/http"
	"time"
)

// Reconnection to an upstream host. The delay doubles with each failed or
// short-lived connection, from reconnectMinDelay up to reconnectMaxDelay,
// and is jittered so that many hosts that dropped at once (a relay
// restart, a network cut) do not come back in step. A connection that
// stayed up for reconnectHealthy resets it. The reference relay waits
// about a second for its first ten retries and 30 s after, and gives up on
// a host after 15 failed dials; this relay never gives up on a host that
// is not blocked, but waits up to five minutes between attempts.
const (
	reconnectMinDelay = time.Second
	reconnectMaxDelay = 5 * time.Minute
	reconnectHealthy  = time.Minute
)

// backoff computes reconnection delays. It is not safe for concurrent use;
// each subscriber has its own.
type backoff struct {
	min, max, healthy time.Duration
	// jitter returns a number in [0, 1); nil means math/rand.
	jitter func() float64
	// failures counts the connections since the last healthy one.
	failures int
}

func newBackoff() *backoff {
	return &backoff{min: reconnectMinDelay, max: reconnectMaxDelay, healthy: reconnectHealthy}
}

// next returns how long to wait after a connection that ended (or never
// came up) having been up for up, and counts the failure. The delay is
// between half and all of min x 2^(failures-1), capped at max.
func (b *backoff) next(up time.Duration) time.Duration {
	if up >= b.healthy {
		b.failures = 0
	}
	b.failures++
	d := b.max
	if shift := b.failures - 1; shift < 32 && b.min<<shift < b.max && b.min<<shift > 0 {
		d = b.min << shift
	}
	j := b.jitter
	if j == nil {
		j = rand.Float64
	}
	return d/2 + time.Duration(j()*float64(d/2))
}

// upgradeWatcher is an http.RoundTripper that reports each successful
// WebSocket upgrade (101 Switching Protocols), which is when a
// subscriber's connection is up.
type upgradeWatcher struct {
	base      http.RoundTripper
	onUpgrade func()
}

func (u upgradeWatcher) RoundTrip(r *http.Request) (*http.Response, error) {
	resp, err := u.base.RoundTrip(r)
	if err == nil && resp.StatusCode == http.StatusSwitchingProtocols {
		u.onUpgrade()
	}
	return resp, err
}

// watchUpgrades returns a copy of c whose transport calls onUpgrade.
func watchUpgrades(c *http.Client, onUpgrade func()) *http.Client {
	wc := *c
	base := c.Transport
	if base == nil {
		base = http.DefaultTransport
	}
	wc.Transport = upgradeWatcher{base: base, onUpgrade: onUpgrade}
	return &wc
}
