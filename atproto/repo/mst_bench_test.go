package repo

import (
	"fmt"
	"math/rand/v2"
	"testing"

	"github.com/welkin-atproto/welkin/atproto/data"
)

// benchTID returns a TID-like record key for i: 13 base32-sortable
// characters, increasing with i.
func benchTID(i int) string {
	const alphabet = "234567abcdefghijklmnopqrstuvwxyz"
	v := uint64(1700000000000000)<<10 + uint64(i)*7919
	var b [13]byte
	for j := 12; j >= 0; j-- {
		b[j] = alphabet[v&31]
		v >>= 5
	}
	return string(b[:])
}

func benchMap(n int) map[string]data.CID {
	m := make(map[string]data.CID, n)
	for i := range n {
		m["app.bsky.feed.post/"+benchTID(i)] = valCID(i)
	}
	return m
}

func BenchmarkBuildTree100k(b *testing.B) {
	m := benchMap(100000)
	b.ReportAllocs()
	for b.Loop() {
		tr, err := BuildTree(m)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := tr.Root(); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/100000, "ns/key")
}

func BenchmarkPutCommit10k(b *testing.B) {
	tr, err := BuildTree(benchMap(10000))
	if err != nil {
		b.Fatal(err)
	}
	if _, err := tr.CommitSlice(); err != nil {
		b.Fatal(err)
	}
	v := valCID(1)
	i := 0
	b.ReportAllocs()
	for b.Loop() {
		i++
		if err := tr.Put(fmt.Sprintf("app.bsky.feed.post/%s", benchTID(20000+i)), v); err != nil {
			b.Fatal(err)
		}
		if _, err := tr.Root(); err != nil {
			b.Fatal(err)
		}
		if _, err := tr.CommitSlice(); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkInvertOneOp(b *testing.B) {
	tr, err := BuildTree(benchMap(10000))
	if err != nil {
		b.Fatal(err)
	}
	if _, err := tr.CommitSlice(); err != nil {
		b.Fatal(err)
	}
	before, _ := tr.Root()
	k := "app.bsky.feed.post/" + benchTID(20000)
	v := valCID(1)
	if err := tr.Put(k, v); err != nil {
		b.Fatal(err)
	}
	after, _ := tr.Root()
	slice, err := tr.CommitSlice()
	if err != nil {
		b.Fatal(err)
	}
	ops := []Op{{Action: "create", Path: k, CID: &v}}
	b.ReportAllocs()
	for b.Loop() {
		got, err := InvertOps(slice, after, ops)
		if err != nil || got != before {
			b.Fatal(got, err)
		}
	}
	b.ReportMetric(float64(len(slice)), "blocks")
}

func BenchmarkGet(b *testing.B) {
	m := benchMap(100000)
	tr, err := BuildTree(m)
	if err != nil {
		b.Fatal(err)
	}
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	r := rand.New(rand.NewPCG(1, 1))
	r.Shuffle(len(keys), func(i, j int) { keys[i], keys[j] = keys[j], keys[i] })
	i := 0
	b.ReportAllocs()
	for b.Loop() {
		if _, ok, err := tr.Get(keys[i%len(keys)]); !ok || err != nil {
			b.Fatal("missing", err)
		}
		i++
	}
}
