package metrics_test

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/welkin-atproto/welkin/api"
	"github.com/welkin-atproto/welkin/api/atproto"
	"github.com/welkin-atproto/welkin/atproto/xrpc"
	"github.com/welkin-atproto/welkin/internal/metrics"
)

// BenchmarkObserve is the cost of recording one request.
func BenchmarkObserve(b *testing.B) {
	m := metrics.NewXRPC(prometheus.NewRegistry(), "bench")
	b.ReportAllocs()
	for b.Loop() {
		m.Observe(atproto.ServerDescribeServerNSID, 200, 150*time.Microsecond)
	}
}

// BenchmarkTrivialQueryParallelObserved is atproto/xrpc's
// BenchmarkTrivialQueryParallel (a typed describeServer query on
// loopback HTTP, 16 keep-alive clients per GOMAXPROCS sharing one
// http.Client) with the server observed by an XRPC instrument set, to
// show what metrics cost a whole request.
func BenchmarkTrivialQueryParallelObserved(b *testing.B) {
	const perProc = 16
	cat, err := api.Catalog()
	if err != nil {
		b.Fatal(err)
	}
	if err := cat.Link(); err != nil {
		b.Fatal(err)
	}
	s := xrpc.NewServer(cat)
	xrpc.HandleQuery(s, atproto.ServerDescribeServerNSID, func(ctx context.Context, _ *xrpc.NoParams) (*atproto.ServerDescribeServer_Output, error) {
		return &atproto.ServerDescribeServer_Output{Did: "did:web:pds.example.com", AvailableUserDomains: []string{".example.com"}}, nil
	})
	s.Observe = metrics.NewXRPC(prometheus.NewRegistry(), "bench").Observe
	ts := httptest.NewServer(s)
	defer ts.Close()
	tr := &http.Transport{MaxIdleConns: 1024, MaxIdleConnsPerHost: 1024, IdleConnTimeout: time.Minute}
	defer tr.CloseIdleConnections()
	client := &http.Client{Transport: tr}
	url := ts.URL + "/xrpc/" + atproto.ServerDescribeServerNSID

	b.SetParallelism(perProc)
	b.ReportAllocs()
	b.ResetTimer()
	start := time.Now()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			resp, err := client.Get(url)
			if err != nil {
				b.Error(err)
				return
			}
			_, err = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if err != nil {
				b.Error(err)
				return
			}
			if resp.StatusCode != http.StatusOK {
				b.Errorf("status %d", resp.StatusCode)
				return
			}
		}
	})
	elapsed := time.Since(start)
	b.StopTimer()
	b.ReportMetric(float64(b.N)/elapsed.Seconds(), "req/s")
}
