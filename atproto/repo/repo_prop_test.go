package repo

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"

	"github.com/welkin-atproto/welkin/atproto/car"
	"github.com/welkin-atproto/welkin/atproto/crypto"
	"github.com/welkin-atproto/welkin/atproto/data"
	"github.com/welkin-atproto/welkin/atproto/syntax"
)

// TestRepoProperties runs random write sequences and checks, for every
// commit: the CAR slice inverts to prevData; Diff from the previous commit
// gives the commit's ops and, applied to a copy of the previous repository
// holding only its own blocks, yields the new root; record proofs verify
// and fail when any block is tampered with; and export then import gives
// back the same commit and records.
func TestRepoProperties(t *testing.T) {
	seeds := 24
	if testing.Short() {
		seeds = 6
	}
	for seed := range seeds {
		t.Run(fmt.Sprint("seed", seed), func(t *testing.T) {
			t.Parallel()
			runRepoProperties(t, uint64(seed))
		})
	}
}

func runRepoProperties(t *testing.T, seed uint64) {
	ctx := context.Background()
	rng := rand.New(rand.NewPCG(seed, 0x5eed))
	tr := newTestRepo(t)
	live := map[string]bool{}
	// An initial population, then commits of mixed size.
	initial := rng.IntN(MaxCommitOps)
	var prev *CommitResult
	for i := 0; i < 12; i++ {
		maxOps := 20
		if i == 0 {
			maxOps = initial + 1
		}
		ws := randomWrites(t, rng, live, maxOps)
		if err := tr.Apply(ctx, ws); err != nil {
			t.Fatalf("commit %d: %v", i, err)
		}
		res, err := tr.Commit(ctx, tr.key, tr.clock)
		if err != nil {
			t.Fatalf("commit %d: %v", i, err)
		}
		checkSlice(t, res)
		checkContents(t, tr.Repo, live)
		var prevCID data.CID
		if prev != nil {
			prevCID = prev.CID
		}
		checkDiff(t, tr.store, prevCID, res)
		checkProofs(t, rng, tr, live)
		prev = res
	}
	checkRoundTrip(t, tr)
}

