package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"syscall"
	"time"

	atplc "github.com/welkin-atproto/welkin/atproto/plc"
	"github.com/welkin-atproto/welkin/atproto/syntax"
	"github.com/welkin-atproto/welkin/plc"
	"github.com/welkin-atproto/welkin/plc/store"
)

// runPLC runs the PLC directory ("welkin plc [flags]") or a client
// subcommand ("welkin plc log <did>").
func runPLC(args []string, stdout, stderr io.Writer) int {
	if len(args) > 0 && args[0] == "log" {
		return runPLCLog(args[1:], stdout, stderr)
	}
	cfg, err := plc.ConfigFromEnv(os.Getenv)
	if err != nil {
		fmt.Fprintf(stderr, "welkin plc: %v\n", err)
		return 2
	}
	fs := flag.NewFlagSet("welkin plc", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprintln(stderr, "usage: welkin plc [flags]           run a PLC directory until SIGINT/SIGTERM")
		fmt.Fprintln(stderr, "       welkin plc log <did> [--plc-url URL]   print a DID's audit log")
		fmt.Fprintln(stderr, "\nflags (also read from WELKIN_PLC_* environment variables):")
		fs.PrintDefaults()
	}
	cfg.RegisterFlags(fs)
	if err := fs.Parse(args); err != nil {
		return flagExitCode(err)
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "welkin plc: unexpected argument %q\n", fs.Arg(0))
		return 2
	}
	logger := slog.New(slog.NewTextHandler(stderr, nil))
	cfg.Logger = logger
	cfg.Version = buildVersion()

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	openCtx, cancel := context.WithTimeout(ctx, 30*time.Second)
	st, err := store.Open(openCtx, cfg.DBURL())
	cancel()
	if err != nil {
		logger.Error("opening the database", "err", err)
		return 1
	}
	defer st.Close()

	srv := plc.NewServer(cfg, st)
	if err := srv.ListenAndServe(ctx); err != nil {
		logger.Error("serving", "err", err)
		return 1
	}
	return 0
}

func runPLCLog(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("welkin plc log", flag.ContinueOnError)
	fs.SetOutput(stderr)
	plcURL := fs.String("plc-url", atplc.DefaultDirectory, "PLC directory URL")
	// Accept the flag before or after the DID.
	var did string
	if len(args) > 0 && len(args[0]) > 0 && args[0][0] != '-' {
		did, args = args[0], args[1:]
	}
	if err := fs.Parse(args); err != nil {
		return flagExitCode(err)
	}
	if did == "" && fs.NArg() > 0 {
		did = fs.Arg(0)
	} else if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "welkin plc log: unexpected argument %q\n", fs.Arg(0))
		return 2
	}
	if did == "" {
		fmt.Fprintln(stderr, "usage: welkin plc log <did> [--plc-url URL]")
		return 2
	}
	d, err := syntax.ParseDID(did)
	if err != nil {
		fmt.Fprintf(stderr, "welkin plc log: %v\n", err)
		return 2
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	client := &atplc.Client{BaseURL: *plcURL, UserAgent: "welkin/" + buildVersion()}
	log, err := client.AuditLog(ctx, d)
	if err != nil {
		fmt.Fprintf(stderr, "welkin plc log: %v\n", err)
		return 1
	}
	b, err := json.MarshalIndent(log, "", "  ")
	if err != nil {
		fmt.Fprintf(stderr, "welkin plc log: %v\n", err)
		return 1
	}
	fmt.Fprintf(stdout, "%s\n", b)
	return 0
}
