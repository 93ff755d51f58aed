package main

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/welkin-atproto/welkin/api"
	"github.com/welkin-atproto/welkin/api/atproto"
	"github.com/welkin-atproto/welkin/atproto/xrpc"
)

const testServerDID = "did:web:pds.example.com"

// newXRPCTestServer serves describeServer and createSession (validated
// against the built-in lexicons) and two methods no lexicon describes:
// com.example.echo, a procedure answering its body and Authorization
// header, and com.example.params, a query answering its parameters.
func newXRPCTestServer(t *testing.T) string {
	t.Helper()
	cat, err := api.Catalog()
	if err != nil {
		t.Fatal(err)
	}
	s := xrpc.NewServer(cat)
	s.ValidateOutput = true
	xrpc.HandleQuery(s, atproto.ServerDescribeServerNSID, func(ctx context.Context, _ *xrpc.NoParams) (*atproto.ServerDescribeServer_Output, error) {
		return &atproto.ServerDescribeServer_Output{
			Did:                  testServerDID,
			AvailableUserDomains: []string{".example.com"},
		}, nil
	})
	xrpc.HandleProcedure(s, atproto.ServerCreateSessionNSID, func(ctx context.Context, in *atproto.ServerCreateSession_Input) (*atproto.ServerCreateSession_Output, error) {
		if in.Identifier != "alice.example.com" || in.Password != "hunter2" {
			return nil, xrpc.AuthRequired("Invalid identifier or password")
		}
		return &atproto.ServerCreateSession_Output{
			AccessJwt:  "access-token",
			RefreshJwt: "refresh-token",
			Handle:     "alice.example.com",
			Did:        "did:plc:abcdefghijklmnopqrstuvwx",
		}, nil
	})
	s.Handle("com.example.echo", xrpc.Procedure, func(ctx context.Context, req *xrpc.Request) (*xrpc.Response, error) {
		return &xrpc.Response{Body: map[string]any{
			"input":         req.Input,
			"authorization": req.HTTP.Header.Get("Authorization"),
		}}, nil
	})
	s.Handle("com.example.params", xrpc.Query, func(ctx context.Context, req *xrpc.Request) (*xrpc.Response, error) {
		out := map[string]any{}
		for k, vs := range req.Query {
			out[k] = vs
		}
		return &xrpc.Response{Body: out}, nil
	})
	srv := httptest.NewServer(s)
	t.Cleanup(srv.Close)
	return srv.URL
}

// runXRPCTest runs "welkin xrpc args..." with stdin and returns the exit
// code, stdout and stderr.
func runXRPCTest(t *testing.T, stdin string, args ...string) (int, string, string) {
	t.Helper()
	var out, errOut bytes.Buffer
	code := runXRPCWith(args, strings.NewReader(stdin), &out, &errOut)
	return code, out.String(), errOut.String()
}

func decodeOutput(t *testing.T, out string) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal([]byte(out), &m); err != nil {
		t.Fatalf("output is not a JSON object: %v\n%s", err, out)
	}
	return m
}

func TestXRPCQuery(t *testing.T) {
	host := newXRPCTestServer(t)
	code, out, errOut := runXRPCTest(t, "", "com.atproto.server.describeServer", "--host", host)
	if code != 0 {
		t.Fatalf("exit %d, stderr %q", code, errOut)
	}
	m := decodeOutput(t, out)
	if m["did"] != testServerDID {
		t.Errorf("did = %v, want %s", m["did"], testServerDID)
	}
	if !strings.Contains(out, "\n  \"did\": ") || !strings.HasSuffix(out, "}\n") {
		t.Errorf("output is not indented JSON ending in a newline:\n%s", out)
	}
}

func TestXRPCRepeatedParamsAreArrays(t *testing.T) {
	host := newXRPCTestServer(t)
	code, out, errOut := runXRPCTest(t, "", "--host", host, "com.example.params", "tag=a", "tag=b", "limit=5", "q=x=y")
	if code != 0 {
		t.Fatalf("exit %d, stderr %q", code, errOut)
	}
	m := decodeOutput(t, out)
	want := map[string][]any{"tag": {"a", "b"}, "limit": {"5"}, "q": {"x=y"}}
	for k, w := range want {
		got, _ := m[k].([]any)
		if len(got) != len(w) {
			t.Errorf("%s = %v, want %v", k, m[k], w)
			continue
		}
		for i := range w {
			if got[i] != w[i] {
				t.Errorf("%s = %v, want %v", k, m[k], w)
			}
		}
	}
}

func TestXRPCProcedureFromFile(t *testing.T) {
	host := newXRPCTestServer(t)
	in := filepath.Join(t.TempDir(), "in.json")
	if err := os.WriteFile(in, []byte(`{"identifier":"alice.example.com","password":"hunter2"}`), 0o600); err != nil {
		t.Fatal(err)
	}
	code, out, errOut := runXRPCTest(t, "", "com.atproto.server.createSession", "--input", in, "--host", host)
	if code != 0 {
		t.Fatalf("exit %d, stderr %q", code, errOut)
	}
	m := decodeOutput(t, out)
	if m["accessJwt"] != "access-token" || m["handle"] != "alice.example.com" {
		t.Errorf("unexpected session %v", m)
	}
}

