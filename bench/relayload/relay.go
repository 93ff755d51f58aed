package main

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/welkin-atproto/welkin/relay"
)

// relayUnderTest is the Welkin relay, in this process, serving on a
// loopback port.
type relayUnderTest struct {
	srv      *relay.Server
	url      string // http://127.0.0.1:PORT
	password string
	cancel   context.CancelFunc
	done     chan error

	stopOnce sync.Once
	stopErr  error
}

// startRelay starts a relay keeping its state in dir, resolving DIDs at
// plcURL and subscribing to hosts as trusted hosts, with the per-host
// event rate limits out of the way (they are not what is measured).
func startRelay(dir, plcURL string, hosts []string, logger *slog.Logger) (*relayUnderTest, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	var pw [12]byte
	rand.Read(pw[:])
	r := &relayUnderTest{password: hex.EncodeToString(pw[:]), done: make(chan error, 1)}
	port := ln.Addr().(*net.TCPAddr).Port
	r.srv, err = relay.New(context.Background(), relay.Config{
		Host: "127.0.0.1", Port: port, DataDir: dir, PLCURL: plcURL,
		TrustedHosts:       hosts,
		AdminPassword:      r.password,
		AllowInsecureHosts: true,
		HostEventRate:      1e9, HostEventBurst: 1 << 30,
		TrustedHostEventRate: 1e9, TrustedHostEventBurst: 1 << 30,
		Logger: logger,
	})
	if err != nil {
		ln.Close()
		return nil, err
	}
	r.url = fmt.Sprintf("http://127.0.0.1:%d", port)
	ctx, cancel := context.WithCancel(context.Background())
	r.cancel = cancel
	go func() { r.done <- r.srv.Serve(ctx, ln) }()
	return r, nil
}

// streamURL is the relay's subscribeRepos endpoint.
func (r *relayUnderTest) streamURL() string {
	return "ws" + strings.TrimPrefix(r.url, "http") + "/xrpc/com.atproto.sync.subscribeRepos"
}

// stop stops serving and closes the relay; calls after the first return
// the first one's error.
func (r *relayUnderTest) stop() error {
	r.stopOnce.Do(func() {
		r.cancel()
		err := <-r.done
		if errors.Is(err, http.ErrServerClosed) {
			err = nil
		}
		r.stopErr = errors.Join(err, r.srv.Close())
	})
	return r.stopErr
}

// addHost subscribes the relay to a host through its admin API.
func (r *relayUnderTest) addHost(name string) error {
	req := httptest.NewRequest(http.MethodPost, "/admin/hosts/add", strings.NewReader(`{"hostname":"`+name+`"}`))
	req.SetBasicAuth("admin", r.password)
	rec := httptest.NewRecorder()
	r.srv.Handler().ServeHTTP(rec, req)
	if rec.Code != http.StatusOK {
		return fmt.Errorf("adding host %s: status %d: %s", name, rec.Code, rec.Body.String())
	}
	return nil
}

// eventCounts are the relay's upstream event counters.
type eventCounts struct {
	accepted, rejected int64
	// reasons holds the rejected counts by "type reason".
	reasons map[string]int64
}

// counts reads the relay's event counters from its /metrics page.
func (r *relayUnderTest) counts() (eventCounts, error) {
	rec := httptest.NewRecorder()
	r.srv.Handler().ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/metrics", nil))
	if rec.Code != http.StatusOK {
		return eventCounts{}, fmt.Errorf("/metrics: status %d", rec.Code)
	}
	return parseEventCounts(rec.Body)
}

// parseEventCounts sums the welkin_relay_events_total series of a
// Prometheus text page by outcome.
func parseEventCounts(page io.Reader) (eventCounts, error) {
	c := eventCounts{reasons: map[string]int64{}}
	sc := bufio.NewScanner(page)
	for sc.Scan() {
		line := sc.Bytes()
		if !bytes.HasPrefix(line, []byte("welkin_relay_events_total{")) {
			continue
		}
		sp := bytes.LastIndexByte(line, ' ')
		if sp < 0 {
			return c, fmt.Errorf("metrics line %q has no value", line)
		}
		v, err := strconv.ParseFloat(string(line[sp+1:]), 64)
		if err != nil {
			return c, fmt.Errorf("metrics line %q: %v", line, err)
		}
		labels := string(line[:sp])
		switch {
		case strings.Contains(labels, `outcome="accepted"`):
			c.accepted += int64(v)
		case strings.Contains(labels, `outcome="rejected"`):
			c.rejected += int64(v)
			if v > 0 {
				c.reasons[label(labels, "type")+" "+label(labels, "reason")] += int64(v)
			}
		}
	}
	return c, sc.Err()
}

// label returns a label's value in a series' label set.
func label(labels, name string) string {
	_, rest, ok := strings.Cut(labels, name+`="`)
	if !ok {
		return ""
	}
	v, _, _ := strings.Cut(rest, `"`)
	return v
}

// waitHandled waits until the relay has handled (accepted or rejected)
// total upstream events, or the deadline passes.
func (r *relayUnderTest) waitHandled(ctx context.Context, total int64, deadline time.Duration) (eventCounts, error) {
	end := time.Now().Add(deadline)
	for {
		c, err := r.counts()
		if err != nil {
			return c, err
		}
		if c.accepted+c.rejected >= total {
			return c, nil
		}
		if time.Now().After(end) {
			return c, fmt.Errorf("after %s the relay had handled %d of %d events", deadline, c.accepted+c.rejected, total)
		}
		if err := pause(ctx); err != nil {
			return c, err
		}
	}
}
