package plc

import (
	"bytes"
	"fmt"
	"io"
	"net/http"
	"sync/atomic"
	"testing"

	"github.com/welkin-atproto/welkin/atproto/syntax"
)

// BenchmarkDirectorySubmit measures genesis operations accepted per second
// over HTTP on loopback, SQLite store (synchronous=FULL), clients in
// parallel. Operations are signed before the timer starts.
func BenchmarkDirectorySubmit(b *testing.B) {
	d := newTestDir(b, Config{})
	k := key(b, 7)
	rot := didKeys(k)
	type sub struct {
		did  syntax.DID
		body []byte
	}
	subs := make([]sub, b.N)
	for i := range subs {
		op := newOp(b, k, rot, nil, fmt.Sprintf("bench%d.test", i))
		body, err := op.MarshalJSON()
		if err != nil {
			b.Fatal(err)
		}
		subs[i] = sub{didOf(b, op), body}
	}
	client := d.ts.Client()
	var next atomic.Int64
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			s := subs[next.Add(1)-1]
			resp, err := client.Post(d.ts.URL+"/"+string(s.did), "application/json", bytes.NewReader(s.body))
			if err != nil {
				b.Error(err)
				return
			}
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode != http.StatusOK {
				b.Errorf("status %d", resp.StatusCode)
				return
			}
		}
	})
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "ops/s")
}

// BenchmarkDirectoryResolve measures GET /{did} (DID document) per second
// over HTTP on loopback, SQLite store, clients in parallel.
func BenchmarkDirectoryResolve(b *testing.B) {
	d := newTestDir(b, Config{})
	const n = 100
	dids := make([]syntax.DID, n)
	for i := range dids {
		k := key(b, byte(i))
		op := newOp(b, k, didKeys(k), nil, fmt.Sprintf("resolve%d.test", i))
		dids[i] = didOf(b, op)
		d.mustSubmit(dids[i], op)
	}
	client := d.ts.Client()
	var next atomic.Int64
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			did := dids[next.Add(1)%n]
			resp, err := client.Get(d.ts.URL + "/" + string(did))
			if err != nil {
				b.Error(err)
				return
			}
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode != http.StatusOK {
				b.Errorf("status %d", resp.StatusCode)
				return
			}
		}
	})
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "ops/s")
}
