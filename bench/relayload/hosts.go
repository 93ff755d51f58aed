package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/coder/websocket"

	"github.com/welkin-atproto/welkin/atproto/stream"
	"github.com/welkin-atproto/welkin/atproto/syntax"
)

// The load side runs in a process of its own, so that the relay's process
// CPU time and memory are the relay's alone. It generates the workload,
// serves the simulated PDS hosts and the PLC directory, and runs the
// fan-out consumers, on commands read from stdin (one a line), answering
// each with one JSON line on stdout:
//
//	release PHASE         publish the phase's events on every host
//	consumers N URL       connect N consumers to the relay's stream
//	delivered             messages received by the consumers so far
//	close-consumers       disconnect them
//	idle N                serve N more hosts that send nothing
//	idle-connected        subscribers connected to the idle hosts
//	quit                  exit

// reply is a load-side answer.
type reply struct {
	Err       string   `json:"err,omitempty"`
	PLC       string   `json:"plc,omitempty"`
	Hosts     []string `json:"hosts,omitempty"`
	Events    []int    `json:"events,omitempty"` // events by phase, all hosts
	Count     int64    `json:"count,omitempty"`
	Generated float64  `json:"generated,omitempty"` // seconds spent generating
	// Memory is the growth of a process's memory per connected host.
	Memory *memoryReply `json:"memory,omitempty"`
}

type memoryReply struct {
	RSS   int64 `json:"rss"`
	Heap  int64 `json:"heap"`
	Stack int64 `json:"stack"`
}

// simHost is one simulated PDS: a subscribeRepos stream on its own port.
type simHost struct {
	name string // "127.0.0.1:PORT"
	log  *stream.MemLog
	srv  *stream.Server
	hs   *http.Server
	load *hostLoad
}

// startSimHost starts a host whose stream keeps buffer events for a live
// subscriber. Its writes may wait as long as a phase may last: a relay
// that is busy is not dropped for it.
func startSimHost(buffer int, writeTimeout time.Duration) (*simHost, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	h := &simHost{name: ln.Addr().String(), log: stream.NewMemLog(max(buffer, 1))}
	h.srv = stream.NewServer(h.log, &stream.ServerOptions{
		Buffer: max(buffer, 16), BackfillPage: 1000, PingInterval: -1, WriteTimeout: writeTimeout,
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
	})
	mux := http.NewServeMux()
	mux.Handle("GET /xrpc/com.atproto.sync.subscribeRepos", h.srv)
	h.hs = &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	go h.hs.Serve(ln)
	return h, nil
}

// publish logs and publishes frames, whose seqs follow the log's.
func (h *simHost) publish(frames [][]byte) error {
	latest, _ := h.log.LatestSeq(context.Background())
	for i, f := range frames {
		ev := stream.Event{Seq: latest + int64(i) + 1, Frame: f}
		if err := h.log.Append(ev); err != nil {
			return fmt.Errorf("host %s: %w", h.name, err)
		}
		h.srv.Publish(ev)
	}
	return nil
}

func (h *simHost) close() {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	h.srv.Shutdown(ctx)
	h.hs.Close()
}

// loadSide is the state of the load-side process.
type loadSide struct {
	w     workload
	hosts []*simHost
	idle  []*simHost
	plc   *http.Server
	docs  map[syntax.DID][]byte

	consumers []*websocket.Conn
	delivered atomic.Int64
	cancel    context.CancelFunc
	wg        sync.WaitGroup
}

// runLoadSide is the load-side process's main: it generates the workload,
// writes the comparison sample to samplePath and serves commands.
func runLoadSide(w workload, samplePath string, sample int, in io.Reader, out io.Writer) error {
	enc := json.NewEncoder(out)
	ls := &loadSide{w: w, docs: map[syntax.DID][]byte{}}
	defer ls.shutdown()
	start := time.Now()
	if err := ls.generate(); err != nil {
		enc.Encode(reply{Err: err.Error()})
		return err
	}
	if err := ls.writeSample(samplePath, sample); err != nil {
		enc.Encode(reply{Err: err.Error()})
		return err
	}
	plcURL, err := ls.startPLC()
	if err != nil {
		enc.Encode(reply{Err: err.Error()})
		return err
	}
	r := reply{PLC: plcURL, Events: make([]int, numPhases), Generated: time.Since(start).Seconds()}
	for _, h := range ls.hosts {
		r.Hosts = append(r.Hosts, h.name)
		for p := range numPhases {
			r.Events[p] += len(h.load.frames[p])
		}
	}
	if err := ls.release(phaseIngest); err != nil {
		return err
	}
	enc.Encode(r)

	sc := bufio.NewScanner(in)
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) == 0 {
			continue
		}
		if f[0] == "quit" {
			return nil
		}
		r, err := ls.command(f)
		if err != nil {
			r.Err = err.Error()
		}
		if err := enc.Encode(r); err != nil {
			return err
		}
	}
	return sc.Err()
}

