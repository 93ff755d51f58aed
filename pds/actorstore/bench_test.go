package actorstore

import (
	"context"
	"fmt"
	"testing"

	"github.com/welkin-atproto/welkin/atproto/repo"
)

// BenchmarkApplyCommit stores one-post commits, one after another, in an
// account's database: the part of a createRecord that the database does.
// Building and signing each commit is not timed, nor are the periodic
// syncs and checkpoints.
func BenchmarkApplyCommit(b *testing.B) {
	ctx := context.Background()
	s := openStore(b, b.TempDir(), testDID)
	key := testKey(b)
	clock := repo.NewRevClock(1)
	write(b, s, key, clock, create(b, post, "3jzfcijpj2z2a", "first"))
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