func checkContents(t *testing.T, r *Repo, live map[string]bool) {
	t.Helper()
	got := map[string]bool{}
	if err := r.Walk(context.Background(), func(p string, _ data.CID) error {
		got[p] = true
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if len(got) != len(live) {
		t.Fatalf("repo holds %d records, want %d", len(got), len(live))
	}
	for k := range live {
		if !got[k] {
			t.Fatalf("repo lacks %s", k)
		}
	}
}

// storeAt returns a new store holding exactly the blocks of the repository
// at commit, by export and import.
func storeAt(t *testing.T, st BlockStore, commit data.CID) *MemBlockStore {
	t.Helper()
	ctx := context.Background()
	var buf bytes.Buffer
	if err := ExportCAR(ctx, st, commit, &buf); err != nil {
		t.Fatal(err)
	}
	out := NewMemBlockStore()
	res, err := ImportCAR(ctx, &buf, out, ImportOptions{DID: testDID})
	if err != nil {
		t.Fatal(err)
	}
	if res.CommitCID != commit || res.Dropped != 0 {
		t.Fatalf("import: commit %s dropped %d", res.CommitCID, res.Dropped)
	}
	return out
}

func checkDiff(t *testing.T, st BlockStore, old data.CID, res *CommitResult) {
	t.Helper()
	ctx := context.Background()
	ops, blocks, err := Diff(ctx, st, old, res.CID)
	if err != nil {
		t.Fatal(err)
	}
	// The diff's ops are the commit's, in path order.
	want := slices.Clone(res.Ops)
	slices.SortFunc(want, func(a, b Op) int { return strings.Compare(a.Path, b.Path) })
	if !opsEqual(ops, want) {
		t.Fatalf("diff ops\n%v\nwant\n%v", fmtOps(ops), fmtOps(want))
	}
	// Applied to a store holding only the old repository, the diff gives
	// the new tree, complete.
	var a *MemBlockStore
	var tree *Tree
	if old.Defined() {
		a = storeAt(t, st, old)
		oc, err := readCommit(ctx, a, old)
		if err != nil {
			t.Fatal(err)
		}
		if tree, err = LoadTree(ctx, a, oc.Data); err != nil {
			t.Fatal(err)
		}
	} else {
		a, tree = NewMemBlockStore(), NewTree()
	}
	for c, b := range blocks {
		if err := a.PutBlock(ctx, c, b); err != nil {
			t.Fatal(err)
		}
	}
	for _, op := range ops {
		var err error
		if op.CID != nil {
			err = tree.Put(op.Path, *op.CID)
		} else {
			err = tree.Delete(op.Path)
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	root, err := tree.Root()
	if err != nil {
		t.Fatal(err)
	}
	if root != res.Commit.Data {
		t.Fatalf("diff applied to the old tree gives %s, want %s", root, res.Commit.Data)
	}
	if _, err := OpenRepo(ctx, a, res.CID); err != nil {
		t.Fatalf("the diff lacks the commit: %v", err)
	}
	var buf bytes.Buffer
	if err := ExportCAR(ctx, a, res.CID, &buf); err != nil {
		t.Fatalf("old blocks plus the diff do not hold the new repository: %v", err)
	}
	if err := ValidateTree(ctx, a, res.Commit.Data); err != nil {
		t.Fatal(err)
	}
}

func opsEqual(a, b []Op) bool {
	if len(a) != len(b) {
		return false
	}
	eq := func(x, y *data.CID) bool { return (x == nil) == (y == nil) && (x == nil || *x == *y) }
	for i := range a {
		if a[i].Action != b[i].Action || a[i].Path != b[i].Path || !eq(a[i].CID, b[i].CID) || !eq(a[i].Prev, b[i].Prev) {
			return false
		}
	}
	return true
}

func fmtOps(ops []Op) string {
	var sb strings.Builder
	for _, op := range ops {
		fmt.Fprintf(&sb, "  %s %s cid=%v prev=%v\n", op.Action, op.Path, op.CID, op.Prev)
	}
	return sb.String()
}

// checkProofs checks proofs of a few present and absent records.
func checkProofs(t *testing.T, rng *rand.Rand, tr *testRepo, live map[string]bool) {
	t.Helper()
	ctx := context.Background()
	keys := make([]string, 0, len(live))
	for k := range live {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	var paths []string
	for range 2 {
		if len(keys) > 0 {
			paths = append(paths, keys[rng.IntN(len(keys))])
		}
		col := testCollections[rng.IntN(len(testCollections))]
		paths = append(paths, RecordPath(col, syntax.RecordKey(fmt.Sprintf("absent%d", rng.IntN(1000)))))
	}
	pub := tr.key.Public()
	for _, p := range paths {
		col, rk, _ := ParseRecordPath(p)
		proof, err := tr.RecordProof(ctx, col, rk)
		if err != nil {
			t.Fatal(err)
		}
		c, b, err := VerifyRecordProof(proof, testDID, pub, col, rk)
		if err != nil {
			t.Fatalf("proof of %s: %v", p, err)
		}
		if live[p] {
			wc, wb, err := tr.GetRecord(ctx, col, rk)
			if err != nil {
				t.Fatal(err)
			}
			if c == nil || *c != wc || !bytes.Equal(b, wb) {
				t.Fatalf("proof of %s gives another record", p)
			}
		} else if c != nil {
			t.Fatalf("proof of absent %s gives a record", p)
		}
		checkTamperedProofs(t, proof, pub, col, rk)
	}
}

// checkTamperedProofs changes each block of a proof in turn, both keeping
// its CID and re-hashing it (and fixing the root when it is the commit),
// and checks that verification fails every time.
func checkTamperedProofs(t *testing.T, proof []byte, pub crypto.PublicKey, col syntax.NSID, rk syntax.RecordKey) {
	t.Helper()
	roots, blocks, err := car.ReadAll(bytes.NewReader(proof), car.Limits{})
	if err != nil {
		t.Fatal(err)
	}
	for c, b := range blocks {
		bad := bytes.Clone(b)
		bad[len(bad)/2] ^= 0x01
		for _, rehash := range []bool{false, true} {
			m := map[data.CID][]byte{}
			for k, v := range blocks {
				m[k] = v
			}
			r := slices.Clone(roots)
			if rehash {
				delete(m, c)
				nc := data.CIDForCBOR(bad)
				m[nc] = bad
				if c == roots[0] {
					r[0] = nc
				}
			} else {
				m[c] = bad
			}
			var buf bytes.Buffer
			cw, err := car.NewWriter(&buf, r...)
			if err != nil {
				t.Fatal(err)
			}
			for k, v := range m {
				if err := cw.WriteBlock(k, v); err != nil {
					t.Fatal(err)
				}
			}
			if err := cw.Close(); err != nil {
				t.Fatal(err)
			}
			if _, _, err := VerifyRecordProof(buf.Bytes(), testDID, pub, col, rk); err == nil {
				t.Fatalf("a proof with block %s changed (rehash %v) verifies", c, rehash)
			}
		}
	}
	// Dropping any block but an unused one fails too.
	for c := range blocks {
		m := map[data.CID][]byte{}
		for k, v := range blocks {
			if k != c {
				m[k] = v
			}
		}
		var buf bytes.Buffer
		if err := car.WriteAll(&buf, roots, m); err != nil {
			t.Fatal(err)
		}
		_, _, err := VerifyRecordProof(buf.Bytes(), testDID, pub, col, rk)
		var mb *MissingBlockError
		if !errors.As(err, &mb) || mb.CID != c {
			t.Fatalf("a proof without block %s: %v, want a MissingBlockError naming it", c, err)
		}
	}
}

func checkRoundTrip(t *testing.T, tr *testRepo) {
	t.Helper()
	ctx := context.Background()
	var buf bytes.Buffer
	if err := tr.ExportCAR(ctx, &buf); err != nil {
		t.Fatal(err)
	}
	st := NewMemBlockStore()
	res, err := ImportCAR(ctx, bytes.NewReader(buf.Bytes()), st, ImportOptions{DID: testDID, PublicKey: tr.key.Public()})
	if err != nil {
		t.Fatal(err)
	}
	_, head := tr.Head()
	if res.CommitCID != head || !res.SignatureChecked || res.Repo.Rev() != tr.Rev() {
		t.Fatalf("round trip: commit %s checked %v", res.CommitCID, res.SignatureChecked)
	}
	want := map[string]data.CID{}
	tr.Walk(ctx, func(p string, c data.CID) error { want[p] = c; return nil })
	got := map[string]data.CID{}
	res.Repo.Walk(ctx, func(p string, c data.CID) error { got[p] = c; return nil })
	if len(got) != len(want) || res.Records != len(want) {
		t.Fatalf("round trip: %d records (%d counted), want %d", len(got), res.Records, len(want))
	}
	for p, c := range want {
		if got[p] != c {
			t.Fatalf("round trip: %s is %s, want %s", p, got[p], c)
		}
		col, rk, _ := ParseRecordPath(p)
		_, b, err := res.Repo.GetRecord(ctx, col, rk)
		if err != nil || data.CIDForCBOR(b) != c {
			t.Fatalf("round trip: record %s: %v", p, err)
		}
	}
	// The import stores exactly the blocks the export holds.
	_, blocks, err := car.ReadAll(bytes.NewReader(buf.Bytes()), car.Limits{})
	if err != nil {
		t.Fatal(err)
	}
	if st.Len() != len(blocks) || res.Stored != len(blocks) {
		t.Fatalf("import stored %d blocks (says %d), the export holds %d", st.Len(), res.Stored, len(blocks))
	}
}
