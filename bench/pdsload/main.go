package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"math"
	"net"
	"net/http"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"runtime"
	"runtime/pprof"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/welkin-atproto/welkin/bench/internal/procmem"
)

// Markers around the generated section of the README.
const (
	beginMark = "<!-- pdsload:begin -->"
	endMark   = "<!-- pdsload:end -->"
)

// Bounds on waits. They are deadlines, not measurements.
const (
	buildTimeout   = 5 * time.Minute
	installTimeout = 10 * time.Minute // start.sh installs the stack on first use
	startTimeout   = 2 * time.Minute
	stopTimeout    = 15 * time.Second
	requestTimeout = 60 * time.Second
	// restWindow bounds the wait for the resident set to settle.
	restWindow = 20 * time.Second
)

// signupClients create the accounts concurrently.
const signupClients = 8

// loadPassword is every account's password.
const loadPassword = "load-test-password"

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "pdsload:", err)
		os.Exit(1)
	}
}

// options are the command-line settings.
type options struct {
	duration time.Duration
	accounts int
	clients  []int
	readme   string
	welkin   string
	refDir   string
	only     string
	idle     time.Duration
	rest     time.Duration
	cpuprof  string
	window   time.Duration
}

func parseFlags(args []string) (options, error) {
	var o options
	fs := flag.NewFlagSet("pdsload", flag.ContinueOnError)
	fs.DurationVar(&o.duration, "duration", 30*time.Second, "how long each concurrency step writes, warm-up not counted")
	fs.IntVar(&o.accounts, "accounts", 1000, "accounts created on each PDS (at least the largest -clients)")
	clients := fs.String("clients", "1,16,64", "comma-separated numbers of concurrent clients, one account each")
	fs.StringVar(&o.readme, "readme", "README.md", "file whose pdsload section receives the table; empty prints it only")
	fs.StringVar(&o.welkin, "welkin", "", "prebuilt welkin binary (default: go build ../cmd/welkin)")
	fs.StringVar(&o.refDir, "reference", filepath.Join("..", "..", "shared", "reference-stack"), "directory of the reference stack (start.sh)")
	fs.DurationVar(&o.rest, "rest", 90*time.Second, "after the sign-ups, how long both servers sit without requests before their memory at rest is read")
	fs.DurationVar(&o.idle, "idle", 90*time.Second, "after the load, how long both servers sit idle before their memory is read again (0: not measured)")
	fs.StringVar(&o.cpuprof, "cpuprofile", "", "write the load generator's own CPU profile to this file")
	fs.DurationVar(&o.window, "window", 0, "also print each step's rate and latency per window of this length (0: not printed)")
	fs.StringVar(&o.only, "only", "", `measure only "welkin" or "reference" (the README is then left alone)`)
	if err := fs.Parse(args); err != nil {
		return o, err
	}
	if fs.NArg() > 0 {
		return o, fmt.Errorf("unexpected argument %q", fs.Arg(0))
	}
	var err error
	if o.clients, err = parseClients(*clients); err != nil {
		return o, err
	}
	if o.duration <= 0 {
		return o, errors.New("-duration must be positive")
	}
	if o.window < 0 {
		return o, errors.New("-window must not be negative")
	}
	if o.accounts < slices.Max(o.clients) {
		return o, fmt.Errorf("-accounts %d is fewer than the %d clients of the largest step", o.accounts, slices.Max(o.clients))
	}
	switch o.only {
	case "", "welkin", "reference":
	default:
		return o, fmt.Errorf(`-only %q: want "welkin" or "reference"`, o.only)
	}
	return o, nil
}

// parseClients reads a list such as "1,16,64".
func parseClients(s string) ([]int, error) {
	var out []int
	for f := range strings.SplitSeq(s, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || n < 1 {
			return nil, fmt.Errorf("-clients: %q is not a positive number", f)
		}
		out = append(out, n)
	}
	if len(out) == 0 {
		return nil, errors.New("-clients is empty")
	}
	return out, nil
}

