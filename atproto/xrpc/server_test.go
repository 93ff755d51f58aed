package xrpc_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/welkin-atproto/welkin/api"
	"github.com/welkin-atproto/welkin/api/atproto"
	"github.com/welkin-atproto/welkin/api/bsky"
	"github.com/welkin-atproto/welkin/atproto/lexicon"
	"github.com/welkin-atproto/welkin/atproto/xrpc"
)

var catalog = sync.OnceValues(func() (*lexicon.Catalog, error) {
	c, err := api.Catalog()
	if err != nil {
		return nil, err
	}
	return c, c.Link()
})

func testCatalog(t testing.TB) *lexicon.Catalog {
	t.Helper()
	c, err := catalog()
	if err != nil {
		t.Fatal(err)
	}
	return c
}

const testDID = "did:plc:ewvi7nxzyoun6zhxrhs64oiz"

// testServer registers a few real endpoints and a test-only one,
// com.example.fail, whose "kind" parameter chooses an error.
func testServer(t testing.TB) *xrpc.Server {
	t.Helper()
	s := xrpc.NewServer(testCatalog(t))
	s.ValidateOutput = true
	xrpc.HandleQuery(s, atproto.ServerDescribeServerNSID, func(ctx context.Context, _ *xrpc.NoParams) (*atproto.ServerDescribeServer_Output, error) {
		return &atproto.ServerDescribeServer_Output{Did: "did:web:pds.example.com", AvailableUserDomains: []string{".example.com"}}, nil
	})
	xrpc.HandleQuery(s, bsky.ActorGetProfileNSID, func(ctx context.Context, p *bsky.ActorGetProfile_Params) (*bsky.ActorGetProfile_Output, error) {
		if p.Actor == "bad.output.test" {
			return &bsky.ActorGetProfile_Output{Did: "not a did", Handle: p.Actor}, nil
		}
		return &bsky.ActorGetProfile_Output{Did: testDID, Handle: p.Actor}, nil
	})
	xrpc.HandleProcedure(s, atproto.ServerCreateSessionNSID, func(ctx context.Context, in *atproto.ServerCreateSession_Input) (*atproto.ServerCreateSession_Output, error) {
		if in.Password != "hunter2" {
			return nil, xrpc.AuthRequired("Invalid identifier or password")
		}
		return &atproto.ServerCreateSession_Output{AccessJwt: "a", RefreshJwt: "r", Handle: in.Identifier, Did: testDID}, nil
	})
	s.Handle("com.example.fail", xrpc.Query, func(ctx context.Context, req *xrpc.Request) (*xrpc.Response, error) {
		switch k := req.Query.Get("kind"); k {
		case "panic":
			panic("boom")
		case "plain":
			return nil, errors.New("secret database password leaked")
		case "wrapped":
			return nil, fmt.Errorf("looking up: %w", xrpc.NotFound("no such thing"))
		case "custom":
			return nil, &xrpc.Error{Status: 400, Name: "RepoNotFound", Message: "Could not find repo"}
		default:
			if e, ok := errorKinds[k]; ok {
				return nil, e
			}
		}
		return &xrpc.Response{Body: map[string]any{"ok": true}}, nil
	})
	return s
}

var errorKinds = map[string]*xrpc.Error{
	"invalid":      xrpc.InvalidRequest("bad"),
	"auth":         xrpc.AuthRequired("who are you"),
	"expired":      xrpc.ExpiredToken("Token has expired"),
	"badtoken":     xrpc.InvalidToken("Token is invalid"),
	"forbidden":    xrpc.Forbidden("no"),
	"notfound":     xrpc.NotFound("gone"),
	"toolarge":     xrpc.PayloadTooLarge("too big"),
	"ratelimit":    xrpc.RateLimitExceeded(xrpc.RateLimit{Limit: 100, Remaining: 0, Reset: time.Unix(2000000000, 0), Policy: "100;w=300"}),
	"internal":     xrpc.InternalServerError(""),
	"notimpl":      xrpc.MethodNotImplemented(""),
	"upstream":     xrpc.UpstreamFailure("upstream down"),
	"unavailable":  xrpc.Unavailable("busy"),
	"noresources":  xrpc.NotEnoughResources("busy"),
	"upstreamtime": xrpc.UpstreamTimeout("slow"),
}

func start(t testing.TB, h http.Handler) *httptest.Server {
	t.Helper()
	ts := httptest.NewServer(h) // binds 127.0.0.1
	t.Cleanup(ts.Close)
	return ts
}

