package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"syscall"

	"github.com/welkin-atproto/welkin/devnet"
)

// runDevnet runs a whole network on loopback ("welkin devnet [flags]")
// until SIGINT or SIGTERM.
func runDevnet(args []string, stdout, stderr io.Writer) int {
	cfg := devnet.Config{DataDir: devnet.DefaultDataDir, PortBase: devnet.DefaultPortBase}
	fs := flag.NewFlagSet("welkin devnet", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprintln(stderr, "usage: welkin devnet [--data-dir DIR] [--port-base PORT] [--seed]")
		fmt.Fprintln(stderr)
		fmt.Fprintln(stderr, "Runs a PLC directory (on PORT), a PDS (on PORT+1) and a relay following")
		fmt.Fprintln(stderr, "that PDS (on PORT+2) on 127.0.0.1 until SIGINT/SIGTERM, and writes")
		fmt.Fprintln(stderr, "DIR/devnet.json with their URLs and the seeded accounts. A restart with")
		fmt.Fprintln(stderr, "the same flags continues on the same data.")
		fmt.Fprintln(stderr)
		fs.PrintDefaults()
	}
	fs.StringVar(&cfg.DataDir, "data-dir", cfg.DataDir, "directory of the network's data")
	fs.IntVar(&cfg.PortBase, "port-base", cfg.PortBase, "first port; the services take the ones after it")
	fs.BoolVar(&cfg.Seed, "seed", false, "create alice.test, bob.test and carol.test with a few records, unless accounts exist")
	if err := fs.Parse(args); err != nil {
		return flagExitCode(err)
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "welkin devnet: unexpected argument %q\n", fs.Arg(0))
		return 2
	}
	logger := slog.New(slog.NewTextHandler(stderr, nil))
	cfg.Logger = logger
	cfg.Version = buildVersion()

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	go func() {
		// After the first signal, a second one kills the process the
		// usual way instead of waiting for the clean shutdown.
		<-ctx.Done()
		stop()
	}()
	return serveDevnet(ctx, cfg, stdout, logger)
}

// serveDevnet starts the network, prints where everything is, and waits
// until ctx is done and the network has stopped.
func serveDevnet(ctx context.Context, cfg devnet.Config, stdout io.Writer, logger *slog.Logger) int {
	d, err := devnet.Start(ctx, cfg)
	if err != nil {
		logger.Error("starting the devnet", "err", err)
		return 1
	}
	if err := d.WriteSummary(stdout); err != nil {
		logger.Warn("printing the summary", "err", err)
	}
	logger.Info("devnet running; press Ctrl-C to stop")
	if err := d.Wait(); err != nil {
		logger.Error("devnet stopped with errors", "err", err)
		return 1
	}
	logger.Info("devnet stopped")
	return 0
}
