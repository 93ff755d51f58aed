package interop

import (
	"context"
	"encoding/json"
	"errors"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/welkin-atproto/welkin/api"
	"github.com/welkin-atproto/welkin/api/atproto"
	"github.com/welkin-atproto/welkin/atproto/xrpc"
)

// tsOutcome is what xrpc.js reports of one call: the data of a success,
// or what the TypeScript client exposes of the error it threw.
type tsOutcome struct {
	OK      bool              `json:"ok"`
	Data    json.RawMessage   `json:"data"`
	Class   string            `json:"class"`
	Error   string            `json:"error"`
	Status  int               `json:"status"`
	Message string            `json:"message"`
	Headers map[string]string `json:"headers"`
}

// tsCall is one call xrpc.js makes, through XrpcClient.call or, when
// Agent is set, through the typed methods of AtpAgent.
type tsCall struct {
	Name   string         `json:"name"`
	NSID   string         `json:"nsid,omitempty"`
	Agent  string         `json:"agent,omitempty"`
	Params map[string]any `json:"params,omitempty"`
	Input  any            `json:"input,omitempty"`
}

// errorCase is one error a Welkin server sends, with what the reference
// server (@atproto/xrpc-server and the PDS on top of it) sends in the same
// situation.
type errorCase struct {
	call tsCall
	// kind is how the client's lexicon declares a com.example method; the
	// server registers it as serverKind (the same unless testing the
	// wrong HTTP method), or not at all when err and register are nil.
	kind       string
	serverKind xrpc.Kind
	err        error // returned by the handler
	register   bool
	input      bool // the client's lexicon declares a JSON body

	wantName   string
	wantStatus int
	wantClass  string
	// wantMessage is the exact message, when the handler chose it.
	wantMessage string
}

const testLimitReset = 1893456000 // 2030-01-01T00:00:00Z

func xrpcErrorCases() []errorCase {
	big := strings.Repeat("a", xrpc.DefaultMaxJSONBody+1024)
	return []errorCase{
		{
			// The TypeScript client does not check parameters; the
			// server refuses an actor that is neither handle nor DID.
			call:       tsCall{Name: "badParams", NSID: "app.bsky.actor.getProfile", Params: map[string]any{"actor": "not a handle!"}},
			wantName:   "InvalidRequest",
			wantStatus: 400, wantClass: "XRPCError",
		},
		{
			// The client's lexicon says query, the server's procedure.
			call: tsCall{Name: "wrongMethod", NSID: "com.example.wrongMethod"}, kind: "query",
			serverKind: xrpc.Procedure, register: true,
			wantName: "InvalidRequest", wantStatus: 400, wantClass: "XRPCError",
		},
		{
			call: tsCall{Name: "notImplemented", NSID: "com.example.notImplemented"}, kind: "query",
			wantName: "MethodNotImplemented", wantStatus: 501, wantClass: "XRPCError",
		},
		{
			call: tsCall{Name: "authRequired", NSID: "com.example.authRequired"}, kind: "query",
			err:      xrpc.AuthRequired("Authentication Required"),
			wantName: "AuthenticationRequired", wantStatus: 401, wantClass: "XRPCError", wantMessage: "Authentication Required",
		},
		{
			call: tsCall{Name: "expiredToken", NSID: "com.example.expiredToken"}, kind: "query",
			err:      xrpc.ExpiredToken("Token has expired"),
			wantName: "ExpiredToken", wantStatus: 400, wantClass: "XRPCError", wantMessage: "Token has expired",
		},
		{
			call: tsCall{Name: "invalidToken", NSID: "com.example.invalidToken"}, kind: "query",
			err:      xrpc.InvalidToken("Token could not be verified"),
			wantName: "InvalidToken", wantStatus: 400, wantClass: "XRPCError", wantMessage: "Token could not be verified",
		},
		{
			call: tsCall{Name: "forbidden", NSID: "com.example.forbidden"}, kind: "procedure",
			err:      xrpc.Forbidden("Admin access required"),
			wantName: "Forbidden", wantStatus: 403, wantClass: "XRPCError", wantMessage: "Admin access required",
		},
		{
			call: tsCall{Name: "notFound", NSID: "com.example.notFound"}, kind: "query",
			err:      xrpc.NotFound("Not Found"),
			wantName: "NotFound", wantStatus: 404, wantClass: "XRPCError", wantMessage: "Not Found",
		},
		{
			// A name the lexicon declares: the agent's typed method
			// turns it into its own error class.
			call: tsCall{Name: "recordNotFound", Agent: "getRecord", Params: map[string]any{
				"repo": "did:plc:abcdefghijklmnopqrstuvwx", "collection": "app.bsky.feed.post", "rkey": "3jzfcijpj2z2a",
			}},
			wantName: "RecordNotFound", wantStatus: 404, wantClass: "RecordNotFoundError", wantMessage: "Could not locate record",
		},
		{
			// The framework refuses a body over its limit.
			call: tsCall{Name: "payloadTooLarge", NSID: "com.example.upload", Input: map[string]any{"text": big}}, kind: "procedure",
			serverKind: xrpc.Procedure, register: true, input: true,
			wantName: "PayloadTooLarge", wantStatus: 413, wantClass: "XRPCError",
		},
		{
			call: tsCall{Name: "rateLimited", NSID: "com.example.rateLimited"}, kind: "query",
			err: xrpc.RateLimitExceeded(xrpc.RateLimit{
				Limit: 100, Remaining: 0, Reset: time.Unix(testLimitReset, 0), Policy: "100;w=300",
			}),
			wantName: "RateLimitExceeded", wantStatus: 429, wantClass: "XRPCError",
		},
		{
			// Any error that is not an *xrpc.Error is an opaque 500.
			call: tsCall{Name: "internal", NSID: "com.example.internal"}, kind: "query",
			err:      errors.New("database on fire"),
			wantName: "InternalServerError", wantStatus: 500, wantClass: "XRPCError",
		},
		{
			call: tsCall{Name: "upstreamFailure", NSID: "com.example.upstreamFailure"}, kind: "query",
			err:      xrpc.UpstreamFailure("Upstream service unreachable"),
			wantName: "UpstreamFailure", wantStatus: 502, wantClass: "XRPCError", wantMessage: "Upstream service unreachable",
		},
		{
			call: tsCall{Name: "unavailable", NSID: "com.example.unavailable"}, kind: "query",
			err:      xrpc.Unavailable("Try again later"),
			wantName: "NotEnoughResources", wantStatus: 503, wantClass: "XRPCError", wantMessage: "Try again later",
		},
		{
			call: tsCall{Name: "upstreamTimeout", NSID: "com.example.upstreamTimeout"}, kind: "query",
			err:      xrpc.UpstreamTimeout("Upstream timed out"),
			wantName: "UpstreamTimeout", wantStatus: 504, wantClass: "XRPCError", wantMessage: "Upstream timed out",
		},
	}
}

