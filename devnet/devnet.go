package devnet

import (
	"context"
	"crypto/rand"
	"encoding/base32"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Defaults for Config fields left zero.
const (
	DefaultDataDir  = "./data/devnet"
	DefaultPortBase = 2580
	// DefaultStartTimeout bounds waiting for every service to answer its
	// health check.
	DefaultStartTimeout = 30 * time.Second
)

// AdminPasswordFile holds the PDS's admin password inside the data
// directory, generated on first start.
const AdminPasswordFile = "admin.password"

// HandleDomain is the suffix of the handles the devnet's PDS offers.
const HandleDomain = ".test"

// Config is a devnet's configuration. The zero value of every field means
// its default.
type Config struct {
	// DataDir holds every service's files and the manifest.
	DataDir string
	// PortBase is the first port; each service listens at PortBase plus
	// its offset (plc +0, pds +1, relay +2).
	PortBase int
	// Seed creates the sample accounts when the manifest lists none.
	Seed bool
	// Version is reported by the services' health checks.
	Version string
	// StartTimeout bounds waiting for the services to become healthy.
	StartTimeout time.Duration
	// Logger receives every service's logs, each with a "service"
	// attribute; nil means slog.Default().
	Logger *slog.Logger
}

func (c Config) withDefaults() (Config, error) {
	if c.DataDir == "" {
		c.DataDir = DefaultDataDir
	}
	if c.PortBase == 0 {
		c.PortBase = DefaultPortBase
	}
	last := 0
	for _, s := range services {
		last = max(last, s.offset)
	}
	if c.PortBase < 1 || c.PortBase+last > 65535 {
		return c, fmt.Errorf("devnet: port base %d: the ports %d to %d must lie between 1 and 65535", c.PortBase, c.PortBase, c.PortBase+last)
	}
	if c.Version == "" {
		c.Version = "dev"
	}
	if c.StartTimeout <= 0 {
		c.StartTimeout = DefaultStartTimeout
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	return c, nil
}

// Service is a running service's name and base URL.
type Service struct {
	Name string
	URL  string
}

// Devnet is a running network. It stops when the context given to Start
// is done, or on Close.
type Devnet struct {
	cfg      Config
	log      *slog.Logger
	urls     map[string]string
	adminPwd string
	accounts []Account
	running  []*running

	cancel    context.CancelFunc
	exited    chan exit
	done      chan struct{}
	err       error
	closeOnce sync.Once
}

// running is a started service.
type running struct {
	svc  service
	port int
	srv  server
	ln   net.Listener
}

type exit struct {
	name string
	err  error
}

// Start starts every service of the network on loopback, waits until each
// answers its health check, seeds the sample accounts when cfg.Seed asks
// and the manifest lists none, and writes the manifest. The network runs
// until ctx is done or Close is called; Wait reports how it ended.
func Start(ctx context.Context, cfg Config) (*Devnet, error) {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(cfg.DataDir, 0o700); err != nil {
		return nil, fmt.Errorf("devnet: data dir: %w", err)
	}
	d := &Devnet{
		cfg:    cfg,
		log:    cfg.Logger,
		urls:   map[string]string{},
		exited: make(chan exit, len(services)),
		done:   make(chan struct{}),
	}
	for _, s := range services {
		d.urls[s.name] = "http://localhost:" + strconv.Itoa(cfg.PortBase+s.offset)
	}
	old, err := ReadManifest(d.ManifestPath())
	switch {
	case errors.Is(err, fs.ErrNotExist):
		d.accounts = []Account{}
	case err != nil:
		return nil, err
	default:
		if err := d.checkSameURLs(old); err != nil {
			return nil, err
		}
		d.accounts = old.Accounts
	}
	if d.adminPwd, err = loadOrCreateSecret(filepath.Join(cfg.DataDir, AdminPasswordFile)); err != nil {
		return nil, err
	}

	// Bind every port before opening anything, so that a port in use
	// fails fast and names the service.
	for _, s := range services {
		port := cfg.PortBase + s.offset
		ln, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(port)))
		if err != nil {
			for _, r := range d.running {
				r.ln.Close()
			}
			return nil, fmt.Errorf("devnet: %s: %w", s.name, err)
		}
		d.running = append(d.running, &running{svc: s, port: port, ln: ln})
	}

	runCtx, cancel := context.WithCancel(ctx)
	d.cancel = cancel
	started := 0
	for _, r := range d.running {
		srv, err := r.svc.start(ctx, d, r.svc.name, r.port)
		if err != nil {
			for _, r := range d.running[started:] {
				r.ln.Close()
			}
			d.running = d.running[:started]
			d.shutdown(started)
			return nil, fmt.Errorf("devnet: starting %s: %w", r.svc.name, err)
		}
		r.srv = srv
		started++
		go func(r *running) {
			d.exited <- exit{r.svc.name, r.srv.Serve(runCtx, r.ln)}
		}(r)
	}
	fail := func(err error) (*Devnet, error) {
		d.shutdown(started)
		return nil, err
	}
	if err := d.waitHealthy(ctx); err != nil {
		return fail(err)
	}
	if cfg.Seed && len(d.accounts) == 0 {
		accts, err := seed(ctx, d.URL("pds"), d.log)
		if err != nil {
			return fail(err)
		}
		d.accounts = accts
	}
	m := &Manifest{Services: d.urls, Accounts: d.accounts}
	if err := writeManifest(d.ManifestPath(), m); err != nil {
		return fail(err)
	}
	go func() { d.shutdownAfterExit(runCtx, started) }()
	return d, nil
}

