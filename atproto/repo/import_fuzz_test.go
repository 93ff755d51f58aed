package repo

import (
	"bytes"
	"context"
	"testing"

	"github.com/welkin-atproto/welkin/atproto/car"
	"github.com/welkin-atproto/welkin/atproto/data"
)

// fzImportLimits bound the CAR files of FuzzImportCAR, far above the
// fixture and its mutations but small enough for fast executions.
var fzImportLimits = car.Limits{MaxHeaderSize: 4 << 10, MaxBlockSize: 16 << 10, MaxTotalSize: fzMaxInput * 2, MaxBlocks: 4 << 10}

// FuzzImportCAR mutates the export of the fixture repository (raw CAR
// bytes, or blocks whose CIDs the harness recomputes) and imports it.
// ImportCAR must never panic.
//
// With the account's DID and key (withKey), success means the file held
// the signed repository: the commit CID must be the fixture's, the record
// walk must list exactly its records with their bytes, and the store must
// hold exactly the blocks reported stored.
//
// Without a key any well-formed repository is acceptable, so success must
// instead give one that round-trips: its export imports again to the same
// commit CID and the same records, and the walk agrees with the count
// ImportCAR reported.
func FuzzImportCAR(f *testing.F) {
	fx := fuzzFixture(f)
	ctx := context.Background()
	res, err := ImportCAR(ctx, bytes.NewReader(fx.car), NewMemBlockStore(), ImportOptions{DID: testDID, PublicKey: fx.pub, Limits: fzImportLimits})
	if err != nil || res.CommitCID != fx.commitCID || res.Records != len(fx.records) {
		f.Fatalf("seed export does not import: %v", err)
	}
	// A variant with every block twice, in reverse order, and an
	// unrelated block.
	roots, blocks, err := car.ReadAll(bytes.NewReader(fx.car), car.Limits{})
	if err != nil {
		f.Fatal(err)
	}
	extra, _ := data.MarshalCBOR(map[string]any{"$type": "com.example.unrelated", "n": int64(1)})
	var dup bytes.Buffer
	cw, err := car.NewWriter(&dup, roots...)
	if err != nil {
		f.Fatal(err)
	}
	cids := sortedCIDs(blocks)
	for i := len(cids) - 1; i >= 0; i-- {
		for range 2 {
			if err := cw.WriteBlock(cids[i], blocks[cids[i]]); err != nil {
				f.Fatal(err)
			}
		}
	}
	if err := cw.WriteBlock(data.CIDForCBOR(extra), extra); err != nil {
		f.Fatal(err)
	}
	if err := cw.Close(); err != nil {
		f.Fatal(err)
	}
	for _, file := range [][]byte{fx.car, dup.Bytes()} {
		f.Add(file, false, true)
		f.Add(file, false, false)
		f.Add(fzPackCAR(f, file), true, true)
		f.Add(fzPackCAR(f, file), true, false)
	}
	// The export with a malleated (high-S) commit signature.
	packed := fzPackCAR(f, fx.car)
	hs := fx.highSCommit(f)
	f.Add(append([]byte{byte(len(hs) >> 8), byte(len(hs))}, append(hs, packed[2+len(fx.commit):]...)...), true, true)
	f.Fuzz(func(t *testing.T, in []byte, packed, withKey bool) {
		if len(in) > fzMaxInput {
			return
		}
		file := in
		if packed {
			file = fzUnpack(in)
		}
		opts := ImportOptions{Limits: fzImportLimits}
		if withKey {
			opts.DID, opts.PublicKey = testDID, fx.pub
		}
		st := NewMemBlockStore()
		res, err := ImportCAR(ctx, bytes.NewReader(file), st, opts)
		if err != nil {
			if res != nil {
				t.Fatalf("error %v with a result", err)
			}
			if st.Len() != 0 {
				t.Fatalf("error %v, but %d blocks were stored", err, st.Len())
			}
			return
		}
		if st.Len() != res.Stored {
			t.Fatalf("store holds %d blocks, %d reported stored", st.Len(), res.Stored)
		}
		_, head := res.Repo.Head()
		if head != res.CommitCID {
			t.Fatalf("repo head %s, imported commit %s", head, res.CommitCID)
		}
		if withKey {
			if !res.SignatureChecked {
				t.Fatal("signature not checked")
			}
			if res.CommitCID != fx.commitCID {
				t.Fatalf("imported commit %s verifies with the key; the signed commit is %s", res.CommitCID, fx.commitCID)
			}
			fzCheckWalk(t, res.Repo, fx)
			return
		}
		// Without a key: the repository must round-trip.
		n := 0
		if err := res.Repo.Walk(ctx, func(string, data.CID) error { n++; return nil }); err != nil {
			t.Fatalf("walking the imported repo: %v", err)
		}
		if n != res.Records {
			t.Fatalf("walk lists %d records, import reported %d", n, res.Records)
		}
		var buf bytes.Buffer
		if err := res.Repo.ExportCAR(ctx, &buf); err != nil {
			t.Fatalf("exporting the imported repo: %v", err)
		}
		res2, err := ImportCAR(ctx, &buf, NewMemBlockStore(), ImportOptions{Limits: car.Limits{}})
		if err != nil {
			t.Fatalf("re-importing the export: %v", err)
		}
		if res2.CommitCID != res.CommitCID || res2.Records != res.Records || res2.Stored != res.Stored {
			t.Fatalf("re-import: commit %s, %d records, %d blocks; want %s, %d, %d", res2.CommitCID, res2.Records, res2.Stored, res.CommitCID, res.Records, res.Stored)
		}
		if res.CommitCID == fx.commitCID {
			fzCheckWalk(t, res.Repo, fx)
		}
	})
}

// fzCheckWalk checks that r holds exactly the fixture's records.
func fzCheckWalk(t *testing.T, r *Repo, fx *fzFixture) {
	t.Helper()
	ctx := context.Background()
	i := 0
	err := r.Walk(ctx, func(path string, c data.CID) error {
		if i >= len(fx.paths) || path != fx.paths[i] {
			t.Fatalf("walk: record %d is %s", i, path)
		}
		want := fx.records[path]
		if c != want.cid {
			t.Fatalf("walk: %s is %s, want %s", path, c, want.cid)
		}
		b, err := r.Store().GetBlock(ctx, c)
		if err != nil || !bytes.Equal(b, want.b) {
			t.Fatalf("record %s: %x, %v; want %x", path, b, err, want.b)
		}
		i++
		return nil
	})
	if err != nil {
		t.Fatalf("walk: %v", err)
	}
	if i != len(fx.paths) {
		t.Fatalf("walk lists %d records, want %d", i, len(fx.paths))
	}
}