// methodLexicon is a minimal schema document for a test method.
func methodLexicon(nsid, kind string, input bool) map[string]any {
	main := map[string]any{
		"type":   kind,
		"output": map[string]any{"encoding": "application/json"},
	}
	if input {
		main["input"] = map[string]any{"encoding": "application/json"}
	}
	return map[string]any{"lexicon": 1, "id": nsid, "defs": map[string]any{"main": main}}
}

const xrpcTestServerDID = "did:web:pds.example.com"

// newXRPCInteropServer serves the error cases and describeServer with
// Welkin's XRPC server, checking against the published lexicons.
func newXRPCInteropServer(t *testing.T, cases []errorCase) string {
	t.Helper()
	cat, err := api.Catalog()
	if err != nil {
		t.Fatal(err)
	}
	s := xrpc.NewServer(cat)
	s.ValidateOutput = true
	xrpc.HandleQuery(s, atproto.ServerDescribeServerNSID, func(ctx context.Context, _ *xrpc.NoParams) (*atproto.ServerDescribeServer_Output, error) {
		open := false
		return &atproto.ServerDescribeServer_Output{
			Did:                  xrpcTestServerDID,
			AvailableUserDomains: []string{".example.com"},
			InviteCodeRequired:   &open,
		}, nil
	})
	xrpc.HandleQuery(s, atproto.RepoGetRecordNSID, func(ctx context.Context, p *atproto.RepoGetRecord_Params) (*atproto.RepoGetRecord_Output, error) {
		return nil, xrpc.Errorf(404, "RecordNotFound", "Could not locate record")
	})
	s.Handle("app.bsky.actor.getProfile", xrpc.Query, func(ctx context.Context, req *xrpc.Request) (*xrpc.Response, error) {
		t.Errorf("getProfile reached its handler with %v", req.Query)
		return nil, nil
	})
	s.Handle("com.example.echo", xrpc.Procedure, func(ctx context.Context, req *xrpc.Request) (*xrpc.Response, error) {
		return &xrpc.Response{Body: map[string]any{"input": req.Input, "q": req.Query.Get("q")}}, nil
	})
	for _, c := range cases {
		if c.call.Agent != "" || !strings.HasPrefix(c.call.NSID, "com.example.") {
			continue
		}
		switch {
		case c.err != nil:
			kind := xrpc.Query
			if c.kind == "procedure" {
				kind = xrpc.Procedure
			}
			herr := c.err
			s.Handle(c.call.NSID, kind, func(ctx context.Context, req *xrpc.Request) (*xrpc.Response, error) {
				return nil, herr
			})
		case c.register:
			name := c.call.Name
			s.Handle(c.call.NSID, c.serverKind, func(ctx context.Context, req *xrpc.Request) (*xrpc.Response, error) {
				t.Errorf("%s reached its handler", name)
				return nil, nil
			})
		}
	}
	srv := httptest.NewServer(s)
	t.Cleanup(srv.Close)
	return srv.URL
}