func run() error {
	o, err := parseFlags(os.Args[1:])
	if err != nil {
		return err
	}
	if o.cpuprof != "" {
		f, err := os.Create(o.cpuprof)
		if err != nil {
			return err
		}
		if err := pprof.StartCPUProfile(f); err != nil {
			f.Close()
			return err
		}
		defer func() {
			pprof.StopCPUProfile()
			f.Close()
		}()
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	work, err := os.MkdirTemp("", "pdsload-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(work)

	var servers []*server
	defer func() {
		for _, srv := range servers {
			srv.stop()
		}
	}()
	if o.only != "reference" {
		bin := o.welkin
		if bin == "" {
			if bin, err = buildWelkin(ctx, work); err != nil {
				return err
			}
		}
		srv, err := startWelkin(ctx, bin, filepath.Join(work, "welkin-data"))
		if err != nil {
			return err
		}
		servers = append(servers, srv)
	}
	if o.only != "welkin" {
		srv, err := startReference(ctx, o.refDir, filepath.Join(work, "reference-data"))
		if err != nil {
			return err
		}
		servers = append(servers, srv)
	}
	results, err := measure(ctx, servers, o)
	if err != nil {
		return err
	}

	table := render(results, o, machine(), referenceVersion(o.refDir))
	fmt.Print(table)
	if o.readme != "" && o.only == "" {
		return replaceSection(o.readme, table)
	}
	return nil
}

// server is a PDS under test.
type server struct {
	name string
	url  string // base URL for requests
	pid  int    // the process whose memory is read
	stop func()
	logs func() string
}

// buildWelkin builds ../cmd/welkin into dir.
func buildWelkin(ctx context.Context, dir string) (string, error) {
	bin := filepath.Join(dir, "welkin")
	ctx, cancel := context.WithTimeout(ctx, buildTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, "go", "build", "-o", bin, "./cmd/welkin")
	// Built in the main module's directory, so its go.mod decides.
	cmd.Dir = ".."
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("building welkin (run from bench/): %v\n%s", err, out)
	}
	return bin, nil
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// subprocess is a child process with its output in a file.
type subprocess struct {
	cmd    *exec.Cmd
	log    string
	exited chan struct{}
}

func spawn(bin string, args []string, logPath string) (*subprocess, error) {
	f, err := os.Create(logPath)
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(bin, args...)
	cmd.Stdout = f
	cmd.Stderr = f
	if err := cmd.Start(); err != nil {
		f.Close()
		return nil, err
	}
	p := &subprocess{cmd: cmd, log: logPath, exited: make(chan struct{})}
	go func() {
		cmd.Wait()
		f.Close()
		close(p.exited)
	}()
	return p, nil
}

func (p *subprocess) alive() error {
	select {
	case <-p.exited:
		return fmt.Errorf("%s exited: %v", filepath.Base(p.cmd.Path), p.cmd.ProcessState)
	default:
		return nil
	}
}

// stop asks the process to end and kills it if it does not in time.
func (p *subprocess) stop() {
	p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.exited:
	case <-time.After(stopTimeout):
		p.cmd.Process.Kill()
		<-p.exited
	}
}

// startWelkin runs "welkin plc" and "welkin pds" with their data in dir.
func startWelkin(ctx context.Context, bin, dir string) (*server, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	plcPort, err := freePort()
	if err != nil {
		return nil, err
	}
	plcProc, err := spawn(bin, []string{"plc", "--host", "127.0.0.1", "--port", strconv.Itoa(plcPort),
		"--data-dir", filepath.Join(dir, "plc")}, filepath.Join(dir, "plc.log"))
	if err != nil {
		return nil, err
	}
	plcURL := "http://127.0.0.1:" + strconv.Itoa(plcPort)
	if err := waitHealthy(ctx, plcURL+"/_health", plcProc.alive); err != nil {
		plcProc.stop()
		return nil, fmt.Errorf("welkin plc: %w\n%s", err, tailFile(plcProc.log))
	}
	pdsPort, err := freePort()
	if err != nil {
		plcProc.stop()
		return nil, err
	}
	pdsProc, err := spawn(bin, []string{"pds", "--hostname", "localhost", "--host", "127.0.0.1",
		"--port", strconv.Itoa(pdsPort), "--data-dir", filepath.Join(dir, "pds"), "--plc-url", plcURL,
		"--handle-domains", ".test", "--allow-private-networks"}, filepath.Join(dir, "pds.log"))
	if err != nil {
		plcProc.stop()
		return nil, err
	}
	url := "http://127.0.0.1:" + strconv.Itoa(pdsPort)
	if err := waitHealthy(ctx, url+"/xrpc/_health", pdsProc.alive); err != nil {
		pdsProc.stop()
		plcProc.stop()
		return nil, fmt.Errorf("welkin pds: %w\n%s", err, tailFile(pdsProc.log))
	}
	return &server{
		name: "welkin",
		url:  url,
		pid:  pdsProc.cmd.Process.Pid,
		stop: func() { pdsProc.stop(); plcProc.stop() },
		logs: func() string { return tailFile(pdsProc.log) },
	}, nil
}

// startReference runs the reference stack's start.sh with its data in
// dir; the processes it starts are stopped by the pids it writes.
func startReference(ctx context.Context, stackDir, dir string) (*server, error) {
	script, err := filepath.Abs(filepath.Join(stackDir, "start.sh"))
	if err != nil {
		return nil, err
	}
	if _, err := os.Stat(script); err != nil {
		return nil, fmt.Errorf("the reference stack is not at %s (set -reference, or -only welkin): %w", stackDir, err)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	plcPort, err := freePort()
	if err != nil {
		return nil, err
	}
	pdsPort, err := freePort()
	if err != nil {
		return nil, err
	}
	ictx, cancel := context.WithTimeout(ctx, installTimeout)
	defer cancel()
	out, err := exec.CommandContext(ictx, script, strconv.Itoa(plcPort), strconv.Itoa(pdsPort), dir).CombinedOutput()
	pids, perr := readPids(filepath.Join(dir, "pids"))
	stop := func() { stopPids(pids) }
	if err != nil {
		stop()
		return nil, fmt.Errorf("reference start.sh: %v\n%s", err, out)
	}
	if perr != nil || len(pids) != 2 {
		stop()
		return nil, fmt.Errorf("reference start.sh: pids file: %v %v", perr, pids)
	}
	alive := func() error {
		for _, pid := range pids {
			if processGone(pid) {
				return fmt.Errorf("reference process %d exited", pid)
			}
		}
		return nil
	}
	url := "http://127.0.0.1:" + strconv.Itoa(pdsPort)
	for _, u := range []string{"http://127.0.0.1:" + strconv.Itoa(plcPort) + "/_health", url + "/xrpc/_health"} {
		if err := waitHealthy(ctx, u, alive); err != nil {
			stop()
			return nil, fmt.Errorf("reference stack: %w\n%s", err, tailFile(filepath.Join(dir, "pds.log")))
		}
	}
	return &server{
		name: "reference",
		url:  url,
		pid:  pids[1], // start.sh starts the PLC directory first, then the PDS
		stop: stop,
		logs: func() string { return tailFile(filepath.Join(dir, "pds.log")) },
	}, nil
}

func readPids(path string) ([]int, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var pids []int
	for _, f := range strings.Fields(string(raw)) {
		pid, err := strconv.Atoi(f)
		if err != nil || pid <= 1 {
			return nil, fmt.Errorf("bad pid %q", f)
		}
		pids = append(pids, pid)
	}
	return pids, nil
}

// stopPids ends processes that start.sh started. They are not this
// process's children, so their exit is polled: SIGTERM, a bounded wait,
// then SIGKILL and another.
func stopPids(pids []int) {
	for _, sig := range []syscall.Signal{syscall.SIGTERM, syscall.SIGKILL} {
		for _, pid := range pids {
			if !processGone(pid) {
				syscall.Kill(pid, sig)
			}
		}
		deadline := time.Now().Add(stopTimeout)
		for slices.ContainsFunc(pids, func(pid int) bool { return !processGone(pid) }) && time.Now().Before(deadline) {
			time.Sleep(50 * time.Millisecond)
		}
	}
}

// processGone reports whether pid has exited; a zombie counts as gone.
func processGone(pid int) bool {
	if syscall.Kill(pid, 0) != nil {
		return true
	}
	stat, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return errors.Is(err, os.ErrNotExist)
	}
	// The state follows the command name, which is in parentheses.
	i := bytes.LastIndexByte(stat, ')')
	return i >= 0 && i+2 < len(stat) && stat[i+2] == 'Z'
}

// waitHealthy polls u until it answers 200.
func waitHealthy(ctx context.Context, u string, alive func() error) error {
	client := &http.Client{Timeout: 2 * time.Second}
	deadline := time.Now().Add(startTimeout)
	for {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
		if err != nil {
			return err
		}
		resp, err := client.Do(req)
		if err == nil {
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
			err = fmt.Errorf("%s: %s", u, resp.Status)
		}
		if aerr := alive(); aerr != nil {
			return aerr
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s did not answer within %s: %v", u, startTimeout, err)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
	}
}

func tailFile(path string) string {
	raw, _ := os.ReadFile(path)
	if len(raw) > 4000 {
		raw = raw[len(raw)-4000:]
	}
	return string(raw)
}

// result is what was measured of one PDS.
type result struct {
	name        string
	accounts    int
	signup      time.Duration
	rssSignup   int64 // bytes, at rest after the sign-ups
	rssLoad     int64 // bytes, at rest after the load
	rssIdle     int64 // bytes, after -idle with no requests
	steps       []stepResult
	signupError string
}

// stepResult is one concurrency level.
type stepResult struct {
	clients  int
	ok       int
	failed   int
	elapsed  time.Duration
	p50, p99 time.Duration
	firstErr string
	// lat holds each client's latencies, and started when each of those
	// requests began, measured from the end of the warm-up.
	lat, started [][]time.Duration
}

func (s stepResult) perSecond() float64 { return float64(s.ok) / s.elapsed.Seconds() }

// windows describes the step in consecutive windows of length w, by the
// time each request started: how many succeeded per second, and their
// median and 99th percentile.
func (s stepResult) windows(w time.Duration) string {
	if w <= 0 {
		return ""
	}
	k := int((s.elapsed + w - 1) / w)
	per := make([][]time.Duration, k)
	for c := range s.lat {
		for i, l := range s.lat[c] {
			j := min(int(s.started[c][i]/w), k-1)
			per[j] = append(per[j], l)
		}
	}
	var b strings.Builder
	for j, d := range per {
		span := min(w, s.elapsed-time.Duration(j)*w)
		fmt.Fprintf(&b, "  %6s-%-6s %7.0f/s  p50 %5.1f ms  p99 %5.1f ms\n",
			time.Duration(j)*w, time.Duration(j)*w+span, float64(len(d))/span.Seconds(),
			msOf(percentile(d, 0.50)), msOf(percentile(d, 0.99)))
	}
	return b.String()
}

// account is one signed-up account.
type account struct {
	did   string
	token string
}

// client makes the XRPC calls; one keep-alive connection per concurrent
// client.
type client struct {
	base string
	http *http.Client
}

func newClient(base string, conns int) *client {
	tr := &http.Transport{
		MaxIdleConns:        conns * 2,
		MaxIdleConnsPerHost: conns * 2,
		IdleConnTimeout:     time.Minute,
	}
	return &client{base: base, http: &http.Client{Transport: tr, Timeout: requestTimeout}}
}

// xrpcError is a non-200 answer.
type xrpcError struct {
	status int
	body   string
}

func (e *xrpcError) Error() string { return fmt.Sprintf("%d %s", e.status, e.body) }

func (c *client) procedure(ctx context.Context, nsid, token string, in, out any) error {
	body, err := json.Marshal(in)
	if err != nil {
		return err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.base+"/xrpc/"+nsid, bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return err
	}
	if resp.StatusCode != http.StatusOK {
		if len(raw) > 300 {
			raw = raw[:300]
		}
		return &xrpcError{status: resp.StatusCode, body: string(raw)}
	}
	if out == nil {
		return nil
	}
	return json.Unmarshal(raw, out)
}

// signUp creates the n accounts numbered from "from" on, with
// signupClients concurrent clients.
func signUp(ctx context.Context, c *client, from, n int) ([]account, time.Duration, error) {
	accounts := make([]account, n)
	next := make(chan int)
	var (
		wg       sync.WaitGroup
		mu       sync.Mutex
		firstErr error
	)
	start := time.Now()
	for range signupClients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range next {
				var out struct {
					DID       string `json:"did"`
					AccessJwt string `json:"accessJwt"`
				}
				err := c.procedure(ctx, "com.atproto.server.createAccount", "", map[string]string{
					"handle":   fmt.Sprintf("load%05d.test", from+i),
					"email":    fmt.Sprintf("load%05d@example.com", from+i),
					"password": loadPassword,
				}, &out)
				if err == nil && (out.DID == "" || out.AccessJwt == "") {
					err = errors.New("createAccount answered without a DID or token")
				}
				if err != nil {
					mu.Lock()
					if firstErr == nil {
						firstErr = fmt.Errorf("createAccount %d: %w", from+i, err)
					}
					mu.Unlock()
					continue
				}
				accounts[i] = account{did: out.DID, token: out.AccessJwt}
			}
		}()
	}
	for i := range n {
		mu.Lock()
		failed := firstErr != nil
		mu.Unlock()
		if failed || ctx.Err() != nil {
			break
		}
		next <- i
	}
	close(next)
	wg.Wait()
	if firstErr == nil {
		firstErr = ctx.Err()
	}
	return accounts, time.Since(start), firstErr
}