type envelope struct {
	Error   string `json:"error"`
	Message string `json:"message"`
}

func call(t *testing.T, ts *httptest.Server, method, path, ctype string, body io.Reader) (*http.Response, envelope, []byte) {
	t.Helper()
	req, err := http.NewRequest(method, ts.URL+path, body)
	if err != nil {
		t.Fatal(err)
	}
	if ctype != "" {
		req.Header.Set("Content-Type", ctype)
	}
	resp, err := ts.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	var env envelope
	if resp.StatusCode >= 400 {
		if err := json.Unmarshal(b, &env); err != nil {
			t.Fatalf("%s %s: error body %q is not an envelope: %v", method, path, b, err)
		}
	}
	return resp, env, b
}

func TestServerErrors(t *testing.T) {
	s := testServer(t)
	s.MaxJSONBody = 256
	ts := start(t, s)
	big := `{"identifier":"alice.test","password":"` + strings.Repeat("x", 300) + `"}`
	tests := []struct {
		name, method, path, ctype, body string
		chunked                         bool
		status                          int
		errName, msgHas                 string
	}{
		{"query by POST", "POST", "/xrpc/com.atproto.server.describeServer", "", "", false, 400, "InvalidRequest", "Incorrect HTTP method (POST) expected GET"},
		{"procedure by GET", "GET", "/xrpc/com.atproto.server.createSession", "", "", false, 400, "InvalidRequest", "expected POST"},
		{"unregistered known by wrong method", "POST", "/xrpc/app.bsky.feed.getTimeline", "", "", false, 400, "InvalidRequest", "expected GET"},
		{"unknown method", "GET", "/xrpc/com.example.nothing", "", "", false, 501, "MethodNotImplemented", ""},
		{"unregistered known", "GET", "/xrpc/app.bsky.feed.getTimeline", "", "", false, 501, "MethodNotImplemented", ""},
		{"bad nsid", "GET", "/xrpc/not..an..nsid", "", "", false, 400, "InvalidRequest", "invalid xrpc path"},
		{"not xrpc", "GET", "/other", "", "", false, 404, "NotFound", ""},
		{"missing param", "GET", "/xrpc/app.bsky.actor.getProfile", "", "", false, 400, "InvalidRequest", "actor"},
		{"bad param", "GET", "/xrpc/app.bsky.actor.getProfile?actor=not+a+handle", "", "", false, 400, "InvalidRequest", "actor"},
		{"no content type", "POST", "/xrpc/com.atproto.server.createSession", "", `{}`, false, 400, "InvalidRequest", "Content-Type"},
		{"wrong content type", "POST", "/xrpc/com.atproto.server.createSession", "text/plain", `{}`, false, 400, "InvalidRequest", "text/plain"},
		{"bad content type", "POST", "/xrpc/com.atproto.server.createSession", "///", `{}`, false, 400, "InvalidRequest", "Content-Type"},
		{"malformed json", "POST", "/xrpc/com.atproto.server.createSession", "application/json", `{"identifier":`, false, 400, "InvalidRequest", "JSON"},
		{"float in json", "POST", "/xrpc/com.atproto.server.createSession", "application/json", `{"identifier":"a","password":1.5}`, false, 400, "InvalidRequest", ""},
		{"schema violation", "POST", "/xrpc/com.atproto.server.createSession", "application/json", `{"identifier":"alice.test"}`, false, 400, "InvalidRequest", "password"},
		{"too large", "POST", "/xrpc/com.atproto.server.createSession", "application/json", big, false, 413, "PayloadTooLarge", ""},
		{"too large chunked", "POST", "/xrpc/com.atproto.server.createSession", "application/json", big, true, 413, "PayloadTooLarge", ""},
		{"handler error", "POST", "/xrpc/com.atproto.server.createSession", "application/json", `{"identifier":"alice.test","password":"x"}`, false, 401, "AuthenticationRequired", "Invalid identifier"},
		{"panic", "GET", "/xrpc/com.example.fail?kind=panic", "", "", false, 500, "InternalServerError", ""},
		{"plain error", "GET", "/xrpc/com.example.fail?kind=plain", "", "", false, 500, "InternalServerError", ""},
		{"wrapped error", "GET", "/xrpc/com.example.fail?kind=wrapped", "", "", false, 404, "NotFound", "no such thing"},
		{"custom name", "GET", "/xrpc/com.example.fail?kind=custom", "", "", false, 400, "RepoNotFound", "Could not find repo"},
		{"output validation", "GET", "/xrpc/app.bsky.actor.getProfile?actor=bad.output.test", "", "", false, 500, "InternalServerError", ""},
	}
	for k, e := range errorKinds {
		tests = append(tests, struct {
			name, method, path, ctype, body string
			chunked                         bool
			status                          int
			errName, msgHas                 string
		}{"kind " + k, "GET", "/xrpc/com.example.fail?kind=" + k, "", "", false, e.Status, e.Name, e.Message})
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var body io.Reader
			if tc.body != "" {
				body = strings.NewReader(tc.body)
				if tc.chunked {
					body = io.MultiReader(body) // hides the length
				}
			}
			resp, env, raw := call(t, ts, tc.method, tc.path, tc.ctype, body)
			if resp.StatusCode != tc.status || env.Error != tc.errName {
				t.Fatalf("got %d %s, want %d %s (body %s)", resp.StatusCode, env.Error, tc.status, tc.errName, raw)
			}
			if !strings.Contains(env.Message, tc.msgHas) {
				t.Errorf("message %q does not contain %q", env.Message, tc.msgHas)
			}
			if strings.Contains(string(raw), "secret") || strings.Contains(string(raw), "boom") || strings.Contains(string(raw), "not a did") {
				t.Errorf("internal detail leaked: %s", raw)
			}
			if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
				t.Errorf("Content-Type %q", ct)
			}
			if resp.Header.Get("Access-Control-Allow-Origin") != "*" {
				t.Error("no CORS header on an error")
			}
		})
	}
}