func (ls *loadSide) command(f []string) (reply, error) {
	arg := func(i int) (int, error) {
		if len(f) <= i {
			return 0, fmt.Errorf("%s: missing argument", f[0])
		}
		return strconv.Atoi(f[i])
	}
	switch f[0] {
	case "release":
		p, err := arg(1)
		if err != nil || p <= phaseIngest || p >= numPhases {
			return reply{}, fmt.Errorf("release: bad phase %q", strings.Join(f[1:], " "))
		}
		return reply{}, ls.release(p)
	case "consumers":
		n, err := arg(1)
		if err != nil || len(f) < 3 {
			return reply{}, errors.New("consumers: want N URL")
		}
		return reply{}, ls.connect(n, f[2])
	case "delivered":
		return reply{Count: ls.delivered.Load()}, nil
	case "close-consumers":
		ls.closeConsumers()
		return reply{}, nil
	case "idle":
		n, err := arg(1)
		if err != nil {
			return reply{}, err
		}
		var r reply
		for range n {
			h, err := startSimHost(0, ls.w.timeout)
			if err != nil {
				return r, err
			}
			ls.idle = append(ls.idle, h)
			r.Hosts = append(r.Hosts, h.name)
		}
		return r, nil
	case "idle-connected":
		var n int64
		for _, h := range ls.idle {
			n += int64(h.srv.Consumers())
		}
		return reply{Count: n}, nil
	}
	return reply{}, fmt.Errorf("unknown command %q", f[0])
}

// generate starts the hosts (their URLs go into the DID documents) and
// builds every host's events, a host per core at a time.
func (ls *loadSide) generate() error {
	w := ls.w
	var others []syntax.DID
	for h := range w.hosts {
		for a := range w.accountsPerHost {
			others = append(others, plcDID(fmt.Sprintf("%d-h%d-a%d", w.seed, h, a)))
		}
	}
	for range w.hosts {
		// Room for every event of every phase, so that no live
		// subscriber is dropped while the relay catches up.
		per := w.accountsPerHost*(w.events+w.fanoutEvents) + w.tracked/w.hosts + 1
		h, err := startSimHost(per, w.timeout)
		if err != nil {
			return err
		}
		ls.hosts = append(ls.hosts, h)
	}
	sem := make(chan struct{}, runtime.GOMAXPROCS(0))
	errs := make([]error, w.hosts)
	var wg sync.WaitGroup
	for i, h := range ls.hosts {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			h.load, errs[i] = generateHost(context.Background(), w, i, "http://"+h.name, others)
		}()
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return err
	}
	for _, h := range ls.hosts {
		for did, doc := range h.load.docs {
			ls.docs[did] = doc
		}
	}
	return nil
}

// release publishes a phase's events on every host.
func (ls *loadSide) release(phase int) error {
	errs := make([]error, len(ls.hosts))
	var wg sync.WaitGroup
	for i, h := range ls.hosts {
		wg.Go(func() { errs[i] = h.publish(h.load.frames[phase]) })
	}
	wg.Wait()
	return errors.Join(errs...)
}

// startPLC serves the DID documents as a PLC directory does: GET /{did}.
func (ls *loadSide) startPLC() (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /{did}", func(w http.ResponseWriter, r *http.Request) {
		doc, ok := ls.docs[syntax.DID(r.PathValue("did"))]
		if !ok {
			http.Error(w, `{"message":"DID not registered"}`, http.StatusNotFound)
			return
		}
		w.Header().Set("Content-Type", "application/did+ld+json")
		w.Write(doc)
	})
	ls.plc = &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	go ls.plc.Serve(ln)
	return "http://" + ln.Addr().String(), nil
}

// connect dials n live consumers of the relay's stream at url, which count
// the messages they read.
func (ls *loadSide) connect(n int, url string) error {
	ctx, cancel := context.WithCancel(context.Background())
	ls.cancel = cancel
	for range n {
		dctx, dcancel := context.WithTimeout(ctx, 30*time.Second)
		c, _, err := websocket.Dial(dctx, url, nil)
		dcancel()
		if err != nil {
			return fmt.Errorf("consumer: %w", err)
		}
		c.SetReadLimit(stream.MaxFrameSize)
		ls.consumers = append(ls.consumers, c)
		ls.wg.Go(func() {
			for {
				_, r, err := c.Reader(ctx)
				if err != nil {
					return
				}
				if _, err := io.Copy(io.Discard, r); err != nil {
					return
				}
				ls.delivered.Add(1)
			}
		})
	}
	return nil
}

func (ls *loadSide) closeConsumers() {
	if ls.cancel != nil {
		ls.cancel()
	}
	for _, c := range ls.consumers {
		c.CloseNow()
	}
	ls.wg.Wait()
	ls.consumers = nil
}

func (ls *loadSide) shutdown() {
	ls.closeConsumers()
	for _, h := range append(ls.hosts, ls.idle...) {
		h.close()
	}
	if ls.plc != nil {
		ls.plc.Close()
	}
}

// writeSample writes the comparison sample: the first frames of the
// ingest phase of every host, in proportion, and the DID documents of
// their accounts.
func (ls *loadSide) writeSample(path string, n int) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	bw := bufio.NewWriterSize(f, 1<<20)
	per := (n + len(ls.hosts) - 1) / len(ls.hosts)
	var s sample
	s.Docs = map[string]json.RawMessage{}
	for _, h := range ls.hosts {
		frames := h.load.frames[phaseIngest]
		s.Frames = append(s.Frames, frames[:min(per, len(frames))]...)
		s.Hosts = append(s.Hosts, h.load.url)
		s.FrameHost = append(s.FrameHost, repeat(len(s.Hosts)-1, min(per, len(frames)))...)
	}
	for _, f := range s.Frames {
		_, body, err := stream.DecodeFrame(f)
		if err != nil {
			return err
		}
		did, _, _ := stream.BodyString(body, "repo")
		s.Docs[did] = ls.docs[syntax.DID(did)]
	}
	if err := json.NewEncoder(bw).Encode(&s); err != nil {
		f.Close()
		return err
	}
	if err := bw.Flush(); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

func repeat(v, n int) []int {
	out := make([]int, n)
	for i := range out {
		out[i] = v
	}
	return out
}
