package xrpc_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"errors"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/welkin-atproto/welkin/api/atproto"
	"github.com/welkin-atproto/welkin/api/bsky"
	"github.com/welkin-atproto/welkin/api/lexutil"
	"github.com/welkin-atproto/welkin/atproto/xrpc"
)

var fastRetry = &xrpc.RetryPolicy{MaxAttempts: 4, BaseDelay: time.Millisecond, MaxDelay: time.Second}

func TestClientRoundTrip(t *testing.T) {
	ts := start(t, testServer(t))
	c := &xrpc.Client{Host: ts.URL, HTTPClient: ts.Client()}
	ctx := context.Background()

	desc, err := atproto.ServerDescribeServer(ctx, c)
	if err != nil {
		t.Fatal(err)
	}
	if desc.Did != "did:web:pds.example.com" || len(desc.AvailableUserDomains) != 1 {
		t.Errorf("describeServer: %+v", desc)
	}

	prof, err := bsky.ActorGetProfile(ctx, c, &bsky.ActorGetProfile_Params{Actor: "alice.test"})
	if err != nil {
		t.Fatal(err)
	}
	if prof.Handle != "alice.test" || prof.Did != testDID {
		t.Errorf("getProfile: %+v", prof)
	}

	sess, err := atproto.ServerCreateSession(ctx, c, &atproto.ServerCreateSession_Input{Identifier: "alice.test", Password: "hunter2"})
	if err != nil {
		t.Fatal(err)
	}
	if sess.AccessJwt != "a" || sess.Handle != "alice.test" {
		t.Errorf("createSession: %+v", sess)
	}

	// Generic output.
	var m map[string]any
	if err := c.Do(ctx, xrpc.Query, "com.example.fail", nil, nil, &m); err != nil || m["ok"] != true {
		t.Errorf("generic output: %v %v", m, err)
	}
}

func TestClientErrors(t *testing.T) {
	ts := start(t, testServer(t))
	c := &xrpc.Client{Host: ts.URL, HTTPClient: ts.Client(), Retry: &xrpc.RetryPolicy{MaxAttempts: 1}}
	ctx := context.Background()

	_, err := atproto.ServerCreateSession(ctx, c, &atproto.ServerCreateSession_Input{Identifier: "alice.test", Password: "wrong"})
	var xe *xrpc.Error
	if !errors.As(err, &xe) || xe.Status != 401 || xe.Name != "AuthenticationRequired" || xe.Message != "Invalid identifier or password" {
		t.Fatalf("got %#v", err)
	}
	if !errors.Is(err, xrpc.AuthRequired("")) {
		t.Error("errors.Is by name fails")
	}
	for k, want := range errorKinds {
		err := c.Do(ctx, xrpc.Query, "com.example.fail", map[string][]string{"kind": {k}}, nil, nil)
		if !errors.As(err, &xe) || xe.Status != want.Status || xe.Name != want.Name {
			t.Errorf("%s: got %v, want %d %s", k, err, want.Status, want.Name)
		}
	}
	err = c.Do(ctx, xrpc.Query, "com.example.fail", map[string][]string{"kind": {"custom"}}, nil, nil)
	if !errors.As(err, &xe) || xe.Name != "RepoNotFound" {
		t.Errorf("custom: %v", err)
	}
	// A status without an envelope is named after its status.
	plain := start(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, "nope", http.StatusBadGateway)
	}))
	c2 := &xrpc.Client{Host: plain.URL, HTTPClient: plain.Client(), Retry: &xrpc.RetryPolicy{MaxAttempts: 1}}
	err = c2.Do(ctx, xrpc.Query, "com.example.x", nil, nil, nil)
	if !errors.As(err, &xe) || xe.Status != 502 || xe.Name != "UpstreamFailure" {
		t.Errorf("plain 502: %v", err)
	}
}

func TestClientRetries(t *testing.T) {
	s := xrpc.NewServer(nil)
	var n atomic.Int32
	s.Handle("com.example.flaky", xrpc.Query, func(ctx context.Context, req *xrpc.Request) (*xrpc.Response, error) {
		switch n.Add(1) {
		case 1:
			return nil, xrpc.Unavailable("busy")
		case 2:
			e := xrpc.RateLimitExceeded(xrpc.RateLimit{Limit: 1, Remaining: 0, Reset: time.Now()})
			e.Header.Set("Retry-After", "0")
			return nil, e
		}
		return &xrpc.Response{Body: map[string]any{"n": int64(n.Load())}}, nil
	})
	var p atomic.Int32
	s.Handle("com.example.flakyProc", xrpc.Procedure, func(ctx context.Context, req *xrpc.Request) (*xrpc.Response, error) {
		p.Add(1)
		return nil, xrpc.Unavailable("busy")
	})
	ts := start(t, s)
	c := &xrpc.Client{Host: ts.URL, HTTPClient: ts.Client(), Retry: fastRetry}
	var out map[string]any
	if err := c.Do(context.Background(), xrpc.Query, "com.example.flaky", nil, nil, &out); err != nil {
		t.Fatal(err)
	}
	if out["n"] != int64(3) {
		t.Errorf("got %v after %d calls", out, n.Load())
	}
	// Procedures are not retried.
	err := c.Do(context.Background(), xrpc.Procedure, "com.example.flakyProc", nil, map[string]any{}, nil)
	var xe *xrpc.Error
	if !errors.As(err, &xe) || xe.Status != 503 || p.Load() != 1 {
		t.Errorf("procedure: %v after %d calls", err, p.Load())
	}
}

