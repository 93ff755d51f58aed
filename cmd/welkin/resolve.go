package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/welkin-atproto/welkin/atproto/identity"
	"github.com/welkin-atproto/welkin/atproto/syntax"
)

// resolveTimeout bounds a whole "welkin resolve" run: the DID document
// fetch plus the handle's DNS and HTTPS checks.
const resolveTimeout = 30 * time.Second

// envAllowPrivate lets tests and development networks reach a PLC
// directory or handle server on loopback without the hidden flag.
const envAllowPrivate = "WELKIN_ALLOW_PRIVATE_NETWORKS"

func runResolve(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("resolve", flag.ContinueOnError)
	fs.SetOutput(stderr)
	plcURL := fs.String("plc-url", identity.DefaultPLCURL, "base URL of the did:plc directory")
	// Hidden: loopback and private addresses are refused by default, as
	// a resolver facing the internet must; tests and devnets opt in.
	allowPrivate := fs.Bool("allow-private-networks", os.Getenv(envAllowPrivate) == "1", "")
	fs.Usage = func() {
		fmt.Fprintln(stderr, "usage: welkin resolve <handle|did> [--plc-url URL]")
		fmt.Fprintln(stderr)
		fmt.Fprintln(stderr, "Resolves a handle or DID, verifies the handle in both directions,")
		fmt.Fprintln(stderr, "and prints the DID document and the verified handle.")
		fmt.Fprintln(stderr)
		fmt.Fprintln(stderr, "  --plc-url URL   did:plc directory (default "+identity.DefaultPLCURL+")")
	}
	pos, err := parseInterleaved(fs, args)
	if err != nil {
		return flagExitCode(err)
	}
	if len(pos) != 1 {
		fmt.Fprintln(stderr, "welkin resolve: want exactly one handle or DID")
		fs.Usage()
		return 2
	}
	id, err := syntax.ParseAtIdentifier(pos[0])
	if err != nil {
		fmt.Fprintf(stderr, "welkin resolve: %q is neither a valid handle nor a valid DID: %v\n", pos[0], err)
		return 2
	}
	opts := identity.Options{
		PLCURL:               *plcURL,
		AllowPrivateNetworks: *allowPrivate,
		AllowLocalhost:       *allowPrivate,
		UserAgent:            "welkin/" + buildVersion(),
	}
	ctx, cancel := context.WithTimeout(context.Background(), resolveTimeout)
	defer cancel()
	return resolveAndPrint(ctx, opts, id, stdout, stderr)
}

// resolveAndPrint does the work of "welkin resolve" with a resolver built
// from opts, so tests can point DNS and handle lookups at local fakes.
func resolveAndPrint(ctx context.Context, opts identity.Options, id syntax.AtIdentifier, stdout, stderr io.Writer) int {
	// The cache lets the document fetch and the bidirectional check share
	// one request per DID and handle.
	r := identity.NewCachingResolver(identity.NewResolver(opts), identity.CacheOptions{})
	ident, err := r.Lookup(ctx, id)
	if err != nil {
		fmt.Fprintf(stderr, "welkin resolve: %s: %v\n", id, err)
		return 1
	}
	doc, err := r.ResolveDIDDocument(ctx, ident.DID)
	if err != nil {
		fmt.Fprintf(stderr, "welkin resolve: %s: %v\n", ident.DID, err)
		return 1
	}
	out, err := json.MarshalIndent(doc, "", "  ")
	if err != nil {
		fmt.Fprintf(stderr, "welkin resolve: encoding the DID document: %v\n", err)
		return 1
	}
	fmt.Fprintf(stdout, "%s\n", out)
	fmt.Fprintf(stdout, "did: %s\n", ident.DID)
	if ident.Handle != syntax.HandleInvalid {
		fmt.Fprintf(stdout, "handle: %s (verified both ways)\n", ident.Handle)
		return 0
	}
	fmt.Fprintf(stdout, "handle: %s (%s)\n", syntax.HandleInvalid, handleInvalidReason(ctx, r, ident))
	return 0
}

// handleInvalidReason explains why Lookup left the handle invalid: the
// document declares none, or the declared handle does not resolve, or it
// resolves to another DID.
func handleInvalidReason(ctx context.Context, r identity.Resolver, ident *identity.Identity) string {
	declared := ident.DeclaredHandle()
	if declared == "" || declared == syntax.HandleInvalid {
		return "the DID document declares no valid at:// handle in alsoKnownAs"
	}
	did, err := r.ResolveHandle(ctx, declared)
	if err != nil {
		return fmt.Sprintf("declared handle %s does not resolve: %v", declared, err)
	}
	if did != ident.DID {
		return fmt.Sprintf("declared handle %s resolves to %s, not to this DID", declared, did)
	}
	return fmt.Sprintf("declared handle %s could not be verified", declared)
}
