// Command welkin runs the Welkin AT Protocol services and tools. Each
// service is a verb (welkin pds, welkin relay, ...); verbs arrive as the
// services do. Run "welkin help" for the list.
package main

import (
	"fmt"
	"io"
	"os"
	"runtime"
	"runtime/debug"
	"sort"
)

// version is set at build time by the Makefile
// (-ldflags "-X main.version=..."); "dev" otherwise.
var version = "dev"

type command struct {
	summary string
	run     func(args []string, stdout, stderr io.Writer) int
}

func commands() map[string]command {
	return map[string]command{
		"version":  {"print the version of this binary", runVersion},
		"help":     {"list the commands", runHelp},
		"plc":      {"run a PLC directory (welkin plc log <did>: print an audit log)", runPLC},
		"pds":      {"run a Personal Data Server", runPDS},
		"relay":    {"run a relay (subscribes to PDS hosts, serves one firehose)", runRelay},
		"devnet":   {"run a whole network (PLC directory, PDS, relay) on loopback", runDevnet},
		"resolve":  {"resolve a handle or DID and verify the handle", runResolve},
		"key":      {"generate key pairs (welkin key generate)", runKey},
		"repo":     {"inspect, verify, list and diff repository CAR files", runRepo},
		"lex":      {"check Lexicon schemas and validate records against them", runLex},
		"xrpc":     {"call an XRPC method and print its JSON response", runXRPC},
		"firehose": {"print the events of a repo or label event stream", runFirehose},
	}
}

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

func run(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		runHelp(nil, stderr, stderr)
		return 2
	}
	name := args[0]
	switch name {
	case "-h", "--help":
		name = "help"
	case "-v", "--version":
		name = "version"
	}
	cmd, ok := commands()[name]
	if !ok {
		fmt.Fprintf(stderr, "welkin: unknown command %q; run 'welkin help' for the list\n", args[0])
		return 2
	}
	return cmd.run(args[1:], stdout, stderr)
}

func runVersion(args []string, stdout, stderr io.Writer) int {
	if len(args) > 0 {
		fmt.Fprintf(stderr, "welkin version: takes no arguments, got %q\n", args)
		return 2
	}
	fmt.Fprintf(stdout, "welkin %s (%s, %s/%s)\n", buildVersion(), runtime.Version(), runtime.GOOS, runtime.GOARCH)
	return 0
}

// buildVersion prefers the version stamped by the Makefile, then the module
// version recorded by "go install module@version".
func buildVersion() string {
	if version != "dev" {
		return version
	}
	if info, ok := debug.ReadBuildInfo(); ok && info.Main.Version != "" && info.Main.Version != "(devel)" {
		return info.Main.Version
	}
	return version
}

func runHelp(_ []string, stdout, _ io.Writer) int {
	fmt.Fprintln(stdout, "welkin: an AT Protocol implementation in one binary")
	fmt.Fprintln(stdout)
	fmt.Fprintln(stdout, "usage: welkin <command> [flags]")
	fmt.Fprintln(stdout)
	cmds := commands()
	names := make([]string, 0, len(cmds))
	for n := range cmds {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		fmt.Fprintf(stdout, "  %-10s %s\n", n, cmds[n].summary)
	}
	return 0
}