// warmUp is the part of each step that is not counted.
func warmUp(d time.Duration) time.Duration {
	return min(d/10, 3*time.Second)
}

// loadStep has each of the first n accounts write posts back to back.
func loadStep(ctx context.Context, c *client, accounts []account, n int, d time.Duration) stepResult {
	warm := warmUp(d)
	begin := time.Now().Add(warm)
	end := begin.Add(d)
	lat := make([][]time.Duration, n)
	started := make([][]time.Duration, n) // since begin, beside lat
	failed := make([]int, n)
	errs := make([]string, n)
	var wg sync.WaitGroup
	for w := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			acct := accounts[w]
			for i := 0; ; i++ {
				t0 := time.Now()
				if !t0.Before(end) || ctx.Err() != nil {
					return
				}
				err := c.procedure(ctx, "com.atproto.repo.createRecord", acct.token, map[string]any{
					"repo":       acct.did,
					"collection": "app.bsky.feed.post",
					"record": map[string]any{
						"$type":     "app.bsky.feed.post",
						"text":      fmt.Sprintf("load post %d from client %d", i, w),
						"createdAt": t0.UTC().Format("2006-01-02T15:04:05.000Z"),
					},
				}, nil)
				t1 := time.Now()
				if t0.Before(begin) || t1.After(end) {
					continue // warm-up, or finished after the step
				}
				if err != nil {
					failed[w]++
					if errs[w] == "" {
						errs[w] = err.Error()
					}
					continue
				}
				lat[w] = append(lat[w], t1.Sub(t0))
				started[w] = append(started[w], t0.Sub(begin))
			}
		}()
	}
	wg.Wait()
	r := stepResult{clients: n, elapsed: d, lat: lat, started: started}
	var all []time.Duration
	for w := range n {
		all = append(all, lat[w]...)
		r.failed += failed[w]
		if r.firstErr == "" {
			r.firstErr = errs[w]
		}
	}
	r.ok = len(all)
	r.p50, r.p99 = percentile(all, 0.50), percentile(all, 0.99)
	return r
}

