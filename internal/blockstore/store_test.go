package blockstore

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"

	"github.com/welkin-atproto/welkin/atproto/data"
	"github.com/welkin-atproto/welkin/atproto/repo"
	"github.com/welkin-atproto/welkin/internal/sqldb"
	"github.com/welkin-atproto/welkin/internal/sqldb/sqldbtest"
)

func block(t testing.TB, i int) (data.CID, []byte) {
	t.Helper()
	b, err := data.MarshalCBOR(map[string]any{"i": int64(i), "text": fmt.Sprintf("record %d", i)})
	if err != nil {
		t.Fatal(err)
	}
	return data.CIDForCBOR(b), b
}

func TestStore(t *testing.T) {
	sqldbtest.ForEachBackend(t, func(t *testing.T, db *sqldb.DB) {
		ctx := context.Background()
		s, err := New(ctx, db)
		if err != nil {
			t.Fatal(err)
		}
		c, b := block(t, 1)

		// Missing.
		_, err = s.GetBlock(ctx, c)
		var me *repo.MissingBlockError
		if !errors.As(err, &me) || me.CID != c {
			t.Fatalf("GetBlock of a missing block: %v", err)
		}
		if ok, err := s.HasBlock(ctx, c); err != nil || ok {
			t.Fatalf("HasBlock = %v, %v", ok, err)
		}

		// Put, get, has; a second put is a no-op.
		if err := s.PutBlock(ctx, c, b); err != nil {
			t.Fatal(err)
		}
		if err := s.PutBlock(ctx, c, b); err != nil {
			t.Fatalf("second put: %v", err)
		}
		got, err := s.GetBlock(ctx, c)
		if err != nil || !bytes.Equal(got, b) {
			t.Fatalf("GetBlock = %x, %v", got, err)
		}
		if ok, err := s.HasBlock(ctx, c); err != nil || !ok {
			t.Fatalf("HasBlock = %v, %v", ok, err)
		}

		// An empty block (raw codec) and a large one.
		ec := data.CIDForRaw(nil)
		big := bytes.Repeat([]byte{0xab}, 1_000_000)
		bc := data.CIDForRaw(big)
		if err := s.PutBlocks(ctx, map[data.CID][]byte{ec: nil, bc: big}); err != nil {
			t.Fatal(err)
		}
		if got, err := s.GetBlock(ctx, ec); err != nil || got == nil || len(got) != 0 {
			t.Fatalf("empty block: %x (nil %v), %v", got, got == nil, err)
		}
		if got, err := s.GetBlock(ctx, bc); err != nil || !bytes.Equal(got, big) {
			t.Fatalf("large block: %d bytes, %v", len(got), err)
		}

		// A batch with blocks already present, and a batch that fails
		// stores nothing.
		batch := map[data.CID][]byte{c: b}
		for i := 2; i < 50; i++ {
			c, b := block(t, i)
			batch[c] = b
		}
		if err := s.PutBlocks(ctx, batch); err != nil {
			t.Fatal(err)
		}
		for c, b := range batch {
			if got, err := s.GetBlock(ctx, c); err != nil || !bytes.Equal(got, b) {
				t.Fatalf("batch block %s: %v", c, err)
			}
		}
		c99, b99 := block(t, 99)
		if err := s.PutBlocks(ctx, map[data.CID][]byte{c99: b99, {}: []byte{1}}); err == nil {
			t.Fatal("batch with an undefined CID accepted")
		}
		if ok, _ := s.HasBlock(ctx, c99); ok {
			t.Fatal("failed batch stored a block")
		}
		if err := s.PutBlocks(ctx, nil); err != nil {
			t.Fatal(err)
		}
		if err := s.PutBlock(ctx, data.CID{}, b); err == nil {
			t.Fatal("undefined CID accepted")
		}

		// A cancelled context fails.
		cctx, cancel := context.WithCancel(ctx)
		cancel()
		if err := s.PutBlocks(cctx, map[data.CID][]byte{c99: b99}); err == nil {
			t.Fatal("put with a cancelled context succeeded")
		}

		// Migrating again is harmless and keeps the data.
		s2, err := New(ctx, db)
		if err != nil {
			t.Fatal(err)
		}
		if got, err := s2.GetBlock(ctx, c); err != nil || !bytes.Equal(got, b) {
			t.Fatalf("after second New: %v", err)
		}
		if err := s2.Close(); err != nil {
			t.Fatal(err)
		}
	})
}

func TestConcurrentPuts(t *testing.T) {
	sqldbtest.ForEachBackend(t, func(t *testing.T, db *sqldb.DB) {
		ctx := context.Background()
		s, err := New(ctx, db)
		if err != nil {
			t.Fatal(err)
		}
		// Overlapping batches from several writers.
		var wg sync.WaitGroup
		for w := range 4 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				batch := map[data.CID][]byte{}
				for i := w * 10; i < w*10+40; i++ {
					c, b := block(t, i)
					batch[c] = b
				}
				if err := s.PutBlocks(ctx, batch); err != nil {
					t.Error(err)
				}
			}()
		}
		wg.Wait()
		for i := range 70 {
			c, b := block(t, i)
			if got, err := s.GetBlock(ctx, c); err != nil || !bytes.Equal(got, b) {
				t.Fatalf("block %d: %v", i, err)
			}
		}
	})
}

func TestOpen(t *testing.T) {
	ctx := context.Background()
	path := t.TempDir() + "/blocks.db"
	s, err := Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	c, b := block(t, 1)
	if err := s.PutBlock(ctx, c, b); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s, err = Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if got, err := s.GetBlock(ctx, c); err != nil || !bytes.Equal(got, b) {
		t.Fatalf("after reopening: %v", err)
	}
}

// BenchmarkPutGet writes batches of 1000 small blocks and reads each back.
func BenchmarkPutGet(b *testing.B) {
	const batchSize = 1000
	for _, backend := range []string{"sqlite", "postgres"} {
		b.Run(backend, func(b *testing.B) {
			var db *sqldb.DB
			if backend == "sqlite" {
				db = sqldbtest.OpenSQLite(b, sqldb.Config{})
			} else {
				db = sqldbtest.OpenPostgres(b, sqldb.Config{})
			}
			ctx := context.Background()
			s, err := New(ctx, db)
			if err != nil {
				b.Fatal(err)
			}
			n := 0
			var size int64
			for i := range batchSize {
				_, blk := block(b, i)
				size += int64(len(blk))
			}
			b.SetBytes(size)
			b.ResetTimer()
			for b.Loop() {
				batch := make(map[data.CID][]byte, batchSize)
				for range batchSize {
					c, blk := block(b, n)
					batch[c] = blk
					n++
				}
				if err := s.PutBlocks(ctx, batch); err != nil {
					b.Fatal(err)
				}
				for c := range batch {
					if _, err := s.GetBlock(ctx, c); err != nil {
						b.Fatal(err)
					}
				}
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(n), "ns/block")
		})
	}
}