// TestTypeScriptXRPCClient has the reference TypeScript clients call a
// Welkin XRPC server: typed calls get their data, and every kind of
// error reaches them with the name and status the reference server
// would send, mapped to the same error classes.
func TestTypeScriptXRPCClient(t *testing.T) {
	requireNode(t)
	cases := xrpcErrorCases()
	host := newXRPCInteropServer(t, cases)

	echo := methodLexicon("com.example.echo", "procedure", true)
	echo["defs"].(map[string]any)["main"].(map[string]any)["parameters"] = map[string]any{
		"type":       "params",
		"properties": map[string]any{"q": map[string]any{"type": "string"}},
	}
	lexicons := []any{echo}
	calls := []tsCall{
		{Name: "describeServer", Agent: "describeServer"},
		{Name: "echo", NSID: "com.example.echo", Params: map[string]any{"q": "hello"}, Input: map[string]any{"n": 7, "s": "x"}},
	}
	for _, c := range cases {
		if c.kind != "" {
			lexicons = append(lexicons, methodLexicon(c.call.NSID, c.kind, c.input))
		}
		calls = append(calls, c.call)
	}
	stdin, err := json.Marshal(map[string]any{"lexicons": lexicons, "calls": calls})
	if err != nil {
		t.Fatal(err)
	}
	out, err := runNode(t, stdin, "xrpc.js", host)
	if err != nil {
		t.Fatal(err)
	}
	var got map[string]tsOutcome
	if err := json.Unmarshal(out, &got); err != nil {
		t.Fatalf("reading xrpc.js output: %v\n%s", err, out)
	}

	t.Run("describeServer", func(t *testing.T) {
		r := got["describeServer"]
		if !r.OK {
			t.Fatalf("AtpAgent describeServer failed: %+v", r)
		}
		var d struct {
			DID                  string   `json:"did"`
			AvailableUserDomains []string `json:"availableUserDomains"`
			InviteCodeRequired   *bool    `json:"inviteCodeRequired"`
		}
		if err := json.Unmarshal(r.Data, &d); err != nil {
			t.Fatal(err)
		}
		if d.DID != xrpcTestServerDID || len(d.AvailableUserDomains) != 1 || d.AvailableUserDomains[0] != ".example.com" ||
			d.InviteCodeRequired == nil || *d.InviteCodeRequired {
			t.Errorf("describeServer data %s", r.Data)
		}
	})
	t.Run("echo", func(t *testing.T) {
		r := got["echo"]
		if !r.OK {
			t.Fatalf("XrpcClient.call failed: %+v", r)
		}
		if !jsonEqual(t, r.Data, []byte(`{"input":{"n":7,"s":"x"},"q":"hello"}`)) {
			t.Errorf("echo data %s", r.Data)
		}
	})
	for _, c := range cases {
		t.Run(c.call.Name, func(t *testing.T) {
			r, ok := got[c.call.Name]
			if !ok {
				t.Fatal("xrpc.js reported nothing")
			}
			if r.OK {
				t.Fatalf("the call succeeded with %s; want %d %s", r.Data, c.wantStatus, c.wantName)
			}
			t.Logf("%s: %s error=%q status=%d message=%q", c.call.Name, r.Class, r.Error, r.Status, r.Message)
			if r.Class != c.wantClass || r.Error != c.wantName || r.Status != c.wantStatus {
				t.Errorf("client saw %s{error: %q, status: %d}, want %s{error: %q, status: %d}",
					r.Class, r.Error, r.Status, c.wantClass, c.wantName, c.wantStatus)
			}
			if r.Message == "" {
				t.Error("empty message")
			}
			if c.wantMessage != "" && r.Message != c.wantMessage {
				t.Errorf("message %q, want %q", r.Message, c.wantMessage)
			}
			if c.wantStatus == 500 && strings.Contains(r.Message, "fire") {
				t.Errorf("a 500 leaked its cause: %q", r.Message)
			}
			if c.wantStatus == 429 {
				want := map[string]string{
					"ratelimit-limit":     "100",
					"ratelimit-remaining": "0",
					"ratelimit-reset":     strconv.Itoa(testLimitReset),
					"ratelimit-policy":    "100;w=300",
				}
				for h, v := range want {
					if r.Headers[h] != v {
						t.Errorf("header %s = %q, want %q (all: %v)", h, r.Headers[h], v, r.Headers)
					}
				}
			}
		})
	}
}
