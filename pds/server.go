package pds

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"github.com/welkin-atproto/welkin/api"
	"github.com/welkin-atproto/welkin/atproto/auth"
	"github.com/welkin-atproto/welkin/atproto/identity"
	"github.com/welkin-atproto/welkin/atproto/plc"
	"github.com/welkin-atproto/welkin/atproto/repo"
	"github.com/welkin-atproto/welkin/atproto/stream"
	"github.com/welkin-atproto/welkin/atproto/syntax"
	"github.com/welkin-atproto/welkin/atproto/xrpc"
	"github.com/welkin-atproto/welkin/internal/memtrim"
	"github.com/welkin-atproto/welkin/pds/blobstore"
	"github.com/welkin-atproto/welkin/pds/sequencer"
	"github.com/welkin-atproto/welkin/pds/store"
)

// shutdownTimeout is how long graceful shutdown waits for requests in
// flight.
const shutdownTimeout = 10 * time.Second

// Server is a Personal Data Server. Create it with New; serve Handler()
// yourself or call ListenAndServe; Close it when done.
type Server struct {
	cfg Config
	log *slog.Logger

	keys     *serverKeys
	accounts *store.Store
	actors   *actors
	blobs    blobstore.Store
	seq      *sequencer.Sequencer
	unsynced unsyncedStores // accounts with commits not yet durable in their own database
	events   *stream.Server
	xrpc     *xrpc.Server
	sessions *auth.SessionIssuer
	services *auth.ServiceVerifier
	resolver *identity.CachingResolver
	plc      *plc.Client
	http     *http.Client // outbound requests (relays, handle checks)
	clock    *repo.RevClock
	keyCache sync.Map // syntax.DID -> crypto.PrivateKey, repository signing keys

	handler http.Handler
	trim    memtrim.Trimmer // hands free memory back once requests stop

	bg   sync.WaitGroup
	stop context.CancelFunc

	// crawler, while Serve runs with relays configured, asks them to
	// crawl the PDS (crawl.go).
	crawlMu   sync.Mutex
	crawler   *crawler
	closeOnce sync.Once
}

// New opens (creating on first start) the PDS's data in cfg.DataDir and
// returns a server ready to serve.
func New(ctx context.Context, cfg Config) (*Server, error) {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	s := &Server{cfg: cfg, log: cfg.Logger, clock: repo.NewRevClock(0)}
	ok := false
	defer func() {
		if !ok {
			s.Close()
		}
	}()
	if s.keys, err = loadOrCreateKeys(cfg.DataDir); err != nil {
		return nil, err
	}
	if s.accounts, err = store.Open(ctx, cfg.ServiceDBURL()); err != nil {
		return nil, err
	}
	s.actors = newActors(filepath.Join(cfg.DataDir, ActorsDir))
	if s.blobs, err = openBlobStore(ctx, cfg); err != nil {
		return nil, err
	}
	s.http = identity.NewSafeHTTPClient(identity.SafeHTTPOptions{AllowPrivateNetworks: cfg.AllowPrivateNetworks})
	base := identity.NewResolver(identity.Options{
		PLCURL:               cfg.PLCURL,
		HTTPClient:           s.http,
		AllowPrivateNetworks: cfg.AllowPrivateNetworks,
		AllowLocalhost:       cfg.AllowPrivateNetworks,
	})
	s.resolver = identity.NewCachingResolver(base, identity.CacheOptions{Now: cfg.Now})
	s.plc = &plc.Client{BaseURL: cfg.PLCURL, HTTPClient: s.http, UserAgent: "welkin-pds/" + cfg.Version}
	s.sessions = &auth.SessionIssuer{
		Secret:     s.keys.jwtSecret,
		ServiceDID: cfg.ServiceDID,
		Now:        cfg.Now,
		Store:      s.accounts.RefreshStore(),
	}
	s.services = &auth.ServiceVerifier{
		Resolver: s.resolver,
		Audience: cfg.ServiceDID,
		Now:      cfg.Now,
	}

	// The sequencer publishes each durable event to the live stream; the
	// stream server replays from the sequencer, so it is made second.
	var live atomic.Pointer[stream.Server]
	s.seq, err = sequencer.Open(ctx, sequencer.Options{
		Path: filepath.Join(cfg.DataDir, SequencerFile),
		Open: func(ctx context.Context, did syntax.DID) (sequencer.Outbox, func(), error) {
			// An open store exists; this spares the acknowledgement after
			// each of the log's batches a look at the file system.
			if st, release, ok := s.actors.getIfOpen(did); ok {
				return unsyncedOutbox{st, &s.unsynced}, release, nil
			}
			// A deleted account has no store; opening it must not create
			// an empty one again.
			if !s.actors.exists(did) {
				return nil, nil, nil
			}
			st, release, err := s.actors.getNoWait(ctx, did)
			if err != nil {
				return nil, nil, err
			}
			return unsyncedOutbox{st, &s.unsynced}, release, nil
		},
		Publish: func(ev stream.Event) {
			if p := live.Load(); p != nil {
				p.Publish(ev)
			}
		},
		Now:    cfg.Now,
		Logger: s.log,
	})
	if err != nil {
		return nil, err
	}
	s.events = stream.NewServer(s.seq, &stream.ServerOptions{Logger: s.log})
	live.Store(s.events)

	cat, err := api.Catalog()
	if err != nil {
		return nil, err
	}
	s.xrpc = xrpc.NewServer(cat)
	s.xrpc.Logger = s.log
	s.registerServer()
	s.registerIdentity()
	s.registerRepo()
	s.registerSync()
	s.registerAdmin()

	mux := http.NewServeMux()
	mux.Handle("/xrpc/", s.xrpc)
	mux.HandleFunc("GET /xrpc/com.atproto.sync.subscribeRepos", s.events.ServeHTTP)
	mux.HandleFunc("GET /xrpc/_health", s.handleHealth)
	mux.HandleFunc("GET /.well-known/did.json", s.handleDIDJSON)
	mux.HandleFunc("GET /.well-known/atproto-did", s.handleAtprotoDID)
	mux.HandleFunc("GET /robots.txt", s.handleRobots)
	mux.HandleFunc("GET /{$}", s.handleRoot)
	s.handler = s.trim.Wrap(mux)
	s.trim.OnQuiet = s.releaseMemory

	// Before anything is served, and before the sequencer's recovery
	// reads the outboxes: restore commits a power loss took from the
	// account databases but not from the log.
	if err := s.replayLog(ctx); err != nil {
		return nil, err
	}
	bgctx, cancel := context.WithCancel(context.Background())
	s.stop = cancel
	s.startBackground(bgctx)
	ok = true
	return s, nil
}