func TestRateLimitHeaders(t *testing.T) {
	ts := start(t, testServer(t))
	resp, env, _ := call(t, ts, "GET", "/xrpc/com.example.fail?kind=ratelimit", "", nil)
	if resp.StatusCode != 429 || env.Error != "RateLimitExceeded" {
		t.Fatalf("got %d %s", resp.StatusCode, env.Error)
	}
	want := map[string]string{"RateLimit-Limit": "100", "RateLimit-Remaining": "0", "RateLimit-Reset": "2000000000", "RateLimit-Policy": "100;w=300"}
	for k, v := range want {
		if got := resp.Header.Get(k); got != v {
			t.Errorf("%s = %q, want %q", k, got, v)
		}
	}
}

func TestOutputValidationOff(t *testing.T) {
	s := testServer(t)
	s.ValidateOutput = false
	ts := start(t, s)
	resp, _, body := call(t, ts, "GET", "/xrpc/app.bsky.actor.getProfile?actor=bad.output.test", "", nil)
	if resp.StatusCode != 200 || !strings.Contains(string(body), "not a did") {
		t.Fatalf("got %d %s", resp.StatusCode, body)
	}
}

func TestSuccess(t *testing.T) {
	ts := start(t, testServer(t))
	resp, _, body := call(t, ts, "GET", "/xrpc/com.atproto.server.describeServer", "", nil)
	if resp.StatusCode != 200 {
		t.Fatalf("status %d: %s", resp.StatusCode, body)
	}
	if got, want := string(body), `{"availableUserDomains":[".example.com"],"did":"did:web:pds.example.com"}`; got != want {
		t.Errorf("body %s, want %s", got, want)
	}
	if ct := resp.Header.Get("Content-Type"); ct != "application/json; charset=utf-8" {
		t.Errorf("Content-Type %q", ct)
	}
	if resp.Header.Get("X-Request-Id") == "" {
		t.Error("no request ID")
	}
	// HEAD is served for queries, as by the reference.
	resp, _, _ = call(t, ts, "HEAD", "/xrpc/com.atproto.server.describeServer", "", nil)
	if resp.StatusCode != 200 {
		t.Errorf("HEAD: %d", resp.StatusCode)
	}
}

