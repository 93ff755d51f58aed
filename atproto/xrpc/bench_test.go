package xrpc_test

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/welkin-atproto/welkin/api/atproto"
	"github.com/welkin-atproto/welkin/atproto/xrpc"
)

// BenchmarkTrivialQueryParallel measures the requests per second a
// Server answers for a trivial typed query
// (com.atproto.server.describeServer, checked against the catalog) on
// loopback HTTP, driven from this process by 16 keep-alive clients per
// GOMAXPROCS sharing one http.Client. Client and server share the CPUs.
func BenchmarkTrivialQueryParallel(b *testing.B) {
	s := xrpc.NewServer(testCatalog(b))
	xrpc.HandleQuery(s, atproto.ServerDescribeServerNSID, func(ctx context.Context, _ *xrpc.NoParams) (*atproto.ServerDescribeServer_Output, error) {
		return &atproto.ServerDescribeServer_Output{Did: "did:web:pds.example.com", AvailableUserDomains: []string{".example.com"}}, nil
	})
	benchParallelGET(b, s, "/xrpc/"+atproto.ServerDescribeServerNSID)
}

// benchParallelGET serves h on 127.0.0.1 and GETs path from 16
// goroutines per GOMAXPROCS over kept-alive connections, reporting
// req/s. Every answer must be 200.
func benchParallelGET(b *testing.B, h http.Handler, path string) {
	const perProc = 16
	ts := httptest.NewServer(h)
	defer ts.Close()
	tr := &http.Transport{MaxIdleConns: 1024, MaxIdleConnsPerHost: 1024, IdleConnTimeout: time.Minute}
	defer tr.CloseIdleConnections()
	client := &http.Client{Transport: tr}
	url := ts.URL + path

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
