package pds

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/welkin-atproto/welkin/api/atproto"
	"github.com/welkin-atproto/welkin/atproto/xrpc"
)

const (
	// crawlInterval is the least time between two crawl requests to the
	// relays: a burst of account creations asks once, and once more at
	// the end of the interval. (The reference PDS asks at most every 20
	// minutes and drops the requests in between; a relay answers a
	// repeated request for a host it already follows at no cost, so a
	// shorter interval only makes new accounts appear sooner.)
	crawlInterval = time.Minute
	// crawlTimeout bounds one requestCrawl call.
	crawlTimeout = 30 * time.Second
)

// crawler asks relays, with com.atproto.sync.requestCrawl, to subscribe to
// the PDS's firehose. Requests are coalesced: kick asks for a round soon,
// and one goroutine sends a round at most once per interval.
type crawler struct {
	hostname string
	relays   []string // base URLs
	client   *http.Client
	log      *slog.Logger
	interval time.Duration
	// after waits for d; a test may replace it to control time.
	after func(d time.Duration) <-chan time.Time

	kicks chan struct{} // capacity 1: a pending round
}

func newCrawler(hostname string, relays []string, client *http.Client, log *slog.Logger) *crawler {
	return &crawler{hostname: hostname, relays: relays, client: client, log: log,
		interval: crawlInterval, after: time.After, kicks: make(chan struct{}, 1)}
}

// kick asks for a round of crawl requests; it never blocks. Kicks that
// arrive before the round is sent join it.
func (c *crawler) kick() {
	select {
	case c.kicks <- struct{}{}:
	default:
	}
}

// run sends a round for each kick, no sooner than interval after the
// previous round, until ctx ends.
func (c *crawler) run(ctx context.Context) {
	var last time.Time
	for {
		select {
		case <-ctx.Done():
			return
		case <-c.kicks:
		}
		if !last.IsZero() {
			if wait := c.interval - time.Since(last); wait > 0 {
				select {
				case <-ctx.Done():
					return
				case <-c.after(wait):
				}
			}
		}
		// Kicks during the wait are served by this round.
		select {
		case <-c.kicks:
		default:
		}
		last = time.Now()
		c.round(ctx)
	}
}

// round sends requestCrawl to every relay at once and waits for the
// answers; failures are logged, and the next kick tries again.
func (c *crawler) round(ctx context.Context) {
	var wg sync.WaitGroup
	for _, relay := range c.relays {
		wg.Go(func() {
			rctx, cancel := context.WithTimeout(ctx, crawlTimeout)
			defer cancel()
			cl := &xrpc.Client{Host: relay, HTTPClient: c.client}
			err := atproto.SyncRequestCrawl(rctx, cl, &atproto.SyncRequestCrawl_Input{Hostname: c.hostname})
			if err != nil {
				if ctx.Err() == nil {
					c.log.Warn("pds: requesting a crawl failed", "relay", relay, "err", err)
				}
				return
			}
			c.log.Info("pds: requested a crawl", "relay", relay)
		})
	}
	wg.Wait()
}

// relayURL turns a RelayHosts entry ("bsky.network", "https://bsky.network",
// "http://localhost:2470") into a base URL; a bare host means HTTPS.
func relayURL(host string) (string, error) {
	h := strings.TrimSpace(host)
	if h == "" {
		return "", fmt.Errorf("pds: empty relay host")
	}
	if !strings.Contains(h, "://") {
		h = "https://" + h
	}
	u, err := url.Parse(h)
	if err != nil {
		return "", fmt.Errorf("pds: relay host %q: %w", host, err)
	}
	if u.Scheme != "https" && u.Scheme != "http" {
		return "", fmt.Errorf("pds: relay host %q: scheme must be http or https", host)
	}
	if u.Host == "" || u.User != nil || u.RawQuery != "" || u.Fragment != "" || strings.Trim(u.Path, "/") != "" {
		return "", fmt.Errorf("pds: relay host %q: want a host name with an optional scheme and port", host)
	}
	return u.Scheme + "://" + u.Host, nil
}

// startCrawler starts the background sender of crawl requests, which stops
// when ctx ends, and asks for a first round at once. Serve calls it, so
// that relays are asked to crawl a PDS that answers. It does nothing when
// no relays are configured or it already runs. Relay hosts that do not
// parse are logged and skipped.
func (s *Server) startCrawler(ctx context.Context) {
	var relays []string
	for _, h := range s.cfg.RelayHosts {
		u, err := relayURL(h)
		if err != nil {
			s.log.Error("pds: skipping relay host", "err", err)
			continue
		}
		relays = append(relays, u)
	}
	if len(relays) == 0 {
		return
	}
	c := newCrawler(s.crawlHostname(), relays, s.http, s.log)
	s.crawlMu.Lock()
	if s.crawler != nil {
		s.crawlMu.Unlock()
		return
	}
	s.crawler = c
	s.crawlMu.Unlock()
	s.goBackground(func() {
		defer func() {
			s.crawlMu.Lock()
			s.crawler = nil
			s.crawlMu.Unlock()
		}()
		c.run(ctx)
	})
	c.kick()
}

// crawlHostname is the host name relays are asked to crawl: the configured
// Hostname, except for a development PDS on localhost, whose public URL's
// host (with its port) is the only way a relay on the same machine finds it.
func (s *Server) crawlHostname() string {
	if s.cfg.Hostname == "localhost" {
		if u, err := url.Parse(s.cfg.PublicURL); err == nil && u.Host != "" {
			return u.Host
		}
	}
	return s.cfg.Hostname
}

// requestCrawlSoon asks the relays to crawl the PDS (after an account is
// created, so that its firehose is followed). It returns at once; requests
// within crawlInterval of each other are sent as one.
func (s *Server) requestCrawlSoon() {
	s.crawlMu.Lock()
	c := s.crawler
	s.crawlMu.Unlock()
	if c != nil {
		c.kick()
	}
}
