package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"slices"
	"syscall"
	"time"

	"github.com/welkin-atproto/welkin/pds"
)

// pdsOpenTimeout bounds opening the PDS's stores and running their
// migrations.
const pdsOpenTimeout = time.Minute

// runPDS runs a PDS ("welkin pds [flags]") until SIGINT or SIGTERM.
func runPDS(args []string, stdout, stderr io.Writer) int {
	cfg, err := pds.ConfigFromEnv(os.Getenv)
	if err != nil {
		fmt.Fprintf(stderr, "welkin pds: %v\n", err)
		return 2
	}
	fs := flag.NewFlagSet("welkin pds", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprintln(stderr, "usage: welkin pds --hostname HOST [flags]   run a PDS until SIGINT/SIGTERM")
		fmt.Fprintln(stderr, "\nflags (also read from WELKIN_PDS_* environment variables):")
		printVisibleFlags(fs, stderr, "allow-private-networks")
	}
	cfg.RegisterFlags(fs)
	// Hidden: lets identity resolution and outbound requests reach
	// loopback and private addresses, which a PDS facing the internet
	// must refuse; tests and development networks opt in.
	fs.BoolVar(&cfg.AllowPrivateNetworks, "allow-private-networks", os.Getenv(envAllowPrivate) == "1", "")
	debugAddr := fs.String("debug-addr", os.Getenv(envDebugAddr), "`address` (such as 127.0.0.1:6060) of a separate listener for Go's /debug/pprof/ profiles; empty: none")
	if err := fs.Parse(args); err != nil {
		return flagExitCode(err)
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "welkin pds: unexpected argument %q\n", fs.Arg(0))
		return 2
	}
	if cfg.Hostname == "" {
		fmt.Fprintln(stderr, "welkin pds: --hostname (or WELKIN_PDS_HOSTNAME) is required")
		return 2
	}
	logger := slog.New(slog.NewTextHandler(stderr, nil))
	cfg.Logger = logger
	cfg.Version = buildVersion()
	procs := scaleProcs(pdsProcsPerCPU, os.Getenv)
	gogc := setGCPercent(pdsGCPercent, os.Getenv)
	logger.Info("go runtime", "gomaxprocs", procs, "gogc", gogc)

	stopDebug, err := startDebug(*debugAddr, logger)
	if err != nil {
		fmt.Fprintf(stderr, "welkin pds: --debug-addr: %v\n", err)
		return 1
	}
	defer stopDebug()

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	return servePDS(ctx, cfg, logger)
}

// servePDS opens the PDS, serves it until ctx is done and closes it.
func servePDS(ctx context.Context, cfg pds.Config, logger *slog.Logger) int {
	ln, err := net.Listen("tcp", cfg.Addr())
	if err != nil {
		logger.Error("listening", "err", err)
		return 1
	}
	openCtx, cancel := context.WithTimeout(ctx, pdsOpenTimeout)
	srv, err := pds.New(openCtx, cfg)
	cancel()
	if err != nil {
		ln.Close()
		logger.Error("opening the PDS", "err", err)
		return 1
	}
	eff := srv.Config()
	logger.Info("pds listening", "addr", ln.Addr().String(), "url", eff.PublicURL,
		"did", eff.ServiceDID, "data_dir", eff.DataDir, "version", eff.Version)
	code := 0
	if err := srv.Serve(ctx, ln); err != nil {
		logger.Error("serving", "err", err)
		code = 1
	}
	logger.Info("pds shutting down")
	if err := srv.Close(); err != nil {
		logger.Error("closing", "err", err)
		code = 1
	}
	return code
}

// printVisibleFlags prints fs's flags as PrintDefaults does, leaving out
// the hidden ones.
func printVisibleFlags(fs *flag.FlagSet, w io.Writer, hidden ...string) {
	vis := flag.NewFlagSet(fs.Name(), flag.ContinueOnError)
	vis.SetOutput(w)
	fs.VisitAll(func(f *flag.Flag) {
		if slices.Contains(hidden, f.Name) {
			return
		}
		vis.Var(f.Value, f.Name, f.Usage)
		vis.Lookup(f.Name).DefValue = f.DefValue
	})
	vis.PrintDefaults()
}
