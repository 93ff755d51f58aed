package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/url"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"

	"github.com/welkin-atproto/welkin/atproto/data"
	"github.com/welkin-atproto/welkin/atproto/stream"
)

const (
	repoStreamPath  = "/xrpc/com.atproto.sync.subscribeRepos"
	labelStreamPath = "/xrpc/com.atproto.label.subscribeLabels"
	// firehoseMaxOps bounds how many of a commit's ops one text line names.
	firehoseMaxOps = 5
)

// errLimitReached ends a subscription once --limit events are printed.
var errLimitReached = errors.New("limit reached")

type firehoseOptions struct {
	url    string
	cursor int64 // < 0: live
	json   bool
	limit  int // <= 0: no limit
}

func runFirehose(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("firehose", flag.ContinueOnError)
	fs.SetOutput(stderr)
	cursor := fs.Int64("cursor", -1, "replay from after this seq (0: everything retained)")
	asJSON := fs.Bool("json", false, "print each event as one JSON object")
	limit := fs.Int("limit", 0, "exit after this many events")
	labels := fs.Bool("labels", false, "subscribe to com.atproto.label.subscribeLabels")
	fs.Usage = func() {
		fmt.Fprintln(stderr, "usage: welkin firehose <url|host> [--cursor N] [--json] [--limit N] [--labels]")
		fmt.Fprintln(stderr)
		fmt.Fprintln(stderr, "Prints the events of an atproto event stream, one line each, reconnecting")
		fmt.Fprintln(stderr, "and resuming after dropped connections. A host alone means")
		fmt.Fprintln(stderr, "wss://<host>"+repoStreamPath+"; http(s) URLs become ws(s).")
		fmt.Fprintln(stderr)
		fmt.Fprintln(stderr, "  --cursor N   replay from after seq N (0: everything retained; default: live)")
		fmt.Fprintln(stderr, "  --json       print {\"seq\", \"type\", \"body\"} objects, blocks as their length")
		fmt.Fprintln(stderr, "  --limit N    exit after N events")
		fmt.Fprintln(stderr, "  --labels     for a host or bare URL, use com.atproto.label.subscribeLabels")
	}
	pos, err := parseInterleaved(fs, args)
	if err != nil {
		return flagExitCode(err)
	}
	if len(pos) != 1 {
		fmt.Fprintln(stderr, "welkin firehose: want exactly one URL or host")
		fs.Usage()
		return 2
	}
	if *limit < 0 {
		fmt.Fprintln(stderr, "welkin firehose: --limit must not be negative")
		return 2
	}
	path := repoStreamPath
	if *labels {
		path = labelStreamPath
	}
	u, err := streamURL(pos[0], path)
	if err != nil {
		fmt.Fprintf(stderr, "welkin firehose: %v\n", err)
		return 2
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	return firehose(ctx, firehoseOptions{url: u, cursor: *cursor, json: *asJSON, limit: *limit}, stdout, stderr)
}

// streamURL turns the command's argument into a WebSocket URL: ws(s) URLs
// are kept, http(s) URLs switch scheme, and a bare host becomes a wss URL.
// A URL with no path gets defaultPath.
func streamURL(arg, defaultPath string) (string, error) {
	if !strings.Contains(arg, "://") {
		arg = "wss://" + arg
	}
	u, err := url.Parse(arg)
	if err != nil {
		return "", err
	}
	switch u.Scheme {
	case "ws", "wss":
	case "http":
		u.Scheme = "ws"
	case "https":
		u.Scheme = "wss"
	default:
		return "", fmt.Errorf("%q: want a ws, wss, http or https URL, or a host", arg)
	}
	if u.Host == "" {
		return "", fmt.Errorf("%q: no host", arg)
	}
	if u.Path == "" || u.Path == "/" {
		u.Path = defaultPath
	}
	return u.String(), nil
}

// firehose subscribes and prints until ctx ends (exit 0), the limit is
// reached (exit 0) or the server sends an error frame (exit 1).
func firehose(ctx context.Context, o firehoseOptions, stdout, stderr io.Writer) int {
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	n := 0
	handler := func(_ context.Context, m stream.Message) error {
		if m.Header.T == "#info" && !o.json {
			fmt.Fprintf(stderr, "info: %s\n", infoText(m.Body))
			return nil
		}
		var line string
		var err error
		if o.json {
			line, err = eventJSON(m)
		} else {
			line = eventLine(m)
		}
		if err != nil {
			return fmt.Errorf("seq %d: %w", m.Seq, err)
		}
		if _, err := io.WriteString(stdout, line+"\n"); err != nil {
			return err
		}
		if m.Header.T == "#info" {
			return nil
		}
		n++
		if o.limit > 0 && n >= o.limit {
			return errLimitReached
		}
		return nil
	}
	opts := &stream.SubscribeOptions{
		OnError: func(err error) {
			// Subscribe reconnects after error frames other than
			// FutureCursor; this command reports them and stops.
			var se *stream.StreamError
			if errors.As(err, &se) {
				cancel(se)
				return
			}
			fmt.Fprintf(stderr, "welkin firehose: %v; reconnecting\n", err)
		},
	}
	err := stream.Subscribe(ctx, o.url, o.cursor, handler, opts)
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		err = context.Cause(ctx)
	}
	var se *stream.StreamError
	switch {
	case err == nil, errors.Is(err, errLimitReached):
		return 0
	case errors.As(err, &se):
		if se.Message == "" {
			fmt.Fprintf(stderr, "error: %s\n", se.Name)
		} else {
			fmt.Fprintf(stderr, "error: %s: %s\n", se.Name, se.Message)
		}
		return 1
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		return 0 // interrupted
	default:
		fmt.Fprintf(stderr, "welkin firehose: %v\n", err)
		return 1
	}
}