func TestXRPCErrorIsPrinted(t *testing.T) {
	host := newXRPCTestServer(t)
	code, out, errOut := runXRPCTest(t, `{"identifier":"alice.example.com","password":"wrong"}`,
		"com.atproto.server.createSession", "--input", "-", "--host", host)
	if code != 1 {
		t.Fatalf("exit %d, want 1; stdout %q", code, out)
	}
	if want := "AuthenticationRequired: Invalid identifier or password (HTTP 401)\n"; errOut != want {
		t.Errorf("stderr %q, want %q", errOut, want)
	}
	if out != "" {
		t.Errorf("stdout %q, want nothing", out)
	}

	// The server refuses a body the lexicon forbids.
	code, _, errOut = runXRPCTest(t, `{"identifier":"alice.example.com"}`,
		"com.atproto.server.createSession", "--input", "-", "--host", host)
	if code != 1 || !strings.HasPrefix(errOut, "InvalidRequest: ") || !strings.HasSuffix(errOut, "(HTTP 400)\n") {
		t.Errorf("missing password: exit %d, stderr %q", code, errOut)
	}

	// A method the server does not implement.
	code, _, errOut = runXRPCTest(t, "", "com.atproto.sync.getLatestCommit", "did=did:plc:abcdefghijklmnopqrstuvwx", "--host", host)
	if code != 1 || !strings.HasPrefix(errOut, "MethodNotImplemented: ") || !strings.HasSuffix(errOut, "(HTTP 501)\n") {
		t.Errorf("unimplemented method: exit %d, stderr %q", code, errOut)
	}
}

func TestXRPCUnknownMethodAsProcedure(t *testing.T) {
	host := newXRPCTestServer(t)
	code, out, errOut := runXRPCTest(t, `{"hello":"world","n":3}`,
		"com.example.echo", "--procedure", "--input", "-", "--auth-token", "tok123", "--host", host)
	if code != 0 {
		t.Fatalf("exit %d, stderr %q", code, errOut)
	}
	m := decodeOutput(t, out)
	in, _ := m["input"].(map[string]any)
	if in["hello"] != "world" || in["n"] != float64(3) {
		t.Errorf("echoed input %v", m["input"])
	}
	if m["authorization"] != "Bearer tok123" {
		t.Errorf("authorization %v, want the bearer token", m["authorization"])
	}

	// Without --procedure an unknown method is a query: the server
	// answers that a procedure was called with GET.
	code, _, errOut = runXRPCTest(t, "", "com.example.echo", "--host", host)
	if code != 1 || !strings.HasPrefix(errOut, "InvalidRequest: ") || !strings.HasSuffix(errOut, "(HTTP 400)\n") {
		t.Errorf("echo as a query: exit %d, stderr %q", code, errOut)
	}
}

func TestXRPCAdminPassword(t *testing.T) {
	host := newXRPCTestServer(t)
	code, out, errOut := runXRPCTest(t, "", "com.example.echo", "--procedure", "--admin-password", "s3cret", "--host", host)
	if code != 0 {
		t.Fatalf("exit %d, stderr %q", code, errOut)
	}
	m := decodeOutput(t, out)
	want := "Basic " + base64.StdEncoding.EncodeToString([]byte("admin:s3cret"))
	if m["authorization"] != want {
		t.Errorf("authorization %v, want %s", m["authorization"], want)
	}
}

func TestXRPCUsageErrors(t *testing.T) {
	host := newXRPCTestServer(t)
	for name, args := range map[string][]string{
		"no method":        {"--host", host},
		"bad nsid":         {"not an nsid", "--host", host},
		"bad param":        {"com.atproto.server.describeServer", "noequals", "--host", host},
		"input on a query": {"com.atproto.server.describeServer", "--input", "-", "--host", host},
		"input not json":   {"com.atproto.server.createSession", "--input", "-", "--host", host},
		"bad host":         {"com.atproto.server.describeServer", "--host", "ftp://example.com"},
		"both auths":       {"com.atproto.server.describeServer", "--auth-token", "a", "--admin-password", "b", "--host", host},
		"query forced":     {"com.atproto.server.describeServer", "--procedure", "--host", host},
		"unknown flag":     {"com.atproto.server.describeServer", "--bogus", "--host", host},
	} {
		t.Run(name, func(t *testing.T) {
			code, out, errOut := runXRPCTest(t, "{not json", args...)
			if code != 2 {
				t.Errorf("exit %d, want 2; stdout %q stderr %q", code, out, errOut)
			}
			if errOut == "" {
				t.Error("nothing on stderr")
			}
		})
	}
}

func TestXRPCIsACommand(t *testing.T) {
	host := newXRPCTestServer(t)
	var out, errOut bytes.Buffer
	if code := run([]string{"xrpc", "com.atproto.server.describeServer", "--host", host}, &out, &errOut); code != 0 {
		t.Fatalf("exit %d, stderr %q", code, errOut.String())
	}
	if decodeOutput(t, out.String())["did"] != testServerDID {
		t.Errorf("unexpected output %s", out.String())
	}
}
