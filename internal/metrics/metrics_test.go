package metrics_test

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/welkin-atproto/welkin/api/atproto"
	"github.com/welkin-atproto/welkin/atproto/xrpc"
	"github.com/welkin-atproto/welkin/internal/metrics"
)

const failNSID = "com.example.metrics.fail"

// newServer returns an xrpc.Server with describeServer (answers 200) and
// failNSID (answers 404), observed by m. Each observation is also sent
// on the returned channel, since the server observes a request after
// its response is written.
func newServer(t *testing.T, m *metrics.XRPC) (*httptest.Server, <-chan struct{}) {
	t.Helper()
	s := xrpc.NewServer(nil)
	xrpc.HandleQuery(s, atproto.ServerDescribeServerNSID, func(ctx context.Context, _ *xrpc.NoParams) (*atproto.ServerDescribeServer_Output, error) {
		return &atproto.ServerDescribeServer_Output{Did: "did:web:pds.example.com", AvailableUserDomains: []string{".example.com"}}, nil
	})
	s.Handle(failNSID, xrpc.Query, func(ctx context.Context, req *xrpc.Request) (*xrpc.Response, error) {
		return nil, xrpc.NotFound("no such thing")
	})
	observed := make(chan struct{}, 64)
	s.Observe = func(nsid string, status int, d time.Duration) {
		m.Observe(nsid, status, d)
		observed <- struct{}{}
	}
	ts := httptest.NewServer(s)
	t.Cleanup(ts.Close)
	return ts, observed
}

func get(t *testing.T, url string, want int) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if _, err := io.Copy(io.Discard, resp.Body); err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != want {
		t.Fatalf("GET %s: status %d, want %d", url, resp.StatusCode, want)
	}
}

func scrape(t *testing.T, h http.Handler) string {
	t.Helper()
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/metrics", nil))
	if rec.Code != http.StatusOK {
		t.Fatalf("scrape: status %d", rec.Code)
	}
	return rec.Body.String()
}

func TestXRPCMetrics(t *testing.T) {
	reg := prometheus.NewRegistry()
	m := metrics.NewXRPC(reg, "pds")
	ts, observed := newServer(t, m)

	calls := []struct {
		nsid   string
		status int
	}{
		{atproto.ServerDescribeServerNSID, 200},
		{atproto.ServerDescribeServerNSID, 200},
		{atproto.ServerDescribeServerNSID, 200},
		{failNSID, 404},
		{"com.example.metrics.nope", 501},
		{"com.example.metrics.other", 501},
	}
	for _, c := range calls {
		get(t, ts.URL+"/xrpc/"+c.nsid, c.status)
	}
	for range calls {
		<-observed
	}

	out := scrape(t, metrics.Handler(reg))
	for _, want := range []string{
		`welkin_xrpc_requests_total{nsid="com.atproto.server.describeServer",service="pds",status="200"} 3`,
		`welkin_xrpc_requests_total{nsid="com.example.metrics.fail",service="pds",status="404"} 1`,
		`welkin_xrpc_requests_total{nsid="unknown",service="pds",status="501"} 2`,
		`welkin_xrpc_request_duration_seconds_count{nsid="com.atproto.server.describeServer",service="pds"} 3`,
		`welkin_xrpc_request_duration_seconds_count{nsid="com.example.metrics.fail",service="pds"} 1`,
		`welkin_xrpc_request_duration_seconds_count{nsid="unknown",service="pds"} 2`,
		`welkin_xrpc_request_duration_seconds_bucket{nsid="unknown",service="pds",le="+Inf"} 2`,
		`welkin_xrpc_request_duration_seconds_bucket{nsid="unknown",service="pds",le="0.0005"} `,
		`# TYPE welkin_xrpc_requests_total counter`,
		`# TYPE welkin_xrpc_request_duration_seconds histogram`,
	} {
		if !strings.Contains(out, want) {
			t.Errorf("scrape lacks %q", want)
		}
	}
	// Made-up method names must not become label values.
	for _, bad := range []string{"com.example.metrics.nope", "com.example.metrics.other"} {
		if strings.Contains(out, bad) {
			t.Errorf("scrape names unrouted method %s", bad)
		}
	}
	if t.Failed() {
		t.Log(out)
	}
}

func TestXRPCObserveDirect(t *testing.T) {
	reg := prometheus.NewRegistry()
	m := metrics.NewXRPC(reg, "relay")
	m.Observe("", 429, 2*time.Second)
	m.Observe("com.atproto.sync.getRepo", 200, 30*time.Millisecond)
	out := scrape(t, metrics.Handler(reg))
	for _, want := range []string{
		`welkin_xrpc_requests_total{nsid="unknown",service="relay",status="429"} 1`,
		`welkin_xrpc_requests_total{nsid="com.atproto.sync.getRepo",service="relay",status="200"} 1`,
		// 2s falls in the 2.5 bucket and not the 1 bucket.
		`welkin_xrpc_request_duration_seconds_bucket{nsid="unknown",service="relay",le="1"} 0`,
		`welkin_xrpc_request_duration_seconds_bucket{nsid="unknown",service="relay",le="2.5"} 1`,
		`welkin_xrpc_request_duration_seconds_bucket{nsid="com.atproto.sync.getRepo",service="relay",le="0.025"} 0`,
		`welkin_xrpc_request_duration_seconds_bucket{nsid="com.atproto.sync.getRepo",service="relay",le="0.05"} 1`,
		`welkin_xrpc_request_duration_seconds_sum{nsid="com.atproto.sync.getRepo",service="relay"} 0.03`,
	} {
		if !strings.Contains(out, want) {
			t.Errorf("scrape lacks %q", want)
		}
	}
	if t.Failed() {
		t.Log(out)
	}
}

func TestNewXRPCTwiceOnOneRegistry(t *testing.T) {
	reg := prometheus.NewRegistry()
	metrics.NewXRPC(reg, "pds")
	defer func() {
		if recover() == nil {
			t.Fatal("registering the same service twice did not panic")
		}
	}()
	metrics.NewXRPC(reg, "pds")
}

func TestTwoServicesShareARegistry(t *testing.T) {
	reg := prometheus.NewRegistry()
	pds := metrics.NewXRPC(reg, "pds")
	appview := metrics.NewXRPC(reg, "appview")
	pds.Observe("com.atproto.repo.createRecord", 200, time.Millisecond)
	appview.Observe("app.bsky.feed.getTimeline", 200, time.Millisecond)
	appview.Observe("app.bsky.feed.getTimeline", 200, time.Millisecond)
	out := scrape(t, metrics.Handler(reg))
	for _, want := range []string{
		`welkin_xrpc_requests_total{nsid="com.atproto.repo.createRecord",service="pds",status="200"} 1`,
		`welkin_xrpc_requests_total{nsid="app.bsky.feed.getTimeline",service="appview",status="200"} 2`,
	} {
		if !strings.Contains(out, want) {
			t.Errorf("scrape lacks %q", want)
		}
	}
}
