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
	"syscall"
	"time"

	"github.com/welkin-atproto/welkin/relay"
)

// relayOpenTimeout bounds opening the relay's store and event log.
const relayOpenTimeout = time.Minute

// runRelay runs a relay ("welkin relay [flags]") until SIGINT or SIGTERM.
func runRelay(args []string, stdout, stderr io.Writer) int {
	cfg, err := relay.ConfigFromEnv(os.Getenv)
	if err != nil {
		fmt.Fprintf(stderr, "welkin relay: %v\n", err)
		return 2
	}
	fs := flag.NewFlagSet("welkin relay", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprintln(stderr, "usage: welkin relay [flags]   run a relay until SIGINT/SIGTERM")
		fmt.Fprintln(stderr, "\nflags (also read from WELKIN_RELAY_* environment variables):")
		fs.PrintDefaults()
	}
	cfg.RegisterFlags(fs)
	if err := fs.Parse(args); err != nil {
		return flagExitCode(err)
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "welkin relay: unexpected argument %q\n", fs.Arg(0))
		return 2
	}
	if cfg.Retention < 0 {
		fmt.Fprintln(stderr, "welkin relay: --retention must not be negative")
		return 2
	}
	logger := slog.New(slog.NewTextHandler(stderr, nil))
	cfg.Logger = logger
	cfg.Version = buildVersion()

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	return serveRelay(ctx, cfg, logger)
}

// serveRelay opens the relay, serves it until ctx is done and closes it.
func serveRelay(ctx context.Context, cfg relay.Config, logger *slog.Logger) int {
	ln, err := net.Listen("tcp", cfg.Addr())
	if err != nil {
		logger.Error("listening", "err", err)
		return 1
	}
	openCtx, cancel := context.WithTimeout(ctx, relayOpenTimeout)
	srv, err := relay.New(openCtx, cfg)
	cancel()
	if err != nil {
		ln.Close()
		logger.Error("opening the relay", "err", err)
		return 1
	}
	eff := srv.Config()
	logger.Info("relay listening", "addr", ln.Addr().String(), "data_dir", eff.DataDir, "plc", eff.PLCURL, "version", eff.Version)
	code := 0
	if err := srv.Serve(ctx, ln); err != nil {
		logger.Error("serving", "err", err)
		code = 1
	}
	logger.Info("relay shutting down")
	if err := srv.Close(); err != nil {
		logger.Error("closing", "err", err)
		code = 1
	}
	return code
}
