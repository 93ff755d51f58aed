package pds

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"runtime"
	"sync/atomic"
	"testing"
	"time"
)

// BenchmarkCreateRecord measures createRecord over HTTP: parallel clients
// (GOMAXPROCS of them, times -cpu), each writing posts to an account of its
// own, so that writes commit in parallel. Each write is one signed commit
// made durable by the sequencer's group commit. It reports writes per
// second.
func BenchmarkCreateRecord(b *testing.B) {
	p := newTestPDS(b, nil)
	clients := runtime.GOMAXPROCS(0)
	accts := make([]repoAccount, clients)
	for i := range accts {
		accts[i] = seedRepoAccount(b, p, fmt.Sprintf("bench%d.test", i))
	}
	hc := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: clients * 2}}
	var next atomic.Int64
	var failed atomic.Int64
	b.ResetTimer()
	start := time.Now()
	b.RunParallel(func(pb *testing.PB) {
		a := accts[int(next.Add(1)-1)%len(accts)]
		i := 0
		for pb.Next() {
			i++
			body, _ := json.Marshal(map[string]any{"repo": string(a.did), "collection": "app.bsky.feed.post",
				"record": postRecord(fmt.Sprintf("post number %d", i))})
			req, _ := http.NewRequest("POST", p.url+"/xrpc/com.atproto.repo.createRecord", bytes.NewReader(body))
			req.Header.Set("Content-Type", "application/json")
			req.Header.Set("Authorization", "Bearer "+a.token)
			resp, err := hc.Do(req)
			if err != nil {
				failed.Add(1)
				continue
			}
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode != http.StatusOK {
				failed.Add(1)
			}
		}
	})
	elapsed := time.Since(start)
	b.StopTimer()
	if n := failed.Load(); n > 0 {
		b.Fatalf("%d of %d writes failed", n, b.N)
	}
	b.ReportMetric(float64(b.N)/elapsed.Seconds(), "writes/s")
}