// checkSameURLs refuses a restart on other ports: the DID documents of
// the accounts name the PDS's URL, and the PDS's own did:web its port.
func (d *Devnet) checkSameURLs(old *Manifest) error {
	for _, s := range services {
		prev, ok := old.Services[s.name]
		if !ok || prev == d.urls[s.name] {
			continue
		}
		hint := "the same port base"
		if u, err := url.Parse(prev); err == nil {
			if p, err := strconv.Atoi(u.Port()); err == nil {
				hint = "--port-base " + strconv.Itoa(p-s.offset)
			}
		}
		return fmt.Errorf("devnet: the devnet in %s ran %s at %s, not %s; start it with %s (its accounts' DID documents name those URLs) or use a new data directory",
			d.cfg.DataDir, s.name, prev, d.urls[s.name], hint)
	}
	return nil
}

// waitHealthy polls every service's health path until it answers 200,
// within the start timeout.
func (d *Devnet) waitHealthy(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, d.cfg.StartTimeout)
	defer cancel()
	client := loopbackClient(2 * time.Second)
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for _, r := range d.running {
		u := d.URL(r.svc.name) + r.svc.health
		for {
			err := getOK(ctx, client, u)
			if err == nil {
				break
			}
			select {
			case e := <-d.exited:
				d.exited <- e // shutdown counts it
				return fmt.Errorf("devnet: %s stopped while starting: %v", e.name, e.err)
			case <-ctx.Done():
				return fmt.Errorf("devnet: %s did not become healthy within %s: %w", r.svc.name, d.cfg.StartTimeout, err)
			case <-tick.C:
			}
		}
	}
	return nil
}

func getOK(ctx context.Context, client *http.Client, u string) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return err
	}
	resp, err := client.Do(req)
	if err != nil {
		return err
	}
	io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<16))
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("GET %s: status %d", u, resp.StatusCode)
	}
	return nil
}

// loopbackClient is an HTTP client for the devnet's own services: no
// proxy, whatever the environment says.
func loopbackClient(timeout time.Duration) *http.Client {
	return &http.Client{
		Timeout:   timeout,
		Transport: &http.Transport{Proxy: nil, MaxIdleConnsPerHost: 4, IdleConnTimeout: 30 * time.Second},
	}
}

// shutdownAfterExit waits for the run context to end or a service to stop
// on its own, then stops the rest.
func (d *Devnet) shutdownAfterExit(runCtx context.Context, started int) {
	select {
	case <-runCtx.Done():
	case e := <-d.exited:
		// A service stopped without being asked to.
		d.exited <- e
	}
	d.shutdown(started)
}

