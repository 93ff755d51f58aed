package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"runtime"
	"runtime/pprof"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// pollInterval is how often progress is polled.
const pollInterval = 50 * time.Millisecond

// pause waits pollInterval, or returns ctx's error when it ends first.
func pause(ctx context.Context) error {
	t := time.NewTimer(pollInterval)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

func main() {
	if err := run(os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, "relayload:", err)
		os.Exit(1)
	}
}

// options are the command-line settings.
type options struct {
	w          workload
	consumers  int
	idleHosts  int
	compare    int
	rounds     int
	readme     string
	cpuprofile string
	verbose    bool

	// args are the command-line arguments, for the report.
	args []string

	// The load side's own settings (it is this command, run again).
	role   string
	sample string
}

func parseFlags(args []string) (options, error) {
	var o options
	fs := flag.NewFlagSet("relayload", flag.ContinueOnError)
	fs.IntVar(&o.w.hosts, "hosts", 10, "simulated PDS hosts streaming events")
	fs.IntVar(&o.w.accountsPerHost, "accounts", 50, "accounts on each host")
	fs.IntVar(&o.w.records, "records", 300, "records in each account's repository before its events")
	fs.IntVar(&o.w.events, "events", 100, "#commit events of each account in the ingest phase")
	fs.IntVar(&o.w.fanoutEvents, "fanout-events", 10, "#commit events of each account in the fan-out phase")
	fs.IntVar(&o.w.tracked, "tracked", 100_000, "new accounts, one event each, in the tracked-accounts phase")
	fs.Float64Var(&o.w.p256Share, "p256", 0.1, "share of accounts with P-256 keys (the others have K-256)")
	seed := fs.Uint64("seed", 1, "seed of the generated workload")
	fs.IntVar(&o.consumers, "consumers", 100, "consumers of the relay's stream in the fan-out phase")
	fs.IntVar(&o.idleHosts, "idle-hosts", 500, "idle hosts connected in the memory-per-host phase")
	fs.IntVar(&o.compare, "compare", 10_000, "events of the ingest phase run through both verification paths")
	fs.IntVar(&o.rounds, "rounds", 5, "passes of each verification path over those events (the median is kept)")
	fs.StringVar(&o.readme, "readme", "README.md", "file whose relayload section receives the table; empty prints it only")
	fs.StringVar(&o.cpuprofile, "cpuprofile", "", "keep the CPU profiles of the phases (and a heap profile once the idle hosts are connected) in files starting with this prefix")
	fs.DurationVar(&o.w.timeout, "timeout", 10*time.Minute, "longest wait for one phase")
	fs.BoolVar(&o.verbose, "v", false, "log the relay's warnings to stderr")
	fs.StringVar(&o.role, "role", "", "internal: \"load\" runs the load side, \"indigo-hosts\" indigo's per-host connection stack")
	fs.StringVar(&o.sample, "sample", "", "internal: where the load side writes the comparison sample")
	if err := fs.Parse(args); err != nil {
		return o, err
	}
	if fs.NArg() > 0 {
		return o, fmt.Errorf("unexpected argument %q", fs.Arg(0))
	}
	o.w.seed = *seed
	o.args = args
	for _, c := range []struct {
		name string
		v    int
		min  int
	}{
		{"hosts", o.w.hosts, 1}, {"accounts", o.w.accountsPerHost, 1}, {"records", o.w.records, 0},
		{"events", o.w.events, 1}, {"fanout-events", o.w.fanoutEvents, 0}, {"tracked", o.w.tracked, 0},
		{"consumers", o.consumers, 0}, {"idle-hosts", o.idleHosts, 0}, {"compare", o.compare, 0}, {"rounds", o.rounds, 1},
	} {
		if c.v < c.min {
			return o, fmt.Errorf("-%s must be at least %d", c.name, c.min)
		}
	}
	if o.w.p256Share < 0 || o.w.p256Share > 1 {
		return o, errors.New("-p256 must be between 0 and 1")
	}
	switch o.role {
	case "", "indigo-hosts":
	case "load":
		if o.sample == "" {
			return o, errors.New("-role load needs -sample")
		}
	default:
		return o, fmt.Errorf("unknown -role %q", o.role)
	}
	return o, nil
}

