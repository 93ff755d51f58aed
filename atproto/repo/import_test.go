package repo

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/welkin-atproto/welkin/atproto/car"
	"github.com/welkin-atproto/welkin/atproto/crypto"
	"github.com/welkin-atproto/welkin/atproto/data"
	"github.com/welkin-atproto/welkin/atproto/syntax"
)

// exportedRepo builds a repository of n random records over a few
// commits and returns it with its export.
func exportedRepo(t testing.TB, n int) (*testRepo, []data.CID, map[data.CID][]byte) {
	t.Helper()
	tr := newTestRepo(t)
	for done := 0; done < n; {
		var ws []RecordWrite
		for ; done < n && len(ws) < MaxCommitOps; done++ {
			col := testCollections[done%len(testCollections)]
			ws = append(ws, create(t, col, syntax.NewTID(int64(1_700_000_000_000_000+done*1000), 0).String(), fmt.Sprint("record ", done)))
		}
		tr.commit(t, ws...)
	}
	var buf bytes.Buffer
	if err := tr.ExportCAR(context.Background(), &buf); err != nil {
		t.Fatal(err)
	}
	roots, blocks, err := car.ReadAll(&buf, car.Limits{})
	if err != nil {
		t.Fatal(err)
	}
	return tr, roots, blocks
}