func TestCORS(t *testing.T) {
	ts := start(t, testServer(t))
	req, _ := http.NewRequest("OPTIONS", ts.URL+"/xrpc/com.atproto.server.createSession", nil)
	req.Header.Set("Origin", "https://app.example.com")
	req.Header.Set("Access-Control-Request-Method", "POST")
	req.Header.Set("Access-Control-Request-Headers", "authorization,content-type,atproto-proxy")
	resp, err := ts.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 204 {
		t.Fatalf("preflight status %d", resp.StatusCode)
	}
	h := resp.Header
	for k, v := range map[string]string{
		"Access-Control-Allow-Origin":  "*",
		"Access-Control-Allow-Headers": "authorization,content-type,atproto-proxy",
		"Access-Control-Max-Age":       "86400",
	} {
		if h.Get(k) != v {
			t.Errorf("%s = %q, want %q", k, h.Get(k), v)
		}
	}
	if !strings.Contains(h.Get("Access-Control-Allow-Methods"), "POST") {
		t.Errorf("Allow-Methods %q", h.Get("Access-Control-Allow-Methods"))
	}
	resp, _, _ = call(t, ts, "GET", "/xrpc/com.atproto.server.describeServer", "", nil)
	if exp := resp.Header.Get("Access-Control-Expose-Headers"); !strings.Contains(exp, "RateLimit-Remaining") || !strings.Contains(exp, "RateLimit-Reset") {
		t.Errorf("Expose-Headers %q", exp)
	}
}

// recordHandler keeps slog records.
type recordHandler struct {
	mu   sync.Mutex
	recs []slog.Record
}

func (h *recordHandler) Enabled(context.Context, slog.Level) bool { return true }
func (h *recordHandler) Handle(_ context.Context, r slog.Record) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.recs = append(h.recs, r.Clone())
	return nil
}
func (h *recordHandler) WithAttrs([]slog.Attr) slog.Handler { return h }
func (h *recordHandler) WithGroup(string) slog.Handler      { return h }

func TestLogAndRequestID(t *testing.T) {
	s := testServer(t)
	rh := &recordHandler{}
	s.Logger = slog.New(rh)
	// Served in-process so that the record is written when ServeHTTP returns.
	req := httptest.NewRequest("GET", "/xrpc/com.example.fail?kind=plain", nil)
	req.Header.Set("X-Request-Id", "abc-123")
	w := httptest.NewRecorder()
	s.ServeHTTP(w, req)
	if w.Code != 500 || w.Header().Get("X-Request-Id") != "abc-123" {
		t.Fatalf("status %d, request ID %q", w.Code, w.Header().Get("X-Request-Id"))
	}
	if len(rh.recs) != 1 {
		t.Fatalf("%d records", len(rh.recs))
	}
	got := map[string]string{}
	rh.recs[0].Attrs(func(a slog.Attr) bool {
		got[a.Key] = a.Value.String()
		return true
	})
	for k, v := range map[string]string{"method": "GET", "nsid": "com.example.fail", "status": "500", "request_id": "abc-123", "error": "InternalServerError", "cause": "secret database password leaked"} {
		if got[k] != v {
			t.Errorf("log %s = %q, want %q", k, got[k], v)
		}
	}
	if _, ok := got["duration"]; !ok {
		t.Error("no duration logged")
	}
	if rh.recs[0].Level != slog.LevelError {
		t.Errorf("level %v", rh.recs[0].Level)
	}
}

func TestRawProcedure(t *testing.T) {
	s := xrpc.NewServer(testCatalog(t))
	s.MaxRawBody = 16
	got := make(chan string, 3)
	xrpc.HandleRawProcedure(s, atproto.RepoUploadBlobNSID, func(ctx context.Context, r io.Reader) (*xrpc.NoOutput, error) {
		b, err := io.ReadAll(r)
		got <- string(b)
		return nil, err
	})
	ts := start(t, s)
	resp, _, _ := call(t, ts, "POST", "/xrpc/com.atproto.repo.uploadBlob", "image/png", strings.NewReader("small"))
	if resp.StatusCode != 200 || <-got != "small" {
		t.Errorf("small blob: %d", resp.StatusCode)
	}
	// A JSON file is a blob like any other.
	resp, _, _ = call(t, ts, "POST", "/xrpc/com.atproto.repo.uploadBlob", "application/json", strings.NewReader("{}"))
	if g := <-got; resp.StatusCode != 200 || g != "{}" {
		t.Errorf("JSON blob: %d %q", resp.StatusCode, g)
	}
	resp, env, _ := call(t, ts, "POST", "/xrpc/com.atproto.repo.uploadBlob", "image/png", io.MultiReader(bytes.NewReader(make([]byte, 100))))
	if resp.StatusCode != 413 || env.Error != "PayloadTooLarge" {
		t.Errorf("big blob: %d %s", resp.StatusCode, env.Error)
	}
}

