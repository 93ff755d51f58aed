package devnet

import (
	"context"
	"errors"
	"net"
	"path/filepath"

	"github.com/welkin-atproto/welkin/pds"
	"github.com/welkin-atproto/welkin/plc"
	plcstore "github.com/welkin-atproto/welkin/plc/store"
	"github.com/welkin-atproto/welkin/relay"
)

// service is one service of the network. Adding a service (the
// AppView) is adding an entry to services: later entries may use the
// URLs of earlier ones, and each gets its own subdirectory of DataDir
// named after it.
type service struct {
	// name is the service's key in the manifest and its data
	// subdirectory.
	name string
	// offset from Config.PortBase of the port it listens on.
	offset int
	// health is a path that answers 200 once the service is ready.
	health string
	// start opens the service's stores; the devnet then serves it on its
	// listener.
	start func(ctx context.Context, d *Devnet, name string, port int) (server, error)
}

// server is a started service: it serves until its context is done and
// is then closed.
type server interface {
	Serve(ctx context.Context, ln net.Listener) error
	Close() error
}

// services are started in this order and closed in the reverse one.
var services = []service{
	{name: "plc", offset: 0, health: "/_health", start: startPLC},
	{name: "pds", offset: 1, health: "/xrpc/_health", start: startPDS},
	{name: "relay", offset: 2, health: "/xrpc/_health", start: startRelay},
}

// dataDir is a service's own directory.
func (d *Devnet) dataDir(name string) string { return filepath.Join(d.cfg.DataDir, name) }

// plcServer is the PLC directory together with the store it owns.
type plcServer struct {
	*plc.Server
	st *plcstore.SQL
}

func (p *plcServer) Close() error {
	return errors.Join(p.Server.Close(), p.st.Close())
}

func startPLC(ctx context.Context, d *Devnet, name string, port int) (server, error) {
	cfg := plc.Config{
		Host:    "127.0.0.1",
		Port:    port,
		DataDir: d.dataDir(name),
		// Accounts on a development network change handles and keys
		// often; the per-DID operation limits would only get in the way.
		OpsPerHour: -1,
		OpsPerDay:  -1,
		OpsPerWeek: -1,
		Version:    d.cfg.Version,
		Logger:     d.log.With("service", name),
	}
	st, err := plcstore.Open(ctx, cfg.DBURL())
	if err != nil {
		return nil, err
	}
	return &plcServer{Server: plc.NewServer(cfg, st), st: st}, nil
}

// startPDS opens the PDS. It names the devnet's relay in RelayHosts, as a
// PDS names bsky.network, so that it asks the relay to crawl it; the relay
// follows it from the start anyway (startRelay).
func startPDS(ctx context.Context, d *Devnet, name string, port int) (server, error) {
	srv, err := pds.New(ctx, pds.Config{
		Hostname:             "localhost",
		Host:                 "127.0.0.1",
		Port:                 port,
		PublicURL:            d.URL(name),
		DataDir:              d.dataDir(name),
		PLCURL:               d.URL("plc"),
		HandleDomains:        []string{HandleDomain},
		RelayHosts:           []string{d.URL("relay")},
		AdminPassword:        d.adminPwd,
		AllowPrivateNetworks: true,
		RateLimits:           false,
		Version:              d.cfg.Version,
		Logger:               d.log.With("service", name),
	})
	if err != nil {
		return nil, err
	}
	return srv, nil
}

// startRelay opens the relay, which follows the devnet's PDS from its
// first event. Its hosts and identities are on loopback, over plain HTTP,
// so it runs with AllowInsecureHosts; the PDS is a trusted host (no
// account limit). The PDS's requestCrawl, naming "localhost:PORT", finds
// the same host.
func startRelay(ctx context.Context, d *Devnet, name string, port int) (server, error) {
	srv, err := relay.New(ctx, relay.Config{
		Host:               "127.0.0.1",
		Port:               port,
		DataDir:            d.dataDir(name),
		PLCURL:             d.URL("plc"),
		TrustedHosts:       []string{d.URL("pds")},
		AllowInsecureHosts: true,
		Version:            d.cfg.Version,
		Logger:             d.log.With("service", name),
	})
	if err != nil {
		return nil, err
	}
	return srv, nil
}