func TestClientRetriesBounded(t *testing.T) {
	s := xrpc.NewServer(nil)
	var n atomic.Int32
	s.Handle("com.example.down", xrpc.Query, func(ctx context.Context, req *xrpc.Request) (*xrpc.Response, error) {
		n.Add(1)
		return nil, xrpc.UpstreamFailure("down")
	})
	s.Handle("com.example.later", xrpc.Query, func(ctx context.Context, req *xrpc.Request) (*xrpc.Response, error) {
		n.Add(1)
		e := xrpc.RateLimitExceeded(xrpc.RateLimit{Limit: 1, Remaining: 0, Reset: time.Now().Add(time.Hour)})
		return nil, e
	})
	ts := start(t, s)
	c := &xrpc.Client{Host: ts.URL, HTTPClient: ts.Client(), Retry: fastRetry}
	err := c.Do(context.Background(), xrpc.Query, "com.example.down", nil, nil, nil)
	var xe *xrpc.Error
	if !errors.As(err, &xe) || xe.Name != "UpstreamFailure" || n.Load() != 4 {
		t.Errorf("got %v after %d calls, want 4", err, n.Load())
	}
	// A reset an hour away is beyond MaxDelay: no wait, no retry.
	n.Store(0)
	err = c.Do(context.Background(), xrpc.Query, "com.example.later", nil, nil, nil)
	if !errors.As(err, &xe) || xe.Status != 429 || n.Load() != 1 || xe.Header.Get("RateLimit-Remaining") != "0" {
		t.Errorf("got %v after %d calls, want 1", err, n.Load())
	}
}

func TestClientRefresh(t *testing.T) {
	s := xrpc.NewServer(testCatalog(t))
	s.ValidateOutput = true
	var refreshes atomic.Int32
	auth := func(ctx context.Context) string {
		return xrpc.RequestFromContext(ctx).HTTP.Header.Get("Authorization")
	}
	xrpc.HandleQuery(s, bsky.ActorGetProfileNSID, func(ctx context.Context, p *bsky.ActorGetProfile_Params) (*bsky.ActorGetProfile_Output, error) {
		switch auth(ctx) {
		case "Bearer access-2":
			return &bsky.ActorGetProfile_Output{Did: testDID, Handle: p.Actor}, nil
		case "Bearer access-1":
			return nil, xrpc.ExpiredToken("Token has expired")
		}
		return nil, xrpc.AuthRequired("")
	})
	xrpc.HandleProcedure(s, atproto.ServerRefreshSessionNSID, func(ctx context.Context, _ *xrpc.NoInput) (*atproto.ServerRefreshSession_Output, error) {
		if auth(ctx) != "Bearer refresh-1" {
			return nil, xrpc.InvalidToken("bad refresh token")
		}
		refreshes.Add(1)
		return &atproto.ServerRefreshSession_Output{AccessJwt: "access-2", RefreshJwt: "refresh-2", Handle: "alice.test", Did: testDID}, nil
	})
	ts := start(t, s)
	sa := xrpc.NewSessionAuth("access-1", "refresh-1")
	var stored string
	sa.OnRefresh = func(a, r string) { stored = a + "/" + r }
	c := &xrpc.Client{Host: ts.URL, HTTPClient: ts.Client(), Auth: sa}
	prof, err := bsky.ActorGetProfile(context.Background(), c, &bsky.ActorGetProfile_Params{Actor: "alice.test"})
	if err != nil {
		t.Fatal(err)
	}
	if prof.Handle != "alice.test" || refreshes.Load() != 1 || stored != "access-2/refresh-2" {
		t.Errorf("profile %+v, %d refreshes, stored %q", prof, refreshes.Load(), stored)
	}
	if a, r := sa.Tokens(); a != "access-2" || r != "refresh-2" {
		t.Errorf("tokens %s %s", a, r)
	}
	// A failed refresh is reported, and not retried.
	sa2 := xrpc.NewSessionAuth("access-1", "wrong")
	c.Auth = sa2
	_, err = bsky.ActorGetProfile(context.Background(), c, &bsky.ActorGetProfile_Params{Actor: "alice.test"})
	var xe *xrpc.Error
	if !errors.As(err, &xe) || xe.Name != "InvalidToken" {
		t.Errorf("failed refresh: %v", err)
	}
}

