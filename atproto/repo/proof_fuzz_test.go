package repo

import (
	"bytes"
	"context"
	"encoding/hex"
	"fmt"
	"io"
	"math/big"
	"sort"
	"sync"
	"testing"

	"github.com/welkin-atproto/welkin/atproto/car"
	"github.com/welkin-atproto/welkin/atproto/crypto"
	"github.com/welkin-atproto/welkin/atproto/data"
	"github.com/welkin-atproto/welkin/atproto/syntax"
)

// The fuzz targets of this file, import_fuzz_test.go and
// commit_fuzz_test.go share one small repository, built deterministically
// so that a failing input saved under testdata/fuzz replays against the
// same commit: fixed records, a fixed rev and a fixed K-256 key. The
// secp256k1 signer is randomized, so the commit's signature is pinned
// here (fzSigHex) rather than made at each run.

const (
	fzRev = syntax.TID("3lhhxizu5wr2d")
	// fzSigHex signs the fixture's commit with fzKeyBytes. If the fixture
	// changes, fuzzFixture fails and prints the signature to put here.
	fzSigHex = "b5f9c3b17a266e396c991f4b3abc67298f1a1696dd536dc4c079a593ea6b60df3e370c324871e13dd43cf7f59b7f0452b92a3ce5d3ff2b3e8b6aef07059a82c5"
	// fzMaxInput bounds every fuzz input so that one execution stays fast.
	fzMaxInput = 64 << 10
)

// fzKeyBytes is the fixture's secp256k1 private scalar: 0x01..0x20.
var fzKeyBytes = func() []byte {
	b := make([]byte, 32)
	for i := range b {
		b[i] = byte(i + 1)
	}
	return b
}()

type fzRecord struct {
	cid data.CID
	b   []byte
}

type fzFixture struct {
	key       crypto.PrivateKey
	pub       crypto.PublicKey
	store     *MemBlockStore
	commit    []byte
	sig       []byte
	commitCID data.CID
	records   map[string]fzRecord // path -> record
	paths     []string            // sorted
	car       []byte              // ExportCAR of the commit
	blocks    map[data.CID][]byte // every block of the repository
}

var (
	fzOnce sync.Once
	fzFix  *fzFixture
	fzErr  error
)

// fuzzFixture returns the shared fixture, built once.
func fuzzFixture(tb testing.TB) *fzFixture {
	tb.Helper()
	fzOnce.Do(func() { fzFix, fzErr = buildFuzzFixture() })
	if fzErr != nil {
		tb.Fatal(fzErr)
	}
	return fzFix
}