// shutdown cancels the run context, waits for the first started services
// to stop serving and closes them in reverse order. It runs once.
func (d *Devnet) shutdown(started int) {
	d.closeOnce.Do(func() {
		if d.cancel != nil {
			d.cancel()
		}
		var errs []error
		for range started {
			e := <-d.exited
			if e.err != nil && !errors.Is(e.err, http.ErrServerClosed) {
				errs = append(errs, fmt.Errorf("devnet: %s: %w", e.name, e.err))
			}
		}
		for i := started - 1; i >= 0; i-- {
			r := d.running[i]
			if err := r.srv.Close(); err != nil {
				errs = append(errs, fmt.Errorf("devnet: closing %s: %w", r.svc.name, err))
			}
		}
		d.err = errors.Join(errs...)
		close(d.done)
	})
}

// Close stops the network and waits until every service is closed.
func (d *Devnet) Close() error {
	d.cancel()
	return d.Wait()
}

// Done is closed once the network has stopped and every service is
// closed.
func (d *Devnet) Done() <-chan struct{} { return d.done }

// Wait blocks until the network has stopped and returns the errors with
// which services stopped or closed, if any.
func (d *Devnet) Wait() error {
	<-d.done
	return d.err
}

// URL returns the base URL of the named service ("plc", "pds", "relay"), or "" if
// there is no such service.
func (d *Devnet) URL(name string) string { return d.urls[name] }

// Services lists the services in start order.
func (d *Devnet) Services() []Service {
	out := make([]Service, len(services))
	for i, s := range services {
		out[i] = Service{Name: s.name, URL: d.urls[s.name]}
	}
	return out
}

// Accounts returns the seeded accounts (a copy).
func (d *Devnet) Accounts() []Account { return append([]Account{}, d.accounts...) }

// AdminPassword is the PDS's admin password (basic auth "admin:PASSWORD").
func (d *Devnet) AdminPassword() string { return d.adminPwd }

// DataDir is the directory holding the network's files.
func (d *Devnet) DataDir() string { return d.cfg.DataDir }

// ManifestPath is the path of devnet.json.
func (d *Devnet) ManifestPath() string { return filepath.Join(d.cfg.DataDir, ManifestFile) }

// WriteSummary prints the services, their URLs and the accounts.
func (d *Devnet) WriteSummary(w io.Writer) error {
	var b strings.Builder
	fmt.Fprintf(&b, "Welkin devnet (data in %s)\n\n", d.cfg.DataDir)
	for _, s := range d.Services() {
		fmt.Fprintf(&b, "  %-5s %s\n", s.Name, s.URL)
	}
	if u := d.URL("relay"); strings.HasPrefix(u, "http://") {
		fmt.Fprintf(&b, "\n  firehose (the relay's): ws://%s/xrpc/com.atproto.sync.subscribeRepos\n", strings.TrimPrefix(u, "http://"))
	}
	fmt.Fprintf(&b, "\n  PDS admin password: %s\n", d.adminPwd)
	if len(d.accounts) == 0 {
		fmt.Fprintf(&b, "\n  no accounts (run with --seed on a new data directory to create alice.test, bob.test, carol.test)\n")
	} else {
		fmt.Fprintf(&b, "\n  accounts:\n")
		for _, a := range d.accounts {
			fmt.Fprintf(&b, "    %-12s %-32s password %s\n", a.Handle, a.DID, a.Password)
		}
	}
	fmt.Fprintf(&b, "\n  manifest: %s\n", d.ManifestPath())
	_, err := io.WriteString(w, b.String())
	return err
}

// loadOrCreateSecret returns the secret in path, first generating it
// (mode 0600) when the file does not exist.
func loadOrCreateSecret(path string) (string, error) {
	b, err := os.ReadFile(path)
	if err == nil {
		s := strings.TrimSpace(string(b))
		if s == "" {
			return "", fmt.Errorf("devnet: %s is empty; delete it to generate a new one", path)
		}
		return s, nil
	}
	if !errors.Is(err, fs.ErrNotExist) {
		return "", fmt.Errorf("devnet: %w", err)
	}
	s := randomSecret()
	if err := writeFileAtomic(path, []byte(s+"\n"), 0o600); err != nil {
		return "", err
	}
	return s, nil
}

// randomSecret returns 120 random bits as 24 lower-case base32
// characters.
func randomSecret() string {
	b := make([]byte, 15)
	rand.Read(b) // never fails (crypto/rand)
	return strings.ToLower(base32.StdEncoding.EncodeToString(b))
}