// percentile returns the p-quantile of d (nearest rank), 0 when empty.
// It sorts d.
func percentile(d []time.Duration, p float64) time.Duration {
	if len(d) == 0 {
		return 0
	}
	slices.Sort(d)
	i := int(math.Ceil(p*float64(len(d)))) - 1
	return d[max(0, min(i, len(d)-1))]
}

// signupRound is how many accounts one server signs up before the other
// takes its turn.
const signupRound = 100

// measure signs up the accounts, reads the memory at rest and runs the
// load steps. The servers take turns, phase by phase (sign-ups in rounds
// of signupRound), so that a change in the machine's other load while the
// figures are taken falls on both alike; the idle one waits at rest.
func measure(ctx context.Context, servers []*server, o options) ([]*result, error) {
	results := make([]*result, len(servers))
	clients := make([]*client, len(servers))
	accounts := make([][]account, len(servers))
	for i, srv := range servers {
		results[i] = &result{name: srv.name, accounts: o.accounts}
		clients[i] = newClient(srv.url, max(slices.Max(o.clients), signupClients))
	}
	for from := 0; from < o.accounts; from += signupRound {
		n := min(signupRound, o.accounts-from)
		for i, srv := range servers {
			fmt.Fprintf(os.Stderr, "pdsload: %s: creating accounts %d to %d\n", srv.name, from, from+n-1)
			got, took, err := signUp(ctx, clients[i], from, n)
			if err != nil {
				return nil, fmt.Errorf("%s: sign-up: %w\n%s", srv.name, err, srv.logs())
			}
			results[i].signup += took
			accounts[i] = append(accounts[i], got...)
		}
	}
	// At rest means without requests for a while: a server's resting
	// size is what it holds once its caches and pools have had the
	// chance to let go, not the peak the sign-ups left behind.
	if err := pause(ctx, "at rest after the sign-ups", o.rest); err != nil {
		return nil, err
	}
	var err error
	for i, srv := range servers {
		if results[i].rssSignup, err = restingRSS(ctx, srv.pid); err != nil {
			return nil, fmt.Errorf("%s: %w", srv.name, err)
		}
	}
	for _, n := range o.clients {
		for i, srv := range servers {
			fmt.Fprintf(os.Stderr, "pdsload: %s: %d clients for %s\n", srv.name, n, o.duration)
			s := loadStep(ctx, clients[i], accounts[i], n, o.duration)
			fmt.Fprint(os.Stderr, s.windows(o.window))
			if ctx.Err() != nil {
				return nil, ctx.Err()
			}
			if s.ok == 0 {
				return nil, fmt.Errorf("%s: %d clients: no write succeeded (%d failed: %s)\n%s",
					srv.name, n, s.failed, s.firstErr, srv.logs())
			}
			results[i].steps = append(results[i].steps, s)
		}
	}
	for i, srv := range servers {
		if results[i].rssLoad, err = restingRSS(ctx, srv.pid); err != nil {
			return nil, fmt.Errorf("%s: %w", srv.name, err)
		}
	}
	if o.idle > 0 {
		// Both servers sit idle for the same time: what a server costs
		// when nobody is using it, after its caches and pools have had
		// the chance to let go.
		if err := pause(ctx, "idle after the load", o.idle); err != nil {
			return nil, err
		}
		for i, srv := range servers {
			if results[i].rssIdle, err = restingRSS(ctx, srv.pid); err != nil {
				return nil, fmt.Errorf("%s: %w", srv.name, err)
			}
		}
	}
	return results, nil
}

