package car

import (
	"bytes"
	"io"
	"testing"
)

const benchBlocks = 100_000

func BenchmarkWrite100k(b *testing.B) {
	cids, blks := testBlocks(b, benchBlocks)
	size := int64(len(writeCAR(b, cids[:1], cids, blks)))
	b.SetBytes(size)
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		w, err := NewWriter(io.Discard, cids[0])
		if err != nil {
			b.Fatal(err)
		}
		for i := range cids {
			if err := w.WriteBlock(cids[i], blks[i]); err != nil {
				b.Fatal(err)
			}
		}
		if err := w.Close(); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkRead100k(b *testing.B) {
	cids, blks := testBlocks(b, benchBlocks)
	car := writeCAR(b, cids[:1], cids, blks)
	b.SetBytes(int64(len(car)))
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		r, err := NewReader(bytes.NewReader(car), Limits{})
		if err != nil {
			b.Fatal(err)
		}
		n := 0
		for {
			_, _, err := r.Next()
			if err == io.EOF {
				break
			}
			if err != nil {
				b.Fatal(err)
			}
			n++
		}
		if n != benchBlocks {
			b.Fatalf("%d blocks", n)
		}
	}
}

func BenchmarkReadAll100k(b *testing.B) {
	cids, blks := testBlocks(b, benchBlocks)
	car := writeCAR(b, cids[:1], cids, blks)
	b.SetBytes(int64(len(car)))
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		if _, _, err := ReadAll(bytes.NewReader(car), Limits{}); err != nil {
			b.Fatal(err)
		}
	}
}