// loadArgs are the flags of the load-side process.
func (o options) loadArgs(sample string) []string {
	w := o.w
	return []string{"-role=load", "-sample=" + sample,
		"-hosts=" + strconv.Itoa(w.hosts), "-accounts=" + strconv.Itoa(w.accountsPerHost),
		"-records=" + strconv.Itoa(w.records), "-events=" + strconv.Itoa(w.events),
		"-fanout-events=" + strconv.Itoa(w.fanoutEvents), "-tracked=" + strconv.Itoa(w.tracked),
		"-p256=" + strconv.FormatFloat(w.p256Share, 'g', -1, 64), "-seed=" + strconv.FormatUint(w.seed, 10),
		"-compare=" + strconv.Itoa(o.compare), "-timeout=" + w.timeout.String()}
}

func run(args []string) error {
	o, err := parseFlags(args)
	if err != nil {
		return err
	}
	switch o.role {
	case "load":
		return runLoadSide(o.w, o.sample, o.compare, os.Stdin, os.Stdout)
	case "indigo-hosts":
		return runIndigoHosts(os.Stdin, os.Stdout)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	res, err := measure(ctx, o)
	if err != nil {
		return err
	}
	table := res.markdown(o)
	fmt.Print(table)
	if o.readme != "" {
		return updateReadme(o.readme, table)
	}
	return nil
}

// loadClient drives the load-side process.
type loadClient struct {
	cmd *exec.Cmd
	in  io.WriteCloser
	out *bufio.Reader
}

func startLoadSide(o options, sample string) (*loadClient, error) {
	return startSelf(o.loadArgs(sample)...)
}

// startSelf runs this command again with args, to be driven through its
// stdin and stdout.
func startSelf(args ...string) (*loadClient, error) {
	exe, err := os.Executable()
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(exe, args...)
	cmd.Stderr = os.Stderr
	in, err := cmd.StdinPipe()
	if err != nil {
		return nil, err
	}
	out, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	return &loadClient{cmd: cmd, in: in, out: bufio.NewReader(out)}, nil
}

// read reads the load side's next answer.
func (c *loadClient) read() (reply, error) {
	line, err := c.out.ReadBytes('\n')
	if err != nil {
		return reply{}, fmt.Errorf("load side: %w", err)
	}
	var r reply
	if err := json.Unmarshal(line, &r); err != nil {
		return r, fmt.Errorf("load side said %q: %w", line, err)
	}
	if r.Err != "" {
		return r, fmt.Errorf("load side: %s", r.Err)
	}
	return r, nil
}

// do sends a command and reads its answer.
func (c *loadClient) do(format string, args ...any) (reply, error) {
	if _, err := fmt.Fprintf(c.in, format+"\n", args...); err != nil {
		return reply{}, fmt.Errorf("load side: %w", err)
	}
	return c.read()
}

func (c *loadClient) quit() error {
	fmt.Fprintln(c.in, "quit")
	c.in.Close()
	return c.cmd.Wait()
}

// waitDelivered waits until the consumers have read want messages.
func (c *loadClient) waitDelivered(ctx context.Context, want int64, deadline time.Duration) error {
	end := time.Now().Add(deadline)
	for {
		r, err := c.do("delivered")
		if err != nil {
			return err
		}
		if r.Count >= want {
			return nil
		}
		if time.Now().After(end) {
			return fmt.Errorf("after %s the consumers had %d of %d messages", deadline, r.Count, want)
		}
		if err := pause(ctx); err != nil {
			return err
		}
	}
}

// profiler writes the CPU profile of each phase, from which the phase's
// CPU time is split between the relay's parts (see breakdown).
type profiler struct {
	prefix string
	keep   bool // the profiles were asked for; otherwise heap profiles are not written
	f      *os.File
}

func (p *profiler) path(phase string) string { return p.prefix + "-" + phase + ".pprof" }

func (p *profiler) start(phase string) error {
	f, err := os.Create(p.path(phase))
	if err != nil {
		return err
	}
	p.f = f
	return pprof.StartCPUProfile(f)
}

// heap writes a heap profile, when profiling is on.
func (p *profiler) heap(phase string) error {
	if !p.keep {
		return nil
	}
	f, err := os.Create(p.prefix + "-" + phase + ".heap.pprof")
	if err != nil {
		return err
	}
	if err := pprof.Lookup("heap").WriteTo(f, 0); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

func (p *profiler) stop() {
	if p.f != nil {
		pprof.StopCPUProfile()
		p.f.Close()
		p.f = nil
	}
}

// measure runs every phase and returns the figures.
func measure(ctx context.Context, o options) (*results, error) {
	work, err := os.MkdirTemp("", "relayload-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(work)
	res := &results{cpus: runtime.GOMAXPROCS(0), started: time.Now()}

	fmt.Fprintf(os.Stderr, "relayload: generating %d hosts x %d accounts x %d events (+%d for the fan-out, %d new accounts)...\n",
		o.w.hosts, o.w.accountsPerHost, o.w.events, o.w.fanoutEvents, o.w.tracked)
	samplePath := filepath.Join(work, "sample.json")
	load, err := startLoadSide(o, samplePath)
	if err != nil {
		return nil, err
	}
	defer load.quit()
	first, err := load.read()
	if err != nil {
		return nil, err
	}
	res.events = first.Events
	res.generated = time.Duration(first.Generated * float64(time.Second))

	logger := slog.New(slog.NewTextHandler(io.Discard, nil))
	if o.verbose {
		logger = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	}
	prof := &profiler{prefix: o.cpuprofile, keep: o.cpuprofile != ""}
	if !prof.keep {
		prof.prefix = filepath.Join(work, "cpu")
	}
	defer prof.stop()

	// Ingest: the relay starts with every host's events waiting.
	fmt.Fprintf(os.Stderr, "relayload: ingesting %d events from %d hosts...\n", first.Events[phaseIngest], len(first.Hosts))
	if err := prof.start("ingest"); err != nil {
		return nil, err
	}
	m := startMeter()
	r, err := startRelay(filepath.Join(work, "relay"), first.PLC, first.Hosts, logger)
	if err != nil {
		return nil, err
	}
	defer r.stop()
	handled := int64(first.Events[phaseIngest])
	c, err := r.waitHandled(ctx, handled, o.w.timeout)
	res.ingest = m.stop()
	prof.stop()
	if err != nil {
		return nil, err
	}
	if res.ingestParts, err = readBreakdown(prof.path("ingest")); err != nil {
		return nil, err
	}
	if err := noRejects(c); err != nil {
		return nil, err
	}

	// Fan-out: live consumers, then the next events.
	if o.consumers > 0 && o.w.fanoutEvents > 0 {
		fmt.Fprintf(os.Stderr, "relayload: fanning out %d events to %d consumers...\n", first.Events[phaseFanout], o.consumers)
		if _, err := load.do("consumers %d %s", o.consumers, r.streamURL()); err != nil {
			return nil, err
		}
		if err := prof.start("fanout"); err != nil {
			return nil, err
		}
		m := startMeter()
		if _, err := load.do("release %d", phaseFanout); err != nil {
			return nil, err
		}
		handled += int64(first.Events[phaseFanout])
		res.delivered = int64(o.consumers) * int64(first.Events[phaseFanout])
		if err := load.waitDelivered(ctx, res.delivered, o.w.timeout); err != nil {
			return nil, err
		}
		res.fanout = m.stop()
		prof.stop()
		if res.fanoutParts, err = readBreakdown(prof.path("fanout")); err != nil {
			return nil, err
		}
		res.consumers = o.consumers
		if _, err := load.do("close-consumers"); err != nil {
			return nil, err
		}
	}

	// Memory per connected host.
	if o.idleHosts > 0 {
		fmt.Fprintf(os.Stderr, "relayload: connecting %d idle hosts...\n", o.idleHosts)
		before, err := measureMemory()
		if err != nil {
			return nil, err
		}
		idle, err := load.do("idle %d", o.idleHosts)
		if err != nil {
			return nil, err
		}
		for _, h := range idle.Hosts {
			if err := r.addHost(h); err != nil {
				return nil, err
			}
		}
		end := time.Now().Add(o.w.timeout)
		for {
			n, err := load.do("idle-connected")
			if err != nil {
				return nil, err
			}
			if n.Count >= int64(o.idleHosts) {
				break
			}
			if time.Now().After(end) {
				return nil, fmt.Errorf("only %d of %d idle hosts connected", n.Count, o.idleHosts)
			}
			if err := pause(ctx); err != nil {
				return nil, err
			}
		}
		after, err := measureMemory()
		if err != nil {
			return nil, err
		}
		if err := prof.heap("idle-hosts"); err != nil {
			return nil, err
		}
		res.idleHosts = o.idleHosts
		res.perHost = perItem(before, after, o.idleHosts)
		if res.indigoPerHost, err = indigoHostMemory(ctx, load, idle.Hosts, o.w.timeout); err != nil {
			return nil, err
		}
	}

	// Memory per tracked account.
	if o.w.tracked > 0 {
		fmt.Fprintf(os.Stderr, "relayload: %d new accounts...\n", first.Events[phaseTracked])
		before, err := measureMemory()
		if err != nil {
			return nil, err
		}
		if err := prof.start("tracked"); err != nil {
			return nil, err
		}
		m := startMeter()
		if _, err := load.do("release %d", phaseTracked); err != nil {
			return nil, err
		}
		handled += int64(first.Events[phaseTracked])
		c, err := r.waitHandled(ctx, handled, o.w.timeout)
		res.trackedIngest = m.stop()
		prof.stop()
		if err != nil {
			return nil, err
		}
		if res.trackedParts, err = readBreakdown(prof.path("tracked")); err != nil {
			return nil, err
		}
		if err := noRejects(c); err != nil {
			return nil, err
		}
		after, err := measureMemory()
		if err != nil {
			return nil, err
		}
		res.tracked = first.Events[phaseTracked]
		res.perAccount = perItem(before, after, res.tracked)
	}
	if err := r.stop(); err != nil {
		return nil, err
	}

	// Verification alone, both implementations, on the same events.
	if o.compare > 0 {
		fmt.Fprintf(os.Stderr, "relayload: verifying %d events with Welkin and with indigo, %d rounds...\n", o.compare, o.rounds)
		s, err := readSample(samplePath)
		if err != nil {
			return nil, err
		}
		profile := ""
		if o.cpuprofile != "" {
			profile = o.cpuprofile + "-verify.pprof"
		}
		cmp, err := compareVerifiers(s, o.rounds, profile)
		if err != nil {
			return nil, err
		}
		res.compare = &cmp
	}
	return res, nil
}

// noRejects fails when the relay rejected any of the generated events,
// which are all valid.
func noRejects(c eventCounts) error {
	if c.rejected == 0 {
		return nil
	}
	return fmt.Errorf("the relay rejected %d valid events: %v", c.rejected, c.reasons)
}

// perItem divides the growth of memory by n.
func perItem(before, after memory, n int) memory {
	return memory{
		rss:   (after.rss - before.rss) / int64(n),
		heap:  (after.heap - before.heap) / int64(n),
		stack: (after.stack - before.stack) / int64(n),
	}
}

// indigoHostMemory connects indigo's per-host stack, in a process of its
// own, to the idle hosts, and returns its memory growth per host.
func indigoHostMemory(ctx context.Context, load *loadClient, hosts []string, timeout time.Duration) (*memory, error) {
	fmt.Fprintf(os.Stderr, "relayload: connecting indigo's per-host stack to the %d idle hosts...\n", len(hosts))
	ind, err := startSelf("-role=indigo-hosts")
	if err != nil {
		return nil, err
	}
	defer ind.quit()
	if _, err := ind.do("connect %s", strings.Join(hosts, " ")); err != nil {
		return nil, err
	}
	// The hosts count the Welkin relay's connections and indigo's.
	end := time.Now().Add(timeout)
	for {
		n, err := load.do("idle-connected")
		if err != nil {
			return nil, err
		}
		if n.Count >= 2*int64(len(hosts)) {
			break
		}
		if time.Now().After(end) {
			return nil, fmt.Errorf("only %d of %d connections to the idle hosts", n.Count, 2*len(hosts))
		}
		if err := pause(ctx); err != nil {
			return nil, err
		}
	}
	r, err := ind.do("measure")
	if err != nil {
		return nil, err
	}
	if r.Memory == nil {
		return nil, errors.New("indigo side: no memory figures")
	}
	return &memory{rss: r.Memory.RSS, heap: r.Memory.Heap, stack: r.Memory.Stack}, nil
}