// pause lets both servers sit without requests for d.
func pause(ctx context.Context, what string, d time.Duration) error {
	if d <= 0 {
		return nil
	}
	fmt.Fprintf(os.Stderr, "pdsload: both %s for %s\n", what, d)
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-time.After(d):
		return nil
	}
}

// restingRSS reads the process's resident set until it stops moving
// (three readings half a second apart within 1% of each other) or
// restWindow passes, and returns the last reading.
func restingRSS(ctx context.Context, pid int) (int64, error) {
	deadline := time.Now().Add(restWindow)
	var prev int64
	steady := 0
	for {
		rss, err := procmem.RSS(pid)
		if err != nil {
			return 0, err
		}
		if prev > 0 && math.Abs(float64(rss-prev)) <= 0.01*float64(prev) {
			steady++
		} else {
			steady = 0
		}
		prev = rss
		if steady >= 2 || time.Now().After(deadline) {
			return rss, nil
		}
		select {
		case <-ctx.Done():
			return 0, ctx.Err()
		case <-time.After(500 * time.Millisecond):
		}
	}
}

// machine describes where the figures were taken.
func machine() string {
	cpu := "unknown CPU"
	if raw, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for line := range strings.SplitSeq(string(raw), "\n") {
			if k, v, ok := strings.Cut(line, ":"); ok && strings.TrimSpace(k) == "model name" {
				cpu = strings.TrimSpace(v)
				break
			}
		}
	}
	return fmt.Sprintf("%s, %d cores, %s/%s", cpu, runtime.NumCPU(), runtime.GOOS, runtime.GOARCH)
}