func writeCAR(t testing.TB, roots []data.CID, blocks []data.CID, m map[data.CID][]byte) []byte {
	t.Helper()
	var buf bytes.Buffer
	cw, err := car.NewWriter(&buf, roots...)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range blocks {
		if err := cw.WriteBlock(c, m[c]); err != nil {
			t.Fatal(err)
		}
	}
	if err := cw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func TestImportToleratesDuplicatesOrderAndExtras(t *testing.T) {
	ctx := context.Background()
	tr, roots, blocks := exportedRepo(t, 150)
	extra, _ := data.MarshalCBOR(map[string]any{"$type": "com.example.unrelated", "n": int64(1)})
	extraCID := data.CIDForCBOR(extra)
	all := map[data.CID][]byte{extraCID: extra}
	var order []data.CID
	for c, b := range blocks {
		all[c] = b
		order = append(order, c, c) // every block twice
	}
	order = append(order, extraCID)
	rand.New(rand.NewPCG(7, 7)).Shuffle(len(order), func(i, j int) { order[i], order[j] = order[j], order[i] })
	st := NewMemBlockStore()
	res, err := ImportCAR(ctx, bytes.NewReader(writeCAR(t, roots, order, all)), st, ImportOptions{DID: testDID, PublicKey: tr.key.Public()})
	if err != nil {
		t.Fatal(err)
	}
	if res.Dropped != 1 || res.Stored != len(blocks) || st.Len() != len(blocks) {
		t.Fatalf("dropped %d stored %d (store %d), want 1 and %d", res.Dropped, res.Stored, st.Len(), len(blocks))
	}
	if _, err := st.GetBlock(ctx, extraCID); err == nil {
		t.Fatal("the unreferenced block was stored")
	}
	if res.Records != 150 {
		t.Fatalf("records %d", res.Records)
	}
}

func TestImportRejects(t *testing.T) {
	ctx := context.Background()
	tr, roots, blocks := exportedRepo(t, 60)
	cm, err := ParseCommit(blocks[roots[0]])
	if err != nil {
		t.Fatal(err)
	}
	// Two records to remove, with their paths.
	var recs []Entry
	tr.Walk(ctx, func(p string, c data.CID) error {
		if len(recs) < 2 {
			recs = append(recs, Entry{p, c})
		}
		return nil
	})
	without := func(drop ...data.CID) []byte {
		m := map[data.CID][]byte{}
		for c, b := range blocks {
			m[c] = b
		}
		for _, c := range drop {
			delete(m, c)
		}
		var buf bytes.Buffer
		if err := car.WriteAll(&buf, roots, m); err != nil {
			t.Fatal(err)
		}
		return buf.Bytes()
	}
	full := without()
	other := testKey(t)

	t.Run("missing records", func(t *testing.T) {
		st := NewMemBlockStore()
		_, err := ImportCAR(ctx, bytes.NewReader(without(recs[0].Value, recs[1].Value)), st, ImportOptions{})
		var me *MissingRecordsError
		if !errors.As(err, &me) || len(me.Missing) != 2 {
			t.Fatalf("got %v, want a MissingRecordsError of 2", err)
		}
		for _, r := range recs {
			if !strings.Contains(err.Error(), r.Value.String()) || !strings.Contains(err.Error(), r.Key) {
				t.Errorf("error %q does not name %s at %s", err, r.Value, r.Key)
			}
		}
		if st.Len() != 0 {
			t.Errorf("a failed import stored %d blocks", st.Len())
		}
	})
	t.Run("missing node", func(t *testing.T) {
		_, err := ImportCAR(ctx, bytes.NewReader(without(cm.Data)), NewMemBlockStore(), ImportOptions{})
		var mb *MissingBlockError
		if !errors.As(err, &mb) || mb.CID != cm.Data {
			t.Fatalf("got %v, want the missing root node", err)
		}
	})
	t.Run("missing commit", func(t *testing.T) {
		_, err := ImportCAR(ctx, bytes.NewReader(without(roots[0])), NewMemBlockStore(), ImportOptions{})
		if err == nil || !strings.Contains(err.Error(), "commit") {
			t.Fatalf("got %v", err)
		}
	})
	t.Run("bad signature", func(t *testing.T) {
		_, err := ImportCAR(ctx, bytes.NewReader(full), NewMemBlockStore(), ImportOptions{PublicKey: other.Public()})
		if !errors.Is(err, crypto.ErrInvalidSignature) {
			t.Fatalf("got %v, want ErrInvalidSignature", err)
		}
		_, err = ImportCAR(ctx, bytes.NewReader(full), NewMemBlockStore(), ImportOptions{
			KeyForDID: func(context.Context, syntax.DID) (crypto.PublicKey, error) { return other.Public(), nil },
		})
		if !errors.Is(err, crypto.ErrInvalidSignature) {
			t.Fatalf("KeyForDID: got %v, want ErrInvalidSignature", err)
		}
	})
	t.Run("wrong DID", func(t *testing.T) {
		_, err := ImportCAR(ctx, bytes.NewReader(full), NewMemBlockStore(), ImportOptions{DID: "did:plc:someoneelse234567abcdefg"})
		if err == nil || !strings.Contains(err.Error(), "did:plc:someoneelse234567abcdefg") {
			t.Fatalf("got %v", err)
		}
	})
	t.Run("root not a commit", func(t *testing.T) {
		var buf bytes.Buffer
		if err := car.WriteAll(&buf, []data.CID{recs[0].Value}, blocks); err != nil {
			t.Fatal(err)
		}
		_, err := ImportCAR(ctx, &buf, NewMemBlockStore(), ImportOptions{})
		if err == nil || !strings.Contains(err.Error(), "commit") {
			t.Fatalf("got %v", err)
		}
	})
	t.Run("no roots", func(t *testing.T) {
		var buf bytes.Buffer
		if err := car.WriteAll(&buf, nil, blocks); err != nil {
			t.Fatal(err)
		}
		if _, err := ImportCAR(ctx, &buf, NewMemBlockStore(), ImportOptions{}); err == nil {
			t.Fatal("accepted a CAR without roots")
		}
	})
	t.Run("truncated", func(t *testing.T) {
		if _, err := ImportCAR(ctx, bytes.NewReader(full[:len(full)-3]), NewMemBlockStore(), ImportOptions{}); !errors.Is(err, car.ErrTruncated) {
			t.Fatalf("got %v, want car.ErrTruncated", err)
		}
	})
	t.Run("good", func(t *testing.T) {
		res, err := ImportCAR(ctx, bytes.NewReader(full), NewMemBlockStore(), ImportOptions{DID: testDID, PublicKey: tr.key.Public()})
		if err != nil || res.Records != 60 {
			t.Fatalf("%v", err)
		}
	})
}

func TestExportOrder(t *testing.T) {
	tr, roots, _ := exportedRepo(t, 80)
	var buf bytes.Buffer
	if err := tr.ExportCAR(context.Background(), &buf); err != nil {
		t.Fatal(err)
	}
	cr, err := car.NewReader(&buf, car.Limits{})
	if err != nil {
		t.Fatal(err)
	}
	first, _, err := cr.Next()
	if err != nil || first != roots[0] {
		t.Fatalf("first block %s, want the commit %s", first, roots[0])
	}
	cm, _ := ParseCommit(tr.store.Blocks()[first])
	second, _, err := cr.Next()
	if err != nil || second != cm.Data {
		t.Fatalf("second block %s, want the MST root %s", second, cm.Data)
	}
	// An empty repository exports as commit and empty root node.
	empty := newTestRepo(t)
	empty.commit(t)
	buf.Reset()
	if err := empty.ExportCAR(context.Background(), &buf); err != nil {
		t.Fatal(err)
	}
	_, blocks, err := car.ReadAll(&buf, car.Limits{})
	if err != nil || len(blocks) != 2 {
		t.Fatalf("empty export: %d blocks, %v", len(blocks), err)
	}
	if err := newTestRepo(t).ExportCAR(context.Background(), &buf); !errors.Is(err, ErrNoCommit) {
		t.Fatalf("export before the first commit: %v", err)
	}
}

func TestExportMissingRecord(t *testing.T) {
	ctx := context.Background()
	tr, roots, blocks := exportedRepo(t, 10)
	var path string
	var rc data.CID
	tr.Walk(ctx, func(p string, c data.CID) error { path, rc = p, c; return nil })
	st := NewMemBlockStore()
	for c, b := range blocks {
		if c != rc {
			st.PutBlock(ctx, c, b)
		}
	}
	err := ExportCAR(ctx, st, roots[0], &bytes.Buffer{})
	var mb *MissingBlockError
	if !errors.As(err, &mb) || mb.CID != rc || !strings.Contains(err.Error(), path) {
		t.Fatalf("got %v, want a MissingBlockError naming %s", err, path)
	}
}

func TestDiffBasics(t *testing.T) {
	ctx := context.Background()
	tr := newTestRepo(t)
	post := syntax.NSID("app.bsky.feed.post")
	a := tr.commit(t, create(t, post, "a", "1"), create(t, post, "b", "2"))
	b := tr.commit(t)
	ops, blocks, err := Diff(ctx, tr.store, a.CID, b.CID)
	if err != nil || len(ops) != 0 || len(blocks) != 1 {
		t.Fatalf("diff of commits with the same data: %v ops, %d blocks, %v", ops, len(blocks), err)
	}
	ops, _, err = Diff(ctx, tr.store, data.CID{}, b.CID)
	if err != nil || len(ops) != 2 || ops[0].Action != ActionCreate || ops[0].Path != "app.bsky.feed.post/a" {
		t.Fatalf("diff from empty: %+v %v", ops, err)
	}
	ops, _, err = Diff(ctx, tr.store, b.CID, data.CID{})
	if err == nil {
		t.Fatalf("diff to an undefined commit succeeded: %v", ops)
	}
	other := newTestRepo(t)
	other.store = tr.store
	other.Repo, _ = NewRepo("did:plc:zzzzzzzzzzzzzzzzzzzzzzzz", tr.store)
	oc := other.commit(t)
	if _, _, err := Diff(ctx, tr.store, a.CID, oc.CID); err == nil || !strings.Contains(err.Error(), "different repositories") {
		t.Fatalf("diff across repositories: %v", err)
	}
}

func TestVerifyRecordProofErrors(t *testing.T) {
	ctx := context.Background()
	tr := newTestRepo(t)
	post := syntax.NSID("app.bsky.feed.post")
	tr.commit(t, create(t, post, "a", "1"))
	proof, err := tr.RecordProof(ctx, post, "a")
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := VerifyRecordProof(proof, "did:plc:zzzzzzzzzzzzzzzzzzzzzzzz", nil, post, "a"); err == nil {
		t.Error("proof accepted for another DID")
	}
	if _, _, err := VerifyRecordProof(proof, testDID, testKey(t).Public(), post, "a"); !errors.Is(err, crypto.ErrInvalidSignature) {
		t.Errorf("proof with the wrong key: %v", err)
	}
	if _, _, err := VerifyRecordProof(proof, testDID, nil, post, "bad/key"); err == nil {
		t.Error("bad record key accepted")
	}
	if _, _, err := VerifyRecordProof([]byte("not a car"), testDID, nil, post, "a"); err == nil {
		t.Error("garbage accepted")
	}
	// A proof of one record does not prove another's absence unless the
	// path to it is there: a key whose path leaves the proof fails.
	if _, err := newTestRepo(t).RecordProof(ctx, post, "a"); !errors.Is(err, ErrNoCommit) {
		t.Errorf("proof before the first commit: %v", err)
	}
}
