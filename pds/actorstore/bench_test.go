package actorstore

import (
	"context"
	"fmt"
	"testing"

	"github.com/welkin-atproto/welkin/atproto/crypto"
	"github.com/welkin-atproto/welkin/atproto/repo"
)

// BenchmarkApplyCommit stores one-post commits, one after another, in an
// account's database: the part of a createRecord that the database does.
// Building and signing each commit is not timed, nor are the periodic
// syncs and checkpoints. The sub-benchmarks start from a repository of one
// record and from one of 20,000, where the index of block CIDs no longer
// fits the store's page cache and each commit's random leaves cost reads
// as well as WAL frames.
func BenchmarkApplyCommit(b *testing.B) {
	for _, size := range []int{1, 20000} {
		b.Run(fmt.Sprintf("records=%d", size), func(b *testing.B) { benchApplyCommit(b, size) })
	}
}

func benchApplyCommit(b *testing.B, records int) {
	ctx := context.Background()
	s, key, clock := filledStore(b, records)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		if i%256 == 255 {
			// As the PDS does about every second, off the write path.
			if err := s.Sync(ctx); err != nil {
				b.Fatal(err)
			}
		}
		r := openRepo(b, s)
		w := create(b, post, fmt.Sprintf("3k%011d", i), fmt.Sprintf("post %d", i))
		if err := r.Apply(ctx, []repo.RecordWrite{w}); err != nil {
			b.Fatal(err)
		}
		res, err := r.Commit(ctx, key, clock)
		if err != nil {
			b.Fatal(err)
		}
		ev := eventFor(res)
		b.StartTimer()
		if _, err := s.ApplyCommit(ctx, res, ev); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkStoreBatch measures storing a batch of queued commits
// (ApplyCommitLater) of one post each, as the PDS's background
// transactions do, into a repository of 3,000 records: about what each
// account reaches in a 30 s pdsload step. An op is one batch.
func BenchmarkStoreBatch(b *testing.B) {
	for _, batch := range []int{16, 64} {
		b.Run(fmt.Sprintf("commits=%d", batch), func(b *testing.B) { benchStoreBatch(b, 3000, batch) })
	}
}

func benchStoreBatch(b *testing.B, records, batch int) {
	ctx := context.Background()
	s, key, clock := filledStore(b, records)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		if i%16 == 15 {
			if err := s.Sync(ctx); err != nil {
				b.Fatal(err)
			}
		}
		for j := range batch {
			k := i*batch + j
			queueCommit(b, s, key, clock, LaterHooks{}, create(b, post, fmt.Sprintf("3k%011d", k), fmt.Sprintf("post %d", k)))
		}
		b.StartTimer()
		if err := s.WaitApplied(ctx); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*batch), "ns/commit")
}

// filledStore opens a store holding a repository of records posts,
// written in commits of the most writes one may carry, and synced.
func filledStore(b *testing.B, records int) (*Store, crypto.PrivateKey, *repo.RevClock) {
	s := openStore(b, b.TempDir(), testDID)
	key := testKey(b)
	clock := repo.NewRevClock(1)
	const perCommit = 200
	for done := 0; done < records; {
		n := min(perCommit, records-done)
		ws := make([]repo.RecordWrite, n)
		for i := range ws {
			ws[i] = create(b, post, fmt.Sprintf("3j%011d", done+i), fmt.Sprintf("old post %d", done+i))
		}
		write(b, s, key, clock, ws...)
		done += n
	}
	if err := s.Sync(context.Background()); err != nil {
		b.Fatal(err)
	}
	return s, key, clock
}
