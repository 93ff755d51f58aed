package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/url"
	"os"
	"strings"
	"time"

	"github.com/welkin-atproto/welkin/api"
	"github.com/welkin-atproto/welkin/atproto/data"
	"github.com/welkin-atproto/welkin/atproto/lexicon"
	"github.com/welkin-atproto/welkin/atproto/syntax"
	"github.com/welkin-atproto/welkin/atproto/xrpc"
)

// xrpcTimeout bounds one "welkin xrpc" call, retries included.
const xrpcTimeout = 60 * time.Second

// defaultXRPCHost is the host called when --host is not given.
const defaultXRPCHost = "https://public.api.bsky.app"

func runXRPC(args []string, stdout, stderr io.Writer) int {
	return runXRPCWith(args, os.Stdin, stdout, stderr)
}

// runXRPCWith is runXRPC reading "--input -" from stdin, for tests.
func runXRPCWith(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("xrpc", flag.ContinueOnError)
	fs.SetOutput(stderr)
	host := fs.String("host", defaultXRPCHost, "base URL of the XRPC service")
	input := fs.String("input", "", "JSON request body: a file, or - for stdin")
	token := fs.String("auth-token", "", "bearer token (an access JWT) to send")
	adminPassword := fs.String("admin-password", "", "admin password to send with Basic auth")
	procedure := fs.Bool("procedure", false, "call a method the built-in lexicons do not know as a procedure (POST)")
	fs.Usage = func() {
		fmt.Fprintln(stderr, "usage: welkin xrpc <method-nsid> [key=value...] [--host URL] [--input file.json|-]")
		fmt.Fprintln(stderr, "                   [--auth-token T] [--admin-password P] [--procedure]")
		fmt.Fprintln(stderr)
		fmt.Fprintln(stderr, "Calls an XRPC method and prints its JSON response. key=value pairs are")
		fmt.Fprintln(stderr, "query parameters; a key given more than once is an array. The built-in")
		fmt.Fprintln(stderr, "lexicons tell queries (GET) from procedures (POST); other methods are")
		fmt.Fprintln(stderr, "queries unless --procedure is given.")
		fmt.Fprintln(stderr)
		fmt.Fprintln(stderr, "  --host URL            service to call (default "+defaultXRPCHost+")")
		fmt.Fprintln(stderr, "  --input FILE          JSON request body of a procedure (- reads stdin)")
		fmt.Fprintln(stderr, "  --auth-token T        send Authorization: Bearer T")
		fmt.Fprintln(stderr, "  --admin-password P    send Authorization: Basic admin:P")
		fmt.Fprintln(stderr, "  --procedure           treat an unknown method as a procedure")
	}
	pos, err := parseInterleaved(fs, args)
	if err != nil {
		return flagExitCode(err)
	}
	usage := func(format string, a ...any) int {
		fmt.Fprintf(stderr, "welkin xrpc: "+format+"\n", a...)
		fs.Usage()
		return 2
	}
	if len(pos) == 0 {
		return usage("want a method NSID")
	}
	nsid, err := syntax.ParseNSID(pos[0])
	if err != nil {
		return usage("%q is not an NSID: %v", pos[0], err)
	}
	params := url.Values{}
	for _, kv := range pos[1:] {
		k, v, ok := strings.Cut(kv, "=")
		if !ok || k == "" {
			return usage("parameter %q is not key=value", kv)
		}
		params.Add(k, v)
	}
	if *token != "" && *adminPassword != "" {
		return usage("--auth-token and --admin-password exclude each other")
	}
	u, err := url.Parse(*host)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return usage("--host %q is not an http(s) URL", *host)
	}

	kind, known, err := methodKind(nsid.String())
	if err != nil {
		fmt.Fprintf(stderr, "welkin xrpc: %v\n", err)
		return 1
	}
	if !known && *procedure {
		kind = xrpc.Procedure
	}
	if known && *procedure && kind != xrpc.Procedure {
		return usage("%s is a query, not a procedure", nsid)
	}

	var body any
	if *input != "" {
		if kind != xrpc.Procedure {
			return usage("--input needs a procedure; %s is a query", nsid)
		}
		b, err := readInput(*input, stdin)
		if err != nil {
			fmt.Fprintf(stderr, "welkin xrpc: reading --input: %v\n", err)
			return 2
		}
		if !json.Valid(b) {
			fmt.Fprintf(stderr, "welkin xrpc: --input %s is not JSON\n", *input)
			return 2
		}
		body = json.RawMessage(b)
	}

	c := &xrpc.Client{Host: strings.TrimSuffix(*host, "/"), UserAgent: "welkin/" + buildVersion()}
	switch {
	case *token != "":
		c.Auth = xrpc.BearerAuth{Token: *token}
	case *adminPassword != "":
		c.Auth = xrpc.AdminAuth{Password: *adminPassword}
	}
	ctx, cancel := context.WithTimeout(context.Background(), xrpcTimeout)
	defer cancel()
	var out any
	if err := c.Do(ctx, kind, nsid.String(), params, body, &out); err != nil {
		var xe *xrpc.Error
		if errors.As(err, &xe) {
			msg := xe.Message
			if msg == "" {
				msg = "(no message)"
			}
			fmt.Fprintf(stderr, "%s: %s (HTTP %d)\n", xe.Name, msg, xe.Status)
			return 1
		}
		fmt.Fprintf(stderr, "welkin xrpc: %s: %v\n", nsid, err)
		return 1
	}
	if out == nil {
		return 0
	}
	b, err := data.MarshalJSON(out)
	if err != nil {
		fmt.Fprintf(stderr, "welkin xrpc: printing the response: %v\n", err)
		return 1
	}
	var ind bytes.Buffer
	if err := json.Indent(&ind, b, "", "  "); err != nil {
		fmt.Fprintf(stderr, "welkin xrpc: printing the response: %v\n", err)
		return 1
	}
	ind.WriteByte('\n')
	if _, err := stdout.Write(ind.Bytes()); err != nil {
		return 1
	}
	return 0
}

// methodKind looks nsid up in the built-in lexicons: known is false when
// they do not describe it (the kind is then Query). A subscription is an
// error: it is not called over XRPC's request and response.
func methodKind(nsid string) (kind xrpc.Kind, known bool, err error) {
	cat, err := api.Catalog()
	if err != nil {
		return xrpc.Query, false, fmt.Errorf("loading the built-in lexicons: %w", err)
	}
	def, err := cat.Resolve(nsid)
	if err != nil {
		return xrpc.Query, false, nil
	}
	switch def.Schema.(type) {
	case *lexicon.Query:
		return xrpc.Query, true, nil
	case *lexicon.Procedure:
		return xrpc.Procedure, true, nil
	case *lexicon.Subscription:
		return xrpc.Query, true, fmt.Errorf("%s is a subscription (a WebSocket stream), not a query or procedure", nsid)
	default:
		return xrpc.Query, true, fmt.Errorf("%s is a %T definition, not an XRPC method", nsid, def.Schema)
	}
}

func readInput(name string, stdin io.Reader) ([]byte, error) {
	if name == "-" {
		return io.ReadAll(stdin)
	}
	return os.ReadFile(name)
}