func buildFuzzFixture() (*fzFixture, error) {
	ctx := context.Background()
	key, err := crypto.ParsePrivateBytesK256(fzKeyBytes)
	if err != nil {
		return nil, err
	}
	fx := &fzFixture{key: key, pub: key.Public(), store: NewMemBlockStore(), records: map[string]fzRecord{}, blocks: map[data.CID][]byte{}}
	put := func(c data.CID, b []byte) {
		fx.blocks[c] = b
		_ = fx.store.PutBlock(ctx, c, b)
	}
	// 30 records over three collections: enough for an MST of a few
	// layers, small enough for a fast import.
	vals := make(map[string]data.CID)
	for i := range 30 {
		col := []syntax.NSID{"app.bsky.feed.post", "app.bsky.feed.like", "app.bsky.graph.follow"}[i%3]
		rkey := syntax.NewTID(int64(1_700_000_000_000_000+i*7919), uint(i)).String()
		b, err := data.MarshalCBOR(map[string]any{"$type": string(col), "text": fmt.Sprint("record ", i), "createdAt": "2024-01-02T03:04:05.000Z"})
		if err != nil {
			return nil, err
		}
		c := data.CIDForCBOR(b)
		p := RecordPath(col, syntax.RecordKey(rkey))
		fx.records[p] = fzRecord{cid: c, b: b}
		fx.paths = append(fx.paths, p)
		vals[p] = c
		put(c, b)
	}
	sort.Strings(fx.paths)
	tree, err := BuildTree(vals)
	if err != nil {
		return nil, err
	}
	nodes, err := tree.UnstoredBlocks()
	if err != nil {
		return nil, err
	}
	for c, b := range nodes {
		put(c, b)
	}
	root, err := tree.Root()
	if err != nil {
		return nil, err
	}
	cm := NewCommit(testDID, root, fzRev)
	cm.Sig, _ = hex.DecodeString(fzSigHex)
	if len(cm.Sig) == 0 || cm.Verify(fx.pub) != nil {
		if err := cm.Sign(key); err != nil {
			return nil, err
		}
		return nil, fmt.Errorf("fuzz fixture: the pinned commit signature does not verify; set fzSigHex = %q", hex.EncodeToString(cm.Sig))
	}
	fx.sig = cm.Sig
	if fx.commit, err = cm.Bytes(); err != nil {
		return nil, err
	}
	fx.commitCID = data.CIDForCBOR(fx.commit)
	put(fx.commitCID, fx.commit)
	var buf bytes.Buffer
	if err := ExportCAR(ctx, fx.store, fx.commitCID, &buf); err != nil {
		return nil, err
	}
	fx.car = buf.Bytes()
	return fx, nil
}

// highSCommit returns the fixture's commit block with its signature's s
// replaced by n-s, the malleated form of the same signature; atproto
// requires low-S, so it must not verify.
func (fx *fzFixture) highSCommit(tb testing.TB) []byte {
	tb.Helper()
	n, _ := new(big.Int).SetString("FFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141", 16)
	sig := bytes.Clone(fx.sig)
	new(big.Int).Sub(n, new(big.Int).SetBytes(sig[32:])).FillBytes(sig[32:])
	c, err := ParseCommit(fx.commit)
	if err != nil {
		tb.Fatal(err)
	}
	c.Sig = sig
	b, err := c.Bytes()
	if err != nil {
		tb.Fatal(err)
	}
	return b
}

// proof returns the record proof of path at the fixture's commit.
func (fx *fzFixture) proof(tb testing.TB, path string) []byte {
	tb.Helper()
	col, rkey, err := ParseRecordPath(path)
	if err != nil {
		tb.Fatal(err)
	}
	p, err := RecordProof(context.Background(), fx.store, fx.commitCID, col, rkey)
	if err != nil {
		tb.Fatal(err)
	}
	return p
}

// fzPackCAR turns a CAR file into the packed form the fuzz targets also
// accept: each block with a two-byte big-endian length, in file order,
// the first being the first root's block when the file holds it.
func fzPackCAR(tb testing.TB, file []byte) []byte {
	tb.Helper()
	cr, err := car.NewReader(bytes.NewReader(file), car.Limits{})
	if err != nil {
		tb.Fatal(err)
	}
	var first []byte
	var rest [][]byte
	for {
		c, b, err := cr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			tb.Fatal(err)
		}
		if len(cr.Roots()) > 0 && c == cr.Roots()[0] && first == nil {
			first = b
			continue
		}
		rest = append(rest, b)
	}
	var out []byte
	for _, b := range append([][]byte{first}, rest...) {
		out = append(out, byte(len(b)>>8), byte(len(b)))
		out = append(out, b...)
	}
	return out
}

