package repo

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"testing"

	"github.com/welkin-atproto/welkin/atproto/data"
	"github.com/welkin-atproto/welkin/atproto/syntax"
)

// benchRepo returns a committed repository of n records built in one go
// (BuildTree), opened lazily from its store as a PDS would open it.
func benchRepo(b testing.TB, n int) *testRepo {
	b.Helper()
	ctx := context.Background()
	tr := newTestRepo(b)
	m := make(map[string]data.CID, n)
	for i := range n {
		col := testCollections[i%len(testCollections)]
		rec := testRecord(b, col, fmt.Sprint("record number ", i))
		c := data.CIDForCBOR(rec)
		m[RecordPath(col, syntax.RecordKey(benchTID(i)))] = c
		tr.store.PutBlock(ctx, c, rec)
	}
	t, err := BuildTree(m)
	if err != nil {
		b.Fatal(err)
	}
	if err := t.WriteBlocks(ctx, tr.store); err != nil {
		b.Fatal(err)
	}
	root, _ := t.Root()
	rev, _ := tr.clock.Next("")
	c := NewCommit(testDID, root, rev)
	if err := c.Sign(tr.key); err != nil {
		b.Fatal(err)
	}
	cb, _ := c.Bytes()
	cc := data.CIDForCBOR(cb)
	tr.store.PutBlock(ctx, cc, cb)
	r, err := OpenRepo(ctx, tr.store, cc)
	if err != nil {
		b.Fatal(err)
	}
	tr.Repo = r
	return tr
}

func BenchmarkRepoCommitOne10k(b *testing.B) {
	ctx := context.Background()
	tr := benchRepo(b, 10_000)
	rec := testRecord(b, "app.bsky.feed.post", "a new post")
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		i++
		w := RecordWrite{Action: ActionCreate, Collection: "app.bsky.feed.post", RKey: syntax.RecordKey(benchTID(1_000_000 + i)), Value: rec}
		if err := tr.Apply(ctx, []RecordWrite{w}); err != nil {
			b.Fatal(err)
		}
		if _, err := tr.Commit(ctx, tr.key, tr.clock); err != nil {
			b.Fatal(err)
		}
	}
}

func exportBytes(b *testing.B, tr *testRepo) []byte {
	var buf bytes.Buffer
	if err := tr.ExportCAR(context.Background(), &buf); err != nil {
		b.Fatal(err)
	}
	return buf.Bytes()
}

func BenchmarkExportCAR100k(b *testing.B) {
	tr := benchRepo(b, 100_000)
	b.SetBytes(int64(len(exportBytes(b, tr))))
	b.ReportAllocs()
	for b.Loop() {
		if err := tr.ExportCAR(context.Background(), io.Discard); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkImportCAR100k(b *testing.B) {
	tr := benchRepo(b, 100_000)
	file := exportBytes(b, tr)
	opts := ImportOptions{DID: testDID, PublicKey: tr.key.Public()}
	b.SetBytes(int64(len(file)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := ImportCAR(context.Background(), bytes.NewReader(file), NewMemBlockStore(), opts); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkDiff(b *testing.B) {
	ctx := context.Background()
	tr := benchRepo(b, 10_000)
	_, a := tr.Head()
	var ws []RecordWrite
	for i := range 10 {
		ws = append(ws, create(b, "app.bsky.feed.like", benchTID(2_000_000+i*977), fmt.Sprint(i)))
	}
	res := tr.commit(b, ws...)
	b.ReportAllocs()
	for b.Loop() {
		ops, _, err := Diff(ctx, tr.store, a, res.CID)
		if err != nil || len(ops) != 10 {
			b.Fatal(len(ops), err)
		}
	}
}