func TestClientHeaders(t *testing.T) {
	got := make(chan http.Header, 1)
	ts := start(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got <- r.Header.Clone()
		w.WriteHeader(200)
	}))
	c := &xrpc.Client{
		Host: ts.URL, HTTPClient: ts.Client(),
		Auth:           xrpc.AdminAuth{Password: "secret"},
		Proxy:          "did:web:api.bsky.app#bsky_appview",
		AcceptLabelers: []string{"did:plc:ar7c4by46qjdydhdevvrndac;redact", "did:plc:other"},
		Headers:        http.Header{"X-Extra": {"1"}},
		UserAgent:      "welkin-test",
	}
	if err := c.Do(context.Background(), xrpc.Procedure, "com.example.blob", nil,
		&lexutil.RawBody{Encoding: "image/png", Body: bytes.NewReader([]byte{1, 2, 3})}, nil); err != nil {
		t.Fatal(err)
	}
	h := <-got
	want := map[string]string{
		"Authorization":           "Basic " + base64.StdEncoding.EncodeToString([]byte("admin:secret")),
		"Atproto-Proxy":           "did:web:api.bsky.app#bsky_appview",
		"Atproto-Accept-Labelers": "did:plc:ar7c4by46qjdydhdevvrndac;redact, did:plc:other",
		"X-Extra":                 "1",
		"User-Agent":              "welkin-test",
		"Content-Type":            "image/png",
	}
	for k, v := range want {
		if h.Get(k) != v {
			t.Errorf("%s = %q, want %q", k, h.Get(k), v)
		}
	}
	c.Auth = xrpc.BearerAuth{Token: "tok"}
	if err := c.Do(context.Background(), xrpc.Query, "com.example.q", map[string][]string{"a": {"b c"}}, nil, nil); err != nil {
		t.Fatal(err)
	}
	if h := <-got; h.Get("Authorization") != "Bearer tok" || strings.Contains(h.Get("Content-Type"), "json") {
		t.Errorf("bearer request headers %v", h)
	}
}

func BenchmarkTrivialQuery(b *testing.B) {
	s := xrpc.NewServer(testCatalog(b))
	xrpc.HandleQuery(s, atproto.ServerDescribeServerNSID, func(ctx context.Context, _ *xrpc.NoParams) (*atproto.ServerDescribeServer_Output, error) {
		return &atproto.ServerDescribeServer_Output{Did: "did:web:pds.example.com", AvailableUserDomains: []string{".example.com"}}, nil
	})
	ts := start(b, s)
	c := &xrpc.Client{Host: ts.URL, HTTPClient: ts.Client()}
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := atproto.ServerDescribeServer(ctx, c); err != nil {
			b.Fatal(err)
		}
	}
}

func TestClientConcurrentRefresh(t *testing.T) {
	s := xrpc.NewServer(nil)
	var refreshes atomic.Int32
	authz := func(ctx context.Context) string {
		return xrpc.RequestFromContext(ctx).HTTP.Header.Get("Authorization")
	}
	s.Handle("com.example.private", xrpc.Query, func(ctx context.Context, req *xrpc.Request) (*xrpc.Response, error) {
		if authz(ctx) != "Bearer access-2" {
			return nil, xrpc.ExpiredToken("Token has expired")
		}
		return nil, nil
	})
	s.Handle(atproto.ServerRefreshSessionNSID, xrpc.Procedure, func(ctx context.Context, req *xrpc.Request) (*xrpc.Response, error) {
		if authz(ctx) != "Bearer refresh-1" {
			return nil, xrpc.InvalidToken("refresh token already used")
		}
		refreshes.Add(1)
		return &xrpc.Response{Body: map[string]any{"accessJwt": "access-2", "refreshJwt": "refresh-2"}}, nil
	})
	ts := start(t, s)
	c := &xrpc.Client{Host: ts.URL, HTTPClient: ts.Client(), Auth: xrpc.NewSessionAuth("access-1", "refresh-1")}
	errs := make(chan error, 8)
	for range 8 {
		go func() { errs <- c.Do(context.Background(), xrpc.Query, "com.example.private", nil, nil, nil) }()
	}
	for range 8 {
		if err := <-errs; err != nil {
			t.Error(err)
		}
	}
	if refreshes.Load() != 1 {
		t.Errorf("%d refreshes, want 1", refreshes.Load())
	}
}