// fzUnpack builds a CAR file from the packed form: the CID of each block
// is computed (as dag-cbor), and the first block's CID is the root. A
// trailing fragment is dropped. The fuzzer can so change blocks without
// breaking their CIDs.
func fzUnpack(in []byte) []byte {
	var blocks [][]byte
	for len(in) >= 2 {
		n := int(in[0])<<8 | int(in[1])
		in = in[2:]
		if n > len(in) {
			n = len(in)
		}
		blocks = append(blocks, in[:n])
		in = in[n:]
	}
	var roots []data.CID
	if len(blocks) > 0 {
		roots = []data.CID{data.CIDForCBOR(blocks[0])}
	}
	var buf bytes.Buffer
	cw, err := car.NewWriter(&buf, roots...)
	if err != nil {
		panic(err)
	}
	for _, b := range blocks {
		if err := cw.WriteBlock(data.CIDForCBOR(b), b); err != nil {
			panic(err)
		}
	}
	if err := cw.Close(); err != nil {
		panic(err)
	}
	return buf.Bytes()
}

// FuzzVerifyRecordProof mutates record proofs of the fixture repository
// (raw CAR bytes, or blocks whose CIDs the harness recomputes) and the
// path asked about. VerifyRecordProof, with the account's DID and key,
// must never panic, and whenever it succeeds its answer must be the truth
// for that path in the signed repository: the record's CID and bytes when
// present, nil when absent. No mutation may make a proof verify to another
// record, or prove a present record absent or an absent one present.
func FuzzVerifyRecordProof(f *testing.F) {
	fx := fuzzFixture(f)
	absent := "app.bsky.feed.post/3zzzzzzzzzzzz"
	if _, ok := fx.records[absent]; ok {
		f.Fatal("absent path is present")
	}
	// Seeds: a proof of presence for a few records and of absence,
	// asked about its own path and about a neighbour's.
	seeds := []string{fx.paths[0], fx.paths[len(fx.paths)/2], fx.paths[len(fx.paths)-1], absent, "app.bsky.feed.like/2222222222222", "zzz.example.x/a"}
	for i, p := range seeds {
		proof := fx.proof(f, p)
		col, rkey, _ := ParseRecordPath(p)
		got, b, err := VerifyRecordProof(proof, testDID, fx.pub, col, rkey)
		if err != nil {
			f.Fatalf("seed proof of %s: %v", p, err)
		}
		if r, ok := fx.records[p]; ok != (got != nil) || ok && (*got != r.cid || !bytes.Equal(b, r.b)) {
			f.Fatalf("seed proof of %s: verified to %v", p, got)
		}
		f.Add(proof, false, p)
		f.Add(fzPackCAR(f, proof), true, p)
		f.Add(proof, false, seeds[(i+1)%len(seeds)])
	}
	// The first proof with a malleated (high-S) commit signature.
	packed := fzPackCAR(f, fx.proof(f, fx.paths[0]))
	hs := fx.highSCommit(f)
	f.Add(append([]byte{byte(len(hs) >> 8), byte(len(hs))}, append(hs, packed[2+len(fx.commit):]...)...), true, fx.paths[0])
	f.Fuzz(func(t *testing.T, in []byte, packed bool, path string) {
		if len(in) > fzMaxInput || len(path) > 2*MaxMSTKeyLen {
			return
		}
		col, rkey, err := ParseRecordPath(path)
		if err != nil {
			return
		}
		proof := in
		if packed {
			proof = fzUnpack(in)
		}
		got, b, err := VerifyRecordProof(proof, testDID, fx.pub, col, rkey)
		if err != nil {
			if got != nil || b != nil {
				t.Fatalf("error %v with a result %v", err, got)
			}
			return
		}
		want, present := fx.records[path]
		switch {
		case present && got == nil:
			t.Fatalf("proof verified %s absent; it holds %s", path, want.cid)
		case !present && got != nil:
			t.Fatalf("proof verified %s present as %s; it is absent", path, *got)
		case present && *got != want.cid:
			t.Fatalf("proof verified %s as %s; it is %s", path, *got, want.cid)
		case present && !bytes.Equal(b, want.b):
			t.Fatalf("proof of %s returned bytes %x; want %x", path, b, want.b)
		case !present && b != nil:
			t.Fatalf("proof of absence of %s returned bytes %x", path, b)
		}
	})
}