// eventLine is the one-line summary of an event:
// "seq <n> <#type> <did or repo> <summary>".
func eventLine(m stream.Message) string {
	body, err := data.UnmarshalCBOR(m.Body)
	if err != nil {
		return fmt.Sprintf("seq %d %s (undecodable body: %v)", m.Seq, m.Header.T, err)
	}
	parts := []string{"seq", strconv.FormatInt(m.Seq, 10), m.Header.T}
	if who := stream.RepoKey(m); who != "" {
		parts = append(parts, who)
	}
	switch m.Header.T {
	case "#commit":
		parts = append(parts, commitSummary(body)...)
	case "#sync":
		if rev, ok := body["rev"].(string); ok {
			parts = append(parts, "rev", rev)
		}
	case "#identity":
		if h, ok := body["handle"].(string); ok {
			parts = append(parts, "handle", h)
		} else {
			parts = append(parts, "no handle")
		}
	case "#account":
		if a, ok := body["active"].(bool); ok {
			parts = append(parts, "active="+strconv.FormatBool(a))
		}
		if s, ok := body["status"].(string); ok {
			parts = append(parts, "status="+s)
		}
	case "#labels":
		parts = append(parts, labelsSummary(body))
	}
	return strings.Join(parts, " ")
}

// commitSummary names a commit's rev and its ops ("create
// app.bsky.feed.post/3k..."), at most firehoseMaxOps of them.
func commitSummary(body map[string]any) []string {
	var parts []string
	if rev, ok := body["rev"].(string); ok {
		parts = append(parts, "rev", rev)
	}
	if big, ok := body["tooBig"].(bool); ok && big {
		parts = append(parts, "tooBig")
	}
	ops, _ := body["ops"].([]any)
	var names []string
	for i, op := range ops {
		if i == firehoseMaxOps {
			names = append(names, fmt.Sprintf("(+%d more)", len(ops)-i))
			break
		}
		om, _ := op.(map[string]any)
		action, _ := om["action"].(string)
		path, _ := om["path"].(string)
		names = append(names, action+" "+path)
	}
	if len(names) == 0 {
		return append(parts, "no ops")
	}
	return append(parts, strings.Join(names, ", "))
}

// labelsSummary lists a #labels event's labels as "src uri val", a
// negation's val prefixed with "-".
func labelsSummary(body map[string]any) string {
	labels, _ := body["labels"].([]any)
	var out []string
	for _, l := range labels {
		lm, _ := l.(map[string]any)
		src, _ := lm["src"].(string)
		uri, _ := lm["uri"].(string)
		val, _ := lm["val"].(string)
		if neg, _ := lm["neg"].(bool); neg {
			val = "-" + val
		}
		out = append(out, src+" "+uri+" "+val)
	}
	if len(out) == 0 {
		return "no labels"
	}
	return strings.Join(out, ", ")
}

// infoText renders an #info body as "Name: message".
func infoText(b []byte) string {
	body, err := data.UnmarshalCBOR(b)
	if err != nil {
		return fmt.Sprintf("(undecodable body: %v)", err)
	}
	name, _ := body["name"].(string)
	if msg, ok := body["message"].(string); ok && msg != "" {
		return name + ": " + msg
	}
	return name
}

// eventJSON renders an event as {"seq":…,"type":…,"body":…}, the body in
// atproto JSON with any "blocks" byte string replaced by its length.
func eventJSON(m stream.Message) (string, error) {
	body, err := data.UnmarshalCBOR(m.Body)
	if err != nil {
		return "", err
	}
	if b, ok := body["blocks"].(data.Bytes); ok {
		body["blocks"] = int64(len(b))
	}
	bj, err := data.MarshalJSON(body)
	if err != nil {
		return "", err
	}
	tj, err := json.Marshal(m.Header.T)
	if err != nil {
		return "", err
	}
	return fmt.Sprintf(`{"seq":%d,"type":%s,"body":%s}`, m.Seq, tj, bj), nil
}