// Config returns the configuration in effect, defaults filled in.
func (s *Server) Config() Config { return s.cfg }

// Handler is the PDS's HTTP handler.
func (s *Server) Handler() http.Handler { return s.handler }

// Close stops background work and closes every store. Stop serving
// requests first.
func (s *Server) Close() error {
	var errs []error
	s.closeOnce.Do(func() {
		if s.stop != nil {
			s.stop()
		}
		s.bg.Wait()
		if s.events != nil {
			ctx, cancel := context.WithTimeout(context.Background(), shutdownTimeout)
			s.events.Shutdown(ctx)
			cancel()
		}
		if s.seq != nil {
			errs = append(errs, s.seq.Close())
		}
		if s.actors != nil {
			s.actors.closeAll()
		}
		if s.accounts != nil {
			errs = append(errs, s.accounts.Close())
		}
	})
	return errors.Join(errs...)
}

// ListenAndServe listens on the configured address and serves until ctx
// is done, then shuts down gracefully.
func (s *Server) ListenAndServe(ctx context.Context) error {
	ln, err := net.Listen("tcp", s.cfg.Addr())
	if err != nil {
		return err
	}
	return s.Serve(ctx, ln)
}

// Serve serves on ln until ctx is done.
func (s *Server) Serve(ctx context.Context, ln net.Listener) error {
	srv := &http.Server{Handler: s.handler, ReadHeaderTimeout: 10 * time.Second}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	s.startCrawler(ctx)
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.Background(), shutdownTimeout)
	defer cancel()
	s.events.Shutdown(sctx)
	if err := srv.Shutdown(sctx); err != nil {
		return err
	}
	return nil
}

// go runs fn in the background until Close.
func (s *Server) goBackground(fn func()) {
	s.bg.Add(1)
	go func() {
		defer s.bg.Done()
		fn()
	}()
}

func (s *Server) handleHealth(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, map[string]string{"version": s.cfg.Version})
}

func (s *Server) handleRoot(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	fmt.Fprintf(w, "This is an AT Protocol Personal Data Server (Welkin %s).\n\nMost API routes are under /xrpc/\n", s.cfg.Version)
}

func (s *Server) handleRobots(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	// Crawlers have nothing to index on a PDS: its content is served by
	// AppViews.
	fmt.Fprint(w, "User-agent: *\nAllow: /\n")
}

// handleDIDJSON serves the DID document of the PDS's own did:web, which
// names its service endpoint.
func (s *Server) handleDIDJSON(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, map[string]any{
		"@context": []string{"https://www.w3.org/ns/did/v1"},
		"id":       s.cfg.ServiceDID,
		"service": []map[string]string{{
			"id":              "#atproto_pds",
			"type":            "AtprotoPersonalDataServer",
			"serviceEndpoint": s.cfg.PublicURL,
		}},
	})
}

// handleAtprotoDID answers the HTTPS handle resolution of hosted handles:
// the Host header names the handle.
func (s *Server) handleAtprotoDID(w http.ResponseWriter, r *http.Request) {
	host := r.Host
	if h, _, err := net.SplitHostPort(host); err == nil {
		host = h
	}
	h, err := syntax.ParseHandle(host)
	if err != nil {
		http.Error(w, "no user by that name", http.StatusNotFound)
		return
	}
	acct, err := s.accounts.AccountByHandle(r.Context(), h.Normalize())
	if err != nil || acct.Status != store.StatusActive {
		http.Error(w, "no user by that name", http.StatusNotFound)
		return
	}
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	fmt.Fprint(w, string(acct.DID))
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(v)
}
