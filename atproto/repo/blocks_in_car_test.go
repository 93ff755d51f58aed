package repo

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"testing"

	"github.com/welkin-atproto/welkin/atproto/car"
	"github.com/welkin-atproto/welkin/atproto/syntax"
)

// Every block a commit writes (CommitResult.Blocks) is in its #commit
// CAR slice, byte for byte: a PDS can restore a commit from its firehose
// event alone. Random creates, updates and deletes, over many commits.
func TestCommitBlocksInCAR(t *testing.T) {
	tr := newTestRepo(t)
	rng := rand.New(rand.NewPCG(7, 11))
	var keys []string
	for round := range 150 {
		var writes []RecordWrite
		seen := map[string]bool{}
		for range 1 + rng.IntN(6) {
			col := testCollections[rng.IntN(len(testCollections))]
			switch {
			case len(keys) > 0 && rng.IntN(4) == 0:
				k := keys[rng.IntN(len(keys))]
				if seen[k] {
					continue
				}
				seen[k] = true
				c, rk, _ := ParseRecordPath(k)
				action := ActionDelete
				var value []byte
				if rng.IntN(2) == 0 {
					action, value = ActionUpdate, testRecord(t, c, fmt.Sprintf("updated %d", round))
				}
				writes = append(writes, RecordWrite{Action: action, Collection: c, RKey: rk, Value: value})
			default:
				rk := fmt.Sprintf("r%06d", rng.IntN(1_000_000))
				k := string(col) + "/" + rk
				if seen[k] {
					continue
				}
				seen[k] = true
				writes = append(writes, RecordWrite{Action: ActionCreate, Collection: col, RKey: syntax.RecordKey(rk), Value: testRecord(t, col, k)})
			}
		}
		if len(writes) == 0 {
			continue
		}
		ctx := t.Context()
		if err := tr.Apply(ctx, writes); err != nil {
			t.Fatalf("round %d: %v", round, err)
		}
		res, err := tr.Commit(ctx, tr.key, tr.clock)
		if err != nil {
			t.Fatalf("round %d: %v", round, err)
		}
		_, blocks, err := car.ReadAll(bytes.NewReader(res.CAR), car.Limits{})
		if err != nil {
			t.Fatalf("round %d: CAR slice: %v", round, err)
		}
		for c, b := range res.Blocks {
			if got, ok := blocks[c]; !ok || !bytes.Equal(got, b) {
				t.Fatalf("round %d: block %s written by the commit is not in its CAR slice", round, c)
			}
		}
		for _, op := range res.Ops {
			switch op.Action {
			case ActionCreate:
				keys = append(keys, op.Path)
			case ActionDelete:
				for i, k := range keys {
					if k == op.Path {
						keys = append(keys[:i], keys[i+1:]...)
						break
					}
				}
			}
		}
	}
	if len(keys) < 50 {
		t.Fatalf("only %d records after the rounds; the test did too little", len(keys))
	}
}
