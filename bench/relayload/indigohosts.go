package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"time"

	"github.com/RussellLuo/slidingwindow"
	"github.com/gorilla/websocket"

	icomatproto "github.com/bluesky-social/indigo/api/atproto"
	istream "github.com/bluesky-social/indigo/cmd/relay/stream"
	"github.com/bluesky-social/indigo/cmd/relay/stream/schedulers/parallel"
)

// indigo's relay cannot be pointed at loopback hosts, but what it keeps
// for each connected host can be set up here, from its own packages, as
// its Slurper does (cmd/relay/relay/slurper.go): a gorilla WebSocket
// connection, three sliding-window rate limiters, the stream callbacks,
// the parallel scheduler with its default 40 workers per host, and
// stream.HandleRepoStream reading the connection. The role "indigo-hosts"
// runs that in a process of its own, on these commands from stdin:
//
//	connect HOST...   connect to each host (idle simulated hosts)
//	measure           the process's memory growth per connected host
//	quit              exit

// Settings of indigo's relay for each host (cmd/relay/main.go and
// relay/slurper.go defaults).
const (
	indigoConcurrencyPerHost = 40
	indigoQueueDepthPerHost  = 1000
)

func runIndigoHosts(in io.Reader, out io.Writer) error {
	enc := json.NewEncoder(out)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	logger := slog.New(slog.NewTextHandler(io.Discard, nil))
	slog.SetDefault(logger) // indigo's scheduler logs to the default logger
	var before memory
	var n int
	sc := bufio.NewScanner(in)
	sc.Buffer(make([]byte, 64<<10), 16<<20)
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) == 0 {
			continue
		}
		var r reply
		switch f[0] {
		case "quit":
			return nil
		case "connect":
			var err error
			if before, err = measureMemory(); err != nil {
				r.Err = err.Error()
				break
			}
			for _, h := range f[1:] {
				if err := indigoSubscribe(ctx, h, logger); err != nil {
					r.Err = err.Error()
					break
				}
				n++
			}
		case "measure":
			after, err := measureMemory()
			if err != nil {
				r.Err = err.Error()
				break
			}
			if n == 0 {
				r.Err = "no host connected"
				break
			}
			per := perItem(before, after, n)
			r.Memory = &memoryReply{RSS: per.rss, Heap: per.heap, Stack: per.stack}
		default:
			r.Err = fmt.Sprintf("unknown command %q", f[0])
		}
		if err := enc.Encode(r); err != nil {
			return err
		}
	}
	return sc.Err()
}

// indigoSubscribe connects to host as indigo's Slurper does and leaves the
// connection to stream.HandleRepoStream.
func indigoSubscribe(ctx context.Context, host string, logger *slog.Logger) error {
	window := func() (slidingwindow.Window, slidingwindow.StopFunc) { return slidingwindow.NewLocalWindow() }
	perSec, _ := slidingwindow.NewLimiter(time.Second, 50, window)
	perHour, _ := slidingwindow.NewLimiter(time.Hour, 2500, window)
	perDay, _ := slidingwindow.NewLimiter(24*time.Hour, 20_000, window)
	d := websocket.Dialer{HandshakeTimeout: 5 * time.Second}
	conn, _, err := d.DialContext(ctx, "ws://"+host+"/xrpc/com.atproto.sync.subscribeRepos", nil)
	if err != nil {
		return fmt.Errorf("indigo side: %s: %w", host, err)
	}
	ignore := func(*icomatproto.SyncSubscribeRepos_Commit) error { return nil }
	rsc := &istream.RepoStreamCallbacks{RepoCommit: ignore}
	handler := istream.NewInstrumentedRepoStreamCallbacks([]*slidingwindow.Limiter{perSec, perHour, perDay}, rsc.EventHandler)
	sched := parallel.NewScheduler(indigoConcurrencyPerHost, indigoQueueDepthPerHost, conn.RemoteAddr().String(), handler.EventHandler)
	go istream.HandleRepoStream(ctx, conn, sched, logger)
	return nil
}