// referenceVersion is the version of @atproto/pds in the stack.
func referenceVersion(dir string) string {
	raw, err := os.ReadFile(filepath.Join(dir, "node_modules", "@atproto", "pds", "package.json"))
	if err != nil {
		return "unknown version"
	}
	var p struct {
		Version string `json:"version"`
	}
	if json.Unmarshal(raw, &p) != nil || p.Version == "" {
		return "unknown version"
	}
	return p.Version
}

// render writes the markdown table: one row per measure, a column per
// PDS, and Welkin's advantage (above 1: Welkin does better).
func render(results []*result, o options, machine, refVersion string) string {
	var b strings.Builder
	names := make([]string, len(results))
	for i, r := range results {
		names[i] = r.name
	}
	fmt.Fprintf(&b, "Measured %s on %s with `go run ./pdsload -duration %s -accounts %d -clients %s -rest %s -idle %s`; "+
		"reference: @atproto/pds %s. Load generator and server share the machine; each step writes for %s after %s of warm-up.\n\n",
		time.Now().UTC().Format("2006-01-02"), machine, o.duration, o.accounts, joinInts(o.clients), o.rest, o.idle,
		refVersion, o.duration, warmUp(o.duration))
	fmt.Fprintf(&b, "| measure | %s |", strings.Join(names, " | "))
	both := len(results) == 2
	if both {
		b.WriteString(" Welkin's advantage |")
	}
	b.WriteString("\n|---|")
	for range results {
		b.WriteString("---:|")
	}
	if both {
		b.WriteString("---:|")
	}
	b.WriteString("\n")

	row := func(label string, val func(*result) float64, format func(float64) string, higherBetter bool) {
		fmt.Fprintf(&b, "| %s |", label)
		vals := make([]float64, len(results))
		for i, r := range results {
			vals[i] = val(r)
			fmt.Fprintf(&b, " %s |", format(vals[i]))
		}
		if both {
			ratio := vals[1] / vals[0]
			if higherBetter {
				ratio = vals[0] / vals[1]
			}
			if math.IsInf(ratio, 0) || math.IsNaN(ratio) {
				b.WriteString(" - |")
			} else {
				fmt.Fprintf(&b, " %.2f |", ratio)
			}
		}
		b.WriteString("\n")
	}
	perSec := func(v float64) string { return fmt.Sprintf("%.0f/s", v) }
	ms := func(v float64) string { return fmt.Sprintf("%.1f ms", v) }
	mb := func(v float64) string { return fmt.Sprintf("%.0f MB", v) }

	row(fmt.Sprintf("createAccount, %d clients", signupClients), func(r *result) float64 {
		return float64(r.accounts) / r.signup.Seconds()
	}, perSec, true)
	for i, n := range o.clients {
		step := func(r *result) stepResult { return r.steps[i] }
		label := fmt.Sprintf("createRecord, %d client", n)
		if n > 1 {
			label += "s"
		}
		row(label+": writes", func(r *result) float64 { return step(r).perSecond() }, perSec, true)
		row(label+": p50 latency", func(r *result) float64 { return msOf(step(r).p50) }, ms, false)
		row(label+": p99 latency", func(r *result) float64 { return msOf(step(r).p99) }, ms, false)
	}
	row(fmt.Sprintf("resident memory at rest, %d accounts, %s after the sign-ups", o.accounts, o.rest), func(r *result) float64 {
		return float64(r.rssSignup) / (1 << 20)
	}, mb, false)
	row("resident memory at rest, after the load", func(r *result) float64 {
		return float64(r.rssLoad) / (1 << 20)
	}, mb, false)
	if o.idle > 0 {
		row(fmt.Sprintf("resident memory idle, %s after the load", o.idle), func(r *result) float64 {
			return float64(r.rssIdle) / (1 << 20)
		}, mb, false)
	}

	var failures []string
	for _, r := range results {
		for _, s := range r.steps {
			if s.failed > 0 {
				failures = append(failures, fmt.Sprintf("%s, %d clients: %d writes failed (first: %s)", r.name, s.clients, s.failed, s.firstErr))
			}
		}
	}
	if len(failures) > 0 {
		b.WriteString("\nFailed writes (not counted above): " + strings.Join(failures, "; ") + ".\n")
	}
	return b.String()
}

func msOf(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

func joinInts(v []int) string {
	s := make([]string, len(v))
	for i, n := range v {
		s[i] = strconv.Itoa(n)
	}
	return strings.Join(s, ",")
}

// replaceSection puts table between the markers of path.
func replaceSection(path, table string) error {
	raw, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	s := string(raw)
	i := strings.Index(s, beginMark)
	j := strings.Index(s, endMark)
	if i < 0 || j < i {
		return fmt.Errorf("%s has no %s ... %s section", path, beginMark, endMark)
	}
	out := s[:i+len(beginMark)] + "\n" + table + s[j:]
	return os.WriteFile(path, []byte(out), 0o644)
}