func TestHandlePanicsOnMistakes(t *testing.T) {
	s := xrpc.NewServer(testCatalog(t))
	noop := func(context.Context, *xrpc.Request) (*xrpc.Response, error) { return nil, nil }
	for name, f := range map[string]func(){
		"bad nsid":   func() { s.Handle("nope", xrpc.Query, noop) },
		"wrong kind": func() { s.Handle(atproto.ServerCreateSessionNSID, xrpc.Query, noop) },
		"duplicate": func() {
			s.Handle("com.example.dup", xrpc.Query, noop)
			s.Handle("com.example.dup", xrpc.Query, noop)
		},
	} {
		func() {
			defer func() {
				if recover() == nil {
					t.Errorf("%s: no panic", name)
				}
			}()
			f()
		}()
	}
}

func FuzzQueryParams(f *testing.F) {
	s := xrpc.NewServer(testCatalog(f))
	s.ValidateOutput = true
	xrpc.HandleQuery(s, bsky.FeedGetTimelineNSID, func(ctx context.Context, p *bsky.FeedGetTimeline_Params) (*bsky.FeedGetTimeline_Output, error) {
		return &bsky.FeedGetTimeline_Output{Feed: []*bsky.FeedDefs_FeedViewPost{}, Cursor: &p.Cursor}, nil
	})
	xrpc.HandleQuery(s, bsky.ActorGetProfileNSID, func(ctx context.Context, p *bsky.ActorGetProfile_Params) (*bsky.ActorGetProfile_Output, error) {
		return nil, xrpc.NotFound("no profile")
	})
	for _, seed := range []string{"", "limit=10", "limit=abc", "limit=1000", "cursor=%zz", "limit=1&limit=2", "actor=alice.test", "actor=", "a=%00", "limit=99999999999999999999", "cursor=\xff"} {
		f.Add("app.bsky.feed.getTimeline", seed)
		f.Add("app.bsky.actor.getProfile", seed)
	}
	f.Fuzz(func(t *testing.T, nsid, q string) {
		req := &http.Request{
			Method: "GET",
			URL:    &url.URL{Path: "/xrpc/" + nsid, RawQuery: q},
			Header: http.Header{},
			Body:   http.NoBody,
		}
		req = req.WithContext(context.Background())
		w := httptest.NewRecorder()
		s.ServeHTTP(w, req)
		switch w.Code {
		case 200, 400, 404, 501:
		default:
			t.Fatalf("%s?%s: status %d: %s", nsid, q, w.Code, w.Body)
		}
		if w.Code != 200 {
			var env envelope
			if err := json.Unmarshal(w.Body.Bytes(), &env); err != nil || env.Error == "" {
				t.Fatalf("%s?%s: bad envelope %s", nsid, q, w.Body)
			}
		}
	})
}

func TestTypedParamDefaults(t *testing.T) {
	s := xrpc.NewServer(testCatalog(t))
	got := make(chan int64, 1)
	xrpc.HandleQuery(s, bsky.FeedGetTimelineNSID, func(ctx context.Context, p *bsky.FeedGetTimeline_Params) (*bsky.FeedGetTimeline_Output, error) {
		if p.Limit == nil {
			got <- -1
		} else {
			got <- *p.Limit
		}
		return &bsky.FeedGetTimeline_Output{Feed: []*bsky.FeedDefs_FeedViewPost{}}, nil
	})
	for q, want := range map[string]int64{"": 50, "?limit=7": 7} {
		w := httptest.NewRecorder()
		s.ServeHTTP(w, httptest.NewRequest("GET", "/xrpc/app.bsky.feed.getTimeline"+q, nil))
		if w.Code != 200 {
			t.Fatalf("%q: %d %s", q, w.Code, w.Body)
		}
		if l := <-got; l != want {
			t.Errorf("%q: limit %d, want %d", q, l, want)
		}
	}
}

func TestObserve(t *testing.T) {
	s := testServer(t)
	type obs struct {
		nsid   string
		status int
	}
	var got []obs
	s.Observe = func(nsid string, status int, d time.Duration) {
		if d < 0 {
			t.Error("negative duration")
		}
		got = append(got, obs{nsid, status})
	}
	for _, path := range []string{"/xrpc/com.atproto.server.describeServer", "/xrpc/com.example.unknownThing", "/xrpc/com.example.fail?kind=auth"} {
		w := httptest.NewRecorder()
		s.ServeHTTP(w, httptest.NewRequest("GET", path, nil))
		if w.Code == 401 && w.Header().Get("WWW-Authenticate") == "" {
			t.Error("401 without WWW-Authenticate")
		}
	}
	want := []obs{{"com.atproto.server.describeServer", 200}, {"", 501}, {"com.example.fail", 401}}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("observed %v, want %v", got, want)
	}
}
